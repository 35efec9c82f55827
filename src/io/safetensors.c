#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "core/strbuf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c writes the host's float bytes and assumes a little-endian host"
#endif

#define ST_MAX_HEADER (100u << 20) /* the format's own limit on N */

/* ---- writer ------------------------------------------------------------- */

static size_t entry_numel(const fb_st_entry *e) {
  size_t n = 1;
  for (int k = 0; k < e->rank; k++) n *= (size_t)e->dims[k];
  return n;
}

static int write_all(FILE *f, const void *p, size_t len) { return fwrite(p, 1, len, f) == len; }

int fb_safetensors_write(const char *path, const fb_st_entry *t, int n, const char *const *meta,
                         fb_status *st) {
  for (int i = 0; i < n; i++) {
    if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0)
      return fb_fail(st, "%s: tensor %d has no usable name", path, i);
    if (t[i].rank < 0 || t[i].rank > FB_ST_MAX_RANK)
      return fb_fail(st, "%s: tensor '%s': rank %d outside 0..%d", path, t[i].name, t[i].rank,
                     FB_ST_MAX_RANK);
    for (int k = 0; k < t[i].rank; k++)
      if (t[i].dims[k] < 0)
        return fb_fail(st, "%s: tensor '%s': negative dimension", path, t[i].name);
    for (int j = 0; j < i; j++)
      if (strcmp(t[i].name, t[j].name) == 0)
        return fb_fail(st, "%s: tensor name '%s' appears twice", path, t[i].name);
  }
  fb_strbuf h = {0};
  fb_sb_puts(&h, "{");
  int first = 1;
  if (meta && meta[0]) {
    fb_sb_puts(&h, "\"__metadata__\":{");
    for (int k = 0; meta[k]; k += 2) {
      if (!meta[k + 1]) {
        free(h.s);
        return fb_fail(st, "%s: metadata key '%s' has no value", path, meta[k]);
      }
      if (k) fb_sb_puts(&h, ",");
      fb_sb_json_string(&h, meta[k]);
      fb_sb_puts(&h, ":");
      fb_sb_json_string(&h, meta[k + 1]);
    }
    fb_sb_puts(&h, "}");
    first = 0;
  }
  unsigned long long off = 0;
  for (int i = 0; i < n; i++) {
    if (!first) fb_sb_puts(&h, ",");
    first = 0;
    fb_sb_json_string(&h, t[i].name);
    fb_sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int k = 0; k < t[i].rank; k++) {
      if (k) fb_sb_puts(&h, ",");
      fb_sb_printf(&h, "%llu", (unsigned long long)t[i].dims[k]);
    }
    unsigned long long bytes = (unsigned long long)entry_numel(&t[i]) * 4u;
    fb_sb_puts(&h, "],\"data_offsets\":[");
    fb_sb_printf(&h, "%llu", off);
    fb_sb_puts(&h, ",");
    fb_sb_printf(&h, "%llu", off + bytes);
    fb_sb_puts(&h, "]}");
    off += bytes;
  }
  fb_sb_puts(&h, "}");
  while (h.n % 8) fb_sb_puts(&h, " ");

  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    free(h.s);
    return fb_fail(st, "%s: path too long", path);
  }
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(h.s);
    return fb_fail_io(st, "%s: cannot create: %s", tmp, strerror(errno));
  }
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((unsigned long long)h.n >> (8 * k));
  int ok = write_all(f, len8, 8) && write_all(f, h.s, h.n);
  for (int i = 0; ok && i < n; i++) {
    size_t cnt = entry_numel(&t[i]);
    if (cnt) ok = write_all(f, t[i].data, cnt * sizeof(float));
  }
  free(h.s);
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int err = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  if (!ok) {
    unlink(tmp);
    return fb_fail_io(st, "%s: write failed: %s", tmp, strerror(err));
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    unlink(tmp);
    return fb_fail_io(st, "%s: cannot rename %s over it: %s", path, tmp, strerror(err));
  }
  /* make the rename itself durable (best effort) */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    slash[slash == dir ? 1 : 0] = 0;
  else
    snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
}

