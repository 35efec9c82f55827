/* COCO detection JSON: reader (cJSON) with validation of every field we use,
 * ground-truth writer and results writer. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/formats.h"

/* Tolerance of the "box inside the image" check for float rounding. */
#define BOX_TOL 1e-3

static const char *type_name(const cJSON *v) {
  if (!v) return "nothing";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

/* Integer field `key` of obj (the element `arr`[i]); required unless dflt_ok. */
static int get_int(const cJSON *obj, const char *key, const char *file, const char *arr, int i,
                   int dflt_ok, int dflt, int *out, fb_status *st) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (dflt_ok) {
      *out = dflt;
      return 0;
    }
    return fb_fail(st, "%s: %s[%d].%s: missing", file, arr, i, key);
  }
  if (!cJSON_IsNumber(v))
    return fb_fail(st, "%s: %s[%d].%s: must be an integer, found %s", file, arr, i, key,
                   type_name(v));
  double d = v->valuedouble;
  if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
    return fb_fail(st, "%s: %s[%d].%s: must be an integer, found %g", file, arr, i, key, d);
  *out = (int)d;
  return 0;
}

static int get_array(const cJSON *root, const char *key, const char *file, const cJSON **out,
                     fb_status *st) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v) return fb_fail(st, "%s: missing key \"%s\" (COCO needs images, annotations, categories)",
                         file, key);
  if (!cJSON_IsArray(v))
    return fb_fail(st, "%s: \"%s\" must be an array, found %s", file, key, type_name(v));
  *out = v;
  return 0;
}

typedef struct id_pair {
  int id, idx;
} id_pair;

