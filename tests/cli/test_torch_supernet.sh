#!/usr/bin/env bash
# Cross-checks bench/torch_supernet.py (an independent PyTorch model of a multi-path arch
# file with its search heads) against fbnet: the same searchable bits in the same order,
# and for several architectures (3 random masks, all ones, all zeros) exactly the MACs per
# image that `fbnet bench search --all-only --mask BITS --json` reports. Then smoke-tests
# bench/maxrss.py and bench/compare_search.sh. Skips (exit 0) when /usr/bin/python3
# cannot import torch.
set -u
cd "$(dirname "$0")/../.." || exit 1
PY=${PYTHON:-/usr/bin/python3}
FBNET=${FBNET:-./build/fbnet}
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "skip: $PY cannot import torch (Debian python3-torch)"; exit 0
fi
[ -x "$FBNET" ] || { echo "FAIL: $FBNET not found (run make)"; exit 1; }
export OMP_NUM_THREADS=1
SN=archs/fbnetv5_supernet.json
OPTS=(--width 0.5 --input 64 --batch 2)
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }

n_bits=$(field "$("$FBNET" flops "$SN" --input 64 --width 0.5 --json)" n_bits)
[ "$n_bits" = 55 ] && ok "fbnet: 55 bits" || bad "fbnet flops n_bits is '$n_bits', expected 55"
# Three random masks (fixed seeds, keep probabilities 0.3/0.5/0.8), all ones, all zeros.
masks=$("$PY" -c '
import random
n = 55
for seed, p in ((11, 0.3), (12, 0.5), (13, 0.8)):
    r = random.Random(seed)
    print("".join("1" if r.random() < p else "0" for _ in range(n)))
print("1" * n)
print("0" * n)')
mapfile -t M <<<"$masks"

# One torch process counts every mask (and lists the bit names).
out=$("$PY" bench/torch_supernet.py "$SN" "${OPTS[@]}" --threads 1 --count --list-bits \
      --bits "$(IFS=,; echo "${M[*]}")" 2>&1)
names_pt=$(head -n 1 <<<"$out" | "$PY" -c 'import json,sys; print(" ".join(json.load(sys.stdin)["bits"]))' 2>/dev/null)
names_fb=$("$FBNET" flops "$SN" --input 64 --width 0.5 --json |
           "$PY" -c 'import json,sys; print(" ".join(b["name"] for b in json.load(sys.stdin)["bits"]))')
if [ -n "$names_pt" ] && [ "$names_pt" = "$names_fb" ]; then ok "bit names and order equal fbnet's"
else bad "bit names differ:"; echo "  torch: $names_pt"; echo "  fbnet: $names_fb"; fi

declare -A seen=()
for i in "${!M[@]}"; do
  m=${M[$i]}
  pt=$(grep -F "\"bits\": \"$m\"" <<<"$out" | head -n 1)
  pt_macs=$(field "$pt" macs_per_image)
  fb=$("$FBNET" bench search --all-only --json --mask "$m" "${OPTS[@]}" --steps 1 --warmup 0 \
       --threads 1 2>&1 | tail -n 1)
  fb_macs=$(field "$fb" macs_per_image)
  if [ -n "$pt_macs" ] && [ "$pt_macs" = "$fb_macs" ]; then ok "mask $i MACs $pt_macs equal"
  else bad "mask $m: torch '$pt_macs' fbnet '$fb_macs'"; echo "$out" | tail -n 3; echo "$fb"; fi
  seen[${pt_macs:-none}]=1
done
# The masks must matter: five different architectures, five different costs.
[ "${#seen[@]}" = 5 ] && ok "the masks give 5 different costs" || bad "costs not distinct: ${!seen[*]}"

# A wrong bit string is an error naming the bit count.
out=$("$PY" bench/torch_supernet.py "$SN" --bits 101 --count 2>&1); rc=$?
[ $rc = 1 ] && grep -q "55 bits" <<<"$out" && ok "short --bits rejected" || bad "short --bits: rc $rc: $out"

# maxrss.py: passes the exit code through and reports the peak RSS of the child.
out=$("$PY" bench/maxrss.py sh -c 'echo hi; exit 3' 2>&1); rc=$?
[ $rc = 3 ] && grep -qx hi <<<"$out" && grep -q '^maxrss_mb=[0-9]' <<<"$out" && ok "maxrss.py rc/output" ||
  bad "maxrss.py: rc $rc: $out"
out=$("$PY" bench/maxrss.py "$PY" -c 'b = bytearray(96 << 20); b[::4096] = b"x" * len(b[::4096])' 2>&1)
mb=$(sed -n 's/^maxrss_mb=//p' <<<"$out")
[ -n "$mb" ] && [ "$mb" -ge 96 ] && [ "$mb" -lt 400 ] && ok "maxrss.py sees a 96 MiB child ($mb)" ||
  bad "maxrss.py: 96 MiB child reported as '$mb'"

# compare_search.sh end to end on a tiny setting: one timed step per side.
out=$(FBNET=$FBNET bash bench/compare_search.sh --seed 5 "${OPTS[@]}" --threads 1 --steps 1 --warmup 0 2>&1); rc=$?
last=$(tail -n 1 <<<"$out")
if [ $rc = 0 ] && [[ $last =~ ^speedup_vs_torch=[0-9]+\.[0-9][0-9]$ ]] &&
   grep -q '^macs_per_image fbnet=[0-9]* torch=[0-9]* equal$' <<<"$out" &&
   grep -q '^rss_mb fbnet=[0-9][0-9]* torch=[0-9][0-9]*$' <<<"$out"; then
  ok "compare_search.sh: $last"
else
  bad "compare_search.sh (rc $rc):"; sed 's/^/    /' <<<"$out"
fi
exit $fail
