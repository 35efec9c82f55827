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
 *
 * A node's gradient (dout) is valid only during the backward pass that
 * computes it: gradient buffers are shared between nodes whose gradients
 * are never needed at the same time (fb_grad_plan). After backward, only the
 * gradients of graph inputs (unless no_input_grads) and of the parameters
 * remain readable.
 */
#ifndef FB_CORE_GRAPH_H
#define FB_CORE_GRAPH_H

#include <stdint.h>

#include "core/backend.h"
#include "core/op.h"
#include "core/params.h"
#include "fbnet.h"

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
  int root;          /* 1: never pruned as dead code (like a loss node) */
  int keep_out;      /* inference_only graphs: the output stays readable after forward */
  float *out, *dout, *ws;
  fb_op_ctx ctx;
} fb_node;

typedef struct fb_graph {
  fb_node *nodes;
  int n, cap;
  const fb_op *const *ops;    /* the ops nodes are named from (NULL-terminated) */
  const fb_backend *backend;  /* runs the kernels (fb_backend_cpu unless set) */
  fb_params params;
  int batch; /* planned batch size, 0 before fb_graph_plan */
  int training;
  /* 1: fb_graph_set_mask also deactivates every node whose value cannot
   * reach an active loss node (dead code of a sampled architecture) */
  int prune_dead;
  /* profiling (benchmarks): when non-NULL (g->n entries each), forward and
   * backward add each node's wall time in seconds */
  double *prof_fwd, *prof_bwd;
  /* gradients share one arena (src/core/grad_arena.c): node i's dout lives
   * from the backward of its last possible writer grad_writer[i] (g->n: from
   * the start) to its own backward; grad_zero_order lists the nodes by
   * grad_writer, latest first (when each buffer is zeroed) */
  float *grad_arena;    /* allocated by the first backward (inference never needs it) */
  size_t grad_arena_n, *grad_offset;
  int *grad_writer, *grad_zero_order;
  int no_input_grads; /* 1: no gradient into graph inputs (training) */
  int keep_grads;     /* 1 (set before fb_graph_plan): every node keeps its own gradient
                       * buffer, readable after backward (tests, debugging) */
  /* 1 (set before fb_graph_plan): forward only (eval, predict): activations
   * share one arena by forward lifetime; after forward only graph inputs,
   * nodes nobody reads and keep_out nodes stay readable; loss nodes do not
   * run (there are no targets at inference) */
  int inference_only;
  int zero_init;      /* the first plan leaves the parameters zero (timing only, or weights
                       * loaded next): initialising them is half of planning a big net */
  float *act_arena;
  uint8_t *scratch; /* 2 * scratch_n bytes for the liveness pass */
  int scratch_n;
} fb_graph;

/* An empty graph whose nodes name their ops from `ops` (a NULL-terminated
 * table, e.g. fb_op_table() of src/ops/op.h), run by the CPU backend. */
void fb_graph_init(fb_graph *g, const fb_op *const *ops);
/* Runs the graph's kernels through `be` (NULL: the CPU backend), which also
 * allocates its node buffers; only before the first fb_graph_plan (-1 after:
 * the buffers belong to the backend that allocated them). */
int fb_graph_set_backend(fb_graph *g, const fb_backend *be);
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

/* Activates nodes by mask (NULL: all active); with g->prune_dead, then
 * deactivates the nodes that no active loss node depends on. */
void fb_graph_set_mask(fb_graph *g, const uint8_t *mask);

/* Node activity of a mask without touching the graph: act[i] = node i runs
 * under mask (its bit is set or it has none). */
void fb_graph_mask_activity(const fb_graph *g, const uint8_t *mask, uint8_t *act);
/* live[i] = 1 when node i is active (act) and roots[0..n_roots) depend on
 * its value (inputs followed through the aliases of inactive nodes). */
void fb_graph_liveness(const fb_graph *g, const uint8_t *act, const int *roots, int n_roots,
                       uint8_t *live);

/* Host access to node memory (the only way in and out for code outside
 * core: a device backend stages here). fb_graph_input_data: the buffer of a
 * graph input (a node without op: images, labels, targets) to fill before
 * forward. fb_graph_output: a node's values after forward (for inference-only
 * graphs only where documented above). */
float *fb_graph_input_data(fb_graph *g, int node);
const float *fb_graph_output(const fb_graph *g, int node);
/* A loss node's value after forward (its output's only element). */
float fb_graph_loss(const fb_graph *g, int node);

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

/* Lays out the gradient buffers (called by fb_graph_plan); returns the
 * arena size in floats. */
size_t fb_grad_plan(fb_graph *g);
/* Allocates the planned gradient arena if it is not yet (backward calls it). */
void fb_grad_arena_ensure(fb_graph *g);
/* Offsets for n buffers of len[i] floats live over [start[i], end[i]]
 * (inclusive): buffers whose intervals overlap never share memory. */
size_t fb_interval_place(int n, const size_t *len, const int *start, const int *end, size_t *off);
/* Inference: places every node's output in one arena by forward lifetime
 * (called by fb_graph_plan when g->inference_only); returns the arena. */
float *fb_act_plan(fb_graph *g);

/* Turns per-node timing on (allocates prof_fwd/prof_bwd, zeroed) or off. */
void fb_graph_profile(fb_graph *g, int on);

/* The node whose value node `id` reads as its input k (following aliases);
 * -1 when absent. */
int fb_graph_source(const fb_graph *g, int id);

#endif
