/* The pure parts of the client library: reply matching (f+1 equal signed replies from
 * distinct replicas), the cheap pre-checks done before a reply's signature is verified, and the
 * sequence-number rule. No I/O here, so unit tests can drive every case. */
#include <string.h>

#include "client/bft_client.h"

void bft_client_quorum_reset(bft_client_quorum *q, uint32_t n, uint32_t need, uint64_t seq) {
  memset(q, 0, sizeof *q);
  q->n = n > BFT_MAX_REPLICAS ? BFT_MAX_REPLICAS : n;
  q->need = need;
  q->seq = seq;
}

/* Votes that agree with replica r's vote, r included. */
static uint32_t quorum_matching(const bft_client_quorum *q, uint32_t r) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < q->n; i++)
    if (q->vote[i].have && q->vote[i].status == q->vote[r].status &&
        memcmp(q->vote[i].digest, q->vote[r].digest, BFT_DIGEST_LEN) == 0)
      m++;
  return m;
}

int bft_client_quorum_add(bft_client_quorum *q, uint32_t replica, uint64_t seq, uint8_t status,
                          uint64_t height, const uint8_t *result, uint32_t result_len) {
  if (replica >= q->n) return BFT_E_UNKNOWN_SENDER;
  if (seq != q->seq) return BFT_E_STALE;
  q->vote[replica].have = 1;
  q->vote[replica].status = status;
  q->vote[replica].height = height;
  /* A digest rather than a copy keeps a handle's memory independent of result sizes; the
   * result handed to the caller is the one of the reply that completed the quorum. */
  bft_digest(q->vote[replica].digest, result_len ? result : (const uint8_t *)"", result_len);
  return quorum_matching(q, replica) >= q->need ? 1 : 0;
}

void bft_client_quorum_count(const bft_client_quorum *q, uint32_t *votes, uint32_t *best) {
  uint32_t v = 0, b = 0;
  for (uint32_t i = 0; i < q->n; i++) {
    if (!q->vote[i].have) continue;
    v++;
    uint32_t m = quorum_matching(q, i);
    if (m > b) b = m;
  }
  if (votes) *votes = v;
  if (best) *best = b;
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Offsets in a reply: u8 version | u32 replica | client[32] | u64 seq | u64 height | u8 status */
#define REPLY_OFF_REPLICA 1
#define REPLY_OFF_CLIENT 5
#define REPLY_OFF_SEQ (REPLY_OFF_CLIENT + BFT_PK_LEN)
#define REPLY_OFF_STATUS (REPLY_OFF_SEQ + 16)
#define REPLY_MIN_LEN (REPLY_OFF_STATUS + 1 + 4 + BFT_MAC_LEN) /* a v2 reply; v1 is longer */

int bft_client_reply_peek(const uint8_t *p, uint32_t len, const uint8_t pk[BFT_PK_LEN],
                          uint64_t seq, uint32_t n, uint32_t *replica, uint8_t *status) {
  if (len < REPLY_MIN_LEN) return BFT_E_TRUNCATED;
  uint32_t r = (uint32_t)get_le(p + REPLY_OFF_REPLICA, 4);
  if (r >= n) return BFT_E_UNKNOWN_SENDER;
  if (memcmp(p + REPLY_OFF_CLIENT, pk, BFT_PK_LEN) != 0) return BFT_E_STALE;
  if (get_le(p + REPLY_OFF_SEQ, 8) != seq) return BFT_E_STALE;
  if (replica) *replica = r;
  if (status) *status = p[REPLY_OFF_STATUS];
  return 0;
}

const uint8_t *bft_client_reply_key(const uint8_t *p, uint32_t len) {
  return len >= REPLY_MIN_LEN ? p + REPLY_OFF_CLIENT : NULL;
}

uint64_t bft_client_next_seq(uint64_t last, uint64_t now_us) {
  return now_us > last ? now_us : last + 1;
}

int bft_client_key_permitted(const bft_cluster *cluster, const uint8_t pk[BFT_PK_LEN]) {
  return bft_cluster_find_client(cluster, pk) >= 0;
}
