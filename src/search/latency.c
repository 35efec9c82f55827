/* Latency tables (src/search/latency.h): measure derived networks, fit the
 * per-element times, read/write/check the table, predict. */
#include "search/latency.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/rng.h"
#include "core/status.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/derive.h"
#include "search/search.h"
#include "tasks/task.h"

uint64_t fb_lat_text_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; s && *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* ---- the machine ---------------------------------------------------------- */

static void cpu_model(char *cpu, size_t n) {
  snprintf(cpu, n, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char *v = strchr(line, ':');
    if (!v) break;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    snprintf(cpu, n, "%s", v);
    cpu[strcspn(cpu, "\n")] = 0;
    break;
  }
  fclose(f);
}

void fb_lat_machine(char *cpu, size_t ncpu, char *build, size_t nbuild, int *cores) {
  cpu_model(cpu, ncpu);
  *cores = omp_get_num_procs();
  const char *isa =
#if defined(__AVX512F__)
      "x86-64-v4 (AVX-512)";
#elif defined(__AVX2__)
      "x86-64-v3 (AVX2)";
#else
      "baseline ISA";
#endif
  snprintf(build, nbuild, "fbnet %s, gcc %s, %s", FBNET_VERSION, __VERSION__, isa);
}

/* ---- measuring one network ------------------------------------------------ */

/* Pins OpenMP thread i of an n-thread team to the i-th CPU of `allowed` (the
 * process's affinity when the measurement began): a thread that migrates
 * between cores mid-run made unpinned timings bimodal (20 vs 27 ms for the
 * same network on a 2-core VM). n = 0 gives every thread all of `allowed`
 * again. OpenMP keeps its threads, so the pinning holds for the parallel
 * regions that follow. */
