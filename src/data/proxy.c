/* The proxy multi-task data set: writer (used by `fbnet label`) and reader
 * (one fb_mt_dataset with class labels, pseudo boxes and pseudo masks). The
 * layout is described in proxy.h and docs/proxy-data.md. */
#include "data/proxy.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "data/formats.h"
#include "tasks/task.h"

/* ---- small helpers ------------------------------------------------------ */

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = fb_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

static const char *base_name(const char *path) {
  const char *b = strrchr(path, '/');
  return b ? b + 1 : path;
}

static void free_names(char **v, int n) {
  if (!v) return;
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* 1 when dir holds any entry other than . and .. */
static int dir_has_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int any = 0;
  while (!any && (e = readdir(d)) != NULL)
    any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return any;
}

/* Non-empty lines of a names file (trailing blanks and CR stripped). */
static int read_names(const char *path, char ***names, int *n, fb_status *st) {
  if (fb_read_lines(path, names, n, st)) return -1;
  if (*n == 0) return fb_fail(st, "%s: no names (one name per line expected)", path);
  return 0;
}

static int write_names(const char *path, char *const *names, int n, const char *dflt_prefix,
                       fb_status *st) {
  fb_strbuf b = {0};
  for (int k = 0; k < n; k++) {
    if (names && names[k])
      fb_sb_printf(&b, "%s\n", names[k]);
    else
      fb_sb_printf(&b, "%s%d\n", dflt_prefix, k);
  }
  int rc = fb_write_file_atomic(path, b.s, b.n, st);
  free(b.s);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- manifest -------------------------------------------------------- */


typedef struct manifest {
  cJSON *root;
  unsigned tasks;
  const cJSON *splits; /* array of strings */
} manifest;

static int manifest_read(const char *dir, manifest *m, fb_status *st) {
  memset(m, 0, sizeof *m);
  char *path = strf("%s/proxy.json", dir);
  int rc = -1;
  m->root = fb_json_read_file(path, st);
  if (!m->root) {
    if (strstr(st->msg, "cannot open"))
      fb_fail(st, "%s: missing manifest: %s is not a proxy data set (written by fbnet label)",
              path, dir);
    goto done;
  }
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(m->root, "format");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FB_PROXY_FORMAT) != 0) {
    fb_fail(st, "%s: format: expected \"%s\", found %s%s%s", path, FB_PROXY_FORMAT,
            cJSON_IsString(fmt) ? "\"" : fb_json_type_name(fmt),
            cJSON_IsString(fmt) ? fmt->valuestring : "",
            cJSON_IsString(fmt) ? "\"" : "");
    goto done;
  }
  const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(m->root, "tasks");
  if (!cJSON_IsArray(tasks)) {
    fb_fail(st, "%s: tasks: must be an array of \"cls\", \"det\", \"seg\", found %s", path,
            fb_json_type_name(tasks));
    goto done;
  }
  int i = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, tasks) {
    const fb_task_row *row = cJSON_IsString(t) ? fb_task_named(t->valuestring) : NULL;
    const unsigned bit = row ? row->id : 0;
    if (!bit) {
      fb_fail(st, "%s: tasks[%d]: must be \"cls\", \"det\" or \"seg\"", path, i);
      goto done;
    }
    m->tasks |= bit;
    i++;
  }
  if (!(m->tasks & FB_TASK_CLS)) {
    fb_fail(st, "%s: tasks: \"cls\" missing (every proxy image has a class label)", path);
    goto done;
  }
  m->splits = cJSON_GetObjectItemCaseSensitive(m->root, "splits");
  if (!cJSON_IsArray(m->splits)) {
    fb_fail(st, "%s: splits: must be an array of split names, found %s", path,
            fb_json_type_name(m->splits));
    goto done;
  }
  i = 0;
  cJSON_ArrayForEach(t, m->splits) {
    if (!cJSON_IsString(t) || !t->valuestring[0]) {
      fb_fail(st, "%s: splits[%d]: must be a non-empty string", path, i);
      goto done;
    }
    i++;
  }
  rc = 0;
done:
  free(path);
  if (rc) {
    cJSON_Delete(m->root);
    m->root = NULL;
  }
  return rc;
}

static int manifest_has_split(const manifest *m, const char *split) {
  const cJSON *t;
  cJSON_ArrayForEach(t, m->splits) if (strcmp(t->valuestring, split) == 0) return 1;
  return 0;
}

static void tasks_text(unsigned tasks, char *buf, size_t n) {
  buf[0] = 0;
  for (int k = 0; fb_task_at(k); k++)
    if (tasks & fb_task_at(k)->id)
      snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "," : "", fb_task_at(k)->name);
}

