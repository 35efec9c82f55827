/* Reading a search run directory for the report (report/report.h): the log,
 * summary.json, the derived arch files and the supernet they came from. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "report/report.h"
#include "tasks/task.h"

/* Parses DIR/NAME when it exists: *out NULL (and 0) when it does not. */
static int read_optional_json(const char *dir, const char *name, cJSON **out, fb_status *st) {
  char *path = fb_path_join(dir, name);
  *out = NULL;
  int rc = 0;
  if (access(path, F_OK) == 0) {
    *out = fb_json_read_file(path, st);
    rc = *out ? 0 : -1;
  }
  free(path);
  return rc;
}

static double num(const cJSON *o, const char *key, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* An integral number in [lo, hi] under key, else dflt. */
static int num_int(const cJSON *o, const char *key, int lo, int hi, int dflt) {
  int v;
  return fb_json_int_in_range(cJSON_GetObjectItemCaseSensitive(o, key), lo, hi, &v) ? dflt : v;
}

static unsigned task_bit(const char *name) {
  const fb_task_row *r = fb_task_named(name);
  return r ? r->id : 0;
}

/* n_bits probabilities of a JSON array into a new array; NULL when it is
 * not one. */
static double *probs_of(const cJSON *a, int n_bits) {
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n_bits) return NULL;
  double *p = fb_xmalloc((size_t)n_bits * sizeof *p);
  for (int b = 0; b < n_bits; b++) {
    const cJSON *v = cJSON_GetArrayItem(a, b);
    p[b] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
  }
  return p;
}

static void set_supernet(fb_report_run *r, const cJSON *name) {
  if (cJSON_IsString(name) && !r->supernet_name[0])
    snprintf(r->supernet_name, sizeof r->supernet_name, "%s", name->valuestring);
}

/* summary.json's numbers for each task it lists. */
static void take_summary(fb_report_run *r, const cJSON *s) {
  r->has_summary = 1;
  r->steps = num_int(s, "steps", 0, 2147483647, 0);
  r->threshold = num(s, "threshold", 0.5);
  set_supernet(r, cJSON_GetObjectItemCaseSensitive(s, "supernet"));
  for (int t = 0; t < r->n_tasks; t++) {
    fb_report_task *k = &r->task[t];
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "tasks"),
                                                      k->name);
    if (!cJSON_IsObject(x)) continue;
    k->has_summary = 1;
    k->macs = num(x, "macs", NAN);
    k->params = num(x, "params", NAN);
    k->bits_kept = num_int(x, "bits_kept", 0, r->n_bits, -1);
    k->bits_decided = num_int(x, "bits_decided", 0, r->n_bits, -1);
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(x, "latency");
    k->lat_pred_ms = num(lat, "predicted_ms", NAN);
    k->lat_meas_ms = num(lat, "measured_ms", NAN);
    k->lat_target_ms = num(lat, "target_ms", NAN);
    if (!k->probs) k->probs = probs_of(cJSON_GetObjectItemCaseSensitive(x, "probs"), r->n_bits);
  }
}

/* RUN/<task>.json: its "derived" bits are the task's mask. */
static int take_derived(fb_report_run *r, fb_report_task *k, fb_status *st) {
  char name[16];
  snprintf(name, sizeof name, "%s.json", k->name);
  cJSON *a;
  if (read_optional_json(r->dir, name, &a, st)) return -1;
  if (!a) return 0;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(a, "derived");
  const cJSON *bits = cJSON_GetObjectItemCaseSensitive(d, "bits");
  int rc = 0;
  if (!cJSON_IsString(bits) || (int)strlen(bits->valuestring) != r->n_bits) {
    rc = fb_fail(st, "%s/%s: no \"derived\".\"bits\" of %d bits (not written by fbnet search?)",
                 r->dir, name, r->n_bits);
  } else {
    k->mask = fb_xmalloc((size_t)r->n_bits);
    rc = fb_mask_from_string(bits->valuestring, r->n_bits, k->mask, st);
    snprintf(k->arch_src, sizeof k->arch_src, "%s", name);
    free(k->probs);
    k->probs = probs_of(cJSON_GetObjectItemCaseSensitive(d, "probs"), r->n_bits);
    set_supernet(r, cJSON_GetObjectItemCaseSensitive(d, "supernet"));
    r->input_size = num_int(d, "search_input_size", 32, 4096, r->input_size);
    r->width = num(d, "search_width", r->width);
  }
  cJSON_Delete(a);
  return rc;
}

/* The tasks and bits: the log's, else summary.json's. */
static void task_list(fb_report_run *r, const cJSON *summary) {
  const fb_run_log *l = &r->log;
  r->n_bits = l->n_bits ? l->n_bits : num_int(summary, "bits", 1, 100000, 0);
  r->n_tasks = 0;
  if (l->n_tasks) {
    for (int t = 0; t < l->n_tasks; t++) snprintf(r->task[r->n_tasks++].name, 8, "%s", l->task[t]);
  } else {
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(summary, "tasks"))
      if (r->n_tasks < FB_REPORT_MAX_TASKS && fb_report_name_ok(x->string))
        snprintf(r->task[r->n_tasks++].name, 8, "%s", x->string);
  }
  for (int t = 0; t < r->n_tasks; t++) r->task[t].task = task_bit(r->task[t].name);
}

/* The supernet's arch: the file the run names, else the arch text saved in
 * RUN/supernet.safetensors (a relative name read from another directory);
 * st says why the named one failed. */
