/* fbnet bench train: times training (or inference) steps of an arch file on
 * random data; bench/compare_torch.sh runs PyTorch on the same settings. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "io/onnx.h"
#include "commands.h"
#include "core/clock.h"
#include "core/rng.h"
#include "nn/net.h"
#include "train/optim.h"
#include "train/step.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void fill_random_batch(fb_net *net, int batch, int classes, fb_rng *rng) {
  float *x = fb_net_input(net);
  size_t n = fb_numel(net->g.nodes[net->input_node].args.out);
  for (size_t i = 0; i < n; i++) x[i] = (float)fb_rng_normal(rng);
  float *y = fb_net_labels(net);
  for (int i = 0; i < batch; i++) y[i] = (float)fb_rng_below(rng, (uint32_t)classes);
}

/* Inference, or the training step every trainer runs (0-based step). */
static int one_step(const fb_stepper *train, int forward_only, long step, fb_status *st) {
  if (forward_only) {
    fb_net_forward(train->net, 0);
    return 0;
  }
  fb_step_result r;
  return fb_train_step(train, step, "a timed step", &r, st);
}

int cmd_bench(int argc, char **argv) {
  if (argc > 0 && strcmp(argv[0], "search") == 0) return bench_search(argc - 1, argv + 1);
  if (argc > 0 && strcmp(argv[0], "floor") == 0) return bench_floor(argc - 1, argv + 1);
  if (argc > 0 && strcmp(argv[0], "tabular") == 0) return bench_tabular(argc - 1, argv + 1);
  if (argc > 0 && strcmp(argv[0], "latency") == 0) return bench_latency(argc - 1, argv + 1);
  const char *what = NULL, *arch_path = NULL, *onnx_path = NULL;
  const char *pos[1];
  int n_pos = 0, input = 224, batch = 32, steps = 10, warmup = 3, threads = 0, forward = 0;
  int padding = 0, profile = 0;
  double peak_gflops = 0, bandwidth_gbs = 0;
  fb_build_opts b = fb_build_opts_default();
  const arg_opt opts[] = {
      {"--arch", ARG_STRING, &arch_path, 0, 0, NULL, "arch file (JSON), required"},
      {"--input", ARG_INT, &input, 8, 2048, NULL, "input resolution (default 224)"},
      {"--batch", ARG_INT, &batch, 1, 4096, NULL, "batch size (default 32)"},
      {"--width", ARG_DOUBLE, &b.width, 0.05, 4, NULL, "width multiplier (default 1.0)"},
      {"--classes", ARG_INT, &b.num_classes, 1, 100000, NULL, "classes (default 1000)"},
      {"--in-channels", ARG_INT, &b.in_channels, 1, 64, NULL, "input channels (default 3)"},
      {"--padding", ARG_CHOICE, &padding, 0, 0, "explicit|standard", "padding mode"},
      {"--steps", ARG_INT, &steps, 1, 100000, NULL, "timed steps (default 10)"},
      {"--warmup", ARG_INT, &warmup, 0, 100000, NULL, "untimed steps first (default 3)"},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads (default: all)"},
      {"--forward", ARG_FLAG, &forward, 0, 0, NULL, "inference only (eval mode)"},
      {"--profile", ARG_FLAG, &profile, 0, 0, NULL,
       "time every node; print the op-family table against the machine's floor"},
      {"--peak-gflops", ARG_DOUBLE, &peak_gflops, 0, 1e6, NULL,
       "fp32 peak for --profile (default: measured, as fbnet bench floor)"},
      {"--bandwidth-gbs", ARG_DOUBLE, &bandwidth_gbs, 0, 1e6, NULL,
       "memory bandwidth for --profile (default: measured)"},
      {"--onnx", ARG_STRING, &onnx_path, 0, 0, NULL,
       "also write the timed network (its random weights) as ONNX (bench/compare_onnx.sh)"},
  };
  const arg_spec spec = {"fbnet bench train --arch ARCH [options]   (also: fbnet bench search|floor|tabular|latency --help)",
                         "Times training steps (forward, loss, backward, SGD step) on random "
                         "data; prints a JSON line\nwith sec_per_step last. 'fbnet bench search' "
                         "times search steps with 1, 2, 3 tasks;\n'fbnet bench floor' measures "
                         "the machine's fp32 peak and memory bandwidth.",
                         opts, (int)(sizeof opts / sizeof opts[0]), pos, 1, &n_pos};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  what = n_pos ? pos[0] : NULL;
  if (!what || strcmp(what, "train") != 0) {
    fprintf(stderr, "fbnet bench: expected 'fbnet bench train --arch ARCH ...', 'fbnet bench "
            "search ...' or 'fbnet bench floor ...' (see --help of each)\n");
    return 2;
  }
  if (!arch_path) {
    fprintf(stderr, "fbnet bench: --arch is required\n");
    return 2;
  }
  if (threads) omp_set_num_threads(threads);
  b.input_size = input;
  b.standard_padding = padding == 1;
  fb_status st = {0};
  fb_arch *arch = fb_arch_load(arch_path, &st);
  fb_net *net = arch ? fb_net_build(arch, &b, 1, &st) : NULL;
  fb_arch_free(arch);
  if (!net || (forward ? fb_net_plan_inference(net, batch, &st) : fb_net_plan(net, batch, 1, &st))) {
    fprintf(stderr, "fbnet bench: error: %s\n", st.msg);
    fb_net_free(net);
    return 1;
  }
  fb_rng rng;
  fb_rng_seed(&rng, 7);
  fill_random_batch(net, batch, b.num_classes, &rng);
  fb_optim_cfg o = fb_optim_sgd_default();
  o.lr = 1e-3f;
  const fb_schedule constant = {.base_lr = o.lr, .final_frac = 1};
  fb_loss_guard guard;
  fb_loss_guard_init(&guard, 0); /* random data: only a non-finite loss stops it */
  const fb_stepper train = {.net = net, .optim = &o, .sched = &constant, .out_dir = "(bench)",
                            .n_guards = 1, .guard = &guard};
  int failed = 0;
  for (int i = 0; i < warmup && !failed; i++) failed = one_step(&train, forward, i, &st);
  if (profile) fb_graph_profile(&net->g, 1); /* the timed steps only */
  double *dt = malloc((size_t)steps * sizeof *dt), total = 0;
  for (int i = 0; i < steps && !failed; i++) {
    double t = fb_now_sec();
    failed = one_step(&train, forward, warmup + i, &st);
    dt[i] = fb_now_sec() - t;
    total += dt[i];
  }
  if (failed) {
    fprintf(stderr, "fbnet bench: error: %s\n", st.msg);
    free(dt);
    fb_net_free(net);
    return 1;
  }
  /* the median, like bench/torch_bench.py: robust to a stray busy step */
  qsort(dt, (size_t)steps, sizeof *dt, cmp_double);
  double median = steps % 2 ? dt[steps / 2] : 0.5 * (dt[steps / 2 - 1] + dt[steps / 2]);
  double mean = total / steps, best = dt[0];
  free(dt);
  if (profile && bench_floor_profile(net, steps, mean, peak_gflops, bandwidth_gbs, forward, 1)) {
    fb_net_free(net);
    return 1;
  }
  fprintf(stderr, "fbnet bench: %s input %d batch %d width %.2f %s: %.4f s/step median, %.4f "
          "mean, %.4f best, %d threads\n", net->name, input, batch, b.width,
          forward ? "forward" : "train", median, mean, best, omp_get_max_threads());
  if (onnx_path && fb_onnx_export(net, onnx_path, NULL, &st)) {
    fprintf(stderr, "fbnet bench: error: %s\n", st.msg);
    fb_net_free(net);
    return 1;
  }
  printf("{\"sec_per_step\": %.6f, \"mean_sec_per_step\": %.6f, \"best_sec_per_step\": %.6f, "
         "\"images_per_sec\": %.2f, \"threads\": %d}\n", median, mean, best, batch / median,
         omp_get_max_threads());
  fb_net_free(net);
  return 0;
}
