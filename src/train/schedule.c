#include "train/schedule.h"

#include <math.h>

#include "core/status.h"

int fb_schedule_check(const fb_schedule *s, fb_status *st) {
  if (!(s->base_lr >= 0.0f)) return fb_fail(st, "schedule: base_lr %g < 0", (double)s->base_lr);
  if (s->warmup_steps < 0) return fb_fail(st, "schedule: warmup_steps %ld < 0", s->warmup_steps);
  if (s->total_steps < s->warmup_steps)
    return fb_fail(st, "schedule: total_steps %ld < warmup_steps %ld", s->total_steps,
                   s->warmup_steps);
  if (!(s->final_frac >= 0.0f && s->final_frac <= 1.0f))
    return fb_fail(st, "schedule: final_frac %g outside [0, 1]", (double)s->final_frac);
  return 0;
}

float fb_lr_at(const fb_schedule *s, long step) {
  const double base = s->base_lr, fin = base * s->final_frac;
  if (step < 0) step = 0;
  if (step < s->warmup_steps) return (float)(base * (double)(step + 1) / (double)s->warmup_steps);
  if (step >= s->total_steps) return (float)fin;
  double t = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
  return (float)(fin + (base - fin) * 0.5 * (1.0 + cos(M_PI * t)));
}
