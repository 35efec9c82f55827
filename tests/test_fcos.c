/* FCOS head: target assignment on hand-made boxes (level, positive
 * locations, ambiguity, crowd, centre sampling, centerness values), the
 * targets -> perfect predictions -> decode round trip, NMS by hand, the
 * detection losses' gradients by finite differences on realistic targets
 * (background, ignored, zero-weight locations), a built head on fake
 * features (planning, finite losses, shared conv weights fed by every
 * level), and a short overfit run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "check.h"
#include "core/graph.h"
#include "core/rng.h"
#include "core/status.h"
#include "tasks/det/box.h"
#include "tasks/det/fcos.h"
#include "tasks/det/nms.h"
#include "train/optim.h"

/* ---- helpers --------------------------------------------------------------- */

/* A batch of n images of size px with up to 4 boxes each (no pixels). */
typedef struct tbatch {
  fb_batch b;
  int n_boxes[4];
  fb_box boxes[4][4];
  fb_box *ptr[4];
  float scale[4], off_x[4], off_y[4];
  int index[4];
} tbatch;

static void tb_init(tbatch *t, int n, int px) {
  memset(t, 0, sizeof *t);
  t->b.n = n;
  t->b.c = 1;
  t->b.size = px;
  for (int i = 0; i < 4; i++) t->ptr[i] = t->boxes[i], t->scale[i] = 1.f, t->index[i] = 100 + i;
  t->b.n_boxes = t->n_boxes;
  t->b.boxes = t->ptr;
  t->b.scale = t->scale;
  t->b.off_x = t->off_x;
  t->b.off_y = t->off_y;
  t->b.index = t->index;
}

static void tb_add(tbatch *t, int img, float x, float y, float w, float h, int cat, int crowd) {
  fb_box *b = &t->boxes[img][t->n_boxes[img]++];
  memset(b, 0, sizeof *b);
  b->x = x, b->y = y, b->w = w, b->h = h, b->cat = cat, b->iscrowd = crowd, b->area = w * h;
  b->score = 1.f;
}

/* Head on fake features of a px-pixel input at strides 8/16/32 (or only 8
 * when one_level). */
typedef struct thead {
  fb_graph g;
  fb_fcos_head h;
  int feat[3];
} thead;

static int th_build(thead *t, const fb_fcos_cfg *cfg, int px, int n_levels, fb_status *st) {
  static const int strides[3] = {8, 16, 32}, chans[3] = {3, 5, 7};
  fb_graph_init(&t->g, fb_op_table());
  for (int l = 0; l < n_levels; l++) {
    char name[32];
    snprintf(name, sizeof name, "feat%d", strides[l]);
    t->feat[l] = fb_graph_input(&t->g, name, chans[l], px / strides[l], px / strides[l]);
  }
  return fb_fcos_build(&t->g, &t->h, cfg, t->feat, strides, n_levels, st);
}

static int loc(const fb_fcos_head *h, int l, int i, int j) { return h->offset[l] + i * h->w[l] + j; }

static int count_pos(const float *cls, int P, int level_lo, int level_hi) {
  int c = 0;
  for (int p = level_lo; p < level_hi && p < P; p++) c += cls[p] >= 0;
  return c;
}

/* ---- assignment ------------------------------------------------------------ */

