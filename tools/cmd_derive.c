/* fbnet derive: a task's architecture from a search run (threshold, then
 * drop what cannot reach the head) as an arch file; optionally evaluate it
 * with the shared supernet weights after BN re-calibration. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "term_log.h"
#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/rng.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/archdist.h"
#include "search/derive.h"
#include "search/latency.h"
#include "search/search.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/mt_trainer.h"

typedef struct derive_opts {
  const char *run, *bits, *out, *eval_data, *lat_table;
  int task, recal_images, batch, threads, no_recal, json, input, random, seed, front;
  int lat_threads, lat_force;
  double thresh, width, macs, tolerance;
  const char *out_dir;
} derive_opts;

/* The deployed networks' input size and width: --input/--width, else what
 * the run's summary.json recorded, else the search's own. */
static fb_build_opts deploy_opts(const derive_opts *o, const fb_net *supernet) {
  fb_build_opts b = supernet->opts;
  char *path = fb_path_join(o->run, "summary.json");
  fb_status ignore = {0};
  cJSON *s = fb_json_read_file(path, &ignore);
  free(path);
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(s, "deploy_input_size");
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(s, "deploy_width");
  if (cJSON_IsNumber(in) && in->valuedouble >= 32) b.input_size = (int)in->valuedouble;
  if (cJSON_IsNumber(w) && w->valuedouble > 0) b.width = w->valuedouble;
  cJSON_Delete(s);
  if (o->input > 0) b.input_size = o->input;
  if (o->width > 0) b.width = o->width;
  b.det_width = b.seg_width = b.det_depth = 0; /* the full heads of fbnet train */
  return b;
}

/* The supernet of a run, built with one task's head, its build options and
 * arch text from RUN/supernet.safetensors. */
static fb_net *load_supernet(const derive_opts *o, unsigned task, unsigned *run_tasks,
                             fb_status *st) {
  char path[1200];
  fb_st_file f;
  if (fb_path_in(path, sizeof path, o->run, "supernet.safetensors", st) ||
      fb_safetensors_read(path, &f, st))
    return NULL;
  fb_net *net = NULL;
  const char *text = fb_st_meta(&f, "arch_json");
  if (!text) {
    fb_fail(st, "%s: no arch_json metadata (not written by fbnet search)", path);
    goto done;
  }
  fb_build_opts b = fb_build_opts_default();
  b.tasks = 0;
  fb_weights_build_opts(&f, &b);
  *run_tasks = b.tasks;
  if (!(*run_tasks & task)) {
    fb_fail(st, "%s: the run did not search %s", path, fb_task_name(task));
    goto done;
  }
  b.standard_padding = 1;
  b.tasks = task;
  fb_arch *a = fb_arch_parse(text, path, st);
  if (!a) goto done;
  net = fb_net_build(a, &b, 1, st);
  fb_arch_free(a);
done:
  fb_st_file_free(&f);
  return net;
}

/* The run's final distributions from RUN/checkpoint.safetensors. */
static int load_dist(const derive_opts *o, fb_net *net, fb_archdist *d, fb_status *st) {
  char path[1200];
  fb_st_file f;
  if (fb_path_in(path, sizeof path, o->run, "checkpoint.safetensors", st) ||
      fb_safetensors_read(path, &f, st))
    return -1;
  int rc = -1;
  const char *state = fb_st_meta(&f, "search");
  if (!state) fb_fail(st, "%s: no search state (metadata 'search')", path);
  else if (fb_search_state_read(state, path, d, NULL, st) == 0) rc = 0;
  if (rc == 0 && d->D != net->mp->n_bits) {
    rc = fb_fail(st, "%s: the search state has %d bits, the supernet %d", path, d->D,
                 net->mp->n_bits);
    fb_archdist_free(d);
  }
  fb_st_file_free(&f);
  return rc;
}

/* The task's mask: --bits, or the run's distribution thresholded. */
static int task_mask(const derive_opts *o, fb_net *net, unsigned task, unsigned run_tasks,
                     uint8_t *mask, double *probs, fb_status *st) {
  if (o->bits) return fb_mask_from_string(o->bits, net->mp->n_bits, mask, st);
  fb_archdist d;
  if (load_dist(o, net, &d, st)) return -1;
  unsigned list[FB_SEARCH_MAX_TASKS];
  int T = fb_search_task_list(run_tasks, list), t = 0;
  while (t < T && list[t] != task) t++;
  fb_archdist_derive(&d, t, o->thresh, mask);
  for (int b = 0; b < d.D; b++) probs[b] = fb_archdist_prob(&d, t, b);
  fb_archdist_free(&d);
  return 0;
}

