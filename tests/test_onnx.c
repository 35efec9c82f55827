/* ONNX export (src/io/onnx.c), read back with the same protobuf-c messages:
 * every batch norm folded into its convolution with the values computed here
 * independently (in double), the graph's interface (input, dynamic batch,
 * outputs per head), and an op without an ONNX form is an error naming the
 * node, with nothing written. Running the files in onnxruntime against
 * fbnet's outputs is tests/cli/test_onnx.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "io/onnx.h"
#include "nn/builtin_archs.h"
#include "nn/net.h"
#include "onnx.pb-c.h"
#include "ops/op.h"

static fb_net *build(unsigned tasks, fb_status *st) {
  fb_arch *a = fb_arch_parse(fb_builtin_arch_text("fbnetv3_a"), "fbnetv3_a", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 64;
  o.width = 0.25;
  o.standard_padding = 1;
  o.num_classes = 7;
  o.tasks = tasks;
  o.num_cats = 3;
  o.num_seg_classes = 4;
  fb_net *net = fb_net_build(a, &o, 1, st);
  fb_arch_free(a);
  if (!net || fb_net_plan_inference(net, 1, st)) {
    fb_net_free(net);
    return NULL;
  }
  /* batch norms with statistics far from the identity */
  fb_rng rng;
  fb_rng_seed(&rng, 5);
  for (int i = 0; i < net->g.params.n; i++) {
    const fb_param *p = &net->g.params.p[i];
    float *v = fb_param_data(&net->g.params, i);
    const int var = strstr(p->name, "running_var") != NULL;
    if (var || strstr(p->name, "running_mean") || strstr(p->name, "bn.weight") || strstr(p->name, "bn.bias"))
      for (size_t k = 0; k < p->numel; k++)
        v[k] = var ? 0.5f + (float)fb_rng_uniform(&rng) : (float)fb_rng_uniform(&rng) - 0.5f;
  }
  return net;
}

static Onnx__ModelProto *read_model(const char *path) {
  fb_status st;
  size_t len = 0;
  char *buf = fb_read_file(path, (size_t)1 << 30, &len, &st);
  if (!buf) return NULL;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
  free(buf);
  return m;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (strcmp(g->initializer[i]->name, name) == 0) return g->initializer[i];
  return NULL;
}

static const Onnx__NodeProto *find_node(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_node; i++)
    if (strcmp(g->node[i]->name, name) == 0) return g->node[i];
  return NULL;
}

/* the folded weight and bias of conv node `conv` (followed by batch norm `bn`) */
static void check_fold(const fb_net *net, const Onnx__GraphProto *g, int conv, int bn) {
  const fb_node *c = &net->g.nodes[conv], *b = &net->g.nodes[bn];
  const Onnx__NodeProto *nd = find_node(g, c->name);
  CHECK(nd && strcmp(nd->op_type, "Conv") == 0 && nd->n_input == 3, "%s: a Conv with a bias", c->name);
  if (!nd || nd->n_input != 3) return;
  const Onnx__TensorProto *w = find_init(g, nd->input[1]), *bias = find_init(g, nd->input[2]);
  CHECK(w && bias, "%s: initializers %s, %s", c->name, nd->input[1], nd->input[2]);
  if (!w || !bias) return;
  const fb_params *p = &net->g.params;
  const float *w0 = fb_param_data(p, c->par[0]), *gam = fb_param_data(p, b->par[0]),
              *bet = fb_param_data(p, b->par[1]), *mu = fb_param_data(p, b->par[2]),
              *var = fb_param_data(p, b->par[3]);
  const fb_shape ws = c->args.par[0];
  const size_t per = (size_t)ws.c * ws.h * ws.w;
  CHECK(w->n_dims == 4 && w->dims[0] == ws.n && w->raw_data.len == ws.n * per * 4, "%s: weight shape", c->name);
  if (w->raw_data.len != ws.n * per * 4 || bias->raw_data.len != (size_t)ws.n * 4) return;
  const float *fw = (const float *)w->raw_data.data, *fb = (const float *)bias->raw_data.data;
  double worst = 0;
  for (int co = 0; co < ws.n; co++) {
    const double s = gam[co] / sqrt((double)var[co] + b->args.attr.eps);
    for (size_t i = 0; i < per; i++) worst = fmax(worst, fabs(fw[co * per + i] - w0[co * per + i] * s));
    worst = fmax(worst, fabs(fb[co] - (bet[co] - mu[co] * s)));
  }
  CHECK(worst < 1e-6, "%s: folded values within 1e-6 of w*g/sqrt(v+eps), beta-mean*scale (%g)", c->name, worst);
}

