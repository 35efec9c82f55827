/* Architecture distributions of the search (src/search/archdist.h) against
 * independent computations: importance weights and log-probabilities against
 * direct products, the sampler against a chi-square test, the REINFORCE
 * estimator against the exact gradient by enumerating all 2^B architectures,
 * Adam and the baseline against hand-computed values, the JSON state round
 * trip and its errors, and a planted-best simulation of the whole search.
 *
 *   build/tests/test_archdist          the checks (a second or two)
 *   build/tests/test_archdist --sim    plus the longer simulation sweep (table) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "search/archdist.h"

#define LN2 0.69314718055994530942

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

/* A bit is a decision with two logits (skip, keep): the keep logit x is the
 * pair (-x/2, x/2), p(keep) = sigmoid(x). */
static void set_bit_logit(fb_archdist *d, int t, int b, double x) {
  double *p = d->theta + (size_t)t * d->P + 2 * b;
  p[0] = -0.5 * x, p[1] = 0.5 * x;
}
static double bit_logit(const fb_archdist *d, int t, int b) {
  const double *p = d->theta + (size_t)t * d->P + 2 * b;
  return p[1] - p[0];
}
/* theta of bit i = t * D + b from a flat table of keep logits. */
static void set_bit_logits(fb_archdist *d, const double *x, int n) {
  for (int i = 0; i < n; i++) set_bit_logit(d, i / d->D, i % d->D, x[i]);
}

static void random_thetas(fb_archdist *d, fb_rng *rng, double scale) {
  for (int i = 0; i < d->T * d->D; i++) set_bit_logit(d, i / d->D, i % d->D, scale * fb_rng_normal(rng));
}

/* Bit b of the integer code of an architecture (B <= 30 here). */
static void decode(int code, int B, uint8_t *a) {
  for (int b = 0; b < B; b++) a[b] = (uint8_t)((code >> b) & 1);
}

/* p_t(a) as a plain product of probabilities. */
static double direct_prob(const fb_archdist *d, int t, const uint8_t *a) {
  double p = 1;
  for (int b = 0; b < d->D; b++) {
    double s = sigmoid_ref(bit_logit(d, t, b));
    p *= a[b] ? s : 1 - s;
  }
  return p;
}

static double rel_diff(double x, double y) {
  double scale = fabs(y) > 1e-300 ? fabs(y) : 1e-300;
  return fabs(x - y) / scale;
}

/* ---- 1. importance weights ---------------------------------------------- */

static void test_importance_direct(void) {
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 11);
  CHECK(fb_archdist_init(&d, 3, 6, 0.6, &st) == 0, "init: %s", st.msg);
  random_thetas(&d, &rng, 1.5);
  double worst = 0, worst_sum = 0;
  for (int code = 0; code < 64; code++) {
    uint8_t a[6];
    double rho[3], p[3], psum = 0, rsum = 0;
    decode(code, 6, a);
    for (int t = 0; t < 3; t++) psum += p[t] = direct_prob(&d, t, a);
    fb_archdist_importance(&d, a, rho);
    for (int t = 0; t < 3; t++) {
      double r = rel_diff(rho[t], 3 * p[t] / psum);
      if (r > worst) worst = r;
      rsum += rho[t];
    }
    if (fabs(rsum - 3) > worst_sum) worst_sum = fabs(rsum - 3);
  }
  CHECK(worst < 1e-12, "importance vs direct T p_t / sum p_u: worst rel diff %.3g", worst);
  CHECK(worst_sum < 1e-13, "sum_t rho_t == T: worst |sum - 3| %.3g", worst_sum);

  /* Clipping caps each weight and nothing else. */
  d.rho_clip = 1.5;
  int clipped_ok = 1;
  for (int code = 0; code < 64; code++) {
    uint8_t a[6];
    double rho[3], p[3], psum = 0;
    decode(code, 6, a);
    for (int t = 0; t < 3; t++) psum += p[t] = direct_prob(&d, t, a);
    fb_archdist_importance(&d, a, rho);
    for (int t = 0; t < 3; t++) {
      double want = fmin(3 * p[t] / psum, 1.5);
      if (rel_diff(rho[t], want) > 1e-12) clipped_ok = 0;
    }
  }
  CHECK(clipped_ok, "rho_clip 1.5: rho = min(T p_t / sum p_u, 1.5) for all 64 architectures");
  fb_archdist_free(&d);
}

static void test_importance_extreme(void) {
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 12);
  CHECK(fb_archdist_init(&d, 3, 55, 0.5, &st) == 0, "init: %s", st.msg);
  for (int i = 0; i < 3 * 55; i++) set_bit_logit(&d, i / 55, i % 55, fb_rng_uniform(&rng) < 0.5 ? 40.0 : -40.0);
  int ok = 1;
  double worst_sum = 0;
  for (int trial = 0; trial < 200; trial++) {
    uint8_t a[55];
    double rho[3], logp[3], s = 0;
    if (trial < 3) { /* each task's own mode: rho of that task ~ T, others ~ 0 */
      for (int b = 0; b < 55; b++) a[b] = bit_logit(&d, trial, b) > 0;
    } else {
      fb_archdist_sample(&d, &rng, a);
      if (trial % 2) a[fb_rng_below(&rng, 55)] ^= 1;
    }
    fb_archdist_importance(&d, a, rho);
    fb_archdist_log_prob(&d, a, logp);
    for (int t = 0; t < 3; t++) {
      if (!isfinite(rho[t]) || rho[t] < 0 || rho[t] > 3 || !isfinite(logp[t])) ok = 0;
      s += rho[t];
    }
    if (fabs(s - 3) > worst_sum) worst_sum = fabs(s - 3);
    if (trial < 3 && !(rho[trial] > 3 - 1e-9)) ok = 0;
  }
  CHECK(ok, "theta = +-40, B = 55: rho finite, in [0, 3], log p finite, mode of task t gives rho_t = 3");
  CHECK(worst_sum < 1e-12, "theta = +-40: sum rho = T (worst |diff| %.3g)", worst_sum);
  fb_archdist_free(&d);
}

/* ---- 2. log_prob and the sampler --------------------------------------- */

static void test_log_prob_direct(void) {
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 21);
  CHECK(fb_archdist_init(&d, 4, 6, 0.3, &st) == 0, "init: %s", st.msg);
  random_thetas(&d, &rng, 2.0);
  double worst = 0;
  for (int code = 0; code < 64; code++) {
    uint8_t a[6];
    double logp[4];
    decode(code, 6, a);
    fb_archdist_log_prob(&d, a, logp);
    for (int t = 0; t < 4; t++) {
      double r = fabs(logp[t] - log(direct_prob(&d, t, a)));
      if (r > worst) worst = r;
    }
  }
  CHECK(worst < 1e-12, "log_prob vs log(product): worst |diff| %.3g", worst);

  /* Far tails, where the product underflows: log p = -sum log1p(exp(x)) exactly. */
  for (int b = 0; b < 6; b++) set_bit_logit(&d, 0, b, -800.0); /* p(a_b = 1) = e^-800 */
  uint8_t ones[6] = {1, 1, 1, 1, 1, 1};
  double logp[4];
  fb_archdist_log_prob(&d, ones, logp);
  CHECK_CLOSE(logp[0], -4800.0, 1e-9, "log p of all-ones at theta = -800");
  fb_archdist_free(&d);
}

