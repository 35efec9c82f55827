/* Progress of long runs (training, search) through the caller's logger
 * (fbnet.h): each line offered at most every lg->progress_every seconds goes
 * to the logger as FB_LOG_PROGRESS with the fraction done; fb_progress_end
 * sends FB_LOG_PROGRESS_END once after the last one, so that a display which
 * redraws one line in place (the CLI's bar, tools/term_log.c) can end it.
 * The library itself never prints. */
#ifndef FB_CORE_PROGRESS_H
#define FB_CORE_PROGRESS_H

#include "fbnet.h"

typedef struct fb_progress {
  const fb_logger *lg;
  int open;    /* a progress message was sent since the last end */
  double last; /* time of the last one (fb_now_sec) */
} fb_progress;

void fb_progress_init(fb_progress *p, const fb_logger *lg);
/* Whether a line is due at time now (always when force); never without a logger. */
int fb_progress_due(const fb_progress *p, double now, int force);
/* Sends text with the fraction done (0..1) and records now as the last time. */
void fb_progress_show(fb_progress *p, double now, double frac, const char *text);
/* Ends the progress display (when anything was shown). */
void fb_progress_end(fb_progress *p);

#endif
