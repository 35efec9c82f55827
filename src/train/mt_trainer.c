#include "train/mt_trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "nn/net.h"
#include "tasks/cls_metrics.h"
#include "tasks/seg_metrics.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/schedule.h"

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
  char a[1200], b[1200];
  memset(d, 0, sizeof *d);
  int rc;
  if (task == FB_TASK_DET) {
    snprintf(a, sizeof a, "%s/%s.json", dir, split);
    snprintf(b, sizeof b, "%s/%s/images", dir, split);
    rc = fb_coco_load(a, b, 3, d, st);
  } else if (task == FB_TASK_SEG) {
    snprintf(a, sizeof a, "%s/%s", dir, split);
    rc = fb_segset_load(a, 3, d, st);
  } else {
    snprintf(a, sizeof a, "%s/%s", dir, split);
    rc = fb_imagefolder_load(a, 3, d, st);
  }
  if (rc) return -1;
  if (d->n == 0) return fb_fail(st, "%s: no %s images", dir, split);
  truncate_dataset(d, limit);
  return 0;
}

void fb_mt_build_opts_for_data(int task, const fb_mt_dataset *d, fb_build_opts *b) {
  b->tasks = (unsigned)task;
  b->in_channels = 3;
  if (task == FB_TASK_CLS) b->num_classes = d->num_classes;
  if (task == FB_TASK_DET) b->num_cats = d->num_cats;
  if (task == FB_TASK_SEG) b->num_seg_classes = d->num_seg_classes;
}

/* Copies the batch images into the network input and, when training, fills
 * every head's targets (evaluation reads predictions only). Items past b->n
 * (a short eval batch) keep stale values. */
int fb_mt_fill_batch(fb_net *net, const fb_batch *b, int targets, fb_status *st) {
  fb_graph *g = &net->g;
  size_t per = (size_t)b->c * b->size * b->size;
  memcpy(fb_net_input(net), b->images, (size_t)b->n * per * sizeof(float));
  if (!targets) return 0;
  if (net->tasks & FB_TASK_CLS) {
    float *y = fb_net_labels(net);
    for (int i = 0; i < g->batch; i++) y[i] = i < b->n ? (float)b->labels[i] : -1.0f;
  }
  if ((net->tasks & FB_TASK_DET) && fb_fcos_set_targets(g, &net->det, b, st)) return -1;
  if (net->tasks & FB_TASK_SEG) fb_seg_targets(&net->seg, b, g->nodes[net->seg.tgt].out);
  return 0;
}

static fb_loader *make_loader(const fb_mt_dataset *d, const fb_net *net, int batch, int train,
                              const fb_mt_cfg *c, fb_status *st) {
  fb_loader_cfg lc = fb_loader_cfg_default(net->opts.input_size, 3, batch, train);
  lc.seed = c ? c->seed : 1;
  lc.threads = c && c->threads > 0 ? c->threads : 1;
  if (train) {
    lc.hflip = c->hflip;
    lc.scale_min = c->scale_min;
    lc.scale_max = c->scale_max;
    lc.drop_last = 1;
  }
  return fb_loader_create(d, &lc, st);
}

/* ---- evaluation -------------------------------------------------------- */

typedef struct eval_acc {
  int top1, top5;
  fb_det *dets;
  int n_dets, cap_dets;
  fb_confmat cm;
  FILE *csv;
} eval_acc;

static int write_mask_pred(const char *pred_dir, const fb_sample *s, const uint8_t *pred,
                           int S, const fb_batch *b, int i, fb_status *st) {
  /* back to the original image size (eval geometry: no flip, offset 0) */
  int h = s->h, w = s->w;
  uint8_t *m = fb_batch_mask_to_orig(b, i, pred, S, h, w);
  const char *base = strrchr(s->file, '/');
  base = base ? base + 1 : s->file;
  char path[1400], stem[512];
  snprintf(stem, sizeof stem, "%s", base);
  char *dot = strrchr(stem, '.');
  if (dot) *dot = 0;
  snprintf(path, sizeof path, "%s/masks/%s.png", pred_dir, stem);
  int rc = fb_mask_write(path, m, h, w, st);
  free(m);
  return rc;
}

