/* concat: 1..8 inputs (N,C_k,H,W) joined along channels into
 * (N, sum C_k, H, W). Backward hands each input its slice of dout. */
#include <stdio.h>
#include <string.h>

#include "ops/op.h"

static int concat_infer(fb_op_args *a, char *msg) {
  if (a->n_in < 1 || a->n_in > FB_MAX_IN) {
    snprintf(msg, 256, "concat: needs 1..%d inputs (got %d)", FB_MAX_IN, a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  int c = 0;
  for (int k = 0; k < a->n_in; k++) {
    fb_shape t = a->in[k];
    if (t.n < 1 || t.c < 1 || t.h < 1 || t.w < 1) {
      snprintf(msg, 256, "concat: input %d shape (%d,%d,%d,%d) has an empty dimension", k, t.n, t.c,
               t.h, t.w);
      return -1;
    }
    if (t.n != s.n || t.h != s.h || t.w != s.w) {
      snprintf(msg, 256,
               "concat: input %d shape (%d,%d,%d,%d) must match input 0 (%d,%d,%d,%d) in N, H, W",
               k, t.n, t.c, t.h, t.w, s.n, s.c, s.h, s.w);
      return -1;
    }
    c += t.c;
  }
  a->n_par = 0;
  a->out = fb_shape4(s.n, c, s.h, s.w);
  return 0;
}

static void concat_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                           double *out, double *ws) {
  (void)par, (void)ws;
  size_t hw = (size_t)a->out.h * a->out.w;
  for (int n = 0; n < a->out.n; n++) {
    int c0 = 0;
    for (int k = 0; k < a->n_in; k++) {
      int ck = a->in[k].c;
      for (size_t i = 0; i < (size_t)ck * hw; i++)
        out[((size_t)n * a->out.c + c0) * hw + i] = in[k][(size_t)n * ck * hw + i];
      c0 += ck;
    }
  }
}

static void concat_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                           const double *out, const double *dout, double *const *din,
                           double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t hw = (size_t)a->out.h * a->out.w;
  for (int n = 0; n < a->out.n; n++) {
    int c0 = 0;
    for (int k = 0; k < a->n_in; k++) {
      int ck = a->in[k].c;
      if (din[k])
        for (size_t i = 0; i < (size_t)ck * hw; i++)
          din[k][(size_t)n * ck * hw + i] += dout[((size_t)n * a->out.c + c0) * hw + i];
      c0 += ck;
    }
  }
}

/* Both directions run over (n, input k) blocks of ck*H*W contiguous floats. */
static void concat_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                       float *const *par, float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  size_t hw = (size_t)a->out.h * a->out.w;
  int c0[FB_MAX_IN], m = a->n_in;
  for (int k = 0, c = 0; k < m; k++) c0[k] = c, c += a->in[k].c;
  long blocks = (long)a->out.n * m;
#pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; b++) {
    int n = (int)(b / m), k = (int)(b % m);
    size_t len = (size_t)a->in[k].c * hw;
    memcpy(out + ((size_t)n * a->out.c + c0[k]) * hw, in[k] + (size_t)n * len, len * sizeof(float));
  }
}

static void concat_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                       const float *const *par, const float *out, const float *dout,
                       float *const *din, float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  size_t hw = (size_t)a->out.h * a->out.w;
  int c0[FB_MAX_IN], m = a->n_in;
  for (int k = 0, c = 0; k < m; k++) c0[k] = c, c += a->in[k].c;
  long blocks = (long)a->out.n * m;
#pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; b++) {
    int n = (int)(b / m), k = (int)(b % m);
    if (!din[k]) continue;
    size_t len = (size_t)a->in[k].c * hw;
    float *dk = din[k] + (size_t)n * len;
    const float *g = dout + ((size_t)n * a->out.c + c0[k]) * hw;
    for (size_t i = 0; i < len; i++) dk[i] += g[i];
  }
}

static void concat_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 2 + (int)fb_rng_below(rng, 2), h = 1 + (int)fb_rng_below(rng, 7),
      w = 1 + (int)fb_rng_below(rng, 7);
  a->n_in = 1 + (int)fb_rng_below(rng, 4);
  for (int k = 0; k < a->n_in; k++) a->in[k] = fb_shape4(n, 1 + (int)fb_rng_below(rng, 5), h, w);
  a->attr = fb_attr_default();
}

const fb_op fb_op_concat = {
    .name = "concat",
    .kind = FB_OPK_RESAMPLE,
    .bwd_reads_in = 0,
    .infer = concat_infer,
    .fwd_ref = concat_fwd_ref,
    .bwd_ref = concat_bwd_ref,
    .fwd = concat_fwd,
    .bwd = concat_bwd,
    .random_case = concat_random_case,
    .n_diff_in = FB_MAX_IN,
};
