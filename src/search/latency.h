/* Latency tables: what each searchable element of a supernet costs in time
 * in fbnet's own inference runtime, measured on this machine, per task and
 * thread count (docs/latency.md).
 *
 * How a table is measured. For each task, S architectures are drawn at random
 * (each with its own keep probability, so that every cost is sampled, plus
 * the all-dropped and all-kept ones); each is derived for the task, built as
 * the deployed network (the arch file `fbnet derive` writes, the full head,
 * batch 1) and timed: the median of `reps` forward passes after `warmup`.
 * Then the latency is fitted as
 *
 *   latency(a) = fixed + sum over the elements e the task keeps in a of t_e
 *
 * by least squares over the S measured networks. A fixed reference network
 * is timed in short alternating rounds with each one and each time taken as
 * (network / reference, the median over rounds) x the reference's median
 * time: the machine's speed drifts (by 20% within minutes on a shared VM),
 * the ratio does not. t_e is the time the whole
 * network gains when element e is in it: the element's own nodes plus what
 * it brings around them (one more input to a fusion sum, the executor's
 * per-node dispatch, cache effects of its tensors), which a sum of per-node
 * timings would miss. `fixed` is the head and the elements no architecture
 * can drop. Each coefficient carries its standard error, the fit its
 * residual error; `fb_lat_check` measures networks the fit never saw.
 *
 * A table is made for one supernet (hash of its arch text and its element
 * names), input size, width, head sizes and batch; fb_lat_compat names what
 * differs. */
#ifndef FB_SEARCH_LATENCY_H
#define FB_SEARCH_LATENCY_H

#include <stdint.h>

#include "fbnet.h"

struct fb_net;

#define FB_LAT_MAX_THREADS 8
#define FB_LAT_MAX_TASKS 3

typedef struct fb_lat_task {
  unsigned task;       /* FB_TASK_* */
  double fixed_ms;
  double *elem_ms;     /* per element of the supernet (0 where the task never keeps it) */
  double *elem_se;     /* standard error of each (0: not fitted) */
  uint8_t *fitted;     /* 1: the element varied in the samples and was fitted */
  double rmse_ms;      /* residual error of the fit over its samples */
  double mape;         /* mean |predicted - measured| / measured over the fit's samples (%) */
  double min_ms, max_ms; /* the fastest and slowest measured network */
  double reference_ms;   /* the reference network's median time while the table was made:
                          * every time in the table is at that machine speed */
} fb_lat_task;

typedef struct fb_lat_entry {
  int threads;
  int n_tasks;
  fb_lat_task task[FB_LAT_MAX_TASKS];
} fb_lat_entry;

typedef struct fb_lat_table {
  char *supernet;      /* its name (arch file "name") */
  uint64_t hash;       /* FNV-1a of the supernet's arch text */
  int n_elems;
  char **elem_names;
  int input_size, batch;
  double width;
  int num_classes, num_cats, num_seg_classes;
  char *cpu, *build;   /* the machine and the build it was measured with */
  int cores;
  int samples, warmup, reps;
  int n_entries;
  fb_lat_entry entry[FB_LAT_MAX_THREADS];
} fb_lat_table;

typedef struct fb_lat_cfg {
  const char *supernet_path; /* its arch file (or builtin:NAME) */
  fb_build_opts deploy;      /* input size, width, head sizes of the deployed networks */
  unsigned tasks;            /* FB_TASK_* */
  int threads[FB_LAT_MAX_THREADS];
  int n_threads;
  int samples;               /* networks measured per task */
  int warmup, reps;
  uint64_t seed;
  /* progress (may be NULL): frac done and a line of text */
  void (*progress)(void *ctx, double frac, const char *text);
  void *ctx;
} fb_lat_cfg;

uint64_t fb_lat_text_hash(const char *text);

/* The machine: CPU model, cores, and the build (compiler, oneDNN, ISA). */
void fb_lat_machine(char *cpu, size_t ncpu, char *build, size_t nbuild, int *cores);

/* Measures and fits a table (see the top of this file). */
int fb_lat_build(const fb_lat_cfg *c, fb_lat_table *out, fb_status *st);
void fb_lat_free(fb_lat_table *t);
/* The fit alone: kept (S x E, row s: which elements sample s keeps) and the
 * measured y (S, ms) into lt (its arrays allocated; free with the table, or
 * fb_lat_task_free). */
int fb_lat_fit(const uint8_t *kept, const double *y, int S, int E, unsigned task,
               fb_lat_task *lt, fb_status *st);
void fb_lat_task_free(fb_lat_task *lt);

/* JSON text of a table (malloc'd); reading validates every field and names
 * the file and the field in errors. */
char *fb_lat_to_json(const fb_lat_table *t);
int fb_lat_read(const char *path, fb_lat_table *t, fb_status *st);

/* Whether table t fits a search or check: supernet (text hash, element names
 * of net), input size, width, the head sizes of o's tasks (o->tasks), and a thread count the table
 * has (threads 0: the table must have exactly one); net is the supernet (its
 * arch_text is hashed). Returns the entry, or NULL
 * with a message naming what differs; with force, differences other than a
 * missing thread count or other elements are warnings (written to warn, may be
 * NULL) and the entry is returned. */
const fb_lat_entry *fb_lat_compat(const fb_lat_table *t, const char *path,
                                  const struct fb_net *net,
                                  const fb_build_opts *o, int threads, int force, char *warn,
                                  size_t nwarn, fb_status *st);
const fb_lat_task *fb_lat_entry_task(const fb_lat_entry *e, unsigned task);

/* Predicted latency (ms) of the network task derives from net under mask
 * (net: the supernet, built with the task's head); allocation-free. */
double fb_lat_predict(const fb_lat_task *lt, const struct fb_net *net, const uint8_t *mask,
                      unsigned task);
/* The lowest latency any mask reaches (every bit dropped, and every bit whose
 * fitted time is negative kept). */
double fb_lat_min(const fb_lat_task *lt, const struct fb_net *net, unsigned task);

/* Measured latency of an arch file's text deployed for task with options o
 * (batch 1) on `threads` pinned threads: median and spread ((p90 - p10) /
 * median) of reps forward passes after warmup. */
int fb_lat_measure_arch(const char *arch_text, const fb_build_opts *o, unsigned task, int threads,
                        int warmup, int reps, double *median_ms, double *spread, fb_status *st);

/* The same against the table's reference network (see the top): *table_ms
 * is the latency at the machine speed the table was made at (what its
 * predictions compare with), *raw_ms as measured now. sup: the supernet at
 * the deployed options with the task's head. */
int fb_lat_measure_vs_table(const fb_lat_task *lt, const struct fb_net *sup, const char *arch_text,
                            const fb_build_opts *o, unsigned task, int threads, int reps,
                            double *table_ms, double *raw_ms, fb_status *st);

/* The check: n fresh random derived networks per task of the table, each
 * measured at every thread count of the table and predicted from it. */
typedef struct fb_lat_check_row {
  int threads;
  unsigned task;
  int n;
  double spearman, mape, max_ape; /* against times at the table's machine speed (%) */
  double raw_spearman, raw_mape;  /* against the times as measured now */
  double speed;                   /* the machine now / when the table was made (reference) */
} fb_lat_check_row;
int fb_lat_check(const fb_lat_table *t, const fb_lat_cfg *c, int n, fb_lat_check_row *rows,
                 int *n_rows, fb_status *st);

/* Spearman rank correlation of x and y (average ranks for ties). */
double fb_spearman(const double *x, const double *y, int n);

#endif
