/* Divergence detection: after executing a block every replica signs the state digest it
 * computed (STATE_DIGEST, peer frame 0x24, several consecutive heights per message) and keeps
 * the digests its peers signed for the last RT_ATTEST_WINDOW heights. A replica stops with
 * "application diverged at height H" when more than n - (2f+1) other replicas signed another
 * digest for H than its own: its state can then never be backed by a quorum, because at least
 * one correct replica computed something else — the application is not deterministic (or this
 * replica's copy is broken). f faulty replicas alone cannot trigger it. I/O free. */
#ifndef RT_ATTEST_H
#define RT_ATTEST_H

#include <stdint.h>

#include "crypto/bft_crypto.h"

#define RT_TAG_STATE_DIGEST "replica/state-digest"
#define RT_ATTEST_WINDOW 256u     /* heights remembered per replica */
#define RT_ATTEST_MAX_PER_MSG 64u /* digests in one STATE_DIGEST */
#define RT_ATTEST_FLUSH_MS 20u    /* pending digests are signed and sent at most this late (busy loop) */
/* STATE_DIGEST := u64 first_height | u32 count | count x digest[32] | sig[64] over the rest */
#define RT_ATTEST_MSG_MAX (8 + 4 + RT_ATTEST_MAX_PER_MSG * BFT_DIGEST_LEN + BFT_SIG_LEN)

typedef struct rt_attest {
  uint32_t n, self, tolerate; /* tolerate = n - (2f+1): differing peers that are still fine */
  uint64_t *own_h;            /* [W] height stored in each slot (0: none) */
  uint8_t (*own_d)[BFT_DIGEST_LEN];
  uint64_t *peer_h;           /* [n * W] */
  uint8_t (*peer_d)[BFT_DIGEST_LEN];
  uint64_t head;              /* our highest attested height */
  uint64_t pend_first;        /* digests not sent yet: heights pend_first.. */
  uint32_t pend_count;
  uint8_t pend[RT_ATTEST_MAX_PER_MSG][BFT_DIGEST_LEN];
  uint64_t pend_since_ms;
  uint64_t diverged;          /* first height found diverged (0: none) */
  uint32_t diverged_differ;   /* how many peers signed another digest there */
  uint8_t theirs[BFT_DIGEST_LEN], ours[BFT_DIGEST_LEN];
  uint64_t mismatches;        /* (peer, height) pairs that differed from ours */
  uint64_t sent, received, refused;
} rt_attest;

int rt_attest_init(rt_attest *a, uint32_t n, uint32_t f, uint32_t self);
void rt_attest_free(rt_attest *a);
/* Our digest after block h (heights arrive in order). 1 when this made us diverge. */
int rt_attest_own(rt_attest *a, uint64_t h, const uint8_t d[BFT_DIGEST_LEN], uint64_t now_ms);
/* Digests of replica `from` (signature already checked) for first..first+count-1. 1 when a
 * height diverged. */
int rt_attest_peer(rt_attest *a, uint32_t from, uint64_t first, uint32_t count, const uint8_t *digests);
/* 1 when some heights of ours were not sent and it is time (or force). */
int rt_attest_due(const rt_attest *a, uint64_t now_ms, int force);
/* The unsigned body of the pending digests (room for the signature after it); returns the
 * length without the signature and clears the pending set. */
uint32_t rt_attest_take(rt_attest *a, uint8_t out[RT_ATTEST_MSG_MAX]);
/* 1 when some height in first..first+count-1 is worth remembering (within the window). */
int rt_attest_relevant(const rt_attest *a, uint64_t first, uint32_t count);

#endif
