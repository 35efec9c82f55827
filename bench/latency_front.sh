#!/usr/bin/env bash
# Metric against latency for one task from ONE search: every architecture of
# `fbnet derive --front` (made by bench/latency_search.sh in OUT) retrained
# with the same recipe and evaluated; one line per architecture.
# usage: bash bench/latency_front.sh OUT [EPOCHS] [TASK]
set -eu
out=${1:?usage: bash bench/latency_front.sh OUT [EPOCHS] [TASK]}
epochs=${2:-8}
task=${3:-det}
FBNET=${FBNET:-build/fbnet}
metric=$([ "$task" = det ] && echo AP || echo mIoU)
printf "%-12s %10s %14s %13s %10s\n" arch "MACs (M)" "predicted ms" "measured ms" "$metric"
while read -r line; do
  f=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["file"])' "$line")
  k=$(basename "$f" .json)
  w="$out/train_$k"
  [ -f "$w/weights.safetensors" ] || "$FBNET" train --task "$task" --arch "$f" --data "$out/sc/$task" \
    --width 0.5 --input 64 --epochs "$epochs" --batch 32 --threads 2 --quiet --out "$w" > /dev/null
  "$FBNET" eval --task "$task" --arch "$f" --weights "$w/weights.safetensors" --data "$out/sc/$task" \
    --width 0.5 --input 64 --json > "$w/eval.json" 2> /dev/null
  /usr/bin/python3 -c '
import json, sys
a = json.loads(sys.argv[1]); m = json.load(open(sys.argv[2]))
v = m.get("AP", m.get("mIoU", m.get("miou")))
print("%-12s %10.3f %14.3f %13.3f %10.4f" % (sys.argv[3], a["macs"] / 1e6, a["predicted_ms"], a["measured_ms"], v))' \
    "$line" "$w/eval.json" "$k"
done < "$out/target/front_$task.jsonl"
