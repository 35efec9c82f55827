/* Subcommands of the fbnet CLI, one per file tools/cmd_<name>.c. Each gets
 * the arguments that follow the subcommand name (argv[0] is the first of
 * them, as tools/fbnet.c passes argc - 2, argv + 2) and returns the process
 * exit code: 0 success, 1 failure, 2 usage error. */
#ifndef FB_TOOLS_COMMANDS_H
#define FB_TOOLS_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* fbnet flops ARCH [--input N] [--classes N] [--width F] [--in-channels N]
 *                  [--padding standard|explicit] [--json] */
int cmd_flops(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv); /* fbnet data scenes --out DIR [options] */
int cmd_predict(int argc, char **argv);

#endif
