/* fbnet bench search: the central claim of FBNetV5, measured. Times search
 * steps (sample, importance weights, one forward and one backward with every
 * head, weight update, REINFORCE update) with the first 1, 2, ... T of
 * --tasks on the same synthetic batches, the same supernet and the same
 * sequence of architectures, and prints seconds per step for each task
 * count and ratio_3_to_1 (or ratio_T_to_1).
 *
 * "The same supernet": in these runs every path's output is computed, as
 * the supernet defines it, whatever heads are attached. A search for one
 * task alone (`fbnet search --tasks cls`) skips the parts of the supernet
 * its head cannot reach; those times are reported as
 * sec_per_step_alone_pruned, with the 3-task step relative to the slowest
 * and the cheapest of them. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/clock.h"
#include "core/rng.h"
#include "core/status.h"
#include "data/loader.h"
#include "data/synth.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "nn/profile.h"
#include "search/search.h"

typedef struct bench_cfg {
  const char *supernet, *tasks, *mask;
  int input, batch, steps, warmup, threads, json, det_width, seg_width, det_depth, cats, profile;
  int all_only;
  double width, keep_prob;
} bench_cfg;

/* Seconds per step of a profiled run by part of the network (trunk, each
 * head) and, for the trunk, by op family (src/nn/profile.h); head nodes above
 * 0.2 ms listed. */
