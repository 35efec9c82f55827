#!/usr/bin/env bash
# fbnet label (docs/method.md section 5): tiny det and seg teachers pseudo-label the
# scenes' proxy images; the outputs parse and agree with each other, the
# thresholds do what they say, fbnet train --task det|seg reads the result,
# --truth reports quality, bad input is a clear error. Also: fbnet eval
# without --arch (the arch comes from the weights' arch_json).
set -u
FBNET=${FBNET:-build/fbnet}
PY=/usr/bin/python3
fail=0
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
num() { printf '%s' "$1" | grep -o "\"$2\": [-0-9.]*" | head -n 1 | cut -d' ' -f2; }
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
ARCH=archs/fbnetv3_a.json
SC=$tmp/sc
"$FBNET" data scenes --out "$SC" --train 32 --val 10 --proxy 20 --quiet --threads 1 \
  || { echo "FAIL: scenes"; exit 1; }
COMMON=(--arch $ARCH --width 0.25 --batch 16 --epochs 1 --threads 1 --quiet --ema 0)
for task in det seg; do
  "$FBNET" train --task $task "${COMMON[@]}" --data "$SC/$task" --out "$tmp/$task" > /dev/null 2> "$tmp/err" \
    || { echo "FAIL: teacher $task: $(tail -n 2 "$tmp/err")"; exit 1; }
done
DET=$tmp/det/weights.safetensors
SEG=$tmp/seg/weights.safetensors
NAMES=(--det-categories "$SC/det/train.json" --seg-classes "$SC/seg/train/classes.txt")

# ---- label the proxy images (train split), with quality against the truth
out=$("$FBNET" label --det-teacher "$DET" --seg-teacher "$SEG" --images "$SC/proxy/train" \
      --out "$tmp/px" --truth "$SC/proxy/truth" --score-thresh 0.05 --threads 1 "${NAMES[@]}" \
      2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ]" "label train split (rc $rc) $(tail -n 1 "$tmp/err")"
check "grep -q 'images/s' '$tmp/err'" "progress lines with images/s on stderr"
echo "label output: $out"
check "[ \"$(num "$out" images)\" = 20 ] && [ -n \"$(num "$out" pseudo_mIoU)\" ] && printf '%s' '$out' | grep -q '\"pseudo_boxes\": {\"AP\": [0-9]'" \
  "summary JSON with counts and truth AP / mIoU"
$PY - "$tmp/px" "$SC" > "$tmp/py" 2>&1 <<'EOF'
import csv, json, os, sys
from PIL import Image
px, sc = sys.argv[1], sys.argv[2]
man = json.load(open(f"{px}/proxy.json"))
assert man["format"] == "fbnet-proxy-1" and man["splits"] == ["train"], man
assert man["tasks"] == ["cls", "det", "seg"] and man["score_thresh"] == 0.05, man
assert man["counts"]["train"]["images"] == 20, man
classes = [l.strip() for l in open(f"{px}/cls_classes.txt") if l.strip()]
assert classes == sorted(os.listdir(f"{sc}/proxy/train")), classes
rows = list(csv.reader(open(f"{px}/train/labels.csv")))
assert rows[0] == ["file", "class"] and len(rows) == 21, rows[:3]
for f, c in rows[1:]:
    assert c in classes and f.startswith(c + "__"), (f, c)
    orig = f"{sc}/proxy/train/{c}/{f[len(c) + 2:]}"
    assert open(orig, "rb").read() == open(f"{px}/train/images/{f}", "rb").read(), f
coco = json.load(open(f"{px}/train.json"))
truth_cats = json.load(open(f"{sc}/det/train.json"))["categories"]
assert coco["categories"] == truth_cats, coco["categories"]
sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
assert sorted(im["file_name"] for im in coco["images"]) == sorted(r[0] for r in rows[1:])
assert len(coco["annotations"]) == man["counts"]["train"]["boxes"] > 0
for a in coco["annotations"]:
    x, y, w, h = a["bbox"]; W, H = sizes[a["image_id"]]
    assert 0.05 <= a["score"] <= 1 and a["iscrowd"] == 0, a
    assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= W + 1e-3 and y + h <= H + 1e-3, a
    assert abs(a["area"] - w * h) < 1e-3 * max(1, w * h), a
