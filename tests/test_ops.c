/* Table-driven op tests: every row of fb_op_table() gets
 *   1. a finite-difference gradient check of its double reference kernels
 *      (loss = sum(out * R) for a fixed random R; dout = 1 for a loss),
 *   2. its fast float kernels compared with the reference on the same case
 *      (output, running buffers, every gradient), with backward checked to
 *      ACCUMULATE into pre-filled gradient buffers, and a run with NULL
 *      gradient buffers,
 * plus shape rejection by infer and golden values computed with PyTorch 1.13
 * (kink conventions of the activations, bilinear upsampling, cross-entropy
 * with label smoothing and ignore_index, batch norm in training mode). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "ops/op.h"

#define CASES_PER_OP 6
#define FD_H 1e-6
#define FD_TOL 1e-5
#define FAST_TOL 1e-4

/* Non-differentiable points of piecewise ops: random inputs keep away from
 * them so central differences do not straddle a kink. */
static double keep_off_kinks(const fb_op *op, double x) {
  for (int j = 0; j < op->n_kinks; j++) {
    const double d = x - op->kinks[j];
    if (fabs(d) < 1e-2) x = op->kinks[j] + (d < 0 ? -1e-2 : 1e-2);
  }
  return x;
}

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* One op instance with all its buffers in both precisions. */
typedef struct tcase {
  const fb_op *op;
  fb_op_args a;
  int n_din, n_dpar; /* differentiable inputs / params present */
  size_t n_out, ws;
  float *xf[FB_MAX_IN], *pf[FB_MAX_PAR];
  double *R;
} tcase;

static size_t ws_elems(const fb_op *op, const fb_op_args *a) {
  return op->ws_size ? op->ws_size(a) : 0;
}

static void make_inputs(tcase *t, fb_rng *rng) {
  const fb_op *op = t->op;
  fb_op_args *a = &t->a;
  for (int k = 0; k < a->n_in; k++) {
    size_t n = fb_numel(a->in[k]);
    t->xf[k] = falloc(n);
    for (size_t i = 0; i < n; i++) {
      double v;
      if (op->is_loss && k >= op->n_diff_in) { /* labels */
        v = (double)fb_rng_below(rng, (uint32_t)a->in[0].c);
        if (a->attr.ignore_index >= 0 && fb_rng_below(rng, 5) == 0) v = a->attr.ignore_index;
      } else {
        v = keep_off_kinks(op, 3.0 * fb_rng_normal(rng));
      }
      t->xf[k][i] = (float)v;
    }
  }
  for (int k = 0; k < a->n_par; k++) {
    size_t n = fb_numel(a->par[k]);
    t->pf[k] = falloc(n);
    for (size_t i = 0; i < n; i++)
      t->pf[k][i] = k < op->n_diff_par ? (float)fb_rng_normal(rng)
                                       : (float)(0.5 + fb_rng_uniform(rng)); /* buffers > 0 */
  }
  t->n_out = fb_numel(a->out);
  t->R = dalloc(t->n_out);
  for (size_t i = 0; i < t->n_out; i++) t->R[i] = op->is_loss ? 1.0 : fb_rng_normal(rng);
  t->n_din = op->n_diff_in < a->n_in ? op->n_diff_in : a->n_in;
  t->n_dpar = op->n_diff_par < a->n_par ? op->n_diff_par : a->n_par;
  t->ws = ws_elems(op, a);
}

static void free_case(tcase *t) {
  for (int k = 0; k < t->a.n_in; k++) free(t->xf[k]);
  for (int k = 0; k < t->a.n_par; k++) free(t->pf[k]);
  free(t->R);
}

static double max_abs(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(v[i]) > m ? fabs(v[i]) : m;
  return m;
}

/* Checks fast-minus-prefill against the reference, relative to the largest
 * reference magnitude. */
/* Worst error seen per op, as a fraction of its tolerance, for the log. */
typedef struct worst_seen {
  double fd, fast;
} worst_seen;

static double check_fast(const char *what, const char *op, int cs, const float *fast,
                         double prefill, const double *ref, size_t n) {
  double tol = FAST_TOL * (1.0 + max_abs(ref, n)), worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(((double)fast[i] - prefill) - ref[i]);
    if (d > worst) worst = d, at = i;
  }
  CHECK(worst <= tol, "%s case %d: fast %s differs at [%zu]: %.9g vs ref %.9g (tol %.3g)", op, cs,
        what, at, (double)fast[at] - prefill, ref[at], tol);
  return worst / tol;
}

/* Reference forward on double copies of the case; returns sum(out * R). */
static double ref_loss(const tcase *t, double *const *xd, double *const *pd, double *out,
                       double *ws) {
  t->op->fwd_ref(&t->a, (const double *const *)xd, pd, out, ws);
  double s = 0;
  for (size_t i = 0; i < t->n_out; i++) s += out[i] * t->R[i];
  return s;
}

