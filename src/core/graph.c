#include "core/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/status.h"

void fb_graph_init(fb_graph *g, const fb_op *const *ops) {
  memset(g, 0, sizeof *g);
  fb_params_init(&g->params);
  g->ops = ops;
  g->backend = fb_backend_cpu();
}

int fb_graph_set_backend(fb_graph *g, const fb_backend *be) {
  if (g->batch > 0) return -1;
  g->backend = be ? be : fb_backend_cpu();
  return 0;
}

float *fb_graph_input_data(fb_graph *g, int node) {
  if (node < 0 || node >= g->n || g->nodes[node].op) return NULL;
  return g->nodes[node].out;
}

const float *fb_graph_output(const fb_graph *g, int node) {
  return node >= 0 && node < g->n ? g->nodes[node].out : NULL;
}

float fb_graph_loss(const fb_graph *g, int node) {
  const float *v = fb_graph_output(g, node);
  return v ? v[0] : 0.0f;
}

static void free_node_buffers(fb_graph *g, fb_node *nd) {
  if (!g->act_arena) fb_backend_release(g->backend, nd->out);
  fb_backend_release(g->backend, nd->ws);
  nd->out = nd->dout = nd->ws = NULL;
  if (nd->op && nd->op->ctx_free) nd->op->ctx_free(&nd->ctx);
  nd->ctx.impl = NULL;
}

void fb_graph_free(fb_graph *g) {
  for (int i = 0; i < g->n; i++) free_node_buffers(g, &g->nodes[i]);
  fb_backend_release(g->backend, g->act_arena);
  free(g->nodes);
  free(g->scratch);
  fb_backend_release(g->backend, g->grad_arena);
  free(g->grad_offset);
  free(g->grad_writer);
  free(g->grad_zero_order);
  free(g->prof_fwd);
  free(g->prof_bwd);
  fb_params_free(&g->params);
  memset(g, 0, sizeof *g);
}

static fb_node *new_node(fb_graph *g, const char *name) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 128;
    g->nodes = fb_xrealloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
  }
  fb_node *nd = &g->nodes[g->n];
  memset(nd, 0, sizeof *nd);
  snprintf(nd->name, sizeof nd->name, "%s", name);
  nd->bit = -1;
  nd->alias = -1;
  nd->active = 1;
  for (int k = 0; k < FB_MAX_IN; k++) nd->in[k] = -1;
  for (int k = 0; k < FB_MAX_PAR; k++) nd->par[k] = -1;
  return nd;
}

int fb_graph_input(fb_graph *g, const char *name, int c, int h, int w) {
  fb_node *nd = new_node(g, name);
  nd->args.out = fb_shape4(g->batch > 0 ? g->batch : 1, c, h, w);
  return g->n++;
}

static int fan_out_of(const fb_shape s) { return s.n * s.h * s.w; }

static void register_params(fb_graph *g, fb_node *nd, int flags) {
  const fb_op *op = nd->op;
  for (int k = 0; k < nd->args.n_par; k++) {
    char pname[160];
    snprintf(pname, sizeof pname, "%s.%s", nd->name, op->par_name[k] ? op->par_name[k] : "p");
    fb_param_init init = op->par_init[k];
    if ((flags & FB_NODE_ZERO_GAMMA) && op->kind == FB_OPK_NORM && k == 0)
      init = FB_INIT_ZERO;
    nd->par[k] = fb_params_add(&g->params, pname, nd->args.par[k], op->par_group[k], init,
                               fan_out_of(nd->args.par[k]));
  }
}

/* Adds the node; share >= 0 reuses that node's parameter slots instead of
 * registering new ones. */
