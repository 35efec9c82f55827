#!/usr/bin/env bash
# Latency-aware search on tiny demo data: fbnet bench latency makes a table
# and checks it, fbnet search --latency-target uses it (resource term, the
# summary's predicted and measured latency), fbnet derive --front derives
# architectures at increasing budgets; tables made for another network,
# thread count or broken files, and unreachable targets, are errors.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
tiny_proxy

"$FBNET" bench latency --help > "$tmp/h"; rc=$?
check "[ $rc -eq 0 ] && grep -q -- --check $tmp/h" "bench latency --help"

# the proxy set's heads: 10 classes, 10 categories, 11 segmentation classes (the scenes)
H=(--classes 10 --cats 10 --seg-classes 11)
L=(--input 64 --width 0.25 --threads 1 --networks 64 --reps 3 --warmup 1)
"$FBNET" bench latency "${L[@]}" "${H[@]}" --out "$tmp/lut.json" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "bench latency makes a table (rc $rc) $(tail -n 1 $tmp/err)"
check "py 'import json,sys; t=json.load(open(sys.argv[1])); assert t[\"format\"]==\"fbnet-latency-table\" and t[\"input_size\"]==64 and len(t[\"tables\"])==1 and t[\"tables\"][0][\"threads\"]==1; ts=t[\"tables\"][0][\"tasks\"]; assert [x[\"task\"] for x in ts]==[\"cls\",\"det\",\"seg\"]; n=len(t[\"elements\"]); assert all(len(x[\"element_ms\"])==n and x[\"fixed_ms\"]>0 and x[\"reference_ms\"]>0 and x[\"max_ms\"]>x[\"min_ms\"] for x in ts); assert t[\"machine\"][\"cpu\"] and t[\"machine\"][\"build\"]' $tmp/lut.json" \
  "the table: per task fixed part, one time per element, the machine"

