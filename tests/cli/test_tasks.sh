#!/usr/bin/env bash
# fbnet train / eval / predict on the standard formats (demo scenes): every
# task trains a short run, eval reproduces the training metric from the saved
# weights, predict writes COCO results and PNG masks, bad input is an error.
set -u
. "$(dirname "$0")/common.sh"
num() { printf '%s' "$1" | grep -o "\"$2\": [-0-9.]*" | head -n 1 | cut -d' ' -f2; }
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
ARCH=archs/fbnetv3_a.json
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 20 --proxy 10 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
COMMON=(--arch $ARCH --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)

for task in cls det seg; do
  out=$("$FBNET" train --task $task "${COMMON[@]}" --data "$tmp/sc/$task" --out "$tmp/runs/$task" 2> "$tmp/err"); rc=$?
  ln -s "$tmp/runs/$task" "$tmp/$task"
  check "[ $rc -eq 0 ]" "$task: --out creates missing parents (runs/$task)"
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

# the user's own images: a class folder with fewer classes than the model (crashed before),
# a plain folder of images with sub-folders, no labels -> predictions keyed by file, no metrics
W="$tmp/cls/weights.safetensors"
mkdir -p "$tmp/few" "$tmp/photos/trip/day1"
cp -r "$tmp/sc/cls/val/3_dress" "$tmp/sc/cls/val/7_sneaker" "$tmp/few/"
cp "$tmp/sc/cls/val/3_dress/"* "$tmp/photos/"; cp "$tmp/sc/cls/val/1_trouser/"* "$tmp/photos/trip/day1/"
n_photos=$(find "$tmp/photos" -name '*.png' | wc -l)
"$FBNET" predict --task cls --weights "$W" --images "$tmp/few" --out "$tmp/pf/a/b" --batch 16 > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'top-1' $tmp/m" "cls: predict on a folder with 2 of the model's 10 classes (rc $rc; labelled: metrics) $(tail -n 1 $tmp/err)"
check "py 'import csv,json,sys; r=list(csv.DictReader(open(sys.argv[1]))); j=json.load(open(sys.argv[2])); f=open(sys.argv[3],\"rb\"); n=int.from_bytes(f.read(8),\"little\"); names=json.loads(f.read(n))[\"__metadata__\"]; assert len(r)==len(j)>0; assert all(x[\"label\"] in (\"3_dress\",\"7_sneaker\") for x in r); assert all(len(x[\"top\"])==5 and abs(sum(t[\"prob\"] for t in x[\"top\"]))<=1.0001 and x[\"top\"][0][\"prob\"]>=x[\"top\"][1][\"prob\"] for x in j); cls=set(json.loads(names[\"labels\"])[\"classes\"]); assert all(t[\"class\"] in cls for x in j for t in x[\"top\"])' $tmp/pf/a/b/predictions.csv $tmp/pf/a/b/predictions.json $W" \
  "cls: top-5 classes with probabilities (CSV + JSON), named as the model's classes, true labels kept"
"$FBNET" eval --task cls --weights "$W" --images "$tmp/few" --batch 16 --json > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q top1 $tmp/m" "cls: eval --images on 2 of 10 classes scores against the model's classes (rc $rc)"
"$FBNET" predict --task cls --weights "$W" --images "$tmp/photos" --out "$tmp/pp" --top-k 3 --batch 16 > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'no labels' $tmp/m && ! grep -q top-1 $tmp/m" "cls: a plain folder of images is accepted, no metrics printed (rc $rc) $(tail -n 1 $tmp/err)"
check "py 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); assert len(r)==$n_photos and any(x[\"file\"].startswith(\"trip/day1/\") for x in r) and all(x[\"label\"]==\"\" for x in r) and \"class_3\" in r[0] and \"class_4\" not in r[0]' $tmp/pp/predictions.csv" \
  "cls: images found recursively, keyed by relative path, --top-k 3"
"$FBNET" eval --task cls --weights "$W" --images "$tmp/photos" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no labels' $tmp/err" "cls: eval on unlabelled images is an error that says to use predict (rc $rc)"
"$FBNET" predict --task det --weights "$tmp/det/weights.safetensors" --images "$tmp/photos" --out "$tmp/pd" --batch 16 > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'no labels' $tmp/m && py 'import json,sys; i=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2])); ids={x[\"id\"]:x[\"file_name\"] for x in i[\"images\"]}; assert len(ids)==$n_photos and any(f.startswith(\"trip/day1/\") for f in ids.values()) and all(x[\"image_id\"] in ids for x in d) and len(i[\"categories\"])==10' $tmp/pd/images.json $tmp/pd/detections.json" \
  "det: predict on plain images: detections.json + images.json naming every file, no metrics (rc $rc)"
"$FBNET" predict --task seg --weights "$tmp/seg/weights.safetensors" --images "$tmp/photos" --out "$tmp/ps" --batch 16 > "$tmp/m" 2> "$tmp/err"; rc=$?
n=$(find "$tmp/ps/masks" -name '*.png' | wc -l)
check "[ $rc -eq 0 ] && [ $n -eq $n_photos ] && [ -n \"\$(ls $tmp/ps/masks/trip/day1)\" ] && ! grep -q mIoU $tmp/m" "seg: predict --images writes one mask per image, named after it ($n of $n_photos)"
"$FBNET" predict --task det --weights "$W" --images "$tmp/photos" --out "$tmp/px" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no det head' $tmp/err" "det predict with cls weights: clear error (rc $rc)"

# a tiny run says that it is tiny; evaluation reports progress in the ETA's place
"$FBNET" train --task cls --arch $ARCH --width 0.25 --batch 16 --epochs 1 --threads 2 \
  --data "$tmp/sc/cls" --out "$tmp/tiny" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'warning: only 4 training steps' $tmp/err" "tiny training run warns (rc $rc)"

# --resume of a finished run reports its result; --resume without a checkpoint says what to do
out=$("$FBNET" train --task det "${COMMON[@]}" --data "$tmp/sc/det" --out "$tmp/runs/det" --resume 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ] && echo '$out' | grep -q '\"task\": \"det\"' && echo '$out' | grep -q '\"AP\"'" "resume of a finished run prints its metrics (rc $rc): $(echo "$out" | head -c 80)"
"$FBNET" train --task det "${COMMON[@]}" --data "$tmp/sc/det" --out "$tmp/fresh" --resume > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'run without --resume' $tmp/err" "resume without a checkpoint says to run without --resume (rc $rc)"

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
