/* fbnet search: the loop of docs/method.md section 4 over the proxy multi-task set
 * (see search.h for the run directory). */
#include "search/search.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/progress.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "core/status.h"
#include "data/loader.h"
#include "data/proxy.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/archdist.h"
#include "search/latency.h"
#include "search/derive.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/guard.h"
#include "train/step.h"
#include "dist/dist.h"
#include "train/mt_trainer.h"
#include "train/schedule.h"

fb_search_cfg fb_search_cfg_default(void) {
  fb_search_cfg c;
  memset(&c, 0, sizeof c);
  c.supernet_path = "builtin:fbnetv5_supernet"; /* archs/fbnetv5_supernet.json, compiled in */
  c.out_dir = "runs/search";
  c.tasks = FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG;
  c.build = fb_build_opts_default();
  c.build.input_size = 64;
  c.build.width = 1.0;
  c.build.standard_padding = 1;
  /* light heads for the search (docs/method.md section 1): they only have to rank
   * architectures; the derived networks train with the full heads */
  c.build.det_width = 32;
  c.build.det_depth = 1;
  c.build.seg_width = 16;
  c.steps = 3000;
  c.batch = 32;
  c.warmup_frac = 0.25;
  c.optim = fb_optim_adamw_default();
  c.optim.lr = 2e-3f;
  c.optim.weight_decay = 0.05f;
  c.lr_warmup_frac = 0.02;
  c.final_lr_frac = 0.01f;
  c.theta_lr = FB_ARCHDIST_DEFAULT_LR;
  c.init_prob = 0.6;
  for (int t = 0; t < FB_SEARCH_MAX_TASKS; t++) c.gamma[t] = 1.0;
  c.flops_lambda = 1.0;
  c.derive_thresh = 0.5;
  c.label_smoothing = 0.1f;
  c.seed = 1;
  c.threads = 1;
  c.ckpt_every = 250;
  c.max_loss_ratio = FB_LOSS_GUARD_DEFAULT;
  return c;
}

fb_build_opts fb_search_deploy_opts(const fb_search_cfg *c) {
  fb_build_opts b = c->build;
  if (c->deploy_input > 0) b.input_size = c->deploy_input;
  if (c->deploy_width > 0) b.width = c->deploy_width;
  b.det_width = b.seg_width = b.det_depth = 0; /* the heads' defaults, as fbnet train */
  return b;
}

int fb_search_task_list(unsigned tasks, unsigned *list) { return fb_task_list(tasks, list); }

typedef struct srch {
  const fb_search_cfg *c;
  fb_mt_dataset data;
  fb_net *net;
  fb_loader *loader;
  fb_searcher e;           /* the step engine */
  int lock;                /* the run directory's lock (fb_dir_lock) */
  long steps_per_epoch;
  FILE *log;
  int rank, ranks, M;      /* data-parallel rank and ranks; architectures per step per rank */
  int per_pass;            /* items per forward pass: batch / (ranks x M) */
} srch;

/* ---- setup --------------------------------------------------------------- */

static int check_cfg(const fb_search_cfg *c, fb_status *st) {
  if (c->steps < 1) return fb_fail(st, "--steps must be >= 1");
  if (c->batch < 1) return fb_fail(st, "--batch must be >= 1");
  if (c->sandwich < 0 || c->sandwich > 2)
    return fb_fail(st, "--sandwich %d: 0 (off), 1 (the largest subnet) or 2 (largest and "
                   "smallest)", c->sandwich);
  if (c->archs_per_step > FB_SEARCH_MAX_ARCHS)
    return fb_fail(st, "--archs-per-step %d: at most %d", c->archs_per_step, FB_SEARCH_MAX_ARCHS);
  if (!(c->warmup_frac >= 0 && c->warmup_frac < 1))
    return fb_fail(st, "--warmup must be in [0, 1) (fraction of the steps)");
  if (!(c->init_prob > 0 && c->init_prob < 1)) return fb_fail(st, "--init-prob must be in (0, 1)");
  if (!c->tasks) return fb_fail(st, "--tasks: no task selected");
  return fb_optim_check(&c->optim, st);
}

static int check_labels(const srch *s, fb_status *st) {
  unsigned list[FB_SEARCH_MAX_TASKS];
  const int T = fb_search_task_list(s->c->tasks, list);
  for (int t = 0; t < T; t++) {
    const fb_task_row *r = fb_task_row_of(list[t]);
    if (r->head_size(&s->data) < 1)
      return fb_fail(st, "%s: --tasks has %s but the proxy set %s", s->c->data_dir, r->name,
                     r->proxy_lacks);
  }
  return 0;
}

