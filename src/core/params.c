#include "core/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"

void fb_params_init(fb_params *s) { memset(s, 0, sizeof *s); }

void fb_params_free(fb_params *s) {
  free(s->p);
  free(s->data);
  free(s->grad);
  free(s->m1);
  free(s->m2);
  free(s->used);
  free(s->steps);
  memset(s, 0, sizeof *s);
}

int fb_params_add(fb_params *s, const char *name, fb_shape shape, fb_param_group group,
                  fb_param_init init, int fan_out) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->p = fb_xrealloc(s->p, (size_t)s->cap * sizeof *s->p);
  }
  fb_param *p = &s->p[s->n];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->shape = shape;
  p->numel = fb_numel(shape);
  p->offset = s->total;
  /* keep every slot 64-byte aligned for vector loads */
  s->total += (p->numel + 15) / 16 * 16;
  p->group = group;
  p->init = init;
  p->fan_out = fan_out;
  return s->n++;
}

static void init_slot(const fb_param *p, float *x, fb_rng *rng) {
  switch (p->init) {
    case FB_INIT_ZERO: break;
    case FB_INIT_ONE:
      for (size_t i = 0; i < p->numel; i++) x[i] = 1.0f;
      break;
    case FB_INIT_KAIMING_OUT: {
      double std = sqrt(2.0 / (p->fan_out > 0 ? p->fan_out : 1));
      for (size_t i = 0; i < p->numel; i++) x[i] = (float)(std * fb_rng_normal(rng));
      break;
    }
    case FB_INIT_LINEAR:
      for (size_t i = 0; i < p->numel; i++) x[i] = (float)(0.01 * fb_rng_normal(rng));
      break;
  }
}

void fb_params_alloc_grads(fb_params *s) {
  if (s->grad) return;
  s->grad = fb_alloc_floats(s->total);
  s->m1 = fb_alloc_floats(s->total);
  s->m2 = fb_alloc_floats(s->total);
}

void fb_params_alloc(fb_params *s, uint64_t seed) {
  fb_params_alloc_values(s, seed, 1);
  fb_params_alloc_grads(s);
}

void fb_params_alloc_values(fb_params *s, uint64_t seed, int init) {
  s->data = fb_alloc_floats(s->total);
  if (!init) return;
  fb_rng rng;
  fb_rng_seed(&rng, seed);
  for (int i = 0; i < s->n; i++) init_slot(&s->p[i], s->data + s->p[i].offset, &rng);
}

void fb_params_zero_grad(fb_params *s) { memset(s->grad, 0, s->total * sizeof(float)); }

int fb_params_find(const fb_params *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->p[i].name, name) == 0) return i;
  return -1;
}

size_t fb_params_trainable(const fb_params *s) {
  size_t n = 0;
  for (int i = 0; i < s->n; i++)
    if (s->p[i].group != FB_PG_BUFFER) n += s->p[i].numel;
  return n;
}
