/* fbnet eval / fbnet predict: metrics of saved weights, and predictions in the
 * standard formats (COCO results JSON, PNG masks, a CSV of classes). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "core/status.h"
#include "commands.h"
#include "data/fmnist.h"
#include "data/formats.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "train/checkpoint.h"
#include "train/mt_trainer.h"
#include "train/trainer.h"

/* Build options recorded in the weights file, and the arch file's JSON text
 * when the weights carry it (metadata "arch_json"; *arch_text malloc'd, NULL
 * for weights written before fbnet stored it). */
static int options_from_weights(const char *path, fb_build_opts *b, char **arch_text,
                                fb_status *st) {
  fb_st_file f;
  if (fb_safetensors_read(path, &f, st)) return -1;
  const unsigned tasks = b->tasks; /* the command's task, not the trained ones */
  fb_weights_build_opts(&f, b);
  b->tasks = tasks;
  const char *v;
  *arch_text = (v = fb_st_meta(&f, "arch_json")) ? fb_xstrdup(v) : NULL;
  fb_st_file_free(&f);
  return 0;
}

/* The arch from --arch when given, else from the weights' arch_json. */
static fb_net *build_net(const char *arch_path, const char *arch_text, const fb_build_opts *b,
                         int batch, const char *weights, fb_status *st) {
  fb_arch *arch = arch_path ? fb_arch_load(arch_path, st) : fb_arch_parse(arch_text, weights, st);
  if (!arch) return NULL;
  fb_net *net = fb_net_build(arch, b, 1, st);
  fb_arch_free(arch);
  if (net && (fb_net_plan_inference(net, batch, st) || fb_weights_load(weights, net, st))) {
    fb_net_free(net);
    return NULL;
  }
  return net;
}

static int eval_fmnist(const char *arch, const char *arch_text, const char *weights,
                       const char *data, fb_build_opts *b, int batch, int limit, int json,
                       fb_status *st) {
  b->in_channels = 1;
  fb_net *net = build_net(arch, arch_text, b, batch, weights, st);
  if (!net) return -1;
  fb_dataset_u8 test = {0};
  int rc = -1;
  double top1, top5;
  fb_aug_cfg aug = fb_aug_default(b->input_size);
  if (fb_fmnist_load(data, 0, &test, st) || fb_eval_cls(net, &test, &aug, limit, &top1, &top5, st))
    goto done;
  int n = limit > 0 && limit < test.n ? limit : test.n;
  if (json)
    printf("{\"task\": \"cls\", \"images\": %d, \"top1\": %.5f, \"top5\": %.5f}\n", n, top1, top5);
  else
    printf("%d test images: top-1 %.2f%%  top-5 %.2f%%\n", n, 100 * top1, 100 * top5);
  rc = 0;
done:
  fb_dataset_u8_free(&test);
  fb_net_free(net);
  return rc;
}

static void print_metrics(const fb_mt_metrics *m, int json) {
  char js[4096];
  fb_mt_metrics_json(m, js, sizeof js);
  if (json) {
    printf("%s\n", js);
    return;
  }
  printf("%d images, task %s:", m->images, fb_task_name(m->task));
  if (m->task == FB_TASK_CLS) printf(" top-1 %.2f%%  top-5 %.2f%%\n", 100 * m->top1, 100 * m->top5);
  if (m->task == FB_TASK_SEG) printf(" mIoU %.4f  pixel accuracy %.4f\n", m->miou, m->pixel_acc);
  if (m->task == FB_TASK_DET) {
    printf("\n");
    for (int i = 0; i < FB_COCO_NSTATS; i++)
      printf("  %-6s %.4f\n", fb_coco_stat_names[i], m->coco[i]);
  }
}

typedef struct eval_args {
  int task, json, batch, threads, limit, input, padding;
  double width;
  const char *arch, *weights, *data, *split, *images, *out;
} eval_args;

static int eval_formats(const eval_args *a, const char *arch_text, int task, fb_build_opts *b,
                        const char *pred_dir, fb_status *st) {
  fb_mt_dataset d;
  int rc = a->images ? fb_imagefolder_load(a->images, 3, &d, st)
                     : fb_mt_load_split(task, a->data, a->split, a->limit, &d, st);
  if (rc) return -1;
  b->tasks = (unsigned)task;
  b->in_channels = 3;
  if (!a->images) fb_mt_build_opts_for_data(task, &d, b);
  if (task == FB_TASK_DET && !d.cat_ids && b->num_cats > 0) { /* images only: ids 1..K */
    d.num_cats = b->num_cats;
    d.cat_ids = fb_xmalloc((size_t)b->num_cats * sizeof *d.cat_ids);
    for (int k = 0; k < b->num_cats; k++) d.cat_ids[k] = k + 1;
  }
  fb_net *net = build_net(a->arch, arch_text, b, a->batch, a->weights, st);
  fb_mt_metrics m;
  rc = net ? fb_mt_evaluate(net, &d, task, a->threads > 0 ? a->threads : 1, pred_dir, &m, st) : -1;
  if (rc == 0) print_metrics(&m, a->json);
  fb_net_free(net);
  fb_mt_dataset_free(&d);
  return rc;
}

