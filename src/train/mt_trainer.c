#include "train/mt_trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/progress.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/labels.h"
#include "data/loader.h"
#include "nn/net.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "data/augment.h"
#include "train/guard.h"
#include "train/ema.h"
#include "train/schedule.h"
#include "train/step.h"

fb_mt_cfg fb_mt_cfg_default(int task) {
  fb_mt_cfg c;
  memset(&c, 0, sizeof c);
  c.task = task;
  c.out_dir = "runs/task";
  c.build = fb_build_opts_default();
  c.build.tasks = (unsigned)task;
  c.build.input_size = 64;
  c.build.width = 1.0;
  c.build.standard_padding = 1;
  c.epochs = 30;
  c.batch = 32;
  c.optim = fb_optim_adamw_default();
  c.optim.lr = 2e-3f;
  c.optim.weight_decay = 0.05f;
  c.warmup_epochs = 1.0;
  c.final_lr_frac = 0.01f;
  c.label_smoothing = 0.1f;
  c.scale_min = 0.75f;
  c.scale_max = 1.25f;
  c.hflip = 1;
  c.ema_decay = 0.999f;
  c.seed = 1;
  c.threads = 1;
  c.max_loss_ratio = FB_LOSS_GUARD_DEFAULT;
  return c;
}

/* Frees samples [keep, n) so that only the first `keep` remain. */
static void truncate_dataset(fb_mt_dataset *d, int keep) {
  if (keep <= 0 || keep >= d->n) return;
  for (int i = keep; i < d->n; i++) {
    free(d->s[i].file);
    free(d->s[i].px);
    free(d->s[i].boxes);
    free(d->s[i].mask);
  }
  d->n = keep;
}

int fb_mt_load_split(int task, const char *dir, const char *split, int limit, fb_mt_dataset *d,
                     fb_status *st) {
  memset(d, 0, sizeof *d);
  const fb_task_row *r = fb_task_row_of((unsigned)task);
  if (!r) return fb_fail(st, "internal: fb_mt_load_split: task %d is not one task", task);
  if (r->load_split(dir, split, d, st)) return -1;
  if (d->n == 0) return fb_fail(st, "%s: no %s images", dir, split);
  truncate_dataset(d, limit);
  return 0;
}

void fb_mt_build_opts_for_data(int task, const fb_mt_dataset *d, fb_build_opts *b) {
  b->tasks = (unsigned)task;
  b->in_channels = 3;
  const fb_task_row *r = fb_task_row_of((unsigned)task);
  if (r) r->head_from_data(d, b);
}

/* Copies the batch images into the network input and, when training, fills
 * every head's targets (evaluation reads predictions only). Items past b->n
 * (a short eval batch) keep stale values. */
int fb_mt_fill_batch(fb_net *net, const fb_batch *b, int targets, fb_status *st) {
  size_t per = (size_t)b->c * b->size * b->size;
  memcpy(fb_net_input(net), b->images, (size_t)b->n * per * sizeof(float));
  if (!targets) return 0;
  for (int k = 0; fb_task_at(k); k++)
    if ((net->tasks & fb_task_at(k)->id) && fb_task_at(k)->set_targets(net, b, st)) return -1;
  return 0;
}

fb_loader *fb_mt_loader_create(const fb_mt_dataset *d, const fb_net *net, int batch, int train,
                               const fb_mt_cfg *c, int threads, fb_status *st) {
  const int S = net->opts.input_size;
  fb_loader_cfg lc = fb_loader_cfg_default(S, net->opts.in_channels == 1 ? 1 : 3, batch, train);
  if (lc.channels == 1 && !train) { /* a Fashion-MNIST model: its trainer's framing */
    lc.mean[0] = FB_FMNIST_MEAN;
    lc.std[0] = FB_FMNIST_STD;
    lc.content = net->opts.input_content > 0 ? net->opts.input_content : fb_aug_default(S).content;
  }
  lc.seed = c ? c->seed : 1;
  lc.threads = threads > 0 ? threads : 1;
  if (train) {
    lc.hflip = c->hflip;
    lc.scale_min = c->scale_min;
    lc.scale_max = c->scale_max;
    lc.drop_last = 1;
    const int ranks = c->dist ? c->dist->size : 1, micro = c->micro > 1 ? c->micro : 1;
    if (ranks * micro > 1) { /* this rank's micro-batches of every global batch */
      lc.parts = ranks * micro;
      lc.part_first = (c->dist ? c->dist->rank : 0) * micro;
      lc.part_count = micro;
    }
  }
  return fb_loader_create(d, &lc, st);
}

