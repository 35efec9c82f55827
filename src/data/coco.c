/* COCO detection JSON: the one reader (cJSON) with validation of every field
 * we use (also of proxy sets' pseudo-labels, whose boxes carry a score),
 * ground-truth writer and results writer. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "data/formats.h"

/* Tolerance of the "box inside the image" check for float rounding. */
#define BOX_TOL 1e-3

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
                   fb_json_type_name(v));
  if (fb_json_int_in_range(v, INT_MIN, INT_MAX, out))
    return fb_fail(st, "%s: %s[%d].%s: must be an integer, found %g", file, arr, i, key,
                   v->valuedouble);
  return 0;
}

static int get_array(const cJSON *root, const char *key, const char *file, const cJSON **out,
                     fb_status *st) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v) return fb_fail(st, "%s: missing key \"%s\" (COCO needs images, annotations, categories)",
                         file, key);
  if (!cJSON_IsArray(v))
    return fb_fail(st, "%s: \"%s\" must be an array, found %s", file, key, fb_json_type_name(v));
  *out = v;
  return 0;
}

static int parse_categories(const cJSON *cats, const char *file, fb_mt_dataset *out,
                            fb_status *st) {
  int n = cJSON_GetArraySize(cats);
  fb_id_pair *p = fb_xmalloc(((size_t)n + 1) * sizeof *p);
  int i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cats) {
    if (!cJSON_IsObject(c)) {
      free(p);
      return fb_fail(st, "%s: categories[%d]: must be an object, found %s", file, i,
                     fb_json_type_name(c));
    }
    if (get_int(c, "id", file, "categories", i, 0, 0, &p[i].id, st)) {
      free(p);
      return -1;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (!cJSON_IsString(name)) {
      free(p);
      return fb_fail(st, "%s: categories[%d].name: must be a string, found %s", file, i,
                     fb_json_type_name(name));
    }
    p[i].idx = i;
    i++;
  }
  fb_id_pairs_sort(p, n);
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
  cJSON *root = fb_json_read_file(json_path, st);
  if (!root) return -1;
  const char *F = json_path;
  fb_id_pair *imgs = NULL, *cats = NULL;
  int *count = NULL;
  int rc = -1;
  const cJSON *jimages = NULL, *jann = NULL, *jcats = NULL;
  if (!cJSON_IsObject(root)) {
    fb_fail(st, "%s: top level must be an object, found %s", F, fb_json_type_name(root));
    goto done;
  }
  if (get_array(root, "images", F, &jimages, st) || get_array(root, "annotations", F, &jann, st) ||
      get_array(root, "categories", F, &jcats, st))
    goto done;
  if (parse_categories(jcats, F, out, st)) goto done;
  cats = fb_xmalloc(((size_t)out->num_cats + 1) * sizeof *cats);
  for (int k = 0; k < out->num_cats; k++) cats[k] = (fb_id_pair){out->cat_ids[k], k};

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
      fb_fail(st, "%s: images[%d]: must be an object, found %s", F, i, fb_json_type_name(im));
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
              cJSON_IsString(fn) ? "\"\"" : fb_json_type_name(fn));
      goto done;
    }
    s->file = image_dir ? fb_path_join(image_dir, fn->valuestring) : fb_xstrdup(fn->valuestring);
    imgs[i] = (fb_id_pair){s->image_id, i};
    i++;
  }
  fb_id_pairs_sort(imgs, ni);
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
        fb_fail(st, "%s: annotations[%d]: must be an object, found %s", F, a,
                fb_json_type_name(an));
        goto done;
      }
      int image_id = 0, cat_id = 0, crowd = 0;
      if (get_int(an, "image_id", F, "annotations", a, 0, 0, &image_id, st) ||
          get_int(an, "category_id", F, "annotations", a, 0, 0, &cat_id, st) ||
          get_int(an, "iscrowd", F, "annotations", a, 1, 0, &crowd, st))
        goto done;
      int si = fb_id_find(imgs, ni, image_id);
      if (si < 0) {
        fb_fail(st, "%s: annotations[%d].image_id %d is not in images", F, a, image_id);
        goto done;
      }
      int ci = fb_id_find(cats, out->num_cats, cat_id);
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
                F, a, cJSON_IsArray(bb) ? "an array of another length" : fb_json_type_name(bb));
        goto done;
      }
      double v[4];
      for (int k = 0; k < 4; k++) {
        const cJSON *e = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(e)) {
          fb_fail(st, "%s: annotations[%d].bbox[%d]: must be a number, found %s", F, a, k,
                  fb_json_type_name(e));
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
                  fb_json_type_name(ar));
          goto done;
        }
        if (!isfinite(ar->valuedouble) || ar->valuedouble < 0) {
          fb_fail(st, "%s: annotations[%d].area: must be a non-negative number, found %g", F, a,
                  ar->valuedouble);
          goto done;
        }
        area = ar->valuedouble;
      }
      double score = 1; /* pseudo-labels carry their teacher's score */
      const cJSON *sc = cJSON_GetObjectItemCaseSensitive(an, "score");
      if (sc && (!cJSON_IsNumber(sc) || !(sc->valuedouble >= 0 && sc->valuedouble <= 1))) {
        if (cJSON_IsNumber(sc))
          fb_fail(st, "%s: annotations[%d].score: must lie in [0, 1], found %g", F, a,
                  sc->valuedouble);
        else
          fb_fail(st, "%s: annotations[%d].score: must be a number in [0, 1], found %s", F, a,
                  fb_json_type_name(sc));
        goto done;
      }
      if (sc) score = sc->valuedouble;
      if (pass == 0) {
        count[si]++;
      } else {
        fb_box *b = &s->boxes[s->n_boxes++];
        *b = (fb_box){(float)v[0], (float)v[1], (float)v[2], (float)v[3], ci, crowd,
                      (float)area, (float)score};
      }
      a++;
    }
    if (pass == 0)
      for (int k = 0; k < ni; k++)
        if (count[k]) out->s[k].boxes = fb_xmalloc((size_t)count[k] * sizeof(fb_box));
  }

  /* decode every image (in parallel); the first failure in file order is reported */
  if (image_dir) {
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

/* The writers print into memory, then write the file atomically. */
typedef struct membuf {
  char *p;
  size_t n;
} membuf;

static FILE *open_mem(const char *path, membuf *m, fb_status *st) {
  *m = (membuf){NULL, 0};
  FILE *f = open_memstream(&m->p, &m->n);
  if (!f) fb_fail_io(st, "%s: cannot create (%s)", path, strerror(errno));
  return f;
}

static int close_mem(FILE *f, const char *path, membuf *m, fb_status *st) {
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  int rc = bad ? fb_fail(st, "%s: write error", path) : fb_write_file_atomic(path, m->p, m->n, st);
  free(m->p);
  return rc;
}

/* %.9g prints every float exactly (reads back to the same float). */
int fb_coco_write_gt(const char *json_path, const fb_mt_dataset *d, int all_images,
                     fb_status *st) {
  /* validate first so that nothing is written for bad input */
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->has_boxes && !all_images) continue;
    if (!s->file) return fb_fail(st, "%s: sample %d has no file name", json_path, i);
    for (int j = 0; j < i; j++)
      if ((d->s[j].has_boxes || all_images) && d->s[j].image_id == s->image_id)
        return fb_fail(st, "%s: samples %d and %d share image_id %d", json_path, j, i,
                       s->image_id);
    for (int k = 0; k < s->n_boxes; k++)
      if (s->boxes[k].cat < 0 || s->boxes[k].cat >= d->num_cats)
        return fb_fail(st, "%s: sample %d box %d: category index %d outside 0..%d", json_path, i,
                       k, s->boxes[k].cat, d->num_cats - 1);
  }
  membuf m;
  FILE *f = open_mem(json_path, &m, st);
  if (!f) return -1;
  fprintf(f, "{\"images\": [");
  int first = 1;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->has_boxes && !all_images) continue;
    fprintf(f, "%s\n  {\"id\": %d, \"file_name\": ", first ? "" : ",", s->image_id);
    fb_json_put_string(f, fb_sample_relname(d, s));
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
      fb_json_put_string(f, d->cat_names[k]);
    } else {
      fprintf(f, "\"cat%d\"", id);
    }
    fputc('}', f);
  }
  fprintf(f, "\n]}\n");
  return close_mem(f, json_path, &m, st);
}

