/* The simulator's only source of randomness: xoshiro256** seeded through splitmix64, so a run
 * is a pure function of its seed. Each concern (network, faults, timers, clients) draws from
 * its own stream, so adding a draw in one place does not reshuffle the others. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

typedef struct sim_rng {
  uint64_t s[4];
} sim_rng;

/* Seed stream `stream` of run `seed` (distinct streams are independent for practical use). */
void sim_rng_seed(sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(sim_rng *r);
/* Uniform in [0, n); n > 0. Unbiased (rejection), so rates measured in tests are exact. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);
/* Uniform in [lo, hi] inclusive; lo <= hi. */
uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi);
/* Uniform double in [0, 1) with 53 random bits. */
double sim_rng_unit(sim_rng *r);
/* 1 with probability p (p <= 0 never, p >= 1 always). */
int sim_rng_chance(sim_rng *r, double p);

#endif
