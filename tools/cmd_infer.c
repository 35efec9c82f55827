/* fbnet infer: the raw head outputs of saved weights on a raw input tensor,
 * for comparisons with other runtimes (scripts/fbnet_to_torch.py --compare).
 *
 *   fbnet infer --weights W [--arch A] [--task cls|det|seg] --input X.f32 --out DIR
 *
 * X.f32 holds N images as little-endian float32 in NCHW order, already
 * preprocessed (N is its size over C*S*S*4 bytes; C and S are the weights'
 * in_channels and input_size). The network is built as `fbnet eval` builds
 * it (build options and arch from the weights' metadata, --arch overrides the
 * arch) with every head the weights have, or only --task's; BN uses its
 * running statistics. DIR receives one raw float32 file per output and
 * index.json:
 *   {"format": "fbnet-infer-1", "weights", "arch", "input": {"file", "shape"},
 *    "outputs": [{"name", "file", "shape", "dtype": "float32"}, ...],
 *    "det": {"strides", "sizes", "offsets"}}            (det only)
 * Outputs: cls.logits [N,K] (before softmax); det.cls [N,K,P] (logits, before
 * sigmoid), det.box [N,4,P] (l,t,r,b in units of the level's stride, after
 * the relu), det.ctr [N,1,P] (centerness logits), P = sum of the levels' H*W,
 * level-major, row-major within a level; seg.logits [N,K,S,S]. */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "model.h"
#include "core/fileio.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "nn/arch.h"
#include "nn/net.h"

enum { INFER_MAX_OUTPUTS = 5 };
#define INFER_MAX_INPUT_BYTES ((size_t)4 << 30)

typedef struct infer_out {
  const char *name;
  int node;
  int rank;
  int shape[4];
} infer_out;

/* The outputs of the heads net has, with their shapes at batch n. */
static int list_outputs(const fb_net *net, int n, infer_out *o) {
  int k = 0;
  const fb_graph *g = &net->g;
  if (net->tasks & FB_TASK_CLS)
    o[k++] = (infer_out){"cls.logits", net->logits_node, 2, {n, net->opts.num_classes, 0, 0}};
  if (net->tasks & FB_TASK_DET) {
    const int P = net->det.P;
    o[k++] = (infer_out){"det.cls", net->det.cls, 3, {n, g->nodes[net->det.cls].args.out.c, P, 0}};
    o[k++] = (infer_out){"det.box", net->det.box, 3, {n, 4, P, 0}};
    o[k++] = (infer_out){"det.ctr", net->det.ctr, 3, {n, 1, P, 0}};
  }
  if (net->tasks & FB_TASK_SEG) {
    const fb_shape s = g->nodes[net->seg.logits].args.out;
    o[k++] = (infer_out){"seg.logits", net->seg.logits, 4, {n, s.c, s.h, s.w}};
  }
  return k;
}

static cJSON *int_array(const int *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
  return a;
}

/* Defined values in the target inputs: the forward also runs the losses,
 * whose values nobody reads here. */
static void fill_targets(fb_net *net) {
  fb_graph *g = &net->g;
  const int ids[5] = {net->label_node, net->det.tgt_cls, net->det.tgt_box, net->det.tgt_ctr,
                      net->seg.tgt};
  const unsigned task[5] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_DET, FB_TASK_DET, FB_TASK_SEG};
  for (int k = 0; k < 5; k++) {
    float *x = net->tasks & task[k] ? fb_graph_input_data(g, ids[k]) : NULL;
    if (!x) continue;
    const size_t n = fb_numel(g->nodes[ids[k]].args.out);
    const float v = k == 1 ? -1.0f : 0.0f; /* det: background everywhere */
    for (size_t i = 0; i < n; i++) x[i] = v;
  }
}

typedef struct infer_args {
  const char *weights, *arch, *input, *out;
  int task, threads;
} infer_args;

