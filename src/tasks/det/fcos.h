/* FCOS-like anchor-free detection head (Tian et al. 2019) on an fb_graph:
 * builder, target assignment, decoding.
 *
 * Graph (node names start with "fcos."), for feature levels l = 0..L-1 at
 * strides s_l (e.g. 8/16/32, any channel counts):
 *   lateral  lat_l = BN_l(conv1x1(feat_l -> width))              (own weights)
 *   top-down (cfg.top_down) p_l = lat_l + upsample_nearest_x2(p_{l+1}),
 *            p_{L-1} = lat_{L-1}; needs H_l = 2 H_{l+1}, W_l = 2 W_{l+1}
 *   towers   cls and reg: tower_depth x (conv3x3 -> BN -> act), the conv
 *            weights SHARED across levels (fb_graph_add_shared), one BN per
 *            level (BN not shared)
 *   outputs  cls conv3x3 -> K (bias), box conv3x3 -> 4 (bias) then relu,
 *            centerness conv3x3 -> 1 (bias) on the reg tower; all shared
 *   gather   concat_spatial of the levels: cls (N,K,P,1), box (N,4,P,1),
 *            ctr (N,1,P,1), P = sum_l H_l W_l, level-major, row-major within
 *            a level (location index p = offset_l + i * W_l + j)
 *   targets  graph inputs tgt_cls (N,1,P,1) class index (-1 background, -2
 *            ignored), tgt_box (N,4,P,1) l,t,r,b / stride, tgt_ctr (N,1,P,1)
 *            centerness target at positives, 0 elsewhere
 *   losses   focal_loss(cls, tgt_cls)            weight cfg.w_cls,
 *            giou_loss(box, tgt_box, tgt_ctr)    weight cfg.w_box,
 *            bce_logits(ctr, tgt_ctr, tgt_ctr)   weight cfg.w_ctr
 *            (tgt_ctr > 0 exactly at positives, so it is also the mask).
 * Box outputs are l,t,r,b distances in units of the level's stride
 * ("norm_reg_targets"), made non-negative by a relu.
 *
 * Location (i, j) of a level with stride s sits at pixel
 * ((j + 0.5) s, (i + 0.5) s) of the input (FCOS: j s + s/2).
 *
 * Assignment (fb_fcos_targets), per image and location (x, y), level l:
 *   candidates: non-crowd boxes with w, h > 0 such that the location is
 *   strictly inside the box, strictly inside the centre region
 *   (centre +- center_radius * s, clipped to the box; center_radius <= 0:
 *   the whole box) and m = max(l,t,r,b) in [lo_l, hi_l] (pixels);
 *   the candidate with the smallest area w*h wins (ties: the earlier box).
 *   Scale ranges: hi_l = cfg.bounds[l] if > 0, else range_mult * s_l; the last
 *   level has hi = infinity; lo_0 = 0, lo_l = hi_{l-1}. Defaults at strides
 *   8/16/32: [0,32], [32,64], [64,inf] pixels, sized for 64-128 px scenes
 *   (FCOS on 800 px COCO: [0,64], [64,128], ... i.e. range_mult 8).
 *   A positive gets class cat, box (l,t,r,b)/s and centerness
 *   sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b)) (> 0); a non-positive
 *   location strictly inside a crowd box is ignored (-2), else background
 *   (-1); non-positives have box 0 and centerness 0.
 *
 * Decoding (fb_fcos_decode), per image: per level, candidates (location,
 * class) with sigmoid(cls) > score_thresh, ranked by
 * score = sqrt(sigmoid(cls) * sigmoid(ctr)), the pre_nms_topk best kept;
 * boxes ((x - l s, y - t s, x + r s, y + b s)) clipped to the batch image,
 * empty boxes dropped; class-wise NMS at IoU nms_iou over all levels; the
 * max_dets best by score, mapped to original image pixels with the batch's
 * scale/offset: orig = (batch - off) / scale.
 */
#ifndef FB_TASKS_DET_FCOS_H
#define FB_TASKS_DET_FCOS_H

#include "core/graph.h"
#include "data/batch.h"
#include "data/formats.h"

#define FB_FCOS_MAX_LEVELS 5

