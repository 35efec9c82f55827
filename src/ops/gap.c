/* gap: global average pooling, x (N,C,H,W) -> y (N,C,1,1). */
#include <stdio.h>

#include "ops/op.h"

static int gap_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 1) {
    snprintf(msg, 256, "gap: needs exactly 1 input (got %d)", a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "gap: input shape (%d,%d,%d,%d) has an empty dimension", s.n, s.c, s.h, s.w);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(s.n, s.c, 1, 1);
  return 0;
}

static void gap_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                        double *out, double *ws) {
  (void)par, (void)ws;
  size_t planes = (size_t)a->in[0].n * a->in[0].c, hw = (size_t)a->in[0].h * a->in[0].w;
  for (size_t p = 0; p < planes; p++) {
    double s = 0;
    for (size_t i = 0; i < hw; i++) s += in[0][p * hw + i];
    out[p] = s / (double)hw;
  }
}

static void gap_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                        const double *out, const double *dout, double *const *din,
                        double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  size_t planes = (size_t)a->in[0].n * a->in[0].c, hw = (size_t)a->in[0].h * a->in[0].w;
  for (size_t p = 0; p < planes; p++)
    for (size_t i = 0; i < hw; i++) din[0][p * hw + i] += dout[p] / (double)hw;
}

static void gap_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                    float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  long planes = (long)a->in[0].n * a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  const float *x = in[0];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * hw;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < hw; i++) s += xp[i];
    out[p] = s / (float)hw;
  }
}

static void gap_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    const float *const *par, const float *out, const float *dout, float *const *din,
                    float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  long planes = (long)a->in[0].n * a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  float *dx = din[0];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    float g = dout[p] / (float)hw;
    float *dp = dx + (size_t)p * hw;
    for (size_t i = 0; i < hw; i++) dp[i] += g;
  }
}

static void gap_random_case(fb_op_args *a, fb_rng *rng) {
  a->n_in = 1;
  a->in[0] = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 8),
                       1 + (int)fb_rng_below(rng, 7), 1 + (int)fb_rng_below(rng, 7));
  a->attr = fb_attr_default();
}

/* MACs: one per input element (the published convention for global pooling). */
static double gap_macs(const fb_op_args *a) { return (double)fb_numel(a->in[0]); }

const fb_op fb_op_gap = {
    .name = "gap",
    .kind = FB_OPK_POOL,
    .macs = gap_macs,
    .bwd_reads_in = 0,
    .infer = gap_infer,
    .fwd_ref = gap_fwd_ref,
    .bwd_ref = gap_bwd_ref,
    .fwd = gap_fwd,
    .bwd = gap_bwd,
    .random_case = gap_random_case,
    .n_diff_in = 1,
};
