/* FBNet building blocks (docs/method.md section 2) appended to a graph: the one place
 * that knows what `conv_k3_hs`, `ir_k5_sehsig_hs` or `ir_pool_hs` expand to. */
#ifndef FB_NN_BLOCKS_H
#define FB_NN_BLOCKS_H

#include "core/graph.h"

typedef struct fb_block_spec {
  char op[48];      /* "conv_k3_hs", "ir_k5_sehsig_hs", "ir_pool_hs", ... */
  int c_out;        /* output channels after width scaling */
  int stride;
  double expansion; /* "e" */
  int dw_pad;       /* explicit depthwise padding; -1 = k/2 */
} fb_block_spec;

/* Appends one block reading node x; node names start with prefix (e.g.
 * "stage3.1"). Returns the block's output node id, or -1 with a message. */
int fb_block_add(fb_graph *g, const fb_block_spec *b, int x, const char *prefix, fb_status *st);

/* Non-zero when op names a known block. */
int fb_block_known(const char *op);

#endif
