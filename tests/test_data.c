/* Fashion-MNIST IDX loading (synthetic files for every error path, the real
 * data when installed) and batch augmentation. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/fileio.h"
#include "data/augment.h"
#include "data/fmnist.h"

static char tmpdir[256];

static void be32(unsigned char *b, uint32_t v) {
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
}

static void write_gz(const char *name, const unsigned char *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  gzFile f = gzopen(path, "wb");
  gzwrite(f, p, (unsigned)n);
  gzclose(f);
}

/* An image file with `count` in the header and `have` images of data; pixel
 * (i, y, x) = (i * 31 + y * 3 + x) & 255. */
static void write_images(const char *split, uint32_t magic, uint32_t count, int have, int rows,
                         int cols) {
  size_t n = 16 + (size_t)have * rows * cols;
  unsigned char *b = malloc(n);
  be32(b, magic);
  be32(b + 4, count);
  be32(b + 8, (uint32_t)rows);
  be32(b + 12, (uint32_t)cols);
  for (int i = 0; i < have; i++)
    for (int y = 0; y < rows; y++)
      for (int x = 0; x < cols; x++)
        b[16 + ((size_t)i * rows + y) * cols + x] = (unsigned char)((i * 31 + y * 3 + x) & 255);
  char name[128];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", split);
  write_gz(name, b, n);
  free(b);
}

static void write_labels(const char *split, uint32_t magic, uint32_t count, int have, int bad_at) {
  unsigned char *b = malloc(8 + (size_t)have);
  be32(b, magic);
  be32(b + 4, count);
  for (int i = 0; i < have; i++) b[8 + i] = (unsigned char)(i == bad_at ? 10 : (i * 7) % 10);
  char name[128];
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", split);
  write_gz(name, b, 8 + (size_t)have);
  free(b);
}

static void write_good(void) {
  write_images("t10k", 2051, 5, 5, 28, 28);
  write_labels("t10k", 2049, 5, 5, -1);
}

/* Loads the t10k split of tmpdir; expects failure with all `needles` in the message. */
static void expect_fail(const char *what, const char *needle1, const char *needle2) {
  fb_dataset_u8 d;
  fb_status st = {0};
  int rc = fb_fmnist_load(tmpdir, 0, &d, &st);
  CHECK(rc != 0, "%s: load should fail", what);
  CHECK(d.images == NULL && d.n == 0, "%s: output left empty", what);
  CHECK(strstr(st.msg, needle1) != NULL, "%s: message '%s' lacks '%s'", what, st.msg, needle1);
  if (needle2)
    CHECK(strstr(st.msg, needle2) != NULL, "%s: message '%s' lacks '%s'", what, st.msg, needle2);
  printf("  %-22s -> %s\n", what, st.msg);
}

