#include <string.h>

#include "ops/op.h"

extern const fb_op fb_op_conv2d, fb_op_batchnorm, fb_op_relu, fb_op_relu6, fb_op_hswish,
    fb_op_hsigmoid, fb_op_sigmoid, fb_op_gap, fb_op_chanmul, fb_op_add, fb_op_upsample_nearest,
    fb_op_upsample_bilinear, fb_op_concat, fb_op_linear, fb_op_softmax_ce;
extern const fb_op fb_op_concat_spatial, fb_op_focal_loss, fb_op_giou_loss, fb_op_bce_logits;

static const fb_op *const table[] = {
    &fb_op_conv2d,  &fb_op_batchnorm, &fb_op_relu,   &fb_op_relu6,
    &fb_op_hswish,  &fb_op_hsigmoid,  &fb_op_sigmoid, &fb_op_gap,
    &fb_op_chanmul, &fb_op_add,       &fb_op_upsample_nearest,
    &fb_op_upsample_bilinear,         &fb_op_concat, &fb_op_linear,
    &fb_op_softmax_ce, &fb_op_concat_spatial, &fb_op_focal_loss, &fb_op_giou_loss,
    &fb_op_bce_logits, NULL,
};

const fb_op *const *fb_op_table(void) { return table; }

const fb_op *fb_op_find(const char *name) { return fb_op_lookup(table, name); }

fb_op_attr fb_attr_default(void) {
  fb_op_attr a;
  memset(&a, 0, sizeof a);
  a.kh = a.kw = 1;
  a.sh = a.sw = 1;
  a.groups = 1;
  a.eps = 1e-5f;
  a.momentum = 0.1f;
  a.training = 1;
  a.scale = 2;
  a.ignore_index = -1;
  a.alpha = 0.25f;
  a.gamma = 2.0f;
  return a;
}