static void test_assignment(void) {
  fb_status st = {0};
  thead t;
  fb_fcos_cfg cfg = fb_fcos_cfg_default(5);
  cfg.width = 8;
  cfg.tower_depth = 1;
  int rc = th_build(&t, &cfg, 64, 3, &st);
  CHECK(rc == 0, "build: %s", st.msg);
  if (rc) return;
  const fb_fcos_head *h = &t.h;
  CHECK(h->P == 64 + 16 + 4, "P = %d, want 84", h->P);
  CHECK_CLOSE(h->lo[1], 32, 0, "level 1 lower bound");
  CHECK_CLOSE(h->hi[1], 64, 0, "level 1 upper bound");
  CHECK(isinf(h->hi[2]), "last level unbounded");

  tbatch tb;
  tb_init(&tb, 4, 64);
  tb_add(&tb, 0, 10, 10, 20, 20, 3, 0); /* small: level 0, 3x3 locations */
  tb_add(&tb, 1, 2, 2, 60, 60, 1, 0);   /* large: level 1, 2x2 locations */
  tb_add(&tb, 2, 0, 0, 40, 40, 0, 0);   /* ambiguity: big and small overlapping */
  tb_add(&tb, 2, 8, 8, 16, 16, 2, 0);
  tb_add(&tb, 3, 40, 40, 20, 20, 0, 1); /* crowd only */
  const int P = h->P;
  float *cls = calloc(4 * P, sizeof(float)), *box = calloc(16 * P, sizeof(float)),
        *ctr = calloc(4 * P, sizeof(float));
  rc = fb_fcos_targets(h, &tb.b, cls, box, ctr, &st);
  CHECK(rc == 0, "targets: %s", st.msg);

  /* image 0: positives exactly (i, j) in {1,2,3}^2 of level 0, class 3 */
  int ok = 1;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      int want = i >= 1 && i <= 3 && j >= 1 && j <= 3;
      float v = cls[loc(h, 0, i, j)];
      if ((want && v != 3.f) || (!want && v != -1.f)) ok = 0;
    }
  CHECK(ok, "image 0: level-0 positives should be the 3x3 locations inside the box");
  CHECK(count_pos(cls, P, h->offset[1], P) == 0, "image 0: no positives on levels 1, 2");
  int p = loc(h, 0, 2, 2); /* (20, 20): the box centre */
  for (int c = 0; c < 4; c++) CHECK_CLOSE(box[c * P + p], 1.25, 1e-6, "image 0 centre ltrb / 8");
  CHECK_CLOSE(ctr[p], 1.0, 1e-6, "image 0 centre centerness");
  p = loc(h, 0, 1, 1); /* (12, 12): l = t = 2, r = b = 18 */
  CHECK_CLOSE(box[0 * P + p], 0.25, 1e-6, "image 0 (12,12) l");
  CHECK_CLOSE(box[2 * P + p], 2.25, 1e-6, "image 0 (12,12) r");
  CHECK_CLOSE(ctr[p], 2.0 / 18.0, 1e-6, "image 0 (12,12) centerness");
  p = loc(h, 0, 1, 3); /* (28, 12): l = 18, t = 2, r = 2, b = 18 */
  CHECK_CLOSE(ctr[p], sqrt(2.0 / 18 * 2.0 / 18), 1e-6, "image 0 (28,12) centerness");
  CHECK_CLOSE(box[0 * P + loc(h, 0, 0, 0)], 0, 0, "background box target is 0");
  CHECK_CLOSE(ctr[loc(h, 0, 0, 0)], 0, 0, "background centerness target is 0");

  /* image 1: max distance >= 30 everywhere -> level 1 at (i, j) in {1,2}^2 */
  const float *c1 = cls + P;
  CHECK(count_pos(c1, P, 0, h->offset[1]) == 0, "image 1: no level-0 positives");
  CHECK(count_pos(c1, P, h->offset[1], h->offset[2]) == 4, "image 1: 4 level-1 positives");
  CHECK(count_pos(c1, P, h->offset[2], P) == 0, "image 1: no level-2 positives");
  for (int i = 1; i <= 2; i++)
    for (int j = 1; j <= 2; j++) CHECK(c1[loc(h, 1, i, j)] == 1.f, "image 1 level 1 (%d,%d)", i, j);
  p = loc(h, 1, 1, 1); /* (24, 24): l = t = 22, r = b = 38 */
  CHECK_CLOSE(box[4 * P + 0 * P + p], 22.0 / 16, 1e-6, "image 1 l / 16");
  CHECK_CLOSE(box[4 * P + 3 * P + p], 38.0 / 16, 1e-6, "image 1 b / 16");
  CHECK_CLOSE(ctr[P + p], 22.0 / 38, 1e-6, "image 1 centerness");

  /* image 2: (12,12) lies in both boxes -> the smaller one (class 2);
   * (28,28) only in the big one (class 0) */
  CHECK(cls[2 * P + loc(h, 0, 1, 1)] == 2.f, "ambiguous location takes the smaller box");
  CHECK(cls[2 * P + loc(h, 0, 3, 3)] == 0.f, "location of the big box only");
  CHECK_CLOSE(box[8 * P + 2 * P + loc(h, 0, 1, 1)], 12.0 / 8, 1e-6, "ambiguous: r of small box");

  /* image 3: crowd box ignores its locations, elsewhere background */
  CHECK(cls[3 * P + loc(h, 0, 5, 5)] == -2.f, "inside crowd: ignored");
  CHECK(cls[3 * P + loc(h, 0, 0, 0)] == -1.f, "outside crowd: background");
  CHECK(count_pos(cls + 3 * P, P, 0, P) == 0, "crowd boxes make no positives");

  /* a bad category is an error naming the image and box */
  tbatch bad;
  tb_init(&bad, 1, 64);
  tb_add(&bad, 0, 1, 1, 10, 10, 5, 0);
  rc = fb_fcos_targets(h, &bad.b, cls, box, ctr, &st);
  CHECK(rc != 0 && strstr(st.msg, "box 0") && strstr(st.msg, "category 5"),
        "category 5 of 5 classes rejected: %s", st.msg);
  free(cls), free(box), free(ctr);
  fb_graph_free(&t.g);

  /* centre sampling on one level: box [0,64] x [0,16], centre (32, 8) */
  fb_fcos_cfg one = fb_fcos_cfg_default(1);
  one.width = 4;
  one.tower_depth = 0;
  one.center_radius = 1.0f;
  rc = th_build(&t, &one, 64, 1, &st);
  CHECK(rc == 0, "one-level build: %s", st.msg);
  if (rc) return;
  tb_init(&tb, 1, 64);
  tb_add(&tb, 0, 0, 0, 64, 16, 0, 0);
  float c2[64], b2[256], t2[64];
  fb_fcos_targets(&t.h, &tb.b, c2, b2, t2, &st);
  ok = count_pos(c2, 64, 0, 64) == 4;
  for (int i = 0; i < 2; i++)
    for (int j = 3; j <= 4; j++) ok &= c2[i * 8 + j] == 0.f;
  CHECK(ok, "radius 1: only x in (24, 40) -> 2x2 positives (got %d)", count_pos(c2, 64, 0, 64));
  t.h.cfg.center_radius = 0;
  fb_fcos_targets(&t.h, &tb.b, c2, b2, t2, &st);
  CHECK(count_pos(c2, 64, 0, 64) == 16, "no centre sampling: all 16 inside (got %d)",
        count_pos(c2, 64, 0, 64));
  fb_graph_free(&t.g);

  /* top-down needs halving sizes: 8x8 then 3x3 is rejected */
  fb_graph g;
  fb_graph_init(&g, fb_op_table());
  int f[2] = {fb_graph_input(&g, "a", 2, 8, 8), fb_graph_input(&g, "b", 2, 3, 3)}, s[2] = {8, 16};
  fb_fcos_head hh;
  rc = fb_fcos_build(&g, &hh, &one, f, s, 2, &st);
  CHECK(rc != 0 && strstr(st.msg, "top_down"), "mismatched levels rejected: %s", st.msg);
  fb_graph_free(&g);
  s[1] = 8;
  fb_graph_init(&g, fb_op_table());
  f[0] = fb_graph_input(&g, "a", 2, 8, 8), f[1] = fb_graph_input(&g, "b", 2, 4, 4);
  rc = fb_fcos_build(&g, &hh, &one, f, s, 2, &st);
  CHECK(rc != 0 && strstr(st.msg, "strides"), "equal strides rejected: %s", st.msg);
  fb_graph_free(&g);
}

