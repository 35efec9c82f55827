#!/usr/bin/python3
"""An independent PyTorch model of an fbnet arch file (docs/method.md section 2).

Used as a cross-check of fbnet's builder/counter and as the PyTorch side of
the side-by-side benchmark. Run it with /usr/bin/python3 (Debian's torch):

    /usr/bin/python3 bench/torch_model.py archs/fbnetv3_a.json --count
    /usr/bin/python3 bench/torch_model.py archs/fbnetv3_a.json --count --layers

Only torch and the standard library are used.
"""
import argparse
import json
import math
import re
import sys

import torch
from torch import nn

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def div8(n):
    """FBNet channel rounding: keep exact multiples of 8, else round n/8 half
    up (at least 1) times 8, plus 8 if that lost more than 5%."""
    if n == int(n) and int(n) % 8 == 0:
        return max(8, int(n))
    q = max(1, int(math.floor(n / 8.0 + 0.5)))
    v = q * 8
    if v < 0.95 * n:
        v += 8
    return max(8, v)


class HSwish(nn.Module):
    def forward(self, x):
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HSigmoid(nn.Module):
    def forward(self, x):
        return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def conv_bn(c_in, c_out, k, stride=1, pad=None, groups=1, act=True):
    """conv (no bias) + BN [+ hswish]."""
    if pad is None:
        pad = k // 2
    layers = [nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(HSwish())
    return nn.Sequential(*layers)


class Stem(nn.Module):
    """conv_k{k}_hs: kxk conv stride s, pad k/2 (with bias, docs/method.md section 2) + BN + hswish."""

    def __init__(self, c_in, c_out, k, stride):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=True)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = HSwish()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SE(nn.Module):
    """Squeeze-excite: GAP -> 1x1 conv (bias) + hswish -> 1x1 conv (bias) ->
    hsigmoid -> channel-wise multiply."""

    def __init__(self, c, m):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, m, 1, bias=True)
        self.act = HSwish()
        self.fc2 = nn.Conv2d(m, c, 1, bias=True)
        self.gate = HSigmoid()

    def forward(self, x):
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * s


class IRF(nn.Module):
    """Inverted residual block ir_k{K}[_sehsig]_hs with expansion e."""

    def __init__(self, c_in, c_out, k, stride, e, se, dw_pad):
        super().__init__()
        mid = div8(c_in * e)
        self.pw = conv_bn(c_in, mid, 1) if mid != c_in else None
        self.dw = conv_bn(mid, mid, k, stride, pad=dw_pad, groups=mid)
        self.se = SE(mid, div8(math.floor(mid * 0.25 / e))) if se else None
        self.pwl = conv_bn(mid, c_out, 1, act=False)
        self.residual = c_in == c_out and stride == 1
        if self.residual:
            nn.init.zeros_(self.pwl[1].weight)

    def forward(self, x):
        y = self.pw(x) if self.pw is not None else x
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.pwl(y)
        return x + y if self.residual else y


