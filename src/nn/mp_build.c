/* Multi-path arch -> graph (src/nn/multipath.h): the stem chain, per stage
 * the block that opens a new path, the chains of every path, the fusion
 * terms and sums; then the task heads on the paths named in "heads". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/blocks.h"
#include "nn/flops.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "ops/op.h"
#include "tasks/task.h"

typedef struct mp_builder {
  fb_net *net;
  fb_mp_net *m;
  int cap_elems;
} mp_builder;

static fb_mp_elem *push_elem(mp_builder *b, fb_elem_kind kind, int stage, int path,
                             const char *name) {
  fb_mp_net *m = b->m;
  if (m->n_elems == b->cap_elems) {
    b->cap_elems = b->cap_elems ? 2 * b->cap_elems : 64;
    m->elems = fb_xrealloc(m->elems, (size_t)b->cap_elems * sizeof *m->elems);
  }
  fb_mp_elem *e = &m->elems[m->n_elems++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->stage = stage;
  e->path = path;
  e->from = -1;
  e->row = -1;
  e->bit = -1;
  snprintf(e->name, sizeof e->name, "%s", name);
  return e;
}

/* Gives the nodes [first, last] of element e a new searchable bit; a skipped
 * element's output is node `alias` (the block input) or absent (-1). */
static void make_searchable(mp_builder *b, fb_mp_elem *e, int alias) {
  fb_mp_net *m = b->m;
  e->bit = m->n_bits++;
  m->bit_elem = fb_xrealloc(m->bit_elem, (size_t)m->n_bits * sizeof *m->bit_elem);
  m->bit_elem[e->bit] = (int)(e - m->elems);
  for (int i = e->first; i <= e->last; i++) b->net->g.nodes[i].bit = e->bit;
  b->net->g.nodes[e->last].alias = alias;
}

/* One block copy of a row on node x; returns its output node or -1. */
static int add_block(mp_builder *b, const fb_arch_row *r, int row_index, int copy, int x,
                     fb_elem_kind kind, int stage, int path, const char *name, fb_status *st) {
  fb_net *net = b->net;
  fb_block_spec spec;
  memset(&spec, 0, sizeof spec);
  snprintf(spec.op, sizeof spec.op, "%s", r->op);
  spec.c_out = fb_div8(r->c_out * net->opts.width);
  spec.stride = copy == 0 ? r->stride : 1;
  spec.expansion = r->e;
  spec.dw_pad = net->opts.standard_padding ? -1 : r->dw_pad;
  const int first = net->g.n;
  int y = fb_block_add(&net->g, &spec, x, name, st);
  if (y < 0) return -1;
  fb_mp_elem *e = push_elem(b, kind, stage, path, name);
  e->row = row_index;
  e->copy = copy;
  e->first = first;
  e->last = y;
  const fb_shape si = net->g.nodes[x].args.out, so = net->g.nodes[y].args.out;
  const int same = si.c == so.c && si.h == so.h && si.w == so.w;
  if (b->m->arch.search && kind == FB_ELEM_BLOCK && same) make_searchable(b, e, x);
  return y;
}

/* The rows [first, first + n) as one chain on x (names prefix.0, .1, ...). */
static int add_chain(mp_builder *b, int first, int n, int x, int stage, int path,
                     const char *prefix, fb_status *st) {
  const fb_mp *mp = &b->m->arch;
  int k = 0;
  for (int i = first; i < first + n; i++) {
    for (int c = 0; c < mp->rows[i].repeat; c++, k++) {
      char name[64];
      snprintf(name, sizeof name, "%s.%d", prefix, k);
      if ((x = add_block(b, &mp->rows[i], i, c, x, FB_ELEM_BLOCK, stage, path, name, st)) < 0)
        return -1;
    }
  }
  return x;
}

static int conv_bn(fb_graph *g, const char *name, int x, int k, int stride, int groups, int c_out,
                   fb_status *st) {
  fb_op_attr a = fb_attr_default();
  a.kh = a.kw = k;
  a.sh = a.sw = stride;
  a.pad_t = a.pad_l = a.pad_b = a.pad_r = k / 2;
  a.groups = groups;
  a.c_out = c_out;
  char n[96];
  snprintf(n, sizeof n, "%s.conv", name);
  if ((x = fb_graph_add(g, "conv2d", n, &x, 1, &a, 0, st)) < 0) return -1;
  fb_op_attr bn = fb_attr_default();
  snprintf(n, sizeof n, "%s.bn", name);
  return fb_graph_add(g, "batchnorm", n, &x, 1, &bn, 0, st);
}

