/* ONNX export (src/io/onnx.h): one walk over the network's live nodes, one
 * emitter per op family, the protobuf-c message built in memory that the
 * exporter owns (every allocation is recorded and freed at the end). */
#include "io/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/graph.h"
#include "core/status.h"
#include "data/augment.h"
#include "nn/net.h"
#include "onnx.pb-c.h"

enum { OX_MAX_OUTPUTS = 3 * FB_FCOS_MAX_LEVELS + 2, OX_MAX_ATTR = 8 };

typedef struct ox_output {
  char name[48];
  int node;
} ox_output;

/* Growable array of pointers. */
typedef struct ox_list {
  void **v;
  size_t n, cap;
} ox_list;

typedef struct ox {
  const fb_net *net;
  const fb_graph *g;
  ox_list mem;                  /* every allocation, freed by ox_free */
  ox_list nodes, inits;         /* Onnx__NodeProto*, Onnx__TensorProto* */
  char **tensor;                /* per fb node: the name of its value in the ONNX graph */
  int *rank;                    /* per fb node: 4 (NCHW) or 2 (after a Gemm) */
  int *uses;                    /* per fb node: live readers (+1 for a graph output) */
  int *folded_into;             /* per conv node: the batch norm folded into it, or -1 */
  uint8_t *live, *absorbed;     /* absorbed: a conv emitted by its batch norm */
  uint8_t *slot_done;           /* parameter slots already written as initializers */
  ox_output out[OX_MAX_OUTPUTS];
  int n_out, n_folded;
  fb_status *st;
} ox;

/* ---- memory and protobuf helpers ------------------------------------------------- */

static void list_push(ox_list *l, void *p) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->v = fb_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = p;
}

static void *ox_alloc(ox *o, size_t bytes) {
  void *p = fb_xcalloc(1, bytes ? bytes : 1);
  list_push(&o->mem, p);
  return p;
}

static char *ox_strdup(ox *o, const char *s) {
  char *d = ox_alloc(o, strlen(s) + 1);
  memcpy(d, s, strlen(s));
  return d;
}

/* A fresh tensor name derived from a node name ("<base>:<suffix>"). */
static char *ox_name(ox *o, const char *base, const char *suffix) {
  char buf[160];
  snprintf(buf, sizeof buf, "%s:%s", base, suffix);
  return ox_strdup(o, buf);
}

static Onnx__NodeProto *ox_node(ox *o, const char *op_type, const char *name, char **in, int n_in,
                                const char *out) {
  Onnx__NodeProto *nd = ox_alloc(o, sizeof *nd);
  onnx__node_proto__init(nd);
  nd->op_type = ox_strdup(o, op_type);
  nd->name = ox_strdup(o, name);
  nd->n_input = (size_t)n_in;
  nd->input = ox_alloc(o, (size_t)n_in * sizeof(char *));
  for (int k = 0; k < n_in; k++) nd->input[k] = in[k];
  nd->n_output = 1;
  nd->output = ox_alloc(o, sizeof(char *));
  nd->output[0] = ox_strdup(o, out);
  nd->attribute = ox_alloc(o, OX_MAX_ATTR * sizeof(Onnx__AttributeProto *));
  list_push(&o->nodes, nd);
  return nd;
}

