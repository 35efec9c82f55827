#include "search/archdist.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* ---- numerics ----------------------------------------------------------- */

static const double *row(const fb_archdist *d, int t) { return d->theta + (size_t)t * d->P; }

/* Softmax of decision j of task t into p[0..K_j), and its log-normaliser. */
static double choice_probs(const fb_archdist *d, int t, int j, double *p) {
  const double *x = row(d, t) + d->off[j];
  const int K = d->K[j];
  double mx = x[0];
  for (int k = 1; k < K; k++) mx = x[k] > mx ? x[k] : mx;
  double sum = 0;
  for (int k = 0; k < K; k++) sum += p[k] = exp(x[k] - mx);
  for (int k = 0; k < K; k++) p[k] /= sum;
  return mx + log(sum);
}

/* log p_t(a) for task t. */
static double log_prob_task(const fb_archdist *d, int t, const uint8_t *a) {
  double p[FB_ARCHDIST_MAX_CHOICES], s = 0;
  const double *x = row(d, t);
  for (int j = 0; j < d->D; j++) s += x[d->off[j] + a[j]] - choice_probs(d, t, j, p);
  return s;
}

static double logsumexp(const double *x, int n) {
  double mx = x[0];
  for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int i = 0; i < n; i++) sum += exp(x[i] - mx); /* >= 1: the max term is 1 */
  return mx + log(sum);
}

/* g[t][off_j + k] += scale * ([a_j == k] - p_t(a_j = k)) for every j, k. */
static void add_score(const fb_archdist *d, int t, const uint8_t *a, double scale, double *g) {
  double p[FB_ARCHDIST_MAX_CHOICES];
  double *gt = g + (size_t)t * d->P;
  for (int j = 0; j < d->D; j++) {
    choice_probs(d, t, j, p);
    double *gj = gt + d->off[j];
    for (int k = 0; k < d->K[j]; k++) gj[k] += scale * ((a[j] == k) - p[k]);
  }
}

/* ---- lifetime ----------------------------------------------------------- */

static void set_defaults(fb_archdist *d) {
  d->adam_steps = 0;
  d->lr = FB_ARCHDIST_DEFAULT_LR;
  d->beta1 = FB_ARCHDIST_DEFAULT_BETA1;
  d->beta2 = FB_ARCHDIST_DEFAULT_BETA2;
  d->eps = FB_ARCHDIST_DEFAULT_EPS;
  d->baseline_decay = FB_ARCHDIST_DEFAULT_BASELINE_DECAY;
  d->rho_clip = 0;
  d->adv_norm = 0;
  d->replay = 0;
  d->elite = 0;
}

static int check_shape(int T, int D, const int *K, fb_status *st) {
  if (T < 1 || T > FB_ARCHDIST_MAX_TASKS)
    return fb_fail(st, "archdist.T: %d tasks, expected 1..%d", T, FB_ARCHDIST_MAX_TASKS);
  if (D < 1 || D > FB_ARCHDIST_MAX_DECISIONS)
    return fb_fail(st, "archdist.D: %d decisions, expected 1..%d", D, FB_ARCHDIST_MAX_DECISIONS);
  for (int j = 0; K && j < D; j++)
    if (K[j] < 2 || K[j] > FB_ARCHDIST_MAX_CHOICES)
      return fb_fail(st, "archdist.K[%d]: %d choices, expected 2..%d", j, K[j],
                     FB_ARCHDIST_MAX_CHOICES);
  return 0;
}

/* Allocates a zeroed T x D state with K[j] choices (K NULL: all 2; shape
 * already checked). */
static void alloc_state(fb_archdist *d, int T, int D, const int *K) {
  d->T = T;
  d->D = D;
  d->K = fb_xmalloc((size_t)D * sizeof *d->K);
  d->off = fb_xmalloc(((size_t)D + 1) * sizeof *d->off);
  d->off[0] = 0;
  for (int j = 0; j < D; j++) {
    d->K[j] = K ? K[j] : 2;
    d->off[j + 1] = d->off[j] + d->K[j];
  }
  d->P = d->off[D];
  const size_t n = (size_t)T * (size_t)d->P;
  d->theta = fb_xcalloc(n, sizeof(double));
  d->m = fb_xcalloc(n, sizeof(double));
  d->v = fb_xcalloc(n, sizeof(double));
  d->baseline = fb_xcalloc((size_t)T, sizeof(double));
  d->baseline_set = fb_xcalloc((size_t)T, sizeof(int));
  d->adv_var = fb_xcalloc((size_t)T, sizeof(double));
}

