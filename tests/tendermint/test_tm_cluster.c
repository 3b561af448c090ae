/* Whole-cluster Tendermint tests on the hand-driven harness: heights commit in order with
 * certificates that verify from the keys alone (and nothing else does), an idle cluster stays
 * silent, a replica that missed heights catches up, and a restarted cluster goes on. */
#include "tests/tendermint/tm_util.h"

static void test_commits_in_order_with_certificates(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  for (int k = 0; k < 6; k++) {
    char op[32];
    snprintf(op, sizeof op, "put k%d v%d", k, k);
    h_submit(h, op);
    h_run(h, 1000000);
  }
  for (uint32_t i = 0; i < 4; i++) {
    assert_true(h->r[i].ncommit >= 1);
    for (uint32_t k = 0; k < h->nreq; k++) assert_true(h->r[i].executed[k]);
  }
  assert_true(h_agree(h));
  /* the cluster is idle now: whatever timer fires, nobody speaks (no empty heights) */
  h_run(h, 1000000);
  uint64_t before = h->r[0].ncommit, msgs = h->delivered_msgs;
  for (int round = 0; round < 3; round++)
    for (uint32_t i = 0; i < 4; i++)
      for (uint32_t t = 0; t <= TM_TIMER_BATCH; t++) {
        h_fire(h, i, t);
        h_run(h, 1000000);
      }
  assert_int_equal(h->r[0].ncommit, before);
  assert_int_equal(h->delivered_msgs, msgs);
  h_free(h);
}

static void test_certificate_checks(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  h_submit(h, "put a 1");
  h_run(h, 1000000);
  h_replica *r = &h->r[2];
  assert_true(r->ncommit >= 1);
  h_commit *c = &r->commits[1];
  const bft_engine_ops *ops = h->ops;
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 1, c->digest, c->cert, c->cert_len), 0);
  /* every flipped byte is rejected */
  uint8_t *cp = malloc(c->cert_len);
  for (uint32_t i = 0; i < c->cert_len; i++)
    for (int bit = 0; bit < 8; bit += 7) {
      memcpy(cp, c->cert, c->cert_len);
      cp[i] ^= (uint8_t)(1u << bit);
      assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, c->digest, cp, c->cert_len), 0);
    }
  /* truncated, extended */
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, c->digest, c->cert, c->cert_len - 1), 0);
  uint8_t *ext = calloc(1, c->cert_len + 1);
  memcpy(ext, c->cert, c->cert_len);
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, c->digest, ext, c->cert_len + 1), 0);
  /* wrong height, wrong digest, nil digest */
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 2, c->digest, c->cert, c->cert_len), 0);
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 0, c->digest, c->cert, c->cert_len), 0);
  uint8_t d[32];
  memcpy(d, c->digest, 32);
  d[5] ^= 0x10;
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, d, c->cert, c->cert_len), 0);
  memset(d, 0, 32);
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, d, c->cert, c->cert_len), 0);
  /* 2f+1 PREVOTEs are not a commit: same statements, the prevote tag */
  uint8_t body[48];
  put64(body, 1);
  memcpy(body + 8, c->cert, 8);
  memcpy(body + 16, c->digest, 32);
  memcpy(cp, c->cert, c->cert_len);
  for (uint32_t k = 0; k < 3; k++) {
    uint8_t st[TM_VOTE_LEN];
    memcpy(st, body, 48);
    uint32_t id = (uint32_t)cp[12 + k * 68] | (uint32_t)cp[13 + k * 68] << 8;
    put32(st + 48, id);
    h_sign(h, id, TM_TAG_PREVOTE, st, sizeof st, cp + 16 + k * 68);
  }
  assert_int_not_equal(ops->verify_certificate(&r->cfg, &r->env, 1, c->digest, cp, c->cert_len), 0);
  free(cp);
  free(ext);
  h_free(h);
}

