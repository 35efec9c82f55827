/* conv2d and linear: double reference kernels checked by central finite
 * differences, then the fast float kernels (oneDNN and the direct kernels)
 * checked against the reference, forward and backward (with accumulation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "core/status.h"
#include "ops/op.h"

extern const fb_op fb_op_conv2d, fb_op_linear;
void fb_conv2d_force_impl(fb_op_ctx *ctx, int which); /* in src/ops/conv2d.c */

/* All tensors of one op instance, in double and float. */
typedef struct inst {
  fb_op_args a;
  size_t nx, ny, np[FB_MAX_PAR];
  double *x, *par[FB_MAX_PAR], *dy, *y, *dx, *dpar[FB_MAX_PAR];
} inst;

static double *rand_doubles(fb_rng *r, size_t n) {
  double *p = fb_alloc_doubles(n);
  for (size_t i = 0; i < n; i++) p[i] = 2.0 * fb_rng_uniform(r) - 1.0;
  return p;
}

static int inst_make(inst *s, const fb_op *op, fb_rng *r) {
  char msg[256] = "";
  if (op->infer(&s->a, msg) != 0) {
    CHECK(0, "%s infer failed: %s", op->name, msg);
    return -1;
  }
  s->nx = fb_numel(s->a.in[0]);
  s->ny = fb_numel(s->a.out);
  s->x = rand_doubles(r, s->nx);
  s->dy = rand_doubles(r, s->ny);
  s->y = fb_alloc_doubles(s->ny);
  s->dx = fb_alloc_doubles(s->nx);
  for (int k = 0; k < s->a.n_par; k++) {
    s->np[k] = fb_numel(s->a.par[k]);
    s->par[k] = rand_doubles(r, s->np[k]);
    s->dpar[k] = fb_alloc_doubles(s->np[k]);
  }
  return 0;
}

static void inst_free(inst *s) {
  free(s->x);
  free(s->dy);
  free(s->y);
  free(s->dx);
  for (int k = 0; k < s->a.n_par; k++) {
    free(s->par[k]);
    free(s->dpar[k]);
  }
}

static double weighted_out(const fb_op *op, inst *s) {
  const double *in[1] = {s->x};
  op->fwd_ref(&s->a, in, s->par, s->y, NULL);
  double l = 0;
  for (size_t i = 0; i < s->ny; i++) l += s->y[i] * s->dy[i];
  return l;
}

/* Central differences of L = sum(y * dy) against bwd_ref; returns max rel error. */
static double fd_check(const fb_op *op, inst *s) {
  const double eps = 1e-6;
  memset(s->dx, 0, s->nx * sizeof(double));
  for (int k = 0; k < s->a.n_par; k++) memset(s->dpar[k], 0, s->np[k] * sizeof(double));
  const double *in[1] = {s->x};
  double *din[1] = {s->dx};
  op->fwd_ref(&s->a, in, s->par, s->y, NULL);
  op->bwd_ref(&s->a, in, (const double *const *)s->par, s->y, s->dy, din, s->dpar, NULL);
  double worst = 0;
  for (int t = -1; t < s->a.n_par; t++) {
    double *v = t < 0 ? s->x : s->par[t], *g = t < 0 ? s->dx : s->dpar[t];
    size_t n = t < 0 ? s->nx : s->np[t];
    /* every element of small tensors, an even sample of larger ones */
    size_t step = n > 48 ? n / 48 : 1;
    for (size_t i = (size_t)(t + 1) % step; i < n; i += step) {
      double keep = v[i];
      v[i] = keep + eps;
      double lp = weighted_out(op, s);
      v[i] = keep - eps;
      double lm = weighted_out(op, s);
      v[i] = keep;
      double num = (lp - lm) / (2 * eps);
      double err = fabs(num - g[i]) / fmax(1.0, fabs(g[i]));
      if (err > worst) worst = err;
    }
  }
  return worst;
}

static float *to_float(const double *p, size_t n) {
  float *f = fb_alloc_floats(n);
  for (size_t i = 0; i < n; i++) f[i] = (float)p[i];
  return f;
}

