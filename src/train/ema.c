#include "train/ema.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

void fb_ema_init(fb_ema *e, const fb_params *s, float decay) {
  memset(e, 0, sizeof *e);
  e->total = s->total;
  e->decay = decay;
  e->shadow = fb_alloc_floats(s->total);
  if (s->data) memcpy(e->shadow, s->data, s->total * sizeof(float));
}

void fb_ema_free(fb_ema *e) {
  free(e->shadow);
  memset(e, 0, sizeof *e);
}

float fb_ema_decay_at(const fb_ema *e, long step) {
  if (step < 0) step = 0;
  double warm = (1.0 + (double)step) / (10.0 + (double)step);
  return warm < e->decay ? (float)warm : e->decay;
}

void fb_ema_update(fb_ema *e, const fb_params *s, long step) {
  const float d = fb_ema_decay_at(e, step), omd = 1.0f - d;
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < s->n; i++) {
    const fb_param *q = &s->p[i];
    float *a = e->shadow + q->offset;
    const float *w = s->data + q->offset;
    if (q->group == FB_PG_BUFFER && e->copy_buffers) {
      memcpy(a, w, q->numel * sizeof(float));
      continue;
    }
    for (size_t k = 0; k < q->numel; k++) a[k] = d * a[k] + omd * w[k];
  }
}

void fb_ema_swap(fb_ema *e, fb_params *s) {
  float *a = e->shadow, *w = s->data;
  const size_t n = e->total < s->total ? e->total : s->total;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t k = 0; k < n; k++) {
    float t = a[k];
    a[k] = w[k];
    w[k] = t;
  }
}
