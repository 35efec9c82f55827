#include "data/fmnist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/dataset.h"
#include "data/labels.h"

#define IDX_MAGIC_IMAGES 2051
#define IDX_MAGIC_LABELS 2049
/* Upper bound on the item count in a header, so that a corrupt count fails
 * with a message instead of a huge allocation. */
#define IDX_MAX_ITEMS (1 << 24)

static const char *install_hint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)";

/* zlib's messages start with the path again; drop that. */
static const char *zmsg(gzFile f, const char *path) {
  int err = 0;
  const char *m = gzerror(f, &err);
  if (!m || !m[0]) return "unknown zlib error";
  size_t n = strlen(path);
  if (strncmp(m, path, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
  return m;
}

/* Reads exactly `len` bytes; distinguishes corrupt compressed data from a file
 * that simply ends early. */
static int read_exact(gzFile f, const char *path, void *buf, size_t len, const char *what,
                      fb_status *st) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < len) {
    size_t want = len - got;
    if (want > (1u << 30)) want = 1u << 30;
    int r = gzread(f, p + got, (unsigned)want);
    if (r < 0)
      return fb_fail(st, "%s: corrupt gzip data while reading %s: %s", path, what, zmsg(f, path));
    if (r == 0) {
      int err = 0;
      gzerror(f, &err);
      if (err != Z_OK && err != Z_STREAM_END)
        return fb_fail(st, "%s: corrupt or truncated gzip stream while reading %s: %s", path, what,
                       zmsg(f, path));
      return fb_fail(st, "%s: truncated file: %s needs %zu bytes, only %zu present", path, what,
                     len, got);
    }
    got += (size_t)r;
  }
  return 0;
}

/* Reads exactly `len` bytes into a malloc'd buffer that grows with the data
 * actually present, so that a corrupt header declaring terabytes fails as a
 * truncated file instead of a huge allocation. */
static int read_grown(gzFile f, const char *path, size_t len, const char *what, uint8_t **out,
                      fb_status *st) {
  size_t cap = len < ((size_t)1 << 24) ? len : (size_t)1 << 24, got = 0;
  uint8_t *buf = fb_xmalloc(cap ? cap : 1);
  while (got < len) {
    if (got == cap) {
      cap = cap * 2 < len ? cap * 2 : len;
      buf = fb_xrealloc(buf, cap);
    }
    const size_t chunk = cap - got;
    if (read_exact(f, path, buf + got, chunk, what, st)) {
      /* name the whole size, not the chunk's */
      if (strstr(st->msg, "truncated file"))
        fb_fail(st, "%s: truncated file: %s needs %zu bytes (from the header), fewer are present",
                path, what, len);
      free(buf);
      return -1;
    }
    got += chunk;
  }
  *out = buf;
  return 0;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static gzFile open_idx(const char *path, fb_status *st) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    fb_fail_io(st, "%s: cannot open (%s); %s", path, strerror(errno), install_hint);
    return NULL;
  }
  gzFile f = gzopen(path, "rb");
  if (!f) fb_fail_io(st, "%s: cannot open (%s)", path, errno ? strerror(errno) : "zlib error");
  return f;
}

/* After the payload the stream must end: trailing bytes mean the header count
 * is wrong or the file is not what its name says. */
static int expect_end(gzFile f, const char *path, fb_status *st) {
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r < 0) return fb_fail(st, "%s: corrupt gzip data after the payload: %s", path, zmsg(f, path));
  if (r > 0)
    return fb_fail(st, "%s: unexpected data after the payload (header count too small?)", path);
  /* a stream cut inside the gzip trailer ends without a CRC check */
  int err = 0;
  gzerror(f, &err);
  if (err != Z_OK)
    return fb_fail(st, "%s: corrupt or truncated gzip stream at the end: %s", path, zmsg(f, path));
  return 0;
}

int fb_idx_read_images(const char *path, uint8_t **images, int *n, int *h, int *w, fb_status *st) {
  *images = NULL;
  *n = *h = *w = 0;
  gzFile f = open_idx(path, st);
  if (!f) return -1;
  unsigned char hdr[16];
  uint8_t *buf = NULL;
  if (read_exact(f, path, hdr, sizeof hdr, "the 16-byte header", st)) goto fail;
  uint32_t magic = be32(hdr), cnt = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
  if (magic != IDX_MAGIC_IMAGES) {
    fb_fail(st, "%s: bad magic number %u (an IDX image file has %d)", path, magic,
            IDX_MAGIC_IMAGES);
    goto fail;
  }
  if (cnt == 0 || cnt > IDX_MAX_ITEMS) {
    fb_fail(st, "%s: implausible image count %u", path, cnt);
    goto fail;
  }
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096) {
    fb_fail(st, "%s: implausible image size %ux%u", path, rows, cols);
    goto fail;
  }
  const size_t bytes = (size_t)cnt * rows * cols; /* < 2^48: no overflow */
  if (read_grown(f, path, bytes, "the image data", &buf, st)) goto fail;
  if (expect_end(f, path, st)) goto fail;
  gzclose(f);
  *images = buf;
  *n = (int)cnt;
  *h = (int)rows;
  *w = (int)cols;
  return 0;