int fb_st_slot_dims(fb_shape s, int matrix, int64_t dims[FB_ST_MAX_RANK]) {
  if (s.n == 1 && s.c == 1 && s.h == 1 && s.w == 1) {
    dims[0] = 1;
    return 1;
  }
  if (s.h == 1 && s.w == 1) {
    if (s.c == 1) {
      dims[0] = s.n;
      return 1;
    }
    if (s.n == 1) {
      dims[0] = s.c;
      return 1;
    }
    if (matrix) {
      dims[0] = s.n;
      dims[1] = s.c;
      return 2;
    }
  }
  dims[0] = s.n;
  dims[1] = s.c;
  dims[2] = s.h;
  dims[3] = s.w;
  return 4;
}

static int save_store(const fb_params *s, const unsigned char *matrix, const char *path,
                      const char *const *meta, fb_status *st) {
  if (!s->data) return fb_fail(st, "%s: parameter store not allocated", path);
  fb_st_entry *e = fb_xcalloc((size_t)(s->n ? s->n : 1), sizeof *e);
  for (int i = 0; i < s->n; i++) {
    e[i].name = s->p[i].name;
    e[i].rank = fb_st_slot_dims(s->p[i].shape, matrix ? matrix[i] : 0, e[i].dims);
    e[i].data = s->data + s->p[i].offset;
  }
  int rc = fb_safetensors_write(path, e, s->n, meta, st);
  free(e);
  return rc;
}

int fb_safetensors_save_params(const fb_params *s, const char *path, const char *const *meta,
                               fb_status *st) {
  return save_store(s, NULL, path, meta, st);
}

int fb_safetensors_save_graph(const fb_graph *g, const char *path, const char *const *meta,
                              fb_status *st) {
  const fb_params *s = &g->params;
  unsigned char *matrix = fb_xcalloc((size_t)(s->n ? s->n : 1), 1);
  for (int i = 0; i < g->n; i++) {
    const fb_node *nd = &g->nodes[i];
    if (nd->op && nd->op->kind == FB_OPK_LINEAR && nd->par[0] >= 0 &&
        nd->par[0] < s->n)
      matrix[nd->par[0]] = 1;
  }
  int rc = save_store(s, matrix, path, meta, st);
  free(matrix);
  return rc;
}

/* ---- reader ------------------------------------------------------------- */

void fb_st_file_free(fb_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) free(f->t[i].name);
  free(f->t);
  for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
  free(f->meta);
  free(f->buf);
  memset(f, 0, sizeof *f);
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fb_xmalloc(n);
  memcpy(p, s, n);
  return p;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, unsigned long long *v) {
  if (!cJSON_IsNumber(j)) return 0;
  double d = j->valuedouble;
  if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(unsigned long long)d) return 0;
  *v = (unsigned long long)d;
  return 1;
}

typedef struct span {
  unsigned long long b, e;
  int i;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e > y->e) - (x->e < y->e);
}

