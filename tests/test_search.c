/* End-to-end search steps (real forward and backward of a small supernet on
 * generated multi-task data, every head, REINFORCE updates): with a planted
 * preference that makes each task's reward depend on DIFFERENT bits, each
 * task's distribution must move toward its own planted architecture; and
 * one step's loss weighting must be gamma_t * rho_t per task. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tiny_supernet.h"
#include "data/loader.h"
#include "data/synth.h"
#include "nn/arch.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/derive.h"
#include "search/search.h"
#include "train/mt_trainer.h"


enum { B = 7 };

/* Planted best architectures: each task prefers different bits. */
static const uint8_t BEST[3][B] = {
    {1, 0, 1, 0, 1, 0, 1}, /* cls */
    {0, 1, 1, 1, 0, 0, 0}, /* det */
    {1, 1, 0, 0, 0, 1, 1}, /* seg */
};

static double planted(void *ctx, unsigned task, const uint8_t *mask, int n_bits) {
  (void)ctx;
  const int t = task == FB_TASK_CLS ? 0 : task == FB_TASK_DET ? 1 : 2;
  int wrong = 0;
  for (int b = 0; b < n_bits; b++) wrong += mask[b] != BEST[t][b];
  return 0.5 * wrong; /* per wrong bit: 0.5, comparable to the losses' noise */
}

static fb_net *build(unsigned tasks, const fb_mt_dataset *d, int batch, fb_status *st) {
  fb_net *n = TINY_BUILD(tasks, d, st);
  if (n && fb_net_plan(n, batch, 3, st)) {
    fb_net_free(n);
    return NULL;
  }
  return n;
}

static void test_planted_search(void) {
  fb_status st = {0};
  fb_mt_dataset d;
  CHECK(fb_synth_dataset(64, 32, 3, 5, &d, &st) == 0, "synthetic data: %s", st.msg);
  const unsigned all = FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG;
  fb_net *net = build(all, &d, 8, &st);
  CHECK(net != NULL, "tiny supernet: %s", st.msg);
  if (!net) goto done;
  fb_search_cfg c = fb_search_cfg_default();
  c.tasks = all;
  c.steps = 600;
  c.warmup_frac = 0.1;
  c.theta_lr = 0.025; /* one logit per choice: a bit moves as at 0.05 with one */
  c.init_prob = 0.5;
  c.batch = 8;
  fb_searcher e;
  CHECK(fb_searcher_init(&e, &c, net, &st) == 0, "searcher: %s", st.msg);
  e.reward_hook = planted;
  fb_loader_cfg lc = fb_loader_cfg_default(32, 3, 8, 1);
  lc.drop_last = 1;
  fb_loader *l = fb_loader_create(&d, &lc, &st);
  CHECK(l != NULL, "loader: %s", st.msg);
  long epoch = 0;
  fb_loader_start_epoch(l, epoch);
  int ok = 1;
  double first_loss[3] = {0}, last_loss[3] = {0};
  for (long s = 0; s < c.steps && ok; s++) {
    const fb_batch *b = fb_loader_next(l);
    if (!b) {
      fb_loader_start_epoch(l, ++epoch);
      b = fb_loader_next(l);
    }
    fb_search_step_info o;
    ok = fb_searcher_step(&e, b, &o, &st) == 0;
    for (int t = 0; t < 3; t++) {
      if (s < 20) first_loss[t] += o.loss[t] / 20;
      if (s >= c.steps - 20) last_loss[t] += o.loss[t] / 20;
    }
    if (s == 0) {
      /* step 1: every distribution is the same, so rho = 1 for every task,
       * and each head's loss node carries its own weight * gamma * rho */
      for (int t = 0; t < 3; t++) CHECK_CLOSE(o.rho[t], 1.0, 1e-12, "rho at the start");
      CHECK_CLOSE(net->g.nodes[net->loss_node].loss_weight, 1.0, 1e-6, "cls loss weight");
    }
  }
  CHECK(ok, "600 search steps run: %s", st.msg);
  int right[3] = {0};
  if (getenv("FB_VERBOSE"))
    for (int t = 0; t < 3; t++)
      for (int b = 0; b < B; b++) fprintf(stderr, "%s%.2f%s", b ? " " : "p: ", fb_archdist_prob(&e.dist, t, b), b == B - 1 ? "\n" : "");
  for (int t = 0; t < 3; t++) {
    for (int b = 0; b < B; b++) right[t] += (fb_archdist_prob(&e.dist, t, b) > 0.5) == BEST[t][b];
    CHECK(right[t] >= 6, "task %d: %d of 7 bits on its planted side after 600 steps", t, right[t]);
    CHECK(last_loss[t] < first_loss[t], "task %d loss decreases while searching (%.3f -> %.3f)", t,
          first_loss[t], last_loss[t]);
  }
  /* the three distributions really differ where the plants differ */
  CHECK((fb_archdist_prob(&e.dist, 0, 0) > 0.5) != (fb_archdist_prob(&e.dist, 1, 0) > 0.5),
        "cls and det disagree on bit 0 as planted");
  fb_searcher_free(&e);
  fb_loader_free(l);
  fb_net_free(net);
done:
  fb_mt_dataset_free(&d);
}

