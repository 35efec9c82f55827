/* The report page (report/report.h): sections in the order a reader asks
 * about a search (what was derived, how the distributions moved, what the
 * architectures are, what the training signals did, MACs, quality), each
 * plot an inline <svg class="plot" data-plot="ID"> (report/svg.h). A short
 * inline script counts every plot's marks into data-marks and a summary
 * (for checks in a headless browser); the page needs nothing else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/status.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "report/report.h"
#include "report/svg.h"

#define HEAT_MAX_COLS 150

static const char *page_style =
    "body{font-family:sans-serif;margin:24px;max-width:1250px;color:#222}"
    "h2{border-bottom:1px solid #ccc;margin-top:36px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right;font-size:13px}"
    "th{background:#f2f2f2}td.l,th.l{text-align:left}.missing{color:#a00;font-style:italic}"
    "svg.plot{display:inline-block;vertical-align:top;margin:10px 12px 10px 0}.note{color:#555;font-size:13px}"
    "td.kept{background:#d9f0d3}td.skipped{background:#fff}td.dropped{background:#e5e5e5}";

static const char *page_script =
    "(function(){var out=[];document.querySelectorAll('svg.plot').forEach(function(s){"
    "var n=s.querySelectorAll('.mark').length;s.setAttribute('data-marks',String(n));"
    "out.push(s.getAttribute('data-plot')+' '+n);});"
    "document.getElementById('mark-summary').textContent=out.join('\\n');})();";

static void missing(FILE *f, const char *id, const char *what) {
  fprintf(f, "<p class=\"missing\" data-missing=\"%s\">", id);
  fb_html_escape(f, what);
  fprintf(f, ": not yet written</p>\n");
}

/* ---- bit probabilities ----------------------------------------------------- */

/* Task t's probabilities binned into at most HEAT_MAX_COLS columns of equal
 * step counts: v[bit * cols + c] (bin means), x[c] the bin's last step. */
static int heat_bins(const fb_run_log *l, int t, float **v_out, double **x_out) {
  const int n = l->n_steps, B = l->n_bits, cols = n < HEAT_MAX_COLS ? n : HEAT_MAX_COLS;
  float *v = fb_xcalloc((size_t)B * cols + 1, sizeof *v);
  double *x = fb_xcalloc((size_t)cols + 1, sizeof *x);
  for (int c = 0; c < cols; c++) {
    const int i0 = (int)((long)c * n / cols), i1 = (int)((long)(c + 1) * n / cols);
    for (int i = i0; i < i1; i++) {
      const float *p = l->probs + ((size_t)i * l->n_tasks + t) * B;
      for (int b = 0; b < B; b++) v[(size_t)b * cols + c] += p[b] / (float)(i1 - i0);
    }
    x[c] = l->step[i1 - 1];
  }
  *v_out = v, *x_out = x;
  return cols;
}

static void probs_section(FILE *f, const fb_report_run *r) {
  fprintf(f, "<h2 id=\"probs\">Keep probability of every bit over the steps</h2>\n"
          "<p class=\"note\">Rows: the %d searchable bits (supernet elements in build order), "
          "columns: steps (binned to at most %d columns, bin means); colour: p(keep).</p>\n",
          r->n_bits, HEAT_MAX_COLS);
  const char **labels = NULL;
  if (r->supernet) {
    const fb_mp_net *m = r->supernet->mp;
    labels = fb_xmalloc((size_t)m->n_bits * sizeof *labels);
    for (int b = 0; b < m->n_bits; b++) labels[b] = m->elems[m->bit_elem[b]].name;
  }
  for (int t = 0; t < r->n_tasks; t++) {
    char id[32], title[96];
    snprintf(id, sizeof id, "probs-%s", r->task[t].name);
    if (r->log.n_steps == 0) {
      missing(f, id, "log lines");
      continue;
    }
    snprintf(title, sizeof title, "%s: p(keep) per bit", r->task[t].name);
    float *v;
    double *x;
    const int cols = heat_bins(&r->log, t, &v, &x);
    const fb_svg_heat h = {.v = v, .rows = r->n_bits, .cols = cols, .x = x, .row_labels = labels};
    const fb_svg_plot p = {.id = id, .title = title, .xlabel = "step", .width = 1000};
    fb_svg_heatmap(f, &p, &h);
    free(v);
    free(x);
  }
  free(labels);
}

