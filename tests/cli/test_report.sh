#!/usr/bin/env bash
# fbnet report on real runs: a tiny search-quality experiment (scripts/search_quality.sh:
# its 3-task search is the run, its search_quality.json the --quality input), rendered
# in headless Chromium: the page is self-contained, loads without console errors and
# every plot draws marks (counted by the page's own script into #mark-summary); a run in
# progress (log cut mid-line, no summary or derived files) still gives a report; bad
# input is an error naming the file.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
if ! command -v chromium > /dev/null; then
  echo "skip: chromium not installed (scripts/install_deps.sh)"; exit 0
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tiny_proxy
FBNET="$FBNET" bash scripts/search_quality.sh "$tmp/sc" "$tmp/proxy" "$tmp/sc/cls" "$tmp/q" \
  --steps 8 --batch 8 --width 0.25 --input 32 --epochs 1 --seeds 1 --random 2 \
  --random-seeds 1 --jobs 2 > /dev/null 2> "$tmp/err" \
  || { echo "FAIL: search_quality.sh: $(tail -n 3 "$tmp/err")"; exit 1; }
run="$tmp/q/multi"

# renders FILE in headless Chromium: the DOM after the page's script into $tmp/dom,
# the browser's log (console messages included) into $tmp/log
render() {
  timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$tmp/chrome" --enable-logging=stderr --v=0 --dump-dom "file://$1" \
    > "$tmp/dom" 2> "$tmp/log"
}
# marks ID...: every named plot has data-marks > 0 and the summary agrees
marks() {
  py 'import re,sys
dom=open(sys.argv[1]).read()
m=re.search(r"<pre id=\"mark-summary\">(.*?)</pre>", dom, re.S)
got=dict(l.rsplit(" ", 1) for l in m.group(1).split("\n") if l) if m else {}
attr=dict(re.findall(r"data-plot=\"([^\"]+)\"[^>]*data-marks=\"(\d+)\"", dom))
bad=[i for i in sys.argv[2:] if int(got.get(i, 0)) <= 0 or int(attr.get(i, 0)) <= 0]
print(" ".join("%s=%s" % kv for kv in sorted(got.items())))
sys.exit(1 if bad or not got else 0)' "$tmp/dom" "$@"
}
# (Chromium logs each console message as "INFO:CONSOLE:LINE] ..."; the page logs none)
console_clean() { ! grep -Eiq 'uncaught|CONSOLE[:(]' "$tmp/log"; }

"$FBNET" report "$run" --quality "$tmp/q" --out "$tmp/rep.html" > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -s $tmp/rep.html ] && grep -qx '$tmp/rep.html' $tmp/out" \
  "report --quality writes the page and prints its path (rc $rc) $(tail -n 1 $tmp/err)"
check "py 'import re,sys; h=open(sys.argv[1]).read(); refs=re.findall(r\"(?:src|href)\\s*=\\s*[\\\"\\x27]?\\s*(?:https?:)?//\", h, re.I); assert not refs and \"<link\" not in h and \"url(\" not in h and \"@import\" not in h, refs' $tmp/rep.html" \
  "self-contained: no http(s) src/href, no <link>, no url() (xmlns only)"
render "$tmp/rep.html"; rc=$?
plots=(probs-cls probs-det probs-seg arch-cls arch-det arch-seg arch-common losses rewards iw macs
       quality-cls quality-det quality-seg)
m=$(marks "${plots[@]}"); mrc=$?
check "[ $rc -eq 0 ] && [ $mrc -eq 0 ]" "Chromium: every plot has marks: $m"
check "console_clean" "Chromium: no console errors $(grep -Ei 'uncaught|CONSOLE[:(]' $tmp/log | head -n 2)"
check "grep -q 'data-plot=\"arch-det\"' $tmp/dom && ! grep -q 'not yet written' $tmp/rep.html" \
  "finished run: nothing 'not yet written'"
