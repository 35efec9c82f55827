/* Data-parallel training over MPI (Open MPI): the processes ("ranks") of one
 * run, the averaging of gradients and BN statistics, and the check that every
 * rank runs the same configuration.
 *
 * A run is distributed when fbnet was built with MPI (make MPI=1, or found by
 * the Makefile) and launched by mpirun; otherwise it is rank 0 of 1 and every
 * call here is a no-op. Nothing here prints or exits: errors come back in
 * fb_status, and the CLI aborts the job (fb_dist_abort) so that no rank waits
 * forever for one that failed. */
#ifndef FB_DIST_DIST_H
#define FB_DIST_DIST_H

#include <stddef.h>

#include "core/params.h"
#include "fbnet.h"

typedef struct fb_dist {
  int rank, size; /* this process, and how many there are (1: not distributed) */
  int mpi;        /* 1: MPI was started by fb_dist_start and must be finalised */
  /* what fb_dist_grad_mean did (for the run's summary and benchmarks) */
  long reduce_calls;
  double reduce_bytes, reduce_sec;
} fb_dist;

/* 1 when this binary can run distributed (built with MPI). */
int fb_dist_available(void);
/* 1 when the environment says mpirun (or another MPI launcher) started us. */
int fb_dist_launched(void);
/* The number of ranks the launcher started (1 when not launched). */
int fb_dist_launched_size(void);
/* Starts MPI when launched by mpirun and MPI is built in; else d = rank 0 of 1.
 * Launched by mpirun without MPI built in: an error saying how to build it. */
int fb_dist_start(int *argc, char ***argv, fb_dist *d, fb_status *st);
void fb_dist_stop(fb_dist *d);
/* Ends every rank of the job with `code` (after an error on this one). */
void fb_dist_abort(const fb_dist *d, int code);

/* x (n floats) becomes its mean over the ranks, in place (one allreduce). */
int fb_dist_mean(const fb_dist *d, float *x, size_t n, fb_status *st);
/* all (size x n doubles) = every rank's `mine` (n doubles), in rank order. */
int fb_dist_allgather(const fb_dist *d, const double *mine, size_t n, double *all,
                      fb_status *st);
/* x (n bytes) becomes its maximum over the ranks (e.g. 0/1 flags: their OR). */
int fb_dist_max_bytes(const fb_dist *d, unsigned char *x, size_t n, fb_status *st);
/* fb_grad_reduce_fn (train/step.h): the gradients' mean over the ranks, the
 * whole store in one fused buffer. ctx: the fb_dist. */
int fb_dist_grad_mean(void *ctx, fb_params *p, fb_status *st);
/* The BN running statistics (FB_PG_BUFFER slots) averaged over the ranks:
 * before a checkpoint or an evaluation every rank holds the same model. */
int fb_dist_buffers_mean(const fb_dist *d, fb_params *p, fb_status *st);
/* Every rank passes its own `text` (e.g. the run's configuration): an error
 * on every rank naming the first rank whose text differs from rank 0's. */
int fb_dist_same(const fb_dist *d, const char *what, const char *text, fb_status *st);

#endif
