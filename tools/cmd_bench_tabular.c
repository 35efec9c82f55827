/* fbnet bench tabular: the search's distributions and estimators on a public
 * tabular NAS benchmark (src/search/tabular.h): one multi-task run with N
 * queries against T single-task runs with N queries each and random search,
 * as percentiles of the derived architectures over many seeds. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/clock.h"
#include "core/status.h"
#include "search/tabular.h"

typedef struct stat_acc {
  double sum, sq;
  int n;
} stat_acc;

static void acc_add(stat_acc *a, double x) { a->sum += x, a->sq += x * x, a->n++; }
static double acc_mean(const stat_acc *a) { return a->n ? a->sum / a->n : 0; }
static double acc_sd(const stat_acc *a) {
  if (a->n < 2) return 0;
  const double m = acc_mean(a), v = (a->sq - a->n * m * m) / (a->n - 1);
  return v > 0 ? sqrt(v) : 0;
}

/* "a,b,c" -> task indices; -1 with a message listing the table's tasks. */
static int parse_tasks(const fb_nas_table *t, const char *list, int *tasks) {
  if (!list) {
    for (int k = 0; k < t->T; k++) tasks[k] = k;
    return t->T;
  }
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", list);
  int n = 0;
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    const int k = fb_nas_table_task(t, tok);
    int dup = 0;
    for (int i = 0; i < n; i++) dup |= tasks[i] == k;
    if (k < 0 || dup || n == FB_TABLE_MAX_TASKS) {
      fprintf(stderr, "fbnet bench tabular: --tasks: '%s' is %s; the tasks of %s are:", tok,
              dup ? "given twice" : "not a task of the table", t->path);
      for (int j = 0; j < t->T; j++) fprintf(stderr, " %s", t->task_names[j]);
      fprintf(stderr, "\n");
      return -1;
    }
    tasks[n++] = k;
  }
  return n;
}

/* "name=value" -> the cost index and target. */
static int parse_cost_target(const fb_nas_table *t, const char *s, fb_tab_cfg *c) {
  const char *eq = strchr(s, '=');
  char name[256], *end = NULL;
  snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - s) : 0, s);
  const double v = eq ? strtod(eq + 1, &end) : 0;
  c->cost = eq ? fb_nas_table_cost(t, name) : -1;
  if (!eq || !end || *end || !(v > 0) || c->cost < 0) {
    fprintf(stderr, "fbnet bench tabular: --cost-target must be NAME=VALUE (VALUE > 0) with "
            "NAME a cost of %s (%s)\n", t->path, t->C ? "" : "the table has no costs");
    for (int j = 0; j < t->C; j++) fprintf(stderr, "  %s\n", t->cost_names[j]);
    return -1;
  }
  c->cost_target = v;
  return 0;
}

typedef struct bench_result {
  stat_acc one[FB_TABLE_MAX_TASKS], single[FB_TABLE_MAX_TASKS], rnd[FB_TABLE_MAX_TASKS];
  stat_acc one_feasible[FB_TABLE_MAX_TASKS];
} bench_result;

/* Every seed: one run over all tasks, a single-task run per task and random
 * search per task; seeds in parallel (each run is independent). */
static int run_seeds(const fb_nas_table *t, const int *tasks, int n, const fb_tab_cfg *c,
                     int seeds, int single, bench_result *res, fb_status *st) {
  double *one = fb_xcalloc((size_t)seeds * n, sizeof *one), *sgl = fb_xcalloc((size_t)seeds * n, sizeof *sgl);
  double *rnd = fb_xcalloc((size_t)seeds * n, sizeof *rnd);
  int *feas = fb_xcalloc((size_t)seeds * n, sizeof *feas), failed = 0;
  fb_status err = {0};
#pragma omp parallel for schedule(dynamic, 1)
  for (int s = 0; s < seeds; s++) {
    int derived[FB_TABLE_MAX_TASKS];
    fb_status mine = {0};
    if (fb_tab_search(t, tasks, n, c, 1000 + (uint64_t)s, derived, &mine)) {
#pragma omp critical
      failed = 1, err = mine;
      continue;
    }
    for (int i = 0; i < n; i++) {
      const size_t at = (size_t)s * n + i;
      one[at] = fb_nas_percentile(t, tasks[i], derived[i], c, &feas[at]);
      int d1 = -1;
      if (single && fb_tab_search(t, &tasks[i], 1, c, 2000 + 8 * (uint64_t)s + i, &d1, &mine) == 0)
        sgl[at] = fb_nas_percentile(t, tasks[i], d1, c, NULL);
      rnd[at] = fb_nas_percentile(t, tasks[i], fb_tab_random(t, tasks[i], c, 3000 + 8 * (uint64_t)s + i),
                                  c, NULL);
    }
  }
  for (int s = 0; s < seeds && !failed; s++)
    for (int i = 0; i < n; i++) {
      const size_t at = (size_t)s * n + i;
      acc_add(&res->one[i], one[at]);
      acc_add(&res->one_feasible[i], feas[at]);
      if (single) acc_add(&res->single[i], sgl[at]);
      acc_add(&res->rnd[i], rnd[at]);
    }
  free(one), free(sgl), free(rnd), free(feas);
  if (failed) *st = err;
  return failed ? -1 : 0;
}

