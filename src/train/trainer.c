#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/progress.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "data/labels.h"
#include "train/guard.h"
#include "core/status.h"
#include "data/fmnist.h"
#include "nn/net.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/schedule.h"
#include "train/step.h"
#include "dist/dist.h"

fb_train_cfg fb_train_cfg_default(void) {
  fb_train_cfg c;
  memset(&c, 0, sizeof c);
  c.data_dir = "fashion-mnist";
  c.out_dir = "runs/cls";
  c.build = fb_build_opts_default();
  c.build.in_channels = 1;
  c.build.num_classes = FB_FMNIST_CLASSES;
  c.build.input_size = 64;
  c.build.width = 0.5;
  c.epochs = 20;
  c.batch = 64;
  c.optim = fb_optim_sgd_default();
  c.optim.lr = 0.2f;
  c.optim.weight_decay = 5e-5f;
  c.warmup_epochs = 1.0;
  c.label_smoothing = 0.1f;
  c.aug = fb_aug_default(64);
  c.ema_decay = 0.999f;
  c.seed = 1;
  c.max_loss_ratio = FB_LOSS_GUARD_DEFAULT;
  return c;
}

static void format_duration(double s, char *buf, size_t n) {
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Counts how many of the top-k logits of row r contain the label. */
static void topk_hits(const float *logits, int classes, int label, int *hit1, int *hit5) {
  float target = logits[label];
  int higher = 0;
  for (int c = 0; c < classes; c++)
    if (logits[c] > target || (logits[c] == target && c < label)) higher++;
  *hit1 += higher < 1;
  *hit5 += higher < 5;
}

int fb_eval_cls(fb_net *net, const fb_dataset_u8 *ds, const fb_aug_cfg *aug, int limit,
                double *top1, double *top5, fb_status *st) {
  int n = (limit > 0 && limit < ds->n) ? limit : ds->n;
  int batch = net->g.batch;
  int classes = net->opts.num_classes;
  int *idx = fb_xmalloc((size_t)batch * sizeof *idx);
  int hit1 = 0, hit5 = 0;
  for (int start = 0; start < n; start += batch) {
    int m = n - start < batch ? n - start : batch;
    /* a short last batch is padded with repeats that are not counted */
    for (int i = 0; i < batch; i++) idx[i] = start + (i < m ? i : 0);
    if (fb_aug_batch(aug, ds, idx, batch, 0, NULL, fb_net_input(net), fb_net_labels(net), st)) {
      free(idx);
      return -1;
    }
    fb_net_forward(net, 0);
    const float *logits = fb_net_logits(net);
    for (int i = 0; i < m; i++)
      topk_hits(logits + (size_t)i * classes, classes, ds->labels[start + i], &hit1, &hit5);
  }
  free(idx);
  *top1 = (double)hit1 / n;
  *top5 = (double)hit5 / n;
  return 0;
}

typedef struct train_state {
  const fb_train_cfg *cfg;
  fb_net *net;
  fb_dataset_u8 train, test;
  fb_ema ema;
  fb_schedule sched;
  long steps_per_epoch;
  long step; /* updates done so far */
  int epoch; /* epochs done so far */
  FILE *log;
  int lock;  /* the run directory's lock (fb_dir_lock) */
  char *config; /* the run's options (checkpoint "config") */
  fb_loss_guard guard; /* divergence */
  int rank, ranks;     /* data-parallel: this process and how many share each batch */
  int per_pass;        /* items per forward pass: batch / (ranks x micro-batches) */
  /* the step being filled: its global batch's items and augmentation draws */
  const int *batch_idx;
  fb_aug_draw *draws;
} train_state;

/* Micro-batch k of this rank: items (rank * micro + k) * per_pass onwards of
 * the global batch, with the draws made for the whole of it. */
static int fill_micro(void *ctx, int k, fb_status *st) {
  train_state *s = ctx;
  const int micro = s->cfg->micro > 1 ? s->cfg->micro : 1;
  const int first = (s->rank * micro + k) * s->per_pass;
  return fb_aug_batch_drawn(&s->cfg->aug, &s->train, s->batch_idx + first, s->per_pass,
                            s->draws + first, fb_net_input(s->net), fb_net_labels(s->net), st);
}

static int open_data(train_state *s, fb_status *st) {
  const fb_train_cfg *c = s->cfg;
  if (fb_fmnist_load(c->data_dir, 1, &s->train, st)) return -1;
  if (fb_fmnist_load(c->data_dir, 0, &s->test, st)) return -1;
  if (c->train_limit > 0 && c->train_limit < s->train.n) s->train.n = c->train_limit;
  if (s->train.n < c->batch)
    return fb_fail(st, "%d training images are fewer than one batch of %d", s->train.n, c->batch);
  return 0;
}

static void progress_line(const train_state *s, fb_progress *pg, double now, long step_in_epoch,
                          double loss, double lr, double img_per_sec, double eta) {
  char eta_s[32], line[256];
  format_duration(eta, eta_s, sizeof eta_s);
  snprintf(line, sizeof line, "epoch %d/%d  step %ld/%ld  loss %.4f  lr %.4f  %.0f img/s  ETA %s",
           s->epoch + 1, s->cfg->epochs, step_in_epoch, s->steps_per_epoch, loss, lr, img_per_sec,
           eta_s);
  fb_progress_show(pg, now, (double)s->step / ((double)s->steps_per_epoch * s->cfg->epochs), line);
}

/* One epoch of SGD; returns the mean training loss or NAN after an error. */
static double train_epoch(train_state *s, double t_run_start, long steps_at_start,
                          fb_status *st) {
  const fb_train_cfg *c = s->cfg;
  int n = s->train.n;
  int *perm = fb_xmalloc((size_t)n * sizeof *perm);
  fb_epoch_perm(perm, n, c->seed, s->epoch);
  fb_rng rng;
  fb_rng_seed(&rng, c->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)s->epoch + 1);
  const fb_stepper step = {.net = s->net, .optim = &c->optim, .sched = &s->sched,
                           .ema = c->ema_decay > 0 ? &s->ema : NULL, .out_dir = c->out_dir,
                           .n_guards = 1, .guard = &s->guard,
                           .reduce = s->ranks > 1 ? fb_dist_grad_mean : NULL,
                           .reduce_ctx = c->dist, .micro = c->micro,
                           .fill = fill_micro, .fill_ctx = s};
  s->draws = fb_xmalloc((size_t)c->batch * sizeof *s->draws);
  double loss_sum = 0;
  fb_progress pg;
  fb_progress_init(&pg, s->cfg->log);
  pg.last = fb_now_sec();
  for (long i = 0; i < s->steps_per_epoch; i++) {
    /* the whole global batch's draws, in order: the same on every rank */
    for (int j = 0; j < c->batch; j++) s->draws[j] = fb_aug_draw_one(&c->aug, 1, &rng);
    s->batch_idx = perm + i * c->batch;
    char where[64];
    snprintf(where, sizeof where, "epoch %d step %ld", s->epoch + 1, i + 1);
    fb_step_result r;
    if (fb_train_step(&step, s->step, where, &r, st)) goto fail;
    const float loss = r.total, lr = r.lr;
    s->step++;
    loss_sum += loss;
    double t = fb_now_sec();
    if (!c->quiet && fb_progress_due(&pg, t, i + 1 == s->steps_per_epoch)) {
      double done = (double)(s->step - steps_at_start);
      double rate = done / (t - t_run_start);
      double left = (double)s->steps_per_epoch * c->epochs - s->step;
      progress_line(s, &pg, t, i + 1, loss_sum / (i + 1), lr, rate * c->batch, left / rate);
    }
  }
  fb_progress_end(&pg);
  free(perm);
  free(s->draws);
  s->draws = NULL;
  return loss_sum / s->steps_per_epoch;
fail:
  fb_progress_end(&pg);
  free(perm);
  free(s->draws);
  s->draws = NULL;
  return NAN;
}

