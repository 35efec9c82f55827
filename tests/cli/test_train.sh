#!/usr/bin/env bash
# fbnet train / eval end to end on a small Fashion-MNIST subset, resume, and
# the bad-input paths (unknown option, out-of-range value, missing and
# corrupt dataset, input too small for explicit padding).
set -u
. "$(dirname "$0")/common.sh"
ARCH=archs/fbnetv3_a.json
SMALL=(--arch $ARCH --input 32 --padding standard --width 0.25 --batch 32 --train-limit 2048
       --test-limit 500 --threads 2 --quiet --ema 0)

# --- bad input --------------------------------------------------------------
"$FBNET" train --arch $ARCH --frobnicate 1 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q \"unknown option '--frobnicate'\" $tmp/err" "unknown option (rc $rc)"
"$FBNET" train --arch $ARCH --epochs 0 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q -- '--epochs must be in' $tmp/err" "out-of-range epochs (rc $rc)"
"$FBNET" train --arch $ARCH --lr abc > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'expects a number' $tmp/err" "non-numeric lr (rc $rc)"
"$FBNET" train "${SMALL[@]}" --data "$tmp/nowhere" --out "$tmp/r0" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'dataset-fashion-mnist' $tmp/err" "missing dataset names the package (rc $rc)"
mkdir -p "$tmp/bad"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  head -c 3000 /dev/urandom > "$tmp/bad/$f.gz"
  printf '\x1f\x8b\x08\x00garbage' > "$tmp/bad/$f.gz"
done
"$FBNET" train "${SMALL[@]}" --data "$tmp/bad" --out "$tmp/r0" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'train-images-idx3-ubyte.gz' $tmp/err" "corrupt gzip names the file (rc $rc)"
"$FBNET" train --arch $ARCH --input 32 --epochs 1 --out "$tmp/r0" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q -- '--padding standard' $tmp/err" "32 px with explicit padding suggests --padding standard (rc $rc)"
"$FBNET" train --task det --arch $ARCH > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'data scenes' $tmp/err" "det with Fashion-MNIST is a usage error naming the demo data (rc $rc)"
"$FBNET" train --help > /dev/null; rc=$?
check "[ $rc -eq 0 ]" "--help"
"$FBNET" nosuchcommand > /dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "unknown command (rc $rc)"

# --- a short run learns, saves weights that eval reproduces -----------------
out=$("$FBNET" train "${SMALL[@]}" --epochs 2 --out "$tmp/r1" 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ]" "short training run (rc $rc): $(tail -n 2 $tmp/err)"
top1=$(printf '%s' "$out" | grep -o '"top1": [0-9.]*' | cut -d' ' -f2)
echo "top1 after 2 short epochs: $top1"
check "awk -v x='$top1' 'BEGIN { exit !(x > 0.35) }'" "learns above chance (top1 $top1)"
check "[ -s $tmp/r1/weights.safetensors ] && [ -s $tmp/r1/checkpoint.safetensors ]" "weights and checkpoint written"
check "[ \$(wc -l < $tmp/r1/log.jsonl) -eq 2 ]" "one log line per epoch"
ev=$("$FBNET" eval --arch $ARCH --weights "$tmp/r1/weights.safetensors" --test-limit 500 --json 2> "$tmp/err"); rc=$?
etop1=$(printf '%s' "$ev" | grep -o '"top1": [0-9.]*' | cut -d' ' -f2)
check "[ $rc -eq 0 ] && [ \"$etop1\" = \"$top1\" ]" "eval reproduces training top1 ($etop1 vs $top1)"

# --- resume continues exactly ----------------------------------------------
TINY=("${SMALL[@]}" --train-limit 256 --test-limit 64 --ema 0.9)
"$FBNET" train "${TINY[@]}" --epochs 2 --out "$tmp/r2" > /dev/null 2>&1
"$FBNET" train "${TINY[@]}" --epochs 1 --out "$tmp/r3" > /dev/null 2>&1
# as if killed after epoch 2's log line, before its checkpoint (and mid-way through a line)
sed -n 2p "$tmp/r2/log.jsonl" >> "$tmp/r3/log.jsonl"; printf '{"epoch": 3, "st' >> "$tmp/r3/log.jsonl"
"$FBNET" train "${TINY[@]}" --epochs 2 --out "$tmp/r3" --resume > /dev/null 2>&1; rc=$?
check "[ $rc -eq 0 ] && cmp -s $tmp/r2/weights.safetensors $tmp/r3/weights.safetensors" "1 epoch + resume == 2 epochs (rc $rc)"
check "[ \"\$(grep -o '^{\"epoch\": [0-9]*' $tmp/r3/log.jsonl | tr '\\n' ' ')\" = '{\"epoch\": 1 {\"epoch\": 2 ' ]" \
  "resume drops log lines past the checkpoint: one line per epoch ($(grep -c epoch $tmp/r3/log.jsonl) lines)"
