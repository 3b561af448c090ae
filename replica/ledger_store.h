/* The replica's ledger file (DATA_DIR/ledger): one record per committed batch, each an encoded
 * block of protocols/ledger.h, hash-chained (prev of block 1 = cluster id), with an in-memory
 * index height -> file offset so blocks can be served to clients (LEDGER_GET) and lagging
 * replicas (FETCH). Opening re-checks the chain and hands every block to a callback, which the
 * runtime uses to rebuild the application state. */
#ifndef RT_LEDGER_STORE_H
#define RT_LEDGER_STORE_H

#include "protocols/ledger.h"
#include "replica/recfile.h"

typedef struct rt_ledger {
  rt_recfile f;
  uint8_t cluster_id[BFT_CLUSTER_ID_LEN];
  uint64_t base;                      /* blocks 1..base were pruned (or never held: state
                                       * transfer); the file holds base+1..head */
  uint8_t base_hash[BFT_DIGEST_LEN];  /* hash of block `base` (the cluster id when 0) */
  uint64_t trust_upto;                /* open: skip the batch digest check up to here (a
                                       * snapshot covers them; the record CRC still applies) */
  uint64_t head;                      /* height of the last block; 0 when empty */
  uint8_t head_hash[BFT_DIGEST_LEN];  /* hash of block `head`, or the cluster id */
  uint64_t *offs;                     /* offs[h-1]: file offset of block h */
  uint64_t offs_cap;
  uint8_t *enc;                       /* BFT_MAX_BLOCK_BYTES scratch for encoding */
} rt_ledger;

/* Called with each block during open, in height order; non-zero stops the open. */
typedef int (*rt_block_fn)(void *arg, const bft_block *b);

int rt_ledger_open(rt_ledger *l, const char *dir, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                   rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen);
/* The same, kept in a memory file (the simulator's disk). */
int rt_ledger_open_mem(rt_ledger *l, rt_memfile *mem, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                       rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen);
/* Append block b (b->height must be head+1; prev_hash is filled in here). */
int rt_ledger_append(rt_ledger *l, bft_block *b);
/* A pruned ledger starts with a base record, u8 RT_LEDGER_BASE_TAG | u64 base | hash[32],
 * which a block encoding (version 1) can never be. */
#define RT_LEDGER_BASE_TAG 0xBA
/* The same as rt_ledger_open with blocks up to trust_upto exempt from the batch digest check. */
int rt_ledger_open_trusting(rt_ledger *l, const char *dir, rt_memfile *mem, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                            uint64_t trust_upto, rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen);
/* Drop blocks 1..base atomically (base record, then the blocks base+1..head kept). When
 * base >= head the ledger becomes empty at `base` with head hash `hash` (a snapshot installed by
 * state transfer); otherwise `hash` must be the hash of our block `base`. Call when synced. */
int rt_ledger_rebase(rt_ledger *l, uint64_t base, const uint8_t hash[BFT_DIGEST_LEN]);
/* Copy the encoding of block `height` (base < height <= head) into buf. */
int rt_ledger_read(rt_ledger *l, uint64_t height, uint8_t *buf, uint32_t cap, uint32_t *len);
int rt_ledger_sync(rt_ledger *l);
int rt_ledger_dirty(const rt_ledger *l);
void rt_ledger_close(rt_ledger *l);

#endif
