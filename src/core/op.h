/* The op interface: what the executor (core/graph.h) and the backends
 * (core/backend.h) know of an op. The rows themselves live in src/ops, one
 * file per op, collected by src/ops/op.h's table.
 *
 * Every op has
 *   - a plain C reference kernel in double (fwd_ref/bwd_ref): the ground truth
 *     for finite-difference gradient checks and for the fast kernels;
 *   - a fast float kernel (fwd/bwd): oneDNN, SIMD-friendly loops and OpenMP.
 * Both share one signature over raw arrays (NCHW, row-major) described by
 * fb_op_args. Backward ACCUMULATES (+=) into din/dpar, so several consumers of
 * one tensor can add their gradients without extra copies.
 *
 * Tests iterate over fb_op_table(), so adding a row is enough for an op to be
 * gradient-checked and compared fast-vs-reference.
 */
#ifndef FB_CORE_OP_H
#define FB_CORE_OP_H

#include <stddef.h>

#include "core/rng.h"

#define FB_MAX_IN 8
#define FB_MAX_PAR 4

typedef struct fb_shape {
  int n, c, h, w; /* vectors use h = w = 1; a scalar is 1x1x1x1 */
} fb_shape;

static inline size_t fb_numel(fb_shape s) { return (size_t)s.n * s.c * s.h * s.w; }
static inline fb_shape fb_shape4(int n, int c, int h, int w) {
  fb_shape s = {n, c, h, w};
  return s;
}

/* Attributes of all ops in one flat struct; each op reads the fields it needs. */
typedef struct fb_op_attr {
  int kh, kw;                       /* conv kernel */
  int sh, sw;                       /* conv stride */
  int pad_t, pad_l, pad_b, pad_r;   /* conv explicit padding (may be asymmetric) */
  int groups;                       /* conv groups (C_in for depthwise) */
  int c_out;                        /* conv/linear output channels */
  int has_bias;                     /* conv/linear */
  float eps, momentum;              /* batch norm (PyTorch semantics) */
  int training;                     /* batch norm: batch stats + running update */
  int scale;                        /* upsample factor */
  float label_smoothing;            /* softmax cross-entropy */
  int ignore_index;                 /* softmax cross-entropy (-1: none) */
  float alpha, gamma;               /* focal loss: class balance (< 0: none), focusing */
} fb_op_attr;

/* Shapes and attributes of one op instance. Inputs and output shapes are
 * given; op->infer fills par[] and out from in[] and attr. */
typedef struct fb_op_args {
  int n_in;
  fb_shape in[FB_MAX_IN];
  int n_par;
  fb_shape par[FB_MAX_PAR];
  fb_shape out;
  fb_op_attr attr;
} fb_op_args;

/* Per-instance cache of a fast kernel (e.g. oneDNN primitives created once per
 * shape). Zero-initialised by the owner; freed by op->ctx_free. */
/* How the graph builder registers an op's parameters in the store. */
typedef enum fb_param_group {
  FB_PG_WEIGHT = 0, /* conv/linear weights: weight decay applies */
  FB_PG_NO_DECAY,   /* BN gamma/beta and biases: trained, no weight decay */
  FB_PG_BUFFER,     /* BN running mean/var: saved, never trained */
} fb_param_group;

typedef enum fb_param_init {
  FB_INIT_ZERO = 0,
  FB_INIT_ONE,
  FB_INIT_KAIMING_OUT, /* normal(0, sqrt(2 / fan_out)), fan_out = dim0 * kh * kw (PyTorch convention) */
  FB_INIT_LINEAR,      /* normal(0, 0.01) */
} fb_param_init;

typedef struct fb_op_ctx {
  void *impl;
} fb_op_ctx;

typedef void (*fb_fwd_ref_fn)(const fb_op_args *a, const double *const *in, double *const *par,
                              double *out, double *ws);
typedef void (*fb_bwd_ref_fn)(const fb_op_args *a, const double *const *in,
                              const double *const *par, const double *out, const double *dout,
                              double *const *din, double *const *dpar, const double *ws);
