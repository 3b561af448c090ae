/* The rules of Algorithm 1 that the paper's proofs rest on, driven message by message at one
 * replica (replica 0 of four; proposer(1, r) = (1 + r) mod 4): locks and unlocks, proofs of
 * lock carried by proposals, no precommit without 2f+1 prevotes of one round, the round skip,
 * equivocation evidence, and the double-sign guard across a restart. */
#include "tests/tendermint/tm_util.h"

static uint8_t V[1024], W[1024];
static uint32_t vlen, wlen;
static uint8_t dv[32], dw[32];

static harness *setup_two_values(recorder *rec) {
  harness *h = isolated(rec);
  vlen = make_batch(h, 1, "value-v", V, sizeof V, dv);
  wlen = make_batch(h, 2, "value-w", W, sizeof W, dw);
  return h;
}

/* Replica 0 prevotes v in round 0 and sees 2f prevotes for it: it locks v and precommits. */
static void lock_v_in_round0(harness *h, recorder *rec) {
  assert_int_equal(deliver_proposal(h, 0, 1, 1, 0, TM_NIL_ROUND, NULL, 0, V, vlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  assert_memory_equal(d, dv, 32);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 1, 1, 0, dv), 0);
  flush(h);
  assert_false(said(rec, 0, TM_MSG_PRECOMMIT, 1, 0, d));
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dv), 0);
  flush(h);
  assert_true(said(rec, 0, TM_MSG_PRECOMMIT, 1, 0, d)); /* lines 36-41 */
  assert_memory_equal(d, dv, 32);
}

/* f+1 = 2 replicas speak in `round`: replica 0 skips there (line 55). */
static void skip_to(harness *h, uint64_t round) {
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 1, round, NULL), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 3, 1, round, NULL), 0);
  flush(h);
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.view, round);
}

static void test_locked_replica_prevotes_nil_for_another_value(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  skip_to(h, 1);
  /* round 1: proposer 2 proposes w without a proof of lock: locked on v, prevote nil (line 26) */
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 1, TM_NIL_ROUND, NULL, 0, W, wlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 1, d));
  assert_true(is_nil(d));
  recorder_free(&rec);
  h_free(h);
}

static void test_locked_replica_prevotes_its_locked_value(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  skip_to(h, 1);
  /* round 1: v again, without proof: lockedValue = v, so prevote v (line 23) */
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 1, TM_NIL_ROUND, NULL, 0, V, vlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 1, d));
  assert_memory_equal(d, dv, 32);
  recorder_free(&rec);
  h_free(h);
}

static void test_unlock_on_proof_of_lock_of_a_later_round(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  skip_to(h, 2);
  /* round 2: proposer 3 proposes w with validRound 1 and 2f+1 PREVOTEs for w in round 1:
   * lockedRound 0 <= 1, so prevote w (lines 28-30) */
  const uint32_t pol[3] = {1, 2, 3};
  assert_int_equal(deliver_proposal(h, 0, 3, 1, 2, 1, pol, 3, W, wlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 2, d));
  assert_memory_equal(d, dw, 32);
  recorder_free(&rec);
  h_free(h);
}

static void test_proof_of_lock_as_recent_as_the_lock_unlocks(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  /* A proof for w from round 0 itself (possible only with equivocating prevoters, as forged
   * here): lockedRound 0 <= vr 0, so the paper's line 29 lets it prevote w. */
  skip_to(h, 1);
  const uint32_t pol[3] = {1, 2, 3};
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 1, 0, pol, 3, W, wlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 1, d));
  assert_memory_equal(d, dw, 32);
  recorder_free(&rec);
  h_free(h);
}

