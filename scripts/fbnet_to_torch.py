#!/usr/bin/python3
"""Builds the PyTorch module of any fbnet network and loads fbnet's weights
(OUT/weights.safetensors, or a search's supernet.safetensors) into it.

    /usr/bin/python3 scripts/fbnet_to_torch.py W [--arch A] [--task cls|det|seg]
        [--compare DIR] [--check-fmnist N] [--save model.pt]

The arch comes from the weights' "__metadata__" (arch_json) unless --arch is
given; the build options (input_size, width, in_channels, padding, tasks,
num_classes, num_cats, num_seg_classes, det_width, det_depth, seg_width)
always come from the metadata. Chain arch files (docs/arch-files.md) and
multi-path ones (docs/supernet.md: the supernet with every bit kept, and
every derived architecture) are built with every head the weights have:
the classifier, the FCOS detection head (src/tasks/det/fcos.h) and the
segmentation head (src/tasks/seg/seghead.h), exactly as src/nn/net.c,
src/nn/mp_build.c and src/nn/blocks.c build them. The module's state_dict
keys are fbnet's parameter names ("stage3.2.dw.bn.running_mean",
"s2.f0to1.down0.dw.conv.weight", "fcos.cls_tower.0.bn.s8.weight"); the load
is strict: every tensor of the file must have a place, every parameter and
buffer of the module must come from the file (BN num_batches_tracked, which
fbnet does not keep and eval never reads, excepted), shapes must agree, and
the error names each tensor that does not.

FBNet(...)(x) in eval mode returns an OrderedDict of the head outputs under
the names `fbnet infer` writes (tools/cmd_infer.c):
    cls.logits [N, K]       before softmax
    det.cls    [N, K, P]    logits before sigmoid, P = sum of the levels' H*W
    det.box    [N, 4, P]    l, t, r, b in units of the level's stride (relu'd)
    det.ctr    [N, 1, P]    centerness logits
    seg.logits [N, K, S, S]
--task T keeps only that head's outputs (the module still holds every head).

--compare DIR (repeatable) runs the module on the input of `fbnet infer ...
--out DIR` (the raw float32 file named in DIR/index.json, or --compare-input)
and prints, per output, the largest absolute difference to fbnet's, fbnet's
largest magnitude and their ratio max_abs / max(magnitude, 1e-3), then a JSON
line per DIR; the exit status is 1 when a ratio exceeds --tol (1e-3), with a
message naming the output.
--check-fmnist N evaluates a 1-channel classifier on the first N
Fashion-MNIST test images, preprocessed exactly like `fbnet eval`
(src/data/augment.c), and prints {"images", "top1", "top5"} as the last line.

Conventions checked against the C code: BN eps 1e-5 and momentum 0.1 with
PyTorch's meaning (running = (1 - m) running + m batch, unbiased variance),
eval mode uses the running statistics; padding k/2 unless the arch gives
dw_pad and the weights were trained with --padding explicit; upsampling is
nearest (FCOS top-down, cross-path terms) or bilinear with
align_corners=False (segmentation), integer factors.

The file is read with the `safetensors` package when it is installed
(safetensors.torch.load_file) and otherwise with the small reader below
(struct + json + numpy), since Debian does not package safetensors.
Exit status: 0 ok, 1 error (bad file, names or shapes that do not match, a
comparison beyond --tol).
"""
import argparse
import collections
import gzip
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:  # the real package, when present
    from safetensors import safe_open as _st_safe_open
    from safetensors.torch import load_file as _st_load_file
except ImportError:  # Debian: no python3-safetensors
    _st_safe_open = None
    _st_load_file = None

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_MEAN = 0.2860  # src/data/augment.h
FMNIST_STD = 0.3530

TASK_CLS, TASK_DET, TASK_SEG = 1, 2, 4  # include/fbnet.h FB_TASK_*
TASK_BITS = {"cls": TASK_CLS, "det": TASK_DET, "seg": TASK_SEG}
OUTPUTS = {"cls": ("cls.logits",), "det": ("det.cls", "det.box", "det.ctr"),
           "seg": ("seg.logits",)}


class LoadError(Exception):
    """A problem with the input files; main() prints it and exits 1."""


# ---- safetensors ------------------------------------------------------------

# safetensors dtype -> (numpy dtype, bytes per element); BF16 is widened below
_DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U64": ("<u8", 8), "U32": ("<u4", 4), "U16": ("<u2", 2), "U8": ("u1", 1),
    "BOOL": ("?", 1),
}
_MAX_HEADER = 100 * 1024 * 1024


