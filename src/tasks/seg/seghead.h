/* The light segmentation head (docs/method.md section 2: "segmentation from all paths,
 * upsampled to H/4, summed or concatenated"), its targets and predictions.
 *
 * Graph built by fb_seg_build on an existing graph g (input size S, K =
 * cfg->num_classes, W = cfg->width), nodes named "seg.*":
 *
 *   for each level i (feature node f_i at stride s_i, any channel count):
 *     seg.lat<i>.conv   1x1 conv C_i -> W (no bias)   (N,W,S/s_i,S/s_i)
 *     seg.lat<i>.bn     batch norm
 *     seg.lat<i>.act    relu or hswish (cfg->act)
 *     seg.lat<i>.up     bilinear upsample, integer scale s_i/4 (omitted
 *                       when s_i == 4)                           (N,W,S/4,S/4)
 *   fuse = FB_SEG_FUSE_SUM:    seg.fuse  n-ary add of the levels (N,W,S/4,S/4)
 *   fuse = FB_SEG_FUSE_CONCAT: seg.fuse  concat along C   (N,n*W,S/4,S/4)
 *                              seg.fuse_proj.{conv,bn,act}: 1x1 n*W -> W
 *     (one level: no fuse node in either mode; the level is the fused map)
 *   seg.mix.{conv,bn,act}   3x3 conv W -> W (pad 1) + BN + act
 *   seg.cls                 1x1 conv W -> K with bias       (N,K,S/4,S/4)
 *   seg.up                  bilinear upsample x4 -> logits  (N,K,S,S)
 *   seg.tgt                 graph input (N,1,S,S): class index per pixel as
 *                           a float, 255 = ignore (fb_seg_targets fills it)
 *   seg.loss                softmax_ce(logits, tgt), ignore_index 255,
 *                           mean over non-ignored pixels, node loss_weight =
 *                           cfg->loss_weight
 *
 * Every stride must be 4 * 2^k (4, 8, 16, 32, 64 ...), S must be divisible by
 * every stride, and feature i must be (N, C_i, S/s_i, S/s_i); otherwise the
 * build fails with a message naming the level. Levels may come in any order
 * and any subset; the bilinear upsampling follows PyTorch
 * interpolate(mode='bilinear', align_corners=False).
 *
 * Cost: per image, (S/4)^2 * (W * sum_i C_i (4/s_i)^2 + 9 W^2 + W K)
 * multiply-adds (plus n W^2 (S/4)^2 for the concat projection); the 3x3 mix
 * conv dominates. At the defaults (W = 32), S = 128, K = 11 and levels of
 * 24/40/120/224 channels at strides 4/8/16/32 that is 11.3 M MACs and 23.0 k
 * trainable values. `test_seghead --bench [width] [concat]` times a
 * training step (batch 16 at 128 px) with a per-node profile. */
#ifndef FB_TASKS_SEG_SEGHEAD_H
#define FB_TASKS_SEG_SEGHEAD_H

#include <stdint.h>

#include "core/graph.h"
#include "data/batch.h"

#define FB_SEG_IGNORE 255
#define FB_SEG_MAX_LEVELS 8

typedef enum fb_seg_fuse { FB_SEG_FUSE_SUM = 0, FB_SEG_FUSE_CONCAT } fb_seg_fuse;
typedef enum fb_seg_act { FB_SEG_ACT_RELU = 0, FB_SEG_ACT_HSWISH } fb_seg_act;

typedef struct fb_seg_cfg {
  int num_classes;   /* K >= 1, mask values 0..K-1 (255 = ignore); no default */
  int width;         /* head channels W (default 32) */
  fb_seg_fuse fuse;  /* default FB_SEG_FUSE_SUM */
  fb_seg_act act;    /* default FB_SEG_ACT_RELU */
  float loss_weight; /* default 1 */
} fb_seg_cfg;

/* width 32, sum fusion, relu, loss weight 1, num_classes 0 (the caller must
 * set it). */
fb_seg_cfg fb_seg_cfg_default(void);

/* Node ids of a built head in its graph. */
typedef struct fb_seg_head {
  fb_seg_cfg cfg;
  int input_size; /* S */
  int n_levels;
  int level[FB_SEG_MAX_LEVELS]; /* per level: its map at stride 4 (after .up) */
  int fused;                    /* fused map at stride 4 (N,W,S/4,S/4) */
  int logits;                   /* (N,K,S,S) */
  int tgt;                      /* graph input (N,1,S,S) */
  int loss;                     /* scalar loss node */
} fb_seg_head;

/* Appends the head to g (before fb_graph_plan). feat_nodes[i] is the feature
 * node at strides[i], i < n_levels (1..FB_SEG_MAX_LEVELS). Returns 0, or -1
 * with a message naming the config field or level at fault. */
int fb_seg_build(fb_graph *g, fb_seg_head *h, const fb_seg_cfg *cfg, const int *feat_nodes,
                 const int *strides, int n_levels, int input_size, fb_status *st);

/* Copies the batch masks (b->n * S * S uint8, 255 = ignore) into the target
 * tensor tgt (b->n * S * S floats; normally g->nodes[h->tgt].out). Values
 * that are not a class in [0, K) are written as 255 (ignored), so a corrupt
 * mask can never index out of range. A batch without masks (b->masks ==
 * NULL) gives an all-ignore target. b->size must equal h->input_size (the
 * loader makes batches at the network's input size); a batch of another size
 * is a caller bug, and its target is all-ignore rather than a read out of
 * bounds. */
void fb_seg_targets(const fb_seg_head *h, const fb_batch *b, float *tgt);

/* Argmax over classes per pixel of item `item` of logits (N,K,S,S) (normally
 * g->nodes[h->logits].out); out receives S*S class indices. Ties go to the
 * lower class. */
void fb_seg_predict(const fb_seg_head *h, const float *logits, int item, int S, uint8_t *out);

#endif
