/* FBNet blocks (docs/method.md section 2) as graph nodes. Node names are
 * "<prefix>.<part>" with parts
 *   conv_k<k>_hs  conv, bn, act
 *   ir_k<k>_hs    pw.conv pw.bn pw.act (only when mid != C_in), dw.conv dw.bn
 *                 dw.act, [se.pool se.fc1 se.act se.fc2 se.gate se.mul],
 *                 pwl.conv pwl.bn, [res]
 *   ir_pool_hs    pw.conv pw.bn pw.act pool fc.conv fc.act
 * so parameters are named like "stage3.2.dw.bn.running_mean". */
#include "nn/blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/op.h"

typedef enum { BLK_CONV, BLK_IR, BLK_POOL } blk_kind;

typedef struct blk_type {
  blk_kind kind;
  int k;  /* kernel */
  int se; /* squeeze-excitation */
} blk_type;

/* Parses "conv_k<k>_hs", "ir_k<k>_hs", "ir_k<k>_sehsig_hs", "ir_pool_hs". */
static int parse_op(const char *op, blk_type *t) {
  memset(t, 0, sizeof *t);
  if (strcmp(op, "ir_pool_hs") == 0) {
    t->kind = BLK_POOL;
    t->k = 1;
    return 0;
  }
  const char *p;
  if (strncmp(op, "conv_k", 6) == 0) {
    t->kind = BLK_CONV;
    p = op + 6;
  } else if (strncmp(op, "ir_k", 4) == 0) {
    t->kind = BLK_IR;
    p = op + 4;
  } else {
    return -1;
  }
  int k = 0, digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 3) k = 10 * k + (*p++ - '0'), digits++;
  if (digits == 0 || (digits > 1 && p[-digits] == '0') || k < 1 || k > 11 || k % 2 == 0) return -1;
  t->k = k;
  if (t->kind == BLK_IR && strcmp(p, "_sehsig_hs") == 0) {
    t->se = 1;
    return 0;
  }
  return strcmp(p, "_hs") == 0 ? 0 : -1;
}

int fb_block_known(const char *op) {
  blk_type t;
  return op && parse_op(op, &t) == 0;
}

/* ---- node helpers ------------------------------------------------------ */

static int add1(fb_graph *g, const char *op, const char *prefix, const char *part, int x,
                const fb_op_attr *attr, int flags, fb_status *st) {
  char name[96];
  int n = snprintf(name, sizeof name, "%s.%s", prefix, part);
  if (n < 0 || (size_t)n >= sizeof name)
    return fb_fail(st, "%s.%s: node name too long", prefix, part);
  return fb_graph_add(g, op, name, &x, 1, attr, flags, st);
}

static int conv(fb_graph *g, const char *prefix, const char *part, int x, int k, int stride,
                int pad, int groups, int c_out, int bias, fb_status *st) {
  const fb_shape s = g->nodes[x].args.out;
  if (s.h + 2 * pad < k || s.w + 2 * pad < k)
    return fb_fail(st,
                   "%s.%s: input %dx%d is too small for a %dx%d conv with padding %d "
                   "(stride %d)",
                   prefix, part, s.h, s.w, k, k, pad, stride);
  fb_op_attr a = fb_attr_default();
  a.kh = a.kw = k;
  a.sh = a.sw = stride;
  a.pad_t = a.pad_l = a.pad_b = a.pad_r = pad;
  a.groups = groups;
  a.c_out = c_out;
  a.has_bias = bias;
  return add1(g, "conv2d", prefix, part, x, &a, 0, st);
}

static int unary(fb_graph *g, const char *op, const char *prefix, const char *part, int x,
                 int flags, fb_status *st) {
  fb_op_attr a = fb_attr_default();
  return add1(g, op, prefix, part, x, &a, flags, st);
}

/* conv + BN [+ hswish]: parts "<part>.conv", "<part>.bn", "<part>.act", or
 * "conv", "bn", "act" when part is NULL. */
static int conv_bn(fb_graph *g, const char *prefix, const char *part, int x, int k, int stride,
                   int pad, int groups, int c_out, int bias, int act, int bn_flags, fb_status *st) {
  char p[64];
  const char *dot = part ? "." : "";
  if (!part) part = "";
  snprintf(p, sizeof p, "%s%sconv", part, dot);
  x = conv(g, prefix, p, x, k, stride, pad, groups, c_out, bias, st);
  if (x < 0) return -1;
  snprintf(p, sizeof p, "%s%sbn", part, dot);
  x = unary(g, "batchnorm", prefix, p, x, bn_flags, st);
  if (x < 0 || !act) return x;
  snprintf(p, sizeof p, "%s%sact", part, dot);
  return unary(g, "hswish", prefix, p, x, 0, st);
}