static void test_cls_export(const char *path) {
  fb_status st = {0};
  fb_net *net = build(FB_TASK_CLS, &st);
  CHECK(net != NULL, "build: %s", st.msg);
  if (!net) return;
  fb_onnx_info info;
  CHECK(fb_onnx_export(net, path, &info, &st) == 0, "export: %s", st.msg);
  Onnx__ModelProto *m = read_model(path);
  CHECK(m && m->graph, "the file parses as an ONNX ModelProto");
  if (m && m->graph) {
    const Onnx__GraphProto *g = m->graph;
    CHECK(m->n_opset_import == 1 && m->opset_import[0]->version == FB_ONNX_OPSET, "opset %d", FB_ONNX_OPSET);
    int n_bn = 0, n_conv = 0, n_fb_conv = 0, n_fb_bn = 0, checked = 0;
    for (size_t i = 0; i < g->n_node; i++) {
      n_bn += strcmp(g->node[i]->op_type, "BatchNormalization") == 0;
      n_conv += strcmp(g->node[i]->op_type, "Conv") == 0;
    }
    for (int i = 0; i < net->g.n; i++) {
      const fb_node *nd = &net->g.nodes[i];
      if (!nd->op) continue;
      n_fb_conv += strcmp(nd->op->name, "conv2d") == 0;
      if (strcmp(nd->op->name, "batchnorm") != 0) continue;
      n_fb_bn++;
      if (checked < 6 && (i % 7 == 0 || checked == 0)) check_fold(net, g, nd->in[0], i), checked++;
    }
    CHECK(n_bn == 0 && info.n_folded == n_fb_bn, "no BatchNormalization left: %d folded of %d", info.n_folded, n_fb_bn);
    CHECK(n_conv == n_fb_conv, "one Conv per conv2d node (%d vs %d)", n_conv, n_fb_conv);
    CHECK(g->n_input == 1 && strcmp(g->input[0]->name, "input") == 0, "one input named input");
    const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
    CHECK(s->n_dim == 4 && strcmp(s->dim[0]->dim_param, "N") == 0 && s->dim[1]->dim_value == 3 &&
          s->dim[3]->dim_value == 64, "input [N,3,64,64]");
    CHECK(g->n_output == 1 && strcmp(g->output[0]->name, "cls.logits") == 0 &&
          g->output[0]->type->tensor_type->shape->n_dim == 2 &&
          g->output[0]->type->tensor_type->shape->dim[1]->dim_value == 7, "output cls.logits [N,7]");
  }
  if (m) onnx__model_proto__free_unpacked(m, NULL);
  fb_net_free(net);
}

/* an op the exporter cannot write: named, and the file is not written */
static void test_unsupported(const char *path) {
  fb_status st = {0};
  fb_net *net = build(FB_TASK_CLS | FB_TASK_SEG, &st);
  CHECK(net != NULL, "build: %s", st.msg);
  if (!net) return;
  unlink(path);
  int victim = -1;
  for (int i = 0; i < net->g.n && victim < 0; i++)
    if (net->g.nodes[i].op && strcmp(net->g.nodes[i].op->name, "hswish") == 0) victim = i;
  net->g.nodes[victim].op = fb_op_find("concat_spatial");
  CHECK(fb_onnx_export(net, path, NULL, &st) != 0, "an unsupported op fails the export");
  CHECK(strstr(st.msg, net->g.nodes[victim].name) && strstr(st.msg, "concat_spatial"),
        "the message names the node and the op: %s", st.msg);
  CHECK(access(path, F_OK) != 0, "nothing written");
  net->g.nodes[victim].op = fb_op_find("hswish");
  CHECK(fb_onnx_export(net, path, NULL, &st) == 0, "cls+seg export: %s", st.msg);
  Onnx__ModelProto *m = read_model(path);
  CHECK(m && m->graph->n_output == 2 && strcmp(m->graph->output[1]->name, "seg.logits") == 0,
        "two heads: cls.logits and seg.logits");
  if (m) onnx__model_proto__free_unpacked(m, NULL);
  fb_net_free(net);
}

int main(void) {
  char path[] = "/tmp/fbnet_test_onnx_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  test_cls_export(path);
  test_unsupported(path);
  unlink(path);
  return check_report("onnx");
}
