#!/usr/bin/env bash
# examples/classify.c, a program that embeds the library through include/fbnet.h
# only: on a classifier trained here it gives every image the same classes and
# probabilities as `fbnet predict`; bad weights are an error naming them.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
EX=${EXAMPLE:-$(dirname "$FBNET")/examples/classify}
check "[ -x $EX ]" "the example is built ($EX)"
"$FBNET" data scenes --out "$tmp/sc" --train 48 --val 12 --proxy 0 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
T=(--arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)
"$FBNET" train --task cls "${T[@]}" --data "$tmp/sc/cls" --out "$tmp/cls" > /dev/null 2>&1 &&
"$FBNET" train --task det "${T[@]}" --data "$tmp/sc/det" --out "$tmp/det" > /dev/null 2>&1 ||
  { echo "FAIL: training"; exit 1; }
W=$tmp/cls/weights.safetensors
"$FBNET" predict --task cls --weights "$W" --images "$tmp/sc/cls/val" --out "$tmp/pred" > /dev/null 2>&1
( cd "$tmp/sc/cls/val" && find . -name '*.png' | sed 's|^\./||' | sort ) > "$tmp/files"
n=$(wc -l < "$tmp/files")
( cd "$tmp/sc/cls/val" && xargs "$OLDPWD/$EX" "$W" < "$tmp/files" ) > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ \$(wc -l < $tmp/out) -eq $n ]" "classify: one line per image ($n images, rc $rc) $(head -c 200 $tmp/err)"
check "py '
import csv, sys
pred = {r[\"file\"]: r for r in csv.DictReader(open(sys.argv[1]))}
n = 0
for line in open(sys.argv[2]):
    f, *rest = line.split()
    names, probs = rest[0::2], [float(p) for p in rest[1::2]]
    r = pred[f]
    want = [(r[\"class_%d\" % k], float(r[\"prob_%d\" % k])) for k in range(1, 6)]
    assert len(names) == 5 and names == [w[0] for w in want], (f, names, want)
    assert all(abs(p - w[1]) < 2e-4 for p, w in zip(probs, want)), (f, probs, want)
    n += 1
assert n == len(pred), (n, len(pred))
' $tmp/pred/predictions.csv $tmp/out" "classify = fbnet predict: the same 5 classes and probabilities for every image"
"$EX" "$tmp/nowhere.safetensors" x.png > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nowhere.safetensors' $tmp/err" "missing weights: an error naming the file (rc $rc): $(cat $tmp/err)"
"$EX" "$tmp/det/weights.safetensors" x.png > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no cls head' $tmp/err" "detector weights: no cls head (rc $rc): $(cat $tmp/err)"
"$EX" "$W" "$tmp/nothere.png" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nothere.png' $tmp/err" "a missing image: named (rc $rc): $(cat $tmp/err)"
exit $fail
