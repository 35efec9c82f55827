/* Multi-task loader: boxes and masks move exactly with the image (flip,
 * scale, offset), eval geometry maps back, batches are deterministic with
 * any thread count and with or without prefetching, epochs cover every item
 * once, shutdown mid-epoch is clean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/loader.h"

#define OBJ 250 /* pixel value of the object */
#define BG 20

/* A sample whose object is the integer rectangle (ox, oy, ow, oh): pixels of
 * value OBJ (class 2 in the mask) on background BG (class 1), plus a second
 * box near the right edge. */
static void make_sample(fb_sample *s, int h, int w, int c, int ox, int oy, int ow, int oh,
                        int id) {
  memset(s, 0, sizeof *s);
  s->h = h;
  s->w = w;
  s->c = c;
  s->image_id = id;
  s->label = id % 3;
  s->px = malloc((size_t)h * w * c);
  s->mask = malloc((size_t)h * w);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int in = x >= ox && x < ox + ow && y >= oy && y < oy + oh;
      for (int k = 0; k < c; k++) s->px[((size_t)y * w + x) * c + k] = in ? OBJ : BG;
      s->mask[(size_t)y * w + x] = in ? 2 : 1;
    }
  s->n_boxes = 2;
  s->has_boxes = 1;
  s->boxes = calloc(2, sizeof(fb_box));
  s->boxes[0] = (fb_box){(float)ox, (float)oy, (float)ow, (float)oh, 1, 0, (float)(ow * oh), 1};
  s->boxes[1] = (fb_box){(float)w - 3.5f, 1.25f, 3.0f, 4.0f, 0, 1, 12, 1};
}

static void make_set(fb_mt_dataset *d, int n, int h, int w, int c) {
  memset(d, 0, sizeof *d);
  for (int i = 0; i < n; i++) {
    fb_sample s;
    make_sample(&s, h, w, c, 5 + i % 3, 6, 10, 8 + i % 2, i);
    fb_mt_dataset_push(d, &s);
  }
}

/* Normalised pixel value; the loader folds the normalisation into one
 * multiply-add, so values agree to float rounding. */
static float norm(int v) { return ((float)v / 255.0f - 0.5f) / 0.25f; }
static int near(float a, float b) { return fabsf(a - b) <= 1e-5f; }

/* Expected box after the geometry (the loader's formula, written again). */
static int expect_box(const fb_box *in, double s, double ox, double oy, int S, int flip,
                      fb_box *out) {
  double x0 = in->x * s + ox, y0 = in->y * s + oy, x1 = x0 + in->w * s, y1 = y0 + in->h * s;
  x0 = fmax(x0, 0);
  y0 = fmax(y0, 0);
  x1 = fmin(x1, S);
  y1 = fmin(y1, S);
  if (x1 - x0 < 1 || y1 - y0 < 1) return 0;
  out->x = (float)(flip ? S - x1 : x0);
  out->y = (float)y0;
  out->w = (float)(x1 - x0);
  out->h = (float)(y1 - y0);
  return 1;
}

/* Flip only: images of size S at scale 1 have offset 0, so the geometry is
 * either identity or a mirror; every pixel is exact. */
