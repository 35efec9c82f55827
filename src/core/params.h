/* The parameter store: every trainable tensor, its gradient and optimizer
 * moments live in four parallel float buffers with one layout, so zeroing the
 * gradients is a memset, an optimizer is one loop, and (later) MPI gradient
 * averaging is one MPI_Allreduce over `grad`. Slots are registered while a
 * network is built, then fb_params_alloc() allocates and initialises them. */
#ifndef FB_CORE_PARAMS_H
#define FB_CORE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/op.h"

typedef struct fb_param {
  char name[96];
  fb_shape shape;
  size_t offset, numel;
  fb_param_group group;
  fb_param_init init;
  int fan_out; /* for FB_INIT_KAIMING_OUT */
} fb_param;

typedef struct fb_params {
  fb_param *p;
  int n, cap;
  size_t total;
  float *data, *grad, *m1, *m2; /* m1/m2: optimizer moments (momentum, Adam) */
  /* Supernets (NULL otherwise): used[i] = 0 when no active node uses slot i in
   * this step (a skipped block): the optimizer leaves it alone, as PyTorch's
   * optimizers skip parameters without a gradient; steps[i] counts the
   * updates of slot i (its AdamW bias correction, like PyTorch's per-parameter
   * step; saved in checkpoints). */
  uint8_t *used;
  float *steps;
} fb_params;

void fb_params_init(fb_params *s);
void fb_params_free(fb_params *s);
/* Registers a slot; returns its index. */
int fb_params_add(fb_params *s, const char *name, fb_shape shape, fb_param_group group,
                  fb_param_init init, int fan_out);
/* Allocates the buffers and initialises every slot from the seed. */
void fb_params_alloc(fb_params *s, uint64_t seed);
/* The two halves: the values (initialised), and the gradients and optimizer
 * moments (zero; a no-op when present). Forward-only graphs take the first
 * only: a third of the memory, and planning a network for a latency
 * measurement is mostly zeroing pages. */
void fb_params_alloc_values(fb_params *s, uint64_t seed, int init); /* init 0: all zero */
void fb_params_alloc_grads(fb_params *s);
static inline float *fb_param_data(const fb_params *s, int i) { return s->data + s->p[i].offset; }
static inline float *fb_param_grad(const fb_params *s, int i) { return s->grad + s->p[i].offset; }
void fb_params_zero_grad(fb_params *s);
int fb_params_find(const fb_params *s, const char *name);
/* Count of elements in trainable slots (weights + no-decay). */
size_t fb_params_trainable(const fb_params *s);

#endif
