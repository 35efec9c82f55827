/* FCOS-like detection head: see fcos.h for the graph, the assignment rules
 * and the decoding. */
#include "tasks/det/fcos.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "tasks/det/box.h"
#include "tasks/det/nms.h"
#include "ops/op.h"

fb_fcos_cfg fb_fcos_cfg_default(int num_classes) {
  fb_fcos_cfg c;
  memset(&c, 0, sizeof c);
  c.num_classes = num_classes;
  c.width = 64;
  c.tower_depth = 2;
  c.act_hswish = 0;
  c.top_down = 1;
  c.prior_prob = 0.01f;
  c.alpha = 0.25f;
  c.gamma = 2.0f;
  c.w_cls = c.w_box = c.w_ctr = 1.0f;
  c.range_mult = 4.0f;
  c.center_radius = 1.5f;
  c.score_thresh = 0.05f;
  c.pre_nms_topk = 1000;
  c.nms_iou = 0.6f;
  c.max_dets = 100;
  return c;
}

static int check_cfg(const fb_fcos_cfg *c, fb_status *st) {
  if (c->num_classes < 1) return fb_fail(st, "fcos cfg: num_classes must be >= 1 (got %d)", c->num_classes);
  if (c->width < 1) return fb_fail(st, "fcos cfg: width must be >= 1 (got %d)", c->width);
  if (c->tower_depth < 0 || c->tower_depth > 16)
    return fb_fail(st, "fcos cfg: tower_depth must be in 0..16 (got %d)", c->tower_depth);
  if (!(c->prior_prob > 0 && c->prior_prob < 1))
    return fb_fail(st, "fcos cfg: prior_prob must be in (0,1) (got %g)", (double)c->prior_prob);
  if (!(c->gamma >= 0 && c->gamma <= 16) || !(c->alpha <= 1))
    return fb_fail(st, "fcos cfg: focal gamma must be in [0,16] and alpha <= 1 (got %g, %g)",
                   (double)c->gamma, (double)c->alpha);
  if (!(c->w_cls >= 0 && c->w_box >= 0 && c->w_ctr >= 0))
    return fb_fail(st, "fcos cfg: loss weights must be >= 0");
  if (!(c->range_mult > 0)) return fb_fail(st, "fcos cfg: range_mult must be > 0");
  if (!(c->score_thresh >= 0 && c->score_thresh < 1))
    return fb_fail(st, "fcos cfg: score_thresh must be in [0,1) (got %g)", (double)c->score_thresh);
  if (c->pre_nms_topk < 1 || c->max_dets < 1)
    return fb_fail(st, "fcos cfg: pre_nms_topk and max_dets must be >= 1 (got %d, %d)",
                   c->pre_nms_topk, c->max_dets);
  if (!(c->nms_iou >= 0 && c->nms_iou <= 1))
    return fb_fail(st, "fcos cfg: nms_iou must be in [0,1] (got %g)", (double)c->nms_iou);
  return 0;
}

/* ---- graph building ------------------------------------------------------ */

static int add_conv(fb_graph *g, const char *name, int x, int k, int c_out, int bias, int share,
                    fb_status *st) {
  fb_op_attr a = fb_attr_default();
  a.kh = a.kw = k;
  a.pad_t = a.pad_l = a.pad_b = a.pad_r = k / 2;
  a.c_out = c_out;
  a.has_bias = bias;
  if (share >= 0) return fb_graph_add_shared(g, "conv2d", name, &x, 1, &a, share, st);
  return fb_graph_add(g, "conv2d", name, &x, 1, &a, 0, st);
}

static int add_op(fb_graph *g, const char *op, const char *name, const int *in, int n_in,
                  fb_status *st) {
  fb_op_attr a = fb_attr_default();
  return fb_graph_add(g, op, name, in, n_in, &a, 0, st);
}

/* Shared conv of one level: level 0 owns the weights (name without suffix),
 * the other levels use its slots. */
static int shared_conv(fb_graph *g, const char *base, int level, int stride, int x, int k,
                       int c_out, int bias, int *owner, fb_status *st) {
  char name[96];
  if (level == 0) snprintf(name, sizeof name, "%s", base);
  else snprintf(name, sizeof name, "%s.s%d", base, stride);
  int id = add_conv(g, name, x, k, c_out, bias, level == 0 ? -1 : *owner, st);
  if (level == 0) *owner = id;
  return id;
}

