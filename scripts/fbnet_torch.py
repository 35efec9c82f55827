"""The PyTorch model of fbnet's arch files: one definition of every block,
row, fusion term and head, shared by

    scripts/fbnet_to_torch.py   loads fbnet's weights into it (strict) and
                                compares its outputs with `fbnet infer`
    bench/torch_model.py        MAC/param counts of a chain arch
    bench/torch_bench.py        times its training/inference steps
    bench/torch_supernet.py     times one search step of a masked supernet

FBNet(arch, options(...)) builds chain arch files (docs/arch-files.md) and
multi-path ones (docs/supernet.md) with the heads of options' tasks, as
src/nn/net.c, src/nn/mp_build.c and src/nn/blocks.c build them; state_dict
keys are fbnet's parameter names ("stage3.2.dw.bn.running_mean",
"s2.f0to1.down0.dw.conv.weight", "fcos.cls_tower.0.bn.s8.weight").
forward(x, mask=None) returns an OrderedDict of the head outputs under the
names `fbnet infer` writes (OUTPUTS); mask (one bool per searchable bit of a
"search": true arch, in the order of model.bit_names) skips blocks (the
identity) and fusion terms (left out of their sum); None keeps every bit.

Conventions (those of the C code): BN eps 1e-5 and momentum 0.1 (PyTorch's
meaning); padding k/2 unless the arch gives dw_pad and the padding is
"explicit"; a residual block's last BN starts with gamma 0 and the FCOS
output convs with weight std 0.01 and the prior biases (fbnet's
initialisation; loaded weights replace them); global pools are
nn.AdaptiveAvgPool2d modules so that count() sees them; upsampling is
nearest (FCOS top-down, cross-path terms) or bilinear with
align_corners=False (segmentation), integer factors.

count(model, x) gives the MACs in the published convention: multiply-adds
of every conv and linear layer run plus one per input element of every
global average pool run. Only torch and the standard library are used.
"""
import collections
import json
import math
import re

import torch
import torch.nn.functional as F
from torch import nn


class ArchError(ValueError):
    """An arch file or build option fbnet would not build."""


TASK_CLS, TASK_DET, TASK_SEG = 1, 2, 4  # include/fbnet.h FB_TASK_*
TASKS = ("cls", "det", "seg")
TASK_BITS = {"cls": TASK_CLS, "det": TASK_DET, "seg": TASK_SEG}
OUTPUTS = {"cls": ("cls.logits",), "det": ("det.cls", "det.box", "det.ctr"),
           "seg": ("seg.logits",)}

BN_EPS = 1e-5      # fb_attr_default(): eps 1e-5, momentum 0.1, PyTorch's convention
BN_MOMENTUM = 0.1
MAX_LOG2_STRIDE = 8


def options(input_size=224, width=1.0, in_channels=3, num_classes=1000, padding="standard",
            tasks=TASK_CLS, num_cats=0, num_seg_classes=0, det_width=0, det_depth=0,
            seg_width=0, cls_pool="auto"):
    """The build options of FBNet (those of fb_weights_build_opts; 0 for a
    head width or depth: fbnet's default). cls_pool: "auto" pools before the
    classifier only when its input is not 1x1 (fbnet); "always" also pools a
    1x1 map (a no-op that the published MAC counts include)."""
    if padding not in ("standard", "explicit"):
        raise ArchError("padding '%s' (standard or explicit)" % padding)
    if cls_pool not in ("auto", "always"):
        raise ArchError("cls_pool '%s' (auto or always)" % cls_pool)
    return {"input_size": input_size, "width": width, "in_channels": in_channels,
            "num_classes": num_classes, "padding": padding,
            "standard_padding": padding == "standard", "tasks": tasks, "num_cats": num_cats,
            "num_seg_classes": num_seg_classes, "det_width": det_width, "det_depth": det_depth,
            "seg_width": seg_width, "cls_pool": cls_pool}


def load_arch(path):
    with open(path) as f:
        return json.load(f)


# ---- blocks (src/nn/blocks.c) ------------------------------------------------