seg_names = [l.strip() for l in open(f"{px}/train/classes.txt") if l.strip()]
assert seg_names == [l.strip() for l in open(f"{sc}/seg/train/classes.txt") if l.strip()]
ign = tot = 0
for f, c in rows[1:]:
    m = Image.open(f"{px}/train/masks/{os.path.splitext(f)[0]}.png")
    assert m.mode == "L" and m.size == Image.open(f"{px}/train/images/{f}").size, f
    vals = set(m.getdata())
    assert vals <= set(range(11)) | {255}, vals
    ign += list(m.getdata()).count(255); tot += m.size[0] * m.size[1]
frac = man["counts"]["train"]["ignored_pixel_fraction"]
assert abs(frac - ign / tot) < 1e-9, (frac, ign / tot)
print("outputs consistent")
EOF
check "[ $? -eq 0 ]" "outputs parse and agree (manifest, COCO, labels.csv, masks): $(tail -n 3 "$tmp/py")"

# ---- the --truth numbers against an independent computation: COCO AP of
#      the written boxes by tests/coco_eval_ref.py (numpy), mIoU and pixel
#      accuracy of the written masks (numpy) further below
printf '%s' "$out" > "$tmp/out_px.json"
$PY - "$tmp/px" "$SC" "$tmp/cases.json" > "$tmp/py" 2>&1 <<'EOF'
import json, sys
px, sc, cases = sys.argv[1:4]
truth = json.load(open(f"{sc}/proxy/truth/det.json"))
pseudo = json.load(open(f"{px}/train.json"))
cat_index = {c["id"]: k for k, c in enumerate(sorted(truth["categories"], key=lambda c: c["id"]))}
tid = {im["file_name"]: im["id"] for im in truth["images"]}
orig = {im["id"]: tid[im["file_name"].split("__", 1)[1]] for im in pseudo["images"]}
gt = [[a["image_id"], cat_index[a["category_id"]], *a["bbox"], a["area"], a["iscrowd"]]
      for a in truth["annotations"] if a["image_id"] in orig.values()]
dt = [[orig[a["image_id"]], cat_index[a["category_id"]], *a["bbox"], a["score"]]
      for a in pseudo["annotations"]]
case = {"num_cats": len(cat_index), "images": sorted(orig.values()), "gt": gt, "dt": dt}
json.dump({"cases": [case]}, open(cases, "w"))
EOF
ref=$($PY tests/coco_eval_ref.py "$tmp/cases.json" 2>&1)
$PY - "$tmp/out_px.json" "$ref" > "$tmp/py" 2>&1 <<'EOF'
import json, sys
got = json.load(open(sys.argv[1]))["truth"]["det"]["pseudo_boxes"]
ref = [float(v) for v in sys.argv[2].split()]
want = {"AP": ref[0], "AP50": ref[1], "AP75": ref[2], "AR100": ref[8]}
for k, v in want.items():
    assert abs(got[k] - v) < 6e-5, (k, got[k], v)
print("AP/AP50/AP75/AR100 as the reference:", want)
EOF
check "[ $? -eq 0 ]" "--truth box AP equals tests/coco_eval_ref.py on the written boxes: $(tail -n 2 "$tmp/py")"

# ---- thresholds: mask-thresh 0 keeps every pixel, 1 ignores (nearly) all;
#      score-thresh 1 keeps no box; --limit spreads over the classes
out=$("$FBNET" label --det-teacher "$DET" --seg-teacher "$SEG" --images "$SC/proxy/train" \
      --out "$tmp/t0" --mask-thresh 0 --score-thresh 1 --threads 1 --quiet --limit 10 \
      --truth "$SC/proxy/truth"); rc=$?
check "[ $rc -eq 0 ] && [ \"$(num "$out" ignored_pixel_fraction)\" = 0.0000 ] && [ \"$(num "$out" boxes)\" = 0 ]" \
  "mask-thresh 0: no ignored pixel; score-thresh 1: no box ($out)"