static int cmp_pair(const void *a, const void *b) {
  const id_pair *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Index of id in the sorted pairs, or -1. */
static int find_id(const id_pair *p, int n, int id) {
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

static char *read_text(const char *path, size_t *len, fb_status *st) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fb_fail(st, "%s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *b = fb_xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) b = fb_xrealloc(b, cap *= 2);
    size_t r = fread(b + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(b);
    fb_fail(st, "%s: read error", path);
    return NULL;
  }
  b[n] = 0;
  *len = n;
  return b;
}

static char *path_join(const char *dir, const char *name) {
  size_t ld = strlen(dir), ln = strlen(name);
  char *p = fb_xmalloc(ld + ln + 2);
  memcpy(p, dir, ld);
  p[ld] = '/';
  memcpy(p + ld + 1, name, ln + 1);
  return p;
}

static int parse_categories(const cJSON *cats, const char *file, fb_mt_dataset *out,
                            fb_status *st) {
  int n = cJSON_GetArraySize(cats);
  id_pair *p = fb_xmalloc(((size_t)n + 1) * sizeof *p);
  int i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cats) {
    if (!cJSON_IsObject(c)) {
      free(p);
      return fb_fail(st, "%s: categories[%d]: must be an object, found %s", file, i, type_name(c));
    }
    if (get_int(c, "id", file, "categories", i, 0, 0, &p[i].id, st)) {
      free(p);
      return -1;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (!cJSON_IsString(name)) {
      free(p);
      return fb_fail(st, "%s: categories[%d].name: must be a string, found %s", file, i,
                     type_name(name));
    }
    p[i].idx = i;
    i++;
  }
  qsort(p, (size_t)n, sizeof *p, cmp_pair);
  for (int k = 1; k < n; k++)
    if (p[k].id == p[k - 1].id) {
      int a = p[k - 1].idx, b = p[k].idx, id = p[k].id;
      free(p);
      return fb_fail(st, "%s: categories[%d].id %d duplicates categories[%d].id", file, b, id,
                     a);
    }
  out->num_cats = n;
  out->cat_ids = fb_xmalloc(((size_t)n + 1) * sizeof(int));
  out->cat_names = fb_xcalloc((size_t)n + 1, sizeof(char *));
  for (int k = 0; k < n; k++) {
    const cJSON *c2 = cJSON_GetArrayItem(cats, p[k].idx);
    out->cat_ids[k] = p[k].id;
    out->cat_names[k] = strdup(cJSON_GetObjectItemCaseSensitive(c2, "name")->valuestring);
  }
  free(p);
  return 0;
}

int fb_coco_load(const char *json_path, const char *image_dir, int want_c, fb_mt_dataset *out,
                 fb_status *st) {
  memset(out, 0, sizeof *out);
  size_t len = 0;
  char *text = read_text(json_path, &len, st);
  if (!text) return -1;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    size_t off = end && end >= text ? (size_t)(end - text) : 0;
    int line = 1, col = 1;
    for (size_t k = 0; k < off && k < len; k++) {
      if (text[k] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    free(text);
    return fb_fail(st, "%s: invalid JSON near line %d column %d", json_path, line, col);
  }
  free(text);
  const char *F = json_path;
  id_pair *imgs = NULL, *cats = NULL;
  int *count = NULL;
  int rc = -1;
  const cJSON *jimages = NULL, *jann = NULL, *jcats = NULL;
  if (!cJSON_IsObject(root)) {
    fb_fail(st, "%s: top level must be an object, found %s", F, type_name(root));
    goto done;
  }
  if (get_array(root, "images", F, &jimages, st) || get_array(root, "annotations", F, &jann, st) ||
      get_array(root, "categories", F, &jcats, st))
    goto done;
  if (parse_categories(jcats, F, out, st)) goto done;
  cats = fb_xmalloc(((size_t)out->num_cats + 1) * sizeof *cats);
  for (int k = 0; k < out->num_cats; k++) cats[k] = (id_pair){out->cat_ids[k], k};

  /* images: validated first, decoded after the annotations are checked */
  int ni = cJSON_GetArraySize(jimages);
  out->s = fb_xcalloc((size_t)ni + 1, sizeof *out->s);
  imgs = fb_xmalloc(((size_t)ni + 1) * sizeof *imgs);
  int i = 0;
  const cJSON *im;
  cJSON_ArrayForEach(im, jimages) {
    fb_sample *s = &out->s[i];
    s->label = -1;
    s->has_boxes = 1;
    out->n = i + 1; /* so that fb_mt_dataset_free releases what is filled */
    if (!cJSON_IsObject(im)) {
      fb_fail(st, "%s: images[%d]: must be an object, found %s", F, i, type_name(im));
      goto done;
    }
    if (get_int(im, "id", F, "images", i, 0, 0, &s->image_id, st) ||
        get_int(im, "width", F, "images", i, 0, 0, &s->w, st) ||
        get_int(im, "height", F, "images", i, 0, 0, &s->h, st))
      goto done;
    if (s->w <= 0 || s->h <= 0) {
      fb_fail(st, "%s: images[%d]: width and height must be positive, found %dx%d", F, i, s->w,
              s->h);
      goto done;
    }
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(im, "file_name");
    if (!cJSON_IsString(fn) || !fn->valuestring[0]) {
      fb_fail(st, "%s: images[%d].file_name: must be a non-empty string, found %s", F, i,
              cJSON_IsString(fn) ? "\"\"" : type_name(fn));
      goto done;
    }
    s->file = path_join(image_dir, fn->valuestring);
    imgs[i] = (id_pair){s->image_id, i};
    i++;
  }
  qsort(imgs, (size_t)ni, sizeof *imgs, cmp_pair);
  for (int k = 1; k < ni; k++)
    if (imgs[k].id == imgs[k - 1].id) {
      fb_fail(st, "%s: images[%d].id %d duplicates images[%d].id", F, imgs[k].idx, imgs[k].id,
              imgs[k - 1].idx);
      goto done;
    }

  /* annotations: two passes (validate + count, then fill) */
  count = fb_xcalloc((size_t)ni + 1, sizeof *count);
  for (int pass = 0; pass < 2; pass++) {
    int a = 0;
    const cJSON *an;
    cJSON_ArrayForEach(an, jann) {
      if (!cJSON_IsObject(an)) {
        fb_fail(st, "%s: annotations[%d]: must be an object, found %s", F, a, type_name(an));
        goto done;
      }
      int image_id = 0, cat_id = 0, crowd = 0;
      if (get_int(an, "image_id", F, "annotations", a, 0, 0, &image_id, st) ||
          get_int(an, "category_id", F, "annotations", a, 0, 0, &cat_id, st) ||
          get_int(an, "iscrowd", F, "annotations", a, 1, 0, &crowd, st))
        goto done;
      int si = find_id(imgs, ni, image_id);
      if (si < 0) {
        fb_fail(st, "%s: annotations[%d].image_id %d is not in images", F, a, image_id);
        goto done;
      }
      int ci = find_id(cats, out->num_cats, cat_id);
      if (ci < 0) {
        fb_fail(st, "%s: annotations[%d].category_id %d is not in categories", F, a, cat_id);
        goto done;
      }
      if (crowd != 0 && crowd != 1) {
        fb_fail(st, "%s: annotations[%d].iscrowd: must be 0 or 1, found %d", F, a, crowd);
        goto done;
      }
      const cJSON *bb = cJSON_GetObjectItemCaseSensitive(an, "bbox");
      if (!bb) {
        fb_fail(st, "%s: annotations[%d].bbox: missing", F, a);
        goto done;
      }
      if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) {
        fb_fail(st, "%s: annotations[%d].bbox: must be an array of 4 numbers [x,y,w,h], found %s",
                F, a, cJSON_IsArray(bb) ? "an array of another length" : type_name(bb));
        goto done;
      }
      double v[4];
      for (int k = 0; k < 4; k++) {
        const cJSON *e = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(e)) {
          fb_fail(st, "%s: annotations[%d].bbox[%d]: must be a number, found %s", F, a, k,
                  type_name(e));
          goto done;
        }
        v[k] = e->valuedouble;
        if (!isfinite(v[k])) {
          fb_fail(st, "%s: annotations[%d].bbox[%d]: not finite", F, a, k);
          goto done;
        }
      }
      if (v[2] < 0 || v[3] < 0) {
        fb_fail(st, "%s: annotations[%d].bbox: negative %s %g", F, a,
                v[2] < 0 ? "width" : "height", v[2] < 0 ? v[2] : v[3]);
        goto done;
      }
      fb_sample *s = &out->s[si];
      if (v[0] < -BOX_TOL || v[1] < -BOX_TOL || v[0] + v[2] > s->w + BOX_TOL ||
          v[1] + v[3] > s->h + BOX_TOL) {
        fb_fail(st, "%s: annotations[%d].bbox [%g,%g,%g,%g] extends outside image %d (%dx%d)", F,
                a, v[0], v[1], v[2], v[3], s->image_id, s->w, s->h);
        goto done;
      }
      double area = v[2] * v[3];
      const cJSON *ar = cJSON_GetObjectItemCaseSensitive(an, "area");
      if (ar) {
        if (!cJSON_IsNumber(ar)) {
          fb_fail(st, "%s: annotations[%d].area: must be a non-negative number, found %s", F, a,
                  type_name(ar));
          goto done;
        }
        if (!isfinite(ar->valuedouble) || ar->valuedouble < 0) {
          fb_fail(st, "%s: annotations[%d].area: must be a non-negative number, found %g", F, a,
                  ar->valuedouble);
          goto done;
        }
        area = ar->valuedouble;
      }
      if (pass == 0) {
        count[si]++;
      } else {
        fb_box *b = &s->boxes[s->n_boxes++];
        *b = (fb_box){(float)v[0], (float)v[1], (float)v[2], (float)v[3], ci, crowd,
                      (float)area, 1.0f};
      }
      a++;
    }
    if (pass == 0)
      for (int k = 0; k < ni; k++)
        if (count[k]) out->s[k].boxes = fb_xmalloc((size_t)count[k] * sizeof(fb_box));
  }

  /* decode every image (in parallel); the first failure in file order is reported */
  {
    int *bad = fb_xcalloc((size_t)ni + 1, sizeof *bad);
    fb_status *msgs = fb_xcalloc((size_t)ni + 1, sizeof *msgs);
#pragma omp parallel for schedule(dynamic, 4)
    for (int k = 0; k < ni; k++) {
      fb_sample *s = &out->s[k];
      int h = 0, w = 0;
      if (fb_image_read(s->file, want_c, &s->px, &h, &w, &s->c, &msgs[k])) {
        bad[k] = 1;
      } else if (h != s->h || w != s->w) {
        bad[k] = 2;
        snprintf(msgs[k].msg, sizeof msgs[k].msg,
                 "the decoded image is %dx%d, the JSON says width %d, height %d", w, h, s->w,
                 s->h);
      }
    }
    int first = -1;
    for (int k = 0; k < ni && first < 0; k++)
      if (bad[k]) first = k;
    if (first >= 0) {
      const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(jimages, first),
                                                         "file_name");
      fb_fail(st, "%s: images[%d].file_name '%s': %s", F, first, fn->valuestring,
              msgs[first].msg);
    }
    free(bad);
    free(msgs);
    if (first >= 0) goto done;
  }
  rc = 0;
done:
  cJSON_Delete(root);
  free(imgs);
  free(cats);
  free(count);
  if (rc) fb_mt_dataset_free(out);
  return rc;
}