/* ---- architectures --------------------------------------------------------- */

static void arch_section(FILE *f, const fb_report_run *r) {
  fprintf(f, "<h2 id=\"arch\">Derived architectures on the supernet</h2>\n<p class=\"note\">"
          "Supernet ");
  fb_html_escape(f, r->supernet_name[0] ? r->supernet_name : "unknown");
  fprintf(f, ". Rows are paths (path 0: the highest resolution; each "
          "path below runs at half the resolution of the one above), stages go left to right: "
          "the block that opens a path (round box), the block copies of every path, then the "
          "stage's fusion terms T(from&rarr;to) as slanted strokes. Hover for the bit's name "
          "and each task's p(keep).</p>\n");
  for (int t = 0; t < r->n_tasks; t++) {
    const fb_report_task *k = &r->task[t];
    char id[32], title[160];
    snprintf(id, sizeof id, "arch-%s", k->name);
    if (!k->arch_src[0]) {
      missing(f, id, "derived architecture (RUN/<task>.json)");
    } else if (!k->state) {
      fprintf(f, "<p class=\"missing\" data-missing=\"%s\">%s: the supernet ", id, k->name);
      fb_html_escape(f, r->supernet_note[0] ? r->supernet_note : "has no head for this task");
      fprintf(f, "</p>\n");
    } else {
      snprintf(title, sizeof title, "%s: derived architecture (from %s)", k->name, k->arch_src);
      fb_report_draw_arch(f, r, id, title, k->state, k->task);
    }
  }
}

/* Per element: the state over the tasks that have one; 0 when none has. */
static int common_states(const fb_report_run *r, uint8_t *common) {
  const int E = r->supernet ? r->supernet->mp->n_elems : 0;
  int n_with = 0;
  for (int t = 0; t < r->n_tasks; t++) n_with += r->task[t].state != NULL;
  for (int e = 0; e < E && n_with; e++) {
    int kept = 0, skipped = 0;
    for (int t = 0; t < r->n_tasks; t++) {
      if (!r->task[t].state) continue;
      kept += r->task[t].state[e] == FB_ELEM_KEPT;
      skipped += r->task[t].state[e] == FB_ELEM_SKIPPED;
    }
    common[e] = kept == n_with ? FB_ELEM_KEPT : kept ? FB_ELEM_SOME
              : skipped == n_with ? FB_ELEM_SKIPPED : FB_ELEM_DROPPED;
  }
  return n_with;
}

static void common_table(FILE *f, const fb_report_run *r, const uint8_t *common) {
  const fb_mp_net *m = r->supernet->mp;
  static const char *cls[] = {"kept", "skipped", "dropped", "kept"};
  fprintf(f, "<table class=\"common\"><tr><th class=\"l\">bit</th><th class=\"l\">element</th>");
  for (int t = 0; t < r->n_tasks; t++)
    if (r->task[t].state) fprintf(f, "<th>%s</th>", r->task[t].name);
  fprintf(f, "<th>every task</th></tr>\n");
  for (int b = 0; b < m->n_bits; b++) {
    const int e = m->bit_elem[b];
    fprintf(f, "<tr><td>%d</td><td class=\"l\">%s</td>", b, m->elems[e].name);
    for (int t = 0; t < r->n_tasks; t++) {
      const fb_report_task *k = &r->task[t];
      if (!k->state) continue;
      fprintf(f, "<td class=\"%s\">%s", cls[k->state[e]], cls[k->state[e]]);
      if (k->probs) fprintf(f, " (%.2f)", k->probs[b]);
      fprintf(f, "</td>");
    }
    fprintf(f, "<td class=\"%s\">%s</td></tr>\n", common[e] == FB_ELEM_KEPT ? "kept" : "skipped",
            common[e] == FB_ELEM_KEPT ? "yes" : "no");
  }
  fprintf(f, "</table>\n");
}

