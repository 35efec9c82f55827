#!/usr/bin/env bash
# Side-by-side: one FBNetV5 search step, fbnet vs PyTorch, same supernet and architecture.
#
#   bash bench/compare_search.sh [--bits BITS | --keep-prob P --seed N] [--input S] [--width W]
#        [--batch B] [--threads T] [--steps N] [--warmup M] [--tasks cls,det,seg]
#        [--classes K] [--supernet FILE]
#
# Draws one architecture (each bit 1 with probability --keep-prob, default 0.6, from
# Python's random.Random(--seed), default 1) unless --bits gives it, then runs
#   fbnet bench search --all-only --mask BITS --json ...      (the C search step)
#   bench/torch_supernet.py SUPERNET --bits BITS ...           (the same step in PyTorch)
# with the same options and OMP_NUM_THREADS=T, each under bench/maxrss.py. Prints the two
# command lines (stderr), both JSON lines, a table (s/step, images/s, MACs/image, peak RSS),
# `macs_per_image fbnet=X torch=Y equal|DIFFERENT`, `rss_mb fbnet=N torch=M` and, as its last
# line, speedup_vs_torch=X.XX (torch s/step divided by fbnet s/step).
# Defaults are the search's: input 64, width 1.0, batch 32, heads det 32/1, seg 16, 10 classes.
# Environment: FBNET (default ./build/fbnet), PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '4,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}
bits="" keep_prob=0.6 seed=1 input=64 width=1.0 batch=32 threads=2 steps=10 warmup=3
tasks=cls,det,seg classes=10 supernet=archs/fbnetv5_supernet.json
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "compare_search.sh: option '$1' needs a value" >&2; usage; }
  case $1 in
    --bits) bits=$2 ;;
    --keep-prob) keep_prob=$2 ;;
    --seed) seed=$2 ;;
    --input) input=$2 ;;
    --width) width=$2 ;;
    --batch) batch=$2 ;;
    --threads) threads=$2 ;;
    --steps) steps=$2 ;;
    --warmup) warmup=$2 ;;
    --tasks) tasks=$2 ;;
    --classes) classes=$2 ;;
    --supernet) supernet=$2 ;;
    *) echo "compare_search.sh: unknown option '$1'" >&2; usage ;;
  esac
  shift 2
done

FBNET=${FBNET:-./build/fbnet}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -f "$supernet" ] || { echo "compare_search.sh: supernet file '$supernet' not found" >&2; exit 1; }
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "compare_search.sh: $PYTHON cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi
[ -x "$FBNET" ] || { echo "compare_search.sh: $FBNET not found: run 'make' first" >&2; exit 1; }
export OMP_NUM_THREADS=$threads

# Prints the value of field $2 of the JSON object on the last line of $1.
json_field() {
  tail -n 1 <<<"$1" | "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$2" 2>/dev/null
}

if [ -z "$bits" ]; then
  flops=$("$FBNET" flops "$supernet" --input "$input" --width "$width" --json) || {
    echo "compare_search.sh: fbnet flops $supernet failed" >&2; exit 1; }
  n_bits=$(json_field "$flops" n_bits) || { echo "compare_search.sh: no n_bits from fbnet flops" >&2; exit 1; }
  bits=$("$PYTHON" -c '
import random, sys
n, p, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
if not 0 <= p <= 1:
    sys.exit("compare_search.sh: --keep-prob must be in [0, 1]")
r = random.Random(seed)
print("".join("1" if r.random() < p else "0" for _ in range(n)))' "$n_bits" "$keep_prob" "$seed") || exit 1
fi
echo "bits=$bits ($(tr -cd 1 <<<"$bits" | wc -c) of ${#bits} kept)"

errf=$(mktemp)
trap 'rm -f "$errf"' EXIT
# Runs "$@" under maxrss.py with stdout captured in $out, stderr passed on (except the
# maxrss line) and the peak RSS in $rss.
run_measured() {
  local what=$1; shift
  if ! out=$("$PYTHON" bench/maxrss.py "$@" 2>"$errf"); then
    cat "$errf" >&2
    echo "compare_search.sh: $what failed" >&2
    exit 1
  fi
  grep -v '^maxrss_mb=' "$errf" >&2 || true
  rss=$(sed -n 's/^maxrss_mb=//p' "$errf" | tail -n 1)
}

common=(--input "$input" --width "$width" --batch "$batch" --steps "$steps" --warmup "$warmup"
        --threads "$threads" --tasks "$tasks")
fb_cmd=("$FBNET" bench search --all-only --json --mask "$bits" --supernet "$supernet"
        "${common[@]}" --cats "$classes")
pt_cmd=("$PYTHON" bench/torch_supernet.py "$supernet" --bits "$bits" "${common[@]}"
        --classes "$classes" --json)
echo "# fbnet: OMP_NUM_THREADS=$threads ${fb_cmd[*]}" >&2
run_measured "fbnet bench search" "${fb_cmd[@]}"
fb_out=$out fb_rss=$rss
echo "# torch: OMP_NUM_THREADS=$threads ${pt_cmd[*]}" >&2
run_measured "torch_supernet.py" "${pt_cmd[@]}"
pt_out=$out pt_rss=$rss

fb_sec=$(json_field "$fb_out" sec_per_step) || {
  echo "compare_search.sh: no sec_per_step in fbnet's last line: $(tail -n 1 <<<"$fb_out")" >&2; exit 1; }
pt_sec=$(json_field "$pt_out" sec_per_step) || {
  echo "compare_search.sh: no sec_per_step in torch's last line: $(tail -n 1 <<<"$pt_out")" >&2; exit 1; }
fb_macs=$(json_field "$fb_out" macs_per_image)
pt_macs=$(json_field "$pt_out" macs_per_image)

echo "fbnet: $(tail -n 1 <<<"$fb_out")"
echo "torch: $(tail -n 1 <<<"$pt_out")"
echo "supernet=$supernet tasks=$tasks input=$input width=$width batch=$batch threads=$threads" \
     "steps=$steps warmup=$warmup classes=$classes"
printf '%-8s %12s %12s %16s %12s\n' side sec/step images/s MACs/image maxrss_MB
row() {
  awk -v n="$1" -v s="$2" -v b="$batch" -v m="$3" -v r="$4" \
    'BEGIN { printf "%-8s %12.4f %12.1f %16d %12d\n", n, s, b / s, m, r }'
}
row fbnet "$fb_sec" "$fb_macs" "$fb_rss"
row torch "$pt_sec" "$pt_macs" "$pt_rss"
[ "$fb_macs" = "$pt_macs" ] && same=equal || same=DIFFERENT
echo "macs_per_image fbnet=$fb_macs torch=$pt_macs $same"
echo "rss_mb fbnet=$fb_rss torch=$pt_rss"
awk -v t="$pt_sec" -v f="$fb_sec" 'BEGIN { printf "speedup_vs_torch=%.2f\n", t / f }'
