#!/usr/bin/python3
"""Writes tests/fixtures/optim_*.json: PyTorch's SGD and AdamW on two small
tensors ("weight", decayed, and "bias", not decayed) for 5 steps with fixed
pseudo-random gradients and a changing learning rate. tests/test_optim.c
replays the gradients through fb_optim_step and compares the parameters
after every step.

Run with Debian's interpreter (the one that has torch):
    /usr/bin/python3 scripts/make_optim_fixtures.py
"""
import json
import os
import sys

import torch

STEPS = 5
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def flat(t):
    # float32 values as exact decimal doubles: the C side reads them back bit-exactly
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run(name, make_opt, cfg, lrs, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 4, generator=g, dtype=torch.float32).requires_grad_(True)
    b = torch.randn(6, generator=g, dtype=torch.float32).requires_grad_(True)
    init = {"weight": flat(w), "bias": flat(b)}
    opt = make_opt([
        {"params": [w], "weight_decay": cfg["weight_decay"]},
        {"params": [b], "weight_decay": 0.0},
    ])
    steps = []
    for s in range(STEPS):
        gw = torch.randn(6, 4, generator=g, dtype=torch.float32)
        gb = torch.randn(6, generator=g, dtype=torch.float32)
        if s == 2:  # one step with large gradients
            gw *= 100.0
            gb *= 100.0
        for group in opt.param_groups:
            group["lr"] = lrs[s]
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
        steps.append({
            "lr": lrs[s],
            "grad": {"weight": flat(gw), "bias": flat(gb)},
            "expect": {"weight": flat(w), "bias": flat(b)},
        })
    doc = {
        "generator": "scripts/make_optim_fixtures.py, torch " + torch.__version__,
        "config": cfg,
        "shapes": {"weight": [6, 4], "bias": [6]},
        "init": init,
        "steps": steps,
    }
    path = os.path.join(OUT, "optim_%s.json" % name)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path), os.path.getsize(path), "bytes")


def main():
    torch.set_num_threads(1)
    lrs_sgd = [0.1, 0.08, 0.05, 0.02, 0.01]
    lrs_adam = [1e-2, 8e-3, 5e-3, 2e-3, 1e-3]
    for nesterov in (False, True):
        cfg = {"kind": "sgd", "momentum": 0.9, "nesterov": nesterov, "weight_decay": 1e-4}
        run("sgd_nesterov" if nesterov else "sgd_momentum",
            lambda groups, c=cfg: torch.optim.SGD(groups, lr=0.1, momentum=c["momentum"],
                                                   nesterov=c["nesterov"]),
            cfg, lrs_sgd, 11 if nesterov else 7)
    cfg = {"kind": "adamw", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}
    run("adamw",
        lambda groups: torch.optim.AdamW(groups, lr=1e-3, betas=(cfg["beta1"], cfg["beta2"]),
                                         eps=cfg["eps"]),
        cfg, lrs_adam, 13)
    return 0


if __name__ == "__main__":
    sys.exit(main())
