/* Derived architectures, the search summary and BN re-calibration
 * (search/derive.h). */
#include "search/derive.h"
#include "search/latency.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/loader.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "tasks/task.h"
#include "train/mt_trainer.h"

static char *derived_provenance(const fb_net *net, const uint8_t *mask, const uint8_t *kept,
                                unsigned task, const char *supernet_path, const double *probs,
                                long step) {
  const int B = net->mp->n_bits;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "supernet", supernet_path ? supernet_path : "");
  cJSON_AddStringToObject(o, "task", fb_task_name(task));
  char *bits = fb_xmalloc((size_t)B + 1);
  fb_mask_to_string(mask, B, bits);
  cJSON_AddStringToObject(o, "bits", bits);
  free(bits);
  /* the supernet's elements this network keeps (what a latency table sums) */
  cJSON *ke = cJSON_AddArrayToObject(o, "kept_elements");
  for (int e = 0; e < net->mp->n_elems; e++)
    if (kept[e]) cJSON_AddItemToArray(ke, cJSON_CreateString(net->mp->elems[e].name));
  if (step >= 0) cJSON_AddNumberToObject(o, "step", (double)step);
  cJSON_AddNumberToObject(o, "search_input_size", net->opts.input_size);
  cJSON_AddNumberToObject(o, "search_width", net->opts.width);
  if (probs) {
    cJSON *p = cJSON_AddArrayToObject(o, "probs");
    for (int b = 0; b < B; b++) {
      char v[16];
      snprintf(v, sizeof v, "%.4f", probs[b]);
      cJSON_AddItemToArray(p, cJSON_CreateRaw(v));
    }
  }
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

char *fb_derive_arch_json(const fb_net *supernet, const uint8_t *mask, unsigned task,
                          const char *supernet_path, const double *probs, long step,
                          int input_size, int *n_kept_out, fb_status *st) {
  const fb_mp_net *m = supernet->mp;
  if (!m) {
    fb_fail(st, "derive: %s is not a multi-path network", supernet->name);
    return NULL;
  }
  uint8_t *kept = fb_xmalloc((size_t)m->n_elems + 1);
  fb_mp d;
  if (fb_mp_derive(supernet, mask, task, kept, &d, st)) {
    free(kept);
    return NULL;
  }
  int n_kept = 0;
  for (int b = 0; b < m->n_bits; b++) n_kept += kept[m->bit_elem[b]];
  if (n_kept_out) *n_kept_out = n_kept;
  char name[64], comment[256];
  snprintf(name, sizeof name, "fbnetv5_%s", fb_task_name(task));
  snprintf(comment, sizeof comment,
           "derived by fbnet from %s for %s: %d of %d searchable bits kept (after dropping "
           "what cannot reach the %s head)",
           supernet_path ? supernet_path : supernet->name, fb_task_name(task), n_kept,
           m->n_bits, fb_task_name(task));
  char *prov = derived_provenance(supernet, mask, kept, task, supernet_path, probs, step);
  char *text = fb_mp_to_json(name, comment, input_size > 0 ? input_size : supernet->opts.input_size,
                             &d, prov);
  free(prov);
  fb_mp_free_desc(&d);
  free(kept);
  return text;
}

int fb_derive_count(const char *arch_json, const fb_build_opts *opts, unsigned task,
                    fb_count *out, fb_status *st) {
  fb_arch *a = fb_arch_parse(arch_json, "<derived>", st);
  if (!a) return -1;
  fb_build_opts o = *opts;
  o.tasks = task;
  fb_net *n = fb_net_build(a, &o, 1, st);
  fb_arch_free(a);
  if (!n) return -1;
  *out = fb_net_count(n);
  fb_net_free(n);
  return 0;
}

fb_net *fb_deploy_net(const fb_net *net, const fb_build_opts *o, fb_status *st) {
  if (!net->arch_text) {
    fb_fail(st, "%s: the network's arch text is unknown", net->name);
    return NULL;
  }
  fb_arch *a = fb_arch_parse(net->arch_text, net->name, st);
  if (!a) return NULL;
  fb_net *d = fb_net_build(a, o, 1, st);
  fb_arch_free(a);
  return d;
}

