/* The divergence guard (guard.h). */
#include "train/guard.h"

#include <math.h>

#include <stdio.h>

#include "core/status.h"

void fb_loss_guard_init(fb_loss_guard *g, double factor) {
  g->factor = factor;
  g->mean = 0;
  g->n = 0;
}

int fb_loss_guard_check(fb_loss_guard *g, double loss, double *ratio) {
  *ratio = 1;
  if (!isfinite(loss)) {
    *ratio = INFINITY;
    return 1;
  }
  if (g->factor > 0 && g->n >= 50 && g->mean > 0 && loss > g->factor * g->mean) {
    *ratio = loss / g->mean;
    return 1;
  }
  g->mean = g->n == 0 ? loss : 0.98 * g->mean + 0.02 * loss;
  g->n++;
  return 0;
}

int fb_diverged(const char *what, const char *where, const char *out_dir, fb_status *st) {
  return fb_fail_code(st, FB_E_DIVERGED, "%s at %s: the run diverged; it stopped before saving, so "
                 "%s/checkpoint.safetensors still holds the last good state: continue it with a "
                 "lower learning rate, '--resume --allow-changes --lr X'", what, where, out_dir);
}

int fb_loss_guard_step(fb_loss_guard *g, double loss, const char *where, const char *out_dir,
                       fb_status *st) {
  double ratio;
  if (!fb_loss_guard_check(g, loss, &ratio)) return 0;
  char what[160];
  if (isinf(ratio))
    snprintf(what, sizeof what, "loss %g (check the data if it happens at once)", loss);
  else
    snprintf(what, sizeof what, "loss %.4g, %.0fx its recent mean %.4g,", loss, ratio, g->mean);
  return fb_diverged(what, where, out_dir, st);
}
