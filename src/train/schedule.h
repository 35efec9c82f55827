/* Learning-rate schedule: linear warm-up, then cosine decay to a final value.
 *
 * With W = warmup_steps, T = total_steps, lr0 = base_lr, lrf = lr0 * final_frac
 * and `step` the 0-based index of the update about to be made:
 *   step <  W:      lr0 * (step + 1) / W        (reaches lr0 on the last warm-up step)
 *   W <= step < T:  lrf + (lr0 - lrf) * (1 + cos(pi * (step - W) / (T - W))) / 2
 *   step >= T:      lrf
 * so lr(W) = lr0, lr(W + (T - W) / 2) = (lr0 + lrf) / 2 and lr(T) = lrf. */
#ifndef FB_TRAIN_SCHEDULE_H
#define FB_TRAIN_SCHEDULE_H

#include "fbnet.h"

typedef struct fb_schedule {
  float base_lr;
  long warmup_steps; /* 0: no warm-up */
  long total_steps;  /* end of the cosine (>= warmup_steps) */
  float final_frac;  /* final lr as a fraction of base_lr (0: decay to 0) */
} fb_schedule;

int fb_schedule_check(const fb_schedule *s, fb_status *st);
float fb_lr_at(const fb_schedule *s, long step);

#endif
