/* Pseudo-labelling with a det and/or seg teacher (see label.h): teachers are
 * loaded from their weights, run over the image folder, their outputs
 * thresholded and mapped back to the image size, written as a proxy split;
 * optionally measured against true boxes/masks. */
#include "tasks/label.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "data/proxy.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "tasks/seg/metrics.h"
#include "train/checkpoint.h"

fb_label_cfg fb_label_cfg_default(void) {
  fb_label_cfg c;
  memset(&c, 0, sizeof c);
  c.split = "train";
  c.score_thresh = 0.3;
  c.mask_thresh = 0.5;
  c.batch = 32;
  return c;
}

/* A teacher network and what its weights file says about it. */
typedef struct teacher {
  int task;            /* FB_TASK_DET or FB_TASK_SEG */
  const char *weights;
  fb_net *net;
  int classes;         /* num_cats (det) or num_seg_classes (seg) */
} teacher;

/* Predictions kept for the truth measure besides the pseudo-labels. */
typedef struct raw_preds {
  fb_det *dets;        /* every decoded detection, image_id = sample index */
  int n_dets, cap_dets;
  uint8_t **masks;     /* per sample: argmax without the confidence threshold */
} raw_preds;

/* ---- teachers ------------------------------------------------------------ */

/* Fails unless f holds fbnet weights with a `task` head of rank 4. */
static int check_teacher_file(const fb_st_file *f, const char *w, int task, fb_status *st) {
  const char *tn = task == FB_TASK_DET ? "det" : "seg";
  const char *fmt = fb_st_meta(f, "format"), *tasks = fb_st_meta(f, "tasks");
  const char *head = task == FB_TASK_DET ? "fcos.cls_logits.weight" : "seg.cls.weight";
  const fb_st_tensor *ht = fb_st_find(f, head);
  if (fmt && strcmp(fmt, "fbnet-checkpoint-1") == 0)
    return fb_fail(st, "%s: a training checkpoint, not weights: pass the run's "
                   "weights.safetensors", w);
  if (!fmt || strcmp(fmt, "fbnet-weights-1") != 0)
    return fb_fail(st, "%s: not fbnet weights (metadata \"format\" is %s)", w,
                   fmt ? fmt : "missing");
  if (!tasks || !(atoi(tasks) & task) || !ht || ht->rank != 4) {
    int t = tasks ? atoi(tasks) : FB_TASK_CLS;
    char kinds[32];
    snprintf(kinds, sizeof kinds, "%s%s%s", t & FB_TASK_CLS ? "/cls" : "",
             t & FB_TASK_DET ? "/det" : "", t & FB_TASK_SEG ? "/seg" : "");
    return fb_fail(st, "%s: weights of a %s network, not a %s teacher (train one with fbnet "
                   "train --task %s)", w, kinds[0] ? kinds + 1 : "?", tn, tn);
  }
  return 0;
}

/* Build options from the metadata; the head width from the output conv. */
static void teacher_build_opts(const fb_st_file *f, int task, fb_build_opts *b) {
  const char *head = task == FB_TASK_DET ? "fcos.cls_logits.weight" : "seg.cls.weight";
  const fb_st_tensor *ht = fb_st_find(f, head);
  *b = fb_build_opts_default();
  b->input_size = 64;
  b->standard_padding = 1;
  fb_weights_build_opts(f, b);
  b->tasks = (unsigned)task;
  if (task == FB_TASK_DET) b->det_width = (int)ht->dims[1];
  if (task == FB_TASK_SEG) b->seg_width = (int)ht->dims[1];
}

/* Build options and arch of the teacher in weights file w; the arch from
 * arch_path or else the "arch_json" metadata. */
