/* The supernet drawn as its paths (rows, highest resolution on top) and
 * stages (left to right): one box per block copy, the block that opens a
 * path on the new row, then the stage's cross-path fusion terms T(from ->
 * to) as slanted strokes; filled = kept, dashed outline = skipped (bit off),
 * grey = dropped (on, but cannot reach the head). Boxes are <rect
 * class="mark">, fusion terms <path class="mark">. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "report/report.h"
#include "report/svg.h"
#include "tasks/task.h"

enum { CW = 20, GAP = 4, BH = 16, ROW = 34, TOP = 44, LEFT = 62, XSTEP = 8 };

/* Where each element goes: x (left edge of a box, start of a stroke). */
typedef struct layout {
  double *x;
  double stage_x[FB_MP_MAX_STAGES + 1]; /* [0]: the stem */
  double path_x[FB_MP_MAX_PATHS];       /* where each path starts */
  double width;
} layout;

/* Lays out the elements [e0, e1) of one stage (or the stem) from x = cx;
 * returns the x after it. */
static double layout_stage(const fb_mp_net *m, int e0, int e1, double cx, layout *L) {
  int cnt[FB_MP_MAX_PATHS] = {0}, max_cnt = 0, n_cross = 0, has_open = 0;
  for (int e = e0; e < e1; e++) has_open |= m->elems[e].kind == FB_ELEM_OPEN;
  const double bx = cx + (has_open ? CW + 2 * GAP : 0);
  for (int e = e0; e < e1; e++) {
    const fb_mp_elem *el = &m->elems[e];
    if (el->kind == FB_ELEM_OPEN) {
      L->x[e] = cx;
      L->path_x[el->path] = cx;
    } else if (el->kind == FB_ELEM_BLOCK) {
      L->x[e] = bx + cnt[el->path]++ * (CW + GAP);
      if (cnt[el->path] > max_cnt) max_cnt = cnt[el->path];
    }
  }
  const double fx = bx + max_cnt * (CW + GAP) + 4;
  for (int e = e0; e < e1; e++)
    if (m->elems[e].kind == FB_ELEM_CROSS) L->x[e] = fx + XSTEP * n_cross++;
  return fx + XSTEP * n_cross + (n_cross ? 12 : 0);
}

static void layout_all(const fb_mp_net *m, layout *L) {
  L->x = fb_xcalloc((size_t)m->n_elems + 1, sizeof *L->x);
  for (int p = 0; p < FB_MP_MAX_PATHS; p++) L->path_x[p] = LEFT;
  double cx = LEFT;
  for (int e0 = 0; e0 < m->n_elems;) {
    int e1 = e0;
    while (e1 < m->n_elems && m->elems[e1].stage == m->elems[e0].stage) e1++;
    const int s = m->elems[e0].stage + 1;
    if (s >= 0 && s <= FB_MP_MAX_STAGES) L->stage_x[s] = cx;
    cx = layout_stage(m, e0, e1, cx, L) + 6;
    e0 = e1;
  }
  L->width = cx;
}

static double row_y(int path) { return TOP + path * ROW; }

static const char *state_name(int s) {
  static const char *n[] = {"kept", "skipped", "dropped", "kept by some"};
  return n[s];
}

/* The tooltip: element name, state, every task's p(keep) of its bit. */
static void tooltip(FILE *f, const fb_report_run *r, const fb_mp_elem *el, int s) {
  fprintf(f, "<title>%s: %s", el->name, state_name(s));
  if (el->bit < 0) fprintf(f, " (not searchable)");
  for (int t = 0; t < r->n_tasks && el->bit >= 0; t++)
    if (r->task[t].probs) fprintf(f, "; %s p=%.3f", r->task[t].name, r->task[t].probs[el->bit]);
  fprintf(f, "</title>");
}

static void style(FILE *f, int s, const char *kept, int stroke_only) {
  const char *c = s == FB_ELEM_KEPT ? kept : s == FB_ELEM_SOME ? "#9ecae1"
                : s == FB_ELEM_DROPPED ? "#bbbbbb" : "#ffffff";
  if (stroke_only)
    fprintf(f, " fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s",
            s == FB_ELEM_SKIPPED ? "#aaaaaa" : c, s == FB_ELEM_KEPT ? "2.2" : "1.4",
            s == FB_ELEM_SKIPPED ? " stroke-dasharray=\"3 2\"" : "");
  else
    fprintf(f, " fill=\"%s\" stroke=\"%s\"%s", c, s == FB_ELEM_SKIPPED ? "#888888" : "#333333",
            s == FB_ELEM_SKIPPED ? " stroke-dasharray=\"3 2\"" : "");
}

