#!/usr/bin/env bash
# Data-parallel throughput on this machine: the same training (the same global batch) as
# 1 process x T threads and as N ranks x T/N threads (mpirun, shared memory), and the
# gradient allreduce's bytes and time per step.
#
#   bash bench/compare_mpi.sh [--ranks N] [--threads T] [--batch B] [--input S] [--width W]
#        [--images K]
#
# Prints both commands' JSON results, the allreduce line of the N-rank run, and as its last
# line ratio_ranks_vs_threads=X.XX (images/s of N ranks over images/s of 1 process; 1.00 =
# as fast). Defaults: 2 ranks, 2 threads, FBNetV3-A width 0.5 at 64 px, batch 64, 4096
# Fashion-MNIST images (64 steps, one epoch, test on 64 images).
# Environment: FBNET (default ./build/fbnet).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=2 threads=2 batch=64 input=64 width=0.5 images=4096
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "compare_mpi.sh: option '$1' needs a value" >&2; exit 2; }
  case $1 in
    --ranks) ranks=$2 ;; --threads) threads=$2 ;; --batch) batch=$2 ;; --input) input=$2 ;;
    --width) width=$2 ;; --images) images=$2 ;;
    *) echo "compare_mpi.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift 2
done
FBNET=${FBNET:-./build/fbnet}
"$FBNET" version | grep -q "MPI: yes" || { echo "compare_mpi.sh: $FBNET was built without MPI" >&2; exit 1; }
per=$((threads / ranks)); [ "$per" -ge 1 ] || per=1
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
base=(train --arch archs/fbnetv3_a.json --data fashion-mnist --input "$input" --width "$width"
      --batch "$batch" --epochs 1 --test-limit 64 --ema 0)
common=("${base[@]}" --train-limit "$images" --quiet)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# threads spin while waiting (OpenMP default, what a user gets); passive would slow 2 threads
unset OMP_WAIT_POLICY
echo "1 process x $threads threads: $FBNET ${common[*]} --threads $threads" >&2
one=$(OMP_NUM_THREADS=$threads "$FBNET" "${common[@]}" --threads "$threads" --out "$out/one")
echo "$one"
echo "$ranks ranks x $per threads: mpirun -np $ranks --bind-to none $FBNET ... --threads $per" >&2
many=$(mpirun --oversubscribe --bind-to none -np "$ranks" -x OMP_NUM_THREADS=$per \
         "$FBNET" "${common[@]}" --threads "$per" --out "$out/many" 2> "$out/err") ||
  { cat "$out/err" >&2; exit 1; }
echo "$many"
# the allreduce line needs the run without --quiet: one more short run for it
mpirun --oversubscribe --bind-to none -np "$ranks" -x OMP_NUM_THREADS=$per \
  "$FBNET" "${base[@]}" --threads "$per" --train-limit $((batch * 16)) --out "$out/stats" \
  2>&1 > /dev/null | grep "allreduce" || true
ips() { sed 's/.*"images_per_sec": \([0-9.]*\).*/\1/' <<< "$1"; }
awk -v a="$(ips "$many")" -v b="$(ips "$one")" 'BEGIN { printf "ratio_ranks_vs_threads=%.2f\n", a / b }'
