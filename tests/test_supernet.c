/* The multi-path supernet: the FBNetV5 layout (55 bits), masks (skipped
 * blocks do no work and leave BN statistics alone, dead code is pruned),
 * derivation on hand-made graphs, and the central equivalence: a derived
 * arch file, built as an ordinary network with the supernet's weights,
 * computes exactly what the masked supernet computes for its task. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tiny_supernet.h"
#include "core/rng.h"
#include "nn/arch.h"
#include "nn/builtin_archs.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/derive.h"
#include "train/optim.h"


static fb_net *build_text(const char *text, unsigned tasks, int size, double width,
                          fb_status *st) {
  fb_arch *a = fb_arch_parse(text, "test.json", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = size;
  o.width = width;
  o.standard_padding = 1;
  o.tasks = tasks;
  o.num_classes = 5;
  o.num_cats = 3;
  o.num_seg_classes = 4;
  o.det_width = 16;
  o.seg_width = 8;
  fb_net *n = fb_net_build(a, &o, 7, st);
  fb_arch_free(a);
  return n;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

static int find_node(const fb_net *net, const char *name) {
  for (int i = 0; i < net->g.n; i++)
    if (strcmp(net->g.nodes[i].name, name) == 0) return i;
  return -1;
}

/* ---- the FBNetV5 layout -------------------------------------------------- */

static void test_fbnetv5_layout(void) {
  fb_status st = {0};
  char *text = read_file("archs/fbnetv5_supernet.json");
  CHECK(text != NULL, "archs/fbnetv5_supernet.json readable (run from the repo root)");
  if (!text) return;
  const char *builtin = fb_builtin_arch_text("fbnetv5_supernet");
  CHECK(builtin && strcmp(builtin, text) == 0, "builtin:fbnetv5_supernet is the file's text");
  fb_net *net = build_text(text, FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, 224, 1.0, &st);
  CHECK(net != NULL, "supernet builds: %s", st.msg);
  if (net) {
    const fb_mp_net *m = net->mp;
    CHECK(m->n_bits == 55, "B = 55 (docs/method.md section 3) at width 1.0, got %d", m->n_bits);
    CHECK(m->n_paths == 4, "four paths, got %d", m->n_paths);
    int blocks = 0, cross = 0;
    for (int b = 0; b < m->n_bits; b++)
      if (m->elems[m->bit_elem[b]].kind == FB_ELEM_CROSS) cross++;
      else blocks++;
    CHECK(blocks == 35 && cross == 20, "35 block bits + 20 cross terms, got %d + %d", blocks, cross);
    /* the strides of the four paths: 56, 28, 14, 7 at 224 px */
    for (int p = 0; p < 4; p++)
      CHECK(net->g.nodes[m->path_out[p]].args.out.h == 56 >> p, "path %d at H/%d", p, 4 << p);
    CHECK(strcmp(m->elems[m->bit_elem[0]].name, "stem.1") == 0, "bit 0 is stem.1");
    CHECK(strcmp(m->elems[m->bit_elem[54]].name, "s3.f2to3") == 0, "bit 54 is s3.f2to3, got %s",
          m->elems[m->bit_elem[54]].name);
    /* the per-bit MACs add up to the searchable share of the total */
    double macs[64], sum = 0;
    fb_mp_bit_macs(net, macs);
    for (int b = 0; b < 55; b++) sum += macs[b];
    uint8_t none[55] = {0};
    fb_task_cost all = fb_mp_task_cost(net, NULL, FB_TASK_SEG);
    fb_task_cost min = fb_mp_task_cost(net, none, FB_TASK_SEG);
    CHECK_CLOSE(all.macs - min.macs, sum, 1.0, "seg reaches every bit: all-kept minus none = sum of bits");
    fb_net_free(net);
  }
  free(text);
}

/* ---- masks ------------------------------------------------------------------ */

