#!/usr/bin/env bash
# Data-parallel training over MPI (Open MPI on loopback, 2 ranks):
# - 2 ranks with global batch B take the same steps as 1 process that splits
#   each batch of B into 2 micro-batches (--micro-batches 2): the same items,
#   augmentation and BN batches, the gradients averaged by MPI_Allreduce
#   instead of summed in place (Fashion-MNIST and detection on the formats);
# - a 2-rank run killed after an epoch and resumed equals an uninterrupted one;
# - bad input: a batch that does not split, ranks started with other options,
#   a rank that fails: errors naming the rank, non-zero exit, no hang.
set -u
. "$(dirname "$0")/common.sh"
if ! "$FBNET" version | grep -q "MPI: yes"; then
  echo "skip: $FBNET was built without MPI (install openmpi: scripts/install_deps.sh; make MPI=1)"
  exit 0
fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
# Open MPI refuses root without these; shared memory and TCP on this machine only
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp \
  OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
# Open MPI's own allocations are not ours to leak-check (sanitizer builds)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(timeout 120 mpirun --oversubscribe -np 2)
weights_diff() { # max |a - b| over the trained tensors (BN running statistics excluded)
  py "
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], np.float32)
            for k, v in h.items() if k != '__metadata__'}
a, b = load('$1'), load('$2')
assert sorted(a) == sorted(b)
print('%.3g' % max(float(np.max(np.abs(a[k] - b[k]))) for k in a if 'running' not in k))"
}
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# Fashion-MNIST (SGD at lr 0.02: at 0.2 the first steps of a fresh network amplify
# float rounding chaotically, in either run)
F=(--arch archs/fbnetv3_a.json --width 0.25 --input 32 --padding standard --batch 32
   --test-limit 64 --ema 0 --threads 1 --quiet --lr 0.02)
"$FBNET" train "${F[@]}" --epochs 1 --train-limit 32 --micro-batches 2 --out "$tmp/m1" > /dev/null &&
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 1 --train-limit 32 --out "$tmp/r1" > "$tmp/r1.out" 2> "$tmp/r1.err"
rc=$?
d=$(weights_diff "$tmp/m1/weights.safetensors" "$tmp/r1/weights.safetensors" 2> /dev/null)
check "[ $rc -eq 0 ] && below '${d:-1}' 1e-6" "1 step, 2 ranks = 2 micro-batches: max |dw| ${d:-?} (<= 1e-6) (rc $rc)"
check "[ \$(grep -c top1 $tmp/r1.out) -eq 1 ]" "rank 0 alone prints the result"
"$FBNET" train "${F[@]}" --epochs 1 --train-limit 256 --micro-batches 2 --out "$tmp/m8" > /dev/null &&
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 1 --train-limit 256 --out "$tmp/r8" > /dev/null 2> "$tmp/err"
rc=$?
d=$(weights_diff "$tmp/m8/weights.safetensors" "$tmp/r8/weights.safetensors" 2> /dev/null)
check "[ $rc -eq 0 ] && below '${d:-1}' 1e-4" "8 steps: max |dw| ${d:-?} (<= 1e-4; the rounding of the two sums, grown by training) (rc $rc)"
"$FBNET" train "${F[@]}" --epochs 1 --train-limit 256 --out "$tmp/b32" > /dev/null
d32=$(weights_diff "$tmp/b32/weights.safetensors" "$tmp/r8/weights.safetensors" 2> /dev/null)
check "below '${d:-1}' '${d32:-0}'" "the one-process batch of 32 (BN over 32, not 16) differs more: ${d32:-?}"

# Two hosts for real: two network namespaces joined by a veth pair (addresses
# 10.77.0.1 and .2), mpirun in the first reaching the second through a launch
# agent that stands in for ssh; the ranks talk MPI over TCP across the veth.
two_hosts() {
  local ns0=fbnet$$a ns1=fbnet$$b
  ip netns add $ns0 2> /dev/null || return 1
  ip netns add $ns1 && ip link add fbv$$a type veth peer name fbv$$b &&
  ip link set fbv$$a netns $ns0 && ip link set fbv$$b netns $ns1 &&
  ip -n $ns0 addr add 10.77.0.1/24 dev fbv$$a && ip -n $ns1 addr add 10.77.0.2/24 dev fbv$$b &&
  ip -n $ns0 link set fbv$$a up && ip -n $ns1 link set fbv$$b up &&
  ip -n $ns0 link set lo up && ip -n $ns1 link set lo up || return 1
  cat > "$tmp/agent" << AGENT
#!/bin/sh
# mpirun's "ssh": host 10.77.0.1 is namespace $ns0, 10.77.0.2 is $ns1
host=\$1; shift
case "\$host" in 10.77.0.1) ns=$ns0 ;; 10.77.0.2) ns=$ns1 ;; *) exit 1 ;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
  chmod +x "$tmp/agent"
  printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$tmp/hosts"
  NETNS=($ns0 $ns1)
}
NETNS=()
cleanup_netns() { for n in "${NETNS[@]}"; do ip netns del "$n" 2> /dev/null; done; }
trap 'cleanup_netns; rm -rf "$tmp"' EXIT
if two_hosts; then
  HOSTS=(timeout 120 ip netns exec "${NETNS[0]}" env -u OMPI_MCA_btl_tcp_if_include -u OMPI_MCA_oob_tcp_if_include
         mpirun --hostfile "$tmp/hosts" -np 2 --mca plm_rsh_agent "$tmp/agent"
         --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24)
  where=$("${HOSTS[@]}" sh -c 'ip -o -4 addr show | grep -o "10\.77\.0\.[12]"' 2> "$tmp/err" | sort | tr '\n' ' ')
  check "[ \"$where\" = '10.77.0.1 10.77.0.2 ' ]" "two namespaces: one rank on each address ($where)"
  B=$(realpath "$FBNET")
  "${HOSTS[@]}" "$B" train "${F[@]}" --epochs 1 --train-limit 256 --out "$tmp/net" > /dev/null 2> "$tmp/err"
  rc=$?
  check "[ $rc -eq 0 ] && cmp -s $tmp/net/weights.safetensors $tmp/r8/weights.safetensors" \
    "2 ranks over TCP across the veth = 2 ranks on loopback, byte for byte (rc $rc): $(tail -n 1 $tmp/err)"