static double fd_check(const tcase *t, int cs, double *x, size_t n, const double *ana,
                       double prefill, double *const *xd, double *const *pd, const char *what) {
  double *out = dalloc(t->n_out), *ws = dalloc(t->ws + 1), worst = 0, wnum = 0, wana = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + FD_H;
    double lp = ref_loss(t, xd, pd, out, ws);
    x[i] = keep - FD_H;
    double lm = ref_loss(t, xd, pd, out, ws);
    x[i] = keep;
    double num = (lp - lm) / (2 * FD_H), an = ana[i] - prefill;
    double excess = fabs(num - an) / (FD_TOL * (1.0 + fabs(an)));
    if (excess > worst) worst = excess, at = i, wnum = num, wana = an;
  }
  CHECK(worst <= 1.0, "%s case %d (training %d): d/d%s[%zu] numeric %.9g vs analytic %.9g",
        t->op->name, cs, t->a.attr.training, what, at, wnum, wana);
  free(out);
  free(ws);
  return worst;
}

static void run_case(tcase *t, int cs, worst_seen *ws_) {
  const fb_op *op = t->op;
  const fb_op_args *a = &t->a;
  double *xd[FB_MAX_IN] = {0}, *pd[FB_MAX_PAR] = {0}, *dind[FB_MAX_IN] = {0},
         *dpard[FB_MAX_PAR] = {0};
  float *pfc[FB_MAX_PAR] = {0}, *dinf[FB_MAX_IN] = {0}, *dparf[FB_MAX_PAR] = {0};
  for (int k = 0; k < a->n_in; k++) {
    size_t n = fb_numel(a->in[k]);
    xd[k] = dalloc(n);
    for (size_t i = 0; i < n; i++) xd[k][i] = t->xf[k][i];
    if (k < t->n_din) {
      dind[k] = dalloc(n), dinf[k] = falloc(n);
      for (size_t i = 0; i < n; i++) dind[k][i] = 0.25, dinf[k][i] = 0.5f;
    }
  }
  for (int k = 0; k < a->n_par; k++) {
    size_t n = fb_numel(a->par[k]);
    pd[k] = dalloc(n), pfc[k] = falloc(n);
    for (size_t i = 0; i < n; i++) pd[k][i] = t->pf[k][i], pfc[k][i] = t->pf[k][i];
    if (k < t->n_dpar) {
      dpard[k] = dalloc(n), dparf[k] = falloc(n);
      for (size_t i = 0; i < n; i++) dpard[k][i] = 0.25, dparf[k][i] = 0.5f;
    }
  }
  double *outd = dalloc(t->n_out), *wsd = dalloc(t->ws + 1);
  float *outf = falloc(t->n_out), *wsf = falloc(t->ws + 1), *doutf = falloc(t->n_out);
  for (size_t i = 0; i < t->n_out; i++) doutf[i] = (float)t->R[i];

  /* reference forward + backward (into buffers pre-filled with 0.25) */
  op->fwd_ref(a, (const double *const *)xd, pd, outd, wsd);
  op->bwd_ref(a, (const double *const *)xd, (const double *const *)pd, outd, t->R, dind, dpard,
              wsd);
  int finite = 1;
  for (size_t i = 0; i < t->n_out; i++) finite &= isfinite(outd[i]);
  CHECK(finite, "%s case %d: reference output not finite", op->name, cs);

  /* fast kernels on the same case, gradients pre-filled with 0.5 */
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, a, (const float *const *)t->xf, pfc, outf, wsf);
  ws_->fast = fmax(ws_->fast, check_fast("output", op->name, cs, outf, 0, outd, t->n_out));
  for (int k = t->n_dpar; k < a->n_par; k++) /* running buffers after forward */
    ws_->fast =
        fmax(ws_->fast, check_fast("buffer", op->name, cs, pfc[k], 0, pd[k], fb_numel(a->par[k])));
  op->bwd(&ctx, a, (const float *const *)t->xf, (const float *const *)pfc, outf, doutf, dinf, dparf,
          wsf);
  for (int k = 0; k < t->n_din; k++) {
    size_t n = fb_numel(a->in[k]);
    double *ref = dalloc(n);
    for (size_t i = 0; i < n; i++) ref[i] = dind[k][i] - 0.25;
    ws_->fast = fmax(ws_->fast, check_fast("din", op->name, cs, dinf[k], 0.5, ref, n));
    free(ref);
  }
  for (int k = 0; k < t->n_dpar; k++) {
    size_t n = fb_numel(a->par[k]);
    double *ref = dalloc(n);
    for (size_t i = 0; i < n; i++) ref[i] = dpard[k][i] - 0.25;
    ws_->fast = fmax(ws_->fast, check_fast("dpar", op->name, cs, dparf[k], 0.5, ref, n));
    free(ref);
  }
  /* no gradient wanted anywhere: must simply do nothing (ASan watches) */
  float *nof[FB_MAX_PAR > FB_MAX_IN ? FB_MAX_PAR : FB_MAX_IN] = {0};
  double *nod[FB_MAX_PAR > FB_MAX_IN ? FB_MAX_PAR : FB_MAX_IN] = {0};
  op->bwd(&ctx, a, (const float *const *)t->xf, (const float *const *)pfc, outf, doutf, nof, nof,
          wsf);
  op->bwd_ref(a, (const double *const *)xd, (const double *const *)pd, outd, t->R, nod, nod, wsd);
  if (op->ctx_free) op->ctx_free(&ctx);

  /* finite differences of the reference */
  for (int k = 0; k < t->n_din; k++) {
    char what[16];
    snprintf(what, sizeof what, "in%d", k);
    ws_->fd =
        fmax(ws_->fd, fd_check(t, cs, xd[k], fb_numel(a->in[k]), dind[k], 0.25, xd, pd, what));
  }
  for (int k = 0; k < t->n_dpar; k++) {
    char what[16];
    snprintf(what, sizeof what, "par%d", k);
    ws_->fd =
        fmax(ws_->fd, fd_check(t, cs, pd[k], fb_numel(a->par[k]), dpard[k], 0.25, xd, pd, what));
  }

  for (int k = 0; k < a->n_in; k++) free(xd[k]), free(dind[k]), free(dinf[k]);
  for (int k = 0; k < a->n_par; k++) free(pd[k]), free(pfc[k]), free(dpard[k]), free(dparf[k]);
  free(outd), free(wsd), free(outf), free(wsf), free(doutf);
}