static fb_arch *teacher_spec(const char *w, int task, const char *arch_path, fb_build_opts *b,
                             fb_status *st) {
  fb_st_file f;
  if (fb_safetensors_read(w, &f, st)) return NULL;
  fb_arch *arch = NULL;
  if (check_teacher_file(&f, w, task, st) == 0) {
    teacher_build_opts(&f, task, b);
    const char *text = fb_st_meta(&f, "arch_json");
    if (b->in_channels != 3)
      fb_fail(st, "%s: a %d-channel network; teachers label RGB images", w, b->in_channels);
    else if (arch_path)
      arch = fb_arch_load(arch_path, st);
    else if (text)
      arch = fb_arch_parse(text, w, st);
    else
      fb_fail(st, "%s: no \"arch_json\" metadata (weights written by an older fbnet): pass "
              "--%s-arch ARCH with the arch file it was trained from", w,
              task == FB_TASK_DET ? "det" : "seg");
  }
  fb_st_file_free(&f);
  return arch;
}

static int teacher_load(teacher *t, int task, const char *w, const char *arch_path, int batch,
                        fb_status *st) {
  memset(t, 0, sizeof *t);
  t->task = task;
  t->weights = w;
  fb_build_opts b;
  fb_arch *arch = teacher_spec(w, task, arch_path, &b, st);
  if (!arch) return -1;
  t->net = fb_net_build(arch, &b, 1, st);
  fb_arch_free(arch);
  if (!t->net) return -1;
  if (fb_net_plan_inference(t->net, batch, st) || fb_weights_load(w, t->net, st)) {
    fb_net_free(t->net);
    t->net = NULL;
    return -1;
  }
  t->classes = task == FB_TASK_DET ? b.num_cats : b.num_seg_classes;
  return 0;
}

/* ---- running a teacher ------------------------------------------------- */

typedef struct progress {
  const char *what;
  int total, done, quiet;
  double t0, last;
  const fb_logger *log;
} progress;

static void progress_step(progress *p, int n) {
  p->done += n;
  double t = fb_now_sec();
  if (p->quiet || (t - p->last < 5.0 && p->done < p->total)) return;
  fb_log(p->log, FB_LOG_INFO, "fbnet label: %s teacher %d/%d images, %.0f images/s", p->what, p->done,
          p->total, p->done / fmax(t - p->t0, 1e-9));
  p->last = t;
}

/* Clips a box in original pixels to the image; 0 when nothing is left. */
static int clip_box(fb_box *b, int h, int w) {
  float x0 = fmaxf(b->x, 0), y0 = fmaxf(b->y, 0);
  float x1 = fminf(b->x + b->w, (float)w), y1 = fminf(b->y + b->h, (float)h);
  if (!(x1 > x0 && y1 > y0)) return 0;
  *b = (fb_box){x0, y0, x1 - x0, y1 - y0, b->cat, 0, (x1 - x0) * (y1 - y0), b->score};
  return 1;
}

static void push_box(fb_sample *s, const fb_box *b) {
  s->boxes = fb_xrealloc(s->boxes, ((size_t)s->n_boxes + 1) * sizeof *s->boxes);
  s->boxes[s->n_boxes++] = *b;
}

static void keep_raw_det(raw_preds *r, const fb_det *d) {
  if (r->n_dets == r->cap_dets) {
    r->cap_dets = 2 * r->cap_dets + 256;
    r->dets = fb_xrealloc(r->dets, (size_t)r->cap_dets * sizeof *r->dets);
  }
  r->dets[r->n_dets++] = *d;
}

static int det_batch(teacher *t, const fb_batch *b, fb_mt_dataset *d, double thresh,
                     raw_preds *raw, fb_status *st) {
  fb_det *dets = NULL;
  int n = 0;
  if (fb_fcos_decode_graph(&t->net->g, &t->net->det, b, NULL, &dets, &n, st)) return -1;
  for (int k = 0; k < n; k++) {
    fb_sample *s = &d->s[dets[k].image_id];
    fb_box box = dets[k].box;
    if (!clip_box(&box, s->h, s->w)) continue;
    if (raw) keep_raw_det(raw, &(fb_det){dets[k].image_id, box});
    if (box.score >= thresh) push_box(s, &box);
  }
  free(dets);
  return 0;
}

/* Argmax and max softmax probability per pixel of item i at network
 * resolution; pixels below thresh become 255 in `pseudo` (raw may be NULL). */