# the blocks every task keeps: only bits on in every derived file, counted as listed
check "py 'import json,re,sys; h=open(sys.argv[1]).read(); bits=[json.load(open(f))[\"derived\"][\"bits\"] for f in sys.argv[2:]]; yes=[int(b) for b in re.findall(r\"<tr><td>(\\d+)</td>.*?>yes</td></tr>\", h)]; n=int(re.search(r\"(\\d+) of \\d+ searchable bits are kept by all 3 tasks\", h).group(1)); assert n == len(yes) > 0 and all(all(s[b] == \"1\" for s in bits) for b in yes), (n, yes)' $tmp/rep.html $run/cls.json $run/det.json $run/seg.json" \
  "common blocks: bits on in every task's derived file, counted as listed"
if /usr/bin/python3 -c 'import PIL' 2> /dev/null; then
  timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$tmp/chrome" --screenshot="$tmp/shot.png" --window-size=1200,3000 \
    "file://$tmp/rep.html" > /dev/null 2>&1
  check "py 'import sys; from PIL import Image; im=Image.open(sys.argv[1]).convert(\"RGB\").resize((300, 750)); px=list(im.getdata()); ink=sum(1 for p in px if min(p) < 200) / len(px); assert ink > 0.05 and len(set(px)) > 50, (ink, len(set(px)))' $tmp/shot.png" \
    "screenshot: the plots are drawn (not blank)"
fi

# default output: RUN_DIR/report.html
"$FBNET" report "$run" > "$tmp/out" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ -s $run/report.html ] && grep -qx '$run/report.html' $tmp/out" "default --out is RUN_DIR/report.html (rc $rc)"

# a run in progress: the log cut mid-line, no summary.json, no derived files yet
mkdir -p "$tmp/live"
size=$(stat -c %s "$run/search.jsonl")
head -c $((size - 300)) "$run/search.jsonl" > "$tmp/live/search.jsonl"
"$FBNET" report "$tmp/live" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'summary.json: not yet written' $tmp/live/report.html && grep -q 'data-missing=\"arch-cls\"' $tmp/live/report.html && grep -q 'last line is incomplete' $tmp/live/report.html" \
  "run in progress: a report of what exists, missing parts 'not yet written' (rc $rc) $(tail -n 1 $tmp/err)"
render "$tmp/live/report.html"
m=$(marks probs-cls probs-det probs-seg losses rewards iw macs); mrc=$?
check "[ $mrc -eq 0 ] && console_clean && ! grep -q 'data-plot=\"arch-cls\"' $tmp/dom" \
  "run in progress: the log's plots are drawn, no architecture yet: $m"
check "grep -q \"steps 1 to $(($(wc -l < $run/search.jsonl) - 1))\" $tmp/live/report.html" "run in progress: the partial last line is left out"

# bad input
"$FBNET" report "$tmp/nope" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nope/search.jsonl' $tmp/err" "missing run dir: error naming the file (rc $rc): $(cat $tmp/err)"
mkdir -p "$tmp/empty"
"$FBNET" report "$tmp/empty" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'empty/search.jsonl' $tmp/err" "dir without search.jsonl: error naming the file (rc $rc): $(cat $tmp/err)"
mkdir -p "$tmp/bad"
{ head -n 2 "$run/search.jsonl"; echo '{"step": 3, "probs": {"cls": [0.5'; tail -n 1 "$run/search.jsonl"; } > "$tmp/bad/search.jsonl"
"$FBNET" report "$tmp/bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'bad/search.jsonl:3' $tmp/err" "malformed line: error naming file and line (rc $rc): $(cat $tmp/err)"
{ head -n 1 "$run/search.jsonl"; echo '{"step": 2, "probs": {"cls": [0.5]}}'; } > "$tmp/bad/search.jsonl"
"$FBNET" report "$tmp/bad" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'bad/search.jsonl:2: .*probs' $tmp/err" "a line with other bits than the first: error (rc $rc): $(cat $tmp/err)"
"$FBNET" report "$run" --quality "$tmp/nope" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'nope/search_quality.json' $tmp/err" "--quality without search_quality.json: error naming it (rc $rc)"
"$FBNET" report > /dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "no run directory: usage error (rc $rc)"
"$FBNET" report --help > "$tmp/out" 2>&1; rc=$?
check "[ $rc -eq 0 ] && grep -q -- '--quality' $tmp/out" "report --help"
exit $fail
