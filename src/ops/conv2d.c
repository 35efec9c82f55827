/* conv2d: 2-D convolution with explicit (possibly asymmetric) padding, stride
 * and groups (PyTorch semantics, no dilation).
 *
 *   x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), bias (C_out) ->
 *   y (N, C_out, H_out, W_out), H_out = (H + pad_t + pad_b - kh) / sh + 1.
 *
 * Fast path: oneDNN primitives on plain NCHW memory (ops/dnnl_util.h), created
 * once per shape and cached in ctx->impl. Depthwise convolutions use the
 * SIMD kernel below (dw_*), which measured 10-20x faster than oneDNN on NCHW
 * memory (bench/bench_conv.c). A generic direct OpenMP kernel (direct_*) is
 * the fallback whenever neither applies or oneDNN refuses a configuration.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/dnnl_util.h"
#include "ops/op.h"

/* ---- geometry ------------------------------------------------------------ */

static fb_conv_geom geom_of(const fb_op_args *a) {
  const fb_op_attr *t = &a->attr;
  fb_conv_geom g;
  memset(&g, 0, sizeof g); /* compared with memcmp */
  g.n = a->in[0].n;
  g.c_in = a->in[0].c;
  g.h = a->in[0].h;
  g.w = a->in[0].w;
  g.c_out = t->c_out;
  g.kh = t->kh;
  g.kw = t->kw;
  g.sh = t->sh;
  g.sw = t->sw;
  g.pad_t = t->pad_t;
  g.pad_l = t->pad_l;
  g.pad_b = t->pad_b;
  g.pad_r = t->pad_r;
  g.groups = t->groups;
  g.has_bias = t->has_bias != 0;
  g.oh = (g.h + g.pad_t + g.pad_b - g.kh) / (g.sh > 0 ? g.sh : 1) + 1;
  g.ow = (g.w + g.pad_l + g.pad_r - g.kw) / (g.sw > 0 ? g.sw : 1) + 1;
  return g;
}

static int conv_infer(fb_op_args *a, char *msg) {
  const fb_op_attr *t = &a->attr;
  if (a->n_in != 1) return snprintf(msg, 256, "expects 1 input, got %d", a->n_in), -1;
  const fb_shape x = a->in[0];
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1)
    return snprintf(msg, 256, "input shape (%d,%d,%d,%d) must be positive", x.n, x.c, x.h, x.w),
           -1;
  if (t->kh < 1 || t->kw < 1)
    return snprintf(msg, 256, "kernel %dx%d must be positive", t->kh, t->kw), -1;
  if (t->sh < 1 || t->sw < 1)
    return snprintf(msg, 256, "stride %dx%d must be positive", t->sh, t->sw), -1;
  if (t->pad_t < 0 || t->pad_l < 0 || t->pad_b < 0 || t->pad_r < 0)
    return snprintf(msg, 256, "padding (t%d l%d b%d r%d) must be >= 0", t->pad_t, t->pad_l,
                    t->pad_b, t->pad_r),
           -1;
  if (t->c_out < 1) return snprintf(msg, 256, "c_out %d must be positive", t->c_out), -1;
  if (t->groups < 1 || t->groups > x.c)
    return snprintf(msg, 256, "groups %d must be in 1..C_in (%d)", t->groups, x.c), -1;
  if (x.c % t->groups != 0)
    return snprintf(msg, 256, "C_in %d is not divisible by groups %d", x.c, t->groups), -1;
  if (t->c_out % t->groups != 0)
    return snprintf(msg, 256, "c_out %d is not divisible by groups %d", t->c_out, t->groups), -1;
  int hp = x.h + t->pad_t + t->pad_b, wp = x.w + t->pad_l + t->pad_r;
  if (t->kh > hp || t->kw > wp)
    return snprintf(msg, 256, "kernel %dx%d is larger than the padded input %dx%d", t->kh, t->kw,
                    hp, wp),
           -1;
  fb_conv_geom g = geom_of(a);
  if (g.oh < 1 || g.ow < 1)
    return snprintf(msg, 256, "output size %dx%d is not positive", g.oh, g.ow), -1;
  a->n_par = t->has_bias ? 2 : 1;
  a->par[0] = fb_shape4(t->c_out, x.c / t->groups, t->kh, t->kw);
  if (t->has_bias) a->par[1] = fb_shape4(t->c_out, 1, 1, 1);
  a->out = fb_shape4(x.n, t->c_out, g.oh, g.ow);
  return 0;
}

static size_t conv_ws_size(const fb_op_args *a) {
  (void)a;
  return 0;
}

