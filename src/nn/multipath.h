/* Multi-path networks (the FBNetV5 supernet and the architectures derived
 * from it) as graphs, their searchable bits, per-task costs under a mask, and
 * derivation (docs/method.md section 3; docs/supernet.md).
 *
 * Elements: every block copy (stem, path blocks, the blocks that open a
 * path) and every cross-path fusion term T(from -> to) is one element, a
 * contiguous range of graph nodes. In a searchable file (`"search": true`) a
 * block whose input and output shapes are equal and every cross term is a
 * searchable bit: its nodes carry the bit; a skipped block's last node
 * aliases the block's input (identity), a skipped cross term drops out of
 * its fusion sum. Bits are numbered in build order: stem, then per stage the
 * path blocks path by path, then the stage's cross terms by (to, from). */
#ifndef FB_NN_MULTIPATH_H
#define FB_NN_MULTIPATH_H

#include <stdint.h>

#include "nn/arch.h"

struct fb_net;

typedef enum { FB_ELEM_BLOCK = 0, FB_ELEM_OPEN, FB_ELEM_CROSS } fb_elem_kind;

typedef struct fb_mp_elem {
  fb_elem_kind kind;
  int stage;        /* -1: the stem */
  int path;         /* block: its path; cross: the target path */
  int from;         /* cross: the source path */
  int row;          /* block: index into fb_mp.rows; open: -1 */
  int copy;         /* block: which copy of the row's repeat */
  int bit;          /* searchable bit, -1: always kept */
  int first, last;  /* node range [first, last]; last is the element's output */
  char name[64];    /* "stem.1", "s2.p2.3", "s3.open", "s3.f0to3" */
} fb_mp_elem;

typedef struct fb_mp_net {
  fb_mp arch;       /* the description it was built from (rows owned) */
  int input_size;
  fb_mp_elem *elems;
  int n_elems;
  int n_bits;
  int *bit_elem;    /* element of each bit */
  int path_out[FB_MP_MAX_PATHS]; /* node of each path after the last fusion */
  int n_paths;
  double *node_macs, *node_weights; /* per node at batch 1, filled once after building */
  uint8_t *scratch;                 /* 2 x nodes: the per-step cost pass allocates nothing */
} fb_mp_net;

/* Builds the trunk of a multi-path arch into net->g (called by
 * fb_net_build); returns 0 or -1 with a message. */
int fb_mp_build(struct fb_net *net, const fb_arch *arch, fb_status *st);
void fb_mp_net_free(fb_mp_net *m);

/* Keeps every path's final output alive whatever heads the net has: the
 * whole supernet runs, as with all heads (benchmarks comparing task counts
 * on the same supernet). Re-applies the current mask's activity. */
void fb_mp_keep_all_paths(struct fb_net *net);

/* Loss nodes of one task's head (FB_TASK_*); returns their count (<= 4). */
int fb_net_task_roots(const struct fb_net *net, unsigned task, int *roots);

/* Cost of the network that task `task` uses under mask (NULL: all bits on):
 * multiply-adds and conv/linear weights of the trunk nodes that reach the
 * task's head plus the head itself, at batch 1 (published convention).
 * Allocation-free (it runs every search step); not thread-safe. */
typedef struct fb_task_cost {
  double macs, params;
} fb_task_cost;
fb_task_cost fb_mp_task_cost(const struct fb_net *net, const uint8_t *mask, unsigned task);

/* Sum of per_elem[e] over the elements the task keeps under mask (those
 * fb_mp_derive keeps); allocation-free, not thread-safe. */
double fb_mp_task_elem_sum(const struct fb_net *net, const uint8_t *mask, unsigned task,
                           const double *per_elem);

/* MACs (batch 1) of the nodes of each bit: macs[b], b < n_bits. */
void fb_mp_bit_macs(const struct fb_net *net, double *macs);

/* Derivation: the architecture task `task` uses under mask: the kept bits,
 * minus every element whose output cannot reach the task's head. Writes
 * kept[e] (n_elems) and returns the derived description (rows owned by the
 * result; free with fb_mp_free_desc); NULL with a message on failure. */
int fb_mp_derive(const struct fb_net *net, const uint8_t *mask, unsigned task, uint8_t *kept,
                 fb_mp *out, fb_status *st);
void fb_mp_free_desc(fb_mp *d);

/* Bit string "1011..." of a mask (n_bits chars + NUL into s). */
void fb_mask_to_string(const uint8_t *mask, int n_bits, char *s);
/* Parses a bit string; -1 with a message when its length or characters are
 * wrong. */
int fb_mask_from_string(const char *s, int n_bits, uint8_t *mask, fb_status *st);

#endif
