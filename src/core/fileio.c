#include "core/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

/* Reads until EOF or until more than max_bytes bytes are in; -1 on a read
 * error. The buffer always has room for a terminating NUL. */
static int read_stream(FILE *f, size_t max_bytes, char **buf, size_t *len) {
  size_t cap = (size_t)1 << 16, n = 0;
  char *b = fb_xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) b = fb_xrealloc(b, cap *= 2);
    size_t room = cap - n - 1;
    if (max_bytes - n < room) room = max_bytes - n + 1; /* stop one byte past the limit */
    size_t r = fread(b + n, 1, room, f);
    n += r;
    if (r == 0 || n > max_bytes) break;
  }
  *buf = b;
  *len = n;
  return ferror(f) ? -1 : 0;
}

char *fb_read_file(const char *path, size_t max_bytes, size_t *len, fb_status *st) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fb_fail(st, "%s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > max_bytes) {
    fclose(f); /* refused before reading */
    fb_fail(st, "%s: larger than the limit of %zu bytes", path, max_bytes);
    return NULL;
  }
  char *buf;
  size_t n;
  int err = read_stream(f, max_bytes, &buf, &n);
  fclose(f);
  if (err || n > max_bytes) {
    if (err)
      fb_fail(st, "%s: read error", path);
    else
      fb_fail(st, "%s: larger than the limit of %zu bytes", path, max_bytes);
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

char *fb_read_text(const char *path, size_t max_bytes, fb_status *st) {
  return fb_read_file(path, max_bytes, NULL, st);
}

int fb_read_lines(const char *path, char ***names, int *n, fb_status *st) {
  *names = NULL;
  *n = 0;
  char *text = fb_read_file(path, FB_FILE_ANY_SIZE, NULL, st);
  if (!text) return -1;
  char **v = NULL;
  int k = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
    if (l) {
      v = fb_xrealloc(v, ((size_t)k + 1) * sizeof *v);
      v[k++] = fb_xstrdup(line);
    }
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  *names = v;
  *n = k;
  return 0;
}

int fb_write_file_atomic(const char *path, const void *data, size_t len, fb_status *st) {
  size_t plen = strlen(path);
  char *tmp = fb_xmalloc(plen + 5);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    fb_fail(st, "%s: cannot create (%s)", path, strerror(errno));
    free(tmp);
    return -1;
  }
  int bad = len && fwrite(data, 1, len, f) != len;
  if (!bad && (fflush(f) != 0 || fsync(fileno(f)) != 0)) bad = 1;
  if (fclose(f) != 0) bad = 1;
  int rc = 0;
  if (bad) {
    rc = fb_fail(st, "%s: write error (disk full?)", path);
    remove(tmp);
  } else if (rename(tmp, path) != 0) {
    rc = fb_fail(st, "%s: cannot rename from .tmp (%s)", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return rc;
}

int fb_write_text_atomic(const char *path, const char *text, fb_status *st) {
  return fb_write_file_atomic(path, text, strlen(text), st);
}

char *fb_path_join(const char *dir, const char *name) {
  size_t ld = strlen(dir), ln = strlen(name);
  while (ld > 1 && dir[ld - 1] == '/') ld--; /* "dir/" + "x" = "dir/x" */
  char *p = fb_xmalloc(ld + ln + 2);
  memcpy(p, dir, ld);
  p[ld] = '/';
  memcpy(p + ld + 1, name, ln + 1);
  return p;
}

int fb_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* mkdir of one component `path` of `full` (messages name both). */
static int mkdir_one(const char *path, const char *full, fb_status *st) {
  if (mkdir(path, 0777) == 0) return 0;
  const int err = errno;
  if (err == EEXIST && fb_is_dir(path)) return 0;
  const char *why = err == EEXIST ? "a file of that name exists" : strerror(err);
  if (strcmp(path, full) == 0) return fb_fail(st, "%s: cannot create directory (%s)", path, why);
  return fb_fail(st, "%s: cannot create directory: its parent %s cannot be created (%s)", full,
                 path, why);
}

int fb_mkdir_p(const char *dir, fb_status *st) {
  if (!dir || !*dir) return fb_fail(st, "empty directory name");
  if (fb_is_dir(dir)) return 0;
  char *buf = fb_xstrdup(dir);
  int rc = 0;
  for (char *p = buf + 1; rc == 0 && *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    rc = mkdir_one(buf, dir, st);
    *p = '/';
  }
  if (rc == 0) rc = mkdir_one(buf, dir, st);
  free(buf);
  return rc;
}