/* Output columns [lo, hi) whose input column o*s - pad + k lies in [0, in). */
static void valid_range(int k, int pad, int s, int in, int out, int *lo, int *hi) {
  int a = pad - k; /* need o*s >= a */
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  int b = in - 1 + pad - k; /* need o*s <= b */
  *hi = b < 0 ? 0 : b / s + 1;
  if (*hi > out) *hi = out;
  if (*lo > *hi) *lo = *hi;
}

/* ---- reference (double) -------------------------------------------------- */

/* Plain loops; the tap (icl, ky, kx) is outside the output loops only so
 * that the tests' large cases stay fast. */
static void conv_fwd_ref(const fb_op_args *a, const double *const *in, double *const *par,
                         double *out, double *ws) {
  (void)ws;
  const fb_conv_geom g = geom_of(a);
  const double *x = in[0], *w = par[0], *b = g.has_bias ? par[1] : NULL;
  const int cig = g.c_in / g.groups, cog = g.c_out / g.groups;
  for (int n = 0; n < g.n; n++)
    for (int oc = 0; oc < g.c_out; oc++) {
      const int grp = oc / cog;
      double *y = out + ((size_t)n * g.c_out + oc) * g.oh * g.ow;
      for (int i = 0; i < g.oh * g.ow; i++) y[i] = b ? b[oc] : 0.0;
      for (int icl = 0; icl < cig; icl++) {
        const double *xp = x + ((size_t)n * g.c_in + grp * cig + icl) * g.h * g.w;
        for (int ky = 0; ky < g.kh; ky++)
          for (int kx = 0; kx < g.kw; kx++) {
            const double wv = w[(((size_t)oc * cig + icl) * g.kh + ky) * g.kw + kx];
            for (int oy = 0; oy < g.oh; oy++) {
              const int iy = oy * g.sh - g.pad_t + ky;
              if (iy < 0 || iy >= g.h) continue;
              for (int ox = 0; ox < g.ow; ox++) {
                const int ix = ox * g.sw - g.pad_l + kx;
                if (ix < 0 || ix >= g.w) continue;
                y[oy * g.ow + ox] += wv * xp[iy * g.w + ix];
              }
            }
          }
      }
    }
}

static void conv_bwd_ref(const fb_op_args *a, const double *const *in, const double *const *par,
                         const double *out, const double *dout, double *const *din,
                         double *const *dpar, const double *ws) {
  (void)out;
  (void)ws;
  const fb_conv_geom g = geom_of(a);
  const double *x = in[0], *w = par[0];
  double *dx = din[0], *dw = dpar[0], *db = g.has_bias ? dpar[1] : NULL;
  const int cig = g.c_in / g.groups, cog = g.c_out / g.groups;
  for (int n = 0; n < g.n; n++)
    for (int oc = 0; oc < g.c_out; oc++) {
      const int grp = oc / cog;
      const double *dy = dout + ((size_t)n * g.c_out + oc) * g.oh * g.ow;
      if (db)
        for (int i = 0; i < g.oh * g.ow; i++) db[oc] += dy[i];
      for (int icl = 0; icl < cig; icl++) {
        const size_t xoff = ((size_t)n * g.c_in + grp * cig + icl) * g.h * g.w;
        for (int ky = 0; ky < g.kh; ky++)
          for (int kx = 0; kx < g.kw; kx++) {
            const size_t wi = (((size_t)oc * cig + icl) * g.kh + ky) * g.kw + kx;
            double dwv = 0.0;
            for (int oy = 0; oy < g.oh; oy++) {
              const int iy = oy * g.sh - g.pad_t + ky;
              if (iy < 0 || iy >= g.h) continue;
              for (int ox = 0; ox < g.ow; ox++) {
                const int ix = ox * g.sw - g.pad_l + kx;
                if (ix < 0 || ix >= g.w) continue;
                const double d = dy[oy * g.ow + ox];
                if (dx) dx[xoff + (size_t)iy * g.w + ix] += w[wi] * d;
                dwv += x[xoff + (size_t)iy * g.w + ix] * d;
              }
            }
            if (dw) dw[wi] += dwv;
          }
      }
    }
}

/* ---- direct float kernels (depthwise fast path; fallback for all) --------- */

/* Multiply-adds of one pass; small problems run on one thread (threads cost
 * more than they save there, and a lot more on a busy machine). */
static int worth_threads(const fb_conv_geom *g) {
  return (double)g->n * g->c_out * g->oh * g->ow * (g->c_in / g->groups) * g->kh * g->kw > 2e5;
}

