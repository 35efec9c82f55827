/* fbnet train: train an arch file on a task.
 *   --task cls --data fashion-mnist   Fashion-MNIST (IDX files, fast grey path)
 *   --task cls|det|seg --data DIR     standard formats (see src/train/mt_trainer.h) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "term_log.h"
#include "core/fileio.h"
#include "data/augment.h"
#include "data/fmnist.h"
#include "tasks/det/fcos.h"
#include "tasks/seg/seghead.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/mt_trainer.h"
#include "train/trainer.h"
#include "dist/dist.h"

/* Options shared by both paths; negative / NULL values mean "not given". */
typedef struct train_opts {
  int task, padding, optimizer, no_nesterov, no_flip, threads, input, content, crop_pad;
  int epochs, batch, train_limit, test_limit, seed, resume, quiet, det_width, seg_width;
  int allow_changes, micro;
  double max_loss_ratio;
  fb_dist *dist; /* the ranks of a data-parallel run (mpirun) */
  double width, lr, wd, momentum, warmup, ls, ema, final_lr, scale_min, scale_max;
  const char *arch, *data, *out;
} train_opts;

static void opts_unset(train_opts *o) {
  memset(o, 0, sizeof *o);
  o->padding = o->optimizer = o->input = o->content = o->crop_pad = o->epochs = o->batch = -1;
  o->seed = -1;
  o->width = o->lr = o->wd = o->momentum = o->warmup = o->ls = o->ema = o->final_lr = -1;
  o->scale_min = o->scale_max = o->max_loss_ratio = -1;
  o->data = "fashion-mnist";
}

#define SET_IF(dst, v) \
  do {                 \
    if ((v) >= 0) (dst) = (v); \
  } while (0)

/* Fashion-MNIST unless DATA is a directory in the standard formats (has a
 * train/ folder); a missing directory goes to the Fashion-MNIST loader, whose
 * message names the Debian package. */
static int is_fmnist(const char *data) {
  if (strcmp(data, "fashion-mnist") == 0) return 1;
  char *path = fb_path_join(data, "train");
  const int standard = fb_is_dir(path);
  free(path);
  return !standard;
}

static fb_optim_cfg optim_from(const train_opts *o, fb_optim_cfg dflt) {
  fb_optim_cfg c = dflt;
  if (o->optimizer == 0 && dflt.kind != FB_OPT_SGD) c = fb_optim_sgd_default();
  if (o->optimizer == 1 && dflt.kind != FB_OPT_ADAMW) c = fb_optim_adamw_default();
  if (o->optimizer >= 0 && o->lr < 0) c.lr = c.kind == FB_OPT_SGD ? 0.1f : 2e-3f;
  SET_IF(c.lr, (float)o->lr);
  SET_IF(c.weight_decay, (float)o->wd);
  SET_IF(c.momentum, (float)o->momentum);
  if (o->no_nesterov) c.nesterov = 0;
  return c;
}

static int run_fmnist(const train_opts *o) {
  fb_train_cfg c = fb_train_cfg_default();
  c.arch_path = o->arch;
  c.data_dir = o->data;
  if (o->out) c.out_dir = o->out;
  SET_IF(c.build.input_size, o->input);
  SET_IF(c.build.width, o->width);
  SET_IF(c.build.standard_padding, o->padding);
  SET_IF(c.epochs, o->epochs);
  SET_IF(c.batch, o->batch);
  c.optim = optim_from(o, c.optim);
  SET_IF(c.final_lr_frac, (float)o->final_lr);
  SET_IF(c.warmup_epochs, o->warmup);
  SET_IF(c.label_smoothing, (float)o->ls);
  c.aug = fb_aug_default(c.build.input_size);
  SET_IF(c.aug.content, o->content);
  SET_IF(c.aug.crop_pad, o->crop_pad);
  c.aug.hflip = !o->no_flip;
  SET_IF(c.ema_decay, (float)o->ema);
  if (o->seed >= 0) c.seed = (uint64_t)o->seed;
  c.train_limit = o->train_limit;
  c.test_limit = o->test_limit;
  c.resume = o->resume;
  c.quiet = o->quiet || o->dist->rank > 0;
  c.log = tool_logger();
  c.micro = o->micro;
  c.dist = o->dist;
  if (o->resume && o->allow_changes) c.resume = 2;
  if (o->max_loss_ratio >= 0) c.max_loss_ratio = o->max_loss_ratio;
  fb_status st = {0};
  fb_train_result r;
  if (fb_train_run(&c, &r, &st)) {
    tool_error("train", o->dist, &st);
    return 1;
  }
  if (o->dist->rank == 0)
    printf("{\"top1\": %.5f, \"top5\": %.5f, \"top1_raw\": %.5f, \"best_top1\": %.5f, "
         "\"final_loss\": %.5f, \"seconds\": %.1f, \"images_per_sec\": %.1f}\n",
         r.top1, r.top5, r.top1_raw, r.best_top1, r.final_loss, r.seconds, r.images_per_sec);
  return 0;
}

