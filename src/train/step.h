/* One training step: the single place where a batch already in the net's
 * inputs becomes a weight update. The Fashion-MNIST trainer, the multi-task
 * trainer and the search all call it:
 *   forward -> divergence guard(s) -> zero grads -> backward
 *   -> gradient reduction (the one point where data-parallel training
 *      averages gradients across processes) -> finite check
 *   -> learning rate from the schedule -> optimizer -> EMA of the weights. */
#ifndef FB_TRAIN_STEP_H
#define FB_TRAIN_STEP_H

#include "fbnet.h"
#include "nn/net.h"
#include "train/ema.h"
#include "train/guard.h"
#include "train/optim.h"
#include "train/schedule.h"

/* Averages (or otherwise combines) the gradients of `p` in place; 0 or -1
 * with st set. NULL in fb_stepper: one process, nothing to combine. */
typedef int (*fb_grad_reduce_fn)(void *ctx, fb_params *p, fb_status *st);

/* The losses the guards watch, read after the forward pass: n of them into
 * out (NULL in fb_stepper: one guard on the total loss). */
typedef void (*fb_watched_losses_fn)(void *ctx, double *out);

typedef struct fb_stepper {
  fb_net *net;
  const fb_optim_cfg *optim;
  const fb_schedule *sched;
  fb_ema *ema;          /* NULL: no weight averaging */
  const char *out_dir;  /* named by the divergence message (its checkpoint is the last good one) */
  int n_guards;         /* 1, or one per watched loss (the search: one per task) */
  fb_loss_guard *guard; /* n_guards of them */
  const char *const *guard_label; /* NULL, or n_guards labels ("cls") for the message */
  fb_watched_losses_fn watched;
  fb_grad_reduce_fn reduce;
  void *ctx; /* passed to watched and reduce */
} fb_stepper;

#define FB_STEP_MAX_GUARDS 8

typedef struct fb_step_result {
  float total; /* the total (weighted) loss of the forward pass */
  double watched[FB_STEP_MAX_GUARDS]; /* the guarded losses (watched[0] = total without a callback) */
  float lr;    /* the learning rate of this update */
} fb_step_result;

/* Update number `step` (0-based; the schedule's index, the optimizer counts
 * step + 1). `where` names the step in messages ("epoch 3 step 17"). 0, or -1
 * with st set when the run diverged (nothing updated then). */
int fb_train_step(const fb_stepper *s, long step, const char *where, fb_step_result *r,
                  fb_status *st);

#endif
