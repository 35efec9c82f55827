#!/usr/bin/env bash
# Any fbnet network in PyTorch: scripts/fbnet_to_torch.py builds the module of
# chain and multi-path (searched, derived) arch files with their cls, det and
# seg heads, loads the weights strictly, and gives fbnet's own raw outputs
# (`fbnet infer`) on the same input: a random batch of 2 and a real image.
# Also: fbnet infer's errors, strict-load and comparison failures.
# Skips (exit 0) when /usr/bin/python3 cannot import torch and numpy.
set -u
. "$(dirname "$0")/common.sh"
if ! py 'import torch, numpy' 2>/dev/null; then
  echo "skip: /usr/bin/python3 cannot import torch and numpy (python3-torch)"; exit 0
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
TO_TORCH="/usr/bin/python3 scripts/fbnet_to_torch.py"
TOL=1e-4 # max |torch - fbnet| / max(max |fbnet|, 1e-3); float32 rounding gives ~1e-6
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 16 --proxy 48 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
T=(--width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)
train() { # NAME TASK ARCH [options]: trains $tmp/NAME
  local name=$1 task=$2 arch=$3; shift 3
  "$FBNET" train --task "$task" --arch "$arch" "${T[@]}" "$@" --data "$tmp/sc/$task" \
    --out "$tmp/$name" > /dev/null 2> "$tmp/err" || { echo "FAIL: train $name"; cat "$tmp/err"; exit 1; }
}

# inputs: 2 random images; a real scene image resized to 64 px and normalised like the loader
py 'import numpy as np, sys; np.random.seed(0); np.random.randn(2, 3, 64, 64).astype("<f4").tofile(sys.argv[1])' "$tmp/rand.f32"
inputs=(rand)
if py 'import PIL' 2>/dev/null; then
  py 'import numpy as np, sys; from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB").resize((64, 64), Image.BILINEAR)
x = (np.asarray(im, dtype=np.float32) / 255 - 0.5) / 0.25
x.transpose(2, 0, 1)[None].astype("<f4").tofile(sys.argv[2])' "$tmp/sc/det/val/images/000001.png" "$tmp/real.f32" \
    || { echo "FAIL: the real image"; exit 1; }
  inputs+=(real)
else
  echo "note: no PIL (python3-pil): the random input only"
fi

# compare NAME WEIGHTS [what]: fbnet infer on every input, then one torch run comparing them all
compare() {
  local name=$1 w=$2 dirs=() rc
  for i in "${inputs[@]}"; do
    "$FBNET" infer --weights "$w" --input "$tmp/$i.f32" --out "$tmp/o_${name}_$i" --threads 2 \
      > /dev/null 2> "$tmp/err" || { check false "$name: fbnet infer on $i: $(cat "$tmp/err")"; return; }
    dirs+=(--compare "$tmp/o_${name}_$i")
  done
  $TO_TORCH "$w" "${dirs[@]}" --tol $TOL --threads 2 > "$tmp/pt" 2>&1; rc=$?
  grep '^compare' "$tmp/pt" | sed "s|$tmp/||"
  check "[ $rc -eq 0 ] && grep -q 'with strict=True' $tmp/pt && [ \$(grep -c '^compare' $tmp/pt) -ge ${#inputs[@]} ]" \
    "$name: strict load, every output equal within $TOL on ${inputs[*]} (rc $rc) $(grep -m1 error "$tmp/pt")"
}

# (a) a chain arch: det and seg heads, a classifier with the arch's explicit paddings
train cdet det archs/fbnetv3_a.json
train cseg seg archs/fbnetv3_a.json
train ccls cls archs/fbnetv3_a.json --padding explicit
for n in cdet cseg ccls; do compare "chain-$n" "$tmp/$n/weights.safetensors"; done
check "grep -q 'explicit padding' $tmp/pt" "chain cls: built with the arch's explicit paddings"
# the seg head on the stages an arch file names ("heads": two levels, strides 4 and 32)
py 'import json, sys; a = json.load(open(sys.argv[1])); a["name"] = "v3_named"
a["heads"] = {"seg": ["stage2", "stage5"]}; json.dump(a, open(sys.argv[2], "w"))' archs/fbnetv3_a.json "$tmp/named.json"
train cnamed seg "$tmp/named.json"
compare chain-named-seg "$tmp/cnamed/weights.safetensors"
check "grep -q 'levels at strides 4/32' $tmp/pt" "named seg stages: the levels the arch names"

# (b) multi-path: a tiny search (teachers, proxy labels, 12 steps) ...
"$FBNET" label --det-teacher "$tmp/cdet/weights.safetensors" --seg-teacher "$tmp/cseg/weights.safetensors" \
  --images "$tmp/sc/proxy/train" --out "$tmp/proxy" --score-thresh 0.05 --quiet > /dev/null \
  || { echo "FAIL: label"; exit 1; }
