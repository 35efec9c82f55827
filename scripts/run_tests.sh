#!/usr/bin/env bash
# Runs each test binary, then the CLI tests, and prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# Idle OpenMP threads sleep instead of spinning: tests share 2 cores with
# other processes, where spinning threads slow everything down many times.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
passed=0; failed=0; failed_names=()
run_one() {
  local name=$1; shift
  local start=$(date +%s)
  if "$@" > "$BUILD/tests/$name.log" 2>&1; then
    passed=$((passed+1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed+1)); failed_names+=("$name"); echo "FAIL $name ($(( $(date +%s) - start ))s)"
    tail -n 30 "$BUILD/tests/$name.log" | sed 's/^/    /'
  fi
}
mkdir -p "$BUILD/tests"
for t in "$@"; do run_one "$(basename "$t")" "$t"; done
for name in tests/fuzz/fuzz_*.c; do # parsers replayed over their corpus and regressions
  name=$(basename "$name" .c); name=${name#fuzz_}
  [ "$name" = util ] && continue
  run_one "fuzz_replay_$name" "$BUILD/fuzz/replay_$name" tests/fuzz/corpus/$name tests/fuzz/regress/$name
done
for t in tests/cli/test_*.sh; do
  [ -e "$t" ] || continue
  run_one "$(basename "$t" .sh)" env FBNET="$BUILD/fbnet" bash "$t"
done
echo
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
