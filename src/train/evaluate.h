/* Evaluation and prediction of a network on a data set in the standard
 * formats (`fbnet eval`, `fbnet predict`, the end of every training epoch).
 *
 * The data set carries the label space: for classification d->class_names
 * are the model's classes (labels index them; -1 = unlabelled), for
 * detection d->cat_ids are the model's COCO category ids. A set without any
 * label (a plain folder of images) gets predictions and no metrics.
 *
 * Predictions (when o->pred_dir is set), keyed by each image's path relative
 * to d->root (its base name when the set has no root):
 *   cls: predictions.csv   file,label,class_1,prob_1,...,class_k,prob_k
 *        predictions.json  [{"file", "label", "top": [{"class", "index", "prob"}]}]
 *   det: detections.json   COCO results (image_id, category_id, bbox, score)
 *        images.json       COCO images + categories: image_id -> file_name
 *   seg: masks/<file>.png  class index per pixel, at the image's own size */
#ifndef FB_TRAIN_EVALUATE_H
#define FB_TRAIN_EVALUATE_H

#include <stddef.h>

#include "data/dataset.h"
#include "data/formats.h"
#include "fbnet.h"
#include "tasks/det/coco_eval.h"

struct fb_net;

typedef struct fb_eval_opts {
  int threads;          /* loader threads (>= 1) */
  const char *pred_dir; /* NULL: metrics only */
  int top_k;            /* cls predictions: classes per image (0: 5) */
  int progress;         /* progress lines every 10 s, to log */
  const fb_logger *log; /* NULL: silent */
} fb_eval_opts;

/* Metrics of one evaluation. */
typedef struct fb_mt_metrics {
  int task;
  int images;
  int labelled;                      /* 0: the set has no labels, no metric below is set */
  double top1, top5;                 /* cls */
  double coco[FB_COCO_NSTATS];       /* det: AP, AP50, ... (fb_coco_stat_names) */
  double coco_agnostic[FB_COCO_NSTATS]; /* det: the same with every category merged */
  int det_cats;
  double cat_ap[256];                /* det: AP per category (-1: no ground truth) */
  double miou, pixel_acc;            /* seg */
  int seg_classes;
  double class_iou[256];             /* seg: per class, -1 when absent from the ground truth */
} fb_mt_metrics;

/* Evaluates net (planned, with the task's head) on d; writes predictions
 * when o->pred_dir is set (directories created as needed). */
int fb_mt_evaluate(struct fb_net *net, const fb_mt_dataset *d, int task, const fb_eval_opts *o,
                   fb_mt_metrics *m, fb_status *st);

/* One line of JSON with the metrics of m (no newline). */
/* The COCO metrics of a results file's detections (fb_coco_load_results)
 * against a ground truth (fb_coco_load, images not needed): what `fbnet eval
 * --gt GT.json --results R.json` prints. A detection on an image the ground
 * truth does not have is an error. */
int fb_eval_det_results(const fb_mt_dataset *gt, const fb_det *dets, int n, fb_mt_metrics *m,
                        fb_status *st);
void fb_mt_metrics_json(const fb_mt_metrics *m, char *buf, size_t n);
/* The task's headline metric (top-1, AP, mIoU) and its name. */
double fb_mt_headline(const fb_mt_metrics *m);
const char *fb_mt_headline_name(int task);

#endif
