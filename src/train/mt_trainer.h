/* Training and evaluation on the standard data formats (image folders, COCO
 * JSON, PNG masks): the loop behind `fbnet train/eval/predict --task
 * cls|det|seg --data DIR`. One network carries the heads of the tasks it is
 * built for; each batch fills every head's targets, one forward and one
 * backward run, the total loss is the weighted sum of the heads' losses.
 *
 * Data layout under DIR (what `fbnet data scenes` writes):
 *   cls: DIR/{train,val}/<class>/<image>.png|jpg
 *   det: DIR/{train,val}.json (COCO) with images in DIR/{train,val}/images/
 *   seg: DIR/{train,val}/images/NAME.png, masks/NAME.png, classes.txt
 * Metrics are computed at the network's input resolution (eval geometry: the
 * longer side scaled to the input size, padding ignored); detections are
 * mapped back to original image pixels before COCO evaluation. */
#ifndef FB_TRAIN_MT_TRAINER_H
#define FB_TRAIN_MT_TRAINER_H

#include "data/dataset.h"
#include "fbnet.h"
#include "tasks/coco_eval.h"
#include "train/optim.h"

struct fb_net;

typedef struct fb_mt_cfg {
  int task;               /* one of FB_TASK_CLS / FB_TASK_DET / FB_TASK_SEG */
  const char *arch_path;
  const char *data_dir;
  const char *out_dir;
  fb_build_opts build;
  int epochs, batch;
  fb_optim_cfg optim;
  double warmup_epochs;
  float final_lr_frac;
  float label_smoothing;  /* cls */
  float scale_min, scale_max; /* scale augmentation */
  int hflip;
  float ema_decay;
  uint64_t seed;
  int train_limit, val_limit; /* first N samples only (0: all) */
  int threads;            /* loader threads */
  int resume;
  int quiet;
} fb_mt_cfg;

/* Metrics of one evaluation. */
typedef struct fb_mt_metrics {
  int task;
  int images;
  double top1, top5;                 /* cls */
  double coco[FB_COCO_NSTATS];       /* det: AP, AP50, ... (fb_coco_stat_names) */
  double coco_agnostic[FB_COCO_NSTATS]; /* det: the same with every category merged */
  int det_cats;
  double cat_ap[256];                /* det: AP per category (-1: no ground truth) */
  double miou, pixel_acc;            /* seg */
  int seg_classes;
  double class_iou[256];             /* seg: per class, -1 when absent from the ground truth */
  double loss;                       /* mean total loss (eval mode) */
} fb_mt_metrics;

fb_mt_cfg fb_mt_cfg_default(int task);
/* Loads the split ("train" or "val") of DIR for the task. */
int fb_mt_load_split(int task, const char *dir, const char *split, int limit, fb_mt_dataset *d,
                     fb_status *st);
/* Fills the build options that depend on the data (classes, categories). */
void fb_mt_build_opts_for_data(int task, const fb_mt_dataset *d, fb_build_opts *b);

int fb_mt_train(const fb_mt_cfg *cfg, fb_mt_metrics *final, fb_status *st);

/* Evaluates net (planned) on d. When pred_dir is non-NULL, also writes the
 * predictions there: det -> pred_dir/detections.json (COCO results), seg ->
 * pred_dir/masks/<image name>.png, cls -> pred_dir/predictions.csv. */
int fb_mt_evaluate(struct fb_net *net, const fb_mt_dataset *d, int task, int threads,
                   const char *pred_dir, fb_mt_metrics *m, fb_status *st);

/* One line of JSON with the metrics of m (no newline). */
void fb_mt_metrics_json(const fb_mt_metrics *m, char *buf, size_t n);
/* Copies a batch into the network's input and, when targets, every head's
 * targets (class labels, FCOS targets, segmentation targets). */
struct fb_batch;
int fb_mt_fill_batch(struct fb_net *net, const struct fb_batch *b, int targets, fb_status *st);

#endif
