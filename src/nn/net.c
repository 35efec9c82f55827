/* The network builder: arch rows -> blocks -> classifier + loss, and the
 * counters of the published FLOPs/params convention (SPEC section 2). */
#include "nn/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/arch.h"
#include "nn/blocks.h"

fb_build_opts fb_build_opts_default(void) {
  fb_build_opts o;
  memset(&o, 0, sizeof o);
  o.input_size = 224;
  o.in_channels = 3;
  o.num_classes = 1000;
  o.width = 1.0;
  o.standard_padding = 0;
  return o;
}

/* SPEC: n itself when a multiple of 8; else round(n/8) half up (0 -> 1) times
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

/* Adds the rows of arch to net->g; returns the last node or -1. */
static int add_rows(fb_net *net, const fb_arch *arch, fb_status *st) {
  fb_graph *g = &net->g;
  int x = net->input_node, block_in_stage = 0, explicit_pad_seen = 0;
  for (int i = 0; i < arch->n_rows; i++) {
    const fb_arch_row *r = &arch->rows[i];
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
    }
  }
  return x;
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
  fb_graph_init(&net->g);
  net->opts = o;
  snprintf(net->name, sizeof net->name, "%s", arch->name);
  fb_graph *g = &net->g;
  net->input_node = fb_graph_input(g, "input", o.in_channels, o.input_size, o.input_size);
  net->label_node = fb_graph_input(g, "label", 1, 1, 1);
  int x = add_rows(net, arch, st);
  if (x < 0) goto fail;
  fb_op_attr a = fb_attr_default();
  const fb_shape s = g->nodes[x].args.out;
  if (s.h != 1 || s.w != 1) { /* an arch without ir_pool_hs: pool before the classifier */
    if ((x = fb_graph_add(g, "gap", "pool", &x, 1, &a, 0, st)) < 0) goto fail;
  }
  a.c_out = o.num_classes;
  a.has_bias = 1;
  if ((x = fb_graph_add(g, "linear", "classifier", &x, 1, &a, 0, st)) < 0) goto fail;
  net->logits_node = x;
  a = fb_attr_default();
  a.label_smoothing = 0.0f; /* the trainer sets it on net->loss_node */
  int in[2] = {net->logits_node, net->label_node};
  if ((x = fb_graph_add(g, "softmax_ce", "loss", in, 2, &a, 0, st)) < 0) goto fail;
  net->loss_node = x;
  g->nodes[x].loss_weight = 1.0f;
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
  free(net);
}

fb_count fb_net_count(const fb_net *net) {
  fb_count c = {0, 0, 0};
  if (!net) return c;
  for (int i = 0; i < net->g.n; i++) {
    const fb_node *nd = &net->g.nodes[i];
    if (!nd->op) continue;
    const int batch = nd->args.out.n > 0 ? nd->args.out.n : 1;
    c.macs += fb_op_macs(nd->op->name, &nd->args) / batch;
    for (int k = 0; k < nd->args.n_par; k++) {
      const double numel = (double)fb_numel(nd->args.par[k]);
      if (nd->op->par_group[k] != FB_PG_BUFFER) c.params_all += numel;
      if (k == 0 && (strcmp(nd->op->name, "conv2d") == 0 || strcmp(nd->op->name, "linear") == 0))
        c.params += numel;
    }
  }
  return c;
}

int fb_net_plan(fb_net *net, int batch, uint64_t seed, fb_status *st) {
  (void)seed;
  return fb_graph_plan(&net->g, batch, net->seed, st);
}

float fb_net_forward(fb_net *net, int training) {
  fb_graph_forward(&net->g, training);
  return net->g.nodes[net->loss_node].out[0];
}

void fb_net_backward(fb_net *net) { fb_graph_backward(&net->g); }