static void test_idx(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/fbnet_test_data_XXXXXX");
  CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");
  fb_status st = {0};
  fb_dataset_u8 d;

  write_good();
  CHECK(fb_fmnist_load(tmpdir, 0, &d, &st) == 0, "synthetic load: %s", st.msg);
  CHECK(d.n == 5 && d.h == 28 && d.w == 28 && d.num_classes == 10, "synthetic dims");
  int px_ok = 1;
  for (int i = 0; i < d.n; i++)
    for (int y = 0; y < 28; y++)
      for (int x = 0; x < 28; x++)
        px_ok &= d.images[(i * 28 + y) * 28 + x] == ((i * 31 + y * 3 + x) & 255);
  CHECK(px_ok, "synthetic pixels");
  CHECK(d.labels[3] == 1 && d.labels[4] == 8, "synthetic labels");
  fb_dataset_u8_free(&d);

  printf("error messages:\n");
  write_images("t10k", 2050, 5, 5, 28, 28);
  expect_fail("bad image magic", "t10k-images-idx3-ubyte.gz", "magic");
  write_good();
  write_labels("t10k", 2051, 5, 5, -1);
  expect_fail("bad label magic", "t10k-labels-idx1-ubyte.gz", "magic");
  write_good();
  write_images("t10k", 2051, 5, 3, 28, 28);
  expect_fail("truncated images", "t10k-images-idx3-ubyte.gz", "truncated");
  /* a corrupt header declaring 2^24 images of 4096 x 4096 (281 TB): a clear error naming the
   * file, no exit and no huge allocation (the buffer grows with the data present) */
  write_good();
  write_images("t10k", 2051, 1u << 24, 1, 4096, 4096);
  expect_fail("huge header, short data", "t10k-images-idx3-ubyte.gz", "truncated");
  write_good();
  write_labels("t10k", 2049, 5, 2, -1);
  expect_fail("truncated labels", "t10k-labels-idx1-ubyte.gz", "truncated");
  write_good();
  write_labels("t10k", 2049, 4, 4, -1);
  expect_fail("count mismatch", "4 labels", "5 images");
  write_good();
  write_labels("t10k", 2049, 5, 5, 2);
  expect_fail("label out of range", "t10k-labels-idx1-ubyte.gz", "label 10");
  write_good();
  write_images("t10k", 2051, 5, 5, 14, 14);
  expect_fail("wrong image size", "14x14", "28x28");
  write_good();
  write_images("t10k", 2051, 4, 5, 28, 28);
  expect_fail("trailing data", "t10k-images-idx3-ubyte.gz", "after the");

  /* corrupt the deflate stream of a good file */
  write_good();
  {
    char path[512];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", tmpdir);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    for (long k = 12; k < n - 10; k += 3) {
      fseek(f, k, SEEK_SET);
      fputc(0xff, f);
    }
    fclose(f);
    expect_fail("corrupt gzip", "t10k-images-idx3-ubyte.gz", "gzip");
    /* gzip trailer (CRC) cut off */
    write_good();
    f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fclose(f);
    CHECK(truncate(path, n - 6) == 0, "truncate");
    expect_fail("cut gzip trailer", "t10k-images-idx3-ubyte.gz", NULL);
  }

  write_good();
  char lpath[512];
  snprintf(lpath, sizeof lpath, "%s/t10k-labels-idx1-ubyte.gz", tmpdir);
  unlink(lpath);
  expect_fail("missing file", "t10k-labels-idx1-ubyte.gz", "apt-get install dataset-fashion-mnist");
  char ipath[512];
  snprintf(ipath, sizeof ipath, "%s/t10k-images-idx3-ubyte.gz", tmpdir);
  unlink(ipath);
  CHECK(rmdir(tmpdir) == 0, "rmdir temp dir");
  expect_fail("missing directory", "not found", "dataset-fashion-mnist");
}

