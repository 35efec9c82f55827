/* Op-family profile of a training step against its roofline floor
 * (see profile.h for the cost model). */
#include "nn/profile.h"

#include <string.h>

#include "core/status.h"

static const char *const family_names[FB_FAM_COUNT] = {
    "conv 1x1",   "conv depthwise",  "conv kxk dense",  "BN",    "activation",
    "SE",         "add/residual",    "upsample/concat", "pool+cls+loss", "other",
};

static const char *const part_names[FB_PART_COUNT] = {"trunk", "cls head", "det head",
                                                       "seg head"};

const char *fb_family_name(fb_family f) {
  return (unsigned)f < FB_FAM_COUNT ? family_names[f] : "all";
}

const char *fb_part_name(fb_part p) { return (unsigned)p < FB_PART_COUNT ? part_names[p] : "all"; }

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int is_se_node(const char *name) { return strstr(name, ".se.") || starts_with(name, "se."); }

static int name_in(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcmp(s, list[i]) == 0) return 1;
  return 0;
}

fb_part fb_profile_part_of(const char *name) {
  if (starts_with(name, "fcos.")) return FB_PART_DET;
  if (starts_with(name, "seg.")) return FB_PART_SEG;
  static const char *const cls[] = {"pool", "classifier", "loss", NULL};
  if (starts_with(name, "head.") || name_in(name, cls)) return FB_PART_CLS;
  return FB_PART_TRUNK;
}

static fb_family conv_family(const fb_op_args *a) {
  const int g = a->attr.groups;
  if (g > 1 && g == a->in[0].c && g == a->out.c) return FB_FAM_DEPTHWISE;
  if (g == 1 && a->attr.kh == 1 && a->attr.kw == 1) return FB_FAM_CONV1X1;
  return FB_FAM_CONVKXK;
}

fb_family fb_profile_family_of(const fb_graph *g, int i) {
  const fb_node *nd = &g->nodes[i];
  if (!nd->op) return FB_FAM_OTHER;
  if (is_se_node(nd->name)) return FB_FAM_SE;
  switch (nd->op->kind) {
  case FB_OPK_CONV: return conv_family(&nd->args);
  case FB_OPK_NORM: return FB_FAM_BN;
  case FB_OPK_ACT: return FB_FAM_ACT;
  case FB_OPK_ADD: return FB_FAM_ADD;
  case FB_OPK_RESAMPLE: return FB_FAM_UPCAT;
  case FB_OPK_POOL: case FB_OPK_LINEAR: case FB_OPK_LOSS: return FB_FAM_POOLCLS;
  default: return FB_FAM_OTHER;
  }
}


/* Node whose value input k of nd is (following aliases); -1 when absent. */
static int input_source(const fb_graph *g, const fb_node *nd, int k) {
  return fb_graph_source(g, nd->in[k]);
}

/* Input k needs a gradient: differentiable and produced by an op. */
static int input_needs_grad(const fb_graph *g, const fb_node *nd, int k) {
  const int s = input_source(g, nd, k);
  return s >= 0 && k < nd->op->n_diff_in && g->nodes[s].op != NULL;
}

static double input_floats(const fb_graph *g, const fb_node *nd, int *n_present) {
  double x = 0;
  int m = 0;
  for (int k = 0; k < nd->args.n_in; k++)
    if (input_source(g, nd, k) >= 0) x += (double)fb_numel(nd->args.in[k]), m++;
  if (n_present) *n_present = m;
  return x;
}

static double param_floats(const fb_node *nd, int trainable_only) {
  double x = 0;
  const int n = trainable_only ? nd->op->n_diff_par : nd->args.n_par;
  for (int k = 0; k < n && k < nd->args.n_par; k++) x += (double)fb_numel(nd->args.par[k]);
  return x;
}

