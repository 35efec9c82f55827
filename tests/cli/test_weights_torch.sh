#!/usr/bin/env bash
# fbnet's saved weights load into the matching PyTorch model
# (scripts/fbnet_to_torch.py, load_state_dict strict) and give the same
# Fashion-MNIST top-1/top-5 as `fbnet eval` (a 1-channel classifier; every
# arch and head, output by output: tests/cli/test_torch_any_arch.sh).
# Skips (exit 0) when /usr/bin/python3 cannot import torch or Fashion-MNIST is
# not installed.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
FBNET=${FBNET:-build/fbnet}
FM=/usr/share/datasets/fashion-mnist
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $PY cannot import torch and numpy (Debian python3-torch)"; exit 0
fi
if [ ! -f "$FM/t10k-images-idx3-ubyte.gz" ] || [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed in $FM (dataset-fashion-mnist)"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && sed 's/^/    /' <<<"$2"; fail=1; }
N=300
ARCH=archs/fbnetv3_a.json

# A tiny classifier (no warm-up and lr 0.1, so that one short epoch gets well
# past a constant prediction and the comparison below means something: about
# 55% top-1). One thread everywhere: spinning OpenMP/torch threads on a busy
# 2-core machine made each step several times slower.
if ! out=$("$FBNET" train --task cls --arch $ARCH --input 32 --padding standard --width 0.25 \
      --batch 32 --epochs 1 --train-limit 2048 --test-limit $N --ema 0 --warmup-epochs 0 \
      --lr 0.1 --threads 1 --quiet --out "$tmp/run" 2>&1); then
  bad "fbnet train" "$out"; exit 1
fi
W=$tmp/run/weights.safetensors
ev=$("$FBNET" eval --arch $ARCH --weights "$W" --test-limit $N --threads 1 --json 2>&1) \
  || { bad "fbnet eval" "$ev"; exit 1; }
pt=$("$PY" scripts/fbnet_to_torch.py "$W" --arch $ARCH --check-fmnist $N --threads 1 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "with strict=True" <<<"$pt"; then ok "strict load"; else
  bad "strict load (rc $rc)" "$pt"; fi
grep -q "input 32, width 0.25, in_channels 1, classes 10, standard padding" <<<"$pt" \
  && ok "build options from __metadata__" || bad "build options from __metadata__" "$pt"
cmp=$("$PY" - "$ev" "$(tail -n 1 <<<"$pt")" $N <<'PYEOF' 2>&1
import json, sys
ev, pt, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print("fbnet top1 %.5f top5 %.5f | torch top1 %.5f top5 %.5f (%d images)"
      % (ev["top1"], ev["top5"], pt["top1"], pt["top5"], pt["images"]))
ok = pt["images"] == n and all(abs(ev[k] - pt[k]) <= 1.0 / n + 1e-9 for k in ("top1", "top5"))
print("agree" if ok else "DIFFER")
PYEOF
)
if grep -qx agree <<<"$cmp"; then ok "top-1/top-5 agree: $(head -n 1 <<<"$cmp")"; else
  bad "fbnet eval vs torch" "$cmp"$'\n'"$ev"$'\n'"$pt"; fi

# A different arch (stage3.0 wider) must fail strict loading, naming the tensor.
sed 's/\["ir_k5_sehsig_hs", 40, 2, 1/["ir_k5_sehsig_hs", 80, 2, 1/' $ARCH >"$tmp/other.json"
out=$("$PY" scripts/fbnet_to_torch.py "$W" --arch "$tmp/other.json" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "shape mismatch: stage3.0" <<<"$out"; then ok "wrong arch rejected"; else
  bad "wrong arch rejected (rc $rc)" "$out"; fi

# Corrupted files: a clear message and a non-zero exit.
size=$(stat -c %s "$W")
head -c $((size - 1000)) "$W" >"$tmp/trunc.safetensors"
out=$("$PY" scripts/fbnet_to_torch.py "$tmp/trunc.safetensors" --arch $ARCH 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "truncated" <<<"$out"; then ok "truncated data: $out"; else
  bad "truncated data (rc $rc)" "$out"; fi
head -c 100 "$W" >"$tmp/short.safetensors"
out=$("$PY" scripts/fbnet_to_torch.py "$tmp/short.safetensors" --arch $ARCH 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "truncated" <<<"$out"; then ok "truncated header"; else
  bad "truncated header (rc $rc)" "$out"; fi
out=$("$PY" scripts/fbnet_to_torch.py "$tmp/missing.safetensors" --arch $ARCH 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "cannot read" <<<"$out"; then ok "missing file"; else
  bad "missing file (rc $rc)" "$out"; fi

exit $fail