/* ---- training ------------------------------------------------------------ */

typedef struct mt_state {
  const fb_mt_cfg *cfg;
  fb_net *net;
  fb_mt_dataset train, val;
  fb_loader *loader;
  fb_ema ema;
  fb_schedule sched;
  long steps_per_epoch, step;
  int epoch;
  FILE *log;
  long step0;              /* step at the start of this invocation */
  double train_sec, eval_sec; /* time in training steps so far, in the last evaluation */
  int lock;                /* the run directory's lock (fb_dir_lock) */
  char *config;            /* the run's options (checkpoint "config") */
  fb_loss_guard guard;     /* divergence */
  int rank, per_pass;      /* data-parallel rank; items per forward pass */
} mt_state;

/* The loader's next micro-batch of this rank into the net. */
static int fill_next(void *ctx, int k, fb_status *st) {
  (void)k;
  mt_state *s = ctx;
  const fb_batch *b = fb_loader_next(s->loader);
  if (!b) return fb_fail(st, "internal: the loader ran out of batches within an epoch");
  return fb_mt_fill_batch(s->net, b, 1, st);
}

/* The options the result depends on (compared on --resume). */
static char *mt_config(const mt_state *s) {
  const fb_mt_cfg *c = s->cfg;
  cJSON *o = cJSON_CreateObject();
  fb_config_put_recipe(o, s->net, &c->optim, c->data_dir, c->batch, c->seed, c->warmup_epochs,
                       c->final_lr_frac, c->label_smoothing, c->ema_decay);
  fb_config_put(o, "--task", "%s", fb_task_name(c->task));
  fb_config_put(o, "--scale-min/--scale-max", "%g %g", (double)c->scale_min, (double)c->scale_max);
  fb_config_put(o, "--no-flip", "%d", !c->hflip);
  fb_config_put(o, "--train-limit/--val-limit", "%d %d", c->train_limit, c->val_limit);
  return fb_config_finish(o);
}

static int mt_setup(mt_state *s, const fb_mt_cfg *c, fb_status *st) {
  memset(s, 0, sizeof *s);
  s->cfg = c;
  s->lock = -1;
  if (c->epochs < 1 || c->batch < 1) return fb_fail(st, "epochs and batch must be >= 1");
  if (fb_optim_check(&c->optim, st)) return -1;
  s->rank = c->dist ? c->dist->rank : 0;
  if (fb_split_batch(c->batch, c->dist ? c->dist->size : 1, c->micro, &s->per_pass, st))
    return -1;
  if (fb_mt_load_split(c->task, c->data_dir, "train", c->train_limit, &s->train, st) ||
      fb_mt_load_split(c->task, c->data_dir, "val", c->val_limit, &s->val, st))
    return -1;
  fb_build_opts b = c->build;
  fb_mt_build_opts_for_data(c->task, &s->train, &b);
  fb_arch *arch = fb_arch_load(c->arch_path, st);
  if (!arch) return -1;
  s->net = fb_net_build(arch, &b, c->seed, st);
  fb_arch_free(arch);
  if (!s->net) return -1;
  s->net->labels_json = fb_labels_to_json(&s->train, (unsigned)c->task);
  if (s->net->loss_node >= 0)
    s->net->g.nodes[s->net->loss_node].args.attr.label_smoothing = c->label_smoothing;
  if (fb_net_plan(s->net, s->per_pass, c->seed, st)) return -1;
  s->loader = fb_mt_loader_create(&s->train, s->net, s->per_pass, 1, c, c->threads, st);
  if (!s->loader) return -1;
  s->steps_per_epoch = fb_loader_num_batches(s->loader) / (c->micro > 1 ? c->micro : 1);
  if (s->steps_per_epoch < 1)
    return fb_fail(st, "%s: %d training images are fewer than one batch of %d", c->data_dir,
                   s->train.n, c->batch);
  s->sched.base_lr = c->optim.lr;
  s->sched.warmup_steps = (long)(c->warmup_epochs * s->steps_per_epoch);
  s->sched.total_steps = s->steps_per_epoch * c->epochs;
  s->sched.final_frac = c->final_lr_frac;
  if (fb_schedule_check(&s->sched, st)) return -1;
  if (c->ema_decay > 0) fb_ema_init(&s->ema, &s->net->g.params, c->ema_decay);
  /* rank 0 owns the run directory; the others only read its checkpoint */
  if (s->rank == 0 &&
      (fb_mkdir_p(c->out_dir, st) || (s->lock = fb_dir_lock(c->out_dir, st)) < 0))
    return -1;
  s->config = mt_config(s);
  if (fb_dist_same(c->dist, "configuration (options, data, arch)", s->config, st)) return -1;
  fb_loss_guard_init(&s->guard, c->max_loss_ratio);
  if (c->resume && fb_checkpoint_load(c->out_dir, s->net, c->ema_decay > 0 ? &s->ema : NULL,
                                      &s->epoch, &s->step, c->resume == 2 ? NULL : s->config, c->log, st))
    return -1;
  if (s->rank > 0) return 0;
  char path[1200];
  if (fb_path_in(path, sizeof path, c->out_dir, "log.jsonl", st)) return -1;
  /* a kill between an epoch's log line and its checkpoint: that epoch runs again */
  if (c->resume && fb_jsonl_truncate(path, "epoch", s->epoch, st)) return -1;
  if (!(s->log = fopen(path, c->resume ? "a" : "w")))
    return fb_fail_io(st, "%s: cannot open for writing", path);
  return 0;
}

