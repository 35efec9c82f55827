#!/usr/bin/python3
"""Loads weights saved by fbnet (OUT/weights.safetensors) into the matching
PyTorch model of bench/torch_model.py.

    /usr/bin/python3 scripts/fbnet_to_torch.py runs/cls/weights.safetensors \
        --arch archs/fbnetv3_a.json [--check-fmnist 1000] [--save model.pt]

The network is built from the arch file with the build options stored in the
file's "__metadata__" (input_size, width, in_channels, num_classes, padding),
fbnet's parameter names are mapped to the model's state_dict keys, and the
state dict is loaded with strict=True. --check-fmnist N evaluates the model on
the first N Fashion-MNIST test images, preprocessed exactly like `fbnet eval`
(src/data/augment.c), and prints {"images", "top1", "top5"} as the last line.

The file is read with the `safetensors` package when it is installed
(safetensors.torch.load_file) and otherwise with the small reader below
(struct + json + numpy), since Debian does not package safetensors.
Exit status: 0 ok, 1 error (bad file, names or shapes that do not match).
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_model  # noqa: E402  (bench/torch_model.py)

try:  # the real package, when present
    from safetensors import safe_open as _st_safe_open
    from safetensors.torch import load_file as _st_load_file
except ImportError:  # Debian: no python3-safetensors
    _st_safe_open = None
    _st_load_file = None

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_MEAN = 0.2860  # src/data/augment.h
FMNIST_STD = 0.3530


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


# ---- names ------------------------------------------------------------------

# fbnet block parts (src/nn/blocks.c) -> torch_model submodules:
#   conv_k<k>_hs: conv, bn                     -> Stem.conv, Stem.bn
#   ir_k<k>_hs:   {pw,dw,pwl}.conv, .bn, se.fc1, se.fc2
#                                              -> {pw,dw,pwl}.0 (Conv2d), .1 (BN), se.fc1/fc2
#   ir_pool_hs:   pw.conv, pw.bn, fc.conv      -> pw.0, pw.1, fc
# and the block prefix "<stage>.<i>" -> "features.<stage>_<i>"; "classifier"
# (src/nn/net.c) is the model's classifier.
_BLOCK_RE = re.compile(r"^(.+?)\.(\d+)\.(.+)$")
_PART_RULES = [
    (re.compile(r"^(pw|dw|pwl)\.conv\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(pw|dw|pwl)\.bn\.(weight|bias|running_mean|running_var)$"), r"\1.1.\2"),
    (re.compile(r"^fc\.conv\.(weight|bias)$"), r"fc.\1"),
    (re.compile(r"^(se\.fc[12])\.(weight|bias)$"), r"\1.\2"),
    (re.compile(r"^conv\.(weight|bias)$"), r"conv.\1"),
    (re.compile(r"^bn\.(weight|bias|running_mean|running_var)$"), r"bn.\1"),
]


def torch_key(name):
    """The torch_model state_dict key of an fbnet parameter name, or None."""
    if re.match(r"^classifier\.(weight|bias)$", name):
        return name
    m = _BLOCK_RE.match(name)
    if not m:
        return None
    stage, idx, part = m.groups()
    for rx, repl in _PART_RULES:
        if rx.match(part):
            return "features.%s_%s.%s" % (stage, idx, rx.sub(repl, part))
    return None


def map_state_dict(weights, model):
    """fbnet tensors -> a full state dict for model. Raises LoadError naming
    every unknown, missing or mis-shaped tensor; fills BN num_batches_tracked
    (fbnet does not store it) from the model. Returns (sd, n_filled)."""
    want = model.state_dict()
    sd, unknown, bad_shape, seen = {}, [], [], set()
    for name, t in weights.items():
        key = torch_key(name)
        if key is None or key not in want:
            unknown.append(name if key is None else "%s (-> %s)" % (name, key))
            continue
        seen.add(key)
        if tuple(t.shape) != tuple(want[key].shape):
            bad_shape.append("%s: file %s, model %s (%s)" % (name, tuple(t.shape),
                                                              tuple(want[key].shape), key))
            continue
        sd[key] = t.to(want[key].dtype)
    filled = 0
    for key, v in want.items():
        if key not in sd and key.endswith(".num_batches_tracked"):
            sd[key] = v.clone()
            filled += 1
    missing = [k for k in want if k not in seen and k not in sd]
    problems = []
    if unknown:
        problems.append("%d tensor(s) with no place in the model: %s"
                        % (len(unknown), ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else "")))
    if missing:
        problems.append("%d model tensor(s) not in the file: %s"
                        % (len(missing), ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")))
    if bad_shape:
        problems.append("shape mismatch: " + "; ".join(bad_shape[:8]))
    if problems:
        raise LoadError("weights do not match the model built from the arch file: "
                        + " | ".join(problems))
    return sd, filled


# ---- build options ----------------------------------------------------------

def build_options(meta, a):
    """input_size, width, in_channels, num_classes, standard padding from the
    weights' metadata; command-line values fill in what the metadata lacks."""
    def get(key, conv, cli):
        if key in meta:
            try:
                return conv(meta[key])
            except ValueError:
                raise LoadError("%s: __metadata__.%s = %r is not a valid value"
                                % (a.weights, key, meta[key]))
        if cli is None:
            raise LoadError("%s: __metadata__ has no '%s'; pass it on the command line"
                            % (a.weights, key))
        return cli
    if "tasks" in meta:
        try:
            tasks = int(meta["tasks"])
        except ValueError:
            raise LoadError("%s: __metadata__.tasks = %r" % (a.weights, meta["tasks"]))
        if not tasks & 1:
            raise LoadError("%s: these weights have no classifier (tasks %d): only "
                            "classification weights map onto bench/torch_model.py"
                            % (a.weights, tasks))
    opts = {
        "input_size": get("input_size", int, a.input),
        "width": get("width", float, a.width),
        "in_channels": get("in_channels", int, a.in_channels),
        "num_classes": get("num_classes", int, a.classes),
        "padding": get("padding", str, a.padding),
    }
    if opts["padding"] not in ("standard", "explicit"):
        raise LoadError("%s: padding '%s' (standard or explicit)" % (a.weights, opts["padding"]))
    if not (opts["input_size"] > 0 and opts["in_channels"] > 0 and opts["num_classes"] > 0
            and opts["width"] > 0 and math.isfinite(opts["width"])):
        raise LoadError("%s: bad build options %s" % (a.weights, opts))
    return opts


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
            outs.append(model(torch.from_numpy(x[s:s + batch])).numpy())
    logits = np.concatenate(outs)
    if not np.all(np.isfinite(logits)):
        raise LoadError("the model produced non-finite logits")
    return {"images": n, "top1": round(topk_hits(logits, y, 1) / n, 5),
            "top5": round(topk_hits(logits, y, min(5, logits.shape[1])) / n, 5)}


