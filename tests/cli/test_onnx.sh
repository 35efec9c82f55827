#!/usr/bin/env bash
# fbnet export --onnx: chain and multi-path (searched, derived) networks with
# their cls, det and seg heads, checked by the ONNX checker (python3-onnx)
# and run in an independent runtime, npm's onnxruntime-node (installed here by
# scripts/install_ort.sh), against fbnet's own outputs (`fbnet infer`) on a
# random batch of 2 and a real image; BN folded; a dynamic batch; errors.
# Skips (exit 0) without python3-onnx, node or numpy.
set -u
. "$(dirname "$0")/common.sh"
if ! py 'import onnx, numpy' 2>/dev/null || ! command -v node > /dev/null; then
  echo "skip: needs /usr/bin/python3 with onnx and numpy, and node (scripts/install_deps.sh)"; exit 0
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
NODE_PATH=$(bash scripts/install_ort.sh) || { echo "FAIL: npm install onnxruntime-node"; exit 1; }
export NODE_PATH
TOL=1e-4 # max |onnxruntime - fbnet| / max(max |fbnet|, 1e-3)
"$FBNET" data scenes --out "$tmp/sc" --train 64 --val 16 --proxy 48 --quiet --threads 2 \
  || { echo "FAIL: scenes"; exit 1; }
T=(--width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)
train() { # NAME TASK ARCH [options]: trains $tmp/NAME
  local name=$1 task=$2 arch=$3; shift 3
  "$FBNET" train --task "$task" --arch "$arch" "${T[@]}" "$@" --data "$tmp/sc/$task" \
    --out "$tmp/$name" > /dev/null 2> "$tmp/err" || { echo "FAIL: train $name"; cat "$tmp/err"; exit 1; }
}
py 'import numpy as np, sys; np.random.seed(0); np.random.randn(2, 3, 64, 64).astype("<f4").tofile(sys.argv[1])' "$tmp/rand.f32"
inputs=(rand)
if py 'import PIL' 2>/dev/null; then
  py 'import numpy as np, sys; from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB").resize((64, 64), Image.BILINEAR)
x = (np.asarray(im, dtype=np.float32) / 255 - 0.5) / 0.25
x.transpose(2, 0, 1)[None].astype("<f4").tofile(sys.argv[2])' "$tmp/sc/det/val/images/000001.png" "$tmp/real.f32" \
    || { echo "FAIL: the real image"; exit 1; }
  inputs+=(real)
fi

# export NAME WEIGHTS [options]: export, check, run on every input against fbnet infer
export_check() {
  local name=$1 w=$2 dirs=() rc; shift 2
  "$FBNET" export --weights "$w" "$@" --onnx "$tmp/$name.onnx" > "$tmp/ex" 2> "$tmp/err"; rc=$?
  check "[ $rc -eq 0 ]" "$name: export (rc $rc) $(cat "$tmp/err") $(sed "s|$tmp/||g" "$tmp/ex")"
  [ $rc -eq 0 ] || return
  py 'import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)
ops = {n.op_type for n in m.graph.node}
assert "BatchNormalization" not in ops, "BN not folded"
assert m.opset_import[0].version >= 13
assert all(i.type.tensor_type.shape.dim[0].dim_param == "N" for i in list(m.graph.input) + list(m.graph.output))
print(" ".join(o.name for o in m.graph.output))' "$tmp/$name.onnx" > "$tmp/outs" 2>&1
  check "[ \$? -eq 0 ]" "$name: onnx checker (full_check), BN folded, batch dimension N: $(tail -n 1 "$tmp/outs")"
  for i in "${inputs[@]}"; do
    "$FBNET" infer --weights "$w" "$@" --input "$tmp/$i.f32" --out "$tmp/o_${name}_$i" --threads 2 \
      > /dev/null 2> "$tmp/err" || { check false "$name: fbnet infer on $i: $(cat "$tmp/err")"; return; }
    dirs+=(--compare "$tmp/o_${name}_$i")
  done
  node scripts/onnx_run.js "$tmp/$name.onnx" "${dirs[@]}" --tol $TOL --threads 2 > "$tmp/rt" 2>&1; rc=$?
  sed "s|$tmp/||" "$tmp/rt"
  check "[ $rc -eq 0 ] && [ \$(grep -c '^compare' $tmp/rt) -ge ${#inputs[@]} ]" \
    "$name: onnxruntime equals fbnet within $TOL on ${inputs[*]} (rc $rc)"
}