static void test_flip(void) {
  enum { S = 32 };
  fb_mt_dataset d;
  make_set(&d, 16, S, S, 1);
  fb_loader_cfg c = fb_loader_cfg_default(S, 1, 8, 1);
  c.scale_min = c.scale_max = 1;
  fb_status st;
  fb_loader *l = fb_loader_create(&d, &c, &st);
  CHECK(l != NULL, "create: %s", st.msg);
  if (!l) return;
  fb_loader_start_epoch(l, 0);
  int seen[2] = {0, 0}, exact = 1, masks_ok = 1;
  const fb_batch *b;
  while ((b = fb_loader_next(l)) != NULL) {
    for (int i = 0; i < b->n; i++) {
      const fb_sample *s = &d.s[b->index[i]];
      const fb_box *ob = &s->boxes[0];
      const float *img = b->images + (size_t)i * S * S;
      const uint8_t *m = b->masks + (size_t)i * S * S;
      /* flipped iff the object's first column shows up mirrored */
      int flip = near(img[(int)ob->y * S + (S - 1 - (int)ob->x)], norm(OBJ)) &&
                 !near(img[(int)ob->y * S + (int)ob->x], norm(OBJ));
      seen[flip]++;
      CHECK(b->scale[i] == 1 && b->off_x[i] == 0 && b->off_y[i] == 0, "identity scale/offset");
      CHECK(b->n_boxes[i] == 2, "both boxes kept");
      fb_box e = {0};
      expect_box(ob, 1, 0, 0, S, flip, &e);
      CHECK(b->boxes[i][0].x == (flip ? S - ob->x - ob->w : ob->x) && b->boxes[i][0].x == e.x &&
                b->boxes[i][0].y == ob->y && b->boxes[i][0].w == ob->w &&
                b->boxes[i][0].h == ob->h,
            "flip moves the box exactly: x %g (flip %d, orig %g)", (double)b->boxes[i][0].x, flip,
            (double)ob->x);
      CHECK(b->boxes[i][1].iscrowd == 1 && b->boxes[i][1].x == (flip ? 0.5f : S - 3.5f),
            "crowd box flipped: %g", (double)b->boxes[i][1].x);
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          int sx = flip ? S - 1 - x : x;
          int v = s->px[y * S + sx];
          if (!near(img[y * S + x], norm(v))) exact = 0;
          if (m[y * S + x] != s->mask[y * S + sx]) masks_ok = 0;
        }
    }
  }
  CHECK(seen[0] > 0 && seen[1] > 0, "both flips drawn: %d %d", seen[0], seen[1]);
  CHECK(exact, "flipped image pixels exact");
  CHECK(masks_ok, "flipped mask follows the image");
  fb_loader_free(l);
  fb_mt_dataset_free(&d);
}

/* Random scale and offset (crop and pad), RGB input, grey and RGB output. */
static void test_scale_offset(int out_c) {
  enum { S = 32, H = 30, W = 40 };
  fb_mt_dataset d;
  make_set(&d, 12, H, W, 3);
  fb_loader_cfg c = fb_loader_cfg_default(S, out_c, 4, 1);
  c.hflip = 0;
  c.scale_min = 0.5f;
  c.scale_max = 2.0f;
  c.seed = 7;
  fb_status st;
  fb_loader *l = fb_loader_create(&d, &c, &st);
  CHECK(l != NULL, "create: %s", st.msg);
  if (!l) return;
  int boxes_ok = 1, dropped = 0, kept = 0, crop = 0, pad = 0, mask_ok = 1, pad_ok = 1,
      interior_ok = 1, interior_n = 0;
  for (int epoch = 0; epoch < 3; epoch++) {
    fb_loader_start_epoch(l, epoch);
    const fb_batch *b;
    while ((b = fb_loader_next(l)) != NULL) {
      for (int i = 0; i < b->n; i++) {
        const fb_sample *s = &d.s[b->index[i]];
        double sc = b->scale[i], ox = b->off_x[i], oy = b->off_y[i];
        if (ox < 0 || oy < 0) crop++;
        if (ox > 0 || oy > 0) pad++;
        int m = 0;
        for (int k = 0; k < s->n_boxes; k++) {
          fb_box e;
          if (!expect_box(&s->boxes[k], sc, ox, oy, S, 0, &e)) {
            dropped++;
            continue;
          }
          kept++;
          const fb_box *g = &b->boxes[i][m++];
          if (m > b->n_boxes[i] || g->x != e.x || g->y != e.y || g->w != e.w || g->h != e.h ||
              g->cat != s->boxes[k].cat || g->iscrowd != s->boxes[k].iscrowd)
            boxes_ok = 0;
        }
        if (m != b->n_boxes[i]) boxes_ok = 0;
        /* pixels: mask class 2 <=> nearest source pixel in the object; the
         * image there includes object intensity; padding <=> centre outside */
        const float *img = b->images + (size_t)i * out_c * S * S;
        const uint8_t *mk = b->masks + (size_t)i * S * S;
        for (int Y = 0; Y < S; Y++)
          for (int X = 0; X < S; X++) {
            double u = (X + 0.5 - ox) / sc, v = (Y + 0.5 - oy) / sc;
            int inside = u >= 0 && u < W && v >= 0 && v < H;
            uint8_t mv = mk[Y * S + X];
            float iv = img[Y * S + X];
            if (!inside) {
              if (mv != 255 || iv != 0.0f) pad_ok = 0;
              continue;
            }
            int su = (int)floor(u), sv = (int)floor(v);
            if (mv != s->mask[sv * W + su]) mask_ok = 0;
            if (mv == 2 && !(iv > norm(BG) + 1e-4f)) mask_ok = 0;
            if (mv == 1 && !(iv < norm(OBJ) - 1e-4f)) mask_ok = 0;
            /* all four bilinear taps inside the object: exact object value */
            double pu = u - 0.5, pv = v - 0.5;
            const fb_box *ob = &s->boxes[0];
            if (pu >= ob->x && pu <= ob->x + ob->w - 1 && pv >= ob->y && pv <= ob->y + ob->h - 1) {
              interior_n++;
              for (int k = 0; k < out_c; k++)
                if (fabsf(img[k * S * S + Y * S + X] - norm(OBJ)) > 1e-4f) interior_ok = 0;
            }
          }
      }
    }
  }
  CHECK(boxes_ok, "scale+offset move (and clip) boxes exactly (out_c %d)", out_c);
  CHECK(kept > 0 && dropped > 0, "some boxes kept (%d) and some dropped (%d)", kept, dropped);
  CHECK(crop > 0 && pad > 0, "both crops (%d) and pads (%d) drawn", crop, pad);
  CHECK(mask_ok, "mask follows the image content (out_c %d)", out_c);
  CHECK(pad_ok, "padding is 255 in the mask and 0 in the image");
  CHECK(interior_ok && interior_n > 0, "object interior has the object value (%d px)", interior_n);
  fb_loader_free(l);
  fb_mt_dataset_free(&d);
}

