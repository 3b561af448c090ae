/* Pending request digests with an open-addressing index (linear probing, deletion by
 * backward shift, so no tombstones accumulate). */
#include "protocols/pending.h"

#include <string.h>

#include "protocols/request.h"

_Static_assert((BFT_PENDING_SLOTS & (BFT_PENDING_SLOTS - 1)) == 0, "slots: a power of two");
_Static_assert(BFT_PENDING_SLOTS >= 2 * BFT_PENDING_MAX, "load factor at most one half");
_Static_assert(BFT_PENDING_MAX < 65535, "entry indexes fit the slots");

#define MASK (BFT_PENDING_SLOTS - 1u)

/* Digests are BLAKE2b outputs: any four bytes of one are as good as a hash of it. A client
 * grinding requests to collide costs probes, never correctness. */
static uint32_t home(const uint8_t d[BFT_DIGEST_LEN]) {
  return ((uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24) & MASK;
}

/* The slot holding d, or the empty slot where probing for it stopped (*found = 0). */
static uint32_t probe(const bft_pending *p, const uint8_t d[BFT_DIGEST_LEN], int *found) {
  uint32_t s = home(d);
  for (;;) {
    uint16_t e = p->slot[s];
    if (e == 0) return *found = 0, s;
    if (memcmp(p->d[e - 1], d, BFT_DIGEST_LEN) == 0) return *found = 1, s;
    s = (s + 1) & MASK;
  }
}

int bft_pending_find(const bft_pending *p, const uint8_t d[BFT_DIGEST_LEN]) {
  int found;
  uint32_t s = probe(p, d, &found);
  return found ? (int)p->slot[s] - 1 : -1;
}

int bft_pending_add(bft_pending *p, const uint8_t d[BFT_DIGEST_LEN], uint64_t tag) {
  int found;
  uint32_t s = probe(p, d, &found);
  if (found) return 0;
  if (p->n >= BFT_PENDING_MAX) return -1;
  memcpy(p->d[p->n], d, BFT_DIGEST_LEN);
  p->tag[p->n] = tag;
  p->slot[s] = (uint16_t)(++p->n);
  return 1;
}

/* Empties slot s and shifts back the entries of its probe run that would no longer be found. */
static void clear_slot(bft_pending *p, uint32_t s) {
  uint32_t hole = s, j = s;
  p->slot[hole] = 0;
  for (;;) {
    j = (j + 1) & MASK;
    uint16_t e = p->slot[j];
    if (e == 0) return;
    uint32_t h = home(p->d[e - 1]);
    /* The entry at j may move to the hole when its home is not cyclically in (hole, j]. */
    if (((j - h) & MASK) >= ((j - hole) & MASK)) {
      p->slot[hole] = e;
      p->slot[j] = 0;
      hole = j;
    }
  }
}

void bft_pending_remove_at(bft_pending *p, uint32_t i) {
  if (i >= p->n) return;
  int found;
  clear_slot(p, probe(p, p->d[i], &found));
  uint32_t last = --p->n;
  if (i == last) return;
  uint32_t s = probe(p, p->d[last], &found); /* the last entry moves into entry i */
  memcpy(p->d[i], p->d[last], BFT_DIGEST_LEN);
  p->tag[i] = p->tag[last];
  p->slot[s] = (uint16_t)(i + 1);
}

void bft_pending_forget_batch(bft_pending *p, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  if (p->n == 0 || bft_batch_open(&br, batch, len) != 0) return;
  const uint8_t *rq = NULL;
  uint32_t rl = 0;
  while (p->n > 0 && bft_batch_next(&br, &rq, &rl) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    int i = bft_pending_find(p, d);
    if (i >= 0) bft_pending_remove_at(p, (uint32_t)i);
  }
}