/* Messages to replica 3 are lost while two heights commit; it then hears a message of a later
 * height and fetches, or finishes its height from a DECISION. */
static int drop_to_3(harness *h, h_msg *m, void *arg) {
  (void)h;
  return *(int *)arg && m->to == 3 ? H_DROP : H_DELIVER;
}

static void test_behind_replica_catches_up(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  int dropping = 1;
  h->filter = drop_to_3;
  h->filter_arg = &dropping;
  for (int k = 0; k < 3; k++) {
    char op[32];
    snprintf(op, sizeof op, "put x%d %d", k, k);
    h_submit(h, op);
    h_run(h, 1000000);
  }
  assert_true(h->r[0].ncommit >= 2);
  assert_int_equal(h->r[3].ncommit, 0);
  dropping = 0;
  /* replica 3 repeats what it said (its retransmit timer); the others answer */
  for (int k = 0; k < 5 && h->r[3].ncommit < h->r[0].ncommit; k++) {
    h_fire(h, 3, TM_TIMER_RETRANSMIT);
    h_fire(h, 3, TM_TIMER_PROPOSE);
    h_run(h, 1000000);
  }
  h_submit(h, "put last 1");
  h_run(h, 1000000);
  assert_int_equal(h->r[3].ncommit, h->r[0].ncommit);
  assert_true(h_agree(h));
  h_free(h);
}

/* Precommits to replica 3 are lost: the others decide; replica 3, which holds the value, is
 * stuck in its round. When it repeats its precommit, the others answer with their DECISION
 * (the commit certificate) and it decides without fetching anything. */
static int drop_precommits_to_3(harness *h, h_msg *m, void *arg) {
  (void)h;
  return *(int *)arg && m->to == 3 && m->kind == TM_MSG_PRECOMMIT ? H_DROP : H_DELIVER;
}

static void test_late_replica_finishes_from_a_decision(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  int dropping = 1;
  h->filter = drop_precommits_to_3;
  h->filter_arg = &dropping;
  h_submit(h, "put late 1");
  h_run(h, 1000000);
  assert_int_equal(h->r[0].ncommit, 1);
  assert_int_equal(h->r[3].ncommit, 0);
  dropping = 0;
  assert_int_equal(h_fire(h, 3, TM_TIMER_RETRANSMIT), 0);
  h_run(h, 1000000);
  assert_int_equal(h->r[3].ncommit, 1);
  assert_int_equal(h->r[3].fetches, 0);
  assert_true(h_agree(h));
  h_free(h);
}

/* 2f+1 nil precommits: nothing can be decided in the round, the next starts at once. */
static void test_nil_precommit_quorum_starts_next_round(void **state) {
  (void)state;
  recorder rec;
  harness *h = isolated(&rec);
  for (uint32_t i = 1; i <= 3; i++) assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, i, 1, 0, NULL), 0);
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.view, 1);
  assert_int_equal(st.committed, 0);
  assert_int_equal(st.view_changes, 1); /* a round given up */
  recorder_free(&rec);
  h_free(h);
}

/* Replica 1 crashed: every n heights it is the proposer of round 0 again. The first time it
 * costs the correct replicas a full timeoutPropose (T); after that, until it proposes again,
 * its turns get T/4, T/8, T/16, then T/32 from the fourth miss on (liveness only; the rounds
 * still change the same way). Any proposal of its clears the count (tm_safety.c). */
static void commit_one(harness *h, uint32_t down, uint32_t *propose_delay) {
  uint32_t q = h_submit(h, "put k v");
  h_run(h, 1000000);
  *propose_delay = 0;
  for (int round = 0; round < 20; round++) {
    int all = 1;
    for (uint32_t i = 0; i < h->n; i++) all &= i == down || h->r[i].executed[q];
    if (all) return;
    for (uint32_t t = TM_TIMER_PROPOSE; t <= TM_TIMER_PRECOMMIT; t++)
      for (uint32_t i = 0; i < h->n; i++)
        if (i != down && h->r[i].timer_armed[t]) {
          if (t == TM_TIMER_PROPOSE && !*propose_delay) *propose_delay = (uint32_t)h->r[i].timer_delay[t];
          h_fire(h, i, t);
          h_run(h, 1000000);
        }
  }
  fail_msg("request %u never committed", q);
}

