# Shared by the CLI tests: FBNET, a temporary directory removed at exit,
# check CONDITION MESSAGE (prints ok/FAIL, sets fail=1), py CODE (Debian's python).
FBNET=${FBNET:-build/fbnet}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
py() { /usr/bin/python3 -c "$@"; }
# tiny_proxy: the search's inputs on tiny demo data (the search tests): scenes in $tmp/sc,
# det and seg teachers in $tmp/tdet, $tmp/tseg (FBNetV3-A, width 0.25, one epoch) and the proxy
# set they pseudo-label in $tmp/proxy; ends the test with FAIL when a step fails.
tiny_proxy() {
  local t=(--arch archs/fbnetv3_a.json --width 0.25 --batch 16 --epochs 1 --threads 2 --quiet --ema 0)
  "$FBNET" data scenes --out "$tmp/sc" --train 64 --val 16 --proxy 48 --quiet --threads 2 \
    || { echo "FAIL: scenes"; exit 1; }
  "$FBNET" train --task det "${t[@]}" --data "$tmp/sc/det" --out "$tmp/tdet" > /dev/null &&
  "$FBNET" train --task seg "${t[@]}" --data "$tmp/sc/seg" --out "$tmp/tseg" > /dev/null ||
    { echo "FAIL: teachers"; exit 1; }
  "$FBNET" label --det-teacher "$tmp/tdet/weights.safetensors" --seg-teacher "$tmp/tseg/weights.safetensors" \
    --images "$tmp/sc/proxy/train" --out "$tmp/proxy" --score-thresh 0.05 --quiet > /dev/null \
    || { echo "FAIL: label"; exit 1; }
}
