/* HotStuff safety rules, one replica (replica 3 of 4) fed forged proposals: the safe-node
 * rule (extends the lock / newer justify / neither), a fork below the lock, forged QCs, no
 * commit without a three-chain of consecutive views (then every ancestor in order), one vote
 * per view across a restart, and an equivocating leader. */
#include "tests/hotstuff/util.h"

#define R 3 /* the replica under test; it leads views 48..63 (never used below) */
static const uint32_t Q[3] = {0, 1, 2};
#define TERM 16 /* HS_LEADER_TERM: leader(v) = (v / 16) % n */
static uint32_t lead(uint64_t v) { return (uint32_t)((v / TERM) % 4); }

static uint32_t ncommit(harness *h) { return (uint32_t)h->r[R].ncommit; }

/* b1 (v1) <- b2 (v2) <- b3 (v3): R votes for each and, seeing QC(b2) in b3, locks on b1. */
static void chain3(harness *h, t_block *b, t_qc *qc) {
  uint8_t g[32];
  t_genesis(h, g);
  t_make(&b[1], 1, 1, g);
  t_make(&b[2], 2, 2, b[1].hash);
  t_make(&b[3], 3, 3, b[2].hash);
  t_qc_of(h, &b[1], Q, 3, &qc[1]);
  t_qc_of(h, &b[2], Q, 3, &qc[2]);
  assert_int_equal(t_propose(h, lead(1), R, &b[1], NULL), 0);
  assert_int_equal(t_voted_view(h, R), 1);
  assert_int_equal(t_propose(h, lead(2), R, &b[2], &qc[1]), 0);
  assert_int_equal(t_voted_view(h, R), 2);
  assert_int_equal(t_propose(h, lead(3), R, &b[3], &qc[2]), 0);
  assert_int_equal(t_voted_view(h, R), 3);
  h_clear_queue(h);
}

static void test_safe_node(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  t_block b[8];
  t_qc qc[8];
  chain3(h, b, qc);
  uint8_t g[32];
  t_genesis(h, g);

  /* A fork below the lock (extends genesis, justify older than the lock): no vote. */
  t_advance(h, R, 0, 1, 16);
  t_block fork;
  t_make(&fork, 16, 1, g);
  assert_int_equal(t_propose(h, lead(16), R, &fork, NULL), 0);
  assert_int_equal(t_voted_view(h, R), 3);

  /* Extends the locked block b1 (through b2, justify QC(b2)): vote. */
  t_block ext;
  t_make(&ext, 17, 3, b[2].hash);
  assert_int_equal(t_propose(h, lead(17), R, &ext, &qc[2]), 0);
  assert_int_equal(t_voted_view(h, R), 17);

  /* Conflicts with the lock, but its justify QC is newer than the lock: vote (liveness rule).
   * x (view 18) is a certified fork off genesis; y (view 19) extends it. R fetches x first. */
  t_block x, y;
  t_qc qx;
  t_make(&x, 18, 1, g);
  t_qc_of(h, &x, Q, 3, &qx);
  t_make(&y, 19, 2, x.hash);
  assert_int_equal(t_propose(h, lead(19), R, &y, &qx), 0);
  assert_int_equal(t_voted_view(h, R), 17); /* its parent is being fetched */
  assert_int_equal(t_block_reply(h, 0, R, &x, NULL), 0);
  assert_int_equal(t_voted_view(h, R), 19);
  assert_true(h_agree(h));
  h_free(h);
}