static void seg_item(const float *logits, int i, int K, int S, double thresh, uint8_t *pseudo,
                     uint8_t *raw) {
  size_t plane = (size_t)S * S;
  const float *l = logits + (size_t)i * K * plane;
  for (size_t p = 0; p < plane; p++) {
    int best = 0;
    float m = l[p];
    for (int k = 1; k < K; k++)
      if (l[k * plane + p] > m) m = l[k * plane + p], best = k;
    double sum = 0;
    for (int k = 0; k < K; k++) sum += exp((double)(l[k * plane + p] - m));
    pseudo[p] = 1.0 / sum >= thresh ? (uint8_t)best : 255;
    if (raw) raw[p] = (uint8_t)best;
  }
}

static void seg_batch(teacher *t, const fb_batch *b, fb_mt_dataset *d, double thresh,
                      raw_preds *raw) {
  int S = b->size, K = t->net->seg.cfg.num_classes;
  const float *logits = fb_graph_output(&t->net->g, t->net->seg.logits);
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < b->n; i++) {
    fb_sample *s = &d->s[b->index[i]];
    uint8_t *pseudo = fb_xmalloc((size_t)S * S), *r = raw ? fb_xmalloc((size_t)S * S) : NULL;
    seg_item(logits, i, K, S, thresh, pseudo, r);
    free(s->mask);
    s->mask = fb_batch_mask_to_orig(b, i, pseudo, S, s->h, s->w);
    if (r) raw->masks[b->index[i]] = fb_batch_mask_to_orig(b, i, r, S, s->h, s->w);
    free(pseudo);
    free(r);
  }
}

static int run_teacher(teacher *t, fb_mt_dataset *d, const fb_label_cfg *c, raw_preds *raw,
                       fb_status *st) {
  fb_net *net = t->net;
  fb_loader_cfg lc = fb_loader_cfg_default(net->opts.input_size, 3, net->g.batch, 0);
  lc.threads = c->threads > 0 ? c->threads : 1;
  fb_loader *l = fb_loader_create(d, &lc, st);
  if (!l) return -1;
  if (t->task == FB_TASK_DET) { /* score = sqrt(sigmoid(cls) sigmoid(ctr)) <= sqrt(sigmoid(cls)) */
    float need = (float)(c->score_thresh * c->score_thresh);
    net->det.cfg.score_thresh = raw ? fminf(net->det.cfg.score_thresh, need) : need;
  }
  progress p = {t->task == FB_TASK_DET ? "det" : "seg", d->n, 0, c->quiet, fb_now_sec(), 0, c->log};
  p.last = p.t0;
  fb_loader_start_epoch(l, 0);
  const fb_batch *b;
  int rc = 0;
  size_t per = (size_t)3 * lc.size * lc.size;
  while (rc == 0 && (b = fb_loader_next(l))) {
    memcpy(fb_net_input(net), b->images, (size_t)b->n * per * sizeof(float));
    fb_net_forward(net, 0);
    if (t->task == FB_TASK_DET)
      rc = det_batch(t, b, d, c->score_thresh, raw, st);
    else
      seg_batch(t, b, d, c->mask_thresh, raw);
    progress_step(&p, b->n);
  }
  fb_loader_free(l);
  return rc;
}

/* ---- class names of the outputs ----------------------------------------- */

/* Categories of the det teacher: from the COCO JSON `path` (e.g. the
 * teacher's training file) or ids 1..K named "cat<id>". */
static int det_categories(const char *path, const teacher *t, fb_mt_dataset *d, fb_status *st) {
  d->num_cats = t->classes;
  d->cat_ids = fb_xmalloc((size_t)t->classes * sizeof *d->cat_ids);
  d->cat_names = fb_xcalloc((size_t)t->classes, sizeof *d->cat_names);
  for (int k = 0; k < t->classes; k++) d->cat_ids[k] = k + 1;
  if (!path) {
    for (int k = 0; k < t->classes; k++) {
      char name[32];
      snprintf(name, sizeof name, "cat%d", k + 1);
      d->cat_names[k] = fb_xstrdup(name);
    }
    return 0;
  }
  fb_mt_dataset c;
  if (fb_coco_load(path, NULL, 0, &c, st)) return -1;
  int rc = 0;
  if (c.num_cats != t->classes)
    rc = fb_fail(st, "%s: %d categories, the det teacher %s predicts %d", path, c.num_cats,
                 t->weights, t->classes);
  for (int k = 0; rc == 0 && k < c.num_cats; k++) {
    d->cat_ids[k] = c.cat_ids[k];
    d->cat_names[k] = fb_xstrdup(c.cat_names[k]);
  }
  fb_mt_dataset_free(&c);
  return rc;
}

