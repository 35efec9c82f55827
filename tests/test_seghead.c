/* The segmentation head (src/tasks/seg/seghead.h) on fake feature inputs at
 * strides 4/8/16/32 of a 64-px image: shapes, loss against an independent
 * double computation, gradients reaching every feature and parameter (and a
 * finite-difference check of a few of them), ignored pixels, targets,
 * argmax, config errors, and an overfit run with SGD.
 *
 * `test_seghead --bench` instead times forward+backward of the head on a
 * batch of 16 at 128 px (K = 11) and prints a per-node profile. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/graph.h"
#include "core/rng.h"
#include "core/status.h"
#include "ops/op.h"
#include "tasks/seg/seghead.h"
#include "train/optim.h"

#define S 64
#define N 2
#define K 5

static const int strides4[4] = {4, 8, 16, 32};
static const int chans4[4] = {8, 12, 16, 24};

typedef struct fixture {
  fb_graph g;
  fb_seg_head h;
  int feat[4];
  int n_levels;
} fixture;

/* Builds feature inputs + head; returns 0 or -1 (status in st). */
static int build(fixture *f, const fb_seg_cfg *cfg, const int *strides, const int *chans,
                 int n_levels, int size, fb_status *st) {
  fb_graph_init(&f->g, fb_op_table());
  f->n_levels = n_levels;
  for (int i = 0; i < n_levels; i++) {
    char name[32];
    snprintf(name, sizeof name, "feat%d", i);
    f->feat[i] = fb_graph_input(&f->g, name, chans[i], size / strides[i], size / strides[i]);
  }
  return fb_seg_build(&f->g, &f->h, cfg, f->feat, strides, n_levels, size, st);
}

static void fill_normal(float *x, size_t n, fb_rng *r) {
  for (size_t i = 0; i < n; i++) x[i] = (float)fb_rng_normal(r);
}

static void fill_inputs(fixture *f, fb_rng *r) {
  fb_graph *g = &f->g;
  for (int i = 0; i < f->n_levels; i++)
    fill_normal(g->nodes[f->feat[i]].out, fb_numel(g->nodes[f->feat[i]].args.out), r);
  fb_node *t = &g->nodes[f->h.tgt];
  size_t n = fb_numel(t->args.out);
  int k = f->h.cfg.num_classes;
  for (size_t j = 0; j < n; j++)
    t->out[j] = fb_rng_below(r, 6) == 0 ? 255.f : (float)fb_rng_below(r, (uint32_t)k);
}

static float loss_of(const fb_graph *g, const fb_seg_head *h) { return g->nodes[h->loss].out[0]; }

/* Mean cross-entropy over non-ignored pixels, in double, from the logits. */
static double ce_double(const float *logits, const float *tgt, int n, int k, int s) {
  size_t hw = (size_t)s * s, count = 0;
  double total = 0;
  for (int b = 0; b < n; b++)
    for (size_t i = 0; i < hw; i++) {
      float l = tgt[(size_t)b * hw + i];
      if (l == 255.f) continue;
      const float *x = logits + (size_t)b * k * hw + i;
      double mx = x[0], sum = 0;
      for (int c = 1; c < k; c++) mx = fmax(mx, x[c * hw]);
      for (int c = 0; c < k; c++) sum += exp(x[c * hw] - mx);
      total += mx + log(sum) - x[(int)l * hw];
      count++;
    }
  return count ? total / (double)count : 0;
}

static void step(fb_graph *g) {
  fb_params_zero_grad(&g->params);
  fb_graph_forward(g, 1);
  fb_graph_backward(g);
}

static int any_nonzero(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (x[i] != 0.f) return 1;
  return 0;
}

