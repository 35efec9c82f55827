/* Greedy non-maximum suppression (torchvision.ops.batched_nms semantics).
 *
 * Boxes are visited by decreasing score; ties keep the lower index first
 * (stable). A box is kept unless a kept box of the same class (classes ==
 * NULL: of any class) overlaps it with IoU > iou_thresh (strictly greater,
 * as torchvision). */
#ifndef FB_TASKS_DET_NMS_H
#define FB_TASKS_DET_NMS_H

/* boxes: n corner boxes (x0, y0, x1, y1) as 4n floats; scores: n; classes:
 * n or NULL. Writes the indices of the kept boxes to keep (room for n, or for
 * max_keep when max_keep > 0) in visiting order and returns how many were
 * kept, at most max_keep when max_keep > 0. */
int fb_nms(const float *boxes, const float *scores, const int *classes, int n, float iou_thresh,
           int max_keep, int *keep);

/* Order of indices 0..n-1 by decreasing score, ties by increasing index. */
void fb_argsort_scores(const float *scores, int n, int *order);

#endif
