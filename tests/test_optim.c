/* Optimizers against PyTorch fixtures (scripts/make_optim_fixtures.py),
 * gradient clipping, the finite check, the LR schedule and the weight EMA. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/params.h"
#include "train/ema.h"
#include "train/guard.h"
#include "train/optim.h"
#include "train/schedule.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  size_t got = fread(p, 1, (size_t)n, f);
  p[got] = 0;
  fclose(f);
  return p;
}

/* Copies a JSON number array into x (n values); returns the count found. */
static int get_floats(const cJSON *arr, float *x, int n) {
  int k = 0;
  for (const cJSON *v = arr ? arr->child : NULL; v && k < n; v = v->next)
    x[k++] = (float)v->valuedouble;
  return k;
}

/* A store like a tiny net: decayed weight, undecayed bias, a BN buffer. */
static void make_store(fb_params *s) {
  fb_params_init(s);
  fb_params_add(s, "weight", fb_shape4(6, 4, 1, 1), FB_PG_WEIGHT, FB_INIT_ZERO, 6);
  fb_params_add(s, "bias", fb_shape4(6, 1, 1, 1), FB_PG_NO_DECAY, FB_INIT_ZERO, 0);
  fb_params_add(s, "bn.running_var", fb_shape4(6, 1, 1, 1), FB_PG_BUFFER, FB_INIT_ONE, 0);
  fb_params_alloc(s, 1);
}

static void replay(const char *file) {
  char path[256];
  snprintf(path, sizeof path, "tests/fixtures/%s", file);
  char *text = slurp(path);
  CHECK(text != NULL, "%s: fixture missing (run from the repo root)", path);
  if (!text) return;
  cJSON *doc = cJSON_Parse(text);
  free(text);
  CHECK(doc != NULL, "%s: bad JSON", path);
  if (!doc) return;
  const cJSON *cfgj = cJSON_GetObjectItem(doc, "config");
  fb_optim_cfg c;
  const char *kind = cJSON_GetObjectItem(cfgj, "kind")->valuestring;
  if (strcmp(kind, "sgd") == 0) {
    c = fb_optim_sgd_default();
    c.momentum = (float)cJSON_GetObjectItem(cfgj, "momentum")->valuedouble;
    c.nesterov = cJSON_IsTrue(cJSON_GetObjectItem(cfgj, "nesterov"));
  } else {
    c = fb_optim_adamw_default();
    c.beta1 = (float)cJSON_GetObjectItem(cfgj, "beta1")->valuedouble;
    c.beta2 = (float)cJSON_GetObjectItem(cfgj, "beta2")->valuedouble;
    c.eps = (float)cJSON_GetObjectItem(cfgj, "eps")->valuedouble;
  }
  c.weight_decay = (float)cJSON_GetObjectItem(cfgj, "weight_decay")->valuedouble;
  fb_status st = {0};
  CHECK(fb_optim_check(&c, &st) == 0, "%s: config rejected: %s", file, st.msg);

  fb_params s;
  make_store(&s);
  const char *names[2] = {"weight", "bias"};
  const int sizes[2] = {24, 6};
  const cJSON *init = cJSON_GetObjectItem(doc, "init");
  for (int t = 0; t < 2; t++)
    CHECK(
        get_floats(cJSON_GetObjectItem(init, names[t]), fb_param_data(&s, t), sizes[t]) == sizes[t],
        "%s: init %s", file, names[t]);
  double worst = 0.0;
  int step = 0;
  for (const cJSON *sj = cJSON_GetObjectItem(doc, "steps")->child; sj; sj = sj->next, step++) {
    float lr = (float)cJSON_GetObjectItem(sj, "lr")->valuedouble;
    const cJSON *gj = cJSON_GetObjectItem(sj, "grad"), *ej = cJSON_GetObjectItem(sj, "expect");
    for (int t = 0; t < 2; t++)
      get_floats(cJSON_GetObjectItem(gj, names[t]), fb_param_grad(&s, t), sizes[t]);
    /* a gradient on the buffer must be ignored */
    for (int k = 0; k < 6; k++) fb_param_grad(&s, 2)[k] = 5.0f;
    fb_optim_step(&s, &c, lr, step + 1);
    for (int t = 0; t < 2; t++) {
      float want[24];
      get_floats(cJSON_GetObjectItem(ej, names[t]), want, sizes[t]);
      const float *got = fb_param_data(&s, t);
      for (int k = 0; k < sizes[t]; k++) {
        double d = fabs((double)got[k] - want[k]), tol = 1e-6 * fabs(want[k]) + 1e-7;
        double rel = d / (fabs(want[k]) + 1e-7);
        if (rel > worst) worst = rel;
        CHECK(d <= tol, "%s step %d %s[%d]: %.9g vs torch %.9g", file, step + 1, names[t], k,
              got[k], want[k]);
      }
    }
    for (int k = 0; k < 6; k++)
      CHECK(fb_param_data(&s, 2)[k] == 1.0f, "%s: buffer slot changed by the optimizer", file);
  }
  CHECK(step == 5, "%s: expected 5 steps, found %d", file, step);
  printf("%-26s 5 steps, max relative difference to PyTorch %.2e\n", file, worst);
  fb_params_free(&s);
  cJSON_Delete(doc);
}