static int tower(fb_graph *g, const fb_fcos_cfg *c, const char *kind, int level, int stride, int x,
                 int *owners, fb_status *st) {
  for (int d = 0; d < c->tower_depth && x >= 0; d++) {
    char base[64], name[96];
    snprintf(base, sizeof base, "fcos.%s_tower.%d.conv", kind, d);
    x = shared_conv(g, base, level, stride, x, 3, c->width, 0, &owners[d], st);
    if (x < 0) return -1;
    snprintf(name, sizeof name, "fcos.%s_tower.%d.bn.s%d", kind, d, stride);
    if ((x = add_op(g, "batchnorm", name, &x, 1, st)) < 0) return -1;
    snprintf(name, sizeof name, "fcos.%s_tower.%d.act.s%d", kind, d, stride);
    x = add_op(g, c->act_hswish ? "hswish" : "relu", name, &x, 1, st);
  }
  return x;
}

int fb_fcos_build(fb_graph *g, fb_fcos_head *h, const fb_fcos_cfg *cfg, const int *feat_nodes,
                  const int *strides, int n_levels, fb_status *st) {
  if (check_cfg(cfg, st) != 0) return -1;
  if (n_levels < 1 || n_levels > FB_FCOS_MAX_LEVELS)
    return fb_fail(st, "fcos: n_levels must be in 1..%d (got %d)", FB_FCOS_MAX_LEVELS, n_levels);
  memset(h, 0, sizeof *h);
  h->cfg = *cfg;
  h->n_levels = n_levels;
  const int L = n_levels, K = cfg->num_classes;
  for (int l = 0; l < L; l++) {
    int id = feat_nodes[l];
    if (id < 0 || id >= g->n) return fb_fail(st, "fcos: feature level %d: node %d does not exist", l, id);
    if (strides[l] < 1 || (l > 0 && strides[l] <= strides[l - 1]))
      return fb_fail(st, "fcos: strides must be positive and increasing (level %d: %d)", l,
                     strides[l]);
    fb_shape s = g->nodes[id].args.out;
    h->stride[l] = strides[l];
    h->h[l] = s.h, h->w[l] = s.w;
    h->offset[l] = h->P;
    h->P += s.h * s.w;
    h->hi[l] = cfg->bounds[l] > 0 ? cfg->bounds[l] : cfg->range_mult * (float)strides[l];
    h->lo[l] = l == 0 ? 0.f : h->hi[l - 1];
  }
  h->hi[L - 1] = INFINITY;
  for (int l = 1; l < L; l++)
    if (!(h->hi[l - 1] > h->lo[l - 1]))
      return fb_fail(st, "fcos cfg: bounds must increase with the level (level %d: %g after %g)",
                     l - 1, (double)h->hi[l - 1], (double)h->lo[l - 1]);

  char name[96];
  int lat[FB_FCOS_MAX_LEVELS], pyr[FB_FCOS_MAX_LEVELS];
  for (int l = 0; l < L; l++) {
    snprintf(name, sizeof name, "fcos.lateral.s%d.conv", h->stride[l]);
    int x = add_conv(g, name, feat_nodes[l], 1, cfg->width, 0, -1, st);
    if (x < 0) return -1;
    snprintf(name, sizeof name, "fcos.lateral.s%d.bn", h->stride[l]);
    if ((lat[l] = add_op(g, "batchnorm", name, &x, 1, st)) < 0) return -1;
  }
  pyr[L - 1] = lat[L - 1];
  for (int l = L - 2; l >= 0; l--) {
    if (!cfg->top_down) {
      pyr[l] = lat[l];
      continue;
    }
    if (h->h[l] != 2 * h->h[l + 1] || h->w[l] != 2 * h->w[l + 1])
      return fb_fail(st,
                     "fcos: top_down needs each level twice the size of the next (level %d is "
                     "%dx%d, level %d is %dx%d); use an input size divisible by the coarsest "
                     "stride or set top_down 0",
                     l, h->h[l], h->w[l], l + 1, h->h[l + 1], h->w[l + 1]);
    snprintf(name, sizeof name, "fcos.topdown.s%d.up", h->stride[l]);
    int up = add_op(g, "upsample_nearest", name, &pyr[l + 1], 1, st);
    if (up < 0) return -1;
    int in[2] = {lat[l], up};
    snprintf(name, sizeof name, "fcos.topdown.s%d.add", h->stride[l]);
    if ((pyr[l] = add_op(g, "add", name, in, 2, st)) < 0) return -1;
  }

  int cls_own[16], reg_own[16], cls_out[FB_FCOS_MAX_LEVELS], box_out[FB_FCOS_MAX_LEVELS],
      ctr_out[FB_FCOS_MAX_LEVELS];
  for (int l = 0; l < L; l++) {
    int s = h->stride[l];
    int ct = tower(g, cfg, "cls", l, s, pyr[l], cls_own, st);
    if (ct < 0) return -1;
    int rt = tower(g, cfg, "reg", l, s, pyr[l], reg_own, st);
    if (rt < 0) return -1;
    if ((cls_out[l] = shared_conv(g, "fcos.cls_logits", l, s, ct, 3, K, 1, &h->cls_conv, st)) < 0)
      return -1;
    int bx = shared_conv(g, "fcos.bbox_pred", l, s, rt, 3, 4, 1, &h->box_conv, st);
    if (bx < 0) return -1;
    snprintf(name, sizeof name, "fcos.bbox_relu.s%d", s);
    if ((box_out[l] = add_op(g, "relu", name, &bx, 1, st)) < 0) return -1;
    if ((ctr_out[l] = shared_conv(g, "fcos.centerness", l, s, rt, 3, 1, 1, &h->ctr_conv, st)) < 0)
      return -1;
  }
  if ((h->cls = add_op(g, "concat_spatial", "fcos.cls", cls_out, L, st)) < 0) return -1;
  if ((h->box = add_op(g, "concat_spatial", "fcos.box", box_out, L, st)) < 0) return -1;
  if ((h->ctr = add_op(g, "concat_spatial", "fcos.ctr", ctr_out, L, st)) < 0) return -1;
  h->tgt_cls = fb_graph_input(g, "fcos.tgt_cls", 1, h->P, 1);
  h->tgt_box = fb_graph_input(g, "fcos.tgt_box", 4, h->P, 1);
  h->tgt_ctr = fb_graph_input(g, "fcos.tgt_ctr", 1, h->P, 1);

  fb_op_attr a = fb_attr_default();
  a.alpha = cfg->alpha;
  a.gamma = cfg->gamma;
  int in_cls[2] = {h->cls, h->tgt_cls}, in_box[3] = {h->box, h->tgt_box, h->tgt_ctr},
      in_ctr[3] = {h->ctr, h->tgt_ctr, h->tgt_ctr};
  if ((h->loss_cls = fb_graph_add(g, "focal_loss", "fcos.loss_cls", in_cls, 2, &a, 0, st)) < 0)
    return -1;
  if ((h->loss_box = add_op(g, "giou_loss", "fcos.loss_box", in_box, 3, st)) < 0) return -1;
  if ((h->loss_ctr = add_op(g, "bce_logits", "fcos.loss_ctr", in_ctr, 3, st)) < 0) return -1;
  g->nodes[h->loss_cls].loss_weight = cfg->w_cls;
  g->nodes[h->loss_box].loss_weight = cfg->w_box;
  g->nodes[h->loss_ctr].loss_weight = cfg->w_ctr;
  return 0;
}

