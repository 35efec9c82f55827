/* fbnet flops: build an arch file and print its per-layer table (or JSON)
 * with multiply-adds and parameters under the published convention. */
#include <stdio.h>

#include "args.h"
#include "commands.h"
#include "fbnet.h"
#include "nn/flops.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"

int cmd_flops(int argc, char **argv) {
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 0; /* default: the arch file's input_size */
  o.num_classes = 10; /* as fbnet train on the demo data and Fashion-MNIST */
  o.num_cats = 10;
  o.num_seg_classes = 11;
  int padding = 1;  /* index into "standard|explicit" */
  int json = 0, task = -1;
  const char *positional[1] = {NULL};
  int n_positional = 0;
  const arg_opt opts[] = {
      {"--input", ARG_INT, &o.input_size, 1, 16384, NULL,
       "square input size in px (default: the arch's input_size)"},
      {"--classes", ARG_INT, &o.num_classes, 1, 1000000, NULL, "classifier outputs (default 10, as train; 1000 for the published ImageNet counts)"},
      {"--width", ARG_DOUBLE, &o.width, 0.01, 16, NULL,
       "width multiplier; channels rounded with div8 (default 1.0)"},
      {"--in-channels", ARG_INT, &o.in_channels, 1, 4096, NULL, "input channels (default 3)"},
      {"--padding", ARG_CHOICE, &padding, 0, 0, "standard|explicit",
       "depthwise padding: k/2 everywhere, or the arch's dw_pad (default explicit)"},
      {"--task", ARG_CHOICE, &task, 0, 0, "cls|det|seg|all",
       "which head to count with the trunk (default cls; all: every head, multi-path only)"},
      {"--cats", ARG_INT, &o.num_cats, 1, 100000, NULL, "detection categories (default 10)"},
      {"--seg-classes", ARG_INT, &o.num_seg_classes, 1, 255, NULL,
       "segmentation classes (default 11)"},
      {"--json", ARG_FLAG, &json, 0, 0, NULL, "print one JSON object instead of the table"},
  };
  const arg_spec spec = {
      .usage = "fbnet flops ARCH.json [options]",
      .summary =
          "Builds the network of an arch file and prints one row per layer (output shape,\n"
          "params, multiply-adds at batch 1) and the totals: MACs of conv/linear layers\n"
          "plus global-pool inputs, params = conv/linear weights (the published\n"
          "convention), and all trainable params (incl. biases and BN).\n"
          "For a multi-path arch (the supernet, derived archs) it prints instead the\n"
          "cost of each task's network with every bit kept, and every searchable bit\n"
          "(block or cross-path term) with its multiply-adds.",
      .opts = opts,
      .n_opts = (int)(sizeof opts / sizeof opts[0]),
      .positional = positional,
      .max_positional = 1,
      .n_positional = &n_positional,
  };
  int rc = args_parse(&spec, argc, argv);
  if (rc == 1) return 0;
  if (rc != 0) return 2;
  if (n_positional != 1) {
    fprintf(stderr, "%s: missing the arch file (see --help)\n", spec.usage);
    return 2;
  }
  o.standard_padding = padding == 0;
  static const unsigned tasks[4] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_SEG,
                                    FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG};
  o.tasks = task >= 0 ? tasks[task] : FB_TASK_CLS;
  fb_status st = {0};
  fb_arch *arch = fb_arch_load(positional[0], &st);
  if (!arch) {
    fprintf(stderr, "fbnet flops: %s\n", st.msg);
    return 1;
  }
  if (task < 0 && arch->mp) o.tasks = tasks[3]; /* a supernet: every head */
  fb_net *net = fb_net_build(arch, &o, 1, &st);
  fb_arch_free(arch);
  if (!net) {
    fprintf(stderr, "fbnet flops: %s\n", st.msg);
    return 1;
  }
  rc = 0;
  if (net->mp) {
    if (fb_flops_print_bits(stdout, net, json, &st)) {
      fprintf(stderr, "fbnet flops: %s\n", st.msg);
      rc = 1;
    }
  } else if (json) {
    if (fb_flops_print_json(stdout, net, &st) != 0) {
      fprintf(stderr, "fbnet flops: %s\n", st.msg);
      rc = 1;
    }
  } else {
    fb_flops_print_table(stdout, net);
  }
  fb_net_free(net);
  return rc;
}