static void test_sampler_chi_square(void) {
  enum { T = 3, B = 3, N = 120000 };
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 22);
  CHECK(fb_archdist_init(&d, T, B, 0.5, &st) == 0, "init: %s", st.msg);
  const double th[T * B] = {1.2, -0.4, 0.0, -1.5, 0.8, 2.0, 0.3, 0.3, -2.2};
  set_bit_logits(&d, th, T * B);
  long joint[T][8] = {{0}}, marg[8] = {0};
  int u_ok = 1;
  for (int i = 0; i < N && u_ok; i++) {
    uint8_t a[B];
    int u = fb_archdist_sample(&d, &rng, a);
    int code = a[0] | a[1] << 1 | a[2] << 2;
    u_ok = u >= 0 && u < T && (a[0] | a[1] | a[2]) <= 1;
    if (!u_ok) break;
    joint[u][code]++;
    marg[code]++;
  }
  CHECK(u_ok, "sample returns u in [0, T) and bits in {0, 1}");
  double chi_joint = 0, chi_marg = 0;
  for (int code = 0; code < 8; code++) {
    uint8_t a[B];
    double q = 0;
    decode(code, B, a);
    for (int u = 0; u < T; u++) {
      double e = (double)N / T * direct_prob(&d, u, a);
      chi_joint += (joint[u][code] - e) * (joint[u][code] - e) / e;
      q += direct_prob(&d, u, a) / T;
    }
    double e = N * q;
    chi_marg += (marg[code] - e) * (marg[code] - e) / e;
  }
  /* 99.9% quantiles: chi2(23) = 49.73, chi2(7) = 24.32. */
  CHECK(chi_joint < 49.73, "sampler: joint (u, a) chi-square %.2f with 23 dof", chi_joint);
  CHECK(chi_marg < 24.32, "sampler: mixture q(a) chi-square %.2f with 7 dof", chi_marg);
  fb_archdist_free(&d);
}

/* ---- 3. the estimator against the exact gradient ------------------------ */

enum { GT = 3, GB = 6, GA = 1 << GB };

/* Exact d/dtheta_tb E_{a~p_t}[L_t(a)] = sum_a p_t(a) L_t(a) (a_b - s_tb). */
static void exact_grad(const fb_archdist *d, const double L[GT][GA], double *g) {
  for (int t = 0; t < GT; t++)
    for (int b = 0; b < GB; b++) {
      double s = sigmoid_ref(bit_logit(d, t, b)), acc = 0;
      for (int code = 0; code < GA; code++) {
        uint8_t a[GB];
        decode(code, GB, a);
        acc += direct_prob(d, t, a) * L[t][code] * (a[b] - s);
      }
      g[t * GB + b] = acc;
    }
}

static double expected_loss(const fb_archdist *d, int t, const double L[GT][GA]) {
  double e = 0;
  for (int code = 0; code < GA; code++) {
    uint8_t a[GB];
    decode(code, GB, a);
    e += direct_prob(d, t, a) * L[t][code];
  }
  return e;
}

/* The exact formula itself against central differences of E_t(theta). */
static void check_exact_grad_by_differences(fb_archdist *d, const double L[GT][GA], const double *g) {
  double worst = 0;
  for (int i = 0; i < GT * GB; i++) {
    int t = i / GB;
    double keep = bit_logit(d, t, i % GB), h = 1e-5;
    set_bit_logit(d, t, i % GB, keep + h);
    double up = expected_loss(d, t, L);
    set_bit_logit(d, t, i % GB, keep - h);
    double down = expected_loss(d, t, L);
    set_bit_logit(d, t, i % GB, keep);
    double fd = (up - down) / (2 * h);
    if (fabs(fd - g[i]) > worst) worst = fabs(fd - g[i]);
  }
  CHECK(worst < 1e-8, "exact score-function gradient vs central differences: worst %.3g", worst);
}

typedef struct moments {
  double sum[GT * GB], sq[GT * GB];
} moments;

/* g holds two logits per bit (skip, keep); the keep logit's entry is the
 * derivative with respect to the keep-logit difference x. */
static void accumulate(moments *mo, const double *g) {
  for (int i = 0; i < GT * GB; i++) {
    const double x = g[2 * i + 1];
    mo->sum[i] += x;
    mo->sq[i] += x * x;
  }
}

/* Largest |mean - exact| / standard error over all (t, b). */
static double worst_z(const moments *mo, const double *exact, long n) {
  double worst = 0;
  for (int i = 0; i < GT * GB; i++) {
    double mean = mo->sum[i] / n, var = mo->sq[i] / n - mean * mean;
    double se = sqrt((var > 0 ? var : 0) / n) + 1e-300;
    double z = fabs(mean - exact[i]) / se;
    if (z > worst) worst = z;
  }
  return worst;
}

/* Samples from the mixture; grad() with rho and a fixed baseline c must be
 * unbiased for the exact gradient for ANY constant c (because
 * E_p[a_b - s_b] = 0). Both c = 2 and c = 0 are checked.
 * The same samples without rho (the estimator that forgets the importance
 * weight) estimate (1/T) sum_u E_{p_u}[...] instead, which differs by many
 * standard errors: the test asserts it is rejected, so it can tell. */
static void test_estimator_vs_exact(void) {
  enum { N = 200000 };
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 31);
  CHECK(fb_archdist_init(&d, GT, GB, 0.5, &st) == 0, "init: %s", st.msg);
  random_thetas(&d, &rng, 1.0);
  static double L[GT][GA];
  for (int t = 0; t < GT; t++)
    for (int code = 0; code < GA; code++) L[t][code] = 1.0 + 2.0 * fb_rng_uniform(&rng);
  double exact[GT * GB];
  exact_grad(&d, L, exact);
  check_exact_grad_by_differences(&d, L, exact);

  static moments with_c, with_zero, no_rho;
  memset(&with_c, 0, sizeof with_c);
  memset(&with_zero, 0, sizeof with_zero);
  memset(&no_rho, 0, sizeof no_rho);
  const double ones[GT] = {1, 1, 1};
  for (int i = 0; i < N; i++) {
    uint8_t a[GB];
    double rho[GT], reward[GT], g[2 * GT * GB];
    fb_archdist_sample(&d, &rng, a);
    int code = 0;
    for (int b = 0; b < GB; b++) code |= a[b] << b;
    for (int t = 0; t < GT; t++) reward[t] = L[t][code];
    fb_archdist_importance(&d, a, rho);
    for (int t = 0; t < GT; t++) d.baseline_set[t] = 1, d.baseline[t] = 2.0;
    fb_archdist_grad(&d, a, rho, reward, g);
    accumulate(&with_c, g);
    fb_archdist_grad(&d, a, ones, reward, g);
    accumulate(&no_rho, g);
    for (int t = 0; t < GT; t++) d.baseline[t] = 0.0;
    fb_archdist_grad(&d, a, rho, reward, g);
    accumulate(&with_zero, g);
  }
  double z_c = worst_z(&with_c, exact, N), z_0 = worst_z(&with_zero, exact, N);
  double z_wrong = worst_z(&no_rho, exact, N);
  CHECK(z_c < 5, "estimator with baseline 2 vs exact gradient: worst %.2f standard errors", z_c);
  CHECK(z_0 < 5, "estimator with baseline 0 vs exact gradient: worst %.2f standard errors", z_0);
  CHECK(z_wrong > 5, "estimator WITHOUT rho must be rejected: worst %.2f standard errors", z_wrong);
  printf("estimator vs exact (N = %d): baseline 2: %.2f SE, baseline 0: %.2f SE, without rho: %.1f SE\n",
         N, z_c, z_0, z_wrong);

  /* Baseline not yet set: c = reward, so no signal at all. */
  uint8_t a[GB] = {1, 0, 1, 1, 0, 0};
  double rho[GT] = {1, 1, 1}, reward[GT] = {3, 4, 5}, g[2 * GT * GB];
  for (int t = 0; t < GT; t++) d.baseline_set[t] = 0, d.baseline[t] = 1.0;
  fb_archdist_grad(&d, a, rho, reward, g);
  int zero = 1;
  for (int i = 0; i < 2 * GT * GB; i++) zero &= g[i] == 0;
  CHECK(zero, "grad with no baseline yet is exactly zero");
  fb_archdist_free(&d);
}

