/* Tabular NAS benchmarks and the search on them (tabular.h). */
#include "search/tabular.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonutil.h"
#include "core/rng.h"
#include "core/status.h"
#include "data/labels.h"
#include "search/archdist.h"

#define MAX_ROWS (1 << 24)

/* ---- reading -------------------------------------------------------------- */

static char **str_array(int n) { return fb_xcalloc((size_t)(n > 0 ? n : 1), sizeof(char *)); }

static void free_strs(char **v, int n) {
  for (int i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

void fb_nas_table_free(fb_nas_table *t) {
  if (!t) return;
  free(t->name);
  free(t->path);
  free(t->K);
  free_strs(t->decision_names, t->D);
  free_strs(t->task_names, t->T);
  free_strs(t->metric_names, t->T);
  free(t->higher_is_better);
  free_strs(t->cost_names, t->C);
  free(t->choices);
  free(t->metric);
  free(t->cost);
  free(t->index);
  memset(t, 0, sizeof *t);
}

static const char *string_item(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int read_decisions(const cJSON *arr, fb_nas_table *t, fb_status *st) {
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1)
    return fb_fail(st, "%s: decisions: expected a non-empty array", t->path);
  t->D = cJSON_GetArraySize(arr);
  if (t->D > FB_ARCHDIST_MAX_DECISIONS)
    return fb_fail(st, "%s: %d decisions, at most %d", t->path, t->D, FB_ARCHDIST_MAX_DECISIONS);
  t->K = fb_xcalloc((size_t)t->D, sizeof *t->K);
  t->decision_names = str_array(t->D);
  double rows = 1;
  for (int j = 0; j < t->D; j++) {
    const cJSON *d = cJSON_GetArrayItem(arr, j), *ch = cJSON_GetObjectItemCaseSensitive(d, "choices");
    const char *name = string_item(d, "name");
    if (!name || !cJSON_IsArray(ch))
      return fb_fail(st, "%s: decisions[%d]: needs a string \"name\" and an array \"choices\"",
                     t->path, j);
    t->decision_names[j] = fb_xstrdup(name);
    t->K[j] = cJSON_GetArraySize(ch);
    if (t->K[j] < 2 || t->K[j] > FB_ARCHDIST_MAX_CHOICES)
      return fb_fail(st, "%s: decisions[%d] (%s): %d choices, expected 2..%d", t->path, j, name,
                     t->K[j], FB_ARCHDIST_MAX_CHOICES);
    rows *= t->K[j];
  }
  if (rows > MAX_ROWS)
    return fb_fail(st, "%s: %.0f combinations of choices, at most %d", t->path, rows, MAX_ROWS);
  t->n = (int)rows;
  return 0;
}

static int read_tasks(const cJSON *arr, fb_nas_table *t, fb_status *st) {
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
      cJSON_GetArraySize(arr) > FB_TABLE_MAX_TASKS)
    return fb_fail(st, "%s: tasks: expected an array of 1..%d tasks", t->path, FB_TABLE_MAX_TASKS);
  t->T = cJSON_GetArraySize(arr);
  t->task_names = str_array(t->T);
  t->metric_names = str_array(t->T);
  t->higher_is_better = fb_xcalloc((size_t)t->T, sizeof *t->higher_is_better);
  for (int k = 0; k < t->T; k++) {
    const cJSON *o = cJSON_GetArrayItem(arr, k);
    const cJSON *hib = cJSON_GetObjectItemCaseSensitive(o, "higher_is_better");
    const char *name = string_item(o, "name"), *metric = string_item(o, "metric");
    if (!name || !cJSON_IsBool(hib))
      return fb_fail(st, "%s: tasks[%d]: needs a string \"name\" and a boolean "
                     "\"higher_is_better\"", t->path, k);
    t->task_names[k] = fb_xstrdup(name);
    t->metric_names[k] = fb_xstrdup(metric ? metric : "metric");
    t->higher_is_better[k] = cJSON_IsTrue(hib);
  }
  return 0;
}

static int read_costs(const cJSON *arr, fb_nas_table *t, fb_status *st) {
  t->cost_names = str_array(FB_TABLE_MAX_COSTS);
  if (!arr) return 0;
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > FB_TABLE_MAX_COSTS)
    return fb_fail(st, "%s: costs: expected an array of at most %d names", t->path,
                   FB_TABLE_MAX_COSTS);
  for (const cJSON *c = arr->child; c; c = c->next) {
    if (!cJSON_IsString(c)) return fb_fail(st, "%s: costs[%d]: expected a name", t->path, t->C);
    t->cost_names[t->C++] = fb_xstrdup(c->valuestring);
  }
  return 0;
}

