/* Evaluation and predictions on the standard formats (evaluate.h). */
#include "train/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "nn/net.h"
#include "tasks/cls_metrics.h"
#include "tasks/seg_metrics.h"
#include "train/mt_trainer.h"

typedef struct eval_acc {
  const fb_eval_opts *o;
  int labelled;
  long top1, top5;
  fb_det *dets;
  int n_dets, cap_dets;
  fb_confmat cm;
  FILE *csv, *json;
  int n_json;
} eval_acc;

/* 1 when the set carries labels for the task: every image a class (cls),
 * any image box annotations (det; an image may have none), any mask (seg). */
static int has_labels(const fb_mt_dataset *d, int task) {
  int all = d->n > 0, any = 0;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (task == FB_TASK_CLS) all &= s->label >= 0;
    if (task == FB_TASK_DET) any |= s->has_boxes;
    if (task == FB_TASK_SEG) any |= s->mask != NULL;
  }
  return task == FB_TASK_CLS ? all : any;
}

/* ---- classification ------------------------------------------------------ */

/* A CSV field: quoted (with "" for ") when it holds a comma, quote or newline. */
static void put_csv(FILE *f, const char *v) {
  if (!strpbrk(v, ",\"\r\n")) {
    fputs(v, f);
    return;
  }
  fputc('"', f);
  for (const char *p = v; *p; p++) {
    if (*p == '"') fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

/* Class k by name (its index when the set has no name for it). */
static void put_class(FILE *f, const fb_mt_dataset *d, int k, int json) {
  const char *name = d->class_names && k >= 0 && k < d->num_classes ? d->class_names[k] : NULL;
  char idx[16];
  snprintf(idx, sizeof idx, "%d", k);
  if (json) fb_json_put_string(f, name ? name : idx);
  else put_csv(f, name ? name : idx);
}

/* Softmax of one row of K logits into prob; the k best classes into top
 * (descending probability, ties to the lower index). */
static void top_classes(const float *logits, int K, int k, double *prob, int *top) {
  double mx = logits[0], sum = 0;
  for (int j = 1; j < K; j++) mx = logits[j] > mx ? logits[j] : mx;
  for (int j = 0; j < K; j++) sum += prob[j] = exp((double)logits[j] - mx);
  for (int j = 0; j < K; j++) prob[j] /= sum;
  for (int r = 0; r < k; r++) {
    int best = -1;
    for (int j = 0; j < K; j++) {
      int taken = 0;
      for (int q = 0; q < r && !taken; q++) taken = top[q] == j;
      if (!taken && (best < 0 || prob[j] > prob[best])) best = j;
    }
    top[r] = best;
  }
}

static void write_cls_row(eval_acc *acc, const fb_mt_dataset *d, const fb_sample *s,
                          const float *logits, int K) {
  const int k = acc->o->top_k > 0 && acc->o->top_k < K ? acc->o->top_k : (K < 5 ? K : 5);
  double *prob = fb_xmalloc((size_t)K * sizeof *prob);
  int *top = fb_xmalloc((size_t)k * sizeof *top);
  top_classes(logits, K, k, prob, top);
  const char *file = fb_sample_relname(d, s);
  put_csv(acc->csv, file);
  fputc(',', acc->csv);
  if (s->label >= 0) put_class(acc->csv, d, s->label, 0);
  fprintf(acc->json, "%s\n {\"file\": ", acc->n_json++ ? "," : "");
  fb_json_put_string(acc->json, file);
  if (s->label >= 0) {
    fprintf(acc->json, ", \"label\": ");
    put_class(acc->json, d, s->label, 1);
  }
  fprintf(acc->json, ", \"top\": [");
  for (int r = 0; r < k; r++) {
    fputc(',', acc->csv);
    put_class(acc->csv, d, top[r], 0);
    fprintf(acc->csv, ",%.6f", prob[top[r]]);
    fprintf(acc->json, "%s{\"class\": ", r ? ", " : "");
    put_class(acc->json, d, top[r], 1);
    fprintf(acc->json, ", \"index\": %d, \"prob\": %.6f}", top[r], prob[top[r]]);
  }
  fprintf(acc->json, "]}");
  fputc('\n', acc->csv);
  free(prob);
  free(top);
}

static int cls_batch(fb_net *net, const fb_mt_dataset *d, const fb_batch *b, eval_acc *acc,
                     fb_status *st) {
  const int K = net->opts.num_classes;
  const float *logits = fb_net_logits(net);
  if (acc->labelled) {
    int t1 = 0, t5 = 0;
    if (fb_cls_topk_counts(logits, b->labels, b->n, K, &t1, &t5, st)) return -1;
    acc->top1 += t1;
    acc->top5 += t5;
  }
  for (int i = 0; acc->csv && i < b->n; i++)
    write_cls_row(acc, d, &d->s[b->index[i]], logits + (size_t)i * K, K);
  return 0;
}

static int open_cls_outputs(eval_acc *acc, const fb_net *net, fb_status *st) {
  char *csv = fb_path_join(acc->o->pred_dir, "predictions.csv");
  char *js = fb_path_join(acc->o->pred_dir, "predictions.json");
  int rc = 0;
  if (!(acc->csv = fopen(csv, "w")) || !(acc->json = fopen(js, "w")))
    rc = fb_fail_io(st, "%s: cannot open for writing", acc->csv ? js : csv);
  if (rc == 0) {
    const int K = net->opts.num_classes;
    const int k = acc->o->top_k > 0 && acc->o->top_k < K ? acc->o->top_k : (K < 5 ? K : 5);
    fprintf(acc->csv, "file,label");
    for (int r = 1; r <= k; r++) fprintf(acc->csv, ",class_%d,prob_%d", r, r);
    fputc('\n', acc->csv);
    fputc('[', acc->json);
  }
  free(csv);
  free(js);
  return rc;
}

/* ---- detection ------------------------------------------------------------ */

static int det_batch(fb_net *net, const fb_mt_dataset *d, const fb_batch *b, eval_acc *acc,
                     fb_status *st) {
  int *ids = fb_xmalloc((size_t)b->n * sizeof *ids);
  for (int i = 0; i < b->n; i++) ids[i] = d->s[b->index[i]].image_id;
  fb_det *dets = NULL;
  int n = 0;
  int rc = fb_fcos_decode_graph(&net->g, &net->det, b, ids, &dets, &n, st);
  free(ids);
  if (rc) return -1;
  if (acc->n_dets + n > acc->cap_dets) {
    acc->cap_dets = 2 * (acc->n_dets + n);
    acc->dets = fb_xrealloc(acc->dets, (size_t)acc->cap_dets * sizeof *acc->dets);
  }
  if (n) memcpy(acc->dets + acc->n_dets, dets, (size_t)n * sizeof *dets);
  acc->n_dets += n;
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

static void det_metrics_unset(const fb_mt_dataset *d, fb_mt_metrics *m) {
  for (int k = 0; k < FB_COCO_NSTATS; k++) m->coco[k] = m->coco_agnostic[k] = -1;
  m->det_cats = d->num_cats < 256 ? d->num_cats : 256;
  for (int c = 0; c < m->det_cats; c++) m->cat_ap[c] = -1;
}

/* COCO stats, per-category AP and the class-agnostic stats into m. */
static int det_metrics(const fb_mt_dataset *d, const fb_det *dets, int n, fb_mt_metrics *m,
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
  det_metrics_unset(gt, m);
  return det_metrics(gt, dets, n, m, st);
}

static int det_finish(const fb_mt_dataset *d, const eval_acc *acc, fb_mt_metrics *m,
                      fb_status *st) {
  det_metrics_unset(d, m);
  if (acc->labelled && det_metrics(d, acc->dets, acc->n_dets, m, st)) return -1;
  if (!acc->o->pred_dir) return 0;
  char *res = fb_path_join(acc->o->pred_dir, "detections.json");
  char *img = fb_path_join(acc->o->pred_dir, "images.json");
  int rc = fb_coco_write_results(res, acc->dets, acc->n_dets, d->cat_ids, st) ||
           fb_coco_write_gt(img, d, 1, st);
  free(res);
  free(img);
  return rc ? -1 : 0;
}

/* ---- segmentation --------------------------------------------------------- */

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

static int seg_batch(fb_net *net, const fb_mt_dataset *d, const fb_batch *b, eval_acc *acc,
                     fb_status *st) {
  const int S = b->size, K = net->seg.cfg.num_classes;
  const float *logits = fb_graph_output(&net->g, net->seg.logits);
  for (int i = 0; b->masks && i < b->n; i++) {
    const uint8_t *gt = b->masks + (size_t)i * S * S;
    if (fb_confmat_add_logits(&acc->cm, gt, logits + (size_t)i * K * S * S, S, S, st)) return -1;
  }
  if (!acc->o->pred_dir) return 0;
  uint8_t *pred = fb_xmalloc((size_t)S * S);
  int rc = 0;
  for (int i = 0; rc == 0 && i < b->n; i++) {
    fb_seg_predict(&net->seg, logits, i, S, pred);
    rc = write_mask_pred(acc->o->pred_dir, d, &d->s[b->index[i]], pred, S, b, i, st);
  }
  free(pred);
  return rc;
}

/* ---- the loop ------------------------------------------------------------- */

static int eval_batch(fb_net *net, const fb_mt_dataset *d, const fb_batch *b, eval_acc *acc,
                      fb_status *st) {
  if ((net->tasks & FB_TASK_CLS) && cls_batch(net, d, b, acc, st)) return -1;
  if ((net->tasks & FB_TASK_DET) && det_batch(net, d, b, acc, st)) return -1;
  if ((net->tasks & FB_TASK_SEG) && seg_batch(net, d, b, acc, st)) return -1;
  return 0;
}

static void eval_finish_cls_seg(const fb_net *net, const fb_mt_dataset *d, eval_acc *acc,
                                fb_mt_metrics *m) {
  if ((net->tasks & FB_TASK_CLS) && acc->labelled) {
    m->top1 = (double)acc->top1 / d->n;
    m->top5 = (double)acc->top5 / d->n;
  }
  if ((net->tasks & FB_TASK_SEG) && acc->labelled) {
    m->seg_classes = acc->cm.k;
    fb_seg_scores s = fb_confmat_scores(&acc->cm, m->class_iou);
    m->miou = s.miou;
    m->pixel_acc = s.pixel_acc;
  }
}

static int close_outputs(eval_acc *acc, fb_status *st) {
  int rc = 0;
  if (acc->json) {
    fputs("\n]\n", acc->json);
    if (fclose(acc->json) != 0) rc = fb_fail_io(st, "%s: write failed", acc->o->pred_dir);
  }
  if (acc->csv && fclose(acc->csv) != 0) rc = fb_fail_io(st, "%s: write failed", acc->o->pred_dir);
  acc->json = acc->csv = NULL;
  return rc;
}

int fb_mt_evaluate(fb_net *net, const fb_mt_dataset *d, int task, const fb_eval_opts *o,
                   fb_mt_metrics *m, fb_status *st) {
  memset(m, 0, sizeof *m);
  m->task = task;
  m->images = d->n;
  eval_acc acc;
  memset(&acc, 0, sizeof acc);
  acc.o = o;
  acc.labelled = m->labelled = has_labels(d, task);
  if (o->pred_dir) {
    char *masks = fb_path_join(o->pred_dir, "masks");
    int rc = fb_mkdir_p((net->tasks & FB_TASK_SEG) ? masks : o->pred_dir, st);
    free(masks);
    if (rc) return -1;
  }
  if ((net->tasks & FB_TASK_SEG) && fb_confmat_init(&acc.cm, net->seg.cfg.num_classes, st))
    return -1;
  int rc = o->pred_dir && (net->tasks & FB_TASK_CLS) ? open_cls_outputs(&acc, net, st) : 0;
  fb_loader *l = rc ? NULL : fb_mt_loader_create(d, net, net->g.batch, 0, NULL, o->threads, st);
  rc = l ? 0 : -1;
  if (l) fb_loader_start_epoch(l, 0);
  const fb_batch *b;
  const double t0 = fb_now_sec();
  double last = t0;
  long done = 0;
  while (rc == 0 && (b = fb_loader_next(l))) {
    if (fb_mt_fill_batch(net, b, 0, st)) {
      rc = -1;
      break;
    }
    fb_net_forward(net, 0);
    rc = eval_batch(net, d, b, &acc, st);
    done += b->n;
    const double t = fb_now_sec();
    if (o->progress && t - last > 10.0) {
      fb_log(o->log, FB_LOG_INFO, "evaluating: %ld/%d images  %.0f img/s", done, d->n, done / (t - t0));
      last = t;
    }
  }
  fb_loader_free(l);
  if (rc == 0) {
    eval_finish_cls_seg(net, d, &acc, m);
    if (net->tasks & FB_TASK_DET) rc = det_finish(d, &acc, m, st);
  }
  if (close_outputs(&acc, st)) rc = -1;
  free(acc.dets);
  if (net->tasks & FB_TASK_SEG) fb_confmat_free(&acc.cm);
  return rc;
}

/* ---- reporting ------------------------------------------------------------ */

double fb_mt_headline(const fb_mt_metrics *m) {
  return m->task == FB_TASK_DET ? m->coco[0] : m->task == FB_TASK_SEG ? m->miou : m->top1;
}

const char *fb_mt_headline_name(int task) {
  return task == FB_TASK_DET ? "AP" : task == FB_TASK_SEG ? "mIoU" : "top-1";
}

void fb_mt_metrics_json(const fb_mt_metrics *m, char *buf, size_t n) {
  int k = snprintf(buf, n, "{\"task\": \"%s\", \"images\": %d", fb_task_name(m->task), m->images);
  if (!m->labelled) {
    if ((size_t)k < n) snprintf(buf + k, n - k, ", \"labelled\": false}");
    return;
  }
  if (m->task == FB_TASK_CLS)
    k += snprintf(buf + k, n - k, ", \"top1\": %.5f, \"top5\": %.5f", m->top1, m->top5);
  if (m->task == FB_TASK_DET) {
    for (int i = 0; i < FB_COCO_NSTATS && (size_t)k < n; i++)
      k += snprintf(buf + k, n - k, ", \"%s\": %.5f", fb_coco_stat_names[i], m->coco[i]);
    if ((size_t)k < n)
      k += snprintf(buf + k, n - k, ", \"AP_class_agnostic\": %.5f, \"AP50_class_agnostic\": %.5f",
                    m->coco_agnostic[0], m->coco_agnostic[1]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, ", \"category_ap\": [");
    for (int c = 0; c < m->det_cats && (size_t)k < n; c++)
      k += snprintf(buf + k, n - k, "%s%.4f", c ? ", " : "", m->cat_ap[c]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, "]");
  }
  if (m->task == FB_TASK_SEG) {
    k += snprintf(buf + k, n - k, ", \"mIoU\": %.5f, \"pixel_acc\": %.5f, \"class_iou\": [",
                  m->miou, m->pixel_acc);
    for (int c = 0; c < m->seg_classes && (size_t)k < n; c++)
      k += snprintf(buf + k, n - k, "%s%.4f", c ? ", " : "", m->class_iou[c]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, "]");
  }
  if ((size_t)k < n) snprintf(buf + k, n - k, "}");
}