static int eval_batch(fb_net *net, const fb_mt_dataset *d, const fb_batch *b, eval_acc *acc,
                      const char *pred_dir, fb_status *st) {
  fb_graph *g = &net->g;
  if (net->tasks & FB_TASK_CLS) {
    int t1 = 0, t5 = 0, K = net->opts.num_classes;
    const float *logits = fb_net_logits(net);
    if (fb_cls_topk_counts(logits, b->labels, b->n, K, &t1, &t5, st)) return -1;
    acc->top1 += t1;
    acc->top5 += t5;
    for (int i = 0; acc->csv && i < b->n; i++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (logits[(size_t)i * K + k] > logits[(size_t)i * K + best]) best = k;
      fprintf(acc->csv, "%s,%s\n", d->s[b->index[i]].file,
              d->class_names ? d->class_names[best] : "?");
    }
  }
  if (net->tasks & FB_TASK_DET) {
    int *ids = fb_xmalloc((size_t)b->n * sizeof *ids);
    for (int i = 0; i < b->n; i++) ids[i] = d->s[b->index[i]].image_id;
    fb_det *dets = NULL;
    int n = 0;
    int rc = fb_fcos_decode_graph(g, &net->det, b, ids, &dets, &n, st);
    free(ids);
    if (rc) return -1;
    if (acc->n_dets + n > acc->cap_dets) {
      acc->cap_dets = 2 * (acc->n_dets + n);
      acc->dets = fb_xrealloc(acc->dets, (size_t)acc->cap_dets * sizeof *acc->dets);
    }
    if (n) memcpy(acc->dets + acc->n_dets, dets, (size_t)n * sizeof *dets);
    acc->n_dets += n;
    free(dets);
  }
  if ((net->tasks & FB_TASK_SEG) && b->masks) {
    int S = b->size, K = net->seg.cfg.num_classes;
    const float *logits = g->nodes[net->seg.logits].out;
    uint8_t *pred = pred_dir ? fb_xmalloc((size_t)S * S) : NULL;
    for (int i = 0; i < b->n; i++) {
      const uint8_t *gt = b->masks + (size_t)i * S * S;
      if (fb_confmat_add_logits(&acc->cm, gt, logits + (size_t)i * K * S * S, S, S, st)) {
        free(pred);
        return -1;
      }
      if (pred) {
        fb_seg_predict(&net->seg, logits, i, S, pred);
        if (write_mask_pred(pred_dir, &d->s[b->index[i]], pred, S, b, i, st)) {
          free(pred);
          return -1;
        }
      }
    }
    free(pred);
  }
  return 0;
}

/* COCO stats with every box and detection in one category: separates
 * localisation from classification errors. */
static int coco_agnostic(const fb_mt_dataset *d, const fb_det *dets, int n, double *stats,
                         fb_status *st) {
  fb_mt_dataset g = *d;
  g.s = fb_xmalloc((size_t)d->n * sizeof *g.s);
  fb_box *boxes = NULL;
  size_t total = 0;
  for (int i = 0; i < d->n; i++) total += (size_t)d->s[i].n_boxes;
  boxes = fb_xmalloc((total ? total : 1) * sizeof *boxes);
  size_t at = 0;
  for (int i = 0; i < d->n; i++) {
    g.s[i] = d->s[i];
    g.s[i].boxes = boxes + at;
    for (int k = 0; k < d->s[i].n_boxes; k++, at++) {
      boxes[at] = d->s[i].boxes[k];
      boxes[at].cat = 0;
    }
  }
  int one_id = 1;
  g.num_cats = 1;
  g.cat_ids = &one_id;
  fb_det *dd = fb_xmalloc((size_t)(n ? n : 1) * sizeof *dd);
  for (int i = 0; i < n; i++) {
    dd[i] = dets[i];
    dd[i].box.cat = 0;
  }
  int rc = fb_coco_eval_bbox(&g, dd, n, stats, NULL, st);
  free(dd);
  free(boxes);
  free(g.s);
  return rc;
}