/* ---- decode round trip ------------------------------------------------------ */

static float logit(double p) { return (float)log(p / (1 - p)); }

static void test_decode_round_trip(void) {
  fb_status st = {0};
  thead t;
  fb_fcos_cfg cfg = fb_fcos_cfg_default(5);
  cfg.width = 4;
  cfg.tower_depth = 0;
  int rc = th_build(&t, &cfg, 64, 3, &st);
  CHECK(rc == 0, "build: %s", st.msg);
  if (rc) return;
  const fb_fcos_head *h = &t.h;
  const int P = h->P, K = 5;
  tbatch tb;
  tb_init(&tb, 2, 64);
  tb_add(&tb, 0, 10, 10, 20, 20, 3, 0);
  tb_add(&tb, 0, 36, 6, 22, 14, 1, 0);
  tb_add(&tb, 1, 2, 2, 60, 60, 4, 0);
  tb.scale[1] = 0.5f, tb.off_x[1] = 4.f, tb.off_y[1] = -2.f; /* orig = (batch - off) / 0.5 */
  float *tc = calloc(2 * P, sizeof(float)), *tbx = calloc(8 * P, sizeof(float)),
        *tct = calloc(2 * P, sizeof(float)), *cls = calloc(2 * K * P, sizeof(float)),
        *ctr = calloc(2 * P, sizeof(float));
  fb_fcos_targets(h, &tb.b, tc, tbx, tct, &st);
  /* perfect predictions: 8 / -8 logits, the target ltrb and centerness */
  for (int n = 0; n < 2; n++)
    for (int p = 0; p < P; p++) {
      float lab = tc[n * P + p], c = tct[n * P + p];
      for (int k = 0; k < K; k++) cls[(n * K + k) * P + p] = lab == (float)k ? 8.f : -8.f;
      ctr[n * P + p] = c > 0 ? logit(fmin(c, 0.999)) : -8.f;
    }
  fb_det *d = NULL;
  int nd = 0;
  rc = fb_fcos_decode(h, cls, tbx, ctr, &tb.b, NULL, &d, &nd, &st);
  CHECK(rc == 0, "decode: %s", st.msg);
  CHECK(nd == 3, "one detection per gt box after NMS (got %d)", nd);
  if (nd == 3) {
    /* image 0 by score: the square box's centre location has centerness 1 */
    CHECK(d[0].image_id == 100 && d[0].box.cat == 3, "first: image 100 class 3 (got %d, %d)",
          d[0].image_id, d[0].box.cat);
    CHECK_CLOSE(d[0].box.x, 10, 1e-4, "box 0 x");
    CHECK_CLOSE(d[0].box.y, 10, 1e-4, "box 0 y");
    CHECK_CLOSE(d[0].box.w, 20, 1e-4, "box 0 w");
    CHECK_CLOSE(d[0].box.h, 20, 1e-4, "box 0 h");
    CHECK(d[0].box.score > 0.99, "box 0 score %g", d[0].box.score);
    CHECK(d[1].image_id == 100 && d[1].box.cat == 1, "second: image 100 class 1");
    CHECK_CLOSE(d[1].box.x, 36, 1e-4, "box 1 x");
    CHECK_CLOSE(d[1].box.w, 22, 1e-4, "box 1 w");
    CHECK_CLOSE(d[1].box.h, 14, 1e-4, "box 1 h");
    CHECK(d[1].box.score > 0.5 && d[1].box.score <= d[0].box.score, "box 1 score %g",
          d[1].box.score);
    /* image 1 mapped back: x = (2 - 4) / 0.5, y = (2 + 2) / 0.5, w = 60 / 0.5 */
    CHECK(d[2].image_id == 101 && d[2].box.cat == 4, "third: image 101 class 4");
    CHECK_CLOSE(d[2].box.x, -4, 1e-4, "box 2 x (original pixels)");
    CHECK_CLOSE(d[2].box.y, 8, 1e-4, "box 2 y (original pixels)");
    CHECK_CLOSE(d[2].box.w, 120, 1e-3, "box 2 w (original pixels)");
    CHECK_CLOSE(d[2].box.area, 120 * 120, 1e-1, "box 2 area");
  }
  free(d);
  /* a threshold above every score leaves nothing; max_dets caps the rest */
  fb_fcos_head h2 = *h;
  h2.cfg.score_thresh = 0.9999f;
  fb_fcos_decode(&h2, cls, tbx, ctr, &tb.b, NULL, &d, &nd, &st);
  CHECK(nd == 0, "threshold 0.9999: %d detections", nd);
  free(d);
  h2 = *h;
  h2.cfg.nms_iou = 1.0f; /* nothing suppressed */
  h2.cfg.max_dets = 2;
  int ids[2] = {7, 8};
  fb_fcos_decode(&h2, cls, tbx, ctr, &tb.b, ids, &d, &nd, &st);
  CHECK(nd == 4 && d[0].image_id == 7 && d[3].image_id == 8, "max_dets 2 per image: %d", nd);
  free(d);
  free(tc), free(tbx), free(tct), free(cls), free(ctr);
  fb_graph_free(&t.g);
}

