/* relu: y = max(x, 0). Gradient at the kink follows PyTorch 1.13
 * (threshold_backward): dy/dx = 1 only for x > 0, so 0 at x = 0. */
#include "ops/elementwise.h"

static double ew_ref_f(double x) { return x > 0 ? x : 0.0; }
static double ew_ref_df(double x, double y) {
  (void)y;
  return x > 0 ? 1.0 : 0.0;
}

static void ew_fast_fwd(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

static void ew_fast_bwd(size_t n, const float *x, const float *y, const float *dy, float *dx) {
  (void)y;
  for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0.f ? dy[i] : 0.f;
}

FB_ELEMENTWISE_OP(relu, 1, 0);
