/* Demo scenes: composition (one scene from one rng) and the writer of the
 * whole demo data set. See scenes.h for the labelling rules and
 * docs/demo-data.md for the on-disk layout. */
#include "data/scenes.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/rng.h"
#include "core/fileio.h"
#include "core/status.h"
#include "data/dataset.h"
#include "data/formats.h"
#include "data/labels.h"

const char *fb_scene_class_name(int c) { return fb_fmnist_class_name(c); }

fb_scene_opts fb_scene_opts_default(void) {
  fb_scene_opts o = {
      .size = 64,
      .min_items = 1,
      .max_items = 4,
      .min_scale = 0.25,
      .max_scale = 0.625,
      .alpha_thresh = 32,
      .ignore_lo = 16,
      .ignore_hi = 48,
      .min_visible = 0,
      .max_hidden = 0.5,
      .max_tries = 20,
  };
  return o;
}

int fb_scene_opts_check(const fb_scene_opts *o, fb_status *st) {
  if (o->size < FB_SCENE_MIN_SIZE || o->size > FB_SCENE_MAX_SIZE)
    return fb_fail(st, "scenes: size must be in [%d, %d], got %d", FB_SCENE_MIN_SIZE,
                   FB_SCENE_MAX_SIZE, o->size);
  if (o->min_items < 1 || o->max_items > FB_SCENE_MAX_ITEMS)
    return fb_fail(st, "scenes: items per scene must lie in [1, %d], got min %d max %d",
                   FB_SCENE_MAX_ITEMS, o->min_items, o->max_items);
  if (o->min_items > o->max_items)
    return fb_fail(st, "scenes: min-items (%d) is larger than max-items (%d)", o->min_items,
                   o->max_items);
  if (!(o->min_scale > 0) || !(o->max_scale <= 1) || o->min_scale > o->max_scale)
    return fb_fail(st, "scenes: item scale must satisfy 0 < min-scale <= max-scale <= 1, got %g..%g",
                   o->min_scale, o->max_scale);
  if (o->min_scale * o->size < 8)
    return fb_fail(st, "scenes: min-scale %g gives items of %.1f px at size %d; need >= 8 px",
                   o->min_scale, o->min_scale * o->size, o->size);
  if (!(o->ignore_lo >= 0 && o->ignore_lo < o->alpha_thresh && o->alpha_thresh < o->ignore_hi &&
        o->ignore_hi <= 255))
    return fb_fail(st, "scenes: need 0 <= ignore_lo < alpha_thresh < ignore_hi <= 255, got %d %d %d",
                   o->ignore_lo, o->alpha_thresh, o->ignore_hi);
  if (!(o->max_hidden >= 0 && o->max_hidden < 1))
    return fb_fail(st, "scenes: max_hidden must be in [0, 1), got %g", o->max_hidden);
  if (o->min_visible < 0 || o->max_tries < 1)
    return fb_fail(st, "scenes: min_visible must be >= 0 and max_tries >= 1");
  return 0;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fb_scene_seed(uint64_t seed, int set, int split, int index) {
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ (0x100000001b3ULL * (uint64_t)(set + 1)));
  h = mix64(h ^ (0xc2b2ae3d27d4eb4fULL * (uint64_t)(split + 1)));
  return mix64(h ^ (0x165667b19e3779f9ULL * (uint64_t)(uint32_t)index));
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static int min_visible_of(const fb_scene_opts *o) {
  if (o->min_visible > 0) return o->min_visible;
  int m = o->size * o->size / 200;
  return m < 8 ? 8 : m;
}

/* Bilinear resize of a sh x sw grey image to side x side, pixel centres
 * aligned, in 8-bit fixed point so results do not depend on float rounding.
 * dst is (side, side). */
static void resize_item(const uint8_t *src, int sh, int sw, int side, uint8_t *dst) {
  for (int i = 0; i < side; i++) {
    /* source coordinate (i + 0.5) * sh / side - 0.5, times 256 */
    int sy = (int)(((int64_t)(2 * i + 1) * sh * 256) / (2 * side)) - 128;
    int y0 = sy >= 0 ? sy >> 8 : -1, fy = sy - y0 * 256;
    int ya = clampi(y0, 0, sh - 1), yb = clampi(y0 + 1, 0, sh - 1);
    for (int j = 0; j < side; j++) {
      int sx = (int)(((int64_t)(2 * j + 1) * sw * 256) / (2 * side)) - 128;
      int x0 = sx >= 0 ? sx >> 8 : -1, fx = sx - x0 * 256;
      int xa = clampi(x0, 0, sw - 1), xb = clampi(x0 + 1, 0, sw - 1);
      int top = src[ya * sw + xa] * (256 - fx) + src[ya * sw + xb] * fx;
      int bot = src[yb * sw + xa] * (256 - fx) + src[yb * sw + xb] * fx;
      dst[i * side + j] = (uint8_t)((top * (256 - fy) + bot * fy + 32768) >> 16);
    }
  }
}

/* A bright random colour: channels in [40, 255], scaled so the largest is 255. */
static void random_tint(fb_rng *r, int rgb[3]) {
  int mx = 0;
  for (int k = 0; k < 3; k++) {
    rgb[k] = 40 + (int)fb_rng_below(r, 216);
    if (rgb[k] > mx) mx = rgb[k];
  }
  for (int k = 0; k < 3; k++) rgb[k] = (rgb[k] * 255 + mx / 2) / mx;
}

/* Dark background: a linear gradient between two dark colours along a random
 * direction plus low-amplitude uniform noise (+-3). */
static void render_background(fb_rng *r, int size, uint8_t *px) {
  int c0[3], c1[3];
  for (int k = 0; k < 3; k++) c0[k] = 8 + (int)fb_rng_below(r, 64);
  for (int k = 0; k < 3; k++) c1[k] = 8 + (int)fb_rng_below(r, 64);
  /* direction (dx, dy) in 1/64 units, not both zero */
  int dx = (int)fb_rng_below(r, 129) - 64, dy = (int)fb_rng_below(r, 129) - 64;
  if (dx == 0 && dy == 0) dx = 64;
  int64_t lo = 0, hi = 0; /* range of dx*x + dy*y over the canvas corners */
  int64_t cx = (int64_t)dx * (size - 1), cy = (int64_t)dy * (size - 1);
  if (cx < 0) lo += cx; else hi += cx;
  if (cy < 0) lo += cy; else hi += cy;
  int64_t span = hi - lo > 0 ? hi - lo : 1;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      int64_t t = (int64_t)dx * x + (int64_t)dy * y - lo; /* 0..span */
      for (int k = 0; k < 3; k++) {
        int v = (int)((c0[k] * (span - t) + c1[k] * t + span / 2) / span);
        v += (int)fb_rng_below(r, 7) - 3;
        px[((size_t)y * size + x) * 3 + k] = (uint8_t)clampi(v, 0, 255);
      }
    }
}