def read_safetensors(path):
    """Pure-Python reader. Returns ({name: np.ndarray}, metadata dict).
    Layout: u64 little-endian header length N, N bytes of JSON
    {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
    {str: str}}, then the data; offsets are relative to the data start."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise LoadError("%s: cannot read: %s" % (path, e.strerror or e))
    if len(blob) < 8:
        raise LoadError("%s: truncated: %d bytes, a safetensors file starts with an 8-byte "
                        "header length" % (path, len(blob)))
    (n,) = struct.unpack("<Q", blob[:8])
    if n < 2 or n > _MAX_HEADER:
        raise LoadError("%s: header length %d is implausible (not a safetensors file?)" % (path, n))
    if 8 + n > len(blob):
        raise LoadError("%s: truncated: header needs %d bytes, the file has %d after the length"
                        % (path, n, len(blob) - 8))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise LoadError("%s: header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise LoadError("%s: header must be a JSON object" % path)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise LoadError("%s: __metadata__ must map strings to strings" % path)
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        where = "%s: tensor '%s'" % (path, name)
        if not isinstance(info, dict):
            raise LoadError("%s: entry must be an object" % where)
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPES:
            raise LoadError("%s: unknown dtype %r" % (where, dtype))
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise LoadError("%s: shape must be a list of non-negative integers" % where)
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) for o in offs) or not 0 <= offs[0] <= offs[1]):
            raise LoadError("%s: data_offsets must be [begin, end] with 0 <= begin <= end" % where)
        np_dtype, size = _DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != count * size:
            raise LoadError("%s: data_offsets %s hold %d bytes, shape %s of %s needs %d"
                            % (where, offs, offs[1] - offs[0], shape, dtype, count * size))
        if offs[1] > len(data):
            raise LoadError("%s: truncated: data ends at byte %d, the file has %d data bytes"
                            % (where, offs[1], len(data)))
        a = np.frombuffer(data[offs[0]:offs[1]], dtype=np_dtype).reshape(shape)
        if dtype == "BF16":  # the upper half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = a.copy()
    return tensors, meta


def load_weights(path):
    """({name: torch.Tensor}, metadata): the safetensors package when it is
    installed, else read_safetensors()."""
    if _st_load_file is not None:
        try:
            sd = _st_load_file(path)
            with _st_safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # SafetensorError, OSError, ...
            read_safetensors(path)  # raises with a message naming what is wrong
            raise LoadError("%s: safetensors: %s" % (path, e))
        return sd, dict(meta), "safetensors %s" % getattr(sys.modules.get("safetensors"),
                                                            "__version__", "?")
    arrays, meta = read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, meta, "built-in reader"


# ---- blocks (src/nn/blocks.c) ------------------------------------------------

BN_EPS = 1e-5      # fb_attr_default(): eps 1e-5, momentum 0.1, PyTorch's convention
BN_MOMENTUM = 0.1
MAX_LOG2_STRIDE = 8


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
        self.fc1 = nn.Conv2d(c, m, 1, bias=True)
        self.fc2 = nn.Conv2d(m, c, 1, bias=True)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * hsigmoid(self.fc2(hswish(self.fc1(s))))


class IRBlock(nn.Module):
    """ir_k<k>[_sehsig]_hs: [pw] dw [se] pwl [res]."""

    def __init__(self, c_in, c_out, k, stride, e, se, pad):
        super().__init__()
        mid = div8(c_in * e)
        self.pw = ConvBN(c_in, mid, 1, act="hswish") if mid != c_in else None
        self.dw = ConvBN(mid, mid, k, stride, pad, groups=mid, act="hswish")
        self.se = SE(mid, div8(math.floor(mid * 0.25 / e))) if se else None
        self.pwl = ConvBN(mid, c_out, 1)
        self.residual = c_in == c_out and stride == 1

    def forward(self, x):
        y = self.pw(x) if self.pw is not None else x
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.pwl(y)
        return x + y if self.residual else y


class PoolHead(nn.Module):
    """ir_pool_hs: pw.conv/bn + hswish, pool, fc.conv (no bias, no BN) + hswish."""

    def __init__(self, c_in, c_out, e):
        super().__init__()
        mid = div8(c_in * e)
        self.pw = ConvBN(c_in, mid, 1, act="hswish")
        self.fc = ConvBN(mid, c_out, 1, bn=False, act="hswish")

    def forward(self, x):
        return self.fc(self.pw(x).mean(dim=(2, 3), keepdim=True))


_OP_RE = re.compile(r"^(?:(conv)_k(\d+)_hs|(ir)_k(\d+)(_sehsig)?_hs|(ir_pool_hs))$")


def make_block(op, shape, c_out, stride, e, dw_pad, where):
    """One block on an input of shape (c, h, w) -> (module, output shape), as
    fb_block_add; e <= 0 means "not given", dw_pad < 0 means k/2."""
    m = _OP_RE.match(op)
    if not m:
        raise LoadError("%s: unknown block op '%s'" % (where, op))
    c, h, w = shape
    if c_out < 1 or stride not in (1, 2):
        raise LoadError("%s: C_out %d, stride %d" % (where, c_out, stride))

    def fits(k, pad):
        if h + 2 * pad < k or w + 2 * pad < k:
            raise LoadError("%s: input %dx%d is too small for a %dx%d conv with padding %d "
                            "(stride %d)" % (where, h, w, k, k, pad, stride))
        return conv_out(h, k, stride, pad), conv_out(w, k, stride, pad)

    if m.group(1):
        k = int(m.group(2))
        oh, ow = fits(k, k // 2)
        return ConvBN(c, c_out, k, stride, k // 2, bias=True, act="hswish"), (c_out, oh, ow)
    if m.group(3):
        k = int(m.group(4))
        if k < 1 or k > 11 or k % 2 == 0:
            raise LoadError("%s: unknown block op '%s' (k odd, 1..11)" % (where, op))
        e = e if e > 0 else 1.0
        pad = dw_pad if dw_pad >= 0 else k // 2
        oh, ow = fits(k, pad)
        if c == c_out and stride == 1 and (oh, ow) != (h, w):
            raise LoadError("%s: residual add needs equal sizes, got %dx%d and %dx%d (dw_pad %d)"
                            % (where, h, w, oh, ow, pad))
        return IRBlock(c, c_out, k, stride, e, m.group(5) is not None, pad), (c_out, oh, ow)
    e = e if e > 0 else 6.0
    return PoolHead(c, c_out, e), (c_out, 1, 1)


# ---- arch files (src/nn/arch.c, src/nn/mp_arch.c) -------------------------------

class Row(object):
    __slots__ = ("op", "c_out", "stride", "repeat", "e", "dw_pad")


def parse_row(row, where):
    """[op, C_out, stride, repeat, {args}] -> Row (e 0 / dw_pad -1: not given)."""
    if not isinstance(row, list) or not 4 <= len(row) <= 5:
        raise LoadError("%s: a row has 4 or 5 elements [op, C_out, stride, repeat, {args}]"
                        % where)
    r = Row()
    r.op, r.c_out, r.stride, r.repeat = row[:4]
    args = row[4] if len(row) == 5 else {}
    ints = (r.c_out, r.stride, r.repeat)
    if (not isinstance(r.op, str) or not _OP_RE.match(r.op)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
            or not 1 <= r.c_out <= 65536 or r.stride not in (1, 2) or not 1 <= r.repeat <= 1000):
        raise LoadError("%s: bad row %s" % (where, json.dumps(row)))
    if not isinstance(args, dict) or set(args) - {"e", "dw_pad"}:
        raise LoadError("%s: args must be an object with \"e\" and/or \"dw_pad\"" % where)
    r.e = float(args.get("e", 0.0))
    r.dw_pad = int(args.get("dw_pad", -1))
    if r.op == "ir_pool_hs" and (r.stride != 1 or r.repeat != 1):
        raise LoadError("%s: ir_pool_hs needs stride 1 and repeat 1" % where)
    return r


def fusion_terms(stage, n_paths, where):
    """The stage's cross terms as a set of (from, to)."""
    f = stage.get("fusion", "none")
    if f == "all":
        return {(a, b) for a in range(n_paths) for b in range(n_paths) if a != b}
    if f == "none":
        return set()
    if not isinstance(f, list):
        raise LoadError("%s.fusion: \"all\", \"none\" or a list of [from, to]" % where)
    out = set()
    for t in f:
        if (not isinstance(t, list) or len(t) != 2
                or not all(isinstance(v, int) and 0 <= v < n_paths for v in t) or t[0] == t[1]):
            raise LoadError("%s.fusion: bad term %s" % (where, json.dumps(t)))
        out.add((t[0], t[1]))
    return out


