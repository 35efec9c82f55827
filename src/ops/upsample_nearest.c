/* upsample_nearest: integer factor s = attr.scale >= 1,
 * (N,C,H,W) -> (N,C,H*s,W*s), y[oy][ox] = x[oy/s][ox/s] (PyTorch
 * interpolate(mode='nearest') for integer scale factors). Backward sums each
 * s x s block of dout into one input element. */
#include <stdio.h>

#include "ops/op.h"
#include "ops/upsample_common.h"

static int upn_infer(fb_op_args *a, char *msg) { return fb_upsample_infer("upsample_nearest", a, msg); }

static void upn_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                        double *out, double *ws) {
  (void)par, (void)ws;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  size_t planes = (size_t)a->in[0].n * a->in[0].c;
  for (size_t p = 0; p < planes; p++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        out[(p * oh + oy) * ow + ox] = in[0][(p * h + oy / s) * w + ox / s];
}

static void upn_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                        const double *out, const double *dout, double *const *din,
                        double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  size_t planes = (size_t)a->in[0].n * a->in[0].c;
  for (size_t p = 0; p < planes; p++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        din[0][(p * h + oy / s) * w + ox / s] += dout[(p * oh + oy) * ow + ox];
}

static void upn_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                    float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  long planes = (long)a->in[0].n * a->in[0].c;
  const float *x = in[0];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    for (int iy = 0; iy < h; iy++) {
      const float *xr = x + ((size_t)p * h + iy) * w;
      float *y0 = out + ((size_t)p * oh + (size_t)iy * s) * ow;
      for (int ix = 0; ix < w; ix++)
        for (int j = 0; j < s; j++) y0[ix * s + j] = xr[ix];
      for (int r = 1; r < s; r++)
        for (int ox = 0; ox < ow; ox++) y0[(size_t)r * ow + ox] = y0[ox];
    }
  }
}

static void upn_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    const float *const *par, const float *out, const float *dout, float *const *din,
                    float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  long planes = (long)a->in[0].n * a->in[0].c;
  float *dx = din[0];
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    for (int iy = 0; iy < h; iy++) {
      float *dr = dx + ((size_t)p * h + iy) * w;
      for (int r = 0; r < s; r++) {
        const float *g = dout + ((size_t)p * oh + (size_t)iy * s + r) * ow;
        for (int ix = 0; ix < w; ix++) {
          float acc = 0.f;
          for (int j = 0; j < s; j++) acc += g[ix * s + j];
          dr[ix] += acc;
        }
      }
    }
  }
}

static void upn_random_case(fb_op_args *a, fb_rng *rng) {
  a->n_in = 1;
  a->in[0] = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 6),
                       1 + (int)fb_rng_below(rng, 5), 1 + (int)fb_rng_below(rng, 5));
  a->attr = fb_attr_default();
  a->attr.scale = 1 + (int)fb_rng_below(rng, 3);
}

const fb_op fb_op_upsample_nearest = {
    .name = "upsample_nearest",
    .kind = FB_OPK_RESAMPLE,
    .bwd_reads_in = 0,
    .infer = upn_infer,
    .fwd_ref = upn_fwd_ref,
    .bwd_ref = upn_bwd_ref,
    .fwd = upn_fwd,
    .bwd = upn_bwd,
    .random_case = upn_random_case,
    .n_diff_in = 1,
};
