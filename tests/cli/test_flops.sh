#!/usr/bin/env bash
# fbnet flops: FBNetV3-A totals (docs/method.md section 2) and error exits.
set -u
FBNET=${FBNET:-build/fbnet}
fail=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

out=$("$FBNET" flops archs/fbnetv3_a.json --classes 1000 --json) || { echo "FAIL: flops --json exited $?"; exit 1; }
num() { printf '%s' "$out" | grep -o "\"$1\":[-0-9.eE+]*" | head -n 1 | cut -d: -f2; }
flops=$(num flops); params=$(num params); params_all=$(num params_all)
echo "flops=$flops params=$params params_all=$params_all"
# within 0.5% of 356.598 M MACs and 1% of 8.542224 M params / 8.598 M trainable
check "awk -v x='$flops' 'BEGIN { d = x / 356.598e6 - 1; exit !(x != \"\" && d < 0.005 && d > -0.005) }'" "flops ~ 356.6 M"
check "awk -v x='$params' 'BEGIN { d = x / 8.542224e6 - 1; exit !(x != \"\" && d < 0.01 && d > -0.01) }'" "params ~ 8.54 M"
check "awk -v x='$params_all' 'BEGIN { d = x / 8.598e6 - 1; exit !(x != \"\" && d < 0.01 && d > -0.01) }'" "params_all ~ 8.598 M"
check "printf '%s' \"\$out\" | grep -q '\"name\":\"stage5.0.dw.conv\",\"op\":\"conv2d\",\"out\":\\[720,6,6\\]'" "layers list stage5.0.dw.conv at 6x6"

# the table ends with the totals
table=$("$FBNET" flops archs/fbnetv3_a.json --input 224 --classes 1000 --width 1.0 --in-channels 3 --padding explicit); rc=$?
check "[ $rc -eq 0 ] && printf '%s' \"\$table\" | grep -q '356.596 M MACs'" "table totals"

# errors: non-zero exit and a message naming the problem
"$FBNET" flops archs/fbnetv3_a.json --input 32 > /dev/null 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--padding standard' "$err" && grep -q 'stage5 row 0' "$err"" "32 px explicit padding fails (rc $rc)"
"$FBNET" flops archs/fbnetv3_a.json --input 32 --padding standard > /dev/null; rc=$?
check "[ $rc -eq 0 ]" "32 px standard padding works"
"$FBNET" flops archs/fbnetv3_a.json --width 0 > /dev/null 2>&1; rc=$?
check "[ $rc -ne 0 ]" "width 0 rejected (rc $rc)"
"$FBNET" flops archs/fbnetv3_a.json --frobnicate > /dev/null 2>&1; rc=$?
check "[ $rc -ne 0 ]" "unknown option rejected (rc $rc)"
"$FBNET" flops tests/fixtures/no_such_arch.json > /dev/null 2> "$err"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'no_such_arch.json' "$err"" "missing file (rc $rc)"
"$FBNET" flops --help > /dev/null; rc=$?
check "[ $rc -eq 0 ]" "--help"
exit $fail
