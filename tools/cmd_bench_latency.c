/* fbnet bench latency: a latency table of a supernet's elements measured in
 * fbnet's own inference runtime on this machine, and its check against whole
 * derived networks (src/search/latency.h, docs/latency.md). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "term_log.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/progress.h"
#include "core/status.h"
#include "nn/net.h"
#include "search/latency.h"

/* "1,2" -> thread counts; -1 with a message. */
static int parse_threads(const char *s, fb_lat_cfg *c) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  c->n_threads = 0;
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *end = NULL;
    const long v = strtol(tok, &end, 10);
    int dup = 0;
    for (int k = 0; k < c->n_threads; k++) dup |= c->threads[k] == v;
    if (!end || *end || v < 1 || v > 1024 || dup || c->n_threads == FB_LAT_MAX_THREADS) {
      fprintf(stderr, "fbnet bench latency: --threads: '%s' is %s (a comma-separated list of up "
              "to %d thread counts, e.g. 1,2)\n", tok, dup ? "given twice" : "not a thread count",
              FB_LAT_MAX_THREADS);
      return -1;
    }
    c->threads[c->n_threads++] = (int)v;
  }
  if (c->n_threads == 0) fprintf(stderr, "fbnet bench latency: --threads is empty\n");
  return c->n_threads ? 0 : -1;
}

static void show_progress(void *ctx, double frac, const char *text) {
  fb_progress *p = ctx;
  const double now = fb_now_sec();
  if (fb_progress_due(p, now, frac >= 1)) fb_progress_show(p, now, frac, text);
}

static void print_table(const fb_lat_table *t, FILE *f) {
  fprintf(f, "latency table: %s at %d px, width %g, batch %d, on %s (%d cores)\n", t->supernet,
          t->input_size, t->width, t->batch, t->cpu, t->cores);
  fprintf(f, "%-8s %-5s %10s %10s %10s %12s %9s\n", "threads", "task", "fixed ms", "min ms",
          "max ms", "fit rmse ms", "fit mape");
  for (int k = 0; k < t->n_entries; k++)
    for (int i = 0; i < t->entry[k].n_tasks; i++) {
      const fb_lat_task *lt = &t->entry[k].task[i];
      fprintf(f, "%-8d %-5s %10.3f %10.3f %10.3f %12.3f %8.2f%%\n", t->entry[k].threads,
              fb_task_name(lt->task), lt->fixed_ms, lt->min_ms, lt->max_ms, lt->rmse_ms, lt->mape);
    }
}

/* The check's table on stderr, its JSON as the last line on stdout: per
 * thread count the lowest per-task Spearman and the mean error over all
 * networks, and every (threads, task) row. */
static void print_check(const fb_lat_check_row *r, int n, FILE *f) {
  fprintf(f, "%-8s %-5s %9s %9s %9s %10s   %12s %9s %7s\n", "threads", "task", "networks",
          "spearman", "mape", "max error", "raw spearman", "raw mape", "speed");
  for (int i = 0; i < n; i++)
    fprintf(f, "%-8d %-5s %9d %9.3f %8.2f%% %9.2f%%   %12.3f %8.2f%% %7.3f\n", r[i].threads,
            fb_task_name(r[i].task), r[i].n, r[i].spearman, r[i].mape, r[i].max_ape,
            r[i].raw_spearman, r[i].raw_mape, r[i].speed);
  fprintf(f, "(spearman, mape: predicted vs measured at the table's machine speed, each network's "
          "time scaled by the reference network's timed beside it; raw: as measured now; speed: "
          "the machine now / when the table was made)\n");
  printf("{\"check\": [");
  int first = 1;
  for (int i = 0; i < n; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= r[j].threads == r[i].threads;
    if (seen) continue;
    double sp = INFINITY, ape = 0, mx = 0;
    int nets = 0;
    for (int j = i; j < n; j++) {
      if (r[j].threads != r[i].threads) continue;
      if (r[j].spearman < sp) sp = r[j].spearman;
      ape += r[j].mape * r[j].n, nets += r[j].n;
      if (r[j].max_ape > mx) mx = r[j].max_ape;
    }
    printf("%s{\"threads\": %d, \"spearman\": %.4f, \"mape\": %.3f, \"max_error\": %.3f, "
           "\"networks\": %d, \"tasks\": {", first ? "" : ", ", r[i].threads, sp, ape / nets, mx,
           nets);
    first = 0;
    int ft = 1;
    for (int j = i; j < n; j++) {
      if (r[j].threads != r[i].threads) continue;
      printf("%s\"%s\": {\"spearman\": %.4f, \"mape\": %.3f, \"max_error\": %.3f, \"n\": %d, "
             "\"raw_spearman\": %.4f, \"raw_mape\": %.3f, \"speed\": %.4f}",
             ft ? "" : ", ", fb_task_name(r[j].task), r[j].spearman, r[j].mape, r[j].max_ape,
             r[j].n, r[j].raw_spearman, r[j].raw_mape, r[j].speed);
      ft = 0;
    }
    printf("}}");
  }
  printf("]}\n");
}