# --- resume refuses other options (naming them), accepts --epochs and --threads -----
"$FBNET" train "${TINY[@]}" --epochs 3 --out "$tmp/r3" --resume --lr 0.05 --seed 7 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q -- '--lr 0.05 (the run has' $tmp/err && grep -q -- '--seed 7' $tmp/err" "resume with other --lr/--seed refused, naming both (rc $rc)"
"$FBNET" train "${TINY[@]}" --epochs 3 --out "$tmp/r3" --resume --threads 1 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "resume with more --epochs and other --threads continues (rc $rc) $(tail -n 1 $tmp/err)"

# --- divergence stops before the checkpoint; resume with a lower lr continues --------
cp "$tmp/r3/checkpoint.safetensors" "$tmp/ck_good"
"$FBNET" train "${TINY[@]}" --epochs 4 --out "$tmp/r3" --resume --allow-changes --lr 100 --wd 0 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'diverged' $tmp/err && grep -q 'checkpoint.safetensors still holds the last good state' $tmp/err && cmp -s $tmp/ck_good $tmp/r3/checkpoint.safetensors" \
  "divergence (lr 100) stops the run, the checkpoint keeps the last good state (rc $rc)"
"$FBNET" train "${TINY[@]}" --epochs 4 --out "$tmp/r3" --resume --allow-changes --lr 0.05 > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ]" "resume --allow-changes with a lower lr continues (rc $rc) $(tail -n 1 $tmp/err)"

# --- damaged checkpoints: checksums catch them, the previous one is used --------
"$FBNET" train "${TINY[@]}" --epochs 3 --out "$tmp/r4" > /dev/null 2>&1
for how in flip zero4k; do
  d="$tmp/dmg_$how"
  "$FBNET" train "${TINY[@]}" --epochs 2 --out "$d" > /dev/null 2>&1
  check "[ -s $d/checkpoint.prev.safetensors ]" "$how: the previous checkpoint is kept"
  size=$(stat -c %s "$d/checkpoint.safetensors")
  if [ $how = flip ]; then # one flipped byte in the tensor data
    /usr/bin/python3 -c 'import sys; p, at = sys.argv[1], int(sys.argv[2]); f = open(p, "r+b"); f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x10]))' "$d/checkpoint.safetensors" $((size - 5000))
  else # a zeroed 4 KiB block
    dd if=/dev/zero of="$d/checkpoint.safetensors" bs=4096 seek=$((size / 4096 - 2)) count=1 conv=notrunc 2> /dev/null
  fi
  "$FBNET" train "${TINY[@]}" --epochs 3 --out "$d" --resume > /dev/null 2> "$tmp/err"; rc=$?
  check "[ $rc -eq 0 ] && grep -q 'damaged' $tmp/err && grep -q 'previous checkpoint' $tmp/err && cmp -s $tmp/r4/weights.safetensors $d/weights.safetensors" \
    "$how: reported by name, resumed from the previous checkpoint, same weights as a straight run (rc $rc): $(grep -m1 warning $tmp/err)"
done
d="$tmp/dmg_flip"; size=$(stat -c %s "$d/checkpoint.safetensors")
for f in checkpoint checkpoint.prev; do
  dd if=/dev/zero of="$d/$f.safetensors" bs=4096 seek=$((size / 4096 - 2)) count=1 conv=notrunc 2> /dev/null
done
"$FBNET" train "${TINY[@]}" --epochs 4 --out "$d" --resume > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'checkpoint.prev.safetensors: damaged' $tmp/err" "both damaged: an error naming the file (rc $rc)"
# an output directory whose files' paths do not fit: an error naming the file, not a cut path
long="$tmp/long"; for c in a b c d e f; do long="$long/$(printf "$c%.0s" $(seq 200))"; done
"$FBNET" train "${TINY[@]}" --epochs 1 --out "$long" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'f/log.jsonl: path of [0-9]* characters, longer than' $tmp/err" "a too long --out: an error naming the file (rc $rc)"
exit $fail