static void common_section(FILE *f, const fb_report_run *r) {
  fprintf(f, "<h2 id=\"common\">Blocks every task keeps</h2>\n");
  uint8_t *common = fb_xcalloc(r->supernet ? (size_t)r->supernet->mp->n_elems : 1, 1);
  const int n_with = common_states(r, common);
  if (n_with == 0) {
    missing(f, "arch-common", "derived architectures");
  } else {
    const fb_mp_net *m = r->supernet->mp;
    int n_all = 0;
    for (int b = 0; b < m->n_bits; b++) n_all += common[m->bit_elem[b]] == FB_ELEM_KEPT;
    fprintf(f, "<p>%d of %d searchable bits are kept by all %d tasks with a derived "
            "architecture (p(keep) in brackets).</p>\n", n_all, m->n_bits, n_with);
    fb_report_draw_arch(f, r, "arch-common", "kept by every task", common, 0);
    common_table(f, r, common);
  }
  free(common);
}

/* ---- training signals ------------------------------------------------------ */

/* Trailing mean over w steps of the finite values (NAN where none). */
static double *moving_mean(const double *y, int n, int w) {
  double *m = fb_xmalloc((size_t)(n + 1) * sizeof *m);
  double sum = 0;
  int cnt = 0;
  for (int i = 0; i < n; i++) {
    if (isfinite(y[i])) sum += y[i], cnt++;
    if (i >= w && isfinite(y[i - w])) sum -= y[i - w], cnt--;
    m[i] = cnt ? sum / cnt : NAN;
  }
  return m;
}

/* Series of one quantity per task: raw (thin) and, for long logs, the
 * moving mean (thick, named); arrays owned by *tmp (n_tmp of them). */
typedef struct plot_set {
  fb_svg_series s[4 * FB_REPORT_MAX_TASKS];
  int n;
  double *tmp[4 * FB_REPORT_MAX_TASKS];
  int n_tmp;
  char names[4 * FB_REPORT_MAX_TASKS][48];
} plot_set;

static int smooth_window(int n_steps) { return n_steps >= 100 ? n_steps / 50 : 1; }

static void add_task_series(plot_set *ps, const fb_run_log *l, int t, double *y,
                            const char *name) {
  const int w = smooth_window(l->n_steps);
  fb_svg_series s = {.x = l->step, .y = y, .n = l->n_steps, .color = fb_svg_palette(t)};
  if (w > 1) {
    fb_svg_series raw = s;
    raw.opacity = 0.3, raw.width = 0.8;
    ps->s[ps->n++] = raw;
    s.y = ps->tmp[ps->n_tmp++] = moving_mean(y, l->n_steps, w);
    s.width = 2;
  }
  snprintf(ps->names[ps->n], sizeof ps->names[0], "%s", name);
  s.name = ps->names[ps->n];
  ps->s[ps->n++] = s;
}

static void plot_set_free(plot_set *ps) {
  for (int k = 0; k < ps->n_tmp; k++) free(ps->tmp[k]);
}

static void plot_key(FILE *f, const fb_report_run *r, int key, const char *id, const char *title,
                     const char *ylabel, double scale) {
  const fb_run_log *l = &r->log;
  plot_set ps = {.n = 0};
  for (int t = 0; t < l->n_tasks; t++) {
    double *y = ps.tmp[ps.n_tmp++] = fb_xmalloc((size_t)(l->n_steps + 1) * sizeof *y);
    for (int i = 0; i < l->n_steps; i++) y[i] = l->val[key][t][i] * scale;
    add_task_series(&ps, l, t, y, l->task[t]);
  }
  const fb_svg_plot p = {.id = id, .title = title, .xlabel = "step", .ylabel = ylabel};
  fb_svg_lines(f, &p, ps.s, ps.n);
  plot_set_free(&ps);
}

/* reward_t = loss_t + penalty_t (a loss: lower is better, archdist.h) and
 * the estimator's baseline. */