static int build_supernet(srch *s, fb_status *st) {
  const fb_search_cfg *c = s->c;
  fb_arch *arch = fb_arch_load(c->supernet_path, st);
  if (!arch) return -1;
  if (!arch->mp || !arch->mp->search) {
    fb_arch_free(arch);
    return fb_fail(st, "%s: not a supernet (a multi-path arch file with \"search\": true, e.g. "
                   "archs/fbnetv5_supernet.json)", c->supernet_path);
  }
  fb_build_opts b = c->build;
  b.tasks = c->tasks;
  b.num_classes = s->data.num_classes > 0 ? s->data.num_classes : 1;
  b.num_cats = s->data.num_cats;
  b.num_seg_classes = s->data.num_seg_classes;
  s->net = fb_net_build(arch, &b, c->seed, st);
  fb_arch_free(arch);
  if (!s->net) return -1;
  if (s->net->loss_node >= 0)
    s->net->g.nodes[s->net->loss_node].args.attr.label_smoothing = c->label_smoothing;
  return fb_net_plan(s->net, s->per_pass, c->seed, st);
}

static int make_loader(srch *s, fb_status *st) {
  const fb_search_cfg *c = s->c;
  fb_loader_cfg lc = fb_loader_cfg_default(s->net->opts.input_size, 3, s->per_pass, 1);
  lc.seed = c->seed;
  lc.threads = c->threads > 0 ? c->threads : 1;
  lc.drop_last = 1;
  if (s->ranks * s->M > 1) { /* this rank's parts of every global batch */
    lc.parts = s->ranks * s->M;
    lc.part_first = s->rank * s->M;
    lc.part_count = s->M;
  }
  if (!(s->loader = fb_loader_create(&s->data, &lc, st))) return -1;
  s->steps_per_epoch = fb_loader_num_batches(s->loader) / s->M;
  if (s->steps_per_epoch < 1)
    return fb_fail(st, "%s: %d proxy images are fewer than one batch of %d", c->data_dir,
                   s->data.n, c->batch);
  return 0;
}

/* A sample as gathered across ranks: its bits, then per task its loss,
 * penalty, MACs and predicted latency, then the mixture component it came
 * from. */
static int sample_doubles(const fb_searcher *s) { return s->B + 4 * s->T + 1; }

/* The latency table (--latency-table): made for this supernet at the deploy
 * options; every --latency-target reachable. */
static int load_latency(fb_searcher *s, const fb_build_opts *deploy, fb_status *st) {
  const fb_search_cfg *c = s->c;
  s->lat = fb_xcalloc(1, sizeof *s->lat);
  if (fb_lat_read(c->latency_table, s->lat, st)) return -1;
  char warn[600];
  const fb_lat_entry *e = fb_lat_compat(s->lat, c->latency_table, s->cost_net, deploy,
                                        c->latency_threads, c->latency_force, warn, sizeof warn,
                                        st);
  if (!e) return -1;
  if (*warn && (!c->dist || c->dist->rank == 0))
    fb_log(c->log, FB_LOG_WARN, "fbnet search: warning: %s: %s", c->latency_table, warn);
  for (int t = 0; t < s->T; t++) {
    const double target = c->latency_target[s->slot[t]];
    s->lat_task[t] = fb_lat_entry_task(e, s->task[t]);
    if (!s->lat_task[t]) {
      if (target > 0)
        return fb_fail(st, "%s: no %s table (measure one with fbnet bench latency --tasks ...)",
                       c->latency_table, fb_task_name(s->task[t]));
      continue;
    }
    const double lo = fb_lat_min(s->lat_task[t], s->cost_net, s->task[t]);
    if (target > 0 && target < lo)
      return fb_fail(st, "--latency-target %s=%g ms is below the fastest %s network of the "
                     "supernet, %.3f ms at %d threads (every bit dropped; %s)",
                     fb_task_name(s->task[t]), target, fb_task_name(s->task[t]), lo, e->threads,
                     c->latency_table);
  }
  for (int k = 0; k < FB_SEARCH_MAX_TASKS; k++)
    if (c->latency_target[k] > 0 && !(c->tasks & fb_task_at(k)->id))
      return fb_fail(st, "--latency-target: %s is not searched (--tasks)",
                     fb_task_at(k)->name);
  return 0;
}

