/* Classification top-k accuracy over logits.
 *
 * Ranking rule (deterministic, no sorting): class j ranks above the label y
 * when logits[j] > logits[y], or logits[j] == logits[y] and j < y. The label
 * is in the top k when fewer than k classes rank above it. A row with a NaN
 * logit anywhere counts as wrong for every k. */
#ifndef FB_TASKS_CLS_METRICS_H
#define FB_TASKS_CLS_METRICS_H

#include "fbnet.h"

/* Number of classes ranking above `label` in one row of c logits (0 = top-1);
 * -1 when the row has a NaN (counted as wrong). */
int fb_cls_rank(const float *logits, int c, int label);

/* Over n rows (n x c logits, row-major) with labels[n]: number of rows whose
 * label is within the top 1 and within the top 5 (either pointer may be
 * NULL). A label outside 0..c-1 is an error naming the row. */
int fb_cls_topk_counts(const float *logits, const int *labels, int n, int c, int *top1, int *top5,
                       fb_status *st);

/* General form: rows whose label is within the top k. */
int fb_cls_topk_count(const float *logits, const int *labels, int n, int c, int k, int *count,
                      fb_status *st);

#endif
