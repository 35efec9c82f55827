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
src/nn/mp_build.c and src/nn/blocks.c build them: the module is
scripts/fbnet_torch.py's FBNet, the one PyTorch model of fbnet's arch files
(also used by bench/torch_model.py, torch_bench.py and torch_supernet.py);
this script is its loader, comparison and command line. The module's state_dict
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

Conventions checked against the C code (see scripts/fbnet_torch.py): BN
eps 1e-5 and momentum 0.1 with PyTorch's meaning (running = (1 - m) running
+ m batch, unbiased variance), eval mode uses the running statistics;
padding k/2 unless the arch gives dw_pad and the weights were trained with
--padding explicit; upsampling is nearest (FCOS top-down, cross-path terms)
or bilinear with align_corners=False (segmentation), integer factors.

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
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from fbnet_torch import (OUTPUTS, TASK_BITS, TASK_CLS, TASK_DET, TASK_SEG,  # noqa: E402
                         ArchError, FBNet, options)

try:  # the real package, when present
    from safetensors import safe_open as _st_safe_open
    from safetensors.torch import load_file as _st_load_file
except ImportError:  # Debian: no python3-safetensors
    _st_safe_open = None
    _st_load_file = None

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_MEAN = 0.2860  # src/data/augment.h
FMNIST_STD = 0.3530


class LoadError(ArchError):
    """A problem with the input files; main() prints it (and any ArchError of
    the model's build) and exits 1."""


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
    o = options(**o)  # fbnet's classifier: a pool only over a map larger than 1x1
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
    except ArchError as e:  # LoadError included
        print("fbnet_to_torch: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