/* ---- writers ------------------------------------------------------------ */

static void put_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static FILE *open_tmp(const char *path, char **tmp, fb_status *st) {
  size_t n = strlen(path);
  *tmp = fb_xmalloc(n + 5);
  memcpy(*tmp, path, n);
  memcpy(*tmp + n, ".tmp", 5);
  FILE *f = fopen(*tmp, "w");
  if (!f) {
    fb_fail(st, "%s: cannot create (%s)", path, strerror(errno));
    free(*tmp);
    *tmp = NULL;
  }
  return f;
}

static int close_tmp(FILE *f, const char *path, char *tmp, fb_status *st) {
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  int rc = 0;
  if (bad) {
    rc = fb_fail(st, "%s: write error", path);
    remove(tmp);
  } else if (rename(tmp, path) != 0) {
    rc = fb_fail(st, "%s: cannot rename from .tmp (%s)", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return rc;
}

/* %.9g prints every float exactly (reads back to the same float). */
int fb_coco_write_gt(const char *json_path, const fb_mt_dataset *d, fb_status *st) {
  /* validate first so that nothing is written for bad input */
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->has_boxes) continue;
    if (!s->file) return fb_fail(st, "%s: sample %d has no file name", json_path, i);
    for (int j = 0; j < i; j++)
      if (d->s[j].has_boxes && d->s[j].image_id == s->image_id)
        return fb_fail(st, "%s: samples %d and %d share image_id %d", json_path, j, i,
                       s->image_id);
    for (int k = 0; k < s->n_boxes; k++)
      if (s->boxes[k].cat < 0 || s->boxes[k].cat >= d->num_cats)
        return fb_fail(st, "%s: sample %d box %d: category index %d outside 0..%d", json_path, i,
                       k, s->boxes[k].cat, d->num_cats - 1);
  }
  char *tmp;
  FILE *f = open_tmp(json_path, &tmp, st);
  if (!f) return -1;
  fprintf(f, "{\"images\": [");
  int first = 1;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->has_boxes) continue;
    const char *base = strrchr(s->file, '/');
    base = base ? base + 1 : s->file;
    fprintf(f, "%s\n  {\"id\": %d, \"file_name\": ", first ? "" : ",", s->image_id);
    put_json_string(f, base);
    fprintf(f, ", \"width\": %d, \"height\": %d}", s->w, s->h);
    first = 0;
  }
  fprintf(f, "\n],\n\"annotations\": [");
  first = 1;
  long ann_id = 1;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->has_boxes) continue;
    for (int k = 0; k < s->n_boxes; k++) {
      const fb_box *b = &s->boxes[k];
      fprintf(f,
              "%s\n  {\"id\": %ld, \"image_id\": %d, \"category_id\": %d, "
              "\"bbox\": [%.9g, %.9g, %.9g, %.9g], \"area\": %.9g, \"iscrowd\": %d}",
              first ? "" : ",", ann_id++, s->image_id, d->cat_ids ? d->cat_ids[b->cat] : b->cat,
              (double)b->x, (double)b->y, (double)b->w, (double)b->h, (double)b->area,
              b->iscrowd ? 1 : 0);
      first = 0;
    }
  }
  fprintf(f, "\n],\n\"categories\": [");
  for (int k = 0; k < d->num_cats; k++) {
    int id = d->cat_ids ? d->cat_ids[k] : k;
    fprintf(f, "%s\n  {\"id\": %d, \"name\": ", k ? "," : "", id);
    if (d->cat_names && d->cat_names[k]) {
      put_json_string(f, d->cat_names[k]);
    } else {
      fprintf(f, "\"cat%d\"", id);
    }
    fputc('}', f);
  }
  fprintf(f, "\n]}\n");
  return close_tmp(f, json_path, tmp, st);
}