static void pin_threads(const cpu_set_t *allowed, int n) {
  const int ncpu = CPU_COUNT(allowed);
  int cpus[CPU_SETSIZE], k = 0;
  for (int c = 0; c < CPU_SETSIZE && k < ncpu; c++)
    if (CPU_ISSET(c, allowed)) cpus[k++] = c;
  if (k == 0) return;
#pragma omp parallel num_threads(n > 0 ? n : omp_get_max_threads())
  {
    cpu_set_t one;
    CPU_ZERO(&one);
    if (n > 0) CPU_SET(cpus[omp_get_thread_num() % k], &one);
    else one = *allowed;
    sched_setaffinity(0, sizeof one, &one);
  }
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile_sorted(const double *v, int n, double q) {
  const double pos = q * (n - 1);
  const int i = (int)pos;
  return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* The deployed network of arch text for task, planned for batch 1 inference,
 * its input filled with fixed random values. */
static fb_net *build_deployed(const char *text, const fb_build_opts *o, unsigned task,
                              fb_status *st) {
  fb_arch *a = fb_arch_parse(text, "<derived>", st);
  if (!a) return NULL;
  fb_build_opts b = *o;
  b.tasks = task;
  fb_net *net = fb_net_build(a, &b, 1, st);
  fb_arch_free(a);
  if (net) net->g.zero_init = 1; /* the kernels' time does not depend on the values */
  if (net && fb_net_plan_inference(net, 1, st)) {
    fb_net_free(net);
    return NULL;
  }
  if (!net) return NULL;
  fb_rng r;
  fb_rng_seed(&r, 11);
  float *x = fb_net_input(net);
  const size_t n = fb_numel(net->g.nodes[net->input_node].args.out);
  for (size_t i = 0; i < n; i++) x[i] = (float)fb_rng_normal(&r);
  return net;
}

static void time_net(fb_net *net, int warmup, int reps, double *median_ms, double *spread) {
  for (int i = 0; i < warmup; i++) fb_net_forward(net, 0);
  double dt[256];
  if (reps > 256) reps = 256;
  for (int i = 0; i < reps; i++) {
    const double t = fb_now_sec();
    fb_net_forward(net, 0);
    dt[i] = 1e3 * (fb_now_sec() - t);
  }
  qsort(dt, (size_t)reps, sizeof dt[0], cmp_double);
  *median_ms = quantile_sorted(dt, reps, 0.5);
  if (spread)
    *spread = *median_ms > 0 ? (quantile_sorted(dt, reps, 0.9) - quantile_sorted(dt, reps, 0.1)) /
                                   *median_ms : 0;
}

/* The network against the reference, in `rounds` rounds of (warm-up, then
 * n runs of the network; warm-up, then n runs of the reference): each
 * round's ratio of medians, and the median of those. Runs of one network
 * stay back to back (its weights as warm as in a loop of inferences); the
 * rounds are short enough that the machine's drift is the same for both. */
enum { LAT_ROUNDS = 3 };

static void time_pair(fb_net *net, fb_net *ref, int warmup, int reps, double *ratio,
                      double *net_ms, double *ref_ms) {
  const int n = (reps + LAT_ROUNDS - 1) / LAT_ROUNDS;
  double r[LAT_ROUNDS], a[LAT_ROUNDS], b[LAT_ROUNDS];
  for (int k = 0; k < LAT_ROUNDS; k++) {
    time_net(net, warmup, n, &a[k], NULL);
    time_net(ref, warmup, n, &b[k], NULL);
    r[k] = a[k] / b[k];
  }
  qsort(r, LAT_ROUNDS, sizeof r[0], cmp_double);
  qsort(a, LAT_ROUNDS, sizeof a[0], cmp_double);
  qsort(b, LAT_ROUNDS, sizeof b[0], cmp_double);
  *ratio = r[LAT_ROUNDS / 2];
  *net_ms = a[LAT_ROUNDS / 2];
  *ref_ms = b[LAT_ROUNDS / 2];
}

int fb_lat_measure_arch(const char *arch_text, const fb_build_opts *o, unsigned task, int threads,
                        int warmup, int reps, double *median_ms, double *spread, fb_status *st) {
  const int saved = omp_get_max_threads();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  omp_set_num_threads(threads);
  pin_threads(&allowed, threads);
  fb_net *net = build_deployed(arch_text, o, task, st);
  if (net) time_net(net, warmup, reps, median_ms, spread);
  fb_net_free(net);
  omp_set_num_threads(saved);
  pin_threads(&allowed, 0);
  return net ? 0 : -1;
}

static char *reference_text(const fb_net *sup, unsigned task, int input_size, fb_status *st);

int fb_lat_measure_vs_table(const fb_lat_task *lt, const fb_net *sup, const char *arch_text,
                            const fb_build_opts *o, unsigned task, int threads, int reps,
                            double *table_ms, double *raw_ms, fb_status *st) {
  const int saved = omp_get_max_threads();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  omp_set_num_threads(threads);
  pin_threads(&allowed, threads);
  char *ref_text = reference_text(sup, task, o->input_size, st);
  fb_net *net = ref_text ? build_deployed(arch_text, o, task, st) : NULL;
  fb_net *ref = net ? build_deployed(ref_text, o, task, st) : NULL;
  if (ref) {
    double ratio, ref_ms;
    time_pair(net, ref, 1, reps, &ratio, raw_ms, &ref_ms);
    *table_ms = ratio * lt->reference_ms;
  }
  fb_net_free(net);
  fb_net_free(ref);
  free(ref_text);
  omp_set_num_threads(saved);
  pin_threads(&allowed, 0);
  return ref ? 0 : -1;
}

/* ---- sampling and measuring many ------------------------------------------ */

/* The supernet at the deployed options with every table task's head (never
 * planned: derivation and predictions only). */
static fb_net *build_supernet(const fb_lat_cfg *c, fb_status *st) {
  fb_arch *a = fb_arch_load(c->supernet_path, st);
  if (!a) return NULL;
  fb_build_opts b = c->deploy;
  b.tasks = c->tasks;
  fb_net *net = fb_net_build(a, &b, 1, st);
  fb_arch_free(a);
  if (net && !net->mp) {
    fb_fail(st, "%s: not a multi-path supernet (no searchable elements)", c->supernet_path);
    fb_net_free(net);
    return NULL;
  }
  return net;
}

/* Sample s of a series: all dropped, all kept, then random masks whose keep
 * probability is itself uniform in [0.05, 0.95]. */
static void sample_mask(fb_rng *r, int s, int B, uint8_t *mask) {
  const double p = s == 0 ? 0 : s == 1 ? 1 : 0.05 + 0.9 * fb_rng_uniform(r);
  for (int b = 0; b < B; b++) mask[b] = s == 1 ? 1 : fb_rng_uniform(r) < p;
}

typedef struct lat_series {
  int S, E, n_thr;
  uint8_t *kept;   /* S x E */
  double *ms;      /* n_thr x S: each network's median */
  double *ref;     /* n_thr x S: the reference network's, measured beside it */
  double *ratio;   /* n_thr x S: the network's time / the reference's (time_pair) */
} lat_series;

/* The reference network of a task: one fixed architecture (every bit kept
 * with probability 1/2, from a fixed seed), timed right after every sampled
 * network. The machine's speed drifts (on a shared 2-core VM the same
 * network measured 10.5 to 12.9 ms within a minute, all networks together),
 * so each network is timed against it (time_pair) and its time is that ratio
 * times reference_ms: times at one machine speed, that of the table. */
static char *reference_text(const fb_net *sup, unsigned task, int input_size, fb_status *st) {
  const int B = sup->mp->n_bits;
  uint8_t *mask = fb_xmalloc((size_t)B + 1);
  fb_rng r;
  fb_rng_seed(&r, 0x5EFE4E1CEULL);
  for (int b = 0; b < B; b++) mask[b] = fb_rng_uniform(&r) < 0.5;
  char *text = fb_derive_arch_json(sup, mask, task, NULL, NULL, -1, input_size, NULL, st);
  free(mask);
  return text;
}

static double median_of(const double *v, int n) {
  double *w = fb_xmalloc((size_t)n * sizeof *w);
  memcpy(w, v, (size_t)n * sizeof *w);
  qsort(w, (size_t)n, sizeof *w, cmp_double);
  const double m = quantile_sorted(w, n, 0.5);
  free(w);
  return m;
}

static void progress(const fb_lat_cfg *c, double frac, const char *fmt, unsigned task, int s,
                     int S) {
  if (!c->progress) return;
  char text[160];
  snprintf(text, sizeof text, fmt, fb_task_name(task), s, S);
  c->progress(c->ctx, frac, text);
}

/* Derives, builds and times S networks for task (every thread count). */
static int measure_series(const fb_lat_cfg *c, fb_net *sup, unsigned task, int S, uint64_t seed,
                          double frac0, double frac_w, const cpu_set_t *allowed, lat_series *ser,
                          fb_status *st) {
  const fb_mp_net *m = sup->mp;
  const int B = m->n_bits, E = m->n_elems;
  ser->S = S, ser->E = E, ser->n_thr = c->n_threads;
  ser->kept = fb_xcalloc((size_t)S * E, 1);
  ser->ms = fb_xcalloc((size_t)c->n_threads * S, sizeof *ser->ms);
  ser->ref = fb_xcalloc((size_t)c->n_threads * S, sizeof *ser->ref);
  ser->ratio = fb_xcalloc((size_t)c->n_threads * S, sizeof *ser->ratio);
  uint8_t *mask = fb_xmalloc((size_t)B + 1);
  fb_rng r;
  fb_rng_seed(&r, seed);
  fb_net *ref[FB_LAT_MAX_THREADS] = {0};
  char *ref_text = reference_text(sup, task, c->deploy.input_size, st);
  int rc = ref_text ? 0 : -1;
  for (int k = 0; k < c->n_threads && rc == 0; k++) { /* built at its thread count */
    omp_set_num_threads(c->threads[k]);
    pin_threads(allowed, c->threads[k]);
    if (!(ref[k] = build_deployed(ref_text, &c->deploy, task, st))) rc = -1;
  }
  free(ref_text);
  for (int s = 0; s < S && rc == 0; s++) {
    sample_mask(&r, s, B, mask);
    fb_mp d;
    rc = fb_mp_derive(sup, mask, task, ser->kept + (size_t)s * E, &d, st);
    if (rc) break;
    fb_mp_free_desc(&d);
    char *text = fb_derive_arch_json(sup, mask, task, c->supernet_path, NULL, -1,
                                     c->deploy.input_size, NULL, st);
    /* one build per thread count: kernels are set up for the thread count they
     * first run with, as in a process that deploys the network */
    for (int k = 0; k < c->n_threads && rc == 0; k++) {
      omp_set_num_threads(c->threads[k]);
      pin_threads(allowed, c->threads[k]);
      fb_net *net = text ? build_deployed(text, &c->deploy, task, st) : NULL;
      if (!net) {
        rc = -1;
        break;
      }
      const size_t i = (size_t)k * S + s;
      time_pair(net, ref[k], c->warmup, c->reps, &ser->ratio[i], &ser->ms[i], &ser->ref[i]);
      fb_net_free(net);
    }
    free(text);
    progress(c, frac0 + frac_w * (s + 1) / S, "%s: %d of %d networks measured", task, s + 1, S);
  }
  for (int k = 0; k < c->n_threads; k++) fb_net_free(ref[k]);
  free(mask);
  return rc;
}

/* y[s] = ratio[s] * ref_ms for thread count k: the times at the speed at
 * which the reference runs in ref_ms. */
static void at_reference_speed(const lat_series *ser, int k, double ref_ms, double *y) {
  const double *ratio = ser->ratio + (size_t)k * ser->S;
  for (int s = 0; s < ser->S; s++) y[s] = ratio[s] * ref_ms;
}

static void series_free(lat_series *s) {
  free(s->kept);
  free(s->ms);
  free(s->ref);
  free(s->ratio);
}

/* ---- the fit -------------------------------------------------------------- */

/* Cholesky solve of the p x p SPD system A x = b (A overwritten); -1 when not
 * positive definite. */
static int chol_solve(double *A, int p, double *b) {
  for (int j = 0; j < p; j++) {
    double d = A[j * p + j];
    for (int k = 0; k < j; k++) d -= A[j * p + k] * A[j * p + k];
    if (!(d > 0)) return -1;
    d = sqrt(d);
    A[j * p + j] = d;
    for (int i = j + 1; i < p; i++) {
      double v = A[i * p + j];
      for (int k = 0; k < j; k++) v -= A[i * p + k] * A[j * p + k];
      A[i * p + j] = v / d;
    }
  }
  for (int i = 0; i < p; i++) { /* L y = b */
    double v = b[i];
    for (int k = 0; k < i; k++) v -= A[i * p + k] * b[k];
    b[i] = v / A[i * p + i];
  }
  for (int i = p - 1; i >= 0; i--) { /* L^T x = y */
    double v = b[i];
    for (int k = i + 1; k < p; k++) v -= A[k * p + i] * b[k];
    b[i] = v / A[i * p + i];
  }
  return 0;
}

/* Minimises the quadratic 0.5 x'Ax - b'x over x[1..p-1] >= 0 (x[0] free),
 * starting from x: cyclic coordinate descent, each coordinate set to its exact
 * minimiser and projected; converges for SPD A. */
static void nonneg_refine(const double *A, const double *b, int p, double *x) {
  for (int j = 1; j < p; j++)
    if (x[j] < 0) x[j] = 0;
  for (int sweep = 0; sweep < 20000; sweep++) {
    double moved = 0, scale = 0;
    for (int j = 0; j < p; j++) {
      double g = -b[j];
      for (int k = 0; k < p; k++) g += A[j * p + k] * x[k];
      double v = x[j] - g / A[j * p + j];
      if (j > 0 && v < 0) v = 0;
      moved = fmax(moved, fabs(v - x[j]));
      scale = fmax(scale, fabs(v));
      x[j] = v;
    }
    if (moved <= 1e-13 * fmax(scale, 1e-12)) return;
  }
}

/* Least squares of y (S) on [1, kept columns that vary], every element's time
 * non-negative (an element is nodes of the network: with noisy timings an
 * unconstrained fit hands some a negative time, and a sum of them then
 * predicts networks faster than any that exists); a tiny ridge keeps
 * collinear columns (elements kept together in every sample) solvable, their
 * time then split between them. */
int fb_lat_fit(const uint8_t *kept, const double *y, int S, int E, unsigned task,
               fb_lat_task *lt, fb_status *st) {
  int *col = fb_xmalloc((size_t)E * sizeof *col), F = 0;
  memset(lt, 0, sizeof *lt);
  lt->task = task;
  lt->elem_ms = fb_xcalloc((size_t)E, sizeof *lt->elem_ms);
  lt->elem_se = fb_xcalloc((size_t)E, sizeof *lt->elem_se);
  lt->fitted = fb_xcalloc((size_t)E, 1);
  for (int e = 0; e < E; e++) {
    int n = 0;
    for (int s = 0; s < S; s++) n += kept[(size_t)s * E + e];
    if (n > 0 && n < S) col[F++] = e;
  }
  const int p = F + 1;
  if (S < p + 2) {
    free(col);
    return fb_fail(st, "latency fit for %s: %d networks for %d unknowns (the fixed part and %d "
                   "elements): measure more (--networks)", fb_task_name(task), S, p, F);
  }
  double *A = fb_xcalloc((size_t)p * p, sizeof *A), *b = fb_xcalloc((size_t)p, sizeof *b);
  double *x = fb_xmalloc((size_t)p * sizeof *x);
  for (int s = 0; s < S; s++) {
    x[0] = 1;
    for (int j = 0; j < F; j++) x[j + 1] = kept[(size_t)s * E + col[j]];
    for (int i = 0; i < p; i++) {
      b[i] += x[i] * y[s];
      for (int j = 0; j < p; j++) A[i * p + j] += x[i] * x[j];
    }
  }
  double *A0 = fb_xmalloc((size_t)p * p * sizeof *A0);
  for (int j = 1; j < p; j++) A[j * p + j] += 1e-6 * S;
  memcpy(A0, A, (size_t)p * p * sizeof *A0);
  int rc = 0;
  double *rhs = fb_xmalloc((size_t)p * sizeof *rhs);
  memcpy(rhs, b, (size_t)p * sizeof *rhs);
  if (chol_solve(A, p, b)) {
    free(rhs);
    rc = fb_fail(st, "latency fit for %s: the system is singular (%d networks for %d unknowns)",
                 fb_task_name(task), S, p);
    goto done;
  }
  nonneg_refine(A0, rhs, p, b);
  free(rhs);
  lt->fixed_ms = b[0];
  double rss = 0, ape = 0;
  lt->min_ms = INFINITY, lt->max_ms = 0;
  for (int s = 0; s < S; s++) {
    double pred = b[0];
    for (int j = 0; j < F; j++) pred += b[j + 1] * kept[(size_t)s * E + col[j]];
    rss += (pred - y[s]) * (pred - y[s]);
    ape += fabs(pred - y[s]) / y[s];
    if (y[s] < lt->min_ms) lt->min_ms = y[s];
    if (y[s] > lt->max_ms) lt->max_ms = y[s];
  }
  lt->rmse_ms = sqrt(rss / S);
  lt->mape = 100 * ape / S;
  const double sigma2 = S > p ? rss / (S - p) : 0;
  for (int j = 0; j < F; j++) { /* se_j = sigma * sqrt((A^-1)_jj) */
    memcpy(A, A0, (size_t)p * p * sizeof *A);
    memset(x, 0, (size_t)p * sizeof *x);
    x[j + 1] = 1;
    chol_solve(A, p, x);
    const int e = col[j];
    lt->elem_ms[e] = b[j + 1];
    lt->elem_se[e] = sqrt(sigma2 * (x[j + 1] > 0 ? x[j + 1] : 0));
    lt->fitted[e] = 1;
  }
done:
  free(col);
  free(A);
  free(A0);
  free(b);
  free(x);
  return rc;
}

/* ---- building a table ----------------------------------------------------- */

static void table_header(const fb_lat_cfg *c, const fb_net *sup, fb_lat_table *t) {
  const fb_mp_net *m = sup->mp;
  memset(t, 0, sizeof *t);
  t->supernet = fb_xstrdup(sup->name);
  t->hash = fb_lat_text_hash(sup->arch_text);
  t->n_elems = m->n_elems;
  t->elem_names = fb_xmalloc((size_t)m->n_elems * sizeof *t->elem_names);
  for (int e = 0; e < m->n_elems; e++) t->elem_names[e] = fb_xstrdup(m->elems[e].name);
  t->input_size = c->deploy.input_size;
  t->batch = 1;
  t->width = c->deploy.width;
  t->num_classes = c->deploy.num_classes;
  t->num_cats = c->deploy.num_cats;
  t->num_seg_classes = c->deploy.num_seg_classes;
  char cpu[256], build[256];
  fb_lat_machine(cpu, sizeof cpu, build, sizeof build, &t->cores);
  t->cpu = fb_xstrdup(cpu);
  t->build = fb_xstrdup(build);
  t->samples = c->samples, t->warmup = c->warmup, t->reps = c->reps;
  t->n_entries = c->n_threads;
  for (int k = 0; k < c->n_threads; k++) t->entry[k].threads = c->threads[k];
}

int fb_lat_build(const fb_lat_cfg *c, fb_lat_table *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  if (c->n_threads < 1 || c->n_threads > FB_LAT_MAX_THREADS)
    return fb_fail(st, "latency table: 1 to %d thread counts, not %d", FB_LAT_MAX_THREADS,
                   c->n_threads);
  fb_net *sup = build_supernet(c, st);
  if (!sup) return -1;
  unsigned list[3];
  const int T = fb_search_task_list(c->tasks, list);
  table_header(c, sup, out);
  const int saved_threads = omp_get_max_threads();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  int rc = 0;
  for (int ti = 0; ti < T && rc == 0; ti++) {
    lat_series ser;
    rc = measure_series(c, sup, list[ti], c->samples, c->seed + 1000003ULL * (ti + 1),
                        (double)ti / T, 1.0 / T, &allowed, &ser, st);
    double *y = fb_xmalloc((size_t)c->samples * sizeof *y);
    for (int k = 0; k < c->n_threads && rc == 0; k++) {
      fb_lat_entry *en = &out->entry[k];
      const double ref_ms = median_of(ser.ref + (size_t)k * ser.S, ser.S);
      at_reference_speed(&ser, k, ref_ms, y);
      rc = fb_lat_fit(ser.kept, y, ser.S, ser.E, list[ti], &en->task[ti], st);
      en->task[ti].reference_ms = ref_ms;
      en->n_tasks = ti + 1;
    }
    free(y);
    series_free(&ser);
  }
  omp_set_num_threads(saved_threads);
  pin_threads(&allowed, 0);
  fb_net_free(sup);
  if (rc) fb_lat_free(out);
  return rc;
}

void fb_lat_task_free(fb_lat_task *lt) {
  free(lt->elem_ms);
  free(lt->elem_se);
  free(lt->fitted);
  lt->elem_ms = lt->elem_se = NULL;
  lt->fitted = NULL;
}

void fb_lat_free(fb_lat_table *t) {
  if (!t) return;
  for (int k = 0; k < t->n_entries; k++)
    for (int i = 0; i < t->entry[k].n_tasks; i++) fb_lat_task_free(&t->entry[k].task[i]);
  for (int e = 0; e < t->n_elems && t->elem_names; e++) free(t->elem_names[e]);
  free(t->elem_names);
  free(t->supernet);
  free(t->cpu);
  free(t->build);
  memset(t, 0, sizeof *t);
}

/* ---- predictions ----------------------------------------------------------- */

const fb_lat_task *fb_lat_entry_task(const fb_lat_entry *e, unsigned task) {
  for (int i = 0; e && i < e->n_tasks; i++)
    if (e->task[i].task == task) return &e->task[i];
  return NULL;
}

double fb_lat_predict(const fb_lat_task *lt, const fb_net *net, const uint8_t *mask,
                      unsigned task) {
  return lt->fixed_ms + fb_mp_task_elem_sum(net, mask, task, lt->elem_ms);
}

double fb_lat_min(const fb_lat_task *lt, const fb_net *net, unsigned task) {
  const fb_mp_net *m = net->mp;
  uint8_t *mask = fb_xmalloc((size_t)m->n_bits + 1);
  for (int b = 0; b < m->n_bits; b++) mask[b] = lt->elem_ms[m->bit_elem[b]] < 0;
  const double v = fb_lat_predict(lt, net, mask, task);
  free(mask);
  return v;
}

/* ---- the check ------------------------------------------------------------ */

static void ranks(const double *x, int n, double *r) {
  int *idx = fb_xmalloc((size_t)n * sizeof *idx);
  for (int i = 0; i < n; i++) idx[i] = i;
  for (int i = 1; i < n; i++) /* insertion sort: n is small */
    for (int j = i; j > 0 && x[idx[j - 1]] > x[idx[j]]; j--) {
      const int t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) j++;
    for (int k = i; k <= j; k++) r[idx[k]] = 0.5 * (i + j) + 1;
    i = j + 1;
  }
  free(idx);
}

double fb_spearman(const double *x, const double *y, int n) {
  if (n < 2) return NAN;
  double *rx = fb_xmalloc((size_t)n * sizeof *rx), *ry = fb_xmalloc((size_t)n * sizeof *ry);
  ranks(x, n, rx);
  ranks(y, n, ry);
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < n; i++) mx += rx[i], my += ry[i];
  mx /= n, my /= n;
  for (int i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  free(rx);
  free(ry);
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

int fb_lat_check(const fb_lat_table *t, const fb_lat_cfg *c, int n, fb_lat_check_row *rows,
                 int *n_rows, fb_status *st) {
  *n_rows = 0;
  fb_net *sup = build_supernet(c, st);
  if (!sup) return -1;
  fb_lat_cfg cc = *c;
  cc.n_threads = t->n_entries;
  for (int k = 0; k < t->n_entries; k++) cc.threads[k] = t->entry[k].threads;
  const int T = t->entry[0].n_tasks, saved_threads = omp_get_max_threads();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  double *pred = fb_xmalloc((size_t)n * sizeof *pred);
  double *y_all = fb_xmalloc((size_t)(n + 2) * sizeof *y_all);
  uint8_t *mask = fb_xmalloc((size_t)sup->mp->n_bits + 1);
  int rc = 0;
  for (int ti = 0; ti < T && rc == 0; ti++) {
    const unsigned task = t->entry[0].task[ti].task;
    lat_series ser; /* fresh networks: another seed, no all-dropped/all-kept pair */
    rc = measure_series(&cc, sup, task, n + 2, c->seed ^ 0xC4EC4ULL, (double)ti / T, 1.0 / T,
                        &allowed, &ser, st);
    for (int k = 0; k < t->n_entries && rc == 0; k++) {
      const fb_lat_task *lt = fb_lat_entry_task(&t->entry[k], task);
      fb_rng r;
      fb_rng_seed(&r, c->seed ^ 0xC4EC4ULL);
      double ape = 0, max_ape = 0, raw_ape = 0;
      for (int s = 0; s < n + 2; s++) {
        sample_mask(&r, s, sup->mp->n_bits, mask); /* the same masks, in the same order */
        if (s >= 2) pred[s - 2] = fb_lat_predict(lt, sup, mask, task);
      }
      at_reference_speed(&ser, k, lt->reference_ms, y_all);
      const double *y = y_all + 2, *raw = ser.ms + (size_t)k * ser.S + 2;
      for (int s = 0; s < n; s++) {
        const double a = 100 * fabs(pred[s] - y[s]) / y[s];
        ape += a;
        raw_ape += 100 * fabs(pred[s] - raw[s]) / raw[s];
        if (a > max_ape) max_ape = a;
      }
      rows[*n_rows] = (fb_lat_check_row){
          .threads = t->entry[k].threads, .task = task, .n = n,
          .spearman = fb_spearman(pred, y, n), .mape = ape / n, .max_ape = max_ape,
          .raw_spearman = fb_spearman(pred, raw, n), .raw_mape = raw_ape / n,
          .speed = lt->reference_ms / median_of(ser.ref + (size_t)k * ser.S + 2, n)};
      (*n_rows)++;
    }
    series_free(&ser);
  }
  omp_set_num_threads(saved_threads);
  pin_threads(&allowed, 0);
  free(pred);
  free(y_all);
  free(mask);
  fb_net_free(sup);
  return rc;
}

/* ---- the file -------------------------------------------------------------- */

char *fb_lat_to_json(const fb_lat_table *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "format", "fbnet-latency-table");
  cJSON_AddNumberToObject(o, "version", 1);
  cJSON *sn = cJSON_AddObjectToObject(o, "supernet");
  cJSON_AddStringToObject(sn, "name", t->supernet);
  char hash[24];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)t->hash);
  cJSON_AddStringToObject(sn, "hash", hash);
  cJSON_AddNumberToObject(o, "input_size", t->input_size);
  cJSON_AddNumberToObject(o, "batch", t->batch);
  cJSON_AddNumberToObject(o, "width", t->width);
  cJSON_AddNumberToObject(o, "classes", t->num_classes);
  cJSON_AddNumberToObject(o, "cats", t->num_cats);
  cJSON_AddNumberToObject(o, "seg_classes", t->num_seg_classes);
  cJSON *mc = cJSON_AddObjectToObject(o, "machine");
  cJSON_AddStringToObject(mc, "cpu", t->cpu);
  cJSON_AddNumberToObject(mc, "cores", t->cores);
  cJSON_AddStringToObject(mc, "build", t->build);
  cJSON *ms = cJSON_AddObjectToObject(o, "measured");
  cJSON_AddNumberToObject(ms, "networks_per_task", t->samples);
  cJSON_AddNumberToObject(ms, "warmup", t->warmup);
  cJSON_AddNumberToObject(ms, "reps", t->reps);
  cJSON *names = cJSON_AddArrayToObject(o, "elements");
  for (int e = 0; e < t->n_elems; e++) cJSON_AddItemToArray(names, cJSON_CreateString(t->elem_names[e]));
  cJSON *tabs = cJSON_AddArrayToObject(o, "tables");
  for (int k = 0; k < t->n_entries; k++) {
    const fb_lat_entry *en = &t->entry[k];
    cJSON *te = cJSON_CreateObject();
    cJSON_AddItemToArray(tabs, te);
    cJSON_AddNumberToObject(te, "threads", en->threads);
    cJSON *tasks = cJSON_AddArrayToObject(te, "tasks");
    for (int i = 0; i < en->n_tasks; i++) {
      const fb_lat_task *lt = &en->task[i];
      cJSON *tt = cJSON_CreateObject();
      cJSON_AddItemToArray(tasks, tt);
      cJSON_AddStringToObject(tt, "task", fb_task_name(lt->task));
      cJSON_AddNumberToObject(tt, "fixed_ms", lt->fixed_ms);
      cJSON_AddNumberToObject(tt, "reference_ms", lt->reference_ms);
      cJSON_AddNumberToObject(tt, "fit_rmse_ms", lt->rmse_ms);
      cJSON_AddNumberToObject(tt, "fit_mape", lt->mape);
      cJSON_AddNumberToObject(tt, "min_ms", lt->min_ms);
      cJSON_AddNumberToObject(tt, "max_ms", lt->max_ms);
      cJSON *ems = cJSON_AddArrayToObject(tt, "element_ms");
      cJSON *ese = cJSON_AddArrayToObject(tt, "element_se_ms");
      for (int e = 0; e < t->n_elems; e++) {
        cJSON_AddItemToArray(ems, lt->fitted[e] ? cJSON_CreateNumber(lt->elem_ms[e]) : cJSON_CreateNull());
        cJSON_AddItemToArray(ese, lt->fitted[e] ? cJSON_CreateNumber(lt->elem_se[e]) : cJSON_CreateNull());
      }
    }
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  return text;
}

