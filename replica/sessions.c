/* Client sessions: public key index, last executed seq and the bounded reply cache. */
#include "replica/sessions.h"

#include <stdlib.h>
#include <string.h>

#include "protocols/request.h"
#include "replica/rt_limits.h"

static uint32_t pk_slot(const uint8_t pk[BFT_PK_LEN], uint32_t mask) {
  /* Keys in the cluster file are trusted and uniformly random; any 4 bytes spread them. */
  uint32_t h = (uint32_t)pk[0] | (uint32_t)pk[1] << 8 | (uint32_t)pk[2] << 16 | (uint32_t)pk[3] << 24;
  return h & mask;
}

int rt_sessions_init(rt_sessions *ss, const bft_cluster *c, uint64_t max_cached_bytes) {
  memset(ss, 0, sizeof *ss);
  ss->n = c->nclients;
  ss->max_cached_bytes = max_cached_bytes ? max_cached_bytes : RT_REPLY_CACHE_MAX_BYTES;
  ss->map_cap = 16;
  while (ss->map_cap < 2 * ss->n) ss->map_cap *= 2;
  ss->pks = calloc(ss->n ? ss->n : 1, sizeof *ss->pks);
  ss->s = calloc(ss->n ? ss->n : 1, sizeof *ss->s);
  ss->map = malloc(ss->map_cap * sizeof *ss->map);
  if (!ss->pks || !ss->s || !ss->map) return rt_sessions_free(ss), BFT_E_NOMEM;
  for (uint32_t i = 0; i < ss->map_cap; i++) ss->map[i] = -1;
  for (uint32_t i = 0; i < ss->n; i++) {
    memcpy(ss->pks[i], c->clients[i].pk, BFT_PK_LEN);
    if (rt_sessions_find(ss, c->clients[i].pk) >= 0) continue; /* same key listed twice */
    uint32_t j = pk_slot(c->clients[i].pk, ss->map_cap - 1);
    while (ss->map[j] >= 0) j = (j + 1) & (ss->map_cap - 1);
    ss->map[j] = (int32_t)i;
  }
  return 0;
}

void rt_sessions_free(rt_sessions *ss) {
  if (ss->s)
    for (uint32_t i = 0; i < ss->n; i++) free(ss->s[i].result);
  free(ss->pks);
  free(ss->s);
  free(ss->map);
  ss->pks = NULL;
  ss->s = NULL;
  ss->map = NULL;
}

int rt_sessions_find(const rt_sessions *ss, const uint8_t pk[BFT_PK_LEN]) {
  uint32_t mask = ss->map_cap - 1;
  for (uint32_t j = pk_slot(pk, mask);; j = (j + 1) & mask) {
    int32_t i = ss->map[j];
    if (i < 0) return -1;
    if (memcmp(ss->pks[i], pk, BFT_PK_LEN) == 0) return i;
  }
}

static void sum_add(uint8_t s[BFT_DIGEST_LEN], const uint8_t h[BFT_DIGEST_LEN], int sub) {
  int carry = 0;
  for (int i = 0; i < BFT_DIGEST_LEN; i++) {
    int v = sub ? (int)s[i] - h[i] - carry : (int)s[i] + h[i] + carry;
    carry = sub ? v < 0 : v > 255;
    s[i] = (uint8_t)(v & 0xFF);
  }
}

static void drop_result(rt_sessions *ss, rt_session *s) {
  if (s->result) ss->cached_bytes -= s->result_len;
  free(s->result);
  s->result = NULL;
  s->result_len = 0;
  s->cached = 0;
}

void rt_sessions_advance(rt_sessions *ss, uint32_t idx, uint64_t seq, uint64_t height) {
  rt_session *s = &ss->s[idx];
  uint8_t buf[BFT_PK_LEN + 8];
  memcpy(buf, ss->pks[idx], BFT_PK_LEN);
  for (int i = 0; i < 8; i++) buf[BFT_PK_LEN + i] = (uint8_t)(seq >> (8 * i));
  if (s->last_seq) sum_add(ss->sum, s->h, 1);
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft/session", 11);
  bft_digest_update(&c, buf, sizeof buf);
  bft_digest_final(&c, s->h);
  sum_add(ss->sum, s->h, 0);
  s->last_seq = seq;
  s->height = height;
  drop_result(ss, s);
}

static void evict(rt_sessions *ss, uint32_t keep) {
  for (uint32_t steps = 0; ss->cached_bytes > ss->max_cached_bytes && steps < ss->n; steps++) {
    uint32_t i = ss->evict_hand;
    ss->evict_hand = (ss->evict_hand + 1) % ss->n;
    if (i == keep || !ss->s[i].result) continue;
    drop_result(ss, &ss->s[i]);
    ss->evictions++;
  }
}

int rt_sessions_set_result(rt_sessions *ss, uint32_t idx, uint64_t seq, uint8_t status,
                           const uint8_t *res, uint32_t len) {
  rt_session *s = &ss->s[idx];
  if (s->last_seq != seq) return 0;
  drop_result(ss, s);
  s->result = malloc(len ? len : 1);
  if (!s->result) return BFT_E_NOMEM;
  if (len) memcpy(s->result, res, len);
  s->result_len = len;
  s->status = status;
  s->cached = 1;
  ss->cached_bytes += len;
  evict(ss, idx);
  return 0;
}

int rt_sessions_reply(const rt_sessions *ss, uint32_t idx, uint32_t replica, bft_reply *rp) {
  const rt_session *s = &ss->s[idx];
  if (!s->cached) return BFT_E_STATE;
  *rp = (bft_reply){.replica = replica, .seq = s->last_seq, .height = s->height, .status = s->status,
                    .result = s->result, .result_len = s->result_len};
  memcpy(rp->client, ss->pks[idx], BFT_PK_LEN);
  return 0;
}

int rt_sessions_encode_reply(const rt_sessions *ss, uint32_t idx, const bft_keypair *kp,
                             const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint32_t replica,
                             uint8_t *buf, uint32_t cap) {
  bft_reply rp;
  int rc = rt_sessions_reply(ss, idx, replica, &rp);
  return rc ? rc : bft_reply_encode(kp, cluster_id, &rp, buf, cap);
}

void rt_sessions_digest(const rt_sessions *ss, uint8_t out[BFT_DIGEST_LEN]) {
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft/sessions", 12);
  bft_digest_update(&c, ss->sum, sizeof ss->sum);
  bft_digest_final(&c, out);
}