static double backward_floats(const fb_graph *g, const fb_node *nd, int present) {
  const fb_op_args *a = &nd->args;
  const int copy = present == 1 && a->n_in > 1; /* an add with one term left */
  double x = (double)fb_numel(a->out);          /* read the output gradient */
  if (!copy && nd->op->bwd_reads_in) x += input_floats(g, nd, NULL);
  for (int k = 0; k < a->n_in; k++)
    if (input_needs_grad(g, nd, k)) x += (double)fb_numel(a->in[k]);
  if (!copy) x += 2 * param_floats(nd, 1); /* read weights, write their gradients */
  return x;
}

fb_node_cost fb_profile_node_cost(const fb_graph *g, int i) {
  fb_node_cost c = {0, 0, 0, 0};
  const fb_node *nd = &g->nodes[i];
  if (!nd->op) return c;
  c.macs_fwd = fb_op_macs(nd->op, &nd->args);
  if (fb_op_weighted(nd->op))
    c.macs_bwd = c.macs_fwd * (1 + input_needs_grad(g, nd, 0));
  int present = 0;
  const double in = input_floats(g, nd, &present);
  c.bytes_fwd = 4 * (in + param_floats(nd, 0) + (double)fb_numel(nd->args.out));
  c.bytes_bwd = 4 * backward_floats(g, nd, present);
  return c;
}

static double max2(double a, double b) { return a > b ? a : b; }

double fb_floor_sec(double macs, double bytes, const fb_roofline *r) {
  return max2(2 * macs / r->peak_flops, bytes / r->bandwidth);
}

static void add_node(fb_family_row *row, const fb_graph *g, int i, int steps,
                     const fb_roofline *r, unsigned flags) {
  fb_node_cost c = fb_profile_node_cost(g, i);
  if (flags & FB_PROFILE_FORWARD) c.macs_bwd = c.bytes_bwd = 0;
  row->nodes++;
  if (g->prof_fwd) row->fwd_sec += g->prof_fwd[i] / steps;
  if (g->prof_bwd) row->bwd_sec += g->prof_bwd[i] / steps;
  row->macs_fwd += c.macs_fwd;
  row->macs_bwd += c.macs_bwd;
  row->bytes_fwd += c.bytes_fwd;
  row->bytes_bwd += c.bytes_bwd;
  row->floor_fwd_sec += fb_floor_sec(c.macs_fwd, c.bytes_fwd, r);
  row->floor_bwd_sec += fb_floor_sec(c.macs_bwd, c.bytes_bwd, r);
  row->flop_sec += 2 * (c.macs_fwd + c.macs_bwd) / r->peak_flops;
  row->mem_sec += (c.bytes_fwd + c.bytes_bwd) / r->bandwidth;
}

int fb_profile_families(const fb_net *net, int steps, const fb_roofline *r, unsigned flags,
                        fb_family_row *rows, int max_rows, fb_status *st) {
  if (steps < 1) return fb_fail(st, "profile: steps %d < 1", steps);
  if (!(r->peak_flops > 0) || !(r->bandwidth > 0))
    return fb_fail(st, "profile: peak %g FLOP/s and bandwidth %g B/s must be positive",
                   r->peak_flops, r->bandwidth);
  const int by_part = (flags & FB_PROFILE_BY_PART) != 0;
  const int n_parts = by_part ? FB_PART_COUNT : 1;
  fb_family_row all[FB_PART_COUNT][FB_FAM_COUNT];
  memset(all, 0, sizeof all);
  const fb_graph *g = &net->g;
  for (int i = 0; i < g->n; i++) {
    if (!g->nodes[i].op || !g->nodes[i].active) continue;
    const int p = by_part ? (int)fb_profile_part_of(g->nodes[i].name) : 0;
    add_node(&all[p][fb_profile_family_of(g, i)], g, i, steps, r, flags);
  }
  int n = 0;
  for (int p = 0; p < n_parts; p++)
    for (int f = 0; f < FB_FAM_COUNT; f++) {
      if (all[p][f].nodes == 0) continue;
      if (n == max_rows) return fb_fail(st, "profile: more than %d rows", max_rows);
      rows[n] = all[p][f];
      rows[n].family = (fb_family)f;
      rows[n].part = by_part ? (fb_part)p : FB_PART_COUNT;
      n++;
    }
  return n;
}