/* ---- the summary ------------------------------------------------------- */

typedef struct task_result {
  unsigned task;
  int on, kept, decided;
  double entropy;
  fb_count count;        /* the deployed network (full head, deploy input and width) */
  fb_count search_count; /* the same architecture with the search's light head and size */
  char file[64];
  int lat_threads;       /* > 0: a latency table was given */
  double lat_pred_ms, lat_meas_ms, lat_raw_ms, lat_target_ms;
} task_result;

/* With --latency-table: the derived network's latency as the table predicts
 * it and as measured now (the table's thread count, pinned threads). */
static int derived_latency(const fb_net *net, const uint8_t *mask, unsigned task,
                           const char *text, const fb_build_opts *o, const fb_search_cfg *c,
                           task_result *r, fb_status *st) {
  fb_lat_table t;
  if (fb_lat_read(c->latency_table, &t, st)) return -1;
  fb_build_opts b = *o;
  b.tasks = net->tasks;
  fb_net *cost = fb_deploy_net(net, &b, st);
  int rc = -1;
  const fb_lat_entry *e = cost ? fb_lat_compat(&t, c->latency_table, cost, &b, c->latency_threads,
                                               c->latency_force, NULL, 0, st) : NULL;
  const fb_lat_task *lt = fb_lat_entry_task(e, task);
  if (e && lt) {
    r->lat_threads = e->threads;
    r->lat_pred_ms = fb_lat_predict(lt, cost, mask, task);
    r->lat_target_ms = c->latency_target[fb_task_slot(task)];
    rc = fb_lat_measure_vs_table(lt, cost, text, o, task, e->threads, 15, &r->lat_meas_ms,
                                 &r->lat_raw_ms, st);
  } else if (e) {
    rc = 0; /* the table has no such task: nothing to print */
  }
  fb_net_free(cost);
  fb_lat_free(&t);
  return rc;
}

static int derive_one(const fb_net *net, const fb_archdist *d, int t, unsigned task,
                      const fb_search_cfg *c, long step, task_result *r, fb_status *st) {
  const int B = d->D;
  uint8_t *mask = fb_xmalloc((size_t)B);
  double *probs = fb_xmalloc((size_t)B * sizeof *probs);
  fb_archdist_derive(d, t, c->derive_thresh, mask);
  r->task = task;
  r->on = r->decided = 0;
  for (int b = 0; b < B; b++) {
    probs[b] = fb_archdist_prob(d, t, b);
    r->on += mask[b];
    r->decided += probs[b] < 0.2 || probs[b] > 0.8;
  }
  r->entropy = fb_archdist_entropy(d, t);
  int rc = -1;
  const fb_build_opts deploy = fb_search_deploy_opts(c);
  char *text = fb_derive_arch_json(net, mask, task, c->supernet_path, probs, step,
                                   deploy.input_size, &r->kept, st);
  if (!text) goto done;
  snprintf(r->file, sizeof r->file, "%s.json", fb_task_name(task));
  char path[1200];
  if (fb_path_in(path, sizeof path, c->out_dir, r->file, st)) goto done;
  fb_build_opts o = deploy;
  o.num_classes = net->opts.num_classes;
  o.num_cats = net->opts.num_cats;
  o.num_seg_classes = net->opts.num_seg_classes;
  rc = fb_write_text_atomic(path, text, st) || fb_derive_count(text, &o, task, &r->count, st) ||
       fb_derive_count(text, &net->opts, task, &r->search_count, st) ||
       (c->latency_table && derived_latency(net, mask, task, text, &o, c, r, st));
done:
  free(text);
  free(mask);
  free(probs);
  return rc ? -1 : 0;
}

