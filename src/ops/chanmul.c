/* chanmul: per-channel scaling (squeeze-excitation), x (N,C,H,W) times
 * s (N,C,1,1) broadcast over H,W. Both inputs carry gradients:
 *   dx = dy * s,  ds = sum_hw dy * x. */
#include <stdio.h>

#include "ops/op.h"

static int chanmul_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 2) {
    snprintf(msg, 256, "chanmul: needs 2 inputs (x, s), got %d", a->n_in);
    return -1;
  }
  fb_shape x = a->in[0], s = a->in[1];
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1) {
    snprintf(msg, 256, "chanmul: x shape (%d,%d,%d,%d) has an empty dimension", x.n, x.c, x.h, x.w);
    return -1;
  }
  if (s.n != x.n || s.c != x.c || s.h != 1 || s.w != 1) {
    snprintf(msg, 256, "chanmul: s shape (%d,%d,%d,%d) must be (%d,%d,1,1) for x (%d,%d,%d,%d)",
             s.n, s.c, s.h, s.w, x.n, x.c, x.n, x.c, x.h, x.w);
    return -1;
  }
  a->n_par = 0;
  a->out = x;
  return 0;
}

static void chanmul_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                            double *out, double *ws) {
  (void)par, (void)ws;
  size_t planes = (size_t)a->in[0].n * a->in[0].c, hw = (size_t)a->in[0].h * a->in[0].w;
  for (size_t p = 0; p < planes; p++)
    for (size_t i = 0; i < hw; i++) out[p * hw + i] = in[0][p * hw + i] * in[1][p];
}

static void chanmul_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                            const double *out, const double *dout, double *const *din,
                            double *const *dpar, const double *ws) {
  (void)par, (void)out, (void)dpar, (void)ws;
  size_t planes = (size_t)a->in[0].n * a->in[0].c, hw = (size_t)a->in[0].h * a->in[0].w;
  for (size_t p = 0; p < planes; p++) {
    double ds = 0;
    for (size_t i = 0; i < hw; i++) {
      if (din[0]) din[0][p * hw + i] += dout[p * hw + i] * in[1][p];
      ds += dout[p * hw + i] * in[0][p * hw + i];
    }
    if (din[1]) din[1][p] += ds;
  }
}

static void chanmul_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                        float *const *par, float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  long planes = (long)a->in[0].n * a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  const float *x = in[0], *s = in[1];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * hw;
    float *yp = out + (size_t)p * hw, sv = s[p];
    for (size_t i = 0; i < hw; i++) yp[i] = xp[i] * sv;
  }
}

static void chanmul_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                        const float *const *par, const float *out, const float *dout,
                        float *const *din, float *const *dpar, const float *ws) {
  (void)ctx, (void)par, (void)out, (void)dpar, (void)ws;
  long planes = (long)a->in[0].n * a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  const float *x = in[0], *s = in[1];
  float *dx = din[0], *ds = din[1];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * hw, *gp = dout + (size_t)p * hw;
    if (dx) {
      float *dp = dx + (size_t)p * hw, sv = s[p];
      for (size_t i = 0; i < hw; i++) dp[i] += gp[i] * sv;
    }
    if (ds) {
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (size_t i = 0; i < hw; i++) acc += gp[i] * xp[i];
      ds[p] += acc;
    }
  }
}

static void chanmul_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 2 + (int)fb_rng_below(rng, 2), c = 1 + (int)fb_rng_below(rng, 8);
  a->n_in = 2;
  a->in[0] = fb_shape4(n, c, 1 + (int)fb_rng_below(rng, 7), 1 + (int)fb_rng_below(rng, 7));
  a->in[1] = fb_shape4(n, c, 1, 1);
  a->attr = fb_attr_default();
}

const fb_op fb_op_chanmul = {
    .name = "chanmul",
    .kind = FB_OPK_ADD,
    .bwd_reads_in = 1,
    .infer = chanmul_infer,
    .fwd_ref = chanmul_fwd_ref,
    .bwd_ref = chanmul_bwd_ref,
    .fwd = chanmul_fwd,
    .bwd = chanmul_bwd,
    .random_case = chanmul_random_case,
    .n_diff_in = 2,
};
