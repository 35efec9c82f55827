/* Multi-task batch loader (see loader.h for the geometry and the randomness). */
#include "data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/augment.h"

#ifdef _OPENMP
#include <omp.h>
#endif

fb_loader_cfg fb_loader_cfg_default(int size, int channels, int batch, int train) {
  fb_loader_cfg c;
  memset(&c, 0, sizeof c);
  c.size = size;
  c.channels = channels;
  for (int k = 0; k < 3; k++) {
    c.mean[k] = 0.5f;
    c.std[k] = 0.25f;
  }
  c.train = train;
  c.hflip = 1;
  c.scale_min = 0.75f;
  c.scale_max = 1.25f;
  c.batch = batch;
  c.seed = 1;
  c.threads = 1;
  c.prefetch = 2;
  c.drop_last = 0;
  return c;
}

int fb_loader_cfg_check(const fb_loader_cfg *c, fb_status *st) {
  if (c->size < 1 || c->size > 8192)
    return fb_fail(st, "loader: size %d outside 1..8192", c->size);
  if (c->channels != 1 && c->channels != 3)
    return fb_fail(st, "loader: channels %d (must be 1 or 3)", c->channels);
  for (int k = 0; k < c->channels; k++)
    if (!(c->std[k] > 0) || !isfinite(c->mean[k]))
      return fb_fail(st, "loader: std[%d] = %g must be positive, mean[%d] = %g finite", k,
                     (double)c->std[k], k, (double)c->mean[k]);
  if (c->train && !(c->scale_min > 0 && c->scale_min <= c->scale_max && c->scale_max < 100))
    return fb_fail(st, "loader: scale range [%g, %g] must satisfy 0 < min <= max < 100",
                   (double)c->scale_min, (double)c->scale_max);
  if (c->batch < 1) return fb_fail(st, "loader: batch %d must be >= 1", c->batch);
  if (c->content < 0 || c->content > c->size)
    return fb_fail(st, "loader: content %d outside 0..size (%d)", c->content, c->size);
  if (c->threads < 1 || c->threads > 256)
    return fb_fail(st, "loader: threads %d outside 1..256", c->threads);
  if (c->prefetch < 0 || c->prefetch > 16)
    return fb_fail(st, "loader: prefetch %d outside 0..16", c->prefetch);
  if (c->parts > 1 && (!c->train || !c->drop_last || c->part_first < 0 || c->part_count < 1 ||
                       c->part_first + c->part_count > c->parts))
    return fb_fail(st, "loader: parts %d..%d of %d (training batches with drop_last only)",
                   c->part_first, c->part_first + c->part_count - 1, c->parts);
  return 0;
}

/* ---- geometry ----------------------------------------------------------- */

fb_geom fb_geom_draw(const fb_loader_cfg *c, int h, int w, fb_rng *rng) {
  fb_geom g = {(float)c->size / (float)(h > w ? h : w), 0, 0, 0};
  if (!c->train && c->content > 0) { /* centred: (S - C) / 2 like augment.c's canvas */
    g.scale = (float)c->content / (float)(h > w ? h : w);
    g.off_x = (c->size - (int)lround(w * (double)g.scale)) / 2;
    g.off_y = (c->size - (int)lround(h * (double)g.scale)) / 2;
  }
  if (!c->train) return g;
  double u = c->scale_min + (c->scale_max - c->scale_min) * fb_rng_uniform(rng);
  g.scale = (float)(g.scale * u);
  double rw = w * (double)g.scale, rh = h * (double)g.scale;
  double dx = c->size - rw, dy = c->size - rh;
  /* a smaller image stays inside the canvas, a larger one covers it */
  int lo_x = dx < 0 ? (int)ceil(dx) : 0, hi_x = dx < 0 ? 0 : (int)floor(dx);
  int lo_y = dy < 0 ? (int)ceil(dy) : 0, hi_y = dy < 0 ? 0 : (int)floor(dy);
  g.off_x = lo_x + (int)fb_rng_below(rng, (uint32_t)(hi_x - lo_x + 1));
  g.off_y = lo_y + (int)fb_rng_below(rng, (uint32_t)(hi_y - lo_y + 1));
  if (c->hflip) g.flip = (int)fb_rng_below(rng, 2);
  return g;
}