/* max |f - d| / max(max |d|, 1e-3) */
static double rel_err(const float *f, const double *d, size_t n) {
  double m = 1e-3, e = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabs(d[i]) > m) m = fabs(d[i]);
    double di = fabs((double)f[i] - d[i]);
    if (di > e) e = di;
  }
  return e / m;
}

/* Fast float fwd/bwd vs double reference; gradient buffers start at a
 * non-zero value to check that backward accumulates. impl: see
 * fb_conv2d_force_impl (-1: leave the ctx alone). Returns the worst error. */
static const double pre = 0.25;

/* Reference output and gradients (gradients start at `pre`). */
static void ref_run(const fb_op *op, inst *s) {
  for (size_t i = 0; i < s->nx; i++) s->dx[i] = pre;
  for (int k = 0; k < s->a.n_par; k++)
    for (size_t i = 0; i < s->np[k]; i++) s->dpar[k][i] = pre;
  const double *in[1] = {s->x};
  double *din[1] = {s->dx};
  op->fwd_ref(&s->a, in, s->par, s->y, NULL);
  op->bwd_ref(&s->a, in, (const double *const *)s->par, s->y, s->dy, din, s->dpar, NULL);
}

/* Call ref_run first. */
static double fast_check(const fb_op *op, inst *s, int impl, fb_op_ctx *ctx_in) {
  fb_op_ctx own = {0}, *ctx = ctx_in ? ctx_in : &own;
  if (impl >= 0) fb_conv2d_force_impl(ctx, impl);

  float *fx = to_float(s->x, s->nx), *fdy = to_float(s->dy, s->ny);
  float *fy = fb_alloc_floats(s->ny), *fdx = fb_alloc_floats(s->nx);
  float *fpar[FB_MAX_PAR] = {0}, *fdpar[FB_MAX_PAR] = {0};
  for (size_t i = 0; i < s->nx; i++) fdx[i] = (float)pre;
  for (int k = 0; k < s->a.n_par; k++) {
    fpar[k] = to_float(s->par[k], s->np[k]);
    fdpar[k] = fb_alloc_floats(s->np[k]);
    for (size_t i = 0; i < s->np[k]; i++) fdpar[k][i] = (float)pre;
  }
  const float *fin[1] = {fx};
  float *fdin[1] = {fdx};
  op->fwd(ctx, &s->a, fin, fpar, fy, NULL);
  op->bwd(ctx, &s->a, fin, (const float *const *)fpar, fy, fdy, fdin, fdpar, NULL);
  double worst = rel_err(fy, s->y, s->ny);
  double e = rel_err(fdx, s->dx, s->nx);
  if (e > worst) worst = e;
  for (int k = 0; k < s->a.n_par; k++) {
    e = rel_err(fdpar[k], s->dpar[k], s->np[k]);
    if (e > worst) worst = e;
  }
  free(fx);
  free(fdy);
  free(fy);
  free(fdx);
  for (int k = 0; k < s->a.n_par; k++) {
    free(fpar[k]);
    free(fdpar[k]);
  }
  if (!ctx_in && op->ctx_free) op->ctx_free(&own);
  return worst;
}

static fb_op_args conv_args(int n, int c, int h, int w, int c_out, int kh, int kw, int sh,
                            int sw, int pt, int pl, int pb, int pr, int groups, int bias) {
  fb_op_args a;
  memset(&a, 0, sizeof a);
  a.n_in = 1;
  a.in[0] = fb_shape4(n, c, h, w);
  a.attr = fb_attr_default();
  a.attr.kh = kh;
  a.attr.kw = kw;
  a.attr.sh = sh;
  a.attr.sw = sw;
  a.attr.pad_t = pt;
  a.attr.pad_l = pl;
  a.attr.pad_b = pb;
  a.attr.pad_r = pr;
  a.attr.groups = groups;
  a.attr.c_out = c_out;
  a.attr.has_bias = bias;
  return a;
}

