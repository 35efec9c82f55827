/* softmax_ce: mean softmax cross-entropy with label smoothing and an ignore
 * label (PyTorch F.cross_entropy semantics, reduction='mean', no weights).
 *   in[0] logits (N,C,H,W): classes along C, one prediction per (n,h,w)
 *         (classification uses H = W = 1);
 *   in[1] labels (N,1,H,W): class indices stored as float values.
 *   out   scalar (1,1,1,1): mean over counted positions of
 *         (1 - ls) * (-log p[label]) + ls * mean_c(-log p[c]),  ls = label_smoothing.
 * A position is not counted when its label equals attr.ignore_index (if
 * >= 0) and also, defensively, when the label is not a value in [0, C):
 * validating labels is the data loader's job, the kernels only make sure such
 * a label cannot index out of bounds (it is treated like ignore_index). With
 * no counted position the loss is 0 and the gradient is 0.
 * ws holds the softmax probabilities (N,C,H,W) of the last forward.
 * Backward: dlogits[c] += dout / count * (p[c] - (1 - ls) [c == label] - ls / C). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ops/op.h"

/* Class of a label value, or -1 when the position is not counted. */
static inline int label_class(double v, int n_classes, int ignore_index) {
  if (ignore_index >= 0 && v == (double)ignore_index) return -1;
  if (!(v >= 0 && v < (double)n_classes)) return -1;
  return (int)v;
}

static int ce_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 2) {
    snprintf(msg, 256, "softmax_ce: needs 2 inputs (logits, labels), got %d", a->n_in);
    return -1;
  }
  fb_shape x = a->in[0], l = a->in[1];
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1) {
    snprintf(msg, 256, "softmax_ce: logits shape (%d,%d,%d,%d) has an empty dimension", x.n, x.c,
             x.h, x.w);
    return -1;
  }
  if (l.n != x.n || l.c != 1 || l.h != x.h || l.w != x.w) {
    snprintf(msg, 256,
             "softmax_ce: labels shape (%d,%d,%d,%d) must be (%d,1,%d,%d) for logits (%d,%d,%d,%d)",
             l.n, l.c, l.h, l.w, x.n, x.h, x.w, x.n, x.c, x.h, x.w);
    return -1;
  }
  if (!(a->attr.label_smoothing >= 0 && a->attr.label_smoothing <= 1)) {
    snprintf(msg, 256, "softmax_ce: label_smoothing must be in [0,1] (got %g)",
             (double)a->attr.label_smoothing);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(1, 1, 1, 1);
  return 0;
}

static size_t ce_ws_size(const fb_op_args *a) { return fb_numel(a->in[0]); }

/* ---- double reference: one position at a time ------------------------- */

static void ce_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                       double *out, double *ws) {
  (void)par;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double ls = a->attr.label_smoothing, total = 0;
  size_t count = 0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      const double *x = in[0] + (size_t)n * C * hw + i; /* class c at x[c * hw] */
      double *p = ws + (size_t)n * C * hw + i;
      double mx = x[0];
      for (int c = 1; c < C; c++) mx = x[c * hw] > mx ? x[c * hw] : mx;
      double s = 0;
      for (int c = 0; c < C; c++) s += exp(x[c * hw] - mx);
      double lse = mx + log(s), mean_nlp = 0;
      for (int c = 0; c < C; c++) {
        p[c * hw] = exp(x[c * hw] - lse);
        mean_nlp += (lse - x[c * hw]) / C;
      }
      int l = label_class(in[1][(size_t)n * hw + i], C, a->attr.ignore_index);
      if (l < 0) continue;
      total += (1 - ls) * (lse - x[l * hw]) + ls * mean_nlp;
      count++;
    }
  out[0] = count ? total / (double)count : 0.0;
}

