/* Declarative command-line options shared by every subcommand: a table of
 * options, one parser, one usage printer. Unknown options, missing values and
 * out-of-range numbers are errors that name the option. */
#ifndef FB_TOOLS_ARGS_H
#define FB_TOOLS_ARGS_H

#include <stdio.h>

typedef enum { ARG_INT, ARG_DOUBLE, ARG_STRING, ARG_FLAG, ARG_CHOICE } arg_kind;

typedef struct arg_opt {
  const char *name;   /* "--epochs" */
  arg_kind kind;
  void *dst;          /* int*, double*, const char**, int* (flag), int* (choice index) */
  double min, max;    /* for ARG_INT / ARG_DOUBLE */
  const char *choices; /* ARG_CHOICE: "a|b|c" */
  const char *help;
} arg_opt;

typedef struct arg_spec {
  const char *usage;   /* "fbnet train [options]" */
  const char *summary; /* one paragraph */
  const arg_opt *opts;
  int n_opts;
  const char **positional; /* receives positionals, may be NULL */
  int max_positional;
  int *n_positional;
} arg_spec;

/* Returns 0 on success, 1 when --help was printed, -1 on error (message
 * already printed to stderr). */
int args_parse(const arg_spec *spec, int argc, char **argv);
void args_usage(const arg_spec *spec, FILE *f);

/* A failed command's error on stderr ("fbnet CMD: error: ..."), named by rank
 * in a data-parallel run, which it then ends (the other ranks would wait for
 * this one forever). */
struct fb_dist;
struct fb_status;
void tool_error(const char *cmd, const struct fb_dist *d, const struct fb_status *st);
/* Rank 0 of a data-parallel run: one stderr line on the gradient allreduce
 * (ranks, bytes and milliseconds per step). Nothing for one process. */
void tool_dist_summary(const char *cmd, const struct fb_dist *d);

#endif
