/* Shape rule shared by upsample_nearest and upsample_bilinear: one input,
 * integer scale 1..64, (N,C,H,W) -> (N,C,H*s,W*s). */
#ifndef FB_OPS_UPSAMPLE_COMMON_H
#define FB_OPS_UPSAMPLE_COMMON_H

#include <stdio.h>

#include "ops/op.h"

static inline int fb_upsample_infer(const char *op, fb_op_args *a, char *msg) {
  if (a->n_in != 1) {
    snprintf(msg, 256, "%s: needs exactly 1 input (got %d)", op, a->n_in);
    return -1;
  }
  fb_shape s = a->in[0];
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    snprintf(msg, 256, "%s: input shape (%d,%d,%d,%d) has an empty dimension", op, s.n, s.c, s.h,
             s.w);
    return -1;
  }
  if (a->attr.scale < 1 || a->attr.scale > 64) {
    snprintf(msg, 256, "%s: scale must be an integer in 1..64 (got %d)", op, a->attr.scale);
    return -1;
  }
  a->n_par = 0;
  a->out = fb_shape4(s.n, s.c, s.h * a->attr.scale, s.w * a->attr.scale);
  return 0;
}

#endif