typedef struct fb_fcos_cfg {
  int num_classes;   /* K >= 1 (required) */
  int width;         /* head channels (default 64) */
  int tower_depth;   /* conv3x3 + BN + act per tower (default 2; >= 0) */
  int act_hswish;    /* tower activation: 0 relu (default), 1 hswish */
  int top_down;      /* 1 (default): add the upsampled coarser lateral */
  float prior_prob;  /* initial foreground probability of cls (0.01) */
  float alpha, gamma;              /* focal loss (0.25, 2) */
  float w_cls, w_box, w_ctr;       /* loss weights (1, 1, 1) */
  float range_mult;                /* default upper bound of level l: range_mult * s_l (4) */
  float bounds[FB_FCOS_MAX_LEVELS]; /* explicit upper bounds in pixels (0: default) */
  float center_radius;             /* centre sampling radius in strides (1.5; <= 0: off) */
  float score_thresh;              /* decode: sigmoid(cls) threshold (0.05) */
  int pre_nms_topk;                /* decode: per level and image (1000) */
  float nms_iou;                   /* decode: class-wise NMS IoU (0.6) */
  int max_dets;                    /* decode: per image (100) */
} fb_fcos_cfg;

fb_fcos_cfg fb_fcos_cfg_default(int num_classes);

typedef struct fb_fcos_head {
  fb_fcos_cfg cfg;
  int n_levels;
  int stride[FB_FCOS_MAX_LEVELS], h[FB_FCOS_MAX_LEVELS], w[FB_FCOS_MAX_LEVELS];
  int offset[FB_FCOS_MAX_LEVELS]; /* first location index of each level */
  float lo[FB_FCOS_MAX_LEVELS], hi[FB_FCOS_MAX_LEVELS]; /* scale ranges, pixels */
  int P;                          /* locations per image */
  int cls, box, ctr;              /* concat_spatial nodes (N,K,P,1) (N,4,P,1) (N,1,P,1) */
  int tgt_cls, tgt_box, tgt_ctr;  /* target input nodes */
  int loss_cls, loss_box, loss_ctr;
  int cls_conv, box_conv, ctr_conv; /* level-0 output convs (own the shared params) */
} fb_fcos_head;

/* Adds the head to g (before fb_graph_plan). feat_nodes/strides: n_levels
 * (1..FB_FCOS_MAX_LEVELS) feature nodes from fine to coarse with increasing
 * strides. Returns 0, or -1 with a message naming the field at fault. */
int fb_fcos_build(fb_graph *g, fb_fcos_head *h, const fb_fcos_cfg *cfg, const int *feat_nodes,
                  const int *strides, int n_levels, fb_status *st);

/* Call after the first fb_graph_plan (before loading trained weights): cls
 * bias = -log((1 - prior) / prior), box bias = 1 (every l,t,r,b starts at
 * one stride, alive under the relu), ctr bias = 0, and the three output
 * convs' weights rescaled to standard deviation 0.01 (FCOS init; rescaling
 * the planned draws keeps the plan seed's determinism and is idempotent). */
void fb_fcos_init_params(fb_graph *g, const fb_fcos_head *h);

/* Targets of the b->n images of a batch: tgt_cls (n,1,P,1), tgt_box
 * (n,4,P,1), tgt_ctr (n,1,P,1) laid out like the graph inputs. Fails on a
 * non-crowd box whose category is outside [0, K). */
int fb_fcos_targets(const fb_fcos_head *h, const fb_batch *b, float *tgt_cls, float *tgt_box,
                    float *tgt_ctr, fb_status *st);
/* The same written into the graph's target inputs (b->n must equal the
 * planned batch). */
int fb_fcos_set_targets(fb_graph *g, const fb_fcos_head *h, const fb_batch *b, fb_status *st);

/* Detections of the b->n images from head outputs cls (n,K,P,1), box
 * (n,4,P,1, already relu'd: values < 0 count as 0), ctr (n,1,P,1).
 * image_ids: n ids, or NULL for b->index[i] (or i when b->index is NULL).
 * b->scale/off_x/off_y may be NULL (identity). *dets is allocated (free()),
 * grouped by image in batch order, each image by decreasing score. */
int fb_fcos_decode(const fb_fcos_head *h, const float *cls, const float *box, const float *ctr,
                   const fb_batch *b, const int *image_ids, fb_det **dets, int *n_dets,
                   fb_status *st);
/* The same from the graph's head outputs after a forward. */
int fb_fcos_decode_graph(const fb_graph *g, const fb_fcos_head *h, const fb_batch *b,
                         const int *image_ids, fb_det **dets, int *n_dets, fb_status *st);

#endif
