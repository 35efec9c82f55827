/* Architecture distributions of the FBNetV5 search (docs/method.md section 4).
 *
 * An architecture is one choice per decision: D decisions (D <= 4096),
 * decision j with K_j choices (2 <= K_j <= 255). A searchable bit of the
 * supernet is a decision with two choices (0 = skip, 1 = keep); a tabular
 * benchmark's edge with four operations is a decision with four.
 *
 * Task t (t < T <= 8) owns an independent categorical distribution per
 * decision with one logit per choice:
 *   p_t(a_j = k) = softmax(theta[t][j])[k]
 * (a bit's keep probability is sigmoid(theta_keep - theta_skip)). One
 * architecture a per step is drawn from the mixture proposal
 *   q(a) = (1/T) sum_u p_u(a)                      (draw u uniformly, a ~ p_u)
 * and every task learns from it with importance weights
 *   rho_t = p_t(a) / q(a) = T p_t(a) / sum_u p_u(a)   (in [0, T], sum_t = T)
 * The reward is a loss (lower is better); theta takes Adam *descent* steps.
 *
 * Two estimators of each task's gradient (docs/search-quality.md measures them):
 *   plain  (replay == 0): the sampled architecture only, REINFORCE with an
 *          EMA baseline, g = rho_t (r_t - b_t) / s_t (onehot(a) - p_t), where
 *          s_t is a running deviation of r_t - b_t when adv_norm is set (1 otherwise);
 *   replay (replay == W > 0): the last W architectures with their rewards and
 *          the proposal's log q(a) when each was drawn are reused every step:
 *          self-normalised weights w_i ∝ p_t(a_i) / q_i(a_i) over the buffer,
 *          advantages from the weighted mean and deviation of the rewards or,
 *          with elite > 0, the utility "among the best `elite` weighted
 *          fraction" (cross-entropy-method shaping), g = sum_i w_i A_i (onehot(a_i) - p_t).
 * All arithmetic is in double; log-probabilities use logsumexp, so extreme
 * logits (|theta| ~ 40, 55 decisions) stay finite.
 *
 * Typical search loop:
 *   fb_archdist_init(&d, T, B, 0.6, &st);             // B bits
 *   for (step ...) {
 *     fb_archdist_sample(&d, &rng, a);                 // one architecture for all tasks
 *     ... forward with a, loss[t] per task, pen[t] = fb_flops_penalty(...)
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
#define FB_ARCHDIST_MAX_DECISIONS 4096
#define FB_ARCHDIST_MAX_CHOICES 255
#define FB_ARCHDIST_MAX_REPLAY 65536

struct cJSON;

typedef struct fb_archdist {
  int T, D;                      /* tasks, decisions */
  int *K;                        /* D: choices of each decision */
  int *off;                      /* D + 1: first logit of decision j in a task's row */
  int P;                         /* logits per task, off[D] = sum_j K_j */
  double *theta;                 /* T*P logits, task-major */
  double *m, *v;                 /* Adam moments, T*P */
  long adam_steps;               /* Adam steps taken (bias correction) */
  double lr, beta1, beta2, eps;  /* Adam; no weight decay */
  double *baseline;              /* T: EMA of the reward (plain) */
  int *baseline_set;             /* T: 0 until the first reward (then baseline = reward) */
  double baseline_decay;         /* b <- decay b + (1 - decay) r */
  double rho_clip;               /* > 0: clip importance weights at this value; 0 = off */
  int adv_norm;                  /* plain: divide the advantage by a running deviation */
  double *adv_var;               /* T: EMA (baseline_decay) of the squared advantage; 0 = unset */
  int replay;                    /* 0: plain; W > 0: the replay estimator over W samples */
  double elite;                  /* replay: elite fraction in (0, 1); 0: normalised rewards */
  int buf_n, buf_next;           /* replay buffer: samples held, next slot (a ring) */
  uint8_t *buf_a;                /* replay * D choices */
  double *buf_r;                 /* replay * T rewards */
  double *buf_lq;                /* replay: log q(a_i) under the proposal that drew a_i */
} fb_archdist;

/* Defaults set by the init functions (see docs/search.md and the simulation
 * in tests/test_archdist.c --sim). The logit lr 5e-3 moves a bit's logit
 * difference like a single Bernoulli logit at 1e-2. */
#define FB_ARCHDIST_DEFAULT_LR 5e-3
#define FB_ARCHDIST_DEFAULT_BETA1 0.9
#define FB_ARCHDIST_DEFAULT_BETA2 0.999
#define FB_ARCHDIST_DEFAULT_EPS 1e-8
#define FB_ARCHDIST_DEFAULT_BASELINE_DECAY 0.9

/* B two-choice decisions (bits) with p(keep) = init_prob everywhere (logits
 * -x/2 and +x/2, x = logit(init_prob)), zero moments, no baselines, the
 * defaults above, the plain estimator without advantage normalisation.
 * Fails (nothing allocated) on T outside 1..8, B outside 1..4096 or
 * init_prob outside (0, 1). */
int fb_archdist_init(fb_archdist *d, int T, int B, double init_prob, fb_status *st);
/* D decisions with K[j] choices each: two-choice decisions start at
 * p(1) = init_prob as above, others uniform. */
int fb_archdist_init_choices(fb_archdist *d, int T, int D, const int *K, double init_prob,
                             fb_status *st);
/* Selects the estimator: replay 0 = plain (adv_norm as given), replay W > 0
 * = the replay estimator with elite fraction elite (0: normalised rewards).
 * Allocates the buffer; call before the first step. */
