#!/usr/bin/env python3
"""The width multiplier at which an arch file's network for a task has a given
number of MACs (fbnet flops, bisection over the width): the hand-scaled
baseline of the search-quality experiment and of `make demo`.

  /usr/bin/python3 scripts/width_for_macs.py ARCH TASK INPUT MACS_MILLIONS [--fbnet build/fbnet]
prints the width (4 decimals) whose MACs are closest to the target and, on
stderr, the MACs it gives. Channel counts are rounded to multiples of 8, so MACs
jump between widths: --below / --above print the widest width under the
target / the narrowest at or over it instead (a baseline can then be
interpolated between the two).
"""
import argparse
import json
import subprocess
import sys


def macs(fbnet, arch, task, size, width):
    out = subprocess.run([fbnet, "flops", arch, "--task", task, "--width", "%.4f" % width,
                          "--input", str(size), "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("width_for_macs: fbnet flops failed: " + out.stderr.strip())
    return json.loads(out.stdout)["flops"] / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arch")
    ap.add_argument("task", choices=["cls", "det", "seg"])
    ap.add_argument("input", type=int)
    ap.add_argument("macs", type=float, help="target MACs in millions")
    ap.add_argument("--fbnet", default="build/fbnet")
    side = ap.add_mutually_exclusive_group()
    side.add_argument("--below", action="store_true")
    side.add_argument("--above", action="store_true")
    a = ap.parse_args()
    lo, hi = 0.05, 2.0
    if macs(a.fbnet, a.arch, a.task, a.input, hi) < a.macs:
        sys.exit("width_for_macs: %s needs more than width %.1f for %.3f M MACs" % (a.arch, hi, a.macs))
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if macs(a.fbnet, a.arch, a.task, a.input, mid) < a.macs else (lo, mid)
    if a.below:
        best = lo
    elif a.above:
        best = hi
    else:
        best = min((lo, hi), key=lambda w: abs(macs(a.fbnet, a.arch, a.task, a.input, w) - a.macs))
    print("%.4f" % best)
    print("%.3f M MACs at width %.4f" % (macs(a.fbnet, a.arch, a.task, a.input, best), best),
          file=sys.stderr)


if __name__ == "__main__":
    main()