static void draw_elem(FILE *f, const fb_report_run *r, const layout *L, int e, int s,
                      const char *kept) {
  const fb_mp_elem *el = &r->supernet->mp->elems[e];
  const double x = L->x[e];
  if (el->kind == FB_ELEM_CROSS) {
    fprintf(f, "<path class=\"mark cross\" d=\"M%.1f %.1f L%.1f %.1f\"", x, row_y(el->from) + BH / 2.0,
            x + XSTEP - 2, row_y(el->path) + BH / 2.0);
    style(f, s, kept, 1);
  } else {
    if (el->kind == FB_ELEM_OPEN && el->path > 0) /* from the path above */
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>",
              x - GAP, row_y(el->path - 1) + BH, x + CW / 2.0, row_y(el->path));
    fprintf(f, "<rect class=\"mark block\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" rx=\"%d\"",
            x, row_y(el->path), CW, BH, el->kind == FB_ELEM_OPEN ? 8 : 2);
    style(f, s, kept, 0);
  }
  fprintf(f, ">");
  tooltip(f, r, el, s);
  fprintf(f, "</%s>\n", el->kind == FB_ELEM_CROSS ? "path" : "rect");
}

/* Path lines and labels, stage labels. */
static void background(FILE *f, const fb_mp_net *m, const layout *L) {
  for (int p = 0; p < m->n_paths; p++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\" "
            "stroke-width=\"2\"/><text x=\"4\" y=\"%.1f\">path %d</text>\n", L->path_x[p],
            row_y(p) + BH / 2.0, L->width, row_y(p) + BH / 2.0, row_y(p) + BH - 3, p);
  for (int s = 0; s <= m->arch.n_stages; s++) {
    char name[24] = "stem";
    if (s > 0) snprintf(name, sizeof name, "stage %d", s - 1);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#555\">%s</text>"
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>\n",
            L->stage_x[s], TOP - 8, name, L->stage_x[s] - 3, TOP - 18, L->stage_x[s] - 3,
            TOP + m->n_paths * ROW);
  }
}

/* The head of one task: a box right of the last stage, fed by its paths. */
static void head(FILE *f, const fb_mp_net *m, const layout *L, unsigned task) {
  const int t = fb_task_slot(task);
  const int n = t >= 0 ? m->arch.n_head_paths[t] : 0;
  const int *paths = t >= 0 ? m->arch.head_paths[t] : NULL;
  const double hx = L->width + 24, hy = row_y(0), hh = (m->n_paths - 1) * ROW + BH;
  for (int k = 0; k < n; k++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\"/>",
            L->width, row_y(paths[k]) + BH / 2.0, hx, row_y(paths[k]) + BH / 2.0);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"36\" height=\"%.1f\" fill=\"#f4f4f4\" "
          "stroke=\"#555\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>"
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">head</text>\n", hx, hy, hh, hx + 18,
          hy + hh / 2, fb_task_name(task), hx + 18, hy + hh / 2 + 13);
}

static void legend(FILE *f, double y, const char *kept, int with_some) {
  const int n = with_some ? 4 : 3;
  static const int order[4] = {FB_ELEM_KEPT, FB_ELEM_SKIPPED, FB_ELEM_DROPPED, FB_ELEM_SOME};
  for (int k = 0; k < n; k++) {
    const double x = LEFT + k * 240;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\"", x, y, CW, BH);
    style(f, order[k], kept, 0);
    fprintf(f, "/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + CW + 6, y + BH - 4,
            k == 0 ? (with_some ? "kept by every task" : "kept")
            : k == 1 ? "skipped (bit off)" : k == 2 ? "dropped (cannot reach the head)"
            : "kept by some tasks");
  }
}

void fb_report_draw_arch(FILE *f, const fb_report_run *r, const char *id, const char *title,
                         const uint8_t *state, unsigned head_task) {
  const fb_mp_net *m = r->supernet->mp;
  layout L;
  memset(&L, 0, sizeof L);
  layout_all(m, &L);
  const int W = (int)L.width + (head_task ? 70 : 10), H = TOP + m->n_paths * ROW + 36;
  int ti = 0;
  while (ti < r->n_tasks && r->task[ti].task != head_task) ti++;
  const char *kept = head_task ? fb_svg_palette(ti) : "#444444";
  fprintf(f, "<svg class=\"plot\" data-plot=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
          "font-size=\"11\">\n<text x=\"%d\" y=\"16\" font-size=\"13\" font-weight=\"bold\">",
          id, W, H, W, H, LEFT);
  fb_html_escape(f, title);
  fprintf(f, "</text>\n");
  background(f, m, &L);
  for (int e = 0; e < m->n_elems; e++) draw_elem(f, r, &L, e, state[e], kept);
  if (head_task) head(f, m, &L, head_task);
  legend(f, TOP + m->n_paths * ROW + 8, kept, !head_task);
  fprintf(f, "</svg>\n");
  free(L.x);
}
