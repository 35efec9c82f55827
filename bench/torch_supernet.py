#!/usr/bin/python3
"""PyTorch model of one FBNetV5 search step on a multi-path arch file.

The PyTorch side of bench/compare_search.sh: the supernet of a multi-path
arch file (docs/supernet.md) with one sampled architecture (a bit string),
the task heads fbnet attaches in a search (classifier, FCOS-like detection
head, light segmentation head) and their losses, trained with AdamW:

    /usr/bin/python3 bench/torch_supernet.py archs/fbnetv5_supernet.json --bits 1011...
    /usr/bin/python3 bench/torch_supernet.py archs/fbnetv5_supernet.json --bits 1011... --count

A skipped block is not run (the identity); a skipped cross term is left out
of its fusion sum. Every path output is computed whatever the heads read, as
`fbnet bench search` does. One timed step = sample and importance weights of
the architecture distribution, forward with every head of --tasks, the
weighted sum of the task losses, backward, AdamW (lr 2e-3, weight decay 0.05
on conv/linear weights; every parameter of the supernet is updated, as fbnet
does) and the REINFORCE update of the T x B logits. Images, labels and
targets are made once before timing. The last line is a JSON object with
sec_per_step (median of the timed steps), macs_per_image and params.

--count prints, per mask, the MACs per image of the masked network with all
its heads in fbnet's convention (conv/linear multiply-adds plus one per input
element of every global average pool, batch 1): the "macs_per_image" of
`fbnet bench search --all-only --mask BITS --json` with the same options.
Only torch and the standard library are used.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# peak RSS of the interpreter with torch loaded, before any model exists (KiB on Linux)
IMPORT_RSS_KB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model as tm  # noqa: E402

TASKS = ("cls", "det", "seg")


# ---- the supernet -----------------------------------------------------------

def make_block(op, c_in, c_out, stride, args, where):
    """One block copy of a row (standard padding k/2, as a search builds it)."""
    m = tm.STEM_RE.match(op)
    mi = tm.IRF_RE.match(op)
    if m:
        return tm.Stem(c_in, c_out, int(m.group(1)), stride)
    if mi:
        return tm.IRF(c_in, c_out, int(mi.group(1)), stride, args.get("e", 1),
                      mi.group(2) is not None, None)
    if op == "ir_pool_hs":
        raise ValueError("%s: ir_pool_hs is only allowed as the \"head\" row" % where)
    raise ValueError("%s: unknown op '%s'" % (where, op))


def conv_bn_seq(c_in, c_out, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out, eps=tm.BN_EPS, momentum=tm.BN_MOMENTUM))


class Upsample(nn.Module):
    def __init__(self, scale, mode):
        super().__init__()
        self.scale, self.mode = scale, mode

    def forward(self, x):
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


def cross_term(c_from, c_to, frm, to):
    """T(from -> to): up = 1x1 conv + BN + nearest upsample; down = per factor
    of 2 a dw 3x3 stride 2 + BN + 1x1 conv + BN (intermediate steps keep the
    source width)."""
    if frm > to:
        return nn.Sequential(conv_bn_seq(c_from, c_to, 1), Upsample(1 << (frm - to), "nearest"))
    steps = []
    for s in range(to - frm):
        c_out = c_to if s + 1 == to - frm else c_from
        steps += [conv_bn_seq(c_from, c_from, 3, 2, c_from), conv_bn_seq(c_from, c_out, 1)]
    return nn.Sequential(*steps)


def fusion_pairs(stage, n_paths, where):
    f = stage.get("fusion", "none")
    if f == "all":
        return {(a, b) for a in range(n_paths) for b in range(n_paths) if a != b}
    if f == "none":
        return set()
    if not isinstance(f, list):
        raise ValueError("%s.fusion: \"all\", \"none\" or a list of [from, to]" % where)
    pairs = set()
    for t in f:
        if (not isinstance(t, list) or len(t) != 2 or not all(isinstance(v, int) for v in t)
                or not all(0 <= v < n_paths for v in t) or t[0] == t[1]):
            raise ValueError("%s.fusion: bad term %r" % (where, t))
        pairs.add((t[0], t[1]))
    return pairs


class Supernet(nn.Module):
    """The trunk of a multi-path arch file. Elements are (name, module, bit);
    bit -1: always run. forward(x, mask) returns the path outputs."""

    def __init__(self, arch, width, input_size):
        super().__init__()
        self.width = width
        if input_size % 32:
            raise ValueError("the input size must be a multiple of 32 (got %d)" % input_size)
        self.search = bool(arch.get("search", False))
        self.bit_names = []
        self.mods = nn.ModuleList()
        self.stem = []         # element indices
        self.stages = []       # per stage: dict(open, paths, cross)
        c, h = 3, input_size
        self._elems = []
        stem_rows = arch.get("stem", [])
        c, h = self._chain(stem_rows, c, h, "stem", self.stem, "stem")
        stem_c, stem_h = c, h
        paths_c, paths_h = [], []
        stages = arch.get("stages")
        if not isinstance(stages, list) or not stages:
            raise ValueError("not a multi-path arch file (no \"stages\")")
        for si, st in enumerate(stages):
            where = "stages[%d]" % si
            rec = {"open": None, "paths": [], "cross": []}
            if "open" in st:
                op, c_out, stride, rep, args = tm.parse_row(st["open"], where + ".open")
                src_c, src_h = (stem_c, stem_h) if not paths_c else (paths_c[-1], paths_h[-1])
                c_out = tm.div8(c_out * width)
                blk = make_block(op, src_c, c_out, stride, args, where + ".open")
                rec["open"] = self._add("s%d.open" % si, blk, -1)
                paths_c.append(c_out)
                paths_h.append((src_h - 1) // stride + 1)
            n = len(paths_c)
            rows = st.get("paths", [])
            if not isinstance(rows, list) or len(rows) != n:
                raise ValueError("%s.paths: %d row lists for %d paths" % (where, len(rows), n))
            for p in range(n):
                idx = []
                paths_c[p], paths_h[p] = self._chain(rows[p], paths_c[p], paths_h[p],
                                                     "s%d.p%d" % (si, p), idx,
                                                     "%s.paths[%d]" % (where, p))
                rec["paths"].append(idx)
            pairs = fusion_pairs(st, n, where)
            for to in range(n):
                for frm in range(n):
                    if (frm, to) not in pairs:
                        continue
                    name = "s%d.f%dto%d" % (si, frm, to)
                    bit = self._new_bit(name) if self.search else -1
                    e = self._add(name, cross_term(paths_c[frm], paths_c[to], frm, to), bit)
                    rec["cross"].append((frm, to, e))
            self.stages.append(rec)
        self.paths_c, self.paths_h = paths_c, paths_h
        self.n_bits = len(self.bit_names)

    def _new_bit(self, name):
        self.bit_names.append(name)
        return len(self.bit_names) - 1

    def _add(self, name, module, bit):
        self.mods.append(module)
        self._elems.append((name, bit))
        return len(self.mods) - 1

    def _chain(self, rows, c, h, prefix, out, where):
        if not isinstance(rows, list):
            raise ValueError("%s: must be a list of rows" % where)
        k = 0
        for j, row in enumerate(rows):
            op, c_out, stride, rep, args = tm.parse_row(row, "%s[%d]" % (where, j))
            c_out = tm.div8(c_out * self.width)
            for r in range(rep):
                s = stride if r == 0 else 1
                name = "%s.%d" % (prefix, k)
                blk = make_block(op, c, c_out, s, args, name)
                same = c == c_out and s == 1
                bit = self._new_bit(name) if self.search and same else -1
                out.append(self._add(name, blk, bit))
                h = (h - 1) // s + 1
                c = c_out
                k += 1
        return c, h

    def forward(self, x, mask):
        def run(e, v):
            bit = self._elems[e][1]
            return v if bit >= 0 and not mask[bit] else self.mods[e](v)

        for e in self.stem:
            x = run(e, x)
        cur = []
        for rec in self.stages:
            if rec["open"] is not None:
                cur.append(self.mods[rec["open"]](cur[-1] if cur else x))
            for p, idx in enumerate(rec["paths"]):
                for e in idx:
                    cur[p] = run(e, cur[p])
            before = list(cur)
            for frm, to, e in rec["cross"]:
                bit = self._elems[e][1]
                if bit < 0 or mask[bit]:
                    cur[to] = cur[to] + self.mods[e](before[frm])
        return cur


# ---- heads ------------------------------------------------------------------

class ClsHead(nn.Module):
    """ir_pool_hs head row (when the file has one) + linear classifier (bias);
    a global pool first only when the map is not 1x1."""

    def __init__(self, arch, c_in, width, classes):
        super().__init__()
        self.head = None
        if "head" in arch:
            op, c_out, stride, rep, args = tm.parse_row(arch["head"], "head")
            if op != "ir_pool_hs":
                raise ValueError("head: only ir_pool_hs is supported (got '%s')" % op)
            c_out = tm.div8(c_out * width)
            self.head = tm.PoolHead(c_in, c_out, args.get("e", 6))
            c_in = c_out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, classes, bias=True)

    def forward(self, x):
        if self.head is not None:
            x = self.head(x)
        if x.shape[2] != 1 or x.shape[3] != 1:
            x = self.pool(x)
        return self.classifier(torch.flatten(x, 1))


class FCOSHead(nn.Module):
    """src/tasks/det/fcos.h: lateral 1x1 + BN per level, top-down nearest
    x2 add, cls/reg towers (3x3 conv shared across levels, BN per level,
    relu), shared output convs cls K / box 4 (+relu) / centerness 1."""

    def __init__(self, in_chs, K, width, depth, prior=0.01):
        super().__init__()
        L = len(in_chs)
        self.lat = nn.ModuleList([conv_bn_seq(c, width, 1) for c in in_chs])
        self.cls_convs = nn.ModuleList([nn.Conv2d(width, width, 3, 1, 1, bias=False)
                                        for _ in range(depth)])
        self.reg_convs = nn.ModuleList([nn.Conv2d(width, width, 3, 1, 1, bias=False)
                                        for _ in range(depth)])
        bn = lambda: nn.BatchNorm2d(width, eps=tm.BN_EPS, momentum=tm.BN_MOMENTUM)  # noqa: E731
        self.cls_bns = nn.ModuleList([nn.ModuleList([bn() for _ in range(depth)]) for _ in range(L)])
        self.reg_bns = nn.ModuleList([nn.ModuleList([bn() for _ in range(depth)]) for _ in range(L)])
        self.cls_logits = nn.Conv2d(width, K, 3, 1, 1, bias=True)
        self.bbox_pred = nn.Conv2d(width, 4, 3, 1, 1, bias=True)
        self.centerness = nn.Conv2d(width, 1, 3, 1, 1, bias=True)
        with torch.no_grad():
            for m, b in ((self.cls_logits, -math.log((1 - prior) / prior)),
                         (self.bbox_pred, 1.0), (self.centerness, 0.0)):
                m.weight.mul_(0.01 / m.weight.std())
                m.bias.fill_(b)

    def forward(self, feats):
        L = len(feats)
        lat = [self.lat[i](f) for i, f in enumerate(feats)]
        pyr = [None] * L
        pyr[L - 1] = lat[L - 1]
        for i in range(L - 2, -1, -1):
            pyr[i] = lat[i] + F.interpolate(pyr[i + 1], scale_factor=2, mode="nearest")
        cls, box, ctr = [], [], []
        for i in range(L):
            c = r = pyr[i]
            for d in range(len(self.cls_convs)):
                c = F.relu(self.cls_bns[i][d](self.cls_convs[d](c)))
                r = F.relu(self.reg_bns[i][d](self.reg_convs[d](r)))
            cls.append(torch.flatten(self.cls_logits(c), 2))
            box.append(torch.flatten(F.relu(self.bbox_pred(r)), 2))
            ctr.append(torch.flatten(self.centerness(r), 2))
        return torch.cat(cls, 2), torch.cat(box, 2), torch.cat(ctr, 2)


class SegHead(nn.Module):
    """src/tasks/seg/seghead.h (sum fusion, relu): per level 1x1 conv + BN +
    relu to W, bilinear up to stride 4; sum; 3x3 conv + BN + relu; 1x1 conv
    (bias) to K; bilinear x4."""

    def __init__(self, in_chs, strides, K, width):
        super().__init__()
        self.lat = nn.ModuleList([nn.Sequential(conv_bn_seq(c, width, 1), nn.ReLU())
                                  for c in in_chs])
        self.up = nn.ModuleList([Upsample(s // 4, "bilinear") if s > 4 else nn.Identity()
                                 for s in strides])
        self.mix = nn.Sequential(conv_bn_seq(width, width, 3), nn.ReLU())
        self.cls = nn.Conv2d(width, K, 1, bias=True)
        self.out_up = Upsample(4, "bilinear")

    def forward(self, feats):
        x = None
        for i, f in enumerate(feats):
            y = self.up[i](self.lat[i](f))
            x = y if x is None else x + y
        return self.out_up(self.cls(self.mix(x)))


# ---- losses -----------------------------------------------------------------

def focal_loss(x, onehot, npos, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss summed over locations and classes / max(1, #pos)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, onehot, reduction="none")
    p_t = p * onehot + (1 - p) * (1 - onehot)
    a_t = alpha * onehot + (1 - alpha) * (1 - onehot)
    return (a_t * ce * (1 - p_t) ** gamma).sum() / max(1, npos)


def giou_loss(pred, tgt, w):
    """pred/tgt (M,4) l,t,r,b distances of positives, w (M,): sum w (1 - GIoU) / sum w."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = tgt.unbind(1)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * \
            (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    encl = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * \
           (torch.maximum(pt, tt) + torch.maximum(pb, tb))
    giou = inter / union - (encl - union) / encl
    return (w * (1 - giou)).sum() / w.sum().clamp_min(1e-12)