static void test_proposal_without_a_valid_proof_is_rejected(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  skip_to(h, 2);
  /* validRound 1 but only 2f signers: not a proof */
  const uint32_t two[2] = {1, 2};
  assert_int_equal(deliver_proposal(h, 0, 3, 1, 2, 1, two, 2, W, wlen), BFT_E_BAD_CERT);
  /* validRound 1 and no proof at all */
  assert_int_equal(deliver_proposal(h, 0, 3, 1, 2, 1, NULL, 0, W, wlen), BFT_E_MALFORMED);
  /* a proof signed for round 0 presented as round 1's: the signatures do not match */
  const uint32_t three[3] = {1, 2, 3};
  uint32_t len;
  uint8_t *b = make_proposal(h, 3, 1, 2, 1, three, 3, W, wlen, &len);
  b[8 * 3 + 32 + 4 + 4 + 7] ^= 1; /* one signature byte */
  uint8_t *resealed = h_seal(h, 3, TM_MSG_PROPOSAL, b, len - 64, &len);
  assert_int_equal(h_deliver(h, 0, 3, TM_MSG_PROPOSAL, resealed, len), BFT_E_BAD_CERT);
  free(b);
  free(resealed);
  /* validRound not below the round */
  assert_int_equal(deliver_proposal(h, 0, 3, 1, 2, 2, three, 3, W, wlen), BFT_E_MALFORMED);
  flush(h);
  uint8_t d[32];
  assert_false(said(&rec, 0, TM_MSG_PREVOTE, 1, 2, d));
  /* and a proposal from a replica that is not the proposer of the round */
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 2, TM_NIL_ROUND, NULL, 0, W, wlen), BFT_E_STATE);
  /* the timeout makes it prevote nil (lines 57-60) */
  assert_int_equal(h_fire(h, 0, TM_TIMER_PROPOSE), 0);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 2, d));
  assert_true(is_nil(d));
  recorder_free(&rec);
  h_free(h);
}

static void test_no_precommit_without_quorum_of_one_round(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  assert_int_equal(deliver_proposal(h, 0, 1, 1, 0, TM_NIL_ROUND, NULL, 0, V, vlen), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 1, 1, 0, dv), 0);
  /* the third prevote for v is of another round: 2f+1 across rounds is not a quorum */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 1, dv), 0);
  flush(h);
  uint8_t d[32];
  assert_false(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d));
  /* 2f+1 prevotes of round 0, but one for another value: no precommit for v either */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 3, 1, 0, dw), 0);
  flush(h);
  assert_false(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d));
  /* ... which schedules timeoutPrevote (line 34); when it fires, precommit nil (line 63) */
  assert_int_equal(h_fire(h, 0, TM_TIMER_PREVOTE), 0);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d));
  assert_true(is_nil(d));
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.committed, 0);
  recorder_free(&rec);
  h_free(h);
}

static void test_round_skip_needs_f_plus_one(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  bft_engine_status st;
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 1, 1, 3, NULL), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.view, 0); /* one replica (perhaps faulty) is not enough */
  uint64_t epoch = st.epoch;
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 1, 5, NULL), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.view, 3); /* two replicas reached round 3 or later */
  assert_true(st.epoch > epoch);
  assert_int_equal(st.leader, (1 + 3) % 4);
  assert_int_equal(st.view_changes, 0); /* not a timeout */
  recorder_free(&rec);
  h_free(h);
}

/* Beyond the paper (liveness): a replica moved out of a round by 2f+1 precommits of others
 * (line 47), or by f+1 replicas of a later round (line 55), before it precommitted there,
 * precommits nil in that round on its way out. Replicas still in the round may be one
 * precommit short otherwise (the faulty replica among the 2f+1 may never repeat its own). */
static void test_leaving_a_round_precommits_nil_there(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  uint8_t d[32];
  /* round 0: no proposal reaches replica 0; three others precommit v */
  for (uint32_t who = 1; who <= 3; who++) assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, who, 1, 0, dv), 0);
  flush(h);
  assert_false(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d)); /* still in round 0 until the timeout */
  assert_int_equal(h_fire(h, 0, TM_TIMER_PRECOMMIT), 0);  /* line 65 */
  flush(h);
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.view, 1);
  assert_true(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d));
  assert_true(is_nil(d)); /* never a value it did not see 2f+1 prevotes for */
  assert_false(said(&rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  /* round 1 -> 4 by the skip rule, in step propose: a nil precommit for round 1 too */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 4, NULL), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 3, 1, 4, NULL), 0);
  flush(h);
  h_status(h, 0, &st);
  assert_int_equal(st.view, 4);
  assert_true(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 1, d));
  assert_true(is_nil(d));
  recorder_free(&rec);
  h_free(h);
}

static void test_timeouts_grow_with_the_round(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  h_submit(h, "work"); /* a request pending: backups arm timeoutPropose */
  flush(h);
  uint64_t d0 = h->r[0].timer_delay[TM_TIMER_PROPOSE];
  assert_true(h->r[0].timer_armed[TM_TIMER_PROPOSE]);
  skip_to(h, 2);
  uint64_t d2 = h->r[0].timer_delay[TM_TIMER_PROPOSE];
  assert_int_equal(d0, 1000); /* timeoutPropose(0) = T */
  assert_int_equal(d2, 2000); /* timeoutPropose(2) = T + 2 * T/2 */
  /* a stale timeout (of round 0) is ignored */
  bft_engine_status st;
  h_status(h, 0, &st);
  bft_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BFT_EV_TIMER;
  ev.u.timer.id = TM_TIMER_PROPOSE;
  ev.u.timer.tag = st.epoch - 1;
  assert_int_equal(h_step(h, 0, &ev), 0);
  assert_int_equal(h->last_nact, 0);
  recorder_free(&rec);
  h_free(h);
}

