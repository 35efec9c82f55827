/* Standard data formats: image files, class folders, COCO JSON, segmentation
 * sets. Fixtures are written into a fresh temporary directory by the test;
 * every malformed case must fail with a message naming the file and field. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data/formats.h"

/* Extra entry points of src/data (not in formats.h). */
int fb_jpg_write(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st);
int fb_mask_read(const char *path, uint8_t **mask, int *h, int *w, fb_status *st);
int fb_coco_load_results(const char *json_path, const int *cat_ids, int num_cats, fb_det **dets,
                         int *n, fb_status *st);

/* Field by field: fb_box has padding before its double score. */
static int same_box(const fb_box *a, const fb_box *b) {
  return a->x == b->x && a->y == b->y && a->w == b->w && a->h == b->h && a->cat == b->cat &&
         a->iscrowd == b->iscrowd && a->area == b->area && a->score == b->score;
}

static char root[256];

static char *P(const char *rel) { /* rotating buffers: up to 4 paths at a time */
  static char buf[4][512];
  static int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
  return buf[k];
}

static void mk(const char *rel) { mkdir(P(rel), 0755); }

static void write_text(const char *rel, const char *text) {
  FILE *f = fopen(P(rel), "w");
  fputs(text, f);
  fclose(f);
}

/* h x w image with c channels: pixel (y, x, k) = (y * 7 + x * 3 + k * 50) & 255. */
static uint8_t *pattern(int h, int w, int c) {
  uint8_t *p = malloc((size_t)h * w * c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) p[((size_t)y * w + x) * c + k] = (uint8_t)(y * 7 + x * 3 + k * 50);
  return p;
}

static void write_png(const char *rel, int h, int w, int c) {
  uint8_t *p = pattern(h, w, c);
  fb_status st;
  if (fb_png_write(P(rel), p, h, w, c, &st)) fprintf(stderr, "%s\n", st.msg);
  free(p);
}