static void test_crashed_proposer_costs_a_full_timeout_once(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  uint32_t T = h->r[0].cfg.timeout_ms, delay[26];
  h->r[1].down = 1; /* proposer of (1, 0), (5, 0), (9, 0), ... */
  for (uint32_t height = 1; height <= 25; height++) commit_one(h, 1, &delay[height]);
  assert_int_equal(delay[1], T);      /* its first turn: the paper's timeoutPropose(0) */
  assert_int_equal(delay[5], T / 4);  /* its next turns at round 0: shorter and shorter */
  assert_int_equal(delay[9], T / 8);
  assert_int_equal(delay[13], T / 16);
  assert_int_equal(delay[17], T / 32);
  assert_int_equal(delay[21], T / 32); /* and no shorter */
  for (uint32_t height = 2; height <= 25; height++)
    if (height % 4 != 1) assert_int_equal(delay[height], 0); /* live proposers */
  assert_true(h_agree(h));
  h_free(h);
}

/* Replica 1, the proposer of (1, 0), equivocates: v to replicas 0 and 2, w to replica 3, and
 * prevotes both (v to 0 and 2, then both v and w to 3). The correct replicas decide one value
 * at height 1, the same everywhere, and replica 3 keeps the evidence. */
static int silence_1(harness *h, h_msg *m, void *arg) {
  (void)h;
  (void)arg;
  return m->from == 1 ? H_DROP : H_DELIVER;
}

static void test_equivocating_proposer_cannot_split_the_correct_replicas(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  h->filter = silence_1;
  uint8_t v[1024], w[1024], dv[32], dw[32];
  uint32_t vlen = make_batch(h, 100, "value-v", v, sizeof v, dv);
  uint32_t wlen = make_batch(h, 101, "value-w", w, sizeof w, dw);
  assert_int_equal(deliver_proposal(h, 0, 1, 1, 0, TM_NIL_ROUND, NULL, 0, v, vlen), 0);
  assert_int_equal(deliver_proposal(h, 2, 1, 1, 0, TM_NIL_ROUND, NULL, 0, v, vlen), 0);
  assert_int_equal(deliver_proposal(h, 3, 1, 1, 0, TM_NIL_ROUND, NULL, 0, w, wlen), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 1, 1, 0, dv), 0);
  assert_int_equal(deliver_vote(h, 2, TM_MSG_PREVOTE, 1, 1, 0, dv), 0);
  assert_int_equal(deliver_vote(h, 3, TM_MSG_PREVOTE, 1, 1, 0, dw), 0);
  assert_int_equal(deliver_vote(h, 3, TM_MSG_PREVOTE, 1, 1, 0, dv), 0); /* the conflicting one */
  bft_engine_status st;
  h_status(h, 3, &st);
  assert_int_equal(st.equivocations, 1);
  h_run(h, 1000000);
  /* Whatever is left undecided moves on by timeouts (replica 1 stays silent). */
  for (int k = 0; k < 20 && (h->r[0].ncommit < 1 || h->r[2].ncommit < 1 || h->r[3].ncommit < 1); k++) {
    for (uint32_t i = 0; i < 4; i++) {
      if (i == 1) continue;
      for (uint32_t t = TM_TIMER_PROPOSE; t <= TM_TIMER_RETRANSMIT; t++) h_fire(h, i, t);
    }
    h_run(h, 1000000);
  }
  for (uint32_t i = 0; i < 4; i++)
    if (i != 1) assert_true(h->r[i].ncommit >= 1);
  assert_true(h_agree(h)); /* one value at height 1 at every correct replica */
  h_free(h);
}