static int run(int argc, char **argv, int predict) {
  eval_args a;
  memset(&a, 0, sizeof a);
  a.batch = 50;
  a.padding = -1;
  a.data = "fashion-mnist";
  a.split = "val";
  const arg_opt opts[] = {
      {"--task", ARG_CHOICE, &a.task, 0, 0, "cls|det|seg", "task (default cls)"},
      {"--arch", ARG_STRING, &a.arch, 0, 0, NULL,
       "arch file (JSON); default: the arch stored in the weights (arch_json)"},
      {"--weights", ARG_STRING, &a.weights, 0, 0, NULL, "weights (.safetensors), required"},
      {"--data", ARG_STRING, &a.data, 0, 0, NULL,
       "'fashion-mnist' (default) or a data directory in the standard formats"},
      {"--split", ARG_STRING, &a.split, 0, 0, NULL, "split of --data (default val)"},
      {"--images", ARG_STRING, &a.images, 0, 0, NULL,
       "an image folder (class sub-folders) instead of --data; no metrics for det/seg"},
      {"--out", ARG_STRING, &a.out, 0, 0, NULL, "predict: output directory (default preds)"},
      {"--input", ARG_INT, &a.input, 8, 1024, NULL, "input size (default: from the weights)"},
      {"--width", ARG_DOUBLE, &a.width, 0.05, 4, NULL, "width multiplier (default: from weights)"},
      {"--padding", ARG_CHOICE, &a.padding, 0, 0, "explicit|standard",
       "padding mode (default: from the weights)"},
      {"--batch", ARG_INT, &a.batch, 1, 65536, NULL, "batch size (default 50)"},
      {"--test-limit", ARG_INT, &a.limit, 1, 100000000, NULL, "first N images only"},
      {"--threads", ARG_INT, &a.threads, 1, 1024, NULL, "OpenMP threads"},
      {"--json", ARG_FLAG, &a.json, 0, 0, NULL, "print one JSON object"},
  };
  const arg_spec spec = {
      predict ? "fbnet predict --task cls|det|seg [--arch ARCH] --weights W "
                "--data DIR|--images DIR --out DIR"
              : "fbnet eval --task cls|det|seg [--arch ARCH] --weights W --data DATA [options]",
      predict ? "Writes predictions: det -> OUT/detections.json (COCO results), seg -> "
                "OUT/masks/NAME.png,\ncls -> OUT/predictions.csv; prints metrics when the data "
                "has labels."
              : "Evaluates saved weights: top-1/top-5 (cls), COCO AP (det), mIoU and pixel "
                "accuracy (seg).",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  const char *cmd = predict ? "fbnet predict" : "fbnet eval";
  if (!a.weights) {
    fprintf(stderr, "%s: --weights is required (see --help)\n", cmd);
    return 2;
  }
  if (a.threads) omp_set_num_threads(a.threads);
  static const int tasks[3] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_SEG};
  int task = tasks[a.task];
  fb_status st = {{0}};
  fb_build_opts b = fb_build_opts_default();
  b.num_classes = FB_FMNIST_CLASSES;
  char *arch_text = NULL;
  if (options_from_weights(a.weights, &b, &arch_text, &st)) {
    fprintf(stderr, "%s: error: %s\n", cmd, st.msg);
    return 1;
  }
  if (!a.arch && !arch_text) {
    fprintf(stderr, "%s: %s has no arch_json metadata (weights written by an older fbnet): "
            "pass --arch ARCH with the arch file it was trained from\n", cmd, a.weights);
    return 2;
  }
  if (a.input) b.input_size = a.input;
  if (a.width > 0) b.width = a.width;
  if (a.padding >= 0) b.standard_padding = a.padding == 1;
  int fmnist = task == FB_TASK_CLS && !a.images && strcmp(a.data, "fashion-mnist") == 0;
  if (fmnist && predict) {
    fprintf(stderr, "%s: predictions need --data DIR or --images DIR in the standard formats\n", cmd);
    free(arch_text);
    return 2;
  }
  rc = fmnist ? eval_fmnist(a.arch, arch_text, a.weights, a.data, &b, a.batch, a.limit, a.json, &st)
              : eval_formats(&a, arch_text, task, &b, predict ? (a.out ? a.out : "preds") : NULL,
                             &st);
  free(arch_text);
  if (rc) {
    fprintf(stderr, "%s: error: %s\n", cmd, st.msg);
    return 1;
  }
  return 0;
}

int cmd_eval(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_predict(int argc, char **argv) { return run(argc, argv, 1); }
