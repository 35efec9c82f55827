#!/usr/bin/env bash
# fbnet data scenes: the layout exists, the COCO JSON parses, the same seed
# gives byte-identical files whatever the thread count, bad input exits non-zero.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi

small="--train 20 --val 10 --proxy 10"
"$FBNET" data scenes --out "$tmp/a" $small --threads 2 2> "$tmp/log"; rc=$?
check "[ $rc -eq 0 ]" "first run exits 0 (rc $rc)"
check "grep -q 'det/train' '$tmp/log'" "progress lines on stderr"
a=$tmp/a
for f in README.txt det/train.json det/val.json det/train/images/000001.png det/val/images/000010.png \
         seg/train/images/000020.png seg/train/masks/000020.png seg/train/classes.txt \
         seg/val/masks/000010.png seg/val/classes.txt proxy/truth/det.json \
         proxy/truth/masks/000010.png cls/train/0_tshirt_top cls/val/9_ankle_boot \
         proxy/train/5_sandal; do
  check "[ -e '$a/$f' ]" "exists: $f"
done
n_cls=$(find "$a/cls/train" -name '*.png' | wc -l)
n_det=$(ls "$a/det/train/images" | wc -l)
n_proxy=$(find "$a/proxy/train" -name '*.png' | wc -l)
check "[ $n_cls -eq 20 ] && [ $n_det -eq 20 ] && [ $n_proxy -eq 10 ]" "counts cls $n_cls det $n_det proxy $n_proxy"
# cls/proxy cycle through the classes: 2 train images per class folder
check "[ \$(ls '$a/cls/train/3_dress' | wc -l) -eq 2 ]" "balanced class folders"
check "[ \$(wc -l < '$a/seg/train/classes.txt') -eq 11 ] && head -n 1 '$a/seg/train/classes.txt' | grep -qx background" "classes.txt: background + 10"
check "! find '$a' -name '*.tmp' | grep -q ." "no leftover .tmp files"

if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 - "$a" <<'EOF'; rc=$?
import json, os, sys
d = sys.argv[1]
for name, n in (("det/train.json", 20), ("det/val.json", 10), ("proxy/truth/det.json", 10)):
    j = json.load(open(os.path.join(d, name)))
    assert len(j["images"]) == n, (name, len(j["images"]))
    assert [c["id"] for c in j["categories"]] == list(range(1, 11)), name
    ids = {im["id"] for im in j["images"]}
    for a in j["annotations"]:
        x, y, w, h = a["bbox"]
        assert a["image_id"] in ids and 1 <= a["category_id"] <= 10 and a["iscrowd"] == 0, a
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 64 and y + h <= 64, a
        assert 0 < a["area"] <= w * h, a
    assert len(j["annotations"]) >= n, name
EOF
  check "[ $rc -eq 0 ]" "COCO JSON parses and is consistent"
else
  echo "skip: /usr/bin/python3 missing (JSON check)"
fi

# same seed, other thread count: byte-identical; other seed: different
"$FBNET" data scenes --out "$tmp/b" $small --threads 1 --quiet; rc=$?
check "[ $rc -eq 0 ] && diff -r '$tmp/a' '$tmp/b' > /dev/null" "same seed, 1 vs 2 threads: identical files"
"$FBNET" data scenes --out "$tmp/c" $small --seed 2 --quiet; rc=$?
check "[ $rc -eq 0 ] && ! cmp -s '$tmp/a/det/train.json' '$tmp/c/det/train.json'" "seed 2 differs"
"$FBNET" data scenes --out "$tmp/d" --train 10 --val 0 --proxy 0 --size 96 --min-items 2 --max-items 3 --quiet; rc=$?
check "[ $rc -eq 0 ] && [ -e '$tmp/d/det/train.json' ] && [ ! -e '$tmp/d/det/val.json' ]" "96 px, no val"

# errors: non-zero exit and a message naming the problem
err=$tmp/err
"$FBNET" data scenes --out "$tmp/a" $small --quiet 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'not empty' '$err'" "non-empty --out refused without --force (rc $rc)"
"$FBNET" data scenes --out "$tmp/a" $small --quiet --force; rc=$?
check "[ $rc -eq 0 ] && diff -r '$tmp/a' '$tmp/b' > /dev/null" "--force rewrites identical files"
"$FBNET" data scenes $small 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--out' '$err'" "--out required (rc $rc)"
touch "$tmp/file"
"$FBNET" data scenes --out "$tmp/file/x" $small --quiet 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'file' '$err'" "unwritable --out (rc $rc)"
"$FBNET" data scenes --out "$tmp/e" --min-items 3 --max-items 2 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--min-items' '$err'" "min-items > max-items (rc $rc)"
"$FBNET" data scenes --out "$tmp/e" --size 16 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--size' '$err'" "size 16 (rc $rc)"
"$FBNET" data scenes --out "$tmp/e" --size 2048 > /dev/null 2>&1; rc=$?
check "[ $rc -ne 0 ]" "size 2048 (rc $rc)"
"$FBNET" data scenes --out "$tmp/e" --train 5 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'train count 5' '$err'" "5 train scenes refused (rc $rc)"
"$FBNET" data scenes --out "$tmp/e" $small --data "$tmp/nofmnist" 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'dataset-fashion-mnist' '$err'" "missing Fashion-MNIST names the package (rc $rc)"
"$FBNET" data frobnicate > /dev/null 2>&1; rc=$?
check "[ $rc -ne 0 ]" "unknown data subcommand (rc $rc)"
"$FBNET" data scenes --help > /dev/null; rc=$?
check "[ $rc -eq 0 ]" "--help"
exit $fail