/* Rescales a slot to standard deviation sd around 0 (no-op when all zero). */
static void rescale_slot(fb_params *ps, int slot, double sd) {
  float *w = fb_param_data(ps, slot);
  size_t n = ps->p[slot].numel;
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (double)w[i] * w[i];
  if (ss <= 0) return;
  float f = (float)(sd / sqrt(ss / (double)n));
  for (size_t i = 0; i < n; i++) w[i] *= f;
}

static void fill_slot(fb_params *ps, int slot, float v) {
  float *w = fb_param_data(ps, slot);
  for (size_t i = 0; i < ps->p[slot].numel; i++) w[i] = v;
}

void fb_fcos_init_params(fb_graph *g, const fb_fcos_head *h) {
  const int convs[3] = {h->cls_conv, h->box_conv, h->ctr_conv};
  const float p = h->cfg.prior_prob, bias[3] = {-logf((1.f - p) / p), 1.f, 0.f};
  for (int k = 0; k < 3; k++) {
    const fb_node *nd = &g->nodes[convs[k]];
    rescale_slot(&g->params, nd->par[0], 0.01);
    fill_slot(&g->params, nd->par[1], bias[k]);
  }
}

/* ---- target assignment ---------------------------------------------------- */

static int inside_any_crowd(const fb_box *bx, int nb, float x, float y) {
  for (int k = 0; k < nb; k++)
    if (bx[k].iscrowd && x > bx[k].x && x < bx[k].x + bx[k].w && y > bx[k].y &&
        y < bx[k].y + bx[k].h)
      return 1;
  return 0;
}

