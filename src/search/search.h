/* The FBNetV5 search (docs/method.md section 4): the supernet trained on the proxy
 * multi-task set with every task head, one sampled architecture per step,
 * ONE forward and ONE backward whose loss is sum_t gamma_t rho_t loss_t, and
 * every task's architecture distribution updated from that same step by
 * REINFORCE with importance weights (src/search/archdist.h).
 *
 * Run directory OUT:
 *   search.jsonl              one line per step: losses, rewards, importance
 *                             weights, the sampled bits, every task's bit
 *                             probabilities (docs/search.md)
 *   checkpoint.safetensors    weights + optimizer + the search state
 *                             (distributions, baselines, RNG), atomic;
 *                             --resume continues bit-exactly
 *   supernet.safetensors      the final supernet weights (fbnet derive)
 *   <task>.json               the derived architecture of each task
 *   summary.json, summary.txt per task: kept bits, MACs, params */
#ifndef FB_SEARCH_SEARCH_H
#define FB_SEARCH_SEARCH_H

#include <stdint.h>

#include "fbnet.h"
#include "core/rng.h"
#include "search/archdist.h"
#include "train/guard.h"
#include "train/optim.h"
#include "train/schedule.h"

#define FB_SEARCH_MAX_TASKS 3
#define FB_SEARCH_MAX_ARCHS 64 /* architectures per step and process */

typedef struct fb_search_cfg {
  const char *supernet_path;
  const char *data_dir;   /* proxy set (fbnet label) */
  const char *out_dir;
  unsigned tasks;         /* FB_TASK_* searched (their heads are built) */
  fb_build_opts build;    /* input size, width, head widths of the search */
  int deploy_input;       /* the deployed networks (what --flops-target and the summary */
  double deploy_width;    /* count): input size and width, 0 = the search's; full heads */
  long steps;
  int batch;
  double warmup_frac;     /* theta frozen for the first warmup_frac * steps */
  fb_optim_cfg optim;     /* supernet weights */
  double lr_warmup_frac;  /* linear LR warm-up, fraction of the steps */
  float final_lr_frac;
  double theta_lr;        /* Adam on the logits */
  double init_prob;       /* initial p(keep) of every bit */
  double rho_clip;        /* 0: off */
  int adv_norm;           /* the estimator (fb_archdist_set_estimator): plain with or */
  int replay;             /* without advantage normalisation (replay 0), or the replay */
  double elite;           /* estimator over the last `replay` steps (elite fraction) */
  double gamma[FB_SEARCH_MAX_TASKS];        /* loss weight per task: cls, det, seg */
  double flops_target[FB_SEARCH_MAX_TASKS]; /* MACs of the task's deployed network; 0: none */
  double flops_lambda;    /* weight of every resource term (MACs and latency) */
  const char *latency_table;  /* `fbnet bench latency`'s table (NULL: none) */
  double latency_target[FB_SEARCH_MAX_TASKS]; /* ms of the task's deployed network (table
                           * prediction at latency_threads); 0: none */
  int latency_threads;    /* which of the table's thread counts (0: its only one) */
  int latency_force;      /* accept a table made for another input size, width or heads */
  double derive_thresh;   /* 0.5 */
  float label_smoothing;
  uint64_t seed;
  int threads;            /* loader threads */
  int train_limit;        /* first N proxy images (0: all) */
  long ckpt_every;        /* steps between checkpoints */
  long stop_after;        /* > 0: stop (with a checkpoint) after this many steps of this
                           * invocation; --resume continues */
  int resume;             /* 1: continue OUT's run; 2: also with other options */
  double max_loss_ratio;  /* divergence: loss > this x its recent mean (0: non-finite only) */
  int quiet;              /* no progress and no messages (the result text still goes to log) */
  const fb_logger *log;   /* messages, progress and the summary text (NULL: silent) */
  int archs_per_step;     /* architectures sampled per step by this process (0 or 1: one), each
                           * on its own part of the batch; their weight gradients are averaged
                           * and theta takes one update from all of them */
  int sandwich;           /* the sandwich rule: each step also trains, on the same batch as
                           * the sampled architecture, the largest subnet (1: every bit kept)
                           * and the smallest (2: also every bit dropped); these extra passes
                           * train the shared weights only (no theta update). 0: off */
  struct fb_dist *dist;   /* data-parallel ranks (dist/dist.h); each samples its own
                           * architectures; NULL: this process alone */
} fb_search_cfg;

fb_search_cfg fb_search_cfg_default(void);
/* The build options of the networks a search's results are deployed as:
 * c->build with the deploy input size and width, and the heads `fbnet train`
 * builds by default (the search's light heads only rank architectures). */