int fb_proxy_tasks(const char *dir, unsigned *tasks, fb_status *st) {
  manifest m;
  if (manifest_read(dir, &m, st)) return -1;
  *tasks = m.tasks;
  cJSON_Delete(m.root);
  return 0;
}

/* Counts of one written split, for the manifest. */
typedef struct split_counts {
  int images, boxes, masks;
  double ignored; /* fraction of mask pixels equal to 255 */
} split_counts;

static cJSON *split_entry(const fb_proxy_info *info, const split_counts *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "images", c->images);
  if (info->tasks & FB_TASK_DET) {
    cJSON_AddNumberToObject(o, "boxes", c->boxes);
    cJSON_AddStringToObject(o, "det_teacher", info->det_teacher ? info->det_teacher : "");
    cJSON_AddNumberToObject(o, "score_thresh", info->score_thresh);
  }
  if (info->tasks & FB_TASK_SEG) {
    cJSON_AddNumberToObject(o, "masks", c->masks);
    cJSON_AddNumberToObject(o, "ignored_pixel_fraction", c->ignored);
    cJSON_AddStringToObject(o, "seg_teacher", info->seg_teacher ? info->seg_teacher : "");
    cJSON_AddNumberToObject(o, "mask_thresh", info->mask_thresh);
  }
  return o;
}

/* The new manifest: this run's fields, the splits and counts of an earlier
 * manifest (other splits) kept. */
static int manifest_write(const char *dir, const char *split, const fb_mt_dataset *d,
                          const fb_proxy_info *info, const split_counts *c, fb_status *st) {
  char *path = strf("%s/proxy.json", dir);
  manifest old = {0};
  struct stat sb;
  if (stat(path, &sb) == 0 && manifest_read(dir, &old, st)) {
    free(path);
    return -1;
  }
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", FB_PROXY_FORMAT);
  cJSON *tasks = cJSON_AddArrayToObject(root, "tasks");
  for (int k = 0; fb_task_at(k); k++)
    if (info->tasks & fb_task_at(k)->id)
      cJSON_AddItemToArray(tasks, cJSON_CreateString(fb_task_at(k)->name));
  cJSON *splits = cJSON_AddArrayToObject(root, "splits");
  cJSON *counts = cJSON_CreateObject();
  const cJSON *old_counts = old.root ? cJSON_GetObjectItemCaseSensitive(old.root, "counts") : NULL;
  const cJSON *t;
  if (old.root)
    cJSON_ArrayForEach(t, old.splits) {
      if (strcmp(t->valuestring, split) == 0) continue;
      cJSON_AddItemToArray(splits, cJSON_CreateString(t->valuestring));
      const cJSON *e = cJSON_GetObjectItemCaseSensitive(old_counts, t->valuestring);
      if (e) cJSON_AddItemToObject(counts, t->valuestring, cJSON_Duplicate(e, 1));
    }
  cJSON_AddItemToArray(splits, cJSON_CreateString(split));
  cJSON_AddItemToObject(counts, split, split_entry(info, c));
  cJSON_AddNumberToObject(root, "num_classes", d->num_classes);
  if (info->tasks & FB_TASK_DET) {
    cJSON_AddNumberToObject(root, "num_cats", d->num_cats);
    cJSON_AddStringToObject(root, "det_teacher", info->det_teacher ? info->det_teacher : "");
    cJSON_AddNumberToObject(root, "score_thresh", info->score_thresh);
  }
  if (info->tasks & FB_TASK_SEG) {
    cJSON_AddNumberToObject(root, "num_seg_classes", d->num_seg_classes);
    cJSON_AddStringToObject(root, "seg_teacher", info->seg_teacher ? info->seg_teacher : "");
    cJSON_AddNumberToObject(root, "mask_thresh", info->mask_thresh);
  }
  cJSON_AddItemToObject(root, "counts", counts);
  char *text = cJSON_Print(root);
  fb_strbuf b = {0};
  fb_sb_printf(&b, "%s\n", text);
  int rc = fb_write_file_atomic(path, b.s, b.n, st);
  free(b.s);
  cJSON_free(text);
  cJSON_Delete(root);
  cJSON_Delete(old.root);
  free(path);
  return rc;
}

/* ---- writer ------------------------------------------------------------- */

