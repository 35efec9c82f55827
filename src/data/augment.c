#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

fb_aug_cfg fb_aug_default(int size) {
  fb_aug_cfg c;
  memset(&c, 0, sizeof c);
  c.size = size;
  if (size <= 28)
    c.content = size;
  else if (size < 32)
    c.content = 28;
  else
    c.content = (7 * size + 4) / 8;
  c.crop_pad = size / 8;
  c.hflip = 1;
  c.mean = FB_FMNIST_MEAN;
  c.std = FB_FMNIST_STD;
  return c;
}

int fb_aug_check(const fb_aug_cfg *c, fb_status *st) {
  if (c->size < 1 || c->size > 4096)
    return fb_fail(st, "augment: size %d outside 1..4096", c->size);
  if (c->content < 1 || c->content > c->size)
    return fb_fail(st, "augment: content %d outside 1..size (%d)", c->content, c->size);
  if (c->crop_pad < 0 || c->crop_pad > c->size)
    return fb_fail(st, "augment: crop_pad %d outside 0..size (%d)", c->crop_pad, c->size);
  if (!(c->std > 0.0f) || !isfinite(c->mean))
    return fb_fail(st, "augment: std must be > 0 (got %g) and mean finite", (double)c->std);
  return 0;
}

fb_aug_draw fb_aug_draw_one(const fb_aug_cfg *c, int train, fb_rng *rng) {
  fb_aug_draw d = {0, 0, 0};
  if (!train) return d;
  if (c->crop_pad > 0) {
    uint32_t span = 2u * (uint32_t)c->crop_pad + 1u;
    d.dy = (int)fb_rng_below(rng, span) - c->crop_pad;
    d.dx = (int)fb_rng_below(rng, span) - c->crop_pad;
  }
  if (c->hflip) d.flip = (int)fb_rng_below(rng, 2);
  return d;
}

/* Bilinear taps (align_corners=False, clamped at the border) for resizing
 * `src` samples to `dst`. */
static void taps(int src, int dst, int *i0, int *i1, float *f) {
  double scale = (double)src / dst;
  for (int o = 0; o < dst; o++) {
    double x = (o + 0.5) * scale - 0.5;
    if (x < 0) x = 0;
    int a = (int)x;
    if (a > src - 1) a = src - 1;
    int b = a + 1 < src ? a + 1 : src - 1;
    i0[o] = a;
    i1[o] = b;
    f[o] = (float)(x - a);
  }
}

/* The resized source in [0, 1] scale (content x content), then the
 * normalised canvas. ws holds content*content + content*w floats. */
static void render(const fb_aug_cfg *c, const uint8_t *img, int h, int w, fb_aug_draw d, float *out,
                   float *ws, const int *yi0, const int *yi1, const float *yf, const int *xi0,
                   const int *xi1, const float *xf) {
  const int S = c->size, C = c->content;
  const float inv_std = 1.0f / c->std;
  const float bg = (0.0f - c->mean) * inv_std;
  float *res = ws;                    /* (C, C) */
  float *rowbuf = ws + (size_t)C * C; /* (C, w): vertical pass */
  if (C == h && C == w) {
    for (int i = 0; i < h * w; i++) res[i] = img[i] * (1.0f / 255.0f);
  } else {
    for (int y = 0; y < C; y++) {
      const uint8_t *r0 = img + (size_t)yi0[y] * w, *r1 = img + (size_t)yi1[y] * w;
      float fy = yf[y];
      float *rb = rowbuf + (size_t)y * w;
      for (int x = 0; x < w; x++) rb[x] = (r0[x] + fy * (r1[x] - r0[x])) * (1.0f / 255.0f);
    }
    for (int y = 0; y < C; y++) {
      const float *rb = rowbuf + (size_t)y * w;
      float *dst = res + (size_t)y * C;
      for (int x = 0; x < C; x++) dst[x] = rb[xi0[x]] + xf[x] * (rb[xi1[x]] - rb[xi0[x]]);
    }
  }
  /* content top-left in the canvas; a flip mirrors the whole canvas, which
   * moves the content to S - off - C when the padding is odd */
  int off = (S - C) / 2;
  int oy = off + d.dy;
  int ox = (d.flip ? S - off - C : off) + d.dx;
  for (int y = 0; y < S; y++) {
    float *o = out + (size_t)y * S;
    int sy = y - oy;
    if (sy < 0 || sy >= C) {
      for (int x = 0; x < S; x++) o[x] = bg;
      continue;
    }
    const float *src = res + (size_t)sy * C;
    int x0 = ox < 0 ? 0 : ox, x1 = ox + C > S ? S : ox + C;
    for (int x = 0; x < x0; x++) o[x] = bg;
    if (d.flip)
      for (int x = x0; x < x1; x++) o[x] = (src[C - 1 - (x - ox)] - c->mean) * inv_std;
    else
      for (int x = x0; x < x1; x++) o[x] = (src[x - ox] - c->mean) * inv_std;
    for (int x = x1 > x0 ? x1 : x0; x < S; x++) o[x] = bg;
  }
}

