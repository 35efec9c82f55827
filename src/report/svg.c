/* Inline-SVG plots (report/svg.h). Data marks carry class="mark"; axes,
 * ticks, legends and colour bars do not, so a count of .mark elements per
 * plot is a count of what the data drew. */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The plot box in px (margins L, R, T, B of a W x H figure) and the data
 * range it shows. */
typedef struct axes {
  double x0, x1, y0, y1;
  int W, H, L, R, T, B;
} axes;

static double ax_px(const axes *a, double x) {
  return a->L + (x - a->x0) / (a->x1 - a->x0) * (a->W - a->L - a->R);
}
static double ax_py(const axes *a, double y) {
  return a->H - a->B - (y - a->y0) / (a->y1 - a->y0) * (a->H - a->T - a->B);
}

void fb_html_escape(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      default: fputc(*s, f);
    }
  }
}

const char *fb_svg_palette(int k) {
  static const char *c[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  return c[k % 6];
}

void fb_svg_color(double v, char *buf) {
  /* viridis at five anchors, linear in between */
  static const double a[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98},
                                 {253, 231, 37}};
  if (!(v >= 0)) v = 0;
  if (v > 1) v = 1;
  const int i = v >= 1 ? 3 : (int)(v * 4);
  const double t = v * 4 - i;
  int rgb[3];
  for (int k = 0; k < 3; k++) rgb[k] = (int)lround(a[i][k] + t * (a[i + 1][k] - a[i][k]));
  snprintf(buf, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double range, int n) {
  const double raw = range / n, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* Widens [lo, hi] when it is empty or a single value. */
static void pad_range(double *lo, double *hi) {
  if (!(*lo <= *hi)) *lo = 0, *hi = 1;
  if (*hi - *lo < 1e-12 * (fabs(*lo) + 1)) {
    const double d = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 0.5;
    *lo -= d, *hi += d;
  }
}

static void data_range(axes *a, const fb_svg_plot *p, const fb_svg_series *s, int n) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < s[k].n; i++) {
      const double y = s[k].y[i];
      if (!isfinite(y) || !isfinite(s[k].x[i])) continue;
      x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
      y0 = fmin(y0, y), y1 = fmax(y1, y);
    }
  if (p->y_from_zero && y0 <= y1) y0 = fmin(y0, 0), y1 = fmax(y1, 0);
  pad_range(&x0, &x1);
  pad_range(&y0, &y1);
  const double m = 0.05 * (y1 - y0);
  a->x0 = x0, a->x1 = x1, a->y0 = y0 - m, a->y1 = y1 + m;
}

static axes axes_for(const fb_svg_plot *p, int left, int right) {
  axes a = {0};
  a.W = p->width > 0 ? p->width : 540;
  a.H = p->height > 0 ? p->height : 300;
  a.L = left, a.R = right, a.T = 30, a.B = 42;
  return a;
}

static void open_svg(FILE *f, const fb_svg_plot *p, const axes *a) {
  fprintf(f, "<svg class=\"plot\" data-plot=\"");
  fb_html_escape(f, p->id);
  fprintf(f, "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
          a->W, a->H, a->W, a->H);
  fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\">", a->L);
  fb_html_escape(f, p->title);
  fprintf(f, "</text>\n");
}

static void tick_label(FILE *f, double v) {
  char b[32];
  snprintf(b, sizeof b, "%.4g", v);
  if (strcmp(b, "-0") == 0) strcpy(b, "0");
  fputs(b, f);
}

/* The x axis (ticks over [x0, x1] mapped to px [px0, px1]) and its label. */
static void x_axis(FILE *f, const axes *a, double x0, double x1, double px0, double px1,
                   const char *label) {
  const int yb = a->H - a->B;
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", a->L, yb,
          a->W - a->R, yb);
  const double st = nice_step(x1 - x0, 6);
  int n = 0; /* (at most 20 ticks, whatever the rounding of huge values) */
  for (double t = ceil(x0 / st) * st; t <= x1 + 1e-9 * st && n < 20; t += st, n++) {
    const double px = x1 > x0 ? px0 + (t - x0) / (x1 - x0) * (px1 - px0) : px0;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#444\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", px, yb, px, yb + 4, px, yb + 16);
    tick_label(f, t);
    fprintf(f, "</text>\n");
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (a->L + a->W - a->R) / 2,
          a->H - 6);
  fb_html_escape(f, label);
  fprintf(f, "</text>\n");
}

