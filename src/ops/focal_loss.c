/* focal_loss: sigmoid focal loss (Lin et al. 2017; torchvision
 * sigmoid_focal_loss semantics) summed over locations and classes and
 * divided by the number of positive locations.
 *   in[0] logits  (N,K,H,W): one independent sigmoid per class and location
 *         (a detection head uses H = P locations, W = 1);
 *   in[1] targets (N,1,H,W): per location a float value v:
 *           0 <= v < K   positive of class (int)v,
 *           -2 < v < 0   background (the head writes -1),
 *           otherwise    ignored (v <= -2, v >= K, NaN): adds nothing.
 *   out   scalar: sum over counted locations and classes of
 *           y = 1: a1 * (1 - p)^gamma * -log(p),
 *           y = 0: a0 * p^gamma * -log(1 - p),      p = sigmoid(x),
 *         with a1 = alpha, a0 = 1 - alpha (alpha < 0: a1 = a0 = 1), divided by
 *         max(1, number of positive locations in the batch).
 * attr.alpha (0.25) and attr.gamma (2, >= 0) are the focal parameters.
 * d/dx: y = 1: a1 (1-p)^gamma (-gamma p softplus(-x) - (1 - p));
 *       y = 0: a0 p^gamma (p + gamma (1 - p) softplus(x)).
 * -log(p) = softplus(-x) and -log(1-p) = softplus(x) keep it stable. */
#include <math.h>
#include <stdio.h>

#include "ops/op.h"

enum { FL_BG = -1, FL_IGNORE = -2 };

/* Class of a target value, FL_BG or FL_IGNORE. */
static inline int fl_label(double v, int k) {
  if (v >= 0 && v < (double)k) return (int)v;
  if (v > -2 && v < 0) return FL_BG;
  return FL_IGNORE;
}

static int fl_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 2) {
    snprintf(msg, 256, "focal_loss: needs 2 inputs (logits, targets), got %d", a->n_in);
    return -1;
  }
  fb_shape x = a->in[0], t = a->in[1];
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1) {
    snprintf(msg, 256, "focal_loss: logits shape (%d,%d,%d,%d) has an empty dimension", x.n, x.c,
             x.h, x.w);
    return -1;
  }
  if (t.n != x.n || t.c != 1 || t.h != x.h || t.w != x.w) {
    snprintf(msg, 256,
             "focal_loss: targets shape (%d,%d,%d,%d) must be (%d,1,%d,%d) for logits "
             "(%d,%d,%d,%d)",
             t.n, t.c, t.h, t.w, x.n, x.h, x.w, x.n, x.c, x.h, x.w);
    return -1;
  }
  if (!(a->attr.gamma >= 0 && a->attr.gamma <= 16) || !(a->attr.alpha <= 1) ||
      isnan(a->attr.alpha)) {
    snprintf(msg, 256, "focal_loss: gamma must be in [0,16] and alpha <= 1 (got gamma %g alpha %g)",
             (double)a->attr.gamma, (double)a->attr.alpha);
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
static float powg_f(float b, float gamma) { return gamma == 2.f ? b * b : powf(b, gamma); }

static long count_pos_d(const double *lab, size_t n, int k) {
  long c = 0;
  for (size_t j = 0; j < n; j++) c += fl_label(lab[j], k) >= 0;
  return c;
}

/* ---- double reference --------------------------------------------------- */

static void fl_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                       double *out, double *ws) {
  (void)par, (void)ws;
  int N = a->in[0].n, K = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double alpha = a->attr.alpha, gamma = a->attr.gamma;
  double a1 = alpha < 0 ? 1 : alpha, a0 = alpha < 0 ? 1 : 1 - alpha, total = 0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      int l = fl_label(in[1][(size_t)n * hw + i], K);
      if (l == FL_IGNORE) continue;
      for (int c = 0; c < K; c++) {
        double x = in[0][((size_t)n * K + c) * hw + i], p = sigmoid_d(x), q = sigmoid_d(-x);
        total += c == l ? a1 * pow(q, gamma) * softplus_d(-x) : a0 * pow(p, gamma) * softplus_d(x);
      }
    }
  long pos = count_pos_d(in[1], (size_t)N * hw, K);
  out[0] = total / (double)(pos > 1 ? pos : 1);
}