/* A faulty proposer (replica 1 at height 1, round 0) sends its proposal to replica 3 only.
 * Replicas 0 and 2 see f+1 prevotes for its value, ask those voters for the proposal and take
 * the relayed copy (the proposer's own signature checked): the height commits everywhere with
 * no timer fired at all, where before they waited out timeoutPropose. */
static uint32_t relay_seen[8];
static int proposal_to_3_only(harness *h, h_msg *m, void *arg) {
  (void)h;
  (void)arg;
  if (m->kind < 8) relay_seen[m->kind]++;
  return m->kind == TM_MSG_PROPOSAL && m->from == 1 && m->to != 3 ? H_DROP : H_DELIVER;
}

static void test_withheld_proposal_is_relayed_by_its_voters(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  memset(relay_seen, 0, sizeof relay_seen);
  h->filter = proposal_to_3_only;
  uint32_t q = h_submit(h, "put k v");
  h_run(h, 1000000);
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(h->r[i].ncommit, 1);
    assert_true(h->r[i].executed[q]);
  }
  assert_true(h_agree(h));
  assert_true(relay_seen[TM_MSG_GET_PROPOSAL] >= 2); /* 0 and 2 asked */
  assert_true(relay_seen[TM_MSG_RELAY] >= 2);        /* and got it */
  h->filter = NULL;
  h_free(h);
}

/* The checks on both sides, replica 0 isolated (proposer of (1, 0) is replica 1). */
static uint8_t *make_relay(harness *h, uint32_t sender, uint32_t proposer, const uint8_t *prop, uint32_t plen,
                           uint32_t *out_len) {
  uint8_t *p = malloc(8 + plen);
  put32(p, proposer);
  put32(p + 4, plen);
  memcpy(p + 8, prop, plen);
  uint8_t *b = h_seal(h, sender, TM_MSG_RELAY, p, 8 + plen, out_len);
  free(p);
  return b;
}

static uint32_t count_sent(recorder *rec, uint32_t from, uint32_t to, uint8_t kind) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < rec->n; i++) k += rec->m[i].from == from && rec->m[i].to == to && rec->m[i].kind == kind;
  return k;
}