int fb_archdist_init_choices(fb_archdist *d, int T, int D, const int *K, double init_prob,
                             fb_status *st) {
  memset(d, 0, sizeof *d);
  if (check_shape(T, D, K, st)) return -1;
  if (!(init_prob > 0 && init_prob < 1))
    return fb_fail(st, "archdist.init_prob: %g, expected a probability in (0, 1)", init_prob);
  alloc_state(d, T, D, K);
  set_defaults(d);
  const double half = 0.5 * (log(init_prob) - log1p(-init_prob));
  for (int t = 0; t < T; t++)
    for (int j = 0; j < D; j++) {
      if (d->K[j] != 2) continue; /* uniform: zeros */
      double *x = d->theta + (size_t)t * d->P + d->off[j];
      x[0] = -half;
      x[1] = half;
    }
  return 0;
}

int fb_archdist_init(fb_archdist *d, int T, int B, double init_prob, fb_status *st) {
  return fb_archdist_init_choices(d, T, B, NULL, init_prob, st);
}

static void alloc_buffer(fb_archdist *d) {
  const size_t W = (size_t)d->replay;
  d->buf_a = fb_xcalloc(W * (size_t)d->D, 1);
  d->buf_r = fb_xcalloc(W * (size_t)d->T, sizeof(double));
  d->buf_lq = fb_xcalloc(W, sizeof(double));
}

int fb_archdist_set_estimator(fb_archdist *d, int adv_norm, int replay, double elite,
                              fb_status *st) {
  if (replay < 0 || replay > FB_ARCHDIST_MAX_REPLAY)
    return fb_fail(st, "archdist.replay: %d, expected 0..%d samples", replay,
                   FB_ARCHDIST_MAX_REPLAY);
  if (!(elite >= 0 && elite < 1))
    return fb_fail(st, "archdist.elite: %g, expected a fraction in [0, 1)", elite);
  free(d->buf_a);
  free(d->buf_r);
  free(d->buf_lq);
  d->buf_a = NULL, d->buf_r = NULL, d->buf_lq = NULL;
  d->adv_norm = adv_norm ? 1 : 0;
  d->replay = replay;
  d->elite = elite;
  d->buf_n = d->buf_next = 0;
  if (replay > 0) alloc_buffer(d);
  return 0;
}

void fb_archdist_free(fb_archdist *d) {
  if (!d) return;
  free(d->K);
  free(d->off);
  free(d->theta);
  free(d->m);
  free(d->v);
  free(d->baseline);
  free(d->baseline_set);
  free(d->adv_var);
  free(d->buf_a);
  free(d->buf_r);
  free(d->buf_lq);
  memset(d, 0, sizeof *d);
}

/* ---- distribution ------------------------------------------------------- */

double fb_archdist_choice_prob(const fb_archdist *d, int t, int j, int k) {
  double p[FB_ARCHDIST_MAX_CHOICES];
  choice_probs(d, t, j, p);
  return p[k];
}

double fb_archdist_prob(const fb_archdist *d, int t, int b) {
  return fb_archdist_choice_prob(d, t, b, 1);
}

int fb_archdist_sample(const fb_archdist *d, fb_rng *rng, uint8_t *a) {
  int u = (int)fb_rng_below(rng, (uint32_t)d->T);
  if (u >= d->T) u = d->T - 1; /* fb_rng_below is [0, n); belt and braces */
  fb_archdist_sample_task(d, u, rng, a);
  return u;
}