static void plot_rewards(FILE *f, const fb_report_run *r) {
  const fb_run_log *l = &r->log;
  plot_set ps = {.n = 0};
  for (int t = 0; t < l->n_tasks; t++) {
    double *y = ps.tmp[ps.n_tmp++] = fb_xmalloc((size_t)(l->n_steps + 1) * sizeof *y);
    for (int i = 0; i < l->n_steps; i++) {
      const double pen = l->val[FB_LOG_PENALTY][t][i];
      y[i] = l->val[FB_LOG_LOSS][t][i] + (isfinite(pen) ? pen : 0);
    }
    char name[48];
    snprintf(name, sizeof name, "%s reward", l->task[t]);
    add_task_series(&ps, l, t, y, name);
    snprintf(ps.names[ps.n], 48, "%s baseline", l->task[t]);
    ps.s[ps.n] = (fb_svg_series){.name = ps.names[ps.n], .x = l->step, .n = l->n_steps,
                                 .y = l->val[FB_LOG_BASELINE][t], .color = fb_svg_palette(t),
                                 .dashed = 1, .width = 1.2};
    ps.n++;
  }
  const fb_svg_plot p = {.id = "rewards", .title = "rewards (loss + MACs penalty) and baselines",
                         .xlabel = "step", .ylabel = "reward (lower is better)"};
  fb_svg_lines(f, &p, ps.s, ps.n);
  plot_set_free(&ps);
}

static void training_section(FILE *f, const fb_report_run *r) {
  fprintf(f, "<h2 id=\"training\">Losses, rewards and importance weights</h2>\n");
  if (r->log.n_steps == 0) {
    missing(f, "losses", "log lines");
    return;
  }
  fprintf(f, "<p class=\"note\">One architecture is sampled per step from one task's "
          "distribution; every task learns from it with importance weight rho_t = p_t(a) / "
          "mixture(a) (rho sums to the number of tasks).");
  if (smooth_window(r->log.n_steps) > 1)
    fprintf(f, " Thin lines: per step; thick: moving mean over %d steps.",
            smooth_window(r->log.n_steps));
  fprintf(f, "</p>\n");
  plot_key(f, r, FB_LOG_LOSS, "losses", "task losses of the sampled architecture", "loss", 1);
  plot_rewards(f, r);
  plot_key(f, r, FB_LOG_RHO, "iw", "importance weights rho", "rho", 1);
  const fb_run_log *l = &r->log;
  const fb_svg_series lr = {.name = "lr", .x = l->step, .y = l->lr, .n = l->n_steps,
                            .color = "#555555"};
  const fb_svg_plot p = {.id = "lr", .title = "supernet learning rate", .xlabel = "step",
                         .ylabel = "lr", .height = 220};
  fb_svg_lines(f, &p, &lr, 1);
}

/* ---- MACs ------------------------------------------------------------------- */

static void macs_section(FILE *f, const fb_report_run *r) {
  fprintf(f, "<h2 id=\"macs\">MACs of the sampled architectures</h2>\n");
  const fb_run_log *l = &r->log;
  if (l->n_steps == 0) {
    missing(f, "macs", "log lines");
    return;
  }
  fprintf(f, "<p class=\"note\">Multiply-adds of each task's deployed network (full head, "
          "deploy size) under the step's architecture; dashed: the derived architecture "
          "(summary.json).</p>\n");
  plot_set ps = {.n = 0};
  double xs[2] = {l->step[0], l->step[l->n_steps - 1]}, ys[FB_REPORT_MAX_TASKS][2];
  for (int t = 0; t < l->n_tasks; t++) {
    double *y = ps.tmp[ps.n_tmp++] = fb_xmalloc((size_t)(l->n_steps + 1) * sizeof *y);
    for (int i = 0; i < l->n_steps; i++) y[i] = l->val[FB_LOG_MACS][t][i] / 1e6;
    add_task_series(&ps, l, t, y, l->task[t]);
    const fb_report_task *k = &r->task[t];
    if (!k->has_summary || !isfinite(k->macs)) continue;
    ys[t][0] = ys[t][1] = k->macs / 1e6;
    snprintf(ps.names[ps.n], 48, "%s derived", k->name);
    ps.s[ps.n] = (fb_svg_series){.name = ps.names[ps.n], .x = xs, .y = ys[t], .n = 2,
                                 .color = fb_svg_palette(t), .dashed = 1};
    ps.n++;
  }
  const fb_svg_plot p = {.id = "macs", .title = "MACs per step", .xlabel = "step",
                         .ylabel = "MACs (millions)", .y_from_zero = 1};
  fb_svg_lines(f, &p, ps.s, ps.n);
  plot_set_free(&ps);
}

