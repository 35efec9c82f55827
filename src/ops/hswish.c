/* hswish (hardswish): y = x * relu6(x + 3) / 6. Gradient follows PyTorch
 * 1.13 (hardswish_backward), checked numerically with torch 1.13:
 *   x < -3: 0;   -3 <= x < 3: (2x + 3) / 6;   x >= 3: 1
 * so the gradient is -0.5 at x = -3 (left-closed) and 1 at x = 3. */
#include "ops/elementwise.h"

static double ew_ref_f(double x) {
  double r = x + 3.0;
  r = r < 0 ? 0.0 : (r > 6 ? 6.0 : r);
  return x * r / 6.0;
}
static double ew_ref_df(double x, double y) {
  (void)y;
  if (x < -3.0) return 0.0;
  if (x < 3.0) return (2.0 * x + 3.0) / 6.0;
  return 1.0;
}

static void ew_fast_fwd(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    float r = x[i] + 3.f;
    r = r > 0.f ? r : 0.f;
    r = r < 6.f ? r : 6.f;
    y[i] = x[i] * r * (1.f / 6.f);
  }
}

static void ew_fast_bwd(size_t n, const float *x, const float *y, const float *dy, float *dx) {
  (void)y;
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    float g = v < -3.f ? 0.f : (v < 3.f ? (2.f * v + 3.f) * (1.f / 6.f) : 1.f);
    dx[i] += dy[i] * g;
  }
}

FB_ELEMENTWISE_OP(hswish, 2, -3, 3);