/* Importance weights scale each task's gradient: after the distributions
 * diverge, the loss nodes' weights are gamma_t * rho_t * (head weight), and
 * sum_t rho_t = T. */
static void test_loss_weighting(void) {
  fb_status st = {0};
  fb_mt_dataset d;
  fb_synth_dataset(16, 32, 3, 9, &d, &st);
  fb_net *net = build(FB_TASK_CLS | FB_TASK_SEG, &d, 4, &st);
  CHECK(net != NULL, "cls+seg supernet: %s", st.msg);
  if (!net) goto done;
  fb_search_cfg c = fb_search_cfg_default();
  c.tasks = FB_TASK_CLS | FB_TASK_SEG;
  c.gamma[0] = 2.0;
  c.gamma[2] = 0.5;
  fb_searcher e;
  fb_searcher_init(&e, &c, net, &st);
  for (int b = 0; b < B; b++) { /* make the two distributions differ: keep logits 1.5, -0.5 */
    e.dist.theta[2 * b + 1] = 1.5;
    e.dist.theta[e.dist.P + 2 * b + 1] = -0.5;
  }
  fb_loader_cfg lc = fb_loader_cfg_default(32, 3, 4, 1);
  fb_loader *l = fb_loader_create(&d, &lc, &st);
  fb_loader_start_epoch(l, 0);
  fb_search_step_info o;
  CHECK(fb_searcher_step(&e, fb_loader_next(l), &o, &st) == 0, "one step: %s", st.msg);
  CHECK_CLOSE(o.rho[0] + o.rho[1], 2.0, 1e-9, "sum of rho = T");
  CHECK(fabs(o.rho[0] - 1.0) > 1e-3, "rho differs from 1 once the distributions differ");
  CHECK_CLOSE(net->g.nodes[net->loss_node].loss_weight, 2.0 * o.rho[0], 1e-5, "cls: gamma * rho");
  CHECK_CLOSE(net->g.nodes[net->seg.loss].loss_weight, 0.5 * o.rho[1], 1e-5, "seg: gamma * rho");
  fb_searcher_free(&e);
  fb_loader_free(l);
  fb_net_free(net);
done:
  fb_mt_dataset_free(&d);
}

/* The resource term: with a MACs target below every architecture's cost,
 * the reward grows with the MACs of the sampled network, so the search must
 * turn bits off, the expensive ones first. */
static void test_flops_target(void) {
  fb_status st = {0};
  fb_mt_dataset d;
  fb_synth_dataset(32, 32, 3, 4, &d, &st);
  fb_net *net = build(FB_TASK_SEG, &d, 4, &st);
  CHECK(net != NULL, "seg supernet: %s", st.msg);
  if (!net) goto done;
  fb_search_cfg c = fb_search_cfg_default();
  c.tasks = FB_TASK_SEG;
  c.steps = 300;
  c.warmup_frac = 0.05;
  c.theta_lr = 0.025; /* one logit per choice: a bit moves as at 0.05 with one */
  fb_searcher e;
  CHECK(fb_searcher_init(&e, &c, net, &st) == 0, "searcher: %s", st.msg);
  /* the budget counts the deployed network (full head): e.cost_net */
  uint8_t none[B] = {0};
  const double min_macs = fb_mp_task_cost(e.cost_net, none, FB_TASK_SEG).macs;
  const double max_macs = fb_mp_task_cost(e.cost_net, NULL, FB_TASK_SEG).macs;
  CHECK(min_macs > fb_mp_task_cost(net, none, FB_TASK_SEG).macs,
        "the deployed seg network (full head) costs more than the search's light one");
  c.flops_target[2] = min_macs;
  c.flops_lambda = 20.0 * min_macs / (max_macs - min_macs); /* ~20 between none and all */
  fb_loader_cfg lc = fb_loader_cfg_default(32, 3, 4, 1);
  fb_loader *l = fb_loader_create(&d, &lc, &st);
  long epoch = 0;
  fb_loader_start_epoch(l, epoch);
  double first_pen = 0, last_pen = 0;
  for (long s = 0; s < c.steps; s++) {
    const fb_batch *b = fb_loader_next(l);
    if (!b) {
      fb_loader_start_epoch(l, ++epoch);
      b = fb_loader_next(l);
    }
    fb_search_step_info o;
    if (fb_searcher_step(&e, b, &o, &st)) break;
    if (s < 30) first_pen += o.pen[0] / 30;
    if (s >= c.steps - 30) last_pen += o.pen[0] / 30;
  }
  const int on = fb_archdist_num_on(&e.dist, 0);
  CHECK(on <= 2, "a tight MACs target turns bits off: %d of 7 still on", on);
  CHECK(last_pen < 0.5 * first_pen, "the resource penalty falls (%.3f -> %.3f)", first_pen, last_pen);
  fb_searcher_free(&e);
  fb_loader_free(l);
  fb_net_free(net);
done:
  fb_mt_dataset_free(&d);
}

