/* The key-value store application: put, get, del and cas (protocols/kv.h), with bounded key,
 * value and store sizes, and an incremental state digest: the sum modulo 2^256 of a BLAKE2b hash
 * of each (key, value) pair, updated per operation, so a batch never rehashes the store. */
#ifndef RT_KV_APP_H
#define RT_KV_APP_H

#include <stdint.h>

#include "replica/app.h"

typedef struct rt_kv_entry {
  uint8_t *kv;          /* key || value, one allocation; NULL marks an empty slot */
  uint32_t klen, vlen;
  uint64_t hash;        /* keyed SipHash of the key: table position */
  uint8_t h[BFT_DIGEST_LEN]; /* contribution to the state digest */
} rt_kv_entry;

typedef struct rt_kv {
  rt_kv_entry *slots;
  uint64_t cap;         /* power of two */
  uint64_t count;
  uint64_t bytes;       /* accounted bytes of keys, values and per-entry overhead */
  uint64_t max_keys, max_bytes;
  uint8_t sum[BFT_DIGEST_LEN]; /* sum of entry hashes, little-endian 256-bit */
  uint8_t sipkey[16];   /* random per process: layout only, never results */
  uint8_t *restoring;   /* chunks of a restore in progress */
  size_t restoring_len, restoring_cap;
  int restore_active;
} rt_kv;

extern const bft_app_ops rt_kv_app_ops;

/* 0 or BFT_E_NOMEM. max_keys/max_bytes 0 mean the RT_KV_MAX_* defaults. */
int rt_kv_init(rt_kv *kv, uint64_t max_keys, uint64_t max_bytes);
void rt_kv_free(rt_kv *kv);
/* Bind the store as an rt_app. */
void rt_kv_app(bft_app *app, rt_kv *kv);
/* Borrowed value of key, or NULL (tests and debugging). */
const uint8_t *rt_kv_lookup(const rt_kv *kv, const uint8_t *key, uint32_t klen, uint32_t *vlen);

#endif