void fb_archdist_sample_task(const fb_archdist *d, int u, fb_rng *rng, uint8_t *a) {
  double p[FB_ARCHDIST_MAX_CHOICES];
  for (int j = 0; j < d->D; j++) {
    choice_probs(d, u, j, p);
    const double x = fb_rng_uniform(rng);
    /* from the last choice down: a bit is kept when x < p(keep) */
    int k = d->K[j] - 1;
    double acc = p[k];
    while (k > 0 && !(x < acc)) acc += p[--k];
    a[j] = (uint8_t)k;
  }
}

void fb_archdist_log_prob(const fb_archdist *d, const uint8_t *a, double *logp) {
  for (int t = 0; t < d->T; t++) logp[t] = log_prob_task(d, t, a);
}

double fb_archdist_log_proposal(const fb_archdist *d, const uint8_t *a) {
  double logp[FB_ARCHDIST_MAX_TASKS] = {0};
  fb_archdist_log_prob(d, a, logp);
  return logsumexp(logp, d->T) - log((double)d->T);
}

void fb_archdist_importance(const fb_archdist *d, const uint8_t *a, double *rho) {
  double logp[FB_ARCHDIST_MAX_TASKS] = {0};
  fb_archdist_log_prob(d, a, logp);
  const double log_norm = logsumexp(logp, d->T);
  for (int t = 0; t < d->T; t++) {
    double r = d->T * exp(logp[t] - log_norm);
    if (d->rho_clip > 0 && r > d->rho_clip) r = d->rho_clip;
    rho[t] = r;
  }
}

/* ---- the plain estimator -------------------------------------------------- */

static double baseline_for(const fb_archdist *d, int t, double reward) {
  return d->baseline_set[t] ? d->baseline[t] : reward;
}

void fb_archdist_grad(const fb_archdist *d, const uint8_t *a, const double *rho,
                      const double *reward, double *g) {
  memset(g, 0, (size_t)d->T * d->P * sizeof *g);
  for (int t = 0; t < d->T; t++)
    add_score(d, t, a, rho[t] * (reward[t] - baseline_for(d, t, reward[t])), g);
}

void fb_archdist_adam(fb_archdist *d, const double *g) {
  d->adam_steps++;
  double k = (double)d->adam_steps;
  double step_size = d->lr / (1.0 - pow(d->beta1, k));
  double sqrt_bc2 = sqrt(1.0 - pow(d->beta2, k));
  size_t n = (size_t)d->T * (size_t)d->P;
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

/* The plain gradient with the advantage divided by its running deviation
 * (adv_norm); updates adv_var. */
static void plain_grad(fb_archdist *d, const uint8_t *a, const double *rho, const double *reward,
                       const int *ok, double *g) {
  memset(g, 0, (size_t)d->T * d->P * sizeof *g);
  for (int t = 0; t < d->T; t++) {
    if (!ok[t] || !d->baseline_set[t]) continue; /* the first reward sets the baseline */
    double adv = reward[t] - d->baseline[t];
    if (d->adv_norm) {
      const double sq = adv * adv;
      d->adv_var[t] = d->adv_var[t] > 0 ? d->baseline_decay * d->adv_var[t] +
                                              (1.0 - d->baseline_decay) * sq
                                        : sq;
      adv = d->adv_var[t] > 0 ? adv / sqrt(d->adv_var[t]) : 0;
    }
    add_score(d, t, a, rho[t] * adv, g);
  }
}

/* ---- the replay estimator ------------------------------------------------- */

static void buffer_push(fb_archdist *d, const uint8_t *a, const double *reward, double lq) {
  const int i = d->buf_next;
  memcpy(d->buf_a + (size_t)i * d->D, a, (size_t)d->D);
  memcpy(d->buf_r + (size_t)i * d->T, reward, (size_t)d->T * sizeof *reward);
  d->buf_lq[i] = lq;
  d->buf_next = (i + 1) % d->replay;
  if (d->buf_n < d->replay) d->buf_n++;
}

typedef struct ranked {
  double r;
  int i;
} ranked;

static int cmp_ranked(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  return a->r < b->r ? -1 : a->r > b->r ? 1 : a->i - b->i; /* ties: older first, stable */
}

/* Advantages A[i] of the buffer's samples for one task (lower reward is
 * better; a positive advantage pushes a sample's probability down), from
 * self-normalised weights w (sum 1; 0 for samples without a finite reward). */
static void replay_advantages(const fb_archdist *d, int t, const double *w, ranked *tmp,
                              double *A) {
  const int n = d->buf_n;
  const double *r = d->buf_r;
  if (d->elite > 0) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (w[i] > 0) tmp[m].r = r[(size_t)i * d->T + t], tmp[m].i = i, m++;
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_ranked);
    double cum = 0, in_elite = 0;
    for (int i = 0; i < n; i++) A[i] = 0;
    for (int q = 0; q < m; q++) {
      if (q > 0 && cum + w[tmp[q].i] > d->elite + 1e-12) break;
      cum += w[tmp[q].i];
      A[tmp[q].i] = 1; /* elite indicator for now */
    }
    for (int i = 0; i < n; i++) in_elite += w[i] * A[i];
    for (int i = 0; i < n; i++) A[i] = in_elite - A[i]; /* -(u_i - E_w[u]) */
    return;
  }
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++)
    if (w[i] > 0) mean += w[i] * r[(size_t)i * d->T + t];
  for (int i = 0; i < n; i++) {
    const double e = w[i] > 0 ? r[(size_t)i * d->T + t] - mean : 0;
    var += w[i] * e * e;
  }
  const double sd = sqrt(var);
  for (int i = 0; i < n; i++)
    A[i] = sd > 0 && w[i] > 0 ? (r[(size_t)i * d->T + t] - mean) / sd : 0;
}