def div8(n):
    """fb_div8 (src/nn/net.c): n when a multiple of 8; else round(n/8) half up
    (0 -> 1) times 8, plus 8 when that is below 0.95 n; never below 8."""
    if not n > 0:
        return 8
    n = min(float(n), 1e9)
    if n == math.floor(n) and math.fmod(n, 8.0) == 0.0:
        return int(n)
    r = max(1.0, math.floor(n / 8.0 + 0.5))
    v = 8.0 * r
    if v < 0.95 * n:
        v += 8.0
    return 8 if v < 8.0 else int(v)


def conv_out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def hswish(x):
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def hsigmoid(x):
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


ACTS = {None: lambda x: x, "hswish": hswish, "relu": F.relu}


def batchnorm(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def upsample(x, scale, mode):
    if scale == 1:
        return x
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


class ConvBN(nn.Module):
    """conv [+ BN] [+ act]; parameters "conv.*" and "bn.*" as fbnet's parts
    "<part>.conv", "<part>.bn"."""

    def __init__(self, c_in, c_out, k, stride=1, pad=None, groups=1, bias=False, bn=True,
                 act=None):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2 if pad is None else pad,
                              groups=groups, bias=bias)
        self.bn = batchnorm(c_out) if bn else None
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return ACTS[self.act](x)


class SE(nn.Module):
    """se.pool, se.fc1 (bias) + hswish, se.fc2 (bias), hsigmoid, se.mul."""

    def __init__(self, c, m):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, m, 1, bias=True)
        self.fc2 = nn.Conv2d(m, c, 1, bias=True)

    def forward(self, x):
        return x * hsigmoid(self.fc2(hswish(self.fc1(self.pool(x)))))


class IRBlock(nn.Module):
    """ir_k<k>[_sehsig]_hs with expansion e: [pw] dw [se] pwl [res]; a
    residual block's pwl BN starts with gamma 0 (FB_NODE_ZERO_GAMMA)."""

    def __init__(self, c_in, c_out, k, stride, e, se, pad):
        super().__init__()
        mid = div8(c_in * e)
        self.pw = ConvBN(c_in, mid, 1, act="hswish") if mid != c_in else None
        self.dw = ConvBN(mid, mid, k, stride, pad, groups=mid, act="hswish")
        self.se = SE(mid, div8(math.floor(mid * 0.25 / e))) if se else None
        self.pwl = ConvBN(mid, c_out, 1)
        self.residual = c_in == c_out and stride == 1
        if self.residual:
            nn.init.zeros_(self.pwl.bn.weight)

    def forward(self, x):
        y = self.pw(x) if self.pw is not None else x
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.pwl(y)
        return x + y if self.residual else y