/* y (N, C_out, OH, OW) = conv(x, w) + b, overwriting y. */
static void direct_forward(const fb_conv_geom *g, const float *x, const float *w, const float *b,
                           float *y) {
  const int cig = g->c_in / g->groups, cog = g->c_out / g->groups;
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (long nc = 0; nc < (long)g->n * g->c_out; nc++) {
    const int n = (int)(nc / g->c_out), oc = (int)(nc % g->c_out), grp = oc / cog;
    float *yp = y + (size_t)nc * ohw;
    const float bias = b ? b[oc] : 0.0f;
    for (size_t i = 0; i < ohw; i++) yp[i] = bias;
    for (int icl = 0; icl < cig; icl++) {
      const float *xp = x + ((size_t)n * g->c_in + grp * cig + icl) * hw;
      const float *wp = w + ((size_t)oc * cig + icl) * g->kh * g->kw;
      for (int oy = 0; oy < g->oh; oy++) {
        float *yr = yp + (size_t)oy * g->ow;
        for (int ky = 0; ky < g->kh; ky++) {
          const int iy = oy * g->sh - g->pad_t + ky;
          if (iy < 0 || iy >= g->h) continue;
          const float *xr = xp + (size_t)iy * g->w;
          for (int kx = 0; kx < g->kw; kx++) {
            const float wv = wp[ky * g->kw + kx];
            int lo, hi;
            valid_range(kx, g->pad_l, g->sw, g->w, g->ow, &lo, &hi);
            const float *xs = xr + kx - g->pad_l;
            if (g->sw == 1) {
#pragma omp simd
              for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xs[ox];
            } else {
              const int s = g->sw;
              for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xs[ox * s];
            }
          }
        }
      }
    }
  }
}

/* dx += d conv / dx; one thread per (n, ic) plane, so no write conflicts. */
static void direct_backward_data(const fb_conv_geom *g, const float *dy, const float *w,
                                 float *dx) {
  const int cig = g->c_in / g->groups, cog = g->c_out / g->groups;
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (long nc = 0; nc < (long)g->n * g->c_in; nc++) {
    const int n = (int)(nc / g->c_in), ic = (int)(nc % g->c_in);
    const int grp = ic / cig, icl = ic % cig;
    float *dxp = dx + (size_t)nc * hw;
    for (int ocl = 0; ocl < cog; ocl++) {
      const int oc = grp * cog + ocl;
      const float *dyp = dy + ((size_t)n * g->c_out + oc) * ohw;
      const float *wp = w + ((size_t)oc * cig + icl) * g->kh * g->kw;
      for (int oy = 0; oy < g->oh; oy++) {
        const float *dyr = dyp + (size_t)oy * g->ow;
        for (int ky = 0; ky < g->kh; ky++) {
          const int iy = oy * g->sh - g->pad_t + ky;
          if (iy < 0 || iy >= g->h) continue;
          float *dxr = dxp + (size_t)iy * g->w;
          for (int kx = 0; kx < g->kw; kx++) {
            const float wv = wp[ky * g->kw + kx];
            int lo, hi;
            valid_range(kx, g->pad_l, g->sw, g->w, g->ow, &lo, &hi);
            float *ds = dxr + kx - g->pad_l;
            if (g->sw == 1) {
#pragma omp simd
              for (int ox = lo; ox < hi; ox++) ds[ox] += wv * dyr[ox];
            } else {
              const int s = g->sw;
              for (int ox = lo; ox < hi; ox++) ds[ox * s] += wv * dyr[ox];
            }
          }
        }
      }
    }
  }
}

/* dw += d conv / dw, db += per-channel sums of dy (each may be NULL). */
static void direct_backward_weights(const fb_conv_geom *g, const float *x, const float *dy,
                                    float *dw, float *db) {
  const int cig = g->c_in / g->groups, cog = g->c_out / g->groups;
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  const int kk = g->kh * g->kw;
  if (dw) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
    for (long oi = 0; oi < (long)g->c_out * cig; oi++) {
      const int oc = (int)(oi / cig), icl = (int)(oi % cig), grp = oc / cog;
      float acc[kk];
      for (int k = 0; k < kk; k++) acc[k] = 0.0f;
      for (int n = 0; n < g->n; n++) {
        const float *xp = x + ((size_t)n * g->c_in + grp * cig + icl) * hw;
        const float *dyp = dy + ((size_t)n * g->c_out + oc) * ohw;
        for (int oy = 0; oy < g->oh; oy++) {
          const float *dyr = dyp + (size_t)oy * g->ow;
          for (int ky = 0; ky < g->kh; ky++) {
            const int iy = oy * g->sh - g->pad_t + ky;
            if (iy < 0 || iy >= g->h) continue;
            const float *xr = xp + (size_t)iy * g->w;
            for (int kx = 0; kx < g->kw; kx++) {
              int lo, hi;
              valid_range(kx, g->pad_l, g->sw, g->w, g->ow, &lo, &hi);
              const float *xs = xr + kx - g->pad_l;
              float s = 0.0f;
              if (g->sw == 1) {
#pragma omp simd reduction(+ : s)
                for (int ox = lo; ox < hi; ox++) s += xs[ox] * dyr[ox];
              } else {
                const int st = g->sw;
                for (int ox = lo; ox < hi; ox++) s += xs[ox * st] * dyr[ox];
              }
              acc[ky * g->kw + kx] += s;
            }
          }
        }
      }
      float *dwp = dw + (size_t)oi * kk;
      for (int k = 0; k < kk; k++) dwp[k] += acc[k];
    }
  }
  if (db) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
    for (int oc = 0; oc < g->c_out; oc++) {
      float s = 0.0f;
      for (int n = 0; n < g->n; n++) {
        const float *dyp = dy + ((size_t)n * g->c_out + oc) * ohw;
#pragma omp simd reduction(+ : s)
        for (size_t i = 0; i < ohw; i++) s += dyp[i];
      }
      db[oc] += s;
    }
  }
}

