/* upsample_bilinear: integer factor s = attr.scale >= 1,
 * (N,C,H,W) -> (N,C,H*s,W*s), exactly as PyTorch
 * interpolate(mode='bilinear', align_corners=False): output index o reads
 * source position src = max((o + 0.5) / s - 0.5, 0), between i0 = floor(src)
 * and i1 = min(i0 + 1, size - 1) with weights 1 - (src - i0) and src - i0.
 * Backward scatters dout with the same weights. */
#include <stdio.h>

#include "ops/op.h"
#include "ops/upsample_common.h"

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

static int upb_infer(fb_op_args *a, char *msg) { return fb_upsample_infer("upsample_bilinear", a, msg); }

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

/* The fast kernels tabulate the weights once per call: with an integer
 * factor s, output o = s * i + r reads source i + t_r with
 * t_r = (r + 0.5) / s - 0.5 in (-0.5, 0.5), i.e. the neighbours
 * (i - 1, i) when t_r < 0 and (i, i + 1) otherwise, with weights that depend
 * on r alone. As three coefficients on (i - 1, i, i + 1), one of them zero:
 *   t_r < 0:  prev -t_r, cur 1 + t_r, next 0
 *   t_r >= 0: prev 0,    cur 1 - t_r, next t_r
 * Clamping at the borders (PyTorch's src = max(src, 0) and i1 = min(i0 + 1,
 * size - 1)) is the same as reading the edge value for a missing neighbour.
 * One (n, c) plane per work item; rows are blended vertically, then each
 * source column expands into s contiguous outputs. */
typedef struct upb_tab {
  float cp[64], cc[64], cn[64];
} upb_tab;

static void upb_make_tab(int s, upb_tab *t) {
  for (int r = 0; r < s; r++) {
    double f = ((double)r + 0.5) / (double)s - 0.5;
    t->cp[r] = f < 0 ? (float)-f : 0.f;
    t->cc[r] = (float)(f < 0 ? 1.0 + f : 1.0 - f);
    t->cn[r] = f < 0 ? 0.f : (float)f;
  }
}

/* The two source rows of output row oy and their weights. */
static void upb_rows(const upb_tab *t, int s, int h, int oy, int *ya, int *yb, float *wa,
                     float *wb) {
  int iy = oy / s, r = oy % s;
  if (t->cp[r] > 0.f) {
    *ya = iy > 0 ? iy - 1 : 0, *yb = iy;
    *wa = t->cp[r], *wb = t->cc[r];
  } else {
    *ya = iy, *yb = iy + 1 < h ? iy + 1 : iy;
    *wa = t->cc[r], *wb = t->cn[r];
  }
}

static void upb_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in, float *const *par,
                    float *out, float *ws) {
  (void)ctx, (void)par, (void)ws;
  int s = a->attr.scale, h = a->in[0].h, w = a->in[0].w, oh = a->out.h, ow = a->out.w;
  long planes = (long)a->in[0].n * a->in[0].c;
  upb_tab t;
  upb_make_tab(s, &t);
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    const float *x = in[0] + (size_t)p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      int ya, yb;
      float wa, wb;
      upb_rows(&t, s, h, oy, &ya, &yb, &wa, &wb);
      const float *ra = x + (size_t)ya * w, *rb = x + (size_t)yb * w;
      float *y = out + ((size_t)p * oh + oy) * ow;
      float vc = wa * ra[0] + wb * rb[0], vp = vc;
      for (int i = 0; i < w; i++) {
        float vn = i + 1 < w ? wa * ra[i + 1] + wb * rb[i + 1] : vc;
        float *yo = y + (size_t)i * s;
        for (int r = 0; r < s; r++) yo[r] = t.cp[r] * vp + t.cc[r] * vc + t.cn[r] * vn;
        vp = vc, vc = vn;
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
  upb_tab t;
  upb_make_tab(s, &t);
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; p++) {
    float *dx = din[0] + (size_t)p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      int ya, yb;
      float wa, wb;
      upb_rows(&t, s, h, oy, &ya, &yb, &wa, &wb);
      float *ra = dx + (size_t)ya * w, *rb = dx + (size_t)yb * w;
      const float *g = dout + ((size_t)p * oh + oy) * ow;
      /* column i receives gn of column i - 1, gc of its own and gp of i + 1 */
      float carry = 0.f; /* gn of the previous column */
      for (int i = 0; i < w; i++) {
        const float *gi = g + (size_t)i * s;
        float gp = 0.f, gc = 0.f, gn = 0.f;
        for (int r = 0; r < s; r++) {
          gp += t.cp[r] * gi[r];
          gc += t.cc[r] * gi[r];
          gn += t.cn[r] * gi[r];
        }
        int ip = i > 0 ? i - 1 : 0;
        ra[ip] += wa * gp, rb[ip] += wb * gp;
        float v = gc + carry;
        carry = gn;
        if (i + 1 == w) v += gn; /* clamped next neighbour is this column */
        ra[i] += wa * v, rb[i] += wb * v;
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
    .kind = FB_OPK_RESAMPLE,
    .bwd_reads_in = 0,
    .infer = upb_infer,
    .fwd_ref = upb_fwd_ref,
    .bwd_ref = upb_bwd_ref,
    .fwd = upb_fwd,
    .bwd = upb_bwd,
    .random_case = upb_random_case,
    .n_diff_in = 1,
};
