/* Deterministic random numbers (splitmix64 seeding + xoshiro256**). Every
 * random decision in fbnet draws from an fb_rng owned by its caller. */
#ifndef FB_CORE_RNG_H
#define FB_CORE_RNG_H

#include <stdint.h>

typedef struct fb_rng {
  uint64_t s[4];
} fb_rng;

void fb_rng_seed(fb_rng *r, uint64_t seed);
uint64_t fb_rng_u64(fb_rng *r);
/* Uniform in [0, 1). */
double fb_rng_uniform(fb_rng *r);
/* Uniform integer in [0, n). */
uint32_t fb_rng_below(fb_rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
double fb_rng_normal(fb_rng *r);

#endif