static void test_table(void) {
  const fb_op *const *table = fb_op_table();
  int rows = 0;
  for (int r = 0; table[r]; r++, rows++) {
    const fb_op *op = table[r];
    int complete = op->infer && op->fwd_ref && op->bwd_ref && op->fwd && op->bwd && op->random_case;
    CHECK(complete, "op %s: table row has NULL functions (not implemented yet)", op->name);
    if (!complete) continue;
    fb_rng rng;
    fb_rng_seed(&rng, 1000 + (uint64_t)r);
    worst_seen seen = {0, 0};
    for (int cs = 0; cs < CASES_PER_OP; cs++) {
      tcase t;
      memset(&t, 0, sizeof t);
      t.op = op;
      op->random_case(&t.a, &rng);
      char msg[256] = "";
      int rc = op->infer(&t.a, msg);
      CHECK(rc == 0, "%s case %d: infer rejected its own random case: %s", op->name, cs, msg);
      if (rc != 0) continue;
      CHECK(!op->is_loss || fb_numel(t.a.out) == 1, "%s: a loss must output a scalar", op->name);
      make_inputs(&t, &rng);
      /* ops with running buffers (batch norm) run in training and eval mode */
      int modes = op->n_diff_par < t.a.n_par ? 2 : 1;
      for (int m = 0; m < modes; m++) {
        if (modes == 2) t.a.attr.training = (m == 0);
        run_case(&t, cs, &seen);
      }
      free_case(&t);
    }
    printf("%-18s worst error / tolerance: finite differences %.3f, fast vs reference %.3f\n",
           op->name, seen.fd, seen.fast);
  }
  CHECK(rows >= 15, "op table has %d rows, expected at least 15", rows);
}

/* ---- infer rejects bad shapes ------------------------------------------- */

static void expect_reject(const char *name, fb_op_args a, const char *why) {
  const fb_op *op = fb_op_find(name);
  CHECK(op && op->infer, "%s: no such op or no infer", name);
  if (!op || !op->infer) return;
  char msg[256] = "";
  int rc = op->infer(&a, msg);
  CHECK(rc != 0, "%s: infer accepted %s", name, why);
  CHECK(rc == 0 || (msg[0] && strstr(msg, name)), "%s: rejection message '%s' should name the op",
        name, msg);
}

static fb_op_args args_of(int n_in, fb_shape s0, fb_shape s1) {
  fb_op_args a;
  memset(&a, 0, sizeof a);
  a.n_in = n_in;
  a.in[0] = s0;
  a.in[1] = s1;
  a.attr = fb_attr_default();
  return a;
}

