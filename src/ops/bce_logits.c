/* bce_logits: masked binary cross-entropy on logits (PyTorch
 * binary_cross_entropy_with_logits, summed over masked locations and divided
 * by their count).
 *   in[0] logits  (N,C,H,W) (FCOS centerness: C = 1, H = P locations, W = 1);
 *   in[1] targets (N,C,H,W), normally in [0, 1];
 *   in[2] mask    (N,1,H,W): a location counts where mask > 0 (FCOS passes
 *         the centerness target itself, which is > 0 exactly at positives);
 *   out   scalar: sum over counted locations and channels of
 *         softplus(x) - t x   (= -t log p - (1-t) log(1-p), p = sigmoid(x)),
 *         divided by max(1, number of counted locations).
 * d/dx = sigmoid(x) - t at counted locations. */
#include <math.h>
#include <stdio.h>

#include "ops/op.h"

static int bce_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 3) {
    snprintf(msg, 256, "bce_logits: needs 3 inputs (logits, targets, mask), got %d", a->n_in);
    return -1;
  }
  fb_shape x = a->in[0], t = a->in[1], m = a->in[2];
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1) {
    snprintf(msg, 256, "bce_logits: logits shape (%d,%d,%d,%d) has an empty dimension", x.n, x.c,
             x.h, x.w);
    return -1;
  }
  if (t.n != x.n || t.c != x.c || t.h != x.h || t.w != x.w) {
    snprintf(msg, 256, "bce_logits: targets shape (%d,%d,%d,%d) must equal logits (%d,%d,%d,%d)",
             t.n, t.c, t.h, t.w, x.n, x.c, x.h, x.w);
    return -1;
  }
  if (m.n != x.n || m.c != 1 || m.h != x.h || m.w != x.w) {
    snprintf(msg, 256, "bce_logits: mask shape (%d,%d,%d,%d) must be (%d,1,%d,%d)", m.n, m.c, m.h,
             m.w, x.n, x.h, x.w);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(1, 1, 1, 1);
  return 0;
}

static double softplus_d(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static float softplus_f(float x) { return (x > 0 ? x : 0.f) + log1pf(expf(-fabsf(x))); }
static double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}
static float sigmoid_f(float x) {
  if (x >= 0) return 1.f / (1.f + expf(-x));
  float e = expf(x);
  return e / (1.f + e);
}

/* ---- double reference --------------------------------------------------- */

static long count_d(const double *m, size_t n) {
  long c = 0;
  for (size_t j = 0; j < n; j++) c += m[j] > 0;
  return c;
}

static void bce_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                        double *out, double *ws) {
  (void)par, (void)ws;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double total = 0;
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (size_t i = 0; i < hw; i++) {
        if (!(in[2][(size_t)n * hw + i] > 0)) continue;
        size_t j = ((size_t)n * C + c) * hw + i;
        total += softplus_d(in[0][j]) - in[1][j] * in[0][j];
      }
  long cnt = count_d(in[2], (size_t)N * hw);
  out[0] = total / (double)(cnt > 1 ? cnt : 1);
}

static void bce_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                        const double *out, const double *dout, double *const *din,
                        double *const *dpar, const double *ws) {
  (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  long cnt = count_d(in[2], (size_t)N * hw);
  double g = dout[0] / (double)(cnt > 1 ? cnt : 1);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (size_t i = 0; i < hw; i++) {
        if (!(in[2][(size_t)n * hw + i] > 0)) continue;
        size_t j = ((size_t)n * C + c) * hw + i;
        din[0][j] += g * (sigmoid_d(in[0][j]) - in[1][j]);
      }
}

/* ---- fast float kernels: one (n, c) row at a time ----------------------- */

static long count_f(const float *m, size_t n) {
  long c = 0;
  for (size_t j = 0; j < n; j++) c += m[j] > 0;
  return c;
}

static void bce_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    float *const *par, float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  long rows = (long)N * C;
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (rows * (long)hw > 8192)
  for (long r = 0; r < rows; r++) {
    const float *x = in[0] + (size_t)r * hw, *t = in[1] + (size_t)r * hw,
                *m = in[2] + (size_t)(r / C) * hw;
    double acc = 0;
    for (size_t i = 0; i < hw; i++)
      if (m[i] > 0) acc += softplus_f(x[i]) - t[i] * x[i];
    total += acc;
  }
  long cnt = count_f(in[2], (size_t)N * hw);
  out[0] = (float)(total / (double)(cnt > 1 ? cnt : 1));
}

static void bce_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    const float *const *par, const float *out, const float *dout,
                    float *const *din, float *const *dpar, const float *ws) {
  (void)ctx, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  long rows = (long)N * C, cnt = count_f(in[2], (size_t)N * hw);
  float g = (float)(dout[0] / (double)(cnt > 1 ? cnt : 1));
  float *dx = din[0];
#pragma omp parallel for schedule(static) if (rows * (long)hw > 8192)
  for (long r = 0; r < rows; r++) {
    const float *x = in[0] + (size_t)r * hw, *t = in[1] + (size_t)r * hw,
                *m = in[2] + (size_t)(r / C) * hw;
    float *d = dx + (size_t)r * hw;
    for (size_t i = 0; i < hw; i++)
      if (m[i] > 0) d[i] += g * (sigmoid_f(x[i]) - t[i]);
  }
}

/* The op tests fill targets and mask with integers in [0, C): C >= 2 so
 * that some locations count (targets outside [0, 1] are still a smooth
 * function of the logits). */
static void bce_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 1 + (int)fb_rng_below(rng, 3), c = 2 + (int)fb_rng_below(rng, 2),
      h = 1 + (int)fb_rng_below(rng, 6), w = 1 + (int)fb_rng_below(rng, 2);
  a->n_in = 3;
  a->in[0] = fb_shape4(n, c, h, w);
  a->in[1] = fb_shape4(n, c, h, w);
  a->in[2] = fb_shape4(n, 1, h, w);
  a->attr = fb_attr_default();
}

const fb_op fb_op_bce_logits = {
    .name = "bce_logits",
    .kind = FB_OPK_LOSS,
    .bwd_reads_in = 1,
    .infer = bce_infer,
    .fwd_ref = bce_fwd_ref,
    .bwd_ref = bce_bwd_ref,
    .fwd = bce_fwd,
    .bwd = bce_bwd,
    .random_case = bce_random_case,
    .n_diff_in = 1,
    .is_loss = 1,
};