int fb_searcher_init(fb_searcher *s, const fb_search_cfg *c, fb_net *net, fb_status *st) {
  memset(s, 0, sizeof *s);
  s->c = c;
  s->net = net;
  s->T = fb_search_task_list(c->tasks, s->task);
  for (int t = 0; t < s->T; t++) s->slot[t] = fb_task_slot(s->task[t]);
  if (!net->mp || net->mp->n_bits < 1)
    return fb_fail(st, "%s: the network has no searchable bits", net->name);
  s->B = net->mp->n_bits;
  for (int t = 0; t < s->T; t++) {
    s->n_roots[t] = fb_net_task_roots(net, s->task[t], s->roots[t]);
    if (s->n_roots[t] == 0)
      return fb_fail(st, "internal: the supernet has no %s head", fb_task_name(s->task[t]));
    for (int k = 0; k < s->n_roots[t]; k++)
      s->base_w[t][k] = net->g.nodes[s->roots[t][k]].loss_weight;
  }
  fb_build_opts d = fb_search_deploy_opts(c);
  d.tasks = net->tasks;
  d.num_classes = net->opts.num_classes;
  d.num_cats = net->opts.num_cats;
  d.num_seg_classes = net->opts.num_seg_classes;
  if (!(s->cost_net = fb_deploy_net(net, &d, st))) return -1;
  if (!s->cost_net->mp || s->cost_net->mp->n_bits != s->B)
    return fb_fail(st, "%s: at the deploy input %d and width %g the supernet has %d bits, the "
                   "search has %d", net->name, d.input_size, d.width,
                   s->cost_net->mp ? s->cost_net->mp->n_bits : 0, s->B);
  if (c->latency_table && load_latency(s, &d, st)) return -1;
  s->mask = fb_xcalloc((size_t)s->B, 1);
  s->M = c->archs_per_step > 1 ? c->archs_per_step : 1;
  s->rank = c->dist ? c->dist->rank : 0;
  s->A = s->M * (c->dist ? c->dist->size : 1);
  s->masks = fb_xcalloc((size_t)s->M * s->B, 1);
  s->mine = fb_xcalloc((size_t)s->M * sample_doubles(s), sizeof *s->mine);
  s->all = fb_xcalloc((size_t)s->A * sample_doubles(s), sizeof *s->all);
  s->used = fb_xcalloc((size_t)net->g.params.n + 1, 1);
  s->sched.base_lr = c->optim.lr;
  s->sched.warmup_steps = (long)(c->lr_warmup_frac * c->steps);
  s->sched.total_steps = c->steps;
  s->sched.final_frac = c->final_lr_frac;
  if (fb_schedule_check(&s->sched, st)) return -1;
  s->warmup_steps = (long)(c->warmup_frac * c->steps);
  for (int t = 0; t < s->T; t++) fb_loss_guard_init(&s->guard[t], c->max_loss_ratio);
  if (fb_archdist_init(&s->dist, s->T, s->B, c->init_prob, st)) return -1;
  s->dist.lr = c->theta_lr;
  s->dist.rho_clip = c->rho_clip;
  if (fb_archdist_set_estimator(&s->dist, c->adv_norm, c->replay, c->elite, st)) return -1;
  fb_rng_seed(&s->rng, c->seed ^ 0x5ea2c4a2c4ull);
  return 0;
}

void fb_searcher_free(fb_searcher *s) {
  fb_archdist_free(&s->dist);
  fb_lat_free(s->lat);
  free(s->lat);
  s->lat = NULL;
  fb_net_free(s->cost_net);
  s->cost_net = NULL;
  free(s->mask);
  free(s->masks);
  free(s->mine);
  free(s->all);
  free(s->used);
  s->mask = s->masks = s->used = NULL;
  s->mine = s->all = NULL;
}

static int setup(srch *s, const fb_search_cfg *c, fb_status *st) {
  memset(s, 0, sizeof *s);
  s->c = c;
  s->lock = -1;
  if (check_cfg(c, st)) return -1;
  s->rank = c->dist ? c->dist->rank : 0;
  s->ranks = c->dist ? c->dist->size : 1;
  s->M = c->archs_per_step > 1 ? c->archs_per_step : 1;
  if (fb_split_batch(c->batch, s->ranks, s->M, &s->per_pass, st)) return -1;
  if (fb_proxy_load(c->data_dir, "train", c->train_limit, &s->data, st) || check_labels(s, st) ||
      build_supernet(s, st) || make_loader(s, st) || fb_searcher_init(&s->e, c, s->net, st))
    return -1;
  if (s->rank > 0) return 0; /* rank 0 owns the run directory */
  if (fb_mkdir_p(c->out_dir, st) || (s->lock = fb_dir_lock(c->out_dir, st)) < 0) return -1;
  return 0;
}

/* ---- checkpoint ---------------------------------------------------------- */

