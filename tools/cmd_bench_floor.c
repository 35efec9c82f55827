/* fbnet bench floor: what this machine can do at best, the floor a step's
 * time is measured against (src/nn/profile.h).
 *   fp32 peak  a large square sgemm through oneDNN (dnnl_sgemm), 2*M*N*K
 *              flops, best of --reps after one untimed call;
 *   bandwidth  STREAM-like kernels over three arrays of --stream-mib MiB each
 *              (much larger than the caches) with OpenMP: copy (c = a, 2
 *              arrays moved), triad (a = b + s*c, 3) and read (sum of a, 1),
 *              counted the STREAM way (no write-allocate traffic); best of
 *              --reps each. The floor uses the better of copy and triad.
 * Both run on omp_get_max_threads() threads (--threads sets it).
 *
 * bench_floor_profile() is the `fbnet bench train --profile` end: the op
 * family table of a profiled net against these numbers. */
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/clock.h"
#include "core/rng.h"
#include "core/status.h"
#include "nn/profile.h"

typedef struct floor_result {
  int threads, size, stream_mib;
  double gflops;                        /* best sgemm rate, all threads */
  double copy_gbs, triad_gbs, read_gbs; /* best STREAM rates */
} floor_result;

/* The floor's bandwidth: the better of copy and triad, whose mix of reads
 * and writes is that of the memory-bound ops (read-only streams run faster;
 * the read rate is reported for reference). */
static double floor_bandwidth_gbs(const floor_result *r) {
  return r->copy_gbs > r->triad_gbs ? r->copy_gbs : r->triad_gbs;
}

static void fill_uniform(float *x, size_t n, uint64_t seed) {
  fb_rng rng;
  fb_rng_seed(&rng, seed);
  for (size_t i = 0; i < n; i++) x[i] = (float)fb_rng_uniform(&rng) - 0.5f;
}

/* Best GFLOP/s of C = A * B with square size x size matrices; -1 on error. */
static double sgemm_gflops(int size, int reps, fb_status *st) {
  const size_t n = (size_t)size * size;
  float *a = fb_alloc_floats(n), *b = fb_alloc_floats(n), *c = fb_alloc_floats(n);
  fill_uniform(a, n, 1);
  fill_uniform(b, n, 2);
  double best = -1;
  for (int r = 0; r <= reps; r++) { /* r == 0: untimed (primitive creation, page faults) */
    const double t = fb_now_sec();
    dnnl_status_t s = dnnl_sgemm('N', 'N', size, size, size, 1.0f, a, size, b, size, 0.0f, c,
                                 size);
    const double dt = fb_now_sec() - t;
    if (s != dnnl_success) {
      fb_fail(st, "bench floor: dnnl_sgemm failed with status %d", (int)s);
      best = -1;
      break;
    }
    const double g = 2.0 * size * (double)size * size / dt / 1e9;
    if (r > 0 && g > best) best = g;
  }
  free(a);
  free(b);
  free(c);
  return best;
}

typedef struct stream_arrays {
  float *a, *b, *c;
  size_t n;
} stream_arrays;

static void stream_init(stream_arrays *s) { /* first touch by the threads that use them */
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < s->n; i++) s->a[i] = 1.0f, s->b[i] = 2.0f, s->c[i] = 0.0f;
}

static double stream_copy(stream_arrays *s) {
  const double t = fb_now_sec();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < s->n; i++) s->c[i] = s->a[i];
  return fb_now_sec() - t;
}

static double stream_triad(stream_arrays *s) {
  const float q = 3.0f;
  const double t = fb_now_sec();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < s->n; i++) s->a[i] = s->b[i] + q * s->c[i];
  return fb_now_sec() - t;
}

/* Sixteen partial sums per thread: a vectorisable reduction, not one
 * dependent chain of adds (which would measure the add latency). */
static double stream_read(stream_arrays *s, double *sink) {
  enum { LANES = 16 };
  const size_t blocks = s->n / LANES;
  float sum = 0.0f;
  const double t = fb_now_sec();
#pragma omp parallel reduction(+ : sum)
  {
    float acc[LANES] = {0};
#pragma omp for schedule(static)
    for (size_t i = 0; i < blocks; i++)
      for (int j = 0; j < LANES; j++) acc[j] += s->a[i * LANES + j];
    for (int j = 0; j < LANES; j++) sum += acc[j];
  }
  const double dt = fb_now_sec() - t;
  *sink += sum; /* keeps the loop */
  return dt;
}

static void measure_stream(int mib, int reps, floor_result *r) {
  stream_arrays s;
  s.n = (size_t)mib * 1024 * 1024 / sizeof(float); /* a multiple of 16 */
  s.a = fb_alloc_floats(s.n), s.b = fb_alloc_floats(s.n), s.c = fb_alloc_floats(s.n);
  stream_init(&s);
  const double bytes = (double)s.n * sizeof(float) / 1e9; /* GB per array pass */
  double sink = 0;
  r->copy_gbs = r->triad_gbs = r->read_gbs = 0;
  for (int i = 0; i < reps; i++) {
    const double copy = 2 * bytes / stream_copy(&s);
    const double triad = 3 * bytes / stream_triad(&s);
    const double read = bytes / stream_read(&s, &sink);
    if (copy > r->copy_gbs) r->copy_gbs = copy;
    if (triad > r->triad_gbs) r->triad_gbs = triad;
    if (read > r->read_gbs) r->read_gbs = read;
  }
  if (sink == 12345.678) fprintf(stderr, " "); /* never: uses the sums */
  free(s.a);
  free(s.b);
  free(s.c);
}

