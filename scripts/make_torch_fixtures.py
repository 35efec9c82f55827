#!/usr/bin/python3
"""PyTorch reference values for every op of the op table and for whole IRF blocks.

Run with Debian's interpreter (the one that has torch):

    /usr/bin/python3 scripts/make_torch_fixtures.py

It (re)writes tests/fixtures/torch/*.bin; tests/test_torch_ref.c reads them
(through tests/fixture_io.{h,c}). Everything is computed in float64, single
threaded, from fixed seeds, so re-running the script reproduces the files byte
for byte.

File format (one file per case: <op>_<k>.bin for op cases, block_<k>.bin for
blocks):

    FBFX1\\n
    then, repeated, one named array:
        <name> <d0> <d1> <d2> <d3>\\n      (ASCII, one line, 4 dims always)
        d0*d1*d2*d3 little-endian IEEE float64 values
    end\\n

Op cases (<op>_<k>.bin) hold
    attr.<field>   every field of fb_op_attr (src/ops/op.h), one value each
    in<i>          inputs, NCHW (labels of softmax_ce as float class indices)
    par<j>         parameters in op order (conv: weight[, bias];
                   batchnorm: weight, bias, running_mean, running_var;
                   linear: weight (C_out, C_in, 1, 1)[, bias])
    dout           upstream gradient (same shape as out)
    out            forward output
    din<i>         d(sum(out * dout)) / d(in<i>) for differentiable inputs
    dpar<j>        same for trainable parameters
    par_after<j>   batchnorm only: all parameters after one forward (training
                   mode updates running_mean / running_var, PyTorch momentum
                   semantics with the unbiased batch variance)
focal_loss cases also hold attr.alpha and attr.gamma (fields appended to
fb_op_attr later; other ops' files leave them out, i.e. at their defaults).
Attribute floats (eps, momentum, label_smoothing) are float32-representable so
the C code (which stores them as float) computes with the very same numbers.

Block cases (block_<k>.bin) hold
    block.k, block.se, block.c_in, block.c_out, block.stride, block.expansion,
    block.mid, block.se_mid, block.n, block.h, block.w   (scalars)
    x, dout, out, dx
    param:<name>, grad:<name> (trainable params), after:<name> (BN running
    stats after the training-mode forward), for names (in this order)
        pw.conv.weight, pw.bn.{weight,bias,running_mean,running_var} (if mid != c_in)
        dw.conv.weight, dw.bn.{...}
        se.fc1.weight, se.fc1.bias, se.fc2.weight, se.fc2.bias       (if SE)
        pwl.conv.weight, pwl.bn.{...}
    i.e. src/nn/blocks.c's parameter names without the block prefix.
    The block is docs/method.md section 2's IRF block: 1x1 conv + BN + hswish, kxk
    depthwise conv (stride s, pad k/2) + BN + hswish, SE (gap -> 1x1 conv with
    bias -> hswish -> 1x1 conv with bias -> hsigmoid -> channel multiply),
    1x1 conv + BN, residual add when c_in == c_out and s == 1. BN in training
    mode, eps 1e-5, momentum 0.1 (float32-rounded).
"""
import os
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # fixed summation order -> byte-identical output

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "torch")


def f32(v):
    return float(np.float32(v))


ATTR_FIELDS = ["kh", "kw", "sh", "sw", "pad_t", "pad_l", "pad_b", "pad_r", "groups", "c_out",
               "has_bias", "eps", "momentum", "training", "scale", "label_smoothing",
               "ignore_index"]
ATTR_DEFAULT = dict(kh=1, kw=1, sh=1, sw=1, pad_t=0, pad_l=0, pad_b=0, pad_r=0, groups=1, c_out=0,
                    has_bias=0, eps=f32(1e-5), momentum=f32(0.1), training=1, scale=2,
                    label_smoothing=0.0, ignore_index=-1)


def shape4(t):
    s = list(t.shape)
    if len(s) > 4:
        raise ValueError("rank > 4")
    if len(s) == 0:
        return [1, 1, 1, 1]
    if len(s) == 1:
        return [s[0], 1, 1, 1]
    if len(s) == 2:
        return [s[0], s[1], 1, 1]
    return s + [1] * (4 - len(s))