/* ---- 4. Adam, baseline, derive, penalty, entropy, step ------------------- */

static void test_adam_by_hand(void) {
  fb_archdist d;
  fb_status st;
  const int K3[1] = {3}; /* one decision with three logits */
  CHECK(fb_archdist_init_choices(&d, 1, 1, K3, 0.5, &st) == 0, "init: %s", st.msg);
  d.theta[0] = 0.2, d.theta[1] = -0.1, d.theta[2] = 0.0;
  d.lr = 0.1, d.beta1 = 0.9, d.beta2 = 0.999, d.eps = 1e-8;
  const double g1[3] = {0.5, -2.0, 0.0}, g2[3] = {0.1, 1.0, -0.3};
  /* Expected values: theta -= lr * mhat / (sqrt(vhat) + eps) evaluated by hand
   * (Python floats). Step 1 moves each nonzero-gradient logit by ~lr. */
  const double after1[3] = {0.10000000199999998, -4.999999997368221e-10, 0.0};
  const double after2[3] = {0.019695906384651796, 0.02663370329756845, 0.07441367884968082};
  const double m2[3] = {0.055, -0.08, -0.03}, v2[3] = {0.00025975, 0.004996, 9e-05};
  fb_archdist_adam(&d, g1);
  for (int i = 0; i < 3; i++) CHECK_CLOSE(d.theta[i], after1[i], 1e-15, "Adam step 1 theta");
  fb_archdist_adam(&d, g2);
  for (int i = 0; i < 3; i++) {
    CHECK_CLOSE(d.theta[i], after2[i], 1e-14, "Adam step 2 theta");
    CHECK_CLOSE(d.m[i], m2[i], 1e-15, "Adam step 2 first moment");
    CHECK_CLOSE(d.v[i], v2[i], 1e-17, "Adam step 2 second moment");
  }
  CHECK(d.adam_steps == 2, "adam_steps %ld after two steps", d.adam_steps);
  fb_archdist_free(&d);
}

static void test_baseline_ema(void) {
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_init(&d, 2, 4, 0.6, &st) == 0, "init: %s", st.msg);
  CHECK(d.baseline_set[0] == 0 && d.baseline_set[1] == 0, "no baseline after init");
  const double r[3][2] = {{2.0, -1.0}, {1.0, 0.0}, {4.0, 10.0}};
  /* task 0: 2, 0.9*2 + 0.1*1 = 1.9, 0.9*1.9 + 0.1*4 = 2.11
   * task 1: -1, -0.9, 0.9*-0.9 + 0.1*10 = 0.19 */
  const double want[3][2] = {{2.0, -1.0}, {1.9, -0.9}, {2.11, 0.19}};
  for (int k = 0; k < 3; k++) {
    fb_archdist_update_baseline(&d, r[k]);
    for (int t = 0; t < 2; t++) CHECK_CLOSE(d.baseline[t], want[k][t], 1e-15, "baseline EMA");
  }
  CHECK(d.baseline_set[0] == 1 && d.baseline_set[1] == 1, "baseline set after the first reward");
  fb_archdist_free(&d);
}

static void test_derive_and_counts(void) {
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_init(&d, 2, 5, 0.6, &st) == 0, "init: %s", st.msg);
  const double th[5] = {-1.0, 0.0, 1e-9, 2.0, -1e-9};
  for (int b = 0; b < 5; b++) set_bit_logit(&d, 1, b, th[b]); /* task 1; task 0 keeps logit(0.6) */
  uint8_t a[5];
  fb_archdist_derive(&d, 1, 0.5, a);
  CHECK(a[0] == 0 && a[1] == 0 && a[2] == 1 && a[3] == 1 && a[4] == 0,
        "derive 0.5: got %d%d%d%d%d, want 00110", a[0], a[1], a[2], a[3], a[4]);
  fb_archdist_derive(&d, 1, 0.7, a); /* s(2) = 0.881 */
  CHECK(a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 1 && a[4] == 0,
        "derive 0.7: got %d%d%d%d%d, want 00010", a[0], a[1], a[2], a[3], a[4]);
  fb_archdist_derive(&d, 0, 0.5, a);
  CHECK(a[0] && a[1] && a[2] && a[3] && a[4], "derive at init 0.6 keeps every bit");
  CHECK(fb_archdist_num_on(&d, 1) == 2, "num_on task 1 = %d, want 2", fb_archdist_num_on(&d, 1));
  CHECK(fb_archdist_num_on(&d, 0) == 5, "num_on task 0 = %d, want 5", fb_archdist_num_on(&d, 0));
  CHECK_CLOSE(fb_archdist_prob(&d, 0, 3), 0.6, 1e-15, "prob at init");
  fb_archdist_free(&d);
}

static void test_flops_penalty(void) {
  CHECK_CLOSE(fb_flops_penalty(150, 100, 2), 1.0, 1e-15, "penalty 50% over, lambda 2");
  CHECK_CLOSE(fb_flops_penalty(300, 100, 0.5), 1.0, 1e-15, "penalty 200% over, lambda 0.5");
  CHECK(fb_flops_penalty(90, 100, 2) == 0, "penalty under target");
  CHECK(fb_flops_penalty(100, 100, 2) == 0, "penalty at target");
  CHECK(fb_flops_penalty(500, 0, 2) == 0, "penalty with target 0 (off)");
  CHECK(fb_flops_penalty(500, -1, 2) == 0, "penalty with negative target (off)");
}

static void test_entropy(void) {
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_init(&d, 2, 7, 0.5, &st) == 0, "init: %s", st.msg);
  CHECK_CLOSE(fb_archdist_entropy(&d, 0), 7 * LN2, 1e-13, "entropy at p = 0.5 is B ln 2");
  const double th[7] = {-3, -1, 0.5, 2, 4, -0.25, 1};
  for (int b = 0; b < 7; b++) set_bit_logit(&d, 1, b, th[b]);
  double h = 0;
  for (int b = 0; b < 7; b++) {
    double s = sigmoid_ref(th[b]);
    h -= s * log(s) + (1 - s) * log(1 - s);
  }
  CHECK_CLOSE(fb_archdist_entropy(&d, 1), h, 1e-13, "entropy vs direct formula");
  for (int b = 0; b < 7; b++) set_bit_logit(&d, 0, b, b % 2 ? 800 : -800);
  double hx = fb_archdist_entropy(&d, 0);
  CHECK(isfinite(hx) && hx >= 0 && hx < 1e-300, "entropy at |theta| = 800: %g", hx);
  fb_archdist_free(&d);
}