static void ce_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                       const double *out, const double *dout, double *const *din,
                       double *const *dpar, const double *ws) {
  (void)par, (void)out, (void)dpar;
  if (!din[0]) return;
  int N = a->in[0].n, C = a->in[0].c;
  size_t hw = (size_t)a->in[0].h * a->in[0].w, count = 0;
  double ls = a->attr.label_smoothing;
  for (size_t j = 0; j < (size_t)N * hw; j++)
    count += label_class(in[1][j], C, a->attr.ignore_index) >= 0;
  if (!count) return;
  double g = dout[0] / (double)count;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      int l = label_class(in[1][(size_t)n * hw + i], C, a->attr.ignore_index);
      if (l < 0) continue;
      for (int c = 0; c < C; c++) {
        size_t j = ((size_t)n * C + c) * hw + i;
        din[0][j] += g * (ws[j] - ls / C - (c == l ? 1 - ls : 0.0));
      }
    }
}

/* ---- fast float kernels: blocks of CE_BLOCK positions of one sample, so
 * the class loop is outer and the inner loops run over contiguous pixels -- */

#define CE_BLOCK 256

/* exp(x) for x <= 0 (the kernel calls it on x - max), written so that gcc
 * vectorises the loops that call it (glibc's expf is a scalar call):
 * x = n ln2 + r with n = round(x / ln2) (the 1.5 * 2^23 trick rounds to
 * nearest and leaves n in the low mantissa bits), |r| <= ln2 / 2, exp(r) by
 * its Taylor polynomial of degree 7 (truncation error < 6e-9 relative), 2^n
 * put into the exponent bits. Arguments below -87 are clamped to -87 so that
 * 2^n stays a normal float: the result is then about 1.6e-38 instead of a
 * denormal or 0, which leaves softmax probabilities unchanged to float
 * precision. The clamp compares the bit patterns as unsigned integers (for
 * x <= 0 a larger pattern is a more negative value): a float comparison
 * would not be vectorised without -fno-trapping-math. A NaN with the sign
 * bit clear stays NaN; one with it set becomes -87 (the loss, which also sums
 * the raw logits, is NaN either way). */
static inline float ce_expf(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = u > 0xC2AE0000u ? 0xC2AE0000u : u; /* 0xC2AE0000 = -87.0f */
  memcpy(&x, &u, sizeof x);
  const float magic = 12582912.f; /* 1.5 * 2^23 */
  float t = x * 1.44269504088896341f + magic;
  float n = t - magic;
  int32_t bits;
  memcpy(&bits, &t, sizeof bits);
  int32_t ni = bits - 0x4B400000; /* the integer n */
  /* ln 2 = 0.693359375 (exact in float, n * hi exact) - 2.12194440e-4 */
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440054690583e-4f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t eb = (ni + 127) << 23;
  float scale;
  memcpy(&scale, &eb, sizeof scale);
  return p * scale;
}

static void ce_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                   float *out, float *ws) {
  (void)ctx, (void)par;
  int N = a->in[0].n, C = a->in[0].c, ignore = a->attr.ignore_index;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  long per_n = (long)((hw + CE_BLOCK - 1) / CE_BLOCK), blocks = N * per_n;
  float ls = a->attr.label_smoothing;
  double total = 0;
  long count = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, count)
  for (long b = 0; b < blocks; b++) {
    int n = (int)(b / per_n);
    size_t lo = (size_t)(b % per_n) * CE_BLOCK, len = hw - lo < CE_BLOCK ? hw - lo : CE_BLOCK;
    const float *x = in[0] + (size_t)n * C * hw + lo, *lab = in[1] + (size_t)n * hw + lo;
    float *p = ws + (size_t)n * C * hw + lo;
    float mx[CE_BLOCK], sum[CE_BLOCK], sx[CE_BLOCK];
    for (size_t i = 0; i < len; i++) mx[i] = x[i], sum[i] = 0.f, sx[i] = 0.f;
    for (int c = 1; c < C; c++)
      for (size_t i = 0; i < len; i++) mx[i] = x[c * hw + i] > mx[i] ? x[c * hw + i] : mx[i];
    for (int c = 0; c < C; c++) {
      const float *xc = x + c * hw;
      float *pc = p + c * hw;
      for (size_t i = 0; i < len; i++) {
        float e = ce_expf(xc[i] - mx[i]);
        pc[i] = e;
        sum[i] += e;
        sx[i] += xc[i];
      }
    }
    /* loss = lse - (1 - ls) x[l] - ls * mean_c x[c], lse = mx + log(sum) */
    for (size_t i = 0; i < len; i++) {
      int l = label_class(lab[i], C, ignore);
      if (l < 0) continue;
      double lse = (double)mx[i] + (double)logf(sum[i]);
      total += lse - (1.0 - ls) * x[l * hw + i] - ls * (double)sx[i] / C;
      count++;
    }
    for (size_t i = 0; i < len; i++) sum[i] = 1.f / sum[i];
    for (int c = 0; c < C; c++)
      for (size_t i = 0; i < len; i++) p[c * hw + i] *= sum[i];
  }
  out[0] = count ? (float)(total / (double)count) : 0.f;
}

