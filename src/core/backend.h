/* The backend seam: how the executor (core/graph.c) reaches the kernels of an
 * op. A graph runs every node through its backend's forward and backward; the
 * op row (core/op.h) says what the op is and holds the CPU kernels (fast float
 * and double reference), a backend decides which kernel runs and on what
 * memory. The default, fb_backend_cpu, runs the rows' fast kernels in place;
 * src/backend/ref.c runs their double reference kernels on the same buffers
 * (tests compare a whole training step through both).
 *
 * A device backend (CUDA) is one more of these: a folder with its kernels,
 * looked up by op name or kind from its forward/backward. Host code reads and
 * writes node memory only through fb_graph_write_input / fb_graph_output
 * (core/graph.h), the points where such a backend stages data, and the
 * executor allocates every node buffer (activations, workspaces, the
 * activation and gradient arenas) through the backend's alloc / release.
 * The parameter store (values, gradients, optimizer moments) stays host
 * memory: the optimizers run on the host (see docs/design.md). */
#ifndef FB_CORE_BACKEND_H
#define FB_CORE_BACKEND_H

#include <stddef.h>

#include "core/op.h"

typedef struct fb_backend {
  const char *name;
  /* bytes of one workspace element (op->ws_size counts elements): the kernel's
   * element type, 4 for float kernels, 8 for double ones */
  size_t ws_elem_bytes;
  /* One node's forward: inputs in[0..a->n_in), parameters par[0..a->n_par)
   * (buffers such as BN running statistics may be updated), out written. */
  void (*forward)(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                  float *const *par, float *out, void *ws);
  /* Its backward: ACCUMULATES into din[k] and dpar[k] (NULL: not wanted). */
  void (*backward)(const fb_op *op, fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                   const float *const *par, const float *out, const float *dout,
                   float *const *din, float *const *dpar, const void *ws);
  /* Node memory of n floats, zeroed (NULL: host memory from fb_alloc_floats,
   * freed with free); release(NULL) is a no-op. */
  float *(*alloc)(size_t n);
  void (*release)(float *p);
} fb_backend;

/* The rows' fast float kernels (oneDNN, SIMD loops, OpenMP), in place. */
const fb_backend *fb_backend_cpu(void);

/* Node memory through b (host memory when b has no allocator). */
float *fb_backend_alloc(const fb_backend *b, size_t n);
void fb_backend_release(const fb_backend *b, float *p);

#endif