static const cJSON *need(const cJSON *o, const char *key, int type_number, const char *path,
                         const char *where, fb_status *st) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || (type_number ? !cJSON_IsNumber(v) : !cJSON_IsString(v))) {
    fb_fail(st, "%s: %s%s: %s", path, where, key,
            v ? (type_number ? "must be a number" : "must be a string") : "missing");
    return NULL;
  }
  if (type_number && !isfinite(v->valuedouble)) {
    fb_fail(st, "%s: %s%s: must be finite", path, where, key);
    return NULL;
  }
  return v;
}

static int read_int(const cJSON *o, const char *key, double lo, double hi, const char *path,
                    int *out, fb_status *st) {
  const cJSON *v = need(o, key, 1, path, "", st);
  if (!v) return -1;
  if (fb_json_int_in_range(v, lo, hi, out))
    return fb_fail(st, "%s: %s: needs an integer in %g..%g", path, key, lo, hi);
  return 0;
}

static unsigned task_by_name(const char *s) {
  const fb_task_row *r = fb_task_named(s);
  return r ? r->id : 0;
}

static int read_task(const cJSON *tt, const char *path, int k, int i, int E, fb_lat_task *lt,
                     fb_status *st) {
  char where[64];
  snprintf(where, sizeof where, "tables[%d].tasks[%d].", k, i);
  const cJSON *name = need(tt, "task", 0, path, where, st);
  if (!name) return -1;
  if (!(lt->task = task_by_name(name->valuestring)))
    return fb_fail(st, "%s: %stask: '%s' is not cls, det or seg", path, where, name->valuestring);
  const cJSON *v;
  if (!(v = need(tt, "fixed_ms", 1, path, where, st))) return -1;
  lt->fixed_ms = v->valuedouble;
  double *dst[5] = {&lt->rmse_ms, &lt->mape, &lt->min_ms, &lt->max_ms, &lt->reference_ms};
  const char *keys[5] = {"fit_rmse_ms", "fit_mape", "min_ms", "max_ms", "reference_ms"};
  for (int j = 0; j < 5; j++) {
    if (!(v = need(tt, keys[j], 1, path, where, st))) return -1;
    *dst[j] = v->valuedouble;
  }
  const cJSON *ems = cJSON_GetObjectItemCaseSensitive(tt, "element_ms");
  const cJSON *ese = cJSON_GetObjectItemCaseSensitive(tt, "element_se_ms");
  if (!cJSON_IsArray(ems) || cJSON_GetArraySize(ems) != E || !cJSON_IsArray(ese) ||
      cJSON_GetArraySize(ese) != E)
    return fb_fail(st, "%s: %selement_ms and element_se_ms: need %d values each (one per "
                   "element)", path, where, E);
  lt->elem_ms = fb_xcalloc((size_t)E, sizeof *lt->elem_ms);
  lt->elem_se = fb_xcalloc((size_t)E, sizeof *lt->elem_se);
  lt->fitted = fb_xcalloc((size_t)E, 1);
  for (int e = 0; e < E; e++) {
    const cJSON *a = cJSON_GetArrayItem(ems, e), *b = cJSON_GetArrayItem(ese, e);
    if (cJSON_IsNull(a) && cJSON_IsNull(b)) continue;
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !isfinite(a->valuedouble) ||
        !isfinite(b->valuedouble))
      return fb_fail(st, "%s: %selement_ms[%d]: a finite number (or null in both arrays)", path,
                     where, e);
    lt->elem_ms[e] = a->valuedouble;
    lt->elem_se[e] = b->valuedouble;
    lt->fitted[e] = 1;
  }
  return 0;
}

