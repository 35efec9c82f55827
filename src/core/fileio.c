#include "core/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/file.h>
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
    fb_fail_io(st, "%s: cannot open (%s)", path, strerror(errno));
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
    fb_fail_io(st, "%s: cannot create (%s)", path, strerror(errno));
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
    rc = fb_fail_io(st, "%s: cannot rename from .tmp (%s)", path, strerror(errno));
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

int fb_path_in(char *buf, size_t n, const char *dir, const char *name, fb_status *st) {
  size_t ld = strlen(dir);
  while (ld > 1 && dir[ld - 1] == '/') ld--;
  const int len = snprintf(buf, n, "%.*s/%s", (int)ld, dir, name);
  if (len >= 0 && (size_t)len < n) return 0;
  /* the end of the path: it says which file; the whole may not fit a message */
  char *full = fb_path_join(dir, name);
  const size_t lf = strlen(full), shown = 300;
  fb_fail(st, "%s%s: path of %zu characters, longer than the %zu allowed",
          lf > shown ? "..." : "", full + (lf > shown ? lf - shown : 0), lf, n - 1);
  free(full);
  return -1;
}

int fb_dir_lock(const char *dir, fb_status *st) {
  char *path = fb_path_join(dir, ".lock");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    fb_fail_io(st, "%s: cannot open the run directory's lock (%s)", path, strerror(errno));
    free(path);
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    if (err == EWOULDBLOCK)
      fb_fail(st, "%s: in use by process %s (another fbnet run writes this directory; wait for "
              "it or choose another --out)", dir, pid[0] ? pid : "?");
    else
      fb_fail_io(st, "%s: cannot lock (%s)", path, strerror(err));
    free(path);
    return -1;
  }
  char pid[32];
  const int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) { /* the pid is a courtesy */ }
  free(path);
  return fd;
}

void fb_dir_unlock(int fd) {
  if (fd >= 0) close(fd); /* releases the flock */
}

int fb_jsonl_truncate(const char *path, const char *key, long max, fb_status *st) {
  FILE *probe = fopen(path, "rb");
  if (!probe) return 0; /* no log yet: nothing to keep */
  fclose(probe);
  char *text = fb_read_file(path, FB_FILE_ANY_SIZE, NULL, st);
  if (!text) return -1;
  char prefix[80];
  snprintf(prefix, sizeof prefix, "{\"%s\": ", key);
  const size_t np = strlen(prefix);
  size_t keep = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n'), *num_end = NULL;
    if (strncmp(line, prefix, np) != 0 || !end) break; /* a torn last line goes too */
    const long n = strtol(line + np, &num_end, 10);
    if (num_end == line + np || n > max) break;
    line = end + 1;
    keep = (size_t)(line - text);
  }
  text[keep] = 0;
  int rc = fb_write_text_atomic(path, text, st);
  free(text);
  return rc;
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
  if (strcmp(path, full) == 0) return fb_fail_io(st, "%s: cannot create directory (%s)", path, why);
  return fb_fail_io(st, "%s: cannot create directory: its parent %s cannot be created (%s)", full,
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
