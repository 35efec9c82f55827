#!/usr/bin/env bash
# The main job on built-in data (`make demo`), the whole FBNetV5 pipeline:
#   1. demo scenes from Fashion-MNIST (cls / det / seg sets + a proxy set
#      that has class labels only);
#   2. detection and segmentation teachers trained on the scenes;
#   3. the proxy multi-task set: the teachers pseudo-label the proxy images;
#   4. ONE search for cls, det and seg on the proxy set (derived arch files);
#   5. each derived architecture retrained on its own task and evaluated, and
#      beside it a baseline at the same MACs: the all-kept network of the
#      space scaled by width (what a user gets without the search);
#   6. a final table: searched vs baseline per task, bits decided, and the
#      search's HTML report (fbnet report: OUT/search/report.html).
# PRESET=small (default: about 10 minutes on 2 cores; the search only partly
# converges and says so) or PRESET=full (about 3 hours on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
FBNET=${FBNET:-build/fbnet}
OUT=${OUT:-demo-out}
PRESET=${PRESET:-small}
TEACHER_ARCH=archs/fbnetv3_a.json
# the replay estimator with the elite utility: it settles the bits within a short search
# (docs/search-quality.md); --replay 0 is the paper's plain estimator
ESTIMATOR=(--replay 250 --elite 0.2 --theta-lr 0.02)
case "$PRESET" in
  small) SCENES=(--train 1500 --val 300 --proxy 1000)
         TEACH=(--input 64 --epochs 12)
         SEARCH=(--input 64 --width 0.5 --batch 16 --steps 2500 "${ESTIMATOR[@]}")
         RETRAIN=(--input 64 --epochs 12) ;;
  full)  SCENES=()
         TEACH=(--input 128 --epochs 30)
         SEARCH=(--input 64 --width 1.0 --batch 32 --steps 10000 "${ESTIMATOR[@]}")
         RETRAIN=(--input 128 --epochs 30) ;;
  *) echo "demo: PRESET must be small or full" >&2; exit 2 ;;
esac
WIDTH=0.5 # teachers and retrained networks
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - t0 )) s so far)"; }
echo "== fbnet demo ($PRESET preset): scenes -> teachers -> pseudo-labels -> search -> retrain =="

echo "-- 1/5 demo scenes (fbnet data scenes; the classification target set has one item per scene)"
"$FBNET" data scenes --out "$OUT/scenes" --force --quiet "${SCENES[@]}"
"$FBNET" data scenes --out "$OUT/scenes1" --force --quiet --max-items 1 --proxy 0 "${SCENES[@]:0:4}"
stamp

