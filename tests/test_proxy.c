/* The proxy data set (src/data/proxy.h): a tiny set written with the
 * library's writer into a temporary directory is read back by fb_proxy_load
 * and by the standard det/seg readers with the same values; every corrupt
 * input fails with a message naming the file and field. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data/formats.h"
#include "data/proxy.h"

static char root[256];

static char *P(const char *rel) { /* rotating buffers: up to 4 paths at a time */
  static char buf[4][512];
  static int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
  return buf[k];
}

static void expect_fail(int rc, const fb_status *st, const char *what, const char *a,
                        const char *b) {
  CHECK(rc != 0, "%s: expected an error", what);
  if (getenv("FB_SHOW")) fprintf(stderr, "%s -> %s\n", what, st->msg);
  if (rc == 0) return;
  const char *s[2] = {a, b};
  for (int i = 0; i < 2; i++)
    if (s[i])
      CHECK(strstr(st->msg, s[i]) != NULL, "%s: message '%s' lacks '%s'", what, st->msg, s[i]);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = calloc((size_t)n + 1, 1);
  if (fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = 0;
  fclose(f);
  return b;
}

static void write_all(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* Replaces the first `from` in the file by `to`; returns 1 when found. */
static int edit(const char *path, const char *from, const char *to) {
  char *t = read_all(path);
  char *hit = t ? strstr(t, from) : NULL;
  if (!hit) {
    free(t);
    return 0;
  }
  size_t n = strlen(t) + strlen(to) + 1;
  char *o = malloc(n);
  snprintf(o, n, "%.*s%s%s", (int)(hit - t), t, to, hit + strlen(from));
  write_all(path, o);
  free(o);
  free(t);
  return 1;
}

/* Pixel (y, x, k) of source image `seed`. */
static uint8_t pix(int seed, int y, int x, int k) {
  return (uint8_t)(seed * 40 + y * 9 + x * 5 + k * 70);
}

/* Three source images in two classes: catA/a1.png (6x8), catA/a2.png (5x7),
 * catB/b1.png (6x8); boxes with scores and masks with classes 0..2 and 255. */
static void make_source(fb_mt_dataset *d) {
  memset(d, 0, sizeof *d);
  static const char *cls[2] = {"catA", "catB"};
  static const char *names[3] = {"src/catA/a1.png", "src/catA/a2.png", "src/catB/b1.png"};
  static const int hw[3][2] = {{6, 8}, {5, 7}, {6, 8}}, label[3] = {0, 0, 1};
  mkdir(P("src"), 0755);
  mkdir(P("src/catA"), 0755);
  mkdir(P("src/catB"), 0755);
  d->num_classes = 2;
  d->class_names = calloc(2, sizeof(char *));
  for (int k = 0; k < 2; k++) d->class_names[k] = strdup(cls[k]);
  d->num_cats = 2;
  d->cat_ids = malloc(2 * sizeof(int));
  d->cat_ids[0] = 3;
  d->cat_ids[1] = 7;
  d->cat_names = calloc(2, sizeof(char *));
  d->cat_names[0] = strdup("dog");
  d->cat_names[1] = strdup("cat \"tabby\"");
  d->num_seg_classes = 3;
  for (int i = 0; i < 3; i++) {
    fb_sample s;
    memset(&s, 0, sizeof s);
    s.h = hw[i][0];
    s.w = hw[i][1];
    s.c = 3;
    s.label = label[i];
    s.image_id = i + 1;
    s.file = strdup(P(names[i]));
    s.px = malloc((size_t)s.h * s.w * 3);
    for (int y = 0; y < s.h; y++)
      for (int x = 0; x < s.w; x++)
        for (int k = 0; k < 3; k++) s.px[(y * s.w + x) * 3 + k] = pix(i, y, x, k);
    fb_status st;
    if (fb_png_write(s.file, s.px, s.h, s.w, 3, &st)) fprintf(stderr, "%s\n", st.msg);
    s.has_boxes = 1;
    s.n_boxes = i; /* 0, 1, 2 boxes */
    s.boxes = s.n_boxes ? calloc((size_t)s.n_boxes, sizeof(fb_box)) : NULL;
    for (int k = 0; k < s.n_boxes; k++)
      s.boxes[k] = (fb_box){0.5f + k, 1.25f, 3.0f, 2.5f, k % 2, 0, 7.5f, 0.75f - 0.25f * k};
    s.mask = malloc((size_t)s.h * s.w);
    for (int p = 0; p < s.h * s.w; p++) s.mask[p] = (uint8_t)((p + i) % 4 == 3 ? 255 : (p + i) % 4);
    fb_mt_dataset_push(d, &s);
  }
}

static fb_proxy_info info_all(unsigned tasks) {
  fb_proxy_info in = {tasks, "teachers/det.safetensors", "teachers/seg.safetensors", 0.3, 0.5,
                      NULL};
  return in;
}

static const unsigned ALL = FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG;

/* Writes a fresh proxy set to `rel` (all tasks). */
static int make_proxy(const fb_mt_dataset *src, const char *rel, unsigned tasks) {
  fb_proxy_info in = info_all(tasks);
  fb_status st;
  int rc = fb_proxy_write(P(rel), "train", src, &in, &st);
  CHECK(rc == 0, "write %s: %s", rel, st.msg);
  return rc;
}

static void test_round_trip(const fb_mt_dataset *src) {
  fb_status st;
  if (make_proxy(src, "px", ALL)) return;
  unsigned tasks = 0;
  CHECK(fb_proxy_tasks(P("px"), &tasks, &st) == 0 && tasks == ALL, "tasks %u: %s", tasks, st.msg);
  struct stat sb;
  CHECK(stat(P("px/proxy.json.tmp"), &sb) != 0 && stat(P("px/train.json.tmp"), &sb) != 0,
        "no .tmp files left");
  fb_mt_dataset d;
  int rc = fb_proxy_load(P("px"), "train", 0, &d, &st);
  CHECK(rc == 0, "load: %s", st.msg);
  if (rc) return;
  CHECK(d.n == 3 && d.num_classes == 2 && d.num_cats == 2 && d.num_seg_classes == 3,
        "sizes n %d classes %d cats %d seg %d", d.n, d.num_classes, d.num_cats, d.num_seg_classes);
  CHECK(strcmp(d.class_names[1], "catB") == 0, "class name 1 '%s'", d.class_names[1]);
  CHECK(d.cat_ids[0] == 3 && d.cat_ids[1] == 7, "category ids %d %d", d.cat_ids[0], d.cat_ids[1]);
  CHECK(strcmp(d.cat_names[1], "cat \"tabby\"") == 0, "category name '%s'", d.cat_names[1]);
  for (int i = 0; i < d.n && i < 3; i++) {
    const fb_sample *a = &d.s[i], *b = &src->s[i];
    CHECK(a->label == b->label && a->h == b->h && a->w == b->w && a->c == 3,
          "sample %d: label %d size %dx%d", i, a->label, a->w, a->h);
    CHECK(strstr(a->file, i < 2 ? "/train/images/catA__" : "/train/images/catB__") != NULL,
          "sample %d file %s", i, a->file);
    CHECK(a->px && memcmp(a->px, b->px, (size_t)b->h * b->w * 3) == 0, "sample %d pixels", i);
    CHECK(a->mask && memcmp(a->mask, b->mask, (size_t)b->h * b->w) == 0, "sample %d mask", i);
    CHECK(a->has_boxes && a->n_boxes == b->n_boxes, "sample %d: %d boxes", i, a->n_boxes);
    for (int k = 0; k < a->n_boxes && k < b->n_boxes; k++) {
      const fb_box *x = &a->boxes[k], *y = &b->boxes[k];
      CHECK(x->x == y->x && x->y == y->y && x->w == y->w && x->h == y->h && x->cat == y->cat &&
                x->area == y->area && x->score == y->score && x->iscrowd == 0,
            "sample %d box %d: [%g %g %g %g] cat %d score %g", i, k, x->x, x->y, x->w, x->h,
            x->cat, x->score);
    }
  }
  fb_mt_dataset_free(&d);

  /* limit: the first rows only */
  rc = fb_proxy_load(P("px"), "train", 2, &d, &st);
  CHECK(rc == 0 && d.n == 2 && d.s[1].n_boxes == 1, "limit 2: n %d: %s", d.n, st.msg);
  fb_mt_dataset_free(&d);

  /* the standard readers see the same labels */
  rc = fb_coco_load(P("px/train.json"), P("px/train/images"), 3, &d, &st);
  CHECK(rc == 0 && d.n == 3 && d.s[2].n_boxes == 2 && d.s[2].boxes[1].cat == 1 &&
            d.cat_ids[1] == 7,
        "fb_coco_load reads the proxy boxes: %s", rc ? st.msg : "");
  fb_mt_dataset_free(&d);
  rc = fb_segset_load(P("px/train"), 3, &d, &st);
  CHECK(rc == 0 && d.n == 3 && d.num_seg_classes == 3 &&
            memcmp(d.s[1].mask, src->s[1].mask, 35) == 0,
        "fb_segset_load reads the proxy masks: %s", rc ? st.msg : "");
  fb_mt_dataset_free(&d);

  /* a second split is merged into the manifest; the same split twice is refused */
  fb_proxy_info in = info_all(ALL);
  rc = fb_proxy_write(P("px"), "val", src, &in, &st);
  CHECK(rc == 0, "write val: %s", st.msg);
  char *man = read_all(P("px/proxy.json"));
  CHECK(man && strstr(man, "\"train\", \"val\"") && strstr(man, FB_PROXY_FORMAT),
        "manifest lists both splits:\n%s", man ? man : "(none)");
  free(man);
  rc = fb_proxy_load(P("px"), "val", 0, &d, &st);
  CHECK(rc == 0 && d.n == 3, "load val: %s", st.msg);
  fb_mt_dataset_free(&d);
  expect_fail(fb_proxy_write(P("px"), "val", src, &in, &st), &st, "split written twice", "val",
              "already holds files");
  in.tasks = FB_TASK_CLS | FB_TASK_DET;
  expect_fail(fb_proxy_write(P("px"), "test", src, &in, &st), &st, "tasks differ", "proxy.json",
              "tasks [cls,det,seg]");

  /* without the seg teacher: no masks, num_seg_classes 0 */
  if (make_proxy(src, "px_det", FB_TASK_CLS | FB_TASK_DET)) return;
  rc = fb_proxy_load(P("px_det"), "train", 0, &d, &st);
  CHECK(rc == 0 && d.n == 3 && !d.s[0].mask && d.num_seg_classes == 0 && d.s[2].n_boxes == 2,
        "det-only proxy: %s", st.msg);
  fb_mt_dataset_free(&d);
  CHECK(stat(P("px_det/train/masks"), &sb) != 0, "det-only proxy has no masks folder");
  /* without the det teacher: no boxes */
  if (make_proxy(src, "px_seg", FB_TASK_CLS | FB_TASK_SEG)) return;
  rc = fb_proxy_load(P("px_seg"), "train", 0, &d, &st);
  CHECK(rc == 0 && d.n == 3 && d.s[0].mask && !d.s[2].has_boxes && d.num_cats == 0,
        "seg-only proxy: %s", st.msg);
  fb_mt_dataset_free(&d);
}

/* One corruption of a fresh copy: edit, load, expect the message fragments. */
static void corrupt(const fb_mt_dataset *src, const char *name, const char *file,
                    const char *from, const char *to, const char *frag1, const char *frag2) {
  char rel[64];
  snprintf(rel, sizeof rel, "bad_%s", name);
  if (make_proxy(src, rel, ALL)) return;
  char path[512];
  snprintf(path, sizeof path, "%s/%s", P(rel), file);
  CHECK(edit(path, from, to), "%s: '%s' not found in %s", name, from, file);
  fb_mt_dataset d;
  fb_status st;
  expect_fail(fb_proxy_load(P(rel), "train", 0, &d, &st), &st, name, frag1, frag2);
}

static void test_corrupt(const fb_mt_dataset *src) {
  fb_status st;
  fb_mt_dataset d;
  mkdir(P("empty"), 0755);
  expect_fail(fb_proxy_load(P("empty"), "train", 0, &d, &st), &st, "missing manifest",
              "proxy.json", "missing manifest");
  corrupt(src, "class", "train/labels.csv", "catB__b1.png,catB", "catB__b1.png,catZ",
          "labels.csv: line 4", "class 'catZ' is not in cls_classes.txt");
  corrupt(src, "score", "train.json", "\"score\": 0.5", "\"score\": 1.5", "train.json",
          "annotations[2].score");
  corrupt(src, "format", "proxy.json", "fbnet-proxy-1", "fbnet-proxy-9", "proxy.json",
          "format");
  corrupt(src, "header", "train/labels.csv", "file,class", "image,label", "labels.csv",
          "header");
  corrupt(src, "csv_fields", "train/labels.csv", "catA__a2.png,catA", "catA__a2.png,catA,x",
          "labels.csv: line 3", "expected 2 fields");
  corrupt(src, "bbox", "train.json", "\"bbox\": [0.5,", "\"bbox\": [\"x\",", "train.json",
          "annotations[0].bbox[0]");
  corrupt(src, "json_name", "train.json", "catB__b1.png", "catB__zz.png", "train.json",
          "'catB__zz.png' has no row in");
  corrupt(src, "duplicate_row", "train/labels.csv", "catA__a2.png,catA", "catA__a1.png,catA",
          "labels.csv: line 3", "already listed on line 2");

  /* a labels.csv row whose image is missing */
  if (make_proxy(src, "bad_noimage", ALL) == 0) {
    unlink(P("bad_noimage/train/images/catA__a2.png"));
    expect_fail(fb_proxy_load(P("bad_noimage"), "train", 0, &d, &st), &st, "missing image",
                "labels.csv: line 3", "image 'catA__a2.png' not found");
  }
  /* a mask whose size differs from its image */
  if (make_proxy(src, "bad_masksize", ALL) == 0) {
    uint8_t m[12] = {0};
    fb_mask_write(P("bad_masksize/train/masks/catB__b1.png"), m, 3, 4, &st);
    expect_fail(fb_proxy_load(P("bad_masksize"), "train", 0, &d, &st), &st, "mask size",
                "catB__b1.png", "mask size 4x3 differs");
  }
  /* a mask value that is not a class */
  if (make_proxy(src, "bad_maskval", ALL) == 0) {
    uint8_t m[48];
    memset(m, 1, sizeof m);
    m[9] = 7;
    fb_mask_write(P("bad_maskval/train/masks/catA__a1.png"), m, 6, 8, &st);
    expect_fail(fb_proxy_load(P("bad_maskval"), "train", 0, &d, &st), &st, "mask value",
                "catA__a1.png", "pixel (x=1, y=1): mask value 7");
  }
  /* a split the manifest does not list */
  expect_fail(fb_proxy_load(P("px"), "test", 0, &d, &st), &st, "unknown split", "proxy.json",
              "'test' is not listed");
  /* writer: a label outside the classes */
  fb_mt_dataset bad = *src;
  fb_sample s0 = src->s[0];
  bad.s = &s0;
  bad.n = 1;
  s0.label = 5;
  fb_proxy_info in = info_all(ALL);
  expect_fail(fb_proxy_write(P("bad_write"), "train", &bad, &in, &st), &st, "writer label",
              "class label 5", NULL);
  /* writer: an unwritable output directory */
  expect_fail(fb_proxy_prepare("/proc/fbnet_no_such/x", "train", ALL, src->class_names, 2, 0, &st),
              &st, "unwritable out", "/proc/fbnet_no_such/x", "cannot create directory");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/fbnet_proxy_XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  fb_mt_dataset src;
  make_source(&src);
  test_round_trip(&src);
  test_corrupt(&src);
  fb_mt_dataset_free(&src);
  nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return check_report("test_proxy");
}