static int evaluate(train_state *s, fb_train_result *res, fb_status *st) {
  const fb_train_cfg *c = s->cfg;
  double t1, t5;
  if (fb_eval_cls(s->net, &s->test, &c->aug, c->test_limit, &t1, &t5, st)) return -1;
  res->top1_raw = t1;
  res->top1 = t1;
  res->top5 = t5;
  if (c->ema_decay > 0) {
    fb_ema_swap(&s->ema, &s->net->g.params);
    int rc = fb_eval_cls(s->net, &s->test, &c->aug, c->test_limit, &res->top1, &res->top5, st);
    fb_ema_swap(&s->ema, &s->net->g.params);
    if (rc) return -1;
  }
  if (res->top1 > res->best_top1) res->best_top1 = res->top1;
  return 0;
}

/* The options the result depends on (compared on --resume). */
static char *train_config(const train_state *s) {
  const fb_train_cfg *c = s->cfg;
  cJSON *o = cJSON_CreateObject();
  fb_config_put_recipe(o, s->net, &c->optim, c->data_dir, c->batch, c->seed, c->warmup_epochs,
                       c->final_lr_frac, c->label_smoothing, c->ema_decay);
  fb_config_put(o, "augmentation", "content %d crop %d flip %d", c->aug.content, c->aug.crop_pad,
                c->aug.hflip);
  fb_config_put(o, "--train-limit/--test-limit", "%d %d", c->train_limit, c->test_limit);
  return fb_config_finish(o);
}