typedef void (*fb_fwd_fn)(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                          float *const *par, float *out, float *ws);
typedef void (*fb_bwd_fn)(fb_op_ctx *ctx, const fb_op_args *a, const float *const *in,
                          const float *const *par, const float *out, const float *dout,
                          float *const *din, float *const *dpar, const float *ws);

/* What an op is, for everything outside its file that must treat ops by kind
 * (MACs and parameter counts, the profile's families, BN re-calibration and
 * folding, the weight layout in files) instead of by name. */
typedef enum fb_op_kind {
  FB_OPK_OTHER = 0,
  FB_OPK_CONV,      /* par[0] is a weight [c_out, c_in/groups, kh, kw] */
  FB_OPK_LINEAR,    /* par[0] is a weight matrix [c_out, c_in] */
  FB_OPK_NORM,      /* batch norm: par = gamma, beta, running mean, running var */
  FB_OPK_ACT,       /* pointwise activation */
  FB_OPK_ADD,       /* elementwise sums and products */
  FB_OPK_RESAMPLE,  /* upsampling and concatenation */
  FB_OPK_POOL,      /* global pooling */
  FB_OPK_LOSS,      /* a loss (is_loss) */
} fb_op_kind;

#define FB_MAX_KINKS 2

typedef struct fb_op {
  const char *name;
  fb_op_kind kind;
  /* Multiply-adds of one forward of this instance under the published counting
   * convention (conv/linear MACs, one per element for global pooling); NULL: 0. */
  double (*macs)(const fb_op_args *a);
  /* 1: backward reads the inputs' values (0: only the output gradient, e.g. add,
   * concat, pooling, upsampling), for the memory-traffic model of the profile. */
  int bwd_reads_in;
  /* Input values where the derivative jumps (relu at 0, relu6 at 0 and 6):
   * finite-difference checks draw their inputs away from them. */
  int n_kinks;
  double kinks[FB_MAX_KINKS];
  /* Validates in[]/attr, fills par[], n_par and out. Returns 0, or -1 with a
   * reason in msg (size 256). */
  int (*infer)(fb_op_args *a, char *msg);
  /* Elements of workspace written by forward and read by backward (e.g. batch
   * mean and inverse std), in units of the kernel's element type. */
  size_t (*ws_size)(const fb_op_args *a);
  fb_fwd_ref_fn fwd_ref;
  fb_bwd_ref_fn bwd_ref;
  fb_fwd_fn fwd;
  fb_bwd_fn bwd;
  void (*ctx_free)(fb_op_ctx *ctx); /* may be NULL */
  /* A small random instance for tests: fills n_in, in[], attr (infer is
   * called afterwards by the test). */
  void (*random_case)(fb_op_args *a, fb_rng *rng);
  /* Inputs with index >= n_diff_in carry no gradient (e.g. labels). */
  int n_diff_in;
  /* Parameters with index >= n_diff_par are buffers (running statistics). */
  int n_diff_par;
  /* Non-zero when the op is a loss: out is a scalar (1x1x1x1). */
  int is_loss;
  /* Parameter names ("weight", "bias", "running_mean", ...), groups and
   * initialisers, index-aligned with args.par[]. */
  const char *par_name[FB_MAX_PAR];
  fb_param_group par_group[FB_MAX_PAR];
  fb_param_init par_init[FB_MAX_PAR];
} fb_op;

/* Labels for a loss (inputs >= n_diff_in) are stored as float/double class
 * indices in [0, in[0].c); ignore_index marks pixels/items without a label. */

/* An op's MACs (op->macs, 0 without). */
static inline double fb_op_macs(const fb_op *op, const fb_op_args *a) {
  return op && op->macs ? op->macs(a) : 0.0;
}
/* An op with a weight as par[0] (conv, linear): counted as the network's params. */
static inline int fb_op_weighted(const fb_op *op) {
  return op && (op->kind == FB_OPK_CONV || op->kind == FB_OPK_LINEAR);
}
/* An op in a registry (a NULL-terminated table) by name; NULL if absent. */
const fb_op *fb_op_lookup(const fb_op *const *table, const char *name);

#endif
