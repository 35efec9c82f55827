/* The detection row of the task table (src/tasks/task.h): the FCOS head,
 * COCO JSON sets, the reference COCO evaluation (also class-agnostic and per
 * category), detections as a COCO results file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"
#include "nn/net.h"
#include "tasks/det/coco_eval.h"
#include "tasks/task.h"
#include "train/evaluate.h"

/* The FCOS head (fcos.h): laterals, towers shared across levels. */
static int det_add_head(fb_net *net, const int *feat, const int *strides, int n, fb_status *st) {
  fb_fcos_cfg cfg = fb_fcos_cfg_default(net->opts.num_cats);
  if (net->opts.det_width > 0) cfg.width = net->opts.det_width;
  if (net->opts.det_depth != 0) cfg.tower_depth = net->opts.det_depth < 0 ? 0 : net->opts.det_depth;
  return fb_fcos_build(&net->g, &net->det, &cfg, feat, strides, n, st);
}

static int det_roots(const fb_net *net, int *roots) {
  if (!(net->tasks & FB_TASK_DET)) return 0;
  roots[0] = net->det.loss_cls;
  roots[1] = net->det.loss_box;
  roots[2] = net->det.loss_ctr;
  return 3;
}

static int det_outputs(const fb_net *net, int *nodes) {
  if (!(net->tasks & FB_TASK_DET)) return 0;
  nodes[0] = net->det.cls;
  nodes[1] = net->det.box;
  nodes[2] = net->det.ctr;
  return 3;
}

static int det_set_targets(fb_net *net, const fb_batch *b, fb_status *st) {
  return fb_fcos_set_targets(&net->g, &net->det, b, st);
}

/* DIR/<split>.json with its images in DIR/<split>/images */
static int det_load_split(const char *dir, const char *split, fb_mt_dataset *d, fb_status *st) {
  char json[1200], images[1200], name[64];
  snprintf(name, sizeof name, "%s.json", split);
  if (fb_path_in(json, sizeof json, dir, name, st)) return -1;
  snprintf(name, sizeof name, "%s/images", split);
  if (fb_path_in(images, sizeof images, dir, name, st)) return -1;
  return fb_coco_load(json, images, 3, d, st);
}

static void det_head_from_data(const fb_mt_dataset *d, fb_build_opts *o) {
  o->num_cats = d->num_cats;
}

static int det_head_size(const fb_mt_dataset *d) { return d->num_cats; }

/* any image annotated (an image may have no box) */
static int det_has_labels(const fb_mt_dataset *d) {
  for (int i = 0; i < d->n; i++)
    if (d->s[i].has_boxes) return 1;
  return 0;
}

/* ---- evaluation ----------------------------------------------------------- */

typedef struct det_eval {
  fb_det *dets;
  int n, cap;
} det_eval;

static int det_eval_open(fb_task_eval *e, const fb_net *net, fb_status *st) {
  (void)net, (void)st;
  e->state = fb_xcalloc(1, sizeof(det_eval));
  return 0;
}

static int det_eval_batch(fb_task_eval *e, fb_net *net, const fb_batch *b, fb_status *st) {
  det_eval *a = e->state;
  int *ids = fb_xmalloc((size_t)b->n * sizeof *ids);
  for (int i = 0; i < b->n; i++) ids[i] = e->d->s[b->index[i]].image_id;
  fb_det *dets = NULL;
  int n = 0;
  int rc = fb_fcos_decode_graph(&net->g, &net->det, b, ids, &dets, &n, st);
  free(ids);
  if (rc) return -1;
  if (a->n + n > a->cap) {
    a->cap = 2 * (a->n + n);
    a->dets = fb_xrealloc(a->dets, (size_t)a->cap * sizeof *a->dets);
  }
  if (n) memcpy(a->dets + a->n, dets, (size_t)n * sizeof *dets);
  a->n += n;
  free(dets);
  return 0;
}

/* COCO stats with every box and detection in one category: separates
 * localisation from classification errors. */
static int coco_agnostic(const fb_mt_dataset *d, const fb_det *dets, int n, double *stats,
                         fb_status *st) {
  fb_mt_dataset g = *d;
  g.s = fb_xmalloc((size_t)d->n * sizeof *g.s);
  size_t total = 0;
  for (int i = 0; i < d->n; i++) total += (size_t)d->s[i].n_boxes;
  fb_box *boxes = fb_xmalloc((total ? total : 1) * sizeof *boxes);
  size_t at = 0;
  for (int i = 0; i < d->n; i++) {
    g.s[i] = d->s[i];
    g.s[i].boxes = boxes + at;
    for (int k = 0; k < d->s[i].n_boxes; k++, at++) {
      boxes[at] = d->s[i].boxes[k];
      boxes[at].cat = 0;
    }
  }
  int one_id = 1;
  g.num_cats = 1;
  g.cat_ids = &one_id;
  fb_det *dd = fb_xmalloc((size_t)(n ? n : 1) * sizeof *dd);
  for (int i = 0; i < n; i++) {
    dd[i] = dets[i];
    dd[i].box.cat = 0;
  }
  int rc = fb_coco_eval_bbox(&g, dd, n, stats, NULL, st);
  free(dd);
  free(boxes);
  free(g.s);
  return rc;
}

