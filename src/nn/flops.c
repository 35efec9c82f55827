#include "nn/flops.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/multipath.h"
#include "tasks/task.h"

fb_layer_count fb_layer_count_of(const fb_net *net, int i) {
  const fb_node *nd = &net->g.nodes[i];
  fb_layer_count c;
  memset(&c, 0, sizeof c);
  c.name = nd->name;
  c.op = nd->op ? nd->op->name : "input";
  c.out = nd->args.out;
  c.out.n = 1;
  if (!nd->op) return c;
  const int batch = nd->args.out.n > 0 ? nd->args.out.n : 1;
  c.macs = fb_op_macs(nd->op, &nd->args) / batch;
  const int weighted = fb_op_weighted(nd->op);
  for (int k = 0; k < nd->args.n_par; k++) {
    const double numel = (double)fb_numel(nd->args.par[k]);
    if (nd->op->par_group[k] != FB_PG_BUFFER) c.params += numel;
    if (k == 0 && weighted) c.weights += numel;
  }
  return c;
}

void fb_flops_print_table(FILE *f, const fb_net *net) {
  fprintf(f, "%s: %d px, %d input channels, %d classes, width %g, %s padding\n", net->name,
          net->opts.input_size, net->opts.in_channels, net->opts.num_classes, net->opts.width,
          net->opts.standard_padding ? "standard" : "explicit");
  fprintf(f, "%4s  %-28s %-10s %18s %11s %14s\n", "#", "layer", "op", "output (CxHxW)", "params",
          "MACs");
  for (int i = 0; i < net->g.n; i++) {
    fb_layer_count c = fb_layer_count_of(net, i);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", c.out.c, c.out.h, c.out.w);
    fprintf(f, "%4d  %-28s %-10s %18s %11.0f %14.0f\n", i, c.name, c.op, shape, c.params, c.macs);
  }
  fb_count t = fb_net_count(net);
  fprintf(f, "total: %.3f M MACs (conv/linear multiply-adds + global pool inputs)\n", t.macs / 1e6);
  fprintf(f, "       %.6f M params (conv/linear weights, the published convention)\n",
          t.params / 1e6);
  fprintf(f, "       %.6f M trainable params (incl. biases and BN)\n", t.params_all / 1e6);
}

int fb_flops_print_json(FILE *f, const fb_net *net, fb_status *st) {
  cJSON *root = cJSON_CreateObject();
  fb_count t = fb_net_count(net);
  cJSON_AddStringToObject(root, "name", net->name);
  cJSON_AddNumberToObject(root, "input_size", net->opts.input_size);
  cJSON_AddNumberToObject(root, "in_channels", net->opts.in_channels);
  cJSON_AddNumberToObject(root, "num_classes", net->opts.num_classes);
  cJSON_AddNumberToObject(root, "width", net->opts.width);
  cJSON_AddStringToObject(root, "padding", net->opts.standard_padding ? "standard" : "explicit");
  cJSON_AddNumberToObject(root, "flops", t.macs);
  cJSON_AddNumberToObject(root, "params", t.params);
  cJSON_AddNumberToObject(root, "params_all", t.params_all);
  cJSON *layers = cJSON_AddArrayToObject(root, "layers");
  for (int i = 0; i < net->g.n; i++) {
    fb_layer_count c = fb_layer_count_of(net, i);
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "name", c.name);
    cJSON_AddStringToObject(l, "op", c.op);
    const int shape[3] = {c.out.c, c.out.h, c.out.w};
    cJSON_AddItemToObject(l, "out", cJSON_CreateIntArray(shape, 3));
    cJSON_AddNumberToObject(l, "params", c.params);
    cJSON_AddNumberToObject(l, "weights", c.weights);
    cJSON_AddNumberToObject(l, "macs", c.macs);
    cJSON_AddItemToArray(layers, l);
  }
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!text) return fb_fail(st, "flops: cannot format JSON");
  int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
  free(text);
  return ok ? 0 : fb_fail_io(st, "flops: cannot write output");
}

static const char *elem_kind_name(fb_elem_kind k) {
  return k == FB_ELEM_CROSS ? "cross" : k == FB_ELEM_OPEN ? "open" : "block";
}