static int add_node(fb_graph *g, const char *op_name, const char *name, const int *in, int n_in,
                    const fb_op_attr *attr, int flags, int share, fb_status *st) {
  const fb_op *op = fb_op_lookup(g->ops, op_name);
  if (!op) return fb_fail(st, "%s: unknown op '%s'", name, op_name);
  if (n_in < 1 || n_in > FB_MAX_IN) return fb_fail(st, "%s: %d inputs", name, n_in);
  if (g->params.data) return fb_fail(st, "%s: graph already planned", name);
  for (int k = 0; k < n_in; k++)
    if (in[k] < 0 || in[k] >= g->n) return fb_fail(st, "%s: input %d is not a node", name, k);
  fb_node *nd = new_node(g, name);
  nd->op = op;
  nd->args.attr = *attr;
  nd->args.n_in = n_in;
  for (int k = 0; k < n_in; k++) {
    nd->in[k] = in[k];
    nd->args.in[k] = g->nodes[in[k]].args.out;
  }
  char msg[256] = "";
  if (op->infer(&nd->args, msg) != 0) return fb_fail(st, "%s (%s): %s", name, op_name, msg);
  if (share < 0) {
    register_params(g, nd, flags);
    return g->n++;
  }
  const fb_node *src = &g->nodes[share];
  if (src->op != op || src->args.n_par != nd->args.n_par)
    return fb_fail(st, "%s: cannot share parameters with %s (different op)", name, src->name);
  for (int k = 0; k < nd->args.n_par; k++) {
    fb_shape a = src->args.par[k], b = nd->args.par[k];
    if (a.n != b.n || a.c != b.c || a.h != b.h || a.w != b.w)
      return fb_fail(st, "%s: cannot share parameters with %s (shapes differ)", name, src->name);
    nd->par[k] = src->par[k];
  }
  return g->n++;
}

int fb_graph_add(fb_graph *g, const char *op_name, const char *name, const int *in, int n_in,
                 const fb_op_attr *attr, int flags, fb_status *st) {
  return add_node(g, op_name, name, in, n_in, attr, flags, -1, st);
}

int fb_graph_add_shared(fb_graph *g, const char *op_name, const char *name, const int *in,
                        int n_in, const fb_op_attr *attr, int share, fb_status *st) {
  if (share < 0 || share >= g->n || !g->nodes[share].op)
    return fb_fail(st, "%s: node %d to share parameters with is not an op node", name, share);
  return add_node(g, op_name, name, in, n_in, attr, 0, share, st);
}

static size_t ws_floats(const fb_graph *g, const fb_node *nd) {
  const size_t n = nd->op->ws_size ? nd->op->ws_size(&nd->args) : 0;
  return (n * g->backend->ws_elem_bytes + sizeof(float) - 1) / sizeof(float);
}

static int plan_node(fb_graph *g, fb_node *nd, int batch, fb_status *st) {
  free_node_buffers(g, nd);
  if (!nd->op) {
    nd->args.out.n = batch;
  } else {
    for (int k = 0; k < nd->args.n_in; k++) nd->args.in[k] = g->nodes[nd->in[k]].args.out;
    char msg[256] = "";
    if (nd->op->infer(&nd->args, msg) != 0)
      return fb_fail(st, "%s (%s): %s", nd->name, nd->op->name, msg);
    size_t ws = ws_floats(g, nd);
    if (ws) nd->ws = fb_backend_alloc(g->backend, ws);
  }
  nd->out = g->inference_only ? NULL : fb_backend_alloc(g->backend, fb_numel(nd->args.out));
  nd->dout = NULL; /* in the gradient arena (fb_grad_plan) */
  return 0;
}

int fb_graph_plan(fb_graph *g, int batch, uint64_t seed, fb_status *st) {
  if (batch < 1) return fb_fail(st, "batch size must be >= 1 (got %d)", batch);
  if (!g->params.data) {
    fb_params_alloc_values(&g->params, seed, !g->zero_init);
    if (g->prune_dead) g->params.steps = fb_xcalloc((size_t)g->params.n + 1, sizeof(float));
  }
  if (!g->inference_only) fb_params_alloc_grads(&g->params);
  for (int i = 0; i < g->n; i++)
    if (plan_node(g, &g->nodes[i], batch, st) != 0) return -1;
  if (g->inference_only) {
    fb_backend_release(g->backend, g->act_arena);
    g->act_arena = fb_act_plan(g);
  }
  fb_grad_plan(g);
  g->batch = batch;
  return 0;
}

void fb_graph_mask_activity(const fb_graph *g, const uint8_t *mask, uint8_t *act) {
  for (int i = 0; i < g->n; i++) {
    const fb_node *nd = &g->nodes[i];
    act[i] = (nd->bit < 0 || !mask) ? 1 : (mask[nd->bit] != 0);
  }
}