# ---- heads (src/nn/net.c, src/tasks/det/fcos.c, src/tasks/seg/seghead.c) -------

class FCOSHead(nn.Module):
    """fcos.lateral.s<S>.{conv,bn}; top-down p_l = lat_l + up2(p_{l+1});
    fcos.{cls,reg}_tower.<d>.conv shared across levels with one BN per level
    (fcos.<kind>_tower.<d>.bn.s<S>) and relu; shared fcos.cls_logits,
    fcos.bbox_pred (+ relu), fcos.centerness; outputs concatenated over the
    levels (level-major, row-major)."""

    def __init__(self, in_chs, strides, K, width, depth):
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

    def forward(self, feats):
        L = len(feats)
        pyr = [self.lateral[k](f) for k, f in zip(self.keys, feats)]
        for l in range(L - 2, -1, -1):
            pyr[l] = pyr[l] + F.interpolate(pyr[l + 1], scale_factor=2, mode="nearest")
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

    @staticmethod
    def up(x, s):
        return x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear",
                                              align_corners=False)

    def forward(self, feats):
        x = None
        for i, f in enumerate(feats):
            y = self.up(getattr(self, "lat%d" % i)(f), self.ups[i])
            x = y if x is None else x + y
        return self.up(self.cls(self.mix(x)), 4)


# ---- the network ----------------------------------------------------------------

