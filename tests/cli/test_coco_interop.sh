#!/usr/bin/env bash
# fbnet eval --gt GT.json --results R.json: any COCO results file scored as the
# reference COCO evaluation scores it. Checked against tests/coco_eval_ref.py
# (an independent numpy implementation of pycocotools' COCOeval semantics) on
# a hand-made case whose ranking depends on score digits beyond float32, and
# on fbnet's own predictions (== fbnet eval on the same data); results for
# images or categories the ground truth lacks are errors.
set -u
. "$(dirname "$0")/common.sh"

# ground truth: non-contiguous category ids, a crowd box, an image without boxes
py '
import json, sys
d = sys.argv[1]
gt = {"images": [{"id": 10, "file_name": "a.png", "width": 100, "height": 80},
                 {"id": 20, "file_name": "b.png", "width": 100, "height": 80},
                 {"id": 30, "file_name": "c.png", "width": 100, "height": 80}],
      "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
      "annotations": [
        {"id": 1, "image_id": 10, "category_id": 3, "bbox": [10, 10, 30, 20], "area": 600, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [50, 30, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 3, "image_id": 20, "category_id": 3, "bbox": [5, 5, 60, 50], "area": 3000, "iscrowd": 0},
        {"id": 4, "image_id": 20, "category_id": 7, "bbox": [0, 0, 100, 80], "area": 8000, "iscrowd": 1}]}
# two detections of one cat whose scores differ by 1e-12: the true positive must rank
# first (scores in double); in float32 they tie and the false positive, listed first, would win
res = [{"image_id": 10, "category_id": 3, "bbox": [60, 5, 30, 20], "score": 0.5},
       {"image_id": 10, "category_id": 3, "bbox": [10, 10, 30, 20], "score": 0.500000000001},
       {"image_id": 10, "category_id": 7, "bbox": [52, 28, 38, 44], "score": 0.9},
       {"image_id": 20, "category_id": 3, "bbox": [8, 4, 55, 52], "score": 0.7},
       {"image_id": 20, "category_id": 7, "bbox": [10, 10, 30, 30], "score": 0.8},
       {"image_id": 30, "category_id": 7, "bbox": [1, 1, 9, 9], "score": 0.3}]
json.dump(gt, open(d + "/gt.json", "w"))
json.dump(res, open(d + "/res.json", "w"))
json.dump(res + [{"image_id": 99, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.1}],
          open(d + "/res_unknown_image.json", "w"))
json.dump(res + [{"image_id": 10, "category_id": 5, "bbox": [1, 1, 5, 5], "score": 0.1}],
          open(d + "/res_unknown_cat.json", "w"))
# the same case in coco_eval_ref.py form (contiguous category indices)
cat = {3: 0, 7: 1}
case = {"num_cats": 2, "images": [10, 20, 30],
        "gt": [[a["image_id"], cat[a["category_id"]]] + a["bbox"] + [a["area"], a["iscrowd"]] for a in gt["annotations"]],
        "dt": [[r["image_id"], cat[r["category_id"]]] + r["bbox"] + [r["score"]] for r in res]}
json.dump({"cases": [case]}, open(d + "/cases.json", "w"))
import numpy as np   # the same scores rounded to float32: the two cat detections tie
case["dt"] = [r[:6] + [float(np.float32(r[6]))] for r in case["dt"]]
json.dump({"cases": [case]}, open(d + "/cases_f32.json", "w"))
' "$tmp"

out=$("$FBNET" eval --gt "$tmp/gt.json" --results "$tmp/res.json" --json 2> "$tmp/err"); rc=$?
echo "$out" > "$tmp/ours.json"
/usr/bin/python3 tests/coco_eval_ref.py "$tmp/cases.json" > "$tmp/ref.txt" 2> "$tmp/referr"
check "[ $rc -eq 0 ] && [ -s $tmp/ref.txt ]" "eval --gt --results runs (rc $rc) $(tail -n 1 $tmp/err) $(tail -n 1 $tmp/referr)"
check "py '
import json, sys
ours = json.load(open(sys.argv[1]))
ref = [float(x) for x in open(sys.argv[2]).read().split()]
names = [\"AP\", \"AP50\", \"AP75\", \"APs\", \"APm\", \"APl\", \"AR1\", \"AR10\", \"AR100\", \"ARs\", \"ARm\", \"ARl\"]
diff = max(abs(ours[n] - r) for n, r in zip(names, ref[:12]))
cat = max(abs(a - b) for a, b in zip(ours[\"category_ap\"], ref[12:14]))
print(\"  max |fbnet - reference|: stats %.2g, per-category AP %.2g; AP %.5f\" % (diff, cat, ours[\"AP\"]))
assert diff < 1e-5 and cat < 1e-4, (ours, ref)
' $tmp/ours.json $tmp/ref.txt" "the 12 COCO stats and per-category AP equal the reference evaluation's"
/usr/bin/python3 tests/coco_eval_ref.py "$tmp/cases_f32.json" > "$tmp/ref_f32.txt"
check "py '
import json, sys
ours = json.load(open(sys.argv[1]))
f32 = [float(x) for x in open(sys.argv[2]).read().split()]
print(\"  cat AP: fbnet %.4f, reference on float32-rounded scores %.4f\" % (ours[\"category_ap\"][0], f32[12]))
assert ours[\"category_ap\"][0] > f32[12] + 0.05
' $tmp/ours.json $tmp/ref_f32.txt" "scores compared in double: a 1e-12 score gap decides the ranking (float32 would tie)"
out=$("$FBNET" eval --task det --gt "$tmp/gt.json" --results "$tmp/res.json" 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ] && printf '%s' \"\$out\" | grep -q 'AP50'" "plain text output with --task det"

"$FBNET" eval --gt "$tmp/gt.json" --results "$tmp/res_unknown_image.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'res_unknown_image.json' $tmp/err && grep -q 'image_id 99' $tmp/err" \
  "a detection on an image the ground truth lacks is an error naming the file and id (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" eval --gt "$tmp/gt.json" --results "$tmp/res_unknown_cat.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'category_id 5' $tmp/err" "an unknown category_id is an error (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" eval --gt "$tmp/gt.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q -- '--results' $tmp/err" "--gt without --results: usage error (rc $rc)"
"$FBNET" eval --task seg --gt "$tmp/gt.json" --results "$tmp/res.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ]" "--gt/--results with --task seg: usage error (rc $rc)"
echo '[{"image_id": 10, "category_id": 3, "bbox": [1, 2, 3], "score": 0.5}]' > "$tmp/bad.json"
"$FBNET" eval --gt "$tmp/gt.json" --results "$tmp/bad.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'bad.json: results\[0\].bbox' $tmp/err" "a malformed results file names the file and entry (rc $rc)"
"$FBNET" eval --gt "$tmp/missing.json" --results "$tmp/res.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'missing.json' $tmp/err" "a missing ground truth names the file (rc $rc)"

# fbnet's own predictions scored as a results file == fbnet eval of the same weights
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  "$FBNET" data scenes --out "$tmp/sc" --train 48 --val 16 --proxy 10 --quiet --threads 2 &&
  "$FBNET" train --task det --arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 1 \
    --threads 2 --quiet --ema 0 --data "$tmp/sc/det" --out "$tmp/det" > /dev/null 2>&1 ||
    { echo "FAIL: det training"; exit 1; }
  ev=$("$FBNET" eval --task det --weights "$tmp/det/weights.safetensors" --data "$tmp/sc/det" --json 2> /dev/null)
  "$FBNET" predict --task det --weights "$tmp/det/weights.safetensors" --data "$tmp/sc/det" \
    --out "$tmp/pred" > /dev/null 2>&1
  ext=$("$FBNET" eval --gt "$tmp/sc/det/val.json" --results "$tmp/pred/detections.json" --json 2> "$tmp/err"); rc=$?
  check "[ $rc -eq 0 ] && py 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); assert all(abs(a[k]-b[k])<1e-5 for k in (\"AP\",\"AP50\",\"AR100\")), (a, b)' '$ev' '$ext'" \
    "predict's detections.json scored by eval --gt/--results == fbnet eval (rc $rc) $(tail -n 1 $tmp/err)"
fi
exit $fail