# ---- synthetic data (made once) ---------------------------------------------

def random_scenes(n, S, cats, gen):
    """1-3 rectangles per image (sides S/5 + U[0, S/2)), later on top; seg
    mask = cat + 1 under the topmost rectangle; label = cat of the largest."""
    boxes, masks, labels = [], torch.zeros(n, S, S, dtype=torch.long), []
    for i in range(n):
        m = 1 + int(torch.randint(3, (1,), generator=gen))
        bx = []
        for _ in range(m):
            w = S // 5 + int(torch.randint(S // 2, (1,), generator=gen))
            h = S // 5 + int(torch.randint(S // 2, (1,), generator=gen))
            x0 = int(torch.randint(S - w + 1, (1,), generator=gen))
            y0 = int(torch.randint(S - h + 1, (1,), generator=gen))
            c = int(torch.randint(cats, (1,), generator=gen))
            masks[i, y0:y0 + h, x0:x0 + w] = c + 1
            bx.append((float(x0), float(y0), float(w), float(h), c))
        boxes.append(bx)
        labels.append(max(bx, key=lambda b: b[2] * b[3])[4])
    return boxes, masks, torch.tensor(labels)


def fcos_targets(boxes, sizes, strides, center_radius=1.5, range_mult=4.0):
    """fb_fcos_targets: per location the smallest box that contains it, inside
    its centre region and in the level's scale range. Returns tgt_cls (N,P)
    long (-1 background), tgt_box (N,4,P), tgt_ctr (N,P)."""
    L = len(strides)
    hi = [range_mult * s for s in strides]
    hi[-1] = math.inf
    lo = [0.0] + hi[:-1]
    cls_all, box_all, ctr_all = [], [], []
    for bx in boxes:
        cls_l, box_l, ctr_l = [], [], []
        b = torch.tensor([[x, y, x + w, y + h, w * h, c] for x, y, w, h, c in bx])
        for l in range(L):
            s, n = float(strides[l]), sizes[l]
            g = (torch.arange(n, dtype=torch.float32) + 0.5) * s
            ys, xs = torch.meshgrid(g, g, indexing="ij")
            xs, ys = xs.reshape(-1, 1), ys.reshape(-1, 1)
            e = torch.stack([xs - b[:, 0], ys - b[:, 1], b[:, 2] - xs, b[:, 3] - ys], 2)
            ok = (e > 0).all(2)
            cx, cy, r = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, center_radius * s
            ok &= (xs > torch.maximum(b[:, 0], cx - r)) & (xs < torch.minimum(b[:, 2], cx + r))
            ok &= (ys > torch.maximum(b[:, 1], cy - r)) & (ys < torch.minimum(b[:, 3], cy + r))
            m = e.max(2).values
            ok &= (m >= lo[l]) & (m <= hi[l])
            area = torch.where(ok, b[:, 4].expand_as(m), torch.full_like(m, math.inf))
            best = area.argmin(1)
            pos = ok.any(1)
            d = e[torch.arange(e.shape[0]), best]  # (P_l, 4)
            cls_l.append(torch.where(pos, b[best, 5].long(), torch.full_like(best, -1)))
            box_l.append(torch.where(pos[:, None], d / s, torch.zeros_like(d)).t())
            lr = torch.minimum(d[:, 0], d[:, 2]) / torch.maximum(d[:, 0], d[:, 2])
            tb = torch.minimum(d[:, 1], d[:, 3]) / torch.maximum(d[:, 1], d[:, 3])
            ctr_l.append(torch.where(pos, torch.sqrt(lr * tb), torch.zeros_like(lr)))
        cls_all.append(torch.cat(cls_l))
        box_all.append(torch.cat(box_l, 1))
        ctr_all.append(torch.cat(ctr_l))
    return torch.stack(cls_all), torch.stack(box_all), torch.stack(ctr_all)


