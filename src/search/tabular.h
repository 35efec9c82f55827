/* The search on a tabular NAS benchmark: the same architecture
 * distributions, sampler, importance weights and estimators as `fbnet
 * search` (src/search/archdist.h), with each sampled architecture's metrics
 * looked up in a table instead of computed by a supernet (`fbnet bench
 * tabular`, docs/search-quality.md).
 *
 * Table format (JSON; e.g. TransNAS-Bench-101's micro space, all 4,096 cells
 * with validation metrics on 7 tasks):
 *   {"name": "...", "source": "...",
 *    "decisions": [{"name": "edge0", "choices": ["none", "skip", ...]}, ...],
 *    "tasks": [{"name": "class_scene", "metric": "valid_top1", "higher_is_better": true}, ...],
 *    "costs": ["params", ...]                                   (optional)
 *    "rows": [[choice index per decision..., metric per task..., cost...], ...]}
 * Every combination of choices must appear exactly once (a complete table). */
#ifndef FB_SEARCH_TABULAR_H
#define FB_SEARCH_TABULAR_H

#include <stdint.h>

#include "fbnet.h"

#define FB_TABLE_MAX_TASKS 8
#define FB_TABLE_MAX_COSTS 4

typedef struct fb_nas_table {
  char *name, *path;
  int D;                       /* decisions */
  int *K;                      /* choices per decision */
  char **decision_names;
  int T;                       /* tasks */
  char **task_names, **metric_names;
  int *higher_is_better;
  int C;                       /* costs (0..FB_TABLE_MAX_COSTS) */
  char **cost_names;
  int n;                       /* rows = prod K */
  uint8_t *choices;            /* n x D, row-major */
  double *metric;              /* n x T */
  double *cost;                /* n x C */
  int *index;                  /* mixed-radix code of the choices -> row */
} fb_nas_table;

/* Reads and checks a table; errors name the file and the row or field. */
int fb_nas_table_load(const char *path, fb_nas_table *t, fb_status *st);
void fb_nas_table_free(fb_nas_table *t);
/* The row of an architecture (one choice per decision). */
int fb_nas_table_row(const fb_nas_table *t, const uint8_t *a);
/* Index of a task or cost by name; -1 when absent. */
int fb_nas_table_task(const fb_nas_table *t, const char *name);
int fb_nas_table_cost(const fb_nas_table *t, const char *name);

/* The estimator and budget of a tabular search. */
typedef struct fb_tab_cfg {
  long queries;                /* table look-ups of one run (one per step) */
  double lr;                   /* Adam on the logits */
  int adv_norm, replay;        /* the estimator (fb_archdist_set_estimator) */
  double elite;
  int cost;                    /* -1: none; else the cost with a target */
  double cost_target, cost_lambda;
} fb_tab_cfg;

/* The estimator presets of docs/search-quality.md: "plain" (the paper's
 * REINFORCE, one sample, EMA baseline, advantage / running deviation, lr
 * 0.1), "replay" (self-normalised reuse of every past sample, lr 0.02) and
 * "elite" (replay of the last 500 samples with the top-20% utility, lr 0.02; the default). 0, or -1
 * for an unknown name. */
int fb_tab_preset(const char *name, fb_tab_cfg *c);

/* Percentile of row r for task k: 100 * (rows strictly better) / rows; 0 =
 * the best row. With a cost target (c->cost >= 0) only rows within the
 * target count, and *feasible says whether r itself is within it. */
double fb_nas_percentile(const fb_nas_table *t, int k, int r, const fb_tab_cfg *c, int *feasible);

/* One search over `tasks` (n_tasks indices into the table's tasks) from
 * seed: c->queries steps; derived[i] = the derived row of tasks[i] (argmax
 * per decision). */
int fb_tab_search(const fb_nas_table *t, const int *tasks, int n_tasks, const fb_tab_cfg *c,
                  uint64_t seed, int *derived, fb_status *st);
/* Random search: the best of c->queries uniform draws (with replacement) by
 * task k's metric (within the cost target when there is one). */
int fb_tab_random(const fb_nas_table *t, int k, const fb_tab_cfg *c, uint64_t seed);

#endif