/* BN re-calibration: the running mean of an active BN becomes the plain
 * average of its per-batch means over the re-calibration batches (the same
 * loader batches, recomputed here), whatever it was before; a skipped block's
 * BN is left alone. */
static void test_bn_recalibration(void) {
  fb_status st = {0};
  fb_mt_dataset d;
  fb_synth_dataset(12, 32, 3, 21, &d, &st);
  fb_net *net = build(FB_TASK_CLS, &d, 4, &st);
  CHECK(net != NULL, "cls supernet: %s", st.msg);
  if (!net) goto done;
  uint8_t mask[B] = {1, 0, 1, 1, 1, 1, 1};
  fb_graph_set_mask(&net->g, mask);
  fb_graph *g = &net->g;
  int bn = -1, conv = -1, skipped = -1;
  for (int i = 0; i < g->n; i++) {
    if (strcmp(g->nodes[i].name, "stem.0.bn") == 0) bn = i;
    if (strcmp(g->nodes[i].name, "stem.0.conv") == 0) conv = i;
    if (strcmp(g->nodes[i].name, "s0.p0.0.dw.bn") == 0) skipped = i;
  }
  CHECK(bn >= 0 && conv >= 0 && skipped >= 0, "nodes found");
  if (bn < 0 || conv < 0 || skipped < 0) goto free_net;
  float *rm = fb_param_data(&g->params, g->nodes[bn].par[2]);
  float *rm_skip = fb_param_data(&g->params, g->nodes[skipped].par[2]);
  const int C = g->nodes[conv].args.out.c;
  for (int c = 0; c < C; c++) rm[c] = 100.0f; /* stale statistics */
  rm_skip[0] = 7.0f;
  /* expected: the mean over 2 batches of each batch's channel mean of the conv output */
  double want[64] = {0};
  fb_loader_cfg lc = fb_loader_cfg_default(32, 3, 4, 1);
  lc.seed = 5;
  lc.drop_last = 1;
  fb_loader *l = fb_loader_create(&d, &lc, &st);
  fb_loader_start_epoch(l, 0);
  const fb_shape o = g->nodes[conv].args.out;
  const size_t hw = (size_t)o.h * o.w;
  for (int b = 0; b < 2; b++) {
    const fb_batch *bt = fb_loader_next(l);
    fb_mt_fill_batch(net, bt, 1, &st);
    fb_net_forward(net, 0); /* eval: running statistics untouched */
    for (int c = 0; c < C && c < 64; c++) {
      double m = 0;
      for (int n = 0; n < o.n; n++)
        for (size_t i = 0; i < hw; i++) m += g->nodes[conv].out[((size_t)n * C + c) * hw + i];
      want[c] += m / ((double)o.n * hw) / 2;
    }
  }
  fb_loader_free(l);
  CHECK(rm[0] == 100.0f, "eval forwards leave the statistics alone");
  CHECK(fb_bn_recalibrate(net, &d, 8, 1, 5, &st) == 0, "recalibrate: %s", st.msg);
  double worst = 0;
  for (int c = 0; c < C && c < 64; c++) worst = fmax(worst, fabs(rm[c] - want[c]));
  CHECK(worst < 1e-4, "running mean = average of the batch means (worst diff %g)", worst);
  CHECK(rm_skip[0] == 7.0f, "a skipped block's BN is not re-calibrated");
free_net:
  fb_net_free(net);
done:
  fb_mt_dataset_free(&d);
}


/* One step of a search with the sandwich rule on the tiny supernet, beside the
 * same step without it: the sample theta learns from is the same (the sandwich
 * pass is no sample), the largest subnet's pass updates slots the sampled architecture
 * did not use, and with every bit kept in the sampled architecture the
 * weights equal those of the plain step (the mean of two equal gradients). */