/* ---- latency (runs with --latency-table) ------------------------------------ */

static int has_latency(const fb_run_log *l) {
  for (int t = 0; t < l->n_tasks; t++)
    for (int i = 0; i < l->n_steps; i++)
      if (isfinite(l->val[FB_LOG_LATENCY][t][i])) return 1;
  return 0;
}

static void latency_section(FILE *f, const fb_report_run *r) {
  const fb_run_log *l = &r->log;
  if (l->n_steps == 0 || !has_latency(l)) return;
  fprintf(f, "<h2 id=\"latency\">Latency of the sampled architectures</h2>\n<p class=\"note\">"
          "Each task's deployed network under the step's architecture, as the latency table "
          "predicts it (batch 1, the table's thread count); dashed: the derived architecture and "
          "the target.</p>\n");
  plot_set ps = {.n = 0};
  double xs[2] = {l->step[0], l->step[l->n_steps - 1]}, ys[FB_REPORT_MAX_TASKS][2][2];
  for (int t = 0; t < l->n_tasks; t++) {
    add_task_series(&ps, l, t, l->val[FB_LOG_LATENCY][t], l->task[t]);
    const fb_report_task *k = &r->task[t];
    const double lines[2] = {k->lat_pred_ms, k->lat_target_ms};
    for (int j = 0; j < 2; j++) {
      if (!k->has_summary || !isfinite(lines[j])) continue;
      ys[t][j][0] = ys[t][j][1] = lines[j];
      snprintf(ps.names[ps.n], 48, "%s %s", k->name, j ? "target" : "derived");
      ps.s[ps.n] = (fb_svg_series){.name = ps.names[ps.n], .x = xs, .y = ys[t][j], .n = 2,
                                   .color = fb_svg_palette(t), .dashed = 1};
      ps.n++;
    }
  }
  const fb_svg_plot p = {.id = "latency", .title = "predicted latency per step", .xlabel = "step",
                         .ylabel = "ms", .y_from_zero = 1};
  fb_svg_lines(f, &p, ps.s, ps.n);
  plot_set_free(&ps);
  fprintf(f, "<table><tr><th>task</th><th>predicted ms</th><th>measured ms</th><th>target ms</th>"
          "</tr>\n");
  for (int t = 0; t < r->n_tasks; t++) {
    const fb_report_task *k = &r->task[t];
    if (!k->has_summary || !isfinite(k->lat_pred_ms)) continue;
    fprintf(f, "<tr><td>%s</td><td>%.3f</td><td>%.3f</td>", k->name, k->lat_pred_ms,
            k->lat_meas_ms);
    if (isfinite(k->lat_target_ms)) fprintf(f, "<td>%.3f</td></tr>\n", k->lat_target_ms);
    else fprintf(f, "<td>-</td></tr>\n");
  }
  fprintf(f, "</table>\n");
}

/* ---- quality ---------------------------------------------------------------- */

static void quality_section(FILE *f, const fb_quality *q) {
  static const char *names[FB_Q_N_SETS] = {"searched (3-task run)", "single-task search",
                                           "all kept, width-scaled", "random (same MACs)"};
  static const char *colors[FB_Q_N_SETS] = {"#d62728", "#ff7f0e", "#1f77b4", "#999999"};
  fprintf(f, "<h2 id=\"quality\">Retrained metric against MACs</h2>\n<p class=\"note\">From "
          "scripts/search_quality.sh: every network retrained with the same recipe (means over "
          "seeds); the baseline at the searched MACs is interpolated between the widths "
          "below and above it. ");
  fb_html_escape(f, q->note);
  fprintf(f, "</p>\n");
  for (int t = 0; t < q->n_tasks; t++) {
    const fb_quality_task *k = &q->task[t];
    fb_svg_series s[FB_Q_N_SETS];
    for (int j = 0; j < FB_Q_N_SETS; j++) /* random first, the searched ring on top */
      s[FB_Q_N_SETS - 1 - j] = (fb_svg_series){
          .name = names[j], .x = k->set[j].macs, .y = k->set[j].metric, .n = k->set[j].n,
          .color = colors[j], .width = j == FB_Q_SEARCHED ? 8 : 5, .dashed = j == FB_Q_SEARCHED};
    char id[32], title[64];
    snprintf(id, sizeof id, "quality-%s", k->name);
    snprintf(title, sizeof title, "%s: %s against MACs", k->name, k->metric);
    const fb_svg_plot p = {.id = id, .title = title, .xlabel = "MACs (millions)",
                           .ylabel = k->metric};
    fb_svg_scatter(f, &p, s, FB_Q_N_SETS);
  }
}