/* The weights' model, the head of --task only when given. */
static int open_model(const infer_args *a, tool_model *m, fb_status *st) {
  if (tool_model_read(a->weights, m, st)) return -1;
  if (m->format && strcmp(m->format, "fbnet-weights-1") != 0)
    return fb_fail(st, "%s: format '%s' (expected fbnet-weights-1; a checkpoint holds optimizer "
                   "state too: use weights.safetensors)", a->weights, m->format);
  if (tool_model_need_arch(a->weights, a->arch, m, st)) return -1;
  static const unsigned tasks[3] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_SEG};
  if (a->task < 0) return 0;
  if (tool_model_need_task(a->weights, &m->b, tasks[a->task], st)) return -1;
  m->b.tasks = tasks[a->task];
  return 0;
}

static int infer(const infer_args *a, fb_status *st) {
  tool_model m;
  int rc = 0;
  if (open_model(a, &m, st)) {
    tool_model_free(&m);
    return -1;
  }
  const fb_build_opts b = m.b;

  /* the input: a whole number of C x S x S float32 images */
  const size_t per = (size_t)b.in_channels * b.input_size * b.input_size;
  size_t len = 0;
  char *raw = fb_read_file(a->input, INFER_MAX_INPUT_BYTES, &len, st);
  if (!raw) {
    tool_model_free(&m);
    return -1;
  }
  fb_net *net = NULL;
  fb_arch *arch = NULL;
  const size_t n_img = len / (per * sizeof(float));
  if (len == 0 || len % (per * sizeof(float)) != 0 || n_img > 65536) {
    rc = fb_fail(st, "%s: %zu bytes is not a whole number (1..65536) of %dx%dx%d float32 images "
                 "(%zu bytes each) that the model of %s takes", a->input, len, b.in_channels,
                 b.input_size, b.input_size, per * sizeof(float), a->weights);
    goto done;
  }
  const int n = (int)n_img;

  arch = tool_model_arch(a->weights, a->arch, &m, st);
  if (!arch || !(net = fb_net_build(arch, &b, 1, st)) || fb_net_plan_inference(net, n, st) ||
      fb_safetensors_load_into_ex(&net->g.params, a->weights,
                                  a->task < 0 ? FB_ST_REQUIRE_ALL : 0, st) < 0) {
    rc = -1;
    goto done;
  }
  float *x = fb_net_input(net);
  memcpy(x, raw, (size_t)n * per * sizeof(float));
  for (size_t i = 0; i < (size_t)n * per; i++)
    if (!isfinite(x[i])) {
      rc = fb_fail(st, "%s: value %zu (image %zu) is %g: the input must be finite", a->input, i,
                   i / per, (double)x[i]);
      goto done;
    }
  fill_targets(net);
  fb_net_forward(net, 0);

  if ((rc = fb_mkdir_p(a->out, st))) goto done;
  infer_out outs[INFER_MAX_OUTPUTS];
  const int n_out = list_outputs(net, n, outs);
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "fbnet-infer-1");
  cJSON_AddStringToObject(root, "weights", a->weights);
  cJSON_AddStringToObject(root, "arch", net->name);
  cJSON *in = cJSON_AddObjectToObject(root, "input");
  cJSON_AddStringToObject(in, "file", a->input);
  const int in_shape[4] = {n, b.in_channels, b.input_size, b.input_size};
  cJSON_AddItemToObject(in, "shape", int_array(in_shape, 4));
  cJSON *list = cJSON_AddArrayToObject(root, "outputs");
  for (int k = 0; k < n_out && rc == 0; k++) {
    const infer_out *o = &outs[k];
    size_t numel = 1;
    for (int d = 0; d < o->rank; d++) numel *= (size_t)o->shape[d];
    const fb_node *nd = &net->g.nodes[o->node];
    const float *values = fb_graph_output(&net->g, o->node);
    if (numel != fb_numel(nd->args.out) || !values) {
      rc = fb_fail(st, "%s: output %s: node %s holds %zu values, expected %zu", a->weights, o->name,
                   nd->name, fb_numel(nd->args.out), numel);
      break;
    }
    char file[64];
    snprintf(file, sizeof file, "%s.f32", o->name);
    char *path = fb_path_join(a->out, file);
    rc = fb_write_file_atomic(path, values, numel * sizeof(float), st);
    free(path);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", o->name);
    cJSON_AddStringToObject(e, "file", file);
    cJSON_AddItemToObject(e, "shape", int_array(o->shape, o->rank));
    cJSON_AddStringToObject(e, "dtype", "float32");
    cJSON_AddItemToArray(list, e);
  }
  if (rc == 0 && (net->tasks & FB_TASK_DET)) {
    cJSON *det = cJSON_AddObjectToObject(root, "det");
    int sizes[2 * FB_FCOS_MAX_LEVELS];
    for (int l = 0; l < net->det.n_levels; l++) sizes[2 * l] = net->det.h[l], sizes[2 * l + 1] = net->det.w[l];
    cJSON_AddItemToObject(det, "strides", int_array(net->det.stride, net->det.n_levels));
    cJSON *sz = cJSON_AddArrayToObject(det, "sizes");
    for (int l = 0; l < net->det.n_levels; l++) cJSON_AddItemToArray(sz, int_array(sizes + 2 * l, 2));
    cJSON_AddItemToObject(det, "offsets", int_array(net->det.offset, net->det.n_levels));
  }
  if (rc == 0) {
    char *text = cJSON_Print(root);
    char *path = fb_path_join(a->out, "index.json");
    rc = fb_write_text_atomic(path, text, st);
    if (rc == 0) {
      printf("%d image%s of %s -> %s:", n, n == 1 ? "" : "s", a->input, a->out);
      for (int k = 0; k < n_out; k++) {
        printf(" %s [", outs[k].name);
        for (int d = 0; d < outs[k].rank; d++) printf("%s%d", d ? "," : "", outs[k].shape[d]);
        printf("]");
      }
      printf("\n");
    }
    free(path);
    free(text);
  }
  cJSON_Delete(root);
