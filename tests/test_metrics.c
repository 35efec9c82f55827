/* Metrics: COCO box AP/AR on hand-made cases (answers derived in the
 * comments) and on random cases against tests/coco_eval_ref.py (an
 * independent numpy implementation); segmentation confusion matrix; top-k. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "core/status.h"
#include "tasks/cls/metrics.h"
#include "tasks/det/coco_eval.h"
#include "tasks/seg/metrics.h"

/* ---- a tiny ground-truth/detections builder ---------------------------- */

typedef struct tb {
  fb_mt_dataset d;
  fb_det *dets;
  int nd, capd;
} tb;

static void tb_init(tb *t, int num_cats) {
  memset(t, 0, sizeof *t);
  t->d.num_cats = num_cats;
}

static fb_sample *tb_find(tb *t, int image_id) {
  for (int i = 0; i < t->d.n; i++)
    if (t->d.s[i].image_id == image_id) return &t->d.s[i];
  return NULL;
}

/* adds an image with box annotations (possibly none) */
static void tb_image(tb *t, int image_id) {
  t->d.s = realloc(t->d.s, sizeof(fb_sample) * (size_t)(t->d.n + 1));
  fb_sample *s = &t->d.s[t->d.n++];
  memset(s, 0, sizeof *s);
  s->image_id = image_id;
  s->label = -1;
  s->has_boxes = 1;
}

static void tb_gt(tb *t, int image_id, int cat, float x, float y, float w, float h, float area, int crowd) {
  fb_sample *s = tb_find(t, image_id);
  if (!s) {
    tb_image(t, image_id);
    s = &t->d.s[t->d.n - 1];
  }
  s->boxes = realloc(s->boxes, sizeof(fb_box) * (size_t)(s->n_boxes + 1));
  fb_box b = {x, y, w, h, cat, crowd, area, 1.0f};
  s->boxes[s->n_boxes++] = b;
}

static void tb_dt(tb *t, int image_id, int cat, float x, float y, float w, float h, float score) {
  if (t->nd == t->capd) {
    t->capd = t->capd ? 2 * t->capd : 16;
    t->dets = realloc(t->dets, sizeof(fb_det) * (size_t)t->capd);
  }
  fb_det d = {image_id, {x, y, w, h, cat, 0, w * h, score}};
  t->dets[t->nd++] = d;
}

static void tb_free(tb *t) {
  for (int i = 0; i < t->d.n; i++) free(t->d.s[i].boxes);
  free(t->d.s);
  free(t->dets);
  memset(t, 0, sizeof *t);
}

static int tb_eval(tb *t, double *stats, double *cat_ap) {
  fb_status st = {0};
  int rc = fb_coco_eval_bbox(&t->d, t->dets, t->nd, stats, cat_ap, &st);
  CHECK(rc == 0, "coco eval failed: %s", st.msg);
  return rc;
}

#define TOL 1e-12

/* ---- hand-made COCO cases ---------------------------------------------- */

static void test_grids(void) {
  double t[10], r[101];
  fb_coco_iou_thresholds(t);
  fb_coco_recall_points(r);
  CHECK(t[0] == 0.5 && t[5] == 0.75 && t[9] == 0.95, "thresholds .5/.75/.95 exact");
  /* numpy's linspace gives 0.8999999999999999 for the 9th value, not 0.9 */
  CHECK(t[8] < 0.9 && t[8] == nextafter(0.9, 0.0), "threshold 8 is linspace's 0.8999999999999999");
  CHECK(r[0] == 0.0 && r[50] == 0.5 && r[100] == 1.0 && r[7] == 7 * 0.01, "recall points");
  fb_box a = {0, 0, 10, 10, 0, 0, 100, 1}, b = {5, 0, 10, 10, 0, 0, 100, 1};
  /* overlap 5x10 = 50, union 150; as crowd the union is the detection (100) */
  CHECK_CLOSE(fb_coco_box_iou(&b, &a, 0), 50.0 / 150.0, 1e-15, "iou");
  CHECK_CLOSE(fb_coco_box_iou(&b, &a, 1), 0.5, 1e-15, "crowd iou");
  fb_box c = {10, 0, 5, 5, 0, 0, 25, 1}; /* touches a's edge: no overlap */
  CHECK(fb_coco_box_iou(&c, &a, 0) == 0.0, "touching boxes have iou 0");
}