# ---- the whole search network -----------------------------------------------

class SearchNet(nn.Module):
    def __init__(self, arch, a, tasks):
        super().__init__()
        self.trunk = Supernet(arch, a.width, a.input)
        t = self.trunk
        n = len(t.paths_c)
        heads = arch.get("heads", {})
        self.cls_path = heads.get("cls", n - 1)
        self.det_paths = heads.get("det", list(range(max(0, n - 3), n)))
        self.seg_paths = heads.get("seg", list(range(n)))
        for key, ps in (("det", self.det_paths), ("seg", self.seg_paths)):
            if not isinstance(ps, list) or not all(isinstance(p, int) and 0 <= p < n for p in ps):
                raise ValueError("heads.%s: a list of path indices < %d" % (key, n))
        if not isinstance(self.cls_path, int) or not 0 <= self.cls_path < n:
            raise ValueError("heads.cls: a path index < %d" % n)
        stride = lambda p: a.input // t.paths_h[p]  # noqa: E731
        self.tasks = tasks
        self.cls = ClsHead(arch, t.paths_c[self.cls_path], a.width, a.classes) \
            if "cls" in tasks else None
        depth = 2 if a.det_depth == 0 else max(0, a.det_depth)
        self.det = FCOSHead([t.paths_c[p] for p in self.det_paths], a.classes, a.det_width,
                            depth) if "det" in tasks else None
        self.det_strides = [stride(p) for p in self.det_paths]
        self.det_sizes = [t.paths_h[p] for p in self.det_paths]
        self.seg = SegHead([t.paths_c[p] for p in self.seg_paths],
                           [stride(p) for p in self.seg_paths], a.classes + 1,
                           a.seg_width) if "seg" in tasks else None

    def forward(self, x, mask):
        f = self.trunk(x, mask)
        out = {}
        if self.cls is not None:
            out["cls"] = self.cls(f[self.cls_path])
        if self.det is not None:
            out["det"] = self.det([f[p] for p in self.det_paths])
        if self.seg is not None:
            out["seg"] = self.seg([f[p] for p in self.seg_paths])
        return out


