/* The network builder: arch rows -> blocks -> classifier + loss, and the
 * counters of the published FLOPs/params convention (docs/method.md section 2). */
#include "ops/op.h"
#include "nn/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/arch.h"
#include "nn/blocks.h"
#include "nn/multipath.h"
#include "tasks/task.h"

fb_build_opts fb_build_opts_default(void) {
  fb_build_opts o;
  memset(&o, 0, sizeof o);
  o.input_size = 224;
  o.in_channels = 3;
  o.num_classes = 1000;
  o.width = 1.0;
  o.standard_padding = 0;
  o.tasks = FB_TASK_CLS;
  return o;
}

/* docs/method.md section 2: n itself when a multiple of 8; else round(n/8) half up (0 -> 1) times
 * 8, plus 8 when that is below 0.95 n; never below 8. */
int fb_div8(double n) {
  if (!(n > 0.0)) return 8; /* zero, negative, NaN */
  if (n > 1e9) n = 1e9;
  if (n == floor(n) && fmod(n, 8.0) == 0.0) return (int)n;
  double r = floor(n / 8.0 + 0.5);
  if (r < 1.0) r = 1.0;
  double v = 8.0 * r;
  if (v < 0.95 * n) v += 8.0;
  return v < 8.0 ? 8 : (int)v;
}

static int check_opts(const fb_build_opts *o, fb_status *st) {
  if (o->input_size < 1 || o->input_size > 16384)
    return fb_fail(st, "input size %d out of range [1, 16384]", o->input_size);
  if (o->in_channels < 1 || o->in_channels > 4096)
    return fb_fail(st, "input channels %d out of range [1, 4096]", o->in_channels);
  if (o->num_classes < 1 || o->num_classes > 1000000)
    return fb_fail(st, "number of classes %d out of range [1, 1000000]", o->num_classes);
  if (!(o->width > 0.0) || o->width > 16.0)
    return fb_fail(st, "width multiplier %g out of range (0, 16]", o->width);
  return 0;
}

/* Feature taps of the trunk for the dense heads. */
#define MAX_LOG2_STRIDE 8
typedef struct trunk_taps {
  int at_stride[MAX_LOG2_STRIDE + 1]; /* last block output at stride 2^k, -1: none */
  const fb_arch *arch;
  int *stage_last; /* per row index: the last node of that row's stage so far */
} trunk_taps;

/* The stage "head" (ir_pool_hs) belongs to the classifier. */
static int is_cls_stage(const char *stage) { return strcmp(stage, "head") == 0; }

/* Adds the rows of arch to net->g; returns the last node or -1. */
static int add_rows(fb_net *net, const fb_arch *arch, trunk_taps *taps, fb_status *st) {
  fb_graph *g = &net->g;
  int x = net->input_node, block_in_stage = 0, explicit_pad_seen = 0, log2_stride = 0;
  for (int i = 0; i < arch->n_rows; i++) {
    const fb_arch_row *r = &arch->rows[i];
    if (is_cls_stage(r->stage) && !(net->tasks & FB_TASK_CLS)) continue;
    if (i == 0 || strcmp(r->stage, arch->rows[i - 1].stage) != 0) block_in_stage = 0;
    fb_block_spec b;
    memset(&b, 0, sizeof b);
    snprintf(b.op, sizeof b.op, "%s", r->op);
    b.c_out = fb_div8(r->c_out * net->opts.width);
    b.expansion = r->e;
    b.dw_pad = net->opts.standard_padding ? -1 : r->dw_pad;
    if (b.dw_pad >= 0) explicit_pad_seen = 1;
    for (int k = 0; k < r->repeat; k++, block_in_stage++) {
      b.stride = k == 0 ? r->stride : 1;
      char prefix[64];
      snprintf(prefix, sizeof prefix, "%s.%d", r->stage, block_in_stage);
      int y = fb_block_add(g, &b, x, prefix, st);
      if (y < 0) {
        char inner[sizeof st->msg];
        snprintf(inner, sizeof inner, "%s", st ? st->msg : "");
        const fb_shape s = g->nodes[x].args.out;
        return fb_fail(
            st, "%s: stage %s row %d (%s, block %s, input %dx%dx%d at %d px): %s%s", arch->path,
            r->stage, r->index, r->op, prefix, s.c, s.h, s.w, net->opts.input_size, inner,
            explicit_pad_seen ? "; the arch's explicit depthwise paddings (dw_pad) need a larger "
                                "input: use --padding standard (k/2 everywhere) for small inputs"
                              : "");
      }
      x = y;
      if (b.stride == 2) log2_stride++;
      if (!is_cls_stage(r->stage) && log2_stride <= MAX_LOG2_STRIDE) {
        taps->at_stride[log2_stride] = x;
        taps->stage_last[i] = x;
      }
    }
  }
  return x;
}