/* The class names saved with the weights (src/data/labels.h). */
static char *fmnist_labels_json(void) {
  char *names[FB_FMNIST_CLASSES];
  for (int k = 0; k < FB_FMNIST_CLASSES; k++) names[k] = (char *)fb_fmnist_class_name(k);
  fb_mt_dataset d = {.num_classes = FB_FMNIST_CLASSES, .class_names = names};
  return fb_labels_to_json(&d, FB_TASK_CLS);
}

static int setup(train_state *s, const fb_train_cfg *c, fb_status *st) {
  memset(s, 0, sizeof *s);
  s->cfg = c;
  s->lock = -1;
  if (c->epochs < 1 || c->batch < 1) return fb_fail(st, "epochs and batch must be >= 1");
  s->rank = c->dist ? c->dist->rank : 0;
  s->ranks = c->dist ? c->dist->size : 1;
  if (fb_split_batch(c->batch, s->ranks, c->micro, &s->per_pass, st)) return -1;
  if (fb_optim_check(&c->optim, st) || fb_aug_check(&c->aug, st)) return -1;
  if (c->aug.size != c->build.input_size)
    return fb_fail(st, "augmentation size %d differs from input size %d", c->aug.size,
                   c->build.input_size);
  fb_arch *arch = fb_arch_load(c->arch_path, st);
  if (!arch) return -1;
  s->net = fb_net_build(arch, &c->build, c->seed, st);
  fb_arch_free(arch);
  if (!s->net) return -1;
  s->net->labels_json = fmnist_labels_json();
  s->net->opts.input_content = c->aug.content; /* saved: predict frames images the same way */
  s->net->g.nodes[s->net->loss_node].args.attr.label_smoothing = c->label_smoothing;
  if (fb_net_plan(s->net, s->per_pass, c->seed, st)) return -1;
  if (open_data(s, st)) return -1;
  s->steps_per_epoch = s->train.n / c->batch;
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
  s->config = train_config(s);
  if (fb_dist_same(c->dist, "configuration (options, data, arch)", s->config, st)) return -1;
  fb_loss_guard_init(&s->guard, c->max_loss_ratio);
  if (c->resume &&
      fb_checkpoint_load(c->out_dir, s->net, c->ema_decay > 0 ? &s->ema : NULL, &s->epoch,
                         &s->step, c->resume == 2 ? NULL : s->config, c->log, st))
    return -1;
  if (s->rank > 0) return 0;
  char path[1200];
  if (fb_path_in(path, sizeof path, c->out_dir, "log.jsonl", st)) return -1;
  /* a kill between an epoch's log line and its checkpoint: that epoch runs again */
  if (c->resume && fb_jsonl_truncate(path, "epoch", s->epoch, st)) return -1;
  s->log = fopen(path, c->resume ? "a" : "w");
  if (!s->log) return fb_fail_io(st, "%s: cannot open for writing", path);
  return 0;
}