static int run_formats(const train_opts *o, int task) {
  fb_mt_cfg c = fb_mt_cfg_default(task);
  c.arch_path = o->arch;
  c.data_dir = o->data;
  char out_dir[64];
  snprintf(out_dir, sizeof out_dir, "runs/%s", fb_task_name((unsigned)task));
  c.out_dir = o->out ? o->out : out_dir;
  SET_IF(c.build.input_size, o->input);
  SET_IF(c.build.width, o->width);
  SET_IF(c.build.standard_padding, o->padding);
  c.build.det_width = o->det_width;
  c.build.seg_width = o->seg_width;
  SET_IF(c.epochs, o->epochs);
  SET_IF(c.batch, o->batch);
  c.optim = optim_from(o, c.optim);
  SET_IF(c.final_lr_frac, (float)o->final_lr);
  SET_IF(c.warmup_epochs, o->warmup);
  SET_IF(c.label_smoothing, (float)o->ls);
  SET_IF(c.scale_min, (float)o->scale_min);
  SET_IF(c.scale_max, (float)o->scale_max);
  c.hflip = !o->no_flip;
  SET_IF(c.ema_decay, (float)o->ema);
  if (o->seed >= 0) c.seed = (uint64_t)o->seed;
  c.train_limit = o->train_limit;
  c.val_limit = o->test_limit;
  c.threads = o->threads > 0 ? o->threads : 1;
  c.resume = o->resume;
  c.quiet = o->quiet || o->dist->rank > 0;
  c.log = tool_logger();
  c.micro = o->micro;
  c.dist = o->dist;
  if (o->resume && o->allow_changes) c.resume = 2;
  if (o->max_loss_ratio >= 0) c.max_loss_ratio = o->max_loss_ratio;
  fb_status st = {0};
  fb_mt_metrics m;
  if (fb_mt_train(&c, &m, &st)) {
    tool_error("train", o->dist, &st);
    return 1;
  }
  char js[4096];
  fb_mt_metrics_json(&m, js, sizeof js);
  if (o->dist->rank == 0) printf("%s\n", js);
  return 0;
}

/* "V" when both trainers default to it, else "F Fashion-MNIST, S standard formats"
 * (numbers as %g). */
static void two_defaults(char *buf, size_t n, const char *what, double f, double s) {
  if (f == s) snprintf(buf, n, "%s (default %g)", what, f);
  else snprintf(buf, n, "%s (default %g Fashion-MNIST, %g standard formats)", what, f, s);
}

