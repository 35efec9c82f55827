/* giou_loss: weighted generalized-IoU loss (Rezatofighi et al. 2019) of
 * boxes given as distances from a location, as an anchor-free head predicts
 * them.
 *   in[0] pred   (N,4,H,W): l, t, r, b distances of the box edges from the
 *         location (left, top, right, bottom); values below 0 count as 0
 *         (gradient 0), as after a relu;
 *   in[1] target (N,4,H,W): the same for the assigned ground-truth box;
 *   in[2] weight (N,1,H,W): per-location weight (FCOS: the centerness target
 *         at positives, 0 elsewhere).
 * With the location at the origin both boxes are [-l, r] x [-t, b], so
 *   I = (min(l,l*) + min(r,r*)) (min(t,t*) + min(b,b*)),
 *   U = (l+r)(t+b) + (l*+r*)(t*+b*) - I,
 *   E = (max(l,l*) + max(r,r*)) (max(t,t*) + max(b,b*))  (enclosing box),
 *   GIoU = I/U - (E - U)/E,
 *   out = sum_i w_i (1 - GIoU_i) / sum_i w_i  over counted locations:
 * those with w > 0 and a proper target (every target distance >= 0 and
 * l*+r* > 0, t*+b* > 0: a location inside its box). Then U >= target area > 0
 * and E >= U, so no epsilon is needed. No counted location: loss 0.
 * At ties min/max split the gradient evenly (PyTorch's minimum/maximum). */
#include <math.h>
#include <stdio.h>

#include "ops/op.h"

static int gl_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 3) {
    snprintf(msg, 256, "giou_loss: needs 3 inputs (pred, target, weight), got %d", a->n_in);
    return -1;
  }
  fb_shape p = a->in[0], t = a->in[1], w = a->in[2];
  if (p.n < 1 || p.c != 4 || p.h < 1 || p.w < 1) {
    snprintf(msg, 256, "giou_loss: pred shape (%d,%d,%d,%d) must be (N,4,H,W), non-empty", p.n,
             p.c, p.h, p.w);
    return -1;
  }
  if (t.n != p.n || t.c != 4 || t.h != p.h || t.w != p.w) {
    snprintf(msg, 256, "giou_loss: target shape (%d,%d,%d,%d) must equal pred (%d,%d,%d,%d)", t.n,
             t.c, t.h, t.w, p.n, p.c, p.h, p.w);
    return -1;
  }
  if (w.n != p.n || w.c != 1 || w.h != p.h || w.w != p.w) {
    snprintf(msg, 256, "giou_loss: weight shape (%d,%d,%d,%d) must be (%d,1,%d,%d)", w.n, w.c, w.h,
             w.w, p.n, p.h, p.w);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(1, 1, 1, 1);
  return 0;
}

/* d min(a, b) / da and d max(a, b) / da, ties split. */
#define DMIN(a, b) ((a) < (b) ? 1 : (a) == (b) ? 0.5 : 0)
#define DMAX(a, b) ((a) > (b) ? 1 : (a) == (b) ? 0.5 : 0)

/* One location, generic over the element type T: returns 1 - GIoU and, when
 * g is non-NULL, its gradient with respect to the raw pred values. Order of
 * the four values: l, t, r, b. */
#define GIOU_TERM(NAME, T)                                                                  \
  static T NAME(const T *raw, const T *tg, T *g) {                                          \
    T p[4];                                                                                 \
    for (int k = 0; k < 4; k++) p[k] = raw[k] > 0 ? raw[k] : 0;                             \
    T pw = p[0] + p[2], ph = p[1] + p[3];                                                   \
    T iw = (p[0] < tg[0] ? p[0] : tg[0]) + (p[2] < tg[2] ? p[2] : tg[2]);                   \
    T ih = (p[1] < tg[1] ? p[1] : tg[1]) + (p[3] < tg[3] ? p[3] : tg[3]);                   \
    T ew = (p[0] > tg[0] ? p[0] : tg[0]) + (p[2] > tg[2] ? p[2] : tg[2]);                   \
    T eh = (p[1] > tg[1] ? p[1] : tg[1]) + (p[3] > tg[3] ? p[3] : tg[3]);                   \
    T I = iw * ih, U = pw * ph + (tg[0] + tg[2]) * (tg[1] + tg[3]) - I, E = ew * eh;        \
    T loss = 2 - I / U - U / E;                                                             \
    if (!g) return loss;                                                                    \
    for (int k = 0; k < 4; k++) {                                                           \
      T other_i = (k & 1) ? iw : ih, other_e = (k & 1) ? ew : eh;                           \
      T dI = (T)DMIN(p[k], tg[k]) * other_i, dE = (T)DMAX(p[k], tg[k]) * other_e;           \
      T dU = ((k & 1) ? pw : ph) - dI;                                                      \
      T d = -(dI * U - I * dU) / (U * U) - (dU * E - U * dE) / (E * E);                     \
      g[k] = raw[k] < 0 ? 0 : d;                                                            \
    }                                                                                       \
    return loss;                                                                            \
  }
GIOU_TERM(giou_term_d, double)
GIOU_TERM(giou_term_f, float)

/* Weight of a location, 0 when it is not counted. */
#define GIOU_WEIGHT(NAME, T)                                                                 \
  static T NAME(const T *tg, T w) {                                                          \
    if (!(w > 0)) return 0;                                                                  \
    if (!(tg[0] >= 0 && tg[1] >= 0 && tg[2] >= 0 && tg[3] >= 0)) return 0;                   \
    if (!(tg[0] + tg[2] > 0 && tg[1] + tg[3] > 0)) return 0;                                 \
    return w;                                                                                \
  }