static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Gradients reach every feature input and every trained parameter. */
static void check_grads_reach(fixture *f, const char *what) {
  fb_graph *g = &f->g;
  for (int i = 0; i < f->n_levels; i++) {
    const fb_node *nd = &g->nodes[f->feat[i]];
    CHECK(any_nonzero(nd->dout, fb_numel(nd->args.out)), "%s: gradient reaches feature %d", what,
          i);
    CHECK(all_finite(nd->dout, fb_numel(nd->args.out)), "%s: feature %d gradient finite", what, i);
  }
  int trained = 0;
  for (int p = 0; p < g->params.n; p++) {
    const fb_param *pp = &g->params.p[p];
    if (pp->group == FB_PG_BUFFER) continue;
    trained++;
    CHECK(strncmp(pp->name, "seg.", 4) == 0, "%s: parameter %s is named seg.*", what, pp->name);
    CHECK(any_nonzero(fb_param_grad(&g->params, p), pp->numel), "%s: gradient reaches %s", what,
          pp->name);
  }
  CHECK(fb_params_grad_finite(&g->params), "%s: all parameter gradients finite", what);
  /* 4 levels x (conv w, bn g, bn b) + mix (3) + cls (w, b) [+ proj (3)] */
  int proj = f->h.cfg.fuse == FB_SEG_FUSE_CONCAT && f->n_levels > 1;
  int expect = 3 * f->n_levels + 3 + 2 + 3 * proj;
  CHECK(trained == expect, "%s: %d trained slots, expected %d", what, trained, expect);
}

static void test_forward_backward(void) {
  fb_status st = {0};
  fixture f;
  fb_seg_cfg cfg = fb_seg_cfg_default();
  cfg.num_classes = K;
  cfg.width = 16;
  CHECK(build(&f, &cfg, strides4, chans4, 4, S, &st) == 0, "build: %s", st.msg);
  f.g.keep_grads = 1; /* the test reads the logits gradient after backward */
  CHECK(fb_graph_plan(&f.g, N, 7, &st) == 0, "plan: %s", st.msg);
  fb_graph *g = &f.g;
  fb_rng r;
  fb_rng_seed(&r, 11);
  fill_inputs(&f, &r);
  step(g);
  fb_shape ls = g->nodes[f.h.logits].args.out;
  CHECK(ls.n == N && ls.c == K && ls.h == S && ls.w == S, "logits shape (%d,%d,%d,%d)", ls.n, ls.c,
        ls.h, ls.w);
  fb_shape fs = g->nodes[f.h.fused].args.out;
  CHECK(fs.n == N && fs.c == 16 && fs.h == S / 4 && fs.w == S / 4, "fused shape (%d,%d,%d,%d)",
        fs.n, fs.c, fs.h, fs.w);
  float L = loss_of(g, &f.h);
  CHECK(isfinite(L) && L > 0, "loss finite and positive: %g", (double)L);
  CHECK_CLOSE(L, ce_double(g->nodes[f.h.logits].out, g->nodes[f.h.tgt].out, N, K, S), 1e-4,
              "loss = mean CE over non-ignored pixels");
  check_grads_reach(&f, "sum/relu");

  /* the loss weight scales every gradient */
  float *g1 = malloc(g->params.total * sizeof(float));
  memcpy(g1, g->params.grad, g->params.total * sizeof(float));
  g->nodes[f.h.loss].loss_weight = 2.5f;
  step(g);
  double worst = 0;
  for (size_t j = 0; j < g->params.total; j++)
    worst = fmax(worst, fabs(g->params.grad[j] - 2.5 * g1[j]) / (1e-6 + fabs(2.5 * g1[j])));
  CHECK(worst < 1e-3, "loss_weight 2.5 scales gradients (worst rel diff %g)", worst);
  g->nodes[f.h.loss].loss_weight = 1.f;
  free(g1);

  /* ignored pixels: logits there do not change the loss and get no gradient */
  step(g);
  fb_node *ln = &g->nodes[f.h.logits], *lossn = &g->nodes[f.h.loss];
  const float *tgt = g->nodes[f.h.tgt].out;
  size_t hw = (size_t)S * S;
  int n_ign = 0, grad_at_ignored = 0;
  for (int b = 0; b < N; b++)
    for (size_t i = 0; i < hw; i++) {
      if (tgt[b * hw + i] != 255.f) continue;
      n_ign++;
      for (int c = 0; c < K; c++) grad_at_ignored |= ln->dout[((size_t)b * K + c) * hw + i] != 0.f;
    }
  CHECK(n_ign > 100, "some pixels ignored (%d)", n_ign);
  CHECK(!grad_at_ignored, "no gradient at ignored pixels");
  for (int b = 0; b < N; b++)
    for (size_t i = 0; i < hw; i++)
      if (tgt[b * hw + i] == 255.f)
        for (int c = 0; c < K; c++) ln->out[((size_t)b * K + c) * hw + i] += 50.f * (float)(c + 1);
  const float *in[2] = {ln->out, tgt};
  float after = 0;
  lossn->op->fwd(&lossn->ctx, &lossn->args, in, NULL, &after, lossn->ws);
  CHECK(after == L, "changing logits at ignored pixels keeps the loss: %.9g vs %.9g",
        (double)after, (double)L);
  /* and a non-ignored pixel does change it */
  for (size_t i = 0; i < hw; i++)
    if (tgt[i] != 255.f) {
      ln->out[i + (size_t)((int)tgt[i]) * hw] -= 5.f;
      break;
    }
  lossn->op->fwd(&lossn->ctx, &lossn->args, in, NULL, &after, lossn->ws);
  CHECK(after > L, "lowering a labelled pixel's logit raises the loss");

  /* predict = argmax (ties to the lower class) */
  fb_graph_forward(g, 1);
  uint8_t *pred = malloc(hw);
  for (int b = 0; b < N; b++) {
    fb_seg_predict(&f.h, ln->out, b, S, pred);
    int bad = 0;
    for (size_t i = 0; i < hw; i++) {
      int best = 0;
      for (int c = 1; c < K; c++)
        if (ln->out[((size_t)b * K + c) * hw + i] > ln->out[((size_t)b * K + best) * hw + i])
          best = c;
      bad += pred[i] != best;
    }
    CHECK(bad == 0, "predict item %d: %d pixels differ from argmax", b, bad);
  }
  float tie[3 * 4] = {1, 0, 2, 2, 1, 3, 2, 0, 0, 3, 2, 2}; /* K = 3, 2x2, one item */
  fb_seg_head h3 = f.h;
  h3.cfg.num_classes = 3;
  fb_seg_predict(&h3, tie, 0, 2, pred);
  CHECK(pred[0] == 0 && pred[1] == 1 && pred[2] == 0 && pred[3] == 0,
        "predict with ties: %d %d %d %d", pred[0], pred[1], pred[2], pred[3]);
  free(pred);
  fb_graph_free(g);
}

