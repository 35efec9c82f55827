/* Every op of the op table, and whole IRF blocks with SE, against values
 * written by PyTorch (scripts/make_torch_fixtures.py -> tests/fixtures/torch).
 *
 * For each op case: the double reference kernels must match PyTorch to ~1e-10
 * and the fast float kernels to ~1e-4 (relative to the array's magnitude),
 * outputs, input and parameter gradients, and the updated BN running stats.
 * Backward must accumulate: gradient buffers start at a non-zero value.
 * An op of fb_op_table() without a fixture file fails the test.
 *
 * For each block case: fb_block_add builds the block on a graph, the fixture's
 * parameters are copied into the store by name, one training-mode forward and
 * fb_graph_backward_from(dout) run, and output, input gradient, every
 * parameter gradient and the BN running stats are compared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/graph.h"
#include "core/status.h"
#include "fixture_io.h"
#include "nn/blocks.h"
#include "ops/op.h"

#define FIX_DIR "tests/fixtures/torch/"
#define REF_RTOL 1e-10
#define FAST_RTOL 1e-4
#define PREFILL 0.25 /* gradient buffers start here: backward must accumulate */

/* CHECK that also yields the (side-effect free) condition. */
#define REQUIRE(ok, ...) (check_record((ok), __FILE__, __LINE__, __VA_ARGS__), (ok))

/* Largest relative error seen per tolerance class, printed at the end (the
 * test's one piece of state besides check_g). */
static double worst_ref, worst_fast;

/* Worst |got - want| / (|want| + max|want|) over the array must be <= rtol. */
static void compare(const char *tag, const char *what, const double *got, const fx_array *want,
                    double rtol) {
  double scale = 0;
  for (size_t i = 0; i < want->numel; i++) scale = fmax(scale, fabs(want->v[i]));
  if (scale == 0) scale = 1;
  double worst = 0;
  size_t wi = 0;
  int finite = 1;
  for (size_t i = 0; i < want->numel; i++) {
    if (!isfinite(got[i])) finite = 0;
    double r = fabs(got[i] - want->v[i]) / (fabs(want->v[i]) + scale);
    if (r > worst) worst = r, wi = i;
  }
  if (rtol == REF_RTOL) worst_ref = fmax(worst_ref, worst);
  else worst_fast = fmax(worst_fast, worst);
  check_record(finite && worst <= rtol, __FILE__, __LINE__,
               "%s %s: element %zu got %.12g want %.12g (rel err %.3g > %.3g)%s", tag, what, wi,
               got[wi], want->v[wi], worst, rtol, finite ? "" : " (non-finite values)");
}

static void compare_f(const char *tag, const char *what, const float *got, const fx_array *want,
                      double rtol) {
  double *d = fb_alloc_doubles(want->numel);
  for (size_t i = 0; i < want->numel; i++) d[i] = got[i];
  compare(tag, what, d, want, rtol);
  free(d);
}

static fb_shape fx_shape(const fx_array *a) {
  return fb_shape4(a->shape[0], a->shape[1], a->shape[2], a->shape[3]);
}