static void print_profile(const fb_net *net, int steps, double step_sec) {
  const fb_graph *g = &net->g;
  double part_f[FB_PART_COUNT] = {0}, part_b[FB_PART_COUNT] = {0};
  double fam_f[FB_FAM_COUNT] = {0}, fam_b[FB_FAM_COUNT] = {0}, total = 0;
  for (int i = 0; i < g->n; i++) {
    if (!g->nodes[i].op) continue;
    const fb_part p = fb_profile_part_of(g->nodes[i].name);
    part_f[p] += g->prof_fwd[i];
    part_b[p] += g->prof_bwd[i];
    total += g->prof_fwd[i] + g->prof_bwd[i];
    if (p == FB_PART_TRUNK) {
      const fb_family f = fb_profile_family_of(g, i);
      fam_f[f] += g->prof_fwd[i];
      fam_b[f] += g->prof_bwd[i];
    } else if ((g->prof_fwd[i] + g->prof_bwd[i]) / steps > 2e-4) {
      fprintf(stderr, "    head node %-28s %-16s fwd %.4f bwd %.4f\n", g->nodes[i].name,
              g->nodes[i].op->name, g->prof_fwd[i] / steps, g->prof_bwd[i] / steps);
    }
  }
  fprintf(stderr, "profile (%d steps), seconds per step:\n", steps);
  for (int p = 0; p < FB_PART_COUNT; p++)
    fprintf(stderr, "  %-9s forward %.4f  backward %.4f\n", fb_part_name((fb_part)p),
            part_f[p] / steps, part_b[p] / steps);
  fprintf(stderr, "  outside the graph (targets, optimizer, sampling, data): %.4f\n",
          step_sec - total / steps);
  fprintf(stderr, "  trunk by op family:\n");
  for (int f = 0; f < FB_FAM_COUNT; f++)
    if (fam_f[f] + fam_b[f] > 0)
      fprintf(stderr, "    %-22s forward %.4f  backward %.4f\n", fb_family_name((fb_family)f),
              fam_f[f] / steps, fam_b[f] / steps);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The architectures of the timed steps: --mask for all, or Bernoulli draws. */
static uint8_t *make_masks(const bench_cfg *bc, int B, int n, fb_status *st) {
  uint8_t *m = fb_xcalloc((size_t)n * B, 1);
  if (bc->mask) {
    if (fb_mask_from_string(bc->mask, B, m, st)) {
      free(m);
      return NULL;
    }
    for (int i = 1; i < n; i++) memcpy(m + (size_t)i * B, m, (size_t)B);
    return m;
  }
  fb_rng r;
  fb_rng_seed(&r, 12345);
  for (int i = 0; i < n * B; i++) m[i] = fb_rng_uniform(&r) < bc->keep_prob;
  return m;
}

/* One timed configuration: a supernet with the heads of `tasks`, its loader
 * and searcher, and the times of its steps. */
typedef struct bench_run {
  unsigned tasks;
  int pruned;
  fb_search_cfg c;
  fb_net *net;
  fb_loader *loader;
  fb_searcher e;
  double *dt;
  double macs;
} bench_run;

static int run_open(bench_run *r, const bench_cfg *bc, unsigned tasks, int pruned,
                    const fb_mt_dataset *d, int n_steps, fb_status *st) {
  memset(r, 0, sizeof *r);
  r->tasks = tasks;
  r->pruned = pruned;
  r->c = fb_search_cfg_default();
  r->c.tasks = tasks;
  r->c.steps = 1000000;
  r->c.warmup_frac = 0; /* theta updates run in every timed step */
  r->c.batch = bc->batch;
  fb_build_opts b = fb_build_opts_default();
  b.input_size = bc->input;
  b.width = bc->width;
  b.standard_padding = 1;
  b.tasks = tasks;
  b.num_classes = d->num_classes;
  b.num_cats = d->num_cats;
  b.num_seg_classes = d->num_seg_classes;
  b.det_width = bc->det_width;
  b.seg_width = bc->seg_width;
  b.det_depth = bc->det_depth;
  fb_arch *arch = fb_arch_load(bc->supernet, st);
  r->net = arch ? fb_net_build(arch, &b, 1, st) : NULL;
  fb_arch_free(arch);
  if (!r->net || fb_net_plan(r->net, bc->batch, 1, st)) return -1;
  if (!pruned) fb_mp_keep_all_paths(r->net); /* the same supernet whatever the heads */
  fb_loader_cfg lc = fb_loader_cfg_default(bc->input, 3, bc->batch, 1);
  lc.drop_last = 1;
  if (!(r->loader = fb_loader_create(d, &lc, st))) return -1;
  fb_loader_start_epoch(r->loader, 0);
  r->dt = fb_xcalloc((size_t)n_steps, sizeof *r->dt);
  return fb_searcher_init(&r->e, &r->c, r->net, st);
}

static int run_step(bench_run *r, int i, const uint8_t *mask, fb_status *st) {
  const fb_batch *bt = fb_loader_next(r->loader);
  if (!bt) {
    fb_loader_start_epoch(r->loader, i);
    bt = fb_loader_next(r->loader);
  }
  r->e.forced_mask = mask;
  fb_search_step_info o;
  const double t = fb_now_sec();
  if (fb_searcher_step(&r->e, bt, &o, st)) return -1;
  r->dt[i] = fb_now_sec() - t;
  if (i == 0) r->macs = fb_net_count(r->net).macs; /* the masked network, its heads */
  return 0;
}

/* Median of the timed steps. */
static double run_median(bench_run *r, const bench_cfg *bc) {
  double *x = r->dt + bc->warmup;
  const int s = bc->steps;
  qsort(x, (size_t)s, sizeof *x, cmp_double);
  return s % 2 ? x[s / 2] : 0.5 * (x[s / 2 - 1] + x[s / 2]);
}

static void run_close(bench_run *r) {
  fb_searcher_free(&r->e);
  fb_loader_free(r->loader);
  fb_net_free(r->net);
  free(r->dt);
}

/* Times the configurations interleaved (step i of every configuration, then
 * step i + 1, ...), so that a disturbance of the machine hits them alike;
 * every configuration sees the same architectures. sec[k]: medians. */
static int time_runs(const bench_cfg *bc, const unsigned *tasks, const int *pruned, int n_runs,
                     const fb_mt_dataset *d, double *sec, double *macs, fb_status *st) {
  const int n = bc->warmup + bc->steps;
  bench_run *r = fb_xcalloc((size_t)n_runs, sizeof *r);
  uint8_t *masks = NULL;
  int rc = 0;
  for (int k = 0; k < n_runs && rc == 0; k++)
    rc = run_open(&r[k], bc, tasks[k], pruned[k], d, n, st);
  const int B = rc == 0 ? r[0].e.B : 0;
  if (rc == 0 && !(masks = make_masks(bc, B, n, st))) rc = -1;
  for (int i = 0; i < n && rc == 0; i++)
    for (int k = 0; k < n_runs && rc == 0; k++) {
      if (bc->profile && i == bc->warmup) fb_graph_profile(&r[k].net->g, 1);
      rc = run_step(&r[k], i, masks + (size_t)i * B, st);
    }
  for (int k = 0; k < n_runs; k++) {
    if (rc == 0) {
      if (bc->profile) {
        double sum = 0;
        for (int i = bc->warmup; i < n; i++) sum += r[k].dt[i];
        fprintf(stderr, "[tasks %u%s]\n", tasks[k], pruned[k] ? ", pruned" : "");
        print_profile(r[k].net, bc->steps, sum / bc->steps);
      }
      sec[k] = run_median(&r[k], bc);
      if (macs) macs[k] = r[k].macs;
    }
    run_close(&r[k]);
  }
  free(r);
  free(masks);
  return rc;
}

static int run(const bench_cfg *bc) {
  fb_status st = {0};
  const unsigned tasks = parse_task_list(bc->tasks, "fbnet bench search");
  if (!tasks) return 2;
  unsigned list[FB_SEARCH_MAX_TASKS];
  const int T = fb_search_task_list(tasks, list);
  fb_mt_dataset d;
  if (fb_synth_dataset(bc->batch * 4, bc->input, bc->cats, 1, &d, &st)) {
    fprintf(stderr, "fbnet bench search: error: %s\n", st.msg);
    return 1;
  }
  /* configurations: the first 1..T tasks on the same supernet, then each task
   * alone as `fbnet search --tasks X` runs it (dead code skipped) */
  unsigned cfg_tasks[2 * FB_SEARCH_MAX_TASKS];
  int cfg_pruned[2 * FB_SEARCH_MAX_TASKS], n_cfg = 0;
  unsigned set = 0;
  if (bc->all_only) {
    cfg_tasks[n_cfg] = tasks;
    cfg_pruned[n_cfg++] = 0;
  } else {
    for (int k = 0; k < T; k++) {
      cfg_tasks[n_cfg] = set |= list[k];
      cfg_pruned[n_cfg++] = 0;
    }
    for (int k = 0; k < T; k++) {
      cfg_tasks[n_cfg] = list[k];
      cfg_pruned[n_cfg++] = 1;
    }
  }
  double sec[2 * FB_SEARCH_MAX_TASKS] = {0}, macs[2 * FB_SEARCH_MAX_TASKS] = {0};
  int rc = time_runs(bc, cfg_tasks, cfg_pruned, n_cfg, &d, sec, macs, &st);
  fb_mt_dataset_free(&d);
  if (rc) {
    fprintf(stderr, "fbnet bench search: error: %s\n", st.msg);
    return 1;
  }
  if (bc->all_only) {
    printf("{\"sec_per_step\": %.6f, \"macs_per_image\": %.0f, \"tasks\": \"%s\", \"batch\": %d, "
           "\"threads\": %d}\n", sec[0], macs[0], bc->tasks, bc->batch, omp_get_max_threads());
    return 0;
  }
  const double *alone = sec + T;
  printf("{\"supernet\": \"%s\", \"input\": %d, \"width\": %g, \"batch\": %d, \"threads\": %d, "
         "\"steps\": %d, \"sec_per_step\": {", bc->supernet, bc->input, bc->width, bc->batch,
         omp_get_max_threads(), bc->steps);
  for (int k = 0; k < T; k++) printf("%s\"%d\": %.6f", k ? ", " : "", k + 1, sec[k]);
  printf("}, \"tasks_in_order\": [");
  for (int k = 0; k < T; k++) printf("%s\"%s\"", k ? ", " : "", fb_task_name(list[k]));
  printf("], \"sec_per_step_alone_pruned\": {");
  for (int k = 0; k < T; k++)
    printf("%s\"%s\": %.6f", k ? ", " : "", fb_task_name(list[k]), alone[k]);
  double slowest = 0, cheapest = 1e30;
  for (int k = 0; k < T; k++) {
    slowest = alone[k] > slowest ? alone[k] : slowest;
    cheapest = alone[k] < cheapest ? alone[k] : cheapest;
  }
  printf("}, \"ratio_%d_to_1\": %.4f, \"ratio_%d_to_slowest_single_pruned\": %.4f, "
         "\"ratio_%d_to_cheapest_single_pruned\": %.4f}\n", T, sec[T - 1] / sec[0], T,
         sec[T - 1] / slowest, T, sec[T - 1] / cheapest);
  return 0;
}

int bench_search(int argc, char **argv) {
  const fb_search_cfg dflt = fb_search_cfg_default(); /* bench what the search runs */
  bench_cfg bc = {.supernet = dflt.supernet_path, .tasks = "cls,det,seg", .mask = NULL,
                  .input = dflt.build.input_size, .batch = dflt.batch, .steps = 15, .warmup = 3,
                  .det_width = dflt.build.det_width, .seg_width = dflt.build.seg_width,
                  .det_depth = dflt.build.det_depth, .cats = 10, .width = dflt.build.width,
                  .keep_prob = 0.6};
  const arg_opt opts[] = {
      {"--tasks", ARG_STRING, &bc.tasks, 0, 0, NULL, "tasks in order (default cls,det,seg)"},
      {"--supernet", ARG_STRING, &bc.supernet, 0, 0, NULL,
       "supernet arch file (default builtin:fbnetv5_supernet)"},
      {"--input", ARG_INT, &bc.input, 32, 2048, NULL, "input size (default: the search's, 64)"},
      {"--width", ARG_DOUBLE, &bc.width, 0.05, 4, NULL, "width multiplier (default: the search's, 1.0)"},
      {"--batch", ARG_INT, &bc.batch, 1, 4096, NULL, "images per step (default 32)"},
      {"--steps", ARG_INT, &bc.steps, 1, 100000, NULL, "timed steps per configuration (default 15; configurations step in turn)"},
      {"--warmup", ARG_INT, &bc.warmup, 0, 100000, NULL, "untimed steps first (default 3)"},
      {"--keep-prob", ARG_DOUBLE, &bc.keep_prob, 0, 1, NULL,
       "probability of each bit in the sampled architectures (default 0.6)"},
      {"--mask", ARG_STRING, &bc.mask, 0, 0, NULL, "use this bit string for every step"},
      {"--cats", ARG_INT, &bc.cats, 1, 200, NULL, "categories of the synthetic data (default 10)"},
      {"--det-width", ARG_INT, &bc.det_width, 8, 1024, NULL, "detection head channels (default: the search's, 32)"},
      {"--seg-width", ARG_INT, &bc.seg_width, 8, 1024, NULL, "segmentation head channels (the search's, 16)"},
      {"--det-depth", ARG_INT, &bc.det_depth, -1, 8, NULL, "detection tower depth (the search's, 1; -1: none)"},
      {"--threads", ARG_INT, &bc.threads, 1, 1024, NULL, "OpenMP threads (default: all)"},
      {"--json", ARG_FLAG, &bc.json, 0, 0, NULL, "only the JSON line"},
      {"--all-only", ARG_FLAG, &bc.all_only, 0, 0, NULL,
       "time only the step with every task of --tasks (for bench/compare_search.sh)"},
      {"--profile", ARG_FLAG, &bc.profile, 0, 0, NULL,
       "print where the time goes (trunk, each head, by op) for every timed configuration"},
  };
  const arg_spec spec = {
      "fbnet bench search [--tasks cls,det,seg] [options]",
      "Times search steps with the first 1, 2, ... of --tasks on the same synthetic batches,\n"
      "supernet and architectures (the same sampled bit masks for every task count), and each\n"
      "task alone; prints one JSON line with seconds per step and ratio_T_to_1.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (bc.threads) omp_set_num_threads(bc.threads);
  return run(&bc);
}