static float *step_once(int sandwich, const uint8_t *forced, int steps, const fb_mt_dataset *d,
                        double *sample, uint8_t *used, fb_status *st) {
  const unsigned tasks = FB_TASK_CLS | FB_TASK_DET;
  fb_net *net = build(tasks, d, 4, st);
  if (!net) return NULL;
  fb_search_cfg c = fb_search_cfg_default();
  c.tasks = tasks;
  c.warmup_frac = 0;
  c.sandwich = sandwich;
  fb_searcher e;
  float *w = NULL;
  if (fb_searcher_init(&e, &c, net, st) == 0) {
    if (steps > 1) /* the distributions differ: importance weights are not 1 */
      for (int b = 0; b < B; b++) e.dist.theta[2 * b + 1] = 0.3 * b;
    e.forced_mask = forced;
    fb_loader_cfg lc = fb_loader_cfg_default(32, 3, 4, 1);
    fb_loader *l = fb_loader_create(d, &lc, st);
    fb_loader_start_epoch(l, 0);
    fb_search_step_info o;
    int rc = 0;
    for (int k = 0; k < steps && rc == 0; k++) {
      rc = fb_searcher_step(&e, fb_loader_next(l), &o, st);
      if (k == 0) *sample = o.loss[0] + 10 * o.loss[1] + 100 * o.rho[0];
    }
    if (rc == 0) {
      const fb_params *p = &net->g.params;
      w = malloc(p->total * sizeof *w);
      memcpy(w, p->data, p->total * sizeof *w);
      if (used) memcpy(used, p->used, (size_t)p->n);
    }
    fb_loader_free(l);
  }
  fb_searcher_free(&e);
  fb_net_free(net);
  return w;
}

static void test_sandwich(void) {
  fb_status st = {0};
  fb_mt_dataset d;
  fb_synth_dataset(16, 32, 3, 9, &d, &st);
  fb_net *probe = build(FB_TASK_CLS | FB_TASK_DET, &d, 4, &st);
  CHECK(probe != NULL, "supernet: %s", st.msg);
  if (!probe) goto done;
  const size_t total = probe->g.params.total;
  float *w0 = malloc(total * sizeof *w0);
  memcpy(w0, probe->g.params.data, total * sizeof *w0);
  const int n = probe->g.params.n;
  uint8_t none[B] = {0}, all[B] = {1, 1, 1, 1, 1, 1, 1}, *used = calloc((size_t)n, 1);
  double th_plain = 0, th_sw = 0;
  float *plain = step_once(0, none, 3, &d, &th_plain, NULL, &st);
  float *sw = step_once(1, none, 3, &d, &th_sw, used, &st);
  CHECK(plain && sw, "steps: %s", st.msg);
  if (plain && sw) {
    CHECK(th_sw == th_plain, "sandwich: the first step's sample for theta (losses, importance "
          "weight) is the plain step's: %.9g vs %.9g", th_sw, th_plain);
    int moved_plain = 0, moved_sw = 0;
    for (int i = 0; i < n; i++) {
      const fb_param *q = &probe->g.params.p[i];
      const int a = memcmp(plain + q->offset, w0 + q->offset, q->numel * sizeof *w0) != 0;
      const int b = memcmp(sw + q->offset, w0 + q->offset, q->numel * sizeof *w0) != 0;
      moved_plain += a;
      moved_sw += b;
    }
    CHECK(moved_sw > moved_plain, "the largest subnet's pass updates more slots (%d > %d)",
          moved_sw, moved_plain);
    int all_used = 1;
    for (int i = 0; i < n; i++) all_used &= used[i] != 0;
    CHECK(all_used, "every slot counts as used in a sandwich step");
  }
  free(plain);
  free(sw);
  plain = step_once(0, all, 1, &d, &th_plain, NULL, &st);
  sw = step_once(1, all, 1, &d, &th_sw, NULL, &st);
  CHECK(plain && sw, "steps with every bit kept: %s", st.msg);
  if (plain && sw) {
    double worst = 0; /* trained values; BN running statistics see two batches */
    for (int i = 0; i < n; i++) {
      const fb_param *q = &probe->g.params.p[i];
      if (q->group == FB_PG_BUFFER) continue;
      for (size_t j = q->offset; j < q->offset + q->numel; j++)
        worst = fmax(worst, fabs((double)plain[j] - sw[j]));
    }
    CHECK(worst < 1e-6, "sampled = largest: the sandwich step's weights equal the plain one's "
          "(max |dw| %.3g)", worst);
  }
  free(plain);
  free(sw);
  free(w0);
  free(used);
  fb_net_free(probe);
done:
  fb_mt_dataset_free(&d);
}

int main(void) {
  test_sandwich();
  test_bn_recalibration();
  test_flops_target();
  test_loss_weighting();
  test_planted_search();
  return check_report("test_search");
}
