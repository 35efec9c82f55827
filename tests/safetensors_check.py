#!/usr/bin/python3
"""Independent reader for safetensors files written by fbnet (struct + json +
numpy only; Debian has no python3-safetensors).

    /usr/bin/python3 tests/safetensors_check.py FILE EXPECTED.json

EXPECTED.json: {"tensors": {name: {"shape": [...], "values": [...]}},
                "metadata": {key: value}}
Checks the layout rules of the format (little-endian u64 header size, header
length a multiple of 8, data_offsets contiguous and covering the data) and
that every expected tensor has exactly the expected shape and float32 values.
Exits 0 when everything matches, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np


def fail(msg):
    print("safetensors_check: FAIL:", msg)
    sys.exit(1)


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    path, expected_path = argv[1], argv[2]
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8 != 0:
        fail("header length %d is not a multiple of 8" % n)
    if 8 + n > len(raw):
        fail("header length %d beyond the file" % n)
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = []
    arrays = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            fail("%s: dtype %s" % (name, info["dtype"]))
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != 4 * count:
            fail("%s: offsets span %d bytes for shape %s" % (name, end - begin, shape))
        spans.append((begin, end))
        arrays[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape)
    pos = 0
    for begin, end in sorted(spans):
        if begin != pos:
            fail("gap or overlap at byte %d" % begin)
        pos = end
    if pos != len(data):
        fail("data section has %d bytes, tensors cover %d" % (len(data), pos))

    expected = json.load(open(expected_path))
    for key, value in expected.get("metadata", {}).items():
        if meta.get(key) != value:
            fail("metadata %r: %r, expected %r" % (key, meta.get(key), value))
    for name, want in expected["tensors"].items():
        if name not in arrays:
            fail("tensor %s missing" % name)
        got = arrays[name]
        if list(got.shape) != list(want["shape"]):
            fail("%s: shape %s, expected %s" % (name, list(got.shape), want["shape"]))
        exp = np.asarray(want["values"], dtype=np.float32).reshape(got.shape)
        if not np.array_equal(got, exp):
            fail("%s: values differ (max |diff| %g)" % (name, float(np.max(np.abs(got - exp)))))
    print("safetensors_check: OK: %d tensors, %d metadata keys" % (len(arrays), len(meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
