/* Divergence detection over signed state digests (attest.h). */
#include "replica/attest.h"

#include <stdlib.h>
#include <string.h>

int rt_attest_init(rt_attest *a, uint32_t n, uint32_t f, uint32_t self) {
  memset(a, 0, sizeof *a);
  a->n = n;
  a->self = self;
  a->tolerate = n - (2 * f + 1);
  a->own_h = calloc(RT_ATTEST_WINDOW, sizeof *a->own_h);
  a->own_d = calloc(RT_ATTEST_WINDOW, sizeof *a->own_d);
  a->peer_h = calloc((size_t)n * RT_ATTEST_WINDOW, sizeof *a->peer_h);
  a->peer_d = calloc((size_t)n * RT_ATTEST_WINDOW, sizeof *a->peer_d);
  if (!a->own_h || !a->own_d || !a->peer_h || !a->peer_d) {
    rt_attest_free(a);
    return BFT_E_NOMEM;
  }
  return 0;
}

void rt_attest_free(rt_attest *a) {
  free(a->own_h);
  free(a->own_d);
  free(a->peer_h);
  free(a->peer_d);
  a->own_h = a->peer_h = NULL;
  a->own_d = a->peer_d = NULL;
}

/* Compare every peer's digest for h with ours; 1 when too many differ. */
static int judge(rt_attest *a, uint64_t h) {
  uint32_t slot = (uint32_t)(h % RT_ATTEST_WINDOW);
  if (a->own_h[slot] != h || a->diverged) return a->diverged != 0;
  uint32_t differ = 0;
  const uint8_t *other = NULL;
  for (uint32_t p = 0; p < a->n; p++) {
    size_t k = (size_t)p * RT_ATTEST_WINDOW + slot;
    if (p == a->self || a->peer_h[k] != h) continue;
    if (memcmp(a->peer_d[k], a->own_d[slot], BFT_DIGEST_LEN) != 0) {
      differ++;
      other = a->peer_d[k];
    }
  }
  if (differ <= a->tolerate) return 0;
  a->diverged = h;
  a->diverged_differ = differ;
  memcpy(a->ours, a->own_d[slot], BFT_DIGEST_LEN);
  memcpy(a->theirs, other, BFT_DIGEST_LEN);
  return 1;
}

int rt_attest_own(rt_attest *a, uint64_t h, const uint8_t d[BFT_DIGEST_LEN], uint64_t now_ms) {
  uint32_t slot = (uint32_t)(h % RT_ATTEST_WINDOW);
  a->own_h[slot] = h;
  memcpy(a->own_d[slot], d, BFT_DIGEST_LEN);
  if (h > a->head) a->head = h;
  /* The caller flushes before a gap or a full set (rt_attest_due); if it did not, the
   * unsent digests are dropped (peers then simply lack them: no false alarm). */
  if (a->pend_count && (a->pend_first + a->pend_count != h || a->pend_count == RT_ATTEST_MAX_PER_MSG))
    a->pend_count = 0;
  if (!a->pend_count) {
    a->pend_first = h;
    a->pend_since_ms = now_ms;
  }
  memcpy(a->pend[a->pend_count++], d, BFT_DIGEST_LEN);
  return judge(a, h);
}

int rt_attest_relevant(const rt_attest *a, uint64_t first, uint32_t count) {
  uint64_t last = first + count - 1;
  uint64_t lo = a->head > RT_ATTEST_WINDOW ? a->head - RT_ATTEST_WINDOW + 1 : 1;
  return count > 0 && last >= lo && first <= a->head + RT_ATTEST_WINDOW;
}

int rt_attest_peer(rt_attest *a, uint32_t from, uint64_t first, uint32_t count, const uint8_t *digests) {
  if (from >= a->n || from == a->self) return 0;
  a->received++;
  int div = 0;
  uint64_t lo = a->head > RT_ATTEST_WINDOW ? a->head - RT_ATTEST_WINDOW + 1 : 1;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t h = first + i;
    if (h < lo || h > a->head + RT_ATTEST_WINDOW) continue;
    uint32_t slot = (uint32_t)(h % RT_ATTEST_WINDOW);
    size_t k = (size_t)from * RT_ATTEST_WINDOW + slot;
    if (a->peer_h[k] > h) continue; /* a newer height already holds the slot */
    a->peer_h[k] = h;
    memcpy(a->peer_d[k], digests + (size_t)i * BFT_DIGEST_LEN, BFT_DIGEST_LEN);
    if (a->own_h[slot] == h && memcmp(a->own_d[slot], a->peer_d[k], BFT_DIGEST_LEN) != 0) a->mismatches++;
    div |= judge(a, h);
  }
  return div;
}

int rt_attest_due(const rt_attest *a, uint64_t now_ms, int force) {
  if (!a->pend_count) return 0;
  return force || a->pend_count >= RT_ATTEST_MAX_PER_MSG / 2 || now_ms - a->pend_since_ms >= RT_ATTEST_FLUSH_MS;
}

uint32_t rt_attest_take(rt_attest *a, uint8_t out[RT_ATTEST_MSG_MAX]) {
  uint32_t n = a->pend_count;
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(a->pend_first >> (8 * i));
  for (int i = 0; i < 4; i++) out[8 + i] = (uint8_t)(n >> (8 * i));
  memcpy(out + 12, a->pend, (size_t)n * BFT_DIGEST_LEN);
  a->pend_count = 0;
  a->sent++;
  return 12 + n * BFT_DIGEST_LEN;
}
