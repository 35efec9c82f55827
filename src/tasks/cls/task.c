/* The classification row of the task table (src/tasks/task.h): the
 * softmax cross-entropy head, image folders (one folder per class), top-1 and
 * top-5, predictions as CSV and JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "data/formats.h"
#include "nn/net.h"
#include "ops/op.h"
#include "tasks/cls/metrics.h"
#include "tasks/task.h"
#include "train/evaluate.h"

/* A global pool when the backbone does not end in one, the linear
 * classifier, softmax cross-entropy against the label input. */
static int cls_add_head(fb_net *net, const int *feat, const int *strides, int n, fb_status *st) {
  (void)strides, (void)n;
  fb_graph *g = &net->g;
  int x = feat[0];
  fb_op_attr a = fb_attr_default();
  const fb_shape s = g->nodes[x].args.out;
  if (s.h != 1 || s.w != 1) { /* an arch without ir_pool_hs: pool before the classifier */
    if ((x = fb_graph_add(g, "gap", "pool", &x, 1, &a, 0, st)) < 0) return -1;
  }
  net->label_node = fb_graph_input(g, "label", 1, 1, 1);
  a.c_out = net->opts.num_classes;
  a.has_bias = 1;
  if ((x = fb_graph_add(g, "linear", "classifier", &x, 1, &a, 0, st)) < 0) return -1;
  net->logits_node = x;
  a = fb_attr_default();
  a.label_smoothing = 0.0f; /* the trainer sets it on net->loss_node */
  int in[2] = {net->logits_node, net->label_node};
  if ((x = fb_graph_add(g, "softmax_ce", "loss", in, 2, &a, 0, st)) < 0) return -1;
  net->loss_node = x;
  g->nodes[x].loss_weight = 1.0f;
  return 0;
}

static int cls_roots(const fb_net *net, int *roots) {
  if (!(net->tasks & FB_TASK_CLS) || net->loss_node < 0) return 0;
  roots[0] = net->loss_node;
  return 1;
}

static int cls_outputs(const fb_net *net, int *nodes) {
  if (!(net->tasks & FB_TASK_CLS) || net->logits_node < 0) return 0;
  nodes[0] = net->logits_node;
  return 1;
}

static int cls_set_targets(fb_net *net, const fb_batch *b, fb_status *st) {
  (void)st;
  float *y = fb_net_labels(net);
  for (int i = 0; i < net->g.batch; i++) y[i] = i < b->n ? (float)b->labels[i] : -1.0f;
  return 0;
}

static int cls_load_split(const char *dir, const char *split, fb_mt_dataset *d, fb_status *st) {
  char path[1200];
  return fb_path_in(path, sizeof path, dir, split, st) || fb_imagefolder_load(path, 3, d, st)
             ? -1
             : 0;
}

static void cls_head_from_data(const fb_mt_dataset *d, fb_build_opts *o) {
  o->num_classes = d->num_classes;
}

static int cls_head_size(const fb_mt_dataset *d) { return d->num_classes; }

/* every image has a class */
static int cls_has_labels(const fb_mt_dataset *d) {
  for (int i = 0; i < d->n; i++)
    if (d->s[i].label < 0) return 0;
  return d->n > 0;
}

/* ---- evaluation ----------------------------------------------------------- */

typedef struct cls_eval {
  long top1, top5;
  FILE *csv, *json;
  int n_json;
} cls_eval;