static void ce_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout, float *const *din,
                   float *const *dpar, const float *ws) {
  (void)ctx, (void)par, (void)out, (void)dpar;
  if (!din[0]) return;
  int N = a->in[0].n, C = a->in[0].c, ignore = a->attr.ignore_index;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  long per_n = (long)((hw + CE_BLOCK - 1) / CE_BLOCK), blocks = N * per_n;
  long count = 0, npos = (long)((size_t)N * hw);
  const float *labels = in[1];
#pragma omp parallel for schedule(static) reduction(+ : count)
  for (long j = 0; j < npos; j++) count += label_class(labels[j], C, ignore) >= 0;
  if (!count) return;
  float g = (float)(dout[0] / (double)count), ls = a->attr.label_smoothing;
  float off = g * ls / C, hit = g * (1.f - ls);
#pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; b++) {
    int n = (int)(b / per_n);
    size_t lo = (size_t)(b % per_n) * CE_BLOCK, len = hw - lo < CE_BLOCK ? hw - lo : CE_BLOCK;
    const float *lab = labels + (size_t)n * hw + lo, *p = ws + (size_t)n * C * hw + lo;
    float *dx = din[0] + (size_t)n * C * hw + lo;
    int cls[CE_BLOCK];
    float on[CE_BLOCK]; /* g for counted positions, 0 otherwise */
    for (size_t i = 0; i < len; i++) {
      cls[i] = label_class(lab[i], C, ignore);
      on[i] = cls[i] >= 0 ? 1.f : 0.f;
    }
    /* the label term apart, so that the class loop has no select in it
     * (gcc vectorises it then) */
    for (int c = 0; c < C; c++)
      for (size_t i = 0; i < len; i++) dx[c * hw + i] += on[i] * (g * p[c * hw + i] - off);
    for (size_t i = 0; i < len; i++)
      if (cls[i] >= 0) dx[(size_t)cls[i] * hw + i] -= hit;
  }
}

static void ce_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 2 + (int)fb_rng_below(rng, 2), c = 2 + (int)fb_rng_below(rng, 7), h = 1, w = 1;
  if (fb_rng_below(rng, 2)) h = 1 + (int)fb_rng_below(rng, 4), w = 1 + (int)fb_rng_below(rng, 4);
  a->n_in = 2;
  a->in[0] = fb_shape4(n, c, h, w);
  a->in[1] = fb_shape4(n, 1, h, w);
  a->attr = fb_attr_default();
  static const float smoothing[3] = {0.f, 0.1f, 0.35f};
  static const int ignore[3] = {-1, 255, 0};
  a->attr.label_smoothing = smoothing[fb_rng_below(rng, 3)];
  a->attr.ignore_index = ignore[fb_rng_below(rng, 3)];
}

const fb_op fb_op_softmax_ce = {
    .name = "softmax_ce",
    .kind = FB_OPK_LOSS,
    .bwd_reads_in = 1,
    .infer = ce_infer,
    .ws_size = ce_ws_size,
    .fwd_ref = ce_fwd_ref,
    .bwd_ref = ce_bwd_ref,
    .fwd = ce_fwd,
    .bwd = ce_bwd,
    .random_case = ce_random_case,
    .n_diff_in = 1,
    .is_loss = 1,
};