int fb_geom_box(const fb_geom *g, int size, const fb_box *in, fb_box *out) {
  double s = g->scale;
  double x0 = in->x * s + g->off_x, y0 = in->y * s + g->off_y;
  double x1 = x0 + in->w * s, y1 = y0 + in->h * s;
  double cx0 = x0 < 0 ? 0 : x0, cy0 = y0 < 0 ? 0 : y0;
  double cx1 = x1 > size ? size : x1, cy1 = y1 > size ? size : y1;
  if (cx1 - cx0 < 1 || cy1 - cy0 < 1) return 0;
  double full = (x1 - x0) * (y1 - y0), kept = (cx1 - cx0) * (cy1 - cy0);
  *out = *in;
  out->x = (float)(g->flip ? size - cx1 : cx0);
  out->y = (float)cy0;
  out->w = (float)(cx1 - cx0);
  out->h = (float)(cy1 - cy0);
  out->area = (float)(in->area * s * s * (full > 0 ? kept / full : 1.0));
  return 1;
}

void fb_batch_box_to_orig(const fb_batch *b, int i, fb_box *box) {
  double s = b->scale[i];
  box->x = (float)((box->x - b->off_x[i]) / s);
  box->y = (float)((box->y - b->off_y[i]) / s);
  box->w = (float)(box->w / s);
  box->h = (float)(box->h / s);
  box->area = (float)(box->area / (s * s));
}

uint8_t *fb_batch_mask_to_orig(const fb_batch *b, int i, const uint8_t *m, int S, int h, int w) {
  uint8_t *o = fb_xmalloc((size_t)h * w);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int by = (int)((y + 0.5f) * b->scale[i] + b->off_y[i]);
      int bx = (int)((x + 0.5f) * b->scale[i] + b->off_x[i]);
      by = by < 0 ? 0 : by >= S ? S - 1 : by;
      bx = bx < 0 ? 0 : bx >= S ? S - 1 : bx;
      o[(size_t)y * w + x] = m[(size_t)by * S + bx];
    }
  return o;
}

/* Source sampling positions of one axis: for each output pixel whether its
 * centre lies in the image, the two bilinear taps and weight, and the
 * nearest source pixel (for masks). */
typedef struct axis_map {
  int *in, *i0, *i1, *near;
  float *t;
} axis_map;

static void axis_fill(axis_map *m, int size, int n, double s, int off) {
  for (int X = 0; X < size; X++) {
    double u = (X + 0.5 - off) / s; /* continuous source coordinate */
    m->in[X] = u >= 0 && u < n;
    int nr = (int)floor(u);
    m->near[X] = nr < 0 ? 0 : nr >= n ? n - 1 : nr;
    double p = u - 0.5;
    if (p < 0) p = 0;
    if (p > n - 1) p = n - 1;
    int a = (int)floor(p);
    if (a > n - 2) a = n - 2 < 0 ? 0 : n - 2;
    double t = p - a;
    m->i0[X] = a;
    m->i1[X] = a + 1 < n ? a + 1 : a;
    m->t[X] = (float)t;
  }
}

/* Renders item `s` with geometry g into img (c, S, S) and mask (S, S). */
static void render_item(const fb_loader_cfg *c, const fb_sample *s, const fb_geom *g, float *img,
                        uint8_t *mask, int *scratch_i, float *scratch_f) {
  int S = c->size;
  axis_map mx = {scratch_i, scratch_i + S, scratch_i + 2 * S, scratch_i + 3 * S, scratch_f};
  axis_map my = {scratch_i + 4 * S, scratch_i + 5 * S, scratch_i + 6 * S, scratch_i + 7 * S,
                 scratch_f + S};
  axis_fill(&mx, S, s->w, g->scale, g->off_x);
  axis_fill(&my, S, s->h, g->scale, g->off_y);
  int sc = s->c, oc = c->channels;
  float a[3], b[3];
  for (int k = 0; k < oc; k++) {
    a[k] = 1.0f / (255.0f * c->std[k]);
    b[k] = -c->mean[k] / c->std[k];
  }
  size_t plane = (size_t)S * S;
  for (int Y = 0; Y < S; Y++) {
    const uint8_t *r0 = s->px + (size_t)my.i0[Y] * s->w * sc;
    const uint8_t *r1 = s->px + (size_t)my.i1[Y] * s->w * sc;
    float ty = my.t[Y];
    for (int X = 0; X < S; X++) {
      int Xo = g->flip ? S - 1 - X : X;
      size_t o = (size_t)Y * S + Xo;
      if (!(my.in[Y] && mx.in[X])) {
        for (int k = 0; k < oc; k++) img[k * plane + o] = c->content > 0 ? b[k] : 0.0f;
        if (mask) mask[o] = 255;
        continue;
      }
      int x0 = mx.i0[X] * sc, x1 = mx.i1[X] * sc;
      float tx = mx.t[X];
      float v[3];
      for (int k = 0; k < sc; k++) {
        float top = r0[x0 + k] + tx * (r0[x1 + k] - r0[x0 + k]);
        float bot = r1[x0 + k] + tx * (r1[x1 + k] - r1[x0 + k]);
        v[k] = top + ty * (bot - top);
      }
      if (sc == 1 && oc == 3) {
        v[1] = v[2] = v[0];
      } else if (sc == 3 && oc == 1) {
        v[0] = 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
      }
      for (int k = 0; k < oc; k++) img[k * plane + o] = v[k] * a[k] + b[k];
      if (mask) mask[o] = s->mask ? s->mask[(size_t)my.near[Y] * s->w + mx.near[X]] : 255;
    }
  }
}