void fb_scene_free(fb_scene *s) {
  if (!s) return;
  free(s->px);
  free(s->mask);
  free(s->inst);
  memset(s, 0, sizeof *s);
}

typedef struct placer {
  const fb_dataset_u8 *src;
  const fb_scene_opts *o;
  int lo_side, hi_side, min_vis;
  size_t item_px;
  uint8_t *alpha; /* (FB_SCENE_MAX_ITEMS + 1) * item_px; the last slot is the candidate */
  int tint[FB_SCENE_MAX_ITEMS][3];
} placer;

/* Draws the items of one scene: out->items, out->n_items and the instance
 * map out->inst; the item alphas go to pl->alpha. Fails only when not even
 * one source item is visible enough. */
static int place_items(placer *pl, fb_rng *rng, fb_scene *out, fb_status *st) {
  const fb_scene_opts *o = pl->o;
  const fb_dataset_u8 *src = pl->src;
  const int size = o->size, T = o->alpha_thresh;
  const double keep = 1.0 - o->max_hidden;
  int lost[FB_SCENE_MAX_ITEMS];
  fb_scene_item *it = out->items;
  memset(out->inst, -1, (size_t)size * size);
  out->n_items = 0;
  int n_target = o->min_items + (int)fb_rng_below(rng, (uint32_t)(o->max_items - o->min_items + 1));
  for (int k = 0; k < n_target; k++) {
    /* The first item must exist: give it many more tries. */
    int tries = k == 0 ? o->max_tries * 50 : o->max_tries;
    uint8_t *cand = pl->alpha + pl->item_px * FB_SCENE_MAX_ITEMS;
    int placed = 0;
    for (int t = 0; t < tries && !placed; t++) {
      int idx = (int)fb_rng_below(rng, (uint32_t)src->n);
      int side = pl->lo_side + (int)fb_rng_below(rng, (uint32_t)(pl->hi_side - pl->lo_side + 1));
      int x = (int)fb_rng_below(rng, (uint32_t)(size - side + 1));
      int y = (int)fb_rng_below(rng, (uint32_t)(size - side + 1));
      resize_item(src->images + (size_t)idx * src->h * src->w, src->h, src->w, side, cand);
      int own = 0;
      for (int p = 0; p < side * side; p++) own += cand[p] > T;
      if (own * keep < pl->min_vis) continue; /* too faint to stay visible when occluded */
      /* pixels each earlier item would lose under this candidate */
      memset(lost, 0, sizeof lost);
      for (int i = 0; i < side; i++)
        for (int j = 0; j < side; j++) {
          if (cand[i * side + j] <= T) continue;
          int owner = out->inst[(size_t)(y + i) * size + (x + j)];
          if (owner >= 0) lost[owner]++;
        }
      int ok = 1;
      for (int e = 0; e < k && ok; e++)
        if (it[e].area - lost[e] < keep * it[e].own_area) ok = 0;
      if (!ok) continue;
      for (int e = 0; e < k; e++) it[e].area -= lost[e];
      for (int i = 0; i < side; i++)
        for (int j = 0; j < side; j++)
          if (cand[i * side + j] > T) out->inst[(size_t)(y + i) * size + (x + j)] = (int8_t)k;
      memcpy(pl->alpha + pl->item_px * k, cand, (size_t)side * side);
      it[k] = (fb_scene_item){.cls = src->labels[idx], .src_index = idx, .x = x, .y = y,
                              .side = side, .area = own, .own_area = own};
      random_tint(rng, pl->tint[k]);
      placed = 1;
    }
    if (!placed) {
      if (k == 0)
        return fb_fail(st, "scenes: no source item has %d visible pixels at %d..%d px",
                       pl->min_vis, pl->lo_side, pl->hi_side);
      break; /* no room left: the scene keeps fewer items */
    }
    out->n_items = k + 1;
  }
  int best = 0;
  for (int k = 1; k < out->n_items; k++)
    if (it[k].area > it[best].area) best = k;
  out->label = it[best].cls;
  return 0;
}

