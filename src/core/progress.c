/* Progress lines and the in-place bar (src/core/progress.h). */
#include "core/progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum { BAR_CELLS = 20 };

void fb_progress_init(fb_progress *p, FILE *f) {
  memset(p, 0, sizeof *p);
  p->f = f;
  const char *mode = getenv("FBNET_PROGRESS");
  const char *term = getenv("TERM");
  if (mode && strcmp(mode, "bar") == 0) p->tty = 1;
  else if (mode && strcmp(mode, "lines") == 0) p->tty = 0;
  else p->tty = isatty(fileno(f)) && !(term && strcmp(term, "dumb") == 0);
}

int fb_progress_due(const fb_progress *p, double now, int force) {
  return force || now - p->last > (p->tty ? 0.2 : 10.0);
}

static int columns(FILE *f) {
  struct winsize w;
  if (ioctl(fileno(f), TIOCGWINSZ, &w) == 0 && w.ws_col >= 40) return w.ws_col;
  return 100;
}

void fb_progress_show(fb_progress *p, double now, double frac, const char *text) {
  p->last = now;
  if (!p->tty) {
    fprintf(p->f, "%s\n", text);
    return;
  }
  frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
  char bar[BAR_CELLS + 1];
  const int full = (int)(frac * BAR_CELLS + 0.5);
  for (int i = 0; i < BAR_CELLS; i++) bar[i] = i < full ? '#' : '.';
  bar[BAR_CELLS] = 0;
  /* the line must not wrap, or \r would redraw only its last row */
  const int room = columns(p->f) - BAR_CELLS - 9;
  fprintf(p->f, "\r[%s] %3.0f%% %.*s\033[K", bar, 100 * frac, room > 0 ? room : 0, text);
  fflush(p->f);
  p->open = 1;
}

void fb_progress_end(fb_progress *p) {
  if (!p->open) return;
  fputc('\n', p->f);
  fflush(p->f);
  p->open = 0;
}