static void test_skipped_blocks_leave_bn_alone(void) {
  fb_status st = {0};
  fb_net *net = build_text(TINY, FB_TASK_CLS, 32, 1.0, &st);
  CHECK(net != NULL && fb_net_plan(net, 2, 1, &st) == 0, "tiny builds: %s", st.msg);
  if (!net) return;
  CHECK(net->mp->n_bits == 7, "tiny has 7 bits, got %d", net->mp->n_bits);
  fb_rng r;
  fb_rng_seed(&r, 3);
  float *x = fb_net_input(net);
  for (size_t i = 0; i < 2 * 3 * 32 * 32; i++) x[i] = (float)fb_rng_normal(&r);
  fb_net_labels(net)[0] = 1;
  fb_net_labels(net)[1] = 2;
  uint8_t mask[7] = {1, 0, 1, 1, 1, 1, 1}; /* s0.p0.0 skipped */
  fb_graph_set_mask(&net->g, mask);
  int skipped = find_node(net, "s0.p0.0.dw.bn"), kept = find_node(net, "s0.p0.1.dw.bn");
  CHECK(skipped >= 0 && kept >= 0, "BN nodes found");
  if (skipped < 0 || kept < 0) goto done;
  CHECK(!net->g.nodes[skipped].active && net->g.nodes[kept].active, "mask applied");
  const float *rm_skip = fb_param_data(&net->g.params, net->g.nodes[skipped].par[2]);
  const float *rm_kept = fb_param_data(&net->g.params, net->g.nodes[kept].par[2]);
  float before_skip = rm_skip[0], before_kept = rm_kept[0];
  float out_before = net->g.nodes[skipped].out[0] = 12345.0f; /* must not be overwritten */
  fb_net_forward(net, 1);
  CHECK(rm_skip[0] == before_skip, "skipped block's BN running mean unchanged");
  CHECK(rm_kept[0] != before_kept, "active block's BN running mean updated");
  CHECK(net->g.nodes[skipped].out[0] == out_before, "skipped block ran no computation");
  /* the skipped block is the identity: its output alias is its input */
  int blk_out = find_node(net, "s0.p0.0.res");
  CHECK(fb_graph_source(&net->g, blk_out) == find_node(net, "s0.open.pwl.bn"),
        "a skipped block hands on its input");
  /* dead code: cls reads path 1; with f0to1 skipped, path 0's stage-1 block
   * and the f1to0 term cannot reach the loss and are pruned */
  uint8_t m2[7] = {1, 1, 1, 1, 1, 1, 0};
  fb_graph_set_mask(&net->g, m2);
  CHECK(!net->g.nodes[find_node(net, "s1.p0.0.res")].active, "unreachable block pruned");
  CHECK(!net->g.nodes[find_node(net, "s1.f1to0.up")].active, "unreachable cross term pruned");
  CHECK(net->g.nodes[find_node(net, "s1.p1.0.res")].active, "reachable block kept");
done:
  fb_net_free(net);
}

/* ---- derivation on the hand-made graph -------------------------------------- */

static void test_derive_tiny(void) {
  fb_status st = {0};
  fb_net *net = build_text(TINY, FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, 32, 1.0, &st);
  CHECK(net != NULL, "tiny with all heads: %s", st.msg);
  if (!net) return;
  const fb_mp_net *m = net->mp;
  uint8_t kept[64];
  fb_mp d;
  /* cls, f0to1 off: path 0 after the opening of path 1 cannot reach path 1 */
  uint8_t a[7] = {1, 0, 1, 1, 1, 1, 0};
  CHECK(fb_mp_derive(net, a, FB_TASK_CLS, kept, &d, &st) == 0, "derive cls: %s", st.msg);
  int e_p0 = -1, e_f10 = -1, e_s0 = -1, e_s1 = -1;
  for (int e = 0; e < m->n_elems; e++) {
    if (strcmp(m->elems[e].name, "s1.p0.0") == 0) e_p0 = e;
    if (strcmp(m->elems[e].name, "s1.f1to0") == 0) e_f10 = e;
    if (strcmp(m->elems[e].name, "s0.p0.0") == 0) e_s0 = e;
    if (strcmp(m->elems[e].name, "s0.p0.1") == 0) e_s1 = e;
  }
  CHECK(!kept[e_p0] && !kept[e_f10], "cls: path 0 of stage 1 and f1to0 dropped");
  CHECK(!kept[e_s0] && kept[e_s1], "cls: the skipped bit dropped, the kept one kept");
  CHECK(d.n_stem == 2, "derived stem: conv + the kept ir block (%d rows)", d.n_stem);
  CHECK(d.stages[0].n_rows[0] == 1 && d.rows[d.stages[0].first_row[0]].repeat == 1,
        "stage 0 path 0: one copy left");
  CHECK(d.stages[1].n_rows[0] == 0 && d.stages[1].n_rows[1] == 1, "stage 1: path 0 empty");
  CHECK(d.stages[1].n_cross == 0 && !d.stages[1].cross_all, "stage 1: no cross terms");
  fb_mp_free_desc(&d);
  /* seg reads both paths: f1to0 is kept, f0to1 (off) is not */
  CHECK(fb_mp_derive(net, a, FB_TASK_SEG, kept, &d, &st) == 0, "derive seg");
  CHECK(kept[e_p0] && kept[e_f10], "seg: path 0 and f1to0 kept");
  CHECK(d.stages[1].n_cross == 1 && d.stages[1].cross_from[0] == 1 && d.stages[1].cross_to[0] == 0,
        "seg: exactly the term [1, 0]");
  fb_mp_free_desc(&d);
  /* every bit off: only the fixed blocks remain */
  uint8_t z[7] = {0};
  CHECK(fb_mp_derive(net, z, FB_TASK_DET, kept, &d, &st) == 0, "derive det, no bits");
  int n_bits_kept = 0;
  for (int b = 0; b < m->n_bits; b++) n_bits_kept += kept[m->bit_elem[b]];
  CHECK(n_bits_kept == 0, "no bit kept");
  CHECK(d.n_stem == 1 && d.stages[0].has_open && d.stages[1].has_open, "fixed blocks kept");
  fb_mp_free_desc(&d);
  fb_net_free(net);
}