static void test_equivocation_is_counted_once(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  bft_engine_status st;
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dv), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dv), BFT_E_DUPLICATE);
  h_status(h, 0, &st);
  assert_int_equal(st.equivocations, 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dw), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.equivocations, 1);
  assert_int_equal(h->r[0].evidence, 1); /* both signed prevotes handed to the runtime */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, NULL), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.equivocations, 1); /* one (replica, height, round, step) */
  assert_int_equal(h->r[0].evidence, 1);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 1, 0, dv), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 1, 0, NULL), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.equivocations, 2);
  /* the first vote stays: with 2f more prevotes for v there is a quorum for v */
  recorder_free(&rec);
  h_free(h);
}

static void test_no_double_sign_across_restart(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  lock_v_in_round0(h, &rec);
  h_restart(h, 0, UINT64_MAX);
  flush(h);
  /* the proposer equivocates: w for the same (1, 0); replica 0 must not prevote it */
  int rc = deliver_proposal(h, 0, 1, 1, 0, TM_NIL_ROUND, NULL, 0, W, wlen);
  assert_true(rc == 0 || rc == BFT_E_STATE);
  flush(h);
  for (uint32_t i = 0; i < rec.n; i++) {
    h_msg *m = &rec.m[i];
    if (m->from != 0 || (m->kind != TM_MSG_PREVOTE && m->kind != TM_MSG_PRECOMMIT)) continue;
    if (get64(m->body) == 1 && get64(m->body + 8) == 0) assert_memory_not_equal(m->body + 16, dw, 32);
  }
  /* the lock survived: in round 1, w without a proof gets a nil prevote */
  skip_to(h, 1);
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 1, TM_NIL_ROUND, NULL, 0, W, wlen), 0);
  flush(h);
  uint8_t d[32];
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 1, d));
  assert_true(is_nil(d));
  /* a second restart right after that prevote: no other prevote in round 1 either */
  h_restart(h, 0, UINT64_MAX);
  assert_int_equal(deliver_proposal(h, 0, 2, 1, 1, TM_NIL_ROUND, NULL, 0, V, vlen), 0);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 1, d));
  assert_true(is_nil(d));
  recorder_free(&rec);
  h_free(h);
}

/* One replica claims a far height: replica 0 fetches, asks everyone in turn, and gives up
 * when nobody has it (one replica's word is not a height). */
static void test_fetch_for_an_unproven_height_gives_up(void **state) {
  (void)state;
  recorder rec;
  harness *h = setup_two_values(&rec);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1000, 0, NULL), 0);
  assert_int_equal(h->r[0].fetches, 1);
  uint32_t fires = 0;
  while (h->r[0].timer_armed[TM_TIMER_FETCH] && fires < 20) {
    h_fire(h, 0, TM_TIMER_FETCH);
    fires++;
  }
  assert_false(h->r[0].timer_armed[TM_TIMER_FETCH]);
  assert_true(fires <= 5);
  assert_true(h->r[0].fetches <= 5);
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.committed, 0);
  recorder_free(&rec);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_locked_replica_prevotes_nil_for_another_value),
      cmocka_unit_test(test_locked_replica_prevotes_its_locked_value),
      cmocka_unit_test(test_unlock_on_proof_of_lock_of_a_later_round),
      cmocka_unit_test(test_proof_of_lock_as_recent_as_the_lock_unlocks),
      cmocka_unit_test(test_proposal_without_a_valid_proof_is_rejected),
      cmocka_unit_test(test_no_precommit_without_quorum_of_one_round),
      cmocka_unit_test(test_round_skip_needs_f_plus_one),
      cmocka_unit_test(test_leaving_a_round_precommits_nil_there),
      cmocka_unit_test(test_timeouts_grow_with_the_round),
      cmocka_unit_test(test_equivocation_is_counted_once),
      cmocka_unit_test(test_no_double_sign_across_restart),
      cmocka_unit_test(test_fetch_for_an_unproven_height_gives_up),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