/* g = the replay estimator's gradient for every task over the buffer. */
static void replay_grad(const fb_archdist *d, double *g) {
  const int n = d->buf_n, D = d->D;
  memset(g, 0, (size_t)d->T * d->P * sizeof *g);
  double *lw = fb_xmalloc((size_t)n * sizeof *lw), *A = fb_xmalloc((size_t)n * sizeof *A);
  double *p = fb_xmalloc((size_t)d->P * sizeof *p), *lognorm = fb_xmalloc((size_t)D * sizeof *lognorm);
  ranked *tmp = fb_xmalloc((size_t)n * sizeof *tmp);
  for (int t = 0; t < d->T; t++) {
    const double *x = row(d, t);
    for (int j = 0; j < D; j++) lognorm[j] = choice_probs(d, t, j, p + d->off[j]);
    double mx = -INFINITY;
    for (int i = 0; i < n; i++) {
      const uint8_t *a = d->buf_a + (size_t)i * D;
      double lp = 0;
      for (int j = 0; j < D; j++) lp += x[d->off[j] + a[j]] - lognorm[j];
      lw[i] = isfinite(d->buf_r[(size_t)i * d->T + t]) ? lp - d->buf_lq[i] : -INFINITY;
      mx = lw[i] > mx ? lw[i] : mx;
    }
    if (!isfinite(mx)) continue; /* no usable sample for this task */
    double sum = 0;
    for (int i = 0; i < n; i++) sum += lw[i] = exp(lw[i] - mx);
    for (int i = 0; i < n; i++) lw[i] /= sum; /* self-normalised weights */
    replay_advantages(d, t, lw, tmp, A);
    double *gt = g + (size_t)t * d->P, total = 0;
    for (int i = 0; i < n; i++) {
      const double s = lw[i] * A[i];
      const uint8_t *a = d->buf_a + (size_t)i * D;
      for (int j = 0; j < D; j++) gt[d->off[j] + a[j]] += s;
      total += s;
    }
    for (int k = 0; k < d->P; k++) gt[k] -= total * p[k];
  }
  free(lw);
  free(A);
  free(p);
  free(lognorm);
  free(tmp);
}

/* ---- one step ------------------------------------------------------------- */

