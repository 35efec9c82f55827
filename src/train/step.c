/* The one training step (step.h). */
#include "train/step.h"

#include <stdio.h>
#include <string.h>

#include "core/status.h"

static int guard_losses(const fb_stepper *s, const char *where, fb_step_result *r,
                        fb_status *st) {
  if (s->watched) s->watched(s->ctx, r->watched);
  else r->watched[0] = r->total;
  for (int k = 0; k < s->n_guards; k++) {
    char at[160];
    if (s->guard_label) snprintf(at, sizeof at, "%s (%s)", where, s->guard_label[k]);
    else snprintf(at, sizeof at, "%s", where);
    if (fb_loss_guard_step(&s->guard[k], r->watched[k], at, s->out_dir, st)) return -1;
  }
  return 0;
}

int fb_train_step(const fb_stepper *s, long step, const char *where, fb_step_result *r,
                  fb_status *st) {
  fb_params *p = &s->net->g.params;
  if (s->n_guards < 1 || s->n_guards > FB_STEP_MAX_GUARDS)
    return fb_fail(st, "internal: %d loss guards (1..%d)", s->n_guards, FB_STEP_MAX_GUARDS);
  memset(r, 0, sizeof *r);
  r->total = fb_net_forward(s->net, 1);
  if (guard_losses(s, where, r, st)) return -1;
  fb_params_zero_grad(p);
  fb_net_backward(s->net);
  if (s->reduce && s->reduce(s->ctx, p, st)) return -1; /* data-parallel: average here */
  if (!fb_params_grad_finite(p)) return fb_diverged("a non-finite gradient", where, s->out_dir, st);
  r->lr = fb_lr_at(s->sched, step);
  fb_optim_step(p, s->optim, r->lr, step + 1);
  if (s->ema) fb_ema_update(s->ema, p, step);
  return 0;
}
