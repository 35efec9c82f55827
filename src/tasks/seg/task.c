/* The segmentation row of the task table (src/tasks/task.h): the dense head,
 * PNG mask sets, mIoU and pixel accuracy, predicted masks as PNG files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "nn/net.h"
#include "tasks/seg/metrics.h"
#include "tasks/task.h"
#include "train/evaluate.h"

/* The light dense head (seghead.h): every level to stride 4, fused, logits
 * upsampled to the input size. */
static int seg_add_head(fb_net *net, const int *feat, const int *strides, int n, fb_status *st) {
  fb_seg_cfg cfg = fb_seg_cfg_default();
  cfg.num_classes = net->opts.num_seg_classes;
  if (net->opts.seg_width > 0) cfg.width = net->opts.seg_width;
  return fb_seg_build(&net->g, &net->seg, &cfg, feat, strides, n, net->opts.input_size, st);
}

static int seg_roots(const fb_net *net, int *roots) {
  if (!(net->tasks & FB_TASK_SEG)) return 0;
  roots[0] = net->seg.loss;
  return 1;
}

static int seg_outputs(const fb_net *net, int *nodes) {
  if (!(net->tasks & FB_TASK_SEG)) return 0;
  nodes[0] = net->seg.logits;
  return 1;
}

static int seg_set_targets(fb_net *net, const fb_batch *b, fb_status *st) {
  (void)st;
  fb_seg_targets(&net->seg, b, fb_graph_input_data(&net->g, net->seg.tgt));
  return 0;
}

/* DIR/<split>/images and DIR/<split>/masks */
static int seg_load_split(const char *dir, const char *split, fb_mt_dataset *d, fb_status *st) {
  char path[1200];
  return fb_path_in(path, sizeof path, dir, split, st) || fb_segset_load(path, 3, d, st) ? -1 : 0;
}

static void seg_head_from_data(const fb_mt_dataset *d, fb_build_opts *o) {
  o->num_seg_classes = d->num_seg_classes;
}

static int seg_head_size(const fb_mt_dataset *d) { return d->num_seg_classes; }

/* any image has a mask */
static int seg_has_labels(const fb_mt_dataset *d) {
  for (int i = 0; i < d->n; i++)
    if (d->s[i].mask) return 1;
  return 0;
}

/* ---- evaluation ----------------------------------------------------------- */

static int seg_eval_open(fb_task_eval *e, const fb_net *net, fb_status *st) {
  fb_confmat *cm = e->state = fb_xcalloc(1, sizeof *cm);
  if (e->o->pred_dir) {
    char *masks = fb_path_join(e->o->pred_dir, "masks");
    const int rc = fb_mkdir_p(masks, st);
    free(masks);
    if (rc) return -1;
  }
  return fb_confmat_init(cm, net->seg.cfg.num_classes, st);
}

/* OUT/masks/<file relative to the root, extension .png>, parents created. */
static int write_mask_pred(const char *pred_dir, const fb_mt_dataset *d, const fb_sample *s,
                           const uint8_t *pred, int S, const fb_batch *b, int i, fb_status *st) {
  uint8_t *m = fb_batch_mask_to_orig(b, i, pred, S, s->h, s->w);
  const char *rel = fb_sample_relname(d, s);
  const size_t n = strlen(pred_dir) + strlen(rel) + 16;
  char *path = fb_xmalloc(n);
  snprintf(path, n, "%s/masks/%s", pred_dir, rel);
  char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (dot && dot > slash) *dot = 0;
  strcat(path, ".png");
  slash = strrchr(path, '/');
  *slash = 0;
  int rc = fb_mkdir_p(path, st);
  *slash = '/';
  if (rc == 0) rc = fb_mask_write(path, m, s->h, s->w, st);
  free(path);
  free(m);
  return rc;
}

static int seg_eval_batch(fb_task_eval *e, fb_net *net, const fb_batch *b, fb_status *st) {
  const int S = b->size, K = net->seg.cfg.num_classes;
  const float *logits = fb_graph_output(&net->g, net->seg.logits);
  for (int i = 0; b->masks && i < b->n; i++) {
    const uint8_t *gt = b->masks + (size_t)i * S * S;
    if (fb_confmat_add_logits(e->state, gt, logits + (size_t)i * K * S * S, S, S, st)) return -1;
  }
  if (!e->o->pred_dir) return 0;
  uint8_t *pred = fb_xmalloc((size_t)S * S);
  int rc = 0;
  for (int i = 0; rc == 0 && i < b->n; i++) {
    fb_seg_predict(&net->seg, logits, i, S, pred);
    rc = write_mask_pred(e->o->pred_dir, e->d, &e->d->s[b->index[i]], pred, S, b, i, st);
  }
  free(pred);
  return rc;
}

static int seg_eval_finish(fb_task_eval *e, fb_mt_metrics *m, fb_status *st) {
  (void)st;
  if (!e->labelled) return 0;
  const fb_confmat *cm = e->state;
  m->seg_classes = cm->k;
  fb_seg_scores s = fb_confmat_scores(cm, m->class_iou);
  m->miou = s.miou;
  m->pixel_acc = s.pixel_acc;
  return 0;
}

static void seg_eval_free(fb_task_eval *e) {
  if (e->state) fb_confmat_free(e->state);
  free(e->state);
  e->state = NULL;
}

static double seg_headline(const fb_mt_metrics *m) { return m->miou; }

static void seg_metrics_json(const fb_mt_metrics *m, fb_strbuf *b) {
  fb_sb_printf(b, ", \"mIoU\": %.5f, \"pixel_acc\": %.5f, \"class_iou\": [", m->miou, m->pixel_acc);
  for (int c = 0; c < m->seg_classes; c++)
    fb_sb_printf(b, "%s%.4f", c ? ", " : "", m->class_iou[c]);
  fb_sb_puts(b, "]");
}

static void seg_metrics_text(const fb_mt_metrics *m, fb_strbuf *b) {
  fb_sb_printf(b, " mIoU %.4f  pixel accuracy %.4f", m->miou, m->pixel_acc);
}

const fb_task_row fb_task_seg_row = {
    .id = FB_TASK_SEG,
    .name = "seg",
    .title = "segmentation",
    .metric = "mIoU",
    .n_strides = 4,
    .strides = {4, 8, 16, 32},
    .default_paths = 0,
    .add_head = seg_add_head,
    .roots = seg_roots,
    .outputs = seg_outputs,
    .output_names = {"logits"},
    .output_ranks = {4},
    .set_targets = seg_set_targets,
    .load_split = seg_load_split,
    .head_from_data = seg_head_from_data,
    .head_size = seg_head_size,
    .proxy_lacks = "has no masks (label it with --seg-teacher)",
    .has_labels = seg_has_labels,
    .eval_open = seg_eval_open,
    .eval_batch = seg_eval_batch,
    .eval_finish = seg_eval_finish,
    .eval_free = seg_eval_free,
    .headline = seg_headline,
    .metrics_json = seg_metrics_json,
    .metrics_text = seg_metrics_text,
};