/* ---- derived network == masked supernet --------------------------------------- */

static void randomize_params(fb_net *net, uint64_t seed) {
  fb_rng r;
  fb_rng_seed(&r, seed);
  fb_params *p = &net->g.params;
  for (int i = 0; i < p->n; i++) {
    float *v = fb_param_data(p, i);
    const int is_var = strstr(p->p[i].name, "running_var") != NULL;
    for (size_t k = 0; k < p->p[i].numel; k++)
      v[k] = is_var ? 0.5f + (float)fb_rng_uniform(&r) : 0.3f * (float)fb_rng_normal(&r);
  }
}

/* Copies the parameters of the active nodes of a into the nodes of b in
 * order (both lists of nodes with parameters must agree in op and shapes;
 * parameter-free nodes may differ: a fusion sum left with one term is a copy
 * in the supernet and absent in the derived net). Returns 0 when they do. */
static int has_params(const fb_node *n) { return n->op && n->active && n->args.n_par > 0; }

static int copy_active_params(const fb_net *a, fb_net *b) {
  int j = 0;
  for (int i = 0; i < a->g.n; i++) {
    const fb_node *na = &a->g.nodes[i];
    if (!has_params(na)) continue;
    while (j < b->g.n && !has_params(&b->g.nodes[j])) j++;
    if (j >= b->g.n) return -1;
    const fb_node *nb = &b->g.nodes[j++];
    if (na->op != nb->op || na->args.n_par != nb->args.n_par) return -1;
    for (int k = 0; k < na->args.n_par; k++) {
      const fb_param *pa = &a->g.params.p[na->par[k]], *pb = &b->g.params.p[nb->par[k]];
      if (pa->numel != pb->numel) return -1;
      memcpy(fb_param_data(&b->g.params, nb->par[k]), fb_param_data(&a->g.params, na->par[k]),
             pa->numel * sizeof(float));
    }
  }
  while (j < b->g.n && !has_params(&b->g.nodes[j])) j++;
  return j == b->g.n ? 0 : -1;
}

static double max_diff(const float *x, const float *y, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i] - y[i]));
  return m;
}

static int task_output(const fb_net *net, unsigned task) {
  return task == FB_TASK_CLS ? net->logits_node : task == FB_TASK_DET ? net->det.cls : net->seg.logits;
}

