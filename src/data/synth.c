#include "data/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"

typedef struct rect {
  int x0, y0, x1, y1, cat; /* [x0, x1) x [y0, y1) */
} rect;

static rect draw_rect(fb_rng *r, int size, int num_cats) {
  rect q;
  int w = size / 5 + (int)fb_rng_below(r, (uint32_t)(size / 2));
  int h = size / 5 + (int)fb_rng_below(r, (uint32_t)(size / 2));
  q.x0 = (int)fb_rng_below(r, (uint32_t)(size - w + 1));
  q.y0 = (int)fb_rng_below(r, (uint32_t)(size - h + 1));
  q.x1 = q.x0 + w;
  q.y1 = q.y0 + h;
  q.cat = (int)fb_rng_below(r, (uint32_t)num_cats);
  return q;
}

/* Paints the rectangles in order (later on top) into px and mask. */
static void paint(fb_sample *s, const rect *q, int n, int num_cats, fb_rng *r) {
  const int S = s->w;
  for (int i = 0; i < S * S * 3; i++) s->px[i] = (uint8_t)(20 + fb_rng_below(r, 20));
  memset(s->mask, 0, (size_t)S * S);
  for (int k = 0; k < n; k++)
    for (int y = q[k].y0; y < q[k].y1; y++)
      for (int x = q[k].x0; x < q[k].x1; x++) {
        uint8_t *p = &s->px[(y * S + x) * 3];
        const int c = q[k].cat;
        p[0] = (uint8_t)(80 + 170 * c / num_cats);
        p[1] = (uint8_t)(250 - 170 * c / num_cats);
        p[2] = (uint8_t)(120 + 60 * (c % 2));
        s->mask[y * S + x] = (uint8_t)(c + 1);
      }
}

/* Boxes = visible extents of each rectangle in the mask. */
static void boxes_from_mask(fb_sample *s, const rect *q, int n) {
  const int S = s->w;
  s->boxes = fb_xcalloc((size_t)n, sizeof *s->boxes);
  s->has_boxes = 1;
  int best = -1, best_area = 0;
  for (int k = 0; k < n; k++) {
    int x0 = S, y0 = S, x1 = -1, y1 = -1, area = 0;
    for (int y = q[k].y0; y < q[k].y1; y++)
      for (int x = q[k].x0; x < q[k].x1; x++) {
        int top = -1; /* the last rectangle covering (x, y) */
        for (int j = 0; j < n; j++)
          if (x >= q[j].x0 && x < q[j].x1 && y >= q[j].y0 && y < q[j].y1) top = j;
        if (top != k) continue;
        area++;
        if (x < x0) x0 = x;
        if (y < y0) y0 = y;
        if (x > x1) x1 = x;
        if (y > y1) y1 = y;
      }
    if (area == 0) continue;
    fb_box *b = &s->boxes[s->n_boxes++];
    b->x = (float)x0;
    b->y = (float)y0;
    b->w = (float)(x1 - x0 + 1);
    b->h = (float)(y1 - y0 + 1);
    b->cat = q[k].cat;
    b->area = (float)area;
    b->score = 1.0f;
    if (area > best_area) best_area = area, best = k;
  }
  s->label = best >= 0 ? q[best].cat : 0;
}

static char **names(const char *prefix, int n) {
  char **v = fb_xcalloc((size_t)n, sizeof *v);
  for (int i = 0; i < n; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%s%d", prefix, i);
    v[i] = fb_xstrdup(buf);
  }
  return v;
}

int fb_synth_dataset(int n, int size, int num_cats, uint64_t seed, fb_mt_dataset *d,
                     fb_status *st) {
  memset(d, 0, sizeof *d);
  if (n < 1 || size < 16 || size > 4096 || num_cats < 1 || num_cats > 200)
    return fb_fail(st, "synthetic data: n %d, size %d, categories %d out of range", n, size,
                   num_cats);
  fb_rng r;
  fb_rng_seed(&r, seed);
  for (int i = 0; i < n; i++) {
    fb_sample s;
    memset(&s, 0, sizeof s);
    char name[32];
    snprintf(name, sizeof name, "synth/%06d.png", i);
    s.file = fb_xstrdup(name);
    s.image_id = i + 1;
    s.h = s.w = size;
    s.c = 3;
    s.px = fb_xmalloc((size_t)size * size * 3);
    s.mask = fb_xmalloc((size_t)size * size);
    rect q[3];
    const int m = 1 + (int)fb_rng_below(&r, 3);
    for (int k = 0; k < m; k++) q[k] = draw_rect(&r, size, num_cats);
    paint(&s, q, m, num_cats, &r);
    boxes_from_mask(&s, q, m);
    fb_mt_dataset_push(d, &s);
  }
  d->num_classes = num_cats;
  d->class_names = names("class", num_cats);
  d->num_cats = num_cats;
  d->cat_names = names("cat", num_cats);
  d->cat_ids = fb_xmalloc((size_t)num_cats * sizeof *d->cat_ids);
  for (int c = 0; c < num_cats; c++) d->cat_ids[c] = c + 1;
  d->num_seg_classes = num_cats + 1;
  return 0;
}