static void test_perfect(void) {
  /* one gt (area 400: small), one exact detection: every threshold matches;
   * precision 1/(1+eps) at recall 1 -> AP 1; medium/large have no gt: -1 */
  tb t;
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 10, 10, 20, 20, 400, 0);
  tb_dt(&t, 1, 0, 10, 10, 20, 20, 0.9f);
  double s[FB_COCO_NSTATS], ap[1];
  if (!tb_eval(&t, s, ap)) {
    CHECK_CLOSE(s[FB_COCO_AP], 1.0, TOL, "perfect AP");
    CHECK_CLOSE(s[FB_COCO_AP50], 1.0, TOL, "perfect AP50");
    CHECK_CLOSE(s[FB_COCO_AP75], 1.0, TOL, "perfect AP75");
    CHECK_CLOSE(s[FB_COCO_AP_S], 1.0, TOL, "perfect APs");
    CHECK(s[FB_COCO_AP_M] == -1.0 && s[FB_COCO_AP_L] == -1.0, "no medium/large gt -> -1");
    CHECK(s[FB_COCO_AR1] == 1.0 && s[FB_COCO_AR100] == 1.0 && s[FB_COCO_AR_S] == 1.0, "perfect AR");
    CHECK(s[FB_COCO_AR_M] == -1.0 && s[FB_COCO_AR_L] == -1.0, "AR medium/large -1");
    CHECK_CLOSE(ap[0], 1.0, TOL, "per-category AP");
  }
  tb_free(&t);
}

static void test_fp_first(void) {
  /* one gt; a false positive (0.9) above the true positive (0.8):
   * tp = [0,1], fp = [1,1] -> recall [0,1], precision [0,.5] -> monotone
   * [.5,.5]; every recall point reads .5 -> AP .5. AR@1: only the FP -> 0. */
  tb t;
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 0, 50, 50, 10, 10, 0.9f);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.8f);
  double s[FB_COCO_NSTATS];
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP], 0.5, TOL, "fp-first AP");
    CHECK_CLOSE(s[FB_COCO_AR1], 0.0, TOL, "fp-first AR@1");
    CHECK_CLOSE(s[FB_COCO_AR10], 1.0, TOL, "fp-first AR@10");
  }
  tb_free(&t);

  /* two gts; TP .9, FP .8, TP .7: recall [.5,.5,1], precision [1,.5,2/3]
   * -> monotone [1,2/3,2/3]. Points 0..0.50 (51 of them) read index 0 -> 1;
   * points .51..1 (50) read index 2 -> 2/3. AP = (51 + 50*2/3)/101 = 253/303.
   * AR@1 = .5 (one detection per image), AR@10 = 1. */
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_gt(&t, 1, 0, 40, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.9f);
  tb_dt(&t, 1, 0, 80, 80, 10, 10, 0.8f);
  tb_dt(&t, 1, 0, 40, 0, 10, 10, 0.7f);
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP], 253.0 / 303.0, TOL, "TP,FP,TP AP");
    CHECK_CLOSE(s[FB_COCO_AR1], 0.5, TOL, "TP,FP,TP AR@1");
    CHECK_CLOSE(s[FB_COCO_AR10], 1.0, TOL, "TP,FP,TP AR@10");
  }
  tb_free(&t);
}

static void test_equal_scores(void) {
  /* Equal scores keep input order (stable sort): FP listed before the TP
   * ranks first -> AP .5 as above; TP listed first -> AP 1. */
  tb t;
  double s[FB_COCO_NSTATS];
  for (int tp_first = 0; tp_first < 2; tp_first++) {
    tb_init(&t, 1);
    tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
    if (tp_first) tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.5f);
    tb_dt(&t, 1, 0, 50, 50, 10, 10, 0.5f);
    if (!tp_first) tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.5f);
    if (!tb_eval(&t, s, NULL)) CHECK_CLOSE(s[FB_COCO_AP], tp_first ? 1.0 : 0.5, TOL, "equal scores, input order");
    tb_free(&t);
  }
  /* Across images, ties keep ascending image_id order whatever the sample
   * order: image 3 (no gt) has the FP, image 5 the gt and TP; samples are
   * stored 5 then 3. FP ranks first -> AP .5 (1 if sample order were used). */
  tb_init(&t, 1);
  tb_gt(&t, 5, 0, 0, 0, 10, 10, 100, 0);
  tb_image(&t, 3);
  tb_dt(&t, 5, 0, 0, 0, 10, 10, 0.5f);
  tb_dt(&t, 3, 0, 0, 0, 10, 10, 0.5f);
  if (!tb_eval(&t, s, NULL)) CHECK_CLOSE(s[FB_COCO_AP], 0.5, TOL, "cross-image tie in image_id order");
  tb_free(&t);
}

