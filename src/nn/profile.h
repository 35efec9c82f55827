/* Where a training step's time goes, against its floor.
 *
 * fb_graph_profile() makes the executor time every node; this module groups
 * the profiled nodes of a network into op families (pointwise convs,
 * depthwise convs, BN, ...), counts each family's multiply-adds and the bytes
 * it must move, and compares its measured time with the roofline floor
 *
 *   floor(node) = max(2 * MACs / peak_flops, bytes / bandwidth)
 *
 * computed for the forward and the backward of every node separately and
 * summed over the family's nodes (nodes run one after another, so a family
 * mixing compute-bound and memory-bound nodes cannot overlap them; summing
 * per-node maxima is the tighter floor). Peak and bandwidth are inputs
 * (`fbnet bench floor` measures them).
 *
 * The cost model, per node of the batch the graph was planned for, 4 bytes
 * per float, each tensor counted once (the minimum traffic of a fused kernel
 * whose working set does not stay in cache):
 *   forward  MACs  fb_op_macs (conv/linear multiply-adds, one per element of
 *                  a global pool, zero for the rest)
 *   backward MACs  conv/linear: fwd MACs for the weight gradient + fwd MACs
 *                  for the input gradient when the input needs one (not for a
 *                  graph input such as the image); zero for the rest
 *   forward  bytes read every present input + every parameter (BN running
 *                  statistics included), write the output
 *   backward bytes read the output gradient, the inputs (except for ops whose
 *                  gradient does not depend on them: add, upsample, concat,
 *                  gap), the trainable parameters; write the input gradients
 *                  that are needed (differentiable inputs that are not graph
 *                  inputs) and the parameter gradients
 * Workspace (saved BN statistics), labels' gradients and the += of gradient
 * accumulation are not counted. Bytes are DRAM traffic only when tensors do
 * not fit in the caches: for small maps the floor is pessimistic.
 */
#ifndef FB_NN_PROFILE_H
#define FB_NN_PROFILE_H

#include <stdio.h>

#include "nn/net.h"

typedef enum fb_family {
  FB_FAM_CONV1X1 = 0, /* conv2d k=1, groups 1 (SE fc convs excluded) */
  FB_FAM_DEPTHWISE,   /* conv2d with groups == C_in == C_out > 1 */
  FB_FAM_CONVKXK,     /* every other conv2d: stem, head 3x3, grouped convs */
  FB_FAM_BN,          /* batchnorm */
  FB_FAM_ACT,         /* hswish, relu, relu6, hsigmoid, sigmoid (outside SE) */
  FB_FAM_SE,          /* every node named "*.se.*" */
  FB_FAM_ADD,         /* add (residuals, fusion sums), chanmul outside SE */
  FB_FAM_UPCAT,       /* upsample_*, concat* */
  FB_FAM_POOLCLS,     /* gap outside SE, linear, losses */
  FB_FAM_OTHER,       /* any op not listed above */
  FB_FAM_COUNT
} fb_family;

typedef enum fb_part {
  FB_PART_TRUNK = 0,
  FB_PART_CLS, /* "head.*" (the ir_pool_hs stage), "pool", "classifier", "loss" */
  FB_PART_DET, /* "fcos.*" */
  FB_PART_SEG, /* "seg.*" */
  FB_PART_COUNT
} fb_part;

const char *fb_family_name(fb_family f);
const char *fb_part_name(fb_part p);

/* Family of node i (a node with an op); part of a node by its name. */
fb_family fb_profile_family_of(const fb_graph *g, int i);
fb_part fb_profile_part_of(const char *node_name);

/* Cost of one run of node i at the planned batch (see the model above). */
typedef struct fb_node_cost {
  double macs_fwd, macs_bwd;
  double bytes_fwd, bytes_bwd;
} fb_node_cost;
fb_node_cost fb_profile_node_cost(const fb_graph *g, int i);

/* The machine: fp32 FLOP/s (a multiply-add is 2 flops) and bytes/s. */
typedef struct fb_roofline {
  double peak_flops;
  double bandwidth;
} fb_roofline;

/* max(2 * macs / peak_flops, bytes / bandwidth) in seconds. */
double fb_floor_sec(double macs, double bytes, const fb_roofline *r);

/* One row of the table; all amounts per step (times: profiled seconds
 * divided by the number of profiled steps). */
typedef struct fb_family_row {
  fb_family family; /* FB_FAM_COUNT for a sum row */
  fb_part part;     /* FB_PART_COUNT when rows are not split by part */
  int nodes;        /* active nodes */
  double fwd_sec, bwd_sec;
  double macs_fwd, macs_bwd;
  double bytes_fwd, bytes_bwd;
  double floor_fwd_sec, floor_bwd_sec; /* sums of per-node floors */
  double flop_sec, mem_sec; /* fwd + bwd: sums of 2*MACs/peak and of bytes/bandwidth */
} fb_family_row;

/* flags: one row per (part, family); inference-only steps (no backward
 * costs, nothing outside the nodes) */
enum { FB_PROFILE_BY_PART = 1, FB_PROFILE_FORWARD = 2 };

/* Groups the active op nodes of net (profiled over `steps` steps with
 * fb_graph_profile; without profiling the times are 0) into rows, in family
 * order (by part first with FB_PROFILE_BY_PART); only non-empty rows. Every
 * active op node lands in exactly one row. Returns the number of rows, or -1
 * with a message when max_rows is too small or steps < 1. */
int fb_profile_families(const fb_net *net, int steps, const fb_roofline *r, unsigned flags,
                        fb_family_row *rows, int max_rows, fb_status *st);

/* Sum of rows[0..n) (family and part FB_*_COUNT). */
fb_family_row fb_profile_sum(const fb_family_row *rows, int n);

/* Bytes a training step moves outside the nodes: zeroing every active
 * node's output gradient, zeroing the parameter gradients, and an SGD step
 * with momentum (read weight, gradient, buffer; write weight, buffer) over
 * the trainable parameters. */
double fb_profile_outside_bytes(const fb_net *net);


/* Prints the family table (text, or one JSON line when json) for a net
 * profiled over `steps` steps whose mean step took step_sec: per family
 * forward/backward ms, share of the step, MACs, bytes, floor ms and
 * time/floor; the sum over the graph; the time outside the nodes (optimizer,
 * zeroing) with its bandwidth floor. Returns 0, or -1 with a message. */
int fb_profile_print(FILE *f, const fb_net *net, int steps, double step_sec,
                     const fb_roofline *r, unsigned flags, int json, fb_status *st);

#endif
