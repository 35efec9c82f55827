/* fbnet: the command-line front end. One subcommand per task of the product;
 * each lives in tools/cmd_<name>.c over the library in src/. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dist/dist.h"
#include "fbnet.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"data", cmd_data, "write built-in data sets (data scenes: the demo scenes)"},
    {"train", cmd_train, "train an arch file on a task (cls, det, seg)"},
    {"eval", cmd_eval, "evaluate saved weights (top-1/top-5, COCO AP, mIoU)"},
    {"infer", cmd_infer, "raw head outputs on a raw float32 tensor (runtime comparisons)"},
    {"export", cmd_export, "saved weights as an ONNX file (BN folded, dynamic batch)"},
    {"predict", cmd_predict, "write predictions (COCO results JSON, PNG masks, CSV)"},
    {"label", cmd_label, "pseudo-label an image folder with det/seg teachers (proxy data)"},
    {"search", cmd_search, "FBNetV5 search: one architecture per task in one run"},
    {"derive", cmd_derive, "derived arch files from a search; evaluate them with shared weights"},
    {"report", cmd_report, "one self-contained HTML page of a search run (plots, architectures)"},
    {"flops", cmd_flops, "per-layer shapes, params and multiply-adds of an arch file"},
    {"bench", cmd_bench, "time training/inference/search steps; the machine's floor (bench/README.md)"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f) {
  fprintf(f, "fbnet %s: FBNetV5 multi-task neural architecture search\n\n", FBNET_VERSION);
  fprintf(f, "usage: fbnet COMMAND [options]   (fbnet COMMAND --help for its options)\n\n");
  fprintf(f, "commands:\n");
  for (int i = 0; i < n_commands; i++) fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "  %-8s %s\n", "version", "print the version");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
    printf("fbnet %s (MPI: %s)\n", FBNET_VERSION, fb_dist_available() ? "yes" : "no");
    return 0;
  }
  if (fb_dist_launched_size() > 1 && strcmp(name, "train") != 0 && strcmp(name, "search") != 0) {
    /* every rank would run the whole command and write the same files */
    fprintf(stderr, "fbnet %s: runs in one process; of the commands only 'fbnet train' and "
            "'fbnet search' run data-parallel under mpirun\n", name);
    return 2;
  }
  for (int i = 0; i < n_commands; i++)
    if (strcmp(commands[i].name, name) == 0) return commands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "fbnet: unknown command '%s'\n\n", name);
  usage(stderr);
  return 2;
}