/* Names of the seg classes: the classes.txt `path`, or NULL. */
static int seg_class_names(const char *path, const teacher *t, char ***names, fb_status *st) {
  *names = NULL;
  if (!path) return 0;
  char **v = NULL;
  int n = 0;
  if (fb_read_lines(path, &v, &n, st)) return -1;
  if (n != t->classes) {
    for (int k = 0; k < n; k++) free(v[k]);
    free(v);
    return fb_fail(st, "%s: %d class names, the seg teacher %s predicts %d classes", path, n,
                   t->weights, t->classes);
  }
  *names = v;
  return 0;
}

/* ---- pseudo-label quality against the truth ------------------------------ */

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *base_name(const char *p) {
  const char *b = strrchr(p, '/');
  return b ? b + 1 : p;
}

/* Index of the truth sample whose file_name equals the basename of file. */
static int truth_index(const fb_mt_dataset *gt, char **sorted, const char *file) {
  const char *key = base_name(file);
  char **hit = bsearch(&key, sorted, (size_t)gt->n, sizeof *sorted, cmp_name);
  if (!hit) return -1;
  for (int i = 0; i < gt->n; i++)
    if (gt->s[i].file == *hit) return i;
  return -1;
}

/* Order of the boxes of p by decreasing score (insertion sort, stable). */
static int *boxes_by_score(const fb_sample *p) {
  int *order = fb_xmalloc(((size_t)p->n_boxes + 1) * sizeof *order);
  for (int k = 0; k < p->n_boxes; k++) order[k] = k;
  for (int a = 1; a < p->n_boxes; a++)
    for (int b = a; b > 0 && p->boxes[order[b]].score > p->boxes[order[b - 1]].score; b--) {
      int t = order[b];
      order[b] = order[b - 1];
      order[b - 1] = t;
    }
  return order;
}

/* Pseudo boxes of p matched to an unmatched non-crowd truth box of g of the
 * same category at IoU >= 0.5 (the highest IoU), in decreasing score order. */
static long matches_at_50(const fb_sample *p, const fb_sample *g) {
  char *used = fb_xcalloc((size_t)g->n_boxes + 1, 1);
  int *order = boxes_by_score(p);
  long tp = 0;
  for (int k = 0; k < p->n_boxes; k++) {
    const fb_box *x = &p->boxes[order[k]];
    int best = -1;
    double best_iou = 0.5;
    for (int j = 0; j < g->n_boxes; j++) {
      if (used[j] || g->boxes[j].iscrowd || g->boxes[j].cat != x->cat) continue;
      double iou = fb_coco_box_iou(x, &g->boxes[j], 0);
      if (iou >= best_iou) best_iou = iou, best = j;
    }
    if (best >= 0) used[best] = 1, tp++;
  }
  free(used);
  free(order);
  return tp;
}

/* Precision and recall of the pseudo boxes at IoU 0.5 (crowd truth boxes are
 * not counted). */
static void match_at_50(const fb_mt_dataset *d, const fb_mt_dataset *gt, const int *map,
                        double *precision, double *recall) {
  long tp = 0, n_pseudo = 0, n_truth = 0;
  for (int i = 0; i < d->n; i++) {
    if (map[i] < 0) continue;
    const fb_sample *p = &d->s[i], *g = &gt->s[map[i]];
    for (int j = 0; j < g->n_boxes; j++) n_truth += !g->boxes[j].iscrowd;
    tp += matches_at_50(p, g);
    n_pseudo += p->n_boxes;
  }
  *precision = n_pseudo ? (double)tp / n_pseudo : 0;
  *recall = n_truth ? (double)tp / n_truth : 0;
}

/* map[i] = the truth sample of labelled sample i (-1: none); sub = the
 * matched truth samples only (shallow copies; free sub->s). */
