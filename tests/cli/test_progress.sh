#!/usr/bin/env bash
# Progress of long runs: plain lines when stderr is not a terminal (logs,
# pipes), a one-line bar redrawn in place (\r, erase to the end of line) on a
# terminal; FBNET_PROGRESS=bar|lines forces either (a terminal is emulated
# with `script` when util-linux has it).
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 16 --proxy 0 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
T=(train --task seg --arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 2 --threads 2 --ema 0
   --data "$tmp/sc/seg")
"$FBNET" "${T[@]}" --out "$tmp/a" > /dev/null 2> "$tmp/lines"
check "! grep -q \$'\r' $tmp/lines && [ \$(grep -c '^epoch 1/2  step 4/4' $tmp/lines) -eq 1 ]" \
  "not a terminal: plain lines, no carriage returns"
FBNET_PROGRESS=bar "$FBNET" "${T[@]}" --out "$tmp/b" > /dev/null 2> "$tmp/bar"
check "grep -q \$'\r\\[####################\\] 100% epoch 2/2  step 4/4' $tmp/bar && grep -q \$'\e\\[K' $tmp/bar" \
  "FBNET_PROGRESS=bar: the bar redrawn in place, 100% at the end"
check "grep -q '^epoch 1/2 done' $tmp/bar" "the epoch summary starts on its own line after the bar"
if script --version > /dev/null 2>&1; then
  script -qec "$FBNET ${T[*]} --out $tmp/c > /dev/null" /dev/null > "$tmp/tty" 2>&1
  check "grep -q \$'\r\\[' $tmp/tty" "on a terminal (script): the bar by default"
  FBNET_PROGRESS=lines script -qec "$FBNET ${T[*]} --out $tmp/d > /dev/null" /dev/null > "$tmp/tty2" 2>&1
  check "! grep -q '\\[####' $tmp/tty2" "FBNET_PROGRESS=lines on a terminal: plain lines"
fi
exit $fail
