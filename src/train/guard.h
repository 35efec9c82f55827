/* Divergence guard for training loops: a loss that is not finite, or that is
 * more than `factor` times the running mean of the recent losses, means the
 * run diverged. The loops stop there, before the epoch's checkpoint is
 * written, so the last checkpoint still holds a good model, and say which. */
#ifndef FB_TRAIN_GUARD_H
#define FB_TRAIN_GUARD_H

typedef struct fb_loss_guard {
  double factor; /* <= 0: only non-finite losses count */
  double mean;   /* EMA of the accepted losses (decay 0.98) */
  long n;        /* losses seen; spikes are judged after the first 50 */
} fb_loss_guard;

#define FB_LOSS_GUARD_DEFAULT 10.0

void fb_loss_guard_init(fb_loss_guard *g, double factor);
/* 0: a normal loss (it joins the mean); 1: diverged, *ratio = loss / mean
 * (INFINITY for a non-finite loss). */
int fb_loss_guard_check(fb_loss_guard *g, double loss, double *ratio);
/* fb_loss_guard_check with the message of a diverged run: where it happened
 * ("epoch 3 step 17"), and that out_dir's checkpoint predates it. 0 or -1. */
#include "fbnet.h"
int fb_loss_guard_step(fb_loss_guard *g, double loss, const char *where, const char *out_dir,
                       fb_status *st);
/* -1 with the same message for another sign of divergence (what: "a
 * non-finite gradient"). */
int fb_diverged(const char *what, const char *where, const char *out_dir, fb_status *st);

#endif
