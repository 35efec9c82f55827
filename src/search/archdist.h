/* Architecture distributions of the FBNetV5 search (docs/method.md section 4).
 *
 * Task t (t < T <= 8) owns an independent Bernoulli distribution over the B
 * searchable bits (B <= 4096): p_t(a_b = 1) = s(theta[t*B + b]), s = sigmoid.
 * One architecture a per step is drawn from the mixture proposal
 *   q(a) = (1/T) sum_u p_u(a)                      (draw u uniformly, a ~ p_u)
 * and every task learns from it by REINFORCE with importance weights
 *   rho_t = p_t(a) / q(a) = T p_t(a) / sum_u p_u(a)   (in [0, T], sum_t = T)
 *   g[t*B + b] = rho_t (reward_t - baseline_t) (a_b - s(theta_tb))
 * followed by an Adam *descent* step on theta (the reward is a loss) and an
 * EMA baseline update  baseline_t <- decay baseline_t + (1 - decay) reward_t.
 * The first reward of a task sets its baseline, so that step carries no
 * signal. All arithmetic is in double; log-probabilities use log-sigmoid
 * forms and logsumexp, so extreme logits (|theta| ~ 40, B = 55) stay finite.
 *
 * Typical search loop:
 *   fb_archdist_init(&d, T, B, 0.6, &st);
 *   for (step ...) {
 *     fb_archdist_sample(&d, &rng, a);                 // one mask for all tasks
 *     ... forward with mask a, loss[t] per task, pen[t] = fb_flops_penalty(...)
 *     fb_archdist_step(&d, a, loss, pen, step >= warmup_steps, rho);
 *     ... backward of sum_t gamma_t rho_t loss_t (rho held constant)
 *   }
 *   fb_archdist_derive(&d, t, 0.5, arch_t);
 */
#ifndef FB_SEARCH_ARCHDIST_H
#define FB_SEARCH_ARCHDIST_H

#include <stdint.h>

#include "core/rng.h"
#include "fbnet.h"

#define FB_ARCHDIST_MAX_TASKS 8
#define FB_ARCHDIST_MAX_BITS 4096

struct cJSON;

typedef struct fb_archdist {
  int T, B;
  double *theta;                 /* T*B logits; p_t(a_b = 1) = sigmoid(theta[t*B+b]) */
  double *m, *v;                 /* Adam moments, T*B */
  long adam_steps;               /* Adam steps taken (bias correction) */
  double lr, beta1, beta2, eps;  /* Adam; no weight decay */
  double *baseline;              /* T: EMA of the reward */
  int *baseline_set;             /* T: 0 until the first reward (then baseline = reward) */
  double baseline_decay;         /* b <- decay b + (1 - decay) r */
  double rho_clip;               /* > 0: clip importance weights at this value; 0 = off */
} fb_archdist;

/* Defaults set by fb_archdist_init (see the simulation in tests/test_archdist.c --sim). */
#define FB_ARCHDIST_DEFAULT_LR 1e-2
#define FB_ARCHDIST_DEFAULT_BETA1 0.9
#define FB_ARCHDIST_DEFAULT_BETA2 0.999
#define FB_ARCHDIST_DEFAULT_EPS 1e-8
#define FB_ARCHDIST_DEFAULT_BASELINE_DECAY 0.9

/* theta = logit(init_prob) everywhere, zero moments, no baselines, the
 * defaults above, rho_clip 0. Fails (nothing allocated) on T outside 1..8,
 * B outside 1..4096 or init_prob outside (0, 1). */
int fb_archdist_init(fb_archdist *d, int T, int B, double init_prob, fb_status *st);
/* Frees the arrays and zeroes *d; safe on a zeroed or freed struct. */
void fb_archdist_free(fb_archdist *d);

double fb_archdist_prob(const fb_archdist *d, int t, int b);

/* Mixture proposal: draws u uniformly in [0, T), then a ~ p_u (a[b] in {0,1},
 * B entries). Returns u. */
int fb_archdist_sample(const fb_archdist *d, fb_rng *rng, uint8_t *a);

/* logp[t] = log p_t(a), t < T. */
void fb_archdist_log_prob(const fb_archdist *d, const uint8_t *a, double *logp);

/* rho[t] = T p_t(a) / sum_u p_u(a) via logsumexp; min(rho, rho_clip) when
 * rho_clip > 0. Unclipped, rho is in [0, T] and sums to T. */
void fb_archdist_importance(const fb_archdist *d, const uint8_t *a, double *rho);

/* REINFORCE estimate (not applied), T*B entries:
 *   g[t*B+b] = rho[t] * (reward[t] - c_t) * (a[b] - sigmoid(theta[t*B+b])),
 * c_t = baseline[t] when baseline_set[t], else reward[t] (zero signal). */
void fb_archdist_grad(const fb_archdist *d, const uint8_t *a, const double *rho,
                      const double *reward, double *g);

/* One bias-corrected Adam descent step on theta with gradient g (T*B), the
 * PyTorch form: theta -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps). */
void fb_archdist_adam(fb_archdist *d, const double *g);

/* Per task: baseline = reward on the first call, then the EMA. */
void fb_archdist_update_baseline(fb_archdist *d, const double *reward);

/* One REINFORCE step for all tasks: rho from a, reward_t = loss[t] + penalty[t]
 * (penalty may be NULL), then (when update_theta) grad + Adam, then the
 * baseline update. update_theta = 0 (warm-up) only updates the baselines.
 * Writes rho (T; may be NULL) for logging. A task whose reward is not finite
 * contributes no gradient and leaves its baseline alone; the return value is
 * the number of such tasks (0 normally), so the caller can log or stop. */
int fb_archdist_step(fb_archdist *d, const uint8_t *a, const double *loss, const double *penalty,
                     int update_theta, double *rho);

/* Final architecture of task t: a[b] = sigmoid(theta_tb) > thresh (pass 0.5). */
void fb_archdist_derive(const fb_archdist *d, int t, double thresh, uint8_t *a);

/* lambda * max(0, flops / target - 1); 0 when target <= 0. */
double fb_flops_penalty(double flops, double target, double lambda);

/* Entropy of task t's distribution in nats (sum of per-bit entropies), and
 * the number of its bits with p > 0.5. */
double fb_archdist_entropy(const fb_archdist *d, int t);
int fb_archdist_num_on(const fb_archdist *d, int t);

/* The whole state as one JSON object (malloc'd; free()):
 *   {"version":1,"T":..,"B":..,"lr":..,"beta1":..,"beta2":..,"eps":..,
 *    "baseline_decay":..,"rho_clip":..,"adam_steps":..,
 *    "theta":[T*B],"m":[T*B],"v":[T*B],"baseline":[T],"baseline_set":[T]}
 * Numbers are printed with %.17g, so a round trip is bit-exact; a non-finite
 * value (which a healthy state never holds) is written as null and is then
 * rejected by the reader. To embed it in a larger document use
 * cJSON_AddRawToObject, and read it back with fb_archdist_from_cjson. */
char *fb_archdist_to_json(const fb_archdist *d);
/* Inverse of fb_archdist_to_json. *d is overwritten (free a previous state
 * first); on failure nothing is allocated, *d is zeroed and st names the
 * field, e.g. "archdist.theta: expected 165 numbers, got 164". */
int fb_archdist_from_json(fb_archdist *d, const char *json, fb_status *st);
int fb_archdist_from_cjson(fb_archdist *d, const struct cJSON *obj, fb_status *st);

#endif