static int source_under(const fb_graph *g, const uint8_t *act, int id) {
  while (id >= 0 && !act[id]) id = g->nodes[id].alias;
  return id;
}

/* Marks the sources of every live node live, in reverse topological order. */
static void propagate_liveness(const fb_graph *g, const uint8_t *act, uint8_t *live) {
  for (int i = g->n - 1; i >= 0; i--) {
    const fb_node *nd = &g->nodes[i];
    if (!live[i] || !nd->op) continue;
    for (int k = 0; k < nd->args.n_in; k++) {
      int s = source_under(g, act, nd->in[k]);
      if (s >= 0) live[s] = 1;
    }
  }
}

void fb_graph_liveness(const fb_graph *g, const uint8_t *act, const int *roots, int n_roots,
                       uint8_t *live) {
  memset(live, 0, (size_t)g->n);
  for (int k = 0; k < n_roots; k++)
    if (roots[k] >= 0 && roots[k] < g->n && act[roots[k]]) live[roots[k]] = 1;
  propagate_liveness(g, act, live);
}

/* params.used: the slots an active node uses (supernets). */
static void mark_used_slots(fb_graph *g) {
  fb_params *p = &g->params;
  if (!p->used) p->used = fb_xmalloc((size_t)p->n + 1);
  memset(p->used, 0, (size_t)p->n);
  for (int i = 0; i < g->n; i++) {
    const fb_node *nd = &g->nodes[i];
    if (!nd->op || !nd->active) continue;
    for (int k = 0; k < nd->args.n_par; k++)
      if (nd->par[k] >= 0) p->used[nd->par[k]] = 1;
  }
}

void fb_graph_set_mask(fb_graph *g, const uint8_t *mask) {
  for (int i = 0; i < g->n; i++) {
    fb_node *nd = &g->nodes[i];
    nd->active = (nd->bit < 0 || !mask) ? 1 : (mask[nd->bit] != 0);
  }
  if (!g->prune_dead || g->n == 0) return;
  if (g->scratch_n != g->n) { /* once after building; no allocation per step */
    g->scratch = fb_xrealloc(g->scratch, 2 * (size_t)g->n);
    g->scratch_n = g->n;
  }
  uint8_t *act = g->scratch, *live = g->scratch + g->n;
  for (int i = 0; i < g->n; i++) {
    const fb_node *nd = &g->nodes[i];
    act[i] = (uint8_t)nd->active;
    live[i] = (uint8_t)(nd->active && nd->op && (nd->op->is_loss || nd->root));
  }
  for (int i = 0; i < g->n; i++) /* a skipped root block keeps its input alive */
    if (g->nodes[i].root && !act[i]) {
      int s = source_under(g, act, i);
      if (s >= 0) live[s] = 1;
    }
  propagate_liveness(g, act, live);
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op && !live[i]) g->nodes[i].active = 0;
  mark_used_slots(g);
}

int fb_graph_source(const fb_graph *g, int id) {
  while (id >= 0 && !g->nodes[id].active) id = g->nodes[id].alias;
  return id;
}

/* Collects the present inputs of nd; returns their count (an add may drop
 * absent terms, every other op needs all inputs present). */
static int gather_inputs(const fb_graph *g, const fb_node *nd, int *src) {
  int m = 0;
  for (int k = 0; k < nd->args.n_in; k++) {
    int s = fb_graph_source(g, nd->in[k]);
    if (s >= 0) src[m++] = s;
  }
  return m;
}

static void node_params(const fb_graph *g, const fb_node *nd, float **par, float **dpar) {
  for (int k = 0; k < FB_MAX_PAR; k++) {
    par[k] = nd->par[k] >= 0 ? fb_param_data(&g->params, nd->par[k]) : NULL;
    dpar[k] = nd->par[k] >= 0 ? fb_param_grad(&g->params, nd->par[k]) : NULL;
  }
}

void fb_graph_profile(fb_graph *g, int on) {
  free(g->prof_fwd);
  free(g->prof_bwd);
  g->prof_fwd = on ? fb_xcalloc((size_t)g->n + 1, sizeof(double)) : NULL;
  g->prof_bwd = on ? fb_xcalloc((size_t)g->n + 1, sizeof(double)) : NULL;
}

