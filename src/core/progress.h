/* Progress of long runs (training, search) on stderr: on a terminal one line
 * that updates in place, a bar and the text ("[#####.....]  42% epoch 3/12
 * ..."), redrawn at most every 0.2 s; otherwise (a log file, a pipe) plain
 * lines, one every 10 s, as before. FBNET_PROGRESS=lines forces plain lines,
 * FBNET_PROGRESS=bar the bar. Anything else printed to the stream first calls
 * fb_progress_end so that it starts on its own line. */
#ifndef FB_CORE_PROGRESS_H
#define FB_CORE_PROGRESS_H

#include <stdio.h>

typedef struct fb_progress {
  FILE *f;
  int tty;     /* 1: the in-place bar */
  int open;    /* a bar line is on screen without its newline */
  double last; /* time of the last line drawn (fb_now_sec) */
} fb_progress;

void fb_progress_init(fb_progress *p, FILE *f);
/* Whether a line is due at time now (always when force). */
int fb_progress_due(const fb_progress *p, double now, int force);
/* Draws text with the fraction done (0..1) and records now as the last line. */
void fb_progress_show(fb_progress *p, double now, double frac, const char *text);
/* Ends an open bar line with its newline. */
void fb_progress_end(fb_progress *p);

#endif