/* Eval: longer side to S, pad bottom/right, data set order, short last
 * batch, boxes map back to the original image. */
static void test_eval(void) {
  enum { S = 32, H = 30, W = 40 };
  fb_mt_dataset d;
  make_set(&d, 7, H, W, 1);
  fb_loader_cfg c = fb_loader_cfg_default(S, 3, 3, 0);
  fb_status st;
  fb_loader *l = fb_loader_create(&d, &c, &st);
  CHECK(l != NULL, "create: %s", st.msg);
  if (!l) return;
  CHECK(fb_loader_num_batches(l) == 3, "eval batches %d", fb_loader_num_batches(l));
  CHECK(fb_loader_next(l) == NULL, "no batch before an epoch starts");
  fb_loader_start_epoch(l, 5);
  const fb_batch *b;
  int k = 0, next_index = 0, back_ok = 1, pad_ok = 1, order_ok = 1;
  while ((b = fb_loader_next(l)) != NULL) {
    CHECK(b->n == (k < 2 ? 3 : 1), "batch %d has %d items", k, b->n);
    for (int i = 0; i < b->n; i++) {
      if (b->index[i] != next_index++) order_ok = 0;
      const fb_sample *s = &d.s[b->index[i]];
      CHECK(b->scale[i] == 0.8f && b->off_x[i] == 0 && b->off_y[i] == 0, "eval scale %g",
            (double)b->scale[i]);
      CHECK(b->labels[i] == s->label, "label");
      for (int j = 0; j < b->n_boxes[i]; j++) {
        fb_box o = b->boxes[i][j];
        fb_batch_box_to_orig(b, i, &o);
        const fb_box *r = &s->boxes[j];
        if (fabsf(o.x - r->x) > 1e-4f || fabsf(o.y - r->y) > 1e-4f || fabsf(o.w - r->w) > 1e-4f ||
            fabsf(o.h - r->h) > 1e-4f || fabsf(o.area - r->area) > 1e-2f)
          back_ok = 0;
      }
      CHECK(b->n_boxes[i] == 2, "eval keeps every box");
      /* rows 24.. are padding (30 * 0.8 = 24) */
      for (int Y = 0; Y < S; Y++)
        for (int X = 0; X < S; X++) {
          int p = b->masks[(size_t)i * S * S + Y * S + X] == 255;
          if (p != (Y >= 24)) pad_ok = 0;
          if (p && b->images[(size_t)i * 3 * S * S + 2 * S * S + Y * S + X] != 0) pad_ok = 0;
        }
    }
    k++;
  }
  CHECK(k == 3 && next_index == 7 && order_ok, "eval in data set order, %d batches", k);
  CHECK(back_ok, "eval boxes map back to original coordinates");
  CHECK(pad_ok, "eval pads bottom rows only");
  CHECK(fb_loader_next(l) == NULL, "still NULL after the end");
  fb_loader_free(l);
  fb_mt_dataset_free(&d);
}