static int eval_shared(const derive_opts *o, fb_net *net, unsigned task, fb_status *st) {
  char path[1200];
  if (fb_path_in(path, sizeof path, o->run, "supernet.safetensors", st)) return -1;
  fb_mt_dataset train = {0}, val = {0};
  fb_mt_metrics m;
  int rc = -1;
  if (fb_net_plan(net, o->batch, 1, st) || fb_weights_load(path, net, st)) goto done;
  if (fb_mt_load_split((int)task, o->eval_data, "val", 0, &val, st)) goto done;
  if (!o->no_recal) {
    if (fb_mt_load_split((int)task, o->eval_data, "train", o->recal_images, &train, st) ||
        fb_bn_recalibrate(net, &train, o->recal_images, o->threads, 1, st))
      goto done;
  }
  const fb_eval_opts eo = {.threads = o->threads, .log = tool_logger()};
  if (fb_mt_evaluate(net, &val, (int)task, &eo, &m, st)) goto done;
  char js[4096];
  fb_mt_metrics_json(&m, js, sizeof js);
  fprintf(o->json ? stdout : stderr, "%s\n", js);
  rc = 0;
done:
  fb_mt_dataset_free(&train);
  fb_mt_dataset_free(&val);
  return rc;
}

/* --random N: architectures drawn at random (each with its own keep
 * probability, uniform in [0.1, 0.9], so that every cost is reachable),
 * derived for the task, kept when the deployed network's MACs are within
 * --tolerance of --macs; written as OUT_DIR/random_<k>.json with a line of
 * JSON per architecture (file, bits, MACs) on stdout. */
static int random_archs(const derive_opts *o, const fb_net *net, unsigned task,
                        const fb_build_opts *deploy, fb_status *st) {
  fb_net *cost = fb_deploy_net(net, deploy, st);
  if (!cost) return -1;
  if (fb_mkdir_p(o->out_dir, st)) {
    fb_net_free(cost);
    return -1;
  }
  const int B = net->mp->n_bits;
  uint8_t *mask = fb_xmalloc((size_t)B);
  char *bits = fb_xmalloc((size_t)B + 1);
  fb_rng rng;
  fb_rng_seed(&rng, (uint64_t)o->seed);
  int found = 0, rc = 0;
  long tries = 0;
  const long max_tries = 2000L * o->random;
  char src[1200];
  if (fb_path_in(src, sizeof src, o->run, "supernet.safetensors", st)) rc = -1;
  while (rc == 0 && found < o->random && tries < max_tries) {
    tries++;
    const double p = 0.1 + 0.8 * fb_rng_uniform(&rng);
    for (int b = 0; b < B; b++) mask[b] = fb_rng_uniform(&rng) < p;
    const double macs = fb_mp_task_cost(cost, mask, task).macs;
    if (o->macs > 0 && fabs(macs / (o->macs * 1e6) - 1) > o->tolerance) continue;
    char *text = fb_derive_arch_json(net, mask, task, src, NULL, -1, deploy->input_size, NULL, st);
    char path[1400], name[32];
    snprintf(name, sizeof name, "random_%d.json", found);
    rc = text && fb_path_in(path, sizeof path, o->out_dir, name, st) == 0
             ? fb_write_text_atomic(path, text, st) : -1;
    free(text);
    if (rc) break;
    fb_mask_to_string(mask, B, bits);
    printf("{\"file\": \"%s\", \"bits\": \"%s\", \"macs\": %.0f}\n", path, bits, macs);
    found++;
  }
  if (rc == 0 && found < o->random)
    rc = fb_fail(st, "%s: %d of %d random architectures within %.0f%% of %.3f M MACs after %ld "
                 "draws: widen --tolerance", fb_task_name(task), found, o->random,
                 100 * o->tolerance, o->macs, tries);
  free(bits);
  free(mask);
  fb_net_free(cost);
  return rc;
}

/* The front's costs: MACs of the deployed network, or its latency as the
 * table predicts it. */
typedef struct front_cost {
  fb_net *net;             /* the supernet at the deploy options (never planned) */
  fb_lat_table table;
  const fb_lat_task *lat;  /* NULL: MACs */
  int threads;
} front_cost;

static double cost_of(const front_cost *f, const uint8_t *mask, unsigned task) {
  return f->lat ? fb_lat_predict(f->lat, f->net, mask, task)
                : fb_mp_task_cost(f->net, mask, task).macs / 1e6;
}