static int eval_finish(fb_net *net, const fb_mt_dataset *d, eval_acc *acc, const char *pred_dir,
                       fb_mt_metrics *m, fb_status *st) {
  if (net->tasks & FB_TASK_CLS) {
    m->top1 = (double)acc->top1 / d->n;
    m->top5 = (double)acc->top5 / d->n;
  }
  if (net->tasks & FB_TASK_DET) {
    int annotated = 0;
    for (int i = 0; i < d->n && !annotated; i++) annotated = d->s[i].has_boxes;
    for (int k = 0; k < FB_COCO_NSTATS; k++) m->coco[k] = -1;
    m->det_cats = d->num_cats < 256 ? d->num_cats : 256;
    double *cat_ap = fb_xcalloc((size_t)(d->num_cats > 0 ? d->num_cats : 1), sizeof *cat_ap);
    int rc = annotated ? fb_coco_eval_bbox(d, acc->dets, acc->n_dets, m->coco, cat_ap, st) : 0;
    for (int c = 0; c < m->det_cats; c++) m->cat_ap[c] = annotated ? cat_ap[c] : -1;
    free(cat_ap);
    for (int k = 0; k < FB_COCO_NSTATS; k++) m->coco_agnostic[k] = -1;
    if (rc == 0 && annotated) rc = coco_agnostic(d, acc->dets, acc->n_dets, m->coco_agnostic, st);
    if (rc) return -1;
    if (pred_dir) {
      char path[1200];
      snprintf(path, sizeof path, "%s/detections.json", pred_dir);
      if (fb_coco_write_results(path, acc->dets, acc->n_dets, d->cat_ids, st)) return -1;
    }
  }
  if (net->tasks & FB_TASK_SEG) {
    m->seg_classes = acc->cm.k;
    fb_seg_scores s = fb_confmat_scores(&acc->cm, m->class_iou);
    m->miou = s.miou;
    m->pixel_acc = s.pixel_acc;
  }
  return 0;
}

static int make_pred_dirs(const char *pred_dir, fb_status *st) {
  char path[1200];
  if (mkdir(pred_dir, 0777) != 0 && !fb_is_dir(pred_dir))
    return fb_fail(st, "%s: cannot create directory", pred_dir);
  snprintf(path, sizeof path, "%s/masks", pred_dir);
  if (mkdir(path, 0777) != 0 && !fb_is_dir(path))
    return fb_fail(st, "%s: cannot create directory", path);
  return 0;
}

int fb_mt_evaluate(fb_net *net, const fb_mt_dataset *d, int task, int threads,
                   const char *pred_dir, fb_mt_metrics *m, fb_status *st) {
  memset(m, 0, sizeof *m);
  m->task = task;
  m->images = d->n;
  eval_acc acc;
  memset(&acc, 0, sizeof acc);
  if (pred_dir && make_pred_dirs(pred_dir, st)) return -1;
  if ((net->tasks & FB_TASK_SEG) && fb_confmat_init(&acc.cm, net->seg.cfg.num_classes, st))
    return -1;
  int rc = -1;
  if (pred_dir && (net->tasks & FB_TASK_CLS)) {
    char path[1200];
    snprintf(path, sizeof path, "%s/predictions.csv", pred_dir);
    if (!(acc.csv = fopen(path, "w"))) {
      fb_fail(st, "%s: cannot open for writing", path);
      goto done;
    }
    fprintf(acc.csv, "file,class\n");
  }
  fb_mt_cfg lc = fb_mt_cfg_default(task);
  lc.threads = threads;
  fb_loader *l = make_loader(d, net, net->g.batch, 0, &lc, st);
  if (!l) goto done;
  fb_loader_start_epoch(l, 0);
  const fb_batch *b;
  rc = 0;
  while (rc == 0 && (b = fb_loader_next(l))) {
    if (fb_mt_fill_batch(net, b, 0, st)) {
      rc = -1;
      break;
    }
    fb_net_forward(net, 0);
    rc = eval_batch(net, d, b, &acc, pred_dir, st);
  }
  fb_loader_free(l);
  if (rc == 0) rc = eval_finish(net, d, &acc, pred_dir, m, st);
done:
  if (acc.csv) fclose(acc.csv);
  free(acc.dets);
  if (net->tasks & FB_TASK_SEG) fb_confmat_free(&acc.cm);
  return rc;
}