GIOU_WEIGHT(giou_weight_d, double)
GIOU_WEIGHT(giou_weight_f, float)

/* Gathers the 4 values of location i of sample n. */
#define GATHER(dst, src, n, i, hw)                                                    \
  for (int k_ = 0; k_ < 4; k_++) (dst)[k_] = (src)[((size_t)(n) * 4 + k_) * (hw) + (i)]

/* ---- double reference --------------------------------------------------- */

static void gl_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                       double *out, double *ws) {
  (void)par, (void)ws;
  int N = a->in[0].n;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double total = 0, wsum = 0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      double p[4], t[4];
      GATHER(p, in[0], n, i, hw);
      GATHER(t, in[1], n, i, hw);
      double w = giou_weight_d(t, in[2][(size_t)n * hw + i]);
      if (w == 0) continue;
      total += w * giou_term_d(p, t, NULL);
      wsum += w;
    }
  out[0] = wsum > 0 ? total / wsum : 0.0;
}

static void gl_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                       const double *out, const double *dout, double *const *din,
                       double *const *dpar, const double *ws) {
  (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int N = a->in[0].n;
  size_t hw = (size_t)a->in[0].h * a->in[0].w;
  double wsum = 0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      double t[4];
      GATHER(t, in[1], n, i, hw);
      wsum += giou_weight_d(t, in[2][(size_t)n * hw + i]);
    }
  if (!(wsum > 0)) return;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < hw; i++) {
      double p[4], t[4], g[4];
      GATHER(p, in[0], n, i, hw);
      GATHER(t, in[1], n, i, hw);
      double w = giou_weight_d(t, in[2][(size_t)n * hw + i]);
      if (w == 0) continue;
      giou_term_d(p, t, g);
      for (int k = 0; k < 4; k++) din[0][((size_t)n * 4 + k) * hw + i] += dout[0] * w / wsum * g[k];
    }
}

/* ---- fast float kernels: locations in parallel, sums in double --------- */

static double weight_sum_f(const fb_op_args *a, const float *const *in) {
  long N = a->in[0].n, hw = (long)a->in[0].h * a->in[0].w, total = N * hw;
  double wsum = 0;
#pragma omp parallel for schedule(static) reduction(+ : wsum) if (total > 4096)
  for (long j = 0; j < total; j++) {
    long n = j / hw, i = j % hw;
    float t[4];
    GATHER(t, in[1], n, i, (size_t)hw);
    wsum += giou_weight_f(t, in[2][j]);
  }
  return wsum;
}

static void gl_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                   float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  long N = a->in[0].n, hw = (long)a->in[0].h * a->in[0].w, total = N * hw;
  double sum = 0, wsum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum, wsum) if (total > 4096)
  for (long j = 0; j < total; j++) {
    long n = j / hw, i = j % hw;
    float p[4], t[4];
    GATHER(p, in[0], n, i, (size_t)hw);
    GATHER(t, in[1], n, i, (size_t)hw);
    float w = giou_weight_f(t, in[2][j]);
    if (w == 0) continue;
    sum += (double)w * giou_term_f(p, t, NULL);
    wsum += w;
  }
  out[0] = wsum > 0 ? (float)(sum / wsum) : 0.f;
}

static void gl_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout, float *const *din,
                   float *const *dpar, const float *ws) {
  (void)ctx, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  double wsum = weight_sum_f(a, in);
  if (!(wsum > 0)) return;
  long N = a->in[0].n, hw = (long)a->in[0].h * a->in[0].w, total = N * hw;
  float scale = (float)(dout[0] / wsum);
  float *dx = din[0];
#pragma omp parallel for schedule(static) if (total > 4096)
  for (long j = 0; j < total; j++) {
    long n = j / hw, i = j % hw;
    float p[4], t[4], g[4];
    GATHER(p, in[0], n, i, (size_t)hw);
    GATHER(t, in[1], n, i, (size_t)hw);
    float w = giou_weight_f(t, in[2][j]);
    if (w == 0) continue;
    giou_term_f(p, t, g);
    for (int k = 0; k < 4; k++) dx[((size_t)n * 4 + k) * hw + i] += scale * w * g[k];
  }
}

/* The op tests fill pred with normal values (some below 0) and target and
 * weight with integers in [0, 4): most locations count. */
static void gl_random_case(fb_op_args *a, fb_rng *rng) {
  int n = 1 + (int)fb_rng_below(rng, 3), h = 1 + (int)fb_rng_below(rng, 6),
      w = 1 + (int)fb_rng_below(rng, 2);
  a->n_in = 3;
  a->in[0] = fb_shape4(n, 4, h, w);
  a->in[1] = fb_shape4(n, 4, h, w);
  a->in[2] = fb_shape4(n, 1, h, w);
  a->attr = fb_attr_default();
}

const fb_op fb_op_giou_loss = {
    .name = "giou_loss",
    .kind = FB_OPK_LOSS,
    .bwd_reads_in = 1,
    .infer = gl_infer,
    .fwd_ref = gl_fwd_ref,
    .bwd_ref = gl_bwd_ref,
    .fwd = gl_fwd,
    .bwd = gl_bwd,
    .random_case = gl_random_case,
    .n_diff_in = 1,
    .is_loss = 1,
};
