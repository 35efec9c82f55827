/* oneDNN 2.x behind the small interface of dnnl_util.h (see there). */
#include "ops/dnnl_util.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

int fb_conv_geom_equal(const fb_conv_geom *a, const fb_conv_geom *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

struct fb_dnnl_conv {
  fb_conv_geom g;
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  dnnl_memory_desc_t x_md, w_md, b_md, y_md;
  dnnl_primitive_desc_t fwd_pd;
  dnnl_primitive_t fwd, bwd_d, bwd_w;
  int bwd_d_failed, bwd_w_failed;
  /* Memory objects over caller buffers; the data handle is set per call. */
  dnnl_memory_t m_x, m_w, m_b, m_y;
  /* Scratch for accumulating backward results (oneDNN overwrites). */
  float *scratch;
  size_t scratch_n;
};

const fb_conv_geom *fb_dnnl_conv_geom(const fb_dnnl_conv *c) { return &c->g; }

/* Our weight array (C_out, C_in/groups, kh, kw) is oihw, or goihw when grouped
 * (C_out = groups * C_out/groups with the group index outermost). */
static dnnl_status_t weights_md(dnnl_memory_desc_t *md, const fb_conv_geom *g) {
  if (g->groups == 1) {
    dnnl_dims_t d = {g->c_out, g->c_in, g->kh, g->kw};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_oihw);
  }
  dnnl_dims_t d = {g->groups, g->c_out / g->groups, g->c_in / g->groups, g->kh, g->kw};
  return dnnl_memory_desc_init_by_tag(md, 5, d, dnnl_f32, dnnl_goihw);
}

static void fill_conv_dims(const fb_conv_geom *g, dnnl_dims_t strides, dnnl_dims_t pl,
                           dnnl_dims_t pr) {
  strides[0] = g->sh;
  strides[1] = g->sw;
  pl[0] = g->pad_t;
  pl[1] = g->pad_l;
  pr[0] = g->pad_b;
  pr[1] = g->pad_r;
}

void fb_dnnl_conv_free(fb_dnnl_conv *c) {
  if (!c) return;
  dnnl_memory_t mems[] = {c->m_x, c->m_w, c->m_b, c->m_y};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  if (c->fwd) dnnl_primitive_destroy(c->fwd);
  if (c->bwd_d) dnnl_primitive_destroy(c->bwd_d);
  if (c->bwd_w) dnnl_primitive_destroy(c->bwd_w);
  if (c->fwd_pd) dnnl_primitive_desc_destroy(c->fwd_pd);
  if (c->strm) dnnl_stream_destroy(c->strm);
  if (c->eng) dnnl_engine_destroy(c->eng);
  free(c->scratch);
  free(c);
}

#define DNNL_TRY(call, what)                                                                  \
  do {                                                                                        \
    dnnl_status_t s_ = (call);                                                                \
    if (s_ != dnnl_success) {                                                                 \
      snprintf(msg, msg_size, "oneDNN %s failed: %s", (what), dnnl_status2str(s_));           \
      fb_dnnl_conv_free(c);                                                                   \
      return NULL;                                                                            \
    }                                                                                         \
  } while (0)

fb_dnnl_conv *fb_dnnl_conv_create(const fb_conv_geom *g, char *msg, size_t msg_size) {
  fb_dnnl_conv *c = fb_xcalloc(1, sizeof *c);
  c->g = *g;
  DNNL_TRY(dnnl_engine_create(&c->eng, dnnl_cpu, 0), "engine_create");
  DNNL_TRY(dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags), "stream_create");
  dnnl_dims_t xd = {g->n, g->c_in, g->h, g->w}, yd = {g->n, g->c_out, g->oh, g->ow},
              bd = {g->c_out};
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&c->x_md, 4, xd, dnnl_f32, dnnl_nchw), "src md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&c->y_md, 4, yd, dnnl_f32, dnnl_nchw), "dst md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&c->b_md, 1, bd, dnnl_f32, dnnl_x), "bias md");
  DNNL_TRY(weights_md(&c->w_md, g), "weights md");
  dnnl_dims_t strides, pl, pr;
  fill_conv_dims(g, strides, pl, pr);
  dnnl_convolution_desc_t cd;
  DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                              &c->x_md, &c->w_md, g->has_bias ? &c->b_md : NULL,
                                              &c->y_md, strides, pl, pr),
           "convolution forward desc");
  DNNL_TRY(dnnl_primitive_desc_create(&c->fwd_pd, &cd, NULL, c->eng, NULL), "forward pd");
  DNNL_TRY(dnnl_primitive_create(&c->fwd, c->fwd_pd), "forward primitive");
  DNNL_TRY(dnnl_memory_create(&c->m_x, &c->x_md, c->eng, DNNL_MEMORY_NONE), "memory");
  DNNL_TRY(dnnl_memory_create(&c->m_w, &c->w_md, c->eng, DNNL_MEMORY_NONE), "memory");
  DNNL_TRY(dnnl_memory_create(&c->m_b, &c->b_md, c->eng, DNNL_MEMORY_NONE), "memory");
  DNNL_TRY(dnnl_memory_create(&c->m_y, &c->y_md, c->eng, DNNL_MEMORY_NONE), "memory");
  return c;
}

