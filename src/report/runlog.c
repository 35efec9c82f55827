/* Reading a search's per-step log, RUN/search.jsonl (report/report.h; the
 * writer is log_step in src/search/search.c). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "report/report.h"

const char *const fb_log_keys[FB_LOG_N_KEYS] = {"loss",     "rho",      "penalty",
                                                "macs",     "baseline", "latency_ms"};

int fb_report_name_ok(const char *s) {
  const size_t n = strlen(s);
  if (n == 0 || n >= 8) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
  return 1;
}

/* The first line fixes the tasks (the keys of "probs", in order) and bits. */
static int log_shape(const cJSON *probs, fb_run_log *log, const char *where, fb_status *st) {
  const cJSON *t;
  cJSON_ArrayForEach(t, probs) {
    if (log->n_tasks == FB_REPORT_MAX_TASKS)
      return fb_fail(st, "%s: \"probs\" has more than %d tasks", where, FB_REPORT_MAX_TASKS);
    if (!fb_report_name_ok(t->string))
      return fb_fail(st, "%s: \"probs\" has a key that is not a task name (cls, det, seg)", where);
    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) < 1)
      return fb_fail(st, "%s: \"probs\".\"%s\" is not an array of probabilities", where,
                     t->string);
    snprintf(log->task[log->n_tasks++], 8, "%s", t->string);
    log->n_bits = cJSON_GetArraySize(t);
  }
  if (log->n_tasks == 0) return fb_fail(st, "%s: \"probs\" names no task", where);
  return 0;
}

static int read_probs(const cJSON *probs, fb_run_log *log, float *dst, const char *where,
                      fb_status *st) {
  for (int t = 0; t < log->n_tasks; t++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(probs, log->task[t]);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != log->n_bits)
      return fb_fail(st, "%s: \"probs\".\"%s\" is not an array of %d probabilities (as on the "
                     "first line)", where, log->task[t], log->n_bits);
    int b = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a) {
      if (!cJSON_IsNumber(v))
        return fb_fail(st, "%s: \"probs\".\"%s\"[%d] is %s, not a number", where, log->task[t],
                       b, fb_json_type_name(v));
      dst[t * log->n_bits + b++] = (float)v->valuedouble;
    }
  }
  return 0;
}

static void grow(fb_run_log *log) {
  if (log->n_steps < log->cap) return;
  log->cap = log->cap ? 2 * log->cap : 256;
  const size_t n = (size_t)log->cap;
  log->step = fb_xrealloc(log->step, n * sizeof *log->step);
  log->lr = fb_xrealloc(log->lr, n * sizeof *log->lr);
  for (int k = 0; k < FB_LOG_N_KEYS; k++)
    for (int t = 0; t < FB_REPORT_MAX_TASKS; t++)
      log->val[k][t] = fb_xrealloc(log->val[k][t], n * sizeof(double));
  log->probs = fb_xrealloc(log->probs, n * FB_REPORT_MAX_TASKS * (size_t)log->n_bits *
                           sizeof *log->probs);
}

static double number_or_nan(const cJSON *v) { return cJSON_IsNumber(v) ? v->valuedouble : NAN; }

/* One parsed line: "step" and "probs" are required, the rest optional. */
static int add_entry(fb_run_log *log, const cJSON *o, const char *where, fb_status *st) {
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
  const cJSON *probs = cJSON_GetObjectItemCaseSensitive(o, "probs");
  if (!cJSON_IsObject(o)) return fb_fail(st, "%s: not a JSON object", where);
  if (!cJSON_IsNumber(step)) return fb_fail(st, "%s: no number \"step\"", where);
  if (!cJSON_IsObject(probs)) return fb_fail(st, "%s: no object \"probs\"", where);
  if (log->n_tasks == 0 && log_shape(probs, log, where, st)) return -1;
  grow(log);
  const int i = log->n_steps;
  if (read_probs(probs, log, log->probs + (size_t)i * log->n_tasks * log->n_bits, where, st))
    return -1;
  log->step[i] = step->valuedouble;
  log->lr[i] = number_or_nan(cJSON_GetObjectItemCaseSensitive(o, "lr"));
  for (int k = 0; k < FB_LOG_N_KEYS; k++) {
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, fb_log_keys[k]);
    for (int t = 0; t < log->n_tasks; t++)
      log->val[k][t][i] = number_or_nan(cJSON_GetObjectItemCaseSensitive(obj, log->task[t]));
  }
  log->n_steps++;
  return 0;
}

/* Line `line` (NUL-terminated); complete: it ended with a newline. */
static int add_line(fb_run_log *log, const char *text, int complete, const char *path, int line,
                    fb_status *st) {
  char where[600];
  snprintf(where, sizeof where, "%s:%d", path, line);
  if (text[strspn(text, " \t\r")] == 0)
    return complete ? fb_fail(st, "%s: empty line", where) : 0;
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithOpts(text, &end, 0);
  if (!o && !complete) { /* the line a running search is writing */
    log->partial_line = 1;
    return 0;
  }
  if (!o) {
    int l, col;
    fb_json_line_col(text, strlen(text), fb_json_error_offset(text, strlen(text), end), &l, &col);
    return fb_fail(st, "%s: invalid JSON near column %d", where, col);
  }
  const int rc = add_entry(log, o, where, st);
  cJSON_Delete(o);
  return rc;
}

int fb_run_log_read(const char *path, fb_run_log *log, fb_status *st) {
  memset(log, 0, sizeof *log);
  size_t len = 0;
  char *text = fb_read_file(path, FB_FILE_ANY_SIZE, &len, st);
  if (!text) return -1;
  int rc = 0, line = 1;
  for (char *s = text; rc == 0 && s < text + len; line++) {
    char *nl = memchr(s, '\n', (size_t)(text + len - s));
    if (nl) *nl = 0;
    rc = add_line(log, s, nl != NULL, path, line, st);
    s = nl ? nl + 1 : text + len;
  }
  free(text);
  if (rc) fb_run_log_free(log);
  return rc;
}

void fb_run_log_free(fb_run_log *log) {
  free(log->step);
  free(log->lr);
  for (int k = 0; k < FB_LOG_N_KEYS; k++)
    for (int t = 0; t < FB_REPORT_MAX_TASKS; t++) free(log->val[k][t]);
  free(log->probs);
  memset(log, 0, sizeof *log);
}
