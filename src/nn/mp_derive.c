/* Per-task views of a multi-path network under a bit mask: which nodes a
 * task's head needs, what they cost, and the derived architecture
 * (docs/method.md section 3: kept bits, then drop what cannot reach the head). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "tasks/task.h"

int fb_net_task_roots(const fb_net *net, unsigned task, int *roots) {
  const fb_task_row *r = fb_task_row_of(task);
  return r && (net->tasks & task) ? r->roots(net, roots) : 0;
}

/* live[i] for the nodes task needs under mask; returns 0 or -1 (no head). */
static int task_liveness(const fb_net *net, const uint8_t *mask, unsigned task, uint8_t *act,
                         uint8_t *live) {
  int roots[8];
  int n = fb_net_task_roots(net, task, roots);
  if (n == 0) return -1;
  fb_graph_mask_activity(&net->g, mask, act);
  fb_graph_liveness(&net->g, act, roots, n, live);
  return 0;
}

fb_task_cost fb_mp_task_cost(const fb_net *net, const uint8_t *mask, unsigned task) {
  fb_task_cost c = {0, 0};
  const fb_mp_net *m = net->mp;
  const int n = net->g.n;
  uint8_t *act = m->scratch, *live = m->scratch + n;
  if (task_liveness(net, mask, task, act, live) == 0) {
    for (int i = 0; i < n; i++) {
      if (!live[i]) continue;
      c.macs += m->node_macs[i];
      c.params += m->node_weights[i];
    }
  }
  return c;
}

double fb_mp_task_elem_sum(const fb_net *net, const uint8_t *mask, unsigned task,
                           const double *per_elem) {
  const fb_mp_net *m = net->mp;
  const int n = net->g.n;
  uint8_t *act = m->scratch, *live = m->scratch + n;
  double sum = 0;
  if (task_liveness(net, mask, task, act, live)) return 0;
  for (int e = 0; e < m->n_elems; e++) {
    const int last = m->elems[e].last;
    if (act[last] && live[last]) sum += per_elem[e];
  }
  return sum;
}

void fb_mp_bit_macs(const fb_net *net, double *macs) {
  const fb_mp_net *m = net->mp;
  for (int b = 0; b < m->n_bits; b++) {
    const fb_mp_elem *e = &m->elems[m->bit_elem[b]];
    macs[b] = 0;
    for (int i = e->first; i <= e->last; i++) macs[b] += m->node_macs[i];
  }
}

/* Appends one kept copy of row r as a new derived row of repeat 1 (later
 * copies of the same row are merged into it by the caller). */
static void emit_copy(fb_mp *out, int *cap, const fb_arch_row *r, int copy) {
  if (out->n_rows == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    out->rows = fb_xrealloc(out->rows, (size_t)*cap * sizeof *out->rows);
  }
  fb_arch_row nr = *r;
  nr.repeat = 1;
  if (copy > 0) nr.stride = 1;
  out->rows[out->n_rows++] = nr;
}

int fb_mp_derive(const fb_net *net, const uint8_t *mask, unsigned task, uint8_t *kept,
                 fb_mp *out, fb_status *st) {
  const fb_mp_net *m = net->mp;
  if (!m) return fb_fail(st, "derive: %s is not a multi-path network", net->name);
  const int n = net->g.n;
  uint8_t *act = fb_xmalloc(2 * (size_t)n), *live = act + n;
  if (task_liveness(net, mask, task, act, live)) {
    free(act);
    return fb_fail(st, "derive: the network has no %s head", fb_task_name(task));
  }
  for (int e = 0; e < m->n_elems; e++) {
    const fb_mp_elem *el = &m->elems[e];
    kept[e] = act[el->last] && live[el->last];
  }
  free(act);
  /* the derived description: same stages, kept rows, explicit cross terms */
  const fb_mp *src = &m->arch;
  memset(out, 0, sizeof *out);
  out->search = 0;
  out->has_head = src->has_head && task == FB_TASK_CLS;
  out->head = src->head;
  out->n_stages = src->n_stages;
  int cap = 0, e = 0, live_paths = 0;
  /* rows are emitted per (stage, path) group in element order; merge
   * consecutive kept copies of the same source row */
  int prev_row = -2, prev_group = -2;
  for (int si = -1; si < src->n_stages; si++) {
    fb_mp_stage *os = si >= 0 ? &out->stages[si] : NULL;
    if (os) {
      *os = src->stages[si];
      os->cross_all = 0;
      os->n_cross = 0;
      os->has_open = 0;
      for (int p = 0; p < FB_MP_MAX_PATHS; p++) os->n_rows[p] = 0, os->first_row[p] = 0;
    }
    for (; e < m->n_elems && m->elems[e].stage == si; e++) {
      const fb_mp_elem *el = &m->elems[e];
      if (!kept[e]) continue;
      if (el->kind == FB_ELEM_OPEN) {
        os->has_open = 1;
        live_paths = el->path + 1;
        continue;
      }
      if (el->kind == FB_ELEM_CROSS) {
        os->cross_from[os->n_cross] = el->from;
        os->cross_to[os->n_cross] = el->path;
        os->n_cross++;
        continue;
      }
      const int group = (si + 1) * FB_MP_MAX_PATHS + el->path;
      const fb_arch_row *r = &src->rows[el->row];
      if (group == prev_group && el->row == prev_row && out->n_rows > 0) {
        out->rows[out->n_rows - 1].repeat++;
      } else {
        if (os && os->n_rows[el->path] == 0) os->first_row[el->path] = out->n_rows;
        emit_copy(out, &cap, r, el->copy);
        if (os) os->n_rows[el->path]++;
        else out->n_stem++;
      }
      prev_group = group;
      prev_row = el->row;
    }
    if (os) {
      /* paths beyond the last live one do not exist in the derived net */
      if (os->n_paths > live_paths) os->n_paths = live_paths;
      if (os->has_open && live_paths - 1 >= os->n_paths) os->has_open = 0;
    }
  }
  const int np = live_paths;
  for (int t = 0; t < FB_TASKS_MAX; t++) { /* heads keep their live paths, else the last */
    int n = 0;
    for (int k = 0; k < src->n_head_paths[t]; k++)
      if (src->head_paths[t][k] < np) out->head_paths[t][n++] = src->head_paths[t][k];
    if (n == 0) out->head_paths[t][n++] = np - 1;
    out->n_head_paths[t] = n;
  }
  return 0;
}

void fb_mask_to_string(const uint8_t *mask, int n_bits, char *s) {
  for (int b = 0; b < n_bits; b++) s[b] = mask[b] ? '1' : '0';
  s[n_bits] = 0;
}

int fb_mask_from_string(const char *s, int n_bits, uint8_t *mask, fb_status *st) {
  if ((int)strlen(s) != n_bits)
    return fb_fail(st, "architecture bit string has %zu characters, the supernet has %d bits",
                   strlen(s), n_bits);
  for (int b = 0; b < n_bits; b++) {
    if (s[b] != '0' && s[b] != '1')
      return fb_fail(st, "architecture bit string: character %d is '%c' (only 0 and 1)", b, s[b]);
    mask[b] = s[b] == '1';
  }
  return 0;
}