static char *state_json(const fb_searcher *e) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", (double)e->step);
  cJSON *rng = cJSON_AddArrayToObject(o, "rng");
  for (int k = 0; k < 4; k++) {
    char v[32];
    snprintf(v, sizeof v, "%" PRIu64, e->rng.s[k]);
    cJSON_AddItemToArray(rng, cJSON_CreateString(v));
  }
  char *dist = fb_archdist_to_json(&e->dist);
  cJSON_AddRawToObject(o, "archdist", dist);
  free(dist);
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

/* The options the search's result depends on (compared on --resume; --stop-after,
 * --ckpt-every, --threads, --quiet and --thresh may change). */
static char *search_config(const srch *s) {
  const fb_search_cfg *c = s->c;
  cJSON *o = cJSON_CreateObject();
  fb_config_put_net(o, s->net);
  fb_config_put_optim(o, &c->optim);
  fb_config_put(o, "--data", "%s", c->data_dir);
  fb_config_put(o, "--train-limit", "%d", c->train_limit);
  fb_config_put(o, "--tasks", "%u", c->tasks);
  fb_config_put(o, "--steps", "%ld", c->steps);
  fb_config_put(o, "--batch", "%d", c->batch);
  if (s->e.A > 1) /* absent for one, as in runs made before this option */
    fb_config_put(o, "architectures per step (ranks x --archs-per-step)", "%d", s->e.A);
  fb_config_put(o, "--seed", "%llu", (unsigned long long)c->seed);
  fb_config_put(o, "--warmup", "%g", c->warmup_frac);
  fb_config_put(o, "--theta-lr", "%g", c->theta_lr);
  fb_config_put(o, "--init-prob", "%g", c->init_prob);
  fb_config_put(o, "--rho-clip", "%g", c->rho_clip);
  fb_config_put(o, "estimator", "adv-norm %d replay %d elite %g", c->adv_norm, c->replay, c->elite);
  fb_config_put(o, "--gamma", "%g,%g,%g", c->gamma[0], c->gamma[1], c->gamma[2]);
  fb_config_put(o, "--flops-target", "%g,%g,%g lambda %g", c->flops_target[0],
                c->flops_target[1], c->flops_target[2], c->flops_lambda);
  fb_config_put(o, "--deploy-input/--deploy-width", "%d %g", c->deploy_input, c->deploy_width);
  if (c->latency_table) /* absent without, as in runs made before this option */
    fb_config_put(o, "--latency-target", "%g,%g,%g table %s threads %d", c->latency_target[0],
                  c->latency_target[1], c->latency_target[2], c->latency_table,
                  c->latency_threads);
  return fb_config_finish(o);
}

static int save_checkpoint(srch *s, fb_status *st) {
  /* every rank's BN statistics averaged: the model is the same on all */
  if (fb_sync_replicas(s->c->dist, &s->net->g.params, NULL, st)) return -1;
  if (s->rank > 0) return 0;
  char path[1200];
  if (fb_path_in(path, sizeof path, s->c->out_dir, "checkpoint.safetensors", st)) return -1;
  char *state = state_json(&s->e), *config = search_config(s);
  const char *meta[] = {"search", state, "supernet", s->c->supernet_path, "config", config, NULL};
  int rc = fb_checkpoint_write(path, s->net, NULL, 0, s->e.step, meta, st);
  free(state);
  free(config);
  return rc;
}

int fb_search_state_read(const char *json, const char *path, fb_archdist *d, fb_rng *rng,
                         fb_status *st) {
  cJSON *o = cJSON_Parse(json);
  const cJSON *r = o ? cJSON_GetObjectItemCaseSensitive(o, "rng") : NULL;
  const cJSON *dist = o ? cJSON_GetObjectItemCaseSensitive(o, "archdist") : NULL;
  int rc = -1;
  if (!dist || (rng && (!cJSON_IsArray(r) || cJSON_GetArraySize(r) != 4))) {
    fb_fail(st, "%s: metadata 'search' is not a search state", path);
    goto done;
  }
  for (int k = 0; rng && k < 4; k++) {
    const cJSON *v = cJSON_GetArrayItem(r, k);
    if (!cJSON_IsString(v)) {
      fb_fail(st, "%s: search.rng[%d] must be a string", path, k);
      goto done;
    }
    rng->s[k] = strtoull(v->valuestring, NULL, 10);
  }
  rc = fb_archdist_from_cjson(d, dist, st);
done:
  cJSON_Delete(o);
  return rc;
}

