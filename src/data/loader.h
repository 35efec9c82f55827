/* Multi-task batch loader: augmentation that moves boxes and masks with the
 * image, batch assembly into fb_batch, and background prefetching.
 *
 * Geometry of one item (S = cfg.size; all coordinates are continuous pixel
 * coordinates, pixel (X, Y) covers [X, X+1) x [Y, Y+1)):
 *   a source point (u, v) goes to (u * s + off_x, v * s + off_y), then, when
 *   flipped, x -> S - x. Eval: s = S / max(h, w) (the longer side becomes S),
 *   off = 0, the rest of the canvas (bottom/right) is padding, no flip.
 *   Train: s = S / max(h, w) * U(scale_min, scale_max); integer offsets drawn
 *   uniformly so that a smaller image lies fully inside the canvas (random
 *   pad) and a larger one covers it (random crop); flip with probability 1/2
 *   when hflip.
 * Images are resampled bilinearly (half-pixel centres: output pixel centre
 * X + 0.5 reads the source at (X + 0.5 - off) / s); an output pixel whose
 * centre falls outside the source image is padding: 0 after normalisation
 * (the mean colour) in the image, 255 (ignore) in the mask. Masks are
 * resampled nearest (the source pixel that contains the centre). Boxes are
 * mapped exactly (x * s + off, w * s; flip: x' = S - x - w), clipped to the
 * canvas and dropped when the clipped width or height is below 1 pixel
 * (crowd boxes too); area is scaled by s^2 and by the kept fraction.
 * Normalisation: (p / 255 - mean[c]) / std[c]; defaults mean 0.5, std 0.25 for
 * every channel (a fixed choice that keeps [0, 255] inside [-2, 2]).
 * Channels: a grey sample is replicated into 3 output channels; an RGB sample
 * becomes grey with 0.299 R + 0.587 G + 0.114 B when channels is 1.
 *
 * Randomness: the decisions of batch k of epoch e come from an fb_rng seeded
 * by a hash of (seed, e, k), drawn serially per item (scale, off_x, off_y,
 * flip), so batches do not depend on the thread count or on prefetching.
 * The item order of a training epoch is fb_epoch_perm(seed, epoch); eval
 * goes in data set order and its last batch may be short (fb_batch.n). */
#ifndef FB_DATA_LOADER_H
#define FB_DATA_LOADER_H

#include <stdint.h>

#include "core/rng.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "fbnet.h"

typedef struct fb_loader_cfg {
  int size;             /* S: items are S x S */
  int channels;         /* 1 or 3 output channels */
  float mean[3], std[3];
  int train;            /* 1: shuffle + augment; 0: eval geometry, data set order */
  int hflip;            /* train: random horizontal flip */
  float scale_min, scale_max; /* train: relative scale range (1 = longer side fills S) */
  int batch;            /* items per batch */
  uint64_t seed;
  int threads;          /* OpenMP threads rendering the items of a batch (>= 1) */
  int prefetch;         /* batches built ahead by a background thread (0: in next()) */
  int drop_last;        /* train: skip a short last batch (eval never drops) */
  /* training, data-parallel: the epoch is cut into global batches of
   * batch * parts items whose geometry is drawn as one batch of that size; this
   * loader yields parts first .. first + count - 1 of each (batch items each,
   * drop_last), so a global batch does not depend on how it is split over
   * ranks and micro-batches. parts 0 or 1: the batches as they are. */
  int parts, part_first, part_count;
  int content;          /* eval, 0: the longer side fills S, top-left, padding 0 (the mean);
                           > 0: the longer side becomes `content`, centred, padding black
                           (pixel 0): the Fashion-MNIST framing of src/data/augment.h */
} fb_loader_cfg;

/* Defaults: mean 0.5 / std 0.25, hflip on, scale 0.75..1.25, threads 1,
 * prefetch 2, drop_last 0, seed 1. */
fb_loader_cfg fb_loader_cfg_default(int size, int channels, int batch, int train);
int fb_loader_cfg_check(const fb_loader_cfg *c, fb_status *st);

/* The geometric decisions for one item. */
typedef struct fb_geom {
  float scale;
  int off_x, off_y;
  int flip;
} fb_geom;

/* Draws the geometry of an h x w item (eval: deterministic, rng unused and may be NULL). */
fb_geom fb_geom_draw(const fb_loader_cfg *c, int h, int w, fb_rng *rng);
/* Maps a box into the S x S canvas; returns 0 when it is dropped (clipped
 * width or height < 1 px), 1 when *out holds the moved box. */
int fb_geom_box(const fb_geom *g, int size, const fb_box *in, fb_box *out);
/* Maps a box predicted in item i of b back to original image pixels
 * (valid for unflipped items: eval batches). */
void fb_batch_box_to_orig(const fb_batch *b, int i, fb_box *box);
/* The S x S per-pixel map m of item i of b (eval geometry) resampled to the
 * original h x w image, nearest (the batch pixel under each pixel centre):
 * malloc'd. */
uint8_t *fb_batch_mask_to_orig(const fb_batch *b, int i, const uint8_t *m, int S, int h, int w);

typedef struct fb_loader fb_loader;

/* The data set is borrowed and must outlive the loader. Fails for a bad
 * config, an empty data set or a sample with an unusable image. */
fb_loader *fb_loader_create(const fb_mt_dataset *d, const fb_loader_cfg *cfg, fb_status *st);
/* Batches per epoch. */
int fb_loader_num_batches(const fb_loader *l);
/* Begins epoch `epoch` (stopping a running one); order and augmentation are
 * pure functions of (seed, epoch). */
void fb_loader_start_epoch(fb_loader *l, long epoch);
/* The next batch, or NULL at the end of the epoch (or before any epoch).
 * The batch stays valid until the next call of fb_loader_next,
 * fb_loader_start_epoch or fb_loader_free. */
const fb_batch *fb_loader_next(fb_loader *l);
/* Stops the background thread (also mid-epoch) and frees everything. */
void fb_loader_free(fb_loader *l);

#endif