static void check_equivalence(const char *text, int size, double width, unsigned task,
                              const uint8_t *mask, const char *what) {
  fb_status st = {0};
  fb_net *sup = build_text(text, task, size, width, &st);
  if (!sup || fb_net_plan(sup, 2, 1, &st)) {
    CHECK(0, "%s: supernet: %s", what, st.msg);
    fb_net_free(sup);
    return;
  }
  randomize_params(sup, 11);
  fb_graph_set_mask(&sup->g, mask);
  char *derived = fb_derive_arch_json(sup, mask, task, "test.json", NULL, -1, 0, NULL, &st);
  fb_net *der = derived ? build_text(derived, task, size, width, &st) : NULL;
  if (!der || fb_net_plan(der, 2, 1, &st)) {
    CHECK(0, "%s: derived net: %s", what, st.msg);
    goto done;
  }
  CHECK(der->mp->n_bits == 0, "%s: a derived file has no searchable bits", what);
  CHECK(copy_active_params(sup, der) == 0, "%s: derived net = the supernet's active nodes", what);
  const fb_count c = fb_net_count(der);
  const fb_task_cost tc = fb_mp_task_cost(sup, mask, task);
  CHECK_CLOSE(c.macs, tc.macs, 0.5, "derived MACs = the task's cost under the mask");
  CHECK_CLOSE(c.params, tc.params, 0.5, "derived params = the task's cost under the mask");
  fb_rng r;
  fb_rng_seed(&r, 5);
  const size_t n_in = (size_t)2 * 3 * size * size;
  for (size_t i = 0; i < n_in; i++) fb_net_input(sup)[i] = (float)fb_rng_normal(&r);
  memcpy(fb_net_input(der), fb_net_input(sup), n_in * sizeof(float));
  fb_net_forward(sup, 0);
  fb_net_forward(der, 0);
  const int os = task_output(sup, task), od = task_output(der, task);
  const size_t n = fb_numel(sup->g.nodes[os].args.out);
  CHECK(n == fb_numel(der->g.nodes[od].args.out), "%s: same output size", what);
  double d = max_diff(sup->g.nodes[os].out, der->g.nodes[od].out, n);
  CHECK(d == 0.0, "%s: derived output equals the masked supernet's exactly (max diff %g)", what, d);
done:
  free(derived);
  fb_net_free(der);
  fb_net_free(sup);
}

static void test_derived_equals_masked_supernet(void) {
  static const unsigned tasks[3] = {FB_TASK_CLS, FB_TASK_DET, FB_TASK_SEG};
  fb_rng r;
  fb_rng_seed(&r, 99);
  uint8_t mask[64];
  for (int k = 0; k < 3; k++) {
    for (int trial = 0; trial < 3; trial++) {
      for (int b = 0; b < 7; b++) mask[b] = fb_rng_uniform(&r) < 0.5;
      char what[64];
      snprintf(what, sizeof what, "tiny task %u trial %d", tasks[k], trial);
      check_equivalence(TINY, 32, 1.0, tasks[k], mask, what);
    }
  }
  char *text = read_file("archs/fbnetv5_supernet.json");
  if (!text) return;
  for (int k = 0; k < 3; k++) {
    for (int b = 0; b < 55; b++) mask[b] = fb_rng_uniform(&r) < 0.5;
    char what[64];
    snprintf(what, sizeof what, "fbnetv5 task %u", tasks[k]);
    check_equivalence(text, 64, 0.25, tasks[k], mask, what);
  }
  free(text);
}

/* ---- shared gradient buffers ------------------------------------------------- */

/* Parameter gradients of one training step with gradient buffers shared
 * (the default) and with every node owning its buffer must be identical, for
 * random masks (aliases of skipped blocks change who writes which gradient). */
static void test_shared_gradients(void) {
  fb_status st = {0};
  char *text = read_file("archs/fbnetv5_supernet.json");
  if (!text) return;
  const unsigned all = FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG;
  fb_net *a = build_text(text, all, 64, 0.25, &st), *b = build_text(text, all, 64, 0.25, &st);
  b->g.keep_grads = 1;
  CHECK(a && b && fb_net_plan(a, 2, 1, &st) == 0 && fb_net_plan(b, 2, 1, &st) == 0, "plan: %s",
        st.msg);
  fb_rng r;
  fb_rng_seed(&r, 17);
  uint8_t mask[55];
  for (int trial = 0; trial < 3; trial++) {
    for (int k = 0; k < 55; k++) mask[k] = fb_rng_uniform(&r) < 0.5;
    fb_net *nets[2] = {a, b};
    for (int k = 0; k < 2; k++) {
      fb_net *n = nets[k];
      fb_rng d;
      fb_rng_seed(&d, 100 + trial);
      for (size_t i = 0; i < (size_t)2 * 3 * 64 * 64; i++) fb_net_input(n)[i] = (float)fb_rng_normal(&d);
      fb_net_labels(n)[0] = 1;
      fb_net_labels(n)[1] = 3;
      fb_graph *g = &n->g;
      for (int t = 0; t < g->n; t++) /* det/seg targets: some positives, some ignored */
        if (!g->nodes[t].op && (strstr(g->nodes[t].name, "tgt") || strstr(g->nodes[t].name, "seg"))) {
          float *o = g->nodes[t].out;
          for (size_t i = 0; i < fb_numel(g->nodes[t].args.out); i++)
            o[i] = (float)(fb_rng_below(&d, 3)) - (strstr(g->nodes[t].name, "cls") ? 1.0f : 0.0f);
        }
      fb_graph_set_mask(g, mask);
      fb_params_zero_grad(&g->params);
      fb_net_forward(n, 1);
      fb_net_backward(n);
    }
    size_t diff = 0;
    for (size_t i = 0; i < a->g.params.total; i++) diff += a->g.params.grad[i] != b->g.params.grad[i];
    CHECK(diff == 0, "trial %d: shared vs private gradient buffers: %zu of %zu gradients differ",
          trial, diff, a->g.params.total);
  }
  fb_net_free(a);
  fb_net_free(b);
  free(text);
}

