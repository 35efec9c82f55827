/* fbnet data: built-in data sets. `fbnet data scenes --out DIR` writes the
 * demo scenes of docs/method.md section 7 (src/data/scenes.c, docs/demo-data.md). */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "term_log.h"
#include "data/scenes.h"
#include "fbnet.h"

static int cmd_data_scenes(int argc, char **argv) {
  fb_scenes_config cfg = {0};
  cfg.scene = fb_scene_opts_default();
  cfg.n_train = 2000;
  cfg.n_val = 500;
  cfg.n_proxy = 2000;
  cfg.progress = 1;
  const char *out = NULL, *data = NULL;
  int seed = 1, threads = 0, quiet = 0, force = 0;
  const arg_opt opts[] = {
      {"--out", ARG_STRING, &out, 0, 0, NULL, "output directory (required; created if missing)"},
      {"--size", ARG_INT, &cfg.scene.size, FB_SCENE_MIN_SIZE, FB_SCENE_MAX_SIZE, NULL,
       "canvas side in px (default 64)"},
      {"--seed", ARG_INT, &seed, 0, 2147483647, NULL, "random seed (default 1)"},
      {"--train", ARG_INT, &cfg.n_train, 0, 10000000, NULL,
       "train scenes of each of cls, det, seg (default 2000)"},
      {"--val", ARG_INT, &cfg.n_val, 0, 10000000, NULL,
       "val scenes of each of cls, det, seg (default 500)"},
      {"--proxy", ARG_INT, &cfg.n_proxy, 0, 10000000, NULL,
       "proxy scenes with class labels only (default 2000)"},
      {"--min-items", ARG_INT, &cfg.scene.min_items, 1, FB_SCENE_MAX_ITEMS, NULL,
       "fewest items per scene (default 1)"},
      {"--max-items", ARG_INT, &cfg.scene.max_items, 1, FB_SCENE_MAX_ITEMS, NULL,
       "most items per scene (default 4)"},
      {"--min-scale", ARG_DOUBLE, &cfg.scene.min_scale, 0.01, 1, NULL,
       "smallest item side as a fraction of the canvas (default 0.25)"},
      {"--max-scale", ARG_DOUBLE, &cfg.scene.max_scale, 0.01, 1, NULL,
       "largest item side as a fraction of the canvas (default 0.625)"},
      {"--data", ARG_STRING, &data, 0, 0, NULL,
       "Fashion-MNIST directory (default " FB_FMNIST_DEFAULT_DIR ")"},
      {"--threads", ARG_INT, &threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--force", ARG_FLAG, &force, 0, 0, NULL,
       "write into an existing non-empty directory (old files are not removed)"},
      {"--quiet", ARG_FLAG, &quiet, 0, 0, NULL, "no progress lines"},
  };
  const arg_spec spec = {
      .usage = "fbnet data scenes --out DIR [options]",
      .summary =
          "Writes the built-in demo data: RGB scenes of 1-4 tinted Fashion-MNIST items on a\n"
          "dark background, as a classification set (image folders), a detection set (COCO\n"
          "JSON), a segmentation set (PNG masks, 0 = background, c+1 = class c, 255 =\n"
          "ignore) and a proxy set with class labels only. Train scenes use Fashion-MNIST\n"
          "train items, val scenes t10k items. The same seed gives byte-identical files\n"
          "whatever the thread count. See docs/demo-data.md.",
      .opts = opts,
      .n_opts = (int)(sizeof opts / sizeof opts[0]),
  };
  int rc = args_parse(&spec, argc, argv);
  if (rc == 1) return 0;
  if (rc != 0) return 2;
  if (!out || !out[0]) {
    fprintf(stderr, "%s: --out is required (see --help)\n", spec.usage);
    return 2;
  }
  if (cfg.scene.min_items > cfg.scene.max_items) {
    fprintf(stderr, "%s: --min-items (%d) is larger than --max-items (%d)\n", spec.usage,
            cfg.scene.min_items, cfg.scene.max_items);
    return 2;
  }
  if (cfg.scene.min_scale > cfg.scene.max_scale) {
    fprintf(stderr, "%s: --min-scale (%g) is larger than --max-scale (%g)\n", spec.usage,
            cfg.scene.min_scale, cfg.scene.max_scale);
    return 2;
  }
  if (threads) omp_set_num_threads(threads);
  cfg.out_dir = out;
  cfg.fmnist_dir = data;
  cfg.seed = (uint64_t)seed;
  cfg.progress = !quiet;
  cfg.log = tool_logger();
  cfg.force = force;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fb_status st = {0};
  if (fb_scenes_write(&cfg, &st) != 0) {
    fprintf(stderr, "fbnet data scenes: %s\n", st.msg);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!quiet)
    fprintf(stderr, "fbnet data scenes: wrote %s in %.2f s (see %s/README.txt)\n", out,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), out);
  return 0;
}

int cmd_data(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    FILE *f = argc < 1 ? stderr : stdout;
    fprintf(f, "usage: fbnet data SUBCOMMAND [options]\n\nsubcommands:\n"
               "  scenes   write the built-in demo scenes (fbnet data scenes --help)\n");
    return argc < 1 ? 2 : 0;
  }
  if (strcmp(argv[0], "scenes") == 0) return cmd_data_scenes(argc - 1, argv + 1);
  fprintf(stderr, "fbnet data: unknown subcommand '%s' (known: scenes)\n", argv[0]);
  return 2;
}
