/* Shared plumbing for one-input, same-shape activation ops (relu, relu6,
 * hswish, hsigmoid, sigmoid). An activation file defines four functions
 *
 *   static double ew_ref_f(double x);                  y = f(x)
 *   static double ew_ref_df(double x, double y);       dy/dx at x (y = f(x))
 *   static void ew_fast_fwd(size_t n, const float *x, float *y);
 *   static void ew_fast_bwd(size_t n, const float *x, const float *y,
 *                           const float *dy, float *dx);   dx += dy * f'(x)
 *
 * and then writes FB_ELEMENTWISE_OP(name, n_kinks, kinks...) to get the table row fb_op_<name>.
 * The fast chunk kernels are plain loops the compiler vectorises; this file
 * splits the tensor into chunks and runs them on OpenMP threads.
 */
#ifndef FB_OPS_ELEMENTWISE_H
#define FB_OPS_ELEMENTWISE_H

#include <stdio.h>

#include "ops/op.h"

/* Elements per OpenMP work item: large enough that the call overhead
 * vanishes, small enough to balance 2..16 threads on small tensors. */
#define FB_EW_CHUNK 16384

static inline int fb_ew_infer(fb_op_args *a, const char *name, char *msg) {
  if (a->n_in != 1) {
    snprintf(msg, 256, "%s: needs exactly 1 input (got %d)", name, a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "%s: input shape (%d,%d,%d,%d) has an empty dimension", name, s.n, s.c, s.h,
             s.w);
    return -1;
  }
  a->n_par = 0;
  a->out = s;
  return 0;
}

static inline void fb_ew_random_case(fb_op_args *a, fb_rng *rng) {
  a->n_in = 1;
  a->in[0] = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 8),
                       1 + (int)fb_rng_below(rng, 7), 1 + (int)fb_rng_below(rng, 7));
  a->attr = fb_attr_default();
}

typedef void (*fb_ew_fwd_chunk)(size_t n, const float *x, float *y);
typedef void (*fb_ew_bwd_chunk)(size_t n, const float *x, const float *y, const float *dy,
                                float *dx);

static inline void fb_ew_run_fwd(size_t n, const float *x, float *y, fb_ew_fwd_chunk k) {
  long nchunks = (long)((n + FB_EW_CHUNK - 1) / FB_EW_CHUNK);
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (long c = 0; c < nchunks; c++) {
    size_t lo = (size_t)c * FB_EW_CHUNK, len = n - lo < FB_EW_CHUNK ? n - lo : FB_EW_CHUNK;
    k(len, x + lo, y + lo);
  }
}

static inline void fb_ew_run_bwd(size_t n, const float *x, const float *y, const float *dy,
                                 float *dx, fb_ew_bwd_chunk k) {
  long nchunks = (long)((n + FB_EW_CHUNK - 1) / FB_EW_CHUNK);
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (long c = 0; c < nchunks; c++) {
    size_t lo = (size_t)c * FB_EW_CHUNK, len = n - lo < FB_EW_CHUNK ? n - lo : FB_EW_CHUNK;
    k(len, x + lo, y + lo, dy + lo, dx + lo);
  }
}

/* Defines the wrappers and the row `fb_op_<name>` from the four functions
 * described at the top of this file; N_KINKS points where the derivative
 * jumps follow (at least one value, ignored when N_KINKS is 0). */
#define FB_ELEMENTWISE_OP(NAME, N_KINKS, ...)                                                    \
  static int ew_infer(fb_op_args *a, char *msg) { return fb_ew_infer(a, #NAME, msg); }           \
  static void ew_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,       \
                         double *out, double *ws) {                                              \
    (void)par;                                                                                   \
    (void)ws;                                                                                    \
    size_t n = fb_numel(a->in[0]);                                                               \
    for (size_t i = 0; i < n; i++) out[i] = ew_ref_f(in[0][i]);                                  \
  }                                                                                              \
  static void ew_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par, \
                         const double *out, const double *dout, double *const *din,              \
                         double *const *dpar, const double *ws) {                                \
    (void)par;                                                                                   \
    (void)dpar;                                                                                  \
    (void)ws;                                                                                    \
    if (!din[0]) return;                                                                         \
    size_t n = fb_numel(a->in[0]);                                                               \
    for (size_t i = 0; i < n; i++) din[0][i] += dout[i] * ew_ref_df(in[0][i], out[i]);           \
  }                                                                                              \
  static void ew_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,                \
                     float *const *par, float *out, float *ws) {                                 \
    (void)ctx;                                                                                   \
    (void)par;                                                                                   \
    (void)ws;                                                                                    \
    fb_ew_run_fwd(fb_numel(a->in[0]), in[0], out, ew_fast_fwd);                                  \
  }                                                                                              \
  static void ew_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,                \
                     const float *const *par, const float *out, const float *dout,               \
                     float *const *din, float *const *dpar, const float *ws) {                   \
    (void)ctx;                                                                                   \
    (void)par;                                                                                   \
    (void)dpar;                                                                                  \
    (void)ws;                                                                                    \
    if (!din[0]) return;                                                                         \
    fb_ew_run_bwd(fb_numel(a->in[0]), in[0], out, dout, din[0], ew_fast_bwd);                    \
  }                                                                                              \
  const fb_op fb_op_##NAME = {                                                                   \
      .name = #NAME,                                                                             \
      .kind = FB_OPK_ACT,                                                                        \
      .bwd_reads_in = 1,                                                                         \
      .n_kinks = N_KINKS,                                                                        \
      .kinks = {__VA_ARGS__},                                                                    \
      .infer = ew_infer,                                                                         \
      .ws_size = NULL,                                                                           \
      .fwd_ref = ew_fwd_ref,                                                                     \
      .bwd_ref = ew_bwd_ref,                                                                     \
      .fwd = ew_fwd,                                                                             \
      .bwd = ew_bwd,                                                                             \
      .random_case = fb_ew_random_case,                                                          \
      .n_diff_in = 1,                                                                            \
  }

#endif