/* The optimizer leaves the parameters of skipped blocks alone (no weight
 * decay, no momentum drift), as PyTorch skips parameters without gradients,
 * and counts AdamW steps per slot. */
static void test_optimizer_skips_skipped_blocks(void) {
  fb_status st = {0};
  fb_net *net = build_text(TINY, FB_TASK_CLS, 32, 1.0, &st);
  CHECK(net && fb_net_plan(net, 2, 1, &st) == 0, "tiny: %s", st.msg);
  if (!net) return;
  fb_params *p = &net->g.params;
  const int skipped = fb_params_find(p, "s0.p0.0.dw.conv.weight");
  const int kept = fb_params_find(p, "s0.p0.1.dw.conv.weight");
  CHECK(skipped >= 0 && kept >= 0 && p->used && p->steps, "slots found, usage tracked");
  if (skipped < 0 || kept < 0 || !p->used || !p->steps) goto done;
  fb_optim_cfg o = fb_optim_adamw_default();
  o.weight_decay = 0.1f;
  uint8_t on[7] = {1, 1, 1, 1, 1, 1, 1}, off[7] = {1, 0, 1, 1, 1, 1, 1};
  for (int step = 1; step <= 3; step++) { /* all on, then bit 1 off twice */
    fb_graph_set_mask(&net->g, step == 1 ? on : off);
    for (size_t i = 0; i < (size_t)2 * 3 * 32 * 32; i++) fb_net_input(net)[i] = (float)(i % 7) - 3;
    fb_net_labels(net)[0] = 1;
    fb_net_labels(net)[1] = 2;
    const float before_s = fb_param_data(p, skipped)[0], before_k = fb_param_data(p, kept)[0];
    fb_params_zero_grad(p);
    fb_net_forward(net, 1);
    fb_net_backward(net);
    fb_optim_step(p, &o, 0.01f, step);
    if (step > 1) {
      CHECK(fb_param_data(p, skipped)[0] == before_s, "step %d: skipped block's weight unchanged", step);
      CHECK(fb_param_data(p, kept)[0] != before_k, "step %d: active block's weight updated", step);
    }
  }
  CHECK(p->steps[skipped] == 1.0f && p->steps[kept] == 3.0f,
        "per-slot AdamW steps: skipped %g (1), active %g (3)", p->steps[skipped], p->steps[kept]);
done:
  fb_net_free(net);
}

/* Forward-only networks share activation memory by lifetime: every head
 * output must equal the ordinary network's bit for bit. */