static int read_table(const cJSON *o, const char *path, fb_lat_table *t, fb_status *st) {
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "fbnet-latency-table") != 0)
    return fb_fail(st, "%s: not an fbnet latency table (no \"format\": "
                   "\"fbnet-latency-table\"; make one with fbnet bench latency)", path);
  const cJSON *sn = cJSON_GetObjectItemCaseSensitive(o, "supernet"), *v;
  if (!cJSON_IsObject(sn)) return fb_fail(st, "%s: supernet: missing or not an object", path);
  if (!(v = need(sn, "name", 0, path, "supernet.", st))) return -1;
  t->supernet = fb_xstrdup(v->valuestring);
  if (!(v = need(sn, "hash", 0, path, "supernet.", st))) return -1;
  char *end = NULL;
  t->hash = strtoull(v->valuestring, &end, 16);
  if (!end || *end || strlen(v->valuestring) != 16)
    return fb_fail(st, "%s: supernet.hash: 16 hex digits", path);
  if (read_int(o, "input_size", 8, 8192, path, &t->input_size, st) ||
      read_int(o, "batch", 1, 1 << 20, path, &t->batch, st) ||
      read_int(o, "classes", 1, 1 << 24, path, &t->num_classes, st) ||
      read_int(o, "cats", 1, 1 << 24, path, &t->num_cats, st) ||
      read_int(o, "seg_classes", 1, 1 << 24, path, &t->num_seg_classes, st))
    return -1;
  if (!(v = need(o, "width", 1, path, "", st))) return -1;
  t->width = v->valuedouble;
  const cJSON *mc = cJSON_GetObjectItemCaseSensitive(o, "machine");
  const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(mc, "cpu");
  const cJSON *build = cJSON_GetObjectItemCaseSensitive(mc, "build");
  t->cpu = fb_xstrdup(cJSON_IsString(cpu) ? cpu->valuestring : "unknown");
  t->build = fb_xstrdup(cJSON_IsString(build) ? build->valuestring : "unknown");
  const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "elements");
  if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) < 1)
    return fb_fail(st, "%s: elements: missing or empty", path);
  t->n_elems = cJSON_GetArraySize(names);
  t->elem_names = fb_xcalloc((size_t)t->n_elems, sizeof *t->elem_names);
  for (int e = 0; e < t->n_elems; e++) {
    const cJSON *s = cJSON_GetArrayItem(names, e);
    if (!cJSON_IsString(s)) return fb_fail(st, "%s: elements[%d]: must be a string", path, e);
    t->elem_names[e] = fb_xstrdup(s->valuestring);
  }
  const cJSON *tabs = cJSON_GetObjectItemCaseSensitive(o, "tables");
  const int K = cJSON_IsArray(tabs) ? cJSON_GetArraySize(tabs) : 0;
  if (K < 1 || K > FB_LAT_MAX_THREADS)
    return fb_fail(st, "%s: tables: 1 to %d entries (one per thread count)", path,
                   FB_LAT_MAX_THREADS);
  for (int k = 0; k < K; k++) {
    const cJSON *te = cJSON_GetArrayItem(tabs, k);
    fb_lat_entry *en = &t->entry[k];
    t->n_entries = k + 1;
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(te, "threads");
    if (fb_json_int_in_range(th, 1, 4096, &en->threads))
      return fb_fail(st, "%s: tables[%d].threads: an integer in 1..4096", path, k);
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(te, "tasks");
    const int T = cJSON_IsArray(tasks) ? cJSON_GetArraySize(tasks) : 0;
    if (T < 1 || T > FB_LAT_MAX_TASKS)
      return fb_fail(st, "%s: tables[%d].tasks: 1 to 3 entries", path, k);
    for (int i = 0; i < T; i++) {
      en->n_tasks = i + 1;
      if (read_task(cJSON_GetArrayItem(tasks, i), path, k, i, t->n_elems, &en->task[i], st))
        return -1;
    }
  }
  return 0;
}

