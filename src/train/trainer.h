/* Classification training on Fashion-MNIST: the loop behind `fbnet train
 * --task cls`. Seeded and reproducible: the data order of epoch e is a pure
 * function of (seed, e), augmentation draws come from an rng seeded by
 * (seed, e), so a run resumed from an epoch checkpoint continues exactly. */
#ifndef FB_TRAIN_TRAINER_H
#define FB_TRAIN_TRAINER_H

#include <stdint.h>

#include "data/augment.h"
#include "fbnet.h"
#include "train/optim.h"

typedef struct fb_train_cfg {
  const char *arch_path;
  const char *data_dir;   /* Fashion-MNIST directory or "fashion-mnist" */
  const char *out_dir;    /* weights, checkpoint, log */
  fb_build_opts build;    /* input size, width, padding, channels, classes */
  int epochs, batch;
  fb_optim_cfg optim;
  double warmup_epochs;
  float final_lr_frac;
  float label_smoothing;
  fb_aug_cfg aug;
  float ema_decay;        /* 0: off */
  uint64_t seed;
  int train_limit;        /* use only the first N training images (0: all) */
  int test_limit;         /* evaluate on the first N test images (0: all) */
  int resume;             /* 1: continue from out_dir/checkpoint.safetensors; 2: also with
                           * other options */
  double max_loss_ratio;  /* divergence: loss > this x its recent mean (0: non-finite only) */
  int quiet;              /* no progress lines */
  const fb_logger *log;   /* progress and messages (NULL: silent) */
  int micro;              /* micro-batches per step (gradient accumulation; 0 or 1: none) */
  struct fb_dist *dist;   /* data-parallel ranks (dist/dist.h); NULL: this process alone */
} fb_train_cfg;

typedef struct fb_train_result {
  double top1, top5;         /* last epoch, weights that are saved (EMA if on) */
  double top1_raw;           /* last epoch, raw (non-EMA) weights */
  double best_top1;
  double final_loss;
  double seconds;
  double images_per_sec;
} fb_train_result;

fb_train_cfg fb_train_cfg_default(void);
int fb_train_run(const fb_train_cfg *cfg, fb_train_result *res, fb_status *st);

/* Top-1/top-5 of net (built for the data) on ds, forward in inference mode. */
typedef struct fb_net fb_net;
int fb_eval_cls(fb_net *net, const fb_dataset_u8 *ds, const fb_aug_cfg *aug, int limit,
                double *top1, double *top5, fb_status *st);

#endif