void fb_mt_metrics_json(const fb_mt_metrics *m, char *buf, size_t n) {
  int k = snprintf(buf, n, "{\"task\": \"%s\", \"images\": %d", fb_task_name(m->task), m->images);
  if (m->task == FB_TASK_CLS)
    k += snprintf(buf + k, n - k, ", \"top1\": %.5f, \"top5\": %.5f", m->top1, m->top5);
  if (m->task == FB_TASK_DET) {
    for (int i = 0; i < FB_COCO_NSTATS && (size_t)k < n; i++)
      k += snprintf(buf + k, n - k, ", \"%s\": %.5f", fb_coco_stat_names[i], m->coco[i]);
    if ((size_t)k < n)
      k += snprintf(buf + k, n - k, ", \"AP_class_agnostic\": %.5f, \"AP50_class_agnostic\": %.5f",
                    m->coco_agnostic[0], m->coco_agnostic[1]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, ", \"category_ap\": [");
    for (int c = 0; c < m->det_cats && (size_t)k < n; c++)
      k += snprintf(buf + k, n - k, "%s%.4f", c ? ", " : "", m->cat_ap[c]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, "]");
  }
  if (m->task == FB_TASK_SEG) {
    k += snprintf(buf + k, n - k, ", \"mIoU\": %.5f, \"pixel_acc\": %.5f, \"class_iou\": [",
                  m->miou, m->pixel_acc);
    for (int c = 0; c < m->seg_classes && (size_t)k < n; c++)
      k += snprintf(buf + k, n - k, "%s%.4f", c ? ", " : "", m->class_iou[c]);
    if ((size_t)k < n) k += snprintf(buf + k, n - k, "]");
  }
  if ((size_t)k < n) snprintf(buf + k, n - k, "}");
}

/* ---- training ------------------------------------------------------------ */

static double headline(const fb_mt_metrics *m) {
  return m->task == FB_TASK_DET ? m->coco[0] : m->task == FB_TASK_SEG ? m->miou : m->top1;
}

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
} mt_state;

static int mt_setup(mt_state *s, const fb_mt_cfg *c, fb_status *st) {
  memset(s, 0, sizeof *s);
  s->cfg = c;
  if (c->epochs < 1 || c->batch < 1) return fb_fail(st, "epochs and batch must be >= 1");
  if (fb_optim_check(&c->optim, st)) return -1;
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
  if (s->net->loss_node >= 0)
    s->net->g.nodes[s->net->loss_node].args.attr.label_smoothing = c->label_smoothing;
  if (fb_net_plan(s->net, c->batch, c->seed, st)) return -1;
  if (!(s->loader = make_loader(&s->train, s->net, c->batch, 1, c, st))) return -1;
  s->steps_per_epoch = fb_loader_num_batches(s->loader);
  if (s->steps_per_epoch < 1)
    return fb_fail(st, "%s: %d training images are fewer than one batch of %d", c->data_dir,
                   s->train.n, c->batch);
  s->sched.base_lr = c->optim.lr;
  s->sched.warmup_steps = (long)(c->warmup_epochs * s->steps_per_epoch);
  s->sched.total_steps = s->steps_per_epoch * c->epochs;
  s->sched.final_frac = c->final_lr_frac;
  if (fb_schedule_check(&s->sched, st)) return -1;
  if (c->ema_decay > 0) fb_ema_init(&s->ema, &s->net->g.params, c->ema_decay);
  if (mkdir(c->out_dir, 0777) != 0 && !fb_is_dir(c->out_dir))
    return fb_fail(st, "%s: cannot create output directory", c->out_dir);
  if (c->resume && fb_checkpoint_load(c->out_dir, s->net, c->ema_decay > 0 ? &s->ema : NULL,
                                      &s->epoch, &s->step, st))
    return -1;
  char path[1200];
  snprintf(path, sizeof path, "%s/log.jsonl", c->out_dir);
  if (!(s->log = fopen(path, c->resume ? "a" : "w")))
    return fb_fail(st, "%s: cannot open for writing", path);
  return 0;
}

static void mt_teardown(mt_state *s) {
  if (s->log) fclose(s->log);
  fb_loader_free(s->loader);
  if (s->cfg && s->cfg->ema_decay > 0) fb_ema_free(&s->ema);
  fb_net_free(s->net);
  fb_mt_dataset_free(&s->train);
  fb_mt_dataset_free(&s->val);
}