# ---- main -------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Load fbnet weights (safetensors) into bench/torch_model.py's FBNet.")
    ap.add_argument("weights", help="fbnet weights (.safetensors)")
    ap.add_argument("--arch", default=None,
                    help="arch file (default: archs/<metadata arch>.json of this repository)")
    ap.add_argument("--input", type=int, default=None, help="input size if the metadata lacks it")
    ap.add_argument("--width", type=float, default=None, help="width if the metadata lacks it")
    ap.add_argument("--in-channels", type=int, default=None)
    ap.add_argument("--classes", type=int, default=None)
    ap.add_argument("--padding", choices=["standard", "explicit"], default=None)
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
        weights, meta, reader = load_weights(a.weights)
        if meta.get("format", "fbnet-weights-1") != "fbnet-weights-1":
            raise LoadError("%s: format '%s' (expected fbnet-weights-1; a checkpoint holds "
                            "optimizer state too: use weights.safetensors)"
                            % (a.weights, meta["format"]))
        arch_path = a.arch
        if arch_path is None and "arch_json" in meta:
            arch_path = a.weights + " (arch_json)"
            try:
                arch = json.loads(meta["arch_json"])
            except ValueError as e:
                raise LoadError("%s: %s" % (arch_path, e))
        else:
            if arch_path is None:
                if "arch" not in meta:
                    raise LoadError("%s: no arch name in __metadata__: pass --arch" % a.weights)
                arch_path = os.path.join(ROOT, "archs", meta["arch"] + ".json")
            try:
                arch = torch_model.load_arch(arch_path)
            except (OSError, ValueError) as e:
                raise LoadError("%s: %s" % (arch_path, e))
        if "stages" in arch:
            raise LoadError("%s: a multi-path (searched or supernet) architecture: this script "
                            "builds chain arch files only (multi-path PyTorch export is not "
                            "supported yet; fbnet eval/predict run it)" % arch_path)
        opts = build_options(meta, a)
        if "arch" in meta and arch.get("name") not in (None, meta["arch"]):
            raise LoadError("%s: the weights are of arch '%s', the arch file is '%s'"
                            % (a.weights, meta["arch"], arch.get("name")))
        try:
            model = torch_model.FBNet(arch, opts["in_channels"], opts["num_classes"],
                                      opts["width"], opts["padding"] == "standard")
        except ValueError as e:
            raise LoadError("%s: %s" % (arch_path, e))
        sd, filled = map_state_dict(weights, model)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise LoadError("load_state_dict(strict=True): %s" % e)
        n_par = sum(int(t.numel()) for t in weights.values())
        print("weights  %s (%s): %d tensors, %d values" % (a.weights, reader, len(weights), n_par))
        print("model    %s from %s: input %d, width %g, in_channels %d, classes %d, %s padding"
              % (arch.get("name", "?"), arch_path, opts["input_size"], opts["width"],
                 opts["in_channels"], opts["num_classes"], opts["padding"]))
        print("loaded   %d state_dict entries with strict=True (%d num_batches_tracked filled)"
              % (len(sd), filled))
        if a.save:
            torch.save(model.state_dict(), a.save)
            print("saved    %s" % a.save)
        if a.check_fmnist is not None:
            res = check_fmnist(model, opts, a.check_fmnist, a.fmnist_dir, max(1, a.batch))
            print(json.dumps(res))
    except LoadError as e:
        print("fbnet_to_torch: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