class PoolHead(nn.Module):
    """ir_pool_hs: pw.conv/bn + hswish to div8(C_in e), pool, fc.conv (no
    bias, no BN) + hswish."""

    def __init__(self, c_in, c_out, e):
        super().__init__()
        mid = div8(c_in * e)
        self.pw = ConvBN(c_in, mid, 1, act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = ConvBN(mid, c_out, 1, bn=False, act="hswish")

    def forward(self, x):
        return self.fc(self.pool(self.pw(x)))


_OP_RE = re.compile(r"^(?:(conv)_k([1-9]\d*)_hs|(ir)_k([1-9]\d*)(_sehsig)?_hs|(ir_pool_hs))$")


def op_known(op):
    """fb_block_known: conv_k<k>_hs, ir_k<k>[_sehsig]_hs (k odd, 1..11, no
    leading zero), ir_pool_hs."""
    m = _OP_RE.match(op)
    if not m:
        return False
    k = int(m.group(2) or m.group(4) or 1)
    return m.group(6) is not None or (1 <= k <= 11 and k % 2 == 1)


def make_block(op, shape, c_out, stride, e, dw_pad, where):
    """One block on an input of shape (c, h, w) -> (module, output shape), as
    fb_block_add; e <= 0 means "not given", dw_pad < 0 means k/2."""
    if not op_known(op):
        raise ArchError("%s: unknown block op '%s'" % (where, op))
    m = _OP_RE.match(op)
    c, h, w = shape
    if c_out < 1 or stride not in (1, 2):
        raise ArchError("%s: C_out %d, stride %d" % (where, c_out, stride))

    def fits(k, pad):
        if h + 2 * pad < k or w + 2 * pad < k:
            raise ArchError("%s: input %dx%d is too small for a %dx%d conv with padding %d "
                            "(stride %d)" % (where, h, w, k, k, pad, stride))
        return conv_out(h, k, stride, pad), conv_out(w, k, stride, pad)

    if m.group(1):  # the stem conv: with bias
        k = int(m.group(2))
        oh, ow = fits(k, k // 2)
        return ConvBN(c, c_out, k, stride, k // 2, bias=True, act="hswish"), (c_out, oh, ow)
    if m.group(3):
        k = int(m.group(4))
        e = e if e > 0 else 1.0
        pad = dw_pad if dw_pad >= 0 else k // 2
        oh, ow = fits(k, pad)
        if c == c_out and stride == 1 and (oh, ow) != (h, w):
            raise ArchError("%s: residual add needs equal sizes, got %dx%d and %dx%d (dw_pad %d)"
                            % (where, h, w, oh, ow, pad))
        return IRBlock(c, c_out, k, stride, e, m.group(5) is not None, pad), (c_out, oh, ow)
    e = e if e > 0 else 6.0
    return PoolHead(c, c_out, e), (c_out, 1, 1)


# ---- arch files (src/nn/arch.c, src/nn/mp_arch.c) -------------------------------

class Row(object):
    __slots__ = ("op", "c_out", "stride", "repeat", "e", "dw_pad")


def parse_row(row, where):
    """[op, C_out, stride, repeat, {args}] -> Row (e 0 / dw_pad -1: not
    given), with fb_arch_parse_row's rules and messages."""
    if not isinstance(row, list) or not 4 <= len(row) <= 5:
        raise ArchError("%s: a row has 4 or 5 elements [op, C_out, stride, repeat, {args}], got %s"
                        % (where, json.dumps(row)))
    r = Row()
    r.op, r.c_out, r.stride, r.repeat = row[:4]
    args = row[4] if len(row) == 5 else {}
    if not isinstance(r.op, str):
        raise ArchError("%s: element 1 (op) must be a string, got %s" % (where, json.dumps(r.op)))
    if not op_known(r.op):
        raise ArchError("%s: unknown op '%s' (known: conv_k<k>_hs, ir_k<k>_hs, "
                        "ir_k<k>_sehsig_hs, ir_pool_hs; k odd, 1..11)" % (where, r.op))

    def is_int(v, lo, hi):
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    if not is_int(r.c_out, 1, 65536):
        raise ArchError("%s: element 2 (C_out) must be an integer in [1, 65536]" % where)
    if not is_int(r.stride, 1, 2):
        raise ArchError("%s: element 3 (stride) must be 1 or 2" % where)
    if not is_int(r.repeat, 1, 1000):
        raise ArchError("%s: element 4 (repeat) must be an integer in [1, 1000]" % where)
    if not isinstance(args, dict) or set(args) - {"e", "dw_pad"}:
        raise ArchError("%s: args must be an object with \"e\" and/or \"dw_pad\"" % where)
    r.e = float(args.get("e", 0.0))
    r.dw_pad = int(args.get("dw_pad", -1))
    if r.op == "ir_pool_hs" and (r.stride != 1 or r.repeat != 1):
        raise ArchError("%s: ir_pool_hs needs stride 1 and repeat 1" % where)
    return r


def fusion_terms(stage, n_paths, where):
    """The stage's cross terms as a set of (from, to)."""
    f = stage.get("fusion", "none")
    if f == "all":
        return {(a, b) for a in range(n_paths) for b in range(n_paths) if a != b}
    if f == "none":
        return set()
    if not isinstance(f, list):
        raise ArchError("%s.fusion: \"all\", \"none\" or a list of [from, to]" % where)
    out = set()
    for t in f:
        if (not isinstance(t, list) or len(t) != 2
                or not all(isinstance(v, int) and 0 <= v < n_paths for v in t) or t[0] == t[1]):
            raise ArchError("%s.fusion: bad term %s" % (where, json.dumps(t)))
        out.add((t[0], t[1]))
    return out


class CrossTerm(nn.Module):
    """T(from -> to) of a fusion: up = pw (1x1 conv + BN) + nearest
    upsample; down = per factor of 2 down<s>.dw (dw 3x3 stride 2 + BN) and
    down<s>.pw (1x1 conv + BN; intermediate steps keep the source width)."""

    def __init__(self, c_from, c_to, frm, to):
        super().__init__()
        self.scale = 1 << (frm - to) if frm > to else 0
        if self.scale:
            self.pw = ConvBN(c_from, c_to, 1)
        for s in range(to - frm):
            step = nn.Module()
            step.dw = ConvBN(c_from, c_from, 3, 2, 1, groups=c_from)
            step.pw = ConvBN(c_from, c_to if s + 1 == to - frm else c_from, 1)
            self.add_module("down%d" % s, step)

    def out_size(self, h, w):
        if self.scale:
            return h * self.scale, w * self.scale
        for _ in self.children():
            h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        return h, w

    def forward(self, x):
        if self.scale:
            return upsample(self.pw(x), self.scale, "nearest")
        for step in self.children():
            x = step.pw(step.dw(x))
        return x


# ---- heads (src/nn/net.c, src/tasks/det/fcos.c, src/tasks/seg/seghead.c) -------

class FCOSHead(nn.Module):
    """fcos.lateral.s<S>.{conv,bn}; top-down p_l = lat_l + up2(p_{l+1});
    fcos.{cls,reg}_tower.<d>.conv shared across levels with one BN per level
    (fcos.<kind>_tower.<d>.bn.s<S>) and relu; shared fcos.cls_logits,
    fcos.bbox_pred (+ relu), fcos.centerness (weights std 0.01, biases
    -log((1-p)/p), 1, 0); outputs concatenated over the levels (level-major,
    row-major)."""

    def __init__(self, in_chs, strides, K, width, depth, prior=0.01):
        super().__init__()
        self.keys = ["s%d" % s for s in strides]
        self.lateral = nn.ModuleDict({k: ConvBN(c, width, 1) for k, c in zip(self.keys, in_chs)})
        for kind in ("cls", "reg"):
            tower = nn.ModuleList()
            for _ in range(depth):
                t = nn.Module()
                t.conv = nn.Conv2d(width, width, 3, 1, 1, bias=False)
                t.bn = nn.ModuleDict({k: batchnorm(width) for k in self.keys})
                tower.append(t)
            self.add_module(kind + "_tower", tower)
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
        pyr = [self.lateral[k](f) for k, f in zip(self.keys, feats)]
        for l in range(L - 2, -1, -1):
            pyr[l] = pyr[l] + upsample(pyr[l + 1], 2, "nearest")
        cls, box, ctr = [], [], []
        for l, key in enumerate(self.keys):
            c = r = pyr[l]
            for t in self.cls_tower:
                c = F.relu(t.bn[key](t.conv(c)))
            for t in self.reg_tower:
                r = F.relu(t.bn[key](t.conv(r)))
            cls.append(torch.flatten(self.cls_logits(c), 2))
            box.append(torch.flatten(F.relu(self.bbox_pred(r)), 2))
            ctr.append(torch.flatten(self.centerness(r), 2))
        return torch.cat(cls, 2), torch.cat(box, 2), torch.cat(ctr, 2)


class SegHead(nn.Module):
    """seg.lat<i>.{conv,bn} + relu, bilinear up to stride 4; sum; seg.mix
    3x3 + BN + relu; seg.cls 1x1 (bias); bilinear x4 (align_corners=False)."""

    def __init__(self, in_chs, strides, K, width):
        super().__init__()
        self.ups = [s // 4 for s in strides]
        for i, c in enumerate(in_chs):
            self.add_module("lat%d" % i, ConvBN(c, width, 1, act="relu"))
        self.mix = ConvBN(width, width, 3, act="relu")
        self.cls = nn.Conv2d(width, K, 1, bias=True)

    def forward(self, feats):
        x = None
        for i, f in enumerate(feats):
            y = upsample(getattr(self, "lat%d" % i)(f), self.ups[i], "bilinear")
            x = y if x is None else x + y
        return upsample(self.cls(self.mix(x)), 4, "bilinear")


# ---- the network ----------------------------------------------------------------

class FBNet(nn.Module):
    """An fbnet network (chain or multi-path arch) with the heads of
    opts["tasks"] (see options()). forward(x, mask=None) -> OrderedDict of
    head outputs (OUTPUTS) restricted to self.outputs. A "search": true
    multi-path arch has searchable bits (self.bit_names, as `fbnet flops`
    lists them): every block with equal input and output shape in the stem
    and the paths, and every fusion term."""

    def __init__(self, arch, opts, where="arch"):
        super().__init__()
        self.name = arch.get("name", "?") if isinstance(arch, dict) else "?"
        self.opts = dict(opts)
        self.tasks = opts["tasks"]
        self.outputs = [n for t in TASKS if self.tasks & TASK_BITS[t] for n in OUTPUTS[t]]
        self.bit_names = []
        self._where = where
        self._steps = []   # forward program: (kind, module, src, dst, bit) over value slots
        self._n_vals = 1   # slot 0: the input
        self._shapes = [(opts["in_channels"], opts["input_size"], opts["input_size"])]
        self.cls_from = self.det_from = self.seg_from = None
        self._search = False
        if not isinstance(arch, dict):
            raise ArchError("%s: the top level must be an object" % where)
        if "stages" in arch:
            self._build_multipath(arch)
        elif "blocks" in arch:
            self._build_chain(arch)
        else:
            raise ArchError("%s: neither \"blocks\" (chain) nor \"stages\" (multi-path)" % where)
        self._build_heads()

    @property
    def n_bits(self):
        return len(self.bit_names)

    # -- program helpers: every value is a slot, every step a module call --
    def _child(self, name, module):
        try:
            self.add_module(name, module)
        except (KeyError, TypeError) as e:
            raise ArchError("%s: '%s' cannot be a PyTorch module name (%s)"
                            % (self._where, name, e))
        return module

    def _new(self, shape):
        self._shapes.append(shape)
        self._n_vals += 1
        return self._n_vals - 1

    def _call(self, module, src, shape, bit=-1):
        dst = self._new(shape)
        self._steps.append(("call", module, src, dst, bit))
        return dst

    def _new_bit(self, name):
        self.bit_names.append(name)
        return len(self.bit_names) - 1

    def _block(self, container, r, stride, src, name, searchable=False):
        c_out = div8(r.c_out * self.opts["width"])
        dw_pad = -1 if self.opts["standard_padding"] else r.dw_pad
        mod, shape = make_block(r.op, self._shapes[src], c_out, stride, r.e, dw_pad,
                                "%s: block %s" % (self._where, name))
        container.append(mod)
        same = c_out == self._shapes[src][0] and stride == 1
        bit = self._new_bit(name) if searchable and same else -1
        return self._call(mod, src, shape, bit)

    # -- chain arch files (net.c add_rows / pick_taps) --
    def _build_chain(self, arch):
        blocks = arch["blocks"]
        if not isinstance(blocks, list) or not blocks:
            raise ArchError("%s: \"blocks\" must be a non-empty array of stages" % self._where)
        rows = []  # (stage, row)
        for bi, st in enumerate(blocks):
            if (not isinstance(st, dict) or not isinstance(st.get("stage"), str)
                    or not isinstance(st.get("rows"), list) or not st["rows"]):
                raise ArchError("%s: blocks[%d] must be {\"stage\": NAME, \"rows\": [...]}"
                                % (self._where, bi))
            for ri, row in enumerate(st["rows"]):
                rows.append((st["stage"], parse_row(row, "%s: stage %s row %d"
                                                    % (self._where, st["stage"], ri))))
        has_cls = self.tasks & TASK_CLS
        x, log2 = 0, 0
        at_stride = {}
        stage_last = {}
        stages = {}
        for stage, r in rows:
            if stage == "head" and not has_cls:
                continue
            if stage not in stages:
                stages[stage] = self._child(stage, nn.ModuleList())
            cont = stages[stage]
            for k in range(r.repeat):
                s = r.stride if k == 0 else 1
                x = self._block(cont, r, s, x, "%s.%d" % (stage, len(cont)))
                if s == 2:
                    log2 += 1
                if stage != "head" and log2 <= MAX_LOG2_STRIDE:
                    at_stride[log2] = x
                    stage_last[stage] = x
        self.cls_from = x
        S = self.opts["input_size"]
        heads = arch.get("heads", {})

        def taps(task, want):
            named = heads.get(task)
            if named:
                out = []
                for name in named:
                    if name not in stage_last:
                        raise ArchError("%s: heads.%s: stage %s has no block output"
                                        % (self._where, task, name))
                    v = stage_last[name]
                    out.append((v, S // self._shapes[v][1]))
                return out
            out = []
            for s in want:
                l2 = int(math.ceil(math.log2(s)))
                if l2 > MAX_LOG2_STRIDE or l2 not in at_stride:
                    raise ArchError("%s: the %s head needs a feature map at stride %d, which the "
                                    "arch does not produce" % (self._where, task, s))
                out.append((at_stride[l2], s))
            return out
        if self.tasks & TASK_DET:
            self.det_from = taps("det", (8, 16, 32))
        if self.tasks & TASK_SEG:
            self.seg_from = taps("seg", (4, 8, 16, 32))

    # -- multi-path arch files (mp_build.c) --
    def _chain_rows(self, cont, rows, x, prefix):
        for r in rows:
            for k in range(r.repeat):
                x = self._block(cont, r, r.stride if k == 0 else 1, x,
                                "%s.%d" % (prefix, len(cont)), searchable=self._search)
        return x

    def _trunk_rows(self, rows, where):
        out = [parse_row(r, "%s row %d" % (where, i)) for i, r in enumerate(rows)]
        for i, r in enumerate(out):
            if r.op == "ir_pool_hs":
                raise ArchError("%s row %d: ir_pool_hs belongs in \"head\"" % (where, i))
        return out

    def _build_multipath(self, arch):
        W = self._where
        S = self.opts["input_size"]
        self._search = bool(arch.get("search", False))
        if S % 32:
            raise ArchError("%s: a multi-path network needs an input size that is a multiple of "
                            "32 (got %d)" % (W, S))
        stem_rows = arch.get("stem")
        if not isinstance(stem_rows, list) or not stem_rows:
            raise ArchError("%s: \"stem\" (a non-empty array of rows) is missing" % W)
        stem = self._child("stem", nn.ModuleList())
        x = self._chain_rows(stem, self._trunk_rows(stem_rows, "%s: stem" % W), 0, "stem")
        stages = arch.get("stages")
        if not isinstance(stages, list) or not stages:
            raise ArchError("%s: \"stages\" must be a non-empty array" % W)
        cur = []
        for si, st in enumerate(stages):
            where = "%s: stages[%d]" % (W, si)
            if not isinstance(st, dict):
                raise ArchError("%s must be an object" % where)
            sm = self._child("s%d" % si, nn.Module())
            if "open" in st:
                r = self._trunk_rows([st["open"]], where + ".open")[0]
                src = x if not cur else cur[-1]
                c_out = div8(r.c_out * self.opts["width"])
                dw_pad = -1 if self.opts["standard_padding"] else r.dw_pad
                mod, shape = make_block(r.op, self._shapes[src], c_out, r.stride, r.e, dw_pad,
                                        "%s: block s%d.open" % (W, si))
                sm.add_module("open", mod)
                cur.append(self._call(mod, src, shape))
            elif si == 0:
                raise ArchError("%s needs \"open\": the block that opens path 0" % where)
            paths = st.get("paths")
            if not isinstance(paths, list) or len(paths) != len(cur):
                raise ArchError("%s.paths must be an array of %d row lists (one per path)"
                                % (where, len(cur)))
            for p, rows in enumerate(paths):
                if not isinstance(rows, list):
                    raise ArchError("%s.paths[%d] must be an array of rows" % (where, p))
                cont = nn.ModuleList()
                sm.add_module("p%d" % p, cont)
                cur[p] = self._chain_rows(cont, self._trunk_rows(rows, "%s.paths[%d]" % (where, p)),
                                          cur[p], "s%d.p%d" % (si, p))
            terms = fusion_terms(st, len(cur), where)
            before = list(cur)
            for to in range(len(cur)):
                ins = [before[to]]
                target = self._shapes[before[to]]
                for frm in range(len(cur)):
                    if (frm, to) not in terms:
                        continue
                    name = "f%dto%d" % (frm, to)
                    c_from, h, w = self._shapes[before[frm]]
                    m = CrossTerm(c_from, target[0], frm, to)
                    sm.add_module(name, m)
                    shape = (target[0],) + m.out_size(h, w)
                    if shape[1:] != target[1:]:
                        raise ArchError("%s: s%d.%s: path %d is %dx%d but the term from path %d "
                                        "gives %dx%d" % (W, si, name, to, target[1], target[2],
                                                         frm, shape[1], shape[2]))
                    bit = self._new_bit("s%d.%s" % (si, name)) if self._search else -1
                    ins.append(self._call(m, before[frm], shape, bit))
                if len(ins) > 1:
                    dst = self._new(target)
                    self._steps.append(("sum", None, ins, dst, -1))
                    cur[to] = dst
        n = len(cur)
        heads = arch.get("heads", {})
        if not isinstance(heads, dict) or set(heads) - {"cls", "det", "seg"}:
            raise ArchError("%s: \"heads\" must be an object with cls, det, seg" % W)

        def path_list(task, default):
            ps = heads.get(task, default)
            if (not isinstance(ps, list) or not ps
                    or not all(isinstance(p, int) and 0 <= p < n for p in ps)
                    or any(b <= a for a, b in zip(ps, ps[1:]))):
                raise ArchError("%s: heads.%s must be increasing path indices < %d" % (W, task, n))
            return [(cur[p], S // self._shapes[cur[p]][1]) for p in ps]
        cls_path = heads.get("cls", n - 1)
        if not isinstance(cls_path, int) or not 0 <= cls_path < n:
            raise ArchError("%s: heads.cls must be a path index < %d" % (W, n))
        x = cur[cls_path]
        if self.tasks & TASK_CLS and "head" in arch:
            r = parse_row(arch["head"], "%s: head" % W)
            if r.op != "ir_pool_hs":
                raise ArchError("%s: \"head\" must be an ir_pool_hs row" % W)
            head = self._child("head", nn.ModuleList())
            c_out = div8(r.c_out * self.opts["width"])
            mod, shape = make_block(r.op, self._shapes[x], c_out, 1, r.e, -1, "%s: head.0" % W)
            head.append(mod)
            x = self._call(mod, x, shape)
        self.cls_from = x
        if self.tasks & TASK_DET:
            self.det_from = path_list("det", list(range(max(0, n - 3), n)))
        if self.tasks & TASK_SEG:
            self.seg_from = path_list("seg", list(range(n)))

    # -- heads (net.c fb_net_add_*_head) --
    def _build_heads(self):
        o, W = self.opts, self._where
        S = o["input_size"]
        if self.tasks & TASK_CLS:
            c = self._shapes[self.cls_from][0]
            self._pool_always = o.get("cls_pool", "auto") == "always"
            self._child("pool", nn.AdaptiveAvgPool2d(1))
            self._child("classifier", nn.Linear(c, o["num_classes"], bias=True))
        if self.tasks & TASK_DET:
            K = o["num_cats"]
            width = o["det_width"] if o["det_width"] > 0 else 64
            depth = 2 if o["det_depth"] == 0 else max(0, o["det_depth"])
            feats = self.det_from
            if K < 1 or not 1 <= len(feats) <= 5:
                raise ArchError("%s: fcos: %d categories, %d levels" % (W, K, len(feats)))
            strides = [s for _, s in feats]
            if any(b <= a for a, b in zip(strides, strides[1:])) or strides[0] < 1:
                raise ArchError("%s: fcos: strides must be positive and increasing: %s"
                                % (W, strides))
            for l in range(len(feats) - 1):
                a, b = self._shapes[feats[l][0]], self._shapes[feats[l + 1][0]]
                if a[1] != 2 * b[1] or a[2] != 2 * b[2]:
                    raise ArchError("%s: fcos: top_down needs each level twice the size of the "
                                    "next (level %d is %dx%d, level %d is %dx%d)"
                                    % (W, l, a[1], a[2], l + 1, b[1], b[2]))
            self.det_levels = [(s, self._shapes[v][1], self._shapes[v][2]) for v, s in feats]
            self._child("fcos", FCOSHead([self._shapes[v][0] for v, _ in feats], strides, K,
                                         width, depth))
        if self.tasks & TASK_SEG:
            K = o["num_seg_classes"]
            width = o["seg_width"] if o["seg_width"] > 0 else 32
            if not 1 <= K <= 255 or not 1 <= len(self.seg_from) <= 8 or S % 4:
                raise ArchError("%s: seg head: %d classes (1..255), %d levels (1..8), input %d"
                                % (W, K, len(self.seg_from), S))
            for i, (v, s) in enumerate(self.seg_from):
                sh = self._shapes[v]
                if s < 4 or s % 4 or (s // 4) & (s // 4 - 1) or S % s or sh[1:] != (S // s, S // s):
                    raise ArchError("%s: seg head: level %d: feature %dx%d at stride %d (input %d; "
                                    "strides 4 * 2^k dividing the input)" % (W, i, sh[1], sh[2],
                                                                             s, S))
            self._child("seg", SegHead([self._shapes[v][0] for v, _ in self.seg_from],
                                       [s for _, s in self.seg_from], K, width))

    def forward(self, x, mask=None):
        vals = [None] * self._n_vals
        vals[0] = x
        for kind, mod, src, dst, bit in self._steps:
            if kind == "sum":
                acc = vals[src[0]]
                for s in src[1:]:
                    if vals[s] is not None:  # None: a skipped fusion term
                        acc = acc + vals[s]
                vals[dst] = acc
            elif bit >= 0 and mask is not None and not mask[bit]:
                vals[dst] = None if isinstance(mod, CrossTerm) else vals[src]
            else:
                vals[dst] = mod(vals[src])
        out = collections.OrderedDict()
        if self.tasks & TASK_CLS:
            y = vals[self.cls_from]
            if self._pool_always or y.shape[2] != 1 or y.shape[3] != 1:
                y = self.pool(y)
            out["cls.logits"] = self.classifier(torch.flatten(y, 1))
        if self.tasks & TASK_DET:
            out["det.cls"], out["det.box"], out["det.ctr"] = self.fcos(
                [vals[v] for v, _ in self.det_from])
        if self.tasks & TASK_SEG:
            out["seg.logits"] = self.seg([vals[v] for v, _ in self.seg_from])
        return collections.OrderedDict((k, v) for k, v in out.items() if k in self.outputs)


# ---- counting -------------------------------------------------------------------

def count(model, *inputs):
    """Runs model(*inputs) once (eval mode, no grad) and returns (macs,
    weights, rows): MACs in the published convention (multiply-adds of every
    conv and linear layer run, plus one per input element of every global
    average pool run), the conv and linear weights of the layers that ran
    (each layer once), and per call (name, input shape, output shape, MACs)."""
    rows, weights = [], {}

    def hook(name):
        def f(mod, inp, out):
            x = inp[0]
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                macs = out.numel() * (mod.in_channels // mod.groups) * k
                weights[name] = mod.weight.numel()
            elif isinstance(mod, nn.Linear):
                macs = out.numel() * mod.in_features
                weights[name] = mod.weight.numel()
            else:  # global average pool
                macs = x.numel()
            rows.append((name, tuple(x.shape), tuple(out.shape), macs))
        return f

    handles = [mod.register_forward_hook(hook(name)) for name, mod in model.named_modules()
               if isinstance(mod, (nn.Conv2d, nn.Linear, nn.AdaptiveAvgPool2d))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return sum(r[3] for r in rows), sum(weights.values()), rows
