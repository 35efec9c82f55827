/* fbnet label: the proxy multi-task data set of SPEC section 5. Runs a
 * trained detection teacher and a segmentation teacher over an image folder
 * with class labels only and writes boxes (COCO JSON with scores) and masks
 * (PNG, 255 = ignore for low-confidence pixels) beside the images, in the
 * layout of src/data/proxy.h (docs/proxy-data.md). With --truth, measures
 * the pseudo-labels against true boxes/masks (the demo scenes' proxy/truth). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "data/proxy.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "tasks/coco_eval.h"
#include "tasks/seg_metrics.h"
#include "train/checkpoint.h"

typedef struct label_args {
  const char *det_w, *seg_w, *images, *out, *split, *det_arch, *seg_arch;
  const char *det_cats, *seg_classes, *truth;
  double score_thresh, mask_thresh;
  int batch, threads, limit, quiet;
} label_args;

/* A teacher network and what its weights file says about it. */
typedef struct teacher {
  int task;            /* FB_TASK_DET or FB_TASK_SEG */
  const char *weights;
  fb_net *net;
  int classes;         /* num_cats (det) or num_seg_classes (seg) */
} teacher;

/* Predictions kept for --truth besides the pseudo-labels. */
typedef struct raw_preds {
  fb_det *dets;        /* every decoded detection, image_id = sample index */
  int n_dets, cap_dets;
  uint8_t **masks;     /* per sample: argmax without the confidence threshold */
} raw_preds;

/* ---- teachers ------------------------------------------------------------ */

static int meta_int(const fb_st_file *f, const char *key, int dflt) {
  const char *v = fb_st_meta(f, key);
  return v ? atoi(v) : dflt;
}

/* Build options (and the head width, read off the output conv's shape) from
 * the weights file; the arch from --*-arch or the "arch_json" metadata. */
