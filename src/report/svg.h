/* Small inline-SVG plots for the search report (src/report/report.h): line
 * plots, heatmaps and scatter plots with axes, ticks and labels, written to a
 * FILE as one <svg class="plot" data-plot="ID"> element each. Marks are
 * <polyline> (lines), <rect> (heatmap cells, legend swatches) and <circle>
 * (scatter points), so that a test can count them per plot. No scripts, no
 * external references: the page stays self-contained. */
#ifndef FB_REPORT_SVG_H
#define FB_REPORT_SVG_H

#include <stdio.h>

/* One data series: n points (x[i], y[i]); non-finite y values are gaps. */
typedef struct fb_svg_series {
  const char *name;  /* legend entry (NULL: none) */
  const double *x, *y;
  int n;
  const char *color; /* CSS colour */
  double width;      /* line width (lines) or radius (scatter); 0: the default */
  double opacity;    /* 0: opaque */
  int dashed;        /* lines: dashed; scatter: hollow rings */
} fb_svg_series;

typedef struct fb_svg_plot {
  const char *id;     /* data-plot attribute, e.g. "losses" */
  const char *title, *xlabel, *ylabel;
  int width, height;  /* px; 0: 540 x 300 */
  int y_from_zero;    /* the y range includes 0 */
} fb_svg_plot;

/* A line plot of n series (one <polyline> per run of finite points). */
void fb_svg_lines(FILE *f, const fb_svg_plot *p, const fb_svg_series *s, int n);
/* A scatter plot of n series (one <circle> per finite point). */
void fb_svg_scatter(FILE *f, const fb_svg_plot *p, const fb_svg_series *s, int n);

/* A heatmap of v[r * cols + c] in [0, 1] (rows top to bottom), columns at
 * x positions x[c] (the column's last step, increasing); cells of equal
 * colour (values rounded to 1/100) next to each other in a row are one
 * <rect>. row_labels may be NULL ("bit R"). */
typedef struct fb_svg_heat {
  const float *v;
  int rows, cols;
  const double *x;
  const char *const *row_labels;
} fb_svg_heat;
void fb_svg_heatmap(FILE *f, const fb_svg_plot *p, const fb_svg_heat *h);

/* Colour of a value in [0, 1] on the heatmap's scale as "#rrggbb" into buf[8]. */
void fb_svg_color(double v, char *buf);
/* Writes s with &, <, >, " escaped (text and attribute values). */
void fb_html_escape(FILE *f, const char *s);
/* Colour of series k on every plot (cls, det, seg, ... in order). */
const char *fb_svg_palette(int k);

#endif