int fb_lat_read(const char *path, fb_lat_table *t, fb_status *st) {
  memset(t, 0, sizeof *t);
  cJSON *o = fb_json_read_file(path, st);
  if (!o) return -1;
  const int rc = read_table(o, path, t, st);
  cJSON_Delete(o);
  if (rc) fb_lat_free(t);
  return rc;
}

static void add_warning(char *warn, size_t n, const char *text) {
  if (!warn || n == 0) return;
  const size_t len = strlen(warn);
  snprintf(warn + len, n - len, "%s%s", len ? "; " : "", text);
}

const fb_lat_entry *fb_lat_compat(const fb_lat_table *t, const char *path,
                                  const fb_net *net,
                                  const fb_build_opts *o, int threads, int force, char *warn,
                                  size_t nwarn, fb_status *st) {
  const fb_mp_net *m = net->mp;
  if (warn && nwarn) warn[0] = 0;
  if (!m || m->n_elems != t->n_elems)
    return fb_fail(st, "%s: made for a supernet with %d elements (%s), this one has %d", path,
                   t->n_elems, t->supernet, m ? m->n_elems : 0), NULL;
  for (int e = 0; e < t->n_elems; e++)
    if (strcmp(t->elem_names[e], m->elems[e].name) != 0)
      return fb_fail(st, "%s: element %d is '%s' in the table, '%s' in this supernet", path, e,
                     t->elem_names[e], m->elems[e].name), NULL;
  char diff[768] = "";
  const size_t nd = sizeof diff;
  if (t->hash != fb_lat_text_hash(net->arch_text))
    snprintf(diff + strlen(diff), nd - strlen(diff), "%sthe supernet's arch file differs (the "
             "table's is '%s')", *diff ? ", " : "", t->supernet);
  if (t->input_size != o->input_size)
    snprintf(diff + strlen(diff), nd - strlen(diff), "%sinput size %d (here %d)",
             *diff ? ", " : "", t->input_size, o->input_size);
  if (fabs(t->width - o->width) > 1e-9)
    snprintf(diff + strlen(diff), nd - strlen(diff), "%swidth %g (here %g)", *diff ? ", " : "",
             t->width, o->width);
  if ((o->tasks & FB_TASK_CLS) && t->num_classes != o->num_classes)
    snprintf(diff + strlen(diff), nd - strlen(diff), "%sa classifier of %d classes (here %d: "
             "fbnet bench latency --classes)", *diff ? ", " : "", t->num_classes, o->num_classes);
  if ((o->tasks & FB_TASK_DET) && t->num_cats != o->num_cats)
    snprintf(diff + strlen(diff), nd - strlen(diff), "%sa detector of %d categories (here %d: "
             "--cats)", *diff ? ", " : "", t->num_cats, o->num_cats);
  if ((o->tasks & FB_TASK_SEG) && t->num_seg_classes != o->num_seg_classes)
    snprintf(diff + strlen(diff), nd - strlen(diff), "%s%d segmentation classes (here %d: "
             "--seg-classes)", *diff ? ", " : "", t->num_seg_classes, o->num_seg_classes);
  if (*diff) {
    if (!force)
      return fb_fail(st, "%s: made for another network: %s (remake it with fbnet bench latency, "
                     "or --force)", path, diff), NULL;
    add_warning(warn, nwarn, diff);
  }
  const fb_lat_entry *found = NULL;
  char have[128] = "";
  for (int k = 0; k < t->n_entries; k++) {
    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%d", k ? ", " : "",
             t->entry[k].threads);
    if (t->entry[k].threads == threads) found = &t->entry[k];
  }
  if (threads == 0 && t->n_entries == 1) found = &t->entry[0];
  if (!found) {
    if (threads == 0)
      fb_fail(st, "%s: holds tables for %s threads: say which with --latency-threads", path, have);
    else
      fb_fail(st, "%s: no table for %d threads (it has %s): measure one with fbnet bench latency "
              "--threads %d", path, threads, have, threads);
  }
  return found;
}