/* Central differences of the float graph for a few parameters and feature
 * values (training-mode BN, hswish so no ReLU kink sits near a sample). */
static void test_finite_differences(void) {
  fb_status st = {0};
  fixture f;
  fb_seg_cfg cfg = fb_seg_cfg_default();
  cfg.num_classes = 4;
  cfg.width = 8;
  cfg.act = FB_SEG_ACT_HSWISH;
  cfg.fuse = FB_SEG_FUSE_CONCAT;
  const int ch[4] = {3, 4, 5, 6};
  CHECK(build(&f, &cfg, strides4, ch, 4, 32, &st) == 0, "build: %s", st.msg);
  CHECK(fb_graph_plan(&f.g, 2, 3, &st) == 0, "plan: %s", st.msg);
  fb_graph *g = &f.g;
  fb_rng r;
  fb_rng_seed(&r, 5);
  fill_inputs(&f, &r);
  step(g);
  int checked = 0, bad = 0;
  const float h = 1e-2f;
  for (int p = 0; p < g->params.n; p++) {
    const fb_param *pp = &g->params.p[p];
    if (pp->group == FB_PG_BUFFER) continue;
    float *x = fb_param_data(&g->params, p);
    size_t j = fb_rng_below(&r, (uint32_t)pp->numel);
    double an = fb_param_grad(&g->params, p)[j];
    float keep = x[j];
    x[j] = keep + h;
    fb_graph_forward(g, 1);
    double lp = loss_of(g, &f.h);
    x[j] = keep - h;
    fb_graph_forward(g, 1);
    double lm = loss_of(g, &f.h);
    x[j] = keep;
    double num = (lp - lm) / (2.0 * h);
    int ok = fabs(num - an) <= 2e-3 + 0.03 * fabs(an);
    bad += !ok;
    checked++;
    if (!ok) CHECK(0, "fd %s[%zu]: numeric %g analytic %g", pp->name, j, num, an);
  }
  for (int i = 0; i < 4; i++) {
    fb_node *nd = &g->nodes[f.feat[i]];
    for (int t = 0; t < 3; t++) {
      size_t j = fb_rng_below(&r, (uint32_t)fb_numel(nd->args.out));
      double an = nd->dout[j];
      float keep = nd->out[j];
      nd->out[j] = keep + h;
      fb_graph_forward(g, 1);
      double lp = loss_of(g, &f.h);
      nd->out[j] = keep - h;
      fb_graph_forward(g, 1);
      double lm = loss_of(g, &f.h);
      nd->out[j] = keep;
      double num = (lp - lm) / (2.0 * h);
      int ok = fabs(num - an) <= 2e-3 + 0.03 * fabs(an);
      bad += !ok;
      checked++;
      if (!ok) CHECK(0, "fd feat%d[%zu]: numeric %g analytic %g", i, j, num, an);
    }
  }
  CHECK(bad == 0 && checked == 20 + 12, "finite differences: %d of %d disagree", bad, checked);
  fb_graph_free(g);
}

