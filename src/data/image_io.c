/* Image files through stb: PNG/JPEG decoding with integrity checks that stb
 * itself does not make (stb decodes a truncated file partially and returns
 * garbage rows), and atomic PNG/JPEG writing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#include <stb_image.h>
/* The JPEG bit writer shifts signed ints past their range (harmless with
 * two's complement, but undefined): wrapping semantics make it defined and
 * keep UBSan builds quiet. */
#pragma GCC push_options
#pragma GCC optimize("wrapv")
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC pop_options
#pragma GCC diagnostic pop

/* Larger files are refused before reading (a 16k x 16k RGB PNG is ~800 MB raw). */
#define MAX_FILE_BYTES ((size_t)1 << 30)

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Walks the PNG chunk list: every chunk must lie inside the file with a
 * correct CRC, and the list must end with IEND. */
static int png_check(const char *path, const unsigned char *b, size_t len, fb_status *st) {
  size_t pos = 8;
  while (pos + 12 <= len) {
    uint32_t clen = be32(b + pos);
    char type[5];
    for (int i = 0; i < 4; i++) {
      unsigned char ch = b[pos + 4 + i];
      type[i] = (ch >= 33 && ch < 127) ? (char)ch : '?';
    }
    type[4] = 0;
    if ((size_t)clen > len - pos - 12)
      return fb_fail(st,
                     "%s: truncated PNG: chunk '%s' at byte %zu needs %zu bytes, only %zu present",
                     path, type, pos, (size_t)clen + 12, len - pos);
    uint32_t crc = (uint32_t)crc32(0L, b + pos + 4, (uInt)clen + 4);
    if (crc != be32(b + pos + 8 + clen))
      return fb_fail(st, "%s: corrupt PNG: CRC mismatch in chunk '%s' at byte %zu", path, type,
                     pos);
    if (memcmp(type, "IEND", 4) == 0) return 0;
    pos += 12 + (size_t)clen;
  }
  return fb_fail(st, "%s: truncated PNG: file ends after %zu bytes without an IEND chunk", path,
                 len);
}

/* A JPEG ends with the EOI marker FF D9 (possibly followed by a little padding);
 * inside entropy-coded data FF is always stuffed, so FF D9 near the end means
 * the scan data is complete. */
static int jpeg_check(const char *path, const unsigned char *b, size_t len, fb_status *st) {
  size_t lo = len > 4096 ? len - 4096 : 2;
  for (size_t i = len; i >= lo + 2; i--)
    if (b[i - 2] == 0xff && b[i - 1] == 0xd9) return 0;
  return fb_fail(st, "%s: truncated JPEG: no end-of-image marker (FF D9) at the end of the file",
                 path);
}

static int decode(const char *path, int want_c, int is_mask, uint8_t **px, int *h, int *w, int *c,
                  fb_status *st) {
  if (want_c < 0 || want_c > 3 || want_c == 2)
    return fb_fail(st, "%s: requested %d channels (allowed: 0 = as stored, 1, 3)", path, want_c);
  size_t len = 0;
  unsigned char *buf = (unsigned char *)fb_read_file(path, MAX_FILE_BYTES, &len, st);
  if (!buf) return -1;
  if (len == 0) {
    free(buf);
    return fb_fail(st, "%s: empty file", path);
  }
  if (len > (size_t)0x7fffffff) { /* cannot happen with MAX_FILE_BYTES, keeps int casts safe */
    free(buf);
    return fb_fail(st, "%s: file too large", path);
  }
  int rc = 0;
  if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
    rc = png_check(path, buf, len, st);
  else if (len >= 2 && buf[0] == 0xff && buf[1] == 0xd8)
    rc = jpeg_check(path, buf, len, st);
  else if (is_mask)
    rc = fb_fail(st, "%s: not a PNG file (masks must be 8-bit grey PNG)", path);
  if (rc) {
    free(buf);
    return -1;
  }
  int iw = 0, ih = 0, comp = 0;
  if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp)) {
    const char *why = stbi_failure_reason();
    free(buf);
    return fb_fail(st, "%s: cannot decode image (%s)", path, why ? why : "unknown format");
  }
  if (is_mask) {
    if (comp != 1 || stbi_is_16_bit_from_memory(buf, (int)len)) {
      free(buf);
      return fb_fail(st,
                     "%s: mask must be an 8-bit single-channel PNG (found %d channel%s%s)", path,
                     comp, comp == 1 ? "" : "s", comp == 1 ? ", 16-bit" : "");
    }
  }
  int req = want_c ? want_c : (comp <= 2 ? 1 : 3);
  int fw = 0, fh = 0, fc = 0;
  stbi_uc *data = stbi_load_from_memory(buf, (int)len, &fw, &fh, &fc, req);
  free(buf);
  if (!data) {
    const char *why = stbi_failure_reason();
    return fb_fail(st, "%s: cannot decode image (%s)", path, why ? why : "unknown reason");
  }
  size_t n = (size_t)fw * (size_t)fh * (size_t)req;
  uint8_t *out = fb_xmalloc(n);
  memcpy(out, data, n);
  stbi_image_free(data);
  *px = out;
  *h = fh;
  *w = fw;
  *c = req;
  return 0;
}

int fb_image_read(const char *path, int want_c, uint8_t **px, int *h, int *w, int *c,
                  fb_status *st) {
  return decode(path, want_c, 0, px, h, w, c, st);
}

/* Reads an 8-bit single-channel PNG without any conversion (a colour or
 * 16-bit mask would change its class values when converted, so it is an error). */
int fb_mask_read(const char *path, uint8_t **mask, int *h, int *w, fb_status *st) {
  int c = 0;
  return decode(path, 1, 1, mask, h, w, &c, st);
}

/* The encoded file, grown in memory. */
typedef struct sink {
  unsigned char *p;
  size_t n, cap;
} sink;

static void sink_write(void *ctx, void *data, int size) {
  sink *s = ctx;
  if (size <= 0) return;
  if (s->n + (size_t)size > s->cap) {
    while (s->n + (size_t)size > s->cap) s->cap = s->cap ? 2 * s->cap : (size_t)1 << 16;
    s->p = fb_xrealloc(s->p, s->cap);
  }
  memcpy(s->p + s->n, data, (size_t)size);
  s->n += (size_t)size;
}

/* kind 'p': PNG, 'j': JPEG (quality 95). Encodes in memory, then writes
 * PATH.tmp and renames it over path. */
static int write_image(const char *path, const uint8_t *px, int h, int w, int c, int kind,
                       fb_status *st) {
  if (!px || h <= 0 || w <= 0 || (c != 1 && c != 3 && c != 4 && !(kind == 'p' && c == 2)))
    return fb_fail(st, "%s: cannot write a %dx%d image with %d channels", path, w, h, c);
  sink s = {NULL, 0, 0};
  int ok = kind == 'p' ? stbi_write_png_to_func(sink_write, &s, w, h, c, px, w * c)
                       : stbi_write_jpg_to_func(sink_write, &s, w, h, c, px, 95);
  int rc = ok ? fb_write_file_atomic(path, s.p, s.n, st)
              : fb_fail(st, "%s: write failed (encoder error)", path);
  free(s.p);
  return rc;
}

int fb_png_write(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st) {
  return write_image(path, px, h, w, c, 'p', st);
}

/* JPEG writer (quality 95); used by tests and by demo data that wants JPEG. */
int fb_jpg_write(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st) {
  return write_image(path, px, h, w, c, 'j', st);
}

int fb_mask_write(const char *path, const uint8_t *mask, int h, int w, fb_status *st) {
  return write_image(path, mask, h, w, 1, 'p', st);
}