static void test_bad_shapes(void) {
  fb_shape x = fb_shape4(2, 3, 4, 4);
  expect_reject("add", args_of(2, x, fb_shape4(2, 3, 4, 5)), "different W");
  expect_reject("add", args_of(2, x, fb_shape4(2, 4, 4, 4)), "different C");
  expect_reject("add", args_of(1, x, x), "a single input");
  expect_reject("concat", args_of(2, x, fb_shape4(2, 5, 3, 4)), "different H");
  expect_reject("concat", args_of(2, x, fb_shape4(3, 5, 4, 4)), "different N");
  expect_reject("chanmul", args_of(2, x, fb_shape4(2, 3, 2, 1)), "s with H = 2");
  expect_reject("chanmul", args_of(2, x, fb_shape4(2, 4, 1, 1)), "s with other C");
  expect_reject("chanmul", args_of(1, x, x), "one input");
  expect_reject("softmax_ce", args_of(2, x, fb_shape4(2, 1, 4, 3)), "labels of other W");
  expect_reject("softmax_ce", args_of(2, x, fb_shape4(2, 2, 4, 4)), "labels with 2 channels");
  expect_reject("relu", args_of(2, x, x), "two inputs");
  expect_reject("batchnorm", args_of(1, fb_shape4(2, 0, 4, 4), x), "zero channels");
  fb_op_args up = args_of(1, x, x);
  up.attr.scale = 0;
  expect_reject("upsample_nearest", up, "scale 0");
  expect_reject("upsample_bilinear", up, "scale 0");
  fb_op_args ce = args_of(2, x, fb_shape4(2, 1, 4, 4));
  ce.attr.label_smoothing = 1.5f;
  expect_reject("softmax_ce", ce, "label_smoothing 1.5");
}

/* ---- golden values from PyTorch 1.13 (tests/ reference script output) --- */

/* Runs op (ref and fast) on one input, dout = 1 everywhere; returns
 * grads through gd/gf. */
static void act_grads(const fb_op *op, const double *x, int n, double *yd, double *gd, float *yf,
                      float *gf) {
  fb_op_args a;
  memset(&a, 0, sizeof a);
  a.n_in = 1;
  a.in[0] = fb_shape4(1, 1, 1, n);
  a.attr = fb_attr_default();
  char msg[256];
  op->infer(&a, msg);
  double ones[16], *din[FB_MAX_IN] = {gd}, *dpar[FB_MAX_PAR] = {0};
  float xf[16], onesf[16], *dinf[FB_MAX_IN] = {gf}, *dparf[FB_MAX_PAR] = {0};
  for (int i = 0; i < n; i++) ones[i] = 1, onesf[i] = 1, xf[i] = (float)x[i], gd[i] = 0, gf[i] = 0;
  const double *in[1] = {x};
  const float *inf[1] = {xf};
  op->fwd_ref(&a, in, NULL, yd, NULL);
  op->bwd_ref(&a, in, NULL, yd, ones, din, dpar, NULL);
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, &a, inf, NULL, yf, NULL);
  op->bwd(&ctx, &a, inf, NULL, yf, onesf, dinf, dparf, NULL);
}

static void test_kinks_vs_pytorch(void) {
  /* x = -3, 0, 3, 6, -2, 1, 7, -4; values printed by torch 1.13
   * (F.relu, F.relu6, F.hardswish, F.hardsigmoid, torch.sigmoid) */
  static const double x[8] = {-3, 0, 3, 6, -2, 1, 7, -4};
  static const struct {
    const char *op;
    double y[8], g[8];
  } want[] = {
      {"relu", {0, 0, 3, 6, 0, 1, 7, 0}, {0, 0, 1, 1, 0, 1, 1, 0}},
      {"relu6", {0, 0, 3, 6, 0, 1, 6, 0}, {0, 0, 1, 0, 0, 1, 0, 0}},
      {"hswish", {0, 0, 3, 6, -1.0 / 3, 2.0 / 3, 7, 0}, {-0.5, 0.5, 1, 1, -1.0 / 6, 5.0 / 6, 1, 0}},
      {"hsigmoid",
       {0, 0.5, 1, 1, 1.0 / 6, 2.0 / 3, 1, 0},
       {0, 1.0 / 6, 0, 0, 1.0 / 6, 1.0 / 6, 0, 0}},
      {"sigmoid",
       {0.0474258731776, 0.5, 0.952574126822, 0.997527376843, 0.119202922022, 0.73105857863,
        0.999088948806, 0.0179862099621},
       {0.0451766597309, 0.25, 0.0451766597309, 0.00246650929135, 0.104993585404, 0.196611933241,
        0.000910221180122, 0.0176627062133}},
  };
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    const fb_op *op = fb_op_find(want[w].op);
    if (!op || !op->fwd) continue; /* reported by test_table */
    double yd[8], gd[8];
    float yf[8], gf[8];
    act_grads(op, x, 8, yd, gd, yf, gf);
    for (int i = 0; i < 8; i++) {
      char what[96];
      snprintf(what, sizeof what, "%s ref at x=%g: y", op->name, x[i]);
      CHECK_CLOSE(yd[i], want[w].y[i], 1e-9, what);
      snprintf(what, sizeof what, "%s ref at x=%g: dy/dx", op->name, x[i]);
      CHECK_CLOSE(gd[i], want[w].g[i], 1e-9, what);
      snprintf(what, sizeof what, "%s fast at x=%g: y", op->name, x[i]);
      CHECK_CLOSE(yf[i], want[w].y[i], 1e-6, what);
      snprintf(what, sizeof what, "%s fast at x=%g: dy/dx", op->name, x[i]);
      CHECK_CLOSE(gf[i], want[w].g[i], 1e-6, what);
    }
  }
}