def write_fixture(path, arrays):
    """arrays: list of (name, tensor or float, optional explicit 4-d shape)."""
    buf = bytearray(b"FBFX1\n")
    for item in arrays:
        name, val = item[0], item[1]
        t = val if isinstance(val, torch.Tensor) else torch.tensor([float(val)])
        t = t.detach().to(torch.float64).contiguous()
        shp = item[2] if len(item) > 2 else shape4(t)
        flat = t.reshape(-1).tolist()
        assert len(flat) == shp[0] * shp[1] * shp[2] * shp[3], name
        assert " " not in name and len(name) < 96
        buf += ("%s %d %d %d %d\n" % (name, *shp)).encode()
        buf += struct.pack("<%dd" % len(flat), *flat)
    buf += b"end\n"
    with open(path, "wb") as f:
        f.write(bytes(buf))
    return len(buf)


def gen_for(tag):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(tag.encode()))
    return g


def randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g) * scale


def uniform(g, lo, hi, *shape):
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def away_from_kinks(x, kinks=(-3.0, 0.0, 3.0, 6.0), margin=1e-2):
    """Moves values within `margin` of a kink to kink +/- margin (away from it)."""
    x = x.clone()
    for k in kinks:
        d = x - k
        close = d.abs() < margin
        x[close] = k + torch.where(d[close] >= 0, torch.tensor(margin), torch.tensor(-margin))
    return x


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def run_case(op, k, attr, inputs, params, fn, diff_in=None, diff_par=None, g=None,
             dout_shape=None, bn_after=False, extra_attr=()):
    """inputs/params: lists of tensors (4-d shapes given by their own rank).
    fn(inputs, params) -> output. Writes <op>_<k>.bin; returns its size."""
    a = dict(ATTR_DEFAULT)
    a.update(attr)
    n_in = len(inputs)
    diff_in = list(range(n_in)) if diff_in is None else diff_in
    diff_par = list(range(len(params))) if diff_par is None else diff_par
    ins = [leaf(t) if i in diff_in else t.detach().clone() for i, t in enumerate(inputs)]
    pars = [leaf(t) if j in diff_par else t.detach().clone() for j, t in enumerate(params)]
    out = fn(ins, pars)
    dout = randn(g, *out.shape) if out.dim() > 0 else randn(g, 1).reshape(())
    (out * dout).sum().backward()
    arrays = [("attr." + f, a[f]) for f in ATTR_FIELDS]
    arrays += [("attr." + f, v) for f, v in extra_attr]  # fields newer than ATTR_FIELDS
    for i, t in enumerate(inputs):
        arrays.append(("in%d" % i, t))
    for j, t in enumerate(params):
        arrays.append(("par%d" % j, t))
    arrays.append(("dout", dout, shape4(out)))
    arrays.append(("out", out, shape4(out)))
    for i in diff_in:
        arrays.append(("din%d" % i, ins[i].grad))
    for j in diff_par:
        arrays.append(("dpar%d" % j, pars[j].grad))
    if bn_after:
        for j, t in enumerate(pars):
            arrays.append(("par_after%d" % j, t))
    return write_fixture(os.path.join(OUT_DIR, "%s_%d.bin" % (op, k)), arrays)


# ---------------------------------------------------------------------------- ops