int fb_archdist_set_estimator(fb_archdist *d, int adv_norm, int replay, double elite,
                              fb_status *st);
/* Frees the arrays and zeroes *d; safe on a zeroed or freed struct. */
void fb_archdist_free(fb_archdist *d);

/* p_t(a_j = k). */
double fb_archdist_choice_prob(const fb_archdist *d, int t, int j, int k);
/* p_t(a_b = 1) of decision b (the keep probability of a bit). */
double fb_archdist_prob(const fb_archdist *d, int t, int b);

/* Mixture proposal: draws u uniformly in [0, T), then a ~ p_u (a[j] in
 * 0..K_j-1, D entries; one uniform number per decision). Returns u. */
int fb_archdist_sample(const fb_archdist *d, fb_rng *rng, uint8_t *a);
/* a ~ p_u (the second half of fb_archdist_sample). */
void fb_archdist_sample_task(const fb_archdist *d, int u, fb_rng *rng, uint8_t *a);

/* logp[t] = log p_t(a), t < T. */
void fb_archdist_log_prob(const fb_archdist *d, const uint8_t *a, double *logp);
/* log q(a) of the mixture proposal. */
double fb_archdist_log_proposal(const fb_archdist *d, const uint8_t *a);

/* rho[t] = T p_t(a) / sum_u p_u(a) via logsumexp; min(rho, rho_clip) when
 * rho_clip > 0. Unclipped, rho is in [0, T] and sums to T. */
void fb_archdist_importance(const fb_archdist *d, const uint8_t *a, double *rho);

/* Plain REINFORCE estimate for one sample (not applied), T*P entries:
 *   g[t][off_j + k] = rho[t] * (reward[t] - c_t) * ([a_j == k] - p_t(a_j = k)),
 * c_t = baseline[t] when baseline_set[t], else reward[t] (zero signal). No
 * advantage normalisation (fb_archdist_step applies it). */
void fb_archdist_grad(const fb_archdist *d, const uint8_t *a, const double *rho,
                      const double *reward, double *g);

/* One bias-corrected Adam descent step on theta with gradient g (T*P), the
 * PyTorch form: theta -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps). */
void fb_archdist_adam(fb_archdist *d, const double *g);

/* Per task: baseline = reward on the first call, then the EMA. */
void fb_archdist_update_baseline(fb_archdist *d, const double *reward);

/* One step for all tasks: rho from a, reward_t = loss[t] + penalty[t]
 * (penalty may be NULL), then (when update_theta) the estimator's gradient
 * and one Adam step; the plain estimator also updates its baselines (in the
 * warm-up too), the replay estimator adds the sample to its buffer (only when
 * update_theta). Writes rho (T; may be NULL) for logging. A task whose
 * reward is not finite contributes no gradient and leaves its baseline
 * alone; the return value is the number of such tasks (0 normally). */
int fb_archdist_step(fb_archdist *d, const uint8_t *a, const double *loss, const double *penalty,
                     int update_theta, double *rho);
/* The same for n samples drawn at the same theta (a: n x D; loss, penalty,
 * rho: n x T), one update: the plain estimator averages their estimates, the
 * replay one adds all n to its buffer first; baselines then take the rewards
 * in order. n = 1 is fb_archdist_step. A data-parallel search gathers every
 * rank's samples and makes this same update on every rank. */
int fb_archdist_step_many(fb_archdist *d, int n, const uint8_t *a, const double *loss,
                          const double *penalty, int update_theta, double *rho);

/* Final architecture of task t: two-choice decisions a[j] = p(1) > thresh
 * (pass 0.5), others the most probable choice (ties: the lower index). */
void fb_archdist_derive(const fb_archdist *d, int t, double thresh, uint8_t *a);

/* lambda * max(0, flops / target - 1); 0 when target <= 0. */
double fb_flops_penalty(double flops, double target, double lambda);

/* Entropy of task t's distribution in nats (sum over decisions), and the
 * number of its decisions whose derived choice (thresh 0.5) is not 0. */
double fb_archdist_entropy(const fb_archdist *d, int t);
int fb_archdist_num_on(const fb_archdist *d, int t);

/* The whole state as one JSON object (malloc'd; free()):
 *   {"version":2,"T":..,"D":..,"K":[D],"lr":..,"beta1":..,"beta2":..,"eps":..,
 *    "baseline_decay":..,"rho_clip":..,"adam_steps":..,"adv_norm":..,
 *    "replay":..,"elite":..,"theta":[T*P],"m":[T*P],"v":[T*P],"baseline":[T],
 *    "baseline_set":[T],"adv_var":[T],"buf_n":..,"buf_next":..,
 *    "buf_a":[buf_n*D],"buf_r":[buf_n*T],"buf_lq":[buf_n]}
 * Numbers are printed with %.17g, so a round trip is bit-exact; a non-finite
 * value (which a healthy state never holds) is written as null and is then
 * rejected by the reader. Version 1 (one Bernoulli logit per bit, "B") is
 * read as the equivalent version 2 state (logits -x/2, +x/2; lr halved).
 * To embed it in a larger document use cJSON_AddRawToObject, and read it
 * back with fb_archdist_from_cjson. */
char *fb_archdist_to_json(const fb_archdist *d);
/* Inverse of fb_archdist_to_json. *d is overwritten (free a previous state
 * first); on failure nothing is allocated, *d is zeroed and st names the
 * field, e.g. "archdist.theta: expected 330 numbers, got 329". */
int fb_archdist_from_json(fb_archdist *d, const char *json, fb_status *st);
int fb_archdist_from_cjson(fb_archdist *d, const struct cJSON *obj, fb_status *st);

#endif