/* Runs op's ref and fast kernels with given inputs/params/dout and compares
 * output and gradients of input 0 (and params 0,1) with expected values. */
typedef struct golden {
  const char *op;
  fb_op_args a;
  const double *x[2], *par[4], *dout;
  const double *y, *dx, *dpar[2], *buf[2];
  double tol_ref, tol_fast;
} golden;

static void run_golden(const golden *gd) {
  const fb_op *op = fb_op_find(gd->op);
  if (!op || !op->fwd) return;
  fb_op_args a = gd->a;
  char msg[256] = "";
  CHECK(op->infer(&a, msg) == 0, "golden %s: infer: %s", gd->op, msg);
  size_t nx = fb_numel(a.in[0]), ny = fb_numel(a.out), ws = ws_elems(op, &a);
  double *xd[2] = {0}, *pd[4] = {0}, *dx = dalloc(nx), *y = dalloc(ny), *wsd = dalloc(ws + 1);
  float *xf[2] = {0}, *pf[4] = {0}, *dxf = falloc(nx), *yf = falloc(ny), *wsf = falloc(ws + 1),
        *doutf = falloc(ny);
  double *dpd[4] = {0};
  float *dpf[4] = {0};
  for (int k = 0; k < a.n_in; k++) {
    size_t n = fb_numel(a.in[k]);
    xd[k] = dalloc(n), xf[k] = falloc(n);
    for (size_t i = 0; i < n; i++) xd[k][i] = gd->x[k][i], xf[k][i] = (float)gd->x[k][i];
  }
  for (int k = 0; k < a.n_par; k++) {
    size_t n = fb_numel(a.par[k]);
    pd[k] = dalloc(n), pf[k] = falloc(n);
    for (size_t i = 0; i < n; i++) pd[k][i] = gd->par[k][i], pf[k][i] = (float)gd->par[k][i];
    if (k < op->n_diff_par) dpd[k] = dalloc(n), dpf[k] = falloc(n);
  }
  for (size_t i = 0; i < ny; i++) doutf[i] = (float)gd->dout[i];
  double *din[FB_MAX_IN] = {dx};
  float *dinf[FB_MAX_IN] = {dxf};
  op->fwd_ref(&a, (const double *const *)xd, pd, y, wsd);
  op->bwd_ref(&a, (const double *const *)xd, (const double *const *)pd, y, gd->dout, din, dpd, wsd);
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, &a, (const float *const *)xf, pf, yf, wsf);
  op->bwd(&ctx, &a, (const float *const *)xf, (const float *const *)pf, yf, doutf, dinf, dpf, wsf);
  if (op->ctx_free) op->ctx_free(&ctx);
  char what[96];
  for (size_t i = 0; i < ny; i++) {
    snprintf(what, sizeof what, "golden %s y[%zu] ref", gd->op, i);
    CHECK_CLOSE(y[i], gd->y[i], gd->tol_ref, what);
    snprintf(what, sizeof what, "golden %s y[%zu] fast", gd->op, i);
    CHECK_CLOSE(yf[i], gd->y[i], gd->tol_fast, what);
  }
  for (size_t i = 0; i < nx; i++) {
    snprintf(what, sizeof what, "golden %s dx[%zu] ref", gd->op, i);
    CHECK_CLOSE(dx[i], gd->dx[i], gd->tol_ref, what);
    snprintf(what, sizeof what, "golden %s dx[%zu] fast", gd->op, i);
    CHECK_CLOSE(dxf[i], gd->dx[i], gd->tol_fast, what);
  }
  for (int k = 0; k < 2; k++) {
    if (!gd->dpar[k]) continue;
    for (size_t i = 0; i < fb_numel(a.par[k]); i++) {
      snprintf(what, sizeof what, "golden %s dpar%d[%zu] ref", gd->op, k, i);
      CHECK_CLOSE(dpd[k][i], gd->dpar[k][i], gd->tol_ref, what);
      snprintf(what, sizeof what, "golden %s dpar%d[%zu] fast", gd->op, k, i);
      CHECK_CLOSE(dpf[k][i], gd->dpar[k][i], gd->tol_fast, what);
    }
  }
  for (int k = 0; k < 2; k++) {
    if (!gd->buf[k]) continue;
    for (size_t i = 0; i < fb_numel(a.par[2 + k]); i++) {
      snprintf(what, sizeof what, "golden %s buffer%d[%zu] ref", gd->op, k, i);
      CHECK_CLOSE(pd[2 + k][i], gd->buf[k][i], gd->tol_ref, what);
      snprintf(what, sizeof what, "golden %s buffer%d[%zu] fast", gd->op, k, i);
      CHECK_CLOSE(pf[2 + k][i], gd->buf[k][i], gd->tol_fast, what);
    }
  }
  for (int k = 0; k < 2; k++) free(xd[k]), free(xf[k]);
  for (int k = 0; k < 4; k++) free(pd[k]), free(pf[k]), free(dpd[k]), free(dpf[k]);
  free(dx), free(y), free(wsd), free(dxf), free(yf), free(wsf), free(doutf);
}

