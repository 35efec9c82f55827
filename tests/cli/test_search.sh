#!/usr/bin/env bash
# The search pipeline on tiny demo data: teachers -> fbnet label -> fbnet
# search (all tasks; one task alone), a killed run resumed continues exactly,
# derived arch files train with fbnet train, fbnet derive reproduces them and
# evaluates a subnet with the shared weights, bad input is an error.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
tiny_proxy
T=(--arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)

S=(--data "$tmp/proxy" --width 0.25 --batch 8 --steps 12 --warmup 0.25 --threads 2 --quiet)
"$FBNET" search "${S[@]}" --out "$tmp/r1" > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "search cls,det,seg runs (rc $rc) $(tail -n 1 $tmp/err)"
for t in cls det seg; do
  check "[ -s $tmp/r1/$t.json ]" "$t: derived arch file written"
done
check "[ \$(wc -l < $tmp/r1/search.jsonl) -eq 12 ]" "one log line per step"
check "py 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]; l=json.loads(open(sys.argv[1]).readlines()[-1]); assert set(l[\"probs\"])=={\"cls\",\"det\",\"seg\"} and len(l[\"probs\"][\"det\"])==55 and abs(sum(l[\"rho\"].values())-3)<1e-3' $tmp/r1/search.jsonl" \
  "log: losses, rho (sum T), 55 probabilities per task"
check "py 'import json,sys; d=json.load(open(sys.argv[1])); assert set(d[\"tasks\"])=={\"cls\",\"det\",\"seg\"} and all(v[\"macs\"]>0 for v in d[\"tasks\"].values())' $tmp/r1/summary.json" \
  "summary.json: kept bits, MACs and params per task"
check "grep -q 'kept bits' $tmp/out" "summary table printed"

# budgets mean the deployed network: the summary's MACs and each step's logged MACs are what
# fbnet flops counts for the written file with the task's full head at the deploy size
"$FBNET" search "${S[@]}" --steps 4 --deploy-input 96 --out "$tmp/r5" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "search --deploy-input 96 (rc $rc) $(tail -n 1 $tmp/err)"
for t in cls det seg; do
  "$FBNET" flops "$tmp/r5/$t.json" --task $t --width 0.25 --json > "$tmp/f" 2> "$tmp/err"
  check "py 'import json,sys; s=json.load(open(sys.argv[1]))[\"tasks\"][\"$t\"]; f=json.load(open(sys.argv[2])); assert abs(s[\"macs\"]-f[\"flops\"])<0.5 and s[\"search_macs\"]<s[\"macs\"], (s[\"macs\"], f[\"flops\"])' $tmp/r5/summary.json $tmp/f" \
    "$t: summary MACs == fbnet flops of $t.json at the deploy size (96 px, full head) $(tail -n 1 $tmp/err)"
  bits=$(py 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["arch"])' "$tmp/r5/search.jsonl")
  "$FBNET" derive --run "$tmp/r5" --task $t --bits "$bits" --out "$tmp/b.json" 2> /dev/null &&
  "$FBNET" flops "$tmp/b.json" --task $t --width 0.25 --json > "$tmp/f" 2> /dev/null
  check "py 'import json,sys; l=json.loads(open(sys.argv[1]).readlines()[-1]); f=json.load(open(sys.argv[2])); assert abs(l[\"macs\"][\"$t\"]-f[\"flops\"])<1, (l[\"macs\"], f[\"flops\"])' $tmp/r5/search.jsonl $tmp/f" \
    "$t: the MACs a step budgets == fbnet flops of that step's architecture, deployed"
done

# a killed run resumes exactly: 5 steps + resume == 12 steps straight
"$FBNET" search "${S[@]}" --out "$tmp/r2" --stop-after 5 > /dev/null 2>&1
check "[ -s $tmp/r2/checkpoint.safetensors ] && [ ! -e $tmp/r2/summary.json ]" "stopped run: checkpoint, no results yet"
sed -n '6,8p' "$tmp/r1/search.jsonl" >> "$tmp/r2/search.jsonl" # as if killed at step 8, after the step-5 checkpoint
"$FBNET" search "${S[@]}" --out "$tmp/r2" --resume > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && cmp -s $tmp/r1/supernet.safetensors $tmp/r2/supernet.safetensors && cmp -s $tmp/r1/summary.json $tmp/r2/summary.json" \
  "resume continues bit-exactly (weights, distributions) $(tail -n 1 $tmp/err)"
check "py 'import json,sys; a=[json.loads(l) for l in open(sys.argv[1])]; b=[json.loads(l) for l in open(sys.argv[2])]; [x.pop(\"sec\") for x in a+b]; assert a==b' $tmp/r1/search.jsonl $tmp/r2/search.jsonl" \
  "resumed log equals the straight run's"

"$FBNET" search "${S[@]}" --out "$tmp/r2" --resume --batch 4 --theta-lr 0.1 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q -- '--batch 4' $tmp/err && grep -q -- '--theta-lr 0.1' $tmp/err" "search --resume with other options refused, naming them (rc $rc)"

# a run directory is locked by the process that writes it
"$FBNET" search "${S[@]}" --steps 100000 --out "$tmp/lk" > /dev/null 2>&1 &
holder=$!
for i in $(seq 100); do [ -s "$tmp/lk/.lock" ] && break; sleep 0.1; done
"$FBNET" search "${S[@]}" --out "$tmp/lk" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q \"in use by process $holder\" $tmp/err" "a second run on the same --out fails at once, naming the holder (rc $rc): $(cat $tmp/err)"
"$FBNET" train --task seg "${T[@]}" --data "$tmp/sc/seg" --out "$tmp/lk" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'in use by process' $tmp/err" "fbnet train on a locked directory fails too (rc $rc)"
kill $holder 2> /dev/null; wait $holder 2> /dev/null