static void test_real(void) {
  if (access(FB_FMNIST_DEFAULT_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
    printf("note: %s not installed; real-data checks skipped\n", FB_FMNIST_DEFAULT_DIR);
    return;
  }
  fb_dataset_u8 d;
  fb_status st = {0};
  double t0 = omp_get_wtime();
  CHECK(fb_fmnist_load("fashion-mnist", 1, &d, &st) == 0, "train via alias: %s", st.msg);
  double t1 = omp_get_wtime();
  CHECK(d.n == 60000, "train count %d", d.n);
  int hist[10] = {0};
  double sum = 0, sq = 0;
  for (int i = 0; i < d.n; i++) hist[d.labels[i]]++;
  for (size_t k = 0; k < (size_t)d.n * 784; k++) {
    double v = d.images[k] / 255.0;
    sum += v;
    sq += v * v;
  }
  for (int c = 0; c < 10; c++) CHECK(hist[c] == 6000, "train class %d has %d items", c, hist[c]);
  double mean = sum / (d.n * 784.0), sd = sqrt(sq / (d.n * 784.0) - mean * mean);
  CHECK_CLOSE(mean, FB_FMNIST_MEAN, 5e-4, "train pixel mean = FB_FMNIST_MEAN");
  CHECK_CLOSE(sd, FB_FMNIST_STD, 5e-4, "train pixel std = FB_FMNIST_STD");
  printf("real train split: 60000 images in %.2f s, mean %.4f std %.4f\n", t1 - t0, mean, sd);

  /* augmentation speed on real images */
  fb_aug_cfg c = fb_aug_default(32);
  int n = 256;
  float *out = malloc((size_t)n * 32 * 32 * sizeof(float)), *lab = malloc(n * sizeof(float));
  int *idx = malloc(n * sizeof(int));
  fb_rng r;
  fb_rng_seed(&r, 5);
  for (int i = 0; i < n; i++) idx[i] = (int)fb_rng_below(&r, (uint32_t)d.n);
  double a0 = omp_get_wtime();
  int reps = 20;
  for (int k = 0; k < reps; k++) fb_aug_batch(&c, &d, idx, n, 1, &r, out, lab, &st);
  double a1 = omp_get_wtime();
  printf("augment batch 256 at 32x32: %.3f ms (%d threads)\n", (a1 - a0) / reps * 1e3,
         omp_get_max_threads());
  fb_aug_cfg c64 = fb_aug_default(64);
  float *out64 = malloc((size_t)n * 64 * 64 * sizeof(float));
  a0 = omp_get_wtime();
  for (int k = 0; k < reps; k++) fb_aug_batch(&c64, &d, idx, n, 1, &r, out64, lab, &st);
  a1 = omp_get_wtime();
  printf("augment batch 256 at 64x64 (resize 28->56): %.3f ms\n", (a1 - a0) / reps * 1e3);
  CHECK(lab[0] == d.labels[idx[0]], "labels_out");
  free(out64);
  free(out);
  free(lab);
  free(idx);
  fb_dataset_u8_free(&d);
  CHECK(fb_fmnist_load(NULL, 0, &d, &st) == 0 && d.n == 10000, "test split: %s", st.msg);
  fb_dataset_u8_free(&d);
}

/* ---- augmentation ------------------------------------------------------- */

static float norm(float v) { return (v / 255.0f - FB_FMNIST_MEAN) / FB_FMNIST_STD; }

static void test_augment(void) {
  /* a hand-made asymmetric 28x28 image: pixel (y, x) = y * 9 if x < 5, else x */
  uint8_t img[784];
  for (int y = 0; y < 28; y++)
    for (int x = 0; x < 28; x++) img[y * 28 + x] = (uint8_t)(x < 5 ? y * 9 : x);
  const float bg = norm(0.0f);

  /* S = 28, no geometry: plain normalisation */
  fb_aug_cfg c = fb_aug_default(28);
  CHECK(c.content == 28, "default content at 28");
  float o28[784];
  fb_aug_render(&c, img, 28, 28, (fb_aug_draw){0, 0, 0}, o28);
  int ok = 1;
  for (int k = 0; k < 784; k++) ok &= fabsf(o28[k] - norm(img[k])) < 1e-6f;
  CHECK(ok, "normalisation (x/255 - mean)/std");
  CHECK_CLOSE(o28[0], (0.0 - 0.2860) / 0.3530, 1e-6, "value of black");
  CHECK_CLOSE(o28[27 * 28 + 2], (243 / 255.0 - 0.2860) / 0.3530, 1e-6, "value of 243");

  /* S = 32: padded by 2 */
  c = fb_aug_default(32);
  CHECK(c.content == 28 && c.crop_pad == 4, "defaults at 32");
  float base[1024], o[1024];
  fb_aug_render(&c, img, 28, 28, (fb_aug_draw){0, 0, 0}, base);
  ok = 1;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++) {
      int in = y >= 2 && y < 30 && x >= 2 && x < 30;
      float want = in ? norm(img[(y - 2) * 28 + x - 2]) : bg;
      ok &= fabsf(base[y * 32 + x] - want) < 1e-6f;
    }
  CHECK(ok, "pad 2 into 32x32");

  /* flip: mirror of the canvas */
  fb_aug_render(&c, img, 28, 28, (fb_aug_draw){0, 0, 1}, o);
  ok = 1;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++) ok &= o[y * 32 + x] == base[y * 32 + 31 - x];
  CHECK(ok, "horizontal flip mirrors the canvas");
  CHECK(fabsf(o[(2 + 10) * 32 + 29] - norm(90)) < 1e-6f, "flipped: left column now on the right");

  /* shift: out(y, x) = base(y - dy, x - dx) or background */
  const int shifts[3][2] = {{2, -3}, {-4, 4}, {0, 1}};
  for (int s = 0; s < 3; s++) {
    int dy = shifts[s][0], dx = shifts[s][1];
    fb_aug_render(&c, img, 28, 28, (fb_aug_draw){dy, dx, 0}, o);
    ok = 1;
    for (int y = 0; y < 32; y++)
      for (int x = 0; x < 32; x++) {
        int sy = y - dy, sx = x - dx;
        float want = (sy >= 0 && sy < 32 && sx >= 0 && sx < 32) ? base[sy * 32 + sx] : bg;
        ok &= fabsf(o[y * 32 + x] - want) < 1e-6f;
      }
    CHECK(ok, "crop shift dy=%d dx=%d", dy, dx);
  }
  /* shift + flip: shift of the mirrored canvas */
  float fl[1024];
  fb_aug_render(&c, img, 28, 28, (fb_aug_draw){0, 0, 1}, fl);
  fb_aug_render(&c, img, 28, 28, (fb_aug_draw){-1, 3, 1}, o);
  ok = 1;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++) {
      int sy = y + 1, sx = x - 3;
      float want = (sy >= 0 && sy < 32 && sx >= 0 && sx < 32) ? fl[sy * 32 + sx] : bg;
      ok &= fabsf(o[y * 32 + x] - want) < 1e-6f;
    }
  CHECK(ok, "flip then shift");
  /* content 28 in 28 with shift: pixels move out of the frame */
  fb_aug_cfg c28 = fb_aug_default(28);
  fb_aug_render(&c28, img, 28, 28, (fb_aug_draw){0, 2, 0}, o28);
  CHECK(fabsf(o28[5 * 28 + 0] - bg) < 1e-6f && fabsf(o28[5 * 28 + 1] - bg) < 1e-6f &&
            fabsf(o28[5 * 28 + 2] - norm(45)) < 1e-6f,
        "shift at S=28 fills with background");

  /* S = 64: resize 28 -> 56 (bilinear, align_corners=False), pad 4 */
  fb_aug_cfg c64 = fb_aug_default(64);
  CHECK(c64.content == 56, "default content at 64 is 56");
  uint8_t ramp[784];
  for (int y = 0; y < 28; y++)
    for (int x = 0; x < 28; x++) ramp[y * 28 + x] = (uint8_t)(x * 9);
  float *o64 = malloc(64 * 64 * sizeof(float));
  fb_aug_render(&c64, ramp, 28, 28, (fb_aug_draw){0, 0, 0}, o64);
  ok = 1;
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++) {
      float want = bg;
      if (y >= 4 && y < 60 && x >= 4 && x < 60) {
        double sx = (x - 4) / 2.0 - 0.25;
        if (sx < 0) sx = 0;
        if (sx > 27) sx = 27;
        want = (float)((9.0 * sx / 255.0 - FB_FMNIST_MEAN) / FB_FMNIST_STD);
      }
      ok &= fabsf(o64[y * 64 + x] - want) < 1e-5f;
    }
  CHECK(ok, "bilinear 28->56 of a ramp, padded by 4");
  free(o64);

  /* batches: determinism, eval without augmentation, thread independence */
  fb_dataset_u8 ds = {.n = 40, .h = 28, .w = 28, .num_classes = 10};
  ds.images = malloc(40 * 784);
  ds.labels = malloc(40);
  fb_rng r;
  fb_rng_seed(&r, 99);
  for (int k = 0; k < 40 * 784; k++) ds.images[k] = (uint8_t)fb_rng_below(&r, 256);
  for (int k = 0; k < 40; k++) ds.labels[k] = (uint8_t)(k % 10);
  int idx[32];
  for (int k = 0; k < 32; k++) idx[k] = 39 - k;
  size_t bs = 32 * 1024;
  float *b1 = malloc(bs * 4), *b2 = malloc(bs * 4), *b3 = malloc(bs * 4), lab[32];
  fb_status st = {0};
  fb_rng r1, r2;
  fb_rng_seed(&r1, 7);
  fb_rng_seed(&r2, 7);
  CHECK(fb_aug_batch(&c, &ds, idx, 32, 1, &r1, b1, lab, &st) == 0, "batch: %s", st.msg);
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  CHECK(fb_aug_batch(&c, &ds, idx, 32, 1, &r2, b2, NULL, &st) == 0, "batch 1 thread");
  omp_set_num_threads(nt);
  CHECK(memcmp(b1, b2, bs * 4) == 0, "same seed -> same batch (independent of threads)");
  CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "same rng advance");
  CHECK(lab[0] == 9.0f && lab[31] == 8.0f, "labels follow idx");
  CHECK(fb_aug_batch(&c, &ds, idx, 32, 1, &r1, b3, NULL, &st) == 0 && memcmp(b1, b3, bs * 4) != 0,
        "next draw differs");
  /* per-item equality with the drawn decisions */
  fb_rng_seed(&r1, 7);
  fb_aug_batch(&c, &ds, idx, 32, 1, &r1, b1, NULL, &st);
  fb_rng_seed(&r2, 7);
  ok = 1;
  for (int i = 0; i < 32; i++) {
    fb_aug_draw dr = fb_aug_draw_one(&c, 1, &r2);
    fb_aug_render(&c, ds.images + (size_t)idx[i] * 784, 28, 28, dr, o);
    ok &= memcmp(o, b1 + (size_t)i * 1024, 1024 * 4) == 0;
  }
  CHECK(ok, "batch item i = render(draw i)");
  fb_rng before = r1;
  CHECK(fb_aug_batch(&c, &ds, idx, 32, 0, &r1, b3, NULL, &st) == 0, "eval batch");
  CHECK(memcmp(&before, &r1, sizeof r1) == 0, "eval draws nothing");
  ok = 1;
  for (int i = 0; i < 32; i++) {
    fb_aug_render(&c, ds.images + (size_t)idx[i] * 784, 28, 28, (fb_aug_draw){0, 0, 0}, o);
    ok &= memcmp(o, b3 + (size_t)i * 1024, 1024 * 4) == 0;
  }
  CHECK(ok, "eval batch = plain geometry");
  idx[5] = 40;
  CHECK(fb_aug_batch(&c, &ds, idx, 32, 0, NULL, b3, NULL, &st) != 0 && strstr(st.msg, "index 40"),
        "index out of range: %s", st.msg);
  fb_aug_cfg badc = c;
  badc.content = 40;
  CHECK(fb_aug_batch(&badc, &ds, NULL, 4, 0, NULL, b3, NULL, &st) != 0 && strstr(st.msg, "content"),
        "bad content: %s", st.msg);

  /* the draws cover the whole range */
  int seen[9] = {0}, flips = 0;
  fb_rng_seed(&r, 3);
  for (int k = 0; k < 4000; k++) {
    fb_aug_draw dr = fb_aug_draw_one(&c, 1, &r);
    if (dr.dx >= -4 && dr.dx <= 4) seen[dr.dx + 4]++;
    flips += dr.flip;
  }
  ok = 1;
  for (int k = 0; k < 9; k++) ok &= seen[k] > 300 && seen[k] < 600;
  CHECK(ok, "dx uniform over -4..4");
  CHECK(flips > 1800 && flips < 2200, "flip about half the time (%d / 4000)", flips);
  free(b1);
  free(b2);
  free(b3);
  fb_dataset_u8_free(&ds);
}

