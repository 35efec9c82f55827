#!/usr/bin/env bash
# Does the search find better networks? The experiment of docs/search-quality.md,
# from a seed, the way NAS papers measure it:
#   1. one 3-task search with a MACs target per task (the midpoint between the
#      task's cheapest and all-kept network: the search must choose which bits to
#      keep), and three single-task searches with the same targets and steps;
#   2. per task: the searched network (multi-task run), the single-task run's,
#      the all-kept network width-scaled to the searched MACs (channels are
#      multiples of 8, so MACs jump with the width: it is trained at the widest
#      width below and the narrowest above, and interpolated), and R random
#      architectures of the space at the searched MACs (+-5%);
#   3. every network retrained with the same recipe (S seeds; random ones RS seeds);
#   4. the supernet's own estimate of every subnet (shared weights, BN
#      re-calibrated) against its retrained metric: Kendall tau.
# Writes OUT/search_quality.json and OUT/search_quality.md (bench/quality_report.py).
#
#   bash scripts/search_quality.sh SCENES PROXY CLS_DATA OUT [options]
#     SCENES: fbnet data scenes output (det/, seg/); PROXY: fbnet label output;
#     CLS_DATA: the classification target set (image folders with train/ val/)
#     --steps 3000 --batch 16 --width 0.5 --input 64 --epochs 7 --seeds 3
#     --random 10 --random-seeds 2 --jobs 2 --seed 1
#     --search-args "--replay 250 --elite 0.2 --theta-lr 0.02"  (more fbnet search options)
# Progress goes to stderr (stage, trainings done, an estimate of the time left).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { sed -n '2,20p' "$0" | sed 's/^# *//' >&2; exit 2; }
SCENES=$1 PROXY=$2 CLS_DATA=$3 OUT=$4
shift 4
STEPS=3000 BATCH=16 WIDTH=0.5 INPUT=64 EPOCHS=7 SEEDS=3 RANDOM_N=10 RANDOM_SEEDS=2 JOBS=2 SEED=1
SEARCH_ARGS=""
while [ $# -gt 0 ]; do
  case $1 in
    --steps) STEPS=$2 ;; --batch) BATCH=$2 ;; --width) WIDTH=$2 ;; --input) INPUT=$2 ;;
    --epochs) EPOCHS=$2 ;; --seeds) SEEDS=$2 ;; --random) RANDOM_N=$2 ;;
    --random-seeds) RANDOM_SEEDS=$2 ;; --jobs) JOBS=$2 ;; --seed) SEED=$2 ;;
    --search-args) SEARCH_ARGS=$2 ;;
    *) echo "search_quality.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
FBNET=${FBNET:-build/fbnet}
PY=/usr/bin/python3
mkdir -p "$OUT"
T0=$(date +%s)
say() { echo "[search_quality $(( $(date +%s) - T0 ))s] $*" >&2; }
data_of() { case $1 in cls) echo "$CLS_DATA" ;; *) echo "$SCENES/$1" ;; esac; }
jnum() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); exec('v=d'+sys.argv[2]); print(v)" "$@"; }
macs_of() { # arch task width -> deployed MACs (millions)
  "$FBNET" flops "$1" --task "$2" --width "$3" --input "$INPUT" --json 2>/dev/null |
    $PY -c "import json,sys; print(json.load(sys.stdin)['flops'] / 1e6)"
}

# ---- 1. targets and searches ----------------------------------------------
"$FBNET" search --data "$PROXY" --width "$WIDTH" --input "$INPUT" --batch "$BATCH" --steps 1 \
  --threads 1 --quiet --out "$OUT/probe" > /dev/null
B=$(jnum "$OUT/probe/summary.json" "['bits']")
ZERO=$(printf '0%.0s' $(seq "$B")); ONE=$(printf '1%.0s' $(seq "$B"))
targets=""
for t in cls det seg; do
  "$FBNET" derive --run "$OUT/probe" --task $t --bits "$ZERO" --out "$OUT/${t}_none.json" 2> /dev/null
  "$FBNET" derive --run "$OUT/probe" --task $t --bits "$ONE" --out "$OUT/${t}_all.json" 2> /dev/null
  lo=$(macs_of "$OUT/${t}_none.json" $t "$WIDTH"); hi=$(macs_of "$OUT/${t}_all.json" $t "$WIDTH")
  mid=$($PY -c "print('%.3f' % ((float('$lo') + float('$hi')) / 2))")
  say "$t: cheapest $lo M MACs, all kept $hi M, target $mid M"
  targets="$targets${targets:+,}$t=$mid"
done
echo "$targets" > "$OUT/targets.txt"
S=(--data "$PROXY" --width "$WIDTH" --input "$INPUT" --batch "$BATCH" --steps "$STEPS"
   --flops-target "$targets" --seed "$SEED" --threads 1 --quiet)
# shellcheck disable=SC2206
S+=($SEARCH_ARGS)
echo "$SEARCH_ARGS" > "$OUT/search_args.txt"
search() { # name tasks
  [ -s "$OUT/$1/summary.json" ] && return 0
  "$FBNET" search "${S[@]}" --tasks "$2" --out "$OUT/$1" > "$OUT/$1.log" 2>&1 ||
    { echo "search $1 failed: $(tail -n 3 "$OUT/$1.log")" >&2; return 1; }
}
say "searches: cls,det,seg in one run, and cls, det, seg alone ($STEPS steps each, $JOBS at a time)"
search multi cls,det,seg & search single_cls cls & wait
search single_det det & search single_seg seg & wait
for r in multi single_cls single_det single_seg; do
  [ -s "$OUT/$r/summary.json" ] || { echo "search $r did not finish" >&2; exit 1; }