/* fb_archdist_step == importance + grad + Adam + baseline, composed by hand. */
static void test_step_composition(void) {
  fb_archdist d1, d2;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 41);
  CHECK(fb_archdist_init(&d1, 3, 9, 0.6, &st) == 0, "init: %s", st.msg);
  CHECK(fb_archdist_init(&d2, 3, 9, 0.6, &st) == 0, "init: %s", st.msg);
  random_thetas(&d1, &rng, 1.0);
  memcpy(d2.theta, d1.theta, 54 * sizeof(double)); /* 3 tasks x 9 bits x 2 logits */
  int same = 1, rho_same = 1;
  for (int k = 0; k < 20; k++) {
    uint8_t a[9];
    double loss[3], pen[3], reward[3], rho1[3], rho2[3], g[54];
    fb_archdist_sample(&d1, &rng, a);
    for (int t = 0; t < 3; t++) {
      loss[t] = 1 + fb_rng_uniform(&rng);
      pen[t] = 0.1 * t;
      reward[t] = loss[t] + pen[t];
    }
    int warm = k < 5;
    CHECK(fb_archdist_step(&d1, a, loss, pen, !warm, rho1) == 0, "step: no bad rewards");
    fb_archdist_importance(&d2, a, rho2);
    if (!warm) {
      fb_archdist_grad(&d2, a, rho2, reward, g);
      fb_archdist_adam(&d2, g);
    }
    fb_archdist_update_baseline(&d2, reward);
    for (int t = 0; t < 3; t++) rho_same &= rho1[t] == rho2[t];
    for (int i = 0; i < 54; i++) same &= d1.theta[i] == d2.theta[i];
    for (int t = 0; t < 3; t++) same &= d1.baseline[t] == d2.baseline[t];
    if (k == 4) CHECK(d1.adam_steps == 0, "warm-up steps leave theta and Adam alone");
  }
  CHECK(same, "step == importance + grad + adam + baseline (bit-exact, with warm-up and penalty)");
  CHECK(rho_same, "step reports rho from the theta before its update");
  CHECK(d1.adam_steps == 15, "adam_steps %ld after 15 updates", d1.adam_steps);

  /* A non-finite loss: counted, no NaN anywhere, that task's baseline kept. */
  uint8_t a[9] = {1, 1, 0, 0, 1, 0, 1, 0, 1};
  double loss[3] = {1.0, NAN, 2.0}, b1 = d1.baseline[1];
  CHECK(fb_archdist_step(&d1, a, loss, NULL, 1, NULL) == 1, "step counts the NaN loss");
  int finite = 1;
  for (int i = 0; i < 54; i++) finite &= isfinite(d1.theta[i]) && isfinite(d1.m[i]) && isfinite(d1.v[i]);
  CHECK(finite, "NaN loss does not reach theta or the moments");
  CHECK(d1.baseline[1] == b1, "NaN loss leaves that task's baseline alone");
  fb_archdist_free(&d1);
  fb_archdist_free(&d2);
}

static void test_init_errors(void) {
  fb_archdist d;
  fb_status st;
  struct { int T, B; double p; const char *frag; } bad[] = {
      {0, 5, 0.5, "archdist.T"},   {9, 5, 0.5, "archdist.T"},          {2, 0, 0.5, "archdist.D"},
      {2, 4097, 0.5, "archdist.D"}, {2, 5, 0.0, "archdist.init_prob"}, {2, 5, 1.0, "archdist.init_prob"},
      {2, 5, NAN, "archdist.init_prob"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    st.msg[0] = 0;
    int rc = fb_archdist_init(&d, bad[i].T, bad[i].B, bad[i].p, &st);
    CHECK(rc == -1 && strstr(st.msg, bad[i].frag) && d.theta == NULL,
          "init(%d, %d, %g) must fail naming %s: rc %d, \"%s\"", bad[i].T, bad[i].B, bad[i].p,
          bad[i].frag, rc, st.msg);
  }
  CHECK(fb_archdist_init(&d, 8, 4096, 0.7, &st) == 0, "init at the limits: %s", st.msg);
  fb_archdist_free(&d);
  fb_archdist_free(&d); /* twice is harmless */
}

/* ---- 4b. JSON ------------------------------------------------------------ */

static void make_busy_state(fb_archdist *d) {
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 51);
  CHECK(fb_archdist_init(d, 3, 55, 0.6, &st) == 0, "init: %s", st.msg);
  d->lr = 0.0123456789;
  d->rho_clip = 2.5;
  d->theta[7] = -0.0; /* the sign of zero must survive too */
  for (int k = 0; k < 30; k++) {
    uint8_t a[55];
    double loss[3];
    fb_archdist_sample(d, &rng, a);
    for (int t = 0; t < 3; t++) loss[t] = 1.0 / 3.0 + fb_rng_normal(&rng);
    fb_archdist_step(d, a, loss, NULL, k >= 3, NULL);
  }
  d->baseline_set[2] = 0;
  d->baseline[2] = 0.1;
}

static int same_bits(const double *x, const double *y, size_t n) { return memcmp(x, y, n * sizeof(double)) == 0; }

static int same_state(const fb_archdist *x, const fb_archdist *y) {
  size_t n = (size_t)x->T * (size_t)x->P;
  if (x->T != y->T || x->D != y->D || x->P != y->P) return 0;
  if (memcmp(x->K, y->K, (size_t)x->D * sizeof(int)) != 0) return 0;
  if (x->replay != y->replay || x->adv_norm != y->adv_norm || !same_bits(&x->elite, &y->elite, 1) ||
      x->buf_n != y->buf_n || x->buf_next != y->buf_next ||
      !same_bits(x->adv_var, y->adv_var, (size_t)x->T))
    return 0;
  if (x->buf_n && (memcmp(x->buf_a, y->buf_a, (size_t)x->buf_n * x->D) != 0 ||
                   !same_bits(x->buf_r, y->buf_r, (size_t)x->buf_n * x->T) ||
                   !same_bits(x->buf_lq, y->buf_lq, (size_t)x->buf_n)))
    return 0;
  return same_bits(x->theta, y->theta, n) && same_bits(x->m, y->m, n) && same_bits(x->v, y->v, n) &&
         same_bits(x->baseline, y->baseline, (size_t)x->T) &&
         memcmp(x->baseline_set, y->baseline_set, (size_t)x->T * sizeof(int)) == 0 &&
         x->adam_steps == y->adam_steps && same_bits(&x->lr, &y->lr, 1) &&
         same_bits(&x->beta1, &y->beta1, 1) && same_bits(&x->beta2, &y->beta2, 1) &&
         same_bits(&x->eps, &y->eps, 1) && same_bits(&x->baseline_decay, &y->baseline_decay, 1) &&
         same_bits(&x->rho_clip, &y->rho_clip, 1);
}

static void test_json_round_trip(void) {
  fb_archdist d, r, e;
  fb_status st;
  make_busy_state(&d);
  char *text = fb_archdist_to_json(&d);
  CHECK(fb_archdist_from_json(&r, text, &st) == 0, "from_json: %s", st.msg);
  CHECK(same_state(&d, &r), "JSON round trip is bit-exact (theta, m, v, baselines, hyper-parameters)");
  CHECK(signbit(r.theta[7]) || d.theta[7] != 0, "negative zero survives");
  char *again = fb_archdist_to_json(&r);
  CHECK(strcmp(text, again) == 0, "to_json(from_json(x)) == x");

  /* Embedded in a larger document and read back through from_cjson. */
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "step", 30);
  cJSON_AddRawToObject(doc, "archdist", text);
  char *outer = cJSON_PrintUnformatted(doc);
  cJSON *back = cJSON_Parse(outer);
  CHECK(back && fb_archdist_from_cjson(&e, cJSON_GetObjectItem(back, "archdist"), &st) == 0,
        "from_cjson of an embedded state: %s", st.msg);
  CHECK(back && same_state(&d, &e), "embedded round trip is bit-exact");
  if (back) fb_archdist_free(&e);
  cJSON_Delete(back);
  cJSON_Delete(doc);
  free(outer);
  free(again);
  free(text);
  fb_archdist_free(&r);
  fb_archdist_free(&d);
}