typedef struct tap_table {
  int *yi0, *yi1, *xi0, *xi1;
  float *yf, *xf;
} tap_table;

static void taps_make(tap_table *t, const fb_aug_cfg *c, int h, int w) {
  int C = c->content;
  t->yi0 = fb_xmalloc(4 * (size_t)C * sizeof(int));
  t->yi1 = t->yi0 + C;
  t->xi0 = t->yi0 + 2 * C;
  t->xi1 = t->yi0 + 3 * C;
  t->yf = fb_xmalloc(2 * (size_t)C * sizeof(float));
  t->xf = t->yf + C;
  taps(h, C, t->yi0, t->yi1, t->yf);
  taps(w, C, t->xi0, t->xi1, t->xf);
}

static void taps_free(tap_table *t) {
  free(t->yi0);
  free(t->yf);
}

void fb_aug_render(const fb_aug_cfg *c, const uint8_t *img, int h, int w, fb_aug_draw d,
                   float *out) {
  tap_table t;
  taps_make(&t, c, h, w);
  float *ws =
      fb_xmalloc(((size_t)c->content * c->content + (size_t)c->content * w) * sizeof(float));
  render(c, img, h, w, d, out, ws, t.yi0, t.yi1, t.yf, t.xi0, t.xi1, t.xf);
  free(ws);
  taps_free(&t);
}

static int check_indices(const fb_dataset_u8 *ds, const int *idx, int n, fb_status *st) {
  if (n < 0) return fb_fail(st, "augment: negative batch size %d", n);
  for (int i = 0; i < n; i++) {
    int k = idx ? idx[i] : i;
    if (k < 0 || k >= ds->n)
      return fb_fail(st, "augment: index %d (batch item %d) outside the data set (0..%d)", k, i,
                     ds->n - 1);
  }
  return 0;
}

int fb_aug_batch_drawn(const fb_aug_cfg *c, const fb_dataset_u8 *ds, const int *idx, int n,
                       const fb_aug_draw *draws, float *out, float *labels_out, fb_status *st) {
  if (fb_aug_check(c, st) || check_indices(ds, idx, n, st)) return -1;
  if (n == 0) return 0;
  tap_table t;
  taps_make(&t, c, ds->h, ds->w);
  const size_t plane = (size_t)c->size * c->size, img_sz = (size_t)ds->h * ds->w;
  const size_t ws_n = (size_t)c->content * c->content + (size_t)c->content * ds->w;
#pragma omp parallel if (n >= 16)
  {
    float *ws = fb_xmalloc(ws_n * sizeof(float));
#pragma omp for schedule(static)
    for (int i = 0; i < n; i++) {
      int k = idx ? idx[i] : i;
      render(c, ds->images + (size_t)k * img_sz, ds->h, ds->w, draws[i], out + (size_t)i * plane,
             ws, t.yi0, t.yi1, t.yf, t.xi0, t.xi1, t.xf);
    }
    free(ws);
  }
  if (labels_out)
    for (int i = 0; i < n; i++) labels_out[i] = (float)ds->labels[idx ? idx[i] : i];
  taps_free(&t);
  return 0;
}

int fb_aug_batch(const fb_aug_cfg *c, const fb_dataset_u8 *ds, const int *idx, int n, int train,
                 fb_rng *rng, float *out, float *labels_out, fb_status *st) {
  if (fb_aug_check(c, st) || check_indices(ds, idx, n, st)) return -1;
  if (train && !rng && (c->crop_pad > 0 || c->hflip))
    return fb_fail(st, "augment: training batch needs an rng");
  if (n == 0) return 0;
  fb_aug_draw *draws = fb_xmalloc((size_t)n * sizeof *draws);
  for (int i = 0; i < n; i++) draws[i] = fb_aug_draw_one(c, train, rng);
  const int rc = fb_aug_batch_drawn(c, ds, idx, n, draws, out, labels_out, st);
  free(draws);
  return rc;
}

void fb_shuffle(int *idx, int n, fb_rng *rng) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)fb_rng_below(rng, (uint32_t)i + 1u);
    int tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
  }
}

void fb_epoch_perm(int *idx, int n, uint64_t seed, long epoch) {
  fb_rng r;
  /* distinct, well-mixed stream per epoch (splitmix inside fb_rng_seed) */
  fb_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)));
  for (int i = 0; i < n; i++) idx[i] = i;
  fb_shuffle(idx, n, &r);
}
