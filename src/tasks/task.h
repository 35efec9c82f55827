/* The task table: what fbnet knows about a task, in one row per task
 * (src/tasks/<name>/task.c): its names, its head's loss and output nodes,
 * its targets from a batch, its data format, and its evaluation.
 *
 * Code above the tasks (the trainer, the search, derivation, evaluation, the
 * CLI) loops over the table or asks a row instead of testing task ids, so a
 * new task is a new folder with its row, listed in task.c. A task is one
 * FB_TASK_* bit (include/fbnet.h); its slot is its position in the table,
 * which orders tasks wherever they are listed (cls, det, seg). */
#ifndef FB_TASKS_TASK_H
#define FB_TASKS_TASK_H

#include <stddef.h>

#include "core/strbuf.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "fbnet.h"

struct fb_net;
struct fb_eval_opts;
struct fb_mt_metrics;

/* One evaluation of one task: what every task's evaluation hooks share, and
 * the task's own state (counts, detections, a confusion matrix...). */
typedef struct fb_task_eval {
  const struct fb_eval_opts *o; /* o->pred_dir: write predictions there */
  const fb_mt_dataset *d;
  int labelled; /* the set has labels: compute metrics */
  void *state;
} fb_task_eval;

typedef struct fb_task_row {
  unsigned id;        /* its FB_TASK_* bit */
  const char *name;   /* "cls": the CLI's --tasks, file and JSON keys */
  const char *title;  /* "classification" */
  const char *metric; /* its headline metric: "top-1" */

  /* where its head reads the backbone: a chain arch at these strides
   * (n_strides 0: the classifier after the last block); a multi-path arch on
   * `default_paths` paths of the last stage (the last ones; 0: all),
   * one_path: exactly one, written as an index in the arch file ("cls": 3) */
  int n_strides, strides[4];
  int default_paths, one_path;
  /* adds the head on feature nodes feat (n, at the given strides) */
  int (*add_head)(struct fb_net *net, const int *feat, const int *strides, int n, fb_status *st);

  /* the head in a built network */
  int (*roots)(const struct fb_net *net, int *roots);  /* its loss nodes (<= 4) */
  int (*outputs)(const struct fb_net *net, int *nodes); /* what inference reads (<= 4) */
  /* their names after "<task>." and ranks: node (N, C, H, W) read as [N, C]
   * (rank 2), [N, C, H] (rank 3: W = 1) or [N, C, H, W] */
  const char *output_names[4];
  int output_ranks[4];
  int (*set_targets)(struct fb_net *net, const fb_batch *b, fb_status *st);

  /* its data: one split of a set in the task's standard format, the head
   * size it asks for, whether the set has labels for it */
  int (*load_split)(const char *dir, const char *split, fb_mt_dataset *d, fb_status *st);
  void (*head_from_data)(const fb_mt_dataset *d, fb_build_opts *o);
  int (*head_size)(const fb_mt_dataset *d); /* classes, categories... the set gives (0: none) */
  const char *proxy_lacks; /* a proxy set without its labels: what it says, what to do */
  int (*has_labels)(const fb_mt_dataset *d);

  /* evaluation: open (state, prediction files), each batch after the
   * forward pass, finish (metrics into m, predictions written), free
   * (always, also after an error) */
  int (*eval_open)(fb_task_eval *e, const struct fb_net *net, fb_status *st);
  int (*eval_batch)(fb_task_eval *e, struct fb_net *net, const fb_batch *b, fb_status *st);
  int (*eval_finish)(fb_task_eval *e, struct fb_mt_metrics *m, fb_status *st);
  void (*eval_free)(fb_task_eval *e);
  double (*headline)(const struct fb_mt_metrics *m);
  /* appends its metrics as JSON members (", \"top1\": 0.5, ...") */
  void (*metrics_json)(const struct fb_mt_metrics *m, fb_strbuf *b);
  /* appends its metrics for a person to read (" top-1 45.10%  top-5 ...") */
  void (*metrics_text)(const struct fb_mt_metrics *m, fb_strbuf *b);
} fb_task_row;

/* The rows in slot order; NULL past the end. */
const fb_task_row *fb_task_at(int slot);
/* The row of one FB_TASK_* bit, or NULL. */
const fb_task_row *fb_task_row_of(unsigned id);
/* The row named "cls" / "det" / "seg", or NULL. */
const fb_task_row *fb_task_named(const char *name);
/* A task's slot (0, 1, 2...), -1 for anything but one known bit. */
int fb_task_slot(unsigned id);
/* Every task's bit. */
unsigned fb_task_all(void);
/* The bits of tasks, one per entry in slot order; returns their count. */
int fb_task_list(unsigned tasks, unsigned *list);

extern const fb_task_row fb_task_cls_row, fb_task_det_row, fb_task_seg_row;

#endif