/* ---- NMS --------------------------------------------------------------------- */

static void test_nms(void) {
  float iou_sq[8] = {0, 0, 10, 10, 0, 0, 10, 5};
  CHECK_CLOSE(fb_box_iou(iou_sq, iou_sq + 4), 0.5, 1e-7, "IoU of a box and its top half");
  const float far[4] = {20, 20, 30, 30};
  CHECK_CLOSE(fb_box_iou(iou_sq, far), 0, 0, "disjoint IoU");

  /* A (0.9) and B (0.8) overlap with IoU 81/100 > 0.6; C (0.7) far away */
  float boxes[12] = {0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30};
  float scores[3] = {0.8f, 0.9f, 0.7f}; /* B first in memory: order must come from scores */
  int cls_same[3] = {0, 0, 0}, cls_diff[3] = {0, 1, 0}, keep[3];
  int k = fb_nms(boxes, scores, cls_same, 3, 0.6f, 0, keep);
  CHECK(k == 2 && keep[0] == 1 && keep[1] == 2, "same class: keep 1, 2 (got %d: %d %d)", k, keep[0],
        keep[1]);
  k = fb_nms(boxes, scores, cls_diff, 3, 0.6f, 0, keep);
  CHECK(k == 3 && keep[0] == 1 && keep[1] == 0 && keep[2] == 2, "different classes: all kept");
  k = fb_nms(boxes, scores, NULL, 3, 0.6f, 0, keep);
  CHECK(k == 2, "class-agnostic: 2 kept (got %d)", k);
  k = fb_nms(boxes, scores, cls_diff, 3, 0.6f, 1, keep);
  CHECK(k == 1 && keep[0] == 1, "max_keep 1");
  k = fb_nms(boxes, scores, cls_same, 3, 0.85f, 0, keep);
  CHECK(k == 3, "IoU 0.81 below a 0.85 threshold: nothing suppressed (got %d)", k);

  /* IoU exactly at the threshold is not suppressed (strictly greater) */
  float s2[2] = {0.5f, 0.5f};
  k = fb_nms(iou_sq, s2, NULL, 2, 0.5f, 0, keep);
  CHECK(k == 2, "IoU == threshold kept (got %d)", k);
  k = fb_nms(iou_sq, s2, NULL, 2, 0.49f, 0, keep);
  CHECK(k == 1 && keep[0] == 0, "tie in score: the lower index wins (got %d, %d)", k, keep[0]);

  /* greedy chain: A overlaps B, B overlaps C, A and C disjoint -> A and C */
  float chain[12] = {0, 0, 10, 10, 5, 0, 15, 10, 10, 0, 20, 10};
  float cs[3] = {0.9f, 0.8f, 0.7f};
  k = fb_nms(chain, cs, NULL, 3, 0.3f, 0, keep);
  CHECK(k == 2 && keep[0] == 0 && keep[1] == 2, "greedy chain keeps A and C (got %d)", k);
  CHECK(fb_nms(chain, cs, NULL, 0, 0.3f, 0, keep) == 0, "empty input");
}

