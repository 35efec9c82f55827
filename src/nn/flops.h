/* The per-layer table of a built network (like darknet's): one row per graph
 * node with its output shape, parameters and multiply-adds at batch 1, and
 * the totals of fb_net_count. */
#ifndef FB_NN_FLOPS_H
#define FB_NN_FLOPS_H

#include <stdio.h>

#include "nn/net.h"

typedef struct fb_layer_count {
  const char *name;
  const char *op; /* "input" for graph inputs */
  fb_shape out;   /* at batch 1 */
  double weights; /* conv/linear weights (published convention) */
  double params;  /* every trainable value of the node (weights, biases, BN affine) */
  double macs;    /* fb_op_macs at batch 1 */
} fb_layer_count;

/* Counts of node i of net->g. */
fb_layer_count fb_layer_count_of(const fb_net *net, int i);

/* Human-readable table + totals. */
void fb_flops_print_table(FILE *f, const fb_net *net);

/* One JSON object: {"name", "input_size", "in_channels", "num_classes", "width",
 * "padding", "flops", "params", "params_all", "layers": [{"name", "op",
 * "out": [c, h, w], "params", "weights", "macs"}, ...]} and a newline.
 * Returns 0, or -1 with a message when the output cannot be written. */
int fb_flops_print_json(FILE *f, const fb_net *net, fb_status *st);

/* Multi-path nets: the cost of each task's network with every bit kept and
 * one row per searchable bit (name, block or cross term, MACs at batch 1);
 * as text or one JSON object {"name", "input_size", "width", "n_bits",
 * "flops", "params", "params_all", "tasks": {"cls": {"flops", "params"}, ...},
 * "bits": [{"bit", "name", "kind", "stage", "path", "from", "macs"}, ...]}. */
int fb_flops_print_bits(FILE *f, const fb_net *net, int json, fb_status *st);

#endif