static int code_of(const fb_nas_table *t, const uint8_t *a) {
  int code = 0;
  for (int j = t->D - 1; j >= 0; j--) code = code * t->K[j] + a[j];
  return code;
}

/* One row: D choices, T metrics, C costs. */
static int read_row(const cJSON *r, int i, fb_nas_table *t, fb_status *st) {
  const int want = t->D + t->T + t->C;
  if (!cJSON_IsArray(r))
    return fb_fail(st, "%s: rows[%d]: expected an array, found %s", t->path, i,
                   fb_json_type_name(r));
  if (cJSON_GetArraySize(r) != want)
    return fb_fail(st, "%s: rows[%d]: expected %d values (%d choices, %d metrics, %d costs), "
                   "got %d", t->path, i, want, t->D, t->T, t->C, cJSON_GetArraySize(r));
  const cJSON *v = r->child;
  uint8_t *a = t->choices + (size_t)i * t->D;
  for (int j = 0; j < t->D; j++, v = v->next) {
    int k;
    if (fb_json_int_in_range(v, 0, t->K[j] - 1, &k))
      return fb_fail(st, "%s: rows[%d][%d]: decision %s needs a choice index in 0..%d", t->path,
                     i, j, t->decision_names[j], t->K[j] - 1);
    a[j] = (uint8_t)k;
  }
  for (int k = 0; k < t->T + t->C; k++, v = v->next) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
      return fb_fail(st, "%s: rows[%d][%d]: the %s of %s must be a finite number, found %s",
                     t->path, i, t->D + k, k < t->T ? "metric" : "cost",
                     k < t->T ? t->task_names[k] : t->cost_names[k - t->T], fb_json_type_name(v));
    if (k < t->T) t->metric[(size_t)i * t->T + k] = v->valuedouble;
    else t->cost[(size_t)i * t->C + k - t->T] = v->valuedouble;
  }
  const int code = code_of(t, a);
  if (t->index[code] >= 0)
    return fb_fail(st, "%s: rows[%d]: the same choices as rows[%d]", t->path, i, t->index[code]);
  t->index[code] = i;
  return 0;
}

static int read_rows(const cJSON *arr, fb_nas_table *t, fb_status *st) {
  if (!cJSON_IsArray(arr)) return fb_fail(st, "%s: rows: expected an array", t->path);
  const int n = cJSON_GetArraySize(arr);
  if (n != t->n)
    return fb_fail(st, "%s: %d rows, but the decisions make %d combinations (a table must list "
                   "every architecture once)", t->path, n, t->n);
  t->choices = fb_xcalloc((size_t)t->n * t->D, 1);
  t->metric = fb_xcalloc((size_t)t->n * t->T, sizeof *t->metric);
  t->cost = fb_xcalloc((size_t)t->n * (t->C > 0 ? t->C : 1), sizeof *t->cost);
  t->index = fb_xmalloc((size_t)t->n * sizeof *t->index);
  for (int i = 0; i < t->n; i++) t->index[i] = -1;
  int i = 0;
  for (const cJSON *r = arr->child; r; r = r->next, i++)
    if (read_row(r, i, t, st)) return -1;
  return 0;
}

int fb_nas_table_load(const char *path, fb_nas_table *t, fb_status *st) {
  memset(t, 0, sizeof *t);
  cJSON *root = fb_json_read_file(path, st);
  if (!root) return -1;
  t->path = fb_xstrdup(path);
  const char *name = string_item(root, "name");
  t->name = fb_xstrdup(name ? name : path);
  int rc = cJSON_IsObject(root) ? 0 : fb_fail(st, "%s: expected a JSON object", path);
  if (rc == 0) rc = read_decisions(cJSON_GetObjectItemCaseSensitive(root, "decisions"), t, st);
  if (rc == 0) rc = read_tasks(cJSON_GetObjectItemCaseSensitive(root, "tasks"), t, st);
  if (rc == 0) rc = read_costs(cJSON_GetObjectItemCaseSensitive(root, "costs"), t, st);
  if (rc == 0) rc = read_rows(cJSON_GetObjectItemCaseSensitive(root, "rows"), t, st);
  cJSON_Delete(root);
  if (rc) fb_nas_table_free(t);
  return rc;
}

