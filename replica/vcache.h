/* Digests of client requests whose signature this replica already verified, so each request
 * is verified once per replica (when it arrives from a client, or first seen in a proposed
 * batch) and never again. A bounded set-associative cache: forgetting costs one more verify. */
#ifndef RT_VCACHE_H
#define RT_VCACHE_H

#include <stdint.h>

#include "crypto/bft_crypto.h"

typedef struct rt_vcache {
  uint8_t (*d)[BFT_DIGEST_LEN]; /* sets * RT_VCACHE_WAYS digests */
  uint8_t *valid;
  uint8_t *next_way;            /* per set: the way to replace next (FIFO) */
  uint32_t set_mask;            /* sets - 1 */
  uint64_t hits, misses;
} rt_vcache;

/* sets: a power of two, or 0 for RT_VCACHE_SETS. */
int rt_vcache_init(rt_vcache *v, uint32_t sets);
void rt_vcache_free(rt_vcache *v);
int rt_vcache_has(rt_vcache *v, const uint8_t d[BFT_DIGEST_LEN]);
void rt_vcache_add(rt_vcache *v, const uint8_t d[BFT_DIGEST_LEN]);

#endif
