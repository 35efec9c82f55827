/* COCO box evaluation (see coco_eval.h). The steps follow COCOeval:
 *   1. group gt boxes and detections by (image, category); detections of a
 *      group sorted by score (stable) and cut to 100;
 *   2. per category, area range and image: greedy matching at each IoU
 *      threshold -> per detection "matched" and "ignored" flags, per image
 *      the number of non-ignored gts;
 *   3. per category, area range and maxDets: detections of all images in
 *      image-id order, each image cut to maxDets, stable-sorted by score;
 *      cumulative TP/FP -> recall and precision; precision made monotone and
 *      read at 101 recall points (first index with recall >= point);
 *   4. means over categories with ground truth.
 * Numbers are doubles computed in the same order as the reference, so the
 * results agree with it to rounding of the final means. */
#include "tasks/det/coco_eval.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define NT 10  /* IoU thresholds */
#define NR 101 /* recall points */
#define NA 4   /* area ranges: all, small, medium, large */
#define NM 3   /* maxDets 1, 10, 100 */
#define MAX_DETS 100

const char *const fb_coco_stat_names[FB_COCO_NSTATS] = {
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

static const int k_max_dets[NM] = {1, 10, 100};
static const double k_area_lo[NA] = {0.0, 0.0, 32.0 * 32.0, 96.0 * 96.0};
static const double k_area_hi[NA] = {1e10, 32.0 * 32.0, 96.0 * 96.0, 1e10};

void fb_coco_iou_thresholds(double out[10]) {
  /* numpy linspace: start + i * ((stop - start) / (num - 1)), last = stop */
  double step = (0.95 - 0.5) / 9.0;
  for (int i = 0; i < 9; i++) out[i] = (double)i * step + 0.5;
  out[9] = 0.95;
}

void fb_coco_recall_points(double out[101]) {
  double step = 1.0 / 100.0;
  for (int i = 0; i < 100; i++) out[i] = (double)i * step + 0.0;
  out[100] = 1.0;
}

double fb_coco_box_iou(const fb_box *dt, const fb_box *gt, int gt_iscrowd) {
  double dx = dt->x, dy = dt->y, dw = dt->w, dh = dt->h;
  double gx = gt->x, gy = gt->y, gw = gt->w, gh = gt->h;
  double w = fmin(dw + dx, gw + gx) - fmax(dx, gx);
  if (w <= 0) return 0.0;
  double h = fmin(dh + dy, gh + gy) - fmax(dy, gy);
  if (h <= 0) return 0.0;
  double inter = w * h;
  double da = dw * dh, ga = gw * gh;
  double uni = gt_iscrowd ? da : da + ga - inter;
  return inter / uni;
}

/* ---- sorting helpers --------------------------------------------------- */

typedef struct keyed {
  double key; /* sorted descending */
  int pos;    /* ties keep ascending position (= a stable sort) */
} keyed;

static int keyed_cmp_desc(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key > y->key) return -1;
  if (x->key < y->key) return 1;
  return (x->pos > y->pos) - (x->pos < y->pos);
}

static int keyed_cmp_asc(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key < y->key) return -1;
  if (x->key > y->key) return 1;
  return (x->pos > y->pos) - (x->pos < y->pos);
}

