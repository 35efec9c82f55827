/* Reading the output of scripts/search_quality.sh for the report's
 * metric-vs-MACs scatter (report/report.h): QDIR/search_quality.json
 * (bench/quality_report.py) for the retrained metrics and the searched and
 * baseline MACs, QDIR/<task>_random.jsonl (fbnet derive --random) for the
 * random architectures' MACs. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "report/report.h"

/* Python's json.dump writes NaN and Infinity, which are not JSON: null
 * instead, outside strings. Returns a new text. */
static char *nan_to_null(const char *s) {
  const size_t n = strlen(s);
  char *o = fb_xmalloc(2 * n + 1), *d = o;
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    if (in_str) {
      if (s[i] == '\\' && i + 1 < n) *d++ = s[i++];
      else if (s[i] == '"') in_str = 0;
    } else if (s[i] == '"') {
      in_str = 1;
    } else if (strncmp(s + i, "NaN", 3) == 0 || strncmp(s + i, "Infinity", 8) == 0) {
      if (d > o && d[-1] == '-') d--;
      memcpy(d, "null", 4), d += 4;
      i += s[i] == 'N' ? 2 : 7;
      continue;
    }
    *d++ = s[i];
  }
  *d = 0;
  return o;
}

static cJSON *read_python_json(const char *path, fb_status *st) {
  char *text = fb_read_text(path, FB_FILE_ANY_SIZE, st);
  if (!text) return NULL;
  char *clean = nan_to_null(text);
  free(text);
  cJSON *j = cJSON_Parse(clean);
  free(clean);
  if (!j) fb_fail(st, "%s: invalid JSON", path);
  return j;
}

static const cJSON *get(const cJSON *o, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(o, key);
}

static void add_point(fb_quality_set *s, double macs_m, double metric) {
  if (!isfinite(macs_m) || !isfinite(metric) || s->n == FB_QUALITY_MAX_POINTS) return;
  s->macs[s->n] = macs_m, s->metric[s->n] = metric, s->n++;
}

static double num(const cJSON *v) { return cJSON_IsNumber(v) ? v->valuedouble : NAN; }

/* A search's deployed MACs (millions) from "searches".RUN.TASK.macs. */
static double search_macs(const cJSON *root, const char *run, const char *task) {
  return num(get(get(get(get(root, "searches"), run), task), "macs")) / 1e6;
}

/* The width-scaled all-kept network: below, interpolated and above the
 * searched MACs. */
static void baseline_points(fb_quality_set *s, const cJSON *t) {
  const cJSON *in = get(t, "baseline_interpolated");
  const cJSON *m = get(in, "macs");
  if (cJSON_GetArraySize(m) != 3) return;
  add_point(s, num(cJSON_GetArrayItem(m, 0)), num(get(get(t, "baseline_below"), "mean")));
  add_point(s, num(cJSON_GetArrayItem(m, 1)), num(get(in, "mean")));
  add_point(s, num(cJSON_GetArrayItem(m, 2)), num(get(get(t, "baseline_above"), "mean")));
}

/* MACs (millions) of the random architectures, line k = random_k.json. */
static int random_macs(const char *qdir, const char *task, double *macs, int *n, fb_status *st) {
  char name[64];
  snprintf(name, sizeof name, "%s_random.jsonl", task);
  char *path = fb_path_join(qdir, name);
  char **lines = NULL;
  int nl = 0, rc = fb_read_lines(path, &lines, &nl, st);
  *n = 0;
  for (int i = 0; rc == 0 && i < nl; i++) {
    cJSON *j = cJSON_Parse(lines[i]);
    const double m = num(get(j, "macs"));
    if (!isfinite(m)) rc = fb_fail(st, "%s:%d: no number \"macs\"", path, i + 1);
    else if (*n < FB_QUALITY_MAX_POINTS) macs[(*n)++] = m / 1e6;
    cJSON_Delete(j);
  }
  for (int i = 0; i < nl; i++) free(lines[i]);
  free(lines);
  free(path);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* random_per_arch is ordered by name ("random0", "random1", "random10", ...
 * sorted as strings, bench/quality_report.py): back to the index k. */
static int random_points(fb_quality *q, fb_quality_task *k, const cJSON *t, const char *qdir,
                         fb_status *st) {
  double macs[FB_QUALITY_MAX_POINTS];
  int n = 0;
  if (random_macs(qdir, k->name, macs, &n, st)) return -1;
  const cJSON *per = get(t, "random_per_arch");
  if (cJSON_GetArraySize(per) != n) {
    snprintf(q->note, sizeof q->note, "%s: %d random architectures, %d with metrics: not drawn",
             k->name, n, cJSON_GetArraySize(per));
    return 0;
  }
  char names[FB_QUALITY_MAX_POINTS][24];
  const char *order[FB_QUALITY_MAX_POINTS];
  for (int i = 0; i < n; i++) snprintf(names[i], sizeof names[i], "random%d", i), order[i] = names[i];
  qsort(order, (size_t)n, sizeof *order, cmp_str);
  for (int i = 0; i < n; i++)
    add_point(&k->set[FB_Q_RANDOM], macs[atoi(order[i] + 6)], num(cJSON_GetArrayItem(per, i)));
  return 0;
}

static int read_task(fb_quality *q, const cJSON *root, const cJSON *t, const char *qdir,
                     fb_status *st) {
  fb_quality_task *k = &q->task[q->n_tasks++];
  snprintf(k->name, sizeof k->name, "%s", t->string);
  const cJSON *metric = get(t, "metric");
  snprintf(k->metric, sizeof k->metric, "%s", cJSON_IsString(metric) ? metric->valuestring : "metric");
  char single[32];
  snprintf(single, sizeof single, "single_%s", k->name);
  add_point(&k->set[FB_Q_SEARCHED], search_macs(root, "multi", k->name),
            num(get(get(t, "searched"), "mean")));
  add_point(&k->set[FB_Q_SINGLE], search_macs(root, single, k->name),
            num(get(get(t, "single_task"), "mean")));
  baseline_points(&k->set[FB_Q_BASELINE], t);
  return random_points(q, k, t, qdir, st);
}

int fb_quality_read(const char *qdir, fb_quality *q, fb_status *st) {
  memset(q, 0, sizeof *q);
  char *path = fb_path_join(qdir, "search_quality.json");
  cJSON *root = read_python_json(path, st);
  int rc = root ? 0 : -1;
  const cJSON *tasks = get(root, "tasks");
  if (rc == 0 && !cJSON_IsObject(tasks))
    rc = fb_fail(st, "%s: no object \"tasks\" (not written by bench/quality_report.py?)", path);
  const cJSON *t;
  cJSON_ArrayForEach(t, tasks) {
    if (rc || q->n_tasks == FB_REPORT_MAX_TASKS) break;
    if (fb_report_name_ok(t->string)) rc = read_task(q, root, t, qdir, st);
  }
  cJSON_Delete(root);
  free(path);
  return rc;
}