/* T(from -> to) on node x (docs/method.md section 3): up = 1x1 conv + BN + nearest
 * upsample; down = per factor of 2 a dw 3x3 stride 2 + BN + 1x1 conv + BN
 * (intermediate steps keep the source width). */
static int add_cross_term(mp_builder *b, int x, int from, int to, int c_to, const char *name,
                          fb_status *st) {
  fb_graph *g = &b->net->g;
  char n[96];
  if (from > to) {
    snprintf(n, sizeof n, "%s.pw", name);
    if ((x = conv_bn(g, n, x, 1, 1, 1, c_to, st)) < 0) return -1;
    fb_op_attr a = fb_attr_default();
    a.scale = 1 << (from - to);
    snprintf(n, sizeof n, "%s.up", name);
    return fb_graph_add(g, "upsample_nearest", n, &x, 1, &a, 0, st);
  }
  const int c_from = g->nodes[x].args.out.c;
  for (int s = 0; s < to - from; s++) {
    snprintf(n, sizeof n, "%s.down%d.dw", name, s);
    if ((x = conv_bn(g, n, x, 3, 2, c_from, c_from, st)) < 0) return -1;
    snprintf(n, sizeof n, "%s.down%d.pw", name, s);
    if ((x = conv_bn(g, n, x, 1, 1, 1, s + 1 == to - from ? c_to : c_from, st)) < 0) return -1;
  }
  return x;
}

static int cross_listed(const fb_mp_stage *s, int from, int to) {
  if (s->cross_all) return from != to;
  for (int k = 0; k < s->n_cross; k++)
    if (s->cross_from[k] == from && s->cross_to[k] == to) return 1;
  return 0;
}

/* The fusion after stage si: cur[j] += sum of T(k -> j)(cur[k]) over the
 * listed terms, all reading the values before the fusion. */
static int add_fusion(mp_builder *b, int si, int *cur, fb_status *st) {
  fb_graph *g = &b->net->g;
  const fb_mp_stage *s = &b->m->arch.stages[si];
  int before[FB_MP_MAX_PATHS];
  memcpy(before, cur, sizeof before);
  for (int to = 0; to < s->n_paths; to++) {
    int terms[FB_MP_MAX_PATHS + 1], n_terms = 0;
    terms[n_terms++] = before[to];
    const fb_shape target = g->nodes[before[to]].args.out;
    for (int from = 0; from < s->n_paths; from++) {
      if (!cross_listed(s, from, to)) continue;
      char name[48];
      snprintf(name, sizeof name, "s%d.f%dto%d", si, from, to);
      const int first = g->n;
      int y = add_cross_term(b, before[from], from, to, target.c, name, st);
      if (y < 0) return -1;
      const fb_shape o = g->nodes[y].args.out;
      if (o.h != target.h || o.w != target.w)
        return fb_fail(st, "%s: path %d is %dx%d but the term from path %d gives %dx%d (the "
                       "input size must be a multiple of 32)", name, to, target.h, target.w,
                       from, o.h, o.w);
      fb_mp_elem *e = push_elem(b, FB_ELEM_CROSS, si, to, name);
      e->from = from;
      e->first = first;
      e->last = y;
      if (b->m->arch.search) make_searchable(b, e, -1);
      terms[n_terms++] = y;
    }
    if (n_terms > 1) {
      char name[48];
      snprintf(name, sizeof name, "s%d.sum%d", si, to);
      fb_op_attr a = fb_attr_default();
      if ((cur[to] = fb_graph_add(g, "add", name, terms, n_terms, &a, 0, st)) < 0) return -1;
    }
  }
  return 0;
}

static int add_stage(mp_builder *b, int si, int stem_out, int *cur, fb_status *st) {
  const fb_mp_stage *s = &b->m->arch.stages[si];
  if (s->has_open) {
    const int p = s->n_paths - 1;
    const int src = p == 0 ? stem_out : cur[p - 1];
    char name[48];
    snprintf(name, sizeof name, "s%d.open", si);
    if ((cur[p] = add_block(b, &s->open, -1, 0, src, FB_ELEM_OPEN, si, p, name, st)) < 0)
      return -1;
  }
  for (int p = 0; p < s->n_paths; p++) {
    char prefix[48];
    snprintf(prefix, sizeof prefix, "s%d.p%d", si, p);
    cur[p] = add_chain(b, s->first_row[p], s->n_rows[p], cur[p], si, p, prefix, st);
    if (cur[p] < 0) return -1;
  }
  return add_fusion(b, si, cur, st);
}

