/* Helpers shared by the HotStuff test programs: the encodings of protocols/hotstuff/hotstuff.h
 * rebuilt by hand (block hashes, QCs, proposals, TIMEOUTs), so tests can forge any message a
 * Byzantine leader or a lost network could produce. */
#ifndef HS_TEST_UTIL_H
#define HS_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/wire/wire.h"
#include "tests/hotstuff/harness.h"

typedef struct t_block { /* a block as a test builds it */
  uint64_t view, height;
  uint8_t parent[32], hash[32];
  uint8_t batch[1024];
  uint32_t batch_len;
} t_block;

typedef struct t_qc { /* QC: count ids and signatures over (view, height, hash) */
  uint64_t view, height;
  uint8_t hash[32];
  uint32_t count;
  uint32_t ids[8];
  uint8_t sigs[8][64];
} t_qc;

static inline void t_genesis(harness *h, uint8_t out[32]) {
  uint8_t buf[16 + BFT_CLUSTER_ID_LEN];
  memcpy(buf, "hotstuff/genesis", 16);
  memcpy(buf + 16, h->cluster_id, BFT_CLUSTER_ID_LEN);
  bft_digest(out, buf, sizeof buf);
}

/* An empty-batch block; blocks differ by view, height or parent. */
static inline void t_make_with(t_block *b, uint64_t view, uint64_t height, const uint8_t parent[32],
                               const uint8_t *batch, uint32_t len) {
  memset(b, 0, sizeof *b);
  b->view = view;
  b->height = height;
  memcpy(b->parent, parent, 32);
  if (batch) {
    assert_true(len <= sizeof b->batch);
    memcpy(b->batch, batch, len);
    b->batch_len = len;
  } else {
    b->batch_len = bft_batch_encoded_empty(b->batch);
  }
  uint8_t bd[32], buf[14 + 16 + 64];
  bft_digest(bd, b->batch, b->batch_len);
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_fixed(&w, "hotstuff/block", 14);
  wire_put_u64(&w, view);
  wire_put_u64(&w, height);
  wire_put_fixed(&w, parent, 32);
  wire_put_fixed(&w, bd, 32);
  bft_digest(b->hash, buf, sizeof buf);
}

static inline void t_make(t_block *b, uint64_t view, uint64_t height, const uint8_t parent[32]) {
  t_make_with(b, view, height, parent, NULL, 0);
}

static inline void t_vote_stmt(uint8_t st[52], uint64_t view, uint64_t height, const uint8_t hash[32], uint32_t who) {
  wire_writer w;
  wire_writer_init(&w, st, 52);
  wire_put_u64(&w, view);
  wire_put_u64(&w, height);
  wire_put_fixed(&w, hash, 32);
  wire_put_u32(&w, who);
}

/* A QC for block b signed by the listed replicas, in the order given (tests forge bad ones). */
static inline void t_qc_of(harness *h, const t_block *b, const uint32_t *ids, uint32_t n, t_qc *qc) {
  memset(qc, 0, sizeof *qc);
  qc->view = b->view;
  qc->height = b->height;
  memcpy(qc->hash, b->hash, 32);
  qc->count = n;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t st[52];
    t_vote_stmt(st, b->view, b->height, b->hash, ids[i]);
    qc->ids[i] = ids[i];
    h_sign(h, ids[i], HS_TAG_VOTE, st, sizeof st, qc->sigs[i]);
  }
}

static inline void t_put_qsigs(wire_writer *w, const t_qc *qc) {
  wire_put_u32(w, qc ? qc->count : 0);
  for (uint32_t i = 0; qc && i < qc->count; i++) {
    wire_put_u32(w, qc->ids[i]);
    wire_put_fixed(w, qc->sigs[i], 64);
  }
}

/* Deliver block b as a PROPOSAL from `from` (its justify: qc, NULL for genesis) to replica to. */
static inline int t_propose(harness *h, uint32_t from, uint32_t to, const t_block *b, const t_qc *qc) {
  uint8_t buf[4096];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u64(&w, b->view);
  wire_put_u64(&w, b->height);
  wire_put_fixed(&w, b->parent, 32);
  wire_put_u64(&w, qc ? qc->view : 0);
  t_put_qsigs(&w, qc);
  wire_put_blob(&w, b->batch, b->batch_len);
  uint32_t len;
  uint8_t *body = h_seal(h, from, HS_MSG_PROPOSAL, buf, (uint32_t)w.len, &len);
  int rc = h_deliver(h, to, from, HS_MSG_PROPOSAL, body, len);
  free(body);
  return rc;
}

/* The same block as a BLOCK reply (fetch answer). */
static inline int t_block_reply(harness *h, uint32_t from, uint32_t to, const t_block *b, const t_qc *qc) {
  uint8_t buf[4096];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u64(&w, b->view);
  wire_put_u64(&w, b->height);
  wire_put_fixed(&w, b->parent, 32);
  wire_put_u64(&w, qc ? qc->view : 0);
  t_put_qsigs(&w, qc);
  wire_put_blob(&w, b->batch, b->batch_len);
  uint32_t len;
  uint8_t *body = h_seal(h, from, HS_MSG_BLOCK, buf, (uint32_t)w.len, &len);
  int rc = h_deliver(h, to, from, HS_MSG_BLOCK, body, len);
  free(body);
  return rc;
}

/* A TIMEOUT from `from` giving up on `view`, carrying the genesis QC and no vote. */
static inline int t_timeout(harness *h, uint32_t from, uint32_t to, uint64_t view) {
  uint8_t buf[256], g[32];
  t_genesis(h, g);
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u64(&w, view);
  wire_put_u32(&w, from);
  wire_put_u64(&w, 0);
  wire_put_u64(&w, 0);
  wire_put_fixed(&w, g, 32);
  wire_put_u32(&w, 0);
  wire_put_bool(&w, 0);
  uint32_t len;
  uint8_t *body = h_seal(h, from, HS_MSG_TIMEOUT, buf, (uint32_t)w.len, &len);
  int rc = h_deliver(h, to, from, HS_MSG_TIMEOUT, body, len);
  free(body);
  return rc;
}

static inline uint64_t t_view(harness *h, uint32_t i) {
  bft_engine_status st;
  h_status(h, i, &st);
  return st.view;
}

/* Move replica `to` into view v (a leader term's first view) on TIMEOUTs from two others
 * (f+1 join, then 2f+1 at n=4; a TIMEOUT certificate ends the failed leader's term). */
static inline void t_advance(harness *h, uint32_t to, uint32_t a, uint32_t b, uint64_t v) {
  while (t_view(h, to) < v) {
    uint64_t cur = t_view(h, to);
    t_timeout(h, a, to, cur);
    t_timeout(h, b, to, cur);
    assert_true(t_view(h, to) > cur);
  }
  assert_int_equal(t_view(h, to), v);
  h_clear_queue(h);
}

/* The highest view replica i persisted a vote for (VOTE records: u8 type | u64 view | ...). */
static inline uint64_t t_voted_view(harness *h, uint32_t i) {
  uint64_t best = 0;
  for (uint32_t k = 0; k < h->r[i].nrec; k++) {
    const uint8_t *p = h->r[i].recs[k];
    if (h->r[i].rec_len[k] < 9 || (p[0] != HS_REC_VOTE && p[0] != HS_REC_SNAPSHOT)) continue;
    uint64_t v = 0;
    for (int b = 0; b < 8; b++) v |= (uint64_t)p[1 + b] << (8 * b);
    if (v > best) best = v;
  }
  return best;
}

#endif
