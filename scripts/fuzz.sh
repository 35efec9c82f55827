#!/usr/bin/env bash
# Runs each parser harness (tests/fuzz/fuzz_NAME.c) under libFuzzer for a
# bounded time: bash scripts/fuzz.sh SECONDS NAME...  (what `make fuzz` does).
# The library is built by clang with -fsanitize=fuzzer-no-link,address,undefined
# into build-fuzz/; each run starts from tests/fuzz/corpus/NAME and the
# regression inputs. Exit 1 when any harness found a crash, a leak or UB; the
# input is kept in build-fuzz/findings/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:?usage: scripts/fuzz.sh SECONDS NAME...}
shift
command -v clang > /dev/null || { echo "fuzz: clang is missing (scripts/install_deps.sh installs it)" >&2; exit 1; }
B=build-fuzz
SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow"
make -s BUILD=$B CC=clang MPI=0 OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $SAN" \
  $B/libfbnet.a > /dev/null
failed=()
for name in "$@"; do
  bin=$B/fuzz/fuzz_$name
  mkdir -p $B/fuzz $B/corpus/$name $B/findings/$name
  clang -std=c11 -D_GNU_SOURCE -O1 -g -march=x86-64-v3 -fopenmp -Iinclude -Isrc -Itests/fuzz \
    -fsanitize=fuzzer $SAN tests/fuzz/fuzz_$name.c tests/fuzz/fuzz_util.c $B/libfbnet.a \
    -ldnnl -lcjson -lpng -ljpeg -lz -lprotobuf-c -lm -o "$bin"
  cp -n tests/fuzz/corpus/$name/* tests/fuzz/regress/$name/* $B/corpus/$name/ 2> /dev/null || true
  echo "fuzz $name: $SECONDS_EACH s"
  if ! (cd $B/findings/$name && ASAN_OPTIONS=detect_leaks=1 "../../../$bin" -max_total_time="$SECONDS_EACH" \
          -max_len=65536 -rss_limit_mb=4096 -timeout=20 "../../corpus/$name" > ../../fuzz_$name.log 2>&1); then
    failed+=("$name")
    echo "fuzz $name: FINDING (build-fuzz/findings/$name, log build-fuzz/fuzz_$name.log)"
    tail -n 30 $B/fuzz_$name.log
  else
    echo "fuzz $name: $(grep -o 'Done [0-9]* runs' $B/fuzz_$name.log || echo done), no finding"
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]}"; exit 1; }
echo "fuzz: ${#@} harnesses, no finding"