static void describe(const fb_op_args *a, char *buf, size_t n) {
  const fb_op_attr *t = &a->attr;
  snprintf(buf, n, "x(%d,%d,%d,%d) c_out %d k%dx%d s%dx%d pad t%d l%d b%d r%d g%d bias %d",
           a->in[0].n, a->in[0].c, a->in[0].h, a->in[0].w, t->c_out, t->kh, t->kw, t->sh, t->sw,
           t->pad_t, t->pad_l, t->pad_b, t->pad_r, t->groups, t->has_bias);
}

/* Reference FD check + all fast implementations for one conv instance. */
static void check_conv_case(fb_op_args a, fb_rng *r, int do_fd) {
  inst s;
  memset(&s, 0, sizeof s);
  s.a = a;
  char d[256];
  describe(&a, d, sizeof d);
  if (inst_make(&s, &fb_op_conv2d, r) != 0) return;
  if (do_fd) {
    double e = fd_check(&fb_op_conv2d, &s);
    CHECK(e < 1e-6, "conv ref finite differences %s: rel err %.3g", d, e);
  }
  static const char *names[4] = {"auto", "oneDNN", "direct", "dw-simd"};
  ref_run(&fb_op_conv2d, &s);
  for (int impl = 0; impl < 4; impl++) {
    double e = fast_check(&fb_op_conv2d, &s, impl, NULL);
    CHECK(e < 1e-4, "conv fast (%s) vs ref %s: rel err %.3g", names[impl], d, e);
  }
  inst_free(&s);
}