int fb_fcos_targets(const fb_fcos_head *h, const fb_batch *b, float *tgt_cls, float *tgt_box,
                    float *tgt_ctr, fb_status *st) {
  const int K = h->cfg.num_classes, P = h->P;
  const float rad = h->cfg.center_radius;
  for (int n = 0; n < b->n; n++) {
    int nb = b->n_boxes ? b->n_boxes[n] : 0;
    const fb_box *bx = nb > 0 && b->boxes ? b->boxes[n] : NULL;
    if (nb > 0 && !bx) return fb_fail(st, "fcos targets: image %d has %d boxes but no array", n, nb);
    for (int k = 0; k < nb; k++)
      if (!bx[k].iscrowd && (bx[k].cat < 0 || bx[k].cat >= K))
        return fb_fail(st, "fcos targets: image %d box %d: category %d is outside 0..%d", n, k,
                       bx[k].cat, K - 1);
    float *cls = tgt_cls + (size_t)n * P, *box = tgt_box + (size_t)n * 4 * P,
          *ctr = tgt_ctr + (size_t)n * P;
    for (int l = 0; l < h->n_levels; l++) {
      const float s = (float)h->stride[l];
      for (int i = 0; i < h->h[l]; i++)
        for (int j = 0; j < h->w[l]; j++) {
          const int p = h->offset[l] + i * h->w[l] + j;
          const float x = ((float)j + 0.5f) * s, y = ((float)i + 0.5f) * s;
          int best = -1;
          float best_area = INFINITY, d[4] = {0, 0, 0, 0};
          for (int k = 0; k < nb; k++) {
            const fb_box *q = &bx[k];
            if (q->iscrowd || !(q->w > 0 && q->h > 0)) continue;
            float x0 = q->x, y0 = q->y, x1 = q->x + q->w, y1 = q->y + q->h;
            float e[4] = {x - x0, y - y0, x1 - x, y1 - y};
            if (!(e[0] > 0 && e[1] > 0 && e[2] > 0 && e[3] > 0)) continue;
            if (rad > 0) {
              float cx = x0 + 0.5f * q->w, cy = y0 + 0.5f * q->h, r = rad * s;
              float cx0 = fmaxf(x0, cx - r), cy0 = fmaxf(y0, cy - r), cx1 = fminf(x1, cx + r),
                    cy1 = fminf(y1, cy + r);
              if (!(x > cx0 && x < cx1 && y > cy0 && y < cy1)) continue;
            }
            float m = fmaxf(fmaxf(e[0], e[1]), fmaxf(e[2], e[3]));
            if (m < h->lo[l] || m > h->hi[l]) continue;
            float area = q->w * q->h;
            if (area < best_area) best = k, best_area = area, memcpy(d, e, sizeof d);
          }
          if (best >= 0) {
            cls[p] = (float)bx[best].cat;
            for (int c = 0; c < 4; c++) box[(size_t)c * P + p] = d[c] / s;
            double lr = fmin(d[0], d[2]) / fmax(d[0], d[2]),
                   tb = fmin(d[1], d[3]) / fmax(d[1], d[3]);
            ctr[p] = (float)sqrt(lr * tb);
          } else {
            cls[p] = inside_any_crowd(bx, nb, x, y) ? -2.f : -1.f;
            for (int c = 0; c < 4; c++) box[(size_t)c * P + p] = 0.f;
            ctr[p] = 0.f;
          }
        }
    }
  }
  return 0;
}

int fb_fcos_set_targets(fb_graph *g, const fb_fcos_head *h, const fb_batch *b, fb_status *st) {
  if (b->n != g->batch)
    return fb_fail(st, "fcos targets: batch has %d images, graph planned for %d", b->n, g->batch);
  return fb_fcos_targets(h, b, fb_graph_input_data(g, h->tgt_cls),
                         fb_graph_input_data(g, h->tgt_box), fb_graph_input_data(g, h->tgt_ctr), st);
}

/* ---- decoding ------------------------------------------------------------- */

static float sigmoidf_(float x) {
  if (x >= 0) return 1.f / (1.f + expf(-x));
  float e = expf(x);
  return e / (1.f + e);
}