typedef struct lat_opts {
  const char *supernet, *out, *table, *threads, *tasks;
  int input, batch, classes, cats, seg_classes, networks, reps, warmup, seed, check, check_n;
  int force, json;
  double width;
} lat_opts;

static int load_or_build(const lat_opts *o, fb_lat_cfg *c, fb_lat_table *t, fb_progress *pr,
                         fb_status *st) {
  if (!o->table) {
    const double t0 = fb_now_sec();
    if (fb_lat_build(c, t, st)) return -1;
    fb_progress_end(pr);
    fprintf(stderr, "fbnet bench latency: %d networks per task measured in %.0f s\n", c->samples,
            fb_now_sec() - t0);
    char *text = fb_lat_to_json(t);
    const int rc = fb_write_text_atomic(o->out, text, st);
    free(text);
    if (rc) return -1;
    print_table(t, stderr);
    fprintf(stderr, "fbnet bench latency: wrote %s\n", o->out);
    return 0;
  }
  if (fb_lat_read(o->table, t, st)) return -1;
  c->deploy.input_size = t->input_size; /* check the table as it was made */
  c->deploy.width = t->width;
  c->deploy.num_classes = t->num_classes;
  c->deploy.num_cats = t->num_cats;
  c->deploy.num_seg_classes = t->num_seg_classes;
  fb_arch *a = fb_arch_load(c->supernet_path, st);
  fb_build_opts b = c->deploy;
  b.tasks = c->tasks;
  fb_net *net = a ? fb_net_build(a, &b, 1, st) : NULL;
  fb_arch_free(a);
  char warn[600];
  int rc = net ? 0 : -1;
  for (int k = 0; k < t->n_entries && rc == 0; k++)
    if (!fb_lat_compat(t, o->table, net, &b, t->entry[k].threads, o->force, warn,
                       sizeof warn, st))
      rc = -1;
  if (rc == 0 && *warn) fprintf(stderr, "fbnet bench latency: warning: %s: %s\n", o->table, warn);
  fb_net_free(net);
  if (rc) fb_lat_free(t);
  return rc;
}