# (a) chain arch, each head
train cdet det archs/fbnetv3_a.json
train cseg seg archs/fbnetv3_a.json
train ccls cls archs/fbnetv3_a.json --padding explicit
for n in cdet cseg ccls; do export_check "chain-$n" "$tmp/$n/weights.safetensors"; done
check "py 'import onnx,sys; m=onnx.load(sys.argv[1]); n=[o.name for o in m.graph.output]; assert n[:3]==[\"det.cls.s8\",\"det.cls.s16\",\"det.cls.s32\"] and len(n)==9, n' $tmp/chain-cdet.onnx" \
  "det: class/box/centerness maps per level"

# (b) multi-path: a tiny search; its supernet (three heads) and derived archs retrained
"$FBNET" label --det-teacher "$tmp/cdet/weights.safetensors" --seg-teacher "$tmp/cseg/weights.safetensors" \
  --images "$tmp/sc/proxy/train" --out "$tmp/proxy" --score-thresh 0.05 --quiet > /dev/null \
  || { echo "FAIL: label"; exit 1; }
"$FBNET" search --data "$tmp/proxy" --width 0.25 --batch 8 --steps 12 --warmup 0.25 --threads 2 \
  --quiet --out "$tmp/r" > /dev/null 2> "$tmp/err" || { echo "FAIL: search"; cat "$tmp/err"; exit 1; }
export_check supernet "$tmp/r/supernet.safetensors"
check "py 'import onnx,sys; m=onnx.load(sys.argv[1]); n={o.name for o in m.graph.output}; assert {\"cls.logits\",\"seg.logits\",\"det.ctr.s8\"} <= n, n' $tmp/supernet.onnx" \
  "supernet: all three heads"
for t in cls det seg; do train "mp$t" $t "$tmp/r/$t.json"; export_check "derived-$t" "$tmp/mp$t/weights.safetensors"; done
export_check supernet-seg "$tmp/r/supernet.safetensors" --task seg
check "py 'import onnx,sys; m=onnx.load(sys.argv[1]); assert [o.name for o in m.graph.output]==[\"seg.logits\"]' $tmp/supernet-seg.onnx" \
  "--task seg: the seg output only"

# a dynamic batch: the same file on a batch of 5
py 'import numpy as np, sys; np.random.seed(1); np.random.randn(5, 3, 64, 64).astype("<f4").tofile(sys.argv[1])' "$tmp/b5.f32"
"$FBNET" infer --weights "$tmp/mpdet/weights.safetensors" --input "$tmp/b5.f32" --out "$tmp/o_b5" > /dev/null 2>&1
node scripts/onnx_run.js "$tmp/derived-det.onnx" --compare "$tmp/o_b5" --tol $TOL > "$tmp/rt" 2>&1; rc=$?
check "[ $rc -eq 0 ]" "dynamic batch: batch 5 through the file exported once (rc $rc) $(tail -n 1 "$tmp/rt")"
# the comparison can fail
py 'import numpy as np, sys; a = np.fromfile(sys.argv[1], "<f4"); a[3] += 0.5; a.tofile(sys.argv[1])' "$tmp/o_b5/det.ctr.f32"
node scripts/onnx_run.js "$tmp/derived-det.onnx" --compare "$tmp/o_b5" --tol $TOL > "$tmp/rt" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'det.ctr max_abs_diff=5' $tmp/rt" "a changed fbnet output is reported (rc $rc)"

# errors: weights that do not match the arch, missing weights, a checkpoint, usage
"$FBNET" export --weights "$tmp/mpdet/weights.safetensors" --arch "$tmp/r/seg.json" --onnx "$tmp/bad.onnx" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'mpdet/weights.safetensors' $tmp/err && [ ! -e $tmp/bad.onnx ]" \
  "weights of another arch: an error naming the file, nothing written (rc $rc): $(cut -c1-200 "$tmp/err")"
"$FBNET" export --weights "$tmp/nope.safetensors" --onnx "$tmp/bad.onnx" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q nope.safetensors $tmp/err" "missing weights named (rc $rc)"
"$FBNET" export --weights "$tmp/cdet/weights.safetensors" --task seg --onnx "$tmp/bad.onnx" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'no seg head' $tmp/err" "--task of a head the weights lack (rc $rc)"
"$FBNET" export --weights "$tmp/cdet/weights.safetensors" --onnx "$tmp/nodir/x.onnx" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nodir' $tmp/err" "an unwritable output path named (rc $rc)"
"$FBNET" export --weights "$tmp/cdet/weights.safetensors" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q required $tmp/err" "without --onnx: usage error (rc $rc)"
"$FBNET" export --help > "$tmp/h" 2>&1
check "grep -q 'BN\\|batch norm' $tmp/h" "--help"
exit $fail