/* Lazily creates a backward primitive; 0 on success. */
static int make_bwd(fb_dnnl_conv *c, int weights) {
  dnnl_primitive_t *prim = weights ? &c->bwd_w : &c->bwd_d;
  int *failed = weights ? &c->bwd_w_failed : &c->bwd_d_failed;
  if (*prim) return 0;
  if (*failed) return -1;
  const fb_conv_geom *g = &c->g;
  dnnl_dims_t strides, pl, pr;
  fill_conv_dims(g, strides, pl, pr);
  dnnl_convolution_desc_t cd;
  dnnl_status_t s;
  if (weights)
    s = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &c->x_md,
                                                    &c->w_md, g->has_bias ? &c->b_md : NULL,
                                                    &c->y_md, strides, pl, pr);
  else
    s = dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &c->x_md,
                                                 &c->w_md, &c->y_md, strides, pl, pr);
  dnnl_primitive_desc_t pd = NULL;
  if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &cd, NULL, c->eng, c->fwd_pd);
  if (s == dnnl_success) s = dnnl_primitive_create(prim, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (s != dnnl_success) {
    *prim = NULL;
    *failed = 1;
    return -1;
  }
  return 0;
}

static float *get_scratch(fb_dnnl_conv *c, size_t n) {
  if (c->scratch_n < n) {
    free(c->scratch);
    c->scratch = fb_alloc_floats(n);
    c->scratch_n = n;
  }
  return c->scratch;
}

static int run(fb_dnnl_conv *c, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
  if (dnnl_primitive_execute(p, c->strm, nargs, args) != dnnl_success) return -1;
  return dnnl_stream_wait(c->strm) == dnnl_success ? 0 : -1;
}

static int set(dnnl_memory_t m, const float *p) {
  return dnnl_memory_set_data_handle(m, (void *)p) == dnnl_success ? 0 : -1;
}

static void add_into(float *dst, const float *src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

int fb_dnnl_conv_forward(fb_dnnl_conv *c, const float *x, const float *w, const float *b,
                         float *y) {
  if (set(c->m_x, x) || set(c->m_w, w) || set(c->m_y, y)) return -1;
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, c->m_x}, {DNNL_ARG_WEIGHTS, c->m_w}, {DNNL_ARG_DST, c->m_y}, {0, NULL}};
  int nargs = 3;
  if (c->g.has_bias) {
    if (set(c->m_b, b)) return -1;
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->m_b};
  }
  return run(c, c->fwd, nargs, args);
}

int fb_dnnl_conv_backward_data(fb_dnnl_conv *c, const float *dy, const float *w, float *dx,
                               int accumulate) {
  if (make_bwd(c, 0) != 0) return -1;
  const fb_conv_geom *g = &c->g;
  size_t nx = (size_t)g->n * g->c_in * g->h * g->w;
  float *target = accumulate ? get_scratch(c, nx) : dx;
  /* m_y doubles as diff_dst and m_x as diff_src: same descriptors. */
  if (set(c->m_y, dy) || set(c->m_w, w) || set(c->m_x, target)) return -1;
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_DIFF_DST, c->m_y}, {DNNL_ARG_WEIGHTS, c->m_w}, {DNNL_ARG_DIFF_SRC, c->m_x}};
  if (run(c, c->bwd_d, 3, args) != 0) return -1;
  if (accumulate) add_into(dx, target, nx);
  return 0;
}

int fb_dnnl_conv_backward_weights(fb_dnnl_conv *c, const float *x, const float *dy, float *dw,
                                  float *db, int accumulate) {
  if (!dw) return 0;
  if (make_bwd(c, 1) != 0) return -1;
  const fb_conv_geom *g = &c->g;
  size_t nw = (size_t)g->c_out * (g->c_in / g->groups) * g->kh * g->kw;
  size_t nb = g->has_bias ? (size_t)g->c_out : 0;
  float *tw = dw, *tb = db;
  if (accumulate) {
    float *s = get_scratch(c, nw + nb);
    tw = s;
    tb = s + nw;
  } else if (g->has_bias && !db) {
    tb = get_scratch(c, nb);
  }
  if (set(c->m_x, x) || set(c->m_y, dy) || set(c->m_w, tw)) return -1;
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, c->m_x}, {DNNL_ARG_DIFF_DST, c->m_y}, {DNNL_ARG_DIFF_WEIGHTS, c->m_w},
      {0, NULL}};
  int nargs = 3;
  if (g->has_bias) {
    if (set(c->m_b, tb)) return -1;
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, c->m_b};
  }
  if (run(c, c->bwd_w, nargs, args) != 0) return -1;
  if (accumulate) {
    add_into(dw, tw, nw);
    if (db) add_into(db, tb, nb);
  }
  return 0;
}

int fb_dnnl_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a,
                  long lda, const float *b, long ldb, float beta, float *c, long ldc) {
  return dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == dnnl_success
             ? 0
             : -1;
}
