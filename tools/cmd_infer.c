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
#include "core/fileio.h"
#include "core/status.h"
#include "tasks/task.h"

#define INFER_MAX_INPUT_BYTES ((size_t)4 << 30)

static cJSON *int_array(const int *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
  return a;
}

typedef struct infer_args {
  const char *weights, *arch, *input, *out;
  int task, threads;
} infer_args;

/* The model at batch n: every head of the weights, or --task's only. */
static fb_model *open_model(const infer_args *a, int n, fb_status *st) {
  fb_model_opts o = {a->arch, a->task >= 0 ? fb_task_at(a->task)->id : 0, n};
  return fb_model_open(a->weights, &o, st);
}

/* The input file: a whole number of C x S x S float32 images; *n their count. */
static char *read_input(const infer_args *a, const fb_model *m, int *n, fb_status *st) {
  const int C = fb_model_in_channels(m), S = fb_model_input_size(m);
  const size_t per = (size_t)C * S * S * sizeof(float);
  size_t len = 0;
  char *raw = fb_read_file(a->input, INFER_MAX_INPUT_BYTES, &len, st);
  if (raw && (len == 0 || len % per != 0 || len / per > 65536)) {
    fb_fail(st, "%s: %zu bytes is not a whole number (1..65536) of %dx%dx%d float32 images "
            "(%zu bytes each) that the model of %s takes", a->input, len, C, S, S, per,
            a->weights);
    free(raw);
    return NULL;
  }
  *n = raw ? (int)(len / per) : 0;
  return raw;
}

/* DIR/<output>.f32 per output and DIR/index.json. */
static int write_outputs(const infer_args *a, const fb_model *m, int n, fb_status *st) {
  if (fb_mkdir_p(a->out, st)) return -1;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "fbnet-infer-1");
  cJSON_AddStringToObject(root, "weights", a->weights);
  cJSON *in = cJSON_AddObjectToObject(root, "input");
  cJSON_AddStringToObject(in, "file", a->input);
  const int S = fb_model_input_size(m), in_shape[4] = {n, fb_model_in_channels(m), S, S};
  cJSON_AddItemToObject(in, "shape", int_array(in_shape, 4));
  cJSON *list = cJSON_AddArrayToObject(root, "outputs");
  int rc = 0;
  printf("%d image%s of %s -> %s:", n, n == 1 ? "" : "s", a->input, a->out);
  for (int k = 0; k < fb_model_num_outputs(m) && rc == 0; k++) {
    fb_output o;
    if ((rc = fb_model_output_at(m, k, &o, st))) break;
    size_t numel = 1;
    for (int d = 0; d < o.rank; d++) numel *= (size_t)o.shape[d];
    char file[64];
    snprintf(file, sizeof file, "%s.f32", o.name);
    char *path = fb_path_join(a->out, file);
    rc = fb_write_file_atomic(path, o.data, numel * sizeof(float), st);
    free(path);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", o.name);
    cJSON_AddStringToObject(e, "file", file);
    cJSON_AddItemToObject(e, "shape", int_array(o.shape, o.rank));
    cJSON_AddStringToObject(e, "dtype", "float32");
    cJSON_AddItemToArray(list, e);
    printf(" %s [", o.name);
    for (int d = 0; d < o.rank; d++) printf("%s%d", d ? "," : "", o.shape[d]);
    printf("]");
  }
  printf("\n");
  int stride[8], h[8], w[8], offset[8];
  const int L = fb_model_det_levels(m, stride, h, w, offset);
  if (rc == 0 && L > 0) {
    cJSON *det = cJSON_AddObjectToObject(root, "det");
    cJSON_AddItemToObject(det, "strides", int_array(stride, L));
    cJSON *sz = cJSON_AddArrayToObject(det, "sizes");
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(sz, int_array((int[2]){h[l], w[l]}, 2));
    cJSON_AddItemToObject(det, "offsets", int_array(offset, L));
  }
  if (rc == 0) {
    char *text = cJSON_Print(root);
    char *path = fb_path_join(a->out, "index.json");
    rc = fb_write_text_atomic(path, text, st);
    free(path);
    free(text);
  }
  cJSON_Delete(root);
  return rc;
}

static int infer(const infer_args *a, fb_status *st) {
  fb_model *m = open_model(a, 1, st);
  int n = 0;
  char *raw = m ? read_input(a, m, &n, st) : NULL;
  if (raw && n > 1) { /* reopened for the whole input as one batch */
    fb_model_free(m);
    m = open_model(a, n, st);
  }
  int rc = raw && m ? 0 : -1;
  if (rc == 0) {
    memcpy(fb_model_input(m), raw, (size_t)n * fb_model_in_channels(m) *
                                       fb_model_input_size(m) * fb_model_input_size(m) *
                                       sizeof(float));
    rc = fb_model_run(m, n, st);
  }
  if (rc == 0) rc = write_outputs(a, m, n, st);
  if (rc && strncmp(st->msg, "fb_model_run: ", 14) == 0) { /* name the file */
    char msg[sizeof st->msg];
    snprintf(msg, sizeof msg, "%s: %s", a->input, st->msg + 14);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
  }
  fb_model_free(m);
  free(raw);
  return rc;
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