static void test_golden_pytorch(void) {
  /* Cross-entropy: logits 2*sin(1.3 i + 0.2) shaped (2,3,1,2), labels
   * [[0,2],[255,1]], F.cross_entropy(ignore_index=255, label_smoothing=0.1). */
  double logits[12], ce_out[1] = {1.87958427042}, one[1] = {1};
  for (int i = 0; i < 12; i++) logits[i] = sin(1.3 * i + 0.2) * 2;
  static const double labels[4] = {0, 2, 255, 1};
  static const double ce_dx[12] = {-0.175428662712,
                                   0.239114200118,
                                   0.167097503457,
                                   -0.00448632847585,
                                   0.00833115925468,
                                   -0.234627871642,
                                   0,
                                   0.041933605795,
                                   0,
                                   -0.299098557929,
                                   0,
                                   0.257164952134};
  golden ce = {.op = "softmax_ce",
               .x = {logits, labels},
               .dout = one,
               .y = ce_out,
               .dx = ce_dx,
               .tol_ref = 1e-9,
               .tol_fast = 2e-6};
  ce.a = args_of(2, fb_shape4(2, 3, 1, 2), fb_shape4(2, 1, 1, 2));
  ce.a.attr.ignore_index = 255;
  ce.a.attr.label_smoothing = 0.1f;
  run_golden(&ce);

  /* Bilinear: x = [[1,4,-2],[0.5,3,7]], interpolate(scale_factor=s,
   * mode='bilinear', align_corners=False), dout = 0.1 * arange - 1. */
  static const double bx[6] = {1.0, 4.0, -2.0, 0.5, 3.0, 7.0};
  static const double b2_y[24] = {1,       1.75,  3.25,  2.5,   -0.5,  -2,      0.875,   1.59375,
                                  3.03125, 2.875, 1.125, 0.25,  0.625, 1.28125, 2.59375, 3.625,
                                  4.375,   4.75,  0.5,   1.125, 2.375, 4,       6,       7};
  static const double b2_dx[6] = {-2.25, -1.5, -0.75, 1.95, 2.7, 3.45};
  static const double b3_y[54] = {1,
                                  1,
                                  2,
                                  3,
                                  4,
                                  2,
                                  0,
                                  -2,
                                  -2,
                                  1,
                                  1,
                                  2,
                                  3,
                                  4,
                                  2,
                                  0,
                                  -2,
                                  -2,
                                  0.833333333333,
                                  0.833333333333,
                                  1.77777777778,
                                  2.72222222222,
                                  3.66666666667,
                                  2.77777777778,
                                  1.88888888889,
                                  1,
                                  1,
                                  0.666666666667,
                                  0.666666666667,
                                  1.55555555556,
                                  2.44444444444,
                                  3.33333333333,
                                  3.55555555556,
                                  3.77777777778,
                                  4,
                                  4,
                                  0.5,
                                  0.5,
                                  1.33333333333,
                                  2.16666666667,
                                  3,
                                  4.33333333333,
                                  5.66666666667,
                                  7,
                                  7,
                                  0.5,
                                  0.5,
                                  1.33333333333,
                                  2.16666666667,
                                  3,
                                  4.33333333333,
                                  5.66666666667,
                                  7,
                                  7};
  static const double b3_dx[6] = {1, 3.6, 6.2, 23.5, 26.1, 28.7};
  double r[54];
  for (int i = 0; i < 54; i++) r[i] = 0.1 * i - 1;
  golden b2 = {.op = "upsample_bilinear",
               .x = {bx},
               .dout = r,
               .y = b2_y,
               .dx = b2_dx,
               .tol_ref = 1e-9,
               .tol_fast = 1e-5};
  b2.a = args_of(1, fb_shape4(1, 1, 2, 3), fb_shape4(1, 1, 2, 3));
  b2.a.attr.scale = 2;
  run_golden(&b2);
  golden b3 = b2;
  b3.y = b3_y, b3.dx = b3_dx, b3.a.attr.scale = 3;
  run_golden(&b3);

  /* BatchNorm2d(2, eps=1e-5, momentum=0.1).train(), x = 3 cos(0.7 i) + 0.5 i
   * shaped (2,2,2,1), weight [1.5,-0.5], bias [0.2,0.3], dout = 0.3 i - 0.7. */
  double bnx[8], bnr[8];
  for (int i = 0; i < 8; i++) bnx[i] = cos(0.7 * i) * 3 + 0.5 * i, bnr[i] = 0.3 * i - 0.7;
  static const double gam[2] = {1.5, -0.5}, bet[2] = {0.2, 0.3}, rm0[2] = {0, 0}, rv0[2] = {1, 1};
  static const double bn_y[8] = {1.7787889888,  1.60204105626,  0.3892923019,   0.910572011229,
                                 -1.5129040436, -1.06792600146, 0.382687190195, -0.482551503324};
  static const double bn_dx[8] = {-0.111462586903,  0.086849924994,  0.229242906393,
                                  -0.0322398624991, -0.191932556566, 0.216545218475,
                                  -0.179081764065,  -0.0179212798289};
  static const double bn_dg[2] = {-2.35784102509, 1.78286204677}, bn_db[2] = {0.2, 2.6};
  static const double bn_rm[2] = {0.116462236949, 0.177102943979},
                      bn_rv[2] = {1.30543619504, 1.18507267954};
  golden bn = {.op = "batchnorm",
               .x = {bnx},
               .par = {gam, bet, rm0, rv0},
               .dout = bnr,
               .y = bn_y,
               .dx = bn_dx,
               .dpar = {bn_dg, bn_db},
               .buf = {bn_rm, bn_rv},
               .tol_ref = 1e-7,
               .tol_fast = 2e-5};
  bn.a = args_of(1, fb_shape4(2, 2, 2, 1), fb_shape4(2, 2, 2, 1));
  run_golden(&bn);
}

