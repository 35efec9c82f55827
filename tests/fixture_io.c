#include "fixture_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *path, const char *what) {
  snprintf(err, errlen, "%s: %s", path, what);
  return -1;
}

/* Reads one '\n'-terminated line (without the newline) into buf. */
static int read_line(FILE *fp, char *buf, size_t cap) {
  size_t k = 0;
  int ch;
  while ((ch = fgetc(fp)) != EOF && ch != '\n') {
    if (k + 1 >= cap) return -1;
    buf[k++] = (char)ch;
  }
  buf[k] = '\0';
  return ch == '\n' ? 0 : -1;
}

/* Values are little-endian IEEE float64, independent of the host order. */
static double le_double(const unsigned char *b) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; i--) u = (u << 8) | b[i];
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

int fx_load(fx_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) return fail(err, errlen, path, "cannot open");
  char line[256];
  if (read_line(fp, line, sizeof line) != 0 || strcmp(line, "FBFX1") != 0) {
    fclose(fp);
    return fail(err, errlen, path, "missing FBFX1 header");
  }
  int cap = 0;
  for (;;) {
    if (read_line(fp, line, sizeof line) != 0) {
      fclose(fp);
      fx_free(f);
      return fail(err, errlen, path, "truncated (no 'end' line)");
    }
    if (strcmp(line, "end") == 0) break;
    fx_array a;
    memset(&a, 0, sizeof a);
    char extra;
    if (sscanf(line, "%95s %d %d %d %d %c", a.name, &a.shape[0], &a.shape[1], &a.shape[2],
               &a.shape[3], &extra) != 5 ||
        a.shape[0] < 1 || a.shape[1] < 1 || a.shape[2] < 1 || a.shape[3] < 1) {
      fclose(fp);
      fx_free(f);
      return fail(err, errlen, path, "bad array header line");
    }
    a.numel = (size_t)a.shape[0] * a.shape[1] * a.shape[2] * a.shape[3];
    unsigned char *raw = malloc(a.numel * 8);
    a.v = malloc(a.numel * sizeof(double));
    if (!raw || !a.v || fread(raw, 8, a.numel, fp) != a.numel) {
      free(raw);
      free(a.v);
      fclose(fp);
      fx_free(f);
      return fail(err, errlen, path, "short array data");
    }
    for (size_t i = 0; i < a.numel; i++) a.v[i] = le_double(raw + 8 * i);
    free(raw);
    if (f->n == cap) {
      cap = cap ? 2 * cap : 32;
      fx_array *na = realloc(f->a, (size_t)cap * sizeof *na);
      if (!na) {
        free(a.v);
        fclose(fp);
        fx_free(f);
        return fail(err, errlen, path, "out of memory");
      }
      f->a = na;
    }
    f->a[f->n++] = a;
  }
  fclose(fp);
  return 0;
}

void fx_free(fx_file *f) {
  for (int i = 0; i < f->n; i++) free(f->a[i].v);
  free(f->a);
  f->a = NULL;
  f->n = 0;
}

const fx_array *fx_find(const fx_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->a[i].name, name) == 0) return &f->a[i];
  return NULL;
}

double fx_scalar(const fx_file *f, const char *name, double dflt) {
  const fx_array *a = fx_find(f, name);
  return a ? a->v[0] : dflt;
}
