/* One training step: the single place where a batch already in the net's
 * inputs becomes a weight update. The Fashion-MNIST trainer, the multi-task
 * trainer and the search all call it:
 *   forward -> divergence guard(s) -> zero grads -> backward
 *   -> gradient reduction (the one point where data-parallel training
 *      averages gradients across processes) -> finite check
 *   -> learning rate from the schedule -> optimizer -> EMA of the weights. */
#ifndef FB_TRAIN_STEP_H
#define FB_TRAIN_STEP_H

#include "dist/dist.h"
#include "fbnet.h"
#include "nn/net.h"
#include "train/ema.h"
#include "train/guard.h"
#include "train/optim.h"
#include "train/schedule.h"

/* Averages (or otherwise combines) the gradients of `p` in place; 0 or -1
 * with st set. NULL in fb_stepper: one process, nothing to combine. */
typedef int (*fb_grad_reduce_fn)(void *ctx, fb_params *p, fb_status *st);

/* Puts micro-batch k (0-based) of this step into the net's inputs; 0 or -1
 * with st set. */
typedef int (*fb_fill_fn)(void *ctx, int k, fb_status *st);

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
  void *ctx; /* passed to watched */
  fb_grad_reduce_fn reduce;
  void *reduce_ctx;
  /* Gradient accumulation: micro (0 or 1: one) forward/backward passes per
   * update, micro-batch k filled by fill(fill_ctx, k) first (fill NULL: the
   * caller filled the only one). The gradients are averaged over the
   * micro-batches, so M micro-batches of b items give the update of one batch
   * of M * b whose BN statistics are taken per b (as on M data-parallel ranks). */
  int micro;
  fb_fill_fn fill;
  void *fill_ctx;
} fb_stepper;

#define FB_STEP_MAX_GUARDS 8

typedef struct fb_step_result {
  float total; /* the total (weighted) loss of the forward pass (mean over micro-batches) */
  double watched[FB_STEP_MAX_GUARDS]; /* the guarded losses (watched[0] = total without a
                                       * callback), means over micro-batches */
  float lr;    /* the learning rate of this update */
} fb_step_result;

/* Update number `step` (0-based; the schedule's index, the optimizer counts
 * step + 1). `where` names the step in messages ("epoch 3 step 17"). 0, or -1
 * with st set when the run diverged (nothing updated then). */
int fb_train_step(const fb_stepper *s, long step, const char *where, fb_step_result *r,
                  fb_status *st);

/* The items of one forward pass when a global batch of `batch` is split over
 * `ranks` processes and `micro` micro-batches each (micro 0 = 1): an error
 * naming the three when it does not divide. */
int fb_split_batch(int batch, int ranks, int micro, int *per_pass, fb_status *st);

/* Data-parallel replicas end an epoch identical: the BN running statistics
 * (and their EMA) averaged over the ranks (the weights already are, since
 * every rank applies the same averaged gradients). Before every checkpoint
 * and evaluation; nothing when d is NULL or one rank. */
int fb_sync_replicas(const fb_dist *d, fb_params *p, fb_ema *ema, fb_status *st);

#endif