int fb_coco_write_results(const char *json_path, const fb_det *dets, int n, const int *cat_ids,
                          fb_status *st) {
  membuf m;
  FILE *f = open_mem(json_path, &m, st);
  if (!f) return -1;
  fputc('[', f);
  for (int i = 0; i < n; i++) {
    const fb_box *b = &dets[i].box;
    fprintf(f,
            "%s\n{\"image_id\": %d, \"category_id\": %d, \"bbox\": [%.9g, %.9g, %.9g, %.9g], "
            "\"score\": %.17g}",
            i ? "," : "", dets[i].image_id, cat_ids ? cat_ids[b->cat] : b->cat, (double)b->x,
            (double)b->y, (double)b->w, (double)b->h, b->score);
  }
  fputs("\n]\n", f);
  return close_mem(f, json_path, &m, st);
}

/* Reads a COCO results file back into detections; category ids are mapped to
 * contiguous indices through cat_ids[0..num_cats) (NULL: identity). The
 * caller frees *dets. */
int fb_coco_load_results(const char *json_path, const int *cat_ids, int num_cats, fb_det **dets,
                         int *n, fb_status *st) {
  *dets = NULL;
  *n = 0;
  cJSON *root = fb_json_read_file(json_path, st);
  if (!root) return -1;
  if (!cJSON_IsArray(root)) {
    cJSON_Delete(root);
    return fb_fail(st, "%s: results must be an array, found %s", json_path,
                   fb_json_type_name(root));
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
              fb_json_type_name(sc));
      goto fail;
    }
    out[i].box = (fb_box){v[0], v[1], v[2], v[3], ci, 0, v[2] * v[3], sc->valuedouble};
    i++;
  }
  cJSON_Delete(root);
  *dets = out;
  *n = m;
  return 0;
fail:
  if (!cJSON_IsObject(r))
    fb_fail(st, "%s: results[%d]: must be an object, found %s", json_path, i, fb_json_type_name(r));
  cJSON_Delete(root);
  free(out);
  return -1;
}