"$FBNET" search --data "$tmp/proxy" --width 0.25 --batch 8 --steps 12 --warmup 0.25 --threads 2 \
  --quiet --out "$tmp/r" > /dev/null 2> "$tmp/err" || { echo "FAIL: search"; cat "$tmp/err"; exit 1; }
# ... the supernet's shared weights (every bit kept, the search's light heads: all three tasks)
compare supernet "$tmp/r/supernet.safetensors"
check "grep -q 'outputs cls.logits, det.cls, det.box, det.ctr, seg.logits' $tmp/pt" "supernet: all three heads"
# ... the run's derived archs trained for their task, and a sparse derivation (random bits:
# skipped blocks, empty paths, a few fusion terms) trained for each task
for t in cls det seg; do train "mp$t" $t "$tmp/r/$t.json"; compare "derived-$t" "$tmp/mp$t/weights.safetensors"; done
bits=$(py 'import random; random.seed(3); print("".join(random.choice("01") for _ in range(55)))')
"$FBNET" derive --run "$tmp/r" --task seg --bits "$bits" --out "$tmp/sparse.json" 2> /dev/null
check "py 'import json,sys; a=json.load(open(sys.argv[1])); assert any(p == [] for s in a[\"stages\"] for p in s[\"paths\"])' $tmp/sparse.json" \
  "the sparse derivation has an empty path"
for t in cls det seg; do train "sp$t" $t "$tmp/sparse.json"; compare "sparse-$t" "$tmp/sp$t/weights.safetensors"; done
check "grep -q '(multi-path)' $tmp/pt" "reported as multi-path"

# --task: one head's outputs; fbnet infer --task the same
W=$tmp/r/supernet.safetensors
"$FBNET" infer --weights "$W" --task seg --input "$tmp/rand.f32" --out "$tmp/o_seg" > /dev/null 2>&1
$TO_TORCH "$W" --task seg --compare "$tmp/o_seg" --tol $TOL > "$tmp/pt" 2>&1; rc=$?
check "[ $rc -eq 0 ] && [ \$(grep -c '^compare' $tmp/pt) -eq 1 ] && grep -q 'outputs seg.logits$' $tmp/pt" \
  "--task seg on both sides: the seg output only (rc $rc)"
$TO_TORCH "$W" --compare "$tmp/o_seg" > "$tmp/pt" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'fbnet wrote no cls.logits' $tmp/pt" "compare with fewer fbnet outputs is an error (rc $rc)"

# errors: strict loading names the tensors, a different output is reported, infer's input checked
$TO_TORCH "$tmp/spdet/weights.safetensors" --arch "$tmp/r/seg.json" > "$tmp/pt" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'not match the model built from the arch file' $tmp/pt && grep -Eq 's[0-9]\.(p[0-9]\.[0-9]|f[0-9]to[0-9])' $tmp/pt" \
  "weights of the sparse arch with the full one (same name): rejected, naming tensors (rc $rc): $(cut -c1-300 $tmp/pt)"
$TO_TORCH "$tmp/cdet/weights.safetensors" --task seg > "$tmp/pt" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no seg head' $tmp/pt" "--task of a head the weights lack (rc $rc)"
d=$tmp/o_derived-det_rand
py 'import numpy as np, sys; a = np.fromfile(sys.argv[1], "<f4"); a[7] += 0.5; a.tofile(sys.argv[1])' "$d/det.box.f32"
$TO_TORCH "$tmp/mpdet/weights.safetensors" --compare "$d" > "$tmp/pt" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'output det.box differs' $tmp/pt" "a changed fbnet output is reported (rc $rc)"
head -c 1000 "$tmp/rand.f32" > "$tmp/short.f32"
"$FBNET" infer --weights "$W" --input "$tmp/short.f32" --out "$tmp/o_bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'short.f32: 1000 bytes is not a whole number' $tmp/err && [ ! -e $tmp/o_bad ]" \
  "infer: an input of the wrong size names the file (rc $rc): $(cat "$tmp/err")"
py 'import numpy as np, sys; a = np.fromfile(sys.argv[1], "<f4"); a[5] = np.nan; a.tofile(sys.argv[2])' "$tmp/rand.f32" "$tmp/nan.f32"
"$FBNET" infer --weights "$W" --input "$tmp/nan.f32" --out "$tmp/o_bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nan.f32: value 5 (image 0) is nan' $tmp/err" "infer: a non-finite input value (rc $rc)"
"$FBNET" infer --weights "$tmp/cdet/weights.safetensors" --task cls --input "$tmp/rand.f32" --out "$tmp/o_bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no cls head' $tmp/err" "infer --task of a head the weights lack (rc $rc)"
"$FBNET" infer --weights "$tmp/nope.safetensors" --input "$tmp/rand.f32" --out "$tmp/o_bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q nope.safetensors $tmp/err" "infer: missing weights named (rc $rc)"
"$FBNET" infer --weights "$W" --out "$tmp/o_bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'required' $tmp/err" "infer without --input: usage error (rc $rc)"
exit $fail