/* Parses text, applies edit to the root object, returns the printed result. */
static char *edited(const char *text, void (*edit)(cJSON *root)) {
  cJSON *root = cJSON_Parse(text);
  edit(root);
  char *out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

static void drop_last_theta(cJSON *root) {
  cJSON *arr = cJSON_GetObjectItem(root, "theta");
  cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
}
static void drop_lr(cJSON *root) { cJSON_DeleteItemFromObject(root, "lr"); }
static void string_in_theta(cJSON *root) {
  cJSON_ReplaceItemInArray(cJSON_GetObjectItem(root, "theta"), 7, cJSON_CreateString("x"));
}
static void bad_flag(cJSON *root) {
  cJSON_ReplaceItemInArray(cJSON_GetObjectItem(root, "baseline_set"), 1, cJSON_CreateNumber(2));
}
static void too_many_tasks(cJSON *root) { cJSON_ReplaceItemInObject(root, "T", cJSON_CreateNumber(9)); }
static void negative_v(cJSON *root) {
  cJSON_ReplaceItemInArray(cJSON_GetObjectItem(root, "v"), 4, cJSON_CreateNumber(-1));
}
static void beta1_one(cJSON *root) { cJSON_ReplaceItemInObject(root, "beta1", cJSON_CreateNumber(1)); }

static void expect_json_error(const char *text, const char *frag, const char *what) {
  fb_archdist d;
  fb_status st;
  st.msg[0] = 0;
  int rc = fb_archdist_from_json(&d, text, &st);
  CHECK(rc == -1 && strstr(st.msg, frag) != NULL && d.theta == NULL,
        "%s: want failure with \"%s\", got rc %d \"%s\"", what, frag, rc, st.msg);
  if (rc == 0) fb_archdist_free(&d);
}

static void test_json_errors(void) {
  fb_archdist d;
  make_busy_state(&d);
  char *text = fb_archdist_to_json(&d);
  struct { void (*edit)(cJSON *); const char *frag, *what; } cases[] = {
      {drop_last_theta, "archdist.theta: expected 330 numbers, got 329", "short theta"},
      {drop_lr, "archdist.lr: missing", "missing lr"},
      {string_in_theta, "archdist.theta[7]: expected a number", "string in theta"},
      {bad_flag, "archdist.baseline_set[1]: 2, expected 0 or 1", "baseline_set 2"},
      {too_many_tasks, "archdist.T: 9, expected an integer in 1..8", "T = 9"},
      {negative_v, "archdist.v[4]", "negative second moment"},
      {beta1_one, "archdist.beta1", "beta1 = 1"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *bad = edited(text, cases[i].edit);
    expect_json_error(bad, cases[i].frag, cases[i].what);
    free(bad);
  }
  /* Truncated text, trailing garbage, overflowing number, not an object. */
  size_t n = strlen(text);
  char *cut = malloc(n);
  memcpy(cut, text, n / 2);
  cut[n / 2] = 0;
  expect_json_error(cut, "archdist: invalid JSON", "truncated text");
  free(cut);
  char *tail = malloc(n + 8);
  snprintf(tail, n + 8, "%s xyz", text);
  expect_json_error(tail, "archdist: invalid JSON", "trailing garbage");
  free(tail);
  char *big = malloc(n + 16);
  char *at = strstr(text, "\"theta\":[");
  size_t head = (size_t)(at - text) + strlen("\"theta\":[");
  memcpy(big, text, head);
  snprintf(big + head, n + 16 - head, "1e999,%s", strchr(text + head, ',') + 1);
  expect_json_error(big, "archdist.theta[0]: not a finite number", "1e999 in theta");
  free(big);
  expect_json_error("[1, 2]", "archdist: expected a JSON object", "array at top level");
  free(text);
  fb_archdist_free(&d);
}

/* ---- 6. categorical decisions, the replay estimator, version 1 states ---- */

enum { CT = 2, CD = 3, CA = 24 }; /* decisions with 3, 4 and 2 choices: 24 architectures */
static const int CK[CD] = {3, 4, 2};

static void decode_cat(int code, uint8_t *a) {
  for (int j = 0; j < CD; j++) a[j] = (uint8_t)(code % CK[j]), code /= CK[j];
}

/* p_t(a) as a product of softmax probabilities computed here. */
static double cat_prob(const fb_archdist *d, int t, const uint8_t *a) {
  double p = 1;
  for (int j = 0; j < CD; j++) {
    const double *x = d->theta + (size_t)t * d->P + d->off[j];
    double z = 0;
    for (int k = 0; k < CK[j]; k++) z += exp(x[k]);
    p *= exp(x[a[j]]) / z;
  }
  return p;
}

static void test_categorical(void) {
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 61);
  CHECK(fb_archdist_init_choices(&d, CT, CD, CK, 0.6, &st) == 0, "init: %s", st.msg);
  CHECK(d.P == 9 && d.off[1] == 3 && d.off[2] == 7, "layout: P %d, offsets %d %d", d.P, d.off[1], d.off[2]);
  CHECK_CLOSE(fb_archdist_choice_prob(&d, 0, 1, 2), 0.25, 1e-15, "a 4-choice decision starts uniform");
  CHECK_CLOSE(fb_archdist_prob(&d, 0, 2), 0.6, 1e-15, "a 2-choice decision starts at init_prob");
  for (int i = 0; i < CT * d.P; i++) d.theta[i] = 1.3 * fb_rng_normal(&rng);
  double worst = 0, total[CT] = {0}, worst_rho = 0;
  for (int code = 0; code < CA; code++) {
    uint8_t a[CD];
    double logp[CT], rho[CT], p[CT];
    decode_cat(code, a);
    fb_archdist_log_prob(&d, a, logp);
    fb_archdist_importance(&d, a, rho);
    for (int t = 0; t < CT; t++) {
      p[t] = cat_prob(&d, t, a);
      worst = fmax(worst, fabs(logp[t] - log(p[t])));
      total[t] += exp(logp[t]);
    }
    for (int t = 0; t < CT; t++) worst_rho = fmax(worst_rho, rel_diff(rho[t], CT * p[t] / (p[0] + p[1])));
  }
  CHECK(worst < 1e-12, "categorical log_prob vs product of softmaxes: worst %.3g", worst);
  CHECK(fabs(total[0] - 1) < 1e-12 && fabs(total[1] - 1) < 1e-12, "probabilities sum to 1");
  CHECK(worst_rho < 1e-12, "categorical importance weights: worst rel diff %.3g", worst_rho);

  /* sampler: chi-square of the mixture over the 24 architectures */
  enum { N = 120000 };
  long count[CA] = {0};
  int in_range = 1;
  for (int i = 0; i < N; i++) {
    uint8_t a[CD];
    fb_archdist_sample(&d, &rng, a);
    int code = 0, mul = 1;
    for (int j = 0; j < CD; j++) in_range &= a[j] < CK[j], code += a[j] * mul, mul *= CK[j];
    if (in_range) count[code]++;
  }
  double chi = 0;
  for (int code = 0; code < CA; code++) {
    uint8_t a[CD];
    decode_cat(code, a);
    const double e = N * 0.5 * (cat_prob(&d, 0, a) + cat_prob(&d, 1, a));
    chi += (count[code] - e) * (count[code] - e) / e;
  }
  CHECK(in_range, "sampled choices in 0..K-1");
  CHECK(chi < 49.73, "categorical mixture sampler: chi-square %.2f with 23 dof", chi);

  /* the plain estimator is unbiased for d/dtheta E_{p_t}[L_t] (exact by enumeration) */
  double L[CT][CA], exact[CT * 9] = {0};
  for (int t = 0; t < CT; t++)
    for (int code = 0; code < CA; code++) L[t][code] = 1 + 2 * fb_rng_uniform(&rng);
  for (int t = 0; t < CT; t++)
    for (int code = 0; code < CA; code++) {
      uint8_t a[CD];
      decode_cat(code, a);
      const double w = cat_prob(&d, t, a) * L[t][code];
      for (int j = 0; j < CD; j++)
        for (int k = 0; k < CK[j]; k++)
          exact[t * 9 + d.off[j] + k] += w * ((a[j] == k) - fb_archdist_choice_prob(&d, t, j, k));
    }
  static double sum[CT * 9], sq[CT * 9];
  enum { NE = 100000 };
  for (int i = 0; i < NE; i++) {
    uint8_t a[CD];
    double rho[CT], r[CT], g[CT * 9];
    fb_archdist_sample(&d, &rng, a);
    int code = 0, mul = 1;
    for (int j = 0; j < CD; j++) code += a[j] * mul, mul *= CK[j];
    for (int t = 0; t < CT; t++) r[t] = L[t][code], d.baseline_set[t] = 1, d.baseline[t] = 2;
    fb_archdist_importance(&d, a, rho);
    fb_archdist_grad(&d, a, rho, r, g);
    for (int k = 0; k < CT * 9; k++) sum[k] += g[k], sq[k] += g[k] * g[k];
  }
  double z = 0;
  for (int k = 0; k < CT * 9; k++) {
    const double mean = sum[k] / NE, se = sqrt(fmax(sq[k] / NE - mean * mean, 0) / NE) + 1e-300;
    z = fmax(z, fabs(mean - exact[k]) / se);
  }
  CHECK(z < 5, "categorical estimator vs exact gradient: worst %.2f standard errors", z);
  uint8_t a[CD];
  fb_archdist_derive(&d, 0, 0.5, a);
  int argmax_ok = 1;
  for (int j = 0; j < CD; j++)
    for (int k = 0; k < CK[j]; k++)
      argmax_ok &= fb_archdist_choice_prob(&d, 0, j, k) <= fb_archdist_choice_prob(&d, 0, j, a[j]);
  CHECK(argmax_ok, "derive takes the most probable choice of each decision");
  fb_archdist_free(&d);
}

/* The replay estimator against the formula computed here: self-normalised
 * weights p_t(a_i) / q_i(a_i) over the buffer (q_i = the mixture when a_i was
 * drawn), advantages from the weighted mean and deviation (or the elite
 * indicator), g_t = sum_i w_i A_i (onehot(a_i) - p_t). */
static void replay_by_hand(double elite) {
  fb_archdist d, ref;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 71);
  enum { W = 3, STEPS = 5 };
  CHECK(fb_archdist_init_choices(&d, CT, CD, CK, 0.5, &st) == 0 &&
            fb_archdist_set_estimator(&d, 0, W, elite, &st) == 0, "init: %s", st.msg);
  for (int i = 0; i < CT * d.P; i++) d.theta[i] = 0.7 * fb_rng_normal(&rng);
  uint8_t buf[STEPS][CD];
  double r[STEPS][CT], lq[STEPS];
  int ok = 1;
  for (int s = 0; s < STEPS; s++) {
    fb_archdist_sample(&d, &rng, buf[s]);
    lq[s] = log(0.5 * (cat_prob(&d, 0, buf[s]) + cat_prob(&d, 1, buf[s])));
    for (int t = 0; t < CT; t++) r[s][t] = fb_rng_normal(&rng) + t;
    /* the expected gradient, from the newest W samples including this one */
    double g[CT * 9] = {0};
    const int lo = s + 1 > W ? s + 1 - W : 0;
    for (int t = 0; t < CT; t++) {
      double w[W], A[W], wsum = 0, mean = 0, var = 0;
      for (int i = lo; i <= s; i++) wsum += w[i - lo] = cat_prob(&d, t, buf[i]) / exp(lq[i]);
      for (int i = lo; i <= s; i++) w[i - lo] /= wsum, mean += w[i - lo] * r[i][t];
      for (int i = lo; i <= s; i++) var += w[i - lo] * (r[i][t] - mean) * (r[i][t] - mean);
      for (int i = lo; i <= s; i++) A[i - lo] = var > 0 ? (r[i][t] - mean) / sqrt(var) : 0;
      if (elite > 0) { /* the best (lowest) samples while their weight fits in `elite` */
        int order[W], n = s - lo + 1;
        for (int q = 0; q < n; q++) order[q] = lo + q;
        for (int x = 0; x < n; x++)
          for (int y = x + 1; y < n; y++)
            if (r[order[y]][t] < r[order[x]][t]) { int tmp = order[x]; order[x] = order[y]; order[y] = tmp; }
        double cum = 0, u[W] = {0}, mu = 0;
        for (int q = 0; q < n; q++) {
          if (q > 0 && cum + w[order[q] - lo] > elite + 1e-12) break;
          cum += w[order[q] - lo], u[order[q] - lo] = 1;
        }
        for (int q = 0; q < n; q++) mu += w[q] * u[q];
        for (int q = 0; q < n; q++) A[q] = mu - u[q];
      }
      for (int i = lo; i <= s; i++)
        for (int j = 0; j < CD; j++)
          for (int k = 0; k < CK[j]; k++)
            g[t * 9 + d.off[j] + k] +=
                w[i - lo] * A[i - lo] * ((buf[i][j] == k) - fb_archdist_choice_prob(&d, t, j, k));
    }
    char *text = fb_archdist_to_json(&d);
    CHECK(fb_archdist_from_json(&ref, text, &st) == 0, "copy: %s", st.msg);
    free(text);
    fb_archdist_adam(&ref, g);
    fb_archdist_step(&d, buf[s], r[s], NULL, 1, NULL);
    /* (Adam turns a rounding-level gradient into a step of ~1e-11; a wrong
     * gradient moves theta by ~lr = 5e-3) */
    for (int i = 0; i < CT * d.P; i++) ok &= fabs(d.theta[i] - ref.theta[i]) < 1e-9;
    fb_archdist_free(&ref);
  }
  CHECK(ok, "replay estimator (W = 3, elite %g) == the formula computed by hand, 5 steps", elite);
  CHECK(d.buf_n == W && d.buf_next == STEPS % W, "the buffer is a ring of W samples");
  /* the state with its buffer survives JSON (a non-finite reward included) */
  double bad[CT] = {NAN, 1.0};
  uint8_t a[CD] = {2, 3, 1};
  CHECK(fb_archdist_step(&d, a, bad, NULL, 1, NULL) == 1, "a NaN reward is counted");
  char *text = fb_archdist_to_json(&d);
  CHECK(fb_archdist_from_json(&ref, text, &st) == 0 && same_state(&d, &ref),
        "JSON round trip of a replay state is bit-exact: %s", st.msg);
  int finite = 1;
  for (int i = 0; i < CT * d.P; i++) finite &= isfinite(d.theta[i]);
  CHECK(finite, "a NaN reward in the buffer leaves theta finite");
  free(text);
  fb_archdist_free(&ref);
  fb_archdist_free(&d);
}