static fb_arch *supernet_arch(const fb_report_run *r, fb_status *st) {
  fb_arch *a = fb_arch_load(r->supernet_name, st);
  char *path = fb_path_join(r->dir, "supernet.safetensors");
  fb_st_file f;
  fb_status ignore = {0};
  if (!a && access(path, F_OK) == 0 && fb_safetensors_read(path, &f, &ignore) == 0) {
    const char *text = fb_st_meta(&f, "arch_json");
    if (text) a = fb_arch_parse(text, path, &ignore);
    fb_st_file_free(&f);
  }
  free(path);
  return a;
}

/* The supernet the derived files name, built (not planned) with every
 * task's head at the search's size; a note instead when it cannot be. */
static void build_supernet(fb_report_run *r, const cJSON *summary) {
  if (!r->supernet_name[0]) {
    snprintf(r->supernet_note, sizeof r->supernet_note, "not yet written (no summary.json or "
             "derived arch file names the supernet)");
    return;
  }
  fb_status st = {0};
  fb_arch *a = supernet_arch(r, &st);
  fb_build_opts o = fb_build_opts_default();
  o.input_size = num_int(summary, "input_size", 32, 4096, r->input_size);
  o.width = num(summary, "width", r->width > 0 ? r->width : 1.0);
  o.standard_padding = 1;
  o.num_cats = o.num_seg_classes = 10; /* any: heads are drawn, not built for data */
  for (int t = 0; t < r->n_tasks; t++) o.tasks |= r->task[t].task;
  fb_net *net = a ? fb_net_build(a, &o, 1, &st) : NULL;
  fb_arch_free(a);
  if (net && (!net->mp || net->mp->n_bits != r->n_bits)) {
    snprintf(st.msg, sizeof st.msg, "%s: %d searchable bits at width %g, the run has %d",
             r->supernet_name, net->mp ? net->mp->n_bits : 0, o.width, r->n_bits);
    fb_net_free(net);
    net = NULL;
  }
  r->supernet = net;
  if (!net) snprintf(r->supernet_note, sizeof r->supernet_note, "cannot be drawn: %s", st.msg);
}

/* Per element of the supernet: kept, skipped (bit off) or dropped (cannot
 * reach the task's head), for every task with a mask. */
static void element_states(fb_report_run *r) {
  const fb_mp_net *m = r->supernet->mp;
  for (int t = 0; t < r->n_tasks; t++) {
    fb_report_task *k = &r->task[t];
    if (!k->mask) continue;
    uint8_t *kept = fb_xmalloc((size_t)m->n_elems);
    fb_mp d;
    fb_status st = {0};
    if (fb_mp_derive(r->supernet, k->mask, k->task, kept, &d, &st) == 0) {
      k->state = fb_xmalloc((size_t)m->n_elems);
      for (int e = 0; e < m->n_elems; e++) {
        const int b = m->elems[e].bit;
        k->state[e] = kept[e] ? FB_ELEM_KEPT : b >= 0 && !k->mask[b] ? FB_ELEM_SKIPPED
                                                                      : FB_ELEM_DROPPED;
      }
      fb_mp_free_desc(&d);
    }
    free(kept);
  }
}

/* Tasks without a derived file but in summary.json: thresholded probs. */
static void masks_from_summary(fb_report_run *r) {
  for (int t = 0; t < r->n_tasks; t++) {
    fb_report_task *k = &r->task[t];
    if (k->mask || !k->has_summary || !k->probs) continue;
    k->mask = fb_xmalloc((size_t)r->n_bits);
    for (int b = 0; b < r->n_bits; b++) k->mask[b] = k->probs[b] > r->threshold;
    snprintf(k->arch_src, sizeof k->arch_src, "summary.json (p > %g)", r->threshold);
  }
}

/* Tasks without final probabilities: those of the last log line. */
static void probs_from_log(fb_report_run *r) {
  const fb_run_log *l = &r->log;
  for (int t = 0; t < r->n_tasks && l->n_steps > 0; t++) {
    if (r->task[t].probs) continue;
    const float *p = l->probs + ((size_t)(l->n_steps - 1) * l->n_tasks + t) * l->n_bits;
    r->task[t].probs = fb_xmalloc((size_t)r->n_bits * sizeof(double));
    for (int b = 0; b < r->n_bits; b++) r->task[t].probs[b] = p[b];
  }
}

int fb_report_run_read(const char *dir, fb_report_run *r, fb_status *st) {
  memset(r, 0, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  char *path = fb_path_join(dir, "search.jsonl");
  int rc = fb_run_log_read(path, &r->log, st);
  if (rc && !fb_is_dir(dir)) fb_fail(st, "%s: no such run directory (no %s)", dir, path);
  free(path);
  if (rc) return -1;
  cJSON *summary = NULL;
  if (read_optional_json(dir, "summary.json", &summary, st)) goto fail;
  task_list(r, summary);
  for (int t = 0; t < r->n_tasks; t++)
    if (take_derived(r, &r->task[t], st)) goto fail;
  if (summary) take_summary(r, summary);
  masks_from_summary(r);
  probs_from_log(r);
  build_supernet(r, summary);
  if (r->supernet) element_states(r);
  cJSON_Delete(summary);
  return 0;
fail:
  cJSON_Delete(summary);
  fb_report_run_free(r);
  return -1;
}

void fb_report_run_free(fb_report_run *r) {
  fb_run_log_free(&r->log);
  for (int t = 0; t < FB_REPORT_MAX_TASKS; t++) {
    free(r->task[t].mask);
    free(r->task[t].state);
    free(r->task[t].probs);
  }
  fb_net_free(r->supernet);
  memset(r, 0, sizeof *r);
}