int fb_safetensors_read(const char *path, fb_st_file *f, fb_status *st) {
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) return fb_fail_io(st, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return fb_fail(st, "%s: not a regular file", path);
  }
  unsigned long long size = (unsigned long long)sb.st_size;
  unsigned char len8[8];
  if (size < 8 || fread(len8, 1, 8, fp) != 8) {
    fclose(fp);
    return fb_fail(st, "%s: truncated file: %llu bytes, the 8-byte header size is missing", path,
                   size);
  }
  unsigned long long hn = 0;
  for (int k = 0; k < 8; k++) hn |= (unsigned long long)len8[k] << (8 * k);
  if (hn > ST_MAX_HEADER) {
    fclose(fp);
    return fb_fail(st, "%s: bad header: size %llu exceeds the 100 MB limit", path, hn);
  }
  if (hn < 2 || 8 + hn > size) {
    fclose(fp);
    return fb_fail(st, "%s: truncated file or bad header: header size %llu, file %llu bytes", path,
                   hn, size);
  }
  char *hdr = fb_xmalloc((size_t)hn + 1);
  unsigned long long dn = size - 8 - hn;
  /* data section: 64-byte aligned so the float pointers are aligned */
  size_t dcap = ((size_t)dn + 63) / 64 * 64;
  void *data = aligned_alloc(64, dcap ? dcap : 64);
  if (!data) {
    fclose(fp);
    free(hdr);
    return fb_fail(st, "%s: out of memory for %llu data bytes", path, dn);
  }
  int rd_ok = fread(hdr, 1, (size_t)hn, fp) == hn && fread(data, 1, (size_t)dn, fp) == dn;
  fclose(fp);
  hdr[hn] = 0;
  if (!rd_ok) {
    free(hdr);
    free(data);
    return fb_fail(st, "%s: read error", path);
  }
  f->buf = data;
  cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hn);
  span *spans = NULL;
  if (!root || !cJSON_IsObject(root)) {
    fb_fail(st, "%s: bad header: not a JSON object", path);
    goto fail;
  }
  int cnt = 0;
  for (cJSON *it = root->child; it; it = it->next) cnt++;
  f->t = fb_xcalloc((size_t)(cnt ? cnt : 1), sizeof *f->t);
  spans = fb_xcalloc((size_t)(cnt ? cnt : 1), sizeof *spans);
  for (cJSON *it = root->child; it; it = it->next) {
    const char *name = it->string ? it->string : "";
    if (strcmp(name, "__metadata__") == 0) {
      if (!cJSON_IsObject(it) || f->meta) {
        fb_fail(st, "%s: bad header: __metadata__ must be one object", path);
        goto fail;
      }
      int m = 0;
      for (cJSON *kv = it->child; kv; kv = kv->next) m++;
      f->meta = fb_xcalloc((size_t)(2 * m + 1), sizeof *f->meta);
      for (cJSON *kv = it->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv)) {
          fb_fail(st, "%s: bad header: metadata value of '%s' is not a string", path,
                  kv->string ? kv->string : "");
          goto fail;
        }
        f->meta[2 * f->n_meta] = xstrdup(kv->string ? kv->string : "");
        f->meta[2 * f->n_meta + 1] = xstrdup(kv->valuestring);
        f->n_meta++;
      }
      continue;
    }
    if (fb_st_find(f, name)) {
      fb_fail(st, "%s: bad header: tensor '%s' appears twice", path, name);
      goto fail;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of)) {
      fb_fail(st, "%s: bad header: tensor '%s' needs dtype, shape and data_offsets", path, name);
      goto fail;
    }
    if (strcmp(dt->valuestring, "F32") != 0) {
      fb_fail(st, "%s: tensor '%s': dtype %s is not supported (F32 only)", path, name,
              dt->valuestring);
      goto fail;
    }
    fb_st_tensor *t = &f->t[f->n];
    t->rank = cJSON_GetArraySize(sh);
    if (t->rank > FB_ST_MAX_RANK) {
      fb_fail(st, "%s: tensor '%s': rank %d above %d", path, name, t->rank, FB_ST_MAX_RANK);
      goto fail;
    }
    unsigned long long numel = 1, b, e;
    int k = 0;
    for (const cJSON *d = sh->child; d; d = d->next, k++) {
      unsigned long long v;
      if (!json_uint(d, &v) || v > (1ull << 40)) {
        fb_fail(st, "%s: tensor '%s': shape entry %d is not a valid size", path, name, k);
        goto fail;
      }
      t->dims[k] = (int64_t)v;
      numel *= v;
      if (numel > (1ull << 40)) {
        fb_fail(st, "%s: tensor '%s': shape too large", path, name);
        goto fail;
      }
    }
    if (cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &b) ||
        !json_uint(of->child->next, &e) || b > e) {
      fb_fail(st, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end", path,
              name);
      goto fail;
    }
    if (e > dn) {
      fb_fail(st, "%s: truncated file: tensor '%s' ends at byte %llu of a %llu-byte data section",
              path, name, e, dn);
      goto fail;
    }
    if (e - b != numel * 4) {
      fb_fail(st, "%s: tensor '%s': data_offsets span %llu bytes, shape needs %llu", path, name,
              e - b, numel * 4);
      goto fail;
    }
    if (b % 4) {
      fb_fail(st, "%s: tensor '%s': data offset %llu not a multiple of 4", path, name, b);
      goto fail;
    }
    t->name = xstrdup(name);
    t->numel = (size_t)numel;
    t->data = (const float *)((const unsigned char *)data + b);
    spans[f->n].b = b;
    spans[f->n].e = e;
    spans[f->n].i = f->n;
    f->n++;
  }
  /* the data section is exactly the tensors, back to back */
  qsort(spans, (size_t)f->n, sizeof *spans, span_cmp);
  unsigned long long pos = 0;
  for (int i = 0; i < f->n; i++) {
    if (spans[i].b != pos) {
      fb_fail(st, "%s: bad header: tensor '%s' starts at %llu, expected %llu (gap or overlap)",
              path, f->t[spans[i].i].name, spans[i].b, pos);
      goto fail;
    }
    pos = spans[i].e;
  }
  if (pos != dn) {
    fb_fail(st, "%s: data section has %llu bytes, tensors cover %llu", path, dn, pos);
    goto fail;
  }
  free(spans);
  cJSON_Delete(root);
  free(hdr);
  return 0;