static void print_json_stat(const char *key, const stat_acc *a) {
  printf("\"%s\": {\"mean\": %.4f, \"sd\": %.4f, \"n\": %d}", key, acc_mean(a), acc_sd(a), a->n);
}

static void print_results(const fb_nas_table *t, const int *tasks, int n, const fb_tab_cfg *c,
                          const char *est, int seeds, int single, const bench_result *r,
                          double sec, int json) {
  stat_acc all_one = {0}, all_single = {0}, all_rnd = {0};
  for (int i = 0; i < n; i++) {
    acc_add(&all_one, acc_mean(&r->one[i]));
    if (single) acc_add(&all_single, acc_mean(&r->single[i]));
    acc_add(&all_rnd, acc_mean(&r->rnd[i]));
  }
  fprintf(stderr, "%s: %d tasks, %ld queries per run, %d seeds, estimator %s (lr %g, replay %d, "
          "elite %g, adv-norm %d), %.1f s\n", t->name, n, c->queries, seeds, est, c->lr, c->replay,
          c->elite, c->adv_norm, sec);
  fprintf(stderr, "percentile of the derived architecture (0 = the best row; mean +- sd over seeds)\n");
  fprintf(stderr, "%-18s %-18s %-26s %-18s\n", "task", "one run (all tasks)",
          single ? "single-task runs (N each)" : "", "random (best of N)");
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%-18s %7.3f +- %-7.3f %9.3f +- %-13.3f %7.3f +- %-7.3f\n",
            t->task_names[tasks[i]], acc_mean(&r->one[i]), acc_sd(&r->one[i]),
            single ? acc_mean(&r->single[i]) : NAN, single ? acc_sd(&r->single[i]) : NAN,
            acc_mean(&r->rnd[i]), acc_sd(&r->rnd[i]));
  fprintf(stderr, "%-18s %7.3f            %9.3f                  %7.3f\n", "mean of tasks",
          acc_mean(&all_one), single ? acc_mean(&all_single) : NAN, acc_mean(&all_rnd));
  if (!json) return;
  printf("{\"table\": \"%s\", \"queries\": %ld, \"seeds\": %d, \"estimator\": \"%s\", \"lr\": %g, "
         "\"replay\": %d, \"elite\": %g, \"adv_norm\": %d, \"tasks\": [", t->name, c->queries,
         seeds, est, c->lr, c->replay, c->elite, c->adv_norm);
  for (int i = 0; i < n; i++) {
    printf("%s{\"name\": \"%s\", ", i ? ", " : "", t->task_names[tasks[i]]);
    print_json_stat("one_run", &r->one[i]);
    if (single) printf(", "), print_json_stat("single", &r->single[i]);
    printf(", ");
    print_json_stat("random", &r->rnd[i]);
    if (c->cost >= 0) printf(", \"one_run_feasible\": %.4f", acc_mean(&r->one_feasible[i]));
    printf("}");
  }
  printf("], \"mean\": {\"one_run\": %.4f, \"single\": %.4f, \"random\": %.4f}, \"seconds\": %.2f}\n",
         acc_mean(&all_one), single ? acc_mean(&all_single) : -1, acc_mean(&all_rnd), sec);
}