/* Asserts that rc failed and the message contains each of a, b, c (NULL: skip). */
static void expect_fail(int rc, const fb_status *st, const char *what, const char *a,
                        const char *b, const char *c) {
  CHECK(rc != 0, "%s: expected an error", what);
  if (getenv("FB_SHOW")) fprintf(stderr, "%s -> %s\n", what, st->msg);
  if (rc == 0) return;
  const char *s[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (s[i]) CHECK(strstr(st->msg, s[i]) != NULL, "%s: message '%s' lacks '%s'", what, st->msg, s[i]);
}

/* ---- images ------------------------------------------------------------- */

static void test_images(void) {
  fb_status st;
  uint8_t *ref = pattern(5, 7, 3), *px = NULL;
  int h, w, c;
  CHECK(fb_png_write(P("rgb.png"), ref, 5, 7, 3, &st) == 0, "png write: %s", st.msg);
  CHECK(fb_image_read(P("rgb.png"), 0, &px, &h, &w, &c, &st) == 0, "png read: %s", st.msg);
  CHECK(h == 5 && w == 7 && c == 3, "png size %dx%dx%d", h, w, c);
  CHECK(px && memcmp(px, ref, 5 * 7 * 3) == 0, "png pixels round trip");
  free(px);
  px = NULL;
  CHECK(fb_image_read(P("rgb.png"), 1, &px, &h, &w, &c, &st) == 0 && c == 1, "png as grey");
  free(px);
  px = NULL;
  struct stat sb;
  CHECK(stat(P("rgb.png.tmp"), &sb) != 0, "no .tmp left behind");

  /* grey mask round trip */
  uint8_t *m = pattern(6, 4, 1);
  CHECK(fb_mask_write(P("m.png"), m, 6, 4, &st) == 0, "mask write: %s", st.msg);
  CHECK(fb_mask_read(P("m.png"), &px, &h, &w, &st) == 0 && h == 6 && w == 4, "mask read: %s",
        st.msg);
  CHECK(px && memcmp(px, m, 24) == 0, "mask values round trip");
  free(px);
  px = NULL;
  CHECK(fb_image_read(P("m.png"), 3, &px, &h, &w, &c, &st) == 0 && c == 3 && px[3] == m[1],
        "grey read as rgb replicates");
  free(px);
  px = NULL;
  /* a colour PNG is not a mask */
  expect_fail(fb_mask_read(P("rgb.png"), &px, &h, &w, &st), &st, "rgb mask", "rgb.png",
              "single-channel", NULL);

  /* truncated PNG: first half of a valid file */
  uint8_t *big = pattern(40, 40, 3);
  for (int i = 0; i < 40 * 40 * 3; i++) big[i] = (uint8_t)(big[i] * 37 + i / 5); /* less compressible */
  fb_png_write(P("full.png"), big, 40, 40, 3, &st);
  FILE *f = fopen(P("full.png"), "rb");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *bytes = malloc((size_t)n);
  CHECK(fread(bytes, 1, (size_t)n, f) == (size_t)n, "read back png");
  fclose(f);
  f = fopen(P("half.png"), "wb");
  fwrite(bytes, 1, (size_t)n / 2, f);
  fclose(f);
  expect_fail(fb_image_read(P("half.png"), 0, &px, &h, &w, &c, &st), &st, "truncated png",
              "half.png", "truncated PNG", NULL);
  /* only IEND cut off: stb would decode this fully, the chunk walk must not accept it */
  f = fopen(P("noend.png"), "wb");
  fwrite(bytes, 1, (size_t)n - 12, f);
  fclose(f);
  expect_fail(fb_image_read(P("noend.png"), 0, &px, &h, &w, &c, &st), &st, "png without IEND",
              "noend.png", "IEND", NULL);
  /* a flipped bit inside the data */
  bytes[n / 2] ^= 0x10;
  f = fopen(P("crc.png"), "wb");
  fwrite(bytes, 1, (size_t)n, f);
  fclose(f);
  expect_fail(fb_image_read(P("crc.png"), 0, &px, &h, &w, &c, &st), &st, "corrupt png",
              "crc.png", "CRC", NULL);
  free(bytes);

  /* JPEG round trip (lossy) and corrupt JPEGs */
  CHECK(fb_jpg_write(P("a.jpg"), big, 40, 40, 3, &st) == 0, "jpg write: %s", st.msg);
  uint8_t *smooth = pattern(40, 40, 3);
  CHECK(fb_jpg_write(P("s.jpg"), smooth, 40, 40, 3, &st) == 0, "jpg write: %s", st.msg);
  CHECK(fb_image_read(P("s.jpg"), 0, &px, &h, &w, &c, &st) == 0 && h == 40 && w == 40 && c == 3,
        "jpg read: %s", st.msg);
  if (px) {
    double err = 0;
    for (int i = 0; i < 40 * 40 * 3; i++) err += abs((int)px[i] - (int)smooth[i]);
    CHECK(err / (40 * 40 * 3) < 6, "jpg mean abs error %g", err / (40 * 40 * 3));
  }
  free(px);
  px = NULL;
  free(smooth);
  f = fopen(P("a.jpg"), "rb");
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  bytes = malloc((size_t)n);
  CHECK(fread(bytes, 1, (size_t)n, f) == (size_t)n, "read back jpg");
  fclose(f);
  f = fopen(P("cut.jpg"), "wb");
  fwrite(bytes, 1, (size_t)n * 2 / 3, f);
  fclose(f);
  expect_fail(fb_image_read(P("cut.jpg"), 0, &px, &h, &w, &c, &st), &st, "truncated jpeg",
              "cut.jpg", "truncated JPEG", NULL);
  /* header kept, everything after the SOI marker replaced by garbage */
  for (long i = 2; i < n - 2; i++) bytes[i] = (uint8_t)(i * 13);
  f = fopen(P("bad.jpg"), "wb");
  fwrite(bytes, 1, (size_t)n, f);
  fclose(f);
  expect_fail(fb_image_read(P("bad.jpg"), 0, &px, &h, &w, &c, &st), &st, "corrupt jpeg",
              "bad.jpg", "cannot decode JPEG", NULL);
  /* a DHT segment declaring more than 256 codes (stb_image 2.27 wrote out of bounds on
   * this): a clear error, and no out-of-bounds access under the sanitizers */
  f = fopen(P("a.jpg"), "rb");
  CHECK(fread(bytes, 1, (size_t)n, f) == (size_t)n, "read back jpg");
  fclose(f);
  long dht = -1;
  for (long i = 0; i + 21 < n && dht < 0; i++)
    if (bytes[i] == 0xff && bytes[i + 1] == 0xc4) dht = i;
  CHECK(dht > 0, "the encoder wrote a DHT segment");
  if (dht > 0) {
    for (int k = 0; k < 16; k++) bytes[dht + 5 + k] = 200; /* 3200 codes declared */
    f = fopen(P("dht.jpg"), "wb");
    fwrite(bytes, 1, (size_t)n, f);
    fclose(f);
    expect_fail(fb_image_read(P("dht.jpg"), 0, &px, &h, &w, &c, &st), &st, "DHT with >256 codes",
                "dht.jpg", "cannot decode JPEG", NULL);
  }
  free(bytes);
  write_text("empty.png", "");
  expect_fail(fb_image_read(P("empty.png"), 0, &px, &h, &w, &c, &st), &st, "empty file",
              "empty.png", "empty", NULL);
  expect_fail(fb_image_read(P("nothere.png"), 0, &px, &h, &w, &c, &st), &st, "missing file",
              "nothere.png", "cannot open", NULL);
  free(big);
  free(ref);
  free(m);
}

/* ---- class folders ------------------------------------------------------ */

static void test_imagefolder(void) {
  fb_status st;
  fb_mt_dataset d;
  mk("cls");
  mk("cls/cat");
  mk("cls/bird");
  write_png("cls/cat/b.png", 8, 6, 3);
  write_png("cls/cat/a.png", 8, 8, 3);
  write_png("cls/bird/x.png", 5, 5, 1);
  uint8_t *p = pattern(9, 9, 3);
  CHECK(fb_jpg_write(P("cls/bird/y.jpg"), p, 9, 9, 3, &st) == 0, "jpg: %s", st.msg);
  free(p);
  write_text("cls/bird/notes.txt", "not an image\n");
  CHECK(fb_imagefolder_load(P("cls"), 3, &d, &st) == 0, "imagefolder: %s", st.msg);
  CHECK(d.n == 4 && d.num_classes == 2, "n %d classes %d", d.n, d.num_classes);
  if (d.n == 4 && d.num_classes == 2) {
    CHECK(strcmp(d.class_names[0], "bird") == 0 && strcmp(d.class_names[1], "cat") == 0,
          "classes sorted by name");
    CHECK(d.s[0].label == 0 && d.s[1].label == 0 && d.s[2].label == 1 && d.s[3].label == 1,
          "labels");
    CHECK(strstr(d.s[1].file, "y.jpg") && d.s[1].h == 9 && d.s[1].c == 3, "jpeg item");
    CHECK(strstr(d.s[2].file, "a.png") && d.s[2].w == 8 && strstr(d.s[3].file, "b.png") &&
              d.s[3].w == 6,
          "images sorted by name within a class");
    CHECK(d.s[0].c == 3 && d.s[0].px[0] == d.s[0].px[2], "grey PNG expanded to 3 channels");
  }
  fb_mt_dataset_free(&d);

  mk("cls/empty");
  expect_fail(fb_imagefolder_load(P("cls"), 3, &d, &st), &st, "empty class folder", "empty",
              "no images", NULL);
  expect_fail(fb_imagefolder_load(P("nodir"), 3, &d, &st), &st, "missing directory", "nodir",
              "cannot open directory", NULL);
  mk("noclass");
  expect_fail(fb_imagefolder_load(P("noclass"), 3, &d, &st), &st, "no classes", "noclass",
              "no class folders", NULL);
  mk("cls2");
  mk("cls2/a");
  write_png("cls2/a/ok.png", 4, 4, 1);
  write_text("cls2/a/broken.png", "\x89PNG\r\n\x1a\nthis is not a png");
  expect_fail(fb_imagefolder_load(P("cls2"), 1, &d, &st), &st, "undecodable image in a class",
              "broken.png", NULL, NULL);
}

/* ---- COCO --------------------------------------------------------------- */

static const char *IMAGES =
    "\"images\": [{\"id\": 1, \"file_name\": \"i1.png\", \"width\": 64, \"height\": 48},"
    " {\"id\": 3, \"file_name\": \"i3.png\", \"width\": 32, \"height\": 32}]";
static const char *CATS = "\"categories\": [{\"id\": 7, \"name\": \"seven\"},"
                          " {\"id\": 3, \"name\": \"three\"}]";

/* det/<name>.json with the given annotations array body. */
static const char *coco_json(const char *name, const char *images, const char *anns,
                             const char *cats) {
  static char rel[64];
  snprintf(rel, sizeof rel, "det/%s.json", name);
  char text[4096];
  snprintf(text, sizeof text, "{%s%s%s%s%s}", images ? images : "", images && (anns || cats) ? ", " : "",
           anns ? anns : "", anns && cats ? ", " : "", cats ? cats : "");
  write_text(rel, text);
  return P(rel);
}

static void bad_ann(const char *name, const char *ann, const char *a, const char *b) {
  char anns[1024];
  snprintf(anns, sizeof anns,
           "\"annotations\": [{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, 4]}, %s]",
           ann);
  fb_status st;
  fb_mt_dataset d;
  const char *js = coco_json(name, IMAGES, anns, CATS);
  char fname[64];
  snprintf(fname, sizeof fname, "%s.json", name);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, name, fname, a, b);
}

