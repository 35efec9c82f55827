/* hsigmoid (hardsigmoid): y = relu6(x + 3) / 6. Gradient follows PyTorch
 * 1.13 (hardsigmoid_backward): 1/6 only for -3 < x < 3, so 0 at x = +-3. */
#include "ops/elementwise.h"

static double ew_ref_f(double x) {
  double r = x + 3.0;
  r = r < 0 ? 0.0 : (r > 6 ? 6.0 : r);
  return r / 6.0;
}
static double ew_ref_df(double x, double y) {
  (void)y;
  return (x > -3.0 && x < 3.0) ? 1.0 / 6.0 : 0.0;
}

static void ew_fast_fwd(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    float r = x[i] + 3.f;
    r = r > 0.f ? r : 0.f;
    r = r < 6.f ? r : 6.f;
    y[i] = r * (1.f / 6.f);
  }
}

static void ew_fast_bwd(size_t n, const float *x, const float *y, const float *dy, float *dx) {
  (void)y;
  for (size_t i = 0; i < n; i++) dx[i] += (x[i] > -3.f && x[i] < 3.f) ? dy[i] * (1.f / 6.f) : 0.f;
}

FB_ELEMENTWISE_OP(hsigmoid, 2, -3, 3);
