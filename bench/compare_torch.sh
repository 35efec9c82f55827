#!/usr/bin/env bash
# Side-by-side: fbnet vs PyTorch on the same arch, input, batch and threads.
#
#   bash bench/compare_torch.sh ARCH INPUT BATCH [--width W] [--forward] [--steps N]
#        [--warmup M] [--threads T] [--classes K] [--in-channels C]
#        [--padding standard|explicit] [--torch-only]
#
# Runs `fbnet bench train` then bench/torch_bench.py, both with OMP_NUM_THREADS
# equal to --threads (default 2) and each under bench/maxrss.py (peak RSS), and
# prints a table, `rss_mb fbnet=N torch=M` and, as its last line,
# speedup_vs_torch=X.XX (torch sec/step divided by fbnet sec/step).
# Environment: FBNET (default ./build/fbnet), PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '4,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}
[ $# -ge 3 ] || usage
arch=$1 input=$2 batch=$3
shift 3
width=1.0 steps=10 warmup=2 threads=2 classes=1000 in_channels=3
forward=0 torch_only=0 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --width) width=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --classes) classes=$2; extra+=(--classes "$2"); shift 2 ;;
    --in-channels) in_channels=$2; extra+=(--in-channels "$2"); shift 2 ;;
    --padding) extra+=(--padding "$2"); shift 2 ;;
    --forward) forward=1; shift ;;
    --torch-only) torch_only=1; shift ;;
    *) echo "compare_torch.sh: unknown option '$1'" >&2; usage ;;
  esac
done

FBNET=${FBNET:-./build/fbnet}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -f "$arch" ] || { echo "compare_torch.sh: arch file '$arch' not found" >&2; exit 1; }
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "compare_torch.sh: $PYTHON cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi
if [ "$torch_only" = 0 ] && [ ! -x "$FBNET" ]; then
  echo "compare_torch.sh: $FBNET not found: run 'make' first" >&2
  exit 1
fi
export OMP_NUM_THREADS=$threads
mode=train; fwd=()
if [ "$forward" = 1 ]; then mode=forward; fwd=(--forward); fi

# Prints the value of a numeric field of the JSON object on the last line of $1.
json_field() {
  tail -n 1 <<<"$1" | "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$2" 2>/dev/null
}

errf=$(mktemp)
trap 'rm -f "$errf"' EXIT
# Runs "$@" under bench/maxrss.py: stdout into $out, stderr passed on (but the
# maxrss line), the peak RSS in MiB into $rss.
run_measured() {
  local what=$1; shift
  if ! out=$("$PYTHON" bench/maxrss.py "$@" 2>"$errf"); then
    cat "$errf" >&2
    echo "compare_torch.sh: $what failed" >&2
    exit 1
  fi
  grep -v '^maxrss_mb=' "$errf" >&2 || true
  rss=$(sed -n 's/^maxrss_mb=//p' "$errf" | tail -n 1)
}

fb_sec="" fb_rss=""
if [ "$torch_only" = 0 ]; then
  echo "# fbnet: $FBNET bench train --arch $arch --input $input --batch $batch --width $width" \
       "--steps $steps --warmup $warmup --threads $threads ${fwd[*]} ${extra[*]}" >&2
  run_measured "fbnet bench" "$FBNET" bench train --arch "$arch" --input "$input" --batch "$batch" \
    --width "$width" --steps "$steps" --warmup "$warmup" --threads "$threads" "${fwd[@]}" "${extra[@]}"
  fb_out=$out fb_rss=$rss
  fb_sec=$(json_field "$fb_out" sec_per_step) || {
    echo "compare_torch.sh: no sec_per_step in fbnet's last line: $(tail -n 1 <<<"$fb_out")" >&2; exit 1; }
fi

echo "# torch: $PYTHON bench/torch_bench.py $arch --input $input --batch $batch --width $width" \
     "--steps $steps --warmup $warmup --threads $threads ${fwd[*]} ${extra[*]}" >&2
run_measured "torch bench" "$PYTHON" bench/torch_bench.py "$arch" --input "$input" --batch "$batch" \
  --width "$width" --steps "$steps" --warmup "$warmup" --threads "$threads" "${fwd[@]}" "${extra[@]}"
pt_out=$out pt_rss=$rss
pt_sec=$(json_field "$pt_out" sec_per_step)

echo "arch=$arch mode=$mode input=$input batch=$batch width=$width threads=$threads" \
     "classes=$classes in_channels=$in_channels steps=$steps"
printf '%-8s %12s %12s %12s\n' side sec/step images/s maxrss_MB
row() {
  awk -v n="$1" -v s="$2" -v b="$batch" -v r="$3" \
    'BEGIN { printf "%-8s %12.4f %12.1f %12s\n", n, s, b / s, r }'
}
[ -n "$fb_sec" ] && row fbnet "$fb_sec" "$fb_rss"
row torch "$pt_sec" "$pt_rss"
if [ -n "$fb_sec" ]; then
  echo "rss_mb fbnet=$fb_rss torch=$pt_rss"
  awk -v t="$pt_sec" -v f="$fb_sec" 'BEGIN { printf "speedup_vs_torch=%.2f\n", t / f }'
else
  echo "rss_mb torch=$pt_rss"
fi