static int *map_to_truth(const fb_mt_dataset *d, const fb_mt_dataset *gt, fb_mt_dataset *sub) {
  char **sorted = fb_xmalloc(((size_t)gt->n + 1) * sizeof *sorted);
  for (int i = 0; i < gt->n; i++) sorted[i] = gt->s[i].file;
  qsort(sorted, (size_t)gt->n, sizeof *sorted, cmp_name);
  int *map = fb_xmalloc(((size_t)d->n + 1) * sizeof *map);
  *sub = *gt;
  sub->s = fb_xcalloc((size_t)d->n + 1, sizeof *sub->s);
  sub->n = 0;
  for (int i = 0; i < d->n; i++) {
    map[i] = truth_index(gt, sorted, d->s[i].file);
    if (map[i] >= 0) sub->s[sub->n++] = gt->s[map[i]];
  }
  free(sorted);
  return map;
}

/* COCO stats of the pseudo boxes and of every teacher detection, with the
 * truth's image ids. */
static int det_coco_stats(const fb_mt_dataset *d, const raw_preds *raw, const fb_mt_dataset *gt,
                          const fb_mt_dataset *sub, const int *map, fb_label_det_quality *q,
                          fb_status *st) {
  size_t total = 0;
  for (int i = 0; i < d->n; i++) total += (size_t)d->s[i].n_boxes;
  fb_det *pseudo = fb_xmalloc((total + 1) * sizeof *pseudo);
  fb_det *all = fb_xmalloc(((size_t)raw->n_dets + 1) * sizeof *all);
  int np = 0, na = 0;
  for (int i = 0; i < d->n; i++)
    for (int k = 0; map[i] >= 0 && k < d->s[i].n_boxes; k++)
      pseudo[np++] = (fb_det){gt->s[map[i]].image_id, d->s[i].boxes[k]};
  for (int k = 0; k < raw->n_dets; k++)
    if (map[raw->dets[k].image_id] >= 0)
      all[na++] = (fb_det){gt->s[map[raw->dets[k].image_id]].image_id, raw->dets[k].box};
  int rc = fb_coco_eval_bbox(sub, pseudo, np, q->pseudo_boxes, NULL, st) ||
           fb_coco_eval_bbox(sub, all, na, q->all_detections, NULL, st);
  free(pseudo);
  free(all);
  return rc ? -1 : 0;
}

/* AP and precision/recall of the boxes against truth/det.json, on the
 * labelled images that it lists. */
static int det_quality(const char *truth, const fb_mt_dataset *d, const raw_preds *raw,
                       const teacher *t, fb_label_det_quality *q, fb_status *st) {
  char path[4096];
  if (fb_path_in(path, sizeof path, truth, "det.json", st)) return -1;
  fb_mt_dataset gt, sub;
  if (fb_coco_load(path, NULL, 0, &gt, st)) return -1;
  if (gt.num_cats != t->classes) {
    fb_mt_dataset_free(&gt);
    return fb_fail(st, "%s: %d categories, the det teacher predicts %d", path, gt.num_cats,
                   t->classes);
  }
  int *map = map_to_truth(d, &gt, &sub);
  int rc = sub.n ? 0 : fb_fail(st, "%s: none of the labelled images is listed", path);
  if (rc == 0) rc = det_coco_stats(d, raw, &gt, &sub, map, q, st);
  if (rc == 0) {
    q->images = sub.n;
    match_at_50(d, &gt, map, &q->precision50, &q->recall50);
  }
  free(map);
  free(sub.s);
  fb_mt_dataset_free(&gt);
  return rc ? -1 : 0;
}

/* Confusion matrices and per-truth-class pixel counts of the seg measure. */
typedef struct seg_acc {
  fb_confmat kept, plain;
  double labelled[256], counted[256]; /* per truth value */
  int used;
} seg_acc;

/* Adds the masks of sample s (pseudo and plain argmax) against truth mask
 * path; gt is modified (pixels the pseudo mask ignores become 255). */