/* ---- loss gradients on realistic targets -------------------------------------- */

/* Finite differences of the reference kernel for input 0, and the fast
 * kernel against the reference, for one loss op instance. */
static void fd_loss(const char *opname, fb_op_args a, double *const *x) {
  const fb_op *op = fb_op_find(opname);
  char msg[256] = "";
  CHECK(op && op->infer(&a, msg) == 0, "%s: infer: %s", opname, msg);
  if (!op) return;
  size_t n0 = fb_numel(a.in[0]);
  double *g = calloc(n0, sizeof(double)), out = 0, one = 1, lp, lm;
  double *din[FB_MAX_IN] = {g}, *dpar[FB_MAX_PAR] = {0};
  op->fwd_ref(&a, (const double *const *)x, NULL, &out, NULL);
  op->bwd_ref(&a, (const double *const *)x, NULL, &out, &one, din, dpar, NULL);
  double worst = 0, nz = 0;
  for (size_t i = 0; i < n0; i++) {
    double keep = x[0][i];
    x[0][i] = keep + 1e-6;
    op->fwd_ref(&a, (const double *const *)x, NULL, &lp, NULL);
    x[0][i] = keep - 1e-6;
    op->fwd_ref(&a, (const double *const *)x, NULL, &lm, NULL);
    x[0][i] = keep;
    double num = (lp - lm) / 2e-6;
    worst = fmax(worst, fabs(num - g[i]) / (1 + fabs(g[i])));
    nz += fabs(g[i]);
  }
  CHECK(worst < 1e-6, "%s: finite differences vs analytic, worst rel err %g", opname, worst);
  CHECK(nz > 0, "%s: gradient is not all zero", opname);
  /* fast kernel */
  float *xf[FB_MAX_IN] = {0}, outf = 0, onef = 1, *gf = calloc(n0, sizeof(float));
  for (int k = 0; k < a.n_in; k++) {
    size_t m = fb_numel(a.in[k]);
    xf[k] = malloc(m * sizeof(float));
    for (size_t i = 0; i < m; i++) xf[k][i] = (float)x[k][i];
  }
  float *dinf[FB_MAX_IN] = {gf}, *dparf[FB_MAX_PAR] = {0};
  fb_op_ctx ctx = {0};
  op->fwd(&ctx, &a, (const float *const *)xf, NULL, &outf, NULL);
  op->bwd(&ctx, &a, (const float *const *)xf, NULL, &outf, &onef, dinf, dparf, NULL);
  CHECK_CLOSE(outf, out, 1e-5 * (1 + fabs(out)), opname);
  double wf = 0;
  for (size_t i = 0; i < n0; i++) wf = fmax(wf, fabs(gf[i] - g[i]));
  CHECK(wf < 1e-5, "%s: fast gradient differs by %g", opname, wf);
  for (int k = 0; k < a.n_in; k++) free(xf[k]);
  free(gf), free(g);
}