static int restore_state(fb_searcher *e, const char *json, const char *path, fb_status *st) {
  fb_archdist_free(&e->dist);
  if (fb_search_state_read(json, path, &e->dist, &e->rng, st)) return -1;
  if (e->dist.T != e->T || e->dist.D != e->B)
    return fb_fail(st, "%s: the checkpoint searched %d tasks over %d bits, this run has %d over "
                   "%d (same --tasks and supernet?)", path, e->dist.T, e->dist.D, e->T, e->B);
  return 0;
}

static int resume(srch *s, fb_status *st) {
  char path[1200];
  if (fb_path_in(path, sizeof path, s->c->out_dir, "checkpoint.safetensors", st)) return -1;
  int epoch;
  char *state = NULL, *config = search_config(s);
  const int bad = fb_checkpoint_read(path, s->net, NULL, &epoch, &s->e.step, "search", &state,
                                     s->c->resume == 2 ? NULL : config, s->c->log, st);
  free(config);
  if (bad) return -1;
  int rc = restore_state(&s->e, state, path, st);
  free(state);
  if (rc == 0 && s->e.step > s->c->steps)
    rc = fb_fail(st, "%s: the run is at step %ld, beyond --steps %ld", path, s->e.step,
                 s->c->steps);
  return rc;
}

/* ---- one step ------------------------------------------------------------ */

static void set_loss_weights(fb_searcher *s, const double *rho) {
  for (int t = 0; t < s->T; t++)
    for (int k = 0; k < s->n_roots[t]; k++)
      s->net->g.nodes[s->roots[t][k]].loss_weight =
          (float)(s->base_w[t][k] * s->c->gamma[s->slot[t]] * rho[t]);
}

static void task_losses(void *ctx, double *loss) {
  fb_searcher *s = ctx;
  for (int t = 0; t < s->T; t++) {
    loss[t] = 0;
    for (int k = 0; k < s->n_roots[t]; k++)
      loss[t] += s->base_w[t][k] * fb_graph_loss(&s->net->g, s->roots[t][k]);
  }
  if (s->cur >= s->M) return; /* a sandwich pass: no sample for theta */
  double *pack = s->mine + (size_t)s->cur * sample_doubles(s) + s->B;
  for (int t = 0; t < s->T; t++) pack[t] = loss[t];
}

/* The slots the architecture just set uses join the step's updated slots. */
static void mark_used(fb_searcher *s) {
  const fb_params *p = &s->net->g.params;
  for (int i = 0; i < p->n; i++) s->used[i] |= p->used ? p->used[i] : 1;
}

/* Sandwich pass j (0: the largest subnet, 1: the smallest) on the batch of the
 * step's last sampled architecture, with the heads' own loss weights. */
static int fill_sandwich(fb_searcher *s, int j, fb_status *st) {
  memset(s->mask, j == 0 ? 1 : 0, (size_t)s->B);
  fb_graph_set_mask(&s->net->g, s->mask);
  mark_used(s);
  s->cur = s->M + j;
  if (fb_mt_fill_batch(s->net, s->last, 1, st)) return -1;
  const double one[FB_SEARCH_MAX_TASKS] = {1, 1, 1};
  set_loss_weights(s, one);
  return 0;
}

/* Architecture k of this rank's step: one stream per architecture of the step
 * (so that rank r draws what one process with r * M + k before it would); a
 * single architecture per step keeps the searcher's own stream. */
static int sample_arch(fb_searcher *s, int k, uint8_t *mask) {
  if (s->A == 1) return fb_archdist_sample(&s->dist, &s->rng, mask);
  fb_rng r;
  const uint64_t g = (uint64_t)s->rank * (uint64_t)s->M + (uint64_t)k;
  fb_rng_seed(&r, (s->c->seed ^ 0x5ea2c4a2c4ull) + 0x9E3779B97F4A7C15ULL * ((uint64_t)s->step + 1) +
                      0xD1B54A32D192ED03ULL * (g + 1));
  return fb_archdist_sample(&s->dist, &r, mask);
}

/* The step's micro-batch k: its architecture sampled and set, its loss
 * weights (importance weights), its batch in the inputs. */
static int fill_arch(void *ctx, int k, fb_status *st) {
  fb_searcher *s = ctx;
  if (k >= s->M) return fill_sandwich(s, k - s->M, st);
  uint8_t *mask = s->masks + (size_t)k * s->B;
  double *pack = s->mine + (size_t)k * sample_doubles(s);
  const int u = sample_arch(s, k, mask);
  if (s->forced_mask) memcpy(mask, s->forced_mask, (size_t)s->B);
  for (int b = 0; b < s->B; b++) pack[b] = mask[b];
  pack[s->B + 4 * s->T] = u;
  double rho[FB_SEARCH_MAX_TASKS];
  fb_archdist_importance(&s->dist, mask, rho);
  fb_graph_set_mask(&s->net->g, mask);
  if (k == 0) memset(s->used, 0, (size_t)s->net->g.params.n);
  mark_used(s);
  s->cur = k;
  const fb_batch *b = s->parts ? s->parts[k] : s->next(s->next_ctx);
  if (!b) return fb_fail(st, "internal: the loader ended early at step %ld", s->step + 1);
  s->last = b;
  if (fb_mt_fill_batch(s->net, b, 1, st)) return -1;
  set_loss_weights(s, rho);
  return 0;
}