static int seg_add_image(seg_acc *a, const char *path, const fb_sample *s, const uint8_t *argmax,
                         fb_status *st) {
  uint8_t *gt = NULL;
  int h = 0, w = 0;
  if (fb_mask_read(path, &gt, &h, &w, st)) return -1;
  size_t n = (size_t)h * w;
  int rc = 0;
  if (h != s->h || w != s->w)
    rc = fb_fail(st, "%s: truth mask %dx%d, the image %s is %dx%d", path, w, h, s->file, s->w,
                 s->h);
  if (rc == 0) rc = fb_confmat_add(&a->plain, gt, argmax, n, st);
  for (size_t p = 0; rc == 0 && p < n; p++) {
    a->counted[gt[p]] += 1;
    a->labelled[gt[p]] += s->mask[p] != 255;
    if (s->mask[p] == 255) gt[p] = 255;
  }
  if (rc == 0) rc = fb_confmat_add(&a->kept, gt, s->mask, n, st);
  a->used++;
  free(gt);
  return rc;
}

static void seg_scores(const seg_acc *a, int K, fb_label_seg_quality *q) {
  fb_seg_scores k = fb_confmat_scores(&a->kept, q->pseudo_class_iou);
  fb_seg_scores p = fb_confmat_scores(&a->plain, NULL);
  double lab = 0, cnt = 0;
  for (int c = 0; c < K; c++) {
    lab += a->labelled[c], cnt += a->counted[c];
    q->class_labelled_fraction[c] = a->counted[c] > 0 ? a->labelled[c] / a->counted[c] : -1.0;
  }
  q->images = a->used;
  q->classes = K;
  q->pseudo_miou = k.miou;
  q->pseudo_pixel_acc = k.pixel_acc;
  q->labelled_fraction = cnt > 0 ? lab / cnt : 0;
  q->argmax_miou = p.miou;
  q->argmax_pixel_acc = p.pixel_acc;
}

/* mIoU of the pseudo masks on the pixels they label (truth 255 and pseudo 255
 * ignored), the share of truth pixels they label, and the mIoU of the plain
 * argmax, against truth/masks/<stem>.png. */
static int seg_quality(const char *truth, const fb_mt_dataset *d, const raw_preds *raw,
                       const teacher *t, fb_label_seg_quality *q, fb_status *st) {
  seg_acc *a = fb_xcalloc(1, sizeof *a);
  int rc = fb_confmat_init(&a->kept, t->classes, st);
  if (rc == 0 && fb_confmat_init(&a->plain, t->classes, st)) rc = -1;
  for (int i = 0; i < d->n && rc == 0; i++) {
    char path[4096], stem[1024], name[1100];
    snprintf(stem, sizeof stem, "%s", base_name(d->s[i].file));
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
    snprintf(name, sizeof name, "masks/%s.png", stem);
    if (fb_path_in(path, sizeof path, truth, name, st)) {
      rc = -1;
      break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) continue; /* no truth for this image */
    rc = seg_add_image(a, path, &d->s[i], raw->masks[i], st);
  }
  if (rc == 0 && a->used == 0) rc = fb_fail(st, "%s/masks: no mask of a labelled image", truth);
  if (rc == 0) seg_scores(a, t->classes, q);
  fb_confmat_free(&a->kept);
  fb_confmat_free(&a->plain);
  free(a);
  return rc ? -1 : 0;
}

/* ---- the run ------------------------------------------------------------- */

/* Keeps `limit` samples spread evenly over the folder order (every class
 * stays represented); frees the rest. */
static void spread_limit(fb_mt_dataset *d, int limit) {
  if (limit <= 0 || limit >= d->n) return;
  char *keep = fb_xcalloc((size_t)d->n, 1);
  for (int j = 0; j < limit; j++) keep[(size_t)((double)j * d->n / limit)] = 1;
  int m = 0;
  for (int i = 0; i < d->n; i++) {
    if (keep[i]) {
      d->s[m++] = d->s[i];
      continue;
    }
    free(d->s[i].file);
    free(d->s[i].px);
    free(d->s[i].boxes);
    free(d->s[i].mask);
  }
  d->n = m;
  free(keep);
}

/* Everything a run holds. */
typedef struct label_run {
  teacher det, seg;
  fb_mt_dataset d;
  raw_preds raw;
  char **seg_names;
} label_run;