static void test_replay(void) {
  replay_by_hand(0);
  replay_by_hand(0.4);
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_init(&d, 2, 4, 0.5, &st) == 0, "init: %s", st.msg);
  CHECK(fb_archdist_set_estimator(&d, 0, -1, 0, &st) == -1 && strstr(st.msg, "archdist.replay"),
        "negative replay refused: %s", st.msg);
  CHECK(fb_archdist_set_estimator(&d, 0, 8, 1.0, &st) == -1 && strstr(st.msg, "archdist.elite"),
        "elite 1 refused: %s", st.msg);
  fb_archdist_free(&d);
}

/* A version 1 state (one Bernoulli logit per bit) loads as the same
 * distribution and continues on the same trajectory as the old update. */
static void test_v1_state(void) {
  const char *v1 = "{\"version\":1,\"T\":1,\"B\":2,\"lr\":0.01,\"beta1\":0.9,\"beta2\":0.999,"
                   "\"eps\":1e-8,\"baseline_decay\":0.9,\"rho_clip\":0,\"adam_steps\":3,"
                   "\"theta\":[0.4,-1.1],\"m\":[0.02,-0.05],\"v\":[0.0004,0.003],"
                   "\"baseline\":[1.5],\"baseline_set\":[1]}";
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_from_json(&d, v1, &st) == 0, "version 1 state: %s", st.msg);
  if (d.theta == NULL) return;
  CHECK_CLOSE(fb_archdist_prob(&d, 0, 0), sigmoid_ref(0.4), 1e-15, "v1: p(keep) of bit 0");
  CHECK_CLOSE(fb_archdist_prob(&d, 0, 1), sigmoid_ref(-1.1), 1e-15, "v1: p(keep) of bit 1");
  /* the old update, by hand: g = rho (r - b)(a - s(x)), Adam at lr 0.01 on x */
  const double x[2] = {0.4, -1.1}, m[2] = {0.02, -0.05}, v[2] = {0.0004, 0.003};
  const uint8_t a[2] = {1, 0};
  const double rho[1] = {1.0}, r[1] = {2.0};
  double want[2];
  for (int b = 0; b < 2; b++) {
    const double g = rho[0] * (r[0] - 1.5) * (a[b] - sigmoid_ref(x[b]));
    const double m1 = 0.9 * m[b] + 0.1 * g, v1b = 0.999 * v[b] + 0.001 * g * g;
    want[b] = x[b] - 0.01 / (1 - pow(0.9, 4)) * m1 / (sqrt(v1b) / sqrt(1 - pow(0.999, 4)) + 1e-8);
  }
  double g[4];
  fb_archdist_grad(&d, a, rho, r, g);
  fb_archdist_adam(&d, g);
  CHECK(fabs(bit_logit(&d, 0, 0) - want[0]) < 1e-12 && fabs(bit_logit(&d, 0, 1) - want[1]) < 1e-12,
        "v1 state continues on the old trajectory (%.15g %.15g vs %.15g %.15g)", bit_logit(&d, 0, 0),
        bit_logit(&d, 0, 1), want[0], want[1]);
  fb_archdist_free(&d);
}