static double mt_epoch(mt_state *s, double t0, long step0, fb_status *st) {
  const fb_mt_cfg *c = s->cfg;
  fb_params *p = &s->net->g.params;
  fb_loader_start_epoch(s->loader, s->epoch);
  double loss_sum = 0, last_print = fb_now_sec();
  long i = 0;
  const fb_batch *b;
  while ((b = fb_loader_next(s->loader))) {
    if (fb_mt_fill_batch(s->net, b, 1, st)) return NAN;
    float loss = fb_net_forward(s->net, 1);
    if (!isfinite(loss)) {
      fb_fail(st, "loss is %f at epoch %d step %ld: lower --lr or check the data", loss,
              s->epoch + 1, i + 1);
      return NAN;
    }
    fb_params_zero_grad(p);
    fb_net_backward(s->net);
    /* (distributed training averages gradients across ranks here) */
    if (!fb_params_grad_finite(p)) {
      fb_fail(st, "non-finite gradient at epoch %d step %ld: lower --lr", s->epoch + 1, i + 1);
      return NAN;
    }
    float lr = fb_lr_at(&s->sched, s->step);
    fb_optim_step(p, &c->optim, lr, s->step + 1);
    if (c->ema_decay > 0) fb_ema_update(&s->ema, p, s->step);
    s->step++;
    i++;
    loss_sum += loss;
    double t = fb_now_sec();
    if (!c->quiet && (t - last_print > 10.0 || i == s->steps_per_epoch)) {
      double rate = (double)(s->step - step0) / (t - t0);
      double left = (double)s->steps_per_epoch * c->epochs - s->step;
      fprintf(stderr, "epoch %d/%d  step %ld/%ld  loss %.4f  lr %.5f  %.0f img/s  ETA %.0fs\n",
              s->epoch + 1, c->epochs, i, s->steps_per_epoch, loss_sum / i, lr,
              rate * c->batch, left / rate);
      last_print = t;
    }
  }
  return loss_sum / (i > 0 ? i : 1);
}

static int mt_eval(mt_state *s, fb_mt_metrics *m, fb_status *st) {
  fb_ema *ema = s->cfg->ema_decay > 0 ? &s->ema : NULL;
  if (ema) fb_ema_swap(ema, &s->net->g.params);
  int rc = fb_mt_evaluate(s->net, &s->val, s->cfg->task, s->cfg->threads, NULL, m, st);
  if (ema) fb_ema_swap(ema, &s->net->g.params);
  return rc;
}

int fb_mt_train(const fb_mt_cfg *c, fb_mt_metrics *final, fb_status *st) {
  mt_state s;
  memset(final, 0, sizeof *final);
  int rc = mt_setup(&s, c, st);
  if (rc == 0 && !c->quiet) {
    fb_count cnt = fb_net_count(s.net);
    fprintf(stderr, "fbnet train --task %s: %s width %.2f input %d: %.2f M MACs, %.3f M params; "
            "%d train / %d val images, batch %d, %ld steps/epoch\n", fb_task_name(c->task),
            s.net->name, s.net->opts.width, s.net->opts.input_size, cnt.macs / 1e6,
            cnt.params_all / 1e6, s.train.n, s.val.n, c->batch, s.steps_per_epoch);
  }
  double t0 = fb_now_sec();
  long step0 = s.step;
  while (rc == 0 && s.epoch < c->epochs) {
    double te = fb_now_sec();
    double loss = mt_epoch(&s, t0, step0, st);
    if (isnan(loss) || mt_eval(&s, final, st)) {
      rc = -1;
      break;
    }
    s.epoch++;
    char js[4096];
    fb_mt_metrics_json(final, js, sizeof js);
    fprintf(s.log, "{\"epoch\": %d, \"step\": %ld, \"train_loss\": %.5f, \"seconds\": %.1f, "
            "\"val\": %s}\n", s.epoch, s.step, loss, fb_now_sec() - te, js);
    fflush(s.log);
    if (!c->quiet)
      fprintf(stderr, "epoch %d/%d done in %.0fs: train loss %.4f  val %s %.4f\n", s.epoch,
              c->epochs, fb_now_sec() - te, loss,
              c->task == FB_TASK_DET ? "AP" : c->task == FB_TASK_SEG ? "mIoU" : "top-1",
              headline(final));
    rc = fb_run_save(c->out_dir, s.net, c->ema_decay > 0 ? &s.ema : NULL, s.epoch, s.step, st);
  }
  mt_teardown(&s);
  return rc;
}