/* Before the weights' update: every slot any architecture of the step used
 * (on any rank) is updated, with the gradients averaged over the ranks. */
static int reduce_arch_grads(void *ctx, fb_params *p, fb_status *st) {
  fb_searcher *s = ctx;
  if (p->used) memcpy(p->used, s->used, (size_t)p->n);
  const fb_dist *d = s->c->dist;
  if (!d || d->size <= 1) return 0;
  if (p->used && fb_dist_max_bytes(d, p->used, (size_t)p->n, st)) return -1;
  return fb_dist_grad_mean(s->c->dist, p, st);
}

/* The weights' update (one training step): each task's loss is guarded on its
 * own; M architectures are M micro-batches. */
static int train_weights(fb_searcher *s, fb_search_step_info *o, fb_status *st) {
  const char *labels[FB_SEARCH_MAX_TASKS];
  for (int t = 0; t < s->T; t++) labels[t] = fb_task_name(s->task[t]);
  const fb_stepper step = {.net = s->net, .optim = &s->c->optim, .sched = &s->sched,
                           .out_dir = s->c->out_dir, .n_guards = s->T, .guard = s->guard,
                           .guard_label = labels, .watched = task_losses, .ctx = s,
                           .reduce = reduce_arch_grads, .reduce_ctx = s,
                           .micro = s->M + s->c->sandwich,
                           .fill = fill_arch, .fill_ctx = s};
  char where[32];
  snprintf(where, sizeof where, "step %ld", s->step + 1);
  fb_step_result r;
  if (fb_train_step(&step, s->step, where, &r, st)) return -1;
  o->total = r.total;
  o->lr = r.lr;
  return 0;
}

/* The resource terms of this rank's architectures, into their samples. */
static void resource_terms(fb_searcher *s) {
  for (int k = 0; k < s->M; k++) {
    const uint8_t *mask = s->masks + (size_t)k * s->B;
    double *pack = s->mine + (size_t)k * sample_doubles(s) + s->B;
    for (int t = 0; t < s->T; t++) {
      const double target = s->c->flops_target[s->slot[t]];
      const double macs = fb_mp_task_cost(s->cost_net, mask, s->task[t]).macs;
      double pen = fb_flops_penalty(macs, target, s->c->flops_lambda);
      if (s->reward_hook) pen += s->reward_hook(s->hook_ctx, s->task[t], mask, s->B);
      double ms = 0;
      if (s->lat_task[t]) {
        ms = fb_lat_predict(s->lat_task[t], s->cost_net, mask, s->task[t]);
        pen += fb_flops_penalty(ms, s->c->latency_target[s->slot[t]],
                                s->c->flops_lambda);
      }
      pack[s->T + t] = pen;
      pack[2 * s->T + t] = macs;
      pack[3 * s->T + t] = ms;
    }
  }
}

/* Every rank's samples, in rank order, make one theta update (the same on
 * every rank); o gets the first sample's terms. */
static int update_theta(fb_searcher *s, fb_search_step_info *o, fb_status *st) {
  const int n = sample_doubles(s), A = s->A, T = s->T, B = s->B;
  if (fb_dist_allgather(s->c->dist, s->mine, (size_t)s->M * n, s->all, st)) return -1;
  uint8_t *a = fb_xmalloc((size_t)A * B);
  double *loss = fb_xmalloc((size_t)A * T * sizeof *loss), *pen = fb_xmalloc((size_t)A * T * sizeof *pen);
  double *rho = fb_xmalloc((size_t)A * T * sizeof *rho);
  for (int i = 0; i < A; i++) {
    const double *x = s->all + (size_t)i * n;
    for (int b = 0; b < B; b++) a[(size_t)i * B + b] = (uint8_t)x[b];
    for (int t = 0; t < T; t++) loss[i * T + t] = x[B + t], pen[i * T + t] = x[B + T + t];
  }
  fb_archdist_step_many(&s->dist, A, a, loss, pen, s->step >= s->warmup_steps, rho);
  const double *x0 = s->all;
  memcpy(s->mask, a, (size_t)B); /* what the log shows */
  o->u = (int)x0[B + 4 * T];
  for (int t = 0; t < T; t++) {
    o->loss[t] = x0[B + t];
    o->pen[t] = x0[B + T + t];
    o->macs[t] = x0[B + 2 * T + t];
    o->latency[t] = x0[B + 3 * T + t];
    o->rho[t] = rho[t];
  }
  free(a);
  free(loss);
  free(pen);
  free(rho);
  return 0;
}

