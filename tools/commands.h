/* Subcommands of the fbnet CLI, one per file tools/cmd_<name>.c. Each gets
 * the arguments that follow the subcommand name (argv[0] is the first of
 * them, as tools/fbnet.c passes argc - 2, argv + 2) and returns the process
 * exit code: 0 success, 1 failure, 2 usage error. */
#ifndef FB_TOOLS_COMMANDS_H
#define FB_TOOLS_COMMANDS_H

#include "fbnet.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* fbnet flops ARCH [--input N] [--classes N] [--width F] [--in-channels N]
 *                  [--padding standard|explicit] [--json] */
int cmd_flops(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_search(int argc, char **argv); /* fbnet bench search (tools/cmd_bench_search.c) */
/* fbnet bench tabular (tools/cmd_bench_tabular.c): the estimator on a tabular NAS benchmark */
int bench_tabular(int argc, char **argv);
/* fbnet bench latency (tools/cmd_bench_latency.c): a latency table and its check */
int bench_latency(int argc, char **argv);
/* fbnet bench floor (tools/cmd_bench_floor.c): fp32 sgemm peak, memory bandwidth */
int bench_floor(int argc, char **argv);
/* fbnet bench train --profile: the op-family table (src/nn/profile.h) of a net
 * profiled over `steps` steps of mean step_sec; peak_gflops/bandwidth_gbs <= 0
 * are measured first; forward: inference-only steps (no backward floor); json
 * also prints the table as a JSON line on stdout.
 * Returns 0 or 1 (message printed). */
int bench_floor_profile(const fb_net *net, int steps, double step_sec, double peak_gflops,
                        double bandwidth_gbs, int forward, int json);
int cmd_data(int argc, char **argv); /* fbnet data scenes --out DIR [options] */
int cmd_predict(int argc, char **argv);
/* fbnet infer --weights W --input X.f32 --out DIR: raw head outputs (tools/cmd_infer.c) */
int cmd_infer(int argc, char **argv);
/* fbnet export --weights W --onnx OUT.onnx: ONNX for deployment (tools/cmd_export.c) */
int cmd_export(int argc, char **argv);
/* fbnet label --det-teacher W --seg-teacher W --images DIR --out OUT [options]:
 * the proxy multi-task data set (docs/method.md section 5, docs/proxy-data.md) */
int cmd_label(int argc, char **argv);
/* fbnet search --data PROXY_DIR --tasks cls,det,seg --out RUN_DIR (src/search/search.h) */
int cmd_search(int argc, char **argv);
/* fbnet derive --run RUN_DIR --task T: derived arch files, BN re-calibration */
int cmd_derive(int argc, char **argv);
/* fbnet report RUN_DIR [--quality QDIR] [--out FILE.html]: one HTML page of a
 * search run (src/report/report.h) */
int cmd_report(int argc, char **argv);
/* "cls,det,seg" -> FB_TASK_* bits, 0 (message printed) when malformed */
unsigned parse_task_list(const char *s, const char *cmd);

#endif