static void test_forged_qc_rejected(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  uint8_t g[32];
  t_genesis(h, g);
  t_block b1, b2;
  t_make(&b1, 1, 1, g);
  t_make(&b2, 2, 2, b1.hash);
  assert_int_equal(t_propose(h, lead(1), R, &b1, NULL), 0);
  /* The same signer twice: not a quorum. */
  t_qc dup;
  const uint32_t twice[3] = {0, 0, 1};
  t_qc_of(h, &b1, twice, 3, &dup);
  assert_int_equal(t_propose(h, lead(2), R, &b2, &dup), BFT_E_BAD_CERT);
  /* Too few signers; signers out of order; a signature over another block. */
  t_qc few, unordered, other;
  const uint32_t two[2] = {0, 1}, rev[3] = {2, 1, 0};
  t_qc_of(h, &b1, two, 2, &few);
  assert_int_equal(t_propose(h, lead(2), R, &b2, &few), BFT_E_BAD_CERT);
  t_qc_of(h, &b1, rev, 3, &unordered);
  assert_int_equal(t_propose(h, lead(2), R, &b2, &unordered), BFT_E_BAD_CERT);
  t_block b1x; /* another block of view 1 */
  t_make(&b1x, 1, 1, b1.hash);
  t_qc_of(h, &b1x, Q, 3, &other);
  assert_int_equal(t_propose(h, lead(2), R, &b2, &other), BFT_E_BAD_CERT);
  assert_int_equal(t_voted_view(h, R), 1);
  /* A proposal from a replica that does not lead its view. */
  t_qc good;
  t_qc_of(h, &b1, Q, 3, &good);
  assert_int_equal(t_propose(h, 1, R, &b2, &good), BFT_E_MALFORMED);
  assert_int_equal(t_propose(h, lead(2), R, &b2, &good), 0);
  assert_int_equal(t_voted_view(h, R), 2);
  h_free(h);
}

/* Views 1, 2, 16, 17, 18: nothing commits until the three-chain b3 (16) <- b4 (17) <- b5 (18)
 * is certified (QC(b5) in b6); then b1, b2, b3 are delivered in order with certificates. A
 * proposal of a later view is voted for at once (its view was entered on timeouts). */
static void test_commit_needs_consecutive_views(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  uint8_t g[32];
  t_genesis(h, g);
  t_block b[8];
  t_qc qc[8];
  uint64_t views[7] = {0, 1, 2, 16, 17, 18, 19};
  const uint8_t *parent = g;
  for (int i = 1; i <= 6; i++) {
    t_make(&b[i], views[i], (uint64_t)i, parent);
    t_qc_of(h, &b[i], Q, 3, &qc[i]);
    parent = b[i].hash;
  }
  for (int i = 1; i <= 6; i++) {
    assert_int_equal(t_propose(h, lead(views[i]), R, &b[i], i > 1 ? &qc[i - 1] : NULL), 0);
    assert_int_equal(t_voted_view(h, R), views[i]);
    if (i < 6) assert_int_equal(ncommit(h), 0);
  }
  assert_int_equal(ncommit(h), 3); /* b1, b2, b3, each certificate checked by the harness */
  for (uint64_t s = 1; s <= 3; s++) {
    uint8_t d[32];
    bft_digest(d, b[s].batch, b[s].batch_len);
    assert_memory_equal(h->r[R].commits[s].digest, d, 32);
  }
  h_free(h);
}

/* A consecutive three-chain commits as soon as its QC is seen. */
static void test_commit_on_three_chain(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  t_block b[8];
  t_qc qc[8];
  chain3(h, b, qc);
  assert_int_equal(ncommit(h), 0); /* b1 <- b2 <- b3 certified only up to b2 */
  t_block b4;
  t_make(&b4, 4, 4, b[3].hash);
  t_qc_of(h, &b[3], Q, 3, &qc[3]);
  assert_int_equal(t_propose(h, lead(4), R, &b4, &qc[3]), 0);
  assert_int_equal(ncommit(h), 1);
  h_free(h);
}

