/* Demo scenes in memory: boxes are the tight bounds of each item's visible
 * pixels, mask pixels agree with the instance map and lie in their item's box,
 * the scene label is the largest item, the visible-area and occlusion rules
 * hold, and scenes are deterministic (also when made on several threads). */
#include <math.h>
#include <ftw.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "data/fmnist.h"
#include "data/formats.h"
#include "data/scenes.h"

/* Synthetic 28x28 items: class c = i % 10. Kind 0: soft-edged disc of random
 * radius (values ramp 0..255 over 3 px, so edges are ambiguous); kind 1:
 * solid 255 everywhere; kind 2: faint (max 20, below any threshold). */
static void make_source(fb_dataset_u8 *d, int n, int kind) {
  d->n = n;
  d->h = d->w = 28;
  d->num_classes = 10;
  d->images = malloc((size_t)n * 28 * 28);
  d->labels = malloc((size_t)n);
  for (int i = 0; i < n; i++) {
    d->labels[i] = (uint8_t)(i % 10);
    double r = 5 + (i * 7) % 9; /* 5..13 */
    for (int y = 0; y < 28; y++)
      for (int x = 0; x < 28; x++) {
        int v;
        if (kind == 1) {
          v = 255;
        } else {
          double dx = x - 13.5, dy = y - 13.5, dist = dx * dx + dy * dy;
          double e = (r - sqrt(dist)) / 3.0; /* >= 1 inside, <= 0 outside */
          v = e >= 1 ? 255 : e <= 0 ? 0 : (int)(255 * e);
          if (kind == 2) v = v * 20 / 255;
        }
        d->images[(size_t)i * 784 + y * 28 + x] = (uint8_t)v;
      }
  }
}

/* Checks every labelling rule of one scene; returns the number of 255 pixels. */
static int check_scene(const fb_scene *s, const fb_scene_opts *o, const fb_dataset_u8 *src,
                       const char *what) {
  int size = s->size, n = s->n_items, ignore = 0;
  CHECK(n >= 1 && n <= o->max_items, "%s: %d items", what, n);
  int area[FB_SCENE_MAX_ITEMS] = {0}, x0[FB_SCENE_MAX_ITEMS], y0[FB_SCENE_MAX_ITEMS],
      x1[FB_SCENE_MAX_ITEMS], y1[FB_SCENE_MAX_ITEMS];
  for (int k = 0; k < n; k++) x0[k] = y0[k] = size, x1[k] = y1[k] = -1;
  int bad_mask = 0, bad_inst = 0;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      int p = y * size + x, k = s->inst[p], m = s->mask[p];
      if (k < -1 || k >= n) {
        bad_inst++;
        continue;
      }
      if (k >= 0) {
        area[k]++;
        if (x < x0[k]) x0[k] = x;
        if (x > x1[k]) x1[k] = x;
        if (y < y0[k]) y0[k] = y;
        if (y > y1[k]) y1[k] = y;
      }
      if (m == 255) {
        ignore++;
      } else if (m == 0) {
        bad_mask += k != -1;
      } else {
        /* a class pixel belongs to the visible item of that class and lies in its box */
        bad_mask += k < 0 || m != s->items[k].cls + 1 || x < s->items[k].bx0 ||
                    x > s->items[k].bx1 || y < s->items[k].by0 || y > s->items[k].by1;
      }
    }
  CHECK(bad_inst == 0, "%s: %d instance ids out of range", what, bad_inst);
  CHECK(bad_mask == 0, "%s: %d mask pixels disagree with the instance map or boxes", what,
        bad_mask);
  int min_vis = o->min_visible > 0 ? o->min_visible : (size * size / 200 < 8 ? 8 : size * size / 200);
  int best = 0;
  for (int k = 0; k < n; k++) {
    const fb_scene_item *t = &s->items[k];
    CHECK(t->area == area[k], "%s item %d: area %d, counted %d", what, k, t->area, area[k]);
    CHECK(t->bx0 == x0[k] && t->by0 == y0[k] && t->bx1 == x1[k] && t->by1 == y1[k],
          "%s item %d: box %d,%d..%d,%d not tight (%d,%d..%d,%d)", what, k, t->bx0, t->by0, t->bx1,
          t->by1, x0[k], y0[k], x1[k], y1[k]);
    CHECK(t->area >= min_vis, "%s item %d: visible area %d < %d", what, k, t->area, min_vis);
    CHECK(t->area >= (1 - o->max_hidden) * t->own_area, "%s item %d: %d of %d px visible", what,
          k, t->area, t->own_area);
    CHECK(t->x >= 0 && t->y >= 0 && t->x + t->side <= size && t->y + t->side <= size &&
              t->side >= (int)(o->min_scale * size + 0.5) && t->side <= (int)(o->max_scale * size + 0.5),
          "%s item %d: placement %d,%d side %d", what, k, t->x, t->y, t->side);
    CHECK(t->cls == src->labels[t->src_index], "%s item %d: class", what, k);
    if (t->area > s->items[best].area) best = k;
  }
  CHECK(s->label == s->items[best].cls, "%s: label %d, largest item class %d", what, s->label,
        s->items[best].cls);
  return ignore;
}