class FBNet(nn.Module):
    """An fbnet network (chain or multi-path arch) with the heads of `tasks`.
    opts: the build options (see build_options). forward(x) -> OrderedDict
    of head outputs (OUTPUTS)."""

    def __init__(self, arch, opts, where="arch"):
        super().__init__()
        self.name = arch.get("name", "?") if isinstance(arch, dict) else "?"
        self.opts = dict(opts)
        self.tasks = opts["tasks"]
        self.outputs = [n for t in ("cls", "det", "seg") if self.tasks & TASK_BITS[t]
                        for n in OUTPUTS[t]]
        self._where = where
        self._steps = []   # forward program: (kind, args) over value slots
        self._n_vals = 1   # slot 0: the input
        self._shapes = [(opts["in_channels"], opts["input_size"], opts["input_size"])]
        self.cls_from = self.det_from = self.seg_from = None
        if not isinstance(arch, dict):
            raise LoadError("%s: the top level must be an object" % where)
        if "stages" in arch:
            self._build_multipath(arch)
        elif "blocks" in arch:
            self._build_chain(arch)
        else:
            raise LoadError("%s: neither \"blocks\" (chain) nor \"stages\" (multi-path)" % where)
        self._build_heads()

    # -- program helpers: every value is a slot, every step a module call --
    def _child(self, name, module):
        try:
            self.add_module(name, module)
        except (KeyError, TypeError) as e:
            raise LoadError("%s: '%s' cannot be a PyTorch module name (%s)"
                            % (self._where, name, e))
        return module

    def _new(self, shape):
        self._shapes.append(shape)
        self._n_vals += 1
        return self._n_vals - 1

    def _call(self, module, src, shape):
        dst = self._new(shape)
        self._steps.append(("call", module, src, dst))
        return dst

    def _block(self, container, r, stride, src, name):
        c_out = div8(r.c_out * self.opts["width"])
        dw_pad = -1 if self.opts["standard_padding"] else r.dw_pad
        mod, shape = make_block(r.op, self._shapes[src], c_out, stride, r.e, dw_pad,
                                "%s: block %s" % (self._where, name))
        container.append(mod)
        return self._call(mod, src, shape)

    # -- chain arch files (net.c add_rows / pick_taps) --
    def _build_chain(self, arch):
        blocks = arch["blocks"]
        if not isinstance(blocks, list) or not blocks:
            raise LoadError("%s: \"blocks\" must be a non-empty array of stages" % self._where)
        rows = []  # (stage, row)
        for bi, st in enumerate(blocks):
            if (not isinstance(st, dict) or not isinstance(st.get("stage"), str)
                    or not isinstance(st.get("rows"), list) or not st["rows"]):
                raise LoadError("%s: blocks[%d] must be {\"stage\": NAME, \"rows\": [...]}"
                                % (self._where, bi))
            for ri, row in enumerate(st["rows"]):
                rows.append((st["stage"], parse_row(row, "%s: stage %s row %d"
                                                    % (self._where, st["stage"], ri))))
        has_cls = self.tasks & TASK_CLS
        x, log2 = 0, 0
        at_stride = {}
        stage_last = {}
        stages = {}
        for i, (stage, r) in enumerate(rows):
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
                        raise LoadError("%s: heads.%s: stage %s has no block output"
                                        % (self._where, task, name))
                    v = stage_last[name]
                    out.append((v, S // self._shapes[v][1]))
                return out
            out = []
            for s in want:
                l2 = int(math.ceil(math.log2(s)))
                if l2 > MAX_LOG2_STRIDE or l2 not in at_stride:
                    raise LoadError("%s: the %s head needs a feature map at stride %d, which the "
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
                x = self._block(cont, r, r.stride if k == 0 else 1, x, "%s.%d" % (prefix, len(cont)))
        return x

    def _cross(self, stage_mod, name, src, frm, to, c_to):
        c_from, h, w = self._shapes[src]
        m = nn.Module()
        if frm > to:
            m.pw = ConvBN(c_from, c_to, 1)
            scale = 1 << (frm - to)
            shape = (c_to, h * scale, w * scale)
            m.scale = scale
        else:
            for s in range(to - frm):
                step = nn.Module()
                c_out = c_to if s + 1 == to - frm else c_from
                step.dw = ConvBN(c_from, c_from, 3, 2, 1, groups=c_from)
                step.pw = ConvBN(c_from, c_out, 1)
                m.add_module("down%d" % s, step)
                h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
            shape = (c_to, h, w)
            m.scale = 0
        stage_mod.add_module(name, m)
        dst = self._new(shape)
        self._steps.append(("cross", m, src, dst))
        return dst

    def _build_multipath(self, arch):
        W = self._where
        S = self.opts["input_size"]
        if S % 32:
            raise LoadError("%s: a multi-path network needs an input size that is a multiple of "
                            "32 (got %d)" % (W, S))
        stem_rows = arch.get("stem")
        if not isinstance(stem_rows, list) or not stem_rows:
            raise LoadError("%s: \"stem\" (a non-empty array of rows) is missing" % W)
        stem = self._child("stem", nn.ModuleList())
        x = self._chain_rows(stem, [parse_row(r, "%s: stem row %d" % (W, i))
                                    for i, r in enumerate(stem_rows)], 0, "stem")
        stages = arch.get("stages")
        if not isinstance(stages, list) or not stages:
            raise LoadError("%s: \"stages\" must be a non-empty array" % W)
        cur = []
        for si, st in enumerate(stages):
            where = "%s: stages[%d]" % (W, si)
            if not isinstance(st, dict):
                raise LoadError("%s must be an object" % where)
            sm = self._child("s%d" % si, nn.Module())
            if "open" in st:
                r = parse_row(st["open"], where + ".open")
                src = x if not cur else cur[-1]
                c_out = div8(r.c_out * self.opts["width"])
                dw_pad = -1 if self.opts["standard_padding"] else r.dw_pad
                mod, shape = make_block(r.op, self._shapes[src], c_out, r.stride, r.e, dw_pad,
                                        "%s: block s%d.open" % (W, si))
                sm.add_module("open", mod)
                cur.append(self._call(mod, src, shape))
            elif si == 0:
                raise LoadError("%s needs \"open\": the block that opens path 0" % where)
            paths = st.get("paths")
            if not isinstance(paths, list) or len(paths) != len(cur):
                raise LoadError("%s.paths must be an array of %d row lists (one per path)"
                                % (where, len(cur)))
            for p, rows in enumerate(paths):
                if not isinstance(rows, list):
                    raise LoadError("%s.paths[%d] must be an array of rows" % (where, p))
                cont = nn.ModuleList()
                sm.add_module("p%d" % p, cont)
                cur[p] = self._chain_rows(cont, [parse_row(r, "%s.paths[%d] row %d" % (where, p, j))
                                                 for j, r in enumerate(rows)],
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
                    y = self._cross(sm, name, before[frm], frm, to, target[0])
                    if self._shapes[y][1:] != target[1:]:
                        raise LoadError("%s: s%d.%s: path %d is %dx%d but the term from path %d "
                                        "gives %dx%d" % (W, si, name, to, target[1], target[2],
                                                         frm, self._shapes[y][1],
                                                         self._shapes[y][2]))
                    ins.append(y)
                if len(ins) > 1:
                    dst = self._new(target)
                    self._steps.append(("sum", None, ins, dst))
                    cur[to] = dst
        n = len(cur)
        heads = arch.get("heads", {})
        if not isinstance(heads, dict) or set(heads) - {"cls", "det", "seg"}:
            raise LoadError("%s: \"heads\" must be an object with cls, det, seg" % W)

        def path_list(task, default):
            ps = heads.get(task, default)
            if (not isinstance(ps, list) or not ps
                    or not all(isinstance(p, int) and 0 <= p < n for p in ps)
                    or any(b <= a for a, b in zip(ps, ps[1:]))):
                raise LoadError("%s: heads.%s must be increasing path indices < %d" % (W, task, n))
            return [(cur[p], S // self._shapes[cur[p]][1]) for p in ps]
        cls_path = heads.get("cls", n - 1)
        if not isinstance(cls_path, int) or not 0 <= cls_path < n:
            raise LoadError("%s: heads.cls must be a path index < %d" % (W, n))
        x = cur[cls_path]
        if self.tasks & TASK_CLS and "head" in arch:
            r = parse_row(arch["head"], "%s: head" % W)
            if r.op != "ir_pool_hs":
                raise LoadError("%s: \"head\" must be an ir_pool_hs row" % W)
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
            c, h, w = self._shapes[self.cls_from]
            self._cls_pool = (h, w) != (1, 1)
            self._child("classifier", nn.Linear(c, o["num_classes"], bias=True))
        if self.tasks & TASK_DET:
            K = o["num_cats"]
            width = o["det_width"] if o["det_width"] > 0 else 64
            depth = 2 if o["det_depth"] == 0 else max(0, o["det_depth"])
            feats = self.det_from
            if K < 1 or not 1 <= len(feats) <= 5:
                raise LoadError("%s: fcos: %d categories, %d levels" % (W, K, len(feats)))
            strides = [s for _, s in feats]
            if any(b <= a for a, b in zip(strides, strides[1:])) or strides[0] < 1:
                raise LoadError("%s: fcos: strides must be positive and increasing: %s"
                                % (W, strides))
            for l in range(len(feats) - 1):
                a, b = self._shapes[feats[l][0]], self._shapes[feats[l + 1][0]]
                if a[1] != 2 * b[1] or a[2] != 2 * b[2]:
                    raise LoadError("%s: fcos: top_down needs each level twice the size of the "
                                    "next (level %d is %dx%d, level %d is %dx%d)"
                                    % (W, l, a[1], a[2], l + 1, b[1], b[2]))
            self.det_levels = [(s, self._shapes[v][1], self._shapes[v][2]) for v, s in feats]
            self._child("fcos", FCOSHead([self._shapes[v][0] for v, _ in feats], strides, K,
                                         width, depth))
        if self.tasks & TASK_SEG:
            K = o["num_seg_classes"]
            width = o["seg_width"] if o["seg_width"] > 0 else 32
            if not 1 <= K <= 255 or not 1 <= len(self.seg_from) <= 8 or S % 4:
                raise LoadError("%s: seg head: %d classes (1..255), %d levels (1..8), input %d"
                                % (W, K, len(self.seg_from), S))
            for i, (v, s) in enumerate(self.seg_from):
                sh = self._shapes[v]
                if s < 4 or s % 4 or (s // 4) & (s // 4 - 1) or S % s or sh[1:] != (S // s, S // s):
                    raise LoadError("%s: seg head: level %d: feature %dx%d at stride %d (input %d; "
                                    "strides 4 * 2^k dividing the input)" % (W, i, sh[1], sh[2],
                                                                             s, S))
            self._child("seg", SegHead([self._shapes[v][0] for v, _ in self.seg_from],
                                       [s for _, s in self.seg_from], K, width))

    def forward(self, x):
        vals = [None] * self._n_vals
        vals[0] = x
        for kind, mod, src, dst in self._steps:
            if kind == "call":
                vals[dst] = mod(vals[src])
            elif kind == "sum":
                acc = vals[src[0]]
                for s in src[1:]:
                    acc = acc + vals[s]
                vals[dst] = acc
            elif mod.scale:  # cross term up
                vals[dst] = F.interpolate(mod.pw(vals[src]), scale_factor=mod.scale,
                                          mode="nearest")
            else:  # cross term down
                y = vals[src]
                for step in mod.children():
                    y = step.pw(step.dw(y))
                vals[dst] = y
        out = collections.OrderedDict()
        if self.tasks & TASK_CLS:
            y = vals[self.cls_from]
            if self._cls_pool:
                y = y.mean(dim=(2, 3), keepdim=True)
            out["cls.logits"] = self.classifier(torch.flatten(y, 1))
        if self.tasks & TASK_DET:
            out["det.cls"], out["det.box"], out["det.ctr"] = self.fcos(
                [vals[v] for v, _ in self.det_from])
        if self.tasks & TASK_SEG:
            out["seg.logits"] = self.seg([vals[v] for v, _ in self.seg_from])
        return collections.OrderedDict((k, v) for k, v in out.items() if k in self.outputs)


# ---- loading ----------------------------------------------------------------------

def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def load_into(model, weights, path):
    """Strict load of fbnet tensors {name: tensor} into model (names are the
    state_dict keys). fbnet stores (C,1,1,1) slots as (C,) and some 1x1
    slots squeezed, so shapes are compared without their 1s, then reshaped.
    Raises LoadError naming every unknown, missing or mis-shaped tensor.
    Returns (n_entries, n_num_batches_tracked_filled)."""
    want = model.state_dict()
    sd, unknown, bad = {}, [], []
    for name, t in weights.items():
        if name not in want:
            unknown.append(name)
            continue
        ref = want[name]
        if (_squeezed(t.shape) != _squeezed(ref.shape) or t.numel() != ref.numel()):
            bad.append("%s: file %s, model %s" % (name, tuple(t.shape), tuple(ref.shape)))
            continue
        sd[name] = t.reshape(ref.shape).to(ref.dtype)
    filled = 0
    for key, v in want.items():
        if key not in sd and key.endswith(".num_batches_tracked"):
            sd[key] = v.clone()
            filled += 1
    missing = [k for k in want if k not in sd and k not in weights]
    problems = []

    def few(names):
        return ", ".join(names[:8]) + (" ... (%d in all)" % len(names) if len(names) > 8 else "")
    if unknown:
        problems.append("%d tensor(s) of the file with no place in the model: %s"
                        % (len(unknown), few(unknown)))
    if missing:
        problems.append("%d model tensor(s) not in the file: %s" % (len(missing), few(missing)))
    if bad:
        problems.append("shape mismatch: " + "; ".join(bad[:8]))
    if problems:
        raise LoadError("%s: the weights do not match the model built from the arch file: %s"
                        % (path, " | ".join(problems)))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise LoadError("load_state_dict(strict=True): %s" % e)
    return len(sd), filled


def build_options(meta, a):
    """The build options from the weights' metadata (fb_weights_build_opts);
    command-line values fill in what old metadata lacks."""
    def get(key, conv, cli, default=None):
        if key in meta:
            try:
                return conv(meta[key])
            except ValueError:
                raise LoadError("%s: __metadata__.%s = %r is not a valid value"
                                % (a.weights, key, meta[key]))
        if cli is not None:
            return cli
        if default is not None:
            return default
        raise LoadError("%s: __metadata__ has no '%s'; pass it on the command line"
                        % (a.weights, key))
    o = {
        "input_size": get("input_size", int, a.input),
        "width": get("width", float, a.width),
        "in_channels": get("in_channels", int, a.in_channels),
        "num_classes": get("num_classes", int, a.classes),
        "padding": get("padding", str, a.padding),
        "tasks": get("tasks", int, None, TASK_CLS),  # fb_net_build: 0 -> cls
        "num_cats": get("num_cats", int, None, 0),
        "num_seg_classes": get("num_seg_classes", int, None, 0),
        "det_width": get("det_width", int, None, 0),
        "det_depth": get("det_depth", int, None, 0),
        "seg_width": get("seg_width", int, None, 0),
    }
    if o["tasks"] == 0:
        o["tasks"] = TASK_CLS
    if o["padding"] not in ("standard", "explicit"):
        raise LoadError("%s: padding '%s' (standard or explicit)" % (a.weights, o["padding"]))
    o["standard_padding"] = o["padding"] == "standard"
    if not (1 <= o["input_size"] <= 16384 and 1 <= o["in_channels"] <= 4096
            and 1 <= o["num_classes"] <= 1000000 and 0 < o["width"] <= 16
            and math.isfinite(o["width"]) and 1 <= o["tasks"] <= 7):
        raise LoadError("%s: bad build options %s" % (a.weights, o))
    return o


def heads_text(model):
    o, parts = model.opts, []
    if model.tasks & TASK_CLS:
        parts.append("cls (%d classes)" % o["num_classes"])
    if model.tasks & TASK_DET:
        parts.append("det (FCOS, %d categories, width %d, tower depth %d, levels %s)"
                     % (o["num_cats"], model.fcos.cls_logits.in_channels,
                        len(model.fcos.cls_tower),
                        "/".join("s%d %dx%d" % lv for lv in model.det_levels)))
    if model.tasks & TASK_SEG:
        parts.append("seg (%d classes, width %d, levels at strides %s)"
                     % (o["num_seg_classes"], model.seg.cls.in_channels,
                        "/".join(str(s) for _, s in model.seg_from)))
    return ", ".join(parts)


def read_arch(a, meta):
    """(arch dict, where) from --arch, else the weights' arch_json, else
    archs/<metadata arch>.json of this repository."""
    if a.arch is None and "arch_json" in meta:
        where = a.weights + " (arch_json)"
        try:
            return json.loads(meta["arch_json"]), where
        except ValueError as e:
            raise LoadError("%s: %s" % (where, e))
    path = a.arch
    if path is None:
        if "arch" not in meta:
            raise LoadError("%s: no arch_json or arch name in __metadata__: pass --arch"
                            % a.weights)
        path = os.path.join(ROOT, "archs", meta["arch"] + ".json")
    elif path.startswith("builtin:"):
        path = os.path.join(ROOT, "archs", path[len("builtin:"):] + ".json")
    try:
        with open(path) as f:
            return json.load(f), path
    except (OSError, ValueError) as e:
        raise LoadError("%s: %s" % (path, e))


def load(weights_path, arch=None, task=None, **cli):
    """The loaded module in eval mode (the API of this script): FBNet with
    every head of the weights, outputs restricted to `task` when given."""
    a = argparse.Namespace(weights=weights_path, arch=arch, task=task, input=None, width=None,
                           in_channels=None, classes=None, padding=None)
    for k, v in cli.items():
        setattr(a, k, v)
    return _load(a)[0]


def _load(a):
    weights, meta, reader = load_weights(a.weights)
    if meta.get("format", "fbnet-weights-1") != "fbnet-weights-1":
        raise LoadError("%s: format '%s' (expected fbnet-weights-1; a checkpoint holds "
                        "optimizer state too: use weights.safetensors)"
                        % (a.weights, meta["format"]))
    arch, where = read_arch(a, meta)
    opts = build_options(meta, a)
    if a.arch is not None and "arch" in meta and arch.get("name") not in (None, meta["arch"]):
        raise LoadError("%s: the weights are of arch '%s', the arch file is '%s'"
                        % (a.weights, meta["arch"], arch.get("name")))
    model = FBNet(arch, opts, where)
    n, filled = load_into(model, weights, a.weights)
    if a.task is not None:
        if not opts["tasks"] & TASK_BITS[a.task]:
            raise LoadError("%s: the weights have no %s head (tasks of the model: %s)"
                            % (a.weights, a.task, " ".join(t for t in ("cls", "det", "seg")
                                                         if opts["tasks"] & TASK_BITS[t])))
        model.outputs = list(OUTPUTS[a.task])
    model.eval()
    info = {"reader": reader, "where": where, "n_tensors": len(weights),
            "n_values": sum(int(t.numel()) for t in weights.values()), "n_entries": n,
            "filled": filled, "multipath": "stages" in arch}
    return model, opts, info


# ---- comparison with `fbnet infer` --------------------------------------------------

def compare(model, out_dir, input_path, tol):
    """Runs model on the input of an `fbnet infer` directory; returns the
    report dict (per output: max_abs, ref_max_abs, ratio)."""
    index_path = os.path.join(out_dir, "index.json")
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise LoadError("%s: %s" % (index_path, e))
    if index.get("format") != "fbnet-infer-1":
        raise LoadError("%s: not an fbnet infer index (format %r)" % (index_path,
                                                                      index.get("format")))
    shape = index["input"]["shape"]
    if input_path is None:
        input_path = index["input"]["file"]
        if not os.path.isabs(input_path) and not os.path.exists(input_path):
            input_path = os.path.join(out_dir, input_path)
    x = np.fromfile(input_path, dtype="<f4") if os.path.exists(input_path) else None
    if x is None:
        raise LoadError("%s: cannot read the input (pass --input)" % input_path)
    if x.size != int(np.prod(shape)):
        raise LoadError("%s: %d values, the index says the input was %s" % (input_path, x.size,
                                                                           shape))
    with torch.no_grad():
        out = model(torch.from_numpy(x.reshape(shape).astype(np.float32)))
    report = collections.OrderedDict()
    for o in index["outputs"]:
        name = o["name"]
        if name not in out:
            raise LoadError("%s: output %s is not an output of the PyTorch model (%s)"
                            % (index_path, name, ", ".join(out)))
        ref = np.fromfile(os.path.join(out_dir, o["file"]), dtype="<f4")
        got = out[name].numpy()
        if ref.size != int(np.prod(o["shape"])) or tuple(got.shape) != tuple(o["shape"]):
            raise LoadError("%s: output %s: fbnet %s (%d values in %s), PyTorch %s"
                            % (index_path, name, o["shape"], ref.size, o["file"],
                               tuple(got.shape)))
        ref = ref.reshape(o["shape"])
        d = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
        mag = float(np.max(np.abs(ref))) if ref.size else 0.0
        finite = bool(np.all(np.isfinite(got)) and np.all(np.isfinite(ref)))
        report[name] = {"shape": list(o["shape"]), "max_abs": d, "ref_max_abs": mag,
                        "ratio": d / max(mag, 1e-3) if finite else float("inf")}
    missing = [k for k in out if k not in report]
    if missing:
        raise LoadError("%s: fbnet wrote no %s (run fbnet infer without --task, or pass the same "
                        "--task here)" % (index_path, ", ".join(missing)))
    worst = max((r["ratio"] for r in report.values()), default=0.0)
    return {"images": shape[0], "outputs": report, "max_ratio": worst, "tol": tol,
            "ok": worst <= tol}

# ---- Fashion-MNIST, preprocessed like src/data/augment.c ----------------------

def read_idx(path, magic, ndim):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise LoadError("%s: cannot read: %s" % (path, e))
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        raise LoadError("%s: not an IDX file with magic 0x%08x" % (path, magic))
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise LoadError("%s: %d data bytes, dims %s need %d" % (path, len(body), dims,
                                                               int(np.prod(dims))))
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def aug_content(size):
    """fb_aug_default(S).content."""
    if size <= 28:
        return size
    if size < 32:
        return 28
    return (7 * size + 4) // 8


def _taps(src, dst):
    """Bilinear taps, align_corners=False, clamped (augment.c taps())."""
    scale = src / dst
    x = (np.arange(dst) + 0.5) * scale - 0.5
    x = np.maximum(x, 0.0)
    i0 = np.minimum(x.astype(np.int64), src - 1)
    i1 = np.where(i0 + 1 < src, i0 + 1, src - 1)
    return i0, i1, (x - i0).astype(np.float32)


def preprocess(images, size):
    """(n, h, w) uint8 -> (n, 1, S, S) float32 exactly as the evaluation does:
    resize to content x content (vertical pass, then horizontal), centre on a
    background of the normalised black, (x/255 - mean) * (1/std) in float."""
    n, h, w = images.shape
    c = aug_content(size)
    inv255 = np.float32(1.0) / np.float32(255.0)
    if c == h and c == w:
        res = images.astype(np.float32) * inv255
    else:
        yi0, yi1, yf = _taps(h, c)
        xi0, xi1, xf = _taps(w, c)
        img = images.astype(np.float32)
        r0, r1 = img[:, yi0, :], img[:, yi1, :]
        rb = (r0 + yf[None, :, None] * (r1 - r0)) * inv255
        a, b = rb[:, :, xi0], rb[:, :, xi1]
        res = a + xf[None, None, :] * (b - a)
    mean = np.float32(FMNIST_MEAN)
    inv_std = np.float32(1.0) / np.float32(FMNIST_STD)
    bg = (np.float32(0.0) - mean) * inv_std
    out = np.full((n, 1, size, size), bg, dtype=np.float32)
    off = (size - c) // 2
    out[:, 0, off:off + c, off:off + c] = (res - mean) * inv_std
    return out


def topk_hits(logits, labels, k):
    """fbnet's rule (src/train/trainer.c): a class ranks above the label when
    its logit is larger, or equal with a smaller index."""
    t = logits[np.arange(len(labels)), labels][:, None]
    idx = np.arange(logits.shape[1])[None, :]
    higher = ((logits > t) | ((logits == t) & (idx < labels[:, None]))).sum(axis=1)
    return int((higher < k).sum())


def check_fmnist(model, opts, n, data_dir, batch):
    if opts["in_channels"] != 1:
        raise LoadError("--check-fmnist needs a 1-channel model (in_channels is %d)"
                        % opts["in_channels"])
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"), 0x801, 1)
    if len(images) != len(labels):
        raise LoadError("%s: %d images but %d labels" % (data_dir, len(images), len(labels)))
    n = len(images) if n <= 0 or n > len(images) else n
    x = preprocess(images[:n], opts["input_size"])
    y = labels[:n].astype(np.int64)
    if y.max(initial=0) >= opts["num_classes"]:
        raise LoadError("labels go up to %d but the model has %d classes"
                        % (int(y.max()), opts["num_classes"]))
    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, n, batch):
            outs.append(model(torch.from_numpy(x[s:s + batch]))["cls.logits"].numpy())
    logits = np.concatenate(outs)
    if not np.all(np.isfinite(logits)):
        raise LoadError("the model produced non-finite logits")
    return {"images": n, "top1": round(topk_hits(logits, y, 1) / n, 5),
            "top5": round(topk_hits(logits, y, min(5, logits.shape[1])) / n, 5)}



# ---- main -------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Build the PyTorch module of an fbnet network and load its weights "
                    "(safetensors) with a strict state-dict load.")
    ap.add_argument("weights", help="fbnet weights (.safetensors)")
    ap.add_argument("--arch", default=None,
                    help="arch file (default: the weights' arch_json, else archs/<arch>.json)")
    ap.add_argument("--task", choices=sorted(TASK_BITS), default=None,
                    help="outputs of this head only (default: every head of the weights)")
    ap.add_argument("--input", type=int, default=None, help="input size if the metadata lacks it")
    ap.add_argument("--width", type=float, default=None, help="width if the metadata lacks it")
    ap.add_argument("--in-channels", type=int, default=None)
    ap.add_argument("--classes", type=int, default=None)
    ap.add_argument("--padding", choices=["standard", "explicit"], default=None)
    ap.add_argument("--compare", action="append", default=[], metavar="DIR",
                    help="compare with the outputs of `fbnet infer ... --out DIR` on the input "
                         "that DIR/index.json names (repeatable)")
    ap.add_argument("--compare-input", default=None, metavar="X.f32",
                    help="the raw input of a single --compare (default: the file in the index)")
    ap.add_argument("--tol", type=float, default=1e-3,
                    help="--compare: largest max|torch - fbnet| / max(max|fbnet|, 1e-3) "
                         "(default 1e-3)")
    ap.add_argument("--check-fmnist", type=int, default=None, metavar="N",
                    help="evaluate on the first N Fashion-MNIST test images (0: all)")
    ap.add_argument("--fmnist-dir", default=FMNIST_DIR)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--save", default=None, help="also torch.save the state dict here")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model, opts, info = _load(a)
        print("weights  %s (%s): %d tensors, %d values" % (a.weights, info["reader"],
                                                         info["n_tensors"], info["n_values"]))
        print("model    %s (%s) from %s: input %d, width %g, in_channels %d, classes %d, "
              "%s padding" % (model.name, "multi-path" if info["multipath"] else "chain",
                              info["where"], opts["input_size"], opts["width"],
                              opts["in_channels"], opts["num_classes"], opts["padding"]))
        print("heads    %s; outputs %s" % (heads_text(model), ", ".join(model.outputs)))
        print("loaded   %d state_dict entries with strict=True (%d num_batches_tracked filled)"
              % (info["n_entries"], info["filled"]))
        if a.save:
            torch.save(model.state_dict(), a.save)
            print("saved    %s" % a.save)
        if a.check_fmnist is not None:
            if not opts["tasks"] & TASK_CLS:
                raise LoadError("--check-fmnist: the weights have no classifier")
            res = check_fmnist(model, opts, a.check_fmnist, a.fmnist_dir, max(1, a.batch))
            print(json.dumps(res))
        if a.compare_input is not None and len(a.compare) != 1:
            raise LoadError("--compare-input goes with exactly one --compare DIR")
        bad = []
        for d in a.compare:
            rep = compare(model, d, a.compare_input, a.tol)
            for name, r in rep["outputs"].items():
                print("compare  %s %-10s %-14s max |torch - fbnet| %.3g, max |fbnet| %.3g, "
                      "ratio %.3g" % (d, name, "x".join(str(v) for v in r["shape"]),
                                      r["max_abs"], r["ref_max_abs"], r["ratio"]))
                if not r["ratio"] <= a.tol:
                    bad.append("%s: output %s differs from fbnet's by %.3g (ratio %.3g > --tol %g)"
                               % (d, name, r["max_abs"], r["ratio"], a.tol))
            print(json.dumps(dict(rep, dir=d)))
        if bad:
            raise LoadError("; ".join(bad))
    except LoadError as e:
        print("fbnet_to_torch: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
