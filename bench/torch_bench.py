#!/usr/bin/python3
"""Times PyTorch training (or inference) steps of an fbnet arch file.

    /usr/bin/python3 bench/torch_bench.py archs/fbnetv3_a.json --input 224 --batch 32

The network is bench/torch_model.py's: scripts/fbnet_torch.py's FBNet (the
PyTorch model of fbnet's arch files) with the classifier of the published
counts. Training step: model.train(), forward, cross-entropy, backward, SGD momentum
0.9 step. With --forward: model.eval() and torch.no_grad(), forward only.
Inputs are random normal images and random labels, made once before timing.
The last line printed is a JSON object with sec_per_step (the median of the
timed steps) and images_per_sec (batch / sec_per_step).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402  (scripts/fbnet_torch.py's FBNet, the published classifier)


def timed(step, warmup, steps):
    """Runs step() warmup times untimed, then steps times; returns the
    seconds of each timed call (also the timing of bench/torch_supernet.py)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch")
    ap.add_argument("--input", type=int, required=True, help="square input size")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--padding", choices=["standard", "explicit"], default="explicit")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forward", action="store_true", help="time inference only")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.input < 1 or a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("--input, --batch, --steps and --threads must be positive, --warmup >= 0")

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    try:
        model = torch_model.build(a.arch, input_size=a.input, in_channels=a.in_channels,
                                  num_classes=a.classes, width=a.width,
                                  standard_padding=a.padding == "standard")
    except (OSError, ValueError) as e:
        print("torch_bench: %s: %s" % (a.arch, e), file=sys.stderr)
        return 1
    x = torch.randn(a.batch, a.in_channels, a.input, a.input)
    y = torch.randint(0, a.classes, (a.batch,))

    if a.forward:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    else:
        model.train()
        loss_fn = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x)["cls.logits"], y)
            loss.backward()
            opt.step()

    times = timed(step, a.warmup, a.steps)

    # The median is the headline number: it ignores the odd slow step when
    # something else wakes up on a small shared machine.
    sec = statistics.median(times)
    result = {
        "framework": "torch " + torch.__version__,
        "arch": a.arch,
        "mode": "forward" if a.forward else "train",
        "input": a.input, "batch": a.batch, "width": a.width,
        "in_channels": a.in_channels, "classes": a.classes, "padding": a.padding,
        "threads": a.threads, "steps": a.steps, "warmup": a.warmup,
        "sec_per_step_mean": sum(times) / len(times),
        "sec_per_step_min": min(times),
        "sec_per_step": sec,
        "images_per_sec": a.batch / sec,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