int fb_searcher_step_parts(fb_searcher *s, const fb_batch *const *parts, fb_search_step_info *o,
                           fb_status *st) {
  memset(o, 0, sizeof *o);
  s->parts = parts;
  if (train_weights(s, o, st)) return -1;
  resource_terms(s);
  if (update_theta(s, o, st)) return -1;
  s->step++;
  return 0;
}

int fb_searcher_step(fb_searcher *s, const fb_batch *b, fb_search_step_info *o, fb_status *st) {
  if (s->M != 1) return fb_fail(st, "internal: %d architectures per step need %d batches", s->M, s->M);
  const fb_batch *parts[1] = {b};
  return fb_searcher_step_parts(s, parts, o, st);
}

/* ---- logging ------------------------------------------------------------- */

static void log_step(const srch *s, const fb_search_step_info *o, double sec) {
  const fb_searcher *e = &s->e;
  FILE *f = s->log;
  fprintf(f, "{\"step\": %ld, \"lr\": %.6g, \"theta_frozen\": %s, \"u\": \"%s\", \"sec\": %.4f",
          e->step, o->lr, e->step - 1 < e->warmup_steps ? "true" : "false",
          fb_task_name(e->task[o->u]), sec);
  char *bits = fb_xmalloc((size_t)e->B + 1);
  fb_mask_to_string(e->mask, e->B, bits);
  fprintf(f, ", \"arch\": \"%s\"", bits);
  free(bits);
  static const char *keys[] = {"loss", "rho", "penalty", "macs", "baseline", "latency_ms"};
  for (int k = 0; k < (e->lat ? 6 : 5); k++) {
    fprintf(f, ", \"%s\": {", keys[k]);
    for (int t = 0; t < e->T; t++) {
      double v = k == 0 ? o->loss[t] : k == 1 ? o->rho[t] : k == 2 ? o->pen[t]
               : k == 3 ? o->macs[t] : k == 4 ? e->dist.baseline[t] : o->latency[t];
      fprintf(f, k == 3 ? "%s\"%s\": %.0f" : "%s\"%s\": %.6g", t ? ", " : "",
              fb_task_name(e->task[t]), v);
    }
    fprintf(f, "}");
  }
  fprintf(f, ", \"probs\": {");
  for (int t = 0; t < e->T; t++) {
    fprintf(f, "%s\"%s\": [", t ? ", " : "", fb_task_name(e->task[t]));
    for (int b = 0; b < e->B; b++)
      fprintf(f, "%s%.4f", b ? "," : "", fb_archdist_prob(&e->dist, t, b));
    fprintf(f, "]");
  }
  fprintf(f, "}}\n");
}

static void print_progress(const srch *s, fb_progress *pg, double now,
                           const fb_search_step_info *o, double rate) {
  const fb_searcher *e = &s->e;
  const fb_search_cfg *c = s->c;
  char line[512];
  int n = snprintf(line, sizeof line, "step %ld/%ld%s", e->step, c->steps,
                   e->step <= e->warmup_steps ? " (warm-up: weights only)" : "");
  for (int t = 0; t < e->T && n < (int)sizeof line; t++)
    n += snprintf(line + n, sizeof line - (size_t)n, "  %s loss %.3f p>0.5 %d/%d",
                  fb_task_name(e->task[t]), o->loss[t], fb_archdist_num_on(&e->dist, t), e->B);
  const double left = (double)(c->steps - e->step) / (rate > 0 ? rate : 1);
  if (n < (int)sizeof line)
    snprintf(line + n, sizeof line - (size_t)n, "  %.1f img/s  ETA %.0fs", rate * c->batch, left);
  fb_progress_show(pg, now, (double)e->step / (double)c->steps, line);
}

/* ---- the run ------------------------------------------------------------- */

/* Positions the loader at the batch of the current step (after a resume or
 * at the start of an epoch). */
static void seek_loader(srch *s) {
  const long epoch = s->e.step / s->steps_per_epoch, bi = s->e.step % s->steps_per_epoch;
  fb_loader_start_epoch(s->loader, epoch);
  for (long k = 0; k < bi * s->M; k++) fb_loader_next(s->loader);
}

static const fb_batch *next_batch(void *loader) { return fb_loader_next(loader); }

