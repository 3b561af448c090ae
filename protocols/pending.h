/* The set of client request digests an engine watches for its request/view timer: at most
 * BFT_PENDING_MAX entries kept densely in arrival order up to swap-removals (entry i is d[i]
 * with tag[i], an engine's own datum: arrival number, height), plus an open-addressing index
 * so that finding a digest costs O(1) instead of a scan of every pending entry. The index is
 * positional (no pointers), so the set lives inside an engine's state and is copied with it;
 * an all-zero set is empty. Which entries exist and in which order they sit is exactly what
 * the former linear arrays gave: the engines' behaviour (and the simulator's trace digests)
 * do not change. */
#ifndef BFT_PENDING_H
#define BFT_PENDING_H

#include <stdint.h>

#include "crypto/bft_crypto.h"

#define BFT_PENDING_MAX 2048
#define BFT_PENDING_SLOTS 4096 /* a power of two, at least twice BFT_PENDING_MAX */

typedef struct bft_pending {
  uint32_t n;
  uint8_t d[BFT_PENDING_MAX][BFT_DIGEST_LEN];
  uint64_t tag[BFT_PENDING_MAX];
  uint16_t slot[BFT_PENDING_SLOTS]; /* 0 = empty, else 1 + the index of an entry */
} bft_pending;

/* The index of digest d, or -1. */
int bft_pending_find(const bft_pending *p, const uint8_t d[BFT_DIGEST_LEN]);
/* Adds d with tag at the end: 1 added, 0 already there (tag unchanged), -1 the set is full. */
int bft_pending_add(bft_pending *p, const uint8_t d[BFT_DIGEST_LEN], uint64_t tag);
/* Removes entry i; the last entry takes its place. */
void bft_pending_remove_at(bft_pending *p, uint32_t i);
/* Removes every request of a batch (each digest found is removed as by remove_at, in batch
 * order); a malformed batch removes what precedes the fault. */
void bft_pending_forget_batch(bft_pending *p, const uint8_t *batch, uint32_t len);

#endif
