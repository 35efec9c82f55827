#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vfail(fb_status *st, fb_code code, const char *fmt, va_list ap) {
  if (!st) return -1;
  vsnprintf(st->msg, sizeof st->msg, fmt, ap);
  st->code = code;
  return -1;
}

int fb_fail(fb_status *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const fb_code code = strncmp(fmt, "internal:", 9) == 0 ? FB_E_INTERNAL : FB_E_INPUT;
  vfail(st, code, fmt, ap);
  va_end(ap);
  return -1;
}

int fb_fail_code(fb_status *st, fb_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(st, code, fmt, ap);
  va_end(ap);
  return -1;
}

int fb_fail_io(fb_status *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(st, FB_E_IO, fmt, ap);
  va_end(ap);
  return -1;
}

void fb_log(const fb_logger *lg, fb_log_level level, const char *fmt, ...) {
  if (!lg || !lg->fn) return;
  char line[1024], *text = line;
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  const int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof line && (text = malloc((size_t)n + 1))) /* a long result text */
    vsnprintf(text, (size_t)n + 1, fmt, again);
  va_end(again);
  lg->fn(lg->ctx, level, 0, text ? text : line);
  if (text != line) free(text);
}

static void die_oom(size_t bytes) {
  fprintf(stderr, "fbnet: out of memory allocating %zu bytes\n", bytes);
  exit(3);
}

void *fb_xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) die_oom(bytes);
  return p;
}

void *fb_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) die_oom(n * size);
  return p;
}

void *fb_xrealloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes ? bytes : 1);
  if (!q) die_oom(bytes);
  return q;
}

static void *aligned_zeroed(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) die_oom(bytes);
  memset(p, 0, rounded ? rounded : 64);
  return p;
}

float *fb_alloc_floats(size_t n) { return aligned_zeroed(n * sizeof(float)); }
double *fb_alloc_doubles(size_t n) { return aligned_zeroed(n * sizeof(double)); }

char *fb_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fb_xmalloc(n);
  memcpy(p, s, n);
  return p;
}
