/* The one training step (train/step.h): the same update as forward, zero,
 * backward and the optimizer by hand; the gradient reduction hook is called
 * once per step and its result is what the optimizer applies; the guards stop
 * a diverged step before anything is updated, naming the step and the loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/params.h"
#include "core/status.h"
#include "nn/arch.h"
#include "nn/net.h"
#include "train/step.h"

static const char *tiny =
    "{\"name\": \"tiny\", \"input_size\": 16, \"blocks\": [\n"
    " {\"stage\": \"stem\", \"rows\": [[\"conv_k3_hs\", 8, 2, 1]]},\n"
    " {\"stage\": \"s1\", \"rows\": [[\"ir_k3_sehsig_hs\", 16, 2, 1, {\"e\": 3}]]},\n"
    " {\"stage\": \"head\", \"rows\": [[\"ir_pool_hs\", 32, 1, 1]]}]}";

static fb_net *tiny_net(void) {
  fb_status st = {0};
  fb_arch *a = fb_arch_parse(tiny, "tiny.json", &st);
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 0;
  o.in_channels = 1;
  o.num_classes = 5;
  fb_net *net = a ? fb_net_build(a, &o, 3, &st) : NULL;
  fb_arch_free(a);
  if (net && fb_net_plan(net, 4, 3, &st)) {
    fb_net_free(net);
    net = NULL;
  }
  CHECK(net != NULL, "tiny net: %s", st.msg);
  return net;
}

static void fill_batch(fb_net *net, int k) {
  float *x = fb_net_input(net);
  for (int i = 0; i < 4 * 16 * 16; i++) x[i] = (float)(((i + 13 * k) * 37 % 101) / 50.0 - 1.0);
  for (int i = 0; i < 4; i++) fb_net_labels(net)[i] = (float)((i + k) % 5);
}

typedef struct {
  int calls;
  float scale;
  int poison; /* 1: put a NaN in the gradients; 2: fail */
} reduce_ctx;

static int scale_grads(void *ctx, fb_params *p, fb_status *st) {
  reduce_ctx *r = ctx;
  r->calls++;
  if (r->poison == 2) return fb_fail(st, "rank 1 stopped");
  for (size_t i = 0; i < p->total; i++) p->grad[i] *= r->scale;
  if (r->poison == 1) p->grad[p->p[0].offset] = NAN; /* a trained slot (the stem's conv) */
  return 0;
}

/* SGD without momentum at lr 0.2 on gradients halved by the hook equals plain
 * SGD at lr 0.1 (bit for bit: the factors are powers of two apart). */
static void test_same_as_by_hand(void) {
  fb_net *a = tiny_net(), *b = tiny_net();
  if (!a || !b) goto out;
  fb_optim_cfg o = fb_optim_sgd_default();
  o.momentum = 0;
  o.weight_decay = 0;
  o.lr = 0.2f;
  const fb_schedule lr02 = {.base_lr = 0.2f, .final_frac = 1};
  fb_loss_guard guard;
  fb_loss_guard_init(&guard, FB_LOSS_GUARD_DEFAULT);
  reduce_ctx rc = {.scale = 0.5f};
  fb_ema ema;
  fb_ema_init(&ema, &a->g.params, 0.9f);
  const fb_stepper s = {.net = a, .optim = &o, .sched = &lr02, .ema = &ema, .out_dir = "run",
                        .n_guards = 1, .guard = &guard, .reduce = scale_grads, .reduce_ctx = &rc};
  int ok = 1;
  float last_loss = 0;
  for (int k = 0; k < 3; k++) {
    fb_status st = {0};
    fb_step_result r;
    fill_batch(a, k);
    fill_batch(b, k);
    ok &= fb_train_step(&s, k, "step", &r, &st) == 0;
    const float want = fb_net_forward(b, 1);
    fb_params_zero_grad(&b->g.params);
    fb_net_backward(b);
    fb_optim_step(&b->g.params, &o, 0.1f, k + 1);
    CHECK(r.total == want && r.watched[0] == want, "step %d: loss %g as by hand %g", k, r.total,
          want);
    CHECK(r.lr == 0.2f, "step %d: the schedule's lr %g", k, r.lr);
    last_loss = r.total;
  }
  CHECK(ok, "three steps");
  CHECK(rc.calls == 3, "the reduction hook ran once per step (%d)", rc.calls);
  const fb_params *pa = &a->g.params, *pb = &b->g.params;
  CHECK(pa->total == pb->total && memcmp(pa->data, pb->data, pa->total * sizeof(float)) == 0,
        "weights equal to the hand-written step's");
  double moved = 0;
  for (size_t i = 0; i < pa->total; i++) moved += fabs(ema.shadow[i] - pa->data[i]);
  CHECK(moved > 0 && isfinite(moved), "the EMA was updated and lags the weights (%g)", moved);
  CHECK(isfinite(last_loss) && last_loss > 0, "finite loss %g", last_loss);
  fb_ema_free(&ema);
out:
  fb_net_free(a);
  fb_net_free(b);
}

/* The trained slots equal `before` (BN running statistics, FB_PG_BUFFER, move
 * in every training forward pass and are not compared). */
static int trained_unchanged(const fb_params *p, const float *before) {
  for (int i = 0; i < p->n; i++)
    if (p->p[i].group != FB_PG_BUFFER &&
        memcmp(before + p->p[i].offset, fb_param_data(p, i), p->p[i].numel * sizeof(float)))
      return 0;
  return 1;
}

