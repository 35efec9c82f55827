/* fbnet search: FBNetV5 multi-task architecture search on a proxy set
 * (src/search/search.h, docs/search.md). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "dist/dist.h"
#include "commands.h"
#include "term_log.h"
#include "search/search.h"
#include "tasks/task.h"

/* "cls,det,seg" -> FB_TASK_* bits; 0 with a message on a bad list. */
unsigned parse_task_list(const char *s, const char *cmd) {
  unsigned tasks = 0;
  char buf[64];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    const fb_task_row *row = fb_task_named(tok);
    const unsigned t = row ? row->id : 0;
    if (!t || (tasks & t)) {
      fprintf(stderr, "%s: --tasks: '%s' is %s (a comma-separated list of cls, det, seg)\n", cmd,
              tok, t ? "given twice" : "not a task");
      return 0;
    }
    tasks |= t;
  }
  if (!tasks) fprintf(stderr, "%s: --tasks is empty\n", cmd);
  return tasks;
}

/* "det=30,seg=20" -> values[0..2] for cls, det, seg; -1 on error. A unit
 * (e.g. "ms") may follow each value. */
static int parse_task_values(const char *s, const char *opt, const char *unit, double *values) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    char *end = NULL;
    double v = eq ? strtod(eq + 1, &end) : 0;
    if (unit && end && strcmp(end, unit) == 0) end += strlen(unit);
    int slot = !eq ? -1 : strncmp(tok, "cls=", 4) == 0 ? 0 : strncmp(tok, "det=", 4) == 0 ? 1
             : strncmp(tok, "seg=", 4) == 0 ? 2 : -1;
    if (slot < 0 || !end || *end || !(v >= 0) || v > 1e12) {
      fprintf(stderr, "fbnet search: %s: '%s' must look like task=VALUE with task cls, det or seg "
              "and VALUE >= 0 (e.g. %s det=30)\n", opt, tok, opt);
      return -1;
    }
    values[slot] = v;
  }
  return 0;
}