static int front_cost_open(const derive_opts *o, const fb_net *net, unsigned task,
                           const fb_build_opts *deploy, front_cost *f, fb_status *st) {
  memset(f, 0, sizeof *f);
  if (!(f->net = fb_deploy_net(net, deploy, st))) return -1;
  if (!o->lat_table) return 0;
  if (fb_lat_read(o->lat_table, &f->table, st)) return -1;
  fb_build_opts b = *deploy;
  b.tasks = task;
  const fb_lat_entry *e = fb_lat_compat(&f->table, o->lat_table, f->net, &b, o->lat_threads,
                                        o->lat_force, NULL, 0, st);
  if (!e) return -1;
  if (!(f->lat = fb_lat_entry_task(e, task)))
    return fb_fail(st, "%s: no %s table", o->lat_table, fb_task_name(task));
  f->threads = e->threads;
  return 0;
}

static void front_cost_close(front_cost *f) {
  fb_net_free(f->net);
  fb_lat_free(&f->table);
}

static int cmp_prob_desc(const void *a, const void *b, void *ctx) {
  const double *p = ctx;
  const int i = *(const int *)a, j = *(const int *)b;
  return p[i] < p[j] ? 1 : p[i] > p[j] ? -1 : i - j;
}

/* --front K: the bits in order of the task's probability, most probable
 * first; prefix j keeps the first j. K budgets evenly spaced from the
 * cheapest prefix (nothing kept) to the dearest (all kept); for each, the
 * longest prefix within it, written as OUT_DIR/front_<k>.json, with a line
 * per architecture (budget, bits, MACs, predicted and measured latency). */
static int front_archs(const derive_opts *o, fb_net *net, unsigned task,
                       unsigned run_tasks, const fb_build_opts *deploy, fb_status *st) {
  const int B = net->mp->n_bits;
  if (B < 1) return fb_fail(st, "%s: the supernet has no searchable bits", o->run);
  uint8_t *mask = fb_xcalloc((size_t)B + 1, 1), *tmp = fb_xcalloc((size_t)B + 1, 1);
  double *probs = fb_xcalloc((size_t)B + 1, sizeof *probs), *cost = fb_xmalloc((B + 1) * sizeof *cost);
  int *order = fb_xmalloc((size_t)(B + 1) * sizeof *order);
  char *bits = fb_xmalloc((size_t)B + 1);
  front_cost f;
  memset(&f, 0, sizeof f);
  char src[1200];
  int rc = task_mask(o, net, task, run_tasks, mask, probs, st) ||
           front_cost_open(o, net, task, deploy, &f, st) ||
           fb_path_in(src, sizeof src, o->run, "supernet.safetensors", st) ||
           fb_mkdir_p(o->out_dir, st) ? -1 : 0;
  if (rc == 0) {
    for (int b = 0; b < B; b++) order[b] = b;
    qsort_r(order, (size_t)B, sizeof *order, cmp_prob_desc, probs);
    memset(tmp, 0, (size_t)B);
    for (int j = 0; j <= B; j++) {
      if (j > 0) tmp[order[j - 1]] = 1;
      cost[j] = cost_of(&f, tmp, task);
    }
    fprintf(stderr, "%-4s %12s %6s %10s %14s %13s  %s\n", "k", f.lat ? "budget ms" : "budget MMACs",
            "bits", "MACs (M)", "predicted ms", "measured ms", "file");
    if (f.lat)
      fprintf(stderr, "(measured: at the table's machine speed, against its reference network)\n");
  }
  int last = -1, written = 0;
  for (int k = 0; rc == 0 && k < o->front; k++) {
    const double budget = cost[0] + (cost[B] - cost[0]) * (o->front > 1 ? (double)k / (o->front - 1) : 1);
    int j = 0;
    for (int i = 0; i <= B; i++)
      if (cost[i] <= budget * (1 + 1e-12)) j = i;
    if (j == last) continue; /* the same architecture as the previous budget */
    last = j;
    memset(tmp, 0, (size_t)B);
    for (int i = 0; i < j; i++) tmp[order[i]] = 1;
    char *text = fb_derive_arch_json(net, tmp, task, src, probs, -1, deploy->input_size, NULL, st);
    char path[1400], name[32];
    snprintf(name, sizeof name, "front_%d.json", written);
    rc = text && fb_path_in(path, sizeof path, o->out_dir, name, st) == 0
             ? fb_write_text_atomic(path, text, st) : -1;
    double pred = 0, meas = 0, raw = 0;
    if (rc == 0 && f.lat) {
      pred = fb_lat_predict(f.lat, f.net, tmp, task);
      rc = fb_lat_measure_vs_table(f.lat, f.net, text, deploy, task, f.threads, 15, &meas, &raw,
                                   st);
    }
    const double macs = fb_mp_task_cost(f.net, tmp, task).macs;
    free(text);
    if (rc) break;
    fb_mask_to_string(tmp, B, bits);
    if (f.lat)
      fprintf(stderr, "%-4d %12.3f %6d %10.3f %14.3f %13.3f  %s\n", written, budget, j, macs / 1e6,
              pred, meas, path);
    else
      fprintf(stderr, "%-4d %12.3f %6d %10.3f %14s %13s  %s\n", written, budget, j, macs / 1e6,
              "-", "-", path);
    printf("{\"file\": \"%s\", \"budget\": %.9g, \"budget_kind\": \"%s\", \"bits\": \"%s\", "
           "\"bits_kept\": %d, \"macs\": %.0f", path, budget, f.lat ? "latency_ms" : "mmacs", bits,
           j, macs);
    if (f.lat)
      printf(", \"threads\": %d, \"predicted_ms\": %.9g, \"measured_ms\": %.6g, "
             "\"measured_raw_ms\": %.6g", f.threads, pred, meas, raw);
    printf("}\n");
    written++;
  }
  front_cost_close(&f);
  free(mask);
  free(tmp);
  free(probs);
  free(cost);
  free(order);
  free(bits);
  return rc;
}