static void run_free(label_run *r) {
  fb_net_free(r->det.net);
  fb_net_free(r->seg.net);
  if (r->raw.masks)
    for (int i = 0; i < r->d.n; i++) free(r->raw.masks[i]);
  free(r->raw.masks);
  free(r->raw.dets);
  if (r->seg_names)
    for (int k = 0; k < r->seg.classes; k++) free(r->seg_names[k]);
  free(r->seg_names);
  fb_mt_dataset_free(&r->d);
}

static unsigned run_tasks(const fb_label_cfg *c) {
  return FB_TASK_CLS | (c->det_teacher ? FB_TASK_DET : 0) | (c->seg_teacher ? FB_TASK_SEG : 0);
}

/* Loads the teachers and the images and prepares OUT. */
static int label_setup(const fb_label_cfg *c, label_run *r, double t0, fb_status *st) {
  if (c->det_teacher &&
      teacher_load(&r->det, FB_TASK_DET, c->det_teacher, c->det_arch, c->batch, st))
    return -1;
  if (c->seg_teacher &&
      teacher_load(&r->seg, FB_TASK_SEG, c->seg_teacher, c->seg_arch, c->batch, st))
    return -1;
  if (c->seg_teacher && seg_class_names(c->seg_classes, &r->seg, &r->seg_names, st)) return -1;
  if (fb_imagefolder_load(c->images, 3, &r->d, st)) return -1;
  spread_limit(&r->d, c->limit);
  if (fb_proxy_prepare(c->out, c->split, run_tasks(c), r->d.class_names, r->d.num_classes,
                       c->force, st))
    return -1;
  if (!c->quiet)
    fb_log(c->log, FB_LOG_INFO, "fbnet label: %d images in %d classes from %s (%.1fs)", r->d.n,
            r->d.num_classes, c->images, fb_now_sec() - t0);
  return 0;
}

/* Runs the teachers over the images and writes the split. */
static int label_write(const fb_label_cfg *c, label_run *r, fb_status *st) {
  raw_preds *raw = c->truth ? &r->raw : NULL;
  if (c->det_teacher) {
    if (det_categories(c->det_categories, &r->det, &r->d, st)) return -1;
    for (int i = 0; i < r->d.n; i++) r->d.s[i].has_boxes = 1;
    if (run_teacher(&r->det, &r->d, c, raw, st)) return -1;
  }
  if (c->seg_teacher) {
    r->d.num_seg_classes = r->seg.classes;
    if (raw) r->raw.masks = fb_xcalloc((size_t)r->d.n, sizeof *r->raw.masks);
    if (run_teacher(&r->seg, &r->d, c, raw, st)) return -1;
  }
  for (int i = 0; i < r->d.n; i++) r->d.s[i].image_id = i + 1;
  fb_proxy_info info = {run_tasks(c), c->det_teacher, c->seg_teacher, c->score_thresh,
                        c->mask_thresh, r->seg_names};
  return fb_proxy_write(c->out, c->split, &r->d, &info, st);
}

/* Box and ignored-pixel counts of the written split. */
static void count_labels(const fb_mt_dataset *d, fb_label_result *r) {
  double ign = 0, px = 0;
  r->images = d->n;
  r->boxes = 0;
  for (int i = 0; i < d->n; i++) {
    r->boxes += d->s[i].n_boxes;
    size_t n = d->s[i].mask ? (size_t)d->s[i].h * d->s[i].w : 0;
    for (size_t p = 0; p < n; p++) ign += d->s[i].mask[p] == 255;
    px += (double)n;
  }
  r->ignored_pixel_fraction = px > 0 ? ign / px : 0;
}

/* The quality of every teacher's labels; has_truth only when all succeed. */
static int measure_truth(const fb_label_cfg *c, const label_run *run, fb_label_result *r,
                         fb_status *st) {
  if (c->det_teacher && det_quality(c->truth, &run->d, &run->raw, &run->det, &r->det, st))
    return -1;
  if (c->seg_teacher && seg_quality(c->truth, &run->d, &run->raw, &run->seg, &r->seg, st))
    return -1;
  r->has_truth = 1;
  return 0;
}