static int run_steps_shown(srch *s, fb_progress *pg, fb_status *st) {
  const fb_search_cfg *c = s->c;
  fb_searcher *e = &s->e;
  e->next = next_batch;
  e->next_ctx = s->loader;
  const double t0 = fb_now_sec();
  const long step0 = e->step;
  seek_loader(s);
  while (e->step < c->steps) {
    if (e->step % s->steps_per_epoch == 0 && e->step != step0) seek_loader(s);
    fb_search_step_info o;
    const double ts = fb_now_sec();
    if (fb_searcher_step_parts(e, NULL, &o, st)) return -1;
    if (s->log) log_step(s, &o, fb_now_sec() - ts);
    const double t = fb_now_sec();
    if (!c->quiet && fb_progress_due(pg, t, e->step == c->steps || e->step == step0 + 1))
      print_progress(s, pg, t, &o, (double)(e->step - step0) / (t - t0));
    const int stop = c->stop_after > 0 && e->step - step0 >= c->stop_after;
    if (e->step % c->ckpt_every == 0 || e->step == c->steps || stop) {
      if (s->log) fflush(s->log);
      if (save_checkpoint(s, st)) return -1;
    }
    if (stop && e->step < c->steps) {
      fb_progress_end(pg);
      if (!c->quiet)
        fb_log(c->log, FB_LOG_INFO, "stopped after %ld steps at step %ld (--stop-after); "
               "continue with --resume", c->stop_after, e->step);
      return 1;
    }
  }
  if (s->log) fflush(s->log);
  return 0;
}

/* The steps with their progress bar, which ends before anything else is printed. */
static int run_steps(srch *s, fb_status *st) {
  fb_progress pg;
  fb_progress_init(&pg, s->c->log);
  const int rc = run_steps_shown(s, &pg, st);
  fb_progress_end(&pg);
  return rc;
}

static void teardown(srch *s) {
  if (s->log) fclose(s->log);
  fb_dir_unlock(s->lock);
  fb_loader_free(s->loader);
  fb_searcher_free(&s->e);
  fb_net_free(s->net);
  fb_mt_dataset_free(&s->data);
}

static int open_log(srch *s, fb_status *st) {
  if (s->rank > 0) return 0;
  char path[1200];
  if (fb_path_in(path, sizeof path, s->c->out_dir, "search.jsonl", st)) return -1;
  if (s->c->resume && fb_jsonl_truncate(path, "step", s->e.step, st)) return -1;
  if (!(s->log = fopen(path, s->c->resume ? "a" : "w")))
    return fb_fail_io(st, "%s: cannot open for writing", path);
  return 0;
}

static void print_header(const srch *s) {
  const fb_search_cfg *c = s->c;
  const fb_searcher *e = &s->e;
  char tasks[32] = "";
  for (int t = 0; t < e->T; t++)
    snprintf(tasks + strlen(tasks), sizeof tasks - strlen(tasks), " %s", fb_task_name(e->task[t]));
  fb_log(c->log, FB_LOG_INFO, "fbnet search: %s, %d bits, tasks%s; %d px, width %.2f; %d proxy "
         "images, batch %d, %ld steps (%ld warm-up, theta frozen)%s", s->net->name, e->B, tasks,
         s->net->opts.input_size, s->net->opts.width, s->data.n, c->batch, c->steps,
         e->warmup_steps, c->resume ? "; resuming" : "");
}

int fb_search_run(const fb_search_cfg *c, fb_status *st) {
  srch s;
  int rc = setup(&s, c, st);
  if (rc == 0) {
    char *config = search_config(&s);
    rc = fb_dist_same(c->dist, "configuration (options, data, supernet)", config, st);
    free(config);
  }
  if (rc == 0 && c->resume) rc = resume(&s, st);
  if (rc == 0) rc = open_log(&s, st);
  if (rc == 0 && !c->quiet && s.rank == 0) print_header(&s);
  if (rc == 0) rc = run_steps(&s, st);
  if (rc == 1) { /* --stop-after: checkpoint written, no results yet */
    teardown(&s);
    return 0;
  }
  if (rc == 0 && s.rank > 0) { /* rank 0 writes the results */
    teardown(&s);
    return 0;
  }
  if (rc == 0) {
    char path[1200];
    rc = fb_path_in(path, sizeof path, c->out_dir, "supernet.safetensors", st) ||
         fb_weights_save(path, s.net, st) ? -1 : 0;
  }
  if (rc == 0)
    rc = fb_search_write_results(s.net, &s.e.dist, s.e.task, s.e.T, c, s.e.step, st);
  teardown(&s);
  return rc;
}