static void test_shuffle(void) {
  enum { N = 1000 };
  int a[N], b[N], cnt[N] = {0};
  fb_epoch_perm(a, N, 42, 3);
  fb_epoch_perm(b, N, 42, 3);
  CHECK(memcmp(a, b, sizeof a) == 0, "same seed and epoch -> same order");
  for (int i = 0; i < N; i++)
    if (a[i] >= 0 && a[i] < N) cnt[a[i]]++;
  int perm = 1, fixed = 0;
  for (int i = 0; i < N; i++) {
    perm &= cnt[i] == 1;
    fixed += a[i] == i;
  }
  CHECK(perm, "a permutation");
  CHECK(fixed < 10, "actually shuffled (%d fixed points)", fixed);
  fb_epoch_perm(b, N, 42, 4);
  CHECK(memcmp(a, b, sizeof a) != 0, "next epoch differs");
  fb_epoch_perm(b, N, 43, 3);
  CHECK(memcmp(a, b, sizeof a) != 0, "other seed differs");
}

/* Paths in fixed buffers: joined like fb_path_join, refused when cut. */
static void test_path_in(void) {
  char buf[16];
  fb_status st = {0};
  CHECK(fb_path_in(buf, sizeof buf, "run//", "log.jsonl", &st) == 0 &&
            strcmp(buf, "run/log.jsonl") == 0,
        "run// + log.jsonl = %s", buf);
  CHECK(fb_path_in(buf, sizeof buf, "runs/a", "log.json", &st) == 0 &&
            strcmp(buf, "runs/a/log.json") == 0,
        "15 characters fit in 16 bytes: %s", buf);
  CHECK(fb_path_in(buf, sizeof buf, "runs/a", "log.jsonl", &st) == -1 &&
            strcmp(st.msg, "runs/a/log.jsonl: path of 16 characters, longer than the 15 allowed") == 0,
        "16 do not, and the message names the whole path: %s", st.msg);
}

int main(void) {
  test_path_in();
  test_idx();
  test_augment();
  test_shuffle();
  test_real();
  return check_report("data");
}