int bench_tabular(int argc, char **argv) {
  const char *table = NULL, *task_list = NULL, *estimator = "elite", *cost = NULL;
  double queries = 1000, lr = -1, elite = -1, lambda = 1;
  int seeds = 20, replay = -1, adv_norm = -1, no_single = 0, json = 0, threads = 0;
  const arg_opt opts[] = {
      {"--table", ARG_STRING, &table, 0, 0, NULL, "benchmark table (JSON, required; format in docs/search-quality.md)"},
      {"--tasks", ARG_STRING, &task_list, 0, 0, NULL, "comma-separated task names (default: all of the table's)"},
      {"--queries", ARG_DOUBLE, &queries, 1, 1e7, NULL, "table look-ups per run, N (default 1000)"},
      {"--seeds", ARG_INT, &seeds, 1, 100000, NULL, "runs of each kind (default 20)"},
      {"--estimator", ARG_STRING, &estimator, 0, 0, NULL,
       "plain | replay | elite (default elite; docs/search-quality.md)"},
      {"--lr", ARG_DOUBLE, &lr, 1e-6, 10, NULL, "Adam lr of the logits (default: the estimator's)"},
      {"--replay", ARG_INT, &replay, 0, 1000000, NULL, "reuse the last W samples (0: plain)"},
      {"--elite", ARG_DOUBLE, &elite, 0, 0.99, NULL, "replay: elite fraction (0: normalised rewards)"},
      {"--adv-norm", ARG_INT, &adv_norm, 0, 1, NULL, "plain: divide advantages by a running deviation (0|1)"},
      {"--no-single", ARG_FLAG, &no_single, 0, 0, NULL, "skip the single-task runs"},
      {"--cost-target", ARG_STRING, &cost, 0, 0, NULL,
       "NAME=VALUE: a budget on one of the table's costs (reward + lambda * max(0, cost/VALUE - 1))"},
      {"--cost-lambda", ARG_DOUBLE, &lambda, 0, 1e9, NULL, "weight of the cost term, in metric units (default 1)"},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "seeds run in parallel on this many threads (default: all)"},
      {"--json", ARG_FLAG, &json, 0, 0, NULL, "print the results as one JSON line on stdout"},
  };
  const arg_spec spec = {
      "fbnet bench tabular --table TABLE.json [--tasks a,b] [--queries N] [--seeds S] [options]",
      "Runs the search's architecture distributions and estimator on a tabular NAS benchmark:\n"
      "per seed, ONE run over all tasks with N queries (every query returns every task's\n"
      "metric, as one supernet pass feeds every head), T single-task runs with N queries each,\n"
      "and random search (best of N). Prints, per task, the percentile of the derived\n"
      "architecture (argmax per decision; 0 = the table's best row), mean and sd over seeds.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!table) {
    fprintf(stderr, "fbnet bench tabular: --table is required (see --help)\n");
    return 2;
  }
  fb_tab_cfg c = {.queries = (long)queries, .cost = -1, .cost_lambda = lambda};
  if (fb_tab_preset(estimator, &c)) {
    fprintf(stderr, "fbnet bench tabular: --estimator must be plain, replay or elite, got '%s'\n",
            estimator);
    return 2;
  }
  if (lr > 0) c.lr = lr;
  if (replay >= 0) c.replay = replay;
  if (elite >= 0) c.elite = elite;
  if (adv_norm >= 0) c.adv_norm = adv_norm;
  if (threads) omp_set_num_threads(threads);
  fb_status st = {0};
  fb_nas_table t;
  if (fb_nas_table_load(table, &t, &st)) {
    fprintf(stderr, "fbnet bench tabular: error: %s\n", st.msg);
    return 1;
  }
  int tasks[FB_TABLE_MAX_TASKS];
  const int n = parse_tasks(&t, task_list, tasks);
  if (n < 0 || (cost && parse_cost_target(&t, cost, &c))) {
    fb_nas_table_free(&t);
    return 2;
  }
  bench_result res;
  memset(&res, 0, sizeof res);
  const double t0 = fb_now_sec();
  rc = run_seeds(&t, tasks, n, &c, seeds, !no_single, &res, &st);
  if (rc) fprintf(stderr, "fbnet bench tabular: error: %s\n", st.msg);
  else print_results(&t, tasks, n, &c, estimator, seeds, !no_single, &res, fb_now_sec() - t0, json);
  fb_nas_table_free(&t);
  return rc ? 1 : 0;
}