/* Feature nodes for a dense head: the named stages of the arch file, or the
 * last block at each of the strides the head wants. */
static int pick_taps(const fb_net *net, const trunk_taps *t, const fb_arch_taps *named,
                     const int *want_strides, int n_want, int *feat, int *strides,
                     const char *task, fb_status *st) {
  const fb_arch *a = t->arch;
  if (named->n > 0) {
    for (int k = 0; k < named->n; k++) {
      int node = -1;
      for (int i = 0; i < a->n_rows; i++)
        if (strcmp(a->rows[i].stage, named->stage[k]) == 0 && t->stage_last[i] >= 0)
          node = t->stage_last[i];
      if (node < 0)
        return fb_fail(st, "%s: heads.%s: stage %s has no block output", a->path, task,
                       named->stage[k]);
      feat[k] = node;
      int h = net->g.nodes[node].args.out.h;
      strides[k] = h > 0 ? net->opts.input_size / h : 0;
    }
    return named->n;
  }
  for (int k = 0; k < n_want; k++) {
    int log2 = 0;
    while ((1 << log2) < want_strides[k]) log2++;
    if (log2 > MAX_LOG2_STRIDE || t->at_stride[log2] < 0)
      return fb_fail(st, "%s: the %s head needs a feature map at stride %d, which the arch "
                     "does not produce", a->path, task, want_strides[k]);
    feat[k] = t->at_stride[log2];
    strides[k] = want_strides[k];
  }
  return n_want;
}

/* Every task's head (task rows): the classifier after the last block, a
 * dense head on the stages its arch names or at the strides it wants. */
static int add_heads(fb_net *net, const trunk_taps *t, int last, fb_status *st) {
  for (int k = 0; fb_task_at(k); k++) {
    const fb_task_row *r = fb_task_at(k);
    if (!(net->tasks & r->id)) continue;
    int feat[FB_ARCH_MAX_TAPS] = {last}, strides[FB_ARCH_MAX_TAPS] = {0}, n = 1;
    if (r->n_strides > 0 &&
        (n = pick_taps(net, t, &t->arch->head_from[k], r->strides, r->n_strides, feat, strides,
                       r->name, st)) < 0)
      return -1;
    if (r->add_head(net, feat, strides, n, st)) return -1;
  }
  return 0;
}

