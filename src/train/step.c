/* The one training step (step.h). */
#include "train/step.h"

#include <stdio.h>
#include <string.h>

#include "core/status.h"

static int guard_losses(const fb_stepper *s, const char *where, float total, double *watched,
                        fb_status *st) {
  if (s->watched) s->watched(s->ctx, watched);
  else watched[0] = total;
  for (int k = 0; k < s->n_guards; k++) {
    char at[160];
    if (s->guard_label) snprintf(at, sizeof at, "%s (%s)", where, s->guard_label[k]);
    else snprintf(at, sizeof at, "%s", where);
    if (fb_loss_guard_step(&s->guard[k], watched[k], at, s->out_dir, st)) return -1;
  }
  return 0;
}

/* Forward and backward of every micro-batch into the zeroed gradients, which
 * end as their mean; r holds the mean losses. */
static int accumulate(const fb_stepper *s, const char *where, fb_step_result *r, fb_status *st) {
  fb_params *p = &s->net->g.params;
  const int M = s->micro > 1 ? s->micro : 1;
  fb_params_zero_grad(p);
  for (int k = 0; k < M; k++) {
    if (s->fill && s->fill(s->fill_ctx, k, st)) return -1;
    double watched[FB_STEP_MAX_GUARDS] = {0};
    const float total = fb_net_forward(s->net, 1);
    if (guard_losses(s, where, total, watched, st)) return -1;
    fb_net_backward(s->net); /* accumulates into grad */
    r->total += total / M;
    for (int g = 0; g < s->n_guards; g++) r->watched[g] += watched[g] / M;
  }
  if (M > 1) {
    const float inv = 1.0f / (float)M;
    for (size_t i = 0; i < p->total; i++) p->grad[i] *= inv;
  }
  return 0;
}

int fb_train_step(const fb_stepper *s, long step, const char *where, fb_step_result *r,
                  fb_status *st) {
  fb_params *p = &s->net->g.params;
  if (s->n_guards < 1 || s->n_guards > FB_STEP_MAX_GUARDS)
    return fb_fail(st, "internal: %d loss guards (1..%d)", s->n_guards, FB_STEP_MAX_GUARDS);
  if (s->micro > 1 && !s->fill)
    return fb_fail(st, "internal: %d micro-batches and no way to fill them", s->micro);
  memset(r, 0, sizeof *r);
  if (accumulate(s, where, r, st)) return -1;
  if (s->reduce && s->reduce(s->reduce_ctx, p, st)) return -1; /* data-parallel: average here */
  if (!fb_params_grad_finite(p)) return fb_diverged("a non-finite gradient", where, s->out_dir, st);
  r->lr = fb_lr_at(s->sched, step);
  fb_optim_step(p, s->optim, r->lr, step + 1);
  if (s->ema) fb_ema_update(s->ema, p, step);
  return 0;
}

int fb_split_batch(int batch, int ranks, int micro, int *per_pass, fb_status *st) {
  const int m = micro > 1 ? micro : 1, parts = ranks * m;
  if (ranks < 1 || batch < parts || batch % parts)
    return fb_fail(st, "--batch %d (the global batch) must be a multiple of %d ranks x %d "
                   "micro-batches = %d", batch, ranks, m, parts);
  *per_pass = batch / parts;
  return 0;
}

int fb_sync_replicas(const fb_dist *d, fb_params *p, fb_ema *ema, fb_status *st) {
  if (!d || d->size <= 1) return 0;
  if (fb_dist_buffers_mean(d, p, st)) return -1;
  if (!ema) return 0;
  fb_params shadow = *p; /* the EMA's values in the store's layout */
  shadow.data = ema->shadow;
  return fb_dist_buffers_mean(d, &shadow, st);
}
