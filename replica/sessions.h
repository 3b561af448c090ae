/* Client sessions: for every client of the cluster file, the highest request seq executed and
 * the cached result of that request (the reply cache), so a retransmission of the last request
 * gets the same answer and older ones are ignored (at-most-once execution). Also the lookup
 * from a client's public key to its index. last_seq is replicated state (it decides what
 * executes) and enters the state digest; the cached results are local and bounded. */
#ifndef RT_SESSIONS_H
#define RT_SESSIONS_H

#include <stdint.h>

#include "protocols/cluster/cluster.h"
#include "protocols/request.h"

typedef struct rt_session {
  uint64_t last_seq;         /* 0: nothing executed yet */
  uint64_t height;           /* block that executed last_seq */
  uint8_t status;
  uint8_t *result;           /* NULL when none is cached (not yet set, or evicted) */
  uint32_t result_len;
  int cached;                /* 1 when status/result describe last_seq */
  uint8_t reply_mac;         /* 1: the request of last_seq asked for a MAC reply (v2, v3); local */
  uint8_t h[BFT_DIGEST_LEN]; /* contribution to the sessions digest */
} rt_session;

typedef struct rt_sessions {
  uint32_t n;                /* clients in the cluster file */
  uint8_t (*pks)[BFT_PK_LEN];
  rt_session *s;
  int32_t *map;              /* open addressing: client index or -1 */
  uint32_t map_cap;
  uint8_t sum[BFT_DIGEST_LEN];
  uint64_t cached_bytes, max_cached_bytes;
  uint32_t evict_hand;
  uint64_t evictions;
} rt_sessions;

/* 0 or BFT_E_NOMEM. max_cached_bytes 0 means RT_REPLY_CACHE_MAX_BYTES. */
int rt_sessions_init(rt_sessions *ss, const bft_cluster *c, uint64_t max_cached_bytes);
void rt_sessions_free(rt_sessions *ss);
/* Index of the client with this key, or -1 when the cluster file does not permit it. */
int rt_sessions_find(const rt_sessions *ss, const uint8_t pk[BFT_PK_LEN]);
/* Mark (idx, seq) executed in block height (seq must exceed last_seq): drops the old cached
 * result until rt_sessions_set_result supplies the new one. */
void rt_sessions_advance(rt_sessions *ss, uint32_t idx, uint64_t seq, uint64_t height);
/* Cache the result of (idx, seq) if seq is still the client's last; evicts others' results
 * over the byte budget. 0 or BFT_E_NOMEM (then nothing is cached). */
int rt_sessions_set_result(rt_sessions *ss, uint32_t idx, uint64_t seq, uint8_t status,
                           const uint8_t *res, uint32_t len);
/* Signed reply for the client's last executed request: its length, BFT_E_STATE when no result
 * is cached, or an encoding error. */
/* The reply to client idx's last executed request (BFT_E_STATE when not cached); the result
 * is borrowed from the cache. */
int rt_sessions_reply(const rt_sessions *ss, uint32_t idx, uint32_t replica, bft_reply *rp);
int rt_sessions_encode_reply(const rt_sessions *ss, uint32_t idx, const bft_keypair *kp,
                             const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint32_t replica,
                             uint8_t *buf, uint32_t cap);
/* Digest of every client's last_seq (order independent, maintained incrementally). */
void rt_sessions_digest(const rt_sessions *ss, uint8_t out[BFT_DIGEST_LEN]);

#endif