int fb_fcos_decode(const fb_fcos_head *h, const float *cls, const float *box, const float *ctr,
                   const fb_batch *b, const int *image_ids, fb_det **dets, int *n_dets,
                   fb_status *st) {
  *dets = NULL;
  *n_dets = 0;
  const fb_fcos_cfg *c = &h->cfg;
  const int K = c->num_classes, P = h->P, N = b->n;
  const float size = (float)b->size;
  if (b->size < 1) return fb_fail(st, "fcos decode: batch image size %d", b->size);
  int level_max = 0, cap = 0;
  for (int l = 0; l < h->n_levels; l++) {
    int m = h->h[l] * h->w[l] * K;
    level_max = m > level_max ? m : level_max;
    cap += m < c->pre_nms_topk ? m : c->pre_nms_topk;
  }
  float *lscore = fb_xmalloc((size_t)level_max * sizeof *lscore);
  int *lidx = fb_xmalloc((size_t)level_max * sizeof *lidx),
      *order = fb_xmalloc((size_t)level_max * sizeof *order);
  float *cbox = fb_xmalloc((size_t)(4 * cap + 4) * sizeof *cbox),
        *cscore = fb_xmalloc((size_t)(cap + 1) * sizeof *cscore);
  int *ccls = fb_xmalloc((size_t)(cap + 1) * sizeof *ccls),
      *keep = fb_xmalloc((size_t)(cap + 1) * sizeof *keep);
  fb_det *out = fb_xmalloc((size_t)(N * c->max_dets + 1) * sizeof *out);
  int total = 0;
  for (int n = 0; n < N; n++) {
    float scale = b->scale ? b->scale[n] : 1.f, ox = b->off_x ? b->off_x[n] : 0.f,
          oy = b->off_y ? b->off_y[n] : 0.f;
    if (!(scale > 0)) {
      free(lscore), free(lidx), free(order), free(cbox), free(cscore), free(ccls), free(keep);
      free(out);
      return fb_fail(st, "fcos decode: image %d: batch scale %g must be > 0", n, (double)scale);
    }
    int nc = 0;
    for (int l = 0; l < h->n_levels; l++) {
      const int hw = h->h[l] * h->w[l], off = h->offset[l];
      const float s = (float)h->stride[l];
      int m = 0;
      for (int q = 0; q < hw; q++) {
        const int p = off + q;
        const float pc = sigmoidf_(ctr[(size_t)n * P + p]);
        for (int k = 0; k < K; k++) {
          float prob = sigmoidf_(cls[((size_t)n * K + k) * P + p]);
          if (!(prob > c->score_thresh)) continue;
          lscore[m] = sqrtf(prob * pc);
          lidx[m++] = q * K + k;
        }
      }
      fb_argsort_scores(lscore, m, order);
      int take = m < c->pre_nms_topk ? m : c->pre_nms_topk;
      for (int r = 0; r < take; r++) {
        int q = lidx[order[r]] / K, k = lidx[order[r]] % K, p = off + q;
        float x = ((float)(q % h->w[l]) + 0.5f) * s, y = ((float)(q / h->w[l]) + 0.5f) * s, d[4];
        for (int e = 0; e < 4; e++) {
          float v = box[((size_t)n * 4 + e) * P + p];
          d[e] = v > 0 ? v * s : 0.f;
        }
        float *bb = cbox + 4 * (size_t)nc;
        bb[0] = x - d[0], bb[1] = y - d[1], bb[2] = x + d[2], bb[3] = y + d[3];
        fb_box_clip(bb, size, size);
        if (!(bb[2] > bb[0] && bb[3] > bb[1])) continue;
        cscore[nc] = lscore[order[r]];
        ccls[nc++] = k;
      }
    }
    int kept = fb_nms(cbox, cscore, ccls, nc, c->nms_iou, c->max_dets, keep);
    for (int r = 0; r < kept; r++) {
      const float *bb = cbox + 4 * (size_t)keep[r];
      fb_det *dt = &out[total++];
      memset(dt, 0, sizeof *dt);
      dt->image_id = image_ids ? image_ids[n] : b->index ? b->index[n] : n;
      dt->box.x = (bb[0] - ox) / scale;
      dt->box.y = (bb[1] - oy) / scale;
      dt->box.w = (bb[2] - bb[0]) / scale;
      dt->box.h = (bb[3] - bb[1]) / scale;
      dt->box.area = dt->box.w * dt->box.h;
      dt->box.cat = ccls[keep[r]];
      dt->box.score = cscore[keep[r]];
    }
  }
  free(lscore), free(lidx), free(order), free(cbox), free(cscore), free(ccls), free(keep);
  *dets = out;
  *n_dets = total;
  return 0;
}

int fb_fcos_decode_graph(const fb_graph *g, const fb_fcos_head *h, const fb_batch *b,
                         const int *image_ids, fb_det **dets, int *n_dets, fb_status *st) {
  if (b->n > g->batch)
    return fb_fail(st, "fcos decode: batch has %d images, graph planned for %d", b->n, g->batch);
  return fb_fcos_decode(h, fb_graph_output(g, h->cls), fb_graph_output(g, h->box), fb_graph_output(g, h->ctr), b,
                        image_ids, dets, n_dets, st);
}
