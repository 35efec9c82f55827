/* fbnet export: saved weights as an ONNX file (src/io/onnx.h).
 *
 *   fbnet export --weights W [--arch A] [--task cls|det|seg] --onnx OUT.onnx
 *
 * The network is built as `fbnet infer` builds it (build options and arch
 * from the weights' metadata, --arch overrides the arch), with every head
 * the weights have or only --task's; batch norm is folded into the
 * convolutions; the batch size is dynamic. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "api/model_info.h"
#include "core/status.h"
#include "io/onnx.h"
#include "io/safetensors.h"
#include "nn/arch.h"
#include "nn/net.h"

typedef struct export_args {
  const char *weights, *arch, *onnx;
  int task;
} export_args;

static int export_onnx(const export_args *a, fb_status *st) {
  fb_model_info m;
  static const unsigned tasks[3] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_SEG};
  fb_arch *arch = NULL;
  fb_net *net = NULL;
  int rc = -1;
  if (fb_model_info_read(a->weights, &m, st)) goto done;
  if (m.format && strcmp(m.format, "fbnet-weights-1") != 0) {
    fb_fail(st, "%s: format '%s' (expected fbnet-weights-1; a checkpoint holds optimizer "
            "state too: use weights.safetensors)", a->weights, m.format);
    goto done;
  }
  if (fb_model_info_need_arch(a->weights, a->arch, &m, st)) goto done;
  if (a->task >= 0) {
    if (fb_model_info_need_task(a->weights, &m.b, tasks[a->task], st)) goto done;
    m.b.tasks = tasks[a->task];
  }
  fb_onnx_info info;
  if (!(arch = fb_model_info_arch(a->weights, a->arch, &m, st)) ||
      !(net = fb_net_build(arch, &m.b, 1, st)) || fb_net_plan_inference(net, 1, st) ||
      fb_safetensors_load_into_ex(&net->g.params, a->weights,
                                  a->task < 0 ? FB_ST_REQUIRE_ALL : 0, st) < 0 ||
      fb_onnx_export(net, a->onnx, &info, st))
    goto done;
  printf("%s (%s, %d x %d x %d input) -> %s: %d ONNX nodes, %d batch norms folded, %d outputs, "
         "%.2f MB, opset %d\n", a->weights, net->name, m.b.in_channels, m.b.input_size,
         m.b.input_size, a->onnx, info.n_nodes, info.n_folded, info.n_outputs,
         (double)info.bytes / 1e6, FB_ONNX_OPSET);
  rc = 0;
done:
  fb_net_free(net);
  fb_arch_free(arch);
  fb_model_info_free(&m);
  return rc;
}

int cmd_export(int argc, char **argv) {
  export_args a = {NULL, NULL, NULL, -1};
  const arg_opt opts[] = {
      {"--weights", ARG_STRING, &a.weights, 0, 0, NULL, "weights (.safetensors), required"},
      {"--arch", ARG_STRING, &a.arch, 0, 0, NULL,
       "arch file (JSON); default: the arch stored in the weights (arch_json)"},
      {"--task", ARG_CHOICE, &a.task, 0, 0, "cls|det|seg",
       "only this head (default: every head the weights have)"},
      {"--onnx", ARG_STRING, &a.onnx, 0, 0, NULL, "output ONNX file, required"},
  };
  const arg_spec spec = {
      "fbnet export --weights W [--arch ARCH] [--task cls|det|seg] --onnx OUT.onnx",
      "Writes saved weights as one ONNX file (opset 17, float32, dynamic batch size N) for\n"
      "deployment runtimes: batch norm folded into the convolutions, one input 'input'\n"
      "[N,C,S,S] preprocessed as fbnet's loader does (metadata 'fbnet.preprocess'), outputs\n"
      "cls.logits [N,K]; det.cls|det.box|det.ctr.s<stride> [N,K|4|1,H,W] per level;\n"
      "seg.logits [N,K,S,S]. Metadata also records the arch and label names.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!a.weights || !a.onnx) {
    fprintf(stderr, "fbnet export: --weights and --onnx are required (see --help)\n");
    return 2;
  }
  fb_status st = {0};
  if (export_onnx(&a, &st)) {
    fprintf(stderr, "fbnet export: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}
