#!/usr/bin/env bash
# The main job on built-in data (`make demo`):
#   1. classification: a width-scaled FBNetV3-A on Fashion-MNIST, evaluated;
#   2. the demo scenes (fbnet data scenes);
#   3. detection and segmentation networks trained and evaluated on them;
#   4. a final table (task, MACs, params, metric).
# PRESET=small (default: about 4 minutes on 2 cores) or PRESET=full (the
# recipes whose numbers README.md quotes; about 2 hours on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
FBNET=${FBNET:-build/fbnet}
OUT=${OUT:-demo-out}
PRESET=${PRESET:-small}
ARCH=archs/fbnetv3_a.json
case "$PRESET" in
  small) CLS=(--epochs 2 --train-limit 20000); DENSE_INPUT=64; DENSE=(--epochs 6)
         SCENES=(--train 1000 --val 300 --proxy 100) ;;
  full)  CLS=(--epochs 24 --lr 0.1 --wd 1e-4); DENSE_INPUT=128; DENSE=(--epochs 32); SCENES=() ;;
  *) echo "demo: PRESET must be small or full" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
echo "== fbnet demo ($PRESET preset) =="

echo "-- 1/3 classification: FBNetV3-A (width 0.5, 32 px) on Fashion-MNIST"
"$FBNET" train --task cls --arch "$ARCH" --data fashion-mnist --input 32 --padding standard \
  --width 0.5 --batch 64 --out "$OUT/cls" "${CLS[@]}" > "$OUT/cls.json"

echo "-- 2/3 demo scenes"
"$FBNET" data scenes --out "$OUT/scenes" --force --quiet "${SCENES[@]}"

echo "-- 3/3 detection and segmentation on the scenes (FBNetV3-A trunk, width 0.5, $DENSE_INPUT px)"
"$FBNET" train --task det --arch "$ARCH" --data "$OUT/scenes/det" --width 0.5 \
  --input $DENSE_INPUT --out "$OUT/det" "${DENSE[@]}" > "$OUT/det.json"
"$FBNET" train --task seg --arch "$ARCH" --data "$OUT/scenes/seg" --width 0.5 \
  --input $DENSE_INPUT --out "$OUT/seg" "${DENSE[@]}" > "$OUT/seg.json"

num() { grep -o "\"$2\": [-0-9.]*" "$1" | head -n 1 | cut -d' ' -f2; }
cost() { "$FBNET" flops "$ARCH" --json "$@" | grep -o '"\(flops\|params_all\)": *[0-9.e+]*' \
         | awk -F': *' '{v[NR]=$2} END {printf "%8.1f M  %6.2f M", v[1]/1e6, v[2]/1e6}'; }
echo
echo "task  data                     MACs      params    metric"
printf "cls   fashion-mnist test   %s   top-1 %s\n" "$(cost --input 32 --padding standard --width 0.5 --classes 10 --in-channels 1)" "$(num "$OUT/cls.json" top1)"
printf "det   scenes val           %s   AP %s  AP50 %s\n" "$(cost --task det --input $DENSE_INPUT --padding standard --width 0.5)" "$(num "$OUT/det.json" AP)" "$(num "$OUT/det.json" AP50)"
printf "seg   scenes val           %s   mIoU %s\n" "$(cost --task seg --input $DENSE_INPUT --padding standard --width 0.5)" "$(num "$OUT/seg.json" mIoU)"
echo
echo "outputs under $OUT/: weights.safetensors, checkpoint.safetensors and log.jsonl per task"
[ "$PRESET" = full ] || echo "(small preset: short runs; PRESET=full bash scripts/demo.sh for the full recipes)"
