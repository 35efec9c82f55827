/* fbnet train: train an arch file on a task. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "train/trainer.h"

enum { TASK_CLS, TASK_DET, TASK_SEG };

int cmd_train(int argc, char **argv) {
  fb_train_cfg c = fb_train_cfg_default();
  int task = TASK_CLS, padding = 0, optimizer = 0, no_nesterov = 0, no_flip = 0, threads = 0;
  int input = c.build.input_size, content = 0, crop_pad = -1, epochs = c.epochs, batch = c.batch;
  int train_limit = 0, test_limit = 0, seed = (int)c.seed;
  double width = c.build.width, lr = c.optim.lr, wd = c.optim.weight_decay;
  double momentum = c.optim.momentum, warmup = c.warmup_epochs, ls = c.label_smoothing;
  double ema = c.ema_decay, final_lr = c.final_lr_frac;
  const char *arch = NULL;
  const arg_opt opts[] = {
      {"--task", ARG_CHOICE, &task, 0, 0, "cls|det|seg", "task to train"},
      {"--arch", ARG_STRING, &arch, 0, 0, NULL, "arch file (JSON), required"},
      {"--data", ARG_STRING, &c.data_dir, 0, 0, NULL,
       "Fashion-MNIST directory, or 'fashion-mnist' for the Debian package (default)"},
      {"--out", ARG_STRING, &c.out_dir, 0, 0, NULL, "output directory (default runs/cls)"},
      {"--input", ARG_INT, &input, 8, 1024, NULL, "input resolution (default 64)"},
      {"--content", ARG_INT, &content, 1, 1024, NULL,
       "side the 28x28 image is resized to inside the input (default 7/8 of --input)"},
      {"--width", ARG_DOUBLE, &width, 0.05, 4.0, NULL, "width multiplier (default 0.5)"},
      {"--padding", ARG_CHOICE, &padding, 0, 0, "explicit|standard",
       "explicit: the arch file's paddings; standard: k/2 everywhere (for inputs < 64)"},
      {"--epochs", ARG_INT, &epochs, 1, 100000, NULL, "epochs (default 20)"},
      {"--batch", ARG_INT, &batch, 1, 65536, NULL, "batch size (default 64)"},
      {"--optimizer", ARG_CHOICE, &optimizer, 0, 0, "sgd|adamw", "optimizer (default sgd)"},
      {"--lr", ARG_DOUBLE, &lr, 1e-8, 100, NULL, "peak learning rate (default 0.2)"},
      {"--final-lr", ARG_DOUBLE, &final_lr, 0, 1, NULL,
       "final learning rate as a fraction of --lr (default 0)"},
      {"--momentum", ARG_DOUBLE, &momentum, 0, 0.9999, NULL, "SGD momentum (default 0.9)"},
      {"--no-nesterov", ARG_FLAG, &no_nesterov, 0, 0, NULL, "plain momentum instead of Nesterov"},
      {"--wd", ARG_DOUBLE, &wd, 0, 1, NULL,
       "weight decay (conv/linear weights only; default 5e-5)"},
      {"--warmup-epochs", ARG_DOUBLE, &warmup, 0, 1000, NULL, "linear warm-up (default 1)"},
      {"--label-smoothing", ARG_DOUBLE, &ls, 0, 0.999, NULL, "label smoothing (default 0.1)"},
      {"--crop-pad", ARG_INT, &crop_pad, 0, 512, NULL, "random-crop padding (default input/8)"},
      {"--no-flip", ARG_FLAG, &no_flip, 0, 0, NULL, "no random horizontal flips"},
      {"--ema", ARG_DOUBLE, &ema, 0, 0.999999, NULL,
       "weight EMA decay, evaluated and saved (0: off; default 0.999)"},
      {"--seed", ARG_INT, &seed, 0, 2147483647, NULL, "random seed (default 1)"},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--train-limit", ARG_INT, &train_limit, 1, 100000000, NULL,
       "train on the first N images only"},
      {"--test-limit", ARG_INT, &test_limit, 1, 100000000, NULL,
       "evaluate on the first N test images only"},
      {"--resume", ARG_FLAG, &c.resume, 0, 0, NULL,
       "continue from OUT/checkpoint.safetensors"},
      {"--quiet", ARG_FLAG, &c.quiet, 0, 0, NULL, "no progress output"},
  };
  const arg_spec spec = {"fbnet train --task cls --arch ARCH [options]",
                         "Trains a network described by an arch file. Writes OUT/weights."
                         "safetensors (EMA weights when --ema > 0),\nOUT/checkpoint.safetensors "
                         "(each epoch, for --resume) and OUT/log.jsonl (one line per epoch).",
                         opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!arch) {
    fprintf(stderr, "fbnet train: --arch is required (see --help)\n");
    return 2;
  }
  if (task != TASK_CLS) {
    fprintf(stderr, "fbnet train: --task %s is not available in this version; only cls\n",
            task == TASK_DET ? "det" : "seg");
    return 2;
  }
  if (threads) omp_set_num_threads(threads);
  c.arch_path = arch;
  c.build.input_size = input;
  c.build.width = width;
  c.build.standard_padding = padding == 1;
  c.epochs = epochs;
  c.batch = batch;
  c.optim = optimizer ? fb_optim_adamw_default() : fb_optim_sgd_default();
  c.optim.lr = (float)lr;
  c.optim.weight_decay = (float)wd;
  c.optim.momentum = (float)momentum;
  c.optim.nesterov = !no_nesterov;
  c.final_lr_frac = (float)final_lr;
  c.warmup_epochs = warmup;
  c.label_smoothing = (float)ls;
  c.aug = fb_aug_default(input);
  if (content) c.aug.content = content;
  if (crop_pad >= 0) c.aug.crop_pad = crop_pad;
  c.aug.hflip = !no_flip;
  c.ema_decay = (float)ema;
  c.seed = (uint64_t)seed;
  c.train_limit = train_limit;
  c.test_limit = test_limit;
  fb_status st = {{0}};
  fb_train_result r;
  if (fb_train_run(&c, &r, &st)) {
    fprintf(stderr, "fbnet train: error: %s\n", st.msg);
    return 1;
  }
  printf("{\"top1\": %.5f, \"top5\": %.5f, \"top1_raw\": %.5f, \"best_top1\": %.5f, "
         "\"final_loss\": %.5f, \"seconds\": %.1f, \"images_per_sec\": %.1f}\n",
         r.top1, r.top5, r.top1_raw, r.best_top1, r.final_loss, r.seconds, r.images_per_sec);
  return 0;
}
