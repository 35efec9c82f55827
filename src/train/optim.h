/* Optimizers over the parameter store, matching PyTorch exactly:
 *
 * SGD (torch.optim.SGD, dampening 0), for every trained element:
 *   g = grad + wd * p          (wd only on FB_PG_WEIGHT slots)
 *   b = mu * b + g             (b in m1; zero before the first step, which
 *                               equals PyTorch's b = g on step 1)
 *   g = nesterov ? g + mu * b : b     (mu == 0: g unchanged, no buffer)
 *   p = p - lr * g
 * AdamW (torch.optim.AdamW), step t = 1, 2, ...:
 *   p = p * (1 - lr * wd)      (decoupled; wd only on FB_PG_WEIGHT slots)
 *   m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g   (m1, m2)
 *   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * FB_PG_NO_DECAY slots are updated without weight decay; FB_PG_BUFFER slots
 * (BN running statistics) are never touched. AdamW with wd = 0 is Adam. */
#ifndef FB_TRAIN_OPTIM_H
#define FB_TRAIN_OPTIM_H

#include <stddef.h>

#include "core/params.h"
#include "fbnet.h"

typedef enum fb_optim_kind { FB_OPT_SGD = 0, FB_OPT_ADAMW } fb_optim_kind;

typedef struct fb_optim_cfg {
  fb_optim_kind kind;
  float lr;                /* base learning rate (the schedule's input) */
  float momentum;          /* SGD */
  int nesterov;            /* SGD */
  float weight_decay;      /* SGD: L2 added to the gradient; AdamW: decoupled */
  float beta1, beta2, eps; /* AdamW */
  float clip_norm;         /* > 0: clip the global gradient norm first (see below) */
} fb_optim_cfg;

/* SGD lr 0.1, momentum 0.9, nesterov, wd 4e-5 (docs/method.md section 4). */
fb_optim_cfg fb_optim_sgd_default(void);
/* AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01 (PyTorch defaults). */
fb_optim_cfg fb_optim_adamw_default(void);
int fb_optim_check(const fb_optim_cfg *c, fb_status *st);

/* One update of every trained slot with learning rate lr. `step` is the
 * 1-based number of this update (AdamW bias correction; values < 1 are taken
 * as 1). With c->clip_norm > 0 the gradients are clipped first. */
void fb_optim_step(fb_params *s, const fb_optim_cfg *c, float lr, long step);

/* Clears the optimizer state (m1, m2), e.g. when training restarts. */
void fb_optim_reset(fb_params *s);

/* The same updates over raw arrays (e.g. for architecture logits kept
 * outside the store). buf / m / v must start at zero. */
void fb_sgd_update(float *p, const float *g, float *buf, size_t n, float lr, float momentum,
                   int nesterov, float wd);
void fb_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float wd, long step);

/* Global L2 norm of the gradients of all trained slots (double accumulation). */
double fb_params_grad_norm(const fb_params *s);
/* torch.nn.utils.clip_grad_norm_: when the norm exceeds max_norm, scales all
 * trained gradients by max_norm / (norm + 1e-6). Returns the norm before
 * clipping. */
double fb_params_clip_grad_norm(fb_params *s, float max_norm);
/* 1 when every gradient element of every trained slot is finite, else 0. */
int fb_params_grad_finite(const fb_params *s);

#endif