/* ---- depthwise SIMD kernel -------------------------------------------------
 *
 * One plane at a time: the source plane is copied into a zero-padded buffer
 * split into `sx` column phases (column c goes to phase c % sx at c / sx), so
 * every tap reads 8 consecutive floats whatever the stride, and the output row
 * is accumulated in registers over all kh*kw taps. Rows are padded to a
 * multiple of 8 so no tap needs a bounds check.
 *
 *   out[oy][ox] (+)= bias + sum_{ky,kx} k[ky][kx] * src[oy*sy + ky - oy0][ox*sx + kx - ox0]
 *
 * with src zero outside its (sh_, sw_) extent; `dil` > 1 reads src dilated by
 * zeros (used for the backward pass of strided convolutions). */

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline v8 splat8(float f) { return (v8){f, f, f, f, f, f, f, f}; }

typedef struct dw_plane {
  int oh, ow, kh, kw, sy, sx;
  int rows, pw; /* buffer: sx phases of rows x pw */
} dw_plane;

static dw_plane dw_plane_geom(int oh, int ow, int kh, int kw, int sy, int sx) {
  dw_plane d = {oh, ow, kh, kw, sy, sx, 0, 0};
  d.rows = (oh - 1) * sy + kh;
  d.pw = (ow + 7) / 8 * 8 + (kw - 1) / sx + 1;
  return d;
}
static size_t dw_buf_size(const dw_plane *d) { return (size_t)d->sx * d->rows * d->pw; }

static void dw_fill(const dw_plane *d, float *buf, const float *src, int sh_, int sw_, int dil,
                    int oy0, int ox0) {
  memset(buf, 0, dw_buf_size(d) * sizeof(float));
  const size_t phase = (size_t)d->rows * d->pw;
  const int limit = d->sx * d->pw; /* padded columns the buffer holds */
  for (int r = 0; r < sh_; r++) {
    const int br = r * dil + oy0;
    if (br >= d->rows) break;
    const float *sr = src + (size_t)r * sw_;
    float *row = buf + (size_t)br * d->pw;
    if (d->sx == 1 && dil == 1) {
      const int n = sw_ + ox0 <= limit ? sw_ : limit - ox0;
      memcpy(row + ox0, sr, (size_t)n * sizeof(float));
      continue;
    }
    int p = ox0 % d->sx, j = ox0 / d->sx; /* phase and index of column c * dil + ox0 */
    const int dp = dil % d->sx, dj = dil / d->sx;
    for (int c = 0; c < sw_ && j < d->pw; c++) {
      row[(size_t)p * phase + j] = sr[c];
      p += dp;
      j += dj;
      if (p >= d->sx) {
        p -= d->sx;
        j++;
      }
    }
  }
}

/* nb vectors (8 * nb outputs) of one output row starting at column ox; off[kx]
 * is where tap column kx starts in the phased buffer. */
static inline __attribute__((always_inline)) void dw_row_block(const dw_plane *d, const float *buf,
                                                               const float *k, const int *off,
                                                               int oy, int ox, float bias, int nb,
                                                               v8 *out) {
  v8 acc[4];
  for (int v = 0; v < nb; v++) acc[v] = splat8(bias);
  for (int ky = 0; ky < d->kh; ky++) {
    const float *row = buf + (size_t)(oy * d->sy + ky) * d->pw + ox;
    const float *kr = k + ky * d->kw;
    for (int kx = 0; kx < d->kw; kx++) {
      const float *p = row + off[kx];
      const v8 wv = splat8(kr[kx]);
      for (int v = 0; v < nb; v++) acc[v] += wv * load8(p + 8 * v);
    }
  }
  for (int v = 0; v < nb; v++) out[v] = acc[v];
}

