#include "train/optim.h"

#include <math.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <stdint.h>
#include <string.h>

#include "core/status.h"

fb_optim_cfg fb_optim_sgd_default(void) {
  fb_optim_cfg c;
  memset(&c, 0, sizeof c);
  c.kind = FB_OPT_SGD;
  c.lr = 0.1f;
  c.momentum = 0.9f;
  c.nesterov = 1;
  c.weight_decay = 4e-5f;
  c.beta1 = 0.9f;
  c.beta2 = 0.999f;
  c.eps = 1e-8f;
  return c;
}

fb_optim_cfg fb_optim_adamw_default(void) {
  fb_optim_cfg c = fb_optim_sgd_default();
  c.kind = FB_OPT_ADAMW;
  c.lr = 1e-3f;
  c.momentum = 0.0f;
  c.nesterov = 0;
  c.weight_decay = 0.01f;
  return c;
}

int fb_optim_check(const fb_optim_cfg *c, fb_status *st) {
  if (c->kind != FB_OPT_SGD && c->kind != FB_OPT_ADAMW)
    return fb_fail(st, "optim: kind %d is neither SGD nor AdamW", (int)c->kind);
  if (!(c->lr >= 0.0f)) return fb_fail(st, "optim: lr %g must be >= 0", (double)c->lr);
  if (!(c->weight_decay >= 0.0f))
    return fb_fail(st, "optim: weight_decay %g must be >= 0", (double)c->weight_decay);
  if (c->kind == FB_OPT_SGD) {
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
      return fb_fail(st, "optim: momentum %g outside [0, 1)", (double)c->momentum);
    if (c->nesterov && c->momentum == 0.0f)
      return fb_fail(st, "optim: nesterov needs momentum > 0");
  } else {
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
      return fb_fail(st, "optim: betas (%g, %g) outside [0, 1)", (double)c->beta1,
                     (double)c->beta2);
    if (!(c->eps > 0.0f)) return fb_fail(st, "optim: eps %g must be > 0", (double)c->eps);
  }
  if (!(c->clip_norm >= 0.0f))
    return fb_fail(st, "optim: clip_norm %g must be >= 0", (double)c->clip_norm);
  return 0;
}

/* Float arithmetic in PyTorch's order, so results agree to the last bits. */
void fb_sgd_update(float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                   float lr, float momentum, int nesterov, float wd) {
  const float neg_lr = -lr;
  if (momentum == 0.0f) {
    for (size_t i = 0; i < n; i++) {
      float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
      p[i] = p[i] + neg_lr * d;
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    float b = buf[i] * momentum + d;
    buf[i] = b;
    d = nesterov ? d + momentum * b : b;
    p[i] = p[i] + neg_lr * d;
  }
}

void fb_adamw_update(float *restrict p, const float *restrict g, float *restrict m,
                     float *restrict v, size_t n, float lr, float beta1, float beta2, float eps,
                     float wd, long step) {
  if (step < 1) step = 1;
  /* scalars as PyTorch computes them (Python doubles), then used as float */
  const float decay = wd != 0.0f ? (float)(1.0 - (double)lr * (double)wd) : 1.0f;
  const double bc1 = 1.0 - pow((double)beta1, (double)step);
  const double bc2 = 1.0 - pow((double)beta2, (double)step);
  const float neg_step_size = (float)(-((double)lr / bc1));
  const float bc2_sqrt = (float)sqrt(bc2);
  const float omb1 = (float)(1.0 - (double)beta1), omb2 = (float)(1.0 - (double)beta2);
  size_t i = 0;
#ifdef __AVX__
  /* the scalar loop below, 8 lanes at a time with the same float operations
   * in the same order (a libm sqrtf call would keep gcc from vectorising) */
  const __m256 vdecay = _mm256_set1_ps(decay), vb1 = _mm256_set1_ps(beta1),
               vb2 = _mm256_set1_ps(beta2), vomb1 = _mm256_set1_ps(omb1),
               vomb2 = _mm256_set1_ps(omb2), vbc2 = _mm256_set1_ps(bc2_sqrt),
               veps = _mm256_set1_ps(eps), vss = _mm256_set1_ps(neg_step_size);
  for (; i + 8 <= n; i += 8) {
    __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdecay);
    __m256 gi = _mm256_loadu_ps(g + i);
    __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), vb1), _mm256_mul_ps(vomb1, gi));
    __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vb2),
                              _mm256_mul_ps(vomb2, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2), veps);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_mul_ps(vss, _mm256_div_ps(mi, denom))));
  }
#endif
  for (; i < n; i++) {
    float pi = p[i] * decay;
    float gi = g[i];
    float mi = m[i] * beta1 + omb1 * gi;
    float vi = v[i] * beta2 + omb2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * (mi / denom);
  }
}

void fb_optim_step(fb_params *s, const fb_optim_cfg *c, float lr, long step) {
  if (c->clip_norm > 0.0f) fb_params_clip_grad_norm(s, c->clip_norm);
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < s->n; i++) {
    const fb_param *q = &s->p[i];
    if (q->group == FB_PG_BUFFER || (s->used && !s->used[i])) continue;
    const long t = s->steps ? (long)(s->steps[i] += 1.0f) : step;
    float wd = q->group == FB_PG_WEIGHT ? c->weight_decay : 0.0f;
    float *p = s->data + q->offset, *g = s->grad + q->offset;
    float *m1 = s->m1 + q->offset, *m2 = s->m2 + q->offset;
    if (c->kind == FB_OPT_SGD)
      fb_sgd_update(p, g, m1, q->numel, lr, c->momentum, c->nesterov, wd);
    else
      fb_adamw_update(p, g, m1, m2, q->numel, lr, c->beta1, c->beta2, c->eps, wd, t);
  }
}

void fb_optim_reset(fb_params *s) {
  if (s->m1) memset(s->m1, 0, s->total * sizeof(float));
  if (s->m2) memset(s->m2, 0, s->total * sizeof(float));
}

double fb_params_grad_norm(const fb_params *s) {
  double sum = 0.0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : sum)
  for (int i = 0; i < s->n; i++) {
    const fb_param *q = &s->p[i];
    if (q->group == FB_PG_BUFFER) continue;
    const float *g = s->grad + q->offset;
    double acc = 0.0;
    for (size_t k = 0; k < q->numel; k++) acc += (double)g[k] * g[k];
    sum += acc;
  }
  return sqrt(sum);
}

double fb_params_clip_grad_norm(fb_params *s, float max_norm) {
  double norm = fb_params_grad_norm(s);
  double coef = (double)max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const float f = (float)coef;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < s->n; i++) {
      const fb_param *q = &s->p[i];
      if (q->group == FB_PG_BUFFER) continue;
      float *g = s->grad + q->offset;
      for (size_t k = 0; k < q->numel; k++) g[k] *= f;
    }
  }
  return norm;
}

int fb_params_grad_finite(const fb_params *s) {
  int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad)
  for (int i = 0; i < s->n; i++) {
    const fb_param *q = &s->p[i];
    if (q->group == FB_PG_BUFFER) continue;
    const float *g = s->grad + q->offset;
    /* Inf/NaN: all exponent bits set; an integer test vectorises */
    uint32_t hit = 0;
    for (size_t k = 0; k < q->numel; k++) {
      uint32_t u;
      memcpy(&u, &g[k], sizeof u);
      hit |= (u & 0x7f800000u) == 0x7f800000u;
    }
    bad |= hit != 0;
  }
  return !bad;
}