static void teardown(train_state *s) {
  if (s->log) fclose(s->log);
  free(s->config);
  fb_dir_unlock(s->lock);
  if (s->cfg && s->cfg->ema_decay > 0) fb_ema_free(&s->ema);
  fb_net_free(s->net);
  fb_dataset_u8_free(&s->train);
  fb_dataset_u8_free(&s->test);
}

int fb_train_run(const fb_train_cfg *c, fb_train_result *res, fb_status *st) {
  train_state s;
  memset(res, 0, sizeof *res);
  int rc = setup(&s, c, st);
  if (rc == 0 && !c->quiet) {
    fb_count cnt = fb_net_count(s.net);
    fb_log(c->log, FB_LOG_INFO, "fbnet train: %s width %.2f input %d: %.2f M MACs, %.3f M params; %d train / %d "
            "test images, batch %d, %ld steps/epoch, %d threads",
            s.net->name, c->build.width, c->build.input_size, cnt.macs / 1e6,
            cnt.params_all / 1e6, s.train.n, s.test.n, c->batch, s.steps_per_epoch,
            omp_get_max_threads());
    if (s.epoch > 0) fb_log(c->log, FB_LOG_INFO, "resuming after epoch %d (step %ld)", s.epoch, s.step);
  }
  double t0 = fb_now_sec();
  long steps0 = s.step;
  if (rc == 0 && s.epoch >= c->epochs && s.rank == 0) { /* --resume of a finished run */
    if (!c->quiet)
      fb_log(c->log, FB_LOG_INFO, "the run in %s already finished its %d epochs: evaluating its weights",
              c->out_dir, c->epochs);
    rc = evaluate(&s, res, st);
  }
  while (rc == 0 && s.epoch < c->epochs) {
    double te = fb_now_sec();
    double loss = train_epoch(&s, t0, steps0, st);
    if (isnan(loss) || fb_sync_replicas(c->dist, &s.net->g.params,
                                          c->ema_decay > 0 ? &s.ema : NULL, st)) {
      rc = -1;
      break;
    }
    s.epoch++;
    res->final_loss = loss;
    if (s.rank > 0) continue; /* rank 0 evaluates, logs and saves */
    if (evaluate(&s, res, st)) {
      rc = -1;
      break;
    }
    double secs = fb_now_sec() - te;
    fprintf(s.log,
            "{\"epoch\": %d, \"step\": %ld, \"train_loss\": %.5f, \"top1\": %.5f, \"top5\": "
            "%.5f, \"top1_raw\": %.5f, \"seconds\": %.1f}\n",
            s.epoch, s.step, loss, res->top1, res->top5, res->top1_raw, secs);
    fflush(s.log);
    if (!c->quiet)
      fb_log(c->log, FB_LOG_INFO, "epoch %d/%d done in %.0fs: train loss %.4f  test top-1 %.2f%%%s  top-5 %.2f%%",
              s.epoch, c->epochs, secs, loss, 100 * res->top1, c->ema_decay > 0 ? " (EMA)" : "",
              100 * res->top5);
    rc = fb_run_save(c->out_dir, s.net, c->ema_decay > 0 ? &s.ema : NULL, s.epoch, s.step,
                     s.config, st);
  }
  res->seconds = fb_now_sec() - t0;
  if (res->seconds > 0)
    res->images_per_sec = (double)(s.step - steps0) * c->batch / res->seconds; /* all ranks */
  teardown(&s);
  return rc;
}
