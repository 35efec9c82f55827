/* The CPU backend: each op row's fast float kernels (backend.h). */
#include "core/backend.h"

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

const fb_backend *fb_backend_cpu(void) {
  static const fb_backend cpu = {.name = "cpu", .ws_elem_bytes = sizeof(float),
                                 .forward = cpu_forward, .backward = cpu_backward};
  return &cpu;
}