static void test_coco(void) {
  fb_status st;
  fb_mt_dataset d;
  mk("det");
  write_png("det/i1.png", 48, 64, 3);
  write_png("det/i3.png", 32, 32, 1);
  const char *js = coco_json(
      "ok", IMAGES,
      "\"annotations\": [{\"id\": 1, \"image_id\": 3, \"category_id\": 7, \"bbox\": [0.5, 1.25, "
      "31.5, 30.75], \"iscrowd\": 1, \"area\": 100},"
      " {\"image_id\": 1, \"category_id\": 3, \"bbox\": [10, 20, 30, 28]},"
      " {\"image_id\": 3, \"category_id\": 3, \"bbox\": [2, 3, 4, 5], \"segmentation\": []}]",
      CATS);
  CHECK(fb_coco_load(js, P("det"), 3, &d, &st) == 0, "coco load: %s", st.msg);
  CHECK(d.n == 2 && d.num_cats == 2, "coco n %d cats %d", d.n, d.num_cats);
  if (d.n == 2 && d.num_cats == 2) {
    CHECK(d.cat_ids[0] == 3 && d.cat_ids[1] == 7 && strcmp(d.cat_names[1], "seven") == 0,
          "categories in ascending id order");
    fb_sample *a = &d.s[0], *b = &d.s[1];
    CHECK(a->image_id == 1 && a->w == 64 && a->h == 48 && a->c == 3 && a->has_boxes, "image 1");
    CHECK(a->n_boxes == 1 && a->boxes[0].x == 10 && a->boxes[0].h == 28 && a->boxes[0].cat == 0 &&
              a->boxes[0].area == 30 * 28 && a->boxes[0].iscrowd == 0 && a->boxes[0].score == 1,
          "image 1 box, default area w*h");
    CHECK(b->n_boxes == 2 && b->boxes[0].cat == 1 && b->boxes[0].iscrowd == 1 &&
              b->boxes[0].area == 100 && b->boxes[0].y == 1.25f && b->boxes[1].cat == 0,
          "image 3 boxes in file order");
    CHECK(b->c == 3 && b->px[0] == b->px[1], "grey image decoded to 3 channels");
    /* ground truth round trip */
    CHECK(fb_coco_write_gt(P("det/rt.json"), &d, 0, &st) == 0, "write gt: %s", st.msg);
    fb_mt_dataset e;
    CHECK(fb_coco_load(P("det/rt.json"), P("det"), 3, &e, &st) == 0, "reload gt: %s", st.msg);
    int same = e.n == d.n && e.num_cats == d.num_cats;
    for (int k = 0; same && k < d.num_cats; k++)
      same = e.cat_ids[k] == d.cat_ids[k] && strcmp(e.cat_names[k], d.cat_names[k]) == 0;
    for (int i = 0; same && i < d.n; i++) {
      same = e.s[i].image_id == d.s[i].image_id && e.s[i].n_boxes == d.s[i].n_boxes &&
             e.s[i].w == d.s[i].w && e.s[i].h == d.s[i].h;
      for (int k = 0; same && k < d.s[i].n_boxes; k++)
        same = same_box(&e.s[i].boxes[k], &d.s[i].boxes[k]);
    }
    CHECK(same, "COCO ground truth write -> read is exact");
    if (e.n) fb_mt_dataset_free(&e);
    /* results round trip */
    fb_det dets[2] = {{3, {123.456789f, 0.5f, 1000.25f, 7.0f, 1, 0, 0, 0.987654f}},
                      {1, {1, 2, 3, 4, 0, 0, 0, 0.25f}}};
    CHECK(fb_coco_write_results(P("det/res.json"), dets, 2, d.cat_ids, &st) == 0, "results: %s",
          st.msg);
    fb_det *got = NULL;
    int n = 0;
    CHECK(fb_coco_load_results(P("det/res.json"), d.cat_ids, d.num_cats, &got, &n, &st) == 0 &&
              n == 2,
          "read results: %s", st.msg);
    if (n == 2)
      CHECK(got[0].image_id == 3 && got[0].box.cat == 1 && got[0].box.x == dets[0].box.x &&
                got[0].box.w == dets[0].box.w && got[0].box.score == dets[0].box.score &&
                got[1].box.cat == 0,
            "results write -> read exact");
    free(got);
    FILE *f = fopen(P("det/res.json"), "r");
    char text[512] = {0};
    CHECK(fread(text, 1, sizeof text - 1, f) > 0, "read results text");
    fclose(f);
    CHECK(strstr(text, "\"category_id\": 7") && strstr(text, "\"image_id\": 3") &&
              strstr(text, "\"score\""),
          "results JSON uses COCO category ids: %s", text);
  }
  fb_mt_dataset_free(&d);

  /* one test per malformed case */
  bad_ann("negw", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, -3, 4]}",
          "annotations[1].bbox", "negative width -3");
  bad_ann("negh", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, -4]}",
          "annotations[1].bbox", "negative height");
  bad_ann("outside", "{\"image_id\": 3, \"category_id\": 3, \"bbox\": [20, 2, 13, 10]}",
          "annotations[1].bbox [20,2,13,10]", "outside image 3 (32x32)");
  bad_ann("negx", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [-1, 2, 3, 4]}",
          "annotations[1].bbox", "outside image 1 (64x48)");
  bad_ann("unkcat", "{\"image_id\": 1, \"category_id\": 99, \"bbox\": [1, 2, 3, 4]}",
          "annotations[1].category_id 99", "not in categories");
  bad_ann("unkimg", "{\"image_id\": 5, \"category_id\": 3, \"bbox\": [1, 2, 3, 4]}",
          "annotations[1].image_id 5", "not in images");
  bad_ann("bboxlen", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3]}",
          "annotations[1].bbox", "4 numbers");
  bad_ann("bboxtype", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": \"1 2 3 4\"}",
          "annotations[1].bbox", "a string");
  bad_ann("bboxelem", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, \"2\", 3, 4]}",
          "annotations[1].bbox[1]", "must be a number");
  bad_ann("nobbox", "{\"image_id\": 1, \"category_id\": 3}", "annotations[1].bbox", "missing");
  bad_ann("score", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, 4], \"score\": 1.5}",
          "annotations[1].score", "[0, 1], found 1.5");
  bad_ann("scoretype", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, 4], \"score\": \"hi\"}",
          "annotations[1].score", "a string");
  bad_ann("crowd", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, 4], \"iscrowd\": 2}",
          "annotations[1].iscrowd", "0 or 1");
  bad_ann("catfloat", "{\"image_id\": 1, \"category_id\": 3.5, \"bbox\": [1, 2, 3, 4]}",
          "annotations[1].category_id", "integer");
  bad_ann("area", "{\"image_id\": 1, \"category_id\": 3, \"bbox\": [1, 2, 3, 4], \"area\": -1}",
          "annotations[1].area", "non-negative");

  js = coco_json("noann", IMAGES, NULL, CATS);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "missing annotations", "noann.json",
              "\"annotations\"", NULL);
  js = coco_json("nocats", IMAGES, "\"annotations\": []", NULL);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "missing categories", "nocats.json",
              "\"categories\"", NULL);
  js = coco_json("dupimg",
                 "\"images\": [{\"id\": 1, \"file_name\": \"i1.png\", \"width\": 64, \"height\": "
                 "48}, {\"id\": 1, \"file_name\": \"i3.png\", \"width\": 32, \"height\": 32}]",
                 "\"annotations\": []", CATS);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "duplicate image id", "dupimg.json",
              "images[1].id 1 duplicates", NULL);
  js = coco_json("dupcat", IMAGES, "\"annotations\": []",
                 "\"categories\": [{\"id\": 2, \"name\": \"a\"}, {\"id\": 2, \"name\": \"b\"}]");
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "duplicate category id",
              "dupcat.json", "categories[1].id 2 duplicates", NULL);
  js = coco_json("catname", IMAGES, "\"annotations\": []", "\"categories\": [{\"id\": 2}]");
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "category without name",
              "catname.json", "categories[0].name", NULL);
  js = coco_json("size",
                 "\"images\": [{\"id\": 1, \"file_name\": \"i1.png\", \"width\": 64, \"height\": "
                 "40}]",
                 "\"annotations\": []", CATS);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "decoded size differs", "size.json",
              "images[0].file_name 'i1.png'", "decoded image is 64x48");
  js = coco_json("nofile",
                 "\"images\": [{\"id\": 1, \"file_name\": \"x.png\", \"width\": 64, \"height\": "
                 "48}]",
                 "\"annotations\": []", CATS);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "missing image file", "nofile.json",
              "images[0].file_name 'x.png'", "cannot open");
  js = coco_json("nowidth", "\"images\": [{\"id\": 1, \"file_name\": \"i1.png\", \"height\": 48}]",
                 "\"annotations\": []", CATS);
  expect_fail(fb_coco_load(js, P("det"), 3, &d, &st), &st, "missing width", "nowidth.json",
              "images[0].width", "missing");
  write_text("det/syntax.json", "{\"images\": [\n{\"id\": 1,,}]}");
  expect_fail(fb_coco_load(P("det/syntax.json"), P("det"), 3, &d, &st), &st, "invalid JSON",
              "syntax.json", "line 2", NULL);
  expect_fail(fb_coco_load(P("det/none.json"), P("det"), 3, &d, &st), &st, "missing JSON",
              "none.json", "cannot open", NULL);
}