static void test_variants_and_errors(void) {
  fb_status st = {0};
  fixture f;
  fb_seg_cfg cfg = fb_seg_cfg_default();
  CHECK(cfg.width == 32 && cfg.fuse == FB_SEG_FUSE_SUM && cfg.act == FB_SEG_ACT_RELU &&
            cfg.loss_weight == 1.f && cfg.num_classes == 0,
        "defaults");
  cfg.num_classes = K;
  cfg.width = 8;

  /* concat + hswish over a subset of levels given out of order */
  cfg.fuse = FB_SEG_FUSE_CONCAT;
  cfg.act = FB_SEG_ACT_HSWISH;
  const int s2[2] = {32, 8}, c2[2] = {24, 12};
  CHECK(build(&f, &cfg, s2, c2, 2, S, &st) == 0, "build concat: %s", st.msg);
  CHECK(fb_graph_plan(&f.g, N, 1, &st) == 0, "plan: %s", st.msg);
  fb_rng r;
  fb_rng_seed(&r, 2);
  fill_inputs(&f, &r);
  step(&f.g);
  fb_shape ls = f.g.nodes[f.h.logits].args.out;
  CHECK(ls.c == K && ls.h == S && ls.w == S, "concat logits shape");
  CHECK(isfinite(loss_of(&f.g, &f.h)), "concat loss finite");
  check_grads_reach(&f, "concat/hswish");
  CHECK(fb_params_find(&f.g.params, "seg.fuse_proj.conv.weight") >= 0, "concat has a projection");
  fb_graph_free(&f.g);

  /* one level at stride 4: no upsample, no fuse node */
  cfg.fuse = FB_SEG_FUSE_SUM;
  const int s1[1] = {4}, c1[1] = {6};
  CHECK(build(&f, &cfg, s1, c1, 1, S, &st) == 0, "build one level: %s", st.msg);
  CHECK(f.h.fused == f.h.level[0], "one level is the fused map");
  CHECK(fb_graph_plan(&f.g, 1, 1, &st) == 0, "plan batch 1: %s", st.msg);
  fill_inputs(&f, &r);
  step(&f.g);
  check_grads_reach(&f, "one level");
  fb_graph_free(&f.g);

  /* errors name the field / level */
  struct {
    int stride1, chan_h_off, classes, width, size, levels;
    const char *needle;
  } bad[] = {
      {12, 0, K, 8, S, 2, "level 1: stride 12"},
      {8, 1, K, 8, S, 2, "level 1: feature 'feat1'"},
      {8, 0, 0, 8, S, 2, "num_classes"},
      {8, 0, 256, 8, S, 2, "num_classes"},
      {8, 0, K, 0, S, 2, "width"},
      {8, 0, K, 8, S, 0, "feature levels"},
      {64, 0, K, 8, 96, 2, "level 1: input size 96 is not divisible"},
  };
  for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
    fb_graph g;
    fb_graph_init(&g, fb_op_table());
    int feat[2];
    feat[0] = fb_graph_input(&g, "feat0", 4, bad[t].size / 4, bad[t].size / 4);
    int s1b = bad[t].stride1, hh = bad[t].size / (s1b > 0 ? s1b : 1) + bad[t].chan_h_off;
    feat[1] = fb_graph_input(&g, "feat1", 4, hh, hh);
    int strides[2] = {4, s1b};
    fb_seg_cfg c = fb_seg_cfg_default();
    c.num_classes = bad[t].classes;
    c.width = bad[t].width;
    fb_seg_head h;
    st.msg[0] = 0;
    int rc = fb_seg_build(&g, &h, &c, feat, strides, bad[t].levels, bad[t].size, &st);
    CHECK(rc == -1 && strstr(st.msg, bad[t].needle), "error case %zu: rc %d msg '%s' (want '%s')",
          t, rc, st.msg, bad[t].needle);
    fb_graph_free(&g);
  }
  cfg.fuse = 7;
  fb_graph g;
  fb_graph_init(&g, fb_op_table());
  int x = fb_graph_input(&g, "x", 3, 16, 16), four = 4;
  fb_seg_head h;
  CHECK(fb_seg_build(&g, &h, &cfg, &x, &four, 1, S, &st) == -1 && strstr(st.msg, "fuse"),
        "bad fuse rejected: %s", st.msg);
  fb_graph_free(&g);
}