static void test_loss_gradients(void) {
  fb_rng r;
  fb_rng_seed(&r, 5);
  enum { N = 2, K = 3, P = 7 };
  fb_op_args a;
  memset(&a, 0, sizeof a);
  a.attr = fb_attr_default();
  /* focal: positives, background, ignored (-2 and -7), out-of-range class */
  double logits[N * K * P], lab[N * P] = {0, -1, 2, -2, 1, -1, -7, 1, 1, -1, -1, 3, 0, -2};
  for (int i = 0; i < N * K * P; i++) logits[i] = 2.5 * fb_rng_normal(&r);
  a.n_in = 2, a.in[0] = fb_shape4(N, K, P, 1), a.in[1] = fb_shape4(N, 1, P, 1);
  double *fx[2] = {logits, lab};
  fd_loss("focal_loss", a, fx);
  /* value by hand: one location, one class, positive, alpha 0.25 gamma 2 */
  {
    fb_op_args b = a;
    b.in[0] = fb_shape4(1, 1, 1, 1), b.in[1] = fb_shape4(1, 1, 1, 1);
    double x0 = 0.0, y0 = 0.0, out = 0;
    const double *in[2] = {&x0, &y0};
    fb_op_find("focal_loss")->fwd_ref(&b, in, NULL, &out, NULL);
    CHECK_CLOSE(out, 0.25 * 0.25 * log(2.0), 1e-12, "focal at x=0, positive");
    y0 = -1;
    fb_op_find("focal_loss")->fwd_ref(&b, in, NULL, &out, NULL);
    CHECK_CLOSE(out, 0.75 * 0.25 * log(2.0), 1e-12, "focal at x=0, background (divisor 1)");
  }
  /* giou: valid, zero-weight and degenerate-target locations, some pred < 0 */
  double pred[N * 4 * P], tgt[N * 4 * P], w[N * P];
  for (int i = 0; i < N * 4 * P; i++) pred[i] = 0.3 + 2 * fb_rng_uniform(&r), tgt[i] = 0.2 + 3 * fb_rng_uniform(&r);
  for (int i = 0; i < N * P; i++) w[i] = (i % 3 == 0) ? 0 : 0.1 + fb_rng_uniform(&r);
  tgt[0 * P + 1] = 0, tgt[2 * P + 1] = 0; /* l* = r* = 0 at location 1: not counted */
  pred[1 * P + 2] = -0.4;                 /* counts as 0 */
  a.n_in = 3, a.in[0] = fb_shape4(N, 4, P, 1), a.in[1] = fb_shape4(N, 4, P, 1),
  a.in[2] = fb_shape4(N, 1, P, 1);
  double *gx[3] = {pred, tgt, w};
  fd_loss("giou_loss", a, gx);
  {
    /* by hand: pred 1,1,1,1 (2x2 box), target 1,1,3,1 (4x2 box): I = 4,
     * U = 8, E = 8 -> GIoU = 0.5, loss 0.5 */
    fb_op_args b = a;
    b.in[0] = b.in[1] = fb_shape4(1, 4, 1, 1), b.in[2] = fb_shape4(1, 1, 1, 1);
    double p1[4] = {1, 1, 1, 1}, t1[4] = {1, 1, 3, 1}, w1 = 0.3, out = 0;
    const double *in[3] = {p1, t1, &w1};
    fb_op_find("giou_loss")->fwd_ref(&b, in, NULL, &out, NULL);
    CHECK_CLOSE(out, 0.5, 1e-12, "giou by hand (contained box)");
    /* disjoint-ish: pred 0,0,1,1 (box [0,1]x[0,1]) vs target 1,1,0,0
     * ([-1,0]x[-1,0]): I = 0, U = 2, E = 4 -> GIoU = -0.5, loss 1.5 */
    double p2[4] = {0, 0, 1, 1}, t2[4] = {1, 1, 0, 0};
    in[0] = p2, in[1] = t2;
    fb_op_find("giou_loss")->fwd_ref(&b, in, NULL, &out, NULL);
    CHECK_CLOSE(out, 1.5, 1e-12, "giou by hand (touching corners)");
  }
  /* bce: mask from a centerness-like target */
  double cl[N * P], ct[N * P];
  for (int i = 0; i < N * P; i++) cl[i] = 2 * fb_rng_normal(&r), ct[i] = (i % 2) ? fb_rng_uniform(&r) : 0;
  a.n_in = 3, a.in[0] = a.in[1] = a.in[2] = fb_shape4(N, 1, P, 1);
  double *bx[3] = {cl, ct, ct};
  fd_loss("bce_logits", a, bx);
}

