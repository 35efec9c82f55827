#!/usr/bin/env bash
# fbnet bench: the machine's floor (sgemm peak, memory bandwidth) and the
# op-family profile of training steps against it.
set -u
. "$(dirname "$0")/common.sh"
"$FBNET" bench floor --threads 1 --size 256 --stream-mib 4 --reps 1 --json > "$tmp/f" 2> /dev/null; rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"peak_gflops\"]>0.5 and d[\"bandwidth_gbs\"]>0.1' $tmp/f" \
  "bench floor measures peak and bandwidth"
"$FBNET" bench train --arch archs/fbnetv3_a.json --input 32 --padding standard --width 0.25 \
  --batch 4 --steps 2 --warmup 1 --threads 1 --profile --peak-gflops 100 --bandwidth-gbs 20 \
  > "$tmp/p" 2> "$tmp/e"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'conv depthwise' $tmp/e && grep -q sec_per_step $tmp/p" \
  "bench train --profile prints the family table $(tail -n 1 $tmp/e)"
"$FBNET" bench floor --size 0 > /dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "bad option value is a usage error"
exit $fail