static void test_inference_plan(void) {
  fb_status st = {0};
  char *text = read_file("archs/fbnetv5_supernet.json");
  if (!text) return;
  const unsigned all = FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG;
  fb_net *a = build_text(text, all, 64, 0.25, &st), *b = build_text(text, all, 64, 0.25, &st);
  CHECK(a && b && fb_net_plan(a, 2, 1, &st) == 0 && fb_net_plan_inference(b, 2, &st) == 0,
        "plans: %s", st.msg);
  if (!a || !b) goto done;
  randomize_params(a, 3);
  memcpy(b->g.params.data, a->g.params.data, a->g.params.total * sizeof(float));
  uint8_t mask[55];
  fb_rng r;
  fb_rng_seed(&r, 8);
  for (int k = 0; k < 55; k++) mask[k] = fb_rng_uniform(&r) < 0.6;
  fb_graph_set_mask(&a->g, mask);
  fb_graph_set_mask(&b->g, mask);
  for (size_t i = 0; i < (size_t)2 * 3 * 64 * 64; i++)
    fb_net_input(a)[i] = fb_net_input(b)[i] = (float)fb_rng_normal(&r);
  fb_net_forward(a, 0);
  fb_net_forward(b, 0);
  const int outs[5][2] = {{a->logits_node, b->logits_node}, {a->det.cls, b->det.cls},
                          {a->det.box, b->det.box}, {a->det.ctr, b->det.ctr},
                          {a->seg.logits, b->seg.logits}};
  for (int k = 0; k < 5; k++) {
    const size_t n = fb_numel(a->g.nodes[outs[k][0]].args.out);
    double d = max_diff(a->g.nodes[outs[k][0]].out, b->g.nodes[outs[k][1]].out, n);
    CHECK(d == 0.0, "head output %d identical with shared activations (max diff %g)", k, d);
  }
  size_t sum = 0;
  for (int i = 0; i < a->g.n; i++) sum += fb_numel(a->g.nodes[i].args.out);
  CHECK(b->g.act_arena != NULL, "inference arena allocated (%zu floats of activations in all)", sum);
done:
  fb_net_free(a);
  fb_net_free(b);
  free(text);
}

/* ---- errors ------------------------------------------------------------------ */

static void expect_error(const char *text, const char *fragment) {
  fb_status st = {0};
  fb_arch *a = fb_arch_parse(text, "bad.json", &st);
  CHECK(a == NULL && strstr(st.msg, fragment) != NULL, "error '%s' expected, got '%s'", fragment,
        a ? "(parsed)" : st.msg);
  fb_arch_free(a);
}

static void test_errors(void) {
  const char *stem = "\"stem\": [[\"conv_k3_hs\", 8, 2, 1]]";
  char buf[1024];
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"paths\": [[]]}]}", stem);
  expect_error(buf, "stages[0] needs \"open\"");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[], []]}]}", stem);
  expect_error(buf, "stages[0].paths must be an array of 1 row lists");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[]], \"fusion\": [[0, 1]]}]}", stem);
  expect_error(buf, "stages[0].fusion[0] must be a path index in [0, 0]");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[]]}], \"heads\": {\"det\": [2]}}", stem);
  expect_error(buf, "heads.det[0] must be a path index");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[]], \"fusion\": [[0, 1e999]]}]}", stem);
  expect_error(buf, "stages[0].fusion[0] must be a path index"); /* no UB casting 1e999 to int */
  snprintf(buf, sizeof buf, "{\"name\": \"x\", \"input_size\": 1e999, %s, \"stages\": [{\"open\": "
           "[\"ir_k3_hs\", 8, 2, 1], \"paths\": [[]]}]}", stem);
  expect_error(buf, "\"input_size\" must be an integer in [1, 16384]");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[]]}], \"bogus\": 1}", stem);
  expect_error(buf, "unknown key \"bogus\"");
  snprintf(buf, sizeof buf, "{\"name\": \"x\", %s, \"stages\": [{\"open\": [\"ir_k3_hs\", 8, 2, 1], "
           "\"paths\": [[[\"ir_k4_hs\", 8, 1, 1]]]}]}", stem);
  expect_error(buf, "s0.p0 row 0: unknown op 'ir_k4_hs'");
  fb_status st = {0};
  CHECK(build_text(TINY, FB_TASK_CLS, 48, 1.0, &st) == NULL &&
            strstr(st.msg, "multiple of 32") != NULL,
        "48 px rejected: %s", st.msg);
  uint8_t m[8];
  CHECK(fb_mask_from_string("0101", 7, m, &st) != 0 && strstr(st.msg, "7 bits"), "bit string length");
  CHECK(fb_mask_from_string("01x1010", 7, m, &st) != 0 && strstr(st.msg, "character 2"),
        "bit string character");
  CHECK(fb_mask_from_string("0101010", 7, m, &st) == 0 && m[1] == 1 && m[2] == 0, "bit string parse");
}

int main(void) {
  test_fbnetv5_layout();
  test_skipped_blocks_leave_bn_alone();
  test_derive_tiny();
  test_derived_equals_masked_supernet();
  test_shared_gradients();
  test_optimizer_skips_skipped_blocks();
  test_inference_plan();
  test_errors();
  return check_report("test_supernet");
}
