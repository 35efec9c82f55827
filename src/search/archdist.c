#include "search/archdist.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* ---- numerics ----------------------------------------------------------- */

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* log(sigmoid(x)) without overflow or cancellation. */
static double log_sigmoid(double x) {
  if (x >= 0) return -log1p(exp(-x));
  return x - log1p(exp(x));
}

static size_t cell(const fb_archdist *d, int t, int b) { return (size_t)t * (size_t)d->B + (size_t)b; }

/* ---- lifetime ----------------------------------------------------------- */

static void set_defaults(fb_archdist *d) {
  d->adam_steps = 0;
  d->lr = FB_ARCHDIST_DEFAULT_LR;
  d->beta1 = FB_ARCHDIST_DEFAULT_BETA1;
  d->beta2 = FB_ARCHDIST_DEFAULT_BETA2;
  d->eps = FB_ARCHDIST_DEFAULT_EPS;
  d->baseline_decay = FB_ARCHDIST_DEFAULT_BASELINE_DECAY;
  d->rho_clip = 0;
}

static int check_shape(int T, int B, fb_status *st) {
  if (T < 1 || T > FB_ARCHDIST_MAX_TASKS)
    return fb_fail(st, "archdist.T: %d tasks, expected 1..%d", T, FB_ARCHDIST_MAX_TASKS);
  if (B < 1 || B > FB_ARCHDIST_MAX_BITS)
    return fb_fail(st, "archdist.B: %d bits, expected 1..%d", B, FB_ARCHDIST_MAX_BITS);
  return 0;
}

/* Allocates zeroed arrays for a T x B state (shape already checked). */
static void alloc_state(fb_archdist *d, int T, int B) {
  size_t n = (size_t)T * (size_t)B;
  d->T = T;
  d->B = B;
  d->theta = fb_xcalloc(n, sizeof(double));
  d->m = fb_xcalloc(n, sizeof(double));
  d->v = fb_xcalloc(n, sizeof(double));
  d->baseline = fb_xcalloc((size_t)T, sizeof(double));
  d->baseline_set = fb_xcalloc((size_t)T, sizeof(int));
}

int fb_archdist_init(fb_archdist *d, int T, int B, double init_prob, fb_status *st) {
  memset(d, 0, sizeof *d);
  if (check_shape(T, B, st)) return -1;
  if (!(init_prob > 0 && init_prob < 1))
    return fb_fail(st, "archdist.init_prob: %g, expected a probability in (0, 1)", init_prob);
  alloc_state(d, T, B);
  set_defaults(d);
  double logit = log(init_prob) - log1p(-init_prob);
  for (size_t i = 0; i < (size_t)T * (size_t)B; i++) d->theta[i] = logit;
  return 0;
}

void fb_archdist_free(fb_archdist *d) {
  if (!d) return;
  free(d->theta);
  free(d->m);
  free(d->v);
  free(d->baseline);
  free(d->baseline_set);
  memset(d, 0, sizeof *d);
}

/* ---- distribution ------------------------------------------------------- */

double fb_archdist_prob(const fb_archdist *d, int t, int b) { return sigmoid(d->theta[cell(d, t, b)]); }

int fb_archdist_sample(const fb_archdist *d, fb_rng *rng, uint8_t *a) {
  int u = (int)fb_rng_below(rng, (uint32_t)d->T);
  if (u >= d->T) u = d->T - 1; /* fb_rng_below is [0, n); belt and braces */
  const double *th = d->theta + cell(d, u, 0);
  for (int b = 0; b < d->B; b++) a[b] = fb_rng_uniform(rng) < sigmoid(th[b]) ? 1 : 0;
  return u;
}

void fb_archdist_log_prob(const fb_archdist *d, const uint8_t *a, double *logp) {
  for (int t = 0; t < d->T; t++) {
    const double *th = d->theta + cell(d, t, 0);
    double s = 0;
    for (int b = 0; b < d->B; b++) s += log_sigmoid(a[b] ? th[b] : -th[b]);
    logp[t] = s;
  }
}

void fb_archdist_importance(const fb_archdist *d, const uint8_t *a, double *rho) {
  double logp[FB_ARCHDIST_MAX_TASKS];
  fb_archdist_log_prob(d, a, logp);
  double mx = logp[0];
  for (int t = 1; t < d->T; t++)
    if (logp[t] > mx) mx = logp[t];
  double sum = 0;
  for (int t = 0; t < d->T; t++) sum += exp(logp[t] - mx); /* >= 1: the max term is 1 */
  double log_norm = mx + log(sum);
  for (int t = 0; t < d->T; t++) {
    double r = d->T * exp(logp[t] - log_norm);
    if (d->rho_clip > 0 && r > d->rho_clip) r = d->rho_clip;
    rho[t] = r;
  }
}