int fb_scene_make(const fb_dataset_u8 *src, const fb_scene_opts *o, uint64_t rng_seed,
                  int want_label, fb_scene *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  if (fb_scene_opts_check(o, st) != 0) return -1;
  if (!src || src->n < 1 || !src->images || !src->labels || src->h < 1 || src->w < 1)
    return fb_fail(st, "scenes: the source item set is empty");
  if (want_label < -1 || want_label >= FB_FMNIST_CLASSES)
    return fb_fail(st, "scenes: want_label %d outside -1..%d", want_label, FB_FMNIST_CLASSES - 1);
  const int size = o->size;
  const size_t npx = (size_t)size * size;
  placer pl = {.src = src, .o = o, .min_vis = min_visible_of(o)};
  pl.lo_side = clampi((int)lround(o->min_scale * size), 1, size);
  pl.hi_side = clampi((int)lround(o->max_scale * size), pl.lo_side, size);
  pl.item_px = (size_t)pl.hi_side * pl.hi_side;
  pl.alpha = fb_xmalloc(pl.item_px * (FB_SCENE_MAX_ITEMS + 1));
  uint8_t *alpha = pl.alpha;
  const size_t item_px = pl.item_px;

  fb_rng rng;
  fb_rng_seed(&rng, rng_seed);
  out->size = size;
  out->px = fb_xmalloc(npx * 3);
  out->mask = fb_xmalloc(npx);
  out->inst = fb_xmalloc(npx);
  /* Placement first (cheap); with want_label, redraw until the largest item
   * has that class, continuing the same random stream. */
  const int max_attempts = 2000;
  int attempt = 0;
  for (;; attempt++) {
    if (place_items(&pl, &rng, out, st) != 0) break;
    if (want_label < 0 || out->label == want_label) break;
    if (attempt + 1 >= max_attempts) {
      fb_fail(st, "scenes: no scene with class %d as its largest item in %d attempts",
              want_label, max_attempts);
      break;
    }
  }
  if (out->n_items == 0 || (want_label >= 0 && out->label != want_label)) {
    free(alpha);
    fb_scene_free(out);
    return -1;
  }
  render_background(&rng, size, out->px);
  fb_scene_item *it = out->items;
  int(*tint)[3] = pl.tint;

  /* Composite colours, the mask and the box of each item. */
  const int n = out->n_items;
  for (int k = 0; k < n; k++) {
    it[k].bx0 = size;
    it[k].by0 = size;
    it[k].bx1 = -1;
    it[k].by1 = -1;
  }
  for (int yy = 0; yy < size; yy++)
    for (int xx = 0; xx < size; xx++) {
      size_t p = (size_t)yy * size + xx;
      uint8_t *c = out->px + p * 3;
      int owner = out->inst[p];
      int ambiguous = 0;
      for (int k = 0; k < n; k++) {
        int ly = yy - it[k].y, lx = xx - it[k].x;
        if (ly < 0 || lx < 0 || ly >= it[k].side || lx >= it[k].side) continue;
        int a = alpha[item_px * k + (size_t)ly * it[k].side + lx];
        if (a == 0) continue;
        for (int ch = 0; ch < 3; ch++)
          c[ch] = (uint8_t)((c[ch] * (255 - a) + tint[k][ch] * a + 127) / 255);
        if (k >= owner && a > o->ignore_lo && a < o->ignore_hi) ambiguous = 1;
      }
      if (ambiguous)
        out->mask[p] = 255;
      else
        out->mask[p] = owner < 0 ? 0 : (uint8_t)(it[owner].cls + 1);
      if (owner >= 0) {
        fb_scene_item *b = &it[owner];
        if (xx < b->bx0) b->bx0 = xx;
        if (xx > b->bx1) b->bx1 = xx;
        if (yy < b->by0) b->by0 = yy;
        if (yy > b->by1) b->by1 = yy;
      }
    }
  free(alpha);
  return 0;
}

