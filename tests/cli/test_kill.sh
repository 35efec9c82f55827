#!/usr/bin/env bash
# kill -9 at random moments: a search and a training are killed again and
# again (10+ times each, checkpoints every step or epoch, so kills land
# during checkpoint writes too) and resumed until they finish; the outputs
# must be byte-identical to an uninterrupted run's: weights, derived arch
# files, summary, and the logs apart from timings.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
RANDOM=7 # the kill moments are random but repeatable

# runs "$@" (a command without --resume) to completion, killing it with -9 after a
# random delay up to MAX_MS, at least KILLS times; prints the number of kills
kill_until_done() {
  local out=$1 max_ms=$2 kills=$3; shift 3
  local n=0 rc
  while :; do
    local extra=()
    [ -e "$out/checkpoint.safetensors" ] || [ -e "$out/checkpoint.prev.safetensors" ] && extra=(--resume)
    "$@" "${extra[@]}" > /dev/null 2>> "$tmp/kill.log" &
    local pid=$!
    if [ $n -lt $kills ]; then
      sleep "$(awk -v r=$RANDOM -v m="$max_ms" 'BEGIN { printf "%.3f", (r % m) / 1000 }')"
      kill -9 $pid 2> /dev/null && n=$((n + 1))
    fi
    wait $pid; rc=$?
    [ $rc -eq 0 ] && [ $n -ge $kills ] && break
    [ $rc -ne 0 ] && [ $rc -ne 137 ] && { echo "run failed (rc $rc): $(tail -n 2 $tmp/kill.log)" >&2; echo -1; return; }
  done
  echo $n
}

# ---- training: Fashion-MNIST subset, a checkpoint every epoch --------------------
T=(train --arch archs/fbnetv3_a.json --input 32 --padding standard --width 0.25 --batch 32
   --train-limit 512 --test-limit 64 --ema 0.9 --epochs 12 --threads 1 --quiet)
"$FBNET" "${T[@]}" --out "$tmp/t_ref" > /dev/null 2>&1
n=$(kill_until_done "$tmp/t_kill" 900 10 "$FBNET" "${T[@]}" --out "$tmp/t_kill")
strip() { py 'import json,sys; [print(json.dumps({k: v for k, v in json.loads(l).items() if k != "seconds"}, sort_keys=True)) for l in open(sys.argv[1])]' "$1"; }
check "[ $n -ge 10 ] && cmp -s $tmp/t_ref/weights.safetensors $tmp/t_kill/weights.safetensors && [ \"\$(strip $tmp/t_ref/log.jsonl)\" = \"\$(strip $tmp/t_kill/log.jsonl)\" ]" \
  "training killed $n times and resumed: weights and log (minus timings) identical to a straight run"

# ---- search: tiny teachers, proxy set, a checkpoint every 2 steps ---------------------
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 16 --proxy 48 --quiet --threads 2 || exit 1
TT=(--arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)
"$FBNET" train --task det "${TT[@]}" --data "$tmp/sc/det" --out "$tmp/tdet" > /dev/null &&
"$FBNET" train --task seg "${TT[@]}" --data "$tmp/sc/seg" --out "$tmp/tseg" > /dev/null &&
"$FBNET" label --det-teacher "$tmp/tdet/weights.safetensors" --seg-teacher "$tmp/tseg/weights.safetensors" \
  --images "$tmp/sc/proxy/train" --out "$tmp/proxy" --score-thresh 0.05 --quiet > /dev/null || exit 1
S=(search --data "$tmp/proxy" --width 0.25 --batch 8 --steps 40 --warmup 0.25 --ckpt-every 2
   --threads 1 --quiet --replay 16 --elite 0.3)
"$FBNET" "${S[@]}" --out "$tmp/s_ref" > /dev/null 2>&1
n=$(kill_until_done "$tmp/s_kill" 700 12 "$FBNET" "${S[@]}" --out "$tmp/s_kill")
same=1
for f in supernet.safetensors summary.json cls.json det.json seg.json; do cmp -s "$tmp/s_ref/$f" "$tmp/s_kill/$f" || same=0; done
check "[ $n -ge 10 ] && [ $same -eq 1 ] && py 'import json,sys; a=[json.loads(l) for l in open(sys.argv[1])]; b=[json.loads(l) for l in open(sys.argv[2])]; [x.pop(\"sec\") for x in a+b]; assert a==b' $tmp/s_ref/search.jsonl $tmp/s_kill/search.jsonl" \
  "search killed $n times and resumed: supernet, derived files, summary and log (minus timings) identical"
echo "(kills landed during checkpoint writes $(grep -c 'previous checkpoint' $tmp/kill.log) times: resumed from the previous one)"
exit $fail
