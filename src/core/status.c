#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fb_fail(fb_status *st, const char *fmt, ...) {
  if (st) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
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