/* ---- 5. planted-best simulation ----------------------------------------- */

/* docs/method.md section 4: 55 bits, 3 tasks, each with its own planted best vector;
 * every wrong bit adds 2% to the task's loss, then 30% multiplicative noise.
 * The proposal is the mixture (one sample for all tasks, what the search
 * does), a uniform Bernoulli(0.5) (rho_t = p_t(a) 2^B), or "separate": one
 * on-policy sample per task (T forwards per step; the cost the mixture
 * avoids), as a reference. */
enum { SIM_T = 3, SIM_B = 55, SIM_MAX_CHECKS = 4 };
typedef enum { PROP_MIXTURE, PROP_UNIFORM, PROP_SEPARATE } proposal;

typedef struct sim_cfg {
  proposal prop;
  double lr, init_prob, rho_clip;
  int steps, warmup;
  uint64_t seed;
  int ncheck, check_at[SIM_MAX_CHECKS]; /* ascending step counts */
} sim_cfg;

static double planted_loss(const uint8_t *a, const uint8_t *best, double base, fb_rng *rng) {
  int wrong = 0;
  for (int b = 0; b < SIM_B; b++) wrong += a[b] != best[b];
  return base * (1 + 0.02 * wrong) * (1 + 0.3 * fb_rng_normal(rng));
}

static double fraction_right(const fb_archdist *d, uint8_t best[SIM_T][SIM_B]) {
  int right = 0;
  for (int t = 0; t < SIM_T; t++)
    for (int b = 0; b < SIM_B; b++) right += (fb_archdist_prob(d, t, b) > 0.5) == (best[t][b] == 1);
  return (double)right / (SIM_T * SIM_B);
}

/* One step with a proposal the library does not provide (uniform/separate). */
static void manual_step(fb_archdist *d, const uint8_t *a, const double *rho, const double *loss, int update) {
  double g[2 * SIM_T * SIM_B];
  if (update) {
    fb_archdist_grad(d, a, rho, loss, g);
    fb_archdist_adam(d, g);
  }
  fb_archdist_update_baseline(d, loss);
}

static void uniform_step(fb_archdist *d, fb_rng *rng, uint8_t best[SIM_T][SIM_B], const double *base,
                         int update) {
  uint8_t a[SIM_B];
  double logp[SIM_T], rho[SIM_T], loss[SIM_T];
  for (int b = 0; b < SIM_B; b++) a[b] = fb_rng_uniform(rng) < 0.5;
  fb_archdist_log_prob(d, a, logp);
  for (int t = 0; t < SIM_T; t++) {
    rho[t] = exp(logp[t] + SIM_B * LN2);
    if (d->rho_clip > 0 && rho[t] > d->rho_clip) rho[t] = d->rho_clip;
    loss[t] = planted_loss(a, best[t], base[t], rng);
  }
  manual_step(d, a, rho, loss, update);
}

/* Per task its own on-policy sample, rho = 1; the other tasks' rows of the
 * gradient are zeroed by giving them reward = baseline. */
static void separate_step(fb_archdist *d, fb_rng *rng, uint8_t best[SIM_T][SIM_B], const double *base,
                          int update) {
  double g[2 * SIM_T * SIM_B], all[2 * SIM_T * SIM_B], loss[SIM_T];
  const double ones[SIM_T] = {1, 1, 1};
  for (int t = 0; t < SIM_T; t++) {
    uint8_t a[SIM_B];
    double reward[SIM_T];
    for (int b = 0; b < SIM_B; b++) a[b] = fb_rng_uniform(rng) < fb_archdist_prob(d, t, b);
    loss[t] = planted_loss(a, best[t], base[t], rng);
    for (int u = 0; u < SIM_T; u++) reward[u] = d->baseline_set[u] ? d->baseline[u] : 0;
    reward[t] = loss[t];
    fb_archdist_grad(d, a, ones, reward, g);
    memcpy(all + t * d->P, g + t * d->P, (size_t)d->P * sizeof(double));
  }
  if (update) fb_archdist_adam(d, all);
  fb_archdist_update_baseline(d, loss);
}

static void mixture_step(fb_archdist *d, fb_rng *rng, uint8_t best[SIM_T][SIM_B], const double *base,
                         int update) {
  uint8_t a[SIM_B];
  double loss[SIM_T];
  fb_archdist_sample(d, rng, a);
  for (int t = 0; t < SIM_T; t++) loss[t] = planted_loss(a, best[t], base[t], rng);
  fb_archdist_step(d, a, loss, NULL, update, NULL);
}

/* Runs one simulation; out[k] = fraction of bits on the right side after check_at[k] steps. */
static void simulate(const sim_cfg *c, double *out) {
  fb_archdist d;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, c->seed);
  if (fb_archdist_init(&d, SIM_T, SIM_B, c->init_prob, &st)) {
    fprintf(stderr, "simulate: %s\n", st.msg);
    exit(2);
  }
  d.lr = c->lr;
  d.rho_clip = c->rho_clip;
  uint8_t best[SIM_T][SIM_B];
  const double base[SIM_T] = {1.0, 2.0, 0.5}; /* losses of different scales */
  for (int t = 0; t < SIM_T; t++)
    for (int b = 0; b < SIM_B; b++) best[t][b] = fb_rng_uniform(&rng) < 0.5;
  int k = 0;
  for (int s = 1; s <= c->steps && k < c->ncheck; s++) {
    int update = s > c->warmup;
    if (c->prop == PROP_MIXTURE) mixture_step(&d, &rng, best, base, update);
    if (c->prop == PROP_UNIFORM) uniform_step(&d, &rng, best, base, update);
    if (c->prop == PROP_SEPARATE) separate_step(&d, &rng, best, base, update);
    while (k < c->ncheck && s == c->check_at[k]) out[k++] = fraction_right(&d, best);
  }
  fb_archdist_free(&d);
}

/* Mean over seeds of the fraction right at each checkpoint. */
static void simulate_seeds(sim_cfg c, int nseeds, double *mean, double *sd) {
  double sum[SIM_MAX_CHECKS] = {0}, sq[SIM_MAX_CHECKS] = {0};
  for (int i = 0; i < nseeds; i++) {
    double out[SIM_MAX_CHECKS];
    c.seed = 1000 + 17 * (uint64_t)i;
    simulate(&c, out);
    for (int k = 0; k < c.ncheck; k++) sum[k] += out[k], sq[k] += out[k] * out[k];
  }
  for (int k = 0; k < c.ncheck; k++) {
    mean[k] = sum[k] / nseeds;
    double var = sq[k] / nseeds - mean[k] * mean[k];
    sd[k] = sqrt(var > 0 ? var : 0);
  }
}

