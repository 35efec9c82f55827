#!/usr/bin/env bash
# The main job on built-in data (`make demo`). For now: train a width-scaled
# FBNetV3-A classifier on Fashion-MNIST, evaluate it, count its FLOPs.
# PRESET=small (default, a few minutes on 2 cores) or PRESET=full (the 92%
# recipe of README.md, about an hour).
set -euo pipefail
cd "$(dirname "$0")/.."
FBNET=${FBNET:-build/fbnet}
OUT=${OUT:-demo-out}
PRESET=${PRESET:-small}
ARCH=archs/fbnetv3_a.json
mkdir -p "$OUT"
case "$PRESET" in
  small) TRAIN=(--input 32 --padding standard --width 0.5 --epochs 2 --batch 64 --lr 0.2
                --train-limit 20000) ;;
  full)  TRAIN=(--input 32 --padding standard --width 0.5 --epochs 30 --batch 64 --lr 0.2) ;;
  *) echo "demo: PRESET must be small or full" >&2; exit 2 ;;
esac
echo "== fbnet demo ($PRESET preset): Fashion-MNIST classification with FBNetV3-A =="
"$FBNET" flops "$ARCH" --input 32 --padding standard --width 0.5 --classes 10 --in-channels 1 | tail -n 3
"$FBNET" train --task cls --arch "$ARCH" --data fashion-mnist --out "$OUT/cls" "${TRAIN[@]}"
"$FBNET" eval --task cls --arch "$ARCH" --weights "$OUT/cls/weights.safetensors" --data fashion-mnist
echo "weights: $OUT/cls/weights.safetensors  log: $OUT/cls/log.jsonl"