typedef struct {
  fb_net *net;
  int calls;
} fill_ctx;

static int fill_micro(void *ctx, int k, fb_status *st) {
  (void)st;
  fill_ctx *f = ctx;
  fill_batch(f->net, 10 + k);
  f->calls++;
  return 0;
}

/* Two micro-batches: forward and backward each, the gradients' mean applied
 * once; the same as doing it by hand. */
static void test_micro_batches(void) {
  fb_net *a = tiny_net(), *b = tiny_net();
  if (!a || !b) goto out;
  fb_optim_cfg o = fb_optim_sgd_default();
  o.momentum = 0;
  o.weight_decay = 0;
  const fb_schedule lr = {.base_lr = 0.1f, .final_frac = 1};
  fb_loss_guard guard;
  fb_loss_guard_init(&guard, FB_LOSS_GUARD_DEFAULT);
  fill_ctx f = {.net = a};
  const fb_stepper s = {.net = a, .optim = &o, .sched = &lr, .out_dir = "run", .n_guards = 1,
                        .guard = &guard, .micro = 2, .fill = fill_micro, .fill_ctx = &f};
  fb_status st = {0};
  fb_step_result r;
  CHECK(fb_train_step(&s, 0, "step 1", &r, &st) == 0, "a step of 2 micro-batches: %s", st.msg);
  fb_params *p = &b->g.params;
  fb_params_zero_grad(p);
  float sum = 0;
  for (int k = 0; k < 2; k++) {
    fill_batch(b, 10 + k);
    sum += fb_net_forward(b, 1) / 2;
    fb_net_backward(b);
  }
  for (size_t i = 0; i < p->total; i++) p->grad[i] *= 0.5f;
  fb_optim_step(p, &o, 0.1f, 1);
  CHECK(f.calls == 2, "fill called per micro-batch (%d)", f.calls);
  CHECK(r.total == sum, "loss: the micro-batches' mean %g (by hand %g)", r.total, sum);
  CHECK(memcmp(a->g.params.data, p->data, p->total * sizeof(float)) == 0,
        "weights equal to accumulating by hand");
  fb_stepper no_fill = s;
  no_fill.fill = NULL;
  CHECK(fb_train_step(&no_fill, 1, "step 2", &r, &st) == -1 && strstr(st.msg, "micro-batches"),
        "micro-batches without a fill: %s", st.msg);
out:
  fb_net_free(a);
  fb_net_free(b);
}

static void two_losses(void *ctx, double *out) {
  out[0] = 1.0;
  out[1] = *(const double *)ctx;
}

/* A diverged step changes nothing and says where, which loss, and what to do. */
static void test_divergence(void) {
  fb_net *net = tiny_net();
  if (!net) return;
  fb_optim_cfg o = fb_optim_sgd_default();
  const fb_schedule lr = {.base_lr = 0.1f, .final_frac = 1};
  fb_loss_guard g[2];
  fb_loss_guard_init(&g[0], 10);
  fb_loss_guard_init(&g[1], 10);
  const char *labels[2] = {"cls", "det"};
  double second = NAN;
  reduce_ctx rc = {.scale = 1};
  fb_stepper s = {.net = net, .optim = &o, .sched = &lr, .out_dir = "runs/x", .n_guards = 2,
                  .guard = g, .guard_label = labels, .watched = two_losses, .ctx = &second};
  float *before = malloc(net->g.params.total * sizeof(float));
  memcpy(before, net->g.params.data, net->g.params.total * sizeof(float));
  fill_batch(net, 0);
  fb_status st = {0};
  fb_step_result r;
  CHECK(fb_train_step(&s, 2, "step 3", &r, &st) == -1 && strstr(st.msg, "at step 3 (det)") &&
            strstr(st.msg, "loss nan") && strstr(st.msg, "runs/x/checkpoint.safetensors"),
        "a NaN task loss: %s", st.msg);
  CHECK(st.code == FB_E_DIVERGED, "its code is FB_E_DIVERGED (%d)", st.code);
  CHECK(trained_unchanged(&net->g.params, before), "no weight updated after a diverged loss");
  /* a non-finite gradient (here planted by the reduction) */
  second = 1.0;
  s.watched = NULL;
  s.n_guards = 1;
  s.guard_label = NULL;
  s.reduce = scale_grads;
  s.reduce_ctx = &rc;
  rc.poison = 1;
  CHECK(fb_train_step(&s, 0, "epoch 1 step 1", &r, &st) == -1 &&
            strstr(st.msg, "a non-finite gradient at epoch 1 step 1"),
        "a NaN gradient: %s", st.msg);
  CHECK(trained_unchanged(&net->g.params, before),
        "no weight updated after a non-finite gradient");
  rc.poison = 2;
  CHECK(fb_train_step(&s, 0, "epoch 1 step 1", &r, &st) == -1 &&
            strcmp(st.msg, "rank 1 stopped") == 0,
        "the reduction's error is the step's: %s", st.msg);
  s.n_guards = 0;
  CHECK(fb_train_step(&s, 0, "x", &r, &st) == -1 && strstr(st.msg, "loss guards"),
        "no guard is an error: %s", st.msg);
  free(before);
  fb_net_free(net);
}

int main(void) {
  test_same_as_by_hand();
  test_divergence();
  test_micro_batches();
  return check_report("test_step");
}