def task_losses(out, tg):
    loss = {}
    if "cls" in out:
        loss["cls"] = F.cross_entropy(out["cls"], tg["label"])
    if "det" in out:
        cls, box, ctr = out["det"]
        pos, npos = tg["pos"], tg["npos"]
        lc = focal_loss(cls, tg["onehot"], npos)
        pred = box.permute(0, 2, 1)[pos]
        lb = giou_loss(pred, tg["box_pos"], tg["ctr_pos"])
        lctr = F.binary_cross_entropy_with_logits(ctr[:, 0][pos], tg["ctr_pos"],
                                                  reduction="sum") / max(1, npos)
        loss["det"] = lc + lb + lctr
    if "seg" in out:
        loss["seg"] = F.cross_entropy(out["seg"], tg["seg"], ignore_index=255)
    return loss


def make_targets(net, a, gen):
    boxes, masks, labels = random_scenes(a.batch, a.input, a.classes, gen)
    tg = {"label": labels, "seg": masks}
    if net.det is not None:
        cls, box, ctr = fcos_targets(boxes, net.det_sizes, net.det_strides)
        pos = cls >= 0
        onehot = torch.zeros(a.batch, a.classes, cls.shape[1])
        onehot.scatter_(1, cls.clamp_min(0)[:, None], 1.0)
        onehot *= pos[:, None].float()
        tg.update(pos=pos, npos=int(pos.sum()), onehot=onehot,
                  box_pos=box.permute(0, 2, 1)[pos], ctr_pos=ctr[pos])
    return tg


