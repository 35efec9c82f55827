/* linear: fully connected layer on (N, C_in, 1, 1) vectors.
 *
 *   x (N, C_in, 1, 1), weight (C_out, C_in, 1, 1), bias (C_out) ->
 *   y (N, C_out, 1, 1), y = x W^T + b.
 *
 * Fast path: row-major sgemm from oneDNN (ops/dnnl_util.h); the backward
 * gemms use beta = 1, so they accumulate without scratch memory.
 */
#include <stdio.h>
#include <string.h>

#include "ops/dnnl_util.h"
#include "ops/op.h"

static int linear_infer(fb_op_args *a, char *msg) {
  const fb_op_attr *t = &a->attr;
  if (a->n_in != 1) return snprintf(msg, 256, "expects 1 input, got %d", a->n_in), -1;
  const fb_shape x = a->in[0];
  if (x.n < 1 || x.c < 1)
    return snprintf(msg, 256, "input shape (%d,%d,%d,%d) must be positive", x.n, x.c, x.h, x.w),
           -1;
  if (x.h != 1 || x.w != 1)
    return snprintf(msg, 256,
                    "input must be (N, C, 1, 1), got spatial size %dx%d (add a global pool first)",
                    x.h, x.w),
           -1;
  if (t->c_out < 1) return snprintf(msg, 256, "c_out %d must be positive", t->c_out), -1;
  a->n_par = t->has_bias ? 2 : 1;
  a->par[0] = fb_shape4(t->c_out, x.c, 1, 1);
  if (t->has_bias) a->par[1] = fb_shape4(t->c_out, 1, 1, 1);
  a->out = fb_shape4(x.n, t->c_out, 1, 1);
  return 0;
}

static size_t linear_ws_size(const fb_op_args *a) {
  (void)a;
  return 0;
}

/* ---- reference (double) -------------------------------------------------- */

static void linear_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                           double *out, double *ws) {
  (void)ws;
  const int n = a->in[0].n, ci = a->in[0].c, co = a->attr.c_out;
  const double *x = in[0], *w = par[0], *b = a->attr.has_bias ? par[1] : NULL;
  for (int i = 0; i < n; i++)
    for (int o = 0; o < co; o++) {
      double acc = b ? b[o] : 0.0;
      for (int c = 0; c < ci; c++) acc += x[(size_t)i * ci + c] * w[(size_t)o * ci + c];
      out[(size_t)i * co + o] = acc;
    }
}

static void linear_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                           const double *out, const double *dout, double *const *din,
                           double *const *dpar, const double *ws) {
  (void)out;
  (void)ws;
  const int n = a->in[0].n, ci = a->in[0].c, co = a->attr.c_out;
  const double *x = in[0], *w = par[0];
  double *dx = din[0], *dw = dpar[0], *db = a->attr.has_bias ? dpar[1] : NULL;
  for (int i = 0; i < n; i++)
    for (int o = 0; o < co; o++) {
      const double d = dout[(size_t)i * co + o];
      if (db) db[o] += d;
      for (int c = 0; c < ci; c++) {
        if (dx) dx[(size_t)i * ci + c] += w[(size_t)o * ci + c] * d;
        if (dw) dw[(size_t)o * ci + c] += x[(size_t)i * ci + c] * d;
      }
    }
}

/* ---- fast (float) ----------------------------------------------------------- */

static void linear_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                       float *const *par, float *out, float *ws) {
  (void)ctx;
  (void)ws;
  const int n = a->in[0].n, ci = a->in[0].c, co = a->attr.c_out;
  const float *x = in[0], *w = par[0], *b = a->attr.has_bias ? par[1] : NULL;
  /* y (n x co) = x (n x ci) * W^T (ci x co) */
  if (fb_dnnl_sgemm('N', 'T', n, co, ci, 1.0f, x, ci, w, ci, 0.0f, out, co) != 0) {
#pragma omp parallel for schedule(static)
    for (long io = 0; io < (long)n * co; io++) {
      const float *xr = x + (io / co) * ci, *wr = w + (io % co) * ci;
      float acc = 0.0f;
      for (int c = 0; c < ci; c++) acc += xr[c] * wr[c];
      out[io] = acc;
    }
  }
  if (b)
    for (int i = 0; i < n; i++)
      for (int o = 0; o < co; o++) out[(size_t)i * co + o] += b[o];
}

static void linear_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                       const float *const *par, const float *out, const float *dout,
                       float *const *din, float *const *dpar, const float *ws) {
  (void)ctx;
  (void)out;
  (void)ws;
  const int n = a->in[0].n, ci = a->in[0].c, co = a->attr.c_out;
  const float *x = in[0], *w = par[0];
  float *dx = din[0], *dw = dpar[0], *db = a->attr.has_bias ? dpar[1] : NULL;
  /* dx (n x ci) += dy (n x co) * W (co x ci) */
  if (dx && fb_dnnl_sgemm('N', 'N', n, ci, co, 1.0f, dout, co, w, ci, 1.0f, dx, ci) != 0) {
#pragma omp parallel for schedule(static)
    for (long ic = 0; ic < (long)n * ci; ic++) {
      const long i = ic / ci, c = ic % ci;
      float acc = 0.0f;
      for (int o = 0; o < co; o++) acc += dout[i * co + o] * w[(size_t)o * ci + c];
      dx[ic] += acc;
    }
  }
  /* dW (co x ci) += dy^T (co x n) * x (n x ci) */
  if (dw && fb_dnnl_sgemm('T', 'N', co, ci, n, 1.0f, dout, co, x, ci, 1.0f, dw, ci) != 0) {
#pragma omp parallel for schedule(static)
    for (long oc = 0; oc < (long)co * ci; oc++) {
      const long o = oc / ci, c = oc % ci;
      float acc = 0.0f;
      for (int i = 0; i < n; i++) acc += dout[(size_t)i * co + o] * x[(size_t)i * ci + c];
      dw[oc] += acc;
    }
  }
  if (db)
    for (int i = 0; i < n; i++)
      for (int o = 0; o < co; o++) db[o] += dout[(size_t)i * co + o];
}

static void linear_random_case(fb_op_args *a, fb_rng *rng) {
  fb_op_attr t = fb_attr_default();
  t.c_out = 1 + (int)fb_rng_below(rng, 6);
  t.has_bias = (int)fb_rng_below(rng, 2);
  a->n_in = 1;
  a->in[0] = fb_shape4(1 + (int)fb_rng_below(rng, 4), 1 + (int)fb_rng_below(rng, 7), 1, 1);
  a->attr = t;
}

static double linear_macs(const fb_op_args *a) {
  return (double)a->out.n * a->out.c * a->in[0].c;
}

const fb_op fb_op_linear = {
    .name = "linear",
    .kind = FB_OPK_LINEAR,
    .macs = linear_macs,
    .bwd_reads_in = 1,
    .infer = linear_infer,
    .ws_size = linear_ws_size,
    .fwd_ref = linear_fwd_ref,
    .bwd_ref = linear_bwd_ref,
    .fwd = linear_fwd,
    .bwd = linear_bwd,
    .ctx_free = NULL,
    .random_case = linear_random_case,
    .n_diff_in = 1,
    .n_diff_par = 2,
    .is_loss = 0,
    .par_name = {"weight", "bias"},
    .par_group = {FB_PG_WEIGHT, FB_PG_NO_DECAY},
    .par_init = {FB_INIT_LINEAR, FB_INIT_ZERO},
};