else
  echo "skip: network namespaces cannot be made here (ip netns add failed): the two-host test did not run"
fi
cleanup_netns

# resume: 1 epoch, then --resume to 2 epochs (every rank reads rank 0's checkpoint)
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 2 --train-limit 256 --out "$tmp/r16" > /dev/null 2>&1 &&
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 1 --train-limit 256 --out "$tmp/rr" > /dev/null 2>&1 &&
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 2 --train-limit 256 --out "$tmp/rr" --resume > /dev/null 2> "$tmp/err"
rc=$?
check "[ $rc -eq 0 ] && cmp -s $tmp/rr/weights.safetensors $tmp/r16/weights.safetensors" \
  "2 ranks: 1 epoch + --resume = 2 epochs straight, byte for byte (rc $rc)"

# detection in the standard formats (AdamW: its update divides by sqrt(v), so
# parameters whose gradient is near 0 move by the rounding's sign; looser bound)
"$FBNET" data scenes --out "$tmp/dsc" --train 64 --val 16 --proxy 16 --quiet --threads 2 > /dev/null
D=(--task det --arch archs/fbnetv3_a.json --width 0.25 --data "$tmp/dsc/det" --epochs 1 --batch 16
   --ema 0 --threads 1 --quiet --lr 0.0005)
"$FBNET" train "${D[@]}" --micro-batches 2 --out "$tmp/dm" > /dev/null &&
"${MPIRUN[@]}" "$FBNET" train "${D[@]}" --out "$tmp/dr" > /dev/null 2> "$tmp/err"
rc=$?
d=$(weights_diff "$tmp/dm/weights.safetensors" "$tmp/dr/weights.safetensors" 2> /dev/null)
"$FBNET" train "${D[@]}" --out "$tmp/db" > /dev/null
db=$(weights_diff "$tmp/db/weights.safetensors" "$tmp/dr/weights.safetensors" 2> /dev/null)
check "[ $rc -eq 0 ] && below '${d:-1}' 2e-3 && below '${d:-1}' '${db:-0}'" \
  "det, 4 steps: 2 ranks vs 2 micro-batches max |dw| ${d:-?} (<= 2e-3), vs one batch of 16: ${db:-?} (rc $rc)"

# bad input
"${MPIRUN[@]}" "$FBNET" train "${F[@]}" --epochs 1 --train-limit 64 --batch 33 --out "$tmp/bad" > /dev/null 2> "$tmp/err"
rc=$?
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank 0 of 2: error: --batch 33 (the global batch) must be a multiple of 2 ranks' $tmp/err" \
  "a batch that does not split over the ranks: error (rc $rc)"
timeout 120 mpirun --oversubscribe -np 1 "$FBNET" train "${F[@]}" --epochs 1 --train-limit 64 --out "$tmp/mix" \
  : -np 1 "$FBNET" train "${F[@]}" --epochs 1 --train-limit 64 --out "$tmp/mix" --seed 2 > /dev/null 2> "$tmp/err"
rc=$?
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank 1 of 2 runs with another configuration' $tmp/err" \
  "ranks started with other options: error naming the rank (rc $rc)"
timeout 120 mpirun --oversubscribe -np 1 "$FBNET" train "${F[@]}" --epochs 1 --train-limit 64 --out "$tmp/one" \
  : -np 1 "$FBNET" train "${F[@]}" --arch "$tmp/missing.json" --epochs 1 --train-limit 64 --out "$tmp/one" > /dev/null 2> "$tmp/err"
rc=$?
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank 1 of 2: error: .*missing.json' $tmp/err" \
  "one rank fails: it names itself, the job ends (no hang) (rc $rc)"