class ArchDist:
    """src/search/archdist.h: T Bernoulli distributions over B bits, mixture
    proposal, importance weights, REINFORCE with an EMA baseline and Adam."""

    def __init__(self, T, B, p0=0.6, lr=1e-2):
        self.T, self.B, self.lr = T, B, lr
        self.theta = torch.full((T, B), math.log(p0 / (1 - p0)), dtype=torch.float64)
        self.m = torch.zeros_like(self.theta)
        self.v = torch.zeros_like(self.theta)
        self.steps = 0
        self.baseline = [None] * T

    def sample(self, gen):
        u = int(torch.randint(self.T, (1,), generator=gen))
        return torch.bernoulli(torch.sigmoid(self.theta[u]), generator=gen)

    def importance(self, a):
        logp = (a * F.logsigmoid(self.theta) + (1 - a) * F.logsigmoid(-self.theta)).sum(1)
        return (self.T * torch.exp(logp - torch.logsumexp(logp, 0))).tolist()

    def step(self, a, rho, reward):
        g = torch.zeros_like(self.theta)
        for t in range(self.T):
            if self.baseline[t] is None:
                self.baseline[t] = reward[t]
            g[t] = rho[t] * (reward[t] - self.baseline[t]) * (a - torch.sigmoid(self.theta[t]))
            self.baseline[t] = 0.9 * self.baseline[t] + 0.1 * reward[t]
        self.steps += 1
        self.m.mul_(0.9).add_(g, alpha=0.1)
        self.v.mul_(0.999).addcmul_(g, g, value=0.001)
        mh = self.m / (1 - 0.9 ** self.steps)
        vh = self.v / (1 - 0.999 ** self.steps)
        self.theta -= self.lr * mh / (vh.sqrt() + 1e-8)