static int same_scene(const fb_scene *a, const fb_scene *b) {
  size_t npx = (size_t)a->size * a->size;
  return a->size == b->size && a->n_items == b->n_items && a->label == b->label &&
         memcmp(a->px, b->px, npx * 3) == 0 && memcmp(a->mask, b->mask, npx) == 0 &&
         memcmp(a->inst, b->inst, npx) == 0 &&
         memcmp(a->items, b->items, sizeof(fb_scene_item) * (size_t)a->n_items) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* Writes a tiny demo set and reads it back with the standard loaders: the
 * files carry exactly the scenes that fb_scene_make gives for their seeds. */
static void check_roundtrip(const fb_dataset_u8 *fm_train) {
  char dir[] = "/tmp/fbnet_test_scenes_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp failed");
    return;
  }
  fb_status st = {0};
  fb_scenes_config cfg = {.out_dir = dir, .scene = fb_scene_opts_default(), .seed = 11,
                          .n_train = 12, .n_val = 10, .n_proxy = 10, .force = 1};
  int rc = fb_scenes_write(&cfg, &st);
  CHECK(rc == 0, "fb_scenes_write: %s", st.msg);
  if (rc == 0) {
    char a[512], b[512];
    fb_mt_dataset det = {0}, seg = {0}, cls = {0};
    snprintf(a, sizeof a, "%s/det/train.json", dir);
    snprintf(b, sizeof b, "%s/det/train/images", dir);
    rc = fb_coco_load(a, b, 3, &det, &st);
    CHECK(rc == 0 && det.n == 12 && det.num_cats == 10, "det/train loads: %s", st.msg);
    for (int i = 0; rc == 0 && i < det.n; i++) {
      fb_scene sc;
      fb_scene_make(fm_train, &cfg.scene, fb_scene_seed(11, FB_SCENE_SET_DET, FB_SCENE_TRAIN, i),
                    -1, &sc, &st);
      const fb_sample *s = &det.s[i];
      int same = s->n_boxes == sc.n_items && s->h == 64 && s->c == 3 &&
                 memcmp(s->px, sc.px, 64 * 64 * 3) == 0;
      for (int k = 0; same && k < sc.n_items; k++) {
        const fb_box *bx = &s->boxes[k];
        const fb_scene_item *t = &sc.items[k];
        same = bx->x == t->bx0 && bx->y == t->by0 && bx->w == t->bx1 - t->bx0 + 1 &&
               bx->h == t->by1 - t->by0 + 1 && det.cat_ids[bx->cat] == t->cls + 1 &&
               bx->area == t->area && !bx->iscrowd;
      }
      CHECK(same, "det/train image %d: pixels and boxes as generated", i);
      fb_scene_free(&sc);
    }
    snprintf(a, sizeof a, "%s/seg/val", dir);
    rc = fb_segset_load(a, 3, &seg, &st);
    CHECK(rc == 0 && seg.n == 10 && seg.num_seg_classes == FB_SCENE_SEG_CLASSES, "seg/val loads: %s",
          st.msg);
    snprintf(a, sizeof a, "%s/cls/train", dir);
    rc = fb_imagefolder_load(a, 3, &cls, &st);
    CHECK(rc == 0 && cls.n == 12 && cls.num_classes == 10 &&
              strcmp(cls.class_names[0], "0_tshirt_top") == 0 &&
              strcmp(cls.class_names[9], "9_ankle_boot") == 0,
          "cls/train loads with 10 classes in label order: %s", st.msg);
    int labels_ok = 0;
    for (int i = 0; rc == 0 && i < cls.n; i++) {
      /* file NNNNNN.png is scene NNNNNN-1 */
      const char *base = strrchr(cls.s[i].file, '/');
      int id = atoi(base ? base + 1 : cls.s[i].file);
      fb_scene sc;
      fb_scene_make(fm_train, &cfg.scene, fb_scene_seed(11, FB_SCENE_SET_CLS, FB_SCENE_TRAIN, id - 1),
                    (id - 1) % 10, &sc, &st);
      labels_ok += cls.s[i].label == sc.label && memcmp(cls.s[i].px, sc.px, 64 * 64 * 3) == 0;
      fb_scene_free(&sc);
    }
    CHECK(labels_ok == 12, "cls labels and pixels as generated (%d of 12)", labels_ok);
    fb_mt_dataset_free(&det);
    fb_mt_dataset_free(&seg);
    fb_mt_dataset_free(&cls);
    snprintf(a, sizeof a, "%s/proxy/truth/det.json", dir);
    CHECK(access(a, R_OK) == 0, "proxy truth written");
    cfg.n_val = 5;
    CHECK(fb_scenes_write(&cfg, &st) != 0 && strstr(st.msg, "val count 5"), "5 val scenes: %s",
          st.msg);
    cfg.n_val = 10;
    /* an existing non-empty directory needs force */
    cfg.force = 0;
    CHECK(fb_scenes_write(&cfg, &st) != 0 && strstr(st.msg, "not empty"), "non-empty out: %s",
          st.msg);
  }
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  fb_status st = {0};
  fb_scene_opts o = fb_scene_opts_default();
  fb_dataset_u8 discs = {0}, solid = {0}, faint = {0};
  make_source(&discs, 50, 0);
  make_source(&solid, 20, 1);
  make_source(&faint, 10, 2);

  /* 1. the labelling rules on many scenes, with ambiguous edges */
  int ignore = 0, items = 0, hist[FB_SCENE_MAX_ITEMS + 1] = {0};
  for (int i = 0; i < 300; i++) {
    fb_scene s;
    char what[64];
    snprintf(what, sizeof what, "disc scene %d", i);
    if (fb_scene_make(&discs, &o, fb_scene_seed(7, 1, 0, i), -1, &s, &st) != 0) {
      CHECK(0, "%s: %s", what, st.msg);
      continue;
    }
    ignore += check_scene(&s, &o, &discs, what);
    items += s.n_items;
    hist[s.n_items]++;
    fb_scene_free(&s);
  }
  CHECK(ignore > 0, "soft edges give ignore pixels (%d)", ignore);
  CHECK(hist[1] > 0 && hist[4] > 0, "1 and 4 items both occur (%d, %d)", hist[1], hist[4]);
  CHECK(items > 300 * 2 && items < 300 * 3, "mean items per scene %.2f in (2, 3)", items / 300.0);

  /* 2. solid squares: the instance map is the topmost square covering a pixel,
   * every covered pixel is a class pixel, occlusion leaves >= half of each. */
  for (int i = 0; i < 100; i++) {
    fb_scene s;
    if (fb_scene_make(&solid, &o, fb_scene_seed(3, 0, 1, i), -1, &s, &st) != 0) {
      CHECK(0, "solid %d: %s", i, st.msg);
      continue;
    }
    char what[64];
    snprintf(what, sizeof what, "solid scene %d", i);
    CHECK(check_scene(&s, &o, &solid, what) == 0, "%s: no ignore pixels on solid squares", what);
    int bad = 0;
    for (int y = 0; y < s.size; y++)
      for (int x = 0; x < s.size; x++) {
        int top = -1;
        for (int k = 0; k < s.n_items; k++) {
          const fb_scene_item *t = &s.items[k];
          if (x >= t->x && x < t->x + t->side && y >= t->y && y < t->y + t->side) top = k;
        }
        int p = y * s.size + x;
        bad += s.inst[p] != top || s.mask[p] != (top < 0 ? 0 : s.items[top].cls + 1);
      }
    CHECK(bad == 0, "%s: %d pixels differ from the topmost covering square", what, bad);
    for (int k = 0; k < s.n_items; k++)
      CHECK(s.items[k].own_area == s.items[k].side * s.items[k].side, "%s: own area", what);
    fb_scene_free(&s);
  }

  /* 3. visible-area rule: items too faint to be seen are never pasted */
  {
    fb_scene s;
    int rc = fb_scene_make(&faint, &o, 1, -1, &s, &st);
    CHECK(rc != 0 && strstr(st.msg, "visible pixels"), "faint source rejected: %s", st.msg);
    fb_dataset_u8 mixed = {0};
    make_source(&mixed, 40, 0);
    for (int i = 0; i < 20; i++) /* half the items faint */
      for (int p = 0; p < 784; p++) mixed.images[(size_t)i * 784 + p] /= 13;
    int faint_used = 0;
    for (int i = 0; i < 100; i++) {
      if (fb_scene_make(&mixed, &o, fb_scene_seed(5, 2, 0, i), -1, &s, &st) != 0) {
        CHECK(0, "mixed %d: %s", i, st.msg);
        continue;
      }
      for (int k = 0; k < s.n_items; k++) faint_used += s.items[k].src_index < 20;
      check_scene(&s, &o, &mixed, "mixed scene");
      fb_scene_free(&s);
    }
    CHECK(faint_used == 0, "faint items pasted %d times", faint_used);
    fb_dataset_u8_free(&mixed);
  }

  /* 4. determinism: same seed -> same scene; serial == parallel; other
   * seeds, sets, splits and indices -> other scenes */
  {
    fb_scene a, b;
    fb_scene_make(&discs, &o, fb_scene_seed(1, 1, 0, 5), -1, &a, &st);
    fb_scene_make(&discs, &o, fb_scene_seed(1, 1, 0, 5), -1, &b, &st);
    CHECK(same_scene(&a, &b), "same seed, same scene");
    fb_scene_free(&b);
    uint64_t seeds[4] = {fb_scene_seed(2, 1, 0, 5), fb_scene_seed(1, 2, 0, 5),
                         fb_scene_seed(1, 1, 1, 5), fb_scene_seed(1, 1, 0, 6)};
    for (int v = 0; v < 4; v++) {
      fb_scene_make(&discs, &o, seeds[v], -1, &b, &st);
      CHECK(!same_scene(&a, &b), "variant %d gives another scene", v);
      fb_scene_free(&b);
    }
    fb_scene_free(&a);
    enum { N = 48 };
    static fb_scene ser[N], par[N];
    for (int i = 0; i < N; i++) fb_scene_make(&discs, &o, fb_scene_seed(9, 0, 0, i), -1, &ser[i], &st);
#pragma omp parallel for schedule(dynamic, 1) num_threads(4)
    for (int i = N - 1; i >= 0; i--) {
      fb_status ls = {0};
      fb_scene_make(&discs, &o, fb_scene_seed(9, 0, 0, i), -1, &par[i], &ls);
    }
    int diff = 0;
    for (int i = 0; i < N; i++) {
      diff += !same_scene(&ser[i], &par[i]);
      fb_scene_free(&ser[i]);
      fb_scene_free(&par[i]);
    }
    CHECK(diff == 0, "%d of %d scenes differ between serial and 4 threads", diff, N);
  }

  /* 5. other sizes and item counts */
  {
    fb_scene_opts o2 = o;
    o2.size = 128;
    o2.min_items = 3;
    o2.max_items = 6;
    for (int i = 0; i < 20; i++) {
      fb_scene s;
      if (fb_scene_make(&discs, &o2, fb_scene_seed(4, 0, 0, i), -1, &s, &st) != 0) {
        CHECK(0, "128px %d: %s", i, st.msg);
        continue;
      }
      CHECK(s.n_items >= 1, "128 px scene has items");
      check_scene(&s, &o2, &discs, "128px scene");
      fb_scene_free(&s);
    }
  }

  /* 6. bad options name the field */
  {
    fb_scene_opts b = o;
    b.min_items = 5;
    CHECK(fb_scene_opts_check(&b, &st) != 0 && strstr(st.msg, "min-items"), "min > max: %s",
          st.msg);
    b = o;
    b.size = 16;
    CHECK(fb_scene_opts_check(&b, &st) != 0 && strstr(st.msg, "size"), "size 16: %s", st.msg);
    b = o;
    b.size = 2048;
    CHECK(fb_scene_opts_check(&b, &st) != 0, "size 2048 rejected");
    b = o;
    b.max_items = FB_SCENE_MAX_ITEMS + 1;
    CHECK(fb_scene_opts_check(&b, &st) != 0, "too many items rejected");
    CHECK(fb_scene_opts_check(&o, &st) == 0, "defaults valid");
    CHECK(strcmp(fb_scene_class_name(0), "tshirt_top") == 0 &&
              strcmp(fb_scene_class_name(9), "ankle_boot") == 0,
          "class names");
  }

  /* 7. real Fashion-MNIST items when the package is installed */
  fb_dataset_u8 fm = {0};
  if (fb_fmnist_load(NULL, 0, &fm, &st) == 0) {
    int ign = 0;
    for (int i = 0; i < 50; i++) {
      fb_scene s;
      if (fb_scene_make(&fm, &o, fb_scene_seed(1, 1, 1, i), -1, &s, &st) != 0) {
        CHECK(0, "fmnist %d: %s", i, st.msg);
        continue;
      }
      ign += check_scene(&s, &o, &fm, "fmnist scene");
      fb_scene_free(&s);
    }
    CHECK(ign > 0, "fmnist scenes have ignore edges");
    for (int c = 0; c < 10; c++) {
      fb_scene s;
      if (fb_scene_make(&fm, &o, fb_scene_seed(2, 0, 0, c), c, &s, &st) != 0) {
        CHECK(0, "want_label %d: %s", c, st.msg);
        continue;
      }
      CHECK(s.label == c, "want_label %d gives label %d", c, s.label);
      check_scene(&s, &o, &fm, "want_label scene");
      fb_scene_free(&s);
    }
    fb_dataset_u8_free(&fm);
    if (fb_fmnist_load(NULL, 1, &fm, &st) == 0) check_roundtrip(&fm);
    fb_dataset_u8_free(&fm);
  } else {
    printf("skip: Fashion-MNIST not installed (%s)\n", st.msg);
  }

  fb_dataset_u8_free(&discs);
  fb_dataset_u8_free(&solid);
  fb_dataset_u8_free(&faint);
  return check_report("scenes");
}
