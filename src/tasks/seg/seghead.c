/* Light multi-resolution segmentation head: graph layout in seghead.h. */
#include "tasks/seg/seghead.h"

#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "ops/op.h"

fb_seg_cfg fb_seg_cfg_default(void) {
  fb_seg_cfg c;
  memset(&c, 0, sizeof c);
  c.num_classes = 0;
  c.width = 32;
  c.fuse = FB_SEG_FUSE_SUM;
  c.act = FB_SEG_ACT_RELU;
  c.loss_weight = 1.0f;
  return c;
}

/* ---- node helpers -------------------------------------------------------- */

static int add1(fb_graph *g, const char *op, const char *name, int x, const fb_op_attr *a,
                fb_status *st) {
  return fb_graph_add(g, op, name, &x, 1, a, 0, st);
}

/* conv k x k (pad k/2, stride 1) -> BN -> act, nodes "<part>.conv/.bn/.act". */
static int conv_bn_act(fb_graph *g, const char *part, int x, int k, int c_out, fb_seg_act act,
                       fb_status *st) {
  char name[96];
  fb_op_attr a = fb_attr_default();
  a.kh = a.kw = k;
  a.pad_t = a.pad_l = a.pad_b = a.pad_r = k / 2;
  a.c_out = c_out;
  a.has_bias = 0;
  snprintf(name, sizeof name, "%s.conv", part);
  if ((x = add1(g, "conv2d", name, x, &a, st)) < 0) return -1;
  a = fb_attr_default();
  snprintf(name, sizeof name, "%s.bn", part);
  if ((x = add1(g, "batchnorm", name, x, &a, st)) < 0) return -1;
  snprintf(name, sizeof name, "%s.act", part);
  return add1(g, act == FB_SEG_ACT_HSWISH ? "hswish" : "relu", name, x, &a, st);
}

static int upsample(fb_graph *g, const char *name, int x, int scale, fb_status *st) {
  fb_op_attr a = fb_attr_default();
  a.scale = scale;
  return add1(g, "upsample_bilinear", name, x, &a, st);
}

static int check_cfg(const fb_seg_cfg *c, fb_status *st) {
  if (c->num_classes < 1 || c->num_classes > 255)
    return fb_fail(st, "seg head: num_classes must be in 1..255 (255 is the ignore label), got %d",
                   c->num_classes);
  if (c->width < 1 || c->width > 4096)
    return fb_fail(st, "seg head: width must be in 1..4096, got %d", c->width);
  if (c->fuse != FB_SEG_FUSE_SUM && c->fuse != FB_SEG_FUSE_CONCAT)
    return fb_fail(st, "seg head: fuse must be sum or concat (got %d)", (int)c->fuse);
  if (c->act != FB_SEG_ACT_RELU && c->act != FB_SEG_ACT_HSWISH)
    return fb_fail(st, "seg head: act must be relu or hswish (got %d)", (int)c->act);
  if (!(c->loss_weight >= 0 && c->loss_weight < 1e30f))
    return fb_fail(st, "seg head: loss_weight must be a finite value >= 0, got %g",
                   (double)c->loss_weight);
  return 0;
}

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

static int check_level(const fb_graph *g, int i, int node, int stride, int S, fb_status *st) {
  if (node < 0 || node >= g->n)
    return fb_fail(st, "seg head: level %d: feature node %d is not a node of the graph", i, node);
  if (stride < 4 || stride % 4 != 0 || !is_pow2(stride / 4))
    return fb_fail(st, "seg head: level %d: stride %d must be 4 * 2^k (4, 8, 16, 32, ...)", i,
                   stride);
  if (S % stride != 0)
    return fb_fail(st, "seg head: level %d: input size %d is not divisible by its stride %d", i,
                   S, stride);
  const fb_shape s = g->nodes[node].args.out;
  if (s.h != S / stride || s.w != S / stride)
    return fb_fail(st,
                   "seg head: level %d: feature '%s' is %dx%d, expected %dx%d for stride %d at "
                   "input size %d",
                   i, g->nodes[node].name, s.h, s.w, S / stride, S / stride, stride, S);
  return 0;
}

/* ---- build ---------------------------------------------------------------- */

