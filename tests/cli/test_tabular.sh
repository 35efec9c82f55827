#!/usr/bin/env bash
# fbnet bench tabular: the search's distributions and estimators on tabular
# NAS benchmarks. A planted table (the best row known) is found exactly; a
# cost target is respected; on the public TransNAS-Bench-101 micro table
# (../shared/data, when present) the default estimator's one run beats the
# plain estimator and lands in the top 1% on average; bad tables and options
# are errors naming the file and row.
set -u
. "$(dirname "$0")/common.sh"

# a planted table: 5 decisions x 3 choices, 2 tasks whose metric adds a
# per-decision score (task a prefers choice 2 everywhere, task b choice 0), and
# a cost = number of choices that are not 0
py '
import itertools, json, sys
rows = []
for c in itertools.product(range(3), repeat=5):
    a = sum(c) + 0.01 * c[0]
    b = -sum(c) + 0.3 * (c[4] == 1)
    rows.append(list(c) + [a, b, sum(x != 0 for x in c)])
json.dump({"name": "planted", "decisions": [{"name": "d%d" % j, "choices": ["x", "y", "z"]} for j in range(5)],
           "tasks": [{"name": "a", "metric": "m", "higher_is_better": True},
                     {"name": "b", "metric": "loss", "higher_is_better": False}],
           "costs": ["ops"], "rows": rows}, open(sys.argv[1], "w"))
' "$tmp/planted.json"
out=$("$FBNET" bench tabular --table "$tmp/planted.json" --queries 400 --seeds 8 --json 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; d=json.loads(sys.argv[1]); t={x[\"name\"]: x for x in d[\"tasks\"]}; assert d[\"queries\"]==400 and d[\"seeds\"]==8; assert t[\"a\"][\"one_run\"][\"mean\"]==0 and t[\"a\"][\"single\"][\"mean\"]==0; assert t[\"b\"][\"one_run\"][\"mean\"] < 1' '$out'" \
  "planted table: the one run finds each task's best row (rc $rc) $(tail -n 1 $tmp/err)"
check "grep -q 'percentile' $tmp/err && grep -q 'one run' $tmp/err" "a readable table on stderr"
out=$("$FBNET" bench tabular --table "$tmp/planted.json" --tasks a --queries 400 --seeds 8 --cost-target ops=2 --cost-lambda 20 --no-single --json 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; d=json.loads(sys.argv[1]); t=d[\"tasks\"][0]; assert t[\"one_run_feasible\"] >= 0.75 and t[\"one_run\"][\"mean\"] < 10, t' '$out'" \
  "cost target ops=2: the derived rows keep within it (rc $rc): $(echo "$out" | head -c 300)"
for est in plain replay elite; do
  "$FBNET" bench tabular --table "$tmp/planted.json" --queries 200 --seeds 2 --estimator $est --no-single > /dev/null 2> "$tmp/err"; rc=$?
  check "[ $rc -eq 0 ]" "--estimator $est runs (rc $rc)"
done

# bad input: errors name the file and the row
bad() { # name python-edit expected-fragment
  py "import json,sys; d=json.load(open(sys.argv[1])); $2; json.dump(d, open(sys.argv[2], 'w'))" "$tmp/planted.json" "$tmp/$1.json"
  "$FBNET" bench tabular --table "$tmp/$1.json" --queries 10 --seeds 1 > /dev/null 2> "$tmp/err"; rc=$?
  check "[ $rc -eq 1 ] && grep -q -- '$3' $tmp/err && grep -q '$1.json' $tmp/err" "$1: $(cat $tmp/err)"
}
bad short_row 'd["rows"][7].pop()' 'rows\[7\]: expected 8 values'
bad choice_range 'd["rows"][3][2] = 3' 'rows\[3\]\[2\]: decision d2 needs a choice index in 0..2'
bad no_task 'del d["tasks"]' 'tasks: expected an array'
bad text_metric 'd["rows"][5][6] = "high"' 'rows\[5\]\[6\]: the metric of b must be a finite number'
bad missing_row 'd["rows"].pop()' '242 rows, but the decisions make 243'
bad same_row 'd["rows"][9][:5] = d["rows"][8][:5]' 'rows\[9\]: the same choices as rows\[8\]'
"$FBNET" bench tabular --table "$tmp/planted.json" --tasks a,nope > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q \"'nope' is not a task\" $tmp/err && grep -q ' a b' $tmp/err" "unknown --tasks name lists the table's tasks (rc $rc)"
"$FBNET" bench tabular --table "$tmp/nowhere.json" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q nowhere.json $tmp/err" "missing table named (rc $rc)"
"$FBNET" bench tabular --table "$tmp/planted.json" --cost-target flops=3 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'ops' $tmp/err" "unknown cost named with the table's costs (rc $rc)"
"$FBNET" bench tabular --table "$tmp/planted.json" --estimator magic > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ]" "unknown estimator is a usage error (rc $rc)"

# the public table: TransNAS-Bench-101 micro, 7 tasks, 4096 cells
TNB=../shared/data/transnas101_micro.json
if [ -f "$TNB" ]; then
  d=$("$FBNET" bench tabular --table "$TNB" --queries 1000 --seeds 20 --no-single --json 2> /dev/null)
  p=$("$FBNET" bench tabular --table "$TNB" --queries 1000 --seeds 20 --no-single --estimator plain --json 2> /dev/null)
  check "py 'import json,sys; d=json.loads(sys.argv[1]); p=json.loads(sys.argv[2]); assert len(d[\"tasks\"])==7; assert d[\"mean\"][\"one_run\"] < 1.0 and d[\"mean\"][\"one_run\"] < p[\"mean\"][\"one_run\"] / 3, (d[\"mean\"], p[\"mean\"])' '$d' '$p'" \
    "TransNAS-Bench-101 micro, N = 1000, 20 seeds: default one run $(echo "$d" | grep -o '\"mean\": {[^}]*}') vs plain $(echo "$p" | grep -o '\"mean\": {[^}]*}')"
else
  echo "skip: $TNB not found (the public table is read from ../shared/data)"
fi
exit $fail