static int bsearch_id(const int *ids, int n, int id) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (ids[mid] == id) return mid;
    if (ids[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static int finite_box(const fb_box *b) {
  return isfinite(b->x) && isfinite(b->y) && isfinite(b->w) && isfinite(b->h);
}

/* ---- evaluation state --------------------------------------------------- */

typedef struct coco_groups {
  int n_img, n_cat;
  int *img_ids;          /* n_img, ascending */
  int *img_sample;       /* n_img: index into gt->s */
  int *gt_start;         /* n_img*n_cat+1 */
  const fb_box **gt;     /* boxes grouped by (image, category), file order */
  int *dt_start;         /* n_img*n_cat+1 */
  int *dt_count;         /* n_img*n_cat: detections kept (<= 100) */
  const fb_box **dt;     /* grouped, sorted by score (stable) */
} coco_groups;

static int cmp_int(const void *a, const void *b) {
  const int x = *(const int *)a, y = *(const int *)b;
  return x < y ? -1 : x > y;
}

/* The first detection (det_img[d] < 0: not an evaluated image) whose
 * image_id is no sample of gtd at all, or -1. pycocotools refuses such
 * results ("Results do not correspond to current coco set"). */
static int first_unknown_image(const fb_mt_dataset *gtd, const fb_det *dets, int n_dets,
                               const int *det_img) {
  int *all = NULL, found = -1;
  for (int d = 0; d < n_dets && found < 0; d++) {
    if (det_img[d] >= 0) continue;
    if (!all) {
      all = fb_xmalloc(sizeof(int) * (size_t)(gtd->n + 1));
      for (int i = 0; i < gtd->n; i++) all[i] = gtd->s[i].image_id;
      qsort(all, (size_t)gtd->n, sizeof(int), cmp_int);
    }
    if (bsearch_id(all, gtd->n, dets[d].image_id) < 0) found = d;
  }
  free(all);
  return found;
}

static void groups_free(coco_groups *g) {
  free(g->img_ids);
  free(g->img_sample);
  free(g->gt_start);
  free(g->gt);
  free(g->dt_start);
  free(g->dt_count);
  free(g->dt);
  memset(g, 0, sizeof *g);
}

static int groups_build(coco_groups *g, const fb_mt_dataset *gtd, const fb_det *dets, int n_dets,
                        fb_status *st) {
  memset(g, 0, sizeof *g);
  int K = gtd->num_cats;
  g->n_cat = K;
  int n_eval = 0;
  for (int i = 0; i < gtd->n; i++)
    if (gtd->s[i].has_boxes || gtd->s[i].n_boxes > 0) n_eval++;
  keyed *ord = fb_xmalloc(sizeof(keyed) * (size_t)(n_eval > 0 ? n_eval : 1));
  int j = 0;
  for (int i = 0; i < gtd->n; i++) {
    const fb_sample *s = &gtd->s[i];
    if (!(s->has_boxes || s->n_boxes > 0)) continue;
    if (s->n_boxes > 0 && !s->boxes) {
      free(ord);
      return fb_fail(st, "coco eval: ground truth sample %d (image_id %d): n_boxes %d but boxes NULL",
                     i, s->image_id, s->n_boxes);
    }
    for (int b = 0; b < s->n_boxes; b++) {
      const fb_box *bx = &s->boxes[b];
      if (bx->cat < 0 || bx->cat >= K) {
        free(ord);
        return fb_fail(st, "coco eval: ground truth image_id %d box %d: cat %d outside 0..%d", s->image_id,
                       b, bx->cat, K - 1);
      }
      if (!finite_box(bx) || !isfinite(bx->area)) {
        free(ord);
        return fb_fail(st, "coco eval: ground truth image_id %d box %d: non-finite bbox or area",
                       s->image_id, b);
      }
    }
    ord[j].key = (double)s->image_id;
    ord[j].pos = i;
    j++;
  }
  if (n_eval > 1) qsort(ord, (size_t)n_eval, sizeof(keyed), keyed_cmp_asc);
  g->n_img = n_eval;
  g->img_ids = fb_xmalloc(sizeof(int) * (size_t)(n_eval + 1));
  g->img_sample = fb_xmalloc(sizeof(int) * (size_t)(n_eval + 1));
  for (int i = 0; i < n_eval; i++) {
    g->img_sample[i] = ord[i].pos;
    g->img_ids[i] = gtd->s[ord[i].pos].image_id;
    if (i > 0 && g->img_ids[i] == g->img_ids[i - 1]) {
      int a = g->img_sample[i - 1], b = g->img_sample[i];
      free(ord);
      groups_free(g);
      return fb_fail(st, "coco eval: ground truth samples %d and %d: same image_id %d", a < b ? a : b,
                     a < b ? b : a, gtd->s[a].image_id);
    }
  }
  free(ord);

  for (int d = 0; d < n_dets; d++) {
    const fb_box *b = &dets[d].box;
    if (b->cat < 0 || b->cat >= K) {
      groups_free(g);
      return fb_fail(st, "coco eval: detection %d (image_id %d): cat %d outside 0..%d", d,
                     dets[d].image_id, b->cat, K - 1);
    }
    if (!finite_box(b) || !isfinite(b->score)) {
      groups_free(g);
      return fb_fail(st, "coco eval: detection %d (image_id %d): non-finite bbox or score", d,
                     dets[d].image_id);
    }
  }

  size_t cells = (size_t)n_eval * (size_t)K;
  g->gt_start = fb_xcalloc(cells + 1, sizeof(int));
  g->dt_start = fb_xcalloc(cells + 1, sizeof(int));
  g->dt_count = fb_xcalloc(cells + 1, sizeof(int));
  /* counts, then prefix sums, then fill in input order */
  for (int i = 0; i < n_eval; i++) {
    const fb_sample *s = &gtd->s[g->img_sample[i]];
    for (int b = 0; b < s->n_boxes; b++) g->gt_start[(size_t)i * K + s->boxes[b].cat + 1]++;
  }
  int *det_img = fb_xmalloc(sizeof(int) * (size_t)(n_dets > 0 ? n_dets : 1));
  for (int d = 0; d < n_dets; d++)
    det_img[d] = bsearch_id(g->img_ids, n_eval, dets[d].image_id);
  const int unknown = first_unknown_image(gtd, dets, n_dets, det_img);
  if (unknown >= 0) {
    free(det_img);
    groups_free(g);
    return fb_fail(st, "coco eval: detection %d: image_id %d is not an image of the ground truth "
                   "(the results do not belong to this data set)", unknown, dets[unknown].image_id);
  }
  for (int d = 0; d < n_dets; d++)
    if (det_img[d] >= 0) g->dt_start[(size_t)det_img[d] * K + dets[d].box.cat + 1]++;
  for (size_t c = 0; c < cells; c++) {
    g->gt_start[c + 1] += g->gt_start[c];
    g->dt_start[c + 1] += g->dt_start[c];
  }
  g->gt = fb_xmalloc(sizeof(fb_box *) * (size_t)(g->gt_start[cells] + 1));
  g->dt = fb_xmalloc(sizeof(fb_box *) * (size_t)(g->dt_start[cells] + 1));
  int *fill = fb_xcalloc(cells + 1, sizeof(int));
  for (int i = 0; i < n_eval; i++) {
    const fb_sample *s = &gtd->s[g->img_sample[i]];
    for (int b = 0; b < s->n_boxes; b++) {
      size_t c = (size_t)i * K + s->boxes[b].cat;
      g->gt[g->gt_start[c] + fill[c]++] = &s->boxes[b];
    }
  }
  memset(fill, 0, sizeof(int) * (cells + 1));
  for (int d = 0; d < n_dets; d++) {
    if (det_img[d] < 0) continue;
    size_t c = (size_t)det_img[d] * K + dets[d].box.cat;
    g->dt[g->dt_start[c] + fill[c]++] = &dets[d].box;
  }
  free(fill);
  free(det_img);

  /* sort each group by score, descending and stable; keep the first 100 */
  keyed *tmp = NULL;
  const fb_box **tmpb = NULL;
  int cap = 0;
  for (size_t c = 0; c < cells; c++) {
    int s0 = g->dt_start[c], n = g->dt_start[c + 1] - s0;
    g->dt_count[c] = n < MAX_DETS ? n : MAX_DETS;
    if (n < 2) continue;
    if (n > cap) {
      cap = n;
      tmp = fb_xrealloc(tmp, sizeof(keyed) * (size_t)cap);
      tmpb = fb_xrealloc(tmpb, sizeof(fb_box *) * (size_t)cap);
    }
    for (int k = 0; k < n; k++) {
      tmp[k].key = (double)g->dt[s0 + k]->score;
      tmp[k].pos = k;
      tmpb[k] = g->dt[s0 + k];
    }
    qsort(tmp, (size_t)n, sizeof(keyed), keyed_cmp_desc);
    for (int k = 0; k < n; k++) g->dt[s0 + k] = tmpb[tmp[k].pos];
  }
  free(tmp);
  free(tmpb);
  return 0;
}

/* Per-category results of step 2 for one area range: detections of all
 * images concatenated in image order (each image's in score order). */
typedef struct cat_area_eval {
  int any;        /* some image has gts or detections of this category */
  long npig;      /* non-ignored gts */
  int n;          /* detections */
  double *score;  /* n */
  int *rank;      /* n: position within its image (for the maxDets cut) */
  uint8_t *match; /* NT*n */
  uint8_t *ign;   /* NT*n */
} cat_area_eval;

typedef struct scratch {
  double *iou;   /* D*G */
  int *perm;     /* G: gts, non-ignored first */
  uint8_t *igp;  /* G: ignore flag in perm order */
  uint8_t *gtm;  /* G: matched flag in perm order */
  int gcap;
} scratch;

static void scratch_gt(scratch *s, int G) {
  if (G <= s->gcap) return;
  s->gcap = G;
  s->iou = fb_xrealloc(s->iou, sizeof(double) * (size_t)G * MAX_DETS);
  s->perm = fb_xrealloc(s->perm, sizeof(int) * (size_t)G);
  s->igp = fb_xrealloc(s->igp, (size_t)G);
  s->gtm = fb_xrealloc(s->gtm, (size_t)G);
}

/* Step 2 for one image, category and area range: appends the image's
 * detections to e. */
static void eval_image(cat_area_eval *e, const fb_box *const *gt, int G, const fb_box *const *dt, int D,
                       double lo, double hi, const double *thr, scratch *s) {
  if (G == 0 && D == 0) return;
  e->any = 1;
  scratch_gt(s, G);
  int np = 0;
  for (int g = 0; g < G; g++) {
    double a = gt[g]->area;
    int ig = gt[g]->iscrowd || a < lo || a > hi;
    if (!ig) {
      s->perm[np] = g;
      s->igp[np] = 0;
      np++;
    }
  }
  e->npig += np;
  int q = np;
  for (int g = 0; g < G; g++) {
    double a = gt[g]->area;
    if (gt[g]->iscrowd || a < lo || a > hi) {
      s->perm[q] = g;
      s->igp[q] = 1;
      q++;
    }
  }
  for (int d = 0; d < D; d++)
    for (int j = 0; j < G; j++) {
      const fb_box *b = gt[s->perm[j]];
      s->iou[(size_t)d * G + j] = fb_coco_box_iou(dt[d], b, b->iscrowd);
    }
  int base = e->n;
  for (int d = 0; d < D; d++) {
    e->score[base + d] = dt[d]->score;
    e->rank[base + d] = d;
  }
  for (int t = 0; t < NT; t++) {
    if (G > 0) memset(s->gtm, 0, (size_t)G);
    for (int d = 0; d < D; d++) {
      double best = fmin(thr[t], 1.0 - 1e-10);
      int m = -1;
      for (int j = 0; j < G; j++) {
        if (s->gtm[j] && !gt[s->perm[j]]->iscrowd) continue;
        if (m > -1 && !s->igp[m] && s->igp[j]) break;
        double v = s->iou[(size_t)d * G + j];
        if (v < best) continue;
        best = v;
        m = j;
      }
      uint8_t matched = 0, ign = 0;
      if (m >= 0) {
        matched = 1;
        ign = s->igp[m];
        s->gtm[m] = 1;
      }
      if (!matched) {
        double da = (double)dt[d]->w * (double)dt[d]->h;
        if (da < lo || da > hi) ign = 1;
      }
      e->match[(size_t)(base + d) * NT + t] = matched;
      e->ign[(size_t)(base + d) * NT + t] = ign;
    }
  }
  e->n += D;
}

/* Step 3 for one category, area range and maxDets: fills the sum over the
 * recall points of the interpolated precision and the final recall, per
 * threshold. Returns 0 when the setting has no valid value (-1 in COCO). */
static int accumulate(const cat_area_eval *e, int max_det, const double *rec_pts, double prec_sum[NT],
                      double recall[NT], keyed *ord, double *rc, double *pr) {
  if (!e->any || e->npig == 0) return 0;
  int nd = 0;
  for (int i = 0; i < e->n; i++)
    if (e->rank[i] < max_det) {
      ord[nd].key = e->score[i];
      ord[nd].pos = i;
      nd++;
    }
  if (nd > 1) qsort(ord, (size_t)nd, sizeof(keyed), keyed_cmp_desc);
  for (int t = 0; t < NT; t++) {
    double tp = 0, fp = 0;
    for (int i = 0; i < nd; i++) {
      size_t k = (size_t)ord[i].pos * NT + t;
      if (!e->ign[k]) {
        if (e->match[k]) tp += 1;
        else fp += 1;
      }
      rc[i] = tp / (double)e->npig;
      pr[i] = tp / (fp + tp + DBL_EPSILON);
    }
    recall[t] = nd ? rc[nd - 1] : 0.0;
    for (int i = nd - 1; i > 0; i--)
      if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    double sum = 0;
    int idx = 0;
    for (int r = 0; r < NR; r++) {
      while (idx < nd && rc[idx] < rec_pts[r]) idx++;
      if (idx >= nd) break; /* the remaining points read 0 */
      sum += pr[idx];
    }
    prec_sum[t] = sum;
  }
  return 1;
}

int fb_coco_eval_bbox(const fb_mt_dataset *gtd, const fb_det *dets, int n_dets,
                      double stats[FB_COCO_NSTATS], double *cat_ap, fb_status *st) {
  if (!gtd) return fb_fail(st, "coco eval: no ground truth dataset");
  if (n_dets < 0 || (n_dets > 0 && !dets)) return fb_fail(st, "coco eval: bad detections array (n %d)", n_dets);
  if (gtd->num_cats < 0) return fb_fail(st, "coco eval: ground truth num_cats %d < 0", gtd->num_cats);
  coco_groups g;
  if (groups_build(&g, gtd, dets, n_dets, st)) return -1;
  int K = g.n_cat, I = g.n_img;
  double thr[NT], rec_pts[NR];
  fb_coco_iou_thresholds(thr);
  fb_coco_recall_points(rec_pts);

  /* per (category, area, maxDets): validity, precision sums and recalls */
  size_t nkam = (size_t)K * NA * NM;
  uint8_t *valid = fb_xcalloc(nkam + 1, 1);
  double *psum = fb_xcalloc(nkam * NT + 1, sizeof(double));
  double *rec = fb_xcalloc(nkam * NT + 1, sizeof(double));

  int max_cat_dets = 1;
  for (int k = 0; k < K; k++) {
    int n = 0;
    for (int i = 0; i < I; i++) n += g.dt_count[(size_t)i * K + k];
    if (n > max_cat_dets) max_cat_dets = n;
  }
  cat_area_eval e = {0};
  e.score = fb_xmalloc(sizeof(double) * (size_t)max_cat_dets);
  e.rank = fb_xmalloc(sizeof(int) * (size_t)max_cat_dets);
  e.match = fb_xmalloc((size_t)NT * (size_t)max_cat_dets);
  e.ign = fb_xmalloc((size_t)NT * (size_t)max_cat_dets);
  keyed *ord = fb_xmalloc(sizeof(keyed) * (size_t)max_cat_dets);
  double *rc = fb_xmalloc(sizeof(double) * (size_t)max_cat_dets);
  double *pr = fb_xmalloc(sizeof(double) * (size_t)max_cat_dets);
  scratch sc = {0};

  for (int k = 0; k < K; k++)
    for (int a = 0; a < NA; a++) {
      e.any = 0;
      e.npig = 0;
      e.n = 0;
      for (int i = 0; i < I; i++) {
        size_t c = (size_t)i * K + k;
        eval_image(&e, g.gt + g.gt_start[c], g.gt_start[c + 1] - g.gt_start[c], g.dt + g.dt_start[c],
                   g.dt_count[c], k_area_lo[a], k_area_hi[a], thr, &sc);
      }
      for (int m = 0; m < NM; m++) {
        size_t x = ((size_t)k * NA + a) * NM + m;
        valid[x] = (uint8_t)accumulate(&e, k_max_dets[m], rec_pts, psum + x * NT, rec + x * NT, ord, rc, pr);
      }
    }

  /* step 4: means over the valid categories (and thresholds, recall points) */
  for (int s = 0; s < FB_COCO_NSTATS; s++) {
    int is_ap = s < 6, a = 0, m = NM - 1, t0 = 0, t1 = NT;
    switch (s) {
      case FB_COCO_AP50: t0 = 0, t1 = 1; break;
      case FB_COCO_AP75: t0 = 5, t1 = 6; break;
      case FB_COCO_AP_S: case FB_COCO_AR_S: a = 1; break;
      case FB_COCO_AP_M: case FB_COCO_AR_M: a = 2; break;
      case FB_COCO_AP_L: case FB_COCO_AR_L: a = 3; break;
      case FB_COCO_AR1: m = 0; break;
      case FB_COCO_AR10: m = 1; break;
      default: break;
    }
    double sum = 0;
    long cnt = 0;
    for (int k = 0; k < K; k++) {
      size_t x = ((size_t)k * NA + a) * NM + m;
      if (!valid[x]) continue;
      for (int t = t0; t < t1; t++) sum += is_ap ? psum[x * NT + t] : rec[x * NT + t];
      cnt += (t1 - t0) * (is_ap ? NR : 1);
    }
    stats[s] = cnt ? sum / (double)cnt : -1.0;
  }
  if (cat_ap)
    for (int k = 0; k < K; k++) {
      size_t x = ((size_t)k * NA + 0) * NM + (NM - 1);
      double sum = 0;
      for (int t = 0; t < NT; t++) sum += psum[x * NT + t];
      cat_ap[k] = valid[x] ? sum / (double)(NT * NR) : -1.0;
    }

  free(sc.iou);
  free(sc.perm);
  free(sc.igp);
  free(sc.gtm);
  free(e.score);
  free(e.rank);
  free(e.match);
  free(e.ign);
  free(ord);
  free(rc);
  free(pr);
  free(valid);
  free(psum);
  free(rec);
  groups_free(&g);
  return 0;
}
