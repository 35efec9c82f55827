/* The CLI's stderr logger with the progress bar (term_log.h). */
#include "term_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum { BAR_CELLS = 20 };

typedef struct term {
  FILE *f;
  int tty;  /* 1: the in-place bar */
  int open; /* a bar line is on screen without its newline */
} term;

static int columns(FILE *f) {
  struct winsize w;
  if (ioctl(fileno(f), TIOCGWINSZ, &w) == 0 && w.ws_col >= 40) return w.ws_col;
  return 100;
}

static void end_bar(term *t) {
  if (!t->open) return;
  fputc('\n', t->f);
  fflush(t->f);
  t->open = 0;
}

static void draw(term *t, double frac, const char *text) {
  char bar[BAR_CELLS + 1];
  const int full = (int)(frac * BAR_CELLS + 0.5);
  for (int i = 0; i < BAR_CELLS; i++) bar[i] = i < full ? '#' : '.';
  bar[BAR_CELLS] = 0;
  /* the line must not wrap, or \r would redraw only its last row */
  const int room = columns(t->f) - BAR_CELLS - 9;
  fprintf(t->f, "\r[%s] %3.0f%% %.*s\033[K", bar, 100 * frac, room > 0 ? room : 0, text);
  fflush(t->f);
  t->open = 1;
}

static void sink(void *ctx, fb_log_level level, double frac, const char *text) {
  term *t = ctx;
  if (level == FB_LOG_PROGRESS_END) {
    end_bar(t);
  } else if (level == FB_LOG_PROGRESS && t->tty) {
    draw(t, frac, text);
  } else if (level == FB_LOG_RESULT) {
    end_bar(t);
    fputs(text, stdout);
    fflush(stdout);
  } else {
    end_bar(t);
    fprintf(t->f, "%s\n", text);
  }
}

/* The CLI's one terminal: process state of the tools, not of the library. */
static term the_term;
static fb_logger the_logger;

const fb_logger *tool_logger(void) {
  if (!the_logger.fn) {
    the_term.f = stderr;
    const char *mode = getenv("FBNET_PROGRESS"), *tname = getenv("TERM");
    if (mode && strcmp(mode, "bar") == 0) the_term.tty = 1;
    else if (mode && strcmp(mode, "lines") == 0) the_term.tty = 0;
    else the_term.tty = isatty(fileno(stderr)) && !(tname && strcmp(tname, "dumb") == 0);
    the_logger = (fb_logger){.fn = sink, .ctx = &the_term,
                             .progress_every = the_term.tty ? 0.2 : 10.0};
  }
  return &the_logger;
}

void tool_logger_end(void) { end_bar(&the_term); }