/* ---- segmentation sets ------------------------------------------------------ */

static void test_segset(void) {
  fb_status st;
  fb_mt_dataset d;
  mk("seg");
  mk("seg/images");
  mk("seg/masks");
  write_text("seg/classes.txt", "background\nshirt\nshoe\n");
  write_png("seg/images/a.png", 6, 5, 3);
  write_png("seg/images/b.png", 4, 4, 1);
  uint8_t ma[30], mb[16];
  for (int i = 0; i < 30; i++) ma[i] = (uint8_t)(i % 4 == 3 ? 255 : i % 3);
  for (int i = 0; i < 16; i++) mb[i] = (uint8_t)(i & 1);
  fb_mask_write(P("seg/masks/a.png"), ma, 6, 5, &st);
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 4, &st);
  CHECK(fb_segset_load(P("seg"), 3, &d, &st) == 0, "segset: %s", st.msg);
  CHECK(d.n == 2 && d.num_seg_classes == 3, "segset n %d classes %d", d.n, d.num_seg_classes);
  if (d.n == 2) {
    CHECK(d.s[0].h == 6 && d.s[0].w == 5 && memcmp(d.s[0].mask, ma, 30) == 0,
          "mask write -> read (with 255 = ignore)");
    CHECK(d.s[1].mask && memcmp(d.s[1].mask, mb, 16) == 0 && d.s[1].label == -1, "mask b");
  }
  fb_mt_dataset_free(&d);

  /* mask size differs from its image */
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 3, &st);
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "mask size", "masks/b.png",
              "mask size 3x4 differs", "images/b.png (4x4)");
  /* value out of range */
  mb[2 * 4 + 1] = 7;
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 4, &st);
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "mask value", "masks/b.png",
              "pixel (x=1, y=2)", "mask value 7");
  mb[2 * 4 + 1] = 1;
  /* truncated mask PNG */
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 4, &st);
  truncate(P("seg/masks/b.png"), 40);
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "truncated mask", "masks/b.png",
              "truncated PNG", NULL);
  /* missing mask */
  remove(P("seg/masks/b.png"));
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "missing mask", "masks/b.png",
              "missing mask", NULL);
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 4, &st);
  /* colour mask */
  write_png("seg/masks/b.png", 4, 4, 3);
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "colour mask", "masks/b.png",
              "single-channel", NULL);
  fb_mask_write(P("seg/masks/b.png"), mb, 4, 4, &st);
  CHECK(fb_segset_load(P("seg"), 1, &d, &st) == 0 && d.s[0].c == 1, "segset again: %s", st.msg);
  fb_mt_dataset_free(&d);
  /* classes.txt */
  write_text("seg/classes.txt", "\n\n");
  expect_fail(fb_segset_load(P("seg"), 3, &d, &st), &st, "empty classes", "classes.txt",
              "no class names", NULL);
  expect_fail(fb_segset_load(P("noseg"), 3, &d, &st), &st, "missing seg dir", "noseg", NULL,
              NULL);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

int main(void) {
  snprintf(root, sizeof root, "/tmp/fbnet_formats_XXXXXX");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  test_images();
  test_imagefolder();
  test_coco();
  test_segset();
  nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return check_report("formats");
}
