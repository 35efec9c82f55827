/* fbnet eval / fbnet predict: metrics of saved weights, and predictions in the
 * standard formats (COCO results JSON, PNG masks, a CSV of classes). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "api/model_info.h"
#include "core/status.h"
#include "commands.h"
#include "term_log.h"
#include "data/fmnist.h"
#include "data/formats.h"
#include "data/labels.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/mt_trainer.h"
#include "train/trainer.h"

/* The network of the weights, planned for inference at `batch`, weights loaded. */
static fb_net *build_net(const char *arch_path, const fb_model_info *m, const fb_build_opts *b,
                         int batch, const char *weights, fb_status *st) {
  fb_arch *arch = fb_model_info_arch(weights, arch_path, m, st);
  if (!arch) return NULL;
  fb_net *net = fb_net_build(arch, b, 1, st);
  fb_arch_free(arch);
  if (net && (fb_net_plan_inference(net, batch, st) || fb_weights_load(weights, net, st))) {
    fb_net_free(net);
    return NULL;
  }
  return net;
}

static int eval_fmnist(const char *arch, const fb_model_info *mm, const char *weights,
                       const char *data, fb_build_opts *b, int batch, int limit, int json,
                       fb_status *st) {
  b->in_channels = 1;
  fb_net *net = build_net(arch, mm, b, batch, weights, st);
  if (!net) return -1;
  fb_dataset_u8 test = {0};
  int rc = -1;
  double top1, top5;
  fb_aug_cfg aug = fb_aug_default(b->input_size);
  if (b->input_content > 0) aug.content = b->input_content;
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

static void print_metrics(const fb_mt_metrics *m, int json, const char *pred_dir) {
  char js[4096];
  fb_mt_metrics_json(m, js, sizeof js);
  if (json) {
    printf("%s\n", js);
    return;
  }
  if (!m->labelled) {
    printf("%d images, task %s: no labels, so no metrics", m->images, fb_task_name(m->task));
    if (pred_dir) printf("; predictions in %s", pred_dir);
    printf("\n");
    return;
  }
  fb_strbuf b = {0};
  const fb_task_row *r = fb_task_row_of((unsigned)m->task);
  if (r) r->metrics_text(m, &b);
  printf("%d images, task %s:%s\n", m->images, fb_task_name(m->task), fb_sb_str(&b));
  fb_sb_free(&b);
}

typedef struct eval_args {
  int task, json, batch, threads, limit, input, padding, top_k;
  double width;
  const char *arch, *weights, *data, *split, *images, *out, *gt, *results;
} eval_args;

/* 1 when dir is a labelled classification folder for this model: only
 * sub-folders at its top, each named after one of the model's classes (any
 * sub-folders when the weights carry no class names and their number equals
 * the model's classes). */
static int is_class_folder(const char *dir, const fb_mt_dataset *model, int num_classes) {
  char **subs = NULL, **files = NULL;
  int n_subs = 0, n_files = 0, ok = 0;
  fb_status ignore = {0};
  if (fb_list_dir(dir, 1, &subs, &n_subs, &ignore) == 0 &&
      fb_list_dir(dir, 0, &files, &n_files, &ignore) == 0 && n_files == 0 && n_subs > 0) {
    ok = 1;
    for (int k = 0; k < n_subs && ok; k++)
      ok = model->class_names ? fb_name_index(model->class_names, model->num_classes, subs[k]) >= 0
                              : n_subs == num_classes;
  }
  for (int k = 0; k < n_subs; k++) free(subs[k]);
  for (int k = 0; k < n_files; k++) free(files[k]);
  free(subs);
  free(files);
  return ok;
}

/* Classification labels in the model's class order; the model's names for
 * a set without labels. */
static int adopt_classes(fb_mt_dataset *d, const fb_mt_dataset *model, int num_classes,
                         const char *what, fb_status *st) {
  if (model->class_names) {
    if (model->num_classes != num_classes)
      return fb_fail(st, "weights: %d class names for %d classes", model->num_classes,
                     num_classes);
    return fb_labels_map_classes(d, model, what, st); /* also names an unlabelled set */
  }
  if (d->class_names && d->num_classes != num_classes)
    return fb_fail(st, "%s: %d classes, the model has %d (its weights name no classes, so the "
                   "folders must be its classes in sorted order)", what, d->num_classes,
                   num_classes);
  if (d->class_names)
    fprintf(stderr, "warning: the weights name no classes (trained by an older fbnet): the "
            "class folders of %s are taken in sorted order as the model's classes\n", what);
  return 0;
}

/* Detection: the data's categories must be the model's (same COCO ids in the
 * same order); a set without boxes takes the model's (ids 1..K for weights
 * that do not name them). */
static int adopt_categories(fb_mt_dataset *d, const fb_mt_dataset *model, int num_cats,
                            const char *what, fb_status *st) {
  if (d->cat_ids) {
    int same = d->num_cats == num_cats;
    for (int k = 0; same && model->cat_ids && k < num_cats; k++)
      same = d->cat_ids[k] == model->cat_ids[k];
    if (!same)
      return fb_fail(st, "%s: its %d categories are not the %d the model was trained on (same "
                     "COCO ids in the same order)", what, d->num_cats, num_cats);
    return 0;
  }
  d->num_cats = num_cats;
  d->cat_ids = fb_xmalloc((size_t)(num_cats > 0 ? num_cats : 1) * sizeof *d->cat_ids);
  d->cat_names = fb_xcalloc((size_t)(num_cats > 0 ? num_cats : 1), sizeof *d->cat_names);
  for (int k = 0; k < num_cats; k++) {
    d->cat_ids[k] = model->cat_ids && k < model->num_cats ? model->cat_ids[k] : k + 1;
    if (model->cat_names && k < model->num_cats) d->cat_names[k] = fb_xstrdup(model->cat_names[k]);
  }
  return 0;
}

/* The images to evaluate or predict on, in the model's label space. */
static int load_data(const eval_args *a, int task, int predict, const fb_mt_dataset *model,
                     const fb_build_opts *b, fb_mt_dataset *d, fb_status *st) {
  const char *what = a->images ? a->images : a->data;
  const int want_c = b->in_channels == 1 ? 0 : 3; /* grey models: the loader converts colour */
  int rc;
  if (!a->images && strcmp(a->data, "fashion-mnist") == 0) {
    fb_dataset_u8 test = {0};
    rc = fb_fmnist_load(a->data, 0, &test, st);
    if (rc == 0) fb_fmnist_to_mt(&test, a->limit, "test", d);
    fb_dataset_u8_free(&test);
  } else if (a->images && task == FB_TASK_CLS && is_class_folder(a->images, model, b->num_classes))
    rc = fb_imagefolder_load(a->images, want_c, d, st);
  else if (a->images && !predict)
    return fb_fail(st, "%s: no labels to score (eval --images needs one sub-folder per class, "
                   "named after the model's classes; det/seg need --data DIR with ground "
                   "truth): use 'fbnet predict' for plain images", a->images);
  else if (a->images)
    rc = fb_imagetree_load(a->images, want_c, d, st);
  else
    rc = fb_mt_load_split(task, a->data, a->split, a->limit, d, st);
  if (rc) return -1;
  if (task == FB_TASK_CLS) return adopt_classes(d, model, b->num_classes, what, st);
  if (task == FB_TASK_DET) return adopt_categories(d, model, b->num_cats, what, st);
  if (d->num_seg_classes && d->num_seg_classes != b->num_seg_classes)
    return fb_fail(st, "%s: %d segmentation classes, the model has %d", what, d->num_seg_classes,
                   b->num_seg_classes);
  return 0;
}

static int eval_formats(const eval_args *a, const fb_model_info *mm, int task, fb_build_opts *b,
                        const char *pred_dir, fb_status *st) {
  if (b->in_channels != 3 && (b->in_channels != 1 || task != FB_TASK_CLS))
    return fb_fail(st, "%s: a %d-channel model has only a classifier (task cls)", a->weights,
                   b->in_channels);
  if (fb_model_info_need_task(a->weights, b, (unsigned)task, st)) return -1;
  fb_mt_dataset d;
  memset(&d, 0, sizeof d);
  if (load_data(a, task, pred_dir != NULL, &mm->names, b, &d, st)) {
    fb_mt_dataset_free(&d);
    return -1;
  }
  b->tasks = (unsigned)task;
  fb_net *net = build_net(a->arch, mm, b, a->batch, a->weights, st);
  fb_mt_metrics m;
  const fb_eval_opts o = {.threads = a->threads > 0 ? a->threads : 1, .pred_dir = pred_dir,
                          .top_k = a->top_k, .progress = 1, .log = tool_logger()};
  int rc = net ? fb_mt_evaluate(net, &d, task, &o, &m, st) : -1;
  if (rc == 0) print_metrics(&m, a->json, pred_dir);
  fb_net_free(net);
  fb_mt_dataset_free(&d);
  return rc;
}

/* fbnet eval --gt GT.json --results R.json: any COCO results file scored
 * against a COCO ground truth, no model involved. */
static int eval_results_file(const eval_args *a, fb_status *st) {
  fb_mt_dataset gt;
  fb_det *dets = NULL;
  int n = 0, rc = -1;
  fb_mt_metrics m;
  if (fb_coco_load(a->gt, NULL, 3, &gt, st)) return -1;
  if (fb_coco_load_results(a->results, gt.cat_ids, gt.num_cats, &dets, &n, st) == 0) {
    fb_status ev = {0};
    rc = fb_eval_det_results(&gt, dets, n, &m, &ev);
    if (rc == 0) print_metrics(&m, a->json, NULL);
    else fb_fail(st, "%s: %s", a->results, ev.msg); /* the eval's message lacks the file */
  }
  free(dets);
  fb_mt_dataset_free(&gt);
  return rc;
}

static int run(int argc, char **argv, int predict) {
  eval_args a;
  memset(&a, 0, sizeof a);
  a.batch = 50;
  a.padding = -1;
  a.task = -1; /* cls, or det with --gt/--results */
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
       predict ? "any folder of images (searched recursively) instead of --data; for cls, "
                 "sub-folders named after the model's classes are labels (metrics printed)"
               : "a folder with one sub-folder per class (named after the model's classes) "
                 "instead of --data"},
      {"--out", ARG_STRING, &a.out, 0, 0, NULL,
       "predict: output directory, parents created (default preds)"},
      {"--top-k", ARG_INT, &a.top_k, 1, 1000, NULL, "predict --task cls: classes per image (default 5)"},
      {"--input", ARG_INT, &a.input, 8, 1024, NULL, "input size (default: from the weights)"},
      {"--width", ARG_DOUBLE, &a.width, 0.05, 4, NULL, "width multiplier (default: from weights)"},
      {"--padding", ARG_CHOICE, &a.padding, 0, 0, "explicit|standard",
       "padding mode (default: from the weights)"},
      {"--batch", ARG_INT, &a.batch, 1, 65536, NULL, "batch size (default 50)"},
      {"--test-limit", ARG_INT, &a.limit, 1, 100000000, NULL, "first N images only"},
      {"--threads", ARG_INT, &a.threads, 1, 1024, NULL, "OpenMP threads"},
      {"--json", ARG_FLAG, &a.json, 0, 0, NULL, "print one JSON object"},
      {"--gt", ARG_STRING, &a.gt, 0, 0, NULL,
       "eval: COCO ground truth (JSON) to score --results against; no model, no images"},
      {"--results", ARG_STRING, &a.results, 0, 0, NULL,
       "eval: a COCO results file (image_id, category_id, bbox, score) to score against --gt"},
  };
  const arg_spec spec = {
      predict ? "fbnet predict --task cls|det|seg [--arch ARCH] --weights W "
                "--data DIR|--images DIR --out DIR"
              : "fbnet eval --task cls|det|seg [--arch ARCH] --weights W --data DATA [options]",
      predict ? "Writes predictions keyed by each image's path under the folder:\n"
                "  cls -> OUT/predictions.csv and .json (top-k classes with probabilities)\n"
                "  det -> OUT/detections.json (COCO results) + OUT/images.json (id -> file_name)\n"
                "  seg -> OUT/masks/<path>.png (class index per pixel, the image's own size)\n"
                "Prints metrics when the data has labels."
              : "Evaluates saved weights: top-1/top-5 (cls), COCO AP (det), mIoU and pixel "
                "accuracy (seg).\n"
                "  fbnet eval --task det --gt GT.json --results R.json scores any COCO results "
                "file\n  as the reference COCO evaluation does (scores in double; a detection "
                "on an image\n  the ground truth lacks is an error).",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  const char *cmd = predict ? "fbnet predict" : "fbnet eval";
  if (a.gt || a.results) {
    fb_status st = {0};
    if (predict || !a.gt || !a.results || a.weights || (a.task != -1 && a.task != 1)) {
      fprintf(stderr, "%s: --gt and --results go together, with --task det and without "
              "--weights (see --help)\n", cmd);
      return 2;
    }
    if (eval_results_file(&a, &st)) {
      fprintf(stderr, "%s: error: %s\n", cmd, st.msg);
      return 1;
    }
    return 0;
  }
  if (a.task < 0) a.task = 0;
  if (!a.weights) {
    fprintf(stderr, "%s: --weights is required (see --help)\n", cmd);
    return 2;
  }
  if (a.threads) omp_set_num_threads(a.threads);
  const int task = (int)fb_task_at(a.task)->id;
  fb_status st = {0};
  fb_model_info mm;
  if (fb_model_info_read(a.weights, &mm, &st)) {
    fprintf(stderr, "%s: error: %s\n", cmd, st.msg);
    fb_model_info_free(&mm);
    return 1;
  }
  if (fb_model_info_need_arch(a.weights, a.arch, &mm, &st)) {
    fprintf(stderr, "%s: %s\n", cmd, st.msg);
    fb_model_info_free(&mm);
    return 2;
  }
  fb_build_opts *b = &mm.b;
  if (a.input) b->input_size = a.input;
  if (a.width > 0) b->width = a.width;
  if (a.padding >= 0) b->standard_padding = a.padding == 1;
  int fmnist = task == FB_TASK_CLS && !a.images && strcmp(a.data, "fashion-mnist") == 0;
  if (fmnist && !predict) {
    b->tasks = FB_TASK_CLS;
    rc = eval_fmnist(a.arch, &mm, a.weights, a.data, b, a.batch, a.limit, a.json, &st);
  } else {
    rc = eval_formats(&a, &mm, task, b, predict ? (a.out ? a.out : "preds") : NULL, &st);
  }
  fb_model_info_free(&mm);
  if (rc) {
    fprintf(stderr, "%s: error: %s\n", cmd, st.msg);
    return 1;
  }
  return 0;
}

int cmd_eval(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_predict(int argc, char **argv) { return run(argc, argv, 1); }
