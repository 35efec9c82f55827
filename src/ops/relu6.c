/* relu6: y = min(max(x, 0), 6). Gradient follows PyTorch 1.13 (hardtanh
 * backward): 1 only for 0 < x < 6, so 0 at both x = 0 and x = 6. */
#include "ops/elementwise.h"

static double ew_ref_f(double x) { return x < 0 ? 0.0 : (x > 6 ? 6.0 : x); }
static double ew_ref_df(double x, double y) {
  (void)y;
  return (x > 0 && x < 6) ? 1.0 : 0.0;
}

static void ew_fast_fwd(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i] > 0.f ? x[i] : 0.f;
    y[i] = v < 6.f ? v : 6.f;
  }
}

static void ew_fast_bwd(size_t n, const float *x, const float *y, const float *dy, float *dx) {
  (void)y;
  for (size_t i = 0; i < n; i++) dx[i] += (x[i] > 0.f && x[i] < 6.f) ? dy[i] : 0.f;
}

FB_ELEMENTWISE_OP(relu6, 2, 0, 6);
