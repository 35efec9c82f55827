/* The executor: a network is a topologically ordered list of nodes, each one
 * op instance from the op table. A node's output, its gradient and its
 * workspace are allocated once per batch size by fb_graph_plan() and reused
 * every step; a step allocates nothing.
 *
 * Skippable nodes (for the supernet): a node with bit >= 0 is active only when
 * mask[bit] is set. An inactive node with alias >= 0 hands on the value of
 * node `alias` (identity block); an inactive node with alias < 0 is absent and
 * an `add` that reads it simply drops the term. Inactive nodes run no
 * computation and leave their BN statistics alone; backward walks the same
 * executed list in reverse.
 */
#ifndef FB_CORE_GRAPH_H
#define FB_CORE_GRAPH_H

#include <stdint.h>

#include "core/params.h"
#include "fbnet.h"
#include "ops/op.h"

enum { FB_NODE_ZERO_GAMMA = 1 }; /* build flag: BN gamma starts at 0 (residual) */

typedef struct fb_node {
  char name[96];
  const fb_op *op; /* NULL for a graph input */
  fb_op_args args; /* shapes at the planned batch size */
  int in[FB_MAX_IN];
  int par[FB_MAX_PAR]; /* slots in the parameter store */
  int bit;             /* searchable bit, -1 = always on */
  int alias;           /* see above */
  int active;
  float loss_weight; /* loss nodes: d(total)/d(this loss) */
  float *out, *dout, *ws;
  fb_op_ctx ctx;
} fb_node;

typedef struct fb_graph {
  fb_node *nodes;
  int n, cap;
  fb_params params;
  int batch; /* planned batch size, 0 before fb_graph_plan */
  int training;
} fb_graph;

void fb_graph_init(fb_graph *g);
void fb_graph_free(fb_graph *g);

/* Adds a graph input of shape (batch, c, h, w). Returns the node id. */
int fb_graph_input(fb_graph *g, const char *name, int c, int h, int w);

/* Adds a node running op `op_name` on nodes in[0..n_in); registers its
 * parameters as "<name>.<par_name>". Returns the node id, or -1 with a message
 * (unknown op, shapes that do not fit). */
int fb_graph_add(fb_graph *g, const char *op_name, const char *name, const int *in, int n_in,
                 const fb_op_attr *attr, int flags, fb_status *st);

/* Like fb_graph_add, but the new node uses the parameter slots of node
 * `share` (same op, same parameter shapes), e.g. a head tower whose conv
 * weights are shared across feature levels: both nodes' gradients accumulate
 * into the same slots. */
int fb_graph_add_shared(fb_graph *g, const char *op_name, const char *name, const int *in,
                        int n_in, const fb_op_attr *attr, int share, fb_status *st);

/* Allocates parameters (once) and activations for this batch size. */
int fb_graph_plan(fb_graph *g, int batch, uint64_t seed, fb_status *st);

/* Activates nodes by mask (NULL: all active). */
void fb_graph_set_mask(fb_graph *g, const uint8_t *mask);

/* Runs every active node in order. training selects batch statistics. */
void fb_graph_forward(fb_graph *g, int training);
/* Zeroes node gradients, seeds each active loss node with its loss_weight and
 * runs backward in reverse, accumulating parameter gradients in the store
 * (the caller zeroes the store's gradients before the step). */
void fb_graph_backward(fb_graph *g);
/* Like fb_graph_backward, but seeds only node `node` with the gradient dout
 * (numel of its output) instead of the loss nodes: for tests against
 * reference gradients of an arbitrary sub-network. */
void fb_graph_backward_from(fb_graph *g, int node, const float *dout);

/* The node whose value node `id` reads as its input k (following aliases);
 * -1 when absent. */
int fb_graph_source(const fb_graph *g, int id);

#endif