static void test_clip_and_finite(void) {
  fb_params s;
  make_store(&s);
  /* weight grads all 1 (24), bias grads all 2 (6): norm = sqrt(24 + 24) */
  for (int k = 0; k < 24; k++) fb_param_grad(&s, 0)[k] = 1.0f;
  for (int k = 0; k < 6; k++) fb_param_grad(&s, 1)[k] = 2.0f;
  for (int k = 0; k < 6; k++) fb_param_grad(&s, 2)[k] = 1000.0f; /* buffer: ignored */
  CHECK_CLOSE(fb_params_grad_norm(&s), sqrt(48.0), 1e-9, "grad norm");
  double n0 = fb_params_clip_grad_norm(&s, 100.0f);
  CHECK_CLOSE(n0, sqrt(48.0), 1e-9, "norm returned");
  CHECK(fb_param_grad(&s, 0)[0] == 1.0f, "no clipping below max_norm");
  fb_params_clip_grad_norm(&s, 1.0f);
  CHECK_CLOSE(fb_params_grad_norm(&s), 1.0, 1e-5, "norm after clipping to 1");
  CHECK_CLOSE(fb_param_grad(&s, 1)[0], 2.0 / (sqrt(48.0) + 1e-6), 1e-6, "bias grad scaled");
  CHECK(fb_param_grad(&s, 2)[0] == 1000.0f, "buffer grad not clipped");

  CHECK(fb_params_grad_finite(&s) == 1, "finite grads reported finite");
  fb_param_grad(&s, 2)[3] = NAN;
  CHECK(fb_params_grad_finite(&s) == 1, "NaN in a buffer's grad is not looked at");
  fb_param_grad(&s, 0)[17] = NAN;
  CHECK(fb_params_grad_finite(&s) == 0, "NaN detected");
  fb_param_grad(&s, 0)[17] = 0.0f;
  fb_param_grad(&s, 1)[5] = -INFINITY;
  CHECK(fb_params_grad_finite(&s) == 0, "-Inf detected");
  fb_param_grad(&s, 1)[5] = 3e38f;
  CHECK(fb_params_grad_finite(&s) == 1, "large finite value is finite");

  /* plain SGD without momentum: p -= lr * (g + wd p) */
  fb_params_zero_grad(&s);
  fb_param_data(&s, 0)[0] = 2.0f;
  fb_param_grad(&s, 0)[0] = 0.5f;
  fb_optim_cfg c = fb_optim_sgd_default();
  c.momentum = 0.0f;
  c.nesterov = 0;
  c.weight_decay = 0.1f;
  fb_optim_step(&s, &c, 0.5f, 1);
  CHECK_CLOSE(fb_param_data(&s, 0)[0], 2.0 - 0.5 * (0.5 + 0.1 * 2.0), 1e-6, "sgd no momentum");

  /* clip_norm in the config */
  fb_params_zero_grad(&s);
  fb_param_data(&s, 1)[0] = 0.0f;
  fb_param_grad(&s, 1)[0] = 30.0f;
  c.clip_norm = 3.0f;
  fb_optim_step(&s, &c, 1.0f, 1);
  CHECK_CLOSE(fb_param_data(&s, 1)[0], -3.0, 1e-5, "step with clip_norm");

  fb_status st = {0};
  c = fb_optim_sgd_default();
  c.momentum = 1.5f;
  CHECK(fb_optim_check(&c, &st) != 0 && strstr(st.msg, "momentum"), "bad momentum: %s", st.msg);
  c = fb_optim_adamw_default();
  c.eps = 0.0f;
  CHECK(fb_optim_check(&c, &st) != 0 && strstr(st.msg, "eps"), "bad eps: %s", st.msg);
  fb_params_free(&s);
}