static int same_shape(fb_shape a, fb_shape b) {
  return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

static const fx_array *fx_findf(const fx_file *f, const char *fmt, int k) {
  char name[96];
  snprintf(name, sizeof name, fmt, k);
  return fx_find(f, name);
}

static fb_op_attr attr_from(const fx_file *f) {
  fb_op_attr t = fb_attr_default();
#define GET_I(field) t.field = (int)fx_scalar(f, "attr." #field, t.field)
#define GET_F(field) t.field = (float)fx_scalar(f, "attr." #field, t.field)
  GET_I(kh), GET_I(kw), GET_I(sh), GET_I(sw);
  GET_I(pad_t), GET_I(pad_l), GET_I(pad_b), GET_I(pad_r);
  GET_I(groups), GET_I(c_out), GET_I(has_bias);
  GET_F(eps), GET_F(momentum), GET_I(training), GET_I(scale);
  GET_F(label_smoothing), GET_I(ignore_index);
#undef GET_I
#undef GET_F
  return t;
}

/* ---- op cases --------------------------------------------------------- */

typedef struct op_case {
  const char *tag;
  const fb_op *op;
  const fx_file *f;
  fb_op_args a;
  const fx_array *in[FB_MAX_IN], *par[FB_MAX_PAR];
  size_t ws;
} op_case;

static void run_ref(const op_case *c) {
  const fb_op *op = c->op;
  const fb_op_args *a = &c->a;
  if (!op->fwd_ref || !op->bwd_ref) {
    CHECK(0, "%s: op has no reference kernels", c->tag);
    return;
  }
  const double *in[FB_MAX_IN];
  double *par[FB_MAX_PAR] = {0}, *din[FB_MAX_IN] = {0}, *dpar[FB_MAX_PAR] = {0};
  for (int k = 0; k < a->n_in; k++) in[k] = c->in[k]->v;
  for (int k = 0; k < a->n_par; k++) {
    par[k] = fb_alloc_doubles(c->par[k]->numel);
    memcpy(par[k], c->par[k]->v, c->par[k]->numel * sizeof(double));
  }
  double *out = fb_alloc_doubles(fb_numel(a->out));
  double *ws = fb_alloc_doubles(c->ws + 1);
  op->fwd_ref(a, in, par, out, ws);
  compare(c->tag, "ref out", out, fx_find(c->f, "out"), REF_RTOL);
  for (int k = 0; k < a->n_par; k++) {
    const fx_array *after = fx_findf(c->f, "par_after%d", k);
    char what[64];
    snprintf(what, sizeof what, "ref par %d after forward", k);
    if (after) compare(c->tag, what, par[k], after, REF_RTOL);
  }
  for (int k = 0; k < a->n_in; k++) {
    if (!fx_findf(c->f, "din%d", k)) continue;
    din[k] = fb_alloc_doubles(c->in[k]->numel);
    for (size_t i = 0; i < c->in[k]->numel; i++) din[k][i] = PREFILL;
  }
  for (int k = 0; k < a->n_par; k++) {
    if (!fx_findf(c->f, "dpar%d", k)) continue;
    dpar[k] = fb_alloc_doubles(c->par[k]->numel);
    for (size_t i = 0; i < c->par[k]->numel; i++) dpar[k][i] = PREFILL;
  }
  op->bwd_ref(a, in, (const double *const *)par, out, fx_find(c->f, "dout")->v, din, dpar, ws);
  for (int k = 0; k < a->n_in; k++) {
    if (!din[k]) continue;
    for (size_t i = 0; i < c->in[k]->numel; i++) din[k][i] -= PREFILL;
    char what[64];
    snprintf(what, sizeof what, "ref din %d", k);
    compare(c->tag, what, din[k], fx_findf(c->f, "din%d", k), REF_RTOL);
    free(din[k]);
  }
  for (int k = 0; k < a->n_par; k++) {
    if (dpar[k]) {
      for (size_t i = 0; i < c->par[k]->numel; i++) dpar[k][i] -= PREFILL;
      char what[64];
      snprintf(what, sizeof what, "ref dpar %d", k);
      compare(c->tag, what, dpar[k], fx_findf(c->f, "dpar%d", k), REF_RTOL);
      free(dpar[k]);
    }
    free(par[k]);
  }
  free(out);
  free(ws);
}

static float *to_floats(const fx_array *x) {
  float *f = fb_alloc_floats(x->numel);
  for (size_t i = 0; i < x->numel; i++) f[i] = (float)x->v[i];
  return f;
}

static void run_fast(const op_case *c) {
  const fb_op *op = c->op;
  const fb_op_args *a = &c->a;
  if (!op->fwd || !op->bwd) {
    CHECK(0, "%s: op has no fast kernels", c->tag);
    return;
  }
  float *in[FB_MAX_IN] = {0}, *par[FB_MAX_PAR] = {0}, *din[FB_MAX_IN] = {0},
        *dpar[FB_MAX_PAR] = {0};
  for (int k = 0; k < a->n_in; k++) in[k] = to_floats(c->in[k]);
  for (int k = 0; k < a->n_par; k++) par[k] = to_floats(c->par[k]);
  float *out = fb_alloc_floats(fb_numel(a->out));
  float *ws = fb_alloc_floats(c->ws + 1);
  float *dout = to_floats(fx_find(c->f, "dout"));
  fb_op_ctx ctx = {0};
  /* twice: a cached primitive (ctx) must give the same answer on reuse */
  for (int rep = 0; rep < 2; rep++) {
    for (int k = 0; k < a->n_par; k++)
      for (size_t i = 0; i < c->par[k]->numel; i++) par[k][i] = (float)c->par[k]->v[i];
    op->fwd(&ctx, a, (const float *const *)in, par, out, ws);
    char what[64];
    snprintf(what, sizeof what, "fast out (run %d)", rep);
    compare_f(c->tag, what, out, fx_find(c->f, "out"), FAST_RTOL);
    for (int k = 0; k < a->n_par; k++) {
      const fx_array *after = fx_findf(c->f, "par_after%d", k);
      snprintf(what, sizeof what, "fast par %d after forward (run %d)", k, rep);
      if (after) compare_f(c->tag, what, par[k], after, FAST_RTOL);
    }
    for (int k = 0; k < a->n_in; k++) {
      if (!fx_findf(c->f, "din%d", k)) continue;
      if (!din[k]) din[k] = fb_alloc_floats(c->in[k]->numel);
      for (size_t i = 0; i < c->in[k]->numel; i++) din[k][i] = (float)PREFILL;
    }
    for (int k = 0; k < a->n_par; k++) {
      if (!fx_findf(c->f, "dpar%d", k)) continue;
      if (!dpar[k]) dpar[k] = fb_alloc_floats(c->par[k]->numel);
      for (size_t i = 0; i < c->par[k]->numel; i++) dpar[k][i] = (float)PREFILL;
    }
    op->bwd(&ctx, a, (const float *const *)in, (const float *const *)par, out, dout, din, dpar,
            ws);
    for (int k = 0; k < a->n_in; k++) {
      if (!din[k]) continue;
      for (size_t i = 0; i < c->in[k]->numel; i++) din[k][i] -= (float)PREFILL;
      snprintf(what, sizeof what, "fast din %d (run %d)", k, rep);
      compare_f(c->tag, what, din[k], fx_findf(c->f, "din%d", k), FAST_RTOL);
    }
    for (int k = 0; k < a->n_par; k++) {
      if (!dpar[k]) continue;
      for (size_t i = 0; i < c->par[k]->numel; i++) dpar[k][i] -= (float)PREFILL;
      snprintf(what, sizeof what, "fast dpar %d (run %d)", k, rep);
      compare_f(c->tag, what, dpar[k], fx_findf(c->f, "dpar%d", k), FAST_RTOL);
    }
  }
  if (op->ctx_free) op->ctx_free(&ctx);
  for (int k = 0; k < FB_MAX_IN; k++) free(in[k]), free(din[k]);
  for (int k = 0; k < FB_MAX_PAR; k++) free(par[k]), free(dpar[k]);
  free(out);
  free(ws);
  free(dout);
}

static void run_op_case(const fb_op *op, const fx_file *f, const char *tag) {
  op_case c;
  memset(&c, 0, sizeof c);
  c.tag = tag;
  c.op = op;
  c.f = f;
  c.a.attr = attr_from(f);
  while (c.a.n_in < FB_MAX_IN && (c.in[c.a.n_in] = fx_findf(f, "in%d", c.a.n_in)))
    c.a.in[c.a.n_in] = fx_shape(c.in[c.a.n_in]), c.a.n_in++;
  int n_par = 0;
  while (n_par < FB_MAX_PAR && (c.par[n_par] = fx_findf(f, "par%d", n_par))) n_par++;
  const fx_array *out = fx_find(f, "out"), *dout = fx_find(f, "dout");
  if (!REQUIRE(c.a.n_in > 0 && out && dout, "%s: fixture lacks in0/out/dout", tag)) return;
  if (!op->infer) {
    CHECK(0, "%s: op has no infer", tag);
    return;
  }
  char msg[256] = "";
  int rc = op->infer(&c.a, msg);
  if (!REQUIRE(rc == 0, "%s: infer rejects the PyTorch case: %s", tag, msg)) return;
  fb_shape o = c.a.out, w = fx_shape(out);
  if (!REQUIRE(same_shape(o, w), "%s: out shape (%d,%d,%d,%d), PyTorch (%d,%d,%d,%d)", tag, o.n, o.c,
             o.h, o.w, w.n, w.c, w.h, w.w))
    return;
  if (!REQUIRE(c.a.n_par == n_par, "%s: op has %d params, fixture %d", tag, c.a.n_par, n_par)) return;
  for (int k = 0; k < n_par; k++)
    if (!REQUIRE(fb_numel(c.a.par[k]) == c.par[k]->numel, "%s: param %d has %zu values, fixture %zu",
               tag, k, fb_numel(c.a.par[k]), c.par[k]->numel))
      return;
  /* the fixture's gradients are exactly the op's differentiable inputs/params */
  for (int k = 0; k < c.a.n_in; k++)
    CHECK((fx_findf(f, "din%d", k) != NULL) == (k < op->n_diff_in),
          "%s: input %d: op n_diff_in %d disagrees with PyTorch", tag, k, op->n_diff_in);
  for (int k = 0; k < n_par; k++)
    CHECK((fx_findf(f, "dpar%d", k) != NULL) == (k < op->n_diff_par),
          "%s: param %d: op n_diff_par %d disagrees with PyTorch", tag, k, op->n_diff_par);
  c.ws = op->ws_size ? op->ws_size(&c.a) : 0;
  run_ref(&c);
  run_fast(&c);
}

static void test_ops(void) {
  const fb_op *const *table = fb_op_table();
  for (int i = 0; table[i]; i++) {
    const fb_op *op = table[i];
    int cases = 0;
    for (int k = 0;; k++) {
      char path[256], err[512], tag[96];
      snprintf(path, sizeof path, FIX_DIR "%s_%d.bin", op->name, k);
      snprintf(tag, sizeof tag, "%s_%d", op->name, k);
      fx_file f;
      if (fx_load(&f, path, err, sizeof err) != 0) {
        if (k == 0)
          CHECK(0, "op %s has no PyTorch fixture (%s); add cases to "
                   "scripts/make_torch_fixtures.py", op->name, err);
        break;
      }
      run_op_case(op, &f, tag);
      fx_free(&f);
      cases++;
    }
    printf("%-18s %d PyTorch case(s)\n", op->name, cases);
  }
}

/* ---- block cases ------------------------------------------------------ */

#define BLOCK_PREFIX "blk"

/* Store name of a fixture parameter: the script uses blocks.c's names
 * without the block prefix (e.g. "pw.bn.weight"). */
static void store_name(const char *fx_name, char *out, size_t cap) {
  snprintf(out, cap, "%s.%s", BLOCK_PREFIX, fx_name);
}

static void run_block_case(const fx_file *f, const char *tag) {
  const int k = (int)fx_scalar(f, "block.k", 0), se = (int)fx_scalar(f, "block.se", 0);
  const int c_in = (int)fx_scalar(f, "block.c_in", 0), c_out = (int)fx_scalar(f, "block.c_out", 0);
  const int n = (int)fx_scalar(f, "block.n", 0), h = (int)fx_scalar(f, "block.h", 0),
            w = (int)fx_scalar(f, "block.w", 0);
  fb_block_spec b;
  memset(&b, 0, sizeof b);
  snprintf(b.op, sizeof b.op, "ir_k%d%s_hs", k, se ? "_sehsig" : "");
  b.c_out = c_out;
  b.stride = (int)fx_scalar(f, "block.stride", 1);
  b.expansion = fx_scalar(f, "block.expansion", 1);
  b.dw_pad = -1;

  fb_status st = {0};
  fb_graph g;
  fb_graph_init(&g, fb_op_table());
  int x = fb_graph_input(&g, "x", c_in, h, w);
  int y = fb_block_add(&g, &b, x, BLOCK_PREFIX, &st);
  const int failed0 = check_g.failed;
  if (!REQUIRE(y >= 0, "%s: fb_block_add(%s): %s", tag, b.op, st.msg)) goto done;
  int rc = fb_graph_plan(&g, n, 7, &st);
  if (!REQUIRE(rc == 0, "%s: plan: %s", tag, st.msg)) goto done;
  const fx_array *fx = fx_find(f, "x"), *fout = fx_find(f, "out"), *fdout = fx_find(f, "dout"),
                 *fdx = fx_find(f, "dx");
  if (!REQUIRE(fx && fout && fdout && fdx, "%s: fixture lacks x/out/dout/dx", tag)) goto done;
  fb_shape o = g.nodes[y].args.out;
  if (!REQUIRE(same_shape(o, fx_shape(fout)), "%s: block out (%d,%d,%d,%d) vs PyTorch", tag, o.n,
             o.c, o.h, o.w))
    goto done;

  /* parameters by name; every store slot must come from the fixture */
  int n_fx = 0;
  for (int i = 0; i < f->n; i++) {
    const fx_array *p = &f->a[i];
    if (strncmp(p->name, "param:", 6) != 0) continue;
    n_fx++;
    char name[160];
    store_name(p->name + 6, name, sizeof name);
    int slot = fb_params_find(&g.params, name);
    if (!REQUIRE(slot >= 0, "%s: store has no parameter '%s'", tag, name)) continue;
    if (!REQUIRE(g.params.p[slot].numel == p->numel, "%s: %s has %zu values, PyTorch %zu", tag,
               name, g.params.p[slot].numel, p->numel))
      continue;
    float *d = fb_param_data(&g.params, slot);
    for (size_t j = 0; j < p->numel; j++) d[j] = (float)p->v[j];
  }
  CHECK(g.params.n == n_fx, "%s: block has %d parameter slots, PyTorch block %d", tag, g.params.n,
        n_fx);
  if (check_g.failed != failed0) goto done;

  for (size_t j = 0; j < fx->numel; j++) g.nodes[x].out[j] = (float)fx->v[j];
  float *dout = to_floats(fdout);
  fb_params_zero_grad(&g.params);
  fb_graph_forward(&g, 1);
  compare_f(tag, "block out", g.nodes[y].out, fout, FAST_RTOL);
  fb_graph_backward_from(&g, y, dout);
  compare_f(tag, "block dx", g.nodes[x].dout, fdx, FAST_RTOL);
  free(dout);
  int n_grad = 0, n_after = 0;
  for (int i = 0; i < f->n; i++) {
    const fx_array *p = &f->a[i];
    int is_grad = strncmp(p->name, "grad:", 5) == 0, is_after = strncmp(p->name, "after:", 6) == 0;
    if (!is_grad && !is_after) continue;
    char name[160], what[200];
    store_name(p->name + (is_grad ? 5 : 6), name, sizeof name);
    int slot = fb_params_find(&g.params, name);
    if (slot < 0 || g.params.p[slot].numel != p->numel) continue; /* reported above */
    snprintf(what, sizeof what, "%s %s", is_grad ? "grad" : "after forward", name);
    compare_f(tag, what, is_grad ? fb_param_grad(&g.params, slot) : fb_param_data(&g.params, slot),
              p, FAST_RTOL);
    n_grad += is_grad;
    n_after += is_after;
  }
  CHECK(n_grad + n_after == n_fx, "%s: %d grads + %d running stats for %d params", tag, n_grad,
        n_after, n_fx);
  printf("%-18s %s c_in %d c_out %d stride %d: %d params compared\n", tag, b.op, c_in, c_out,
         b.stride, n_fx);
done:
  fb_graph_free(&g);
}

static void test_blocks(void) {
  int cases = 0;
  for (int k = 0;; k++) {
    char path[256], err[512], tag[32];
    snprintf(path, sizeof path, FIX_DIR "block_%d.bin", k);
    snprintf(tag, sizeof tag, "block_%d", k);
    fx_file f;
    if (fx_load(&f, path, err, sizeof err) != 0) break;
    run_block_case(&f, tag);
    fx_free(&f);
    cases++;
  }
  CHECK(cases >= 2, "expected >= 2 block fixtures, found %d", cases);
}

int main(void) {
  test_ops();
  test_blocks();
  printf("largest relative error: reference kernels %.3g, float kernels and blocks %.3g\n",
         worst_ref, worst_fast);
  return check_report("torch_ref");
}