static char *summary_text(const task_result *r, int T, int B, const fb_net *net,
                          const fb_build_opts *deploy, long step) {
  size_t cap = 4096;
  char *s = fb_xmalloc(cap);
  int n = snprintf(s, cap,
                   "search summary: %ld steps, %d searchable bits, searched at %d px, width %.2f; "
                   "deployed at %d px, width %.2f\n"
                   "%-5s %-12s %-12s %-9s %12s %11s %12s  %s\n",
                   step, B, net->opts.input_size, net->opts.width, deploy->input_size,
                   deploy->width, "task", "p>0.5 bits", "kept bits", "decided", "MACs (M)",
                   "params (M)", "search MACs", "arch file");
  for (int t = 0; t < T && n > 0 && (size_t)n < cap; t++)
    n += snprintf(s + n, cap - (size_t)n,
                  "%-5s %5d/%-6d %5d/%-6d %4d/%-4d %12.3f %11.4f %12.3f  %s\n",
                  fb_task_name(r[t].task), r[t].on, B, r[t].kept, B, r[t].decided, B,
                  r[t].count.macs / 1e6, r[t].count.params / 1e6, r[t].search_count.macs / 1e6,
                  r[t].file);
  for (int t = 0; t < T && n > 0 && (size_t)n < cap; t++)
    if (r[t].lat_threads > 0) {
      char target[48] = "";
      if (r[t].lat_target_ms > 0) snprintf(target, sizeof target, "; target %.4g ms", r[t].lat_target_ms);
      n += snprintf(s + n, cap - (size_t)n,
                    "%-5s latency at %d threads, batch 1: predicted %.3f ms (table), measured "
                    "%.3f ms at the table's machine speed (%+.1f%%; %.3f ms as measured now)%s\n",
                    fb_task_name(r[t].task), r[t].lat_threads, r[t].lat_pred_ms, r[t].lat_meas_ms,
                    100 * (r[t].lat_pred_ms / r[t].lat_meas_ms - 1), r[t].lat_raw_ms, target);
    }
  if (n > 0 && (size_t)n < cap)
    snprintf(s + n, cap - (size_t)n,
             "(MACs/params: the deployed network, i.e. the arch file with the task's full head "
             "as fbnet train builds it, at the deploy size: what --flops-target budgets and "
             "'fbnet flops FILE --task T --input %d --width %g' prints; search MACs: the same "
             "architecture with the search's light head at the search size. kept = after "
             "dropping what cannot reach the task's head; decided = bits with p < 0.2 or "
             "p > 0.8: fewer than all means the distribution has not converged yet: more steps "
             "help)\n", deploy->input_size, deploy->width);
  return s;
}

static char *summary_json(const task_result *r, const fb_archdist *d, int T,
                          const fb_net *net, const fb_search_cfg *c, long step) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "supernet", c->supernet_path);
  cJSON_AddNumberToObject(o, "steps", (double)step);
  cJSON_AddNumberToObject(o, "bits", d->D);
  cJSON_AddNumberToObject(o, "input_size", net->opts.input_size);
  cJSON_AddNumberToObject(o, "width", net->opts.width);
  const fb_build_opts deploy = fb_search_deploy_opts(c);
  cJSON_AddNumberToObject(o, "deploy_input_size", deploy.input_size);
  cJSON_AddNumberToObject(o, "deploy_width", deploy.width);
  cJSON_AddNumberToObject(o, "threshold", c->derive_thresh);
  cJSON *tasks = cJSON_AddObjectToObject(o, "tasks");
  for (int t = 0; t < T; t++) {
    cJSON *x = cJSON_AddObjectToObject(tasks, fb_task_name(r[t].task));
    cJSON_AddStringToObject(x, "arch", r[t].file);
    cJSON_AddNumberToObject(x, "bits_on", r[t].on);
    cJSON_AddNumberToObject(x, "bits_kept", r[t].kept);
    cJSON_AddNumberToObject(x, "bits_decided", r[t].decided);
    cJSON_AddNumberToObject(x, "entropy", r[t].entropy);
    cJSON_AddNumberToObject(x, "macs", r[t].count.macs);
    cJSON_AddNumberToObject(x, "params", r[t].count.params);
    cJSON_AddNumberToObject(x, "params_all", r[t].count.params_all);
    cJSON_AddNumberToObject(x, "search_macs", r[t].search_count.macs);
    if (r[t].lat_threads > 0) {
      cJSON *l = cJSON_AddObjectToObject(x, "latency");
      cJSON_AddNumberToObject(l, "threads", r[t].lat_threads);
      cJSON_AddNumberToObject(l, "predicted_ms", r[t].lat_pred_ms);
      cJSON_AddNumberToObject(l, "measured_ms", r[t].lat_meas_ms);
      cJSON_AddNumberToObject(l, "measured_raw_ms", r[t].lat_raw_ms);
      if (r[t].lat_target_ms > 0) cJSON_AddNumberToObject(l, "target_ms", r[t].lat_target_ms);
    }
    cJSON *p = cJSON_AddArrayToObject(x, "probs");
    for (int b = 0; b < d->D; b++) cJSON_AddItemToArray(p, cJSON_CreateNumber(fb_archdist_prob(d, t, b)));
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  size_t n = strlen(text);
  text = fb_xrealloc(text, n + 2);
  text[n] = '\n';
  text[n + 1] = 0;
  return text;
}