def conv_cases():
    # (N, Cin, H, W, Cout, kh, kw, sh, sw, (t, l, b, r), groups, bias)
    cases = [
        (2, 3, 7, 6, 4, 3, 3, 2, 2, (0, 1, 1, 2), 1, 1),   # stride 2, asymmetric pad, bias
        (2, 4, 5, 5, 6, 3, 3, 1, 1, (1, 1, 1, 1), 2, 0),   # groups 2
        (2, 6, 9, 9, 6, 5, 5, 2, 2, (2, 2, 2, 2), 6, 1),   # depthwise 5x5 stride 2, bias
    ]
    size = 0
    for k, (n, ci, h, w, co, kh, kw, sh, sw, pad, groups, bias) in enumerate(cases):
        g = gen_for("conv2d%d" % k)
        x = randn(g, n, ci, h, w)
        wt = randn(g, co, ci // groups, kh, kw, scale=(2.0 / (ci // groups * kh * kw)) ** 0.5)
        params = [wt] + ([randn(g, co, scale=0.5)] if bias else [])
        t, l, b, r = pad

        def fn(ins, pars, sh=sh, sw=sw, t=t, l=l, b=b, r=r, groups=groups):
            return F.conv2d(F.pad(ins[0], (l, r, t, b)), pars[0],
                            pars[1] if len(pars) > 1 else None, stride=(sh, sw), groups=groups)

        attr = dict(kh=kh, kw=kw, sh=sh, sw=sw, pad_t=t, pad_l=l, pad_b=b, pad_r=r,
                    groups=groups, c_out=co, has_bias=bias)
        size += run_case("conv2d", k, attr, [x], params, fn, g=g)
    return size


def batchnorm_cases():
    cases = [((2, 3, 4, 5), 1, 0.1, 1e-5), ((2, 3, 3, 3), 0, 0.1, 1e-5),
             ((1, 4, 6, 6), 1, 0.3, 1e-3)]
    size = 0
    for k, (shp, training, mom, eps) in enumerate(cases):
        g = gen_for("batchnorm%d" % k)
        c = shp[1]
        x = randn(g, *shp, scale=2.0) + 0.5
        params = [uniform(g, 0.5, 1.5, c), randn(g, c, scale=0.3), randn(g, c, scale=0.3),
                  uniform(g, 0.5, 2.0, c)]
        mom, eps = f32(mom), f32(eps)

        def fn(ins, pars, training=training, mom=mom, eps=eps):
            return F.batch_norm(ins[0], pars[2], pars[3], pars[0], pars[1],
                                training=bool(training), momentum=mom, eps=eps)

        size += run_case("batchnorm", k, dict(training=training, momentum=mom, eps=eps), [x],
                         params, fn, diff_par=[0, 1], g=g, bn_after=True)
    return size


def activation_cases():
    fns = {
        "relu": F.relu,
        "relu6": F.relu6,
        "hswish": lambda x: x * F.relu6(x + 3.0) / 6.0,
        "hsigmoid": lambda x: F.relu6(x + 3.0) / 6.0,
        "sigmoid": torch.sigmoid,
    }
    size = 0
    for name, f in fns.items():
        for k, shp in enumerate([(2, 3, 4, 5), (1, 2, 3, 7)]):
            g = gen_for("%s%d" % (name, k))
            x = away_from_kinks(uniform(g, -8.0, 8.0, *shp))
            size += run_case(name, k, {}, [x], [], lambda ins, pars, f=f: f(ins[0]), g=g)
    return size


def gap_cases():
    size = 0
    for k, shp in enumerate([(2, 3, 4, 5), (1, 5, 7, 3)]):
        g = gen_for("gap%d" % k)
        size += run_case("gap", k, {}, [randn(g, *shp)], [],
                         lambda ins, pars: ins[0].mean(dim=(2, 3), keepdim=True), g=g)
    return size


def chanmul_cases():
    size = 0
    for k, (n, c, h, w) in enumerate([(2, 4, 3, 5), (1, 3, 1, 1)]):
        g = gen_for("chanmul%d" % k)
        size += run_case("chanmul", k, {}, [randn(g, n, c, h, w), randn(g, n, c, 1, 1)], [],
                         lambda ins, pars: ins[0] * ins[1], g=g)
    return size


def add_cases():
    size = 0
    for k, (m, shp) in enumerate([(3, (2, 3, 4, 4)), (2, (1, 5, 2, 3))]):
        g = gen_for("add%d" % k)
        size += run_case("add", k, {}, [randn(g, *shp) for _ in range(m)], [],
                         lambda ins, pars: sum(ins[1:], ins[0]), g=g)
    return size


def upsample_cases():
    size = 0
    for k, (scale, shp) in enumerate([(2, (2, 3, 3, 4)), (4, (1, 2, 3, 3))]):
        g = gen_for("upsample_nearest%d" % k)
        size += run_case("upsample_nearest", k, dict(scale=scale), [randn(g, *shp)], [],
                         lambda ins, pars, s=scale: F.interpolate(ins[0], scale_factor=s,
                                                                  mode="nearest"), g=g)
        g = gen_for("upsample_bilinear%d" % k)
        size += run_case("upsample_bilinear", k, dict(scale=scale), [randn(g, *shp)], [],
                         lambda ins, pars, s=scale: F.interpolate(
                             ins[0], scale_factor=s, mode="bilinear", align_corners=False), g=g)
    return size


def concat_cases():
    size = 0
    for k, (chs, n, h, w) in enumerate([((2, 3, 1), 2, 3, 4), ((4, 2), 1, 2, 2)]):
        g = gen_for("concat%d" % k)
        size += run_case("concat", k, {}, [randn(g, n, c, h, w) for c in chs], [],
                         lambda ins, pars: torch.cat(ins, dim=1), g=g)
    return size


def linear_cases():
    size = 0
    for k, (n, ci, co, bias) in enumerate([(3, 5, 4, 1), (2, 7, 3, 0)]):
        g = gen_for("linear%d" % k)
        x = randn(g, n, ci, 1, 1)
        params = [randn(g, co, ci, 1, 1, scale=ci ** -0.5)] + ([randn(g, co)] if bias else [])

        def fn(ins, pars):
            y = F.linear(ins[0].reshape(ins[0].shape[0], -1), pars[0].reshape(pars[0].shape[0], -1),
                         pars[1] if len(pars) > 1 else None)
            return y.reshape(y.shape[0], y.shape[1], 1, 1)

        size += run_case("linear", k, dict(c_out=co, has_bias=bias), [x], params, fn, g=g)
    return size


def manual_ce(logits, labels, eps, ignore):
    """Independent formula for the mean smoothed CE, to confirm torch's semantics."""
    c = logits.shape[1]
    lp = F.log_softmax(logits, dim=1).movedim(1, -1).reshape(-1, c)
    y = labels.reshape(-1).long()
    valid = y != ignore
    yv = y[valid]
    nll = -lp[valid].gather(1, yv[:, None])[:, 0]
    smooth = -lp[valid].mean(dim=1)
    return ((1 - eps) * nll + eps * smooth).sum() / valid.sum()


def softmax_ce_cases():
    # (logit shape, label_smoothing, ignore_index)
    cases = [((6, 5, 1, 1), 0.1, 255), ((2, 4, 3, 3), 0.1, 255), ((4, 3, 1, 1), 0.0, -1)]
    size = 0
    for k, (shp, ls, ign) in enumerate(cases):
        g = gen_for("softmax_ce%d" % k)
        n, c, h, w = shp
        logits = randn(g, *shp, scale=2.0)
        labels = torch.randint(0, c, (n, 1, h, w), generator=g).to(torch.float64)
        if ign >= 0:  # mark about a quarter of the items ignored, but never all
            mask = torch.rand(n, 1, h, w, generator=g) < 0.25
            mask.view(-1)[0] = False
            mask.view(-1)[1] = True
            labels[mask] = float(ign)
        ls = f32(ls)

        def fn(ins, pars, ls=ls, ign=ign):
            x, y = ins[0], ins[1]
            if x.shape[2] == 1 and x.shape[3] == 1:
                x2, y2 = x.reshape(x.shape[0], x.shape[1]), y.reshape(-1).long()
            else:
                x2, y2 = x, y[:, 0].long()
            return F.cross_entropy(x2, y2, label_smoothing=ls,
                                   ignore_index=ign if ign >= 0 else -100, reduction="mean")

        ref = fn([logits, labels], [])
        man = manual_ce(logits, labels, ls, ign)
        assert abs(ref.item() - man.item()) < 1e-12, (ref.item(), man.item())
        size += run_case("softmax_ce", k, dict(label_smoothing=ls, ignore_index=ign),
                         [logits, labels], [], fn, diff_in=[0], g=g)
    return size


# ------------------------------------------------------- detection head ops (det)

def concat_spatial_cases():
    size = 0
    for k, (n, c, hws) in enumerate([(2, 3, ((4, 4), (2, 2), (1, 1))), (1, 2, ((3, 5), (2, 1)))]):
        g = gen_for("concat_spatial%d" % k)
        size += run_case("concat_spatial", k, {}, [randn(g, n, c, h, w) for h, w in hws], [],
                         lambda ins, pars: torch.cat([t.flatten(2) for t in ins], dim=2)
                         .unsqueeze(3), g=g)
    return size


FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0  # fb_attr_default(); float32-exact


def focal_reference(x, t, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss (reduction 'sum') written out:
    ce = BCE-with-logits, p_t = p y + (1-p)(1-y), loss = alpha_t ce (1-p_t)^gamma."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def focal_loss_cases():
    # logits (N, K, P, 1), targets: class index, -1 background, <= -2 ignored
    cases = [(2, 3, 10), (1, 5, 7)]
    size = 0
    for k, (n, kk, p) in enumerate(cases):
        g = gen_for("focal_loss%d" % k)
        x = randn(g, n, kk, p, 1, scale=2.0)
        lab = torch.randint(-1, kk, (n, 1, p, 1), generator=g).to(torch.float64)
        lab.view(-1)[0] = 0.0   # at least one positive
        lab.view(-1)[1] = -1.0  # one background
        lab.view(-1)[2] = -2.0  # one ignored
        if k == 1:
            lab.view(-1)[3] = -5.0

        def fn(ins, pars, kk=kk):
            logits, y = ins[0], ins[1][:, 0]  # (N, K, P, 1), (N, P, 1)
            onehot = torch.stack([(y == c).to(logits.dtype) for c in range(kk)], dim=1)
            keep = (y > -2).to(logits.dtype).unsqueeze(1)
            loss = (focal_reference(logits, onehot, FOCAL_ALPHA, FOCAL_GAMMA) * keep).sum()
            return loss / max(1.0, float((y >= 0).sum()))

        size += run_case("focal_loss", k, {}, [x, lab], [], fn, diff_in=[0], g=g,
                         extra_attr=(("alpha", FOCAL_ALPHA), ("gamma", FOCAL_GAMMA)))
    return size


def giou_ltrb(p, t):
    """1 - GIoU of boxes [-l, r] x [-t, b] given as (N, 4, P, 1) distances."""
    pl, pt, pr, pb = p.unbind(1)
    tl, tt, tr, tb = t.unbind(1)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * \
        (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    encl = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * \
        (torch.maximum(pt, tt) + torch.maximum(pb, tb))
    return 1 - (inter / union - (encl - union) / encl)


def giou_corners(p, t):
    """The same from corner boxes, as torchvision's generalized_box_iou does it."""
    def corners(d):
        return torch.stack([-d[:, 0], -d[:, 1], d[:, 2], d[:, 3]], dim=-1)
    a, b = corners(p), corners(t)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a) + area(b) - inter
    lt_c = torch.minimum(a[..., :2], b[..., :2])
    rb_c = torch.maximum(a[..., 2:], b[..., 2:])
    wh_c = rb_c - lt_c
    encl = wh_c[..., 0] * wh_c[..., 1]
    return 1 - (inter / union - (encl - union) / encl)


def giou_loss_cases():
    # pred (N, 4, P, 1) raw (some < 0: counted as 0), target ltrb > 0, weight: centerness or 0
    cases = [(2, 12), (1, 9)]
    size = 0
    for k, (n, p) in enumerate(cases):
        g = gen_for("giou_loss%d" % k)
        pred = uniform(g, -0.5, 4.0, n, 4, p, 1)
        tgt = uniform(g, 0.2, 4.0, n, 4, p, 1)
        w = uniform(g, 0.05, 1.0, n, 1, p, 1)
        w[torch.rand(n, 1, p, 1, generator=g) < 0.3] = 0.0
        w.view(-1)[0] = 0.7

        def fn(ins, pars):
            pc = ins[0].clamp(min=0)
            per = giou_ltrb(pc, ins[1])[:, None]  # (N, 1, P, 1)
            wt = ins[2]
            return (wt * per).sum() / wt.sum()

        pc = pred.clamp(min=0)
        d = (giou_ltrb(pc, tgt) - giou_corners(pc, tgt)).abs().max().item()
        assert d < 1e-12, d
        size += run_case("giou_loss", k, {}, [pred, tgt, w], [], fn, diff_in=[0], g=g)
    return size


def bce_logits_cases():
    cases = [(2, 11), (1, 6)]
    size = 0
    for k, (n, p) in enumerate(cases):
        g = gen_for("bce_logits%d" % k)
        x = randn(g, n, 1, p, 1, scale=2.0)
        t = uniform(g, 0.0, 1.0, n, 1, p, 1)
        m = (torch.rand(n, 1, p, 1, generator=g) < 0.6).to(torch.float64)
        m.view(-1)[0] = 1.0
        m.view(-1)[1] = 0.0

        def fn(ins, pars):
            keep = ins[2] > 0
            loss = F.binary_cross_entropy_with_logits(ins[0], ins[1], reduction="none")
            return loss[keep].sum() / max(1.0, float(keep.sum()))

        size += run_case("bce_logits", k, {}, [x, t, m], [], fn, diff_in=[0], g=g)
    return size


# ---------------------------------------------------------------------------- blocks

def div8(n):
    if float(n) == int(n) and int(n) % 8 == 0:
        return int(n)
    v = int(np.floor(n / 8.0 + 0.5))
    v = max(v, 1) * 8
    if v < 0.95 * n:
        v += 8
    return max(v, 8)


def hswish(x):
    return x * F.relu6(x + 3.0) / 6.0


def hsigmoid(x):
    return F.relu6(x + 3.0) / 6.0


def block_case(k, kernel, se, c_in, c_out, stride, e, n=2, h=8, w=8):
    g = gen_for("block%d" % k)
    mid = div8(c_in * e)
    se_mid = div8(int(np.floor(mid * 0.25 / e)))
    mom, eps = f32(0.1), f32(1e-5)
    names, params = [], {}

    def add_conv(name, co, ci_per_group, kk):
        names.append(name + ".weight")
        params[name + ".weight"] = randn(g, co, ci_per_group, kk, kk,
                                         scale=(2.0 / (ci_per_group * kk * kk)) ** 0.5)

    def add_bn(name, c):
        for suffix, t in (("weight", uniform(g, 0.5, 1.5, c)), ("bias", randn(g, c, scale=0.3)),
                          ("running_mean", randn(g, c, scale=0.3)),
                          ("running_var", uniform(g, 0.5, 2.0, c))):
            names.append(name + "." + suffix)
            params[name + "." + suffix] = t

    if mid != c_in:
        add_conv("pw.conv", mid, c_in, 1)
        add_bn("pw.bn", mid)
    add_conv("dw.conv", mid, 1, kernel)
    add_bn("dw.bn", mid)
    if se:
        add_conv("se.fc1", se_mid, mid, 1)
        names.append("se.fc1.bias")
        params["se.fc1.bias"] = randn(g, se_mid, scale=0.3)
        add_conv("se.fc2", mid, se_mid, 1)
        names.append("se.fc2.bias")
        params["se.fc2.bias"] = randn(g, mid, scale=0.3)
    add_conv("pwl.conv", c_out, mid, 1)
    add_bn("pwl.bn", c_out)

    x = randn(g, n, c_in, h, w)
    buffers = lambda nm: nm.endswith("running_mean") or nm.endswith("running_var")
    P = {nm: (t.clone() if buffers(nm) else leaf(t)) for nm, t in params.items()}
    xl = leaf(x)

    def bn(t, name):
        return F.batch_norm(t, P[name + ".running_mean"], P[name + ".running_var"],
                            P[name + ".weight"], P[name + ".bias"], training=True, momentum=mom,
                            eps=eps)

    t = xl
    if mid != c_in:
        t = hswish(bn(F.conv2d(t, P["pw.conv.weight"]), "pw.bn"))
    t = hswish(bn(F.conv2d(t, P["dw.conv.weight"], stride=stride, padding=kernel // 2, groups=mid),
                  "dw.bn"))
    if se:
        s = t.mean(dim=(2, 3), keepdim=True)
        s = hswish(F.conv2d(s, P["se.fc1.weight"], P["se.fc1.bias"]))
        s = hsigmoid(F.conv2d(s, P["se.fc2.weight"], P["se.fc2.bias"]))
        t = t * s
    t = bn(F.conv2d(t, P["pwl.conv.weight"]), "pwl.bn")
    if c_in == c_out and stride == 1:
        t = t + xl
    out = t
    dout = randn(g, *out.shape)
    (out * dout).sum().backward()

    arrays = [("block.k", kernel), ("block.se", se), ("block.c_in", c_in), ("block.c_out", c_out),
              ("block.stride", stride), ("block.expansion", e), ("block.mid", mid),
              ("block.se_mid", se_mid), ("block.n", n), ("block.h", h), ("block.w", w),
              ("x", x), ("dout", dout), ("out", out), ("dx", xl.grad)]
    for nm in names:
        arrays.append(("param:" + nm, params[nm]))
    for nm in names:
        if buffers(nm):
            arrays.append(("after:" + nm, P[nm]))
        else:
            arrays.append(("grad:" + nm, P[nm].grad))
    return write_fixture(os.path.join(OUT_DIR, "block_%d.bin" % k), arrays)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        if f.endswith(".bin"):
            os.remove(os.path.join(OUT_DIR, f))
    total = 0
    total += conv_cases()
    total += batchnorm_cases()
    total += activation_cases()
    total += gap_cases()
    total += chanmul_cases()
    total += add_cases()
    total += upsample_cases()
    total += concat_cases()
    total += linear_cases()
    total += softmax_ce_cases()
    total += concat_spatial_cases()
    total += focal_loss_cases()
    total += giou_loss_cases()
    total += bce_logits_cases()
    total += block_case(0, 5, 1, 16, 16, 1, 3)   # ir_k5_sehsig_hs, residual
    total += block_case(1, 3, 1, 16, 24, 2, 4)   # ir_k3_sehsig_hs, stride 2, no residual
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT_DIR)), total,
                                               os.path.normpath(OUT_DIR)))


if __name__ == "__main__":
    main()