char *fb_proxy_file_name(const fb_mt_dataset *d, int i) {
  const fb_sample *s = &d->s[i];
  const char *cls = d->class_names && s->label >= 0 && s->label < d->num_classes
                        ? d->class_names[s->label]
                        : "unlabelled";
  return strf("%s__%s", cls, base_name(s->file));
}

/* "name.ext" -> "name" (malloc'd). */
static char *stem_of(const char *name) {
  char *s = fb_xstrdup(name);
  char *dot = strrchr(s, '.');
  if (dot && dot != s) *dot = 0;
  return s;
}

static int check_class_names_file(const char *dir, char *const *names, int n, fb_status *st) {
  char *path = strf("%s/cls_classes.txt", dir);
  struct stat sb;
  int rc = 0;
  if (stat(path, &sb) == 0) {
    char **old = NULL;
    int k = 0;
    rc = read_names(path, &old, &k, st);
    if (rc == 0 && k != n)
      rc = fb_fail(st, "%s: lists %d classes, this run has %d: use another output directory",
                   path, k, n);
    for (int i = 0; rc == 0 && i < n; i++)
      if (strcmp(old[i], names[i]) != 0)
        rc = fb_fail(st, "%s: class %d is '%s', this run's is '%s': use another output directory",
                     path, i, old[i], names[i]);
    free_names(old, k);
  }
  free(path);
  return rc;
}

/* 1 when the split directory holds nothing but empty images/ and masks/
 * folders (what fb_proxy_prepare leaves). */
static int split_dir_fresh(const char *sd, char *const sub[2]) {
  DIR *d = opendir(sd);
  if (!d) return 1;
  struct dirent *e;
  int fresh = 1;
  while (fresh && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int k = strcmp(e->d_name, "images") == 0 ? 0 : strcmp(e->d_name, "masks") == 0 ? 1 : -1;
    fresh = k >= 0 && !dir_has_entries(sub[k]);
  }
  closedir(d);
  return fresh;
}

/* Removes the plain files of dir (an earlier run's images or masks). */
static int remove_files(const char *dir, fb_status *st) {
  DIR *d = opendir(dir);
  if (!d) return 0; /* nothing there yet */
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    char *p = strf("%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && !S_ISDIR(sb.st_mode) && unlink(p) != 0)
      rc = fb_fail_io(st, "%s: cannot remove (%s)", p, strerror(errno));
    free(p);
  }
  closedir(d);
  return rc;
}

int fb_proxy_prepare(const char *dir, const char *split, unsigned tasks, char *const *class_names,
                     int num_classes, int force, fb_status *st) {
  if (!split[0] || strchr(split, '/') || strcmp(split, ".") == 0 || strcmp(split, "..") == 0)
    return fb_fail(st, "split '%s': must be a plain name such as train or val", split);
  if (fb_mkdir_p(dir, st)) return -1;
  char *path = strf("%s/proxy.json", dir);
  struct stat sb;
  int rc = 0;
  if (stat(path, &sb) == 0) {
    manifest m = {0};
    rc = manifest_read(dir, &m, st);
    if (rc == 0 && m.tasks != tasks) {
      char a[32], b[32];
      tasks_text(m.tasks, a, sizeof a);
      tasks_text(tasks, b, sizeof b);
      rc = fb_fail(st, "%s: the existing splits have tasks [%s], this run gives [%s]: use "
                   "another output directory", path, a, b);
    }
    cJSON_Delete(m.root); /* NULL after a failed read */
  }
  free(path);
  if (rc || check_class_names_file(dir, class_names, num_classes, st)) return -1;
  char *sd = strf("%s/%s", dir, split);
  char *sub[2] = {strf("%s/images", sd), strf("%s/masks", sd)};
  rc = fb_mkdir_p(sd, st);
  if (rc == 0 && force && !split_dir_fresh(sd, sub))
    rc = remove_files(sub[0], st) || remove_files(sub[1], st) || remove_files(sd, st) ? -1 : 0;
  if (rc == 0 && !split_dir_fresh(sd, sub))
    rc = fb_fail(st, "%s: already holds files (an earlier run?): remove it, choose another "
                 "--out or --split, or pass --force to replace them", sd);
  if (rc == 0) rc = fb_mkdir_p(sub[0], st);
  if (rc == 0 && (tasks & FB_TASK_SEG)) rc = fb_mkdir_p(sub[1], st);
  free(sub[0]);
  free(sub[1]);
  free(sd);
  return rc;
}

/* Copies a file byte for byte (PATH.tmp, then rename). */
static int copy_file(const char *src, const char *dst, fb_status *st) {
  size_t n = 0;
  char *b = fb_read_file(src, FB_FILE_ANY_SIZE, &n, st);
  if (!b) return -1;
  int rc = fb_write_file_atomic(dst, b, n, st);
  free(b);
  return rc;
}