static void tap_offsets(const dw_plane *d, int *off) {
  for (int kx = 0; kx < d->kw; kx++) off[kx] = (kx % d->sx) * d->rows * d->pw + kx / d->sx;
}

static void dw_plane_conv(const dw_plane *d, const float *buf, const float *k, float bias,
                          float *out, int accumulate) {
  int off[8];
  tap_offsets(d, off);
  for (int oy = 0; oy < d->oh; oy++) {
    float *o = out + (size_t)oy * d->ow;
    int ox = 0;
    while (ox < d->ow) {
      v8 r[4];
      const int left = (d->ow - ox + 7) / 8;
      const int nb = left >= 4 ? 4 : left >= 2 ? 2 : 1;
      if (nb == 4)
        dw_row_block(d, buf, k, off, oy, ox, bias, 4, r);
      else if (nb == 2)
        dw_row_block(d, buf, k, off, oy, ox, bias, 2, r);
      else
        dw_row_block(d, buf, k, off, oy, ox, bias, 1, r);
      float tmp[32];
      memcpy(tmp, r, sizeof(v8) * nb);
      const int cnt = d->ow - ox < 8 * nb ? d->ow - ox : 8 * nb;
      if (accumulate)
        for (int i = 0; i < cnt; i++) o[ox + i] += tmp[i];
      else
        memcpy(o + ox, tmp, cnt * sizeof(float));
      ox += cnt;
    }
  }
}

/* dk[ky][kx] += sum_{oy,ox} dyb[oy][ox] * src[oy*sy + ky - oy0][ox*sx + kx - ox0]; dyb is dy
 * with rows padded to a multiple of 8 by zeros. kw <= 8. */
static void dw_plane_dk(const dw_plane *d, const float *buf, const float *dyb, float *dk) {
  const int w8 = (d->ow + 7) / 8 * 8;
  int off[8];
  tap_offsets(d, off);
  for (int ky = 0; ky < d->kh; ky++) {
    v8 acc[8];
    for (int kx = 0; kx < d->kw; kx++) acc[kx] = splat8(0.0f);
    for (int oy = 0; oy < d->oh; oy++) {
      const float *row = buf + (size_t)(oy * d->sy + ky) * d->pw;
      const float *dr = dyb + (size_t)oy * w8;
      for (int ox = 0; ox < w8; ox += 8) {
        const v8 g = load8(dr + ox);
        for (int kx = 0; kx < d->kw; kx++)
          acc[kx] += g * load8(row + off[kx] + ox);
      }
    }
    for (int kx = 0; kx < d->kw; kx++) {
      float t[8];
      memcpy(t, &acc[kx], sizeof t);
      dk[ky * d->kw + kx] += ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    }
  }
}

/* Geometry of the three passes of a depthwise conv; the backward-data pass is
 * a stride-1 correlation of dy (dilated by the stride) with the flipped kernel. */
typedef struct dw_geoms {
  dw_plane fwd, bwd;
  size_t buf, dyb; /* per-thread floats: plane buffer, padded dy rows */
} dw_geoms;

static int dw_supported(const fb_conv_geom *g) {
  return g->groups == g->c_in && g->groups == g->c_out && g->kw <= 8 && g->kh * g->kw <= 64 &&
         g->sh == g->sw && g->pad_t <= g->kh - 1 && g->pad_l <= g->kw - 1;
}

static dw_geoms dw_geoms_of(const fb_conv_geom *g) {
  dw_geoms d;
  d.fwd = dw_plane_geom(g->oh, g->ow, g->kh, g->kw, g->sh, g->sw);
  d.bwd = dw_plane_geom(g->h, g->w, g->kh, g->kw, 1, 1);
  size_t a = dw_buf_size(&d.fwd), b = dw_buf_size(&d.bwd);
  d.buf = a > b ? a : b;
  d.dyb = (size_t)g->oh * ((g->ow + 7) / 8 * 8);
  return d;
}

static void dw_forward(const fb_conv_geom *g, int nthr, float *scratch, size_t per_thread, const float *x,
                       const float *w, const float *b, float *y) {
  const dw_geoms d = dw_geoms_of(g);
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  const int kk = g->kh * g->kw;
#pragma omp parallel num_threads(nthr) if (worth_threads(g))
  {
    float *buf = scratch + (size_t)omp_get_thread_num() * per_thread;
#pragma omp for schedule(static)
    for (long nc = 0; nc < (long)g->n * g->c_in; nc++) {
      const int c = (int)(nc % g->c_in);
      dw_fill(&d.fwd, buf, x + (size_t)nc * hw, g->h, g->w, 1, g->pad_t, g->pad_l);
      dw_plane_conv(&d.fwd, buf, w + (size_t)c * kk, b ? b[c] : 0.0f, y + (size_t)nc * ohw, 0);
    }
  }
}

