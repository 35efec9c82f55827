/* A built network: the graph plus the nodes the trainer needs. */
#ifndef FB_NN_NET_H
#define FB_NN_NET_H

#include "core/graph.h"
#include "fbnet.h"
#include "tasks/det/fcos.h"
#include "tasks/seg/seghead.h"

struct fb_net {
  fb_graph g;
  fb_build_opts opts;
  char name[64];
  int input_node;  /* (batch, in_channels, input_size, input_size) */
  unsigned tasks;  /* FB_TASK_* heads present */
  /* classification head (FB_TASK_CLS; -1 otherwise) */
  int label_node;  /* (batch, 1, 1, 1): class index as float */
  int logits_node; /* (batch, num_classes, 1, 1) */
  int loss_node;   /* softmax cross-entropy, scalar */
  fb_fcos_head det; /* FB_TASK_DET */
  fb_seg_head seg;  /* FB_TASK_SEG */
  uint64_t seed;   /* initialises the parameters at the first plan */
  char *arch_text; /* the arch file's JSON (owned; NULL when unknown), saved with weights */
  char *labels_json; /* class / category names of the training data (src/data/labels.h;
                      * owned; NULL when unknown), saved with weights as "labels" */
  struct fb_mp_net *mp; /* multi-path nets: elements and bits (src/nn/multipath.h) */
};

/* Allocates activations for this batch size; the first call also allocates
 * the parameters and initialises them from the build seed (`seed` is
 * unused and kept for API stability). */
int fb_net_plan(fb_net *net, int batch, uint64_t seed, fb_status *st);
/* The same for forward-only use (eval, predict, labelling): activations share
 * memory by lifetime; after a forward the heads' outputs (logits, FCOS
 * cls/box/ctr, segmentation logits) and the losses stay readable, nothing
 * else. No backward on such a network. */
int fb_net_plan_inference(fb_net *net, int batch, fb_status *st);
static inline float *fb_net_input(fb_net *net) { return fb_graph_input_data(&net->g, net->input_node); }
static inline float *fb_net_labels(fb_net *net) { return fb_graph_input_data(&net->g, net->label_node); }
static inline const float *fb_net_logits(const fb_net *net) {
  return fb_graph_output(&net->g, net->logits_node);
}
/* Forward pass; returns the total loss: the sum over loss nodes of
 * loss_weight * loss (0 for an inference plan, whose losses do not run). */
float fb_net_forward(fb_net *net, int training);
/* Backward pass; accumulates into net->g.params.grad. */
void fb_net_backward(fb_net *net);

#endif
