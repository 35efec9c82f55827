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
#include "tasks/task.h"
#include "train/mt_trainer.h"

/* ---- the loop ------------------------------------------------------------- */

/* Opens every head's evaluation (e[k] for the k-th task of the network). */
static int eval_open_all(fb_net *net, const fb_mt_dataset *d, int labelled, const fb_eval_opts *o,
                         const fb_task_row **row, fb_task_eval *e, int n, fb_status *st) {
  for (int k = 0; k < n; k++) {
    e[k] = (fb_task_eval){.o = o, .d = d, .labelled = labelled};
    if (row[k]->eval_open(&e[k], net, st)) return -1;
  }
  return 0;
}

static int eval_loop(fb_net *net, const fb_mt_dataset *d, const fb_eval_opts *o,
                     const fb_task_row **row, fb_task_eval *e, int n, fb_status *st) {
  fb_loader *l = fb_mt_loader_create(d, net, net->g.batch, 0, NULL, o->threads, st);
  if (!l) return -1;
  fb_loader_start_epoch(l, 0);
  const fb_batch *b;
  const double t0 = fb_now_sec();
  double last = t0;
  long done = 0;
  int rc = 0;
  while (rc == 0 && (b = fb_loader_next(l))) {
    if (fb_mt_fill_batch(net, b, 0, st)) {
      rc = -1;
      break;
    }
    fb_net_forward(net, 0);
    for (int k = 0; rc == 0 && k < n; k++) rc = row[k]->eval_batch(&e[k], net, b, st);
    done += b->n;
    const double t = fb_now_sec();
    if (o->progress && t - last > 10.0) {
      fb_log(o->log, FB_LOG_INFO, "evaluating: %ld/%d images  %.0f img/s", done, d->n, done / (t - t0));
      last = t;
    }
  }
  fb_loader_free(l);
  return rc;
}

int fb_mt_evaluate(fb_net *net, const fb_mt_dataset *d, int task, const fb_eval_opts *o,
                   fb_mt_metrics *m, fb_status *st) {
  memset(m, 0, sizeof *m);
  m->task = task;
  m->images = d->n;
  const fb_task_row *asked = fb_task_row_of((unsigned)task);
  if (!asked) return fb_fail(st, "internal: fb_mt_evaluate: task %d is not one task", task);
  m->labelled = asked->has_labels(d);
  if (o->pred_dir && fb_mkdir_p(o->pred_dir, st)) return -1;
  unsigned ids[FB_TASKS_MAX];
  const fb_task_row *row[FB_TASKS_MAX];
  fb_task_eval e[FB_TASKS_MAX] = {0};
  const int n = fb_task_list(net->tasks, ids);
  for (int k = 0; k < n; k++) row[k] = fb_task_row_of(ids[k]);
  int rc = eval_open_all(net, d, m->labelled, o, row, e, n, st);
  if (rc == 0) rc = eval_loop(net, d, o, row, e, n, st);
  for (int k = 0; rc == 0 && k < n; k++) rc = row[k]->eval_finish(&e[k], m, st);
  for (int k = 0; k < n; k++)
    if (e[k].o) row[k]->eval_free(&e[k]);
  return rc;
}

/* ---- reporting ------------------------------------------------------------ */

double fb_mt_headline(const fb_mt_metrics *m) {
  const fb_task_row *r = fb_task_row_of((unsigned)m->task);
  return r ? r->headline(m) : NAN;
}

const char *fb_mt_headline_name(int task) {
  const fb_task_row *r = fb_task_row_of((unsigned)task);
  return r ? r->metric : "?";
}

void fb_mt_metrics_json(const fb_mt_metrics *m, char *buf, size_t n) {
  const fb_task_row *r = fb_task_row_of((unsigned)m->task);
  fb_strbuf b = {0};
  fb_sb_printf(&b, "{\"task\": \"%s\", \"images\": %d", fb_task_name(m->task), m->images);
  if (!m->labelled) fb_sb_puts(&b, ", \"labelled\": false");
  else if (r) r->metrics_json(m, &b);
  fb_sb_puts(&b, "}");
  snprintf(buf, n, "%s", b.s);
  fb_sb_free(&b);
}