static cJSON *bits_json(const fb_net *net, const double *macs) {
  const fb_mp_net *m = net->mp;
  cJSON *bits = cJSON_CreateArray();
  for (int b = 0; b < m->n_bits; b++) {
    const fb_mp_elem *e = &m->elems[m->bit_elem[b]];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bit", b);
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "kind", elem_kind_name(e->kind));
    cJSON_AddNumberToObject(o, "stage", e->stage);
    cJSON_AddNumberToObject(o, "path", e->path);
    if (e->kind == FB_ELEM_CROSS) cJSON_AddNumberToObject(o, "from", e->from);
    cJSON_AddNumberToObject(o, "macs", macs[b]);
    cJSON_AddItemToArray(bits, o);
  }
  return bits;
}

static int print_bits_json(FILE *f, const fb_net *net, const double *macs, fb_status *st) {
  cJSON *root = cJSON_CreateObject();
  fb_count t = fb_net_count(net);
  cJSON_AddStringToObject(root, "name", net->name);
  cJSON_AddNumberToObject(root, "input_size", net->opts.input_size);
  cJSON_AddNumberToObject(root, "width", net->opts.width);
  cJSON_AddNumberToObject(root, "n_bits", net->mp->n_bits);
  cJSON_AddNumberToObject(root, "flops", t.macs);
  cJSON_AddNumberToObject(root, "params", t.params);
  cJSON_AddNumberToObject(root, "params_all", t.params_all);
  cJSON *tasks = cJSON_AddObjectToObject(root, "tasks");
  for (int k = 0; fb_task_at(k); k++) {
    if (!(net->tasks & fb_task_at(k)->id)) continue;
    fb_task_cost c = fb_mp_task_cost(net, NULL, fb_task_at(k)->id);
    cJSON *o = cJSON_AddObjectToObject(tasks, fb_task_at(k)->name);
    cJSON_AddNumberToObject(o, "flops", c.macs);
    cJSON_AddNumberToObject(o, "params", c.params);
  }
  cJSON_AddItemToObject(root, "bits", bits_json(net, macs));
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!text) return fb_fail(st, "flops: cannot format JSON");
  int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
  free(text);
  return ok ? 0 : fb_fail_io(st, "flops: cannot write output");
}

int fb_flops_print_bits(FILE *f, const fb_net *net, int json, fb_status *st) {
  const fb_mp_net *m = net->mp;
  double *macs = fb_xmalloc((size_t)(m->n_bits + 1) * sizeof *macs);
  fb_mp_bit_macs(net, macs);
  int rc = 0;
  if (json) {
    rc = print_bits_json(f, net, macs, st);
  } else {
    fb_count t = fb_net_count(net);
    fprintf(f, "%s: multi-path, %d paths, %d searchable bits; %d px, width %g\n", net->name,
            m->n_paths, m->n_bits, net->opts.input_size, net->opts.width);
    fprintf(f, "every bit kept, all heads built: %.3f M MACs, %.6f M params (%.6f M trainable)\n",
            t.macs / 1e6, t.params / 1e6, t.params_all / 1e6);
    for (int k = 0; fb_task_at(k); k++) {
      if (!(net->tasks & fb_task_at(k)->id)) continue;
      fb_task_cost c = fb_mp_task_cost(net, NULL, fb_task_at(k)->id);
      fprintf(f, "  %s network (trunk it reaches + its head): %.3f M MACs, %.6f M params\n",
              fb_task_at(k)->name, c.macs / 1e6, c.params / 1e6);
    }
    if (m->n_bits > 0) fprintf(f, "%4s  %-14s %-6s %14s\n", "bit", "name", "kind", "MACs");
    double sum = 0;
    for (int b = 0; b < m->n_bits; b++) {
      const fb_mp_elem *e = &m->elems[m->bit_elem[b]];
      fprintf(f, "%4d  %-14s %-6s %14.0f\n", b, e->name, elem_kind_name(e->kind), macs[b]);
      sum += macs[b];
    }
    if (m->n_bits > 0)
      fprintf(f, "searchable: %.3f M MACs of %.3f M (%.1f%%)\n", sum / 1e6, t.macs / 1e6,
              t.macs > 0 ? 100 * sum / t.macs : 0.0);
  }
  free(macs);
  return rc;
}
