/* Demo scenes (docs/method.md section 7): Fashion-MNIST items pasted at random scale,
 * position and tint onto a dark RGB canvas. One scene is a pure function of
 * (source split, options, seed, set, split, index): every random decision is
 * drawn serially from one rng seeded by fb_scene_seed(), so scenes can be made
 * in any order, on any number of threads, with byte-identical results.
 *
 * Labels of a scene:
 *   - instance map: pixel -> topmost item whose alpha exceeds `alpha_thresh`
 *     (its "visible" pixels), -1 for none;
 *   - box of an item: tight bounds of its visible pixels, COCO [x, y, w, h]
 *     with w = x1 - x0 + 1 (the box covers whole pixels); area = the visible
 *     pixel count;
 *   - segmentation mask: 0 = background, c + 1 = Fashion-MNIST class c (11
 *     classes), 255 = ignore where the outcome is ambiguous: an item edge
 *     with alpha in (ignore_lo, ignore_hi) at or above the owning item, or
 *     faint item pixels (alpha in (ignore_lo, alpha_thresh]) over background;
 *   - class label: Fashion-MNIST class of the item with the most visible
 *     pixels (the earliest on a tie). */
#ifndef FB_DATA_SCENES_H
#define FB_DATA_SCENES_H

#include <stdint.h>

#include "data/fmnist.h"
#include "fbnet.h"

#define FB_SCENE_MAX_ITEMS 16
#define FB_SCENE_MIN_SIZE 32
#define FB_SCENE_MAX_SIZE 1024
#define FB_SCENE_SEG_CLASSES (FB_FMNIST_CLASSES + 1) /* background + 10 */

/* The four scene sets; each draws from its own random streams. */
enum { FB_SCENE_SET_CLS = 0, FB_SCENE_SET_DET = 1, FB_SCENE_SET_SEG = 2, FB_SCENE_SET_PROXY = 3 };
enum { FB_SCENE_TRAIN = 0, FB_SCENE_VAL = 1 };

typedef struct fb_scene_opts {
  int size;               /* canvas side in px, FB_SCENE_MIN_SIZE..FB_SCENE_MAX_SIZE */
  int min_items, max_items; /* items drawn per scene, 1..FB_SCENE_MAX_ITEMS */
  double min_scale, max_scale; /* item side as a fraction of the canvas side */
  int alpha_thresh;       /* item pixel is visible when alpha > this (0..255) */
  int ignore_lo, ignore_hi; /* alpha in (lo, hi) is an ambiguous edge: mask 255 */
  int min_visible;        /* fewest visible pixels an item keeps (0: size^2/200, >= 8) */
  double max_hidden;      /* an item may lose at most this fraction of its pixels */
  int max_tries;          /* placement attempts per item before it is dropped */
} fb_scene_opts;

/* 64 px, 1..4 items, item side 0.25..0.625 of the canvas (16..40 px at 64),
 * alpha_thresh 32, ignore (16, 48), max_hidden 0.5, 20 tries. */
fb_scene_opts fb_scene_opts_default(void);
/* Checks ranges; the message names the offending field. */
int fb_scene_opts_check(const fb_scene_opts *o, fb_status *st);

typedef struct fb_scene_item {
  int cls;       /* Fashion-MNIST class 0..9 */
  int src_index; /* index of the item's image in the source split */
  int x, y, side; /* where the resized item was pasted (whole item inside the canvas) */
  int area;      /* visible pixels (alpha > alpha_thresh and topmost) */
  int own_area;  /* pixels with alpha > alpha_thresh before any occlusion */
  int bx0, by0, bx1, by1; /* inclusive bounds of the visible pixels */
} fb_scene_item;

typedef struct fb_scene {
  int size;
  uint8_t *px;   /* size*size*3, HWC RGB */
  uint8_t *mask; /* size*size, 0 background, c+1 item class c, 255 ignore */
  int8_t *inst;  /* size*size, index of the owning item, -1 none */
  int label;     /* class of the largest visible item */
  int n_items;   /* items in paste order (later ones on top) */
  fb_scene_item items[FB_SCENE_MAX_ITEMS];
} fb_scene;

/* Seed of the rng of scene (seed, set, split, index); distinct inputs give
 * unrelated streams. */
uint64_t fb_scene_seed(uint64_t seed, int set, int split, int index);

/* Makes one scene from the items of `src` (28x28 grey, labels 0..9) with the
 * rng seeded by `rng_seed`. want_label -1: any scene; 0..9: item placements
 * are redrawn (same random stream) until the largest item has that class
 * (the cls and proxy sets use index % 10, so their classes are balanced).
 * *out is allocated here (free with fb_scene_free). Fails only on bad
 * options or an unusable source set. */
int fb_scene_make(const fb_dataset_u8 *src, const fb_scene_opts *o, uint64_t rng_seed,
                  int want_label, fb_scene *out, fb_status *st);
void fb_scene_free(fb_scene *s);

/* Class names: `fb_scene_class_name(c)` is a file-name-safe name of class c
 * ("tshirt_top", "trouser", ...); image folders use "<c>_<name>" so that the
 * sorted folder order equals the class index. */
const char *fb_scene_class_name(int c);

/* ---- writing the whole demo data set ---------------------------------- */
typedef struct fb_scenes_config {
  const char *out_dir;
  const char *fmnist_dir; /* NULL: the default package directory */
  fb_scene_opts scene;
  uint64_t seed;
  int n_train;  /* scenes per train split of cls, det and seg */
  int n_val;    /* scenes per val split of cls, det and seg */
  int n_proxy;  /* proxy train scenes */
  /* cls and proxy scenes cycle through the 10 classes, so that every class
   * folder has images: n_train, n_val and n_proxy must be 0 or >= 10. */
  int progress; /* 1: progress lines, to log */
  const fb_logger *log; /* NULL: silent */
  int force;    /* 1: write into an existing non-empty out_dir */
} fb_scenes_config;

/* Writes the layout documented in docs/demo-data.md under cfg->out_dir
 * (created if missing). Runs over OpenMP threads; output files do not depend
 * on the thread count. */
int fb_scenes_write(const fb_scenes_config *cfg, fb_status *st);

#endif