/* ---- learning ----------------------------------------------------------- */

static double baseline_for(const fb_archdist *d, int t, double reward) {
  return d->baseline_set[t] ? d->baseline[t] : reward;
}

void fb_archdist_grad(const fb_archdist *d, const uint8_t *a, const double *rho,
                      const double *reward, double *g) {
  for (int t = 0; t < d->T; t++) {
    double scale = rho[t] * (reward[t] - baseline_for(d, t, reward[t]));
    const double *th = d->theta + cell(d, t, 0);
    double *gt = g + cell(d, t, 0);
    for (int b = 0; b < d->B; b++) gt[b] = scale * ((double)a[b] - sigmoid(th[b]));
  }
}

void fb_archdist_adam(fb_archdist *d, const double *g) {
  d->adam_steps++;
  double k = (double)d->adam_steps;
  double step_size = d->lr / (1.0 - pow(d->beta1, k));
  double sqrt_bc2 = sqrt(1.0 - pow(d->beta2, k));
  size_t n = (size_t)d->T * (size_t)d->B;
  for (size_t i = 0; i < n; i++) {
    d->m[i] = d->beta1 * d->m[i] + (1.0 - d->beta1) * g[i];
    d->v[i] = d->beta2 * d->v[i] + (1.0 - d->beta2) * g[i] * g[i];
    d->theta[i] -= step_size * d->m[i] / (sqrt(d->v[i]) / sqrt_bc2 + d->eps);
  }
}

static void update_one_baseline(fb_archdist *d, int t, double reward) {
  if (!d->baseline_set[t]) {
    d->baseline[t] = reward;
    d->baseline_set[t] = 1;
  } else {
    d->baseline[t] = d->baseline_decay * d->baseline[t] + (1.0 - d->baseline_decay) * reward;
  }
}

void fb_archdist_update_baseline(fb_archdist *d, const double *reward) {
  for (int t = 0; t < d->T; t++) update_one_baseline(d, t, reward[t]);
}

int fb_archdist_step(fb_archdist *d, const uint8_t *a, const double *loss, const double *penalty,
                     int update_theta, double *rho) {
  double w[FB_ARCHDIST_MAX_TASKS], reward[FB_ARCHDIST_MAX_TASKS];
  int bad = 0;
  fb_archdist_importance(d, a, w);
  if (rho) memcpy(rho, w, (size_t)d->T * sizeof(double)); /* before theta moves */
  for (int t = 0; t < d->T; t++) {
    reward[t] = loss[t] + (penalty ? penalty[t] : 0.0);
    if (!isfinite(reward[t])) {
      bad++;
      w[t] = 0; /* no gradient from this task */
    }
  }
  if (update_theta) {
    /* A skipped task gets reward = its baseline (or unset): zero signal, no NaN. */
    double safe[FB_ARCHDIST_MAX_TASKS];
    for (int t = 0; t < d->T; t++) safe[t] = isfinite(reward[t]) ? reward[t] : baseline_for(d, t, 0.0);
    double *g = fb_xmalloc((size_t)d->T * (size_t)d->B * sizeof(double));
    fb_archdist_grad(d, a, w, safe, g);
    fb_archdist_adam(d, g);
    free(g);
  }
  for (int t = 0; t < d->T; t++)
    if (isfinite(reward[t])) update_one_baseline(d, t, reward[t]);
  return bad;
}

/* ---- results ------------------------------------------------------------ */

void fb_archdist_derive(const fb_archdist *d, int t, double thresh, uint8_t *a) {
  for (int b = 0; b < d->B; b++) a[b] = fb_archdist_prob(d, t, b) > thresh ? 1 : 0;
}

double fb_flops_penalty(double flops, double target, double lambda) {
  if (!(target > 0)) return 0;
  double over = flops / target - 1.0;
  return over > 0 ? lambda * over : 0;
}

double fb_archdist_entropy(const fb_archdist *d, int t) {
  double h = 0;
  for (int b = 0; b < d->B; b++) {
    double x = d->theta[cell(d, t, b)];
    double s = sigmoid(x);
    h -= s * log_sigmoid(x) + (1.0 - s) * log_sigmoid(-x);
  }
  return h;
}

