/* add: n-ary elementwise sum of 2..8 same-shape inputs (residuals, FPN).
 * The executor may run an instance with fewer inputs than it was built with
 * (absent supernet branches), so the kernels read args->n_in at call time. */
#include <stdio.h>

#include "ops/op.h"

#define ADD_CHUNK 16384

static int add_infer(fb_op_args *a, char *msg) {
  if (a->n_in < 2 || a->n_in > FB_MAX_IN) {
    snprintf(msg, 256, "add: needs 2..%d inputs (got %d)", FB_MAX_IN, a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "add: input 0 shape (%d,%d,%d,%d) has an empty dimension", s.n, s.c, s.h,
             s.w);
    return -1;
  }
  for (int k = 1; k < a->n_in; k++) {
    fb_shape t = a->in[k];
    if (t.n != s.n || t.c != s.c || t.h != s.h || t.w != s.w) {
      snprintf(msg, 256, "add: input %d shape (%d,%d,%d,%d) differs from input 0 (%d,%d,%d,%d)", k,
               t.n, t.c, t.h, t.w, s.n, s.c, s.h, s.w);
      return -1;
    }
  }
  a->n_par = 0;
  a->out = s;
  return 0;
}

static void add_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                        double *out, double *ws) {
  (void)par, (void)ws;
  size_t n = fb_numel(a->in[0]);
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < a->n_in; k++) s += in[k][i];
    out[i] = s;
  }
}

static void add_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                        const double *out, const double *dout, double *const *din,
                        double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t n = fb_numel(a->in[0]);
  for (int k = 0; k < a->n_in; k++)
    if (din[k])
      for (size_t i = 0; i < n; i++) din[k][i] += dout[i];
}

static void add_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                    float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  size_t n = fb_numel(a->in[0]);
  long nchunks = (long)((n + ADD_CHUNK - 1) / ADD_CHUNK);
  int m = a->n_in;
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (long c = 0; c < nchunks; c++) {
    size_t lo = (size_t)c * ADD_CHUNK, hi = lo + ADD_CHUNK < n ? lo + ADD_CHUNK : n;
    const float *x0 = in[0];
    for (size_t i = lo; i < hi; i++) out[i] = x0[i];
    for (int k = 1; k < m; k++) {
      const float *xk = in[k];
      for (size_t i = lo; i < hi; i++) out[i] += xk[i];
    }
  }
}

static void add_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    const float *const *par, const float *out, const float *dout, float *const *din,
                    float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t n = fb_numel(a->in[0]);
  long nchunks = (long)((n + ADD_CHUNK - 1) / ADD_CHUNK);
  int m = a->n_in;
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (long c = 0; c < nchunks; c++) {
    size_t lo = (size_t)c * ADD_CHUNK, hi = lo + ADD_CHUNK < n ? lo + ADD_CHUNK : n;
    for (int k = 0; k < m; k++) {
      float *dk = din[k];
      if (!dk) continue;
      for (size_t i = lo; i < hi; i++) dk[i] += dout[i];
    }
  }
}

static void add_random_case(fb_op_args *a, fb_rng *rng) {
  fb_shape s = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 8),
                         1 + (int)fb_rng_below(rng, 7), 1 + (int)fb_rng_below(rng, 7));
  a->n_in = 2 + (int)fb_rng_below(rng, 3);
  for (int k = 0; k < a->n_in; k++) a->in[k] = s;
  a->attr = fb_attr_default();
}

const fb_op fb_op_add = {
    .name = "add",
    .kind = FB_OPK_ADD,
    .bwd_reads_in = 0,
    .infer = add_infer,
    .fwd_ref = add_fwd_ref,
    .bwd_ref = add_bwd_ref,
    .fwd = add_fwd,
    .bwd = add_bwd,
    .random_case = add_random_case,
    .n_diff_in = FB_MAX_IN,
};