static void y_axis(FILE *f, const axes *a, const char *label) {
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", a->L, a->T,
          a->L, a->H - a->B);
  const double st = nice_step(a->y1 - a->y0, 5);
  int n = 0;
  for (double t = ceil(a->y0 / st) * st; t <= a->y1 + 1e-9 * st && n < 20; t += st, n++) {
    const double py = ax_py(a, t);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", a->L, py, a->W - a->R, py,
            a->L - 4, py + 4);
    tick_label(f, t);
    fprintf(f, "</text>\n");
  }
  fprintf(f, "<text transform=\"translate(12 %d) rotate(-90)\" text-anchor=\"middle\">",
          (a->T + a->H - a->B) / 2);
  fb_html_escape(f, label);
  fprintf(f, "</text>\n");
}

static void frame(FILE *f, const fb_svg_plot *p, const axes *a) {
  open_svg(f, p, a);
  x_axis(f, a, a->x0, a->x1, a->L, a->W - a->R, p->xlabel);
  y_axis(f, a, p->ylabel);
}

/* Legend entries right of the plot box, one line swatch each. */
static void legend(FILE *f, const axes *a, const fb_svg_series *s, int n) {
  int row = 0;
  for (int k = 0; k < n; k++) {
    if (!s[k].name) continue;
    const int x = a->W - a->R + 10, y = a->T + 8 + 16 * row++;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"4\"%s/>"
            "<text x=\"%d\" y=\"%d\">", x, y, x + 16, y, s[k].color,
            s[k].dashed ? " stroke-dasharray=\"4 2\"" : "", x + 20, y + 4);
    fb_html_escape(f, s[k].name);
    fprintf(f, "</text>\n");
  }
}

static void open_polyline(FILE *f, const fb_svg_series *s) {
  fprintf(f, "<polyline class=\"mark\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.2g\"%s",
          s->color, s->width > 0 ? s->width : 1.5, s->dashed ? " stroke-dasharray=\"5 3\"" : "");
  if (s->opacity > 0) fprintf(f, " stroke-opacity=\"%.2g\"", s->opacity);
  fprintf(f, " points=\"");
}

/* One <polyline> per run of finite points (a lone point draws a dot). */
static void polyline(FILE *f, const axes *a, const fb_svg_series *s) {
  int open = 0, pts = 0;
  for (int i = 0; i <= s->n; i++) {
    const double y = i < s->n ? s->y[i] : NAN;
    if (!isfinite(y) || !isfinite(s->x[i])) { /* (i == n: y is NAN) */
      if (open) fprintf(f, "\"/>\n");
      open = pts = 0;
      continue;
    }
    if (!open) open_polyline(f, s), open = 1;
    const double px = ax_px(a, s->x[i]), py = ax_py(a, y);
    fprintf(f, "%s%.1f,%.1f", pts ? " " : "", px, py);
    if (++pts == 1 && (i + 1 >= s->n || !isfinite(s->y[i + 1])))
      fprintf(f, " %.1f,%.1f", px + 0.5, py); /* a lone point still shows */
  }
}

void fb_svg_lines(FILE *f, const fb_svg_plot *p, const fb_svg_series *s, int n) {
  axes a = axes_for(p, 62, 110);
  data_range(&a, p, s, n);
  frame(f, p, &a);
  for (int k = 0; k < n; k++) polyline(f, &a, &s[k]);
  legend(f, &a, s, n);
  fprintf(f, "</svg>\n");
}

