/* xoshiro256** (Blackman & Vigna) with splitmix64 seeding: fast, small state, and the same
 * sequence on every platform, which is what makes a failing seed a portable regression test. */
#include "tests/sim/sim_rng.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void sim_rng_seed(sim_rng *r, uint64_t seed, uint64_t stream) {
  /* Mix the stream in through a second splitmix pass so that (seed, stream) pairs that differ
   * only slightly still start far apart. */
  uint64_t x = seed;
  uint64_t k = splitmix64(&x) ^ (stream * 0xD1B54A32D192ED03ull);
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&k);
  /* xoshiro must not start from the all-zero state (it would stay there). */
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

uint64_t sim_rng_next(sim_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t sim_rng_below(sim_rng *r, uint64_t n) {
  /* Reject the top partial bucket so every value is equally likely. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t v;
  do v = sim_rng_next(r);
  while (v >= limit);
  return v % n;
}

uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  uint64_t span = hi - lo;
  if (span == UINT64_MAX) return sim_rng_next(r);
  return lo + sim_rng_below(r, span + 1);
}

double sim_rng_unit(sim_rng *r) { return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53; }

int sim_rng_chance(sim_rng *r, double p) {
  if (p <= 0.0) return 0;
  if (p >= 1.0) return 1;
  return sim_rng_unit(r) < p;
}
