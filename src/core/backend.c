/* The CPU backend: each op row's fast float kernels (backend.h). */
#include "core/backend.h"

#include <stdlib.h>

#include "core/status.h"

static void cpu_forward(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a,
                        const float *const *in, float *const *par, float *out, void *ws) {
  op->fwd(ctx, a, in, par, out, ws);
}

static void cpu_backward(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a,
                         const float *const *in, const float *const *par, const float *out,
                         const float *dout, float *const *din, float *const *dpar,
                         const void *ws) {
  op->bwd(ctx, a, in, par, out, dout, din, dpar, ws);
}

static void free_floats(float *p) { free(p); }

const fb_backend *fb_backend_cpu(void) {
  static const fb_backend cpu = {.name = "cpu", .ws_elem_bytes = sizeof(float),
                                 .forward = cpu_forward, .backward = cpu_backward,
                                 .alloc = fb_alloc_floats, .release = free_floats};
  return &cpu;
}

float *fb_backend_alloc(const fb_backend *b, size_t n) {
  return b && b->alloc ? b->alloc(n) : fb_alloc_floats(n);
}

void fb_backend_release(const fb_backend *b, float *p) {
  if (!p) return;
  if (b && b->release) b->release(p);
  else free(p);
}