int fb_archdist_num_on(const fb_archdist *d, int t) {
  int n = 0;
  for (int b = 0; b < d->B; b++) n += fb_archdist_prob(d, t, b) > 0.5;
  return n;
}

/* ---- JSON: writer ------------------------------------------------------- */

typedef struct text_buf {
  char *p;
  size_t len, cap;
} text_buf;

static void buf_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(text_buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0; /* cannot happen with these formats */
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = 2 * b->cap + (size_t)n + 64;
    b->p = fb_xrealloc(b->p, b->cap);
  }
}

/* %.17g round-trips every finite double; JSON has no inf/nan, so null. */
static void put_number(text_buf *b, double x) {
  if (isfinite(x))
    buf_printf(b, "%.17g", x);
  else
    buf_printf(b, "null");
}

static void put_array(text_buf *b, const char *key, const double *x, size_t n) {
  buf_printf(b, ",\n\"%s\":[", key);
  for (size_t i = 0; i < n; i++) {
    if (i) buf_printf(b, ",");
    put_number(b, x[i]);
  }
  buf_printf(b, "]");
}

static void put_scalar(text_buf *b, const char *key, double x) {
  buf_printf(b, ",\n\"%s\":", key);
  put_number(b, x);
}

char *fb_archdist_to_json(const fb_archdist *d) {
  text_buf b = {fb_xmalloc(1024), 0, 1024};
  size_t n = (size_t)d->T * (size_t)d->B;
  buf_printf(&b, "{\"version\":1,\n\"T\":%d,\n\"B\":%d", d->T, d->B);
  put_scalar(&b, "lr", d->lr);
  put_scalar(&b, "beta1", d->beta1);
  put_scalar(&b, "beta2", d->beta2);
  put_scalar(&b, "eps", d->eps);
  put_scalar(&b, "baseline_decay", d->baseline_decay);
  put_scalar(&b, "rho_clip", d->rho_clip);
  buf_printf(&b, ",\n\"adam_steps\":%ld", d->adam_steps);
  put_array(&b, "theta", d->theta, n);
  put_array(&b, "m", d->m, n);
  put_array(&b, "v", d->v, n);
  put_array(&b, "baseline", d->baseline, (size_t)d->T);
  buf_printf(&b, ",\n\"baseline_set\":[");
  for (int t = 0; t < d->T; t++) buf_printf(&b, "%s%d", t ? "," : "", d->baseline_set[t] ? 1 : 0);
  buf_printf(&b, "]}\n");
  return b.p;
}

/* ---- JSON: reader ------------------------------------------------------- */

static int get_number(const cJSON *obj, const char *key, double *out, fb_status *st) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!it) return fb_fail(st, "archdist.%s: missing", key);
  if (!cJSON_IsNumber(it)) return fb_fail(st, "archdist.%s: expected a number", key);
  if (!isfinite(it->valuedouble)) return fb_fail(st, "archdist.%s: not a finite number", key);
  *out = it->valuedouble;
  return 0;
}

/* A whole number in [lo, hi] (exact in a double). */
static int get_integer(const cJSON *obj, const char *key, double lo, double hi, double *out,
                       fb_status *st) {
  if (get_number(obj, key, out, st)) return -1;
  if (*out != floor(*out) || *out < lo || *out > hi)
    return fb_fail(st, "archdist.%s: %.17g, expected an integer in %.0f..%.0f", key, *out, lo, hi);
  return 0;
}

/* A number in [lo, hi], or [lo, hi) when hi_open. */
static int get_in_range(const cJSON *obj, const char *key, double lo, double hi, int hi_open,
                        double *out, fb_status *st) {
  if (get_number(obj, key, out, st)) return -1;
  if (*out < lo || *out > hi || (hi_open && *out == hi))
    return fb_fail(st, "archdist.%s: %.17g, expected a value in [%g, %g%c", key, *out, lo, hi,
                   hi_open ? ')' : ']');
  return 0;
}

