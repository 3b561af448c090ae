/* Small helpers shared by the PBFT test programs: recording filters, message builders and
 * little-endian field access for the encodings documented in protocols/pbft/pbft.h. */
#ifndef PBFT_TEST_UTIL_H
#define PBFT_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/pbft/harness.h"

#define REC_MAX 4096
typedef struct recorder {
  h_msg m[REC_MAX];
  uint32_t n;
  uint32_t drop_kinds; /* bit k: drop messages of kind k */
  uint32_t drop_to;    /* bit i: drop messages to replica i */
} recorder;

static inline uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}
static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline int record_filter(harness *h, h_msg *m, void *arg) {
  (void)h;
  recorder *r = arg;
  if (r->n < REC_MAX) {
    h_msg *c = &r->m[r->n++];
    *c = *m;
    c->body = malloc(m->len);
    memcpy(c->body, m->body, m->len);
  }
  if (r->drop_kinds & (1u << m->kind)) return H_DROP;
  if (r->drop_to & (1u << m->to)) return H_DROP;
  return H_DELIVER;
}

static inline void recorder_free(recorder *r) {
  for (uint32_t i = 0; i < r->n; i++) free(r->m[i].body);
  r->n = 0;
}

/* The nth recorded message matching (from, to, kind); UINT32_MAX matches any. */
static inline h_msg *rec_find(recorder *r, uint32_t from, uint32_t to, uint8_t kind, uint64_t seq_or_any) {
  for (uint32_t i = 0; i < r->n; i++) {
    h_msg *m = &r->m[i];
    if ((from == UINT32_MAX || m->from == from) && (to == UINT32_MAX || m->to == to) && m->kind == kind) {
      if (seq_or_any != UINT64_MAX && (m->len < 16 + BFT_SIG_LEN || get64(m->body + 8) != seq_or_any)) continue;
      return m;
    }
  }
  return NULL;
}

/* PRE-PREPARE payload for (view, seq, batch) signed as `primary` (prepare statement inside). */
static inline uint8_t *make_pre_prepare(harness *h, uint32_t primary, uint64_t view, uint64_t seq,
                                        const uint8_t *batch, uint32_t blen, uint32_t *out_len) {
  uint32_t plen = 8 + 8 + 32 + 64 + 4 + blen;
  uint8_t *p = malloc(plen);
  put64(p, view);
  put64(p + 8, seq);
  bft_digest(p + 16, batch, blen);
  uint8_t st[52];
  memcpy(st, p, 48);
  put32(st + 48, primary);
  h_sign(h, primary, PBFT_TAG_PREPARE, st, sizeof st, p + 48);
  put32(p + 112, blen);
  memcpy(p + 116, batch, blen);
  uint8_t *b = h_seal(h, primary, PBFT_MSG_PRE_PREPARE, p, plen, out_len);
  free(p);
  return b;
}

/* A vote message (PREPARE/COMMIT) by `who`. */
static inline uint8_t *make_vote(harness *h, uint8_t kind, uint32_t who, uint64_t view, uint64_t seq,
                                 const uint8_t digest[32], uint32_t *out_len) {
  uint8_t st[52];
  put64(st, view);
  put64(st + 8, seq);
  memcpy(st + 16, digest, 32);
  put32(st + 48, who);
  return h_seal(h, who, kind, st, sizeof st, out_len);
}

/* A signed request that is not put in any pool. */
static inline uint32_t make_request(harness *h, uint64_t cseq, const char *op, uint8_t *buf, uint32_t cap) {
  int n = bft_request_encode(&h->client, h->cluster_id, cseq, (const uint8_t *)op, (uint32_t)strlen(op), buf, cap);
  assert_true(n > 0);
  return (uint32_t)n;
}

static inline void submit_and_run(harness *h, int count, const char *prefix) {
  for (int k = 0; k < count; k++) {
    char op[64];
    snprintf(op, sizeof op, "%s-%d", prefix, k);
    h_submit(h, op);
    h_run(h, 1000000);
  }
}

#endif