static void fl_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                       const double *out, const double *dout, double *const *din,
                       double *const *dpar, const double *ws) {
  (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int N = a->in[0].n, K = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double alpha = a->attr.alpha, gamma = a->attr.gamma;
  double a1 = alpha < 0 ? 1 : alpha, a0 = alpha < 0 ? 1 : 1 - alpha;
  long pos = count_pos_d(in[1], (size_t)N * hw, K);
  double g = dout[0] / (double)(pos > 1 ? pos : 1);
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      int l = fl_label(in[1][(size_t)n * hw + i], K);
      if (l == FL_IGNORE) continue;
      for (int c = 0; c < K; c++) {
        size_t j = ((size_t)n * K + c) * hw + i;
        double x = in[0][j], p = sigmoid_d(x), q = sigmoid_d(-x), d;
        if (c == l)
          d = a1 * pow(q, gamma) * (-gamma * p * softplus_d(-x) - q);
        else
          d = a0 * pow(p, gamma) * (p + gamma * q * softplus_d(x));
        din[0][j] += g * d;
      }
    }
}

/* ---- fast float kernels: one (n, class) row of locations at a time ------- */

static void fl_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                   float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  int N = a->in[0].n, K = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  float alpha = a->attr.alpha, gamma = a->attr.gamma;
  float a1 = alpha < 0 ? 1.f : alpha, a0 = alpha < 0 ? 1.f : 1.f - alpha;
  long rows = (long)N * K, pos = 0;
  double total = 0;
  const float *lab = in[1];
#pragma omp parallel for schedule(static) reduction(+ : total) if (rows * (long)hw > 8192)
  for (long r = 0; r < rows; r++) {
    int n = (int)(r / K), c = (int)(r % K);
    const float *x = in[0] + (size_t)r * hw, *t = lab + (size_t)n * hw;
    double acc = 0;
    for (size_t i = 0; i < hw; i++) {
      int l = fl_label(t[i], K);
      if (l == FL_IGNORE) continue;
      float p = sigmoid_f(x[i]), q = sigmoid_f(-x[i]);
      acc += c == l ? a1 * powg_f(q, gamma) * softplus_f(-x[i])
                    : a0 * powg_f(p, gamma) * softplus_f(x[i]);
    }
    total += acc;
  }
  for (size_t j = 0; j < (size_t)N * hw; j++) pos += fl_label(lab[j], K) >= 0;
  out[0] = (float)(total / (double)(pos > 1 ? pos : 1));
}

static void fl_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout, float *const *din,
                   float *const *dpar, const float *ws) {
  (void)ctx, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int N = a->in[0].n, K = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  float alpha = a->attr.alpha, gamma = a->attr.gamma;
  float a1 = alpha < 0 ? 1.f : alpha, a0 = alpha < 0 ? 1.f : 1.f - alpha;
  long rows = (long)N * K, pos = 0;
  const float *lab = in[1];
  for (size_t j = 0; j < (size_t)N * hw; j++) pos += fl_label(lab[j], K) >= 0;
  float g = (float)(dout[0] / (double)(pos > 1 ? pos : 1));
#pragma omp parallel for schedule(static) if (rows * (long)hw > 8192)
  for (long r = 0; r < rows; r++) {
    int n = (int)(r / K), c = (int)(r % K);
    const float *x = in[0] + (size_t)r * hw, *t = lab + (size_t)n * hw;
    float *dx = din[0] + (size_t)r * hw;
    for (size_t i = 0; i < hw; i++) {
      int l = fl_label(t[i], K);
      if (l == FL_IGNORE) continue;
      float p = sigmoid_f(x[i]), q = sigmoid_f(-x[i]), d;
      if (c == l)
        d = a1 * powg_f(q, gamma) * (-gamma * p * softplus_f(-x[i]) - q);
      else
        d = a0 * powg_f(p, gamma) * (p + gamma * q * softplus_f(x[i]));
      dx[i] += g * d;
    }
  }
}

/* The op tests fill targets with class indices in [0, K) (all positive);
 * tests/test_fcos.c checks background and ignored locations. */
static void fl_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 1 + (int)fb_rng_below(rng, 3), k = 1 + (int)fb_rng_below(rng, 5),
      h = 1 + (int)fb_rng_below(rng, 6), w = 1 + (int)fb_rng_below(rng, 2);
  a->n_in = 2;
  a->in[0] = fb_shape4(n, k, h, w);
  a->in[1] = fb_shape4(n, 1, h, w);
  a->attr = fb_attr_default();
  static const float alphas[3] = {0.25f, -1.f, 0.6f}, gammas[3] = {2.f, 0.f, 1.5f};
  a->attr.alpha = alphas[fb_rng_below(rng, 3)];
  a->attr.gamma = gammas[fb_rng_below(rng, 3)];
}

const fb_op fb_op_focal_loss = {
    .name = "focal_loss",
    .kind = FB_OPK_LOSS,
    .bwd_reads_in = 1,
    .infer = fl_infer,
    .fwd_ref = fl_fwd_ref,
    .bwd_ref = fl_bwd_ref,
    .fwd = fl_fwd,
    .bwd = fl_bwd,
    .random_case = fl_random_case,
    .n_diff_in = 1,
    .is_loss = 1,
};