static fb_arch *teacher_spec(const char *w, int task, const char *arch_path, fb_build_opts *b,
                             fb_status *st) {
  const char *tn = task == FB_TASK_DET ? "det" : "seg";
  fb_st_file f;
  if (fb_safetensors_read(w, &f, st)) return NULL;
  fb_arch *arch = NULL;
  const char *fmt = fb_st_meta(&f, "format"), *tasks = fb_st_meta(&f, "tasks");
  const char *head = task == FB_TASK_DET ? "fcos.cls_logits.weight" : "seg.cls.weight";
  const fb_st_tensor *ht = fb_st_find(&f, head);
  if (fmt && strcmp(fmt, "fbnet-checkpoint-1") == 0) {
    fb_fail(st, "%s: a training checkpoint, not weights: pass the run's weights.safetensors", w);
  } else if (!fmt || strcmp(fmt, "fbnet-weights-1") != 0) {
    fb_fail(st, "%s: not fbnet weights (metadata \"format\" is %s)", w, fmt ? fmt : "missing");
  } else if (!tasks || !(atoi(tasks) & task) || !ht || ht->rank != 4) {
    int t = tasks ? atoi(tasks) : FB_TASK_CLS;
    char kinds[32];
    snprintf(kinds, sizeof kinds, "%s%s%s", t & FB_TASK_CLS ? "/cls" : "",
             t & FB_TASK_DET ? "/det" : "", t & FB_TASK_SEG ? "/seg" : "");
    fb_fail(st, "%s: weights of a %s network, not a %s teacher (train one with fbnet train "
            "--task %s)", w, kinds[0] ? kinds + 1 : "?", tn, tn);
  } else {
    *b = fb_build_opts_default();
    b->tasks = (unsigned)task;
    b->input_size = meta_int(&f, "input_size", 64);
    b->in_channels = meta_int(&f, "in_channels", 3);
    const char *wd = fb_st_meta(&f, "width"), *pad = fb_st_meta(&f, "padding");
    b->width = wd ? atof(wd) : 1.0;
    b->standard_padding = pad ? strcmp(pad, "standard") == 0 : 1;
    b->num_cats = meta_int(&f, "num_cats", 0);
    b->num_seg_classes = meta_int(&f, "num_seg_classes", 0);
    b->num_classes = meta_int(&f, "num_classes", 1000);
    if (task == FB_TASK_DET) b->det_width = (int)ht->dims[1];
    if (task == FB_TASK_SEG) b->seg_width = (int)ht->dims[1];
    const char *text = fb_st_meta(&f, "arch_json");
    if (b->in_channels != 3)
      fb_fail(st, "%s: a %d-channel network; teachers label RGB images", w, b->in_channels);
    else if (arch_path)
      arch = fb_arch_load(arch_path, st);
    else if (text)
      arch = fb_arch_parse(text, w, st);
    else
      fb_fail(st, "%s: no \"arch_json\" metadata (weights written by an older fbnet): pass "
              "--%s-arch ARCH with the arch file it was trained from", w, tn);
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
  if (fb_net_plan(t->net, batch, 1, st) || fb_weights_load(w, t->net, st)) {
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
} progress;

static void progress_step(progress *p, int n) {
  p->done += n;
  double t = fb_now_sec();
  if (p->quiet || (t - p->last < 5.0 && p->done < p->total)) return;
  fprintf(stderr, "fbnet label: %s teacher %d/%d images, %.0f images/s\n", p->what, p->done,
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

/* Nearest resampling of a network-resolution mask back to the image (eval
 * geometry: batch pixel = orig * scale + offset). */
static uint8_t *to_original(const uint8_t *m, int S, const fb_batch *b, int i, int h, int w) {
  uint8_t *o = fb_xmalloc((size_t)h * w);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int by = (int)((y + 0.5f) * b->scale[i] + b->off_y[i]);
      int bx = (int)((x + 0.5f) * b->scale[i] + b->off_x[i]);
      by = by < 0 ? 0 : by >= S ? S - 1 : by;
      bx = bx < 0 ? 0 : bx >= S ? S - 1 : bx;
      o[(size_t)y * w + x] = m[(size_t)by * S + bx];
    }
  return o;
}

static void seg_batch(teacher *t, const fb_batch *b, fb_mt_dataset *d, double thresh,
                      raw_preds *raw) {
  int S = b->size, K = t->net->seg.cfg.num_classes;
  const float *logits = t->net->g.nodes[t->net->seg.logits].out;
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < b->n; i++) {
    fb_sample *s = &d->s[b->index[i]];
    uint8_t *pseudo = fb_xmalloc((size_t)S * S), *r = raw ? fb_xmalloc((size_t)S * S) : NULL;
    seg_item(logits, i, K, S, thresh, pseudo, r);
    free(s->mask);
    s->mask = to_original(pseudo, S, b, i, s->h, s->w);
    if (r) raw->masks[b->index[i]] = to_original(r, S, b, i, s->h, s->w);
    free(pseudo);
    free(r);
  }
}

static int run_teacher(teacher *t, fb_mt_dataset *d, const label_args *a, raw_preds *raw,
                       fb_status *st) {
  fb_net *net = t->net;
  fb_loader_cfg lc = fb_loader_cfg_default(net->opts.input_size, 3, net->g.batch, 0);
  lc.threads = a->threads > 0 ? a->threads : 1;
  fb_loader *l = fb_loader_create(d, &lc, st);
  if (!l) return -1;
  if (t->task == FB_TASK_DET) { /* score = sqrt(sigmoid(cls) sigmoid(ctr)) <= sqrt(sigmoid(cls)) */
    float need = (float)(a->score_thresh * a->score_thresh);
    net->det.cfg.score_thresh = raw ? fminf(net->det.cfg.score_thresh, need) : need;
  }
  progress p = {t->task == FB_TASK_DET ? "det" : "seg", d->n, 0, a->quiet, fb_now_sec(), 0};
  p.last = p.t0;
  fb_loader_start_epoch(l, 0);
  const fb_batch *b;
  int rc = 0;
  size_t per = (size_t)3 * lc.size * lc.size;
  while (rc == 0 && (b = fb_loader_next(l))) {
    memcpy(fb_net_input(net), b->images, (size_t)b->n * per * sizeof(float));
    fb_net_forward(net, 0);
    if (t->task == FB_TASK_DET)
      rc = det_batch(t, b, d, a->score_thresh, raw, st);
    else
      seg_batch(t, b, d, a->mask_thresh, raw);
    progress_step(&p, b->n);
  }
  fb_loader_free(l);
  return rc;
}

/* ---- class names of the outputs ----------------------------------------- */

/* Categories of the det teacher: --det-categories (a COCO JSON, e.g. the
 * teacher's training file) or ids 1..K named "cat<id>". */
static int det_categories(const char *path, const teacher *t, fb_mt_dataset *d, fb_status *st) {
  d->num_cats = t->classes;
  d->cat_ids = fb_xmalloc((size_t)t->classes * sizeof *d->cat_ids);
  d->cat_names = fb_xcalloc((size_t)t->classes, sizeof *d->cat_names);
  for (int k = 0; k < t->classes; k++) {
    d->cat_ids[k] = k + 1;
    d->cat_names[k] = NULL;
  }
  if (!path) {
    for (int k = 0; k < t->classes; k++) {
      char name[32];
      snprintf(name, sizeof name, "cat%d", k + 1);
      d->cat_names[k] = fb_xstrdup(name);
    }
    return 0;
  }
  fb_mt_dataset c;
  if (fb_proxy_read_coco(path, &c, st)) return -1;
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

/* Names of the seg classes: --seg-classes (a classes.txt) or NULL. */
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

/* ---- pseudo-label quality against the truth (--truth DIR) ---------------- */

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

static void print_coco(FILE *o, const char *key, const double *s, int first) {
  fprintf(o, "%s\"%s\": {\"AP\": %.4f, \"AP50\": %.4f, \"AP75\": %.4f, \"AR100\": %.4f}",
          first ? "" : ", ", key, s[FB_COCO_AP], s[FB_COCO_AP50], s[FB_COCO_AP75],
          s[FB_COCO_AR100]);
}

/* Precision and recall of the pseudo boxes at IoU 0.5: each box, in
 * decreasing score order per image, matches the unmatched truth box of its
 * category with the highest IoU >= 0.5 (crowd truth boxes are not counted). */
static void match_at_50(const fb_mt_dataset *d, const fb_mt_dataset *gt, const int *map,
                        double *precision, double *recall) {
  long tp = 0, n_pseudo = 0, n_truth = 0;
  for (int i = 0; i < d->n; i++) {
    if (map[i] < 0) continue;
    const fb_sample *p = &d->s[i], *g = &gt->s[map[i]];
    char *used = fb_xcalloc((size_t)g->n_boxes + 1, 1);
    int *order = fb_xmalloc(((size_t)p->n_boxes + 1) * sizeof *order);
    for (int k = 0; k < p->n_boxes; k++) order[k] = k;
    for (int a = 1; a < p->n_boxes; a++) /* insertion sort by decreasing score */
      for (int b = a; b > 0 && p->boxes[order[b]].score > p->boxes[order[b - 1]].score; b--) {
        int t = order[b];
        order[b] = order[b - 1];
        order[b - 1] = t;
      }
    for (int j = 0; j < g->n_boxes; j++) n_truth += !g->boxes[j].iscrowd;
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
      n_pseudo++;
    }
    free(used);
    free(order);
  }
  *precision = n_pseudo ? (double)tp / n_pseudo : 0;
  *recall = n_truth ? (double)tp / n_truth : 0;
}

/* AP of the pseudo boxes and of every teacher detection against DIR/det.json,
 * on the labelled images that the truth lists. */
static int det_quality(const char *truth, const fb_mt_dataset *d, const raw_preds *raw,
                       const teacher *t, FILE *o, fb_status *st) {
  char path[4096];
  snprintf(path, sizeof path, "%s/det.json", truth);
  fb_mt_dataset gt;
  if (fb_proxy_read_coco(path, &gt, st)) return -1;
  if (gt.num_cats != t->classes) {
    fb_mt_dataset_free(&gt);
    return fb_fail(st, "%s: %d categories, the det teacher predicts %d", path, gt.num_cats,
                   t->classes);
  }
  char **sorted = fb_xmalloc(((size_t)gt.n + 1) * sizeof *sorted);
  for (int i = 0; i < gt.n; i++) sorted[i] = gt.s[i].file;
  qsort(sorted, (size_t)gt.n, sizeof *sorted, cmp_name);
  int *map = fb_xmalloc(((size_t)d->n + 1) * sizeof *map);
  fb_mt_dataset sub = gt; /* the matched truth images only (shallow) */
  sub.s = fb_xcalloc((size_t)d->n + 1, sizeof *sub.s);
  sub.n = 0;
  for (int i = 0; i < d->n; i++) {
    map[i] = truth_index(&gt, sorted, d->s[i].file);
    if (map[i] >= 0) sub.s[sub.n++] = gt.s[map[i]];
  }
  size_t total = 0;
  for (int i = 0; i < d->n; i++) total += (size_t)d->s[i].n_boxes;
  fb_det *pseudo = fb_xmalloc((total + 1) * sizeof *pseudo), *all = NULL;
  int np = 0, na = 0;
  for (int i = 0; i < d->n; i++)
    for (int k = 0; map[i] >= 0 && k < d->s[i].n_boxes; k++)
      pseudo[np++] = (fb_det){gt.s[map[i]].image_id, d->s[i].boxes[k]};
  all = fb_xmalloc(((size_t)raw->n_dets + 1) * sizeof *all);
  for (int k = 0; k < raw->n_dets; k++)
    if (map[raw->dets[k].image_id] >= 0)
      all[na++] = (fb_det){gt.s[map[raw->dets[k].image_id]].image_id, raw->dets[k].box};
  double s1[FB_COCO_NSTATS], s2[FB_COCO_NSTATS];
  int rc = sub.n ? 0 : fb_fail(st, "%s: none of the labelled images is listed", path);
  if (rc == 0)
    rc = fb_coco_eval_bbox(&sub, pseudo, np, s1, NULL, st) ||
         fb_coco_eval_bbox(&sub, all, na, s2, NULL, st);
  if (rc == 0) {
    double prec, rec;
    match_at_50(d, &gt, map, &prec, &rec);
    fprintf(o, "\"det\": {\"images\": %d, \"precision50\": %.4f, \"recall50\": %.4f, ", sub.n,
            prec, rec);
    print_coco(o, "pseudo_boxes", s1, 1);
    print_coco(o, "all_detections", s2, 0);
    fprintf(o, "}");
  }
  free(pseudo);
  free(all);
  free(map);
  free(sorted);
  free(sub.s);
  fb_mt_dataset_free(&gt);
  return rc ? -1 : 0;
}

/* mIoU of the pseudo masks on the pixels they label (truth 255 and pseudo 255
 * ignored), the share of truth pixels they label, and the mIoU of the plain
 * argmax, against DIR/masks/<stem>.png. */
static int seg_quality(const char *truth, const fb_mt_dataset *d, const raw_preds *raw,
                       const teacher *t, FILE *o, fb_status *st) {
  fb_confmat kept, plain;
  if (fb_confmat_init(&kept, t->classes, st)) return -1;
  if (fb_confmat_init(&plain, t->classes, st)) {
    fb_confmat_free(&kept);
    return -1;
  }
  int rc = 0, used = 0, K = t->classes;
  double labelled[256] = {0}, counted[256] = {0}; /* per truth value */
  for (int i = 0; i < d->n && rc == 0; i++) {
    const fb_sample *s = &d->s[i];
    char path[4096], stem[1024];
    snprintf(stem, sizeof stem, "%s", base_name(s->file));
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
    snprintf(path, sizeof path, "%s/masks/%s.png", truth, stem);
    struct stat sb;
    if (stat(path, &sb) != 0) continue; /* no truth for this image */
    uint8_t *gt = NULL;
    int h = 0, w = 0;
    if (fb_mask_read(path, &gt, &h, &w, st)) {
      rc = -1;
      break;
    }
    size_t n = (size_t)h * w;
    if (h != s->h || w != s->w)
      rc = fb_fail(st, "%s: truth mask %dx%d, the image %s is %dx%d", path, w, h, s->file, s->w,
                   s->h);
    if (rc == 0) rc = fb_confmat_add(&plain, gt, raw->masks[i], n, st);
    for (size_t p = 0; rc == 0 && p < n; p++) {
      counted[gt[p]] += 1;
      labelled[gt[p]] += s->mask[p] != 255;
      if (s->mask[p] == 255) gt[p] = 255;
    }
    if (rc == 0) rc = fb_confmat_add(&kept, gt, s->mask, n, st);
    used++;
    free(gt);
  }
  if (rc == 0 && used == 0) rc = fb_fail(st, "%s/masks: no mask of a labelled image", truth);
  if (rc == 0) {
    double iou[256], lab = 0, cnt = 0;
    fb_seg_scores a = fb_confmat_scores(&kept, iou), b = fb_confmat_scores(&plain, NULL);
    for (int k = 0; k < K; k++) lab += labelled[k], cnt += counted[k];
    fprintf(o, "\"seg\": {\"images\": %d, \"pseudo_mIoU\": %.4f, \"pseudo_pixel_acc\": %.4f, "
            "\"labelled_fraction\": %.4f, \"argmax_mIoU\": %.4f, \"argmax_pixel_acc\": %.4f, "
            "\"pseudo_class_iou\": [", used, a.miou, a.pixel_acc, cnt > 0 ? lab / cnt : 0, b.miou,
            b.pixel_acc);
    for (int k = 0; k < K; k++) fprintf(o, "%s%.4f", k ? ", " : "", iou[k]);
    fprintf(o, "], \"class_labelled_fraction\": [");
    for (int k = 0; k < K; k++)
      fprintf(o, "%s%.4f", k ? ", " : "", counted[k] > 0 ? labelled[k] / counted[k] : -1.0);
    fprintf(o, "]}");
  }
  fb_confmat_free(&kept);
  fb_confmat_free(&plain);
  return rc;
}

/* ---- the command ---------------------------------------------------------- */

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

static int label_main(const label_args *a, label_run *r, double t0, fb_status *st) {
  if (a->det_w && teacher_load(&r->det, FB_TASK_DET, a->det_w, a->det_arch, a->batch, st))
    return -1;
  if (a->seg_w && teacher_load(&r->seg, FB_TASK_SEG, a->seg_w, a->seg_arch, a->batch, st))
    return -1;
  if (a->seg_w && seg_class_names(a->seg_classes, &r->seg, &r->seg_names, st)) return -1;
  if (fb_imagefolder_load(a->images, 3, &r->d, st)) return -1;
  spread_limit(&r->d, a->limit);
  unsigned tasks = FB_TASK_CLS | (a->det_w ? FB_TASK_DET : 0) | (a->seg_w ? FB_TASK_SEG : 0);
  if (fb_proxy_prepare(a->out, a->split, tasks, r->d.class_names, r->d.num_classes, st)) return -1;
  if (!a->quiet)
    fprintf(stderr, "fbnet label: %d images in %d classes from %s (%.1fs)\n", r->d.n,
            r->d.num_classes, a->images, fb_now_sec() - t0);
  raw_preds *raw = a->truth ? &r->raw : NULL;
  if (a->det_w) {
    if (det_categories(a->det_cats, &r->det, &r->d, st)) return -1;
    for (int i = 0; i < r->d.n; i++) r->d.s[i].has_boxes = 1;
    if (run_teacher(&r->det, &r->d, a, raw, st)) return -1;
  }
  if (a->seg_w) {
    r->d.num_seg_classes = r->seg.classes;
    if (raw) r->raw.masks = fb_xcalloc((size_t)r->d.n, sizeof *r->raw.masks);
    if (run_teacher(&r->seg, &r->d, a, raw, st)) return -1;
  }
  for (int i = 0; i < r->d.n; i++) r->d.s[i].image_id = i + 1;
  fb_proxy_info info = {tasks, a->det_w, a->seg_w, a->score_thresh, a->mask_thresh, r->seg_names};
  return fb_proxy_write(a->out, a->split, &r->d, &info, st);
}

static void print_summary(const label_args *a, const label_run *r, double secs) {
  long boxes = 0;
  double ign = 0, px = 0;
  for (int i = 0; i < r->d.n; i++) {
    boxes += r->d.s[i].n_boxes;
    size_t n = r->d.s[i].mask ? (size_t)r->d.s[i].h * r->d.s[i].w : 0;
    for (size_t p = 0; p < n; p++) ign += r->d.s[i].mask[p] == 255;
    px += (double)n;
  }
  printf("{\"out\": ");
  fb_json_put_string(stdout, a->out);
  printf(", \"split\": ");
  fb_json_put_string(stdout, a->split);
  printf(", \"images\": %d", r->d.n);
  if (a->det_w)
    printf(", \"boxes\": %ld, \"boxes_per_image\": %.3f", boxes, (double)boxes / r->d.n);
  if (a->seg_w)
    printf(", \"masks\": %d, \"ignored_pixel_fraction\": %.4f", r->d.n, px > 0 ? ign / px : 0);
  printf(", \"seconds\": %.2f", secs);
}

/* The "truth" object, printed only when every measure succeeded. */
static int truth_report(const label_args *a, const label_run *r, fb_status *st) {
  char *buf = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&buf, &len);
  if (!o) return fb_fail(st, "out of memory");
  int rc = 0;
  if (a->det_w) rc = det_quality(a->truth, &r->d, &r->raw, &r->det, o, st);
  if (rc == 0 && a->det_w && a->seg_w) fprintf(o, ", ");
  if (rc == 0 && a->seg_w) rc = seg_quality(a->truth, &r->d, &r->raw, &r->seg, o, st);
  fclose(o);
  if (rc == 0) printf(", \"truth\": {%s}", buf);
  free(buf);
  return rc;
}

int cmd_label(int argc, char **argv) {
  label_args a;
  memset(&a, 0, sizeof a);
  a.split = "train";
  a.score_thresh = 0.3;
  a.mask_thresh = 0.5;
  a.batch = 32;
  const arg_opt opts[] = {
      {"--det-teacher", ARG_STRING, &a.det_w, 0, 0, NULL,
       "detection teacher weights (.safetensors)"},
      {"--seg-teacher", ARG_STRING, &a.seg_w, 0, 0, NULL,
       "segmentation teacher weights (at least one teacher is required)"},
      {"--images", ARG_STRING, &a.images, 0, 0, NULL,
       "image folder DIR/<class>/<image>.png|jpg (required)"},
      {"--out", ARG_STRING, &a.out, 0, 0, NULL, "output proxy directory (required)"},
      {"--split", ARG_STRING, &a.split, 0, 0, NULL, "split name to write (default train)"},
      {"--score-thresh", ARG_DOUBLE, &a.score_thresh, 0, 1, NULL,
       "keep boxes with score >= this (default 0.3)"},
      {"--mask-thresh", ARG_DOUBLE, &a.mask_thresh, 0, 1, NULL,
       "pixels whose max softmax probability is below become 255 = ignore (default 0.5)"},
      {"--det-arch", ARG_STRING, &a.det_arch, 0, 0, NULL,
       "arch file of the det teacher (default: the arch stored in its weights)"},
      {"--seg-arch", ARG_STRING, &a.seg_arch, 0, 0, NULL, "arch file of the seg teacher (same)"},
      {"--det-categories", ARG_STRING, &a.det_cats, 0, 0, NULL,
       "COCO JSON whose categories name the det teacher's classes, e.g. its training file "
       "(default: ids 1..K, names cat<id>)"},
      {"--seg-classes", ARG_STRING, &a.seg_classes, 0, 0, NULL,
       "classes.txt naming the seg teacher's classes (default: class_<k>)"},
      {"--truth", ARG_STRING, &a.truth, 0, 0, NULL,
       "directory with det.json and masks/<stem>.png of the same images (matched by file "
       "name, e.g. scenes' proxy/truth): prints the pseudo-labels' AP and mIoU"},
      {"--batch", ARG_INT, &a.batch, 1, 65536, NULL, "images per forward pass (default 32)"},
      {"--threads", ARG_INT, &a.threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--limit", ARG_INT, &a.limit, 1, 100000000, NULL,
       "label N images spread evenly over the folder (default: all)"},
      {"--quiet", ARG_FLAG, &a.quiet, 0, 0, NULL, "no progress lines on stderr"},
  };
  const arg_spec spec = {
      "fbnet label --det-teacher W --seg-teacher W --images DIR --out OUT [options]",
      "Pseudo-labels an image folder that has class labels only (SPEC section 5): boxes of the\n"
      "det teacher (COCO JSON with scores) and masks of the seg teacher (PNG, 255 = ignore),\n"
      "each at the teacher's own input size, mapped back to the image size. OUT is read by\n"
      "the search (proxy data set) and by fbnet train --task det|seg --data OUT. Prints one\n"
      "JSON line of counts (and quality with --truth). Layout: docs/proxy-data.md.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!a.images || !a.out || (!a.det_w && !a.seg_w)) {
    fprintf(stderr, "fbnet label: --images, --out and at least one of --det-teacher and "
            "--seg-teacher are required (see --help)\n");
    return 2;
  }
  if (a.threads) omp_set_num_threads(a.threads);
  fb_status st = {{0}};
  label_run r;
  memset(&r, 0, sizeof r);
  double t0 = fb_now_sec();
  rc = label_main(&a, &r, t0, &st);
  if (rc == 0) {
    print_summary(&a, &r, fb_now_sec() - t0);
    if (a.truth) rc = truth_report(&a, &r, &st);
    printf("}\n");
    fflush(stdout);
  }
  if (rc == 0 && !a.quiet)
    fprintf(stderr, "fbnet label: wrote %s/%s (%d images) in %.1fs\n", a.out, a.split, r.d.n,
            fb_now_sec() - t0);
  run_free(&r);
  if (rc) {
    fprintf(stderr, "fbnet label: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}