static void mt_teardown(mt_state *s) {
  if (s->log) fclose(s->log);
  free(s->config);
  fb_dir_unlock(s->lock);
  fb_loader_free(s->loader);
  if (s->cfg && s->cfg->ema_decay > 0) fb_ema_free(&s->ema);
  fb_net_free(s->net);
  fb_mt_dataset_free(&s->train);
  fb_mt_dataset_free(&s->val);
}

/* Seconds left: the steps at this invocation's rate plus one evaluation per
 * remaining epoch (the current one included) at the last one's duration. */
static double mt_eta(const mt_state *s) {
  const fb_mt_cfg *c = s->cfg;
  const double done = (double)(s->step - s->step0), left = (double)s->steps_per_epoch * c->epochs - s->step;
  const double rate = done > 0 && s->train_sec > 0 ? done / s->train_sec : 0;
  return (rate > 0 ? left / rate : 0) + (c->epochs - s->epoch) * s->eval_sec;
}

static double mt_epoch_shown(mt_state *s, fb_progress *pg, fb_status *st) {
  const fb_mt_cfg *c = s->cfg;
  const fb_stepper step = {.net = s->net, .optim = &c->optim, .sched = &s->sched,
                           .ema = c->ema_decay > 0 ? &s->ema : NULL, .out_dir = c->out_dir,
                           .n_guards = 1, .guard = &s->guard,
                           .reduce = c->dist && c->dist->size > 1 ? fb_dist_grad_mean : NULL,
                           .reduce_ctx = c->dist, .micro = c->micro,
                           .fill = fill_next, .fill_ctx = s};
  fb_loader_start_epoch(s->loader, s->epoch);
  double loss_sum = 0;
  long i = 0;
  double ts = fb_now_sec();
  while (i < s->steps_per_epoch) {
    char where[64];
    snprintf(where, sizeof where, "epoch %d step %ld", s->epoch + 1, i + 1);
    fb_step_result r;
    if (fb_train_step(&step, s->step, where, &r, st)) return NAN;
    const float loss = r.total, lr = r.lr;
    s->step++;
    i++;
    loss_sum += loss;
    double t = fb_now_sec();
    s->train_sec += t - ts;
    ts = t;
    if (!c->quiet && fb_progress_due(pg, t, i == s->steps_per_epoch)) {
      char line[256];
      snprintf(line, sizeof line, "epoch %d/%d  step %ld/%ld  loss %.4f  lr %.5f  %.0f img/s  "
               "ETA %.0fs", s->epoch + 1, c->epochs, i, s->steps_per_epoch, loss_sum / i, lr,
               (double)(s->step - s->step0) * c->batch / s->train_sec, mt_eta(s));
      fb_progress_show(pg, t, (double)s->step / ((double)s->steps_per_epoch * c->epochs), line);
    }
  }
  return loss_sum / (i > 0 ? i : 1);
}