# independent trainings run side by side, one thread each (2 cores)
parallel_train() { # task arch data out [options...]
  local task=$1 arch=$2 data=$3 out=$4
  shift 4
  "$FBNET" train --task $task --arch "$arch" --data "$data" --width $WIDTH --threads 1 \
    "$@" --out "$out" --quiet > "$out.json" 2> "$out.log" &
  PIDS+=($!)
}
wait_all() { # fails when any side-by-side training failed (its log is printed)
  local ok=1
  for p in "${PIDS[@]}"; do wait "$p" || ok=0; done
  PIDS=()
  [ $ok -eq 1 ] || { echo "demo: a training failed:" >&2; tail -n 3 "$OUT"/*.log >&2; exit 1; }
}
PIDS=()

echo "-- 2/5 teachers: detection and segmentation (FBNetV3-A, width $WIDTH), side by side"
parallel_train det "$TEACHER_ARCH" "$OUT/scenes/det" "$OUT/teacher_det" "${TEACH[@]}"
parallel_train seg "$TEACHER_ARCH" "$OUT/scenes/seg" "$OUT/teacher_seg" "${TEACH[@]}"
wait_all
echo "   det teacher: $(cat "$OUT/teacher_det.json" | grep -o '"AP": [0-9.]*'), seg teacher: $(cat "$OUT/teacher_seg.json" | grep -o '"mIoU": [0-9.]*')"
stamp

echo "-- 3/5 proxy multi-task set: pseudo-labels on the proxy images (fbnet label)"
"$FBNET" label --det-teacher "$OUT/teacher_det/weights.safetensors" \
  --seg-teacher "$OUT/teacher_seg/weights.safetensors" \
  --det-categories "$OUT/scenes/det/train.json" --seg-classes "$OUT/scenes/seg/train/classes.txt" \
  --images "$OUT/scenes/proxy/train" --truth "$OUT/scenes/proxy/truth" --score-thresh 0.4 \
  --out "$OUT/proxy" --force --quiet > "$OUT/label.json"
stamp

# a MACs budget per task, the midpoint between its cheapest and its all-kept network
# in the space (of the deployed network: full head, retraining size), so that the
# search must choose which bits to keep
echo "-- 4/5 one search for cls, det and seg (fbnet search) with a MACs budget per task"
"$FBNET" search --data "$OUT/proxy" "${SEARCH[@]}" --steps 1 --quiet --out "$OUT/probe" > /dev/null
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1]) if sys.argv[1] != '-' else sys.stdin); exec('print(d' + sys.argv[2] + ')')" "$@"; }
nbits=$(jget "$OUT/probe/summary.json" "['bits']")
ones=$(printf '1%.0s' $(seq "$nbits")); zeros=$(printf '0%.0s' $(seq "$nbits"))
macs() { "$FBNET" flops "$1" --task "$2" --width "$3" "${RETRAIN[@]:0:2}" --json | jget - "['flops']"; }
targets=""
for task in cls det seg; do
  "$FBNET" derive --run "$OUT/probe" --task $task --bits "$ones" --out "$OUT/${task}_allkept.json" 2> /dev/null
  "$FBNET" derive --run "$OUT/probe" --task $task --bits "$zeros" --out "$OUT/${task}_none.json" 2> /dev/null
  lo=$(macs "$OUT/${task}_none.json" $task $WIDTH); hi=$(macs "$OUT/${task}_allkept.json" $task $WIDTH)
  targets="$targets${targets:+,}$task=$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.3f", (a + b) / 2e6 }')"
done
echo "   budgets (M MACs): $targets"
"$FBNET" search --data "$OUT/proxy" --tasks cls,det,seg "${SEARCH[@]}" --flops-target "$targets" \
  --deploy-input "${RETRAIN[1]}" --deploy-width $WIDTH --out "$OUT/search" | tee "$OUT/search_summary.txt"
stamp

data_of() { [ "$1" = cls ] && echo "$OUT/scenes1/cls" || echo "$OUT/scenes/$1"; }
echo "-- 5/5 retrain each searched network and its baseline (the all-kept network at the same MACs), side by side"
for task in cls det seg; do
  m=$(macs "$OUT/search/$task.json" $task $WIDTH)
  bw=$(/usr/bin/python3 scripts/width_for_macs.py "$OUT/${task}_allkept.json" $task "${RETRAIN[1]}" \
       "$(awk -v m="$m" 'BEGIN { print m / 1e6 }')" --fbnet "$FBNET" 2> /dev/null)
  echo "$bw" > "$OUT/${task}_baseline_width.txt"
done
parallel_train cls "$OUT/search/cls.json" "$(data_of cls)" "$OUT/cls" "${RETRAIN[@]}"
parallel_train cls "$OUT/cls_allkept.json" "$(data_of cls)" "$OUT/cls_base" "${RETRAIN[@]}" --width "$(cat "$OUT/cls_baseline_width.txt")"
wait_all
parallel_train det "$OUT/search/det.json" "$(data_of det)" "$OUT/det" "${RETRAIN[@]}"
parallel_train det "$OUT/det_allkept.json" "$(data_of det)" "$OUT/det_base" "${RETRAIN[@]}" --width "$(cat "$OUT/det_baseline_width.txt")"
wait_all
parallel_train seg "$OUT/search/seg.json" "$(data_of seg)" "$OUT/seg" "${RETRAIN[@]}"
parallel_train seg "$OUT/seg_allkept.json" "$(data_of seg)" "$OUT/seg_base" "${RETRAIN[@]}" --width "$(cat "$OUT/seg_baseline_width.txt")"
wait_all
stamp

num() { grep -o "\"$2\": [-0-9.]*" "$1" | head -n 1 | cut -d' ' -f2; }
echo
py_quality() {
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["truth"]; print("pseudo-boxes AP %.3f (AP50 %.3f), pseudo-masks mIoU %.3f on %.0f%% of the pixels" % (d["det"]["pseudo_boxes"]["AP"], d["det"]["pseudo_boxes"]["AP50"], d["seg"]["pseudo_mIoU"], 100 * d["seg"]["labelled_fraction"]))' "$1" 2>/dev/null || cat "$1"
}
echo "pseudo-labels against the proxy images' true labels: $(py_quality "$OUT/label.json")"
echo
key() { case $1 in cls) echo top1 ;; det) echo AP ;; seg) echo mIoU ;; esac; }
decided() { jget "$OUT/search/summary.json" "['tasks']['$1']['bits_decided']"; }
echo "task  metric  searched (MACs)        baseline: all kept, width-scaled (MACs)   difference  bits decided"
for task in cls det seg; do
  s=$(num "$OUT/$task.json" "$(key $task)"); b=$(num "$OUT/${task}_base.json" "$(key $task)")
  printf "%-5s %-6s  %.4f (%6.2f M)      %.4f at width %s (%6.2f M)            %+.4f     %s/%s\n" $task "$(key $task)" "$s" \
    "$(awk -v m="$(macs "$OUT/search/$task.json" $task $WIDTH)" 'BEGIN { print m / 1e6 }')" "$b" "$(cat "$OUT/${task}_baseline_width.txt")" \
    "$(awk -v m="$(macs "$OUT/${task}_allkept.json" $task "$(cat "$OUT/${task}_baseline_width.txt")")" 'BEGIN { print m / 1e6 }')" \
    "$(awk -v a="$s" -v b="$b" 'BEGIN { print a - b }')" "$(decided $task)" "$nbits"
done
echo "(one seed each: the search-quality experiment, docs/search-quality.md, repeats this with seeds and random architectures)"
echo
echo "search report (open in a browser): $("$FBNET" report "$OUT/search")"
echo "total $(( $(date +%s) - t0 )) s; outputs under $OUT/ (search/: arch files, summary, search.jsonl, report.html)"
[ "$PRESET" = full ] || echo "(small preset: short runs; PRESET=full bash scripts/demo.sh for the full recipe)"
