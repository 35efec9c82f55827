/* A growing text buffer: the one place the library builds text (JSON
 * headers, arch files, proxy manifests) before writing it out.
 *
 *   fb_strbuf b = {0};
 *   fb_sb_printf(&b, "{\"name\": ");
 *   fb_sb_json_string(&b, name);
 *   ... fb_write_file_atomic(path, b.s, b.n, st); fb_sb_free(&b);
 *
 * b.s is NUL-terminated once anything was added (NULL before). */
#ifndef FB_CORE_STRBUF_H
#define FB_CORE_STRBUF_H

#include <stddef.h>

typedef struct fb_strbuf {
  char *s;
  size_t n, cap; /* length (without the NUL), allocated bytes */
} fb_strbuf;

void fb_sb_put(fb_strbuf *b, const char *s, size_t len);
void fb_sb_puts(fb_strbuf *b, const char *s);
void fb_sb_printf(fb_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal: quotes, backslashes and control characters escaped */
void fb_sb_json_string(fb_strbuf *b, const char *s);
/* s as a CSV field: quoted (with "" for ") when it holds a comma, quote or newline */
void fb_sb_csv_field(fb_strbuf *b, const char *s);
/* The text ("" when empty). */
const char *fb_sb_str(const fb_strbuf *b);
void fb_sb_free(fb_strbuf *b);

#endif
