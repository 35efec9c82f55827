/* The growing text buffer (strbuf.h). */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static void reserve(fb_strbuf *b, size_t more) {
  if (b->n + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (b->n + more + 1 > cap) cap *= 2;
  b->s = fb_xrealloc(b->s, cap);
  b->cap = cap;
}

void fb_sb_put(fb_strbuf *b, const char *s, size_t len) {
  reserve(b, len);
  memcpy(b->s + b->n, s, len);
  b->n += len;
  b->s[b->n] = 0;
}

void fb_sb_puts(fb_strbuf *b, const char *s) { fb_sb_put(b, s, strlen(s)); }

void fb_sb_printf(fb_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k <= 0) return;
  reserve(b, (size_t)k);
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

void fb_sb_json_string(fb_strbuf *b, const char *s) {
  fb_sb_put(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') {
      const char t[2] = {'\\', (char)*c};
      fb_sb_put(b, t, 2);
    } else if (*c < 0x20) {
      fb_sb_printf(b, "\\u%04x", *c);
    } else {
      fb_sb_put(b, (const char *)c, 1);
    }
  }
  fb_sb_put(b, "\"", 1);
}

void fb_sb_csv_field(fb_strbuf *b, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fb_sb_puts(b, s);
    return;
  }
  fb_sb_put(b, "\"", 1);
  for (const char *p = s; *p; p++) fb_sb_put(b, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
  fb_sb_put(b, "\"", 1);
}

const char *fb_sb_str(const fb_strbuf *b) { return b->s ? b->s : ""; }

void fb_sb_free(fb_strbuf *b) {
  free(b->s);
  b->s = NULL;
  b->n = b->cap = 0;
}