fb_build_opts fb_search_deploy_opts(const fb_search_cfg *c);
int fb_search_run(const fb_search_cfg *c, fb_status *st);
/* The search state a checkpoint's metadata "search" holds (JSON text): the
 * distributions into *d and, when rng is non-NULL, the sampling RNG. path
 * names the file in messages. */
int fb_search_state_read(const char *json, const char *path, fb_archdist *d, fb_rng *rng,
                         fb_status *st);

/* The step engine shared by the run and `fbnet bench search`: a supernet
 * (built with the searched tasks' heads, planned) plus the distributions. */
struct fb_net;
struct fb_batch;
typedef struct fb_searcher {
  const fb_search_cfg *c;
  struct fb_net *net;        /* borrowed */
  struct fb_net *cost_net;   /* owned: the supernet at the deploy options, never planned:
                              * per-step MACs of each task's deployed network */
  struct fb_lat_table *lat;  /* owned: the latency table (NULL: none) */
  const struct fb_lat_task *lat_task[FB_SEARCH_MAX_TASKS]; /* each task's (NULL: none) */
  fb_archdist dist;
  fb_rng rng;
  fb_schedule sched;
  int T, B;
  unsigned task[FB_SEARCH_MAX_TASKS];
  int slot[FB_SEARCH_MAX_TASKS]; /* task[t]'s slot in the task table: per-task options */
  int n_roots[FB_SEARCH_MAX_TASKS], roots[FB_SEARCH_MAX_TASKS][4];
  float base_w[FB_SEARCH_MAX_TASKS][4]; /* the heads' own loss weights */
  uint8_t *mask;             /* the architecture of the current step */
  long step, warmup_steps;
  /* benchmarks: when non-NULL, every step uses this architecture instead of
   * sampling one (importance weights and updates run as usual) */
  const uint8_t *forced_mask;
  fb_loss_guard guard[FB_SEARCH_MAX_TASKS]; /* divergence, per task */
  /* tests: when non-NULL, added to each task's reward (e.g. a planted
   * architecture preference); task is FB_TASK_* */
  double (*reward_hook)(void *ctx, unsigned task, const uint8_t *mask, int n_bits);
  void *hook_ctx;
  /* several architectures per step (archs_per_step x ranks) */
  int M, A;                  /* this rank's, and all ranks' together */
  int rank;
  uint8_t *masks;            /* M x B: this rank's architectures of the step */
  double *mine, *all;        /* packed samples: M, and A of them (sample_doubles each) */
  uint8_t *used;             /* parameter slots any of this rank's architectures uses */
  const struct fb_batch *const *parts; /* the step's M batches, or NULL: next(next_ctx)
                              * gives each when its architecture is trained (a loader's batch
                              * lives until the next one is asked for) */
  const struct fb_batch *(*next)(void *ctx);
  void *next_ctx;
  int cur;                   /* the architecture being trained (>= M: a sandwich pass) */
  const struct fb_batch *last; /* the batch of this step's last sampled architecture (the
                              * sandwich passes train on it) */
} fb_searcher;

/* What one step did (for the log). */
typedef struct fb_search_step_info {
  int u;                     /* mixture component the architecture came from */
  double loss[FB_SEARCH_MAX_TASKS], rho[FB_SEARCH_MAX_TASKS], pen[FB_SEARCH_MAX_TASKS];
  double macs[FB_SEARCH_MAX_TASKS]; /* MACs of each task's deployed network under the mask */
  double latency[FB_SEARCH_MAX_TASKS]; /* its predicted latency, ms (0: no table) */
  double total;
  float lr;
} fb_search_step_info;

/* net: built with exactly the heads of c->tasks and planned. */
int fb_searcher_init(fb_searcher *s, const fb_search_cfg *c, struct fb_net *net, fb_status *st);
/* One search step on batch b: sample a, importance weights, one forward and
 * one backward with every head, weight update, REINFORCE update. */
int fb_searcher_step(fb_searcher *s, const struct fb_batch *b, fb_search_step_info *o,
                     fb_status *st);
/* The same with s->M architectures on M batches (parts[k] for architecture
 * k; parts NULL: from s->next); with ranks, every rank's samples are gathered and each rank makes the
 * same theta update. o describes the first architecture of rank 0. */
int fb_searcher_step_parts(fb_searcher *s, const struct fb_batch *const *parts,
                           fb_search_step_info *o, fb_status *st);
void fb_searcher_free(fb_searcher *s);

/* Order of tasks inside a search: the selected ones among cls, det, seg. */
int fb_search_task_list(unsigned tasks, unsigned *list);

#endif
