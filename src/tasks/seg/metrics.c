/* Confusion-matrix segmentation metrics (see metrics.h). */
#include "tasks/seg/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

int fb_confmat_init(fb_confmat *cm, int k, fb_status *st) {
  cm->k = 0;
  cm->m = NULL;
  if (k < 1 || k > 255) return fb_fail(st, "seg metrics: number of classes %d outside 1..255", k);
  cm->k = k;
  cm->m = fb_xcalloc((size_t)k * (size_t)k, sizeof(uint64_t));
  return 0;
}

void fb_confmat_free(fb_confmat *cm) {
  free(cm->m);
  cm->m = NULL;
  cm->k = 0;
}

void fb_confmat_reset(fb_confmat *cm) {
  if (cm->m) memset(cm->m, 0, sizeof(uint64_t) * (size_t)cm->k * (size_t)cm->k);
}

int fb_confmat_add(fb_confmat *cm, const uint8_t *gt, const uint8_t *pred, size_t n, fb_status *st) {
  int k = cm->k;
  /* validate first so a bad image leaves the matrix unchanged */
  for (size_t i = 0; i < n; i++) {
    if (gt[i] == FB_SEG_IGNORE) continue;
    if (gt[i] >= k)
      return fb_fail(st, "seg metrics: ground truth pixel %zu: class %d >= %d classes (255 = ignore)", i,
                     gt[i], k);
    if (pred[i] >= k)
      return fb_fail(st, "seg metrics: prediction pixel %zu: class %d >= %d classes", i, pred[i], k);
  }
  for (size_t i = 0; i < n; i++)
    if (gt[i] != FB_SEG_IGNORE) cm->m[(size_t)gt[i] * k + pred[i]]++;
  return 0;
}

int fb_confmat_add_logits(fb_confmat *cm, const uint8_t *gt, const float *logits, int h, int w,
                          fb_status *st) {
  if (h < 0 || w < 0) return fb_fail(st, "seg metrics: bad image size %dx%d", h, w);
  size_t hw = (size_t)h * (size_t)w;
  uint8_t *pred = fb_xmalloc(hw + 1);
  for (size_t p = 0; p < hw; p++) {
    int best = 0;
    float bv = logits[p];
    for (int c = 1; c < cm->k; c++) {
      float v = logits[(size_t)c * hw + p];
      if (v > bv || (isnan(bv) && !isnan(v))) {
        bv = v;
        best = c;
      }
    }
    pred[p] = (uint8_t)best;
  }
  int rc = fb_confmat_add(cm, gt, pred, hw, st);
  free(pred);
  return rc;
}

int fb_confmat_merge(fb_confmat *dst, const fb_confmat *src, fb_status *st) {
  if (dst->k != src->k) return fb_fail(st, "seg metrics: merging %d-class and %d-class matrices", dst->k, src->k);
  for (size_t i = 0; i < (size_t)dst->k * (size_t)dst->k; i++) dst->m[i] += src->m[i];
  return 0;
}

fb_seg_scores fb_confmat_scores(const fb_confmat *cm, double *per_class_iou) {
  fb_seg_scores r = {-1.0, -1.0, 0, 0};
  int k = cm->k;
  uint64_t correct = 0;
  double iou_sum = 0;
  for (int c = 0; c < k; c++) {
    uint64_t tp = cm->m[(size_t)c * k + c], gt_n = 0, pred_n = 0;
    for (int j = 0; j < k; j++) {
      gt_n += cm->m[(size_t)c * k + j];
      pred_n += cm->m[(size_t)j * k + c];
    }
    correct += tp;
    r.pixels += gt_n;
    double iou = -1.0;
    if (gt_n > 0) {
      /* TP + FP + FN = pred_n + gt_n - tp */
      iou = (double)tp / (double)(pred_n + gt_n - tp);
      iou_sum += iou;
      r.n_present++;
    }
    if (per_class_iou) per_class_iou[c] = iou;
  }
  if (r.n_present) r.miou = iou_sum / r.n_present;
  if (r.pixels) r.pixel_acc = (double)correct / (double)r.pixels;
  return r;
}
