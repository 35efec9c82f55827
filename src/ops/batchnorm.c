/* batchnorm: 2-D batch normalisation with PyTorch semantics.
 *   x (N,C,H,W); par: weight gamma, bias beta, running_mean, running_var,
 *   each (C,1,1,1). m = N*H*W values per channel.
 * training = 1: normalise with the batch mean and biased variance, then
 *   running = (1 - momentum) * running + momentum * batch, where the running
 *   variance takes the UNBIASED batch variance (var * m / (m - 1); with m = 1,
 *   where PyTorch refuses to train, the biased one). Backward is the full BN
 *   backward through the batch statistics.
 * training = 0: normalise with the running statistics; backward is affine.
 * ws holds mean[C] then inverse std[C] of the last forward, for backward. */
#include <math.h>
#include <stdio.h>

#include "ops/op.h"

static int bn_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 1) {
    snprintf(msg, 256, "batchnorm: needs exactly 1 input (got %d)", a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "batchnorm: input shape (%d,%d,%d,%d) has an empty dimension", s.n, s.c, s.h,
             s.w);
    return -1;
  }
  if (!(a->attr.eps > 0) || !(a->attr.momentum >= 0 && a->attr.momentum <= 1)) {
    snprintf(msg, 256, "batchnorm: eps must be > 0 and momentum in [0,1] (got %g, %g)",
             (double)a->attr.eps, (double)a->attr.momentum);
    return -1;
  }
  a->n_par = 4;
  for (int k = 0; k < 4; k++) a->par[k] = fb_shape4(s.c, 1, 1, 1);
  a->out = s;
  return 0;
}

static size_t bn_ws_size(const fb_op_args *a) { return 2 * (size_t)a->in[0].c; }

/* ---- double reference --------------------------------------------------- */

static void bn_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                       double *out, double *ws) {
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w, m = (size_t)N * hw;
  double *mean = ws, *invstd = ws + C, mom = a->attr.momentum, eps = a->attr.eps;
  for (int c = 0; c < C; c++) {
    double mu, var;
    if (a->attr.training) {
      double s = 0, ss = 0;
      for (int n = 0; n < N; n++)
        for (size_t i = 0; i < hw; i++) s += in[0][((size_t)n * C + c) * hw + i];
      mu = s / (double)m;
      for (int n = 0; n < N; n++)
        for (size_t i = 0; i < hw; i++) {
          double d = in[0][((size_t)n * C + c) * hw + i] - mu;
          ss += d * d;
        }
      var = ss / (double)m;
      double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
      par[2][c] = (1 - mom) * par[2][c] + mom * mu;
      par[3][c] = (1 - mom) * par[3][c] + mom * unbiased;
    } else {
      mu = par[2][c];
      var = par[3][c];
    }
    mean[c] = mu;
    invstd[c] = 1.0 / sqrt(var + eps);
    for (int n = 0; n < N; n++)
      for (size_t i = 0; i < hw; i++) {
        size_t j = ((size_t)n * C + c) * hw + i;
        out[j] = par[0][c] * (in[0][j] - mu) * invstd[c] + par[1][c];
      }
  }
}

static void bn_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                       const double *out, const double *dout, double *const *din,
                       double *const *dpar, const double *ws) {
  (void)out;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w, m = (size_t)N * hw;
  const double *mean = ws, *invstd = ws + C;
  for (int c = 0; c < C; c++) {
    double sdy = 0, sdyxh = 0;
    for (int n = 0; n < N; n++)
      for (size_t i = 0; i < hw; i++) {
        size_t j = ((size_t)n * C + c) * hw + i;
        sdy += dout[j];
        sdyxh += dout[j] * (in[0][j] - mean[c]) * invstd[c];
      }
    if (dpar[0]) dpar[0][c] += sdyxh;
    if (dpar[1]) dpar[1][c] += sdy;
    if (!din[0]) continue;
    for (int n = 0; n < N; n++)
      for (size_t i = 0; i < hw; i++) {
        size_t j = ((size_t)n * C + c) * hw + i;
        double g = dout[j];
        if (a->attr.training) {
          double xh = (in[0][j] - mean[c]) * invstd[c];
          g = g - sdy / (double)m - xh * sdyxh / (double)m;
        }
        din[0][j] += par[0][c] * invstd[c] * g;
      }
  }
}

/* ---- fast float kernels: one channel per work item, two passes --------- */

