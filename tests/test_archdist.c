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

static void random_thetas(fb_archdist *d, fb_rng *rng, double scale) {
  for (int i = 0; i < d->T * d->B; i++) d->theta[i] = scale * fb_rng_normal(rng);
}

/* Bit b of the integer code of an architecture (B <= 30 here). */
static void decode(int code, int B, uint8_t *a) {
  for (int b = 0; b < B; b++) a[b] = (uint8_t)((code >> b) & 1);
}

/* p_t(a) as a plain product of probabilities. */
static double direct_prob(const fb_archdist *d, int t, const uint8_t *a) {
  double p = 1;
  for (int b = 0; b < d->B; b++) {
    double s = sigmoid_ref(d->theta[t * d->B + b]);
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
  for (int i = 0; i < 3 * 55; i++) d.theta[i] = fb_rng_uniform(&rng) < 0.5 ? 40.0 : -40.0;
  int ok = 1;
  double worst_sum = 0;
  for (int trial = 0; trial < 200; trial++) {
    uint8_t a[55];
    double rho[3], logp[3], s = 0;
    if (trial < 3) { /* each task's own mode: rho of that task ~ T, others ~ 0 */
      for (int b = 0; b < 55; b++) a[b] = d.theta[trial * 55 + b] > 0;
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
  for (int b = 0; b < 6; b++) d.theta[b] = -800.0; /* p(a_b = 1) = e^-800 */
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
  memcpy(d.theta, th, sizeof th);
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
      double s = sigmoid_ref(d->theta[t * GB + b]), acc = 0;
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
    double keep = d->theta[i], h = 1e-5;
    d->theta[i] = keep + h;
    double up = expected_loss(d, t, L);
    d->theta[i] = keep - h;
    double down = expected_loss(d, t, L);
    d->theta[i] = keep;
    double fd = (up - down) / (2 * h);
    if (fabs(fd - g[i]) > worst) worst = fabs(fd - g[i]);
  }
  CHECK(worst < 1e-8, "exact score-function gradient vs central differences: worst %.3g", worst);
}

typedef struct moments {
  double sum[GT * GB], sq[GT * GB];
} moments;

static void accumulate(moments *mo, const double *g) {
  for (int i = 0; i < GT * GB; i++) {
    mo->sum[i] += g[i];
    mo->sq[i] += g[i] * g[i];
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
    double rho[GT], reward[GT], g[GT * GB];
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
  double rho[GT] = {1, 1, 1}, reward[GT] = {3, 4, 5}, g[GT * GB];
  for (int t = 0; t < GT; t++) d.baseline_set[t] = 0, d.baseline[t] = 1.0;
  fb_archdist_grad(&d, a, rho, reward, g);
  int zero = 1;
  for (int i = 0; i < GT * GB; i++) zero &= g[i] == 0;
  CHECK(zero, "grad with no baseline yet is exactly zero");
  fb_archdist_free(&d);
}

/* ---- 4. Adam, baseline, derive, penalty, entropy, step ------------------- */

static void test_adam_by_hand(void) {
  fb_archdist d;
  fb_status st;
  CHECK(fb_archdist_init(&d, 1, 3, 0.5, &st) == 0, "init: %s", st.msg);
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
  memcpy(d.theta + 5, th, sizeof th); /* task 1; task 0 keeps logit(0.6) */
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
  memcpy(d.theta + 7, th, sizeof th);
  double h = 0;
  for (int b = 0; b < 7; b++) {
    double s = sigmoid_ref(th[b]);
    h -= s * log(s) + (1 - s) * log(1 - s);
  }
  CHECK_CLOSE(fb_archdist_entropy(&d, 1), h, 1e-13, "entropy vs direct formula");
  for (int b = 0; b < 7; b++) d.theta[b] = b % 2 ? 800 : -800;
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
  memcpy(d2.theta, d1.theta, 27 * sizeof(double));
  int same = 1, rho_same = 1;
  for (int k = 0; k < 20; k++) {
    uint8_t a[9];
    double loss[3], pen[3], reward[3], rho1[3], rho2[3], g[27];
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
    for (int i = 0; i < 27; i++) same &= d1.theta[i] == d2.theta[i];
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
  for (int i = 0; i < 27; i++) finite &= isfinite(d1.theta[i]) && isfinite(d1.m[i]) && isfinite(d1.v[i]);
  CHECK(finite, "NaN loss does not reach theta or the moments");
  CHECK(d1.baseline[1] == b1, "NaN loss leaves that task's baseline alone");
  fb_archdist_free(&d1);
  fb_archdist_free(&d2);
}

static void test_init_errors(void) {
  fb_archdist d;
  fb_status st;
  struct { int T, B; double p; const char *frag; } bad[] = {
      {0, 5, 0.5, "archdist.T"},   {9, 5, 0.5, "archdist.T"},          {2, 0, 0.5, "archdist.B"},
      {2, 4097, 0.5, "archdist.B"}, {2, 5, 0.0, "archdist.init_prob"}, {2, 5, 1.0, "archdist.init_prob"},
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
  size_t n = (size_t)x->T * (size_t)x->B;
  if (x->T != y->T || x->B != y->B) return 0;
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
      {drop_last_theta, "archdist.theta: expected 165 numbers, got 164", "short theta"},
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
  double g[SIM_T * SIM_B];
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
  double g[SIM_T * SIM_B], all[SIM_T * SIM_B], loss[SIM_T];
  const double ones[SIM_T] = {1, 1, 1};
  for (int t = 0; t < SIM_T; t++) {
    uint8_t a[SIM_B];
    double reward[SIM_T];
    for (int b = 0; b < SIM_B; b++) a[b] = fb_rng_uniform(rng) < fb_archdist_prob(d, t, b);
    loss[t] = planted_loss(a, best[t], base[t], rng);
    for (int u = 0; u < SIM_T; u++) reward[u] = d->baseline_set[u] ? d->baseline[u] : 0;
    reward[t] = loss[t];
    fb_archdist_grad(d, a, ones, reward, g);
    memcpy(all + t * SIM_B, g + t * SIM_B, SIM_B * sizeof(double));
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
  const double lrs[] = {1e-3, 3e-3, 5e-3, 1e-2, 3e-2};
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
  c.lr = 1e-2;
  print_row(c, nseeds);
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
  test_init_errors();
  test_json_round_trip();
  test_json_errors();
  test_planted_simulation();
  if (sweep) run_sweep();
  return check_report("test_archdist");
}
