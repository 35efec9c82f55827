/* Top-k classification accuracy (see metrics.h). */
#include "tasks/cls/metrics.h"

#include <math.h>

#include "core/status.h"

int fb_cls_rank(const float *logits, int c, int label) {
  float y = logits[label];
  int above = 0;
  for (int j = 0; j < c; j++) {
    float v = logits[j];
    if (isnan(v)) return -1;
    if (v > y || (v == y && j < label)) above++;
  }
  return above;
}

int fb_cls_topk_count(const float *logits, const int *labels, int n, int c, int k, int *count,
                      fb_status *st) {
  if (n < 0 || c < 1 || k < 1)
    return fb_fail(st, "top-k: bad sizes (rows %d, classes %d, k %d)", n, c, k);
  int ok = 0;
  for (int i = 0; i < n; i++) {
    if (labels[i] < 0 || labels[i] >= c)
      return fb_fail(st, "top-k: row %d: label %d outside 0..%d", i, labels[i], c - 1);
    int r = fb_cls_rank(logits + (size_t)i * c, c, labels[i]);
    if (r >= 0 && r < k) ok++;
  }
  *count = ok;
  return 0;
}

int fb_cls_topk_counts(const float *logits, const int *labels, int n, int c, int *top1, int *top5,
                       fb_status *st) {
  int a = 0, b = 0;
  if (fb_cls_topk_count(logits, labels, n, c, 1, &a, st)) return -1;
  if (fb_cls_topk_count(logits, labels, n, c, 5, &b, st)) return -1;
  if (top1) *top1 = a;
  if (top5) *top5 = b;
  return 0;
}
