/* upsample_bilinear: integer factor s = attr.scale >= 1,
 * (N,C,H,W) -> (N,C,H*s,W*s), exactly as PyTorch
 * interpolate(mode='bilinear', align_corners=False): output index o reads
 * source position src = max((o + 0.5) / s - 0.5, 0), between i0 = floor(src)
 * and i1 = min(i0 + 1, size - 1) with weights 1 - (src - i0) and src - i0.
 * Backward scatters dout with the same weights. */
#include <stdio.h>

#include "ops/op.h"

typedef struct lerp {
  int i0, i1;
  double w0, w1;
} lerp;

static lerp lerp_at(int o, int s, int size) {
  double src = ((double)o + 0.5) / (double)s - 0.5;
  if (src < 0) src = 0;
  lerp l;
  l.i0 = (int)src;
  if (l.i0 > size - 1) l.i0 = size - 1;
  l.i1 = l.i0 < size - 1 ? l.i0 + 1 : l.i0;
  l.w1 = src - l.i0;
  l.w0 = 1.0 - l.w1;
  return l;
}

static int upb_infer(fb_op_args *a, char *msg) {
  if (a->n_in != 1) {
    snprintf(msg, 256, "upsample_bilinear: needs exactly 1 input (got %d)", a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "upsample_bilinear: input shape (%d,%d,%d,%d) has an empty dimension", s.n,
             s.c, s.h, s.w);
    return -1;
  }
  if (a->attr.scale < 1 || a->attr.scale > 64) {
    snprintf(msg, 256, "upsample_bilinear: scale must be an integer in 1..64 (got %d)",
             a->attr.scale);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(s.n, s.c, s.h * a->attr.scale, s.w * a->attr.scale);
  return 0;
}

static void upb_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                        double *out, double *ws) {
  (void)par, (void)ws;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  size_t planes = (size_t)a->in[0].n * a->in[0].c;
  for (size_t p = 0; p < planes; p++) {
    const double *x = in[0] + p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      lerp ly = lerp_at(oy, s, h);
      for (int ox = 0; ox < ow; ox++) {
        lerp lx = lerp_at(ox, s, w);
        out[(p * oh + oy) * ow + ox] =
            ly.w0 * (lx.w0 * x[ly.i0 * w + lx.i0] + lx.w1 * x[ly.i0 * w + lx.i1]) +
            ly.w1 * (lx.w0 * x[ly.i1 * w + lx.i0] + lx.w1 * x[ly.i1 * w + lx.i1]);
      }
    }
  }
}

static void upb_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                        const double *out, const double *dout, double *const *din,
                        double *const *dpar, const double *ws) {
  (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  size_t planes = (size_t)a->in[0].n * a->in[0].c;
  for (size_t p = 0; p < planes; p++) {
    double *dx = din[0] + p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      lerp ly = lerp_at(oy, s, h);
      for (int ox = 0; ox < ow; ox++) {
        lerp lx = lerp_at(ox, s, w);
        double g = dout[(p * oh + oy) * ow + ox];
        dx[ly.i0 * w + lx.i0] += g * ly.w0 * lx.w0;
        dx[ly.i0 * w + lx.i1] += g * ly.w0 * lx.w1;
        dx[ly.i1 * w + lx.i0] += g * ly.w1 * lx.w0;
        dx[ly.i1 * w + lx.i1] += g * ly.w1 * lx.w1;
      }
    }
  }
}

/* The fast kernels run one (n, c) plane per work item; the interpolation
 * weights of a row are computed once per row, those of a column inline. */
static void upb_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                    float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  long planes = (long)a->in[0].n * a->in[0].c;
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    const float *x = in[0] + (size_t)p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      lerp ly = lerp_at(oy, s, h);
      const float *r0 = x + (size_t)ly.i0 * w, *r1 = x + (size_t)ly.i1 * w;
      float wy0 = (float)ly.w0, wy1 = (float)ly.w1;
      float *y = out + ((size_t)p * oh + oy) * ow;
      for (int ox = 0; ox < ow; ox++) {
        lerp lx = lerp_at(ox, s, w);
        float wx0 = (float)lx.w0, wx1 = (float)lx.w1;
        y[ox] =
            wy0 * (wx0 * r0[lx.i0] + wx1 * r0[lx.i1]) + wy1 * (wx0 * r1[lx.i0] + wx1 * r1[lx.i1]);
      }
    }
  }
}

static void upb_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                    const float *const *par, const float *out, const float *dout, float *const *din,
                    float *const *dpar, const float *ws) {
  (void)ctx, (void)in, (void)par, (void)out, (void)dpar, (void)ws;
  if (!din[0]) return;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  long planes = (long)a->in[0].n * a->in[0].c;
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    float *dx = din[0] + (size_t)p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      lerp ly = lerp_at(oy, s, h);
      float *r0 = dx + (size_t)ly.i0 * w, *r1 = dx + (size_t)ly.i1 * w;
      float wy0 = (float)ly.w0, wy1 = (float)ly.w1;
      const float *g = dout + ((size_t)p * oh + oy) * ow;
      for (int ox = 0; ox < ow; ox++) {
        lerp lx = lerp_at(ox, s, w);
        float wx0 = (float)lx.w0, wx1 = (float)lx.w1, g0 = g[ox] * wy0, g1 = g[ox] * wy1;
        r0[lx.i0] += g0 * wx0;
        r0[lx.i1] += g0 * wx1;
        r1[lx.i0] += g1 * wx0;
        r1[lx.i1] += g1 * wx1;
      }
    }
  }
}

static void upb_random_case(fb_op_args *a, fb_rng *rng) {
  a->n_in = 1;
  a->in[0] = fb_shape4(2 + (int)fb_rng_below(rng, 2), 1 + (int)fb_rng_below(rng, 6),
                       1 + (int)fb_rng_below(rng, 5), 1 + (int)fb_rng_below(rng, 5));
  a->attr = fb_attr_default();
  a->attr.scale = 1 + (int)fb_rng_below(rng, 4);
}

const fb_op fb_op_upsample_bilinear = {
    .name = "upsample_bilinear",
    .infer = upb_infer,
    .fwd_ref = upb_fwd_ref,
    .bwd_ref = upb_bwd_ref,
    .fwd = upb_fwd,
    .bwd = upb_bwd,
    .random_case = upb_random_case,
    .n_diff_in = 1,
};