/* ---- the page --------------------------------------------------------------- */

static void summary_section(FILE *f, const fb_report_run *r) {
  const fb_run_log *l = &r->log;
  fprintf(f, "<p>Run directory <code>");
  fb_html_escape(f, r->dir);
  fprintf(f, "</code>: %d log lines (steps %.0f to %.0f), %d tasks, %d searchable bits. ",
          l->n_steps, l->n_steps ? l->step[0] : 0, l->n_steps ? l->step[l->n_steps - 1] : 0,
          r->n_tasks, r->n_bits);
  if (r->has_summary) fprintf(f, "Finished: summary.json after %d steps.", r->steps);
  else fprintf(f, "<span class=\"missing\">summary.json: not yet written</span> (a run in "
               "progress, or stopped before its end).");
  if (l->partial_line) fprintf(f, " The log's last line is incomplete (being written) and left out.");
  fprintf(f, "</p>\n<table><tr><th class=\"l\">task</th><th class=\"l\">architecture</th>"
          "<th>MACs (M)</th><th>params (M)</th><th>bits kept</th><th>bits decided</th></tr>\n");
  for (int t = 0; t < r->n_tasks; t++) {
    const fb_report_task *k = &r->task[t];
    fprintf(f, "<tr><td class=\"l\">%s</td><td class=\"l\">", k->name);
    if (k->arch_src[0]) fb_html_escape(f, k->arch_src);
    else fprintf(f, "<span class=\"missing\">not yet written</span>");
    fprintf(f, "</td>");
    if (k->has_summary)
      fprintf(f, "<td>%.3f</td><td>%.4f</td><td>%d/%d</td><td>%d/%d</td></tr>\n", k->macs / 1e6,
              k->params / 1e6, k->bits_kept, r->n_bits, k->bits_decided, r->n_bits);
    else
      fprintf(f, "<td colspan=\"4\" class=\"missing\">summary.json: not yet written</td></tr>\n");
  }
  fprintf(f, "</table>\n");
}

static void write_page(FILE *f, const fb_report_run *r, const fb_quality *q) {
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<title>fbnet search report: ");
  fb_html_escape(f, r->dir);
  fprintf(f, "</title><style>%s</style></head>\n<body>\n<h1>fbnet search report</h1>\n",
          page_style);
  summary_section(f, r);
  fprintf(f, "<p><a href=\"#probs\">bit probabilities</a> &middot; <a href=\"#arch\">"
          "architectures</a> &middot; <a href=\"#common\">common blocks</a> &middot; <a "
          "href=\"#training\">losses, rewards, importance weights</a> &middot; <a href=\"#macs\">"
          "MACs</a>%s</p>\n", q ? " &middot; <a href=\"#quality\">quality</a>" : "");
  probs_section(f, r);
  arch_section(f, r);
  common_section(f, r);
  training_section(f, r);
  macs_section(f, r);
  latency_section(f, r);
  if (q) quality_section(f, q);
  fprintf(f, "<details><summary>marks per plot</summary><pre id=\"mark-summary\"></pre>"
          "</details>\n<script>%s</script>\n</body></html>\n", page_script);
}

int fb_report_write_html(const fb_report_run *r, const fb_quality *q, const char *out,
                         fb_status *st) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return fb_fail(st, "%s: cannot build the page in memory", out);
  write_page(f, r, q);
  fclose(f);
  const int rc = fb_write_file_atomic(out, text, len, st);
  free(text);
  return rc;
}