static int check_cfg(const fb_label_cfg *c, fb_status *st) {
  if (!c->images || !c->out || !c->split || (!c->det_teacher && !c->seg_teacher))
    return fb_fail(st, "label: images, out, split and at least one teacher are required");
  if (c->batch < 1) return fb_fail(st, "label: batch %d, must be >= 1", c->batch);
  return 0;
}

int fb_label_run(const fb_label_cfg *c, fb_label_result *r, fb_status *st) {
  memset(r, 0, sizeof *r);
  if (check_cfg(c, st)) return -1;
  r->tasks = run_tasks(c);
  label_run run;
  memset(&run, 0, sizeof run);
  double t0 = fb_now_sec();
  int rc = label_setup(c, &run, t0, st) || label_write(c, &run, st) ? -1 : 0;
  if (rc == 0) {
    count_labels(&run.d, r);
    r->seconds = fb_now_sec() - t0;
    r->written = 1;
    if (c->truth) rc = measure_truth(c, &run, r, st);
  }
  run_free(&run);
  return rc;
}

/* ---- the JSON line ------------------------------------------------------- */

static void put_coco(FILE *o, const char *key, const double *s, int first) {
  fprintf(o, "%s\"%s\": {\"AP\": %.4f, \"AP50\": %.4f, \"AP75\": %.4f, \"AR100\": %.4f}",
          first ? "" : ", ", key, s[FB_COCO_AP], s[FB_COCO_AP50], s[FB_COCO_AP75],
          s[FB_COCO_AR100]);
}

static void put_det_quality(FILE *o, const fb_label_det_quality *q) {
  fprintf(o, "\"det\": {\"images\": %d, \"precision50\": %.4f, \"recall50\": %.4f, ", q->images,
          q->precision50, q->recall50);
  put_coco(o, "pseudo_boxes", q->pseudo_boxes, 1);
  put_coco(o, "all_detections", q->all_detections, 0);
  fprintf(o, "}");
}

static void put_list(FILE *o, const double *v, int n) {
  for (int k = 0; k < n; k++) fprintf(o, "%s%.4f", k ? ", " : "", v[k]);
}

static void put_seg_quality(FILE *o, const fb_label_seg_quality *q) {
  fprintf(o, "\"seg\": {\"images\": %d, \"pseudo_mIoU\": %.4f, \"pseudo_pixel_acc\": %.4f, "
          "\"labelled_fraction\": %.4f, \"argmax_mIoU\": %.4f, \"argmax_pixel_acc\": %.4f, "
          "\"pseudo_class_iou\": [", q->images, q->pseudo_miou, q->pseudo_pixel_acc,
          q->labelled_fraction, q->argmax_miou, q->argmax_pixel_acc);
  put_list(o, q->pseudo_class_iou, q->classes);
  fprintf(o, "], \"class_labelled_fraction\": [");
  put_list(o, q->class_labelled_fraction, q->classes);
  fprintf(o, "]}");
}

void fb_label_result_json(FILE *o, const fb_label_cfg *c, const fb_label_result *r) {
  int det = (r->tasks & FB_TASK_DET) != 0, seg = (r->tasks & FB_TASK_SEG) != 0;
  fprintf(o, "{\"out\": ");
  fb_json_put_string(o, c->out);
  fprintf(o, ", \"split\": ");
  fb_json_put_string(o, c->split);
  fprintf(o, ", \"images\": %d", r->images);
  if (det)
    fprintf(o, ", \"boxes\": %ld, \"boxes_per_image\": %.3f", r->boxes,
            (double)r->boxes / r->images);
  if (seg)
    fprintf(o, ", \"masks\": %d, \"ignored_pixel_fraction\": %.4f", r->images,
            r->ignored_pixel_fraction);
  fprintf(o, ", \"seconds\": %.2f", r->seconds);
  if (r->has_truth) {
    fprintf(o, ", \"truth\": {");
    if (det) put_det_quality(o, &r->det);
    if (det && seg) fprintf(o, ", ");
    if (seg) put_seg_quality(o, &r->seg);
    fprintf(o, "}");
  }
  fprintf(o, "}\n");
}
