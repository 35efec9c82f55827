/* concat_spatial: 1..8 inputs (N,C,H_k,W_k) with the same N and C joined
 * along space into (N, C, sum_k H_k*W_k, 1): for each (n, c) the H_k*W_k
 * values of input 0 (row-major), then those of input 1, ... A detection head
 * uses it to gather its per-level maps into one list of locations
 * (level-major, row-major within a level). Backward hands each input its
 * slice of dout. */
#include <stdio.h>
#include <string.h>

#include "ops/op.h"

static int cs_infer(fb_op_args *a, char *msg) {
  if (a->n_in < 1 || a->n_in > FB_MAX_IN) {
    snprintf(msg, 256, "concat_spatial: needs 1..%d inputs (got %d)", FB_MAX_IN, a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  long p = 0;
  for (int k = 0; k < a->n_in; k++) {
    fb_shape t = a->in[k];
    if (t.n < 1 || t.c < 1 || t.h < 1 || t.w < 1) {
      snprintf(msg, 256, "concat_spatial: input %d shape (%d,%d,%d,%d) has an empty dimension", k,
               t.n, t.c, t.h, t.w);
      return -1;
    }
    if (t.n != s.n || t.c != s.c) {
      snprintf(msg, 256,
               "concat_spatial: input %d shape (%d,%d,%d,%d) must match input 0 (%d,%d,%d,%d) in "
               "N and C",
               k, t.n, t.c, t.h, t.w, s.n, s.c, s.h, s.w);
      return -1;
    }
    p += (long)t.h * t.w;
  }
  if (p > 1L << 30) {
    snprintf(msg, 256, "concat_spatial: %ld locations in all is too many", p);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(s.n, s.c, (int)p, 1);
  return 0;
}

/* Start of input k's slice within one (n, c) row of the output. */
static void offsets(const fb_op_args *a, size_t *off) {
  size_t p = 0;
  for (int k = 0; k < a->n_in; k++) off[k] = p, p += (size_t)a->in[k].h * a->in[k].w;
}

static void cs_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                       double *out, double *ws) {
  (void)par, (void)ws;
  size_t off[FB_MAX_IN], P = (size_t)a->out.h;
  offsets(a, off);
  size_t rows = (size_t)a->out.n * a->out.c;
  for (int k = 0; k < a->n_in; k++) {
    size_t hw = (size_t)a->in[k].h * a->in[k].w;
    for (size_t r = 0; r < rows; r++)
      for (size_t i = 0; i < hw; i++) out[r * P + off[k] + i] = in[k][r * hw + i];
  }
}

static void cs_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                       const double *out, const double *dout, double *const *din,
                       double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t off[FB_MAX_IN], P = (size_t)a->out.h;
  offsets(a, off);
  size_t rows = (size_t)a->out.n * a->out.c;
  for (int k = 0; k < a->n_in; k++) {
    if (!din[k]) continue;
    size_t hw = (size_t)a->in[k].h * a->in[k].w;
    for (size_t r = 0; r < rows; r++)
      for (size_t i = 0; i < hw; i++) din[k][r * hw + i] += dout[r * P + off[k] + i];
  }
}

/* Fast kernels: one (n, c) row at a time, a memcpy / add loop per input. */
static void cs_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                   float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  size_t off[FB_MAX_IN], P = (size_t)a->out.h;
  offsets(a, off);
  long rows = (long)a->out.n * a->out.c;
  int m = a->n_in;
#pragma omp parallel for schedule(static) if (rows * (long)P > 4096)
  for (long r = 0; r < rows; r++)
    for (int k = 0; k < m; k++) {
      size_t hw = (size_t)a->in[k].h * a->in[k].w;
      memcpy(out + (size_t)r * P + off[k], in[k] + (size_t)r * hw, hw * sizeof(float));
    }
}

static void cs_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout, float *const *din,
                   float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t off[FB_MAX_IN], P = (size_t)a->out.h;
  offsets(a, off);
  long rows = (long)a->out.n * a->out.c;
  int m = a->n_in;
#pragma omp parallel for schedule(static) if (rows * (long)P > 4096)
  for (long r = 0; r < rows; r++)
    for (int k = 0; k < m; k++) {
      if (!din[k]) continue;
      size_t hw = (size_t)a->in[k].h * a->in[k].w;
      float *d = din[k] + (size_t)r * hw;
      const float *g = dout + (size_t)r * P + off[k];
      for (size_t i = 0; i < hw; i++) d[i] += g[i];
    }
}

static void cs_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 1 + (int)fb_rng_below(rng, 3), c = 1 + (int)fb_rng_below(rng, 4);
  a->n_in = 1 + (int)fb_rng_below(rng, 4);
  for (int k = 0; k < a->n_in; k++)
    a->in[k] = fb_shape4(n, c, 1 + (int)fb_rng_below(rng, 5), 1 + (int)fb_rng_below(rng, 5));
  a->attr = fb_attr_default();
}

const fb_op fb_op_concat_spatial = {
    .name = "concat_spatial",
    .kind = FB_OPK_RESAMPLE,
    .bwd_reads_in = 0,
    .infer = cs_infer,
    .fwd_ref = cs_fwd_ref,
    .bwd_ref = cs_bwd_ref,
    .fwd = cs_fwd,
    .bwd = cs_bwd,
    .random_case = cs_random_case,
    .n_diff_in = FB_MAX_IN,
};
