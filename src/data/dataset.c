/* Ownership helpers of the multi-task data set (dataset.h). */
#include "data/dataset.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static void free_names(char **names, int n) {
  if (!names) return;
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

void fb_mt_dataset_free(fb_mt_dataset *d) {
  if (!d) return;
  for (int i = 0; i < d->n; i++) {
    fb_sample *s = &d->s[i];
    free(s->file);
    free(s->px);
    free(s->boxes);
    free(s->mask);
  }
  free(d->s);
  free_names(d->class_names, d->num_classes);
  free_names(d->cat_names, d->num_cats);
  free(d->cat_ids);
  free(d->root);
  memset(d, 0, sizeof *d);
}

const char *fb_sample_relname(const fb_mt_dataset *d, const fb_sample *s) {
  size_t n = d->root ? strlen(d->root) : 0;
  while (n > 1 && d->root[n - 1] == '/') n--;
  if (n && strncmp(s->file, d->root, n) == 0 && s->file[n] == '/') return s->file + n + 1;
  const char *base = strrchr(s->file, '/');
  return base ? base + 1 : s->file;
}

void fb_mt_dataset_push(fb_mt_dataset *d, fb_sample *s) {
  /* grow geometrically; the capacity is read from the allocator so that an
   * array allocated by the caller (any malloc'd size) also works */
  int n = d->n;
  size_t need = ((size_t)n + 1) * sizeof *d->s;
  if (!d->s || malloc_usable_size(d->s) < need) d->s = fb_xrealloc(d->s, 2 * need);
  d->s[n] = *s;
  d->n = n + 1;
  memset(s, 0, sizeof *s);
  s->label = -1;
}