int fb_nas_table_row(const fb_nas_table *t, const uint8_t *a) { return t->index[code_of(t, a)]; }

int fb_nas_table_task(const fb_nas_table *t, const char *name) {
  return fb_name_index(t->task_names, t->T, name);
}

int fb_nas_table_cost(const fb_nas_table *t, const char *name) {
  return fb_name_index(t->cost_names, t->C, name);
}

/* ---- scoring -------------------------------------------------------------- */

/* Higher is better, whatever the table's convention. */
static double score(const fb_nas_table *t, int k, int r) {
  const double m = t->metric[(size_t)r * t->T + k];
  return t->higher_is_better[k] ? m : -m;
}

static int feasible(const fb_nas_table *t, int r, const fb_tab_cfg *c) {
  return c->cost < 0 || t->cost[(size_t)r * t->C + c->cost] <= c->cost_target;
}

double fb_nas_percentile(const fb_nas_table *t, int k, int r, const fb_tab_cfg *c, int *feas) {
  if (feas) *feas = r >= 0 && feasible(t, r, c);
  if (r < 0) return 100.0;
  long better = 0, pool = 0;
  const double s = score(t, k, r);
  for (int i = 0; i < t->n; i++) {
    if (!feasible(t, i, c)) continue;
    pool++;
    better += score(t, k, i) > s;
  }
  return pool ? 100.0 * (double)better / (double)pool : 100.0;
}

/* ---- searching ------------------------------------------------------------ */

int fb_tab_preset(const char *name, fb_tab_cfg *c) {
  c->adv_norm = 0, c->replay = 0, c->elite = 0;
  if (strcmp(name, "plain") == 0) c->lr = 0.1, c->adv_norm = 1;
  else if (strcmp(name, "replay") == 0) c->lr = 0.02, c->replay = 1000000;
  else if (strcmp(name, "elite") == 0) c->lr = 0.02, c->replay = 500, c->elite = 0.2;
  else return -1;
  return 0;
}

int fb_tab_search(const fb_nas_table *t, const int *tasks, int n_tasks, const fb_tab_cfg *c,
                  uint64_t seed, int *derived, fb_status *st) {
  fb_archdist d;
  if (fb_archdist_init_choices(&d, n_tasks, t->D, t->K, 0.5, st)) return -1;
  d.lr = c->lr;
  const long W = c->replay < c->queries ? c->replay : c->queries; /* a buffer of all queries */
  if (fb_archdist_set_estimator(&d, c->adv_norm, (int)W, c->elite, st)) {
    fb_archdist_free(&d);
    return -1;
  }
  fb_rng rng;
  fb_rng_seed(&rng, seed);
  uint8_t *a = fb_xmalloc((size_t)t->D);
  double loss[FB_TABLE_MAX_TASKS], pen[FB_TABLE_MAX_TASKS];
  for (long q = 0; q < c->queries; q++) {
    fb_archdist_sample(&d, &rng, a);
    const int r = fb_nas_table_row(t, a);
    for (int i = 0; i < n_tasks; i++) {
      loss[i] = -score(t, tasks[i], r); /* the reward is a loss */
      pen[i] = c->cost < 0 ? 0
                           : fb_flops_penalty(t->cost[(size_t)r * t->C + c->cost], c->cost_target,
                                              c->cost_lambda);
    }
    fb_archdist_step(&d, a, loss, pen, 1, NULL);
  }
  for (int i = 0; i < n_tasks; i++) {
    fb_archdist_derive(&d, i, 0.5, a);
    derived[i] = fb_nas_table_row(t, a);
  }
  free(a);
  fb_archdist_free(&d);
  return 0;
}

int fb_tab_random(const fb_nas_table *t, int k, const fb_tab_cfg *c, uint64_t seed) {
  fb_rng rng;
  fb_rng_seed(&rng, seed);
  int best = -1;
  for (long q = 0; q < c->queries; q++) {
    const int r = (int)fb_rng_below(&rng, (uint32_t)t->n);
    if (feasible(t, r, c) && (best < 0 || score(t, k, r) > score(t, k, best))) best = r;
  }
  return best;
}