fail:
  free(spans);
  cJSON_Delete(root);
  free(hdr);
  fb_st_file_free(f);
  return -1;
}

const fb_st_tensor *fb_st_find(const fb_st_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (f->t[i].name && strcmp(f->t[i].name, name) == 0) return &f->t[i];
  return NULL;
}

const char *fb_st_meta(const fb_st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
  return NULL;
}

/* ---- loading into a store ----------------------------------------------- */

static int squeeze(const int64_t *d, int rank, int64_t *out) {
  int m = 0;
  for (int k = 0; k < rank; k++)
    if (d[k] != 1) out[m++] = d[k];
  return m;
}

static void fmt_dims(char *buf, size_t cap, const int64_t *d, int rank) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int k = 0; k < rank && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", k ? "," : "", (long long)d[k]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

int fb_safetensors_load_into_ex(fb_params *s, const char *path, int flags, fb_status *st) {
  if (!s->data) return fb_fail(st, "%s: parameter store not allocated", path);
  fb_st_file f;
  if (fb_safetensors_read(path, &f, st)) return -1;
  const fb_st_tensor **src = fb_xcalloc((size_t)(s->n ? s->n : 1), sizeof *src);
  int filled = 0;
  for (int i = 0; i < s->n; i++) {
    const fb_param *q = &s->p[i];
    const fb_st_tensor *t = fb_st_find(&f, q->name);
    if (!t) {
      if (flags & FB_ST_ALLOW_MISSING) continue;
      fb_fail(st, "%s: missing tensor '%s'", path, q->name);
      goto fail;
    }
    int64_t want[FB_ST_MAX_RANK], a[FB_ST_MAX_RANK], b[FB_ST_MAX_RANK];
    int wr = fb_st_slot_dims(q->shape, 0, want);
    int na = squeeze(want, wr, a), nb = squeeze(t->dims, t->rank, b);
    int same = na == nb && t->numel == q->numel;
    for (int k = 0; same && k < na; k++) same = a[k] == b[k];
    if (!same) {
      char fs[128], ss[128];
      fmt_dims(fs, sizeof fs, t->dims, t->rank);
      fmt_dims(ss, sizeof ss, want, wr);
      fb_fail(st, "%s: tensor '%s' has shape %s, the model needs %s", path, q->name, fs, ss);
      goto fail;
    }
    src[i] = t;
  }
  if (flags & FB_ST_REQUIRE_ALL)
    for (int j = 0; j < f.n; j++)
      if (fb_params_find(s, f.t[j].name) < 0) {
        fb_fail(st, "%s: tensor '%s' matches no parameter of the model", path, f.t[j].name);
        goto fail;
      }
  for (int i = 0; i < s->n; i++)
    if (src[i]) {
      memcpy(s->data + s->p[i].offset, src[i]->data, s->p[i].numel * sizeof(float));
      filled++;
    }
  free(src);
  fb_st_file_free(&f);
  return filled;
fail:
  free(src);
  fb_st_file_free(&f);
  return -1;
}

int fb_safetensors_load_into(fb_params *s, const char *path, fb_status *st) {
  return fb_safetensors_load_into_ex(s, path, 0, st) < 0 ? -1 : 0;
}