/* Everything a split needs, checked before anything is written. */
static int check_samples(const char *dir, const fb_mt_dataset *d, const fb_proxy_info *info,
                         char **names, fb_status *st) {
  if (!(info->tasks & FB_TASK_CLS))
    return fb_fail(st, "%s: proxy tasks must include cls (every image has a class label)", dir);
  if (d->n < 1) return fb_fail(st, "%s: no images to write", dir);
  if (d->num_classes < 1 || !d->class_names)
    return fb_fail(st, "%s: the data set has no class names", dir);
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->file) return fb_fail(st, "%s: sample %d has no source file", dir, i);
    if (s->label < 0 || s->label >= d->num_classes)
      return fb_fail(st, "%s: sample %d (%s): class label %d outside 0..%d", dir, i, s->file,
                     s->label, d->num_classes - 1);
    if ((info->tasks & FB_TASK_DET) && !s->has_boxes)
      return fb_fail(st, "%s: sample %d (%s) has no boxes", dir, i, s->file);
    for (int k = 0; (info->tasks & FB_TASK_DET) && k < s->n_boxes; k++)
      if (s->boxes[k].cat < 0 || s->boxes[k].cat >= d->num_cats)
        return fb_fail(st, "%s: sample %d (%s) box %d: category %d outside 0..%d", dir, i,
                       s->file, k, s->boxes[k].cat, d->num_cats - 1);
    if ((info->tasks & FB_TASK_SEG) && (!s->mask || s->h < 1 || s->w < 1))
      return fb_fail(st, "%s: sample %d (%s) has no mask", dir, i, s->file);
  }
  if ((info->tasks & FB_TASK_SEG) && (d->num_seg_classes < 1 || d->num_seg_classes > 255))
    return fb_fail(st, "%s: %d segmentation classes (1..255 fit an 8-bit mask)", dir,
                   d->num_seg_classes);
  /* two images may not share a mask name (<stem>.png) */
  char **stems = fb_xmalloc((size_t)d->n * sizeof *stems);
  for (int i = 0; i < d->n; i++) stems[i] = stem_of(names[i]);
  qsort(stems, (size_t)d->n, sizeof *stems, cmp_str);
  int rc = 0;
  for (int i = 1; i < d->n && rc == 0; i++)
    if (strcmp(stems[i], stems[i - 1]) == 0)
      rc = fb_fail(st, "%s: two images map to the same name '%s' (same class and file name "
                   "apart from the extension)", dir, stems[i]);
  free_names(stems, d->n);
  return rc;
}

/* Copies the images and writes the masks (in parallel; the first failure in
 * sample order is reported). */
static int write_files(const char *sd, const fb_mt_dataset *d, const fb_proxy_info *info,
                       char **names, fb_status *st) {
  fb_status *msgs = fb_xcalloc((size_t)d->n, sizeof *msgs);
  int *bad = fb_xcalloc((size_t)d->n, sizeof *bad);
#pragma omp parallel for schedule(dynamic, 8)
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    char *dst = strf("%s/images/%s", sd, names[i]);
    bad[i] = copy_file(s->file, dst, &msgs[i]) != 0;
    free(dst);
    if (!bad[i] && (info->tasks & FB_TASK_SEG)) {
      char *stem = stem_of(names[i]);
      char *mp = strf("%s/masks/%s.png", sd, stem);
      bad[i] = fb_mask_write(mp, s->mask, s->h, s->w, &msgs[i]) != 0;
      free(mp);
      free(stem);
    }
  }
  int rc = 0;
  for (int i = 0; i < d->n && rc == 0; i++)
    if (bad[i]) rc = fb_fail(st, "%s", msgs[i].msg);
  free(msgs);
  free(bad);
  return rc;
}