int bench_latency(int argc, char **argv) {
  lat_opts o = {.supernet = "builtin:fbnetv5_supernet", .out = "lut.json", .input = 224,
                .batch = 1, .networks = 100, .reps = 7, .warmup = 1, .seed = 1, .check_n = 30,
                .width = 1.0, .tasks = "cls,det,seg"};
  o.classes = 1000, o.cats = 80, o.seg_classes = 21; /* ImageNet, COCO, VOC */
  const arg_opt opts[] = {
      {"--supernet", ARG_STRING, &o.supernet, 0, 0, NULL,
       "supernet arch file (default builtin:fbnetv5_supernet)"},
      {"--input", ARG_INT, &o.input, 32, 2048, NULL,
       "input size of the deployed networks (default 224)"},
      {"--width", ARG_DOUBLE, &o.width, 0.05, 4.0, NULL, "width multiplier (default 1.0)"},
      {"--batch", ARG_INT, &o.batch, 1, 1, NULL, "batch size (1: the latency setting)"},
      {"--threads", ARG_STRING, &o.threads, 0, 0, NULL,
       "thread counts, one table each, e.g. 1,2 (default: 1 and all cores)"},
      {"--tasks", ARG_STRING, &o.tasks, 0, 0, NULL, "tasks (default cls,det,seg)"},
      {"--classes", ARG_INT, &o.classes, 1, 1000000, NULL, "classifier outputs (default 1000)"},
      {"--cats", ARG_INT, &o.cats, 1, 100000, NULL, "detection categories (default 80)"},
      {"--seg-classes", ARG_INT, &o.seg_classes, 1, 100000, NULL,
       "segmentation classes (default 21)"},
      {"--networks", ARG_INT, &o.networks, 8, 100000, NULL,
       "random derived networks measured per task for the fit (default 100)"},
      {"--reps", ARG_INT, &o.reps, 3, 256, NULL, "timed runs per network, the median kept (7)"},
      {"--warmup", ARG_INT, &o.warmup, 0, 100, NULL, "untimed runs first (1)"},
      {"--seed", ARG_INT, &o.seed, 0, 2147483647, NULL, "seed of the sampled networks (1)"},
      {"--out", ARG_STRING, &o.out, 0, 0, NULL, "the table (default lut.json)"},
      {"--table", ARG_STRING, &o.table, 0, 0, NULL,
       "with --check: check this table (at its input size, width and heads) instead of measuring a new one"},
      {"--check", ARG_FLAG, &o.check, 0, 0, NULL,
       "then measure fresh random derived networks, whole, against the table's prediction: "
       "Spearman and mean absolute percentage error per thread count (last line JSON)"},
      {"--check-networks", ARG_INT, &o.check_n, 3, 100000, NULL,
       "--check: networks per task (default 30)"},
      {"--json", ARG_FLAG, &o.json, 0, 0, NULL,
       "--check: the result as one JSON object, the last line on stdout (printed with --check "
       "in any case; the tables go to stderr)"},
      {"--force", ARG_FLAG, &o.force, 0, 0, NULL,
       "--table: use a table made for another input size, width or heads (a warning)"},
  };
  const arg_spec spec = {
      "fbnet bench latency [--supernet S] [--input N] [--threads 1,2] [--out lut.json] [--check]",
      "Measures what each searchable element of the supernet (block, cross term) and the fixed\n"
      "part of each task's network cost in time, in fbnet's own inference runtime on this\n"
      "machine: random derived networks are built as deployed (full heads, batch 1), timed\n"
      "(median of --reps runs) and the per-element times fitted by least squares. The table\n"
      "feeds 'fbnet search --latency-target'; --check measures fresh networks against it.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (o.table && !o.check) {
    fprintf(stderr, "fbnet bench latency: --table is for --check (checking a table made before)\n");
    return 2;
  }
  fb_lat_cfg c = {.supernet_path = o.supernet, .samples = o.networks, .warmup = o.warmup,
                  .reps = o.reps, .seed = (uint64_t)o.seed};
  if (!(c.tasks = parse_task_list(o.tasks, "fbnet bench latency"))) return 2;
  if (o.threads) {
    if (parse_threads(o.threads, &c)) return 2;
  } else {
    c.threads[c.n_threads++] = 1;
    if (omp_get_num_procs() > 1) c.threads[c.n_threads++] = omp_get_num_procs();
  }
  c.deploy = fb_build_opts_default();
  c.deploy.input_size = o.input;
  c.deploy.width = o.width;
  c.deploy.num_classes = o.classes;
  c.deploy.num_cats = o.cats;
  c.deploy.num_seg_classes = o.seg_classes;
  c.deploy.standard_padding = 1;
  fb_progress pr;
  fb_progress_init(&pr, tool_logger());
  c.progress = show_progress, c.ctx = &pr;
  fb_status st = {0};
  fb_lat_table t;
  if (load_or_build(&o, &c, &t, &pr, &st)) {
    fb_progress_end(&pr);
    fprintf(stderr, "fbnet bench latency: error: %s\n", st.msg);
    return 1;
  }
  rc = 0;
  if (o.check) {
    fb_lat_check_row rows[FB_LAT_MAX_THREADS * FB_LAT_MAX_TASKS];
    int n = 0;
    const double t0 = fb_now_sec();
    rc = fb_lat_check(&t, &c, o.check_n, rows, &n, &st);
    fb_progress_end(&pr);
    if (rc) {
      fprintf(stderr, "fbnet bench latency: error: %s\n", st.msg);
    } else {
      fprintf(stderr, "fbnet bench latency: checked %d fresh networks per task in %.0f s\n",
              o.check_n, fb_now_sec() - t0);
      print_check(rows, n, stderr);
    }
  }
  fb_lat_free(&t);
  return rc ? 1 : 0;
}
