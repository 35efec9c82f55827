#!/usr/bin/env python3
"""Summarises a scripts/search_quality.sh run directory: per task, the retrained
metric of the searched (multi-task run), single-task-searched, width-scaled
all-kept (baseline) and random networks, the goal tests, and the Kendall tau
between the supernet's own estimate of each subnet and its retrained metric.
Writes OUT/search_quality.json; prints a markdown table.

  /usr/bin/python3 bench/quality_report.py OUT_DIR
"""
import glob
import json
import math
import os
import statistics
import sys

KEY = {"cls": "top1", "det": "AP", "seg": "mIoU"}
NAME = {"cls": "top-1", "det": "AP", "seg": "mIoU"}


def stat(xs):
    n = len(xs)
    mean = sum(xs) / n if n else float("nan")
    sd = statistics.stdev(xs) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n}


def kendall_tau(x, y):
    """Kendall's tau-b (ties in either variable accounted for)."""
    n, conc, disc, tx, ty = len(x), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif dx * dy > 0:
                conc += 1
            else:
                disc += 1
    den = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / den if den else float("nan")


def main(out):
    jobs = [l.split() for l in open(os.path.join(out, "jobs.txt")) if l.strip()]
    runs = {}  # (task, name) -> list of metrics
    arch_of = {}
    for task, name, arch, width, seed in jobs:
        f = os.path.join(out, "train", "%s_%s_s%s" % (task, name, seed), "final.json")
        arch_of[(task, name)] = arch
        if os.path.exists(f):
            last = [l for l in open(f) if l.strip()][-1]
            runs.setdefault((task, name), []).append(json.loads(last)[KEY[task]])
    result = {"tasks": {}}
    lines = ["| task | searched (one 3-task run) | single-task search | all kept, width-scaled | "
             "random (same MACs), per-arch median | random, all runs | searched - median random (SE) "
             "| searched - baseline (SE) | Kendall tau (n) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task in ("cls", "det", "seg"):
        s = stat(runs.get((task, "searched"), []))
        g = stat(runs.get((task, "single"), []))
        b = stat(runs.get((task, "baseline"), []))
        # MACs jump with the width (channels are multiples of 8): the all-kept network is
        # trained at the widest width under the searched MACs (baseline) and the narrowest
        # over it (baseline_hi); the baseline at the searched MACs is interpolated between
        b_lo, b_hi, interp = b, stat(runs.get((task, "baseline_hi"), [])), None
        mf = os.path.join(out, "%s_baseline_macs.txt" % task)
        if b_hi["n"] and b_lo["n"] and os.path.exists(mf):
            m_s, m_lo, m_hi = [float(x) for x in open(mf).read().split()]
            lam = (m_s - m_lo) / (m_hi - m_lo) if m_hi > m_lo else 0.0
            se = math.sqrt(((1 - lam) * b_lo["sd"]) ** 2 / b_lo["n"] + (lam * b_hi["sd"]) ** 2 / b_hi["n"])
            interp = {"mean": (1 - lam) * b_lo["mean"] + lam * b_hi["mean"], "se": se, "lambda": lam,
                      "macs": [m_lo, m_s, m_hi]}
            b = {"mean": interp["mean"], "sd": se * math.sqrt(min(b_lo["n"], b_hi["n"])),
                 "n": min(b_lo["n"], b_hi["n"])}
        rnd_names = sorted({n for (t, n) in runs if t == task and n.startswith("random")})
        per_arch = [sum(runs[(task, n)]) / len(runs[(task, n)]) for n in rnd_names]
        all_rnd = [x for n in rnd_names for x in runs[(task, n)]]
        r = stat(all_rnd)
        med = statistics.median(per_arch) if per_arch else float("nan")
        se_s = s["sd"] / math.sqrt(s["n"]) if s["n"] else float("nan")
        se_med = (1.2533 * statistics.stdev(per_arch) / math.sqrt(len(per_arch))
                  if len(per_arch) > 1 else float("nan"))
        se_vs_rnd = math.sqrt(se_s ** 2 + se_med ** 2)
        se_vs_base = math.sqrt(se_s ** 2 + (b["sd"] / math.sqrt(b["n"]) if b["n"] else 0) ** 2)
        d_rnd, d_base = s["mean"] - med, s["mean"] - b["mean"]
        # Kendall tau: supernet estimate vs retrained mean, over every subnet
        est, ret = [], []
        ef = os.path.join(out, "%s_estimates.jsonl" % task)
        by_arch = {}
        for (t, n), xs in runs.items():
            if t == task and not n.startswith("baseline"):
                by_arch[arch_of[(t, n)]] = sum(xs) / len(xs)
        if os.path.exists(ef):
            for l in open(ef):
                e = json.loads(l)
                if e["arch"] in by_arch:
                    est.append(e["estimate"][KEY[task]])
                    ret.append(by_arch[e["arch"]])
        tau = kendall_tau(est, ret) if len(est) > 1 else float("nan")
        result["tasks"][task] = {
            "metric": KEY[task], "searched": s, "single_task": g, "baseline": b, "random": r,
            "baseline_below": b_lo, "baseline_above": b_hi, "baseline_interpolated": interp,
            "random_per_arch": per_arch, "random_median": med,
            "searched_minus_random_median": d_rnd, "se_vs_random": se_vs_rnd,
            "searched_minus_baseline": d_base, "se_vs_baseline": se_vs_base,
            "beats_random_by_2se": d_rnd > 2 * se_vs_rnd, "beats_baseline_by_2se": d_base > 2 * se_vs_base,
            "multi_no_worse_than_single": s["mean"] >= g["mean"] - math.sqrt(se_s ** 2 + (g["sd"] / math.sqrt(g["n"]) if g["n"] else 0) ** 2),
            "kendall_tau": tau, "kendall_n": len(est),
            "estimates": est, "retrained": ret}
        f = lambda x: "%.4f +- %.4f (%d)" % (x["mean"], x["sd"], x["n"])
        lines.append("| %s %s | %s | %s | %s | %.4f (%d archs) | %s | %+.4f (%.4f) | %+.4f (%.4f) | %.2f (%d) |" % (
            task, NAME[task], f(s), f(g), f(b), med, len(per_arch), f(r), d_rnd, se_vs_rnd, d_base,
            se_vs_base, tau, len(est)))
    for name in ("targets.txt",):
        p = os.path.join(out, name)
        if os.path.exists(p):
            result["macs_targets_millions"] = open(p).read().strip()
    for t in ("multi", "single_cls", "single_det", "single_seg"):
        p = os.path.join(out, t, "summary.json")
        if os.path.exists(p):
            d = json.load(open(p))
            result.setdefault("searches", {})[t] = {
                k: {"macs": v["macs"], "bits_kept": v["bits_kept"], "bits_decided": v["bits_decided"]}
                for k, v in d["tasks"].items()}
    json.dump(result, open(os.path.join(out, "search_quality.json"), "w"), indent=1)
    print("\n".join(lines))
    print("\n(mean +- sd (runs); SE = standard error of the difference; random per-arch median: "
          "the median over architectures of each one's mean over seeds)")


if __name__ == "__main__":
    main(sys.argv[1])
