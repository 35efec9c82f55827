#!/usr/bin/env bash
# fbnet train / eval / predict on the standard formats (demo scenes): every
# task trains a short run, eval reproduces the training metric from the saved
# weights, predict writes COCO results and PNG masks, bad input is an error.
set -u
FBNET=${FBNET:-build/fbnet}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
num() { printf '%s' "$1" | grep -o "\"$2\": [-0-9.]*" | head -n 1 | cut -d' ' -f2; }
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
ARCH=archs/fbnetv3_a.json
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 20 --proxy 10 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
COMMON=(--arch $ARCH --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)

for task in cls det seg; do
  out=$("$FBNET" train --task $task "${COMMON[@]}" --data "$tmp/sc/$task" --out "$tmp/$task" 2> "$tmp/err"); rc=$?
  check "[ $rc -eq 0 ]" "$task: train (rc $rc) $(tail -n 1 $tmp/err)"
  check "[ -s $tmp/$task/weights.safetensors ]" "$task: weights written"
  ev=$("$FBNET" eval --task $task --arch $ARCH --weights "$tmp/$task/weights.safetensors" \
       --data "$tmp/sc/$task" --batch 16 --json 2> "$tmp/err"); rc=$?
  key=$( [ $task = det ] && echo AP || { [ $task = seg ] && echo mIoU || echo top1; } )
  a=$(num "$out" $key); b=$(num "$ev" $key)
  check "[ $rc -eq 0 ] && [ -n \"$a\" ] && [ \"$a\" = \"$b\" ]" "$task: eval reproduces $key ($b vs $a) $(tail -n 1 $tmp/err)"
done

"$FBNET" predict --task det --arch $ARCH --weights "$tmp/det/weights.safetensors" \
  --data "$tmp/sc/det" --out "$tmp/pdet" --batch 16 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d, list)' $tmp/pdet/detections.json" "det: predict writes COCO results ($(tail -n 1 $tmp/err))"
"$FBNET" predict --task seg --arch $ARCH --weights "$tmp/seg/weights.safetensors" \
  --data "$tmp/sc/seg" --out "$tmp/pseg" --batch 16 > /dev/null 2> "$tmp/err"; rc=$?
n=$(ls "$tmp/pseg/masks" 2>/dev/null | wc -l)
check "[ $rc -eq 0 ] && [ $n -eq 20 ]" "seg: predict writes one mask per val image ($n)"
"$FBNET" predict --task det --arch $ARCH --weights "$tmp/det/weights.safetensors" \
  --images "$tmp/sc/proxy/train" --out "$tmp/pproxy" --batch 16 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -s $tmp/pproxy/detections.json ]" "det: predict on an unlabelled image folder"

# bad input
"$FBNET" train --task det "${COMMON[@]}" --data "$tmp/nowhere" --out "$tmp/x" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nowhere' $tmp/err" "det: missing data dir named (rc $rc)"
"$FBNET" train --task det "${COMMON[@]}" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'data scenes' $tmp/err" "det without --data suggests scenes (rc $rc)"
sed 's/"bbox": *\[/"bbox": [-5, /' "$tmp/sc/det/train.json" > "$tmp/bad.json" 2>/dev/null
mkdir -p "$tmp/bad"; cp "$tmp/bad.json" "$tmp/bad/train.json"; cp "$tmp/bad.json" "$tmp/bad/val.json"
ln -s "$tmp/sc/det/train" "$tmp/bad/train"; ln -s "$tmp/sc/det/val" "$tmp/bad/val"
"$FBNET" train --task det "${COMMON[@]}" --data "$tmp/bad" --out "$tmp/x" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'bbox' $tmp/err" "det: malformed bbox names the field (rc $rc): $(head -c 200 $tmp/err)"
exit $fail