def count(net, mask, input_size):
    """(MACs, conv+linear weights) of the masked network with its heads at
    batch 1, fbnet's convention."""
    macs, seen = [0], {}

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs[0] += out.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            macs[0] += out.numel() * mod.in_features
        else:
            macs[0] += inp[0].numel()
        if not isinstance(mod, nn.AdaptiveAvgPool2d):
            seen[id(mod)] = mod.weight.numel()

    hs = [m.register_forward_hook(hook) for m in net.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear, nn.AdaptiveAvgPool2d))]
    was = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, input_size, input_size), mask)
    net.train(was)
    for h in hs:
        h.remove()
    return macs[0], sum(seen.values())


def parse_bits(s, B):
    if len(s) != B or any(ch not in "01" for ch in s):
        raise ValueError("--bits: '%s' must be %d characters 0/1 (the supernet has %d bits)"
                         % (s, B, B))
    return [ch == "1" for ch in s]


def make_optimizer(net, lr=2e-3, wd=0.05):
    decay, no_decay = [], []
    for m in net.modules():
        for name, p in m.named_parameters(recurse=False):
            is_w = name == "weight" and isinstance(m, (nn.Conv2d, nn.Linear))
            (decay if is_w else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def time_steps(net, a, mask_list, gen):
    x = torch.randn(a.batch, 3, a.input, a.input, generator=gen)
    tg = make_targets(net, a, gen)
    opt = make_optimizer(net)
    # parameters of skipped blocks get no gradient and AdamW leaves them alone,
    # as fbnet's optimizer skips the slots no active node uses
    dist = ArchDist(len(net.tasks), net.trunk.n_bits)
    forced = torch.tensor([1.0 if b else 0.0 for b in mask_list], dtype=torch.float64)
    net.train()

    def step():
        dist.sample(gen)
        rho = dist.importance(forced)
        out = net(x, mask_list)
        losses = task_losses(out, tg)
        total = sum(rho[i] * losses[t] for i, t in enumerate(net.tasks))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        dist.step(forced, rho, [float(losses[t]) for t in net.tasks])

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch")
    ap.add_argument("--bits", default=None,
                    help="architecture bit string (default all ones); with --count several, "
                         "separated by commas")
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tasks", default="cls,det,seg")
    ap.add_argument("--det-width", type=int, default=32)
    ap.add_argument("--det-depth", type=int, default=1, help="tower depth (0: 2, -1: none)")
    ap.add_argument("--seg-width", type=int, default=16)
    ap.add_argument("--classes", type=int, default=10,
                    help="categories: cls K, det K, seg K + 1 (fbnet bench search --cats)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", action="store_true",
                    help="print MACs per image of each --bits mask (one JSON line each), no timing")
    ap.add_argument("--list-bits", action="store_true", help="print the bit names (JSON) first")
    ap.add_argument("--json", action="store_true", help="only the JSON line")
    a = ap.parse_args(argv)
    if (a.input < 32 or a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 1
            or a.classes < 1 or a.det_width < 1 or a.seg_width < 1 or not a.width > 0):
        ap.error("--input >= 32, --batch, --steps, --threads, --classes, head widths >= 1, "
                 "--warmup >= 0, --width > 0")
    tasks = [t for t in a.tasks.split(",") if t]
    if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
        ap.error("--tasks: a comma-separated list of cls, det, seg")
    tasks = [t for t in TASKS if t in tasks]

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    try:
        arch = tm.load_arch(a.arch)
        net = SearchNet(arch, a, tasks)
        B = net.trunk.n_bits
        specs = (a.bits or "1" * B).split(",") if a.count else [a.bits or "1" * B]
        masks = [parse_bits(s, B) for s in specs]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("torch_supernet: %s: %s" % (a.arch, e), file=sys.stderr)
        return 1
    if a.list_bits:
        print(json.dumps({"n_bits": B, "bits": net.trunk.bit_names}))
    if a.count:
        for s, m in zip(specs, masks):
            macs, params = count(net, m, a.input)
            print(json.dumps({"bits": s, "macs_per_image": macs, "params": params}))
        return 0

    macs, params = count(net, masks[0], a.input)
    gen = torch.Generator().manual_seed(a.seed + 1)
    times = time_steps(net, a, masks[0], gen)
    sec = statistics.median(times)
    if not a.json:
        print("torch_supernet: %s, %d bits (%d kept), tasks %s, %d px, width %g, batch %d, "
              "%d threads: %.4f s/step (median of %d)" % (a.arch, B, sum(masks[0]),
              ",".join(tasks), a.input, a.width, a.batch, a.threads, sec, a.steps),
              file=sys.stderr)
    print(json.dumps({
        "framework": "torch " + torch.__version__, "sec_per_step": sec,
        "sec_per_step_mean": sum(times) / len(times), "sec_per_step_min": min(times),
        "macs_per_image": macs, "params": params,
        "params_all": sum(p.numel() for p in net.parameters()),
        "rss_after_import_mb": round(IMPORT_RSS_KB / 1024.0),
        "tasks": ",".join(tasks), "batch": a.batch, "input": a.input, "width": a.width,
        "threads": a.threads, "steps": a.steps, "warmup": a.warmup}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
