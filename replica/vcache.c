/* Set-associative cache of verified request digests. */
#include "replica/vcache.h"

#include <stdlib.h>
#include <string.h>

#include "replica/rt_limits.h"

int rt_vcache_init(rt_vcache *v, uint32_t sets) {
  memset(v, 0, sizeof *v);
  if (!sets) sets = RT_VCACHE_SETS;
  if (sets & (sets - 1)) return BFT_E_INVAL;
  v->set_mask = sets - 1;
  v->d = malloc((size_t)sets * RT_VCACHE_WAYS * sizeof *v->d);
  v->valid = calloc((size_t)sets * RT_VCACHE_WAYS, 1);
  v->next_way = calloc(sets, 1);
  if (!v->d || !v->valid || !v->next_way) return rt_vcache_free(v), BFT_E_NOMEM;
  return 0;
}

void rt_vcache_free(rt_vcache *v) {
  free(v->d);
  free(v->valid);
  free(v->next_way);
  memset(v, 0, sizeof *v);
}

static uint32_t set_of(const rt_vcache *v, const uint8_t d[BFT_DIGEST_LEN]) {
  return ((uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16) & v->set_mask;
}

int rt_vcache_has(rt_vcache *v, const uint8_t d[BFT_DIGEST_LEN]) {
  uint32_t base = set_of(v, d) * RT_VCACHE_WAYS;
  for (uint32_t w = 0; w < RT_VCACHE_WAYS; w++)
    if (v->valid[base + w] && memcmp(v->d[base + w], d, BFT_DIGEST_LEN) == 0) return v->hits++, 1;
  v->misses++;
  return 0;
}

void rt_vcache_add(rt_vcache *v, const uint8_t d[BFT_DIGEST_LEN]) {
  uint32_t set = set_of(v, d), base = set * RT_VCACHE_WAYS;
  for (uint32_t w = 0; w < RT_VCACHE_WAYS; w++)
    if (v->valid[base + w] && memcmp(v->d[base + w], d, BFT_DIGEST_LEN) == 0) return;
  uint32_t w = v->next_way[set];
  v->next_way[set] = (uint8_t)((w + 1) % RT_VCACHE_WAYS);
  memcpy(v->d[base + w], d, BFT_DIGEST_LEN);
  v->valid[base + w] = 1;
}