void fb_svg_scatter(FILE *f, const fb_svg_plot *p, const fb_svg_series *s, int n) {
  axes a = axes_for(p, 62, 150);
  data_range(&a, p, s, n);
  const double mx = 0.05 * (a.x1 - a.x0);
  a.x0 -= mx, a.x1 += mx;
  frame(f, p, &a);
  for (int k = 0; k < n; k++)
    for (int i = 0; i < s[k].n; i++) {
      const double y = s[k].y[i];
      if (!isfinite(y) || !isfinite(s[k].x[i])) continue;
      fprintf(f, "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.2g\" ",
              ax_px(&a, s[k].x[i]), ax_py(&a, y), s[k].width > 0 ? s[k].width : 5);
      if (s[k].dashed)
        fprintf(f, "fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"><title>", s[k].color);
      else
        fprintf(f, "fill=\"%s\" fill-opacity=\"%.2g\" stroke=\"#222\"><title>", s[k].color,
                s[k].opacity > 0 ? s[k].opacity : 0.85);
      fb_html_escape(f, s[k].name);
      fprintf(f, ": %.4g at %.4g</title></circle>\n", s[k].y[i], s[k].x[i]);
    }
  legend(f, &a, s, n);
  fprintf(f, "</svg>\n");
}

/* ---- heatmap ------------------------------------------------------------ */

#define HEAT_LEVELS 100 /* colours of the cells: values rounded to 1/HEAT_LEVELS */

static void heat_row(FILE *f, const axes *a, const fb_svg_heat *h, int r, double cw, int rh) {
  const int y = a->T + r * rh;
  for (int c = 0; c < h->cols;) {
    const long q = lround(h->v[(size_t)r * h->cols + c] * HEAT_LEVELS);
    int e = c + 1;
    while (e < h->cols && lround(h->v[(size_t)r * h->cols + e] * HEAT_LEVELS) == q) e++;
    char col[8];
    fb_svg_color((double)q / HEAT_LEVELS, col);
    fprintf(f, "<rect class=\"mark\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
            "fill=\"%s\"/>", a->L + c * cw, y, (e - c) * cw + 0.3, rh, col);
    c = e;
  }
  fprintf(f, "\n<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"8\">", a->L - 3,
          y + rh - 2);
  if (h->row_labels) fb_html_escape(f, h->row_labels[r]);
  else fprintf(f, "bit %d", r);
  fprintf(f, "</text>\n");
}

static void colour_bar(FILE *f, const axes *a) {
  const int x = a->W - a->R + 14, h = 10;
  for (int k = 0; k <= 20; k++) {
    char col[8];
    fb_svg_color(1 - k / 20.0, col);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"%d\" fill=\"%s\"/>", x,
            a->T + k * h, h, col);
  }
  fprintf(f, "\n<text x=\"%d\" y=\"%d\">1</text><text x=\"%d\" y=\"%d\">0.5</text>"
          "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\">p(keep)</text>\n",
          x + 18, a->T + 9, x + 18, a->T + 10 * h + 5, x + 18, a->T + 21 * h, x, a->T - 6);
}

void fb_svg_heatmap(FILE *f, const fb_svg_plot *p, const fb_svg_heat *h) {
  const int rh = 10;
  fb_svg_plot q = *p;
  q.height = h->rows * rh + 30 + 42;
  axes a = axes_for(&q, 62, 70);
  open_svg(f, &q, &a);
  const double cw = h->cols > 0 ? (double)(a.W - a.L - a.R) / h->cols : 0;
  for (int r = 0; r < h->rows && h->cols > 0; r++) heat_row(f, &a, h, r, cw, rh);
  if (h->cols > 0) {
    const double x0 = h->x[0], x1 = h->x[h->cols - 1];
    x_axis(f, &a, x0, x1 > x0 ? x1 : x0 + 1, a.L + cw / 2, a.W - a.R - cw / 2, p->xlabel);
  }
  colour_bar(f, &a);
  fprintf(f, "</svg>\n");
}