static void forward_node(fb_graph *g, fb_node *nd, int training);

void fb_graph_forward(fb_graph *g, int training) {
  g->training = training;
  for (int i = 0; i < g->n; i++) {
    fb_node *nd = &g->nodes[i];
    if (!nd->op || !nd->active) continue;
    if (g->inference_only && nd->op->is_loss) continue; /* no targets at inference */
    if (!g->prof_fwd) {
      forward_node(g, nd, training);
      continue;
    }
    const double t = fb_now_sec();
    forward_node(g, nd, training);
    g->prof_fwd[i] += fb_now_sec() - t;
  }
}

static void forward_node(fb_graph *g, fb_node *nd, int training) {
  int src[FB_MAX_IN];
  int m = gather_inputs(g, nd, src);
  const float *in[FB_MAX_IN];
  for (int k = 0; k < m; k++) in[k] = g->nodes[src[k]].out;
  float *par[FB_MAX_PAR], *dpar[FB_MAX_PAR];
  node_params(g, nd, par, dpar);
  nd->args.attr.training = training;
  fb_op_args a = nd->args;
  a.n_in = m;
  if (m == 1 && nd->args.n_in > 1) { /* an add with one term left is a copy */
    memcpy(nd->out, in[0], fb_numel(a.out) * sizeof(float));
    return;
  }
  g->backend->forward(nd->op, &nd->ctx, &a, in, par, nd->out, nd->ws);
}

static void backward_node(fb_graph *g, fb_node *nd) {
  int src[FB_MAX_IN];
  int m = gather_inputs(g, nd, src);
  const float *in[FB_MAX_IN];
  float *din[FB_MAX_IN];
  for (int k = 0; k < m; k++) {
    in[k] = g->nodes[src[k]].out;
    const int wanted = k < nd->op->n_diff_in && (g->nodes[src[k]].op || !g->no_input_grads);
    din[k] = wanted ? g->nodes[src[k]].dout : NULL;
  }
  float *par[FB_MAX_PAR], *dpar[FB_MAX_PAR];
  node_params(g, nd, par, dpar);
  fb_op_args a = nd->args;
  a.n_in = m;
  if (m == 1 && nd->args.n_in > 1) {
    size_t n = fb_numel(a.out);
    if (din[0])
      for (size_t j = 0; j < n; j++) din[0][j] += nd->dout[j];
    return;
  }
  g->backend->backward(nd->op, &nd->ctx, &a, in, (const float *const *)par, nd->out, nd->dout,
                       din, dpar, nd->ws);
}

/* Zeroes (or seeds) the gradients whose live interval starts before the
 * backward of node j (j = g->n: the start of the pass); *p walks
 * grad_zero_order. */
static void start_gradients(fb_graph *g, int j, int *p, int seed_node, const float *seed) {
  const int *order = g->grad_zero_order;
  while (*p < g->n && g->grad_writer[order[*p]] == j) {
    fb_node *nd = &g->nodes[order[(*p)++]];
    if (!nd->active) continue;
    const size_t n = fb_numel(nd->args.out);
    if (seed && nd - g->nodes == seed_node) memcpy(nd->dout, seed, n * sizeof(float));
    else memset(nd->dout, 0, n * sizeof(float));
    if (!seed && nd->op && nd->op->is_loss) nd->dout[0] = nd->loss_weight;
  }
}

static void reverse_pass(fb_graph *g, int seed_node, const float *seed) {
  fb_grad_arena_ensure(g);
  int p = 0;
  start_gradients(g, g->n, &p, seed_node, seed);
  for (int i = g->n - 1; i >= 0; i--) {
    fb_node *nd = &g->nodes[i];
    start_gradients(g, i, &p, seed_node, seed);
    if (!nd->op || !nd->active) continue;
    if (!g->prof_bwd) {
      backward_node(g, nd);
      continue;
    }
    const double t = fb_now_sec();
    backward_node(g, nd);
    g->prof_bwd[i] += fb_now_sec() - t;
  }
}

void fb_graph_backward(fb_graph *g) { reverse_pass(g, -1, NULL); }

void fb_graph_backward_from(fb_graph *g, int node, const float *dout) {
  reverse_pass(g, node, dout);
}
