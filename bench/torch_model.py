#!/usr/bin/python3
"""MACs and params of a chain fbnet arch file in PyTorch (docs/method.md section 2).

The model is scripts/fbnet_torch.py's FBNet (the one PyTorch model of
fbnet's arch files, also behind scripts/fbnet_to_torch.py) with a classifier
that always pools its input, the published counting convention. Used as a
cross-check of fbnet's builder/counter and by bench/torch_bench.py. Run it
with /usr/bin/python3 (Debian's torch):

    /usr/bin/python3 bench/torch_model.py archs/fbnetv3_a.json --count
    /usr/bin/python3 bench/torch_model.py archs/fbnetv3_a.json --count --layers

Only torch and the standard library are used.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scripts"))
import fbnet_torch as ft  # noqa: E402

div8 = ft.div8
load_arch = ft.load_arch


def model(arch, input_size=None, in_channels=3, num_classes=1000, width=1.0,
          standard_padding=False):
    """The classifier network of a chain arch (dw_pad honoured unless
    standard_padding); its forward returns the logits' OrderedDict."""
    opts = ft.options(input_size=input_size or arch.get("input_size", 224), width=width,
                      in_channels=in_channels, num_classes=num_classes,
                      padding="standard" if standard_padding else "explicit",
                      cls_pool="always")
    if "blocks" not in arch:
        raise ft.ArchError("not a chain arch file (no \"blocks\")")
    return ft.FBNet(arch, opts)


def build(path, **kw):
    return model(load_arch(path), **kw)


def count(net, input_size, in_channels=3):
    """MACs and params in the published convention: multiply-adds of every
    conv and linear layer plus one per input element of every global average
    pool; params = conv and linear weights only. Returns (macs, params,
    params_all, per-layer list) at batch 1."""
    macs, params, rows = ft.count(net, torch.zeros(1, in_channels, input_size, input_size))
    params_all = sum(p.numel() for p in net.parameters() if p.requires_grad)
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
        size = a.input or arch.get("input_size", 224)
        net = model(arch, size, a.in_channels, a.classes, a.width, a.padding == "standard")
    except (OSError, ValueError) as e:
        print("torch_model: %s: %s" % (a.arch, e), file=sys.stderr)
        return 1
    macs, params, params_all, rows = count(net, size, a.in_channels)
    if a.layers:
        for name, ishape, oshape, m in rows:
            print("%-40s %-20s %-20s %12d" % (name, ishape, oshape, m))
    if a.count or not a.layers:
        print("arch %s input %d width %g classes %d" % (net.name, size, a.width, a.classes))
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
