/* Batch assembly for grey 8-bit images (Fashion-MNIST): geometry, random
 * crop/flip and normalisation into a float batch (n, 1, S, S).
 *
 * Geometry: the h x w source image is resized (bilinear, half-pixel centres,
 * PyTorch align_corners=False) to content x content and centred in an S x S
 * canvas whose background is the normalised value of black (pixel 0), e.g.
 * S=32, content=28: pad 2 each side; S=64, content=56: resize 28->56, pad 4.
 * Training augmentation (when enabled) then flips the canvas horizontally
 * with probability 1/2 and shifts it by dy, dx in [-crop_pad, crop_pad]
 * (torchvision RandomCrop(S, padding=crop_pad) with background fill); pixels
 * shifted out are lost and uncovered ones take the background value.
 * Normalisation: (x / 255 - mean) / std.
 *
 * Determinism: the random decisions of a batch are drawn serially from the
 * caller's fb_rng (per image: dy, dx, flip, in that order; a decision that is
 * disabled draws nothing), then the images are produced in parallel; the
 * result depends only on the rng state, not on the thread count. */
#ifndef FB_DATA_AUGMENT_H
#define FB_DATA_AUGMENT_H

#include <stdint.h>

#include "core/rng.h"
#include "data/fmnist.h"
#include "fbnet.h"

#define FB_FMNIST_MEAN 0.2860f
#define FB_FMNIST_STD 0.3530f

typedef struct fb_aug_cfg {
  int size;     /* S: output is S x S */
  int content;  /* side the source image is resized to, 1..S */
  int crop_pad; /* training: random shift of up to crop_pad pixels (0: off) */
  int hflip;    /* training: random horizontal flip (0: off) */
  float mean, std;
} fb_aug_cfg;

/* The decisions for one image. */
typedef struct fb_aug_draw {
  int dy, dx; /* shift of the canvas content, in pixels */
  int flip;   /* mirror left-right before the shift */
} fb_aug_draw;

/* Defaults for canvas size S: content = S for S <= 28, 28 for S < 32,
 * round(7 S / 8) from 32 on (28 in 32, 56 in 64); crop_pad = S / 8 (4 at 32)
 * hflip on; Fashion-MNIST mean/std. */
fb_aug_cfg fb_aug_default(int size);
int fb_aug_check(const fb_aug_cfg *c, fb_status *st);

/* Draws the decisions for one image (all zero when train == 0). */
fb_aug_draw fb_aug_draw_one(const fb_aug_cfg *c, int train, fb_rng *rng);

/* Renders one h x w image into out (S x S floats) with the given decisions. */
void fb_aug_render(const fb_aug_cfg *c, const uint8_t *img, int h, int w, fb_aug_draw d,
                   float *out);

/* Batch: out (n, 1, S, S) from images idx[0..n) of ds (idx NULL: items
 * 0..n-1); labels_out (n floats, class index) may be NULL. train == 0: no
 * augmentation and rng is not touched (may be NULL). Returns -1 for a bad
 * config or an index outside the data set. */
int fb_aug_batch(const fb_aug_cfg *c, const fb_dataset_u8 *ds, const int *idx, int n, int train,
                 fb_rng *rng, float *out, float *labels_out, fb_status *st);

/* fb_aug_batch with the decisions already drawn (draws[i] for item i): a
 * data-parallel rank draws the whole global batch's decisions, in order, and
 * renders only its own part, so the batch does not depend on the rank count. */
int fb_aug_batch_drawn(const fb_aug_cfg *c, const fb_dataset_u8 *ds, const int *idx, int n,
                       const fb_aug_draw *draws, float *out, float *labels_out, fb_status *st);

/* Fisher-Yates shuffle of idx[0..n) in place. */
void fb_shuffle(int *idx, int n, fb_rng *rng);
/* The permutation of 0..n-1 for `epoch` of a run seeded with `seed`: a pure
 * function of (seed, epoch), so a resumed run sees the same order. */
void fb_epoch_perm(int *idx, int n, uint64_t seed, long epoch);

#endif