static void dw_backward_data(const fb_conv_geom *g, int nthr, float *scratch, size_t per_thread,
                             const float *dy, const float *w, float *dx) {
  const dw_geoms d = dw_geoms_of(g);
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  const int kk = g->kh * g->kw;
#pragma omp parallel num_threads(nthr) if (worth_threads(g))
  {
    float *buf = scratch + (size_t)omp_get_thread_num() * per_thread;
    float kf[64];
#pragma omp for schedule(static)
    for (long nc = 0; nc < (long)g->n * g->c_in; nc++) {
      const int c = (int)(nc % g->c_in);
      for (int i = 0; i < kk; i++) kf[i] = w[(size_t)c * kk + kk - 1 - i]; /* flipped */
      dw_fill(&d.bwd, buf, dy + (size_t)nc * ohw, g->oh, g->ow, g->sh == g->sw ? g->sh : 1,
              g->kh - 1 - g->pad_t, g->kw - 1 - g->pad_l);
      dw_plane_conv(&d.bwd, buf, kf, 0.0f, dx + (size_t)nc * hw, 1);
    }
  }
}

static void dw_backward_weights(const fb_conv_geom *g, int nthr, float *scratch, size_t per_thread,
                                const float *x, const float *dy, float *dw) {
  const dw_geoms d = dw_geoms_of(g);
  const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  const int kk = g->kh * g->kw, w8 = (g->ow + 7) / 8 * 8;
#pragma omp parallel num_threads(nthr) if (worth_threads(g))
  {
    float *buf = scratch + (size_t)omp_get_thread_num() * per_thread, *dyb = buf + d.buf;
#pragma omp for schedule(static)
    for (int c = 0; c < g->c_in; c++) {
      float dk[64] = {0};
      for (int n = 0; n < g->n; n++) {
        const size_t nc = (size_t)n * g->c_in + c;
        dw_fill(&d.fwd, buf, x + nc * hw, g->h, g->w, 1, g->pad_t, g->pad_l);
        memset(dyb, 0, d.dyb * sizeof(float));
        for (int oy = 0; oy < g->oh; oy++)
          memcpy(dyb + (size_t)oy * w8, dy + nc * ohw + (size_t)oy * g->ow, g->ow * sizeof(float));
        dw_plane_dk(&d.fwd, buf, dyb, dk);
      }
      for (int i = 0; i < kk; i++) dw[(size_t)c * kk + i] += dk[i];
    }
  }
}

/* ---- fast path: cache and dispatch ----------------------------------------- */

enum { IMPL_AUTO = 0, IMPL_DNNL = 1, IMPL_DIRECT = 2, IMPL_DW = 3, IMPL_GEMM = 4 };

/* A 1x1 conv on a 1x1 map (the classification head's fc conv) is a matrix
 * product: x (n x ci) * W^T. oneDNN's NCHW convolution backward took 18 ms for
 * the 1344 -> 1984 head conv at batch 32 where the same sgemm takes about 1. */
static int gemm_supported(const fb_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->groups == 1 && g->h == 1 && g->w == 1 &&
         g->oh == 1 && g->ow == 1 && !g->pad_t && !g->pad_l && !g->pad_b && !g->pad_r;
}

/* y (n x co) = x (n x ci) W^T (+ b); a plain loop when sgemm refuses. */
static void gemm_forward(const fb_conv_geom *g, const float *x, const float *w, const float *b,
                         float *y) {
  const int n = g->n, ci = g->c_in, co = g->c_out;
  if (fb_dnnl_sgemm('N', 'T', n, co, ci, 1.0f, x, ci, w, ci, 0.0f, y, co) != 0)
    for (long io = 0; io < (long)n * co; io++) {
      const float *xr = x + (io / co) * ci, *wr = w + (io % co) * ci;
      float acc = 0.0f;
      for (int c = 0; c < ci; c++) acc += xr[c] * wr[c];
      y[io] = acc;
    }
  if (b)
    for (int i = 0; i < n; i++)
      for (int o = 0; o < co; o++) y[(size_t)i * co + o] += b[o];
}

