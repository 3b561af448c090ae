/* Helpers shared by the Tendermint test programs: a recording filter, builders for the
 * messages documented in protocols/tendermint/tendermint.h (signed as any replica), and
 * look-ups of what a replica said. Replica 0 is the one under test in the isolated tests:
 * everything the harness routes is recorded and dropped, and the test hands it messages. */
#ifndef TM_TEST_UTIL_H
#define TM_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/quorum.h"
#include "tests/tendermint/harness.h"

#define REC_MAX 4096
typedef struct recorder {
  h_msg m[REC_MAX];
  uint32_t n;
  int drop_all;
} recorder;

static inline uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
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
  return r->drop_all ? H_DROP : H_DELIVER;
}

static inline void recorder_free(recorder *r) {
  for (uint32_t i = 0; i < r->n; i++) free(r->m[i].body);
  r->n = 0;
}

/* A vote of `who` (PREVOTE/PRECOMMIT) for (height, round, digest); digest NULL is nil. */
static inline uint8_t *make_vote(harness *h, uint8_t kind, uint32_t who, uint64_t height, uint64_t round,
                                 const uint8_t *digest, uint32_t *out_len) {
  uint8_t st[TM_VOTE_LEN];
  put64(st, height);
  put64(st + 8, round);
  if (digest) memcpy(st + 16, digest, 32);
  else memset(st + 16, 0, 32);
  put32(st + 48, who);
  return h_seal(h, who, kind, st, sizeof st, out_len);
}

static inline int deliver_vote(harness *h, uint32_t to, uint8_t kind, uint32_t who, uint64_t height, uint64_t round,
                               const uint8_t *digest) {
  uint32_t len;
  uint8_t *b = make_vote(h, kind, who, height, round, digest, &len);
  int rc = h_deliver(h, to, who, kind, b, len);
  free(b);
  return rc;
}

/* A PROPOSAL by `proposer` for (height, round, batch) with valid round vr; when vr is not
 * TM_NIL_ROUND, pol_signers (ascending, 2f+1 of them, or fewer to forge a bad proof) sign the
 * proof of lock: PREVOTEs for (height, vr, digest). */
static inline uint8_t *make_proposal(harness *h, uint32_t proposer, uint64_t height, uint64_t round, uint64_t vr,
                                     const uint32_t *pol_signers, uint32_t npol, const uint8_t *batch, uint32_t blen,
                                     uint32_t *out_len) {
  uint32_t cap = 8 * 3 + 32 + 4 + npol * 68 + 4 + blen;
  uint8_t *p = malloc(cap);
  uint32_t o = 0;
  put64(p + o, height), o += 8;
  put64(p + o, round), o += 8;
  put64(p + o, vr), o += 8;
  uint8_t d[32];
  bft_digest(d, batch, blen);
  memcpy(p + o, d, 32), o += 32;
  put32(p + o, npol), o += 4;
  for (uint32_t i = 0; i < npol; i++) {
    uint8_t st[TM_VOTE_LEN];
    put64(st, height);
    put64(st + 8, vr);
    memcpy(st + 16, d, 32);
    put32(st + 48, pol_signers[i]);
    put32(p + o, pol_signers[i]), o += 4;
    h_sign(h, pol_signers[i], TM_TAG_PREVOTE, st, sizeof st, p + o), o += 64;
  }
  put32(p + o, blen), o += 4;
  memcpy(p + o, batch, blen), o += blen;
  uint8_t *b = h_seal(h, proposer, TM_MSG_PROPOSAL, p, o, out_len);
  free(p);
  return b;
}

static inline int deliver_proposal(harness *h, uint32_t to, uint32_t proposer, uint64_t height, uint64_t round,
                                   uint64_t vr, const uint32_t *pol, uint32_t npol, const uint8_t *batch,
                                   uint32_t blen) {
  uint32_t len;
  uint8_t *b = make_proposal(h, proposer, height, round, vr, pol, npol, batch, blen, &len);
  int rc = h_deliver(h, to, proposer, TM_MSG_PROPOSAL, b, len);
  free(b);
  return rc;
}

/* A batch of one fresh signed request (not put in any pool); returns its length. */
static inline uint32_t make_batch(harness *h, uint64_t cseq, const char *op, uint8_t *buf, uint32_t cap,
                                  uint8_t digest[32]) {
  uint8_t rq[512];
  int n = bft_request_encode(&h->client, h->cluster_id, cseq, (const uint8_t *)op, (uint32_t)strlen(op), rq, sizeof rq);
  assert_true(n > 0);
  bft_batch_writer bw;
  bft_batch_begin(&bw, buf, cap);
  assert_int_equal(bft_batch_add(&bw, rq, (uint32_t)n), 0);
  uint32_t len = bft_batch_end(&bw);
  bft_digest(digest, buf, len);
  return len;
}

/* Route everything queued through the recorder (which drops it when drop_all). */
static inline void flush(harness *h) { h_run(h, 1000000); }

/* The latest vote of kind by `who` for (height, round) that was recorded: 1 and its digest
 * (all zero for nil), or 0 when it sent none. */
static inline int said(recorder *r, uint32_t who, uint8_t kind, uint64_t height, uint64_t round, uint8_t digest[32]) {
  int found = 0;
  for (uint32_t i = 0; i < r->n; i++) {
    h_msg *m = &r->m[i];
    if (m->from != who || m->kind != kind || m->len != TM_VOTE_LEN + 64) continue;
    if (get64(m->body) != height || get64(m->body + 8) != round) continue;
    memcpy(digest, m->body + 16, 32);
    found = 1;
  }
  return found;
}

static inline int is_nil(const uint8_t d[32]) {
  static const uint8_t z[32];
  return memcmp(d, z, 32) == 0;
}

/* Four replicas, replica 0 isolated: whatever anyone sends is recorded and dropped. */
static inline harness *isolated(recorder *rec) {
  harness *h = h_new(4, 0, 0, 0);
  memset(rec, 0, sizeof *rec);
  rec->drop_all = 1;
  h->filter = record_filter;
  h->filter_arg = rec;
  flush(h);
  recorder_free(rec);
  return h;
}

#endif