fb_family_row fb_profile_sum(const fb_family_row *rows, int n) {
  fb_family_row s;
  memset(&s, 0, sizeof s);
  s.family = FB_FAM_COUNT;
  s.part = FB_PART_COUNT;
  for (int i = 0; i < n; i++) {
    const fb_family_row *x = &rows[i];
    s.nodes += x->nodes;
    s.fwd_sec += x->fwd_sec, s.bwd_sec += x->bwd_sec;
    s.macs_fwd += x->macs_fwd, s.macs_bwd += x->macs_bwd;
    s.bytes_fwd += x->bytes_fwd, s.bytes_bwd += x->bytes_bwd;
    s.floor_fwd_sec += x->floor_fwd_sec, s.floor_bwd_sec += x->floor_bwd_sec;
    s.flop_sec += x->flop_sec, s.mem_sec += x->mem_sec;
  }
  return s;
}

double fb_profile_outside_bytes(const fb_net *net) {
  const fb_graph *g = &net->g;
  double douts = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].active) douts += (double)fb_numel(g->nodes[i].args.out);
  const double trainable = (double)fb_params_trainable(&g->params);
  return 4 * (douts + (double)g->params.total + 5 * trainable);
}

/* ---- printing ------------------------------------------------------------ */

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void row_label(const fb_family_row *x, char *buf, size_t n) {
  if (x->family == FB_FAM_COUNT) snprintf(buf, n, "graph (sum)");
  else if (x->part == FB_PART_COUNT) snprintf(buf, n, "%s", fb_family_name(x->family));
  else snprintf(buf, n, "%s: %s", fb_part_name(x->part), fb_family_name(x->family));
}

static void print_text_row(FILE *f, const fb_family_row *x, double step_sec) {
  char label[64];
  row_label(x, label, sizeof label);
  const double t = x->fwd_sec + x->bwd_sec, fl = x->floor_fwd_sec + x->floor_bwd_sec;
  fprintf(f, "%-28s %5d %9.2f %9.2f %6.1f%% %9.3f %9.1f %9.2f %8.1f %8.1f %8.1f  %s\n", label,
          x->nodes, 1e3 * x->fwd_sec, 1e3 * x->bwd_sec, 100 * ratio(t, step_sec),
          x->macs_fwd / 1e9, (x->bytes_fwd + x->bytes_bwd) / 1e6, 1e3 * fl,
          ratio(x->fwd_sec, x->floor_fwd_sec), ratio(x->bwd_sec, x->floor_bwd_sec), ratio(t, fl),
          x->flop_sec >= x->mem_sec ? "flop" : "mem");
}

static double outside_bytes(const fb_net *net, unsigned flags) {
  return flags & FB_PROFILE_FORWARD ? 0 : fb_profile_outside_bytes(net);
}