done:
  fb_net_free(net);
  fb_arch_free(arch);
  free(raw);
  tool_model_free(&m);
  return rc ? -1 : 0;
}

int cmd_infer(int argc, char **argv) {
  infer_args a;
  memset(&a, 0, sizeof a);
  a.task = -1;
  const arg_opt opts[] = {
      {"--weights", ARG_STRING, &a.weights, 0, 0, NULL, "weights (.safetensors), required"},
      {"--arch", ARG_STRING, &a.arch, 0, 0, NULL,
       "arch file (JSON); default: the arch stored in the weights (arch_json)"},
      {"--task", ARG_CHOICE, &a.task, 0, 0, "cls|det|seg",
       "only this head (default: every head the weights have)"},
      {"--input", ARG_STRING, &a.input, 0, 0, NULL,
       "raw little-endian float32 NCHW images, preprocessed (required)"},
      {"--out", ARG_STRING, &a.out, 0, 0, NULL, "output directory, parents created (required)"},
      {"--threads", ARG_INT, &a.threads, 1, 1024, NULL, "OpenMP threads"},
  };
  const arg_spec spec = {
      "fbnet infer --weights W [--arch ARCH] [--task cls|det|seg] --input X.f32 --out DIR",
      "Runs saved weights on a raw float32 NCHW tensor (N images of the weights' in_channels x\n"
      "input_size x input_size, N from the file size) and writes the raw head outputs to DIR:\n"
      "cls.logits.f32 [N,K], det.cls/det.box/det.ctr.f32 [N,K|4|1,P], seg.logits.f32 [N,K,S,S]\n"
      "(float32, C order) and index.json (names, files, shapes; det level strides and sizes).\n"
      "For comparing runtimes: scripts/fbnet_to_torch.py W --compare DIR.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!a.weights || !a.input || !a.out) {
    fprintf(stderr, "fbnet infer: --weights, --input and --out are required (see --help)\n");
    return 2;
  }
  if (a.threads) omp_set_num_threads(a.threads);
  fb_status st = {0};
  if (infer(&a, &st)) {
    fprintf(stderr, "fbnet infer: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}
