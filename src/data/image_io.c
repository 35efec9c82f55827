/* Image files: PNG through libpng, JPEG through libjpeg-turbo (the decoders
 * distributions keep patched for hostile input), with integrity checks made
 * before decoding (chunk CRCs and IEND for PNG, the end-of-image marker for
 * JPEG: a truncated file is an error, not a partial image), limits on the
 * declared size, and atomic PNG/JPEG writing. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
/* jpeglib.h needs size_t and FILE first */
#include <jpeglib.h>
#include <png.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"

/* Declared sizes above this many pixels are refused before any allocation. */
#define MAX_PIXELS ((size_t)1 << 28)

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

/* ---- PNG (libpng's simplified API) ------------------------------------- */

static int decode_png(const char *path, const unsigned char *buf, size_t len, int want_c,
                      int is_mask, uint8_t **px, int *h, int *w, int *c, fb_status *st) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&im, buf, len))
    return fb_fail(st, "%s: cannot decode PNG (%s)", path, im.message);
  const int color = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
  if (is_mask && (color || (im.format & (PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_LINEAR)))) {
    const int ch = PNG_IMAGE_SAMPLE_CHANNELS(im.format);
    png_image_free(&im);
    return fb_fail(st, "%s: mask must be an 8-bit single-channel PNG (found %d channel%s%s%s)",
                   path, ch, ch == 1 ? "" : "s", im.format & PNG_FORMAT_FLAG_LINEAR ? ", 16-bit" : "",
                   im.format & PNG_FORMAT_FLAG_COLORMAP ? ", a palette" : "");
  }
  if ((size_t)im.width * im.height > MAX_PIXELS) {
    png_image_free(&im);
    return fb_fail(st, "%s: %ux%u pixels, more than this reader accepts", path, im.width,
                   im.height);
  }
  const int req = want_c ? want_c : (color ? 3 : 1);
  im.format = req == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  uint8_t *out = fb_xmalloc(PNG_IMAGE_SIZE(im));
  if (!png_image_finish_read(&im, NULL, out, 0, NULL)) {
    free(out);
    const int rc = fb_fail(st, "%s: cannot decode PNG (%s)", path, im.message);
    png_image_free(&im);
    return rc;
  }
  *px = out, *h = (int)im.height, *w = (int)im.width, *c = req;
  png_image_free(&im);
  return 0;
}

/* ---- JPEG (libjpeg-turbo) ------------------------------------------------ */

typedef struct jpeg_err {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jump, 1);
}

/* Warnings (corrupt data the decoder would skip) are errors here. */
static void jpeg_warn(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);
}

static int decode_jpeg(const char *path, const unsigned char *buf, size_t len, int want_c,
                       uint8_t **px, int *h, int *w, int *c, fb_status *st) {
  struct jpeg_decompress_struct d;
  jpeg_err e;
  uint8_t *volatile out = NULL;
  memset(&d, 0, sizeof d);
  d.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  e.mgr.emit_message = jpeg_warn;
  e.msg[0] = 0;
  if (setjmp(e.jump)) {
    jpeg_destroy_decompress(&d);
    free(out);
    return fb_fail(st, "%s: cannot decode JPEG (%s)", path, e.msg);
  }
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, buf, (unsigned long)len);
  jpeg_read_header(&d, TRUE);
  const int req = want_c ? want_c : (d.num_components == 1 ? 1 : 3);
  d.out_color_space = req == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if ((size_t)d.image_width * d.image_height > MAX_PIXELS) {
    snprintf(e.msg, sizeof e.msg, "%ux%u pixels, more than this reader accepts", d.image_width,
             d.image_height);
    longjmp(e.jump, 1);
  }
  jpeg_start_decompress(&d);
  const size_t stride = (size_t)d.output_width * (size_t)d.output_components;
  out = fb_xmalloc(stride * d.output_height);
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = out + (size_t)d.output_scanline * stride;
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);
  *px = out, *h = (int)d.output_height, *w = (int)d.output_width, *c = d.output_components;
  jpeg_destroy_decompress(&d);
  return 0;
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
  else
    rc = fb_fail(st, "%s: not a PNG or JPEG file", path);
  if (rc) {
    free(buf);
    return -1;
  }
  rc = buf[0] == 0xff ? decode_jpeg(path, buf, len, want_c, px, h, w, c, st)
                      : decode_png(path, buf, len, want_c, is_mask, px, h, w, c, st);
  free(buf);
  return rc;
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

static int encode_png(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st) {
  static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                         PNG_FORMAT_RGBA};
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w, im.height = (png_uint_32)h, im.format = formats[c];
  png_alloc_size_t n = 0;
  if (!png_image_write_to_memory(&im, NULL, &n, 0, px, 0, NULL))
    return fb_fail(st, "%s: PNG encoder error (%s)", path, im.message);
  void *mem = fb_xmalloc(n);
  int rc = png_image_write_to_memory(&im, mem, &n, 0, px, 0, NULL)
               ? fb_write_file_atomic(path, mem, n, st)
               : fb_fail(st, "%s: PNG encoder error (%s)", path, im.message);
  free(mem);
  return rc;
}

static int encode_jpeg(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st) {
  struct jpeg_compress_struct j;
  jpeg_err e;
  unsigned char *volatile mem = NULL;
  unsigned long n = 0;
  memset(&j, 0, sizeof j);
  j.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  if (setjmp(e.jump)) {
    jpeg_destroy_compress(&j);
    free(mem);
    return fb_fail(st, "%s: JPEG encoder error (%s)", path, e.msg);
  }
  jpeg_create_compress(&j);
  unsigned char *m = NULL;
  jpeg_mem_dest(&j, &m, &n);
  j.image_width = (JDIMENSION)w, j.image_height = (JDIMENSION)h, j.input_components = c;
  j.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&j);
  jpeg_set_quality(&j, 95, TRUE);
  for (int k = 0; k < j.num_components; k++) /* 4:4:4: no chroma subsampling */
    j.comp_info[k].h_samp_factor = j.comp_info[k].v_samp_factor = 1;
  jpeg_start_compress(&j, TRUE);
  while (j.next_scanline < j.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)j.next_scanline * w * c);
    jpeg_write_scanlines(&j, &row, 1);
  }
  jpeg_finish_compress(&j);
  mem = m;
  jpeg_destroy_compress(&j);
  int rc = fb_write_file_atomic(path, mem, n, st);
  free(mem);
  return rc;
}

/* kind 'p': PNG, 'j': JPEG (quality 95); written to PATH.tmp and renamed. */
static int write_image(const char *path, const uint8_t *px, int h, int w, int c, int kind,
                       fb_status *st) {
  if (!px || h <= 0 || w <= 0 || c < 1 || c > 4 || (kind == 'j' && c != 1 && c != 3))
    return fb_fail_io(st, "%s: cannot write a %dx%d %s with %d channels", path, w, h,
                   kind == 'p' ? "PNG" : "JPEG", c);
  return kind == 'p' ? encode_png(path, px, h, w, c, st) : encode_jpeg(path, px, h, w, c, st);
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