static void test_schedule(void) {
  fb_schedule s = {.base_lr = 0.4f, .warmup_steps = 10, .total_steps = 110, .final_frac = 0.05f};
  fb_status st = {0};
  CHECK(fb_schedule_check(&s, &st) == 0, "schedule ok: %s", st.msg);
  CHECK_CLOSE(fb_lr_at(&s, 0), 0.04, 1e-7, "first warm-up step");
  CHECK_CLOSE(fb_lr_at(&s, 4), 0.2, 1e-7, "warm-up middle");
  CHECK_CLOSE(fb_lr_at(&s, 9), 0.4, 1e-7, "last warm-up step");
  CHECK_CLOSE(fb_lr_at(&s, 10), 0.4, 1e-7, "cosine start");
  CHECK_CLOSE(fb_lr_at(&s, 60), (0.4 + 0.02) / 2, 1e-7, "cosine midpoint");
  CHECK_CLOSE(fb_lr_at(&s, 35), 0.02 + 0.38 * 0.5 * (1 + cos(M_PI / 4)), 1e-6, "cosine quarter");
  CHECK_CLOSE(fb_lr_at(&s, 110), 0.02, 1e-7, "end");
  CHECK_CLOSE(fb_lr_at(&s, 5000), 0.02, 1e-7, "after the end");
  int mono = 1;
  for (long k = 10; k < 110; k++) mono &= fb_lr_at(&s, k + 1) <= fb_lr_at(&s, k);
  CHECK(mono, "cosine part is non-increasing");
  fb_schedule z = {.base_lr = 1.0f, .warmup_steps = 0, .total_steps = 4, .final_frac = 0.0f};
  CHECK_CLOSE(fb_lr_at(&z, 0), 1.0, 1e-7, "no warm-up: starts at base");
  CHECK_CLOSE(fb_lr_at(&z, 2), 0.5, 1e-7, "no warm-up: midpoint");
  CHECK_CLOSE(fb_lr_at(&z, 4), 0.0, 1e-7, "no warm-up: end");
  fb_schedule bad = {.base_lr = 1.0f, .warmup_steps = 10, .total_steps = 5};
  CHECK(fb_schedule_check(&bad, &st) != 0 && strstr(st.msg, "total_steps"), "bad schedule: %s",
        st.msg);
}

static void test_ema(void) {
  fb_params s;
  make_store(&s); /* weight 0, bias 0, buffer 1 */
  fb_ema e;
  fb_ema_init(&e, &s, 0.5f);
  CHECK_CLOSE(fb_ema_decay_at(&e, 0), 0.1, 1e-7, "decay warm-up at step 0");
  CHECK_CLOSE(fb_ema_decay_at(&e, 1000), 0.5, 1e-7, "decay capped");
  for (int k = 0; k < 24; k++) fb_param_data(&s, 0)[k] = 10.0f;
  for (int k = 0; k < 6; k++) fb_param_data(&s, 2)[k] = 3.0f;
  fb_ema_update(&e, &s, 0); /* d = 0.1: 0.1*0 + 0.9*10 */
  CHECK_CLOSE(e.shadow[s.p[0].offset], 9.0, 1e-5, "ema after step 0");
  CHECK_CLOSE(e.shadow[s.p[2].offset], 0.1 * 1 + 0.9 * 3, 1e-5, "buffer averaged by default");
  fb_ema_update(&e, &s, 100); /* d = 0.5 */
  CHECK_CLOSE(e.shadow[s.p[0].offset], 9.5, 1e-5, "ema after step 100");
  e.copy_buffers = 1;
  for (int k = 0; k < 6; k++) fb_param_data(&s, 2)[k] = 7.0f;
  fb_ema_update(&e, &s, 100);
  CHECK(e.shadow[s.p[2].offset] == 7.0f, "copy_buffers copies running stats");
  CHECK_CLOSE(e.shadow[s.p[0].offset], 9.75, 1e-5, "ema third update");
  fb_ema_swap(&e, &s);
  CHECK_CLOSE(fb_param_data(&s, 0)[3], 9.75, 1e-5, "swap puts EMA into the store");
  CHECK(e.shadow[s.p[0].offset + 3] == 10.0f, "swap keeps the live weights");
  fb_ema_swap(&e, &s);
  CHECK(fb_param_data(&s, 0)[3] == 10.0f, "second swap restores");
  fb_ema_free(&e);
  fb_params_free(&s);
}

/* The divergence guard: spikes count after 50 losses, non-finite ones always. */
static void test_loss_guard(void) {
  fb_loss_guard g;
  fb_loss_guard_init(&g, 10);
  double ratio;
  CHECK(fb_loss_guard_check(&g, NAN, &ratio) == 1 && isinf(ratio), "NaN is divergence at once");
  int early = 0;
  for (int i = 0; i < 50; i++) early |= fb_loss_guard_check(&g, i == 3 ? 40.0 : 1.0, &ratio);
  CHECK(!early, "no spike verdict in the first 50 losses");
  CHECK(fb_loss_guard_check(&g, 5.0, &ratio) == 0, "5x the mean is not divergence");
  const double mean = g.mean;
  CHECK(fb_loss_guard_check(&g, 30.0, &ratio) == 1 && fabs(ratio - 30.0 / mean) < 1e-12,
        "30x the mean is divergence (ratio %.2f)", ratio);
  CHECK(g.mean == mean, "a rejected loss does not move the mean");
  CHECK(fb_loss_guard_check(&g, INFINITY, &ratio) == 1, "inf is divergence");
  fb_loss_guard_init(&g, 0);
  for (int i = 0; i < 60; i++) fb_loss_guard_check(&g, 1.0, &ratio);
  CHECK(fb_loss_guard_check(&g, 1e6, &ratio) == 0, "factor 0: only non-finite losses count");
}

int main(void) {
  test_loss_guard();
  replay("optim_sgd_momentum.json");
  replay("optim_sgd_nesterov.json");
  replay("optim_adamw.json");
  test_clip_and_finite();
  test_schedule();
  test_ema();
  return check_report("optim");
}
