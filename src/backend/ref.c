/* The reference backend (ref.h). */
#include "backend/ref.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* Doubles of n floats (NULL stays NULL). */
static double *widen(const float *x, size_t n) {
  if (!x) return NULL;
  double *d = fb_xmalloc((n ? n : 1) * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static void narrow(float *x, const double *d, size_t n) {
  if (!x || !d) return;
  for (size_t i = 0; i < n; i++) x[i] = (float)d[i];
}

/* The double copies of one call's buffers. */
typedef struct ref_bufs {
  double *in[FB_MAX_IN], *par[FB_MAX_PAR], *din[FB_MAX_IN], *dpar[FB_MAX_PAR], *out, *dout;
} ref_bufs;

static void ref_bufs_free(ref_bufs *b, const fb_op_args *a) {
  for (int k = 0; k < a->n_in; k++) free(b->in[k]), free(b->din[k]);
  for (int k = 0; k < a->n_par; k++) free(b->par[k]), free(b->dpar[k]);
  free(b->out);
  free(b->dout);
}

static void widen_inputs(ref_bufs *b, const fb_op_args *a, const float *const *in,
                         const float *const *par) {
  for (int k = 0; k < a->n_in; k++) b->in[k] = widen(in[k], fb_numel(a->in[k]));
  for (int k = 0; k < a->n_par; k++) b->par[k] = widen(par[k], fb_numel(a->par[k]));
}

static void ref_forward(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a,
                        const float *const *in, float *const *par, float *out, void *ws) {
  (void)ctx;
  ref_bufs b;
  memset(&b, 0, sizeof b);
  widen_inputs(&b, a, in, (const float *const *)par);
  const size_t n = fb_numel(a->out);
  b.out = fb_xcalloc(n ? n : 1, sizeof *b.out);
  op->fwd_ref(a, (const double *const *)b.in, b.par, b.out, ws);
  narrow(out, b.out, n);
  for (int k = op->n_diff_par; k < a->n_par; k++) /* buffers: BN running statistics */
    narrow(par[k], b.par[k], fb_numel(a->par[k]));
  ref_bufs_free(&b, a);
}

static void ref_backward(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a,
                         const float *const *in, const float *const *par, const float *out,
                         const float *dout, float *const *din, float *const *dpar,
                         const void *ws) {
  (void)ctx;
  ref_bufs b;
  memset(&b, 0, sizeof b);
  widen_inputs(&b, a, in, par);
  const size_t n = fb_numel(a->out);
  b.out = widen(out, n);
  b.dout = widen(dout, n);
  for (int k = 0; k < a->n_in; k++) b.din[k] = widen(din[k], fb_numel(a->in[k]));
  for (int k = 0; k < a->n_par; k++) b.dpar[k] = dpar ? widen(dpar[k], fb_numel(a->par[k])) : NULL;
  op->bwd_ref(a, (const double *const *)b.in, (const double *const *)b.par, b.out, b.dout, b.din,
              b.dpar, ws);
  for (int k = 0; k < a->n_in; k++) narrow(din[k], b.din[k], fb_numel(a->in[k]));
  for (int k = 0; dpar && k < a->n_par; k++) narrow(dpar[k], b.dpar[k], fb_numel(a->par[k]));
  ref_bufs_free(&b, a);
}

const fb_backend *fb_backend_ref(void) {
  static const fb_backend ref = {.name = "reference (double)", .ws_elem_bytes = sizeof(double),
                                 .forward = ref_forward, .backward = ref_backward};
  return &ref;
}
