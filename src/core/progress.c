/* Progress through the logger (src/core/progress.h). */
#include "core/progress.h"

#include <string.h>

void fb_progress_init(fb_progress *p, const fb_logger *lg) {
  memset(p, 0, sizeof *p);
  p->lg = lg && lg->fn ? lg : NULL;
}

int fb_progress_due(const fb_progress *p, double now, int force) {
  return p->lg && (force || now - p->last > p->lg->progress_every);
}

void fb_progress_show(fb_progress *p, double now, double frac, const char *text) {
  p->last = now;
  if (!p->lg) return;
  frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
  p->lg->fn(p->lg->ctx, FB_LOG_PROGRESS, frac, text);
  p->open = 1;
}

void fb_progress_end(fb_progress *p) {
  if (!p->open) return;
  p->lg->fn(p->lg->ctx, FB_LOG_PROGRESS_END, 1, "");
  p->open = 0;
}