# a rank killed mid-run: mpirun ends the job at once, naming the rank; --resume continues
K=("${F[@]}" --epochs 40 --train-limit 512 --out "$tmp/kill")
t0=$(date +%s)
"${MPIRUN[@]}" "$FBNET" train "${K[@]}" > /dev/null 2> "$tmp/kill.err" &
job=$!
for _ in $(seq 100); do [ -e "$tmp/kill/checkpoint.safetensors" ] && break; sleep 0.1; done
sleep 0.5
pkill -9 -f -n -- "--out $tmp/kill" # the newest rank process
wait $job; rc=$?; took=$(( $(date +%s) - t0 ))
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank [01] .*signal 9' $tmp/kill.err && [ $took -lt 60 ]" \
  "a rank killed with -9: the job ends in ${took}s naming it (rc $rc)"
"${MPIRUN[@]}" "$FBNET" train "${K[@]}" --epochs 3 --resume > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -e $tmp/kill/weights.safetensors ]" "--resume after the kill continues (rc $rc)"
# the search: each rank samples its own architecture; 2 ranks = 1 process with
# --archs-per-step 2 (the same architectures, batches, gradients and theta update)
tiny_proxy
theta_diff() { # max |theta_a - theta_b| of two search checkpoints
  py "
import json, struct
def theta(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    t = json.loads(json.loads(b[8:8 + n])['__metadata__']['search'])['archdist']['theta']
    return [v for r in t for v in (r if isinstance(r, list) else [r])]
a, b = theta('$1'), theta('$2')
print('%.3g' % max(abs(x - y) for x, y in zip(a, b)))"
}
archs() { py "import json; print(' '.join(json.loads(l)['arch'] for l in open('$1')))"; }
# Tolerance: one process adds micro-batch 2's weight gradients into micro-batch 1's inside the
# kernels, ranks add them in the allreduce: the weights differ by float rounding, so do the losses,
# and the plain estimator carries those differences into theta (1.3e-7 on an Intel Xeon, 1.5e-5 on
# an AMD EPYC after 12 steps); the elite utility only sees ranks of losses (0 on both).
for est in plain elite; do
  S=(--data "$tmp/proxy" --width 0.25 --batch 8 --steps 12 --warmup 0.25 --threads 1 --quiet --lr 0.01)
  tol=1e-4
  [ $est = elite ] && S+=(--replay 20 --elite 0.2 --theta-lr 0.02) && tol=1e-6
  "$FBNET" search "${S[@]}" --archs-per-step 2 --out "$tmp/s_$est.m2" > /dev/null 2>&1 &&
  "${MPIRUN[@]}" "$FBNET" search "${S[@]}" --out "$tmp/s_$est.r2" > "$tmp/s.out" 2> "$tmp/err"
  rc=$?
  d=$(theta_diff "$tmp/s_$est.m2/checkpoint.safetensors" "$tmp/s_$est.r2/checkpoint.safetensors" 2> /dev/null)
  check "[ $rc -eq 0 ] && below '${d:-1}' $tol && [ \"\$(archs $tmp/s_$est.m2/search.jsonl)\" = \"\$(archs $tmp/s_$est.r2/search.jsonl)\" ]" \
    "search ($est estimator), 12 steps: 2 ranks vs --archs-per-step 2: the same architectures, max |dtheta| ${d:-?} (<= $tol) (rc $rc)"
done
check "[ -e $tmp/s_plain.r2/cls.json ] && [ \$(grep -c 'cls.json' $tmp/s.out) -eq 1 ]" "rank 0 alone writes the results and the summary"
S=(--data "$tmp/proxy" --width 0.25 --batch 8 --steps 12 --warmup 0.25 --threads 1 --quiet --ckpt-every 6)
"${MPIRUN[@]}" "$FBNET" search "${S[@]}" --out "$tmp/sr" > /dev/null 2>&1 &&
"${MPIRUN[@]}" "$FBNET" search "${S[@]}" --out "$tmp/sk" --stop-after 6 > /dev/null 2>&1 &&
"${MPIRUN[@]}" "$FBNET" search "${S[@]}" --out "$tmp/sk" --resume > /dev/null 2> "$tmp/err"
rc=$?
check "[ $rc -eq 0 ] && cmp -s $tmp/sr/supernet.safetensors $tmp/sk/supernet.safetensors && cmp -s $tmp/sr/summary.json $tmp/sk/summary.json" \
  "2-rank search: 6 steps + --resume = 12 straight (supernet, summary byte for byte) (rc $rc)"
"${MPIRUN[@]}" "$FBNET" search "${S[@]}" --batch 9 --out "$tmp/sb" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank 0 of 2: error: --batch 9' $tmp/err" "search: a batch that does not split: error (rc $rc)"

"${MPIRUN[@]}" "$FBNET" derive --help > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q \"only 'fbnet train' and 'fbnet search' run data-parallel\" $tmp/err" \
  "a command that does not run data-parallel (derive) refuses mpirun (rc $rc)"
exit $fail
