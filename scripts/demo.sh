#!/usr/bin/env bash
# The main job on built-in data (`make demo`), the whole FBNetV5 pipeline:
#   1. demo scenes from Fashion-MNIST (cls / det / seg sets + a proxy set
#      that has class labels only);
#   2. detection and segmentation teachers trained on the scenes;
#   3. the proxy multi-task set: the teachers pseudo-label the proxy images;
#   4. ONE search for cls, det and seg on the proxy set (derived arch files);
#   5. each derived architecture retrained on its own task and evaluated;
#   6. a final table (task, MACs, params, metric).
# PRESET=small (default: about 10 minutes on 2 cores; the search only partly
# converges and says so) or PRESET=full (about 3 hours on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
FBNET=${FBNET:-build/fbnet}
OUT=${OUT:-demo-out}
PRESET=${PRESET:-small}
TEACHER_ARCH=archs/fbnetv3_a.json
case "$PRESET" in
  small) SCENES=(--train 1500 --val 300 --proxy 1000)
         TEACH=(--input 64 --epochs 12)
         SEARCH=(--input 64 --width 0.5 --batch 16 --steps 2500)
         RETRAIN=(--input 64 --epochs 12) ;;
  full)  SCENES=()
         TEACH=(--input 128 --epochs 30)
         SEARCH=(--input 64 --width 1.0 --batch 32 --steps 10000)
         RETRAIN=(--input 128 --epochs 30) ;;
  *) echo "demo: PRESET must be small or full" >&2; exit 2 ;;
esac
WIDTH=0.5 # teachers and retrained networks
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - t0 )) s so far)"; }
echo "== fbnet demo ($PRESET preset): scenes -> teachers -> pseudo-labels -> search -> retrain =="

echo "-- 1/5 demo scenes (fbnet data scenes)"
"$FBNET" data scenes --out "$OUT/scenes" --force --quiet "${SCENES[@]}"
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
  --out "$OUT/proxy" --quiet > "$OUT/label.json"
stamp

echo "-- 4/5 one search for cls, det and seg (fbnet search)"
"$FBNET" search --data "$OUT/proxy" --tasks cls,det,seg "${SEARCH[@]}" --out "$OUT/search" \
  | tee "$OUT/search_summary.txt"
stamp

echo "-- 5/5 retrain each derived architecture on its task, side by side"
for task in cls det seg; do
  parallel_train $task "$OUT/search/$task.json" "$OUT/scenes/$task" "$OUT/$task" "${RETRAIN[@]}"
done
wait_all
stamp

num() { grep -o "\"$2\": [-0-9.]*" "$1" | head -n 1 | cut -d' ' -f2; }
cost() { "$FBNET" flops "$1" --task "$2" --width $WIDTH "${RETRAIN[@]:0:2}" --classes 10 --json \
         | grep -o '"\(flops\|params\)": *[0-9.e+]*' | head -n 2 \
         | awk -F': *' '{v[NR]=$2} END {printf "%8.2f M  %6.3f M", v[1]/1e6, v[2]/1e6}'; }
echo
py_quality() {
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["truth"]; print("pseudo-boxes AP %.3f (AP50 %.3f), pseudo-masks mIoU %.3f on %.0f%% of the pixels" % (d["det"]["pseudo_boxes"]["AP"], d["det"]["pseudo_boxes"]["AP50"], d["seg"]["pseudo_mIoU"], 100 * d["seg"]["labelled_fraction"]))' "$1" 2>/dev/null || cat "$1"
}
echo "pseudo-labels against the proxy images' true labels: $(py_quality "$OUT/label.json")"
echo
echo "task  architecture          MACs        params     metric (scenes val)"
printf "cls   search/cls.json   %s   top-1 %s\n" "$(cost "$OUT/search/cls.json" cls)" "$(num "$OUT/cls.json" top1)"
printf "det   search/det.json   %s   AP %s  AP50 %s\n" "$(cost "$OUT/search/det.json" det)" "$(num "$OUT/det.json" AP)" "$(num "$OUT/det.json" AP50)"
printf "seg   search/seg.json   %s   mIoU %s\n" "$(cost "$OUT/search/seg.json" seg)" "$(num "$OUT/seg.json" mIoU)"
echo
echo "total $(( $(date +%s) - t0 )) s; outputs under $OUT/ (search/: arch files, summary, search.jsonl)"
[ "$PRESET" = full ] || echo "(small preset: short runs, the search only partly converges; PRESET=full bash scripts/demo.sh for the full recipe)"
