/* The backend seam (core/backend.h): one training step of a small supernet
 * with all three task heads (16 of the 19 ops: convs, BN, activations, SE,
 * fusion adds, upsampling, the four losses) run through the
 * reference backend (the op rows' double kernels) and through the fast CPU
 * backend, from the same weights and batch: the losses, every parameter
 * gradient and the weights after an SGD step agree to float precision, and
 * differ at all (the two really ran different kernels). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref.h"
#include "check.h"
#include "tiny_supernet.h"
#include "data/loader.h"
#include "data/synth.h"
#include "nn/arch.h"
#include "nn/net.h"
#include "ops/op.h"
#include "train/mt_trainer.h"
#include "train/optim.h"

enum { BATCH = 4 };

static fb_net *build(const fb_mt_dataset *d, const fb_backend *be, fb_status *st) {
  fb_net *n = TINY_BUILD(FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, d, st);
  if (!n) return NULL;
  if (fb_graph_set_backend(&n->g, be) || fb_net_plan(n, BATCH, 3, st)) {
    fb_net_free(n);
    return NULL;
  }
  return n;
}

typedef struct step_out {
  float loss;
  float *grad, *after;
} step_out;

/* Forward, backward and one SGD step of net on batch b under mask. */
static int train_once(fb_net *net, const fb_batch *b, const uint8_t *mask, step_out *r,
                      fb_status *st) {
  if (net->mp) fb_graph_set_mask(&net->g, mask);
  if (fb_mt_fill_batch(net, b, 1, st)) return -1;
  fb_params *p = &net->g.params;
  fb_params_zero_grad(p);
  r->loss = fb_net_forward(net, 1);
  fb_net_backward(net);
  r->grad = malloc(p->total * sizeof(float));
  memcpy(r->grad, p->grad, p->total * sizeof(float));
  const fb_optim_cfg sgd = fb_optim_sgd_default();
  fb_optim_step(p, &sgd, 0.1f, 1);
  r->after = malloc(p->total * sizeof(float));
  memcpy(r->after, p->data, p->total * sizeof(float));
  return 0;
}

/* max over slots of max|x - y| / scale, each tensor at its own scale max|y|, but
 * at least 1e-4 of the largest |y| of all: gradients that vanish in exact
 * arithmetic (a conv bias before BN) are rounding noise in both backends */
static double worst_rel(const fb_params *p, const float *x, const float *y, int trained_only,
                        double *max_abs) {
  double worst = 0, global = 0;
  *max_abs = 0;
  for (size_t j = 0; j < p->total; j++) global = fmax(global, fabs((double)y[j]));
  for (int i = 0; i < p->n; i++) {
    const fb_param *q = &p->p[i];
    if (trained_only && q->group == FB_PG_BUFFER) continue;
    double scale = 0, d = 0;
    for (size_t j = q->offset; j < q->offset + q->numel; j++) {
      scale = fmax(scale, fabs((double)y[j]));
      d = fmax(d, fabs((double)x[j] - y[j]));
    }
    *max_abs = fmax(*max_abs, d);
    scale = fmax(scale, 1e-4 * global);
    if (getenv("FB_VERBOSE") && d / scale > 1e-3)
      fprintf(stderr, "%s: max|d| %.3g scale %.3g\n", q->name, d, scale);
    worst = fmax(worst, d / scale);
  }
  return worst;
}