int fb_archdist_step_many(fb_archdist *d, int n, const uint8_t *a, const double *loss,
                          const double *penalty, int update_theta, double *rho) {
  const int T = d->T;
  const size_t TP = (size_t)T * d->P;
  double *w = fb_xmalloc((size_t)n * T * sizeof *w), *reward = fb_xmalloc((size_t)n * T * sizeof *reward);
  int *ok = fb_xmalloc((size_t)n * T * sizeof *ok), bad = 0;
  for (int i = 0; i < n; i++) { /* every sample's weights at the same theta */
    fb_archdist_importance(d, a + (size_t)i * d->D, w + (size_t)i * T);
    for (int t = 0; t < T; t++) {
      const size_t k = (size_t)i * T + t;
      reward[k] = loss[k] + (penalty ? penalty[k] : 0.0);
      ok[k] = isfinite(reward[k]);
      bad += !ok[k];
    }
  }
  if (rho) memcpy(rho, w, (size_t)n * T * sizeof *w); /* before theta moves */
  if (update_theta) {
    double *g = fb_xcalloc(TP, sizeof *g);
    if (d->replay > 0) {
      for (int i = 0; i < n; i++) {
        double stored[FB_ARCHDIST_MAX_TASKS];
        for (int t = 0; t < T; t++) stored[t] = ok[i * T + t] ? reward[i * T + t] : INFINITY;
        buffer_push(d, a + (size_t)i * d->D, stored, fb_archdist_log_proposal(d, a + (size_t)i * d->D));
      }
      replay_grad(d, g);
    } else { /* the mean of the samples' estimates */
      double *gi = fb_xmalloc(TP * sizeof *gi);
      for (int i = 0; i < n; i++) {
        plain_grad(d, a + (size_t)i * d->D, w + (size_t)i * T, reward + (size_t)i * T, ok + i * T, gi);
        for (size_t k = 0; k < TP; k++) g[k] += gi[k] / n;
      }
      free(gi);
    }
    fb_archdist_adam(d, g);
    free(g);
  }
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++)
      if (ok[i * T + t]) update_one_baseline(d, t, reward[i * T + t]);
  free(w);
  free(reward);
  free(ok);
  return bad;
}

int fb_archdist_step(fb_archdist *d, const uint8_t *a, const double *loss, const double *penalty,
                     int update_theta, double *rho) {
  return fb_archdist_step_many(d, 1, a, loss, penalty, update_theta, rho);
}

/* ---- results ------------------------------------------------------------ */

void fb_archdist_derive(const fb_archdist *d, int t, double thresh, uint8_t *a) {
  double p[FB_ARCHDIST_MAX_CHOICES];
  for (int j = 0; j < d->D; j++) {
    choice_probs(d, t, j, p);
    if (d->K[j] == 2) {
      a[j] = p[1] > thresh ? 1 : 0;
      continue;
    }
    int best = 0;
    for (int k = 1; k < d->K[j]; k++) best = p[k] > p[best] ? k : best;
    a[j] = (uint8_t)best;
  }
}

double fb_flops_penalty(double flops, double target, double lambda) {
  if (!(target > 0)) return 0;
  double over = flops / target - 1.0;
  return over > 0 ? lambda * over : 0;
}

double fb_archdist_entropy(const fb_archdist *d, int t) {
  double p[FB_ARCHDIST_MAX_CHOICES], h = 0;
  const double *x = row(d, t);
  for (int j = 0; j < d->D; j++) {
    const double lz = choice_probs(d, t, j, p);
    for (int k = 0; k < d->K[j]; k++)
      if (p[k] > 0) h -= p[k] * (x[d->off[j] + k] - lz);
  }
  return h;
}