# one task alone
"$FBNET" search "${S[@]}" --tasks det --out "$tmp/r3" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -s $tmp/r3/det.json ] && [ ! -e $tmp/r3/cls.json ]" "search --tasks det alone $(tail -n 1 $tmp/err)"

# derived architectures train like any other arch file
"$FBNET" train --task seg --arch "$tmp/r1/seg.json" --data "$tmp/sc/seg" --width 0.25 --batch 16 \
  --epochs 1 --threads 2 --quiet --ema 0 --out "$tmp/tr" > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q mIoU $tmp/m" "fbnet train on a derived arch file $(tail -n 1 $tmp/err)"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 scripts/fbnet_to_torch.py "$tmp/tr/weights.safetensors" > "$tmp/pt" 2> "$tmp/err"; rc=$?
  check "[ $rc -eq 0 ] && grep -q '(multi-path) from .*(arch_json)' $tmp/pt && grep -q 'with strict=True' $tmp/pt && grep -q 'outputs seg.logits' $tmp/pt" \
    "fbnet_to_torch.py loads a searched network from its weights alone (outputs: tests/cli/test_torch_any_arch.sh) (rc $rc): $(tail -n 1 $tmp/err)"
fi

# fbnet derive: the same bits as the run's file; a subnet evaluated with the shared weights
"$FBNET" derive --run "$tmp/r1" --task cls --out "$tmp/d.json" 2> /dev/null; rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); assert a[\"derived\"][\"bits\"]==b[\"derived\"][\"bits\"] and a[\"stages\"]==b[\"stages\"]' $tmp/d.json $tmp/r1/cls.json" \
  "fbnet derive reproduces the run's cls architecture"
"$FBNET" derive --run "$tmp/r1" --task det --out "$tmp/d2.json" --eval-data "$tmp/sc/det" \
  --recal-images 32 --batch 8 --threads 2 --json > "$tmp/m" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q '\"AP\"' $tmp/m" "derive --eval-data: BN re-calibration + COCO eval of the subnet $(tail -n 1 $tmp/err)"

# random architectures of the space at given MACs (the baselines of the quality experiment)
m=$(py 'import json,sys; print(json.load(open(sys.argv[1]))["tasks"]["det"]["macs"] / 1e6)' "$tmp/r1/summary.json")
"$FBNET" derive --run "$tmp/r1" --task det --random 3 --macs "$m" --tolerance 0.1 --seed 5 --out-dir "$tmp/rnd" > "$tmp/rnd.jsonl" 2> "$tmp/err"; rc=$?
ok_macs=1
for f in "$tmp"/rnd/random_*.json; do
  fm=$("$FBNET" flops "$f" --task det --width 0.25 --json 2> /dev/null | py 'import json,sys; print(json.load(sys.stdin)["flops"] / 1e6)')
  py "import sys; sys.exit(0 if abs($fm / $m - 1) <= 0.1 else 1)" || ok_macs=0
done
check "[ $rc -eq 0 ] && [ \$(ls $tmp/rnd | wc -l) -eq 3 ] && [ \$(wc -l < $tmp/rnd.jsonl) -eq 3 ] && [ $ok_macs -eq 1 ]" "derive --random 3 --macs M: 3 arch files within 10% of M ($m M) (rc $rc) $(tail -n 1 $tmp/err)"
"$FBNET" derive --run "$tmp/r1" --task det --random 2 --macs 0.001 --tolerance 0.01 --out-dir "$tmp/rnd2" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'widen --tolerance' $tmp/err" "derive --random at unreachable MACs says so (rc $rc)"

# the supernet's bits
"$FBNET" flops archs/fbnetv5_supernet.json --input 64 --json > "$tmp/f" 2> /dev/null
check "py 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"n_bits\"]==55 and len(d[\"bits\"])==55 and all(b[\"macs\"]>0 for b in d[\"bits\"])' $tmp/f" \
  "fbnet flops SUPERNET lists 55 bits with their MACs"

# the central claim's benchmark runs and reports the ratio
"$FBNET" bench search --width 0.25 --batch 4 --steps 2 --warmup 1 --threads 2 --json > "$tmp/b" 2> /dev/null
check "py 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"ratio_3_to_1\"]>0 and len(d[\"sec_per_step\"])==3' $tmp/b" \
  "bench search prints ratio_3_to_1"

# errors
"$FBNET" search --tasks cls,foo --data "$tmp/proxy" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q \"'foo' is not a task\" $tmp/err" "bad --tasks"
"$FBNET" search --data "$tmp/nope" --out "$tmp/r4" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q nope $tmp/err" "missing proxy dir named: $(cat $tmp/err)"
"$FBNET" search "${S[@]}" --supernet archs/fbnetv3_a.json --out "$tmp/r5" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'not a supernet' $tmp/err" "a chain arch is not a supernet"
"$FBNET" search "${S[@]}" --out "$tmp/r6" --resume > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q checkpoint.safetensors $tmp/err" "resume without a checkpoint names the file"
"$FBNET" label --det-teacher "$tmp/tdet/weights.safetensors" --images "$tmp/sc/proxy/train" \
  --out "$tmp/proxy_det" --quiet > /dev/null 2>&1
"$FBNET" search "${S[@]}" --data "$tmp/proxy_det" --tasks det,seg --out "$tmp/r7" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'has seg but the proxy set has no masks (label it with --seg-teacher)' $tmp/err" \
  "a proxy set without masks for --tasks seg: says how to label it ($(tail -n 1 $tmp/err))"
"$FBNET" derive --run "$tmp/r1" --task det --bits 0101 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q '55 bits' $tmp/err" "derive --bits of the wrong length"
exit $fail
