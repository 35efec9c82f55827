/* The search report (fbnet report, docs/search.md): what a search run did,
 * read from its directory (src/search/search.h lists the files) and written
 * as one self-contained HTML page with inline SVG plots (report/svg.h):
 * every task's bit probabilities over the steps, its derived architecture
 * drawn on the multi-path supernet, the blocks every task keeps, losses,
 * rewards, importance weights and MACs over the steps, and, with the output
 * of scripts/search_quality.sh, metric against MACs of the searched, random
 * and baseline networks.
 *
 * A run still in progress is fine: a last log line without its newline is
 * ignored, and files not written yet are shown as "not yet written". */
#ifndef FB_REPORT_REPORT_H
#define FB_REPORT_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "fbnet.h"

#define FB_REPORT_MAX_TASKS 3

/* The per-task numbers of a log line, in this order under these keys. */
enum { FB_LOG_LOSS, FB_LOG_RHO, FB_LOG_PENALTY, FB_LOG_MACS, FB_LOG_BASELINE, FB_LOG_LATENCY,
       FB_LOG_N_KEYS }; /* latency_ms: runs with --latency-table (NaN otherwise) */
extern const char *const fb_log_keys[FB_LOG_N_KEYS];

/* RUN/search.jsonl: one entry per complete line. Tasks and bits come from
 * the first line's "probs"; every later line must have the same. Values a
 * line lacks are NAN. */
typedef struct fb_run_log {
  int n_tasks, n_bits;
  char task[FB_REPORT_MAX_TASKS][8];
  int n_steps, cap;
  double *step, *lr;                                /* n_steps */
  double *val[FB_LOG_N_KEYS][FB_REPORT_MAX_TASKS]; /* n_steps each */
  float *probs;      /* n_steps x n_tasks x n_bits */
  int partial_line;  /* 1: the last line had no newline and did not parse (ignored) */
} fb_run_log;

/* 1 when s can name a task: 1 to 7 letters, digits or '_' (safe in HTML). */
int fb_report_name_ok(const char *s);

/* Reads path; -1 with "PATH: cannot open (...)" or "PATH:LINE: ..." when a
 * complete line is not a log entry. */
int fb_run_log_read(const char *path, fb_run_log *log, fb_status *st);
void fb_run_log_free(fb_run_log *log);

/* Element states in a drawing of the supernet (report/archdraw.c). */
enum { FB_ELEM_KEPT, FB_ELEM_SKIPPED, FB_ELEM_DROPPED, FB_ELEM_SOME };

/* One task of the run: its derived architecture when written. */
typedef struct fb_report_task {
  char name[8];
  unsigned task;        /* FB_TASK_* */
  char arch_src[64];    /* where mask came from ("det.json"); "" : not yet written */
  uint8_t *mask;        /* n_bits, when arch_src[0] */
  uint8_t *state;       /* n_elems FB_ELEM_*, when the supernet is known too */
  double *probs;        /* n_bits final p(keep): derived file, summary or last log line */
  int has_summary;      /* summary.json's numbers below */
  double macs, params;
  int bits_kept, bits_decided;
  double lat_pred_ms, lat_meas_ms, lat_target_ms; /* summary "latency" (NaN: none) */
} fb_report_task;

struct fb_net;
typedef struct fb_report_run {
  char dir[512];
  fb_run_log log;
  int has_summary;
  int steps;            /* summary.json */
  double threshold;
  char supernet_name[512]; /* from summary.json or a derived file; "" when unknown */
  int input_size;          /* the search's input size and width (derived files) */
  double width;
  struct fb_net *supernet; /* built (not planned) when known: the elements to draw */
  char supernet_note[1100]; /* why it is missing */
  int n_tasks, n_bits;
  fb_report_task task[FB_REPORT_MAX_TASKS];
} fb_report_run;

/* Reads RUN_DIR: the log (required), summary.json and RUN/<task>.json
 * when they exist; -1 with a message naming the file at fault. */
int fb_report_run_read(const char *dir, fb_report_run *r, fb_status *st);
void fb_report_run_free(fb_report_run *r);

/* One task of scripts/search_quality.sh's output: retrained metric against
 * deployed MACs (millions). */
#define FB_QUALITY_MAX_POINTS 256
typedef struct fb_quality_set {
  int n;
  double macs[FB_QUALITY_MAX_POINTS], metric[FB_QUALITY_MAX_POINTS];
} fb_quality_set;
enum { FB_Q_SEARCHED, FB_Q_SINGLE, FB_Q_BASELINE, FB_Q_RANDOM, FB_Q_N_SETS };
typedef struct fb_quality_task {
  char name[8], metric[16];
  fb_quality_set set[FB_Q_N_SETS];
} fb_quality_task;
typedef struct fb_quality {
  int n_tasks;
  fb_quality_task task[FB_REPORT_MAX_TASKS];
  char note[512]; /* what could not be placed ("" when none) */
} fb_quality;

/* Reads QDIR/search_quality.json and QDIR/<task>_random.jsonl; -1 with a
 * message naming the file when missing or malformed. */
int fb_quality_read(const char *qdir, fb_quality *q, fb_status *st);

/* Writes the page for run r (and q when non-NULL) to out. */
int fb_report_write_html(const fb_report_run *r, const fb_quality *q, const char *out,
                         fb_status *st);

/* Draws the supernet of r (r->supernet non-NULL) with one state per
 * element (FB_ELEM_*) as <svg class="plot" data-plot="ID">; each element's
 * tooltip gives every task's p(keep); head_task (FB_TASK_*, 0: none) marks
 * the paths that task's head reads. */
void fb_report_draw_arch(FILE *f, const fb_report_run *r, const char *id, const char *title,
                         const uint8_t *state, unsigned head_task);

#endif