int fb_coco_write_results(const char *json_path, const fb_det *dets, int n, const int *cat_ids,
                          fb_status *st) {
  char *tmp;
  FILE *f = open_tmp(json_path, &tmp, st);
  if (!f) return -1;
  fputc('[', f);
  for (int i = 0; i < n; i++) {
    const fb_box *b = &dets[i].box;
    fprintf(f,
            "%s\n{\"image_id\": %d, \"category_id\": %d, \"bbox\": [%.9g, %.9g, %.9g, %.9g], "
            "\"score\": %.9g}",
            i ? "," : "", dets[i].image_id, cat_ids ? cat_ids[b->cat] : b->cat, (double)b->x,
            (double)b->y, (double)b->w, (double)b->h, (double)b->score);
  }
  fputs("\n]\n", f);
  return close_tmp(f, json_path, tmp, st);
}

/* Reads a COCO results file back into detections; category ids are mapped to
 * contiguous indices through cat_ids[0..num_cats) (NULL: identity). The
 * caller frees *dets. */
int fb_coco_load_results(const char *json_path, const int *cat_ids, int num_cats, fb_det **dets,
                         int *n, fb_status *st) {
  *dets = NULL;
  *n = 0;
  size_t len = 0;
  char *text = read_text(json_path, &len, st);
  if (!text) return -1;
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  if (!root) return fb_fail(st, "%s: invalid JSON", json_path);
  if (!cJSON_IsArray(root)) {
    cJSON_Delete(root);
    return fb_fail(st, "%s: results must be an array, found %s", json_path, type_name(root));
  }
  int m = cJSON_GetArraySize(root);
  fb_det *out = fb_xcalloc((size_t)m + 1, sizeof *out);
  int i = 0;
  const cJSON *r;
  cJSON_ArrayForEach(r, root) {
    int cat_id;
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(r, "bbox");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, "score");
    if (!cJSON_IsObject(r) ||
        get_int(r, "image_id", json_path, "results", i, 0, 0, &out[i].image_id, st) ||
        get_int(r, "category_id", json_path, "results", i, 0, 0, &cat_id, st))
      goto fail;
    int ci = -1;
    if (!cat_ids) {
      ci = cat_id >= 0 && cat_id < num_cats ? cat_id : -1;
    } else {
      for (int k = 0; k < num_cats; k++)
        if (cat_ids[k] == cat_id) ci = k;
    }
    if (ci < 0) {
      fb_fail(st, "%s: results[%d].category_id %d is not in categories", json_path, i, cat_id);
      goto fail;
    }
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) {
      fb_fail(st, "%s: results[%d].bbox: must be an array of 4 numbers", json_path, i);
      goto fail;
    }
    float v[4];
    for (int k = 0; k < 4; k++) {
      const cJSON *e = cJSON_GetArrayItem(bb, k);
      if (!cJSON_IsNumber(e)) {
        fb_fail(st, "%s: results[%d].bbox[%d]: must be a number", json_path, i, k);
        goto fail;
      }
      v[k] = (float)e->valuedouble;
    }
    if (!cJSON_IsNumber(sc)) {
      fb_fail(st, "%s: results[%d].score: must be a number, found %s", json_path, i,
              type_name(sc));
      goto fail;
    }
    out[i].box = (fb_box){v[0], v[1], v[2], v[3], ci, 0, v[2] * v[3], (float)sc->valuedouble};
    i++;
  }
  cJSON_Delete(root);
  *dets = out;
  *n = m;
  return 0;
fail:
  if (!cJSON_IsObject(r))
    fb_fail(st, "%s: results[%d]: must be an object, found %s", json_path, i, type_name(r));
  cJSON_Delete(root);
  free(out);
  return -1;
}