static void test_crowd(void) {
  /* gt A [0,0,10,10]; crowd C [100,100,100,100] (area field 5000).
   * Dets: P [190,190,20,20] .99 overlaps C by 10x10 = 100 of its 400 -> crowd
   * IoU .25 -> FP; three dets inside C (.95,.9,.85) have crowd IoU 1 -> matched
   * to the crowd -> ignored; exact det on A .5 -> TP.
   * Counted: FP, TP -> recall [0,1], precision [0,.5] -> AP .5 (were the crowd
   * dets false positives, the TP's precision would be .2). */
  double s[FB_COCO_NSTATS], ap[1];
  for (int crowd = 1; crowd >= 0; crowd--) {
    tb t;
    tb_init(&t, 1);
    tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
    tb_gt(&t, 1, 0, 100, 100, 100, 100, 5000, crowd);
    tb_dt(&t, 1, 0, 190, 190, 20, 20, 0.99f);
    tb_dt(&t, 1, 0, 110, 110, 20, 20, 0.95f);
    tb_dt(&t, 1, 0, 150, 120, 30, 30, 0.90f);
    tb_dt(&t, 1, 0, 105, 160, 20, 20, 0.85f);
    tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.5f);
    if (!tb_eval(&t, s, ap)) {
      if (crowd) {
        CHECK_CLOSE(s[FB_COCO_AP], 0.5, TOL, "crowd swallows detections: AP");
        CHECK_CLOSE(ap[0], 0.5, TOL, "crowd: per-category AP");
        CHECK_CLOSE(s[FB_COCO_AR100], 1.0, TOL, "crowd: AR (the crowd is not a positive)");
      } else {
        /* C is a real gt (area 5000, medium); its dets have IoU 400/10000 -> FPs.
         * tp [0,0,0,0,1], fp [1,2,3,4,4], 2 positives: recall [0,0,0,0,.5],
         * precision [0,0,0,0,.2] -> points 0...50 read .2 -> AP 51*.2/101. */
        CHECK_CLOSE(s[FB_COCO_AP], 51 * 0.2 / 101, TOL, "same box not crowd: AP");
        CHECK_CLOSE(s[FB_COCO_AR100], 0.5, TOL, "same box not crowd: AR");
      }
    }
    tb_free(&t);
  }
}

static void test_regular_before_crowd(void) {
  /* gt A [0,0,10,10] and a crowd C over the same square (C listed first).
   * det1 exact on A (.9): A (regular gts are tried first) gives IoU 1; once a
   * regular gt is matched the ignored ones are not tried -> TP (C's crowd IoU,
   * also 1, does not take it). det2 the same box (.8): A is taken -> C, a crowd
   * can take many -> ignored. Counted: one TP -> AP 1. */
  tb t;
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.9f);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.8f);
  double s[FB_COCO_NSTATS];
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP], 1.0, TOL, "regular gt before crowd: AP");
    CHECK_CLOSE(s[FB_COCO_AR1], 1.0, TOL, "regular gt before crowd: AR@1");
  }
  tb_free(&t);
}

static void test_categories(void) {
  /* cat 0: gt + exact det (AP 1); cat 1: only detections, no gt (-1, left
   * out); cat 2: nothing (-1). Mean AP = 1. A det on image 777, which is not
   * in the gt, is an error (pycocotools' loadRes refuses such results). */
  tb t;
  tb_init(&t, 3);
  tb_gt(&t, 1, 0, 0, 0, 40, 40, 1600, 0);
  tb_dt(&t, 1, 0, 0, 0, 40, 40, 0.6f);
  tb_dt(&t, 1, 1, 0, 0, 40, 40, 0.9f);
  tb_dt(&t, 1, 1, 50, 50, 40, 40, 0.8f);
  double s[FB_COCO_NSTATS], ap[3];
  if (!tb_eval(&t, s, ap)) {
    CHECK_CLOSE(s[FB_COCO_AP], 1.0, TOL, "category without gt left out");
    CHECK(ap[1] == -1.0 && ap[2] == -1.0, "categories without gt -> -1 (%g %g)", ap[1], ap[2]);
    CHECK_CLOSE(ap[0], 1.0, TOL, "cat 0 AP");
    CHECK_CLOSE(s[FB_COCO_AP_M], 1.0, TOL, "area 1600 is medium");
    CHECK(s[FB_COCO_AP_S] == -1.0, "no small gt");
  }
  tb_dt(&t, 777, 0, 5, 5, 40, 40, 0.99f);
  {
    fb_status st = {0};
    CHECK(fb_coco_eval_bbox(&t.d, t.dets, t.nd, s, ap, &st) != 0 && strstr(st.msg, "image_id 777"),
          "a detection on an image the gt lacks is an error naming it (%s)", st.msg);
  }
  tb_free(&t);

  /* no gt at all: every stat -1 */
  tb_init(&t, 2);
  tb_image(&t, 1);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.9f);
  if (!tb_eval(&t, s, NULL)) {
    int all = 1;
    for (int i = 0; i < FB_COCO_NSTATS; i++) all &= s[i] == -1.0;
    CHECK(all, "no gt at all: every stat -1");
  }
  tb_free(&t);
}