/* DIR/<split>.json: COCO with every image (zero boxes too) and scores. */
static int write_coco(const char *path, const fb_mt_dataset *d, char **names, fb_status *st) {
  fb_strbuf b = {0};
  fb_sb_printf(&b, "{\"images\": [");
  for (int i = 0; i < d->n; i++) {
    fb_sb_printf(&b, "%s\n  {\"id\": %d, \"file_name\": ", i ? "," : "", d->s[i].image_id);
    fb_sb_json_string(&b, names[i]);
    fb_sb_printf(&b, ", \"width\": %d, \"height\": %d}", d->s[i].w, d->s[i].h);
  }
  fb_sb_printf(&b, "\n],\n\"annotations\": [");
  long id = 1;
  for (int i = 0; i < d->n; i++)
    for (int k = 0; k < d->s[i].n_boxes; k++) {
      const fb_box *x = &d->s[i].boxes[k];
      fb_sb_printf(&b,
                "%s\n  {\"id\": %ld, \"image_id\": %d, \"category_id\": %d, \"bbox\": [%.9g, "
                "%.9g, %.9g, %.9g], \"area\": %.9g, \"iscrowd\": %d, \"score\": %.9g}",
                id > 1 ? "," : "", id, d->s[i].image_id,
                d->cat_ids ? d->cat_ids[x->cat] : x->cat + 1, (double)x->x, (double)x->y,
                (double)x->w, (double)x->h, (double)x->area, x->iscrowd ? 1 : 0,
                (double)x->score);
      id++;
    }
  fb_sb_printf(&b, "\n],\n\"categories\": [");
  for (int k = 0; k < d->num_cats; k++) {
    int cid = d->cat_ids ? d->cat_ids[k] : k + 1;
    fb_sb_printf(&b, "%s\n  {\"id\": %d, \"name\": ", k ? "," : "", cid);
    if (d->cat_names && d->cat_names[k])
      fb_sb_json_string(&b, d->cat_names[k]);
    else
      fb_sb_printf(&b, "\"cat%d\"", cid);
    fb_sb_printf(&b, "}");
  }
  fb_sb_printf(&b, "\n]}\n");
  int rc = fb_write_file_atomic(path, b.s, b.n, st);
  free(b.s);
  return rc;
}

static int write_labels(const char *path, const fb_mt_dataset *d, char **names, fb_status *st) {
  fb_strbuf b = {0};
  fb_sb_printf(&b, "file,class\n");
  for (int i = 0; i < d->n; i++) {
    fb_sb_csv_field(&b, names[i]);
    fb_sb_printf(&b, ",");
    fb_sb_csv_field(&b, d->class_names[d->s[i].label]);
    fb_sb_printf(&b, "\n");
  }
  int rc = fb_write_file_atomic(path, b.s, b.n, st);
  free(b.s);
  return rc;
}

static split_counts count_split(const fb_mt_dataset *d, unsigned tasks) {
  split_counts c = {d->n, 0, 0, 0};
  double ign = 0, all = 0;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (tasks & FB_TASK_DET) c.boxes += s->n_boxes;
    if (!(tasks & FB_TASK_SEG) || !s->mask) continue;
    c.masks++;
    size_t np = (size_t)s->h * s->w;
    for (size_t p = 0; p < np; p++) ign += s->mask[p] == 255;
    all += (double)np;
  }
  c.ignored = all > 0 ? ign / all : 0;
  return c;
}

int fb_proxy_write(const char *dir, const char *split, const fb_mt_dataset *d,
                   const fb_proxy_info *info, fb_status *st) {
  char **names = fb_xmalloc(((size_t)d->n + 1) * sizeof *names);
  for (int i = 0; i < d->n; i++) names[i] = fb_proxy_file_name(d, i);
  char *sd = strf("%s/%s", dir, split);
  char *p1 = strf("%s/%s.json", dir, split), *p2 = strf("%s/classes.txt", sd);
  char *p3 = strf("%s/labels.csv", sd), *p4 = strf("%s/cls_classes.txt", dir);
  int rc = check_samples(dir, d, info, names, st) ||
           fb_proxy_prepare(dir, split, info->tasks, d->class_names, d->num_classes, 0, st) ||
           write_files(sd, d, info, names, st);
  if (rc == 0 && (info->tasks & FB_TASK_DET)) rc = write_coco(p1, d, names, st);
  if (rc == 0 && (info->tasks & FB_TASK_SEG))
    rc = write_names(p2, info->seg_class_names, d->num_seg_classes, "class_", st);
  if (rc == 0) rc = write_labels(p3, d, names, st);
  if (rc == 0) rc = write_names(p4, d->class_names, d->num_classes, "class_", st);
  split_counts c = count_split(d, info->tasks);
  /* the manifest last: a split it lists is complete */
  if (rc == 0) rc = manifest_write(dir, split, d, info, &c, st);
  free_names(names, d->n);
  free(sd);
  free(p1);
  free(p2);
  free(p3);
  free(p4);
  return rc ? -1 : 0;
}

/* ---- reader ------------------------------------------------------------- */

typedef struct csv_row {
  char *f[2]; /* file, class */
  int line;
} csv_row;

