/* Data-parallel helpers over MPI (dist.h). The only file that includes mpi.h. */
#include "dist/dist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/status.h"

#ifdef FB_HAVE_MPI
#include <mpi.h>
#endif

int fb_dist_launched(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int fb_dist_launched_size(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return 1;
}

/* FNV-1a of the text: what ranks compare. */
static uint64_t text_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; s && *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

#ifdef FB_HAVE_MPI

int fb_dist_available(void) { return 1; }

static int mpi_fail(fb_status *st, const char *what, int err) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, msg, &len);
  return fb_fail(st, "MPI: %s failed: %s", what, msg);
}

int fb_dist_start(int *argc, char ***argv, fb_dist *d, fb_status *st) {
  *d = (fb_dist){.rank = 0, .size = 1};
  if (!fb_dist_launched()) return 0;
  int err = MPI_Init(argc, argv);
  if (err != MPI_SUCCESS) return fb_fail(st, "MPI: MPI_Init failed (error %d)", err);
  d->mpi = 1;
  /* errors come back as codes, never as an abort inside MPI */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  return 0;
}

void fb_dist_stop(fb_dist *d) {
  if (d->mpi) MPI_Finalize();
  d->mpi = 0;
}

void fb_dist_abort(const fb_dist *d, int code) {
  if (d && d->mpi && d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int fb_dist_mean(const fb_dist *d, float *x, size_t n, fb_status *st) {
  if (!d || d->size <= 1 || n == 0) return 0;
  if (n > (size_t)INT32_MAX) return fb_fail(st, "MPI: %zu floats in one allreduce", n);
  int err = MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  if (err != MPI_SUCCESS) return mpi_fail(st, "the allreduce of the gradients", err);
  const float inv = 1.0f / (float)d->size;
  for (size_t i = 0; i < n; i++) x[i] *= inv;
  return 0;
}

int fb_dist_allgather(const fb_dist *d, const double *mine, size_t n, double *all,
                      fb_status *st) {
  if (!d || d->size <= 1) {
    memmove(all, mine, n * sizeof *all);
    return 0;
  }
  if (n > (size_t)INT32_MAX) return fb_fail(st, "MPI: %zu doubles in one allgather", n);
  int err = MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
  if (err != MPI_SUCCESS) return mpi_fail(st, "the allgather of the sampled architectures", err);
  return 0;
}

int fb_dist_max_bytes(const fb_dist *d, unsigned char *x, size_t n, fb_status *st) {
  if (!d || d->size <= 1 || n == 0) return 0;
  if (n > (size_t)INT32_MAX) return fb_fail(st, "MPI: %zu bytes in one allreduce", n);
  int err = MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_UNSIGNED_CHAR, MPI_MAX, MPI_COMM_WORLD);
  if (err != MPI_SUCCESS) return mpi_fail(st, "the allreduce of the used parameters", err);
  return 0;
}

int fb_dist_same(const fb_dist *d, const char *what, const char *text, fb_status *st) {
  if (!d || d->size <= 1) return 0;
  unsigned long long mine = text_hash(text), first = mine;
  int err = MPI_Bcast(&first, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  if (err != MPI_SUCCESS) return mpi_fail(st, "the configuration check", err);
  int differs = mine != first ? d->rank : d->size, lowest = d->size;
  err = MPI_Allreduce(&differs, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (err != MPI_SUCCESS) return mpi_fail(st, "the configuration check", err);
  if (lowest < d->size)
    return fb_fail(st, "rank %d of %d runs with another %s than rank 0: start every rank with "
                   "the same options and data", lowest, d->size, what);
  return 0;
}

#else /* no MPI built in: one process */

int fb_dist_available(void) { return 0; }

int fb_dist_start(int *argc, char ***argv, fb_dist *d, fb_status *st) {
  (void)argc;
  (void)argv;
  *d = (fb_dist){.rank = 0, .size = 1};
  if (fb_dist_launched_size() > 1)
    return fb_fail(st, "started by mpirun, but this fbnet was built without MPI: install Open "
                   "MPI (scripts/install_deps.sh) and rebuild with 'make MPI=1'");
  return 0;
}

void fb_dist_stop(fb_dist *d) { d->mpi = 0; }
void fb_dist_abort(const fb_dist *d, int code) {
  (void)d;
  (void)code;
}

int fb_dist_mean(const fb_dist *d, float *x, size_t n, fb_status *st) {
  (void)d;
  (void)x;
  (void)n;
  (void)st;
  return 0;
}

int fb_dist_allgather(const fb_dist *d, const double *mine, size_t n, double *all,
                      fb_status *st) {
  (void)d;
  (void)st;
  memmove(all, mine, n * sizeof *all);
  return 0;
}

int fb_dist_max_bytes(const fb_dist *d, unsigned char *x, size_t n, fb_status *st) {
  (void)d;
  (void)x;
  (void)n;
  (void)st;
  return 0;
}

int fb_dist_same(const fb_dist *d, const char *what, const char *text, fb_status *st) {
  (void)d;
  (void)what;
  (void)st;
  (void)text_hash(text);
  return 0;
}

#endif

int fb_dist_grad_mean(void *ctx, fb_params *p, fb_status *st) {
  fb_dist *d = ctx;
  if (!d || d->size <= 1) return 0;
  const double t0 = fb_now_sec();
  const int rc = fb_dist_mean(d, p->grad, p->total, st);
  d->reduce_sec += fb_now_sec() - t0;
  d->reduce_bytes += (double)p->total * sizeof(float);
  d->reduce_calls++;
  return rc;
}

int fb_dist_buffers_mean(const fb_dist *d, fb_params *p, fb_status *st) {
  if (!d || d->size <= 1) return 0;
  for (int i = 0; i < p->n; i++)
    if (p->p[i].group == FB_PG_BUFFER &&
        fb_dist_mean(d, fb_param_data(p, i), p->p[i].numel, st))
      return -1;
  return 0;
}