static int run(const derive_opts *o, unsigned task, fb_status *st) {
  unsigned run_tasks = 0;
  fb_net *net = load_supernet(o, task, &run_tasks, st);
  if (!net) return -1;
  if (o->random > 0 || o->front > 0) {
    const fb_build_opts deploy = deploy_opts(o, net);
    const int rc = o->random > 0 ? random_archs(o, net, task, &deploy, st)
                                 : front_archs(o, net, task, run_tasks, &deploy, st);
    fb_net_free(net);
    return rc;
  }
  const int B = net->mp->n_bits;
  uint8_t *mask = fb_xcalloc((size_t)B + 1, 1);
  double *probs = fb_xcalloc((size_t)B + 1, sizeof *probs);
  int rc = task_mask(o, net, task, run_tasks, mask, probs, st);
  char *text = NULL;
  const fb_build_opts deploy = deploy_opts(o, net);
  if (rc == 0) {
    char src[1200];
    text = fb_path_in(src, sizeof src, o->run, "supernet.safetensors", st) ? NULL :
           fb_derive_arch_json(net, mask, task, src, o->bits ? NULL : probs, -1,
                               deploy.input_size, NULL, st);
    rc = text ? 0 : -1;
  }
  if (rc == 0) {
    fb_count c, cs;
    rc = fb_derive_count(text, &deploy, task, &c, st) ||
         fb_derive_count(text, &net->opts, task, &cs, st);
    if (rc == 0)
      fprintf(stderr, "fbnet derive: %s: %.3f M MACs, %.4f M params deployed (full head, %d px, "
              "width %g); %.3f M MACs with the search's head at %d px, width %g\n",
              fb_task_name(task), c.macs / 1e6, c.params / 1e6, deploy.input_size, deploy.width,
              cs.macs / 1e6, net->opts.input_size, net->opts.width);
  }
  if (rc == 0) rc = o->out ? fb_write_text_atomic(o->out, text, st) : (fputs(text, stdout), 0);
  if (rc == 0 && o->eval_data) {
    fb_graph_set_mask(&net->g, mask);
    rc = eval_shared(o, net, task, st);
  }
  free(text);
  free(mask);
  free(probs);
  fb_net_free(net);
  return rc;
}