/* The head's upsampling factors (2, 4, 8 and the x4 to input size) on the
 * tabulated fast kernel of upsample_bilinear, against its double reference
 * (test_ops only draws factors 1..4). */
static void test_upsample_factors(void) {
  const fb_op *op = fb_op_find("upsample_bilinear");
  fb_rng r;
  fb_rng_seed(&r, 21);
  for (int s = 1; s <= 9; s++) {
    fb_op_args a;
    memset(&a, 0, sizeof a);
    a.n_in = 1;
    a.in[0] = fb_shape4(2, 3, 1 + s % 4, 2 + (s * 3) % 5);
    a.attr = fb_attr_default();
    a.attr.scale = s;
    char msg[256] = "";
    CHECK(op->infer(&a, msg) == 0, "upsample x%d infer: %s", s, msg);
    size_t n = fb_numel(a.in[0]), m = fb_numel(a.out);
    float *x = malloc(n * sizeof(float)), *y = malloc(m * sizeof(float));
    float *g = malloc(m * sizeof(float)), *dx = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double)), *yd = malloc(m * sizeof(double));
    double *gd = malloc(m * sizeof(double)), *dxd = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) xd[i] = x[i] = (float)fb_rng_normal(&r), dxd[i] = dx[i] = 0.5f;
    for (size_t i = 0; i < m; i++) gd[i] = g[i] = (float)fb_rng_normal(&r);
    const float *in[1] = {x};
    const double *ind[1] = {xd};
    float *din[1] = {dx};
    double *dind[1] = {dxd};
    op->fwd(NULL, &a, in, NULL, y, NULL);
    op->fwd_ref(&a, ind, NULL, yd, NULL);
    op->bwd(NULL, &a, in, NULL, y, g, din, NULL, NULL);
    op->bwd_ref(&a, ind, NULL, yd, gd, dind, NULL, NULL);
    double ey = 0, ed = 0;
    for (size_t i = 0; i < m; i++) ey = fmax(ey, fabs(y[i] - yd[i]));
    for (size_t i = 0; i < n; i++) ed = fmax(ed, fabs(dx[i] - dxd[i]));
    CHECK(ey < 1e-5 && ed < 1e-4, "upsample x%d fast vs reference: out %g, din %g", s, ey, ed);
    free(x), free(y), free(g), free(dx), free(xd), free(yd), free(gd), free(dxd);
  }
}

static void test_targets(void) {
  fb_seg_head h;
  memset(&h, 0, sizeof h);
  h.cfg = fb_seg_cfg_default();
  h.cfg.num_classes = 4;
  h.input_size = 3;
  uint8_t masks[2 * 9] = {0, 1, 2, 3, 255, 4, 200, 3, 0, 1, 1, 1, 2, 2, 2, 255, 255, 0};
  float want[2 * 9] = {0, 1, 2, 3, 255, 255, 255, 3, 0, 1, 1, 1, 2, 2, 2, 255, 255, 0};
  fb_batch b;
  memset(&b, 0, sizeof b);
  b.n = 2;
  b.size = 3;
  b.masks = masks;
  float tgt[18];
  fb_seg_targets(&h, &b, tgt);
  int same = 1;
  for (int i = 0; i < 18; i++) same &= tgt[i] == want[i];
  CHECK(same, "targets copy the masks exactly (values >= K become 255)");
  b.masks = NULL;
  fb_seg_targets(&h, &b, tgt);
  same = 1;
  for (int i = 0; i < 18; i++) same &= tgt[i] == 255.f;
  CHECK(same, "no masks: all pixels ignored");
  b.masks = masks;
  b.size = 2; /* not the head's input size: all ignored, nothing read out of bounds */
  fb_seg_targets(&h, &b, tgt);
  same = 1;
  for (int i = 0; i < 18; i++) same &= tgt[i] == 255.f;
  CHECK(same, "batch of another size: all pixels ignored");
}