check "[ \$(cut -d, -f2 '$tmp/t0/train/labels.csv' | tail -n +2 | sort -u | wc -l) -eq 10 ]" \
  "--limit 10 takes one image of each of the 10 classes"
printf '%s' "$out" > "$tmp/out_t0.json"
$PY - "$tmp/t0" "$SC" "$tmp/out_t0.json" > "$tmp/py" 2>&1 <<'EOF'
import csv, json, os, sys
import numpy as np
from PIL import Image
t0, sc, out = sys.argv[1:4]
got = json.load(open(out))["truth"]["seg"]
K = 11
cm = np.zeros((K, K), np.int64)
for f, c in list(csv.reader(open(f"{t0}/train/labels.csv")))[1:]:
    stem = os.path.splitext(f)[0]
    pred = np.array(Image.open(f"{t0}/train/masks/{stem}.png")).ravel().astype(np.int64)
    gt = np.array(Image.open(f"{sc}/proxy/truth/masks/{stem.split('__', 1)[1]}.png")).ravel()
    keep = (gt != 255) & (pred != 255)
    cm += np.bincount(gt[keep].astype(np.int64) * K + pred[keep], minlength=K * K).reshape(K, K)
present = cm.sum(1) > 0
iou = np.diag(cm)[present] / (cm.sum(1) + cm.sum(0) - np.diag(cm))[present]
want = {"pseudo_mIoU": iou.mean(), "pseudo_pixel_acc": np.trace(cm) / cm.sum(),
        "argmax_mIoU": iou.mean(), "labelled_fraction": 1.0}
for k, v in want.items():
    assert abs(got[k] - v) < 6e-5, (k, got[k], v)
assert got["argmax_mIoU"] == got["pseudo_mIoU"] and got["pseudo_pixel_acc"] > 0
print("mIoU/pixel accuracy as numpy:", want)
EOF
check "[ $? -eq 0 ]" "--truth mIoU equals numpy on the written masks: $(tail -n 2 "$tmp/py")"
out=$("$FBNET" label --seg-teacher "$SEG" --images "$SC/proxy/train" --out "$tmp/t1" \
      --mask-thresh 1 --threads 1 --quiet); rc=$?
f=$(num "$out" ignored_pixel_fraction)
check "[ $rc -eq 0 ] && $PY -c 'import sys; sys.exit(not float(sys.argv[1]) > 0.99)' '$f'" \
  "mask-thresh 1: (nearly) every pixel ignored ($f)"
check "[ ! -e '$tmp/t1/train.json' ] && grep -q '\"cls\", \"seg\"' '$tmp/t1/proxy.json'" \
  "seg teacher only: no COCO file, tasks cls+seg"

# ---- a val split into the same OUT, then train on the pseudo-labels
"$FBNET" label --det-teacher "$DET" --seg-teacher "$SEG" --images "$SC/cls/val" --split val \
  --out "$tmp/px" --score-thresh 0.05 --threads 1 --quiet "${NAMES[@]}" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q '\"train\", \"val\"' '$tmp/px/proxy.json'" \
  "val split merged into the manifest (rc $rc) $(tail -n 1 "$tmp/err")"
for task in det seg; do
  out=$("$FBNET" train --task $task "${COMMON[@]}" --data "$tmp/px" --out "$tmp/p$task" 2> "$tmp/err"); rc=$?
  check "[ $rc -eq 0 ] && [ -s '$tmp/p$task/weights.safetensors' ]" \
    "fbnet train --task $task reads the pseudo-labels (rc $rc) $(tail -n 1 "$tmp/err")"
done
"$FBNET" label --det-teacher "$DET" --images "$SC/cls/val" --split val --out "$tmp/px" \
  --threads 1 --quiet > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'tasks' '$tmp/err'" "other tasks into the same OUT refused (rc $rc): $(head -c 200 "$tmp/err")"
"$FBNET" label --det-teacher "$DET" --seg-teacher "$SEG" --images "$SC/cls/val" --split val \
  --out "$tmp/px" --threads 1 --quiet > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'already holds files' '$tmp/err' && grep -q -- '--force' '$tmp/err'" "the same split twice refused, naming --force (rc $rc)"