static void test_areas(void) {
  /* S [0,0,10,10] area 100 (small) with an exact det .9; L [0,100,100,100]
   * area 10000 (large), missed; a medium FP M [200,0,50,50] (2500) at .95.
   * all:    FP, TP, 2 positives -> recall [0,.5], precision [0,.5] -> points
   *         0...50 read .5 -> AP 25.5/101; AR .5.
   * small:  L ignored (area), M unmatched and outside the range -> ignored;
   *         TP only -> AP 1, AR 1.
   * medium: no gt in range -> -1.
   * large:  S ignored; the det on S matches the ignored S -> ignored; M
   *         outside -> ignored; nothing counted -> AP 0, AR 0. */
  tb t;
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_gt(&t, 1, 0, 0, 100, 100, 100, 10000, 0);
  tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.9f);
  tb_dt(&t, 1, 0, 200, 0, 50, 50, 0.95f);
  double s[FB_COCO_NSTATS];
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP], 25.5 / 101, TOL, "areas: AP all");
    CHECK_CLOSE(s[FB_COCO_AP_S], 1.0, TOL, "areas: AP small");
    CHECK(s[FB_COCO_AP_M] == -1.0, "areas: AP medium -1");
    CHECK_CLOSE(s[FB_COCO_AP_L], 0.0, TOL, "areas: AP large");
    CHECK_CLOSE(s[FB_COCO_AR100], 0.5, TOL, "areas: AR");
    CHECK_CLOSE(s[FB_COCO_AR_S], 1.0, TOL, "areas: AR small");
    CHECK(s[FB_COCO_AR_M] == -1.0, "areas: AR medium -1");
    CHECK_CLOSE(s[FB_COCO_AR_L], 0.0, TOL, "areas: AR large");
  }
  tb_free(&t);
  /* the gt's "area" field decides, not w*h: a 40x40 box with area 900 is small */
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 40, 40, 900, 0);
  tb_dt(&t, 1, 0, 0, 0, 40, 40, 0.9f);
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP_S], 1.0, TOL, "area field decides the range");
    CHECK(s[FB_COCO_AP_M] == -1.0, "area field: not medium");
  }
  tb_free(&t);
}

static void test_thresholds(void) {
  /* cat 0: gt [0,0,10,10], det [0,0,20,10]: overlap 100, union 200 -> IoU .5
   *        exactly: matched at .50 only -> AP 1/10, AP50 1, AP75 0.
   * cat 1: gt [0,0,10,10], det [0,0,10,7.5]: overlap 75, union 100 -> IoU .75
   *        exactly: matched at .50 .55 .60 .65 .70 .75 -> AP .6, AP75 1.
   * Means: AP .35, AP50 1, AP75 .5. */
  tb t;
  tb_init(&t, 2);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_gt(&t, 1, 1, 0, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 0, 0, 0, 20, 10, 0.9f);
  tb_dt(&t, 1, 1, 0, 0, 10, 7.5f, 0.9f);
  double s[FB_COCO_NSTATS], ap[2];
  if (!tb_eval(&t, s, ap)) {
    CHECK_CLOSE(ap[0], 0.1, TOL, "IoU .5: AP");
    CHECK_CLOSE(ap[1], 0.6, TOL, "IoU .75: AP");
    CHECK_CLOSE(s[FB_COCO_AP], 0.35, TOL, "thresholds: AP");
    CHECK_CLOSE(s[FB_COCO_AP50], 1.0, TOL, "thresholds: AP50");
    CHECK_CLOSE(s[FB_COCO_AP75], 0.5, TOL, "thresholds: AP75");
    CHECK_CLOSE(s[FB_COCO_AR100], 0.35, TOL, "thresholds: AR (recall 1 at 7 of 20)");
  }
  tb_free(&t);
}

static void test_greedy_tie(void) {
  /* gts A [0,0,10,10], B [6,0,10,10]. det1 [3,0,10,10] .9 overlaps both by
   * 7x10: IoU 70/130 = .538 with each, an exact tie: COCO keeps the LAST gt
   * reaching the best IoU (>=), so det1 takes B. det2 = B exactly, .8: B is
   * taken, A gives 40/160 = .25 -> FP.
   * t=.50: TP, FP -> recall [.5,.5], precision [1,.5] -> AP 51/101.
   * t>=.55: det1 below -> FP; det2 -> B -> recall [0,.5], precision [0,.5]
   *         -> AP 51*.5/101 each. AP = (51 + 9*25.5)/1010. */
  tb t;
  tb_init(&t, 1);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_gt(&t, 1, 0, 6, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 0, 3, 0, 10, 10, 0.9f);
  tb_dt(&t, 1, 0, 6, 0, 10, 10, 0.8f);
  double s[FB_COCO_NSTATS];
  if (!tb_eval(&t, s, NULL)) {
    CHECK_CLOSE(s[FB_COCO_AP50], 51.0 / 101, TOL, "greedy tie: AP50");
    CHECK_CLOSE(s[FB_COCO_AP75], 25.5 / 101, TOL, "greedy tie: AP75");
    CHECK_CLOSE(s[FB_COCO_AP], (51 + 9 * 25.5) / 1010, TOL, "greedy tie: AP");
  }
  tb_free(&t);
}