"$FBNET" bench latency --check --json --table "$tmp/lut.json" --check-networks 6 > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; c=json.loads(open(sys.argv[1]).read().splitlines()[-1])[\"check\"]; assert len(c)==1 and c[0][\"threads\"]==1 and c[0][\"networks\"]==18 and -1<=c[0][\"spearman\"]<=1 and c[0][\"mape\"]>=0 and set(c[0][\"tasks\"])=={\"cls\",\"det\",\"seg\"}' $tmp/out" \
  "bench latency --check: last line JSON with spearman and mape per thread count (rc $rc) $(tail -n 1 $tmp/err)"

target=$(py 'import json,sys; x=json.load(open(sys.argv[1]))["tables"][0]["tasks"][0]; print("%.4f" % (0.5*(x["min_ms"]+x["max_ms"])))' "$tmp/lut.json")
S=(--data "$tmp/proxy" --width 0.25 --batch 8 --steps 8 --warmup 0.25 --threads 2 --quiet)
"$FBNET" search "${S[@]}" --out "$tmp/r1" --latency-table "$tmp/lut.json" --latency-target "cls=${target}ms" \
  > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "search --latency-target cls=${target}ms (rc $rc) $(tail -n 1 $tmp/err)"
check "grep -q 'cls   latency at 1 threads, batch 1: predicted' $tmp/out && grep -q 'det   latency at 1 threads' $tmp/out" \
  "summary prints each derived network's predicted and measured latency"
check "py 'import json,sys; d=json.load(open(sys.argv[1]))[\"tasks\"]; assert all(v[\"latency\"][\"measured_ms\"]>0 and v[\"latency\"][\"predicted_ms\"]>0 for v in d.values()) and abs(d[\"cls\"][\"latency\"][\"target_ms\"]-$target)<1e-3' $tmp/r1/summary.json" \
  "summary.json: predicted, measured and target latency"
check "py 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert all(x[\"latency_ms\"][\"cls\"]>0 for x in l)' $tmp/r1/search.jsonl" \
  "every step logs its architecture's predicted latency"
# the logged prediction is the table's sum for that step's architecture, derived
bits=$(py 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["arch"])' "$tmp/r1/search.jsonl")
logged=$(py 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["latency_ms"]["seg"])' "$tmp/r1/search.jsonl")
"$FBNET" derive --run "$tmp/r1" --task seg --bits "$bits" --out "$tmp/b.json" 2> /dev/null
check "py 'import json,sys; t=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2])); names=t[\"elements\"]; x=[v for v in t[\"tables\"][0][\"tasks\"] if v[\"task\"]==\"seg\"][0]; kept=set(d[\"derived\"][\"kept_elements\"]); p=x[\"fixed_ms\"]+sum(x[\"element_ms\"][i] or 0 for i,n in enumerate(names) if n in kept); assert abs(p-$logged)<1e-5*max(1,p), (p, $logged)' $tmp/lut.json $tmp/b.json" \
  "the logged latency = fixed + the times of the elements the derived arch file keeps"

"$FBNET" report "$tmp/r1" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'predicted latency per step' $tmp/r1/report.html && grep -q '<h2 id=\"latency\"' $tmp/r1/report.html" \
  "fbnet report plots each step's predicted latency and lists the derived networks' (rc $rc)"
"$FBNET" search "${S[@]}" --steps 2 --out "$tmp/r0" > /dev/null 2>&1 && "$FBNET" report "$tmp/r0" > /dev/null 2>&1
check "[ -s $tmp/r0/report.html ] && ! grep -q 'id=\"latency\"' $tmp/r0/report.html" "no latency section without a table"

# bad input
"$FBNET" search "${S[@]}" --out "$tmp/r2" --latency-table "$tmp/lut.json" --latency-target cls=0.0001ms > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'below the fastest cls network of the supernet' $tmp/err" "a target below the fastest network: an error saying the minimum (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" search "${S[@]}" --out "$tmp/r3" --latency-table "$tmp/lut.json" --latency-target det=100ms --deploy-input 96 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'input size 64 (here 96)' $tmp/err" "a table for another input size: an error naming it (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" search "${S[@]}" --steps 2 --out "$tmp/r4" --latency-table "$tmp/lut.json" --latency-target det=100ms --deploy-input 96 --latency-force > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'warning: .*input size 64 (here 96)' $tmp/err" "--latency-force: a warning instead (rc $rc)"
"$FBNET" search "${S[@]}" --out "$tmp/r5" --latency-table "$tmp/lut.json" --latency-target det=100ms --latency-threads 3 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no table for 3 threads (it has 1)' $tmp/err" "a thread count the table lacks (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" search "${S[@]}" --out "$tmp/r6" --latency-target det=100ms > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'needs --latency-table' $tmp/err" "--latency-target without a table: usage error (rc $rc)"
"$FBNET" bench latency "${L[@]}" --networks 60 --tasks cls --out "$tmp/lut1000.json" --reps 3 2> /dev/null
"$FBNET" search "${S[@]}" --out "$tmp/r7" --latency-table "$tmp/lut1000.json" --latency-target cls=100ms > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'a classifier of 1000 classes (here 10' $tmp/err" "a table for other head sizes names them (rc $rc): $(tail -n 1 $tmp/err)"
head -c 300 "$tmp/lut.json" > "$tmp/cut.json"
"$FBNET" search "${S[@]}" --out "$tmp/r8" --latency-table "$tmp/cut.json" --latency-target cls=1ms > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'cut.json' $tmp/err" "a truncated table: an error naming the file (rc $rc): $(tail -n 1 $tmp/err)"
"$FBNET" bench latency --check --table "$tmp/r1/summary.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'not an fbnet latency table' $tmp/err" "another JSON file as a table (rc $rc): $(tail -n 1 $tmp/err)"

# a front per task from one run
"$FBNET" derive --run "$tmp/r1" --task det --front 4 --latency-table "$tmp/lut.json" > "$tmp/front" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; f=[json.loads(l) for l in open(sys.argv[1])]; assert 2<=len(f)<=4; b=[x[\"budget\"] for x in f]; p=[x[\"predicted_ms\"] for x in f]; assert b==sorted(b) and p==sorted(p) and all(x[\"measured_ms\"]>0 and x[\"predicted_ms\"]<=x[\"budget\"]*(1+1e-9) for x in f); import os; assert all(os.path.exists(x[\"file\"]) for x in f)' $tmp/front" \
  "derive --front 4 --latency-table: architectures at increasing latency budgets, each measured (rc $rc) $(tail -n 1 $tmp/err)"
"$FBNET" derive --run "$tmp/r1" --task seg --front 3 --out-dir "$tmp/fseg" > "$tmp/front" 2> /dev/null; rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; f=[json.loads(l) for l in open(sys.argv[1])]; m=[x[\"macs\"] for x in f]; assert len(f)>=2 and m==sorted(m) and m[0]<m[-1]' $tmp/front && [ -s $tmp/fseg/front_0.json ]" \
  "derive --front 3 without a table: MACs budgets"
"$FBNET" train --task seg --arch "$tmp/fseg/front_0.json" --data "$tmp/sc/seg" --width 0.25 --batch 16 --epochs 1 \
  --threads 2 --quiet --ema 0 --out "$tmp/tf" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "a front architecture trains with fbnet train (rc $rc) $(tail -n 1 $tmp/err)"
exit $fail
