#!/usr/bin/env bash
# predict and eval for 1-channel (Fashion-MNIST) models: on --data
# fashion-mnist and on image folders (PNG files of the same test images, grey
# or colour), framed and normalised as the Fashion-MNIST trainer does, so the
# folder's top-1 equals `fbnet eval --data fashion-mnist` on the same images.
set -u
. "$(dirname "$0")/common.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "skip: Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 0
fi
N=300
"$FBNET" train --arch archs/fbnetv3_a.json --input 32 --padding standard --width 0.25 --batch 32 \
  --epochs 2 --train-limit 4096 --test-limit $N --content 24 --threads 2 --quiet --ema 0 \
  --out "$tmp/m" > /dev/null 2> "$tmp/err" || { echo "FAIL: train: $(tail -n 1 $tmp/err)"; exit 1; }
W="$tmp/m/weights.safetensors"
check "py 'import json,struct,sys; f=open(sys.argv[1],\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]; m=json.loads(f.read(n))[\"__metadata__\"]; assert m[\"input_content\"]==\"24\", m.get(\"input_content\")' $W" \
  "the weights record the framing they were trained with (--content 24)"

# the first N test images as PNG: class folders (grey), and a flat folder in colour
py '
import gzip, os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
names = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
d = "/usr/share/datasets/fashion-mnist/"
img = np.frombuffer(gzip.open(d + "t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)
lab = np.frombuffer(gzip.open(d + "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
for i in range(n):
    c = os.path.join(root, "classes", names[lab[i]])
    os.makedirs(c, exist_ok=True)
    Image.fromarray(img[i]).save(os.path.join(c, "%05d.png" % i))
    os.makedirs(os.path.join(root, "colour"), exist_ok=True)
    if i < 20:
        Image.fromarray(np.stack([img[i]] * 3, -1)).save(os.path.join(root, "colour", "%05d.png" % i))
' "$tmp" $N || { echo "FAIL: writing PNG files"; exit 1; }

ref=$("$FBNET" eval --weights "$W" --test-limit $N --json 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ]" "eval --data fashion-mnist (rc $rc) $(tail -n 1 $tmp/err)"
fold=$("$FBNET" eval --weights "$W" --images "$tmp/classes" --json 2> "$tmp/err"); rc=$?
check "[ $rc -eq 0 ] && py 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(\"  top-1: fashion-mnist %.4f, PNG class folders %.4f\" % (a[\"top1\"], b[\"top1\"])); assert abs(a[\"top1\"]-b[\"top1\"]) <= 1.0/$N + 1e-9' '$ref' '$fold'" \
  "eval --images on PNGs of the same images: the same top-1 as --data fashion-mnist (rc $rc) $(tail -n 1 $tmp/err)"

"$FBNET" predict --weights "$W" --test-limit $N --out "$tmp/p1" --json > "$tmp/o1" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && [ \$(tail -n +2 $tmp/p1/predictions.csv | wc -l) -eq $N ] && py 'import json,sys; a=json.loads(sys.argv[1]); b=json.load(open(sys.argv[2])); assert abs(a[\"top1\"]-b[\"top1\"]) < 1e-9, (a, b)' '$ref' $tmp/o1" \
  "predict --data fashion-mnist: one row per image, the same top-1 as eval (rc $rc) $(tail -n 1 $tmp/err)"
"$FBNET" predict --weights "$W" --images "$tmp/classes" --out "$tmp/p2" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && py '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, rows = rows[0], rows[1:]
assert len(rows) == $N and rows[0][0].count(\"/\") == 1, rows[0]
assert all(abs(sum(float(r[k]) for k in range(3, len(r), 2)) - 1) < 1e-3 for r in rows if len(r) > 20)
' $tmp/p2/predictions.csv" "predict --images (grey class folders): CSV keyed by path, top-k probabilities (rc $rc) $(tail -n 1 $tmp/err)"
check "py '
import json, sys
a = {\"%05d\" % int(r[\"file\"].split(\"_\")[1]): r for r in json.load(open(sys.argv[1]))}
b = {r[\"file\"].split(\"/\")[1][:5]: r for r in json.load(open(sys.argv[2]))}
assert a.keys() == b.keys()
diff = max(abs(x[\"prob\"] - y[\"prob\"]) for k in a for x, y in zip(a[k][\"top\"], b[k][\"top\"]))
same = all(a[k][\"top\"][0][\"class\"] == b[k][\"top\"][0][\"class\"] for k in a)
print(\"  max |p(fashion-mnist) - p(PNG)| over the top-5 of $N images: %.2g\" % diff)
assert diff < 1e-4 and same
' $tmp/p1/predictions.json $tmp/p2/predictions.json" "the PNG folder gets the same per-image probabilities as --data fashion-mnist"
"$FBNET" predict --weights "$W" --images "$tmp/colour" --out "$tmp/p3" --top-k 3 > "$tmp/o3" 2> "$tmp/err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'no labels' $tmp/o3 && py '
import json, sys
p = json.load(open(sys.argv[1]))
q = {r[\"file\"]: r for r in json.load(open(sys.argv[2]))}
same = sum(q[\"%05d.png\" % i][\"top\"][0][\"class\"] == r[\"top\"][0][\"class\"] for i, r in enumerate(p[:20]))
print(\"  colour PNGs: %d of 20 top classes equal the grey ones\" % same)
assert len(q) == 20 and same >= 19
' $tmp/p1/predictions.json $tmp/p3/predictions.json" "predict --images on colour PNGs of a grey model: converted to grey, same classes (rc $rc) $(tail -n 1 $tmp/err)"
"$FBNET" predict --task det --weights "$W" --images "$tmp/colour" --out "$tmp/p4" > /dev/null 2> "$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'only a classifier' $tmp/err" "det on a 1-channel model: error (rc $rc): $(tail -n 1 $tmp/err)"
exit $fail
