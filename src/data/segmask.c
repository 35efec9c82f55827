/* Segmentation sets: DIR/images/<name>.{png,jpg,jpeg}, DIR/masks/<name>.png
 * (8-bit class index per pixel, 255 = ignore), DIR/classes.txt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/formats.h"

/* Defined in image_io.c and imagefolder.c (not part of formats.h). */
int fb_mask_read(const char *path, uint8_t **mask, int *h, int *w, fb_status *st);

static char *cat3(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *p = fb_xmalloc(la + lb + lc + 1);
  memcpy(p, a, la);
  memcpy(p + la, b, lb);
  memcpy(p + la + lb, c, lc + 1);
  return p;
}

/* Counts the class names in classes.txt: one per non-empty line. */
static int read_classes(const char *path, int *num, fb_status *st) {
  FILE *f = fopen(path, "r");
  if (!f) return fb_fail_io(st, "%s: cannot open (%s)", path, strerror(errno));
  char line[4096];
  int n = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t l = strlen(line);
    if (l == sizeof line - 1 && line[l - 1] != '\n') {
      fclose(f);
      return fb_fail(st, "%s: line %d: class name too long", path, lineno);
    }
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' ||
                 line[l - 1] == '\t'))
      line[--l] = 0;
    if (l) n++;
  }
  fclose(f);
  if (n == 0) return fb_fail(st, "%s: no class names (one name per line expected)", path);
  if (n > 255)
    return fb_fail(st, "%s: %d classes; at most 255 fit an 8-bit mask with 255 = ignore", path, n);
  *num = n;
  return 0;
}

int fb_segset_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st) {
  memset(out, 0, sizeof *out);
  char *classes = cat3(dir, "/classes.txt", "");
  int k = 0;
  int rc = read_classes(classes, &k, st);
  free(classes);
  if (rc) return -1;
  char *img_dir = cat3(dir, "/images", "");
  char *mask_dir = cat3(dir, "/masks", "");
  char **names = NULL;
  int n = 0;
  rc = -1;
  if (fb_list_dir(img_dir, 0, &names, &n, st)) goto done;
  if (n == 0) {
    fb_fail(st, "%s: no images (.png, .jpg, .jpeg)", img_dir);
    goto done;
  }
  out->num_seg_classes = k;
  for (int i = 0; i < n; i++) {
    char *stem = strdup(names[i]);
    *strrchr(stem, '.') = 0; /* fb_list_dir keeps only names with an image extension */
    if (i > 0) {
      size_t ls = strlen(stem);
      if (strncmp(names[i - 1], stem, ls) == 0 && names[i - 1][ls] == '.') {
        fb_fail(st, "%s: images '%s' and '%s' share the mask name '%s.png'", img_dir,
                names[i - 1], names[i], stem);
        free(stem);
        goto done;
      }
    }
    fb_sample s;
    memset(&s, 0, sizeof s);
    s.label = -1;
    s.image_id = i;
    s.file = cat3(img_dir, "/", names[i]);
    char *mpath = cat3(mask_dir, "/", stem);
    char *mfile = cat3(mpath, ".png", "");
    free(mpath);
    free(stem);
    int mh = 0, mw = 0, bad = 0;
    if (fb_image_read(s.file, want_c, &s.px, &s.h, &s.w, &s.c, st)) {
      bad = 1;
    } else if (fb_mask_read(mfile, &s.mask, &mh, &mw, st)) {
      if (st && strstr(st->msg, ": cannot open (")) {
        fb_fail(st, "%s: missing mask for image %s", mfile, s.file);
      }
      bad = 1;
    } else if (mh != s.h || mw != s.w) {
      fb_fail(st, "%s: mask size %dx%d differs from its image %s (%dx%d)", mfile, mw, mh, s.file,
              s.w, s.h);
      bad = 1;
    } else {
      size_t np = (size_t)s.h * (size_t)s.w;
      for (size_t p = 0; p < np; p++)
        if (s.mask[p] >= k && s.mask[p] != 255) {
          fb_fail(st,
                  "%s: pixel (x=%zu, y=%zu): mask value %d is not a class (%d classes in "
                  "classes.txt; 255 = ignore)",
                  mfile, p % (size_t)s.w, p / (size_t)s.w, s.mask[p], k);
          bad = 1;
          break;
        }
    }
    free(mfile);
    if (bad) {
      free(s.file);
      free(s.px);
      free(s.mask);
      goto done;
    }
    fb_mt_dataset_push(out, &s);
  }
  rc = 0;
done:
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  free(img_dir);
  free(mask_dir);
  if (rc) fb_mt_dataset_free(out);
  return rc;
}