/* Class k's name (its index when the set has no name for it) into idx. */
static const char *class_name(const fb_mt_dataset *d, int k, char idx[16]) {
  if (d->class_names && k >= 0 && k < d->num_classes) return d->class_names[k];
  snprintf(idx, 16, "%d", k);
  return idx;
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

/* classes listed per image: --top-k, at most K (default 5) */
static int classes_listed(const fb_eval_opts *o, int K) {
  return o->top_k > 0 && o->top_k < K ? o->top_k : (K < 5 ? K : 5);
}

static void write_row(fb_task_eval *e, const fb_sample *s, const float *logits, int K) {
  cls_eval *c = e->state;
  const fb_mt_dataset *d = e->d;
  const int k = classes_listed(e->o, K);
  double *prob = fb_xmalloc((size_t)K * sizeof *prob);
  int *top = fb_xmalloc((size_t)k * sizeof *top);
  top_classes(logits, K, k, prob, top);
  const char *file = fb_sample_relname(d, s);
  char idx[16];
  fb_strbuf csv = {0}, js = {0};
  fb_sb_csv_field(&csv, file);
  fb_sb_puts(&csv, ",");
  if (s->label >= 0) fb_sb_csv_field(&csv, class_name(d, s->label, idx));
  fb_sb_printf(&js, "%s\n {\"file\": ", c->n_json++ ? "," : "");
  fb_sb_json_string(&js, file);
  if (s->label >= 0) {
    fb_sb_puts(&js, ", \"label\": ");
    fb_sb_json_string(&js, class_name(d, s->label, idx));
  }
  fb_sb_puts(&js, ", \"top\": [");
  for (int r = 0; r < k; r++) {
    fb_sb_puts(&csv, ",");
    fb_sb_csv_field(&csv, class_name(d, top[r], idx));
    fb_sb_printf(&csv, ",%.6f", prob[top[r]]);
    fb_sb_printf(&js, "%s{\"class\": ", r ? ", " : "");
    fb_sb_json_string(&js, class_name(d, top[r], idx));
    fb_sb_printf(&js, ", \"index\": %d, \"prob\": %.6f}", top[r], prob[top[r]]);
  }
  fb_sb_puts(&js, "]}");
  fb_sb_puts(&csv, "\n");
  fputs(fb_sb_str(&csv), c->csv);
  fputs(fb_sb_str(&js), c->json);
  fb_sb_free(&csv);
  fb_sb_free(&js);
  free(prob);
  free(top);
}

static int cls_eval_open(fb_task_eval *e, const fb_net *net, fb_status *st) {
  cls_eval *c = e->state = fb_xcalloc(1, sizeof *c);
  if (!e->o->pred_dir) return 0;
  char *csv = fb_path_join(e->o->pred_dir, "predictions.csv");
  char *js = fb_path_join(e->o->pred_dir, "predictions.json");
  int rc = 0;
  if (!(c->csv = fopen(csv, "w")) || !(c->json = fopen(js, "w")))
    rc = fb_fail_io(st, "%s: cannot open for writing", c->csv ? js : csv);
  if (rc == 0) {
    const int k = classes_listed(e->o, net->opts.num_classes);
    fprintf(c->csv, "file,label");
    for (int r = 1; r <= k; r++) fprintf(c->csv, ",class_%d,prob_%d", r, r);
    fputc('\n', c->csv);
    fputc('[', c->json);
  }
  free(csv);
  free(js);
  return rc;
}

static int cls_eval_batch(fb_task_eval *e, fb_net *net, const fb_batch *b, fb_status *st) {
  cls_eval *c = e->state;
  const int K = net->opts.num_classes;
  const float *logits = fb_net_logits(net);
  if (e->labelled) {
    int t1 = 0, t5 = 0;
    if (fb_cls_topk_counts(logits, b->labels, b->n, K, &t1, &t5, st)) return -1;
    c->top1 += t1;
    c->top5 += t5;
  }
  for (int i = 0; c->csv && i < b->n; i++)
    write_row(e, &e->d->s[b->index[i]], logits + (size_t)i * K, K);
  return 0;
}

static int close_files(cls_eval *c, const char *dir, fb_status *st) {
  int rc = 0;
  if (c->json) {
    fputs("\n]\n", c->json);
    if (fclose(c->json) != 0 && st) rc = fb_fail_io(st, "%s: write failed", dir);
  }
  if (c->csv && fclose(c->csv) != 0 && st) rc = fb_fail_io(st, "%s: write failed", dir);
  c->json = c->csv = NULL;
  return rc;
}

static int cls_eval_finish(fb_task_eval *e, fb_mt_metrics *m, fb_status *st) {
  cls_eval *c = e->state;
  if (e->labelled) {
    m->top1 = (double)c->top1 / e->d->n;
    m->top5 = (double)c->top5 / e->d->n;
  }
  return close_files(c, e->o->pred_dir, st);
}

static void cls_eval_free(fb_task_eval *e) {
  if (e->state) close_files(e->state, NULL, NULL);
  free(e->state);
  e->state = NULL;
}

static double cls_headline(const fb_mt_metrics *m) { return m->top1; }

static void cls_metrics_json(const fb_mt_metrics *m, fb_strbuf *b) {
  fb_sb_printf(b, ", \"top1\": %.5f, \"top5\": %.5f", m->top1, m->top5);
}

static void cls_metrics_text(const fb_mt_metrics *m, fb_strbuf *b) {
  fb_sb_printf(b, " top-1 %.2f%%  top-5 %.2f%%", 100 * m->top1, 100 * m->top5);
}

const fb_task_row fb_task_cls_row = {
    .id = FB_TASK_CLS,
    .name = "cls",
    .title = "classification",
    .metric = "top-1",
    .n_strides = 0,
    .default_paths = 1,
    .one_path = 1,
    .add_head = cls_add_head,
    .roots = cls_roots,
    .outputs = cls_outputs,
    .output_names = {"logits"},
    .output_ranks = {2},
    .set_targets = cls_set_targets,
    .load_split = cls_load_split,
    .head_from_data = cls_head_from_data,
    .head_size = cls_head_size,
    .proxy_lacks = "has no class labels",
    .has_labels = cls_has_labels,
    .eval_open = cls_eval_open,
    .eval_batch = cls_eval_batch,
    .eval_finish = cls_eval_finish,
    .eval_free = cls_eval_free,
    .headline = cls_headline,
    .metrics_json = cls_metrics_json,
    .metrics_text = cls_metrics_text,
};