/* Measures peak and bandwidth on omp_get_max_threads() threads. */
static int floor_measure(int size, int stream_mib, int reps, floor_result *r, fb_status *st) {
  memset(r, 0, sizeof *r);
  r->threads = omp_get_max_threads();
  r->size = size;
  r->stream_mib = stream_mib;
  if ((r->gflops = sgemm_gflops(size, reps, st)) < 0) return -1;
  measure_stream(stream_mib, reps, r);
  return 0;
}

static void print_floor(const floor_result *r, int json) {
  if (!json) {
    fprintf(stderr, "fp32 peak   sgemm %dx%dx%d      %8.1f GFLOP/s  (%.1f per thread, %d "
            "thread(s))\n", r->size, r->size, r->size, r->gflops, r->gflops / r->threads,
            r->threads);
    fprintf(stderr, "bandwidth   copy  (3 x %d MiB)  %8.1f GB/s\n", r->stream_mib, r->copy_gbs);
    fprintf(stderr, "            triad              %8.1f GB/s\n", r->triad_gbs);
    fprintf(stderr, "            read               %8.1f GB/s\n", r->read_gbs);
    fprintf(stderr, "floor uses  %.1f GFLOP/s and %.1f GB/s (balance %.1f flop/byte)\n",
            r->gflops, floor_bandwidth_gbs(r), r->gflops / floor_bandwidth_gbs(r));
  }
  printf("{\"threads\": %d, \"sgemm_size\": %d, \"peak_gflops\": %.2f, \"peak_gflops_per_thread\": "
         "%.2f, \"stream_mib\": %d, \"copy_gbs\": %.2f, \"triad_gbs\": %.2f, \"read_gbs\": %.2f, "
         "\"bandwidth_gbs\": %.2f}\n", r->threads, r->size, r->gflops, r->gflops / r->threads,
         r->stream_mib, r->copy_gbs, r->triad_gbs, r->read_gbs, floor_bandwidth_gbs(r));
}

int bench_floor(int argc, char **argv) {
  int threads = 0, size = 2048, stream_mib = 64, reps = 5, json = 0;
  const arg_opt opts[] = {
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads (default: all)"},
      {"--size", ARG_INT, &size, 64, 8192, NULL, "sgemm M = N = K (default 2048)"},
      {"--stream-mib", ARG_INT, &stream_mib, 1, 4096, NULL,
       "MiB per bandwidth array, 3 arrays (default 64; keep it well above the caches)"},
      {"--reps", ARG_INT, &reps, 1, 1000, NULL, "timed repetitions, best kept (default 5)"},
      {"--json", ARG_FLAG, &json, 0, 0, NULL, "only the JSON line"},
  };
  const arg_spec spec = {"fbnet bench floor [--threads N] [--size 2048] [--json]",
                         "Measures the fp32 peak (a large sgemm through oneDNN) and the memory "
                         "bandwidth\n(STREAM-like copy/triad/read); prints a table and a JSON "
                         "line.",
                         opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (threads) omp_set_num_threads(threads);
  fb_status st = {0};
  floor_result r;
  if (floor_measure(size, stream_mib, reps, &r, &st)) {
    fprintf(stderr, "fbnet bench floor: error: %s\n", st.msg);
    return 1;
  }
  print_floor(&r, json);
  return 0;
}

int bench_floor_profile(const fb_net *net, int steps, double step_sec, double peak_gflops,
                        double bandwidth_gbs, int forward, int json) {
  fb_status st = {0};
  if (peak_gflops <= 0 || bandwidth_gbs <= 0) {
    floor_result r;
    fprintf(stderr, "fbnet bench: measuring the floor (sgemm 2048, 3 x 64 MiB stream)...\n");
    if (floor_measure(2048, 64, 3, &r, &st)) {
      fprintf(stderr, "fbnet bench: error: %s\n", st.msg);
      return 1;
    }
    if (peak_gflops <= 0) peak_gflops = r.gflops;
    if (bandwidth_gbs <= 0) bandwidth_gbs = floor_bandwidth_gbs(&r);
  }
  const fb_roofline roof = {peak_gflops * 1e9, bandwidth_gbs * 1e9};
  const unsigned fl = forward ? FB_PROFILE_FORWARD : 0;
  if (fb_profile_print(stderr, net, steps, step_sec, &roof, fl, 0, &st) ||
      (net->tasks & ~FB_TASK_CLS &&
       fb_profile_print(stderr, net, steps, step_sec, &roof, fl | FB_PROFILE_BY_PART, 0, &st)) ||
      (json && fb_profile_print(stdout, net, steps, step_sec, &roof, fl, 1, &st))) {
    fprintf(stderr, "fbnet bench: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}