static void test_max_dets(void) {
  /* one gt; n_fp false positives scored above the exact detection (.5) and
   * one FP below. n_fp = 99: the TP is the 100th -> kept: precision 1/100 at
   * recall 1 for every point -> AP .01, AR@100 1, AR@10 0.
   * n_fp = 100: the TP is the 101st -> cut -> AP 0, AR@100 0. */
  for (int n_fp = 99; n_fp <= 100; n_fp++) {
    tb t;
    tb_init(&t, 1);
    tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
    for (int i = 0; i < n_fp; i++) tb_dt(&t, 1, 0, 100.0f + 6 * i, 100, 5, 5, 0.6f + 0.003f * i);
    tb_dt(&t, 1, 0, 0, 0, 10, 10, 0.5f);
    tb_dt(&t, 1, 0, 50, 50, 5, 5, 0.1f);
    double s[FB_COCO_NSTATS];
    if (!tb_eval(&t, s, NULL)) {
      CHECK_CLOSE(s[FB_COCO_AP], n_fp == 99 ? 0.01 : 0.0, TOL, "maxDets cut: AP");
      CHECK_CLOSE(s[FB_COCO_AR100], n_fp == 99 ? 1.0 : 0.0, TOL, "maxDets cut: AR@100");
      CHECK_CLOSE(s[FB_COCO_AR10], 0.0, TOL, "maxDets cut: AR@10");
    }
    tb_free(&t);
  }
}

static void test_errors(void) {
  fb_status st = {0};
  double s[FB_COCO_NSTATS];
  tb t;
  tb_init(&t, 2);
  tb_gt(&t, 1, 0, 0, 0, 10, 10, 100, 0);
  tb_dt(&t, 1, 2, 0, 0, 10, 10, 0.5f);
  CHECK(fb_coco_eval_bbox(&t.d, t.dets, t.nd, s, NULL, &st) == -1 && strstr(st.msg, "detection 0") &&
            strstr(st.msg, "cat 2"),
        "detection category out of range: %s", st.msg);
  t.dets[0].box.cat = 0;
  t.dets[0].box.score = NAN;
  CHECK(fb_coco_eval_bbox(&t.d, t.dets, t.nd, s, NULL, &st) == -1 && strstr(st.msg, "score"),
        "NaN score: %s", st.msg);
  t.dets[0].box.score = 0.5f;
  t.d.s[0].boxes[0].cat = 5;
  CHECK(fb_coco_eval_bbox(&t.d, t.dets, t.nd, s, NULL, &st) == -1 && strstr(st.msg, "image_id 1 box 0"),
        "gt category out of range: %s", st.msg);
  t.d.s[0].boxes[0].cat = 0;
  tb_image(&t, 1);
  CHECK(fb_coco_eval_bbox(&t.d, t.dets, t.nd, s, NULL, &st) == -1 && strstr(st.msg, "same image_id 1"),
        "duplicate image id: %s", st.msg);
  tb_free(&t);
}

/* ---- random cases against the numpy reference --------------------------- */

#define N_CASES 20
#define N_IMG 10
#define N_CAT 3

static float halfs(fb_rng *r, int n) { return 0.5f * (float)fb_rng_below(r, (uint32_t)n); }

static void make_case(tb *t, uint64_t seed) {
  fb_rng r;
  fb_rng_seed(&r, seed);
  tb_init(t, N_CAT);
  int quantized = seed % 3 == 0; /* many equal scores */
  for (int i = 0; i < N_IMG; i++) {
    int id = 1000 - 37 * ((i * 7) % N_IMG); /* samples not in id order */
    tb_image(t, id);
    int ng = (int)fb_rng_below(&r, 7);
    for (int g = 0; g < ng; g++) {
      fb_sample *s = tb_find(t, id);
      if (s->n_boxes > 0 && fb_rng_below(&r, 10) == 0) { /* an exact duplicate gt */
        fb_box b = s->boxes[fb_rng_below(&r, (uint32_t)s->n_boxes)];
        /* sometimes as a crowd copy: the regular gt must win over it */
        tb_gt(t, id, b.cat, b.x, b.y, b.w, b.h, b.area, fb_rng_below(&r, 2) ? !b.iscrowd : b.iscrowd);
        continue;
      }
      float w = 2 + halfs(&r, 300), h = 2 + halfs(&r, 300);
      float x = halfs(&r, 400), y = halfs(&r, 400);
      float area = fb_rng_below(&r, 3) == 0 ? floorf(w * h * (float)(0.4 + 0.6 * fb_rng_uniform(&r))) : w * h;
      int crowd = fb_rng_below(&r, 10) == 0;
      tb_gt(t, id, (int)fb_rng_below(&r, N_CAT), x, y, w, h, area, crowd);
    }
    fb_sample *s = tb_find(t, id);
    for (int g = 0; g < s->n_boxes; g++) {
      int nd = (int)fb_rng_below(&r, 3); /* 0, 1 or 2 detections per gt */
      for (int k = 0; k < nd; k++) {
        fb_box b = s->boxes[g];
        int cat = fb_rng_below(&r, 8) == 0 ? (int)fb_rng_below(&r, N_CAT) : b.cat;
        float dx = 0.5f * ((int)fb_rng_below(&r, 17) - 8), dy = 0.5f * ((int)fb_rng_below(&r, 17) - 8);
        float w = fmaxf(1, b.w + 0.5f * ((int)fb_rng_below(&r, 21) - 10));
        float h = fmaxf(1, b.h + 0.5f * ((int)fb_rng_below(&r, 21) - 10));
        float sc = quantized ? 0.25f * (float)fb_rng_below(&r, 5) : (float)fb_rng_uniform(&r);
        tb_dt(t, id, cat, b.x + dx, b.y + dy, w, h, sc);
      }
    }
    int nfp = (int)fb_rng_below(&r, 5);
    for (int k = 0; k < nfp; k++) {
      float sc = quantized ? 0.25f * (float)fb_rng_below(&r, 5) : (float)fb_rng_uniform(&r);
      tb_dt(t, id, (int)fb_rng_below(&r, N_CAT), halfs(&r, 400), halfs(&r, 400), 2 + halfs(&r, 200),
            2 + halfs(&r, 200), sc);
    }
    if (seed % 5 == 0 && i == 0) /* > 100 detections of one category in one image */
      for (int k = 0; k < 120; k++) {
        float sc = quantized ? 0.25f * (float)fb_rng_below(&r, 5) : (float)fb_rng_uniform(&r);
        tb_dt(t, id, 1, halfs(&r, 300), halfs(&r, 300), 2 + halfs(&r, 200), 2 + halfs(&r, 200), sc);
      }
  }
}