/* A few dozen SGD steps on one batch whose stride-4 feature carries the
 * (block-aligned) mask plus noise: loss drops, pixel accuracy > 90%. */
static void test_overfit(void) {
  fb_status st = {0};
  fixture f;
  fb_seg_cfg cfg = fb_seg_cfg_default();
  cfg.num_classes = 3;
  cfg.width = 16;
  CHECK(build(&f, &cfg, strides4, chans4, 4, S, &st) == 0, "build: %s", st.msg);
  CHECK(fb_graph_plan(&f.g, N, 9, &st) == 0, "plan: %s", st.msg);
  fb_graph *g = &f.g;
  fb_rng r;
  fb_rng_seed(&r, 4);
  fill_inputs(&f, &r);
  /* masks: background 0, a rectangle of class 1, a square of class 2, a few
   * ignored rows; all edges on multiples of 4 */
  uint8_t masks[N * S * S];
  for (int b = 0; b < N; b++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) {
        int v = 0;
        if (x >= 8 + 8 * b && x < 40 && y >= 12 && y < 32) v = 1;
        if (x >= 36 && x < 56 && y >= 36 + 4 * b && y < 60) v = 2;
        if (y < 4) v = 255;
        masks[(b * S + y) * S + x] = (uint8_t)v;
      }
  fb_batch batch;
  memset(&batch, 0, sizeof batch);
  batch.n = N;
  batch.size = S;
  batch.masks = masks;
  fb_seg_targets(&f.h, &batch, g->nodes[f.h.tgt].out);
  fb_node *f4 = &g->nodes[f.feat[0]]; /* (N, 8, 16, 16): channel c = 4x4 mean of one-hot c */
  for (int b = 0; b < N; b++)
    for (int c = 0; c < 8; c++)
      for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
          int v = masks[(b * S + 4 * y + 2) * S + 4 * x + 2];
          f4->out[((b * 8 + c) * 16 + y) * 16 + x] =
              (float)(c < 3 && v == c) + 0.3f * (float)fb_rng_normal(&r);
        }
  fb_optim_cfg oc = fb_optim_sgd_default();
  oc.weight_decay = 0;
  oc.lr = 0.2f;
  float first = 0, last = 0;
  for (int it = 1; it <= 40; it++) {
    step(g);
    if (it == 1) first = loss_of(g, &f.h);
    last = loss_of(g, &f.h);
    fb_optim_step(&g->params, &oc, oc.lr, it);
  }
  fb_graph_forward(g, 1);
  last = loss_of(g, &f.h);
  uint8_t pred[S * S];
  long right = 0, counted = 0;
  for (int b = 0; b < N; b++) {
    fb_seg_predict(&f.h, g->nodes[f.h.logits].out, b, S, pred);
    for (int i = 0; i < S * S; i++) {
      if (masks[b * S * S + i] == 255) continue;
      counted++;
      right += pred[i] == masks[b * S * S + i];
    }
  }
  double acc = (double)right / (double)counted;
  printf("overfit: loss %.4f -> %.4f, pixel accuracy %.4f\n", (double)first, (double)last, acc);
  CHECK(isfinite(last) && last < 0.2 * first, "loss drops a lot: %g -> %g", (double)first,
        (double)last);
  CHECK(acc > 0.9, "pixel accuracy %.4f > 0.9", acc);
  fb_graph_free(g);
}