static int get_array(const cJSON *obj, const char *key, double *x, size_t n, fb_status *st) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!arr) return fb_fail(st, "archdist.%s: missing", key);
  if (!cJSON_IsArray(arr)) return fb_fail(st, "archdist.%s: expected an array of %zu numbers", key, n);
  size_t got = (size_t)cJSON_GetArraySize(arr);
  if (got != n) return fb_fail(st, "archdist.%s: expected %zu numbers, got %zu", key, n, got);
  size_t i = 0;
  for (const cJSON *it = arr->child; it; it = it->next, i++) {
    if (!cJSON_IsNumber(it)) return fb_fail(st, "archdist.%s[%zu]: expected a number", key, i);
    if (!isfinite(it->valuedouble))
      return fb_fail(st, "archdist.%s[%zu]: not a finite number", key, i);
    x[i] = it->valuedouble;
  }
  return 0;
}

static int check_moments(const fb_archdist *d, fb_status *st) {
  for (size_t i = 0; i < (size_t)d->T * (size_t)d->B; i++)
    if (d->v[i] < 0) return fb_fail(st, "archdist.v[%zu]: %g, a second moment cannot be negative", i, d->v[i]);
  return 0;
}

static int read_flags(fb_archdist *d, const cJSON *obj, fb_status *st) {
  double flags[FB_ARCHDIST_MAX_TASKS];
  if (get_array(obj, "baseline_set", flags, (size_t)d->T, st)) return -1;
  for (int t = 0; t < d->T; t++) {
    if (flags[t] != 0 && flags[t] != 1)
      return fb_fail(st, "archdist.baseline_set[%d]: %g, expected 0 or 1", t, flags[t]);
    d->baseline_set[t] = (int)flags[t];
  }
  return 0;
}

static int read_hyper(fb_archdist *d, const cJSON *obj, fb_status *st) {
  double steps = 0;
  if (get_in_range(obj, "lr", 0, INFINITY, 0, &d->lr, st) ||
      get_in_range(obj, "beta1", 0, 1, 1, &d->beta1, st) ||
      get_in_range(obj, "beta2", 0, 1, 1, &d->beta2, st) ||
      get_in_range(obj, "eps", 0, INFINITY, 0, &d->eps, st) ||
      get_in_range(obj, "baseline_decay", 0, 1, 0, &d->baseline_decay, st) ||
      get_in_range(obj, "rho_clip", 0, INFINITY, 0, &d->rho_clip, st) ||
      get_integer(obj, "adam_steps", 0, 9007199254740992.0, &steps, st))
    return -1;
  if (!(d->eps > 0)) return fb_fail(st, "archdist.eps: %g, expected > 0", d->eps);
  d->adam_steps = (long)steps;
  return 0;
}

static int read_shape(const cJSON *obj, int *T, int *B, fb_status *st) {
  double version = 0, t = 0, b = 0;
  if (cJSON_GetObjectItemCaseSensitive(obj, "version")) {
    if (get_number(obj, "version", &version, st)) return -1;
    if (version != 1) return fb_fail(st, "archdist.version: %g, this build reads version 1", version);
  }
  if (get_integer(obj, "T", 1, FB_ARCHDIST_MAX_TASKS, &t, st) ||
      get_integer(obj, "B", 1, FB_ARCHDIST_MAX_BITS, &b, st))
    return -1;
  *T = (int)t;
  *B = (int)b;
  return 0;
}

int fb_archdist_from_cjson(fb_archdist *d, const cJSON *obj, fb_status *st) {
  memset(d, 0, sizeof *d);
  if (!cJSON_IsObject(obj)) return fb_fail(st, "archdist: expected a JSON object");
  int T = 0, B = 0;
  if (read_shape(obj, &T, &B, st)) return -1;
  alloc_state(d, T, B);
  size_t n = (size_t)T * (size_t)B;
  if (read_hyper(d, obj, st) || get_array(obj, "theta", d->theta, n, st) ||
      get_array(obj, "m", d->m, n, st) || get_array(obj, "v", d->v, n, st) ||
      check_moments(d, st) || get_array(obj, "baseline", d->baseline, (size_t)T, st) ||
      read_flags(d, obj, st)) {
    fb_archdist_free(d);
    return -1;
  }
  return 0;
}

int fb_archdist_from_json(fb_archdist *d, const char *json, fb_status *st) {
  memset(d, 0, sizeof *d);
  if (!json) return fb_fail(st, "archdist: no JSON text");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root) {
    size_t at = end ? (size_t)(end - json) : 0;
    return fb_fail(st, "archdist: invalid JSON at byte %zu near \"%.20s\"", at, end ? end : "");
  }
  int rc = fb_archdist_from_cjson(d, root, st);
  cJSON_Delete(root);
  return rc;
}
