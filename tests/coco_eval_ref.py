#!/usr/bin/python3
"""Second, independent COCO box evaluation for tests/test_metrics.c.

Written from the semantics of the reference COCOeval (pycocotools, iouType
"bbox"), not from src/tasks/coco_eval.c: numpy arrays per image, vectorised
IoU, cumulative sums and np.searchsorted for the precision curve.

Usage: coco_eval_ref.py CASES.json
CASES.json: {"cases": [{"num_cats": K, "images": [image_id, ...],
                         "gt": [[image_id, cat, x, y, w, h, area, iscrowd], ...],
                         "dt": [[image_id, cat, x, y, w, h, score], ...]}, ...]}
Prints one line per case: the 12 summarize() numbers, then the K per-category
AP@[.50:.95] values (-1 without ground truth), repr() of each double.
"""
import json
import sys
from collections import defaultdict

import numpy as np

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
AREAS = [(0.0 ** 2, 1e5 ** 2), (0.0 ** 2, 32.0 ** 2), (32.0 ** 2, 96.0 ** 2), (96.0 ** 2, 1e5 ** 2)]
MAX_DETS = [1, 10, 100]


def box_ious(dt, gt, crowd):
    """dt (D,4), gt (G,4) as x,y,w,h; crowd (G,) bool -> (D,G)."""
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    dx, dy, dw, dh = (dt[:, i][:, None] for i in range(4))
    gx, gy, gw, gh = (gt[:, i][None, :] for i in range(4))
    iw = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    ih = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = iw * ih
    d_area = dw * dh
    g_area = gw * gh
    union = np.where(crowd[None, :], np.broadcast_to(d_area, inter.shape), d_area + g_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((iw > 0) & (ih > 0), iou, 0.0)


class ImageEval:
    """Matching of one image's detections of one category in one area range."""

    def __init__(self, gts, dts, lo, hi):
        g_ign = np.array([bool(g[7]) or g[6] < lo or g[6] > hi for g in gts], dtype=bool)
        g_order = np.argsort(g_ign.astype(np.int64), kind="mergesort")
        gts = [gts[i] for i in g_order]
        g_ign = g_ign[g_order]
        g_crowd = np.array([bool(g[7]) for g in gts], dtype=bool)
        d_order = np.argsort(-np.array([d[6] for d in dts], dtype=np.float64), kind="mergesort")
        dts = [dts[i] for i in d_order[:100]]
        self.scores = np.array([d[6] for d in dts], dtype=np.float64)
        self.n_pos = int(np.count_nonzero(~g_ign))
        g_box = np.array([g[2:6] for g in gts], dtype=np.float64).reshape(-1, 4)
        d_box = np.array([d[2:6] for d in dts], dtype=np.float64).reshape(-1, 4)
        ious = box_ious(d_box, g_box, g_crowd)
        n_t, n_d, n_g = len(IOU_THRS), len(dts), len(gts)
        self.tp = np.zeros((n_t, n_d), dtype=bool)
        self.skip = np.zeros((n_t, n_d), dtype=bool)
        d_out = (d_box[:, 2] * d_box[:, 3] < lo) | (d_box[:, 2] * d_box[:, 3] > hi)
        for ti, thr in enumerate(IOU_THRS):
            used = np.zeros(n_g, dtype=bool)
            for di in range(n_d):
                floor = min(thr, 1 - 1e-10)
                hit = None
                for gi in range(n_g):
                    if used[gi] and not g_crowd[gi]:
                        continue
                    if hit is not None and not g_ign[hit] and g_ign[gi]:
                        break
                    if ious[di, gi] >= floor:
                        floor = ious[di, gi]
                        hit = gi
                if hit is None:
                    self.skip[ti, di] = d_out[di]
                else:
                    used[hit] = True
                    self.tp[ti, di] = True
                    self.skip[ti, di] = g_ign[hit]


def evaluate(case):
    n_cat = case["num_cats"]
    images = sorted(set(case["images"]))
    known = set(images)
    gts, dts = defaultdict(list), defaultdict(list)
    for g in case["gt"]:
        gts[(g[0], g[1])].append(g)
    for d in case["dt"]:
        if d[0] in known:
            dts[(d[0], d[1])].append(d)
    prec = -np.ones((len(IOU_THRS), len(REC_THRS), n_cat, len(AREAS), len(MAX_DETS)))
    rec = -np.ones((len(IOU_THRS), n_cat, len(AREAS), len(MAX_DETS)))
    for k in range(n_cat):
        for a, (lo, hi) in enumerate(AREAS):
            evals = [ImageEval(gts[(im, k)], dts[(im, k)], lo, hi) for im in images
                     if gts[(im, k)] or dts[(im, k)]]
            if not evals:
                continue
            n_pos = sum(e.n_pos for e in evals)
            if n_pos == 0:
                continue
            for m, md in enumerate(MAX_DETS):
                scores = np.concatenate([e.scores[:md] for e in evals])
                order = np.argsort(-scores, kind="mergesort")
                tp = np.concatenate([e.tp[:, :md] for e in evals], axis=1)[:, order]
                skip = np.concatenate([e.skip[:, :md] for e in evals], axis=1)[:, order]
                tp_cum = np.cumsum(tp & ~skip, axis=1).astype(np.float64)
                fp_cum = np.cumsum(~tp & ~skip, axis=1).astype(np.float64)
                for t in range(len(IOU_THRS)):
                    r = tp_cum[t] / n_pos
                    p = tp_cum[t] / (fp_cum[t] + tp_cum[t] + np.spacing(1))
                    rec[t, k, a, m] = r[-1] if len(r) else 0.0
                    envelope = np.maximum.accumulate(p[::-1])[::-1]
                    idx = np.searchsorted(r, REC_THRS, side="left")
                    q = np.zeros(len(REC_THRS))
                    ok = idx < len(r)
                    q[ok] = envelope[idx[ok]]
                    prec[t, :, k, a, m] = q

    def mean_valid(x):
        x = x[x > -1]
        return float(np.mean(x)) if x.size else -1.0

    stats = [
        mean_valid(prec[:, :, :, 0, 2]),
        mean_valid(prec[0, :, :, 0, 2]),
        mean_valid(prec[5, :, :, 0, 2]),
        mean_valid(prec[:, :, :, 1, 2]),
        mean_valid(prec[:, :, :, 2, 2]),
        mean_valid(prec[:, :, :, 3, 2]),
        mean_valid(rec[:, :, 0, 0]),
        mean_valid(rec[:, :, 0, 1]),
        mean_valid(rec[:, :, 0, 2]),
        mean_valid(rec[:, :, 1, 2]),
        mean_valid(rec[:, :, 2, 2]),
        mean_valid(rec[:, :, 3, 2]),
    ]
    per_cat = [mean_valid(prec[:, :, k, 0, 2]) for k in range(n_cat)]
    return stats + per_cat


def main():
    assert IOU_THRS[5] == 0.75 and IOU_THRS[0] == 0.5
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    for case in cases:
        print(" ".join(repr(v) for v in evaluate(case)))


if __name__ == "__main__":
    main()
