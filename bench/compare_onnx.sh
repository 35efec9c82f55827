#!/usr/bin/env bash
# Inference side by side: fbnet vs onnxruntime (npm onnxruntime-node) on the
# same network, input, batch and threads, in one run.
#
#   bash bench/compare_onnx.sh ARCH INPUT BATCH [--width W] [--threads T] [--steps N]
#        [--classes K]
#
# `fbnet bench train --forward` times fbnet and writes the very network it
# timed (random weights, classifier head) with `--onnx`; scripts/onnx_run.js
# then times onnxruntime on that file (intra-op threads = T, median of N
# runs). Prints both JSON lines and, last, speedup_vs_onnxruntime=X.XX
# (onnxruntime sec/step divided by fbnet sec/step).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '5,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
arch=$1 input=$2 batch=$3
shift 3
width=1.0 threads=2 steps=10 classes=1000
while [ $# -gt 0 ]; do
  case $1 in
    --width) width=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --classes) classes=$2; shift 2 ;;
    *) echo "compare_onnx.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
FBNET=${FBNET:-./build/fbnet}
[ -x "$FBNET" ] || { echo "compare_onnx.sh: $FBNET not found: run 'make' first" >&2; exit 1; }
NODE_PATH=$(bash scripts/install_ort.sh)
export NODE_PATH OMP_NUM_THREADS=$threads
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fb=$("$FBNET" bench train --arch "$arch" --input "$input" --batch "$batch" --width "$width" \
       --classes "$classes" --forward --threads "$threads" --steps "$steps" --onnx "$tmp/net.onnx" 2> /dev/null)
ort=$(ONNX_INPUT_SHAPE="[1,3,$input,$input]" node scripts/onnx_run.js "$tmp/net.onnx" --bench "$batch" \
       --steps "$steps" --threads "$threads")
echo "fbnet:       $fb"
echo "onnxruntime: $ort"
/usr/bin/python3 -c 'import json, sys
f, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("speedup_vs_onnxruntime=%.2f" % (o["sec_per_step"] / f["sec_per_step"]))' "$fb" "$ort"