static void rows_free(csv_row *r, int n) {
  for (int i = 0; r && i < n; i++) {
    free(r[i].f[0]);
    free(r[i].f[1]);
  }
  free(r);
}

/* One CSV field starting at *pp (quoted with "" escapes, or plain up to a
 * comma or line end); advances *pp past it. */
static int csv_field(const char *path, int line, const char **pp, int *lines, char **out,
                     fb_status *st) {
  const char *p = *pp;
  fb_strbuf b = {0};
  fb_sb_printf(&b, "%s", "");
  if (*p == '"') {
    for (p++;; p++) {
      if (!*p) {
        free(b.s);
        return fb_fail(st, "%s: line %d: unterminated quoted field", path, line);
      }
      if (*p == '"' && p[1] != '"') break;
      if (*p == '"') p++;
      if (*p == '\n') (*lines)++;
      fb_sb_printf(&b, "%c", *p);
    }
    p++;
    if (*p && *p != ',' && *p != '\n' && !(*p == '\r' && p[1] == '\n')) {
      free(b.s);
      return fb_fail(st, "%s: line %d: text after a closing quote", path, line);
    }
  } else {
    for (; *p && *p != ',' && *p != '\n'; p++)
      if (!(*p == '\r' && p[1] == '\n')) fb_sb_printf(&b, "%c", *p);
  }
  if (*p == '\r') p++;
  *pp = p;
  *out = b.s;
  return 0;
}

/* labels.csv: header "file,class", then one row of two fields per image. */
static int read_labels_csv(const char *path, csv_row **rows, int *n_rows, fb_status *st) {
  char *text = fb_read_text(path, FB_FILE_ANY_SIZE, st);
  if (!text) return -1;
  csv_row *r = NULL;
  int n = 0, line = 1, header = 1, rc = 0;
  const char *p = text;
  while (*p && rc == 0) {
    if (*p == '\n' || (*p == '\r' && p[1] == '\n')) { /* empty line */
      p += *p == '\r' ? 2 : 1;
      line++;
      continue;
    }
    int start = line, k = 0, lines = 0;
    char *f[3] = {NULL, NULL, NULL};
    for (;;) {
      char *x = NULL;
      if ((rc = csv_field(path, start, &p, &lines, &x, st)) != 0) break;
      if (k < 3) f[k] = x; else free(x);
      k++;
      if (*p != ',') break;
      p++;
    }
    if (*p == '\n') p++;
    line += 1 + lines;
    if (rc == 0 && k != 2)
      rc = fb_fail(st, "%s: line %d: expected 2 fields (file,class), found %d", path, start, k);
    if (rc == 0 && header && (strcmp(f[0], "file") != 0 || strcmp(f[1], "class") != 0))
      rc = fb_fail(st, "%s: line %d: header must be 'file,class'", path, start);
    if (rc == 0 && !header) {
      r = fb_xrealloc(r, ((size_t)n + 1) * sizeof *r);
      r[n++] = (csv_row){{f[0], f[1]}, start};
      f[0] = f[1] = NULL;
    }
    for (int j = 0; j < 3; j++) free(f[j]);
    header = 0;
  }
  free(text);
  if (rc == 0 && header) rc = fb_fail(st, "%s: empty file (header 'file,class' expected)", path);
  if (rc == 0 && n == 0) rc = fb_fail(st, "%s: no rows after the header", path);
  if (rc) {
    rows_free(r, n);
    return -1;
  }
  *rows = r;
  *n_rows = n;
  return 0;
}

/* Sorted (name, index) lookup table. */
typedef struct name_idx {
  const char *name;
  int idx;
} name_idx;