static void write_case_json(FILE *f, const tb *t) {
  fprintf(f, "{\"num_cats\": %d, \"images\": [", t->d.num_cats);
  for (int i = 0; i < t->d.n; i++) fprintf(f, "%s%d", i ? ", " : "", t->d.s[i].image_id);
  fprintf(f, "], \"gt\": [");
  int first = 1;
  for (int i = 0; i < t->d.n; i++)
    for (int b = 0; b < t->d.s[i].n_boxes; b++) {
      const fb_box *x = &t->d.s[i].boxes[b];
      fprintf(f, "%s[%d, %d, %.17g, %.17g, %.17g, %.17g, %.17g, %d]", first ? "" : ", ", t->d.s[i].image_id,
              x->cat, x->x, x->y, x->w, x->h, x->area, x->iscrowd);
      first = 0;
    }
  fprintf(f, "], \"dt\": [");
  for (int d = 0; d < t->nd; d++) {
    const fb_box *x = &t->dets[d].box;
    fprintf(f, "%s[%d, %d, %.17g, %.17g, %.17g, %.17g, %.17g]", d ? ", " : "", t->dets[d].image_id, x->cat,
            x->x, x->y, x->w, x->h, x->score);
  }
  fprintf(f, "]}");
}

static void test_random_vs_reference(void) {
  const char *py = "/usr/bin/python3", *ref = "tests/coco_eval_ref.py";
  if (access(py, X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    printf("SKIP random COCO cases: /usr/bin/python3 with numpy is missing\n");
    return;
  }
  if (access(ref, R_OK) != 0) {
    CHECK(0, "%s not found (run the test from the repository root)", ref);
    return;
  }
  char path[] = "/tmp/fbnet_coco_cases_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  double ours[N_CASES][FB_COCO_NSTATS + N_CAT];
  fprintf(f, "{\"cases\": [\n");
  int n_dets_total = 0, n_big = 0;
  for (int c = 0; c < N_CASES; c++) {
    tb t;
    make_case(&t, 1000 + (uint64_t)c);
    n_dets_total += t.nd;
    n_big += c % 5 == 0; /* seeds 1000 + c with (1000 + c) % 5 == 0 */
    if (tb_eval(&t, ours[c], ours[c] + FB_COCO_NSTATS))
      for (int i = 0; i < FB_COCO_NSTATS + N_CAT; i++) ours[c][i] = NAN;
    write_case_json(f, &t);
    fprintf(f, "%s\n", c + 1 < N_CASES ? "," : "");
    tb_free(&t);
  }
  fprintf(f, "]}\n");
  fclose(f);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s %s %s", py, ref, path);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL, "popen %s", cmd);
  if (!p) {
    unlink(path);
    return;
  }
  double max_diff = 0;
  int n_read = 0, n_valid = 0, n_minus1 = 0;
  for (int c = 0; c < N_CASES; c++) {
    double theirs[FB_COCO_NSTATS + N_CAT];
    int ok = 1;
    for (int i = 0; i < FB_COCO_NSTATS + N_CAT && ok; i++) ok = fscanf(p, "%lf", &theirs[i]) == 1;
    CHECK(ok, "reference output for case %d", c);
    if (!ok) break;
    n_read++;
    for (int i = 0; i < FB_COCO_NSTATS + N_CAT; i++) {
      double d = fabs(ours[c][i] - theirs[i]);
      if (!(d <= 1e-9)) {
        CHECK(0, "case %d %s%s: C %.17g vs numpy %.17g", c,
              i < FB_COCO_NSTATS ? fb_coco_stat_names[i] : "cat AP ",
              i < FB_COCO_NSTATS ? "" : (const char *[]){"0", "1", "2"}[i - FB_COCO_NSTATS], ours[c][i],
              theirs[i]);
      }
      if (d > max_diff) max_diff = d;
      if (theirs[i] == -1.0) n_minus1++;
      else n_valid++;
    }
    if (c == 0) {
      printf("case 0:");
      for (int i = 0; i < FB_COCO_NSTATS; i++) printf(" %s=%.4f", fb_coco_stat_names[i], ours[c][i]);
      printf("\n");
    }
  }
  int prc = pclose(p);
  unlink(path);
  CHECK(prc == 0, "reference script exit status %d", prc);
  CHECK(n_read == N_CASES, "read %d of %d reference cases", n_read, N_CASES);
  CHECK(n_valid > 100, "random cases exercise valid stats (%d valid, %d -1)", n_valid, n_minus1);
  printf("random COCO: %d cases, %d detections (%d cases with 120 in one image and category), %d values (%d are -1), max |diff| %.3g\n",
         n_read, n_dets_total, n_big, n_valid + n_minus1, n_minus1, max_diff);
}

/* ---- segmentation -------------------------------------------------------- */

static void test_seg(void) {
  fb_status st = {0};
  fb_confmat cm;
  CHECK(fb_confmat_init(&cm, 3, &st) == 0, "confmat init");
  /* 8 pixels, 3 classes; pixel 7 ignored.
   * gt   0 0 0 1 1 2 2 255
   * pred 0 0 1 1 2 2 0 1
   * class 0: TP 2, FP 1 (pixel 6), FN 1 (pixel 2) -> 2/4
   * class 1: TP 1, FP 1 (pixel 2), FN 1 (pixel 4) -> 1/3 (pixel 7 ignored)
   * class 2: TP 1, FP 1 (pixel 4), FN 1 (pixel 6) -> 1/3
   * mIoU = (1/2 + 1/3 + 1/3)/3 = 7/18; pixel acc = 4/7 */
  uint8_t gt[8] = {0, 0, 0, 1, 1, 2, 2, 255}, pr[8] = {0, 0, 1, 1, 2, 2, 0, 1};
  CHECK(fb_confmat_add(&cm, gt, pr, 8, &st) == 0, "confmat add");
  double iou[3];
  fb_seg_scores s = fb_confmat_scores(&cm, iou);
  CHECK_CLOSE(iou[0], 0.5, 1e-15, "class 0 IoU");
  CHECK_CLOSE(iou[1], 1.0 / 3, 1e-15, "class 1 IoU");
  CHECK_CLOSE(iou[2], 1.0 / 3, 1e-15, "class 2 IoU");
  CHECK_CLOSE(s.miou, 7.0 / 18, 1e-15, "mIoU");
  CHECK_CLOSE(s.pixel_acc, 4.0 / 7, 1e-15, "pixel accuracy");
  CHECK(s.n_present == 3 && s.pixels == 7, "present %d pixels %llu", s.n_present, (unsigned long long)s.pixels);

  /* a class that is predicted but absent from the gt is left out of the mean:
   * gt 0 0 1 1, pred 0 2 1 1: class 0 1/2, class 1 1, class 2 absent (-1).
   * mIoU = 3/4, pixel acc 3/4 */
  fb_confmat_reset(&cm);
  uint8_t g2[4] = {0, 0, 1, 1}, p2[4] = {0, 2, 1, 1};
  CHECK(fb_confmat_add(&cm, g2, p2, 4, &st) == 0, "add 2");
  s = fb_confmat_scores(&cm, iou);
  CHECK(iou[2] == -1.0 && s.n_present == 2, "absent class -1");
  CHECK_CLOSE(s.miou, 0.75, 1e-15, "mIoU over present classes");
  CHECK_CLOSE(s.pixel_acc, 0.75, 1e-15, "pixel acc 2");

  /* from logits (3 classes x 1x4, CHW): argmax per pixel, tie -> smaller
   * class; pixel 3: all equal -> 0. preds 2 1 0 0 vs gt 2 1 1 255 ->
   * adds class 2 TP, class 1 TP, class 1->0 miss. */
  fb_confmat_reset(&cm);
  float lg[12] = {0, 0, 1, 5, /* class 0 */ 0, 3, 1, 5, /* class 1 */ 4, 1, 0, 5 /* class 2 */};
  uint8_t g3[4] = {2, 1, 1, 255};
  CHECK(fb_confmat_add_logits(&cm, g3, lg, 1, 4, &st) == 0, "add logits");
  CHECK(cm.m[2 * 3 + 2] == 1 && cm.m[1 * 3 + 1] == 1 && cm.m[1 * 3 + 0] == 1, "logit argmax counts");
  s = fb_confmat_scores(&cm, NULL);
  CHECK_CLOSE(s.pixel_acc, 2.0 / 3, 1e-15, "logits pixel acc");
  /* class 0 absent in gt; class 1: TP 1, FN 1 -> 1/2; class 2: 1 -> mIoU .75 */
  CHECK_CLOSE(s.miou, 0.75, 1e-15, "logits mIoU");

  /* merge doubles the counts; scores unchanged */
  fb_confmat c2;
  fb_confmat_init(&c2, 3, &st);
  CHECK(fb_confmat_merge(&c2, &cm, &st) == 0 && fb_confmat_merge(&c2, &cm, &st) == 0, "merge");
  CHECK(c2.m[1 * 3 + 0] == 2 && fb_confmat_scores(&c2, NULL).pixels == 6, "merged counts");
  fb_confmat_free(&c2);

  /* errors, and the matrix stays unchanged after a bad image */
  uint8_t bad_gt[2] = {0, 3}, bad_pr[2] = {0, 0};
  CHECK(fb_confmat_add(&cm, bad_gt, bad_pr, 2, &st) == -1 && strstr(st.msg, "ground truth pixel 1"),
        "gt class out of range: %s", st.msg);
  uint8_t ok_gt[2] = {0, 255}, bad_pr2[2] = {7, 9};
  CHECK(fb_confmat_add(&cm, ok_gt, bad_pr2, 2, &st) == -1 && strstr(st.msg, "prediction pixel 0"),
        "pred class out of range: %s", st.msg);
  CHECK(fb_confmat_scores(&cm, NULL).pixels == 3, "bad image not counted");
  fb_confmat_reset(&cm);
  s = fb_confmat_scores(&cm, NULL);
  CHECK(s.miou == -1.0 && s.pixel_acc == -1.0, "empty matrix: -1");
  fb_confmat_free(&cm);
  CHECK(fb_confmat_init(&cm, 0, &st) == -1, "0 classes rejected");
}

/* ---- classification ------------------------------------------------------ */

static void test_topk(void) {
  fb_status st = {0};
  /* 6 classes. Row 0: label 2 has the max -> rank 0.
   * Row 1: label 1 (logit 5); classes 0 (5, equal, smaller index) and 3 (7)
   *        rank above -> rank 2: top-5 yes, top-1 no.
   * Row 2: label 0 (logit 5) ties with class 1: the smaller index wins -> rank 0.
   * Row 3: label 5 (lowest) -> rank 5: neither.
   * Row 4: contains NaN -> wrong. */
  float lg[5 * 6] = {
      1, 2, 9, 3, 4, 5,  /* row 0 */
      5, 5, 1, 7, 0, 0,  /* row 1 */
      5, 5, 1, 2, 3, 4,  /* row 2 */
      6, 5, 4, 3, 2, 1,  /* row 3 */
      1, 9, NAN, 0, 0, 0 /* row 4 */
  };
  int lab[5] = {2, 1, 0, 5, 1};
  CHECK(fb_cls_rank(lg + 0, 6, 2) == 0, "row 0 rank");
  CHECK(fb_cls_rank(lg + 6, 6, 1) == 2, "row 1 rank (equal logit, smaller index ranks above)");
  CHECK(fb_cls_rank(lg + 12, 6, 0) == 0, "row 2 rank (tie won by smaller index)");
  CHECK(fb_cls_rank(lg + 12, 6, 1) == 1, "row 2 class 1 rank");
  CHECK(fb_cls_rank(lg + 18, 6, 5) == 5, "row 3 rank");
  CHECK(fb_cls_rank(lg + 24, 6, 1) == -1, "NaN row");
  int t1 = -1, t5 = -1, t3 = -1;
  CHECK(fb_cls_topk_counts(lg, lab, 5, 6, &t1, &t5, &st) == 0, "topk counts");
  CHECK(t1 == 2 && t5 == 3, "top1 %d (want 2) top5 %d (want 3)", t1, t5);
  CHECK(fb_cls_topk_count(lg, lab, 5, 6, 3, &t3, &st) == 0 && t3 == 3, "top3 %d", t3);
  /* fewer classes than k: every non-NaN row is within the top 5 */
  float two[2] = {0, 1};
  int l0 = 0;
  CHECK(fb_cls_topk_counts(two, &l0, 1, 2, &t1, &t5, &st) == 0 && t1 == 0 && t5 == 1, "k > classes");
  int badl[1] = {6};
  CHECK(fb_cls_topk_counts(lg, badl, 1, 6, &t1, &t5, &st) == -1 && strstr(st.msg, "row 0: label 6"),
        "label out of range: %s", st.msg);
}

int main(void) {
  test_grids();
  test_perfect();
  test_fp_first();
  test_equal_scores();
  test_crowd();
  test_regular_before_crowd();
  test_categories();
  test_areas();
  test_thresholds();
  test_greedy_tie();
  test_max_dets();
  test_errors();
  test_random_vs_reference();
  test_seg();
  test_topk();
  return check_report("metrics");
}