/* The optional "head" row (ir_pool_hs) on the classifier's path. */
static int add_cls_block(mp_builder *b, int x, fb_status *st) {
  const fb_net *net = b->net;
  const fb_mp *mp = &b->m->arch;
  fb_block_spec spec;
  memset(&spec, 0, sizeof spec);
  snprintf(spec.op, sizeof spec.op, "%s", mp->head.op);
  spec.c_out = fb_div8(mp->head.c_out * net->opts.width);
  spec.stride = 1;
  spec.expansion = mp->head.e;
  spec.dw_pad = -1;
  return fb_block_add(&b->net->g, &spec, x, "head.0", st);
}

/* Every task's head (task rows) on the outputs of its paths. */
static int add_heads(mp_builder *b, fb_status *st) {
  fb_net *net = b->net;
  const fb_mp *mp = &b->m->arch;
  const int *out = b->m->path_out;
  const int S = net->opts.input_size;
  for (int t = 0; fb_task_at(t); t++) {
    const fb_task_row *r = fb_task_at(t);
    if (!(net->tasks & r->id)) continue;
    int feat[FB_MP_MAX_PATHS], strides[FB_MP_MAX_PATHS];
    const int n = mp->n_head_paths[t];
    for (int k = 0; k < n; k++) {
      feat[k] = out[mp->head_paths[t][k]];
      strides[k] = S / net->g.nodes[feat[k]].args.out.h;
    }
    if (r->id == FB_TASK_CLS && mp->has_head && (feat[0] = add_cls_block(b, feat[0], st)) < 0)
      return -1;
    if (r->add_head(net, feat, strides, n, st)) return -1;
  }
  return 0;
}

static void copy_desc(fb_mp *dst, const fb_mp *src) {
  *dst = *src;
  dst->rows = fb_xmalloc((size_t)(src->n_rows + 1) * sizeof *dst->rows);
  memcpy(dst->rows, src->rows, (size_t)src->n_rows * sizeof *dst->rows);
}

/* Per-node MACs and weights at batch 1 (the shapes are fixed once built). */
static void record_costs(fb_net *net) {
  fb_mp_net *m = net->mp;
  const int n = net->g.n;
  m->node_macs = fb_xmalloc((size_t)(n + 1) * sizeof *m->node_macs);
  m->node_weights = fb_xmalloc((size_t)(n + 1) * sizeof *m->node_weights);
  m->scratch = fb_xmalloc(2 * (size_t)n + 1);
  for (int i = 0; i < n; i++) {
    const fb_layer_count lc = fb_layer_count_of(net, i);
    m->node_macs[i] = lc.macs;
    m->node_weights[i] = lc.weights;
  }
}

int fb_mp_build(fb_net *net, const fb_arch *arch, fb_status *st) {
  const int S = net->opts.input_size;
  if (S % 32 != 0)
    return fb_fail(st, "%s: a multi-path network needs an input size that is a multiple of 32 "
                   "(got %d)", arch->path, S);
  fb_mp_net *m = fb_xcalloc(1, sizeof *m);
  net->mp = m;
  copy_desc(&m->arch, arch->mp);
  m->input_size = S;
  mp_builder b = {net, m, 0};
  int x = add_chain(&b, 0, arch->mp->n_stem, net->input_node, -1, 0, "stem", st);
  if (x < 0) goto fail;
  int cur[FB_MP_MAX_PATHS];
  for (int si = 0; si < arch->mp->n_stages; si++)
    if (add_stage(&b, si, x, cur, st)) goto fail;
  m->n_paths = arch->mp->stages[arch->mp->n_stages - 1].n_paths;
  memcpy(m->path_out, cur, sizeof cur);
  if (add_heads(&b, st)) goto fail;
  net->g.prune_dead = 1;
  fb_graph_set_mask(&net->g, NULL);
  record_costs(net);
  return 0;
fail:;
  char inner[sizeof st->msg];
  snprintf(inner, sizeof inner, "%s", st ? st->msg : "");
  return fb_fail(st, "%s: %s", arch->path, inner);
}

void fb_mp_free_desc(fb_mp *d) {
  if (!d) return;
  free(d->rows);
  d->rows = NULL;
}

void fb_mp_net_free(fb_mp_net *m) {
  if (!m) return;
  fb_mp_free_desc(&m->arch);
  free(m->elems);
  free(m->bit_elem);
  free(m->node_macs);
  free(m->node_weights);
  free(m->scratch);
  free(m);
}

void fb_mp_keep_all_paths(fb_net *net) {
  if (!net->mp) return;
  for (int p = 0; p < net->mp->n_paths; p++) net->g.nodes[net->mp->path_out[p]].root = 1;
}