/* dx += dy W, dW += dy^T x, db += sum dy (each when requested). */
static void gemm_backward(const fb_conv_geom *g, const float *x, const float *w, const float *dy,
                          float *dx, float *dw, float *db) {
  const int n = g->n, ci = g->c_in, co = g->c_out;
  if (dx && fb_dnnl_sgemm('N', 'N', n, ci, co, 1.0f, dy, co, w, ci, 1.0f, dx, ci) != 0)
    for (long ic = 0; ic < (long)n * ci; ic++) {
      float acc = 0.0f;
      for (int o = 0; o < co; o++) acc += dy[(ic / ci) * co + o] * w[(size_t)o * ci + ic % ci];
      dx[ic] += acc;
    }
  if (dw && fb_dnnl_sgemm('T', 'N', co, ci, n, 1.0f, dy, co, x, ci, 1.0f, dw, ci) != 0)
    for (long oc = 0; oc < (long)co * ci; oc++) {
      float acc = 0.0f;
      for (int i = 0; i < n; i++) acc += dy[(size_t)i * co + oc / ci] * x[(size_t)i * ci + oc % ci];
      dw[oc] += acc;
    }
  if (db)
    for (int i = 0; i < n; i++)
      for (int o = 0; o < co; o++) db[o] += dy[(size_t)i * co + o];
}

typedef struct conv_impl {
  fb_conv_geom g;
  int forced;         /* IMPL_* chosen by fb_conv2d_force_impl (tests, bench) */
  fb_dnnl_conv *dnnl; /* oneDNN primitives, or NULL */
  int use_dw;         /* depthwise SIMD kernel */
  int use_gemm;       /* 1x1 conv on a 1x1 map: sgemm */
  int nthr;           /* threads the depthwise scratch was sized for */
  size_t dw_per_thread;
  float *dw_scratch;
} conv_impl;

static void impl_release(conv_impl *im) {
  fb_dnnl_conv_free(im->dnnl);
  free(im->dw_scratch);
  im->dnnl = NULL;
  im->dw_scratch = NULL;
  im->use_dw = 0;
  im->use_gemm = 0;
}

static void conv_ctx_free(fb_op_ctx *ctx) {
  conv_impl *im = ctx->impl;
  if (im) {
    impl_release(im);
    free(im);
  }
  ctx->impl = NULL;
}

/* The cached kernel for these shapes, rebuilt when they changed. Choice:
 * depthwise -> SIMD kernel (oneDNN on NCHW measured 10-20x slower there),
 * otherwise oneDNN; the generic direct kernel when neither applies. */
static conv_impl *get_impl(fb_op_ctx *ctx, const fb_op_args *a) {
  fb_conv_geom g = geom_of(a);
  conv_impl *im = ctx->impl;
  if (im && fb_conv_geom_equal(&im->g, &g)) return im;
  if (im) {
    impl_release(im);
  } else {
    im = fb_xcalloc(1, sizeof *im);
    ctx->impl = im;
  }
  im->g = g;
  const int f = im->forced;
  if ((f == IMPL_AUTO || f == IMPL_GEMM) && gemm_supported(&g)) {
    im->use_gemm = 1;
  } else if ((f == IMPL_AUTO || f == IMPL_DW) && dw_supported(&g)) {
    const dw_geoms d = dw_geoms_of(&g);
    im->use_dw = 1;
    im->nthr = omp_get_max_threads();
    im->dw_per_thread = (d.buf + d.dyb + 15) / 16 * 16;
    im->dw_scratch = fb_alloc_floats(im->dw_per_thread * im->nthr);
  } else if (f == IMPL_AUTO || f == IMPL_DNNL) {
    char msg[256];
    im->dnnl = fb_dnnl_conv_create(&g, msg, sizeof msg); /* NULL: direct fallback */
  }
  return im;
}

/* Test/bench hook: 1 = oneDNN, 2 = generic direct kernels, 3 = depthwise SIMD
 * kernel (where it applies), 4 = sgemm (1x1 conv on a 1x1 map, where it
 * applies), 0 = automatic choice. Drops the cache. */
void fb_conv2d_force_impl(fb_op_ctx *ctx, int which);
void fb_conv2d_force_impl(fb_op_ctx *ctx, int which) {
  conv_ctx_free(ctx);
  conv_impl *im = fb_xcalloc(1, sizeof *im);
  im->g.n = -1; /* never equal to a real geometry: forces a rebuild */
  im->forced = which;
  ctx->impl = im;
}

static void conv_fwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                     float *const *par, float *out, float *ws) {
  (void)ws;
  conv_impl *im = get_impl(ctx, a);
  const float *b = im->g.has_bias ? par[1] : NULL;
  if (im->use_gemm) {
    gemm_forward(&im->g, in[0], par[0], b, out);
    return;
  }
  if (im->use_dw) {
    dw_forward(&im->g, im->nthr, im->dw_scratch, im->dw_per_thread, in[0], par[0], b, out);
    return;
  }
  if (im->dnnl && fb_dnnl_conv_forward(im->dnnl, in[0], par[0], b, out) == 0) return;
  direct_forward(&im->g, in[0], par[0], b, out);
}