/* ---- graph ------------------------------------------------------------------ */

static int find_node(const fb_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

static void fill_features(thead *t, fb_rng *r) {
  for (int l = 0; l < 3; l++) {
    fb_node *nd = &t->g.nodes[t->feat[l]];
    for (size_t i = 0; i < fb_numel(nd->args.out); i++) nd->out[i] = (float)fb_rng_normal(r);
  }
}

static double total_loss(const fb_graph *g, const fb_fcos_head *h) {
  return g->nodes[h->loss_cls].loss_weight * g->nodes[h->loss_cls].out[0] +
         g->nodes[h->loss_box].loss_weight * g->nodes[h->loss_box].out[0] +
         g->nodes[h->loss_ctr].loss_weight * g->nodes[h->loss_ctr].out[0];
}

static void test_graph(void) {
  fb_status st = {0};
  thead t;
  fb_fcos_cfg cfg = fb_fcos_cfg_default(4);
  cfg.width = 8;
  cfg.act_hswish = 1;
  int rc = th_build(&t, &cfg, 64, 3, &st);
  CHECK(rc == 0, "build: %s", st.msg);
  if (rc) return;
  fb_graph *g = &t.g;
  const fb_fcos_head *h = &t.h;
  rc = fb_graph_plan(g, 2, 11, &st);
  CHECK(rc == 0, "plan: %s", st.msg);
  if (rc) return;
  fb_fcos_init_params(g, h);
  fb_shape s = g->nodes[h->cls].args.out;
  CHECK(s.n == 2 && s.c == 4 && s.h == 84 && s.w == 1, "cls output (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);
  s = g->nodes[h->box].args.out;
  CHECK(s.c == 4 && s.h == 84, "box output (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);

  /* parameters: shared convs once, BN once per level */
  const fb_params *ps = &g->params;
  CHECK(fb_params_find(ps, "fcos.cls_tower.0.conv.weight") >= 0, "shared tower conv registered");
  CHECK(fb_params_find(ps, "fcos.cls_tower.0.conv.s16.weight") < 0, "no per-level tower conv");
  CHECK(fb_params_find(ps, "fcos.cls_tower.1.bn.s32.weight") >= 0, "per-level BN");
  CHECK(fb_params_find(ps, "fcos.reg_tower.0.bn.s8.running_var") >= 0, "per-level BN stats");
  int bias = fb_params_find(ps, "fcos.cls_logits.bias");
  CHECK(bias >= 0 && fabs(fb_param_data(ps, bias)[0] - (-log(99.0))) < 1e-5,
        "cls bias starts at -log(99)");
  int wcl = fb_params_find(ps, "fcos.cls_logits.weight");
  double ss = 0;
  for (size_t i = 0; i < ps->p[wcl].numel; i++) ss += pow(fb_param_data(ps, wcl)[i], 2);
  CHECK_CLOSE(sqrt(ss / ps->p[wcl].numel), 0.01, 1e-5, "cls conv weight std 0.01");

  fb_rng r;
  fb_rng_seed(&r, 3);
  fill_features(&t, &r);
  tbatch tb;
  tb_init(&tb, 2, 64);
  tb_add(&tb, 0, 10, 10, 20, 20, 3, 0);
  tb_add(&tb, 1, 2, 2, 60, 60, 1, 0);
  tb_add(&tb, 1, 40, 4, 12, 12, 0, 0);
  rc = fb_fcos_set_targets(g, h, &tb.b, &st);
  CHECK(rc == 0, "set targets: %s", st.msg);
  fb_params_zero_grad(&g->params);
  fb_graph_forward(g, 1);
  fb_graph_backward(g);
  double L = total_loss(g, h);
  CHECK(isfinite(L) && L > 0, "total loss %g finite and positive", L);
  printf("fcos graph: %d nodes, %zu params, losses cls %.4f box %.4f ctr %.4f\n", g->n,
         fb_params_trainable(ps), g->nodes[h->loss_cls].out[0], g->nodes[h->loss_box].out[0],
         g->nodes[h->loss_ctr].out[0]);
  CHECK(fb_params_grad_finite(ps), "gradients finite");

  /* every level feeds the shared convs: backward from each level's own
   * output node reaches the shared slot, and the three add up to the
   * gradient through the gathered output (linearity) */
  const char *names[3] = {"fcos.cls_logits", "fcos.cls_logits.s16", "fcos.cls_logits.s32"};
  const char *slots[2] = {"fcos.cls_logits.weight", "fcos.cls_tower.0.conv.weight"};
  for (int q = 0; q < 2; q++) {
    int slot = fb_params_find(ps, slots[q]);
    size_t n = ps->p[slot].numel;
    double *sum = calloc(n, sizeof(double));
    for (int l = 0; l < 3; l++) {
      int id = find_node(g, names[l]);
      CHECK(id >= 0, "node %s", names[l]);
      if (id < 0) continue;
      size_t m = fb_numel(g->nodes[id].args.out);
      float *ones = malloc(m * sizeof(float));
      for (size_t i = 0; i < m; i++) ones[i] = 1.f;
      fb_params_zero_grad(&g->params);
      fb_graph_backward_from(g, id, ones);
      double nrm = 0;
      for (size_t i = 0; i < n; i++) sum[i] += fb_param_grad(ps, slot)[i], nrm += fabs(fb_param_grad(ps, slot)[i]);
      CHECK(nrm > 1e-6, "%s gets a gradient from level %d (|g| = %g)", slots[q], l, nrm);
      free(ones);
    }
    size_t m = fb_numel(g->nodes[h->cls].args.out);
    float *ones = malloc(m * sizeof(float));
    for (size_t i = 0; i < m; i++) ones[i] = 1.f;
    fb_params_zero_grad(&g->params);
    fb_graph_backward_from(g, h->cls, ones);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
      worst = fmax(worst, fabs(fb_param_grad(ps, slot)[i] - sum[i]));
      scale = fmax(scale, fabs(sum[i]));
    }
    CHECK(worst <= 1e-4 * (1 + scale), "%s: gradient through concat = sum of levels (%g)",
          slots[q], worst);
    free(ones);
    free(sum);
  }
  fb_graph_free(g);
}

static void test_overfit(void) {
  fb_status st = {0};
  thead t;
  fb_fcos_cfg cfg = fb_fcos_cfg_default(3);
  cfg.width = 16;
  int rc = th_build(&t, &cfg, 64, 3, &st);
  CHECK(rc == 0, "build: %s", st.msg);
  if (rc) return;
  fb_graph *g = &t.g;
  const fb_fcos_head *h = &t.h;
  rc = fb_graph_plan(g, 1, 21, &st);
  CHECK(rc == 0, "plan: %s", st.msg);
  if (rc) return;
  fb_fcos_init_params(g, h);
  fb_rng r;
  fb_rng_seed(&r, 4);
  fill_features(&t, &r);
  tbatch tb;
  tb_init(&tb, 1, 64);
  tb_add(&tb, 0, 14, 18, 24, 20, 2, 0);
  fb_fcos_set_targets(g, h, &tb.b, &st);
  fb_optim_cfg oc = fb_optim_sgd_default();
  oc.lr = 0.05f;
  oc.weight_decay = 0;
  double first = 0, last = 0;
  for (int step = 1; step <= 40; step++) {
    fb_params_zero_grad(&g->params);
    fb_graph_forward(g, 1);
    fb_graph_backward(g);
    double L = total_loss(g, h);
    if (step == 1) first = L;
    last = L;
    fb_optim_step(&g->params, &oc, oc.lr, step);
  }
  fb_graph_forward(g, 1);
  last = total_loss(g, h);
  printf("fcos overfit: loss %.4f -> %.4f after 40 SGD steps\n", first, last);
  CHECK(isfinite(last) && last < 0.4 * first, "loss drops substantially: %g -> %g", first, last);
  /* the best detection is the box */
  fb_det *d = NULL;
  int nd = 0;
  rc = fb_fcos_decode_graph(g, h, &tb.b, NULL, &d, &nd, &st);
  CHECK(rc == 0 && nd >= 1, "decode after overfit: %d detections (%s)", nd, st.msg);
  if (nd >= 1) {
    float a[4] = {d[0].box.x, d[0].box.y, d[0].box.x + d[0].box.w, d[0].box.y + d[0].box.h};
    float b[4] = {14, 18, 38, 38};
    float iou = fb_box_iou(a, b);
    printf("fcos overfit: top detection class %d score %.3f IoU %.3f\n", d[0].box.cat,
           d[0].box.score, iou);
    CHECK(d[0].box.cat == 2 && iou > 0.5, "top detection class %d IoU %g", d[0].box.cat, iou);
  }
  free(d);
  fb_graph_free(g);
}

int main(void) {
  test_assignment();
  test_decode_round_trip();
  test_nms();
  test_loss_gradients();
  test_graph();
  test_overfit();
  return check_report("fcos");
}
