#!/usr/bin/env bash
# The estimator table of docs/search-quality.md: `fbnet bench tabular` on a
# tabular NAS benchmark for each estimator at N = 100, 1000, 2000 queries.
#   bash bench/tabular_table.sh TABLE.json [SEEDS] > table.md
# Writes the markdown table on stdout and every run's JSON line to
# bench/results/tabular.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLE=${1:?usage: bench/tabular_table.sh TABLE.json [SEEDS]}
SEEDS=${2:-40}
FBNET=${FBNET:-build/fbnet}
mkdir -p bench/results
out=bench/results/tabular.jsonl
: > "$out"
rows=(
  "plain, no advantage normalisation|--estimator plain --adv-norm 0"
  "plain (the paper's estimator)|--estimator plain"
  "replay of every sample, normalised rewards|--estimator replay"
  "replay of the last 500, normalised rewards|--estimator replay --replay 500"
  "replay of every sample, elite 20%|--estimator elite --replay 1000000"
  "replay of the last 500, elite 20% (default)|--estimator elite"
)
echo "| estimator | N | one run (all tasks, N queries) | single-task runs (N each) | random (best of N) | worst task, one run |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  name=${row%%|*}; args=${row#*|}
  for n in 100 1000 2000; do
    # shellcheck disable=SC2086
    line=$("$FBNET" bench tabular --table "$TABLE" --queries $n --seeds "$SEEDS" $args --json 2>/dev/null)
    echo "$line" >> "$out"
    /usr/bin/python3 - "$name" "$line" <<'PY'
import json, sys
name, d = sys.argv[1], json.loads(sys.argv[2])
m = d["mean"]
worst = max(t["one_run"]["mean"] for t in d["tasks"])
print("| %s | %d | %.2f | %.2f | %.2f | %.2f |" % (name, d["queries"], m["one_run"], m["single"], m["random"], worst))
PY
  done
done