static void conv_bwd(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                     const float *const *par, const float *out, const float *dout,
                     float *const *din, float *const *dpar, const float *ws) {
  (void)out;
  (void)ws;
  conv_impl *im = get_impl(ctx, a);
  const fb_conv_geom *g = &im->g;
  float *dw = dpar[0], *db = g->has_bias ? dpar[1] : NULL;
  if (im->use_gemm) {
    gemm_backward(g, in[0], par[0], dout, din[0], dw, db);
    return;
  }
  if (im->use_dw) {
    if (din[0])
      dw_backward_data(g, im->nthr, im->dw_scratch, im->dw_per_thread, dout, par[0], din[0]);
    if (dw) dw_backward_weights(g, im->nthr, im->dw_scratch, im->dw_per_thread, in[0], dout, dw);
    if (db) direct_backward_weights(g, in[0], dout, NULL, db);
    return;
  }
  if (din[0]) {
    if (!im->dnnl || fb_dnnl_conv_backward_data(im->dnnl, dout, par[0], din[0], 1) != 0)
      direct_backward_data(g, dout, par[0], din[0]);
  }
  if (dw) {
    if (!im->dnnl || fb_dnnl_conv_backward_weights(im->dnnl, in[0], dout, dw, db, 1) != 0)
      direct_backward_weights(g, in[0], dout, dw, db);
  } else if (db) {
    direct_backward_weights(g, in[0], dout, NULL, db);
  }
}

/* ---- test instances -------------------------------------------------------- */

static void conv_random_case(fb_op_args *a, fb_rng *rng) {
  static const int ks[3] = {1, 3, 5};
  fb_op_attr t = fb_attr_default();
  t.kh = ks[fb_rng_below(rng, 3)];
  t.kw = fb_rng_below(rng, 4) == 0 ? ks[fb_rng_below(rng, 3)] : t.kh;
  t.sh = 1 + (int)fb_rng_below(rng, 2);
  t.sw = fb_rng_below(rng, 4) == 0 ? 1 + (int)fb_rng_below(rng, 2) : t.sh;
  t.pad_t = (int)fb_rng_below(rng, (uint32_t)t.kh);
  t.pad_b = (int)fb_rng_below(rng, (uint32_t)t.kh);
  t.pad_l = (int)fb_rng_below(rng, (uint32_t)t.kw);
  t.pad_r = (int)fb_rng_below(rng, (uint32_t)t.kw);
  t.has_bias = (int)fb_rng_below(rng, 2);
  int c_in, mode = (int)fb_rng_below(rng, 3); /* 0: dense, 1: groups 2, 2: depthwise */
  if (mode == 0) {
    c_in = 1 + (int)fb_rng_below(rng, 4);
    t.groups = 1;
    t.c_out = 1 + (int)fb_rng_below(rng, 4);
  } else if (mode == 1) {
    c_in = 2 * (1 + (int)fb_rng_below(rng, 2));
    t.groups = 2;
    t.c_out = 2 * (1 + (int)fb_rng_below(rng, 2));
  } else {
    c_in = 2 + (int)fb_rng_below(rng, 3);
    t.groups = c_in;
    t.c_out = c_in;
  }
  /* Input at least as large as the kernel so every case is valid. */
  int h = t.kh + (int)fb_rng_below(rng, 5), w = t.kw + (int)fb_rng_below(rng, 5);
  a->n_in = 1;
  a->in[0] = fb_shape4(1 + (int)fb_rng_below(rng, 2), c_in, h, w);
  a->attr = t;
}

/* MACs: every output element takes c_in/groups * kh * kw multiply-adds. */
static double conv2d_macs(const fb_op_args *a) {
  const fb_shape w = a->par[0];
  return (double)fb_numel(a->out) * w.c * w.h * w.w;
}

const fb_op fb_op_conv2d = {
    .name = "conv2d",
    .kind = FB_OPK_CONV,
    .macs = conv2d_macs,
    .bwd_reads_in = 1,
    .infer = conv_infer,
    .ws_size = conv_ws_size,
    .fwd_ref = conv_fwd_ref,
    .bwd_ref = conv_bwd_ref,
    .fwd = conv_fwd,
    .bwd = conv_bwd,
    .ctx_free = conv_ctx_free,
    .random_case = conv_random_case,
    .n_diff_in = 1,
    .n_diff_par = 2,
    .is_loss = 0,
    .par_name = {"weight", "bias"},
    .par_group = {FB_PG_WEIGHT, FB_PG_NO_DECAY},
    .par_init = {FB_INIT_KAIMING_OUT, FB_INIT_ZERO},
};
