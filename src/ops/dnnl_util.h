/* A thin internal wrapper around oneDNN (2.x C API): the only file that
 * includes <dnnl.h>. Ops describe a convolution by its geometry and get back
 * an opaque object holding the engine, stream, primitives and memory objects,
 * created once per shape. A move to oneDNN 3.x (which removed the
 * *_desc_init functions) touches dnnl_util.c only.
 *
 * Layouts are plain: activations NCHW, weights (C_out, C_in/groups, kh, kw),
 * bias (C_out). Every call is synchronous (returns after the stream waits).
 */
#ifndef FB_OPS_DNNL_UTIL_H
#define FB_OPS_DNNL_UTIL_H

#include <stddef.h>

/* Geometry of one 2-D convolution (PyTorch semantics, explicit padding). */
typedef struct fb_conv_geom {
  int n, c_in, h, w;  /* input x (n, c_in, h, w) */
  int c_out, oh, ow;  /* output y (n, c_out, oh, ow) */
  int kh, kw, sh, sw;
  int pad_t, pad_l, pad_b, pad_r;
  int groups;
  int has_bias;
} fb_conv_geom;

int fb_conv_geom_equal(const fb_conv_geom *a, const fb_conv_geom *b);

typedef struct fb_dnnl_conv fb_dnnl_conv;

/* Creates the forward primitive (backward ones are created on first use).
 * Returns NULL with a reason in msg (size msg_size) when oneDNN refuses. */
fb_dnnl_conv *fb_dnnl_conv_create(const fb_conv_geom *g, char *msg, size_t msg_size);
void fb_dnnl_conv_free(fb_dnnl_conv *c);
const fb_conv_geom *fb_dnnl_conv_geom(const fb_dnnl_conv *c);

/* y = conv(x, w) + b, overwriting y. b is ignored unless has_bias.
 * Returns 0, or -1 when oneDNN fails (the caller falls back). */
int fb_dnnl_conv_forward(fb_dnnl_conv *c, const float *x, const float *w, const float *b,
                         float *y);
/* dx (+)= d conv / dx given dy. accumulate: add into dx instead of overwriting
 * (through a scratch buffer owned by c, allocated once). */
int fb_dnnl_conv_backward_data(fb_dnnl_conv *c, const float *dy, const float *w, float *dx,
                               int accumulate);
/* dw (+)= d conv / dw, db (+)= sum of dy per channel (db may be NULL; dw may be
 * NULL only together with db == NULL, in which case nothing is done). */
int fb_dnnl_conv_backward_weights(fb_dnnl_conv *c, const float *x, const float *dy, float *dw,
                                  float *db, int accumulate);

/* Row-major C = alpha * op(A) * op(B) + beta * C (op = 'N' or 'T'), with A
 * m x k, B k x n after op. Returns 0, or -1 when oneDNN reports an error. */
int fb_dnnl_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a,
                  long lda, const float *b, long ldb, float beta, float *c, long ldc);

#endif
