/* Ed25519 verification on worker threads, so one replica can use more than one core and its
 * loop thread does not spend every verify (~50 µs) alone. rt_vpool_verify is a synchronous
 * parallel-for: the calling thread takes items too and the call returns when every item has its
 * result. A result depends only on its item (cluster id bound in), never on which thread ran it. */
#ifndef RT_VPOOL_H
#define RT_VPOOL_H

#include <stdint.h>

#include "crypto/bft_crypto.h"

/* One signature to check: bft_verify(pk, cluster id, tag, msg, len, sig). The caller owns the
 * item and what it points to until rt_vpool_verify returns. */
typedef struct rt_vitem {
  uint8_t pk[BFT_PK_LEN];
  const char *tag;
  const uint8_t *msg;
  uint32_t len;
  const uint8_t *sig; /* BFT_SIG_LEN bytes */
  int rc;             /* out: 0, or BFT_E_BAD_SIG */
} rt_vitem;

typedef struct rt_vpool rt_vpool;

typedef struct rt_vpool_stats {
  uint64_t calls;      /* rt_vpool_verify calls with at least one item */
  uint64_t items;      /* signatures checked */
  uint64_t by_workers; /* of them, checked on a worker thread (the rest on the caller's) */
  uint64_t wait_us;    /* the caller's time waiting for workers after it ran out of items ... */
  uint64_t wait_max_us;/* ... in all, and the longest single wait */
} rt_vpool_stats;

/* Start `threads` workers (0..RT_VPOOL_MAX_THREADS; 0: everything is verified on the calling
 * thread). 0, BFT_E_INVAL, or BFT_E_NOMEM / BFT_E_IO when memory or a thread is refused (nothing
 * is left running then). */
int rt_vpool_open(rt_vpool **out, uint32_t threads, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN]);
/* Stop and join the workers, free the pool. NULL is a no-op. Not while a call is running. */
void rt_vpool_close(rt_vpool *p);
uint32_t rt_vpool_threads(const rt_vpool *p);
/* Verify items[0..n) (n may be 0), setting each rc. Allocates nothing. One caller at a time:
 * the pool serves one loop thread; a second concurrent caller is a bug of ours (asserted). */
void rt_vpool_verify(rt_vpool *p, rt_vitem *items, uint32_t n);
void rt_vpool_get_stats(rt_vpool *p, rt_vpool_stats *st);
/* The default number of workers: online CPUs - 1 (0 on one CPU), at most RT_VPOOL_MAX_THREADS. */
uint32_t rt_vpool_default_threads(void);

#endif