/* ---- softmax_ce edge cases, add with fewer inputs at call time --------- */

static void ce_run_fast(const fb_op_args *a, const float *x, const float *lab, float *loss,
                        float *dx) {
  const fb_op *op = fb_op_find("softmax_ce");
  float *ws = falloc(fb_numel(a->in[0])), one = 1.f;
  const float *in[2] = {x, lab};
  float *din[FB_MAX_IN] = {dx}, *dpar[FB_MAX_PAR] = {0};
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, a, in, NULL, loss, ws);
  op->bwd(&ctx, a, in, NULL, loss, &one, din, dpar, ws);
  free(ws);
}

static void test_ce_edges(void) {
  const fb_op *op = fb_op_find("softmax_ce");
  if (!op || !op->fwd) return;
  fb_op_args a = args_of(2, fb_shape4(2, 3, 1, 2), fb_shape4(2, 1, 1, 2));
  a.attr.ignore_index = 255;
  char msg[256];
  CHECK(op->infer(&a, msg) == 0, "softmax_ce edge infer: %s", msg);
  float x[12], dx[12], loss = -1;
  for (int i = 0; i < 12; i++) x[i] = (float)sin(0.9 * i);
  /* every position ignored: loss 0, gradient untouched */
  float all_ignored[4] = {255, 255, 255, 255};
  for (int i = 0; i < 12; i++) dx[i] = 0.5f;
  ce_run_fast(&a, x, all_ignored, &loss, dx);
  CHECK(loss == 0.f, "softmax_ce: all ignored gives loss %g, want 0", (double)loss);
  int same = 1;
  for (int i = 0; i < 12; i++) same &= dx[i] == 0.5f;
  CHECK(same, "softmax_ce: all ignored must add zero gradient");
  /* out-of-range labels (data loader bugs) are skipped, never indexed */
  float bad[4] = {7, -1, 1e9f, NAN}, ok[4] = {1, 255, 255, 255}, mixed[4] = {1, 3, -2, 255};
  float l_bad, l_ok, l_mixed, d1[12] = {0}, d2[12] = {0};
  ce_run_fast(&a, x, bad, &l_bad, dx);
  CHECK(l_bad == 0.f, "softmax_ce: out-of-range labels only gives loss %g, want 0", (double)l_bad);
  ce_run_fast(&a, x, ok, &l_ok, d1);
  ce_run_fast(&a, x, mixed, &l_mixed, d2);
  CHECK_CLOSE(l_mixed, l_ok, 1e-7, "softmax_ce: out-of-range labels skipped like ignore_index");
  double worst = 0;
  for (int i = 0; i < 12; i++) worst = fmax(worst, fabs((double)d1[i] - d2[i]));
  CHECK(worst < 1e-7, "softmax_ce: out-of-range labels changed the gradient by %g", worst);
}

static void test_add_fewer_inputs(void) {
  const fb_op *op = fb_op_find("add");
  if (!op || !op->fwd) return;
  fb_op_args a = args_of(3, fb_shape4(1, 2, 1, 2), fb_shape4(1, 2, 1, 2));
  a.in[2] = a.in[0];
  char msg[256];
  CHECK(op->infer(&a, msg) == 0, "add infer: %s", msg);
  a.n_in = 2; /* the executor dropped an absent branch */
  float x0[4] = {1, 2, 3, 4}, x1[4] = {10, 20, 30, 40}, y[4], g[4] = {1, 2, 3, 4};
  float d0[4] = {0}, d1[4] = {0};
  const float *in[2] = {x0, x1};
  float *din[FB_MAX_IN] = {d0, d1};
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, &a, in, NULL, y, NULL);
  op->bwd(&ctx, &a, in, NULL, y, g, din, NULL, NULL);
  for (int i = 0; i < 4; i++) {
    CHECK_CLOSE(y[i], x0[i] + x1[i], 0, "add with 2 of 3 inputs");
    CHECK_CLOSE(d0[i] + d1[i], 2 * g[i], 0, "add backward with 2 of 3 inputs");
  }
}