int fb_archdist_num_on(const fb_archdist *d, int t) {
  uint8_t *a = fb_xmalloc((size_t)d->D);
  fb_archdist_derive(d, t, 0.5, a);
  int n = 0;
  for (int j = 0; j < d->D; j++) n += a[j] != 0;
  free(a);
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
  const size_t n = (size_t)d->T * (size_t)d->P;
  buf_printf(&b, "{\"version\":2,\n\"T\":%d,\n\"D\":%d,\n\"K\":[", d->T, d->D);
  for (int j = 0; j < d->D; j++) buf_printf(&b, "%s%d", j ? "," : "", d->K[j]);
  buf_printf(&b, "]");
  put_scalar(&b, "lr", d->lr);
  put_scalar(&b, "beta1", d->beta1);
  put_scalar(&b, "beta2", d->beta2);
  put_scalar(&b, "eps", d->eps);
  put_scalar(&b, "baseline_decay", d->baseline_decay);
  put_scalar(&b, "rho_clip", d->rho_clip);
  buf_printf(&b, ",\n\"adam_steps\":%ld,\n\"adv_norm\":%d,\n\"replay\":%d", d->adam_steps,
             d->adv_norm, d->replay);
  put_scalar(&b, "elite", d->elite);
  put_array(&b, "theta", d->theta, n);
  put_array(&b, "m", d->m, n);
  put_array(&b, "v", d->v, n);
  put_array(&b, "baseline", d->baseline, (size_t)d->T);
  buf_printf(&b, ",\n\"baseline_set\":[");
  for (int t = 0; t < d->T; t++) buf_printf(&b, "%s%d", t ? "," : "", d->baseline_set[t] ? 1 : 0);
  buf_printf(&b, "]");
  put_array(&b, "adv_var", d->adv_var, (size_t)d->T);
  buf_printf(&b, ",\n\"buf_n\":%d,\n\"buf_next\":%d,\n\"buf_a\":[", d->buf_n, d->buf_next);
  for (size_t i = 0; i < (size_t)d->buf_n * d->D; i++) buf_printf(&b, "%s%d", i ? "," : "", d->buf_a[i]);
  buf_printf(&b, "]");
  put_array(&b, "buf_r", d->buf_r, (size_t)d->buf_n * d->T);
  put_array(&b, "buf_lq", d->buf_lq, (size_t)d->buf_n);
  buf_printf(&b, "}\n");
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

/* Choice indices (integers in 0..K_j-1, decision j = index mod D). */
static int get_choices(const cJSON *obj, const char *key, const fb_archdist *d, uint8_t *a,
                       size_t n, fb_status *st) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
    return fb_fail(st, "archdist.%s: expected an array of %zu choices", key, n);
  size_t i = 0;
  for (const cJSON *it = arr->child; it; it = it->next, i++) {
    const int K = d->K[i % (size_t)d->D];
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        it->valuedouble < 0 || it->valuedouble >= K)
      return fb_fail(st, "archdist.%s[%zu]: expected a choice in 0..%d", key, i, K - 1);
    a[i] = (uint8_t)it->valuedouble;
  }
  return 0;
}

/* Buffered rewards: numbers, or null for a task whose reward was not finite. */
static int get_rewards(const cJSON *obj, double *r, size_t n, fb_status *st) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "buf_r");
  if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
    return fb_fail(st, "archdist.buf_r: expected an array of %zu numbers", n);
  size_t i = 0;
  for (const cJSON *it = arr->child; it; it = it->next, i++) {
    if (cJSON_IsNull(it)) r[i] = INFINITY;
    else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) r[i] = it->valuedouble;
    else return fb_fail(st, "archdist.buf_r[%zu]: expected a number or null", i);
  }
  return 0;
}

