#include "core/jsonutil.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "core/fileio.h"
#include "core/status.h"
#include "core/strbuf.h"

const char *fb_json_type_name(const cJSON *v) {
  if (!v) return "nothing";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

void fb_json_line_col(const char *text, size_t len, size_t pos, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < pos && i < len && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

size_t fb_json_error_offset(const char *text, size_t len, const char *end) {
  if (!end || end < text || end > text + len) return len;
  return (size_t)(end - text);
}

cJSON *fb_json_read_file(const char *path, fb_status *st) {
  size_t len = 0;
  char *text = fb_read_file(path, FB_FILE_ANY_SIZE, &len, st);
  if (!text) return NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    int line, col;
    fb_json_line_col(text, len, fb_json_error_offset(text, len, end), &line, &col);
    fb_fail(st, "%s: invalid JSON near line %d column %d", path, line, col);
  }
  free(text);
  return root;
}

void fb_json_put_string(FILE *f, const char *s) {
  fb_strbuf b = {0};
  fb_sb_json_string(&b, s);
  fputs(fb_sb_str(&b), f);
  fb_sb_free(&b);
}

int fb_json_int_in_range(const cJSON *v, double lo, double hi, int *out) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d == floor(d)) || d < lo || d > hi || d < INT_MIN || d > INT_MAX) return -1;
  *out = (int)d;
  return 0;
}

static int cmp_id_pair(const void *a, const void *b) {
  const fb_id_pair *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

void fb_id_pairs_sort(fb_id_pair *p, int n) {
  if (n > 1) qsort(p, (size_t)n, sizeof *p, cmp_id_pair);
}

int fb_id_find(const fb_id_pair *p, int n, int id) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (p[mid].id == id) return p[mid].idx;
    if (p[mid].id < id)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}
