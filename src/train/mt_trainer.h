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
#include "train/evaluate.h"
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
  int resume;             /* 1: continue OUT's run; 2: also with other options */
  double max_loss_ratio;  /* divergence: loss > this x its recent mean (0: non-finite only) */
  int quiet;
  const fb_logger *log;   /* progress and messages (NULL: silent) */
  int micro;              /* micro-batches per step (gradient accumulation; 0 or 1: none) */
  struct fb_dist *dist;   /* data-parallel ranks (dist/dist.h); NULL: this process alone */
} fb_mt_cfg;

/* Fewer training steps than this get a warning at the end of a run. */
#define FB_FEW_STEPS 300

fb_mt_cfg fb_mt_cfg_default(int task);
/* Loads the split ("train" or "val") of DIR for the task. */
int fb_mt_load_split(int task, const char *dir, const char *split, int limit, fb_mt_dataset *d,
                     fb_status *st);
/* Fills the build options that depend on the data (classes, categories). */
void fb_mt_build_opts_for_data(int task, const fb_mt_dataset *d, fb_build_opts *b);

int fb_mt_train(const fb_mt_cfg *cfg, fb_mt_metrics *final, fb_status *st);

/* The loader of d for net's input: training (augmentation and order from
 * c's seed, flips, scales, drop_last) or evaluation (c may be NULL). */
struct fb_loader;
struct fb_loader *fb_mt_loader_create(const fb_mt_dataset *d, const struct fb_net *net, int batch,
                                      int train, const fb_mt_cfg *c, int threads, fb_status *st);
/* Copies a batch into the network's input and, when targets, every head's
 * targets (class labels, FCOS targets, segmentation targets). */
struct fb_batch;
int fb_mt_fill_batch(struct fb_net *net, const struct fb_batch *b, int targets, fb_status *st);

#endif
