/* The request pool: valid client requests waiting to be committed, in arrival order, bounded
 * in total (requests and bytes) and per client. It implements the pull contract of
 * protocols/engine.h: a pull hands out requests not yet handed out in the current pull epoch,
 * a new epoch (view change) makes every pending request eligible again, and requests leave the
 * pool only when a committed batch containing them (or a later seq of the same client) runs. */
#ifndef RT_POOL_H
#define RT_POOL_H

#include <stdint.h>

#include "protocols/request.h"

#define RT_POOL_NIL 0xFFFFFFFFu

typedef struct rt_pool_entry {
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t *bytes; /* owned copy of the encoded request */
  uint32_t len;
  uint32_t client;
  uint64_t seq;
  uint32_t prev, next; /* arrival order; next doubles as the free list link */
  uint32_t cnext;      /* next entry of the same client */
  uint64_t pulled_epoch; /* epoch in which it was last handed out (0: never) */
  uint64_t pulled_head;  /* ledger head when it was handed out */
  uint8_t used;
} rt_pool_entry;

typedef struct rt_pool {
  rt_pool_entry *e;
  uint32_t cap, free_head;
  uint32_t head, tail, cursor; /* cursor: first entry not handed out in this epoch */
  uint32_t *index, index_mask; /* digest -> entry, open addressing */
  uint32_t *chead, *ccount;    /* per client */
  uint32_t nclients;
  uint32_t count, max_per_client;
  uint64_t bytes, max_bytes;
  uint64_t epoch;
  uint32_t inflight;           /* handed out in this epoch and still pending */
} rt_pool;

/* 0 or BFT_E_NOMEM. Zero limits mean the RT_POOL_* defaults. */
int rt_pool_init(rt_pool *p, uint32_t nclients, uint32_t max_requests, uint64_t max_bytes,
                 uint32_t max_per_client);
void rt_pool_free(rt_pool *p);
/* Add a verified request (bytes copied). BFT_E_DUPLICATE when the digest or (client, seq) is
 * already pending, BFT_E_FULL when a bound refuses it, BFT_E_NOMEM. */
int rt_pool_add(rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN], uint32_t client, uint64_t seq,
                const uint8_t *bytes, uint32_t len);
int rt_pool_contains(const rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN]);
/* Drop the client's pending requests with seq <= upto (they executed or can no longer). */
void rt_pool_remove_upto(rt_pool *p, uint32_t client, uint64_t upto);
/* Mark the pending request with this digest as handed out in this epoch (someone else
 * proposed it); no-op when absent. */
void rt_pool_mark_pulled(rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN], uint64_t head);
/* Offer again the requests handed out in this epoch at a ledger head at least `after` blocks
 * below `head` (their block was abandoned); returns how many. */
uint32_t rt_pool_expire(rt_pool *p, uint64_t head, uint32_t after);
/* Start a new pull epoch: everything pending becomes eligible again. */
void rt_pool_new_epoch(rt_pool *p);
/* 1 when some pending request was not handed out in this epoch. */
int rt_pool_has_unpulled(const rt_pool *p);
/* Add up to max not-yet-handed-out requests to the batch (stops early when the batch is full)
 * and mark them handed out; returns how many were added. */
uint32_t rt_pool_pull(rt_pool *p, uint32_t max, bft_batch_writer *bw, uint64_t head);

#endif