fb_net *fb_net_build(const fb_arch *arch, const fb_build_opts *opts, uint64_t seed, fb_status *st) {
  if (!arch) {
    fb_fail(st, "fb_net_build: no arch");
    return NULL;
  }
  fb_build_opts o = opts ? *opts : fb_build_opts_default();
  if (o.input_size <= 0) o.input_size = arch->input_size;
  if (check_opts(&o, st) != 0) return NULL;
  fb_net *net = fb_xcalloc(1, sizeof *net);
  fb_graph_init(&net->g, fb_op_table());
  net->opts = o;
  snprintf(net->name, sizeof net->name, "%s", arch->name);
  if (arch->text) net->arch_text = fb_xstrdup(arch->text);
  fb_graph *g = &net->g;
  net->input_node = fb_graph_input(g, "input", o.in_channels, o.input_size, o.input_size);
  net->tasks = o.tasks ? o.tasks : FB_TASK_CLS;
  net->label_node = net->logits_node = net->loss_node = -1;
  net->seed = seed;
  if (arch->mp) {
    if (fb_mp_build(net, arch, st)) goto fail;
    return net;
  }
  trunk_taps taps;
  taps.arch = arch;
  for (int k = 0; k <= MAX_LOG2_STRIDE; k++) taps.at_stride[k] = -1;
  taps.stage_last = fb_xmalloc((size_t)(arch->n_rows + 1) * sizeof *taps.stage_last);
  for (int i = 0; i < arch->n_rows; i++) taps.stage_last[i] = -1;
  int x = add_rows(net, arch, &taps, st);
  int rc = x < 0 ? -1 : 0;
  if (rc == 0) rc = add_heads(net, &taps, x, st);
  free(taps.stage_last);
  if (rc) goto fail;
  /* parameters are allocated by the first fb_net_plan (so heads can still be
   * added); the build seed is kept for that */
  net->seed = seed;
  return net;
fail:
  fb_net_free(net);
  return NULL;
}

void fb_net_free(fb_net *net) {
  if (!net) return;
  fb_graph_free(&net->g);
  fb_mp_net_free(net->mp);
  free(net->arch_text);
  free(net->labels_json);
  free(net);
}

fb_count fb_net_count(const fb_net *net) {
  fb_count c = {0, 0, 0};
  if (!net) return c;
  for (int i = 0; i < net->g.n; i++) {
    const fb_node *nd = &net->g.nodes[i];
    if (!nd->op || !nd->active) continue; /* dead code of a multi-path net */
    const int batch = nd->args.out.n > 0 ? nd->args.out.n : 1;
    c.macs += fb_op_macs(nd->op, &nd->args) / batch;
    for (int k = 0; k < nd->args.n_par; k++) {
      const double numel = (double)fb_numel(nd->args.par[k]);
      if (nd->op->par_group[k] != FB_PG_BUFFER) c.params_all += numel;
      if (k == 0 && fb_op_weighted(nd->op)) c.params += numel;
    }
  }
  return c;
}

int fb_net_plan(fb_net *net, int batch, uint64_t seed, fb_status *st) {
  (void)seed;
  int first = net->g.params.data == NULL;
  net->g.no_input_grads = 1; /* nothing uses the gradient of the image */
  if (fb_graph_plan(&net->g, batch, net->seed, st)) return -1;
  if (first && (net->tasks & FB_TASK_DET)) fb_fcos_init_params(&net->g, &net->det);
  return 0;
}

int fb_net_plan_inference(fb_net *net, int batch, fb_status *st) {
  fb_graph *g = &net->g;
  g->inference_only = 1;
  for (int t = 0; fb_task_at(t); t++) {
    int outs[4];
    const int n = fb_task_at(t)->outputs(net, outs);
    for (int k = 0; k < n; k++)
      if (outs[k] >= 0 && outs[k] < g->n) g->nodes[outs[k]].keep_out = 1;
  }
  return fb_net_plan(net, batch, 0, st);
}

float fb_net_forward(fb_net *net, int training) {
  fb_graph_forward(&net->g, training);
  float total = 0;
  if (net->g.inference_only) return 0; /* the losses do not run */
  for (int i = 0; i < net->g.n; i++) {
    const fb_node *nd = &net->g.nodes[i];
    if (nd->op && nd->active && nd->op->is_loss) total += nd->loss_weight * fb_graph_loss(&net->g, i);
  }
  return total;
}

void fb_net_backward(fb_net *net) { fb_graph_backward(&net->g); }
