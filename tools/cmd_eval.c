/* fbnet eval: top-1/top-5 of saved weights on the Fashion-MNIST test split. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "data/fmnist.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* Build options recorded in the weights file, used where the user gave none. */
static int options_from_weights(const char *path, fb_build_opts *b, fb_status *st) {
  fb_st_file f;
  if (fb_safetensors_read(path, &f, st)) return -1;
  const char *v;
  if ((v = fb_st_meta(&f, "input_size"))) b->input_size = atoi(v);
  if ((v = fb_st_meta(&f, "width"))) b->width = atof(v);
  if ((v = fb_st_meta(&f, "in_channels"))) b->in_channels = atoi(v);
  if ((v = fb_st_meta(&f, "num_classes"))) b->num_classes = atoi(v);
  if ((v = fb_st_meta(&f, "padding"))) b->standard_padding = strcmp(v, "standard") == 0;
  fb_st_file_free(&f);
  return 0;
}

static int run_eval(const char *arch_path, const char *weights, const char *data,
                    fb_build_opts *b, int batch, int limit, int json, fb_status *st) {
  fb_arch *arch = fb_arch_load(arch_path, st);
  if (!arch) return -1;
  fb_net *net = fb_net_build(arch, b, 1, st);
  fb_arch_free(arch);
  if (!net) return -1;
  fb_dataset_u8 test = {0};
  int rc = -1;
  double top1, top5;
  fb_aug_cfg aug = fb_aug_default(b->input_size);
  if (fb_net_plan(net, batch, 1, st) || fb_weights_load(weights, net, st) ||
      fb_fmnist_load(data, 0, &test, st) ||
      fb_eval_cls(net, &test, &aug, limit, &top1, &top5, st))
    goto done;
  int n = limit > 0 && limit < test.n ? limit : test.n;
  if (json)
    printf("{\"task\": \"cls\", \"images\": %d, \"top1\": %.5f, \"top5\": %.5f}\n", n, top1, top5);
  else
    printf("%d test images: top-1 %.2f%%  top-5 %.2f%%\n", n, 100 * top1, 100 * top5);
  rc = 0;
done:
  fb_dataset_u8_free(&test);
  fb_net_free(net);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  int task = 0, json = 0, batch = 100, threads = 0, limit = 0;
  int input = 0, padding = -1;
  double width = 0;
  const char *arch = NULL, *weights = NULL, *data = "fashion-mnist";
  const arg_opt opts[] = {
      {"--task", ARG_CHOICE, &task, 0, 0, "cls", "task"},
      {"--arch", ARG_STRING, &arch, 0, 0, NULL, "arch file (JSON), required"},
      {"--weights", ARG_STRING, &weights, 0, 0, NULL, "weights (.safetensors), required"},
      {"--data", ARG_STRING, &data, 0, 0, NULL, "Fashion-MNIST directory (default: package)"},
      {"--input", ARG_INT, &input, 8, 1024, NULL, "input size (default: from the weights)"},
      {"--width", ARG_DOUBLE, &width, 0.05, 4, NULL, "width multiplier (default: from weights)"},
      {"--padding", ARG_CHOICE, &padding, 0, 0, "explicit|standard",
       "padding mode (default: from the weights)"},
      {"--batch", ARG_INT, &batch, 1, 65536, NULL, "batch size (default 100)"},
      {"--test-limit", ARG_INT, &limit, 1, 100000000, NULL, "first N test images only"},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads"},
      {"--json", ARG_FLAG, &json, 0, 0, NULL, "print one JSON object"},
  };
  const arg_spec spec = {"fbnet eval --task cls --arch ARCH --weights W [options]",
                         "Evaluates saved weights on the test split (top-1, top-5).", opts,
                         (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!arch || !weights) {
    fprintf(stderr, "fbnet eval: --arch and --weights are required (see --help)\n");
    return 2;
  }
  if (threads) omp_set_num_threads(threads);
  fb_status st = {{0}};
  fb_build_opts b = fb_build_opts_default();
  b.in_channels = 1;
  b.num_classes = FB_FMNIST_CLASSES;
  if (options_from_weights(weights, &b, &st)) {
    fprintf(stderr, "fbnet eval: error: %s\n", st.msg);
    return 1;
  }
  if (input) b.input_size = input;
  if (width > 0) b.width = width;
  if (padding >= 0) b.standard_padding = padding == 1;
  if (run_eval(arch, weights, data, &b, batch, limit, json, &st)) {
    fprintf(stderr, "fbnet eval: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}