done
say "searches done"

# ---- 2. the networks ------------------------------------------------------------
jobs="$OUT/jobs.txt"; : > "$jobs"
for t in cls det seg; do
  cp "$OUT/multi/$t.json" "$OUT/${t}_searched.json"
  cp "$OUT/single_$t/$t.json" "$OUT/${t}_single.json"
  m=$(macs_of "$OUT/${t}_searched.json" $t "$WIDTH")
  # the all-kept network, width-scaled to the searched MACs (bisection)
  w=$($PY scripts/width_for_macs.py "$OUT/${t}_all.json" $t "$INPUT" "$m" --below --fbnet "$FBNET" 2> /dev/null)
  wh=$($PY scripts/width_for_macs.py "$OUT/${t}_all.json" $t "$INPUT" "$m" --above --fbnet "$FBNET" 2> /dev/null)
  echo "$w $wh" > "$OUT/${t}_baseline_width.txt"
  echo "$m $(macs_of "$OUT/${t}_all.json" $t "$w") $(macs_of "$OUT/${t}_all.json" $t "$wh")" > "$OUT/${t}_baseline_macs.txt"
  "$FBNET" derive --run "$OUT/multi" --task $t --random "$RANDOM_N" --macs "$m" --tolerance 0.05 \
    --seed $((SEED * 100 + ${#t})) --out-dir "$OUT/${t}_random" > "$OUT/${t}_random.jsonl"
  say "$t: searched $m M MACs; single-task $(macs_of "$OUT/${t}_single.json" $t "$WIDTH") M; baseline = all kept at widths $w and $wh ($(cut -d' ' -f2,3 "$OUT/${t}_baseline_macs.txt") M); $RANDOM_N random within 5%"
  for s in $(seq "$SEEDS"); do
    echo "$t searched $OUT/${t}_searched.json $WIDTH $s" >> "$jobs"
    echo "$t single $OUT/${t}_single.json $WIDTH $s" >> "$jobs"
    echo "$t baseline $OUT/${t}_all.json $w $s" >> "$jobs"
    echo "$t baseline_hi $OUT/${t}_all.json $wh $s" >> "$jobs"
  done
  for k in $(seq 0 $((RANDOM_N - 1))); do
    for s in $(seq "$RANDOM_SEEDS"); do
      echo "$t random$k $OUT/${t}_random/random_$k.json $WIDTH $s" >> "$jobs"
    done
  done
done

# ---- 3. the supernet's own estimate of each subnet (Kendall tau) -----------
for t in cls det seg; do
  est="$OUT/${t}_estimates.jsonl"
  [ -s "$est" ] && [ "$(wc -l < "$est")" -eq $((RANDOM_N + 2)) ] && continue # done before
  : > "$est"
  for f in "$OUT/${t}_searched.json" "$OUT/${t}_single.json" "$OUT/${t}_random"/random_*.json; do
    bits=$(jnum "$f" "['derived']['bits']")
    r=$("$FBNET" derive --run "$OUT/multi" --task $t --bits "$bits" --out "$OUT/derive_tmp.json" \
        --eval-data "$(data_of $t)" --recal-images 256 --batch 32 --threads 2 --json 2> /dev/null | tail -n 1)
    echo "{\"arch\": \"$f\", \"estimate\": $r}" >> "$est"
  done
done
say "shared-weight estimates done"

# ---- 4. retraining --------------------------------------------------------------
n_jobs=$(wc -l < "$jobs")
say "retraining $n_jobs networks ($EPOCHS epochs, $JOBS at a time, 1 thread each)"
train_one() { # task name arch width seed
  local d="$OUT/train/$1_$2_s$5"
  [ -s "$d/final.json" ] && return 0
  mkdir -p "$d"
  "$FBNET" train --task "$1" --arch "$3" --data "$(data_of "$1")" --width "$4" --input "$INPUT" \
    --epochs "$EPOCHS" --seed "$5" --threads 1 --quiet --out "$d" > "$d/final.json.tmp" 2> "$d/err.txt" &&
    mv "$d/final.json.tmp" "$d/final.json"
  local done_n; done_n=$(ls "$OUT"/train/*/final.json 2> /dev/null | wc -l)
  local el=$(( $(date +%s) - T1 ))
  echo "[search_quality] trained $done_n/$N_JOBS ($1 $2 seed $5): $(tail -c 120 "$d/final.json" | tr -d '\n' | cut -c1-60)...; about $(( el * (N_JOBS - done_n) / (done_n > 0 ? done_n : 1) / 60 )) min left" >&2
}
export -f train_one data_of
export OUT FBNET INPUT EPOCHS CLS_DATA SCENES N_JOBS=$n_jobs T1=$(date +%s)
OMP_NUM_THREADS=1 xargs -P "$JOBS" -L 1 bash -c 'train_one "$@"' _ < "$jobs"
say "retraining done"
$PY bench/quality_report.py "$OUT" > "$OUT/search_quality.md"
say "wrote $OUT/search_quality.json and $OUT/search_quality.md"
cat "$OUT/search_quality.md"