/* ---- batches ------------------------------------------------------------ */

static void batch_alloc(fb_batch *b, int n, int c, int S, int max_boxes, int masks) {
  memset(b, 0, sizeof *b);
  b->c = c;
  b->size = S;
  b->images = fb_alloc_floats((size_t)n * c * S * S);
  b->labels = fb_xcalloc((size_t)n, sizeof(int));
  b->n_boxes = fb_xcalloc((size_t)n, sizeof(int));
  b->boxes = fb_xcalloc((size_t)n, sizeof(fb_box *));
  for (int i = 0; i < n; i++) b->boxes[i] = fb_xcalloc((size_t)max_boxes + 1, sizeof(fb_box));
  b->masks = masks ? fb_xmalloc((size_t)n * S * S) : NULL;
  b->index = fb_xcalloc((size_t)n, sizeof(int));
  b->scale = fb_xcalloc((size_t)n, sizeof(float));
  b->off_x = fb_xcalloc((size_t)n, sizeof(float));
  b->off_y = fb_xcalloc((size_t)n, sizeof(float));
}

static void batch_free(fb_batch *b, int cap) {
  if (b->boxes)
    for (int i = 0; i < cap; i++) free(b->boxes[i]);
  free(b->images);
  free(b->labels);
  free(b->n_boxes);
  free(b->boxes);
  free(b->masks);
  free(b->index);
  free(b->scale);
  free(b->off_x);
  free(b->off_y);
}

struct fb_loader {
  const fb_mt_dataset *d;
  fb_loader_cfg cfg;
  int nb;           /* batches per epoch */
  int *order;       /* item order of the current epoch */
  long epoch;
  int nslots;
  fb_batch *slots;
  int *scratch_i;   /* per thread: 8 S ints */
  float *scratch_f; /* per thread: 2 S floats */
  fb_geom *geom;    /* batch-size decisions */
  /* producer/consumer state, guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int th_running;
  int started;
  int built;    /* batches of this epoch finished */
  int released; /* batches whose slot the consumer gave back */
  int next_k;   /* next batch the consumer gets */
  int stop;
};

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Builds batch k of the current epoch into b (thread-safe w.r.t. the loader
 * state it reads: order, cfg, d are fixed during an epoch). */
static void build_batch(fb_loader *l, int j, fb_batch *b) {
  const fb_loader_cfg *c = &l->cfg;
  const int parts = c->parts > 1 ? c->parts : 1, count = parts > 1 ? c->part_count : 1;
  const int k = j / count, part = parts > 1 ? c->part_first + j % count : 0;
  int N = l->d->n, B = c->batch, S = c->size, G = B * parts;
  int n = N - k * G < B ? N - k * G : B; /* only an unsplit eval batch is ever short */
  const int *idx = l->order + (size_t)k * G + (size_t)part * B;
  fb_rng rng;
  fb_rng_seed(&rng, mix64(mix64(c->seed ^ mix64((uint64_t)l->epoch)) ^ (uint64_t)k));
  /* the global batch's draws in order, up to the end of this part */
  for (int i = 0; i < part * B + n; i++) {
    const fb_sample *s = &l->d->s[l->order[(size_t)k * G + i]];
    const fb_geom g = fb_geom_draw(c, s->h, s->w, &rng);
    if (i >= part * B) l->geom[i - part * B] = g;
  }
  b->n = n;
  size_t per_img = (size_t)c->channels * S * S;
#pragma omp parallel for num_threads(c->threads) if (c->threads > 1) schedule(dynamic, 1)
  for (int i = 0; i < n; i++) {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    const fb_sample *s = &l->d->s[idx[i]];
    const fb_geom *g = &l->geom[i];
    render_item(c, s, g, b->images + i * per_img, b->masks ? b->masks + (size_t)i * S * S : NULL,
                l->scratch_i + (size_t)t * 8 * S, l->scratch_f + (size_t)t * 2 * S);
    int m = 0;
    for (int j = 0; j < s->n_boxes; j++) m += fb_geom_box(g, S, &s->boxes[j], &b->boxes[i][m]);
    b->n_boxes[i] = m;
    b->labels[i] = s->label;
    b->index[i] = idx[i];
    b->scale[i] = g->scale;
    b->off_x[i] = (float)g->off_x;
    b->off_y[i] = (float)g->off_y;
  }
}