/* What each row says of its op outside its kernels (core/op.h) holds: the
 * kind agrees with is_loss and the parameter layout, MACs exist exactly for
 * the counted kinds, and an op that declares its backward does not read the
 * inputs gives the same gradients for other input values. */
static void test_row_facts(void) {
  for (const fb_op *const *t = fb_op_table(); *t; t++) {
    const fb_op *op = *t;
    fb_rng rng;
    fb_rng_seed(&rng, 77);
    fb_op_args a;
    memset(&a, 0, sizeof a);
    op->random_case(&a, &rng);
    char msg[256] = "";
    if (op->infer(&a, msg) != 0) continue; /* test_table reports it */
    CHECK((op->kind == FB_OPK_LOSS) == (op->is_loss != 0), "%s: kind loss <=> is_loss", op->name);
    const int counted = op->kind == FB_OPK_CONV || op->kind == FB_OPK_LINEAR || op->kind == FB_OPK_POOL;
    CHECK(counted == (op->macs != NULL), "%s: MACs counted exactly for conv, linear, pooling",
          op->name);
    if (op->macs) CHECK(fb_op_macs(op, &a) > 0, "%s: MACs of its random case > 0", op->name);
    if (fb_op_weighted(op))
      CHECK(a.n_par >= 1 && op->par_group[0] == FB_PG_WEIGHT, "%s: par[0] is a weight", op->name);
    if (op->kind == FB_OPK_NORM)
      CHECK(a.n_par == 4 && op->n_diff_par == 2 && op->par_group[2] == FB_PG_BUFFER,
            "%s: gamma, beta, running mean, running var", op->name);
    for (int j = 0; j < op->n_kinks; j++)
      CHECK(op->kind == FB_OPK_ACT, "%s: kinks are declared by activations", op->name);
    if (op->bwd_reads_in) continue;
    /* the gradients for two different input values */
    double *in[2][FB_MAX_IN] = {{0}}, *din[2][FB_MAX_IN] = {{0}}, *par[FB_MAX_PAR] = {0};
    double *dpar[2][FB_MAX_PAR] = {{0}};
    const size_t n_out = fb_numel(a.out), ws_n = ws_elems(op, &a);
    double *out = dalloc(n_out), *dout = dalloc(n_out), *ws = dalloc(ws_n);
    for (size_t i = 0; i < n_out; i++) dout[i] = fb_rng_normal(&rng);
    for (int k = 0; k < a.n_par; k++) {
      par[k] = dalloc(fb_numel(a.par[k]));
      for (size_t i = 0; i < fb_numel(a.par[k]); i++) par[k][i] = fb_rng_normal(&rng);
    }
    for (int v = 0; v < 2; v++) {
      for (int k = 0; k < a.n_in; k++) {
        in[v][k] = dalloc(fb_numel(a.in[k]));
        din[v][k] = k < op->n_diff_in ? dalloc(fb_numel(a.in[k])) : NULL;
        for (size_t i = 0; i < fb_numel(a.in[k]); i++) in[v][k][i] = fb_rng_normal(&rng);
      }
      for (int k = 0; k < op->n_diff_par; k++) dpar[v][k] = dalloc(fb_numel(a.par[k]));
      op->fwd_ref(&a, (const double *const *)in[v], par, out, ws);
      op->bwd_ref(&a, (const double *const *)in[v], (const double *const *)par, out, dout,
                  din[v], dpar[v], ws);
    }
    double worst = 0;
    for (int k = 0; k < op->n_diff_in && k < a.n_in; k++)
      for (size_t i = 0; i < fb_numel(a.in[k]); i++) worst = fmax(worst, fabs(din[0][k][i] - din[1][k][i]));
    for (int k = 0; k < op->n_diff_par; k++)
      for (size_t i = 0; i < fb_numel(a.par[k]); i++) worst = fmax(worst, fabs(dpar[0][k][i] - dpar[1][k][i]));
    CHECK(worst == 0, "%s: declared bwd_reads_in 0, but its gradients depend on the input "
          "values (max diff %.3g)", op->name, worst);
    for (int v = 0; v < 2; v++) {
      for (int k = 0; k < a.n_in; k++) free(in[v][k]), free(din[v][k]);
      for (int k = 0; k < FB_MAX_PAR; k++) free(dpar[v][k]);
    }
    for (int k = 0; k < a.n_par; k++) free(par[k]);
    free(out), free(dout), free(ws);
  }
}

int main(void) {
  test_table();
  test_row_facts();
  test_bad_shapes();
  test_kinks_vs_pytorch();
  test_golden_pytorch();
  test_ce_edges();
  test_add_fewer_inputs();
  return check_report("ops");
}