static int cmp_name_idx(const void *a, const void *b) {
  const name_idx *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static name_idx *make_index(int n, const char *(*get)(const void *, int), const void *ctx) {
  name_idx *t = fb_xmalloc(((size_t)n + 1) * sizeof *t);
  for (int i = 0; i < n; i++) t[i] = (name_idx){get(ctx, i), i};
  qsort(t, (size_t)n, sizeof *t, cmp_name_idx);
  return t;
}

static int lookup(const name_idx *t, int n, const char *name) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(t[mid].name, name);
    if (c == 0) {
      while (mid > 0 && strcmp(t[mid - 1].name, name) == 0) mid--;
      return t[mid].idx;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static const char *get_class(const void *ctx, int i) { return ((char *const *)ctx)[i]; }
static const char *get_row_file(const void *ctx, int i) { return ((const csv_row *)ctx)[i].f[0]; }
static const char *get_sample_file(const void *ctx, int i) {
  return ((const fb_mt_dataset *)ctx)->s[i].file;
}

/* Every row: a known class, a plain unique file name. Fills labels[]. */
static int check_rows(const char *path, const csv_row *r, int n, const fb_mt_dataset *d,
                      int *labels, fb_status *st) {
  name_idx *cls = make_index(d->num_classes, get_class, d->class_names);
  name_idx *files = make_index(n, get_row_file, r);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    labels[i] = lookup(cls, d->num_classes, r[i].f[1]);
    if (labels[i] < 0)
      rc = fb_fail(st, "%s: line %d: class '%s' is not in cls_classes.txt", path, r[i].line,
                   r[i].f[1]);
    else if (!r[i].f[0][0] || strchr(r[i].f[0], '/'))
      rc = fb_fail(st, "%s: line %d: file '%s' must be a plain file name in images/", path,
                   r[i].line, r[i].f[0]);
  }
  for (int i = 1; i < n && rc == 0; i++)
    if (strcmp(files[i].name, files[i - 1].name) == 0)
      rc = fb_fail(st, "%s: line %d: file '%s' already listed on line %d", path,
                   r[files[i].idx].line, files[i].name, r[files[i - 1].idx].line);
  free(cls);
  free(files);
  return rc;
}

/* det: the boxes of every row from the COCO file (matched by file_name), and
 * every COCO image must have a row. Moves the boxes into d->s[i]. */
static int attach_boxes(const char *json, const char *csv, const csv_row *r, int n_rows,
                        fb_mt_dataset *d, int *coco_index, fb_status *st) {
  fb_mt_dataset c;
  if (fb_coco_load(json, NULL, 0, &c, st)) return -1;
  name_idx *byname = make_index(c.n, get_sample_file, &c);
  name_idx *rows = make_index(n_rows, get_row_file, r);
  int rc = 0;
  for (int i = 1; i < c.n && rc == 0; i++)
    if (strcmp(byname[i].name, byname[i - 1].name) == 0)
      rc = fb_fail(st, "%s: images[%d].file_name '%s' duplicates images[%d]", json, byname[i].idx,
                   byname[i].name, byname[i - 1].idx);
  for (int i = 0; i < c.n && rc == 0; i++)
    if (lookup(rows, n_rows, c.s[i].file) < 0)
      rc = fb_fail(st, "%s: images[%d].file_name '%s' has no row in %s", json, i, c.s[i].file, csv);
  for (int i = 0; i < d->n && rc == 0; i++) {
    int k = lookup(byname, c.n, r[i].f[0]);
    if (k < 0) {
      rc = fb_fail(st, "%s: no image with file_name '%s' (%s line %d)", json, r[i].f[0], csv,
                   r[i].line);
      break;
    }
    fb_sample *s = &d->s[i], *cs = &c.s[k];
    coco_index[i] = k;
    s->image_id = cs->image_id;
    s->has_boxes = 1;
    s->n_boxes = cs->n_boxes;
    s->boxes = cs->boxes;
    s->h = cs->h; /* the JSON size, checked against the decoded image later */
    s->w = cs->w;
    cs->boxes = NULL;
    cs->n_boxes = 0;
  }
  if (rc == 0) {
    d->num_cats = c.num_cats;
    d->cat_ids = c.cat_ids;
    d->cat_names = c.cat_names;
    c.cat_ids = NULL;
    c.cat_names = NULL;
    c.num_cats = 0;
  }
  free(byname);
  free(rows);
  fb_mt_dataset_free(&c);
  return rc;
}

/* Decodes image i (and its mask) into d->s[i]; messages in msg. */
static void decode_one(const char *sd, const char *csv, const csv_row *row, unsigned tasks,
                       int num_seg, int json_h, int json_w, const char *json, int coco_idx,
                       fb_sample *s, fb_status *msg) {
  char *path = strf("%s/images/%s", sd, row->f[0]);
  int h = 0, w = 0, c = 0;
  s->file = path;
  if (fb_image_read(path, 3, &s->px, &h, &w, &c, msg)) {
    if (strstr(msg->msg, "cannot open"))
      fb_fail(msg, "%s: line %d: image '%s' not found (%s)", csv, row->line, row->f[0], path);
    return;
  }
  if ((tasks & FB_TASK_DET) && (h != json_h || w != json_w)) {
    fb_fail(msg, "%s: images[%d] '%s': width/height %dx%d, the image is %dx%d", json, coco_idx,
            row->f[0], json_w, json_h, w, h);
    return;
  }
  s->h = h;
  s->w = w;
  s->c = c;
  if (!(tasks & FB_TASK_SEG)) return;
  char *stem = stem_of(row->f[0]);
  char *mp = strf("%s/masks/%s.png", sd, stem);
  free(stem);
  int mh = 0, mw = 0;
  if (fb_mask_read(mp, &s->mask, &mh, &mw, msg)) {
    if (strstr(msg->msg, "cannot open")) fb_fail(msg, "%s: missing mask for image %s", mp, path);
  } else if (mh != h || mw != w) {
    fb_fail(msg, "%s: mask size %dx%d differs from its image %s (%dx%d)", mp, mw, mh, path, w, h);
  } else {
    size_t np = (size_t)h * w;
    for (size_t p = 0; p < np; p++)
      if (s->mask[p] >= num_seg && s->mask[p] != 255) {
        fb_fail(msg, "%s: pixel (x=%zu, y=%zu): mask value %d is not a class (%d classes in "
                "classes.txt; 255 = ignore)", mp, p % (size_t)w, p / (size_t)w, s->mask[p],
                num_seg);
        break;
      }
  }
  free(mp);
}

static int decode_all(const char *sd, const char *csv, const char *json, const csv_row *r,
                      unsigned tasks, const int *coco_index, fb_mt_dataset *d, fb_status *st) {
  fb_status *msgs = fb_xcalloc((size_t)d->n, sizeof *msgs);
#pragma omp parallel for schedule(dynamic, 8)
  for (int i = 0; i < d->n; i++)
    decode_one(sd, csv, &r[i], tasks, d->num_seg_classes, d->s[i].h, d->s[i].w, json,
               coco_index[i], &d->s[i], &msgs[i]);
  int rc = 0;
  for (int i = 0; i < d->n && rc == 0; i++)
    if (msgs[i].msg[0]) rc = fb_fail(st, "%s", msgs[i].msg);
  free(msgs);
  return rc;
}

static int load_split(const char *dir, const char *split, int limit, const manifest *m,
                      fb_mt_dataset *d, fb_status *st) {
  char *sd = strf("%s/%s", dir, split), *csv = strf("%s/labels.csv", sd);
  char *cls = strf("%s/cls_classes.txt", dir), *json = strf("%s/%s.json", dir, split);
  char *segk = strf("%s/classes.txt", sd);
  csv_row *r = NULL;
  int n_rows = 0, rc = -1, *labels = NULL, *coco_index = NULL;
  if (read_names(cls, &d->class_names, &d->num_classes, st) ||
      read_labels_csv(csv, &r, &n_rows, st))
    goto done;
  labels = fb_xmalloc((size_t)n_rows * sizeof *labels);
  if (check_rows(csv, r, n_rows, d, labels, st)) goto done;
  int n = limit > 0 && limit < n_rows ? limit : n_rows;
  d->s = fb_xcalloc((size_t)n, sizeof *d->s);
  d->n = n;
  coco_index = fb_xcalloc((size_t)n, sizeof *coco_index);
  for (int i = 0; i < n; i++) {
    d->s[i].label = labels[i];
    d->s[i].image_id = i + 1;
  }
  if ((m->tasks & FB_TASK_DET) && attach_boxes(json, csv, r, n_rows, d, coco_index, st)) goto done;
  if (m->tasks & FB_TASK_SEG) {
    char **segn = NULL;
    if (read_names(segk, &segn, &d->num_seg_classes, st)) goto done;
    free_names(segn, d->num_seg_classes);
    if (d->num_seg_classes > 255) {
      fb_fail(st, "%s: %d classes; at most 255 fit an 8-bit mask with 255 = ignore", segk,
              d->num_seg_classes);
      goto done;
    }
  }
  rc = decode_all(sd, csv, json, r, m->tasks, coco_index, d, st);
done:
  rows_free(r, n_rows);
  free(labels);
  free(coco_index);
  free(sd);
  free(csv);
  free(cls);
  free(json);
  free(segk);
  return rc;
}

int fb_proxy_load(const char *dir, const char *split, int limit, fb_mt_dataset *d,
                  fb_status *st) {
  memset(d, 0, sizeof *d);
  manifest m;
  if (manifest_read(dir, &m, st)) return -1;
  int rc = 0;
  if (!manifest_has_split(&m, split))
    rc = fb_fail(st, "%s/proxy.json: splits: '%s' is not listed (no such split)", dir, split);
  if (rc == 0) rc = load_split(dir, split, limit, &m, d, st);
  cJSON_Delete(m.root);
  if (rc) fb_mt_dataset_free(d);
  return rc;
}