int cmd_search(int argc, char **argv) {
  fb_search_cfg c = fb_search_cfg_default();
  const char *tasks = "cls,det,seg", *gamma = NULL, *targets = NULL, *lat_targets = NULL;
  int lat_threads = 0, lat_force = 0;
  int input = -1, batch = -1, seed = -1, threads = 0, optimizer = -1, det_width = 0,
      seg_width = 0, det_depth = -2, resume = 0, quiet = 0, archs = 1, limit = 0, adv_norm = 0, replay = 0;
  double elite = 0;
  int sandwich = 0;
  int deploy_input = 0, allow_changes = 0;
  double max_loss_ratio = -1;
  double deploy_width = 0;
  double width = -1, lr = -1, wd = -1, warmup = -1, theta_lr = -1, init_prob = -1, rho_clip = -1,
         lambda = -1, thresh = -1, steps = -1, ckpt = -1, stop_after = -1;
  /* help texts print the defaults of fb_search_cfg_default, so the two cannot drift */
  const fb_optim_cfg sgd = fb_optim_sgd_default();
  char h_input[96], h_width[96], h_steps[96], h_batch[96], h_warmup[128], h_optim[160],
      h_theta[96], h_init[96], h_lambda[160], h_thresh[96], h_detw[96], h_detd[96], h_segw[96],
      h_ckpt[96], h_seed[96], h_ratio[160];
  snprintf(h_input, sizeof h_input, "input size, a multiple of 32 (default %d)", c.build.input_size);
  snprintf(h_width, sizeof h_width, "width multiplier (default %g)", c.build.width);
  snprintf(h_steps, sizeof h_steps, "search steps (default %ld)", c.steps);
  snprintf(h_batch, sizeof h_batch, "images per step (default %d)", c.batch);
  snprintf(h_warmup, sizeof h_warmup, "fraction of the steps that train the weights only, theta "
           "frozen (default %g)", c.warmup_frac);
  snprintf(h_optim, sizeof h_optim, "supernet weights (default adamw lr %g wd %g; sgd: lr %g "
           "momentum %g nesterov wd %g)", c.optim.lr, c.optim.weight_decay, sgd.lr, sgd.momentum,
           sgd.weight_decay);
  snprintf(h_theta, sizeof h_theta, "Adam learning rate of the architecture logits (default %g)",
           c.theta_lr);
  snprintf(h_init, sizeof h_init, "initial probability of keeping each bit (default %g)",
           c.init_prob);
  snprintf(h_lambda, sizeof h_lambda, "weight of each resource term lambda * max(0, cost/target "
           "- 1) in the reward, for MACs and latency (default %g)", c.flops_lambda);
  snprintf(h_thresh, sizeof h_thresh, "keep a bit when p > THRESH (default %g)", c.derive_thresh);
  snprintf(h_detw, sizeof h_detw, "detection head channels (default %d: a light head for the "
           "search)", c.build.det_width);
  snprintf(h_detd, sizeof h_detd, "detection tower depth (default %d; -1: none)", c.build.det_depth);
  snprintf(h_segw, sizeof h_segw, "segmentation head channels (default %d)", c.build.seg_width);
  snprintf(h_ckpt, sizeof h_ckpt, "steps between checkpoints (default %ld)", c.ckpt_every);
  snprintf(h_seed, sizeof h_seed, "random seed (default %llu)", (unsigned long long)c.seed);
  snprintf(h_ratio, sizeof h_ratio, "stop as diverged when a task's loss exceeds X times its "
           "recent mean (default %g; 0: only non-finite losses)", c.max_loss_ratio);
  const arg_opt opts[] = {
      {"--data", ARG_STRING, &c.data_dir, 0, 0, NULL, "proxy set written by 'fbnet label' (required)"},
      {"--out", ARG_STRING, &c.out_dir, 0, 0, NULL, "run directory (default runs/search)"},
      {"--tasks", ARG_STRING, &tasks, 0, 0, NULL, "tasks to search, e.g. cls,det,seg (default) or det"},
      {"--supernet", ARG_STRING, &c.supernet_path, 0, 0, NULL,
       "supernet arch file (default builtin:fbnetv5_supernet, the compiled-in archs/fbnetv5_supernet.json)"},
      {"--input", ARG_INT, &input, 32, 2048, NULL, h_input},
      {"--width", ARG_DOUBLE, &width, 0.05, 4.0, NULL, h_width},
      {"--steps", ARG_DOUBLE, &steps, 1, 1e9, NULL, h_steps},
      {"--batch", ARG_INT, &batch, 1, 65536, NULL, h_batch},
      {"--warmup", ARG_DOUBLE, &warmup, 0, 0.99, NULL, h_warmup},
      {"--optimizer", ARG_CHOICE, &optimizer, 0, 0, "sgd|adamw", h_optim},
      {"--lr", ARG_DOUBLE, &lr, 1e-8, 100, NULL, "peak learning rate of the weights (cosine)"},
      {"--wd", ARG_DOUBLE, &wd, 0, 1, NULL, "weight decay (conv/linear weights)"},
      {"--theta-lr", ARG_DOUBLE, &theta_lr, 1e-6, 1, NULL, h_theta},
      {"--init-prob", ARG_DOUBLE, &init_prob, 0.01, 0.99, NULL, h_init},
      {"--rho-clip", ARG_DOUBLE, &rho_clip, 0, 100, NULL, "clip importance weights (0: off, default)"},
      {"--adv-norm", ARG_FLAG, &adv_norm, 0, 0, NULL,
       "plain estimator: divide each task's advantage by a running deviation"},
      {"--replay", ARG_INT, &replay, 0, 65536, NULL,
       "the replay estimator: reuse the last N sampled architectures and losses, "
       "self-normalised importance weights (default 0: the plain estimator)"},
      {"--elite", ARG_DOUBLE, &elite, 0, 0.99, NULL,
       "with --replay: utility 1 for the best ELITE weighted fraction of the buffer (0: "
       "normalised losses; default 0)"},
      {"--gamma", ARG_STRING, &gamma, 0, 0, NULL, "per-task loss weights, e.g. cls=1,det=0.5 (default 1)"},
      {"--flops-target", ARG_STRING, &targets, 0, 0, NULL,
       "per-task MACs targets in millions of the DEPLOYED network (the derived arch with the "
       "task's full head, as fbnet train builds it, at --deploy-input/--deploy-width), e.g. "
       "cls=10,det=30 (default none)"},
      {"--deploy-input", ARG_INT, &deploy_input, 32, 2048, NULL,
       "input size the derived networks are retrained and deployed at: their arch files' "
       "input_size and the size the MACs count at (default: --input)"},
      {"--deploy-width", ARG_DOUBLE, &deploy_width, 0.05, 4.0, NULL,
       "width multiplier of the deployed networks, for the MACs (default: --width)"},
      {"--latency-target", ARG_STRING, &lat_targets, 0, 0, NULL,
       "per-task latency targets of the deployed networks, as --latency-table predicts them "
       "(batch 1, at its thread count), e.g. cls=3ms,det=8ms (default none)"},
      {"--latency-table", ARG_STRING, &c.latency_table, 0, 0, NULL,
       "latency table of the supernet at the deploy size, made on the target machine by "
       "'fbnet bench latency'; with it the summary also prints each derived network's "
       "predicted and measured latency"},
      {"--latency-threads", ARG_INT, &lat_threads, 1, 4096, NULL,
       "which of the table's thread counts (default: its only one)"},
      {"--latency-force", ARG_FLAG, &lat_force, 0, 0, NULL,
       "use a table made for another input size, width or head sizes (a warning)"},
      {"--flops-lambda", ARG_DOUBLE, &lambda, 0, 1e6, NULL, h_lambda},
      {"--thresh", ARG_DOUBLE, &thresh, 0.01, 0.99, NULL, h_thresh},
      {"--det-width", ARG_INT, &det_width, 8, 1024, NULL, h_detw},
      {"--det-depth", ARG_INT, &det_depth, -1, 8, NULL, h_detd},
      {"--seg-width", ARG_INT, &seg_width, 8, 1024, NULL, h_segw},
      {"--train-limit", ARG_INT, &limit, 1, 100000000, NULL, "use the first N proxy images"},
      {"--ckpt-every", ARG_DOUBLE, &ckpt, 1, 1e9, NULL, h_ckpt},
      {"--stop-after", ARG_DOUBLE, &stop_after, 1, 1e9, NULL,
       "stop after N steps of this invocation (checkpoint written; continue with --resume)"},
      {"--seed", ARG_INT, &seed, 0, 2147483647, NULL, h_seed},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--resume", ARG_FLAG, &resume, 0, 0, NULL,
       "continue from OUT/checkpoint.safetensors (with the run's options; --steps, --lr ... may "
       "not change, --stop-after, --ckpt-every, --threads may)"},
      {"--allow-changes", ARG_FLAG, &allow_changes, 0, 0, NULL,
       "with --resume: accept other options, e.g. a lower --lr after a divergence"},
      {"--max-loss-ratio", ARG_DOUBLE, &max_loss_ratio, 0, 1e9, NULL, h_ratio},
      {"--quiet", ARG_FLAG, &quiet, 0, 0, NULL, "no progress output"},
      {"--archs-per-step", ARG_INT, &archs, 1, FB_SEARCH_MAX_ARCHS, NULL,
       "architectures sampled per step (default 1), each trained on its part of the batch; "
       "their weight gradients are averaged and theta takes one update from all. Under "
       "mpirun every rank samples its own: N ranks x M architectures per step"},
      {"--sandwich", ARG_INT, &sandwich, 0, 2, NULL,
       "the sandwich rule: each step also trains the largest subnet (1: every bit kept) or the "
       "largest and the smallest (2) on the same batch, for the shared weights only (default "
       "0: off)"},
  };
  const arg_spec spec = {
      "fbnet search --data PROXY_DIR [--tasks cls,det,seg] [--out RUN_DIR] [options]",
      "Searches one architecture per task in ONE run (FBNetV5): the supernet is trained on the\n"
      "proxy set with every task head; each step samples one architecture from the mixture of\n"
      "the tasks' distributions, runs one forward and one backward, and updates every task's\n"
      "distribution by REINFORCE with importance weights. Writes RUN_DIR/<task>.json (derived\n"
      "architectures, trainable with 'fbnet train'), summary.txt/.json, search.jsonl (per step),\n"
      "checkpoint.safetensors (for --resume) and supernet.safetensors (for 'fbnet derive').",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!c.data_dir) {
    fprintf(stderr, "fbnet search: --data PROXY_DIR is required (make one with 'fbnet label'; "
            "see --help)\n");
    return 2;
  }
  if (!(c.tasks = parse_task_list(tasks, "fbnet search"))) return 2;
  if (gamma && parse_task_values(gamma, "--gamma", NULL, c.gamma)) return 2;
  if (targets && parse_task_values(targets, "--flops-target", NULL, c.flops_target)) return 2;
  if (lat_targets && parse_task_values(lat_targets, "--latency-target", "ms", c.latency_target))
    return 2;
  if (lat_targets && !c.latency_table) {
    fprintf(stderr, "fbnet search: --latency-target needs --latency-table (make one with 'fbnet "
            "bench latency')\n");
    return 2;
  }
  c.latency_threads = lat_threads;
  c.latency_force = lat_force;
  for (int k = 0; k < FB_SEARCH_MAX_TASKS; k++) c.flops_target[k] *= 1e6;
  if (optimizer == 0) c.optim = fb_optim_sgd_default();
  if (input > 0) c.build.input_size = input;
  if (width > 0) c.build.width = width;
  if (steps > 0) c.steps = (long)steps;
  if (batch > 0) c.batch = batch;
  if (warmup >= 0) c.warmup_frac = warmup;
  if (lr > 0) c.optim.lr = (float)lr;
  if (wd >= 0) c.optim.weight_decay = (float)wd;
  if (theta_lr > 0) c.theta_lr = theta_lr;
  if (init_prob > 0) c.init_prob = init_prob;
  if (rho_clip >= 0) c.rho_clip = rho_clip;
  if (lambda >= 0) c.flops_lambda = lambda;
  if (thresh > 0) c.derive_thresh = thresh;
  if (ckpt > 0) c.ckpt_every = (long)ckpt;
  if (seed >= 0) c.seed = (uint64_t)seed;
  if (stop_after > 0) c.stop_after = (long)stop_after;
  if (det_width > 0) c.build.det_width = det_width;
  if (seg_width > 0) c.build.seg_width = seg_width;
  if (det_depth > -2) c.build.det_depth = det_depth;
  c.adv_norm = adv_norm;
  c.replay = replay;
  c.elite = elite;
  c.deploy_input = deploy_input;
  c.deploy_width = deploy_width;
  c.train_limit = limit;
  c.threads = threads > 0 ? threads : 1;
  c.resume = resume && allow_changes ? 2 : resume;
  if (max_loss_ratio >= 0) c.max_loss_ratio = max_loss_ratio;
  c.archs_per_step = archs;
  c.sandwich = sandwich;
  if (threads) omp_set_num_threads(threads);
  fb_status st = {0};
  fb_dist dist;
  if (fb_dist_start(NULL, NULL, &dist, &st)) {
    fprintf(stderr, "fbnet search: error: %s\n", st.msg);
    return 1;
  }
  c.dist = &dist;
  c.quiet = quiet || dist.rank > 0;
  c.log = tool_logger();
  rc = fb_search_run(&c, &st);
  if (rc) tool_error("search", &dist, &st);
  else if (!quiet) tool_dist_summary("search", &dist);
  fb_dist_stop(&dist);
  return rc ? 1 : 0;
}
