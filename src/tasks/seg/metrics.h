/* Segmentation metrics from a confusion matrix: mIoU over the classes that
 * occur in the ground truth, pixel accuracy, per-class IoU. Ground-truth
 * pixels equal to 255 are ignored. */
#ifndef FB_TASKS_SEG_METRICS_H
#define FB_TASKS_SEG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fbnet.h"

#define FB_SEG_IGNORE 255

typedef struct fb_confmat {
  int k;        /* classes */
  uint64_t *m;  /* k*k counts, row = ground truth class, column = predicted class */
} fb_confmat;

/* k in 1..255. */
int fb_confmat_init(fb_confmat *cm, int k, fb_status *st);
void fb_confmat_free(fb_confmat *cm);
void fb_confmat_reset(fb_confmat *cm);
/* Adds n pixels. gt[i] == 255 is skipped; any other gt >= k, or a prediction
 * >= k at a counted pixel, is an error naming the pixel index. */
int fb_confmat_add(fb_confmat *cm, const uint8_t *gt, const uint8_t *pred, size_t n, fb_status *st);
/* Adds one image from its logits (k x h x w, CHW): the prediction is the
 * argmax over classes (ties: smallest class; NaN never wins). */
int fb_confmat_add_logits(fb_confmat *cm, const uint8_t *gt, const float *logits, int h, int w,
                          fb_status *st);
/* Adds the counts of another matrix of the same k (e.g. per-thread). */
int fb_confmat_merge(fb_confmat *dst, const fb_confmat *src, fb_status *st);

typedef struct fb_seg_scores {
  double miou;       /* mean IoU over classes with gt pixels; -1 when none */
  double pixel_acc;  /* correct / counted pixels; -1 when no pixel counted */
  int n_present;     /* classes with gt pixels */
  uint64_t pixels;   /* counted (non-ignored) pixels */
} fb_seg_scores;

/* per_class_iou (may be NULL) gets k values: TP / (TP + FP + FN) for a class
 * with gt pixels, -1 for a class absent from the gt (even if predicted). */
fb_seg_scores fb_confmat_scores(const fb_confmat *cm, double *per_class_iou);

#endif