static int check_moments(const fb_archdist *d, fb_status *st) {
  for (size_t i = 0; i < (size_t)d->T * (size_t)d->P; i++)
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

/* version 2: the estimator and its state (adv_var, the replay buffer). */
static int read_estimator(fb_archdist *d, const cJSON *obj, fb_status *st) {
  double norm = 0, replay = 0, elite = 0, n = 0, next = 0;
  if (get_integer(obj, "adv_norm", 0, 1, &norm, st) ||
      get_integer(obj, "replay", 0, FB_ARCHDIST_MAX_REPLAY, &replay, st) ||
      get_in_range(obj, "elite", 0, 1, 1, &elite, st) ||
      fb_archdist_set_estimator(d, (int)norm, (int)replay, elite, st) ||
      get_array(obj, "adv_var", d->adv_var, (size_t)d->T, st) ||
      get_integer(obj, "buf_n", 0, replay, &n, st) ||
      get_integer(obj, "buf_next", 0, replay > 0 ? replay - 1 : 0, &next, st))
    return -1;
  for (int t = 0; t < d->T; t++)
    if (d->adv_var[t] < 0) return fb_fail(st, "archdist.adv_var[%d]: negative", t);
  d->buf_n = (int)n;
  d->buf_next = (int)next;
  if (d->buf_n == 0) return 0;
  return get_choices(obj, "buf_a", d, d->buf_a, (size_t)d->buf_n * d->D, st) ||
                 get_rewards(obj, d->buf_r, (size_t)d->buf_n * d->T, st) ||
                 get_array(obj, "buf_lq", d->buf_lq, (size_t)d->buf_n, st)
             ? -1
             : 0;
}

/* Shape: version 1 has "B" bits, version 2 "D" decisions and "K" choices
 * (*K malloc'd; NULL for version 1). */
static int read_shape(const cJSON *obj, int *version, int *T, int *D, int **K, fb_status *st) {
  double v = 1, t = 0, n = 0;
  *K = NULL;
  if (cJSON_GetObjectItemCaseSensitive(obj, "version")) {
    if (get_number(obj, "version", &v, st)) return -1;
    if (v != 1 && v != 2) return fb_fail(st, "archdist.version: %g, this build reads 1 and 2", v);
  }
  *version = (int)v;
  if (get_integer(obj, "T", 1, FB_ARCHDIST_MAX_TASKS, &t, st) ||
      get_integer(obj, v == 1 ? "B" : "D", 1, FB_ARCHDIST_MAX_DECISIONS, &n, st))
    return -1;
  *T = (int)t;
  *D = (int)n;
  if (v == 1) return 0;
  double *k = fb_xmalloc((size_t)*D * sizeof *k);
  int rc = get_array(obj, "K", k, (size_t)*D, st);
  *K = fb_xmalloc((size_t)*D * sizeof **K);
  for (int j = 0; rc == 0 && j < *D; j++) {
    if (k[j] != floor(k[j]) || k[j] < 2 || k[j] > FB_ARCHDIST_MAX_CHOICES)
      rc = fb_fail(st, "archdist.K[%d]: %g, expected an integer in 2..%d", j, k[j],
                   FB_ARCHDIST_MAX_CHOICES);
    else (*K)[j] = (int)k[j];
  }
  free(k);
  if (rc) {
    free(*K);
    *K = NULL;
  }
  return rc;
}

/* Version 1 held one logit x per bit with p(keep) = sigmoid(x): the same
 * distribution and Adam trajectory is logits (-x/2, x/2), moments (-m, m)
 * and (v, v), at half the learning rate. */
static int read_v1_logits(fb_archdist *d, const cJSON *obj, fb_status *st) {
  const size_t n = (size_t)d->T * d->D;
  double *x = fb_xmalloc(3 * n * sizeof *x), *m = x + n, *v = m + n;
  int rc = get_array(obj, "theta", x, n, st) || get_array(obj, "m", m, n, st) ||
           get_array(obj, "v", v, n, st);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    d->theta[2 * i] = -0.5 * x[i], d->theta[2 * i + 1] = 0.5 * x[i];
    d->m[2 * i] = -m[i], d->m[2 * i + 1] = m[i];
    d->v[2 * i] = v[i], d->v[2 * i + 1] = v[i];
  }
  d->lr *= 0.5;
  free(x);
  return rc ? -1 : 0;
}

int fb_archdist_from_cjson(fb_archdist *d, const cJSON *obj, fb_status *st) {
  memset(d, 0, sizeof *d);
  if (!cJSON_IsObject(obj)) return fb_fail(st, "archdist: expected a JSON object");
  int version = 0, T = 0, D = 0, *K = NULL;
  if (read_shape(obj, &version, &T, &D, &K, st)) return -1;
  alloc_state(d, T, D, K);
  free(K);
  set_defaults(d);
  const size_t n = (size_t)T * (size_t)d->P;
  int rc = read_hyper(d, obj, st);
  if (rc == 0 && version == 1) rc = read_v1_logits(d, obj, st);
  if (rc == 0 && version == 2)
    rc = get_array(obj, "theta", d->theta, n, st) || get_array(obj, "m", d->m, n, st) ||
         get_array(obj, "v", d->v, n, st);
  if (rc == 0)
    rc = check_moments(d, st) || get_array(obj, "baseline", d->baseline, (size_t)T, st) ||
         read_flags(d, obj, st);
  if (rc == 0 && version == 2) rc = read_estimator(d, obj, st);
  if (rc) {
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