static void test_relay_is_asked_checked_and_answered_once(void **state) {
  (void)state;
  recorder rec;
  harness *h = isolated(&rec);
  uint8_t v[1024], dv[32], d[32];
  uint32_t vlen = make_batch(h, 100, "value-v", v, sizeof v, dv);
  /* Each replica that prevotes a value is asked for its proposal, once per round; a nil
   * prevote asks nothing. */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 1, 1, 0, NULL), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dv), 0);
  flush(h);
  assert_int_equal(count_sent(&rec, 0, 2, TM_MSG_GET_PROPOSAL), 1);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 3, 1, 0, dv), 0);
  flush(h);
  assert_int_equal(count_sent(&rec, 0, 2, TM_MSG_GET_PROPOSAL), 1);
  assert_int_equal(count_sent(&rec, 0, 3, TM_MSG_GET_PROPOSAL), 1);
  assert_int_equal(count_sent(&rec, 0, 1, TM_MSG_GET_PROPOSAL), 0);
  assert_false(said(&rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  uint32_t plen, rlen, olen;
  uint8_t w[1024], dw[32];
  uint32_t wlen = make_batch(h, 101, "value-w", w, sizeof w, dw);
  uint8_t *other = make_proposal(h, 1, 1, 0, TM_NIL_ROUND, NULL, 0, w, wlen, &olen); /* genuine, not v */
  uint8_t *genuine = make_proposal(h, 1, 1, 0, TM_NIL_ROUND, NULL, 0, v, vlen, &plen);
  uint8_t *forged = make_proposal(h, 2, 1, 0, TM_NIL_ROUND, NULL, 0, v, vlen, &plen); /* signed by 2 */
  /* Refused: the proposer's signature forged; from a replica not asked; a non-proposer named. */
  uint8_t *r = make_relay(h, 2, 1, forged, plen, &rlen);
  assert_int_equal(h_deliver(h, 0, 2, TM_MSG_RELAY, r, rlen), BFT_E_BAD_SIG);
  free(r);
  r = make_relay(h, 1, 1, genuine, plen, &rlen);
  assert_int_equal(h_deliver(h, 0, 1, TM_MSG_RELAY, r, rlen), BFT_E_STATE);
  free(r);
  r = make_relay(h, 2, 2, forged, plen, &rlen);
  assert_int_equal(h_deliver(h, 0, 2, TM_MSG_RELAY, r, rlen), BFT_E_STALE);
  free(r);
  r = make_relay(h, 2, 1, other, olen, &rlen); /* the proposer's, but not what 2 prevoted */
  assert_int_equal(h_deliver(h, 0, 2, TM_MSG_RELAY, r, rlen), BFT_E_STATE);
  free(r);
  flush(h);
  assert_false(said(&rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  /* The genuine one, relayed by an asked voter: taken as replica 1's proposal, prevoted. */
  r = make_relay(h, 3, 1, genuine, plen, &rlen);
  assert_int_equal(h_deliver(h, 0, 3, TM_MSG_RELAY, r, rlen), 0);
  free(r);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  assert_memory_equal(d, dv, 32);
  /* Replica 0 now answers a GET for it, once per asker and round. */
  uint8_t get[48];
  put64(get, 1);
  put64(get + 8, 0);
  memcpy(get + 16, dv, 32);
  uint32_t glen;
  uint8_t *g = h_seal(h, 2, TM_MSG_GET_PROPOSAL, get, sizeof get, &glen);
  assert_int_equal(h_deliver(h, 0, 2, TM_MSG_GET_PROPOSAL, g, glen), 0);
  assert_int_equal(h_deliver(h, 0, 2, TM_MSG_GET_PROPOSAL, g, glen), BFT_E_DUPLICATE);
  free(g);
  flush(h);
  assert_int_equal(count_sent(&rec, 0, 2, TM_MSG_RELAY), 1);
  memset(get + 16, 0xab, 32); /* a value it does not hold */
  g = h_seal(h, 3, TM_MSG_GET_PROPOSAL, get, sizeof get, &glen);
  assert_int_equal(h_deliver(h, 0, 3, TM_MSG_GET_PROPOSAL, g, glen), BFT_E_STATE);
  free(g);
  free(genuine);
  free(forged);
  free(other);
  recorder_free(&rec);
  h_free(h);
}

/* Split votes: once the votes held leave no value able to reach 2f+1, replica 0 does at once
 * what the timeout would do later: precommit nil, then start the next round. */
static void test_split_votes_move_on_without_timeouts(void **state) {
  (void)state;
  recorder rec;
  harness *h = isolated(&rec);
  uint8_t v[1024], w[1024], dv[32], dw[32], d[32];
  uint32_t vlen = make_batch(h, 100, "value-v", v, sizeof v, dv);
  (void)make_batch(h, 101, "value-w", w, sizeof w, dw);
  assert_int_equal(deliver_proposal(h, 0, 1, 1, 0, TM_NIL_ROUND, NULL, 0, v, vlen), 0);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PREVOTE, 1, 0, d));
  assert_memory_equal(d, dv, 32);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 1, 0, dw), 0);
  flush(h);
  assert_false(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d)); /* v could still get 1 and 3 */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 3, 1, 0, NULL), 0);
  flush(h);
  assert_true(said(&rec, 0, TM_MSG_PRECOMMIT, 1, 0, d)); /* v: 1 + 1 unheard < 3 */
  assert_true(is_nil(d));
  bft_engine_status st;
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 1, 0, dw), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.view, 0); /* nil 1, w 1: w could still get 1 and 3 */
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 3, 1, 0, dv), 0);
  h_status(h, 0, &st);
  assert_int_equal(st.view, 1); /* nil, w, v: no value can reach 3 */
  assert_int_equal(st.view_changes, 1);
  assert_int_equal(st.committed, 0);
  recorder_free(&rec);
  h_free(h);
}