/* Copies a whole epoch of batches into one buffer for comparison. */
static size_t epoch_bytes(const fb_mt_dataset *d, fb_loader_cfg c, long epoch, uint8_t **out) {
  fb_status st;
  fb_loader *l = fb_loader_create(d, &c, &st);
  if (!l) return 0;
  size_t n = 0, cap = 1 << 20;
  uint8_t *buf = malloc(cap);
  fb_loader_start_epoch(l, epoch);
  const fb_batch *b;
  while ((b = fb_loader_next(l)) != NULL) {
    size_t S2 = (size_t)c.size * c.size;
    size_t need = n + (size_t)b->n * (c.channels * S2 * 4 + S2 + 64 * sizeof(fb_box) + 64);
    if (need > cap) buf = realloc(buf, cap = need * 2);
#define PUT(p, bytes)          \
  do {                         \
    memcpy(buf + n, p, bytes); \
    n += bytes;                \
  } while (0)
    PUT(b->images, (size_t)b->n * c.channels * S2 * 4);
    PUT(b->masks, (size_t)b->n * S2);
    PUT(b->index, (size_t)b->n * 4);
    PUT(b->scale, (size_t)b->n * 4);
    PUT(b->off_x, (size_t)b->n * 4);
    for (int i = 0; i < b->n; i++) PUT(b->boxes[i], (size_t)b->n_boxes[i] * sizeof(fb_box));
#undef PUT
  }
  fb_loader_free(l);
  *out = buf;
  return n;
}

static void test_determinism(void) {
  fb_mt_dataset d;
  make_set(&d, 11, 30, 40, 3);
  fb_loader_cfg c = fb_loader_cfg_default(24, 3, 4, 1);
  c.scale_min = 0.6f;
  c.scale_max = 1.8f;
  c.seed = 42;
  uint8_t *a, *b2, *b3, *e1, *s2;
  c.threads = 1;
  c.prefetch = 0;
  size_t na = epoch_bytes(&d, c, 3, &a);
  c.threads = 2;
  c.prefetch = 2;
  size_t nb = epoch_bytes(&d, c, 3, &b2);
  c.threads = 1;
  c.prefetch = 1;
  size_t n3 = epoch_bytes(&d, c, 3, &b3);
  size_t ne = epoch_bytes(&d, c, 4, &e1);
  c.seed = 43;
  size_t ns = epoch_bytes(&d, c, 3, &s2);
  CHECK(na > 0 && na == nb && memcmp(a, b2, na) == 0,
        "same seed: threads 1 / no prefetch == threads 2 / prefetch 2");
  CHECK(na == n3 && memcmp(a, b3, na) == 0, "prefetch 1 gives the same batches");
  CHECK(ne != na || memcmp(a, e1, na) != 0, "another epoch differs");
  CHECK(ns != na || memcmp(a, s2, na) != 0, "another seed differs");
  free(a);
  free(b2);
  free(b3);
  free(e1);
  free(s2);
  fb_mt_dataset_free(&d);
}