int cmd_derive(int argc, char **argv) {
  derive_opts o = {0};
  o.task = -1;
  o.thresh = 0.5;
  o.recal_images = 512;
  o.batch = 32;
  o.tolerance = 0.05;
  o.seed = 1;
  const arg_opt opts[] = {
      {"--run", ARG_STRING, &o.run, 0, 0, NULL, "search run directory (required)"},
      {"--task", ARG_CHOICE, &o.task, 0, 0, "cls|det|seg", "which task's architecture (required)"},
      {"--thresh", ARG_DOUBLE, &o.thresh, 0.01, 0.99, NULL, "keep a bit when p > THRESH (0.5)"},
      {"--bits", ARG_STRING, &o.bits, 0, 0, NULL,
       "derive this bit string ('0101...', one per supernet bit) instead of the search result"},
      {"--out", ARG_STRING, &o.out, 0, 0, NULL, "write the arch file here (default: stdout)"},
      {"--eval-data", ARG_STRING, &o.eval_data, 0, 0, NULL,
       "evaluate the subnet with the shared supernet weights on DIR/val (the task's standard "
       "format), after BN re-calibration on DIR/train"},
      {"--recal-images", ARG_INT, &o.recal_images, 1, 1000000, NULL,
       "images for BN re-calibration (default 512)"},
      {"--no-recal", ARG_FLAG, &o.no_recal, 0, 0, NULL, "evaluate with the supernet's BN statistics"},
      {"--batch", ARG_INT, &o.batch, 1, 4096, NULL, "batch for re-calibration/eval (32)"},
      {"--threads", ARG_INT, &o.threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--json", ARG_FLAG, &o.json, 0, 0, NULL, "print the eval metrics as JSON on stdout"},
      {"--random", ARG_INT, &o.random, 1, 100000, NULL,
       "instead: write N random architectures of the space, derived for the task, to "
       "--out-dir (with --macs: only those within --tolerance of it)"},
      {"--macs", ARG_DOUBLE, &o.macs, 0, 1e9, NULL,
       "--random: MACs (millions) of the deployed network to match"},
      {"--tolerance", ARG_DOUBLE, &o.tolerance, 0, 10, NULL, "--random: relative (default 0.05)"},
      {"--seed", ARG_INT, &o.seed, 0, 2147483647, NULL, "--random: seed (default 1)"},
      {"--out-dir", ARG_STRING, &o.out_dir, 0, 0, NULL,
       "--random/--front: directory (default RUN/random, RUN/front_TASK)"},
      {"--front", ARG_INT, &o.front, 1, 1000, NULL,
       "instead: K architectures along the task's distribution (bits added most probable "
       "first) at K budgets evenly spaced from the cheapest to the dearest, as "
       "OUT_DIR/front_<k>.json and a table (MACs; with --latency-table, latency)"},
      {"--latency-table", ARG_STRING, &o.lat_table, 0, 0, NULL,
       "--front: budgets in predicted latency from this table (fbnet bench latency), each "
       "architecture also measured"},
      {"--latency-threads", ARG_INT, &o.lat_threads, 1, 4096, NULL,
       "--front: which of the table's thread counts (default: its only one)"},
      {"--latency-force", ARG_FLAG, &o.lat_force, 0, 0, NULL,
       "use a table made for another input size, width or heads (a warning)"},
      {"--input", ARG_INT, &o.input, 32, 2048, NULL,
       "input size of the deployed network: the file's input_size and the reported MACs "
       "(default: the run's --deploy-input)"},
      {"--width", ARG_DOUBLE, &o.width, 0.05, 4.0, NULL,
       "width of the deployed network for the reported MACs (default: the run's --deploy-width)"},
  };
  const arg_spec spec = {
      "fbnet derive --run RUN_DIR --task cls|det|seg [--thresh 0.5] [--out FILE] [--eval-data DIR]",
      "Derives a task's architecture from a search run: bits with p > THRESH are kept, then\n"
      "every block and connection that cannot reach the task's head is dropped. Prints the\n"
      "arch file (or writes --out). With --eval-data, evaluates that subnet inside the supernet\n"
      "with the shared weights after re-computing its BN statistics.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!o.run || o.task < 0) {
    fprintf(stderr, "fbnet derive: --run and --task are required (see --help)\n");
    return 2;
  }
  char random_dir[1200];
  if (o.random > 0 && o.front > 0) {
    fprintf(stderr, "fbnet derive: --random and --front are two different jobs: give one\n");
    return 2;
  }
  if ((o.random > 0 || o.front > 0) && !o.out_dir) {
    if (snprintf(random_dir, sizeof random_dir, o.random > 0 ? "%s/random" : "%s/front_%s", o.run,
                 fb_task_at(o.task)->name) >= (int)sizeof random_dir) {
      fprintf(stderr, "fbnet derive: --run %s: path too long for the output directory\n", o.run);
      return 2;
    }
    o.out_dir = random_dir;
  }
  if (o.lat_table && o.front <= 0) {
    fprintf(stderr, "fbnet derive: --latency-table is for --front\n");
    return 2;
  }
  if (o.json && !o.out) {
    fprintf(stderr, "fbnet derive: --json prints the metrics on stdout: give --out FILE for "
            "the arch file\n");
    return 2;
  }
  if (o.threads) omp_set_num_threads(o.threads);
  fb_status st = {0};
  if (run(&o, fb_task_at(o.task)->id, &st)) {
    fprintf(stderr, "fbnet derive: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}