int fb_seg_build(fb_graph *g, fb_seg_head *h, const fb_seg_cfg *cfg, const int *feat_nodes,
                 const int *strides, int n_levels, int input_size, fb_status *st) {
  memset(h, 0, sizeof *h);
  h->fused = h->logits = h->tgt = h->loss = -1;
  if (check_cfg(cfg, st) != 0) return -1;
  if (n_levels < 1 || n_levels > FB_SEG_MAX_LEVELS)
    return fb_fail(st, "seg head: needs 1..%d feature levels, got %d", FB_SEG_MAX_LEVELS,
                   n_levels);
  if (input_size < 4 || input_size % 4 != 0)
    return fb_fail(st, "seg head: input size %d must be a positive multiple of 4", input_size);
  for (int i = 0; i < n_levels; i++)
    if (check_level(g, i, feat_nodes[i], strides[i], input_size, st) != 0) return -1;
  h->cfg = *cfg;
  h->input_size = input_size;
  h->n_levels = n_levels;
  const int W = cfg->width, S = input_size;
  char name[96];

  for (int i = 0; i < n_levels; i++) {
    char part[32];
    snprintf(part, sizeof part, "seg.lat%d", i);
    int x = conv_bn_act(g, part, feat_nodes[i], 1, W, cfg->act, st);
    if (x < 0) return -1;
    if (strides[i] > 4) {
      snprintf(name, sizeof name, "seg.lat%d.up", i);
      if ((x = upsample(g, name, x, strides[i] / 4, st)) < 0) return -1;
    }
    h->level[i] = x;
  }

  int x = h->level[0];
  if (n_levels > 1) {
    fb_op_attr a = fb_attr_default();
    const char *op = cfg->fuse == FB_SEG_FUSE_SUM ? "add" : "concat";
    if ((x = fb_graph_add(g, op, "seg.fuse", h->level, n_levels, &a, 0, st)) < 0) return -1;
    if (cfg->fuse == FB_SEG_FUSE_CONCAT &&
        (x = conv_bn_act(g, "seg.fuse_proj", x, 1, W, cfg->act, st)) < 0)
      return -1;
  }
  h->fused = x;

  if ((x = conv_bn_act(g, "seg.mix", x, 3, W, cfg->act, st)) < 0) return -1;
  fb_op_attr a = fb_attr_default();
  a.c_out = cfg->num_classes;
  a.has_bias = 1;
  if ((x = add1(g, "conv2d", "seg.cls", x, &a, st)) < 0) return -1;
  if ((x = upsample(g, "seg.up", x, 4, st)) < 0) return -1;
  h->logits = x;

  h->tgt = fb_graph_input(g, "seg.tgt", 1, S, S);
  a = fb_attr_default();
  a.ignore_index = FB_SEG_IGNORE;
  int in[2] = {h->logits, h->tgt};
  if ((x = fb_graph_add(g, "softmax_ce", "seg.loss", in, 2, &a, 0, st)) < 0) return -1;
  g->nodes[x].loss_weight = cfg->loss_weight;
  h->loss = x;
  return 0;
}

/* ---- targets and predictions -------------------------------------------- */

void fb_seg_targets(const fb_seg_head *h, const fb_batch *b, float *tgt) {
  const size_t px = (size_t)h->input_size * h->input_size, n = (size_t)b->n * px;
  const int K = h->cfg.num_classes;
  if (!b->masks || b->size != h->input_size) {
    for (size_t j = 0; j < n; j++) tgt[j] = (float)FB_SEG_IGNORE;
    return;
  }
  for (size_t j = 0; j < n; j++) {
    int v = b->masks[j];
    tgt[j] = (float)(v < K ? v : FB_SEG_IGNORE);
  }
}

void fb_seg_predict(const fb_seg_head *h, const float *logits, int item, int S, uint8_t *out) {
  const int K = h->cfg.num_classes;
  const size_t hw = (size_t)S * S;
  const float *x = logits + (size_t)item * K * hw;
  float best[256]; /* a row of running maxima, SIMD-friendly class-outer loop */
  for (size_t lo = 0; lo < hw; lo += 256) {
    size_t len = hw - lo < 256 ? hw - lo : 256;
    for (size_t i = 0; i < len; i++) best[i] = x[lo + i], out[lo + i] = 0;
    for (int c = 1; c < K; c++) {
      const float *xc = x + (size_t)c * hw + lo;
      for (size_t i = 0; i < len; i++)
        if (xc[i] > best[i]) best[i] = xc[i], out[lo + i] = (uint8_t)c;
    }
  }
}