static void test_vote_once_per_view_across_restart(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  uint8_t g[32];
  t_genesis(h, g);
  t_block a, b;
  t_make(&a, 1, 1, g);
  assert_int_equal(t_propose(h, lead(1), R, &a, NULL), 0);
  assert_int_equal(t_voted_view(h, R), 1);
  uint32_t nrec = h->r[R].nrec;
  h_restart(h, R, UINT64_MAX);
  /* The leader of view 1 equivocates after our restart: another block for view 1. */
  uint8_t rq[512], batch[1024];
  uint32_t rl = (uint32_t)bft_request_encode(&h->client, h->cluster_id, 7, (const uint8_t *)"x", 1, rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  assert_int_equal(bft_batch_add(&bw, rq, rl), 0);
  uint32_t blen = bft_batch_end(&bw);
  t_make_with(&b, 1, 1, g, batch, blen);
  t_propose(h, lead(1), R, &b, NULL);
  t_propose(h, lead(1), R, &a, NULL);
  /* No vote of view 1 was persisted (nor sent) after the restart. */
  for (uint32_t k = nrec; k < h->r[R].nrec; k++) assert_int_not_equal(h->r[R].recs[k][0], HS_REC_VOTE);
  /* Compaction keeps the promise too. */
  bft_actions_reset(&h->acts);
  assert_int_equal(h->ops->compact(h->r[R].st, &h->acts), 0);
  /* one snapshot record, then the blocks above the root (a QC'd block must survive) */
  uint32_t ncomp = h->acts.count;
  assert_true(ncomp >= 1);
  assert_int_equal(h->acts.items[0].data[0], HS_REC_SNAPSHOT);
  for (uint32_t k = 1; k < ncomp; k++) assert_int_equal(h->acts.items[k].data[0], HS_REC_BLOCK);
  for (uint32_t k = 0; k < h->r[R].nrec; k++) free(h->r[R].recs[k]);
  h->r[R].nrec = 0;
  h_absorb(h, R);
  h_restart(h, R, UINT64_MAX);
  t_propose(h, lead(1), R, &b, NULL);
  assert_int_equal(h->r[R].nrec, ncomp);
  assert_int_equal(t_voted_view(h, R), 1);
  h_free(h);
}

/* A leader that proposes two blocks for one view: the second is refused, counted and reported
 * with the first as evidence (both signed proposals), and the replica's single vote of that
 * view stays the first. */
static void test_equivocating_leader(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  uint8_t g[32], rq[512], batch[1024];
  t_genesis(h, g);
  uint32_t rl = (uint32_t)bft_request_encode(&h->client, h->cluster_id, 9, (const uint8_t *)"y", 1, rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  assert_int_equal(bft_batch_add(&bw, rq, rl), 0);
  uint32_t blen = bft_batch_end(&bw);
  t_block a, b;
  t_make(&a, 1, 1, g);
  t_make_with(&b, 1, 1, g, batch, blen);
  assert_int_equal(t_propose(h, lead(1), R, &a, NULL), 0);
  uint32_t nrec = h->r[R].nrec;
  /* The second is not voted for, but both signed proposals are reported as evidence. */
  assert_int_equal(t_propose(h, lead(1), R, &b, NULL), 0);
  assert_int_equal(h->r[R].nrec, nrec);
  assert_int_equal(h->r[R].evidence, 1);
  assert_int_equal(h->r[R].ev_offender, lead(1));
  assert_int_equal(h->r[R].ev_kind, HS_MSG_PROPOSAL);
  /* What anyone with the cluster's keys checks (the runtime and bft-client evidence do the
   * same): two different messages, each signed by the leader under the proposal tag. */
  wire_reader rd;
  wire_reader_init(&rd, h->r[R].ev_data, h->r[R].ev_len);
  uint32_t l1, l2;
  const uint8_t *m1 = wire_get_blob(&rd, &l1, BFT_MAX_ENGINE_MSG);
  const uint8_t *m2 = wire_get_blob(&rd, &l2, BFT_MAX_ENGINE_MSG);
  assert_int_equal(wire_reader_finish(&rd), 0);
  assert_true(l1 != l2 || memcmp(m1, m2, l1) != 0);
  assert_int_equal(bft_engine_check_message(h->ops, &h->r[R].cfg, &h->r[R].env, lead(1), HS_MSG_PROPOSAL, m1, l1), 0);
  assert_int_equal(bft_engine_check_message(h->ops, &h->r[R].cfg, &h->r[R].env, lead(1), HS_MSG_PROPOSAL, m2, l2), 0);
  /* Once per leader and view: a third block of view 1 is refused without more evidence. */
  t_block c;
  uint8_t g2[32];
  memcpy(g2, g, 32);
  g2[0] ^= 1;
  t_make(&c, 1, 1, g2);
  assert_int_equal(t_propose(h, lead(1), R, &c, NULL), BFT_E_DUPLICATE);
  assert_int_equal(h->r[R].evidence, 1);
  bft_engine_status st;
  h_status(h, R, &st);
  assert_int_equal(st.equivocations, 2);
  assert_int_equal(t_voted_view(h, R), 1);
  h_free(h);
}

/* The other copy of an equivocating leader, stuck behind, proposes for a view the replica has
 * left (it already took the leader's next view): still reported, with the kept first proposal. */
static void test_late_conflicting_proposal(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  uint8_t g[32], rq[512], batch[1024];
  t_genesis(h, g);
  uint32_t rl = (uint32_t)bft_request_encode(&h->client, h->cluster_id, 5, (const uint8_t *)"z", 1, rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  assert_int_equal(bft_batch_add(&bw, rq, rl), 0);
  uint32_t blen = bft_batch_end(&bw);
  t_block a, a2, b;
  t_qc qa;
  t_make(&a, 1, 1, g);
  t_qc_of(h, &a, Q, 3, &qa);
  t_make(&a2, 2, 2, a.hash);
  t_make_with(&b, 1, 1, g, batch, blen);
  assert_int_equal(lead(1), lead(2));
  assert_int_equal(t_propose(h, lead(1), R, &a, NULL), 0);
  assert_int_equal(t_propose(h, lead(2), R, &a2, &qa), 0);
  assert_int_equal(t_voted_view(h, R), 2);
  assert_int_equal(h->r[R].evidence, 0);
  assert_int_equal(t_propose(h, lead(1), R, &b, NULL), 0);
  assert_int_equal(h->r[R].evidence, 1);
  assert_int_equal(h->r[R].ev_offender, lead(1));
  assert_int_equal(h->r[R].ev_kind, HS_MSG_PROPOSAL);
  assert_int_equal(t_voted_view(h, R), 2);
  bft_engine_status st;
  h_status(h, R, &st);
  assert_int_equal(st.equivocations, 1);
  /* The same proposal again (a retransmission) is no evidence. */
  assert_int_not_equal(t_propose(h, lead(2), R, &a2, &qa), 0);
  assert_int_equal(h->r[R].evidence, 1);
  h_free(h);
}

/* A validly signed proposal of a view far ahead (its leader's; a faulty one's, say) is not
 * voted for from here, and must not hide the proposal of the current view either: R still
 * votes for the real one (once a far proposal became the candidate, only a later view could
 * replace it, and every view until then went without R's vote). */
static void test_far_future_proposal_does_not_hide_the_current_one(void **state) {
  (void)state;
  harness *h = h_new(4, 0);
  t_block b[8];
  t_qc qc[8];
  chain3(h, b, qc);
  t_qc_of(h, &b[3], Q, 3, &qc[3]);
  t_block far, now;
  t_make(&far, 1004, 4, b[3].hash);
  t_make(&now, 4, 4, b[3].hash);
  assert_int_equal(t_propose(h, lead(1004), R, &far, &qc[3]), 0);
  assert_int_equal(t_voted_view(h, R), 3);
  assert_int_equal(t_view(h, R), 4);
  assert_int_equal(t_propose(h, lead(4), R, &now, &qc[3]), 0);
  assert_int_equal(t_voted_view(h, R), 4);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_safe_node),
      cmocka_unit_test(test_forged_qc_rejected),
      cmocka_unit_test(test_commit_needs_consecutive_views),
      cmocka_unit_test(test_commit_on_three_chain),
      cmocka_unit_test(test_vote_once_per_view_across_restart),
      cmocka_unit_test(test_equivocating_leader),
      cmocka_unit_test(test_late_conflicting_proposal),
      cmocka_unit_test(test_far_future_proposal_does_not_hide_the_current_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