/* A replica still at height 1 that hears from one at height 2 asks it for the decision (once
 * per replica and height); a replica past that height answers such an ask with a DECISION,
 * once per height and round. */
static void test_behind_replica_asks_for_the_decision(void **state) {
  (void)state;
  recorder rec;
  harness *h = isolated(&rec);
  uint8_t dv[32];
  memset(dv, 0x5a, sizeof dv);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PREVOTE, 2, 2, 0, dv), 0);
  assert_int_equal(deliver_vote(h, 0, TM_MSG_PRECOMMIT, 2, 2, 0, dv), 0);
  flush(h);
  assert_int_equal(count_sent(&rec, 0, 2, TM_MSG_GET_PROPOSAL), 1);
  assert_int_equal(count_sent(&rec, 0, 3, TM_MSG_GET_PROPOSAL), 0);
  recorder_free(&rec);
  h_free(h);

  h = h_new(4, 0, 0, 0);
  h_submit(h, "put k v");
  h_run(h, 1000000);
  assert_int_equal(h->r[1].ncommit, 1);
  memset(&rec, 0, sizeof rec);
  rec.drop_all = 1;
  h->filter = record_filter;
  h->filter_arg = &rec;
  uint8_t get[48] = {0};
  put64(get, 1);
  uint32_t glen;
  uint8_t *g = h_seal(h, 3, TM_MSG_GET_PROPOSAL, get, sizeof get, &glen);
  assert_int_equal(h_deliver(h, 1, 3, TM_MSG_GET_PROPOSAL, g, glen), 0);
  assert_int_equal(h_deliver(h, 1, 3, TM_MSG_GET_PROPOSAL, g, glen), BFT_E_DUPLICATE);
  free(g);
  flush(h);
  assert_int_equal(count_sent(&rec, 1, 3, TM_MSG_DECISION), 1);
  recorder_free(&rec);
  h->filter = NULL;
  h_free(h);
}

static void test_restart_all_and_continue(void **state) {
  (void)state;
  harness *h = h_new(4, 0, 0, 0);
  h_submit(h, "put a 1");
  h_run(h, 1000000);
  for (uint32_t i = 0; i < 4; i++) h_restart(h, i, UINT64_MAX);
  h_run(h, 1000000);
  h_submit(h, "put b 2");
  h_run(h, 1000000);
  for (uint32_t i = 0; i < 4; i++) assert_true(h->r[i].executed[1]);
  assert_true(h_agree(h));
  /* compaction: the compact records restore the same engine */
  bft_actions_reset(&h->acts);
  assert_int_equal(h->ops->compact(h->r[1].st, &h->acts), 0);
  for (uint32_t a = 0; a < h->acts.count; a++) assert_int_equal(h->acts.items[a].type, BFT_ACT_PERSIST);
  bft_actions_reset(&h->acts);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commits_in_order_with_certificates),
      cmocka_unit_test(test_certificate_checks),
      cmocka_unit_test(test_behind_replica_catches_up),
      cmocka_unit_test(test_late_replica_finishes_from_a_decision),
      cmocka_unit_test(test_nil_precommit_quorum_starts_next_round),
      cmocka_unit_test(test_crashed_proposer_costs_a_full_timeout_once),
      cmocka_unit_test(test_equivocating_proposer_cannot_split_the_correct_replicas),
      cmocka_unit_test(test_withheld_proposal_is_relayed_by_its_voters),
      cmocka_unit_test(test_relay_is_asked_checked_and_answered_once),
      cmocka_unit_test(test_split_votes_move_on_without_timeouts),
      cmocka_unit_test(test_behind_replica_asks_for_the_decision),
      cmocka_unit_test(test_restart_all_and_continue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