static void test_conv_shapes(void) {
  char msg[256];
  /* PyTorch output size: 13 + 0 - 3 over 2, plus 1 = 6 (FBNetV3-A stage 5). */
  fb_op_args a = conv_args(2, 8, 13, 13, 8, 3, 3, 2, 2, 0, 0, 0, 0, 8, 0);
  CHECK(fb_op_conv2d.infer(&a, msg) == 0, "depthwise infer: %s", msg);
  CHECK(a.out.n == 2 && a.out.c == 8 && a.out.h == 6 && a.out.w == 6, "out %dx%d", a.out.h,
        a.out.w);
  CHECK(a.n_par == 1 && a.par[0].n == 8 && a.par[0].c == 1 && a.par[0].h == 3 &&
            a.par[0].w == 3,
        "depthwise weight shape");
  /* asymmetric padding: H 7 + 1 + 2 - 3 = 7, W 6 + 0 + 1 - 5 over 2 = 1, plus 1 = 2. */
  a = conv_args(1, 4, 7, 6, 6, 3, 5, 1, 2, 1, 0, 2, 1, 2, 1);
  CHECK(fb_op_conv2d.infer(&a, msg) == 0, "asym infer: %s", msg);
  CHECK(a.out.h == 8 && a.out.w == 2, "asym out %dx%d", a.out.h, a.out.w);
  CHECK(a.n_par == 2 && a.par[0].c == 2 && a.par[1].n == 6 && a.par[1].c == 1, "asym par");

  struct {
    fb_op_args a;
    const char *want;
  } bad[] = {
      {conv_args(1, 6, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0), "C_in 6 is not divisible"},
      {conv_args(1, 8, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0), "c_out 6 is not divisible"},
      {conv_args(1, 4, 2, 8, 4, 5, 3, 1, 1, 1, 1, 1, 1, 1, 0), "larger than the padded"},
      {conv_args(1, 4, 8, 8, 4, 3, 3, 0, 1, 1, 1, 1, 1, 1, 0), "stride"},
      {conv_args(1, 4, 8, 8, 4, 3, 3, 1, 1, -1, 1, 1, 1, 1, 0), "padding"},
      {conv_args(1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 8, 0), "groups 8"},
      {conv_args(1, 4, 8, 8, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0), "c_out 0"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msg[0] = 0;
    int rc = fb_op_conv2d.infer(&bad[i].a, msg);
    CHECK(rc != 0 && strstr(msg, bad[i].want), "bad conv %zu: rc %d msg '%s' (want '%s')", i, rc,
          msg, bad[i].want);
  }
  fb_op_args l;
  memset(&l, 0, sizeof l);
  l.n_in = 1;
  l.in[0] = fb_shape4(2, 16, 3, 3);
  l.attr = fb_attr_default();
  l.attr.c_out = 4;
  msg[0] = 0;
  CHECK(fb_op_linear.infer(&l, msg) != 0 && strstr(msg, "(N, C, 1, 1)"), "linear 3x3: '%s'",
        msg);
  l.in[0] = fb_shape4(2, 16, 1, 1);
  l.attr.has_bias = 1;
  CHECK(fb_op_linear.infer(&l, msg) == 0, "linear infer: %s", msg);
  CHECK(l.n_par == 2 && l.par[0].n == 4 && l.par[0].c == 16 && l.out.c == 4 && l.out.n == 2,
        "linear shapes");
}

static void test_conv_random(fb_rng *r) {
  for (int i = 0; i < 60; i++) {
    fb_op_args a;
    memset(&a, 0, sizeof a);
    fb_op_conv2d.random_case(&a, r);
    check_conv_case(a, r, i < 30);
  }
}

static void test_conv_fixed(fb_rng *r) {
  /* depthwise 5x5 stride 2, asymmetric padding, batch 3 */
  check_conv_case(conv_args(3, 6, 11, 10, 6, 5, 5, 2, 2, 2, 1, 1, 2, 6, 1), r, 1);
  check_conv_case(conv_args(2, 5, 9, 9, 5, 5, 5, 2, 2, 2, 2, 2, 2, 5, 0), r, 1);
  /* depthwise 3x3 stride 1 */
  check_conv_case(conv_args(2, 4, 8, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0), r, 1);
  /* dense 3x3 stride 2 with bias (stem-like), groups 2, 1x1 */
  check_conv_case(conv_args(2, 3, 12, 12, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1), r, 1);
  check_conv_case(conv_args(2, 4, 6, 6, 6, 3, 3, 1, 1, 0, 2, 1, 0, 2, 1), r, 1);
  check_conv_case(conv_args(4, 12, 5, 5, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0), r, 1);
  /* padding that only touches one side; kernel exactly the padded size */
  check_conv_case(conv_args(1, 2, 3, 3, 2, 5, 5, 1, 1, 2, 0, 0, 2, 1, 1), r, 1);
  /* a larger realistic 1x1: N=8, 32->64, 56x56 (no finite differences) */
  check_conv_case(conv_args(8, 32, 56, 56, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0), r, 0);
  /* FBNetV3-A style depthwise k5 pad 1 stride 2: 28 -> 13 */
  check_conv_case(conv_args(2, 16, 28, 28, 16, 5, 5, 2, 2, 1, 1, 1, 1, 16, 0), r, 0);
}

/* One ctx used with two batch sizes: the cache must be rebuilt. */
static void test_conv_ctx_reuse(fb_rng *r) {
  fb_op_ctx ctx = {0};
  for (int rep = 0; rep < 2; rep++)
    for (int n = 2; n <= 3; n++) {
      inst s;
      memset(&s, 0, sizeof s);
      s.a = conv_args(n, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1);
      if (inst_make(&s, &fb_op_conv2d, r) != 0) return;
      ref_run(&fb_op_conv2d, &s);
      double e = fast_check(&fb_op_conv2d, &s, -1, &ctx);
      CHECK(e < 1e-4, "ctx reuse batch %d: rel err %.3g", n, e);
      inst_free(&s);
    }
  fb_op_conv2d.ctx_free(&ctx);
  CHECK(ctx.impl == NULL, "ctx_free clears impl");
}

/* din/dpar NULL must be skipped. */
static void test_conv_null_grads(fb_rng *r) {
  inst s;
  memset(&s, 0, sizeof s);
  s.a = conv_args(2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
  if (inst_make(&s, &fb_op_conv2d, r) != 0) return;
  for (int impl = 1; impl <= 3; impl++) { /* (impl 4, sgemm, needs a 1x1 map) */
    fb_op_ctx ctx = {0};
    fb_conv2d_force_impl(&ctx, impl);
    float *fx = to_float(s.x, s.nx), *fdy = to_float(s.dy, s.ny), *fy = fb_alloc_floats(s.ny);
    float *fw = to_float(s.par[0], s.np[0]), *fb = to_float(s.par[1], s.np[1]);
    float *fdb = fb_alloc_floats(s.np[1]);
    const float *fin[1] = {fx};
    float *fpar[2] = {fw, fb}, *fdin[1] = {NULL}, *fdpar[2] = {NULL, fdb};
    fb_op_conv2d.fwd(&ctx, &s.a, fin, fpar, fy, NULL);
    fb_op_conv2d.bwd(&ctx, &s.a, fin, (const float *const *)fpar, fy, fdy, fdin, fdpar, NULL);
    double want = 0;
    for (size_t i = 0; i < s.ny / 4 / 2; i++) want += s.dy[i]; /* n 0, channel 0 */
    for (size_t i = 0; i < s.ny / 4 / 2; i++) want += s.dy[s.ny / 2 + i]; /* n 1, channel 0 */
    CHECK_CLOSE(fdb[0], want, 1e-4, "db only");
    fb_op_conv2d.ctx_free(&ctx);
    free(fx);
    free(fdy);
    free(fy);
    free(fw);
    free(fb);
    free(fdb);
  }
  inst_free(&s);
}

static void test_linear(fb_rng *r) {
  for (int i = 0; i < 20; i++) {
    inst s;
    memset(&s, 0, sizeof s);
    fb_op_linear.random_case(&s.a, r);
    if (inst_make(&s, &fb_op_linear, r) != 0) return;
    double e = fd_check(&fb_op_linear, &s);
    CHECK(e < 1e-6, "linear ref finite differences case %d: %.3g", i, e);
    ref_run(&fb_op_linear, &s);
    e = fast_check(&fb_op_linear, &s, -1, NULL);
    CHECK(e < 1e-4, "linear fast vs ref case %d: %.3g", i, e);
    inst_free(&s);
  }
  /* classifier-sized: 1984 -> 10, batch 16, bias */
  inst s;
  memset(&s, 0, sizeof s);
  s.a.n_in = 1;
  s.a.in[0] = fb_shape4(16, 1984, 1, 1);
  s.a.attr = fb_attr_default();
  s.a.attr.c_out = 10;
  s.a.attr.has_bias = 1;
  if (inst_make(&s, &fb_op_linear, r) != 0) return;
  ref_run(&fb_op_linear, &s);
  double e = fast_check(&fb_op_linear, &s, -1, NULL);
  CHECK(e < 1e-4, "linear 1984->10 fast vs ref: %.3g", e);
  inst_free(&s);
}

/* scripts/run_tests.sh sets OMP_WAIT_POLICY=passive: busy-waiting OpenMP
 * workers make this test (serial reference code between short parallel
 * regions) many times slower on a shared machine. */
/* A 1x1 conv on a 1x1 map (the classification head's fc conv) runs as an
 * sgemm (impl 4, and the automatic choice): against the reference, with and
 * without bias, and with din/dw skipped. */
static void test_conv_gemm(fb_rng *r) {
  static const int shapes[][4] = {{32, 24, 40, 1}, {3, 7, 5, 0}, {1, 16, 9, 1}};
  for (int k = 0; k < 3; k++) {
    inst s;
    memset(&s, 0, sizeof s);
    const int *sh = shapes[k];
    s.a = conv_args(sh[0], sh[1], 1, 1, sh[2], 1, 1, 1, 1, 0, 0, 0, 0, 1, sh[3]);
    if (inst_make(&s, &fb_op_conv2d, r) != 0) return;
    ref_run(&fb_op_conv2d, &s);
    double e4 = fast_check(&fb_op_conv2d, &s, 4, NULL), e0 = fast_check(&fb_op_conv2d, &s, 0, NULL);
    CHECK(e4 < 1e-4 && e0 < 1e-4, "1x1 conv on a 1x1 map, n %d ci %d co %d: sgemm rel err %.3g, "
          "auto %.3g", sh[0], sh[1], sh[2], e4, e0);
    inst_free(&s);
  }
}

int main(void) {
  fb_rng r;
  fb_rng_seed(&r, 20261128);
  test_conv_shapes();
  test_conv_random(&r);
  test_conv_fixed(&r);
  test_conv_ctx_reuse(&r);
  test_conv_null_grads(&r);
  test_conv_gemm(&r);
  test_linear(&r);
  return check_report("conv");
}