/* ---- the writer -------------------------------------------------------- */

static const char *set_names[4] = {"cls", "det", "seg", "proxy"};
static const char *split_names[2] = {"train", "val"};

static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 1;
  int empty = 1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

static int write_text(const char *path, const char *text, fb_status *st) {
  FILE *f = fopen(path, "wb");
  if (!f) return fb_fail_io(st, "%s: cannot write: %s", path, strerror(errno));
  size_t len = strlen(text);
  int bad = fwrite(text, 1, len, f) != len;
  bad |= fclose(f) != 0;
  if (bad) return fb_fail_io(st, "%s: write failed: %s", path, strerror(errno));
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What was kept of each scene for the JSON written after the images. */
typedef struct scene_rec {
  int label, n_items;
  fb_scene_item items[FB_SCENE_MAX_ITEMS];
} scene_rec;

typedef struct job {
  int set, split, n;
  const fb_dataset_u8 *src;
  char dir[4096];        /* DIR/<set>/<split> */
  char truth_dir[4096];  /* proxy only: DIR/proxy/truth */
} job;

static void class_folder(char *buf, size_t cap, int c) {
  snprintf(buf, cap, "%d_%s", c, fb_scene_class_name(c));
}

/* Paths of image (and mask) of scene i in job j. */
static void scene_paths(const job *j, int i, int label, char *img, char *mask, size_t cap) {
  char cf[64];
  mask[0] = 0;
  switch (j->set) {
    case FB_SCENE_SET_CLS:
    case FB_SCENE_SET_PROXY:
      class_folder(cf, sizeof cf, label);
      snprintf(img, cap, "%s/%s/%06d.png", j->dir, cf, i + 1);
      if (j->set == FB_SCENE_SET_PROXY) snprintf(mask, cap, "%s/masks/%06d.png", j->truth_dir, i + 1);
      break;
    case FB_SCENE_SET_DET: snprintf(img, cap, "%s/images/%06d.png", j->dir, i + 1); break;
    default:
      snprintf(img, cap, "%s/images/%06d.png", j->dir, i + 1);
      snprintf(mask, cap, "%s/masks/%06d.png", j->dir, i + 1);
      break;
  }
}

static int make_dirs(const job *j, fb_status *st) {
  char p[4400];
  if (fb_mkdir_p(j->dir, st) != 0) return -1;
  if (j->set == FB_SCENE_SET_CLS || j->set == FB_SCENE_SET_PROXY) {
    for (int c = 0; c < FB_FMNIST_CLASSES; c++) {
      char cf[64];
      class_folder(cf, sizeof cf, c);
      snprintf(p, sizeof p, "%s/%s", j->dir, cf);
      if (fb_mkdir_p(p, st) != 0) return -1;
    }
  } else {
    snprintf(p, sizeof p, "%s/images", j->dir);
    if (fb_mkdir_p(p, st) != 0) return -1;
  }
  if (j->set == FB_SCENE_SET_SEG) {
    snprintf(p, sizeof p, "%s/masks", j->dir);
    if (fb_mkdir_p(p, st) != 0) return -1;
  }
  if (j->set == FB_SCENE_SET_PROXY) {
    snprintf(p, sizeof p, "%s/masks", j->truth_dir);
    if (fb_mkdir_p(p, st) != 0) return -1;
  }
  return 0;
}

static int write_classes_txt(const char *dir, fb_status *st) {
  char path[4400], text[512] = "background\n";
  for (int c = 0; c < FB_FMNIST_CLASSES; c++) {
    strcat(text, fb_scene_class_name(c));
    strcat(text, "\n");
  }
  snprintf(path, sizeof path, "%s/classes.txt", dir);
  return write_text(path, text, st);
}

/* COCO ground truth of the boxes of recs (image i is "<i+1>.png", id i+1). */
static int write_coco(const char *path, const scene_rec *recs, int n, int size, fb_status *st) {
  fb_mt_dataset d = {0};
  d.s = fb_xcalloc((size_t)(n > 0 ? n : 1), sizeof *d.s);
  d.n = n;
  d.num_cats = FB_FMNIST_CLASSES;
  d.cat_ids = fb_xmalloc(sizeof(int) * FB_FMNIST_CLASSES);
  d.cat_names = fb_xcalloc(FB_FMNIST_CLASSES, sizeof(char *));
  d.num_seg_classes = FB_SCENE_SEG_CLASSES;
  for (int c = 0; c < FB_FMNIST_CLASSES; c++) {
    d.cat_ids[c] = c + 1;
    d.cat_names[c] = strdup(fb_scene_class_name(c));
  }
  for (int i = 0; i < n; i++) {
    fb_sample *s = &d.s[i];
    char name[32];
    snprintf(name, sizeof name, "%06d.png", i + 1);
    s->file = strdup(name);
    s->image_id = i + 1;
    s->h = s->w = size;
    s->c = 3;
    s->label = recs[i].label;
    s->has_boxes = 1;
    s->n_boxes = recs[i].n_items;
    s->boxes = fb_xcalloc((size_t)recs[i].n_items, sizeof(fb_box));
    for (int k = 0; k < recs[i].n_items; k++) {
      const fb_scene_item *t = &recs[i].items[k];
      s->boxes[k] = (fb_box){.x = (float)t->bx0, .y = (float)t->by0,
                             .w = (float)(t->bx1 - t->bx0 + 1), .h = (float)(t->by1 - t->by0 + 1),
                             .cat = t->cls, .iscrowd = 0, .area = (float)t->area, .score = 1};
    }
  }
  int rc = fb_coco_write_gt(path, &d, 0, st);
  fb_mt_dataset_free(&d);
  return rc;
}

static int run_job(const fb_scenes_config *cfg, const job *j, scene_rec *recs, fb_status *st) {
  if (make_dirs(j, st) != 0) return -1;
  int err_index = j->n;
  fb_status err = {0};
  /* about 1M pixels per chunk (256 scenes at 64 px), at least 2 per thread,
   * so that progress lines come regularly at any canvas size */
  int chunk = (1 << 20) / (cfg->scene.size * cfg->scene.size);
  if (chunk > 256) chunk = 256;
  if (chunk < 2 * omp_get_max_threads()) chunk = 2 * omp_get_max_threads();
  double t0 = now_s(), last = t0;
  for (int start = 0; start < j->n && err_index == j->n; start += chunk) {
    int end = start + chunk < j->n ? start + chunk : j->n;
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = start; i < end; i++) {
      fb_status ls = {0};
      fb_scene sc;
      int balanced = j->set == FB_SCENE_SET_CLS || j->set == FB_SCENE_SET_PROXY;
      int rc = fb_scene_make(j->src, &cfg->scene, fb_scene_seed(cfg->seed, j->set, j->split, i),
                             balanced ? i % FB_FMNIST_CLASSES : -1, &sc, &ls);
      if (rc == 0) {
        char img[4400], mask[4400];
        scene_paths(j, i, sc.label, img, mask, sizeof img);
        rc = fb_png_write(img, sc.px, sc.size, sc.size, 3, &ls);
        if (rc == 0 && mask[0]) rc = fb_mask_write(mask, sc.mask, sc.size, sc.size, &ls);
        recs[i].label = sc.label;
        recs[i].n_items = sc.n_items;
        memcpy(recs[i].items, sc.items, sizeof sc.items);
        fb_scene_free(&sc);
      }
      if (rc != 0) {
#pragma omp critical(fb_scenes_err)
        if (i < err_index) {
          err_index = i;
          err = ls;
        }
      }
    }
    double t = now_s();
    if (cfg->progress && end < j->n && t - last > 1.0) {
      fb_log(cfg->log, FB_LOG_INFO, "scenes: %s/%s %d/%d", set_names[j->set], split_names[j->split], end, j->n);
      last = t;
    }
  }
  if (err_index < j->n) return fb_fail(st, "%s", err.msg);
  if (cfg->progress)
    fb_log(cfg->log, FB_LOG_INFO, "scenes: %s/%s: %d scenes in %.2f s", set_names[j->set],
            split_names[j->split], j->n, now_s() - t0);
  return 0;
}

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...) {
  size_t len = strlen(buf);
  if (len >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
}

static int write_readme(const fb_scenes_config *cfg, const int counts[4][2], const long items[4][2],
                        fb_status *st) {
  const fb_scene_opts *o = &cfg->scene;
  char text[8192] = "";
  const size_t cap = sizeof text;
  append(text, cap, "fbnet demo scenes (fbnet data scenes; see docs/demo-data.md)\n\n");
  append(text, cap, "seed %llu, canvas %dx%d RGB, %d..%d Fashion-MNIST items per scene,\n",
         (unsigned long long)cfg->seed, o->size, o->size, o->min_items, o->max_items);
  append(text, cap, "item side %g..%g of the canvas, at most %g of an item hidden by later ones.\n",
         o->min_scale, o->max_scale, o->max_hidden);
  append(text, cap, "train scenes use Fashion-MNIST train items, val scenes t10k items.\n\n");
  append(text, cap, "set    split  scenes  items\n");
  for (int s = 0; s < 4; s++)
    for (int p = 0; p < 2; p++)
      if (counts[s][p] > 0 || !(s == FB_SCENE_SET_PROXY && p == FB_SCENE_VAL))
        append(text, cap, "%-6s %-6s %6d %6ld\n", set_names[s], split_names[p], counts[s][p],
               items[s][p]);
  append(text, cap,
         "\nlayout\n"
         "  cls/{train,val}/<c>_<name>/<id>.png     class = largest item\n"
         "  det/{train,val}/images/<id>.png, det/{train,val}.json   COCO boxes\n"
         "  seg/{train,val}/images/<id>.png, masks/<id>.png, classes.txt\n"
         "  proxy/train/<c>_<name>/<id>.png         class labels only\n"
         "  proxy/truth/det.json, proxy/truth/masks/<id>.png   true boxes/masks of the proxy\n"
         "      images: not used by the pipeline; for measuring teacher quality\n\n");
  append(text, cap, "class mapping (Fashion-MNIST label c)\n"
                    "  c  folder          COCO category_id  mask value\n");
  for (int c = 0; c < FB_FMNIST_CLASSES; c++) {
    char cf[64];
    class_folder(cf, sizeof cf, c);
    append(text, cap, "  %d  %-15s %2d                %2d\n", c, cf, c + 1, c + 1);
  }
  append(text, cap, "  background: mask value 0; 255 = ignore (ambiguous item edges)\n");
  char path[4400];
  snprintf(path, sizeof path, "%s/README.txt", cfg->out_dir);
  return write_text(path, text, st);
}

int fb_scenes_write(const fb_scenes_config *cfg, fb_status *st) {
  if (fb_scene_opts_check(&cfg->scene, st) != 0) return -1;
  if (!cfg->out_dir || !cfg->out_dir[0]) return fb_fail(st, "scenes: no output directory given");
  if (cfg->n_train < 0 || cfg->n_val < 0 || cfg->n_proxy < 0)
    return fb_fail(st, "scenes: scene counts must be >= 0");
  const char *cnt_names[3] = {"train", "val", "proxy"};
  int cnts[3] = {cfg->n_train, cfg->n_val, cfg->n_proxy};
  for (int k = 0; k < 3; k++)
    if (cnts[k] > 0 && cnts[k] < FB_FMNIST_CLASSES)
      return fb_fail(st, "scenes: %s count %d: must be 0 or >= %d (every class folder of the "
                     "cls/proxy sets needs an image)", cnt_names[k], cnts[k], FB_FMNIST_CLASSES);
  if (strlen(cfg->out_dir) > 3000) return fb_fail(st, "scenes: output path too long");
  if (!cfg->force && !dir_is_empty(cfg->out_dir))
    return fb_fail(st, "%s: exists and is not empty (use --force to write into it)", cfg->out_dir);
  if (fb_mkdir_p(cfg->out_dir, st) != 0) return -1;

  fb_dataset_u8 train = {0}, test = {0};
  int need_train = cfg->n_train > 0 || cfg->n_proxy > 0, need_test = cfg->n_val > 0;
  if (need_train && fb_fmnist_load(cfg->fmnist_dir, 1, &train, st) != 0) return -1;
  if (need_test && fb_fmnist_load(cfg->fmnist_dir, 0, &test, st) != 0) {
    fb_dataset_u8_free(&train);
    return -1;
  }

  int counts[4][2] = {{0}};
  long items[4][2] = {{0}};
  int rc = 0;
  for (int set = 0; set < 4 && rc == 0; set++)
    for (int split = 0; split < 2 && rc == 0; split++) {
      job j = {.set = set, .split = split};
      j.n = set == FB_SCENE_SET_PROXY ? (split == FB_SCENE_TRAIN ? cfg->n_proxy : 0)
                                      : (split == FB_SCENE_TRAIN ? cfg->n_train : cfg->n_val);
      if (j.n == 0) continue; /* nothing of an empty split is written */
      j.src = split == FB_SCENE_TRAIN ? &train : &test;
      snprintf(j.dir, sizeof j.dir, "%s/%s/%s", cfg->out_dir, set_names[set], split_names[split]);
      snprintf(j.truth_dir, sizeof j.truth_dir, "%s/proxy/truth", cfg->out_dir);
      scene_rec *recs = fb_xcalloc((size_t)(j.n > 0 ? j.n : 1), sizeof *recs);
      rc = run_job(cfg, &j, recs, st);
      char path[4400];
      if (rc == 0 && set == FB_SCENE_SET_DET) {
        snprintf(path, sizeof path, "%s/det/%s.json", cfg->out_dir, split_names[split]);
        rc = write_coco(path, recs, j.n, cfg->scene.size, st);
      }
      if (rc == 0 && set == FB_SCENE_SET_PROXY) {
        snprintf(path, sizeof path, "%s/det.json", j.truth_dir);
        rc = write_coco(path, recs, j.n, cfg->scene.size, st);
        if (rc == 0) rc = write_classes_txt(j.truth_dir, st);
      }
      if (rc == 0 && set == FB_SCENE_SET_SEG) rc = write_classes_txt(j.dir, st);
      counts[set][split] = j.n;
      for (int i = 0; i < j.n; i++) items[set][split] += recs[i].n_items;
      free(recs);
    }
  if (rc == 0) rc = write_readme(cfg, counts, items, st);
  fb_dataset_u8_free(&train);
  fb_dataset_u8_free(&test);
  return rc;
}