static void test_step_through_two_backends(const uint8_t *mask, const char *what) {
  fb_status st = {0};
  fb_mt_dataset d;
  CHECK(fb_synth_dataset(16, 32, 3, 5, &d, &st) == 0, "synthetic data: %s", st.msg);
  fb_net *fast = build(&d, fb_backend_cpu(), &st);
  CHECK(fast != NULL, "fast net: %s", st.msg);
  fb_net *ref = build(&d, fb_backend_ref(), &st);
  CHECK(ref != NULL, "reference net: %s", st.msg);
  fb_loader_cfg lc = fb_loader_cfg_default(32, 3, BATCH, 1);
  fb_loader *l = fb_loader_create(&d, &lc, &st);
  CHECK(l != NULL, "loader: %s", st.msg);
  step_out a = {0}, b = {0};
  if (fast && ref && l) {
    fb_loader_start_epoch(l, 0);
    const fb_batch *bt = fb_loader_next(l);
    CHECK(train_once(fast, bt, mask, &a, &st) == 0, "fast step: %s", st.msg);
    CHECK(train_once(ref, bt, mask, &b, &st) == 0, "reference step: %s", st.msg);
  }
  if (fast && mask[0] && mask[1]) { /* which ops the step covers */
    int n_ops = 0, covered = 0;
    for (const fb_op *const *op = fb_op_table(); *op; op++, n_ops++) {
      int used = 0;
      for (int i = 0; i < fast->g.n; i++) used += fast->g.nodes[i].op == *op;
      covered += used > 0;
      if (!used) printf("note: op %s is not in the network (its kernels: test_ops)\n", (*op)->name);
    }
    CHECK(covered >= n_ops - 3, "the step runs %d of the %d ops", covered, n_ops);
  }
  if (a.grad && b.grad) {
    const fb_params *p = &fast->g.params;
    CHECK(isfinite(a.loss) && a.loss > 0, "%s: a finite loss (%g)", what, a.loss);
    CHECK(fabs(a.loss - b.loss) <= 1e-4 * fabs(b.loss), "%s: total loss fast %.7g, reference "
          "%.7g", what, a.loss, b.loss);
    double abs_g, abs_w;
    const double rg = worst_rel(p, a.grad, b.grad, 1, &abs_g);
    CHECK(rg < 2e-3, "%s: every parameter gradient within 2e-3 of its tensor's scale (worst "
          "%.3g)", what, rg);
    CHECK(abs_g > 0, "%s: the backends ran different kernels (max |dgrad| %.3g > 0)", what, abs_g);
    const double rw = worst_rel(p, a.after, b.after, 0, &abs_w);
    CHECK(abs_w < 1e-4, "%s: weights and BN statistics after an SGD step agree (max |dw| "
          "%.3g, relative %.3g)", what, abs_w, rw);
  }
  free(a.grad), free(a.after), free(b.grad), free(b.after);
  fb_loader_free(l);
  fb_net_free(fast);
  fb_net_free(ref);
  fb_mt_dataset_free(&d);
}

/* A backend that counts its node allocations (test-local state). */
static long n_alloc, n_release;
static float *counting_alloc(size_t n) {
  n_alloc++;
  return fb_backend_alloc(fb_backend_cpu(), n);
}
static void counting_release(float *p) {
  n_release++;
  fb_backend_release(fb_backend_cpu(), p);
}

/* Every node buffer of training and inference plans (activations,
 * workspaces, both arenas), replans included, goes through the backend's
 * allocator and comes back to it. */
static void test_allocation_hook(void) {
  fb_backend counting = *fb_backend_cpu();
  counting.name = "counting";
  counting.alloc = counting_alloc;
  counting.release = counting_release;
  fb_mt_dataset d = {0};
  d.num_classes = 5, d.num_cats = 3, d.num_seg_classes = 4;
  fb_status st = {0};
  for (int inference = 0; inference < 2; inference++) {
    n_alloc = n_release = 0;
    fb_net *n = TINY_BUILD(FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, &d, &st);
    CHECK(n && fb_graph_set_backend(&n->g, &counting) == 0, "set before planning");
    int rc = inference ? fb_net_plan_inference(n, 2, &st) : fb_net_plan(n, 2, 3, &st);
    CHECK(rc == 0, "plan: %s", st.msg);
    fb_net_forward(n, !inference);
    if (!inference) fb_net_backward(n);
    const long first = n_alloc;
    CHECK(first > (inference ? 0 : n->g.n / 2), "%s plan: %ld node buffers from the backend",
          inference ? "inference" : "training", first);
    CHECK(fb_graph_set_backend(&n->g, NULL) == -1, "no backend change after planning");
    CHECK(inference || fb_net_plan(n, 3, 3, &st) == 0, "replan: %s", st.msg);
    fb_net_free(n);
    CHECK(n_alloc >= first && n_release == n_alloc, "%s: %ld allocated, %ld released",
          inference ? "inference" : "training", n_alloc, n_release);
  }
}

int main(void) {
  test_allocation_hook();
  uint8_t all[64], some[64];
  for (int k = 0; k < 64; k++) all[k] = 1, some[k] = (uint8_t)(k % 3 != 1);
  test_step_through_two_backends(all, "every block kept");
  test_step_through_two_backends(some, "blocks skipped");
  return check_report("test_backend");
}