/* One epoch with its progress bar, which ends before anything else is printed. */
static double mt_epoch(mt_state *s, fb_status *st) {
  fb_progress pg;
  fb_progress_init(&pg, s->cfg->log);
  pg.last = fb_now_sec();
  const double loss = mt_epoch_shown(s, &pg, st);
  fb_progress_end(&pg);
  return loss;
}

static int mt_eval(mt_state *s, fb_mt_metrics *m, fb_status *st) {
  fb_ema *ema = s->cfg->ema_decay > 0 ? &s->ema : NULL;
  if (ema) fb_ema_swap(ema, &s->net->g.params);
  const fb_eval_opts o = {.threads = s->cfg->threads, .progress = !s->cfg->quiet,
                          .log = s->cfg->log};
  const double t0 = fb_now_sec();
  int rc = fb_mt_evaluate(s->net, &s->val, s->cfg->task, &o, m, st);
  s->eval_sec = fb_now_sec() - t0;
  if (ema) fb_ema_swap(ema, &s->net->g.params);
  return rc;
}

int fb_mt_train(const fb_mt_cfg *c, fb_mt_metrics *final, fb_status *st) {
  mt_state s;
  memset(final, 0, sizeof *final);
  int rc = mt_setup(&s, c, st);
  if (rc == 0 && !c->quiet) {
    fb_count cnt = fb_net_count(s.net);
    fb_log(c->log, FB_LOG_INFO, "fbnet train --task %s: %s width %.2f input %d: %.2f M MACs, %.3f M params; "
            "%d train / %d val images, batch %d, %ld steps/epoch", fb_task_name(c->task),
            s.net->name, s.net->opts.width, s.net->opts.input_size, cnt.macs / 1e6,
            cnt.params_all / 1e6, s.train.n, s.val.n, c->batch, s.steps_per_epoch);
  }
  s.step0 = s.step;
  if (rc == 0 && s.epoch >= c->epochs && s.rank == 0) { /* --resume of a finished run */
    if (!c->quiet)
      fb_log(c->log, FB_LOG_INFO, "the run in %s already finished its %d epochs: evaluating its weights",
              c->out_dir, c->epochs);
    rc = mt_eval(&s, final, st);
  }
  while (rc == 0 && s.epoch < c->epochs) {
    double te = fb_now_sec();
    double loss = mt_epoch(&s, st);
    if (isnan(loss) ||
        fb_sync_replicas(c->dist, &s.net->g.params, c->ema_decay > 0 ? &s.ema : NULL, st)) {
      rc = -1;
      break;
    }
    s.epoch++;
    if (s.rank > 0) continue; /* rank 0 evaluates, logs and saves */
    if (mt_eval(&s, final, st)) {
      rc = -1;
      break;
    }
    char js[4096];
    fb_mt_metrics_json(final, js, sizeof js);
    fprintf(s.log, "{\"epoch\": %d, \"step\": %ld, \"train_loss\": %.5f, \"seconds\": %.1f, "
            "\"val\": %s}\n", s.epoch, s.step, loss, fb_now_sec() - te, js);
    fflush(s.log);
    if (!c->quiet)
      fb_log(c->log, FB_LOG_INFO, "epoch %d/%d done in %.0fs: train loss %.4f  val %s %.4f", s.epoch,
              c->epochs, fb_now_sec() - te, loss, fb_mt_headline_name(c->task),
              fb_mt_headline(final));
    rc = fb_run_save(c->out_dir, s.net, c->ema_decay > 0 ? &s.ema : NULL, s.epoch, s.step,
                     s.config, st);
  }
  if (rc == 0 && !c->quiet && s.step < FB_FEW_STEPS)
    fb_log(c->log, FB_LOG_WARN, "warning: only %ld training steps: too few for a network to learn much "
            "(metrics near zero are expected); train longer (--epochs) or on more images",
            s.step);
  mt_teardown(&s);
  return rc;
}
