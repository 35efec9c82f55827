/* Gradient buffers of a graph share one arena (peak memory).
 *
 * In the reverse pass, node i's gradient is live from the backward of the
 * last node that may write it until node i's own backward: its writers are
 * the nodes that read i directly or through the alias chain of skippable
 * nodes that can resolve to i (a skipped block hands its input on), so the
 * plan holds for every mask. Nodes without writers (losses, unused outputs)
 * are live from the start of the pass. Reverse time of node j's backward is
 * t(j) = n - 1 - j; the start is t = -1. Buffers whose live intervals do not
 * overlap share memory; each is zeroed (or seeded) when its interval starts.
 * Placement: largest first, at the lowest offset free of every placed buffer
 * whose interval overlaps (a classic offset allocator). */
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/status.h"

enum { ALIGN = 16 }; /* floats: 64-byte aligned buffers */

typedef struct range {
  size_t off, len;
} range;

static int cmp_range(const void *a, const void *b) {
  const range *x = a, *y = b;
  return (x->off > y->off) - (x->off < y->off);
}

/* w[i]: the highest index of a node that reads node i, directly or through
 * the alias chain of skippable nodes (in backward: the last writer of i's
 * gradient); g->n when none. */
static void last_readers(const fb_graph *g, int *w) {
  for (int i = 0; i < g->n; i++) w[i] = -1;
  for (int j = 0; j < g->n; j++) {
    const fb_node *nd = &g->nodes[j];
    if (!nd->op) continue;
    for (int k = 0; k < nd->args.n_in; k++)
      for (int id = nd->in[k]; id >= 0; id = g->nodes[id].alias)
        if (w[id] < j) w[id] = j;
  }
  for (int i = 0; i < g->n; i++)
    if (w[i] < 0) w[i] = g->n;
}

static size_t padded(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
  const size_t *len = ctx;
  const int i = *(const int *)a, j = *(const int *)b;
  if (len[i] != len[j]) return len[i] < len[j] ? 1 : -1;
  return i - j;
}

/* Lowest offset for `len` floats outside the ranges r[0..m) (sorted). */
static size_t first_fit(range *r, int m, size_t len) {
  qsort(r, (size_t)m, sizeof *r, cmp_range);
  size_t off = 0;
  for (int k = 0; k < m; k++) {
    if (r[k].off >= off + len) break;
    if (r[k].off + r[k].len > off) off = r[k].off + r[k].len;
  }
  return off;
}

size_t fb_interval_place(int n, const size_t *len, const int *start, const int *end,
                         size_t *off) {
  int *order = fb_xmalloc((size_t)(n + 1) * sizeof *order);
  uint8_t *placed = fb_xcalloc((size_t)n + 1, 1);
  range *r = fb_xmalloc((size_t)(n + 1) * sizeof *r);
  for (int i = 0; i < n; i++) order[i] = i;
  qsort_r(order, (size_t)n, sizeof *order, cmp_len_desc, (void *)len);
  size_t total = 0;
  for (int k = 0; k < n; k++) {
    const int i = order[k];
    int m = 0;
    for (int j = 0; j < n; j++)
      if (placed[j] && start[i] <= end[j] && start[j] <= end[i])
        r[m++] = (range){off[j], padded(len[j])};
    off[i] = first_fit(r, m, padded(len[i]));
    placed[i] = 1;
    if (off[i] + padded(len[i]) > total) total = off[i] + padded(len[i]);
  }
  free(order);
  free(placed);
  free(r);
  return total;
}

size_t fb_grad_plan(fb_graph *g) {
  const int n = g->n;
  fb_backend_release(g->backend, g->grad_arena);
  free(g->grad_writer);
  free(g->grad_zero_order);
  g->grad_writer = fb_xmalloc((size_t)(n + 1) * sizeof *g->grad_writer);
  last_readers(g, g->grad_writer);
  size_t *len = fb_xmalloc((size_t)(n + 1) * sizeof *len);
  int *start = fb_xmalloc((size_t)(n + 1) * sizeof *start);
  int *end = fb_xmalloc((size_t)(n + 1) * sizeof *end);
  for (int i = 0; i < n; i++) { /* reverse time: t(j) = n - 1 - j, the start is -1 */
    const int w = g->grad_writer[i];
    len[i] = fb_numel(g->nodes[i].args.out);
    start[i] = g->keep_grads || w == n ? -1 : n - 1 - w;
    end[i] = g->keep_grads ? n : n - 1 - i;
  }
  size_t *off = fb_xmalloc((size_t)(n + 1) * sizeof *off);
  const size_t total = fb_interval_place(n, len, start, end, off);
  free(len);
  free(start);
  free(end);
  /* the arena itself is allocated by the first backward (fb_grad_arena_ensure):
   * inference never pays for it */
  g->grad_arena = NULL;
  g->grad_arena_n = total ? total : ALIGN;
  free(g->grad_offset);
  g->grad_offset = off;
  for (int i = 0; i < n; i++) g->nodes[i].dout = NULL;
  /* the order in which gradients start: by last writer, latest first */
  int *order = fb_xmalloc((size_t)(n + 1) * sizeof *order);
  for (int i = 0; i < n; i++) order[i] = i;
  for (int a = 1; a < n; a++) { /* insertion sort by w descending (stable) */
    int v = order[a], b = a - 1;
    while (b >= 0 && g->grad_writer[order[b]] < g->grad_writer[v]) order[b + 1] = order[b], b--;
    order[b + 1] = v;
  }
  g->grad_zero_order = order;
  return total;
}

float *fb_act_plan(fb_graph *g) {
  const int n = g->n;
  int *w = fb_xmalloc((size_t)(n + 1) * sizeof *w);
  last_readers(g, w);
  size_t *len = fb_xmalloc((size_t)(n + 1) * sizeof *len), *off = fb_xmalloc((size_t)(n + 1) * sizeof *off);
  int *start = fb_xmalloc((size_t)(n + 1) * sizeof *start);
  int *end = fb_xmalloc((size_t)(n + 1) * sizeof *end);
  for (int i = 0; i < n; i++) { /* forward time: node i's output is written at step i */
    const fb_node *nd = &g->nodes[i];
    len[i] = fb_numel(nd->args.out);
    start[i] = nd->op ? i : -1; /* graph inputs are filled before the pass, stay readable */
    end[i] = !nd->op || nd->keep_out || w[i] == n || nd->op->is_loss ? n : w[i];
  }
  const size_t total = fb_interval_place(n, len, start, end, off);
  float *arena = fb_backend_alloc(g->backend, total ? total : ALIGN);
  for (int i = 0; i < n; i++) g->nodes[i].out = arena + off[i];
  free(w);
  free(len);
  free(off);
  free(start);
  free(end);
  return arena;
}

void fb_grad_arena_ensure(fb_graph *g) {
  if (g->grad_arena || !g->grad_offset) return;
  g->grad_arena = fb_backend_alloc(g->backend, g->grad_arena_n);
  for (int i = 0; i < g->n; i++) g->nodes[i].dout = g->grad_arena + g->grad_offset[i];
}