"$FBNET" label --det-teacher "$DET" --seg-teacher "$SEG" --images "$SC/cls/val" --split val \
  --out "$tmp/px" --threads 1 --quiet --force > "$tmp/out2" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ \$(ls $tmp/px/val/images | wc -l) -eq \$(find $SC/cls/val -type f | wc -l) ]" "label --force replaces the split's files (rc $rc) $(tail -n 1 $tmp/err)"

# ---- errors
L=(--images "$SC/proxy/train" --threads 1 --quiet)
"$FBNET" label --det-teacher "$tmp/nope.safetensors" "${L[@]}" --out "$tmp/e1" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nope.safetensors' '$tmp/err'" "missing teacher file named (rc $rc): $(head -c 200 "$tmp/err")"
"$FBNET" label --det-teacher "$SEG" "${L[@]}" --out "$tmp/e2" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'not a det teacher' '$tmp/err'" "seg weights as det teacher (rc $rc): $(head -c 200 "$tmp/err")"
"$FBNET" label "${L[@]}" --out "$tmp/e3" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'teacher' '$tmp/err'" "no teacher is a usage error (rc $rc)"
"$FBNET" label --det-teacher "$DET" --images "$SC/det/train/images" --out "$tmp/e4" \
  --threads 1 --quiet > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no class folders' '$tmp/err'" "image dir without class folders (rc $rc)"
touch "$tmp/afile"
"$FBNET" label --det-teacher "$DET" "${L[@]}" --out "$tmp/afile" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'afile: cannot create directory' '$tmp/err'" "OUT that is a file (rc $rc): $(head -c 200 "$tmp/err")"
"$FBNET" label --det-teacher "$DET" "${L[@]}" --out /proc/fbnet_label_test > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q '/proc/fbnet_label_test' '$tmp/err'" "OUT not writable (rc $rc)"
"$FBNET" label --det-teacher "$tmp/det/checkpoint.safetensors" "${L[@]}" --out "$tmp/e5" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'checkpoint, not weights' '$tmp/err'" "a checkpoint instead of weights (rc $rc)"

# ---- weights written before arch_json: --det-arch / --arch needed and enough
$PY - "$DET" "$tmp/old.safetensors" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["__metadata__"]["arch_json"]
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
"$FBNET" label --det-teacher "$tmp/old.safetensors" "${L[@]}" --out "$tmp/e6" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'arch_json' '$tmp/err' && grep -q -- '--det-arch' '$tmp/err'" \
  "old weights: says to pass --det-arch (rc $rc): $(head -c 200 "$tmp/err")"
"$FBNET" label --det-teacher "$tmp/old.safetensors" --det-arch $ARCH "${L[@]}" --out "$tmp/e7" \
  --score-thresh 0.05 > "$tmp/o7" 2> "$tmp/err"; rc=$?
"$FBNET" label --det-teacher "$DET" "${L[@]}" --out "$tmp/e8" --score-thresh 0.05 > /dev/null 2>&1
check "[ $rc -eq 0 ] && cmp -s '$tmp/e7/train.json' '$tmp/e8/train.json'" \
  "old weights + --det-arch give the same boxes as arch_json (rc $rc)"

# ---- eval/predict without --arch
a=$("$FBNET" eval --task seg --arch $ARCH --weights "$SEG" --data "$SC/seg" --batch 16 --json 2>&1)
b=$("$FBNET" eval --task seg --weights "$SEG" --data "$SC/seg" --batch 16 --json 2>&1); rc=$?
check "[ $rc -eq 0 ] && [ -n \"$(num "$a" pixel_acc)\" ] && [ \"$a\" = \"$b\" ]" \
  "eval without --arch uses the weights' arch (pixel_acc $(num "$b" pixel_acc), same JSON as with --arch)"
"$FBNET" predict --task det --weights "$DET" --images "$SC/proxy/train" --out "$tmp/pred" \
  --batch 16 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -s '$tmp/pred/detections.json' ]" "predict without --arch (rc $rc)"
"$FBNET" eval --task det --weights "$tmp/old.safetensors" --data "$SC/det" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q -- '--arch' '$tmp/err'" "eval of old weights asks for --arch (rc $rc)"
exit $fail