static Onnx__AttributeProto *ox_attr(ox *o, Onnx__NodeProto *nd, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = ox_alloc(o, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = ox_strdup(o, name);
  a->has_type = 1;
  a->type = type;
  if (nd->n_attribute < OX_MAX_ATTR) nd->attribute[nd->n_attribute++] = a;
  return a;
}

static void attr_int(ox *o, Onnx__NodeProto *nd, const char *name, int64_t v) {
  Onnx__AttributeProto *a = ox_attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

static void attr_float(ox *o, Onnx__NodeProto *nd, const char *name, float v) {
  Onnx__AttributeProto *a = ox_attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

static void attr_ints(ox *o, Onnx__NodeProto *nd, const char *name, const int64_t *v, int n) {
  Onnx__AttributeProto *a = ox_attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)n;
  a->ints = ox_alloc(o, (size_t)n * sizeof(int64_t));
  memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
}

static void attr_string(ox *o, Onnx__NodeProto *nd, const char *name, const char *s) {
  Onnx__AttributeProto *a = ox_attr(o, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.data = (uint8_t *)ox_strdup(o, s);
  a->s.len = strlen(s);
}

/* An initializer holding `bytes` of raw little-endian data. */
static char *ox_init(ox *o, const char *name, int32_t type, const int64_t *dims, int n_dims,
                     const void *data, size_t bytes) {
  Onnx__TensorProto *t = ox_alloc(o, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = ox_strdup(o, name);
  t->has_data_type = 1;
  t->data_type = type;
  t->n_dims = (size_t)n_dims;
  t->dims = ox_alloc(o, (size_t)n_dims * sizeof(int64_t));
  memcpy(t->dims, dims, (size_t)n_dims * sizeof(int64_t));
  t->has_raw_data = 1;
  t->raw_data.len = bytes;
  t->raw_data.data = ox_alloc(o, bytes);
  memcpy(t->raw_data.data, data, bytes);
  list_push(&o->inits, t);
  return t->name;
}

static char *init_f32(ox *o, const char *name, const int64_t *dims, int n_dims, const float *v) {
  size_t n = 1;
  for (int d = 0; d < n_dims; d++) n *= (size_t)dims[d];
  return ox_init(o, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, n_dims, v, n * sizeof(float));
}

/* The initializer of parameter slot `slot` as stored (written once, shared by
 * every node that uses the slot), reshaped to dims. */
static char *init_param(ox *o, int slot, const int64_t *dims, int n_dims) {
  const fb_param *p = &o->g->params.p[slot];
  if (!o->slot_done[slot]) {
    init_f32(o, p->name, dims, n_dims, fb_param_data(&o->g->params, slot));
    o->slot_done[slot] = 1;
  }
  return ox_strdup(o, p->name);
}

/* ---- emitters: one per op family ----------------------------------------------- */

typedef int (*ox_emit_fn)(ox *o, int id, const int *src, int m);

static const float *param(const ox *o, int id, int k) {
  const int slot = o->g->nodes[id].par[k];
  return slot >= 0 ? fb_param_data(&o->g->params, slot) : NULL;
}

static char *in_name(ox *o, int src) { return o->tensor[src]; }

static int need_rank4(ox *o, int id, const int *src, int m) {
  for (int k = 0; k < m; k++)
    if (o->rank[src[k]] != 4)
      return fb_fail(o->st, "onnx export: node %s (%s) reads a flattened value (%s); ONNX "
                     "export supports this op on NCHW maps only", o->g->nodes[id].name,
                     o->g->nodes[id].op->name, o->g->nodes[src[k]].name);
  return 0;
}

/* Conv, with the batch norm bn (>= 0) folded in: w' = w * g / sqrt(v + eps),
 * b' = (b - mean) * g / sqrt(v + eps) + beta, in double. */
static int emit_conv(ox *o, int conv, int bn, const char *out) {
  const fb_node *c = &o->g->nodes[conv];
  const fb_op_attr *t = &c->args.attr;
  const fb_shape ws = c->args.par[0];
  const int64_t wdims[4] = {ws.n, ws.c, ws.h, ws.w}, bdims[1] = {ws.n};
  char *in[3] = {in_name(o, fb_graph_source(o->g, c->in[0])), NULL, NULL};
  int n_in = 2;
  if (bn < 0) {
    in[1] = init_param(o, c->par[0], wdims, 4);
    if (t->has_bias) in[2] = init_param(o, c->par[1], bdims, 1), n_in = 3;
  } else {
    const size_t per = (size_t)ws.c * ws.h * ws.w;
    float *w = fb_xmalloc((size_t)ws.n * per * sizeof(float)), *b = fb_xmalloc((size_t)ws.n * sizeof(float));
    const float *w0 = param(o, conv, 0), *b0 = t->has_bias ? param(o, conv, 1) : NULL;
    const float *gam = param(o, bn, 0), *bet = param(o, bn, 1), *mu = param(o, bn, 2),
                *var = param(o, bn, 3);
    const double eps = o->g->nodes[bn].args.attr.eps;
    for (int co = 0; co < ws.n; co++) {
      const double s = gam[co] / sqrt((double)var[co] + eps);
      for (size_t i = 0; i < per; i++) w[co * per + i] = (float)(w0[co * per + i] * s);
      b[co] = (float)(((b0 ? b0[co] : 0.0) - mu[co]) * s + bet[co]);
    }
    in[1] = init_f32(o, ox_name(o, o->g->nodes[bn].name, "folded_weight"), wdims, 4, w);
    in[2] = init_f32(o, ox_name(o, o->g->nodes[bn].name, "folded_bias"), bdims, 1, b);
    n_in = 3;
    free(w);
    free(b);
    o->n_folded++;
  }
  Onnx__NodeProto *nd = ox_node(o, "Conv", c->name, in, n_in, out);
  const int64_t k[2] = {t->kh, t->kw}, s[2] = {t->sh, t->sw},
                p[4] = {t->pad_t, t->pad_l, t->pad_b, t->pad_r};
  attr_ints(o, nd, "kernel_shape", k, 2);
  attr_ints(o, nd, "strides", s, 2);
  attr_ints(o, nd, "pads", p, 4);
  attr_int(o, nd, "group", t->groups);
  return 0;
}

static int emit_conv2d(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  return emit_conv(o, id, -1, o->tensor[id]);
}

static int emit_batchnorm(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  const int conv = src[0];
  if (o->folded_into[conv] == id) return emit_conv(o, conv, id, o->tensor[id]);
  const fb_node *nd = &o->g->nodes[id];
  const int64_t dims[1] = {nd->args.par[0].n};
  char *in[5] = {in_name(o, src[0])};
  for (int k = 0; k < 4; k++) in[k + 1] = init_param(o, nd->par[k], dims, 1);
  Onnx__NodeProto *p = ox_node(o, "BatchNormalization", nd->name, in, 5, o->tensor[id]);
  attr_float(o, p, "epsilon", nd->args.attr.eps);
  return 0;
}

static int emit_unary(ox *o, int id, const char *op_type, const int *src) {
  char *in[1] = {in_name(o, src[0])};
  ox_node(o, op_type, o->g->nodes[id].name, in, 1, o->tensor[id]);
  return 0;
}

static int emit_relu(ox *o, int id, const int *src, int m) {
  (void)m;
  return emit_unary(o, id, "Relu", src);
}

static int emit_sigmoid(ox *o, int id, const int *src, int m) {
  (void)m;
  return emit_unary(o, id, "Sigmoid", src);
}

static int emit_hswish(ox *o, int id, const int *src, int m) {
  (void)m;
  return emit_unary(o, id, "HardSwish", src);
}

/* relu6(x + 3) / 6 */
static int emit_hsigmoid(ox *o, int id, const int *src, int m) {
  (void)m;
  char *in[1] = {in_name(o, src[0])};
  Onnx__NodeProto *nd = ox_node(o, "HardSigmoid", o->g->nodes[id].name, in, 1, o->tensor[id]);
  attr_float(o, nd, "alpha", 1.0f / 6.0f);
  attr_float(o, nd, "beta", 0.5f);
  return 0;
}

static int emit_relu6(ox *o, int id, const int *src, int m) {
  (void)m;
  const int64_t none[1] = {0};
  const float lo = 0.0f, hi = 6.0f;
  const char *name = o->g->nodes[id].name;
  char *in[3] = {in_name(o, src[0]), init_f32(o, ox_name(o, name, "min"), none, 0, &lo),
                 init_f32(o, ox_name(o, name, "max"), none, 0, &hi)};
  ox_node(o, "Clip", name, in, 3, o->tensor[id]);
  return 0;
}

/* add: the terms that are present (an add left with one term is that term). */
static int emit_add(ox *o, int id, const int *src, int m) {
  char *in[FB_MAX_IN];
  for (int k = 0; k < m; k++) in[k] = in_name(o, src[k]);
  const char *op = m == 1 ? "Identity" : m == 2 ? "Add" : "Sum";
  ox_node(o, op, o->g->nodes[id].name, in, m, o->tensor[id]);
  return 0;
}

/* chanmul: x (N,C,H,W) times the per-channel gate s (N,C,1,1), by broadcast. */
static int emit_chanmul(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  char *in[2] = {in_name(o, src[0]), in_name(o, src[1])};
  ox_node(o, "Mul", o->g->nodes[id].name, in, 2, o->tensor[id]);
  return 0;
}

static int emit_concat(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  char *in[FB_MAX_IN];
  for (int k = 0; k < m; k++) in[k] = in_name(o, src[k]);
  Onnx__NodeProto *nd = ox_node(o, "Concat", o->g->nodes[id].name, in, m, o->tensor[id]);
  attr_int(o, nd, "axis", 1);
  return 0;
}

static int emit_gap(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  return emit_unary(o, id, "GlobalAveragePool", src);
}

/* linear on (N,C,1,1): Flatten to (N,C), then Gemm with the (K,C) weight. */
static int emit_linear(ox *o, int id, const int *src, int m) {
  if (need_rank4(o, id, src, m)) return -1;
  const fb_node *nd = &o->g->nodes[id];
  char *flat = ox_name(o, nd->name, "flat");
  char *fin[1] = {in_name(o, src[0])};
  Onnx__NodeProto *f = ox_node(o, "Flatten", flat, fin, 1, flat);
  attr_int(o, f, "axis", 1);
  const fb_shape ws = nd->args.par[0];
  const int64_t wdims[2] = {ws.n, ws.c}, bdims[1] = {ws.n};
  char *in[3] = {flat, init_param(o, nd->par[0], wdims, 2), NULL};
  int n_in = 2;
  if (nd->args.attr.has_bias) in[2] = init_param(o, nd->par[1], bdims, 1), n_in = 3;
  Onnx__NodeProto *gm = ox_node(o, "Gemm", nd->name, in, n_in, o->tensor[id]);
  attr_int(o, gm, "transB", 1);
  o->rank[id] = 2;
  return 0;
}

/* Resize by the integer scale: nearest reads floor(o / s) (asymmetric), bilinear
 * reads (o + 0.5) / s - 0.5 clamped at 0 (half_pixel). */
static int emit_resize(ox *o, int id, const int *src, int m, const char *mode) {
  if (need_rank4(o, id, src, m)) return -1;
  const fb_node *nd = &o->g->nodes[id];
  const float s = (float)nd->args.attr.scale, scales[4] = {1, 1, s, s};
  const int64_t dims[1] = {4};
  char *in[3] = {in_name(o, src[0]), ox_strdup(o, ""),
                 init_f32(o, ox_name(o, nd->name, "scales"), dims, 1, scales)};
  Onnx__NodeProto *r = ox_node(o, "Resize", nd->name, in, 3, o->tensor[id]);
  attr_string(o, r, "mode", mode);
  if (strcmp(mode, "nearest") == 0) {
    attr_string(o, r, "coordinate_transformation_mode", "asymmetric");
    attr_string(o, r, "nearest_mode", "floor");
  } else {
    attr_string(o, r, "coordinate_transformation_mode", "half_pixel");
  }
  return 0;
}

static int emit_nearest(ox *o, int id, const int *src, int m) {
  return emit_resize(o, id, src, m, "nearest");
}

static int emit_bilinear(ox *o, int id, const int *src, int m) {
  return emit_resize(o, id, src, m, "linear");
}

static const struct {
  const char *op;
  ox_emit_fn emit;
} EMITTERS[] = {
    {"conv2d", emit_conv2d},        {"batchnorm", emit_batchnorm},
    {"relu", emit_relu},            {"relu6", emit_relu6},
    {"hswish", emit_hswish},        {"hsigmoid", emit_hsigmoid},
    {"sigmoid", emit_sigmoid},      {"add", emit_add},
    {"chanmul", emit_chanmul},      {"concat", emit_concat},
    {"gap", emit_gap},              {"linear", emit_linear},
    {"upsample_nearest", emit_nearest}, {"upsample_bilinear", emit_bilinear},
};

static ox_emit_fn find_emitter(const char *op) {
  for (size_t i = 0; i < sizeof EMITTERS / sizeof EMITTERS[0]; i++)
    if (strcmp(EMITTERS[i].op, op) == 0) return EMITTERS[i].emit;
  return NULL;
}

/* ---- the walk ------------------------------------------------------------------- */

static int gather(const fb_graph *g, int id, int *src) {
  const fb_node *nd = &g->nodes[id];
  int m = 0;
  for (int k = 0; k < nd->args.n_in; k++) {
    const int s = fb_graph_source(g, nd->in[k]);
    if (s >= 0) src[m++] = s;
  }
  return m;
}

static void add_output(ox *o, const char *name, int node) {
  if (o->n_out >= OX_MAX_OUTPUTS || node < 0) return;
  snprintf(o->out[o->n_out].name, sizeof o->out[0].name, "%s", name);
  o->out[o->n_out++].node = node;
}

/* The head outputs; detection maps per level (the inputs of the concat nodes). */
static void list_outputs(ox *o) {
  const fb_net *net = o->net;
  const fb_graph *g = o->g;
  if (net->tasks & FB_TASK_CLS) add_output(o, "cls.logits", net->logits_node);
  if (net->tasks & FB_TASK_DET) {
    const int cat[3] = {net->det.cls, net->det.box, net->det.ctr};
    const char *kind[3] = {"cls", "box", "ctr"};
    for (int j = 0; j < 3; j++)
      for (int l = 0; l < net->det.n_levels; l++) {
        char name[48];
        snprintf(name, sizeof name, "det.%s.s%d", kind[j], net->det.stride[l]);
        add_output(o, name, fb_graph_source(g, g->nodes[cat[j]].in[l]));
      }
  }
  if (net->tasks & FB_TASK_SEG) add_output(o, "seg.logits", net->seg.logits);
}

/* live nodes, their readers, and which batch norms fold into their conv */
static void analyse(ox *o) {
  const fb_graph *g = o->g;
  uint8_t *act = fb_xmalloc((size_t)g->n + 1);
  for (int i = 0; i < g->n; i++) act[i] = (uint8_t)g->nodes[i].active;
  int roots[OX_MAX_OUTPUTS];
  for (int k = 0; k < o->n_out; k++) roots[k] = o->out[k].node;
  fb_graph_liveness(g, act, roots, o->n_out, o->live);
  free(act);
  for (int k = 0; k < o->n_out; k++) o->uses[o->out[k].node]++;
  int src[FB_MAX_IN];
  for (int i = 0; i < g->n; i++) {
    o->folded_into[i] = -1;
    if (!o->live[i] || !g->nodes[i].op) continue;
    const int m = gather(g, i, src);
    for (int k = 0; k < m; k++) o->uses[src[k]]++;
  }
  for (int i = 0; i < g->n; i++) {
    if (!o->live[i] || !g->nodes[i].op || g->nodes[i].op->kind != FB_OPK_NORM) continue;
    if (gather(g, i, src) != 1) continue;
    const fb_node *c = &g->nodes[src[0]];
    if (c->op && c->op->kind == FB_OPK_CONV && o->uses[src[0]] == 1) {
      o->folded_into[src[0]] = i;
      o->absorbed[src[0]] = 1;
    }
  }
}

static void name_tensors(ox *o) {
  for (int i = 0; i < o->g->n; i++) {
    o->tensor[i] = ox_strdup(o, o->g->nodes[i].name);
    o->rank[i] = 4;
  }
  o->tensor[o->net->input_node] = ox_strdup(o, "input");
  for (int k = 0; k < o->n_out; k++) o->tensor[o->out[k].node] = ox_strdup(o, o->out[k].name);
}

static int emit_all(ox *o) {
  const fb_graph *g = o->g;
  int src[FB_MAX_IN];
  for (int i = 0; i < g->n; i++) {
    const fb_node *nd = &g->nodes[i];
    if (!o->live[i] || !nd->op || o->absorbed[i]) continue;
    if (nd->op->is_loss)
      return fb_fail(o->st, "onnx export: node %s: op '%s' is a loss; an output depends on it",
                     nd->name, nd->op->name);
    ox_emit_fn emit = find_emitter(nd->op->name);
    if (!emit)
      return fb_fail(o->st, "onnx export: node %s: op '%s' has no ONNX form in fbnet's exporter",
                     nd->name, nd->op->name);
    const int m = gather(g, i, src);
    if (m < 1) return fb_fail(o->st, "onnx export: node %s has no input", nd->name);
    if (emit(o, i, src, m)) return -1;
    for (int k = 0; k < m; k++)
      if (nd->op->kind != FB_OPK_LINEAR && o->rank[src[k]] == 2) o->rank[i] = 2;
  }
  return 0;
}

/* value info: float32 with the batch dimension "N" */
static Onnx__ValueInfoProto *value_info(ox *o, const char *name, const int64_t *dims, int rank) {
  Onnx__TensorShapeProto *shape = ox_alloc(o, sizeof *shape);
  onnx__tensor_shape_proto__init(shape);
  shape->n_dim = (size_t)rank;
  shape->dim = ox_alloc(o, (size_t)rank * sizeof(Onnx__TensorShapeProto__Dimension *));
  for (int d = 0; d < rank; d++) {
    Onnx__TensorShapeProto__Dimension *dm = ox_alloc(o, sizeof *dm);
    onnx__tensor_shape_proto__dimension__init(dm);
    if (d == 0) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dm->dim_param = ox_strdup(o, "N");
    } else {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = dims[d];
    }
    shape->dim[d] = dm;
  }
  Onnx__TypeProto__Tensor *tt = ox_alloc(o, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = shape;
  Onnx__TypeProto *tp = ox_alloc(o, sizeof *tp);
  onnx__type_proto__init(tp);
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  Onnx__ValueInfoProto *v = ox_alloc(o, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = ox_strdup(o, name);
  v->type = tp;
  return v;
}

static Onnx__ValueInfoProto *node_info(ox *o, int id) {
  const fb_shape s = o->g->nodes[id].args.out;
  const int64_t dims[4] = {0, s.c, s.h, s.w};
  return value_info(o, o->tensor[id], dims, o->rank[id]);
}

static Onnx__StringStringEntryProto *meta(ox *o, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = ox_alloc(o, sizeof *e);
  onnx__string_string_entry_proto__init(e);
  e->key = ox_strdup(o, key);
  e->value = ox_strdup(o, value);
  return e;
}

static void describe(ox *o, Onnx__ModelProto *m) {
  const fb_net *net = o->net;
  char pre[256], strides[128] = "", buf[32];
  if (net->opts.in_channels == 1)
    snprintf(pre, sizeof pre, "x = (p / 255 - %.4f) / %.4f for grey pixels p in 0..255 "
             "(Fashion-MNIST statistics)", (double)FB_FMNIST_MEAN, (double)FB_FMNIST_STD);
  else
    snprintf(pre, sizeof pre, "x = (p / 255 - 0.5) / 0.25 for RGB pixels p in 0..255, on a %d x %d "
             "input framed as fbnet eval frames it", net->opts.input_size, net->opts.input_size);
  for (int l = 0; (net->tasks & FB_TASK_DET) && l < net->det.n_levels; l++) {
    snprintf(buf, sizeof buf, "%s%d", l ? "," : "", net->det.stride[l]);
    strncat(strides, buf, sizeof strides - strlen(strides) - 1);
  }
  Onnx__StringStringEntryProto **e = ox_alloc(o, 6 * sizeof *e);
  size_t n = 0;
  e[n++] = meta(o, "fbnet.arch", net->name);
  e[n++] = meta(o, "fbnet.preprocess", pre);
  if (strides[0]) e[n++] = meta(o, "fbnet.det.strides", strides);
  if (net->arch_text) e[n++] = meta(o, "fbnet.arch_json", net->arch_text);
  if (net->labels_json) e[n++] = meta(o, "fbnet.labels", net->labels_json);
  m->metadata_props = e;
  m->n_metadata_props = n;
}

static int write_model(ox *o, const char *path, fb_onnx_info *info) {
  const fb_net *net = o->net;
  Onnx__GraphProto *gr = ox_alloc(o, sizeof *gr);
  onnx__graph_proto__init(gr);
  gr->name = ox_strdup(o, net->name);
  gr->n_node = o->nodes.n;
  gr->node = (Onnx__NodeProto **)o->nodes.v;
  gr->n_initializer = o->inits.n;
  gr->initializer = (Onnx__TensorProto **)o->inits.v;
  gr->n_input = 1;
  gr->input = ox_alloc(o, sizeof *gr->input);
  gr->input[0] = node_info(o, net->input_node);
  gr->n_output = (size_t)o->n_out;
  gr->output = ox_alloc(o, (size_t)o->n_out * sizeof *gr->output);
  for (int k = 0; k < o->n_out; k++) gr->output[k] = node_info(o, o->out[k].node);

  Onnx__OperatorSetIdProto *ops = ox_alloc(o, sizeof *ops);
  onnx__operator_set_id_proto__init(ops);
  ops->domain = ox_strdup(o, "");
  ops->has_version = 1;
  ops->version = FB_ONNX_OPSET;
  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  m.has_ir_version = 1;
  m.ir_version = 8;
  m.n_opset_import = 1;
  m.opset_import = &ops;
  m.producer_name = ox_strdup(o, "fbnet");
  m.producer_version = ox_strdup(o, "1");
  m.graph = gr;
  describe(o, &m);

  const size_t len = onnx__model_proto__get_packed_size(&m);
  uint8_t *buf = fb_xmalloc(len + 1);
  onnx__model_proto__pack(&m, buf);
  const int rc = fb_write_file_atomic(path, buf, len, o->st);
  free(buf);
  if (info) {
    info->n_nodes = (int)o->nodes.n;
    info->n_folded = o->n_folded;
    info->n_outputs = o->n_out;
    info->bytes = len;
  }
  return rc;
}

static void ox_free(ox *o) {
  for (size_t i = 0; i < o->mem.n; i++) free(o->mem.v[i]);
  free(o->mem.v);
  free(o->nodes.v);
  free(o->inits.v);
}

int fb_onnx_export(const fb_net *net, const char *path, fb_onnx_info *info, fb_status *st) {
  if (!net || !net->g.params.data)
    return fb_fail(st, "onnx export: the network has no parameters (plan it and load weights)");
  ox o;
  memset(&o, 0, sizeof o);
  o.net = net;
  o.g = &net->g;
  o.st = st;
  const size_t n = (size_t)o.g->n + 1;
  o.tensor = ox_alloc(&o, n * sizeof(char *));
  o.rank = ox_alloc(&o, n * sizeof(int));
  o.uses = ox_alloc(&o, n * sizeof(int));
  o.folded_into = ox_alloc(&o, n * sizeof(int));
  o.live = ox_alloc(&o, n);
  o.absorbed = ox_alloc(&o, n);
  o.slot_done = ox_alloc(&o, (size_t)o.g->params.n + 1);
  list_outputs(&o);
  int rc = -1;
  if (o.n_out == 0) {
    fb_fail(st, "onnx export: network %s has no head to export", net->name);
  } else {
    analyse(&o);
    name_tensors(&o);
    rc = emit_all(&o) == 0 ? write_model(&o, path, info) : -1;
  }
  ox_free(&o);
  return rc;
}