static void *worker(void *arg) {
  fb_loader *l = arg;
  for (int k = 0; k < l->nb; k++) {
    pthread_mutex_lock(&l->mu);
    while (!l->stop && l->built - l->released >= l->nslots) pthread_cond_wait(&l->cv, &l->mu);
    int stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    if (stop) break;
    build_batch(l, k, &l->slots[k % l->nslots]);
    pthread_mutex_lock(&l->mu);
    l->built = k + 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
  }
  return NULL;
}

static void stop_worker(fb_loader *l) {
  if (!l->th_running) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->th, NULL);
  l->th_running = 0;
  l->stop = 0;
}

fb_loader *fb_loader_create(const fb_mt_dataset *d, const fb_loader_cfg *cfg, fb_status *st) {
  if (fb_loader_cfg_check(cfg, st)) return NULL;
  if (!d || d->n < 1) {
    fb_fail(st, "loader: empty data set");
    return NULL;
  }
  int max_boxes = 0, masks = 0;
  for (int i = 0; i < d->n; i++) {
    const fb_sample *s = &d->s[i];
    if (!s->px || s->h < 1 || s->w < 1 || (s->c != 1 && s->c != 3)) {
      fb_fail(st, "loader: %s: item %d has no usable image (%dx%d, %d channels)",
              s->file ? s->file : "(no file)", i, s->w, s->h, s->c);
      return NULL;
    }
    if (s->n_boxes > max_boxes) max_boxes = s->n_boxes;
    if (s->mask) masks = 1;
  }
  fb_loader *l = fb_xcalloc(1, sizeof *l);
  l->d = d;
  l->cfg = *cfg;
  int B = cfg->batch;
  l->nb = cfg->train && cfg->drop_last ? d->n / B : (d->n + B - 1) / B;
  if (cfg->parts > 1) l->nb = d->n / (B * cfg->parts) * cfg->part_count;
  if (l->nb < 1) {
    free(l);
    fb_fail(st, "loader: %d items make no full batch of %d (drop_last)", d->n,
            B * (cfg->parts > 1 ? cfg->parts : 1));
    return NULL;
  }
  l->order = fb_xmalloc((size_t)d->n * sizeof(int));
  /* the consumer holds one slot while the worker fills `prefetch` others */
  l->nslots = cfg->prefetch > 0 ? cfg->prefetch + 1 : 1;
  l->slots = fb_xcalloc((size_t)l->nslots, sizeof *l->slots);
  for (int k = 0; k < l->nslots; k++)
    batch_alloc(&l->slots[k], B, cfg->channels, cfg->size, max_boxes, masks);
  l->scratch_i = fb_xmalloc((size_t)cfg->threads * 8 * cfg->size * sizeof(int));
  l->scratch_f = fb_xmalloc((size_t)cfg->threads * 2 * cfg->size * sizeof(float));
  l->geom = fb_xmalloc((size_t)B * sizeof(fb_geom));
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  return l;
}

int fb_loader_num_batches(const fb_loader *l) { return l->nb; }

void fb_loader_start_epoch(fb_loader *l, long epoch) {
  stop_worker(l);
  l->epoch = epoch;
  if (l->cfg.train) {
    fb_epoch_perm(l->order, l->d->n, l->cfg.seed, epoch);
  } else {
    for (int i = 0; i < l->d->n; i++) l->order[i] = i;
  }
  l->built = l->released = l->next_k = 0;
  l->started = 1;
  if (l->cfg.prefetch > 0) {
    if (pthread_create(&l->th, NULL, worker, l) == 0) {
      l->th_running = 1;
    } else {
      l->cfg.prefetch = 0; /* no thread available: build in next() instead */
    }
  }
}

const fb_batch *fb_loader_next(fb_loader *l) {
  if (!l->started || l->next_k >= l->nb) return NULL;
  int k = l->next_k++;
  if (!l->th_running) {
    build_batch(l, k, &l->slots[0]);
    return &l->slots[0];
  }
  pthread_mutex_lock(&l->mu);
  l->released = k; /* batch k-1 (held by the caller until now) is free */
  pthread_cond_broadcast(&l->cv);
  while (l->built <= k) pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  return &l->slots[k % l->nslots];
}

void fb_loader_free(fb_loader *l) {
  if (!l) return;
  stop_worker(l);
  for (int k = 0; k < l->nslots; k++) batch_free(&l->slots[k], l->cfg.batch);
  free(l->slots);
  free(l->order);
  free(l->scratch_i);
  free(l->scratch_f);
  free(l->geom);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l);
}