/* Item by item (image, index, scale, offsets, boxes), whatever the batch size. */
static size_t epoch_items(const fb_mt_dataset *d, fb_loader_cfg c, uint8_t **out) {
  fb_status st;
  fb_loader *l = fb_loader_create(d, &c, &st);
  if (!l) return 0;
  const size_t img = (size_t)c.channels * c.size * c.size * 4, rec = img + 16 + 64 * sizeof(fb_box);
  uint8_t *buf = calloc((size_t)d->n * 4, rec);
  size_t n = 0;
  fb_loader_start_epoch(l, 2);
  const fb_batch *b;
  while ((b = fb_loader_next(l)) != NULL)
    for (int i = 0; i < b->n; i++, n += rec) {
      memcpy(buf + n, b->images + (size_t)i * img / 4, img);
      memcpy(buf + n + img, &b->index[i], 4);
      memcpy(buf + n + img + 4, &b->scale[i], 4);
      memcpy(buf + n + img + 8, &b->off_x[i], 4);
      memcpy(buf + n + img + 12, &b->off_y[i], 4);
      memcpy(buf + n + img + 16, b->boxes[i], (size_t)b->n_boxes[i] * sizeof(fb_box));
    }
  fb_loader_free(l);
  *out = buf;
  return n;
}

/* Data-parallel parts: a global batch of 6 split in 3 parts of 2 gives the
 * same items with the same augmentation as the unsplit batch; a rank that
 * takes part 1 gets exactly the middle third of each global batch. */
static void test_parts(void) {
  fb_mt_dataset d;
  make_set(&d, 13, 30, 40, 3);
  fb_loader_cfg c = fb_loader_cfg_default(24, 3, 6, 1);
  c.scale_min = 0.6f;
  c.scale_max = 1.8f;
  c.drop_last = 1;
  uint8_t *whole, *split, *mid;
  const size_t nw = epoch_items(&d, c, &whole); /* 2 batches of 6 */
  c.batch = 2;
  c.parts = 3;
  c.part_first = 0;
  c.part_count = 3;
  const size_t ns = epoch_items(&d, c, &split);
  c.part_first = 1;
  c.part_count = 1;
  const size_t nm = epoch_items(&d, c, &mid);
  const size_t rec = nw / 12;
  CHECK(nw > 0 && ns == nw && memcmp(whole, split, nw) == 0,
        "3 parts of 2 = the batch of 6, item for item");
  CHECK(nm == 4 * rec && memcmp(mid, whole + 2 * rec, 2 * rec) == 0 &&
            memcmp(mid + 2 * rec, whole + 8 * rec, 2 * rec) == 0,
        "part 1 of 3: items 2-3 of each global batch");
  fb_status st;
  c.part_first = 2;
  c.part_count = 2;
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "parts 2..3 of 3"),
        "parts beyond the split: %s", st.msg);
  free(whole);
  free(split);
  free(mid);
  fb_mt_dataset_free(&d);
}

/* Every item exactly once per epoch; orders differ across epochs; drop_last. */
static void test_coverage(void) {
  fb_mt_dataset d;
  make_set(&d, 23, 12, 12, 1);
  fb_loader_cfg c = fb_loader_cfg_default(16, 1, 5, 1);
  fb_status st;
  fb_loader *l = fb_loader_create(&d, &c, &st);
  CHECK(l != NULL, "create: %s", st.msg);
  if (!l) return;
  int first[2][23];
  for (int e = 0; e < 2; e++) {
    int count[23] = {0}, pos = 0, batches = 0, last_n = 0;
    fb_loader_start_epoch(l, e);
    const fb_batch *b;
    while ((b = fb_loader_next(l)) != NULL) {
      for (int i = 0; i < b->n; i++) {
        count[b->index[i]]++;
        if (pos < 23) first[e][pos++] = b->index[i];
      }
      batches++;
      last_n = b->n;
    }
    int once = 1;
    for (int i = 0; i < 23; i++) once &= count[i] == 1;
    CHECK(once && batches == 5 && last_n == 3, "epoch %d covers every item once (%d batches)", e,
          batches);
  }
  CHECK(memcmp(first[0], first[1], sizeof first[0]) != 0, "epochs are shuffled differently");
  /* restart mid-epoch: the new epoch starts from its first batch */
  fb_loader_start_epoch(l, 0);
  const fb_batch *b = fb_loader_next(l);
  b = fb_loader_next(l);
  fb_loader_start_epoch(l, 0);
  b = fb_loader_next(l);
  CHECK(b && b->index[0] == first[0][0], "restarted epoch begins at its first batch");
  fb_loader_free(l);
  c.drop_last = 1;
  l = fb_loader_create(&d, &c, &st);
  CHECK(l && fb_loader_num_batches(l) == 4, "drop_last: 4 full batches");
  fb_loader_free(l);
  fb_mt_dataset_free(&d);
}

