#include "tasks/det/nms.h"

#include <math.h>
#include <stdlib.h>

#include "core/status.h"
#include "tasks/det/box.h"

typedef struct scored {
  float s;
  int i;
} scored;

/* Decreasing score, then increasing index: a total order, so the result
 * does not depend on qsort's (unstable) algorithm. */
static int cmp_scored(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->s != b->s) return a->s > b->s ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

void fb_argsort_scores(const float *scores, int n, int *order) {
  if (n <= 0) return;
  scored *v = fb_xmalloc((size_t)n * sizeof *v);
  for (int i = 0; i < n; i++) v[i].s = isnan(scores[i]) ? -INFINITY : scores[i], v[i].i = i;
  qsort(v, (size_t)n, sizeof *v, cmp_scored);
  for (int i = 0; i < n; i++) order[i] = v[i].i;
  free(v);
}

int fb_nms(const float *boxes, const float *scores, const int *classes, int n, float iou_thresh,
           int max_keep, int *keep) {
  if (n <= 0) return 0;
  int *order = fb_xmalloc((size_t)n * sizeof *order), kept = 0;
  fb_argsort_scores(scores, n, order);
  for (int r = 0; r < n && (max_keep <= 0 || kept < max_keep); r++) {
    int i = order[r], ok = 1;
    for (int q = 0; q < kept && ok; q++) {
      int j = keep[q];
      if (classes && classes[i] != classes[j]) continue;
      if (fb_box_iou(boxes + 4 * (size_t)i, boxes + 4 * (size_t)j) > iou_thresh) ok = 0;
    }
    if (ok) keep[kept++] = i;
  }
  free(order);
  return kept;
}