static void bn_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                   float *out, float *ws) {
  (void)ctx;
  int N = a->in[0].n, C = a->in[0].c, training = a->attr.training;
  size_t hw = (size_t)a->in[0].h * a->in[0].w, m = (size_t)N * hw;
  const float *x = in[0];
  float *gamma = par[0], *beta = par[1], *rmean = par[2], *rvar = par[3];
  float *mean = ws, *invstd = ws + C;
  double mom = a->attr.momentum, eps = a->attr.eps;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double mu, var;
    if (training) {
      /* pass 1: sums shifted by the channel's first value, in double, so a
       * large mean does not cancel the variance away */
      double shift = x[(size_t)c * hw], s = 0, ss = 0;
      for (int n = 0; n < N; n++) {
        const float *xp = x + ((size_t)n * C + c) * hw;
#pragma omp simd reduction(+ : s, ss)
        for (size_t i = 0; i < hw; i++) {
          double v = (double)xp[i] - shift;
          s += v;
          ss += v * v;
        }
      }
      double ms = s / (double)m;
      mu = shift + ms;
      var = ss / (double)m - ms * ms;
      if (var < 0) var = 0;
      double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
      rmean[c] = (float)((1 - mom) * rmean[c] + mom * mu);
      rvar[c] = (float)((1 - mom) * rvar[c] + mom * unbiased);
    } else {
      mu = rmean[c];
      var = rvar[c];
    }
    double is = 1.0 / sqrt(var + eps);
    mean[c] = (float)mu;
    invstd[c] = (float)is;
    /* pass 2: y = (x - mu) * k + beta (centred first: no cancellation) */
    float k = (float)(gamma[c] * is), b = beta[c], muf = (float)mu;
    for (int n = 0; n < N; n++) {
      const float *xp = x + ((size_t)n * C + c) * hw;
      float *yp = out + ((size_t)n * C + c) * hw;
      for (size_t i = 0; i < hw; i++) yp[i] = (xp[i] - muf) * k + b;
    }
  }
}

static void bn_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout, float *const *din,
                   float *const *dpar, const float *ws) {
  (void)ctx, (void)out;
  int N = a->in[0].n, C = a->in[0].c, training = a->attr.training;
  size_t hw = (size_t)a->in[0].h * a->in[0].w, m = (size_t)N * hw;
  const float *x = in[0], *gamma = par[0], *mean = ws, *invstd = ws + C;
  float *dx = din[0], *dgamma = dpar[0], *dbeta = dpar[1];
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    /* pass 1: sum(dy) and sum(dy * x) -> sum(dy * xhat) */
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < N; n++) {
      const float *xp = x + ((size_t)n * C + c) * hw, *gp = dout + ((size_t)n * C + c) * hw;
#pragma omp simd reduction(+ : sdy, sdyx)
      for (size_t i = 0; i < hw; i++) {
        sdy += gp[i];
        sdyx += (double)gp[i] * xp[i];
      }
    }
    double mu = mean[c], is = invstd[c];
    double sdyxh = (sdyx - mu * sdy) * is;
    if (dgamma) dgamma[c] += (float)sdyxh;
    if (dbeta) dbeta[c] += (float)sdy;
    if (!dx) continue;
    /* pass 2: dx += k * dy + kx * (x - mu) + k0; in training
     * dx = k * (dy - sdy/m - xhat * sdyxh/m) with xhat = (x - mu) * is */
    double k = gamma[c] * is, kx = 0, k0 = 0;
    if (training) {
      kx = -k * is * sdyxh / (double)m;
      k0 = -k * sdy / (double)m;
    }
    float kf = (float)k, kxf = (float)kx, k0f = (float)k0, muf = (float)mu;
    for (int n = 0; n < N; n++) {
      const float *xp = x + ((size_t)n * C + c) * hw, *gp = dout + ((size_t)n * C + c) * hw;
      float *dp = dx + ((size_t)n * C + c) * hw;
      for (size_t i = 0; i < hw; i++) dp[i] += kf * gp[i] + kxf * (xp[i] - muf) + k0f;
    }
  }
}

static void bn_random_case(fb_op_args *a, fb_rng *rng) {
  a->n_in = 1;
  a->in[0] = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 8),
                       1 + (int)fb_rng_below(rng, 7), 1 + (int)fb_rng_below(rng, 7));
  a->attr = fb_attr_default();
  a->attr.momentum = 0.05f + 0.45f * (float)fb_rng_uniform(rng);
  a->attr.eps = fb_rng_below(rng, 2) ? 1e-5f : 1e-3f;
  a->attr.training = 1;
}

const fb_op fb_op_batchnorm = {
    .name = "batchnorm",
    .kind = FB_OPK_NORM,
    .bwd_reads_in = 1,
    .infer = bn_infer,
    .ws_size = bn_ws_size,
    .fwd_ref = bn_fwd_ref,
    .bwd_ref = bn_bwd_ref,
    .fwd = bn_fwd,
    .bwd = bn_bwd,
    .random_case = bn_random_case,
    .n_diff_in = 1,
    .n_diff_par = 2,
    .par_name = {"weight", "bias", "running_mean", "running_var"},
    .par_group = {FB_PG_NO_DECAY, FB_PG_NO_DECAY, FB_PG_BUFFER, FB_PG_BUFFER},
    .par_init = {FB_INIT_ONE, FB_INIT_ZERO, FB_INIT_ZERO, FB_INIT_ONE},
};
