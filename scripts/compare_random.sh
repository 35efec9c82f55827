#!/usr/bin/env bash
# Does the search find better networks? For each task of a search run:
#   - the searched architecture (RUN/<task>.json),
#   - N architectures sampled uniformly from the same space (every bit kept
#     with p = 0.5, then derived for the task) whose MACs are within 15% of
#     the searched one's,
#   - the all-kept network (every bit on, derived) scaled by width to within
#     15% of the searched one's MACs,
# each retrained on the task's data with S seeds; prints mean and spread.
#
#   bash scripts/compare_random.sh RUN_DIR SCENES_DIR OUT_DIR [options]
#     --tasks cls,det,seg  --samples 5  --seeds 2  --width 0.5  --input 64
#     --epochs 8  --threads 2  --jobs 1 (parallel trainings; use --threads 1 with --jobs 2)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,15p' "$0" | sed 's/^# *//' >&2; exit 2; }
RUN=$1 SCENES=$2 OUT=$3
shift 3
TASKS=cls,det,seg SAMPLES=5 SEEDS=2 WIDTH=0.5 INPUT=64 EPOCHS=8 THREADS=2 JOBS=1
while [ $# -gt 0 ]; do
  case $1 in
    --tasks) TASKS=$2 ;; --samples) SAMPLES=$2 ;; --seeds) SEEDS=$2 ;; --width) WIDTH=$2 ;;
    --input) INPUT=$2 ;; --epochs) EPOCHS=$2 ;; --threads) THREADS=$2 ;; --jobs) JOBS=$2 ;;
    *) echo "compare_random.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
FBNET=${FBNET:-build/fbnet}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
B=$("$FBNET" flops "$RUN/cls.json" >/dev/null 2>&1; $PY -c "import json,sys; print(len(json.load(open(sys.argv[1]))['derived']['bits']))" "$(ls $RUN/*.json | grep -v summary | head -n 1)")

macs() { # arch task width -> MACs of the task's network at INPUT
  "$FBNET" flops "$1" --task "$2" --width "$3" --input $INPUT --classes 10 --json \
    | $PY -c "import json,sys; print(json.load(sys.stdin)['flops'])"
}
within() { $PY -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a/b-1)<=0.15 else 1)" "$1" "$2"; }

# one line per training job: task arch width seed name
jobs_file="$OUT/jobs.txt"; : > "$jobs_file"
for task in ${TASKS//,/ }; do
  target=$(macs "$RUN/$task.json" $task $WIDTH)
  echo "$task searched: $(printf '%.2f' $($PY -c "print($target/1e6)")) M MACs" >&2
  cp "$RUN/$task.json" "$OUT/${task}_searched.json"
  for s in $(seq 1 $SEEDS); do echo "$task $OUT/${task}_searched.json $WIDTH $s searched" >> "$jobs_file"; done
  # random architectures at similar cost (rejection sampling)
  k=0 tries=0
  while [ $k -lt $SAMPLES ] && [ $tries -lt 400 ]; do
    tries=$((tries+1))
    bits=$($PY -c "import random,sys; r=random.Random(int(sys.argv[1])); print(''.join('1' if r.random()<0.5 else '0' for _ in range(int(sys.argv[2]))))" "$((tries * 7919 + ${#task}))" "$B")
    f="$OUT/${task}_random$((k+1)).json"
    "$FBNET" derive --run "$RUN" --task $task --bits "$bits" --out "$f" 2>/dev/null
    m=$(macs "$f" $task $WIDTH)
    if within "$m" "$target"; then
      k=$((k+1))
      echo "$task random$k: $(printf '%.2f' $($PY -c "print($m/1e6)")) M MACs (try $tries)" >&2
      for s in $(seq 1 $SEEDS); do echo "$task $f $WIDTH $s random$k" >> "$jobs_file"; done
    fi
  done
  # the all-kept network scaled by width to the same cost (bisection on the width)
  ones=$(printf '1%.0s' $(seq 1 $B))
  f="$OUT/${task}_allkept.json"
  "$FBNET" derive --run "$RUN" --task $task --bits "$ones" --out "$f" 2>/dev/null
  lo=0.1 hi=$WIDTH
  for i in 1 2 3 4 5 6 7 8; do
    mid=$($PY -c "print(round(($lo+$hi)/2, 4))")
    m=$(macs "$f" $task $mid)
    if $PY -c "import sys; sys.exit(0 if float(sys.argv[1])>float(sys.argv[2]) else 1)" "$m" "$target"; then hi=$mid; else lo=$mid; fi
  done
  w=$hi; m=$(macs "$f" $task $w)
  within "$m" "$target" || { w=$lo; m=$(macs "$f" $task $w); }
  echo "$task all-kept: width $w, $(printf '%.2f' $($PY -c "print($m/1e6)")) M MACs" >&2
  for s in $(seq 1 $SEEDS); do echo "$task $f $w $s allkept_w$w" >> "$jobs_file"; done
done

run_job() { # task arch width seed name
  local out="$OUT/runs/$1_$5_s$4"
  mkdir -p "$out"
  [ -s "$out/result.json" ] && return 0
  "$FBNET" train --task $1 --arch "$2" --data "$SCENES/$1" --width $3 --input $INPUT \
    --epochs $EPOCHS --seed $4 --threads $THREADS --out "$out" --quiet > "$out/result.json.tmp" &&
    mv "$out/result.json.tmp" "$out/result.json"
}
export -f run_job
export FBNET OUT INPUT EPOCHS THREADS SCENES
echo "$(wc -l < "$jobs_file") trainings, $JOBS at a time" >&2
xargs -P "$JOBS" -L 1 bash -c 'run_job "$@"' _ < "$jobs_file"

$PY - "$OUT" "$jobs_file" <<'EOF'
import json, statistics, sys, os, collections
out, jobs = sys.argv[1], sys.argv[2]
key = {"cls": "top1", "det": "AP", "seg": "mIoU"}
res = collections.defaultdict(list)
for line in open(jobs):
    task, arch, width, seed, name = line.split()
    p = os.path.join(out, "runs", f"{task}_{name}_s{seed}", "result.json")
    if os.path.exists(p):
        group = "random" if name.startswith("random") else name.split("_w")[0]
        res[(task, group)].append(json.load(open(p))[key[task]])
print(f"{'task':5} {'architecture':12} {'runs':>4} {'mean':>8} {'sd':>7} {'min':>7} {'max':>7}")
for (task, group), v in sorted(res.items()):
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"{task:5} {group:12} {len(v):4d} {statistics.mean(v):8.4f} {sd:7.4f} {min(v):7.4f} {max(v):7.4f}")
EOF
