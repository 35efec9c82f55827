/* Exponential moving average of the weights, for evaluation.
 *
 * Every slot of the store is tracked, trained ones and buffers. Trained slots
 * follow  ema = d * ema + (1 - d) * w  with the decay warmed up as
 * d = min(decay, (1 + step) / (10 + step)), so early averages are not
 * dominated by the random initialisation. BN running statistics (buffers) are
 * averaged the same way by default (torchvision's ExponentialMovingAverage
 * with use_buffers=True); with copy_buffers = 1 they are copied from the live
 * model instead. Either way they only approximate statistics of the averaged
 * weights; recalibrating BN on training images is more exact.
 *
 * fb_ema_swap exchanges the store's values with the averages, so
 *   swap; evaluate; swap
 * evaluates with the EMA weights and restores the training weights. */
#ifndef FB_TRAIN_EMA_H
#define FB_TRAIN_EMA_H

#include <stddef.h>

#include "core/params.h"

typedef struct fb_ema {
  float *shadow; /* same layout as fb_params.data */
  size_t total;
  float decay;
  int copy_buffers;
} fb_ema;

/* Starts the average at the store's current values. */
void fb_ema_init(fb_ema *e, const fb_params *s, float decay);
void fb_ema_free(fb_ema *e);
/* The decay used at `step` (0-based). */
float fb_ema_decay_at(const fb_ema *e, long step);
void fb_ema_update(fb_ema *e, const fb_params *s, long step);
void fb_ema_swap(fb_ema *e, fb_params *s);

#endif