static void metrics_unset(const fb_mt_dataset *d, fb_mt_metrics *m) {
  for (int k = 0; k < FB_COCO_NSTATS; k++) m->coco[k] = m->coco_agnostic[k] = -1;
  m->det_cats = d->num_cats < 256 ? d->num_cats : 256;
  for (int c = 0; c < m->det_cats; c++) m->cat_ap[c] = -1;
}

/* COCO stats, per-category AP and the class-agnostic stats into m. */
static int metrics(const fb_mt_dataset *d, const fb_det *dets, int n, fb_mt_metrics *m,
                   fb_status *st) {
  double *cat_ap = fb_xcalloc((size_t)(d->num_cats > 0 ? d->num_cats : 1), sizeof *cat_ap);
  int rc = fb_coco_eval_bbox(d, dets, n, m->coco, cat_ap, st);
  for (int c = 0; c < m->det_cats; c++) m->cat_ap[c] = cat_ap[c];
  free(cat_ap);
  return rc || coco_agnostic(d, dets, n, m->coco_agnostic, st) ? -1 : 0;
}

int fb_eval_det_results(const fb_mt_dataset *gt, const fb_det *dets, int n, fb_mt_metrics *m,
                        fb_status *st) {
  memset(m, 0, sizeof *m);
  m->task = FB_TASK_DET;
  m->labelled = 1;
  for (int i = 0; i < gt->n; i++) m->images += gt->s[i].has_boxes || gt->s[i].n_boxes > 0;
  metrics_unset(gt, m);
  return metrics(gt, dets, n, m, st);
}

static int det_eval_finish(fb_task_eval *e, fb_mt_metrics *m, fb_status *st) {
  const det_eval *a = e->state;
  const fb_mt_dataset *d = e->d;
  metrics_unset(d, m);
  if (e->labelled && metrics(d, a->dets, a->n, m, st)) return -1;
  if (!e->o->pred_dir) return 0;
  char *res = fb_path_join(e->o->pred_dir, "detections.json");
  char *img = fb_path_join(e->o->pred_dir, "images.json");
  int rc = fb_coco_write_results(res, a->dets, a->n, d->cat_ids, st) ||
           fb_coco_write_gt(img, d, 1, st);
  free(res);
  free(img);
  return rc ? -1 : 0;
}

static void det_eval_free(fb_task_eval *e) {
  det_eval *a = e->state;
  if (a) free(a->dets);
  free(a);
  e->state = NULL;
}

static double det_headline(const fb_mt_metrics *m) { return m->coco[0]; }

static void det_metrics_json(const fb_mt_metrics *m, fb_strbuf *b) {
  for (int i = 0; i < FB_COCO_NSTATS; i++)
    fb_sb_printf(b, ", \"%s\": %.5f", fb_coco_stat_names[i], m->coco[i]);
  fb_sb_printf(b, ", \"AP_class_agnostic\": %.5f, \"AP50_class_agnostic\": %.5f",
               m->coco_agnostic[0], m->coco_agnostic[1]);
  fb_sb_puts(b, ", \"category_ap\": [");
  for (int c = 0; c < m->det_cats; c++) fb_sb_printf(b, "%s%.4f", c ? ", " : "", m->cat_ap[c]);
  fb_sb_puts(b, "]");
}

static void det_metrics_text(const fb_mt_metrics *m, fb_strbuf *b) {
  for (int i = 0; i < FB_COCO_NSTATS; i++)
    fb_sb_printf(b, "\n  %-6s %.4f", fb_coco_stat_names[i], m->coco[i]);
}

const fb_task_row fb_task_det_row = {
    .id = FB_TASK_DET,
    .name = "det",
    .title = "detection",
    .metric = "AP",
    .n_strides = 3,
    .strides = {8, 16, 32},
    .default_paths = 3,
    .add_head = det_add_head,
    .roots = det_roots,
    .outputs = det_outputs,
    .output_names = {"cls", "box", "ctr"},
    .output_ranks = {3, 3, 3},
    .set_targets = det_set_targets,
    .load_split = det_load_split,
    .head_from_data = det_head_from_data,
    .head_size = det_head_size,
    .proxy_lacks = "has no boxes (label it with --det-teacher)",
    .has_labels = det_has_labels,
    .eval_open = det_eval_open,
    .eval_batch = det_eval_batch,
    .eval_finish = det_eval_finish,
    .eval_free = det_eval_free,
    .headline = det_headline,
    .metrics_json = det_metrics_json,
    .metrics_text = det_metrics_text,
};
