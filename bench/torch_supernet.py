#!/usr/bin/python3
"""PyTorch model of one FBNetV5 search step on a multi-path arch file.

The PyTorch side of bench/compare_search.sh: the supernet of a multi-path
arch file (docs/supernet.md) with one sampled architecture (a bit string),
the task heads fbnet attaches in a search (classifier, FCOS-like detection
head, light segmentation head) and their losses, trained with AdamW:

    /usr/bin/python3 bench/torch_supernet.py archs/fbnetv5_supernet.json --bits 1011...
    /usr/bin/python3 bench/torch_supernet.py archs/fbnetv5_supernet.json --bits 1011... --count

The network is scripts/fbnet_torch.py's FBNet (the PyTorch model of fbnet's
arch files, also behind scripts/fbnet_to_torch.py) built with the search's
heads; this file adds what is specific to timing a search step: synthetic
targets, the losses, the architecture distribution and the timing loop.
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

import torch
import torch.nn.functional as F
from torch import nn

# peak RSS of the interpreter with torch loaded, before any model exists (KiB on Linux)
IMPORT_RSS_KB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scripts"))
import fbnet_torch as ft  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import timed  # noqa: E402

TASKS = ft.TASKS


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


# ---- the search network -----------------------------------------------------

def search_net(arch, a, tasks):
    """scripts/fbnet_torch.py's FBNet of the multi-path arch with the heads a
    search attaches (standard padding; FCOS and segmentation heads of width
    --det-width / --seg-width on the arch's paths, cls K, det K, seg K + 1)."""
    if "stages" not in arch:
        raise ValueError("not a multi-path arch file (no \"stages\")")
    opts = ft.options(input_size=a.input, width=a.width, in_channels=3, num_classes=a.classes,
                      padding="standard", tasks=sum(ft.TASK_BITS[t] for t in tasks),
                      num_cats=a.classes, num_seg_classes=a.classes + 1,
                      det_width=a.det_width, det_depth=a.det_depth, seg_width=a.seg_width)
    return ft.FBNet(arch, opts)


def task_losses(out, tg):
    """The task losses of the head outputs (fbnet infer's names)."""
    loss = {}
    if "cls.logits" in out:
        loss["cls"] = F.cross_entropy(out["cls.logits"], tg["label"])
    if "det.cls" in out:
        cls, box, ctr = out["det.cls"], out["det.box"], out["det.ctr"]
        pos, npos = tg["pos"], tg["npos"]
        lc = focal_loss(cls, tg["onehot"], npos)
        pred = box.permute(0, 2, 1)[pos]
        lb = giou_loss(pred, tg["box_pos"], tg["ctr_pos"])
        lctr = F.binary_cross_entropy_with_logits(ctr[:, 0][pos], tg["ctr_pos"],
                                                  reduction="sum") / max(1, npos)
        loss["det"] = lc + lb + lctr
    if "seg.logits" in out:
        loss["seg"] = F.cross_entropy(out["seg.logits"], tg["seg"], ignore_index=255)
    return loss


def make_targets(net, a, gen):
    boxes, masks, labels = random_scenes(a.batch, a.input, a.classes, gen)
    tg = {"label": labels, "seg": masks}
    if net.tasks & ft.TASK_DET:
        cls, box, ctr = fcos_targets(boxes, [h for _, h, _ in net.det_levels],
                                     [s for s, _, _ in net.det_levels])
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
    """(MACs, conv+linear weights of the layers run) of the masked network
    with its heads at batch 1, fbnet's convention."""
    macs, weights, _ = ft.count(net, torch.zeros(1, 3, input_size, input_size), mask)
    return macs, weights


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


def time_steps(net, a, tasks, mask_list, gen):
    x = torch.randn(a.batch, 3, a.input, a.input, generator=gen)
    tg = make_targets(net, a, gen)
    opt = make_optimizer(net)
    # parameters of skipped blocks get no gradient and AdamW leaves them alone,
    # as fbnet's optimizer skips the slots no active node uses
    dist = ArchDist(len(tasks), net.n_bits)
    forced = torch.tensor([1.0 if b else 0.0 for b in mask_list], dtype=torch.float64)
    net.train()

    def step():
        dist.sample(gen)
        rho = dist.importance(forced)
        out = net(x, mask_list)
        losses = task_losses(out, tg)
        total = sum(rho[i] * losses[t] for i, t in enumerate(tasks))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        dist.step(forced, rho, [float(losses[t]) for t in tasks])

    return timed(step, a.warmup, a.steps)


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
        arch = ft.load_arch(a.arch)
        net = search_net(arch, a, tasks)
        B = net.n_bits
        specs = (a.bits or "1" * B).split(",") if a.count else [a.bits or "1" * B]
        masks = [parse_bits(s, B) for s in specs]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("torch_supernet: %s: %s" % (a.arch, e), file=sys.stderr)
        return 1
    if a.list_bits:
        print(json.dumps({"n_bits": B, "bits": net.bit_names}))
    if a.count:
        for s, m in zip(specs, masks):
            macs, params = count(net, m, a.input)
            print(json.dumps({"bits": s, "macs_per_image": macs, "params": params}))
        return 0

    macs, params = count(net, masks[0], a.input)
    gen = torch.Generator().manual_seed(a.seed + 1)
    times = time_steps(net, a, tasks, masks[0], gen)
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
