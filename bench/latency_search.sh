#!/usr/bin/env bash
# Latency-aware search, end to end on small demo data: scenes, teachers,
# pseudo-labels, a latency table at the deploy size (1 thread), one search
# without a latency target and one with a target per task set below what the
# first one found; prints each derived network's predicted and measured
# latency and a front for det from the targeted run.
# usage: bash bench/latency_search.sh OUT_DIR [STEPS]
set -eu
out=${1:?usage: bash bench/latency_search.sh OUT_DIR [STEPS]}
steps=${2:-600}
FBNET=${FBNET:-build/fbnet}
mkdir -p "$out"
t=(--arch archs/fbnetv3_a.json --width 0.25 --batch 32 --epochs 3 --threads 2 --quiet --ema 0)
[ -d "$out/sc" ] || "$FBNET" data scenes --out "$out/sc" --train 600 --val 100 --proxy 600 --quiet --threads 2
[ -f "$out/tdet/weights.safetensors" ] || "$FBNET" train --task det "${t[@]}" --data "$out/sc/det" --out "$out/tdet" > /dev/null
[ -f "$out/tseg/weights.safetensors" ] || "$FBNET" train --task seg "${t[@]}" --data "$out/sc/seg" --out "$out/tseg" > /dev/null
[ -d "$out/proxy" ] || "$FBNET" label --det-teacher "$out/tdet/weights.safetensors" \
  --seg-teacher "$out/tseg/weights.safetensors" --images "$out/sc/proxy/train" --out "$out/proxy" \
  --score-thresh 0.1 --quiet > /dev/null
# the deployed networks: 64 px, width 0.5, the scenes' heads (10 classes, 10 categories, 11 seg classes)
"$FBNET" bench latency --input 64 --width 0.5 --threads 1 --classes 10 --cats 10 --seg-classes 11 \
  --out "$out/lut.json" --check --check-networks 30 > "$out/check.json" 2> "$out/check.log"
S=(--data "$out/proxy" --width 0.5 --batch 16 --steps "$steps" --threads 2 --quiet
   --replay 250 --elite 0.2 --theta-lr 0.02 --latency-table "$out/lut.json")
"$FBNET" search "${S[@]}" --out "$out/free" > "$out/free.txt"
targets=$(/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["tasks"]
print(",".join("%s=%.3fms" % (t, 0.8 * v["latency"]["predicted_ms"]) for t, v in s.items()))' "$out/free/summary.json")
echo "targets: $targets (80% of the unconstrained run's predicted latency)" | tee "$out/targets.txt"
"$FBNET" search "${S[@]}" --out "$out/target" --latency-target "$targets" > "$out/target.txt"
"$FBNET" derive --run "$out/target" --task det --front 5 --latency-table "$out/lut.json" \
  > "$out/target/front_det.jsonl" 2> "$out/front.txt"
echo "== no target"; grep latency "$out/free.txt"
echo "== with targets"; grep latency "$out/target.txt"
echo "== det front of the targeted run"; cat "$out/front.txt"
echo "== table check"; grep -v 'networks measured' "$out/check.log" | tr '\r' '\n' | tail -6