/* ---- --bench: batch 16 at 128 px, K = 11, FBNet-like path widths -------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int bench(int width, fb_seg_fuse fuse) {
  fb_status st = {0};
  fixture f;
  fb_seg_cfg cfg = fb_seg_cfg_default();
  cfg.num_classes = 11;
  cfg.width = width;
  cfg.fuse = fuse;
  const int ch[4] = {24, 40, 120, 224}, B = 16, SZ = 128;
  if (build(&f, &cfg, strides4, ch, 4, SZ, &st) != 0 || fb_graph_plan(&f.g, B, 1, &st) != 0) {
    fprintf(stderr, "bench: %s\n", st.msg);
    return 1;
  }
  fb_graph *g = &f.g;
  fb_rng r;
  fb_rng_seed(&r, 1);
  fill_inputs(&f, &r);
  for (int i = 0; i < 3; i++) step(g);
  /* the machine is shared: report the minimum and the median of reps runs */
  enum { REPS = 15 };
  double tf[REPS], tb[REPS];
  for (int i = 0; i < REPS; i++) {
    double t0 = omp_get_wtime();
    fb_graph_forward(g, 1);
    double t1 = omp_get_wtime();
    step(g);
    tf[i] = t1 - t0, tb[i] = omp_get_wtime() - t1;
  }
  qsort(tf, REPS, sizeof(double), cmp_double);
  qsort(tb, REPS, sizeof(double), cmp_double);
  printf("seg head width %d fuse %s, batch %d at %d px, K 11, %d threads: forward %.2f ms "
         "(median %.2f), forward+backward %.2f ms (median %.2f)\n",
         width, fuse == FB_SEG_FUSE_SUM ? "sum" : "concat", B, SZ, omp_get_max_threads(),
         1e3 * tf[0], 1e3 * tf[REPS / 2], 1e3 * tb[0], 1e3 * tb[REPS / 2]);
  double macs = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op) macs += fb_op_macs(g->nodes[i].op, &g->nodes[i].args);
  printf("  %.2f M MACs per image, %zu trainable values\n", macs / B / 1e6,
         fb_params_trainable(&g->params));
  /* per-node profile: each op's fwd and bwd timed alone (inputs from the
   * graph), minimum of REPS runs */
  double sum_f = 0, sum_b = 0;
  for (int i = 0; i < g->n; i++) {
    fb_node *nd = &g->nodes[i];
    if (!nd->op) continue;
    const float *in[FB_MAX_IN];
    float *din[FB_MAX_IN], *par[FB_MAX_PAR], *dpar[FB_MAX_PAR];
    for (int k = 0; k < nd->args.n_in; k++) {
      in[k] = g->nodes[nd->in[k]].out;
      din[k] = k < nd->op->n_diff_in ? g->nodes[nd->in[k]].dout : NULL;
    }
    for (int k = 0; k < FB_MAX_PAR; k++) {
      par[k] = nd->par[k] >= 0 ? fb_param_data(&g->params, nd->par[k]) : NULL;
      dpar[k] = nd->par[k] >= 0 ? fb_param_grad(&g->params, nd->par[k]) : NULL;
    }
    double bf = 1e9, bb = 1e9;
    for (int k = 0; k < REPS; k++) {
      double a0 = omp_get_wtime();
      nd->op->fwd(&nd->ctx, &nd->args, in, par, nd->out, nd->ws);
      double a1 = omp_get_wtime();
      nd->op->bwd(&nd->ctx, &nd->args, in, (const float *const *)par, nd->out, nd->dout, din,
                  dpar, nd->ws);
      double a2 = omp_get_wtime();
      bf = a1 - a0 < bf ? a1 - a0 : bf;
      bb = a2 - a1 < bb ? a2 - a1 : bb;
    }
    sum_f += bf, sum_b += bb;
    printf("  %-22s %-18s fwd %7.3f ms  bwd %7.3f ms\n", nd->name, nd->op->name, 1e3 * bf,
           1e3 * bb);
  }
  printf("  %-41s fwd %7.3f ms  bwd %7.3f ms\n", "sum of per-node minima", 1e3 * sum_f,
         1e3 * sum_b);
  fb_graph_free(g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
    int w = argc > 2 ? atoi(argv[2]) : 32;
    return bench(w, argc > 3 && strcmp(argv[3], "concat") == 0 ? FB_SEG_FUSE_CONCAT
                                                               : FB_SEG_FUSE_SUM);
  }
  test_forward_backward();
  test_finite_differences();
  test_variants_and_errors();
  test_targets();
  test_upsample_factors();
  test_overfit();
  return check_report("seghead");
}