/* The default lr and init 0.6, 3 seeds: the mixture must put most bits on
 * the right side after 3000 steps (the sweep measures ~0.76) and beat the
 * uniform proposal at the same lr (~0.61). */
static void test_planted_simulation(void) {
  sim_cfg c = {PROP_MIXTURE, FB_ARCHDIST_DEFAULT_LR, 0.6, 0, 3000, 0, 0, 2, {1, 3000}};
  double mix[SIM_MAX_CHECKS], uni[SIM_MAX_CHECKS], sd[SIM_MAX_CHECKS];
  simulate_seeds(c, 3, mix, sd);
  c.prop = PROP_UNIFORM;
  simulate_seeds(c, 3, uni, sd);
  printf("planted simulation, lr %g, init 0.6, 3000 steps: mixture %.3f -> %.3f, uniform %.3f -> %.3f\n",
         c.lr, mix[0], mix[1], uni[0], uni[1]);
  CHECK(mix[1] > 0.65, "mixture proposal after 3000 steps: %.3f of the bits on the right side", mix[1]);
  CHECK(mix[1] > mix[0] + 0.1, "the search improves on its start (%.3f -> %.3f)", mix[0], mix[1]);
  CHECK(mix[1] > uni[1] + 0.05, "mixture (%.3f) beats the uniform proposal (%.3f)", mix[1], uni[1]);
}

static const char *prop_name(proposal p) {
  return p == PROP_MIXTURE ? "mixture" : p == PROP_UNIFORM ? "uniform" : "separate";
}

static void print_row(sim_cfg c, int nseeds) {
  double mean[SIM_MAX_CHECKS], sd[SIM_MAX_CHECKS];
  simulate_seeds(c, nseeds, mean, sd);
  printf("| %-8s | %6g | %4.2f | %4g | %5d |", prop_name(c.prop), c.lr, c.init_prob, c.rho_clip, c.warmup);
  for (int k = 0; k < c.ncheck; k++) printf(" %.3f +- %.3f |", mean[k], sd[k]);
  printf("\n");
  fflush(stdout);
}

static void run_sweep(void) {
  const int nseeds = 8;
  sim_cfg c = {PROP_MIXTURE, 0, 0.6, 0, 10000, 0, 0, 3, {1000, 3000, 10000}};
  printf("\nplanted-best sweep: %d seeds each, fraction of the 165 bits on the right side (mean +- sd)\n",
         nseeds);
  printf("| proposal | lr | init | clip | warmup | 1000 steps | 3000 steps | 10000 steps |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  /* logit lr (one logit per choice): 5e-3 moves a bit like a Bernoulli logit at 1e-2 */
  const double lrs[] = {5e-4, 1.5e-3, 2.5e-3, 5e-3, 1.5e-2};
  const proposal props[] = {PROP_MIXTURE, PROP_UNIFORM, PROP_SEPARATE};
  for (int p = 0; p < 3; p++)
    for (int i = 0; i < 5; i++) {
      c.prop = props[p];
      c.lr = lrs[i];
      print_row(c, nseeds);
    }
  c.prop = PROP_UNIFORM; /* the uniform proposal's heavy weights, clipped */
  c.rho_clip = 3;
  for (int i = 1; i < 4; i++) c.lr = lrs[i], print_row(c, nseeds);
  c.prop = PROP_MIXTURE;
  c.rho_clip = 2; /* the mixture's weights are <= T = 3 already; clip at 2 */
  for (int i = 2; i < 4; i++) c.lr = lrs[i], print_row(c, nseeds);
  c.rho_clip = 0;
  const double inits[] = {0.5, 0.7};
  for (int i = 2; i < 4; i++)
    for (int j = 0; j < 2; j++) c.lr = lrs[i], c.init_prob = inits[j], print_row(c, nseeds);
  c.init_prob = 0.6;
  c.warmup = 2500; /* 25% of 10000: theta frozen, so fewer theta steps */
  for (int i = 2; i < 4; i++) c.lr = lrs[i], print_row(c, nseeds);
  c.warmup = 0;
  c.steps = 30000;
  c.ncheck = 4;
  c.check_at[3] = 30000;
  printf("\nlonger runs\n| proposal | lr | init | clip | warmup | 1000 | 3000 | 10000 | 30000 |\n");
  for (int i = 2; i < 5; i++) c.lr = lrs[i], print_row(c, nseeds);
  c.prop = PROP_SEPARATE;
  c.lr = 5e-3;
  print_row(c, nseeds);
}

/* Two samples per step (two ranks, or --archs-per-step 2): one Adam step on
 * the mean of their plain estimates at the same theta, then both baselines. */
static void test_step_many(void) {
  fb_archdist d1, d2;
  fb_status st;
  fb_rng rng;
  fb_rng_seed(&rng, 43);
  CHECK(fb_archdist_init(&d1, 3, 9, 0.6, &st) == 0, "init: %s", st.msg);
  CHECK(fb_archdist_init(&d2, 3, 9, 0.6, &st) == 0, "init: %s", st.msg);
  random_thetas(&d1, &rng, 1.0);
  memcpy(d2.theta, d1.theta, 54 * sizeof(double));
  double worst = 0;
  int rho_same = 1;
  for (int k = 0; k < 12; k++) {
    uint8_t a[18];
    double loss[6], reward[6], rho1[6], rho2[6], g0[54], g1[54], g[54];
    fb_archdist_sample(&d1, &rng, a);
    fb_archdist_sample(&d1, &rng, a + 9);
    for (int i = 0; i < 6; i++) reward[i] = loss[i] = 1 + fb_rng_uniform(&rng);
    const int warm = k < 3;
    CHECK(fb_archdist_step_many(&d1, 2, a, loss, NULL, !warm, rho1) == 0, "step_many");
    fb_archdist_importance(&d2, a, rho2);
    fb_archdist_importance(&d2, a + 9, rho2 + 3);
    if (!warm) {
      fb_archdist_grad(&d2, a, rho2, reward, g0);
      fb_archdist_grad(&d2, a + 9, rho2 + 3, reward + 3, g1);
      for (int i = 0; i < 54; i++) g[i] = g0[i] / 2 + g1[i] / 2;
      fb_archdist_adam(&d2, g);
    }
    fb_archdist_update_baseline(&d2, reward);
    fb_archdist_update_baseline(&d2, reward + 3);
    for (int i = 0; i < 6; i++) rho_same &= rho1[i] == rho2[i];
    for (int i = 0; i < 54; i++) worst = fmax(worst, fabs(d1.theta[i] - d2.theta[i]));
  }
  CHECK(worst < 1e-12, "2 samples per step == the mean of their estimates, one Adam step "
        "(max |dtheta| %.3g)", worst);
  CHECK(rho_same, "both samples' rho from the theta before the update");
  CHECK(d1.adam_steps == 9, "one Adam step per step (%ld after 9)", d1.adam_steps);
  fb_archdist_free(&d1);
  fb_archdist_free(&d2);
}

int main(int argc, char **argv) {
  int sweep = argc > 1 && strcmp(argv[1], "--sim") == 0;
  if (argc > 1 && !sweep) {
    fprintf(stderr, "usage: %s [--sim]\n", argv[0]);
    return 2;
  }
  test_importance_direct();
  test_importance_extreme();
  test_log_prob_direct();
  test_sampler_chi_square();
  test_estimator_vs_exact();
  test_adam_by_hand();
  test_baseline_ema();
  test_derive_and_counts();
  test_flops_penalty();
  test_entropy();
  test_step_composition();
  test_step_many();
  test_init_errors();
  test_json_round_trip();
  test_json_errors();
  test_categorical();
  test_replay();
  test_v1_state();
  test_planted_simulation();
  if (sweep) run_sweep();
  return check_report("test_archdist");
}