static void print_text(FILE *f, const fb_net *net, int steps, double step_sec,
                       const fb_roofline *r, unsigned flags, const fb_family_row *rows, int n) {
  const fb_family_row s = fb_profile_sum(rows, n);
  fprintf(f, "%s, batch %d: %d profiled steps, %.2f ms/step (mean); floor: peak %.1f GFLOP/s, "
          "bandwidth %.1f GB/s\n", net->name, net->g.batch, steps, 1e3 * step_sec,
          r->peak_flops / 1e9, r->bandwidth / 1e9);
  fprintf(f, "%-28s %5s %9s %9s %7s %9s %9s %9s %8s %8s %8s  %s\n", "family", "nodes", "fwd ms",
          "bwd ms", "step", "GMAC fwd", "MB f+b", "floor ms", "fwd/flr", "bwd/flr", "x floor",
          "bound");
  for (int i = 0; i < n; i++) print_text_row(f, &rows[i], step_sec);
  print_text_row(f, &s, step_sec);
  const double out = step_sec - s.fwd_sec - s.bwd_sec, out_bytes = outside_bytes(net, flags);
  const double out_floor = out_bytes / r->bandwidth;
  fprintf(f, "%-28s %5s %9s %9.2f %6.1f%% %9s %9.1f %9.2f %8s %8s %8.1f  mem\n",
          "outside nodes (optim, zero)", "", "", 1e3 * out, 100 * ratio(out, step_sec), "",
          out_bytes / 1e6, 1e3 * out_floor, "", "", ratio(out, out_floor));
  fprintf(f, "step: %.2f ms, floor %.2f ms (x %.1f); MACs fwd+bwd %.3f G; graph floor is "
          "%.0f%% flop-bound time\n", 1e3 * step_sec, 1e3 * (s.floor_fwd_sec + s.floor_bwd_sec +
          out_floor), ratio(step_sec, s.floor_fwd_sec + s.floor_bwd_sec + out_floor),
          (s.macs_fwd + s.macs_bwd) / 1e9, 100 * ratio(s.flop_sec, s.flop_sec + s.mem_sec));
}

static void print_json_row(FILE *f, const fb_family_row *x) {
  fprintf(f, "{\"family\": \"%s\", \"part\": \"%s\", \"nodes\": %d, \"fwd_sec\": %.6g, "
          "\"bwd_sec\": %.6g, \"macs_fwd\": %.6g, \"macs_bwd\": %.6g, \"bytes_fwd\": %.6g, "
          "\"bytes_bwd\": %.6g, \"floor_fwd_sec\": %.6g, \"floor_bwd_sec\": %.6g, "
          "\"flop_sec\": %.6g, \"mem_sec\": %.6g}", fb_family_name(x->family),
          fb_part_name(x->part), x->nodes, x->fwd_sec, x->bwd_sec, x->macs_fwd, x->macs_bwd,
          x->bytes_fwd, x->bytes_bwd, x->floor_fwd_sec, x->floor_bwd_sec, x->flop_sec,
          x->mem_sec);
}

static void print_json(FILE *f, const fb_net *net, int steps, double step_sec,
                       const fb_roofline *r, unsigned flags, const fb_family_row *rows, int n) {
  const fb_family_row s = fb_profile_sum(rows, n);
  const double out_bytes = outside_bytes(net, flags);
  fprintf(f, "{\"name\": \"%s\", \"batch\": %d, \"steps\": %d, \"step_sec\": %.6g, "
          "\"peak_flops\": %.6g, \"bandwidth\": %.6g, \"families\": [", net->name, net->g.batch,
          steps, step_sec, r->peak_flops, r->bandwidth);
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", f);
    print_json_row(f, &rows[i]);
  }
  fputs("], \"graph\": ", f);
  print_json_row(f, &s);
  fprintf(f, ", \"outside_sec\": %.6g, \"outside_bytes\": %.6g, \"outside_floor_sec\": %.6g}\n",
          step_sec - s.fwd_sec - s.bwd_sec, out_bytes, out_bytes / r->bandwidth);
}

int fb_profile_print(FILE *f, const fb_net *net, int steps, double step_sec,
                     const fb_roofline *r, unsigned flags, int json, fb_status *st) {
  enum { MAX_ROWS = FB_PART_COUNT * FB_FAM_COUNT };
  fb_family_row rows[MAX_ROWS];
  const int n = fb_profile_families(net, steps, r, flags, rows, MAX_ROWS, st);
  if (n < 0) return -1;
  if (json) print_json(f, net, steps, step_sec, r, flags, rows, n);
  else print_text(f, net, steps, step_sec, r, flags, rows, n);
  return ferror(f) ? fb_fail_io(st, "profile: cannot write the table") : 0;
}