fail:
  free(buf);
  gzclose(f);
  return -1;
}

int fb_idx_read_labels(const char *path, uint8_t **labels, int *n, fb_status *st) {
  *labels = NULL;
  *n = 0;
  gzFile f = open_idx(path, st);
  if (!f) return -1;
  unsigned char hdr[8];
  uint8_t *buf = NULL;
  if (read_exact(f, path, hdr, sizeof hdr, "the 8-byte header", st)) goto fail;
  uint32_t magic = be32(hdr), cnt = be32(hdr + 4);
  if (magic != IDX_MAGIC_LABELS) {
    fb_fail(st, "%s: bad magic number %u (an IDX label file has %d)", path, magic,
            IDX_MAGIC_LABELS);
    goto fail;
  }
  if (cnt == 0 || cnt > IDX_MAX_ITEMS) {
    fb_fail(st, "%s: implausible label count %u", path, cnt);
    goto fail;
  }
  if (read_grown(f, path, cnt, "the label data", &buf, st)) goto fail;
  if (expect_end(f, path, st)) goto fail;
  gzclose(f);
  *labels = buf;
  *n = (int)cnt;
  return 0;
fail:
  free(buf);
  gzclose(f);
  return -1;
}

void fb_dataset_u8_free(fb_dataset_u8 *d) {
  if (!d) return;
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

int fb_fmnist_load(const char *dir, int train, fb_dataset_u8 *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  if (!dir || !dir[0] || strcmp(dir, "fashion-mnist") == 0) dir = FB_FMNIST_DEFAULT_DIR;
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return fb_fail(st, "%s: Fashion-MNIST directory not found; %s", dir, install_hint);
  const char *split = train ? "train" : "t10k";
  char ipath[4096], lpath[4096];
  char iname[64], lname[64];
  snprintf(iname, sizeof iname, "%s-images-idx3-ubyte.gz", split);
  snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte.gz", split);
  if (fb_path_in(ipath, sizeof ipath, dir, iname, st) || fb_path_in(lpath, sizeof lpath, dir, lname, st))
    return -1;

  fb_dataset_u8 d;
  memset(&d, 0, sizeof d);
  int nl = 0;
  if (fb_idx_read_images(ipath, &d.images, &d.n, &d.h, &d.w, st)) return -1;
  if (d.h != 28 || d.w != 28) {
    fb_fail(st, "%s: images are %dx%d, Fashion-MNIST images are 28x28", ipath, d.h, d.w);
    goto fail;
  }
  if (fb_idx_read_labels(lpath, &d.labels, &nl, st)) goto fail;
  if (nl != d.n) {
    fb_fail(st, "%s: %d labels but %s has %d images", lpath, nl, ipath, d.n);
    goto fail;
  }
  for (int i = 0; i < d.n; i++)
    if (d.labels[i] >= FB_FMNIST_CLASSES) {
      fb_fail(st, "%s: label %d of item %d is outside 0..%d", lpath, d.labels[i], i,
              FB_FMNIST_CLASSES - 1);
      goto fail;
    }
  d.num_classes = FB_FMNIST_CLASSES;
  *out = d;
  return 0;
fail:
  fb_dataset_u8_free(&d);
  return -1;
}

void fb_fmnist_to_mt(const fb_dataset_u8 *ds, int n, const char *prefix, fb_mt_dataset *out) {
  memset(out, 0, sizeof *out);
  if (n <= 0 || n > ds->n) n = ds->n;
  out->num_classes = FB_FMNIST_CLASSES;
  out->class_names = fb_xcalloc(FB_FMNIST_CLASSES, sizeof(char *));
  for (int k = 0; k < FB_FMNIST_CLASSES; k++)
    out->class_names[k] = fb_xstrdup(fb_fmnist_class_name(k));
  const size_t px = (size_t)ds->h * ds->w;
  for (int i = 0; i < n; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s_%05d", prefix, i);
    fb_sample s = {.file = fb_xstrdup(name), .image_id = i, .h = ds->h, .w = ds->w, .c = 1,
                   .label = ds->labels[i]};
    s.px = fb_xmalloc(px);
    memcpy(s.px, ds->images + (size_t)i * px, px);
    fb_mt_dataset_push(out, &s);
  }
}