/* Free while the prefetch thread is blocked on a full ring, and right after start. */
static void test_shutdown(void) {
  fb_mt_dataset d;
  make_set(&d, 40, 20, 20, 3);
  fb_loader_cfg c = fb_loader_cfg_default(32, 3, 2, 1);
  c.prefetch = 3;
  c.threads = 2;
  fb_status st;
  for (int rep = 0; rep < 3; rep++) {
    fb_loader *l = fb_loader_create(&d, &c, &st);
    CHECK(l != NULL, "create: %s", st.msg);
    if (!l) break;
    fb_loader_start_epoch(l, rep);
    if (rep > 0) CHECK(fb_loader_next(l) != NULL, "a batch");
    if (rep > 1) CHECK(fb_loader_next(l) != NULL, "another batch");
    fb_loader_free(l);
  }
  fb_mt_dataset_free(&d);
}

/* The drop rule at its threshold, directly on fb_geom_box. */
static void test_geom_box(void) {
  fb_geom g = {2.0f, -10, 3, 1};
  fb_box in = {20.2f, 1, 5, 4, 0, 1, 20, 1}, out = {0};
  /* x: 40.4 - 10 = 30.4 .. 40.4 clipped to 32: width 1.6, kept; flip: x' = 0 */
  CHECK(fb_geom_box(&g, 32, &in, &out) == 1 && out.x == 0.0f && fabsf(out.w - 1.6f) < 1e-5f &&
            out.y == 5 && out.h == 8 && out.iscrowd == 1,
        "partly visible crowd box kept and clipped: x %g w %g", (double)out.x, (double)out.w);
  CHECK(fabsf(out.area - 20 * 4 * (1.6f / 10)) < 1e-3f, "area scaled by s^2 and kept part: %g",
        (double)out.area);
  in.x = 20.6f; /* clipped width 0.8 < 1: dropped */
  CHECK(fb_geom_box(&g, 32, &in, &out) == 0, "box narrower than 1 px after clipping is dropped");
  in.x = 3;
  in.y = 14.3f; /* y: 28.6 + 3 = 31.6 .. 39.6, clipped height 0.4: dropped */
  CHECK(fb_geom_box(&g, 32, &in, &out) == 0, "box lower than 1 px after clipping is dropped");
  in.y = 1;
  in.h = 0.4f; /* 0.8 px high after scaling, fully inside: dropped too */
  CHECK(fb_geom_box(&g, 32, &in, &out) == 0, "tiny box dropped");
}

static void test_errors(void) {
  fb_mt_dataset d;
  make_set(&d, 2, 8, 8, 1);
  fb_status st;
  fb_loader_cfg c = fb_loader_cfg_default(16, 2, 4, 1);
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "channels"), "channels 2");
  c = fb_loader_cfg_default(16, 1, 4, 1);
  c.scale_min = 2;
  c.scale_max = 1;
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "scale"), "bad scale range");
  c = fb_loader_cfg_default(16, 1, 4, 1);
  c.drop_last = 1;
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "drop_last"), "no full batch");
  c = fb_loader_cfg_default(16, 1, 0, 1);
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "batch"), "batch 0");
  free(d.s[1].px);
  d.s[1].px = NULL;
  c = fb_loader_cfg_default(16, 1, 4, 1);
  CHECK(fb_loader_create(&d, &c, &st) == NULL && strstr(st.msg, "item 1"), "sample without image");
  fb_mt_dataset_free(&d);
}

int main(void) {
  test_flip();
  test_scale_offset(3);
  test_scale_offset(1);
  test_eval();
  test_geom_box();
  test_determinism();
  test_coverage();
  test_parts();
  test_shutdown();
  test_errors();
  return check_report("loader");
}