int fb_search_write_results(const fb_net *net, const fb_archdist *d, const unsigned *tasks,
                            int T, const fb_search_cfg *c, long step, fb_status *st) {
  task_result r[FB_SEARCH_MAX_TASKS];
  memset(r, 0, sizeof r);
  for (int t = 0; t < T; t++)
    if (derive_one(net, d, t, tasks[t], c, step, &r[t], st)) return -1;
  char path[1200];
  const fb_build_opts deploy = fb_search_deploy_opts(c);
  char *txt = summary_text(r, T, d->D, net, &deploy, step);
  char *js = summary_json(r, d, T, net, c, step);
  int rc = fb_path_in(path, sizeof path, c->out_dir, "summary.txt", st) ||
           fb_write_text_atomic(path, txt, st) ||
           fb_path_in(path, sizeof path, c->out_dir, "summary.json", st) ||
           fb_write_text_atomic(path, js, st) ? -1 : 0;
  if (rc == 0) fb_log(c->log, FB_LOG_RESULT, "%s", txt); /* the result, also with --quiet */
  free(txt);
  free(js);
  return rc;
}

/* ---- BN re-calibration ------------------------------------------------- */

static void reset_bn_stats(fb_net *net) {
  fb_graph *g = &net->g;
  for (int i = 0; i < g->n; i++) {
    fb_node *nd = &g->nodes[i];
    if (!nd->op || !nd->active || nd->op->kind != FB_OPK_NORM) continue;
    const size_t C = g->params.p[nd->par[2]].numel;
    float *mean = fb_param_data(&g->params, nd->par[2]);
    float *var = fb_param_data(&g->params, nd->par[3]);
    for (size_t k = 0; k < C; k++) mean[k] = 0.0f, var[k] = 1.0f;
  }
}

static void set_bn_momentum(fb_net *net, float m) {
  for (int i = 0; i < net->g.n; i++) {
    fb_node *nd = &net->g.nodes[i];
    if (nd->op && nd->op->kind == FB_OPK_NORM) nd->args.attr.momentum = m;
  }
}

int fb_bn_recalibrate(fb_net *net, const fb_mt_dataset *d, int images, int threads,
                      uint64_t seed, fb_status *st) {
  const int batch = net->g.batch;
  fb_loader_cfg lc = fb_loader_cfg_default(net->opts.input_size, 3, batch, 1);
  lc.seed = seed;
  lc.threads = threads > 0 ? threads : 1;
  lc.drop_last = 1;
  fb_loader *l = fb_loader_create(d, &lc, st);
  if (!l) return -1;
  const int n_batches = fb_loader_num_batches(l);
  int want = (images + batch - 1) / batch;
  if (want > n_batches) want = n_batches;
  if (want < 1) {
    fb_loader_free(l);
    return fb_fail(st, "BN re-calibration needs at least one batch of %d images (have %d)",
                   batch, d->n);
  }
  reset_bn_stats(net);
  fb_loader_start_epoch(l, 0);
  int rc = 0;
  for (int k = 0; k < want; k++) {
    const fb_batch *b = fb_loader_next(l);
    if (!b || fb_mt_fill_batch(net, b, 1, st)) {
      rc = b ? -1 : fb_fail(st, "BN re-calibration: the loader ended early");
      break;
    }
    set_bn_momentum(net, 1.0f / (float)(k + 1)); /* cumulative average */
    fb_net_forward(net, 1);
  }
  set_bn_momentum(net, 0.1f);
  fb_loader_free(l);
  return rc;
}