/* ---- blocks ------------------------------------------------------------ */

static int squeeze_excite(fb_graph *g, const char *prefix, int x, int mid, double e,
                          fb_status *st) {
  int m = fb_div8(floor(mid * 0.25 / e));
  int s = unary(g, "gap", prefix, "se.pool", x, 0, st);
  if (s < 0) return -1;
  if ((s = conv(g, prefix, "se.fc1", s, 1, 1, 0, 1, m, 1, st)) < 0) return -1;
  if ((s = unary(g, "hswish", prefix, "se.act", s, 0, st)) < 0) return -1;
  if ((s = conv(g, prefix, "se.fc2", s, 1, 1, 0, 1, mid, 1, st)) < 0) return -1;
  if ((s = unary(g, "hsigmoid", prefix, "se.gate", s, 0, st)) < 0) return -1;
  fb_op_attr a = fb_attr_default();
  int in[2] = {x, s};
  char name[96];
  snprintf(name, sizeof name, "%s.se.mul", prefix);
  return fb_graph_add(g, "chanmul", name, in, 2, &a, 0, st);
}

static int inverted_residual(fb_graph *g, const fb_block_spec *b, const blk_type *t, int x,
                             const char *prefix, fb_status *st) {
  const fb_shape s = g->nodes[x].args.out;
  const double e = b->expansion > 0 ? b->expansion : 1.0;
  const int mid = fb_div8(s.c * e);
  const int pad = b->dw_pad >= 0 ? b->dw_pad : t->k / 2;
  const int residual = s.c == b->c_out && b->stride == 1;
  int h = x;
  if (mid != s.c && (h = conv_bn(g, prefix, "pw", h, 1, 1, 0, 1, mid, 0, 1, 0, st)) < 0) return -1;
  if ((h = conv_bn(g, prefix, "dw", h, t->k, b->stride, pad, mid, mid, 0, 1, 0, st)) < 0) return -1;
  if (t->se && (h = squeeze_excite(g, prefix, h, mid, e, st)) < 0) return -1;
  h = conv_bn(g, prefix, "pwl", h, 1, 1, 0, 1, b->c_out, 0, 0, residual ? FB_NODE_ZERO_GAMMA : 0,
              st);
  if (h < 0 || !residual) return h;
  /* a residual with a padded dw conv could change the size: check it */
  const fb_shape o = g->nodes[h].args.out;
  if (o.h != s.h || o.w != s.w)
    return fb_fail(st, "%s: residual add needs equal sizes, got %dx%d and %dx%d (dw_pad %d)",
                   prefix, s.h, s.w, o.h, o.w, pad);
  fb_op_attr a = fb_attr_default();
  int in[2] = {x, h};
  char name[96];
  snprintf(name, sizeof name, "%s.res", prefix);
  return fb_graph_add(g, "add", name, in, 2, &a, 0, st);
}

static int pool_head(fb_graph *g, const fb_block_spec *b, int x, const char *prefix,
                     fb_status *st) {
  const fb_shape s = g->nodes[x].args.out;
  const double e = b->expansion > 0 ? b->expansion : 6.0;
  const int mid = fb_div8(s.c * e);
  int h = conv_bn(g, prefix, "pw", x, 1, 1, 0, 1, mid, 0, 1, 0, st);
  if (h < 0) return -1;
  if ((h = unary(g, "gap", prefix, "pool", h, 0, st)) < 0) return -1;
  if ((h = conv(g, prefix, "fc.conv", h, 1, 1, 0, 1, b->c_out, 0, st)) < 0) return -1;
  return unary(g, "hswish", prefix, "fc.act", h, 0, st);
}

int fb_block_add(fb_graph *g, const fb_block_spec *b, int x, const char *prefix, fb_status *st) {
  blk_type t;
  if (parse_op(b->op, &t) != 0) return fb_fail(st, "%s: unknown block op '%s'", prefix, b->op);
  if (x < 0 || x >= g->n) return fb_fail(st, "%s: input %d is not a node", prefix, x);
  if (b->c_out < 1) return fb_fail(st, "%s: C_out %d < 1", prefix, b->c_out);
  if (b->stride != 1 && b->stride != 2)
    return fb_fail(st, "%s: stride %d (1 or 2)", prefix, b->stride);
  switch (t.kind) {
    case BLK_CONV:
      return conv_bn(g, prefix, NULL, x, t.k, b->stride, t.k / 2, 1, b->c_out, 1, 1, 0, st);
    case BLK_IR: return inverted_residual(g, b, &t, x, prefix, st);
    case BLK_POOL: return pool_head(g, b, x, prefix, st);
  }
  return fb_fail(st, "%s: unreachable", prefix);
}