class PoolHead(nn.Module):
    """ir_pool_hs: 1x1 conv to div8(C_in*e) + BN + hswish, GAP, 1x1 conv to
    c_out (no BN, no bias) + hswish."""

    def __init__(self, c_in, c_out, e):
        super().__init__()
        self.pw = conv_bn(c_in, div8(c_in * e), 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(div8(c_in * e), c_out, 1, bias=False)
        self.act = HSwish()

    def forward(self, x):
        return self.act(self.fc(self.pool(self.pw(x))))


IRF_RE = re.compile(r"^ir_k(\d+)(_sehsig)?_hs$")
STEM_RE = re.compile(r"^conv_k(\d+)_hs$")


def parse_row(row, where):
    """Accepts [op, c_out, stride, repeat, {args}] (args optional) or an
    object with the same fields; returns (op, c_out, stride, repeat, args)."""
    if isinstance(row, dict):
        op = row.get("op")
        c = row.get("c_out", row.get("channels"))
        s = row.get("stride", 1)
        n = row.get("repeat", 1)
        args = row.get("args", {})
    elif isinstance(row, list) and 2 <= len(row) <= 5:
        op, c = row[0], row[1]
        s = row[2] if len(row) > 2 else 1
        n = row[3] if len(row) > 3 else 1
        args = row[4] if len(row) > 4 else {}
    else:
        raise ValueError("%s: row must be [op, C_out, stride, repeat, {args}]" % where)
    if not isinstance(op, str) or not isinstance(c, (int, float)) or c <= 0:
        raise ValueError("%s: bad op or C_out" % where)
    if not isinstance(s, int) or s < 1 or not isinstance(n, int) or n < 1:
        raise ValueError("%s: stride and repeat must be positive integers" % where)
    if not isinstance(args, dict):
        raise ValueError("%s: args must be an object" % where)
    return op, c, s, n, args


def arch_rows(arch):
    """Flattens the arch file into (stage_name, row) pairs in order."""
    blocks = arch.get("blocks", arch.get("stages"))
    if not isinstance(blocks, list):
        raise ValueError("arch: 'blocks' must be a list of stages")
    out = []
    for i, stage in enumerate(blocks):
        if isinstance(stage, dict):
            name = stage.get("stage", stage.get("name", "stage%d" % i))
            rows = stage.get("rows")
        else:  # a bare row list
            name, rows = "stage%d" % i, [stage]
        if not isinstance(rows, list):
            raise ValueError("arch: blocks[%d]: 'rows' must be a list" % i)
        for j, row in enumerate(rows):
            out.append((name, parse_row(row, "arch: blocks[%d].rows[%d]" % (i, j))))
    return out


class FBNet(nn.Module):
    def __init__(self, arch, in_channels=3, num_classes=1000, width=1.0,
                 standard_padding=False):
        super().__init__()
        self.arch_name = arch.get("name", "?")
        layers = []
        c = in_channels
        head_seen = False
        for stage, (op, c_out, stride, repeat, args) in arch_rows(arch):
            if head_seen:
                raise ValueError("arch: %s: rows after ir_pool_hs" % stage)
            if op == "ir_pool_hs" and (stride != 1 or repeat != 1):
                raise ValueError("arch: %s: ir_pool_hs takes stride 1, repeat 1" % stage)
            c_out = div8(c_out * width)
            e = args.get("e", 1)
            dw_pad = None if standard_padding else args.get("dw_pad")
            for r in range(repeat):
                s = stride if r == 0 else 1
                name = "%s_%d" % (stage, len([n for n, _ in layers if n.startswith(stage + "_")]))
                m = STEM_RE.match(op)
                mi = IRF_RE.match(op)
                if m:
                    block = Stem(c, c_out, int(m.group(1)), s)
                elif mi:
                    k = int(mi.group(1))
                    block = IRF(c, c_out, k, s, e, mi.group(2) is not None, dw_pad)
                elif op == "ir_pool_hs":
                    block = PoolHead(c, c_out, args.get("e", 6))
                    head_seen = True
                else:
                    raise ValueError("arch: unknown op '%s' in %s" % (op, stage))
                layers.append((name, block))
                c = c_out
        self.features = nn.Sequential()
        for name, block in layers:
            self.features.add_module(name, block)
        # The classifier pools its input again (a no-op on the head's 1x1
        # output, and the needed pool when there is no ir_pool_hs row). The
        # published 356.598 M of FBNetV3-A includes this pool's 1984 inputs;
        # fbnet's builder adds no pool over a 1x1 map (356.596296 M).
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes, bias=True)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def load_arch(path):
    with open(path) as f:
        return json.load(f)


def build(path, **kw):
    return FBNet(load_arch(path), **kw)


def count(model, input_size, in_channels=3):
    """MACs and params in the published convention: multiply-adds of every
    conv and linear layer plus one per input element of every global average
    pool; params = conv and linear weights only. Returns (macs, params,
    params_all, per-layer list) at batch 1."""
    rows = []

    def hook(mod, inp, out):
        x = inp[0]
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs = out.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            macs = out.numel() * mod.in_features
        else:  # global average pool
            macs = x.numel()
        rows.append((mod._fb_name, tuple(x.shape), tuple(out.shape), macs))

    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear, nn.AdaptiveAvgPool2d)):
            mod._fb_name = name
            handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, input_size, input_size))
    model.train(was_training)
    for h in handles:
        h.remove()
    macs = sum(r[3] for r in rows)
    params = sum(m.weight.numel() for m in model.modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear)))
    params_all = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return macs, params, params_all, rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch")
    ap.add_argument("--input", type=int, default=None, help="input size (default: the arch's)")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--padding", choices=["standard", "explicit"], default="explicit")
    ap.add_argument("--count", action="store_true", help="print MACs and params")
    ap.add_argument("--layers", action="store_true", help="print a per-layer table")
    a = ap.parse_args(argv)
    try:
        arch = load_arch(a.arch)
        model = FBNet(arch, a.in_channels, a.classes, a.width, a.padding == "standard")
    except (OSError, ValueError) as e:
        print("torch_model: %s: %s" % (a.arch, e), file=sys.stderr)
        return 1
    size = a.input or arch.get("input_size", 224)
    macs, params, params_all, rows = count(model, size, a.in_channels)
    if a.layers:
        for name, ishape, oshape, m in rows:
            print("%-40s %-20s %-20s %12d" % (name, ishape, oshape, m))
    if a.count or not a.layers:
        print("arch %s input %d width %g classes %d" % (model.arch_name, size, a.width, a.classes))
        extra = [r[3] for r in rows if r[0] == "pool" and r[1][2:] == (1, 1)]
        print("MACs %.3f M (%d)" % (macs / 1e6, macs))
        if extra:
            print("MACs without the classifier's pool over a 1x1 map (fbnet's convention):"
                  " %.6f M (%d)" % ((macs - extra[0]) / 1e6, macs - extra[0]))
        print("params %.3f M (conv+linear weights %d; all trainable %d = %.3f M)"
              % (params / 1e6, params, params_all, params_all / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