int cmd_train(int argc, char **argv) {
  train_opts o;
  opts_unset(&o);
  /* help texts print the trainers' own defaults (fb_train_cfg_default for
   * Fashion-MNIST, fb_mt_cfg_default for the standard formats): they cannot drift */
  const fb_train_cfg F = fb_train_cfg_default();
  const fb_mt_cfg M = fb_mt_cfg_default(FB_TASK_CLS);
  char h_input[96], h_width[96], h_epochs[96], h_batch[96], h_lr[128], h_final[128], h_mom[96],
      h_wd[128], h_warm[96], h_ls[96], h_scale_min[128], h_scale_max[64], h_ema[256], h_detw[96],
      h_segw[96], h_seed[64], h_ratio[160], h_crop[96];
  two_defaults(h_input, sizeof h_input, "input resolution", F.build.input_size, M.build.input_size);
  two_defaults(h_width, sizeof h_width, "width multiplier", F.build.width, M.build.width);
  two_defaults(h_epochs, sizeof h_epochs, "epochs", F.epochs, M.epochs);
  two_defaults(h_batch, sizeof h_batch, "batch size", F.batch, M.batch);
  two_defaults(h_lr, sizeof h_lr, "peak learning rate", F.optim.lr, M.optim.lr);
  two_defaults(h_final, sizeof h_final, "final lr as a fraction of --lr", F.final_lr_frac,
               M.final_lr_frac);
  snprintf(h_mom, sizeof h_mom, "SGD momentum (default %g)", (double)F.optim.momentum);
  two_defaults(h_wd, sizeof h_wd, "weight decay, conv/linear weights only", F.optim.weight_decay,
               M.optim.weight_decay);
  two_defaults(h_warm, sizeof h_warm, "linear warm-up epochs", F.warmup_epochs, M.warmup_epochs);
  two_defaults(h_ls, sizeof h_ls, "label smoothing", F.label_smoothing, M.label_smoothing);
  snprintf(h_crop, sizeof h_crop, "Fashion-MNIST: random-crop padding (default input/8: %d at %d)",
           fb_aug_default(F.build.input_size).crop_pad, F.build.input_size);
  snprintf(h_scale_min, sizeof h_scale_min,
           "standard formats: scale augmentation range (default %g)", (double)M.scale_min);
  snprintf(h_scale_max, sizeof h_scale_max, "(default %g)", (double)M.scale_max);
  two_defaults(h_ema, sizeof h_ema, "weight EMA decay, evaluated and saved; 0: off", F.ema_decay,
               M.ema_decay);
  snprintf(h_ema + strlen(h_ema), sizeof h_ema - strlen(h_ema),
           ". Warmed up: step t uses min(X, (1+t)/(10+t)), so short runs do not keep the "
           "initial weights");
  snprintf(h_detw, sizeof h_detw, "detection head channels (default %d)",
           fb_fcos_cfg_default(1).width);
  snprintf(h_segw, sizeof h_segw, "segmentation head channels (default %d)",
           fb_seg_cfg_default().width);
  snprintf(h_seed, sizeof h_seed, "random seed (default %llu)", (unsigned long long)F.seed);
  snprintf(h_ratio, sizeof h_ratio, "stop as diverged when a loss exceeds X times its recent "
           "mean (default %g; 0: only non-finite losses)", F.max_loss_ratio);
  const arg_opt opts[] = {
      {"--task", ARG_CHOICE, &o.task, 0, 0, "cls|det|seg", "task to train (default cls)"},
      {"--arch", ARG_STRING, &o.arch, 0, 0, NULL, "arch file (JSON), required"},
      {"--data", ARG_STRING, &o.data, 0, 0, NULL,
       "'fashion-mnist' (Debian package, default), a Fashion-MNIST directory, or a data "
       "directory in the standard formats (DIR/train, DIR/val; see docs)"},
      {"--out", ARG_STRING, &o.out, 0, 0, NULL, "output directory (default runs/TASK)"},
      {"--input", ARG_INT, &o.input, 8, 1024, NULL, h_input},
      {"--width", ARG_DOUBLE, &o.width, 0.05, 4.0, NULL, h_width},
      {"--padding", ARG_CHOICE, &o.padding, 0, 0, "explicit|standard",
       "explicit: the arch file's paddings; standard: k/2 everywhere (default for det/seg "
       "and folders)"},
      {"--epochs", ARG_INT, &o.epochs, 1, 100000, NULL, h_epochs},
      {"--batch", ARG_INT, &o.batch, 1, 65536, NULL, h_batch},
      {"--optimizer", ARG_CHOICE, &o.optimizer, 0, 0, "sgd|adamw",
       "optimizer (default sgd for Fashion-MNIST, adamw otherwise)"},
      {"--lr", ARG_DOUBLE, &o.lr, 1e-8, 100, NULL, h_lr},
      {"--final-lr", ARG_DOUBLE, &o.final_lr, 0, 1, NULL, h_final},
      {"--momentum", ARG_DOUBLE, &o.momentum, 0, 0.9999, NULL, h_mom},
      {"--no-nesterov", ARG_FLAG, &o.no_nesterov, 0, 0, NULL, "plain momentum"},
      {"--wd", ARG_DOUBLE, &o.wd, 0, 1, NULL, h_wd},
      {"--warmup-epochs", ARG_DOUBLE, &o.warmup, 0, 1000, NULL, h_warm},
      {"--label-smoothing", ARG_DOUBLE, &o.ls, 0, 0.999, NULL, h_ls},
      {"--content", ARG_INT, &o.content, 1, 1024, NULL,
       "Fashion-MNIST: side the 28x28 image is resized to (default 7/8 of --input)"},
      {"--crop-pad", ARG_INT, &o.crop_pad, 0, 512, NULL, h_crop},
      {"--scale-min", ARG_DOUBLE, &o.scale_min, 0.05, 10, NULL, h_scale_min},
      {"--scale-max", ARG_DOUBLE, &o.scale_max, 0.05, 10, NULL, h_scale_max},
      {"--no-flip", ARG_FLAG, &o.no_flip, 0, 0, NULL, "no random horizontal flips"},
      {"--ema", ARG_DOUBLE, &o.ema, 0, 0.999999, NULL, h_ema},
      {"--det-width", ARG_INT, &o.det_width, 8, 1024, NULL, h_detw},
      {"--seg-width", ARG_INT, &o.seg_width, 8, 1024, NULL, h_segw},
      {"--seed", ARG_INT, &o.seed, 0, 2147483647, NULL, h_seed},
      {"--threads", ARG_INT, &o.threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--train-limit", ARG_INT, &o.train_limit, 1, 100000000, NULL, "first N training images"},
      {"--test-limit", ARG_INT, &o.test_limit, 1, 100000000, NULL,
       "evaluate on the first N test/val images"},
      {"--resume", ARG_FLAG, &o.resume, 0, 0, NULL,
       "continue from OUT/checkpoint.safetensors (with the run's options; only --epochs, "
       "--threads and --quiet may change)"},
      {"--allow-changes", ARG_FLAG, &o.allow_changes, 0, 0, NULL,
       "with --resume: accept other options, e.g. a lower --lr after a divergence"},
      {"--max-loss-ratio", ARG_DOUBLE, &o.max_loss_ratio, 0, 1e9, NULL, h_ratio},
      {"--quiet", ARG_FLAG, &o.quiet, 0, 0, NULL, "no progress output"},
      {"--micro-batches", ARG_INT, &o.micro, 1, 4096, NULL,
       "split each batch into M forward/backward passes whose gradients are averaged before "
       "the update (gradient accumulation: the memory of batch/M; BN statistics per "
       "micro-batch). Under mpirun, --batch is the global batch, split over the ranks too"},
  };
  const arg_spec spec = {"fbnet train --task cls|det|seg --arch ARCH --data DATA [options]",
                         "Trains a network described by an arch file. Writes OUT/weights."
                         "safetensors (EMA weights when --ema > 0),\nOUT/checkpoint.safetensors "
                         "(each epoch, for --resume) and OUT/log.jsonl (one line per epoch).",
                         opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!o.arch) {
    fprintf(stderr, "fbnet train: --arch is required (see --help)\n");
    return 2;
  }
  if (o.threads) omp_set_num_threads(o.threads);
  const int task = (int)fb_task_at(o.task)->id;
  if (task != FB_TASK_CLS && strcmp(o.data, "fashion-mnist") == 0) {
    fprintf(stderr, "fbnet train: --task %s needs --data DIR in the standard formats (make demo "
            "data with 'fbnet data scenes --out DIR')\n", fb_task_name(task));
    return 2;
  }
  fb_dist dist;
  fb_status st = {0};
  if (fb_dist_start(NULL, NULL, &dist, &st)) {
    fprintf(stderr, "fbnet train: error: %s\n", st.msg);
    return 1;
  }
  o.dist = &dist;
  rc = task == FB_TASK_CLS && is_fmnist(o.data) ? run_fmnist(&o) : run_formats(&o, task);
  if (rc == 0 && !o.quiet) tool_dist_summary("train", &dist);
  fb_dist_stop(&dist);
  return rc;
}
