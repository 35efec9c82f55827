/* Classification image folders: DIR/<class>/<image>.{png,jpg,jpeg}. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/status.h"
#include "data/formats.h"

/* Names of the entries of `dir` (hidden ones skipped) that are directories
 * (want_dir) or image files, sorted with strcmp. */
typedef struct name_list {
  char **v;
  int n;
} name_list;

static void names_free(name_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int fb_is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
         strcasecmp(dot, ".jpeg") == 0;
}

/* want_dir 1: sub-directories; 0: image files (by extension). */
int fb_list_dir(const char *dir, int want_dir, char ***names, int *count, fb_status *st) {
  DIR *d = opendir(dir);
  if (!d) return fb_fail_io(st, "%s: cannot open directory (%s)", dir, strerror(errno));
  name_list l = {NULL, 0};
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *full = fb_path_join(dir, e->d_name);
    struct stat sb;
    int ok = stat(full, &sb) == 0;
    free(full);
    if (!ok) continue;
    int is_dir = S_ISDIR(sb.st_mode);
    if (want_dir ? !is_dir : (!S_ISREG(sb.st_mode) || !fb_is_image_name(e->d_name))) continue;
    l.v = fb_xrealloc(l.v, ((size_t)l.n + 1) * sizeof *l.v);
    l.v[l.n++] = strdup(e->d_name);
  }
  closedir(d);
  if (l.n > 1) qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
  *names = l.v;
  *count = l.n;
  return 0;
}

int fb_imagefolder_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  name_list cls = {NULL, 0};
  if (fb_list_dir(dir, 1, &cls.v, &cls.n, st)) return -1;
  if (cls.n == 0)
    return fb_fail(st, "%s: no class folders (expected DIR/<class>/<image>.png|jpg)", dir);
  out->root = fb_xstrdup(dir);
  out->num_classes = cls.n;
  out->class_names = cls.v; /* owned by out from here on */
  for (int k = 0; k < cls.n; k++) {
    char *sub = fb_path_join(dir, cls.v[k]);
    name_list files = {NULL, 0};
    if (fb_list_dir(sub, 0, &files.v, &files.n, st)) {
      free(sub);
      fb_mt_dataset_free(out);
      return -1;
    }
    if (files.n == 0) {
      fb_fail(st, "%s: class folder '%s' contains no images (.png, .jpg, .jpeg)", sub, cls.v[k]);
      free(sub);
      fb_mt_dataset_free(out);
      return -1;
    }
    for (int i = 0; i < files.n; i++) {
      fb_sample s;
      memset(&s, 0, sizeof s);
      s.file = fb_path_join(sub, files.v[i]);
      s.label = k;
      s.image_id = out->n;
      if (fb_image_read(s.file, want_c, &s.px, &s.h, &s.w, &s.c, st)) {
        free(s.file);
        names_free(&files);
        free(sub);
        fb_mt_dataset_free(out);
        return -1;
      }
      fb_mt_dataset_push(out, &s);
    }
    names_free(&files);
    free(sub);
  }
  return 0;
}

/* Appends the images under dir (recursively, in sorted order) to out. */
static int tree_walk(const char *dir, int want_c, int depth, fb_mt_dataset *out, fb_status *st) {
  if (depth > 32) return fb_fail(st, "%s: directories nested more than 32 deep", dir);
  name_list subs = {NULL, 0}, files = {NULL, 0};
  int rc = fb_list_dir(dir, 0, &files.v, &files.n, st) || fb_list_dir(dir, 1, &subs.v, &subs.n, st);
  for (int i = 0; rc == 0 && i < files.n; i++) {
    fb_sample s;
    memset(&s, 0, sizeof s);
    s.file = fb_path_join(dir, files.v[i]);
    s.label = -1;
    s.image_id = out->n;
    if (fb_image_read(s.file, want_c, &s.px, &s.h, &s.w, &s.c, st)) {
      free(s.file);
      rc = -1;
      break;
    }
    fb_mt_dataset_push(out, &s);
  }
  for (int i = 0; rc == 0 && i < subs.n; i++) {
    char *sub = fb_path_join(dir, subs.v[i]);
    rc = tree_walk(sub, want_c, depth + 1, out, st);
    free(sub);
  }
  names_free(&files);
  names_free(&subs);
  return rc ? -1 : 0;
}

int fb_imagetree_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  if (tree_walk(dir, want_c, 0, out, st)) {
    fb_mt_dataset_free(out);
    return -1;
  }
  if (out->n == 0) {
    fb_mt_dataset_free(out);
    return fb_fail(st, "%s: no images (.png, .jpg, .jpeg) in it or its sub-folders", dir);
  }
  out->root = fb_xstrdup(dir);
  return 0;
}
