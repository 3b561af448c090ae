/* Tendermint liveness: the proposer of a round and what it proposes (StartRound, lines 11-21),
 * the three timeouts that grow linearly with the round (lines 57-67), retransmission in place
 * of the paper's gossip, watching client requests so that idle heights do not spin, and
 * catch-up (answers to late messages, FETCH). Whether anything may be signed is decided in
 * tm_safety.c; nothing here can break agreement.
 *
 * Empty heights: the proposer pulls a batch from the driver's pool; with nothing there it
 * waits (pulling again on the next request) rather than propose an empty batch, so an idle
 * cluster commits nothing and sends nothing. Backups arm timeoutPropose only once there is
 * work: a client request they watch, or any message of this height from another replica.
 * When others are waiting (such a message arrives) an idle proposer proposes the empty batch
 * after a short wait (TM_TIMER_BATCH), so the round closes without a timeout; its own pending
 * requests alone never make it propose an empty batch (that would not help them). */
#include "protocols/tendermint/tm_internal.h"

uint32_t tm_proposer(const tm_state *s, uint64_t height, uint64_t round) {
  uint32_t n = s->cfg.n;
  return (uint32_t)((height % n + round % n) % n);
}

/* timeoutPropose(r) = T + r*T/2, timeoutPrevote(r) = timeoutPrecommit(r) = T/2 + r*T/2, with
 * T = cfg.timeout_ms: linear in the round (the paper's assumption for eventual synchrony),
 * capped at round TM_MAX_TIMEOUT_ROUND.
 * Beyond the paper, liveness only: a proposer whose last m turns here (m >= 1) each ended in
 * timeoutPropose without its proposal (crashed, most likely) gets T / 2^(m+1) instead of T as
 * the base, T/4 after one missed turn down to T/32 after TM_MISS_MAX, until a proposal of its
 * arrives. With a crashed replica the rotation (h + r) mod n brings it back as round-0
 * proposer every n heights; each of its turns cost a whole T, then T/4 (throughput settled at
 * about half after a proposer was killed), now soon T/32. A correct but slow proposer loses at
 * most one round to this: any proposal of its, even late, clears the count, and the round's
 * increments (r*T/2) still grow towards any bound on the delay. */
static uint64_t timeout_ms(const tm_state *s, uint32_t timer, uint64_t round) {
  uint64_t T = s->cfg.timeout_ms, half = T / 2 ? T / 2 : 1;
  uint64_t k = round < TM_MAX_TIMEOUT_ROUND ? round : TM_MAX_TIMEOUT_ROUND;
  uint32_t m = s->missed[tm_proposer(s, s->height, round)];
  uint64_t propose = m && (T >> (m + 1)) ? T >> (m + 1) : T;
  return (timer == TM_TIMER_PROPOSE ? propose : half) + k * half;
}

int tm_schedule(tm_state *s, uint32_t timer, bft_actions *out) {
  /* The tag is the epoch of (height, round): a fire from another round is stale (lines 58,
   * 62, 66: "if height = h_p and round = round_p"). */
  return bft_act_timer_set(out, timer, s->epoch, timeout_ms(s, timer, s->round));
}

static int arm_propose_timeout(tm_state *s, bft_actions *out) {
  if (s->step != TM_STEP_PROPOSE || s->tp_epoch == s->epoch) return 0;
  s->tp_epoch = s->epoch;
  return tm_schedule(s, TM_TIMER_PROPOSE, out); /* line 21 */
}

static int proposed_here(tm_state *s) {
  tm_slot *sl = tm_slot_find(s, s->height, s->round);
  return (sl && sl->has_prop) ||
         (s->ls_valid && s->ls_height == s->height && s->ls_round == s->round); /* signed here already */
}

/* An idle proposer others wait for: give the pool a moment, then propose the empty batch. */
static int arm_batch_wait(tm_state *s, bft_actions *out) {
  if (!s->pulled || s->bt_epoch == s->epoch || s->step != TM_STEP_PROPOSE) return 0;
  s->bt_epoch = s->epoch;
  uint64_t d = s->cfg.timeout_ms / 20 ? s->cfg.timeout_ms / 20 : 1;
  return bft_act_timer_set(out, TM_TIMER_BATCH, s->epoch, d);
}

int tm_became_active(tm_state *s, bft_actions *out) {
  s->active = 1;
  if (s->step != TM_STEP_PROPOSE) return 0;
  TM_TRY(arm_propose_timeout(s, out));
  return arm_batch_wait(s, out);
}

/* StartRound(round), lines 11-21, for a (height, round) above the current one. */
static int begin_round(tm_state *s, uint64_t round, bft_actions *out) {
  s->round = round;          /* line 12 */
  s->step = TM_STEP_PROPOSE; /* line 13 */
  s->epoch++;
  s->pulled = 0;
  if (tm_proposer(s, s->height, round) == s->cfg.self && !proposed_here(s)) { /* line 14 */
    if (s->valid_round != TM_NIL_ROUND)                                       /* lines 15-16 */
      return tm_propose(s, s->valid_val, s->valid_len, s->valid_round, &s->valid_pol, out);
    /* line 18, getValue(): the driver's pool answers a pull with BFT_EV_BATCH (tm_on_batch).
     * This step changed the pull epoch, so the pull goes out in a step of its own. */
    s->pulled = 1;
    TM_TRY(bft_act_timer_set(out, TM_TIMER_PULL, s->epoch, 0));
    if (s->active) TM_TRY(arm_batch_wait(s, out));
  }
  if (s->active || s->pend.n) TM_TRY(arm_propose_timeout(s, out)); /* lines 20-21 */
  return 0;
}

static const uint8_t NIL_ID[BFT_DIGEST_LEN];

int tm_start_round(tm_state *s, uint64_t round, bft_actions *out) {
  BFT_ASSERT(round > s->round); /* monotonic in (height, round) */
  /* Beyond the paper, liveness only: a replica that leaves a round before it precommitted
   * there (2f+1 precommits of others moved it, line 47, or f+1 replicas of a later round,
   * line 55) precommits nil in it first. The paper's gossip would hand the replicas still in
   * that round the very votes that moved us; we do not relay others' votes, so without ours
   * they could wait there forever for a 2f+1 that only a faulty replica could complete (seen
   * with a withholding replica that decided and moved on). A nil precommit can neither lock
   * nor decide anything, and the double-sign guard sees it as the last step of the round. */
  if (s->step < TM_STEP_PRECOMMIT) {
    s->step = TM_STEP_PRECOMMIT;
    TM_TRY(tm_cast_vote(s, TM_MSG_PRECOMMIT, NIL_ID, out));
  }
  return begin_round(s, round, out);
}

static void expire_pending(tm_state *s) {
  for (uint32_t i = 0; i < s->pend.n;) {
    if (s->pend.tag[i] + TM_PENDING_HEIGHTS < s->height) bft_pending_remove_at(&s->pend, i);
    else i++;
  }
}

int tm_enter_height(tm_state *s, bft_actions *out) {
  BFT_ASSERT(s->committed + 1 > s->height);
  s->height = s->committed + 1; /* line 52 */
  /* line 53: reset lockedRound, lockedValue, validRound, validValue; empty the message log
   * (except what we hold of the new height already) */
  s->locked_round = TM_NIL_ROUND;
  s->valid_round = TM_NIL_ROUND;
  s->valid_len = 0;
  if (s->rec_height == s->height && s->rec_locked_round != TM_NIL_ROUND) {
    /* we locked here before a restart that left our ledger behind our records */
    s->locked_round = s->rec_locked_round;
    memcpy(s->locked_digest, s->rec_locked_digest, BFT_DIGEST_LEN);
  }
  s->dec_pending = 0;
  s->active = 0;
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    tm_slot *sl = &s->slots[i];
    if (sl->used && sl->height < s->height) sl->used = 0;
  }
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (i != s->cfg.self && s->seen_h[i] >= s->height) s->active = 1;
  expire_pending(s);
  if (s->fetching && s->committed >= s->fetch_target) {
    s->fetching = 0;
    s->fetch_mask = 0;
    s->fetch_tag++;
    TM_TRY(bft_act_timer_cancel(out, TM_TIMER_FETCH));
  }
  s->round = 0;
  return begin_round(s, 0, out); /* line 54 */
}

/* ---- proposing ---------------------------------------------------------------------------- */

int tm_on_batch(tm_state *s, const uint8_t *batch, uint32_t len, bft_actions *out) {
  if (!s->pulled || s->step != TM_STEP_PROPOSE || s->valid_round != TM_NIL_ROUND ||
      tm_proposer(s, s->height, s->round) != s->cfg.self || proposed_here(s))
    return tm_reject(s, BFT_E_STATE);
  if (len > BFT_MAX_BATCH_BYTES) return tm_reject(s, BFT_E_TOO_LARGE);
  TM_TRY(tm_propose(s, batch, len, TM_NIL_ROUND, NULL, out));
  return tm_check_rules(s, out);
}

int tm_on_request(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  /* A full set only loses precision: timeouts still run for the ones we hold. */
  (void)bft_pending_add(&s->pend, digest, s->height);
  if (s->pulled && s->step == TM_STEP_PROPOSE) TM_TRY(bft_act_pull(out, s->cfg.batch_max)); /* now it has one */
  return arm_propose_timeout(s, out);
}

void tm_requests_done(tm_state *s, const uint8_t *batch, uint32_t len) {
  bft_pending_forget_batch(&s->pend, batch, len);
}

/* ---- retransmission and catch-up --------------------------------------------------------- */

int tm_arm_retransmit(tm_state *s, bft_actions *out) {
  if (s->rt_armed) return 0;
  s->rt_armed = 1;
  s->rt_tag++;
  return bft_act_timer_set(out, TM_TIMER_RETRANSMIT, s->rt_tag, s->cfg.timeout_ms);
}

static int repeat_vote(tm_state *s, uint8_t kind, const tm_slot *sl, bft_actions *out) {
  const bft_vote *v = &(kind == TM_MSG_PREVOTE ? &sl->prevotes : &sl->precommits)->v[s->cfg.self];
  if (!v->valid) return 0;
  uint8_t body[TM_STMT_BODY], msg[BFT_STMT_MAX + BFT_SIG_LEN]; /* stmt helpers take BFT_STMT_MAX */
  tm_stmt_body(body, v->height, v->round, v->digest);
  int len = bft_stmt_make(msg, body, sizeof body, s->cfg.self);
  BFT_ASSERT(len == TM_VOTE_LEN);
  memcpy(msg + TM_VOTE_LEN, v->sig, BFT_SIG_LEN);
  TM_TRY(bft_act_broadcast(out, kind, msg, TM_VOTE_LEN + BFT_SIG_LEN));
  return 1;
}

/* Messages are sent once and the network loses some; the paper assumes gossip that delivers
 * them eventually. A replica that has spoken at its height says it all again every T: its
 * proposal of the current round and its votes of every round it still keeps (receivers drop
 * duplicates; replicas past this height answer with their decision). Votes of older rounds
 * matter: a replica left behind in round r needs 2f+1 votes of round r (or f+1 replicas
 * beyond it) to time out of it, and those that moved on no longer speak in r. One that has
 * heard from replicas at a later height fetches what it missed. */
static int retransmit(tm_state *s, bft_actions *out) {
  s->rt_armed = 0;
  uint64_t top = 0, mask = 0;
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (i != s->cfg.self && s->seen_h[i] > s->height) {
      mask |= 1ull << i;
      if (s->seen_h[i] - 1 > top) top = s->seen_h[i] - 1;
    }
  if (top >= s->height) tm_need_fetch(s, top, mask, out);
  if (s->dec_pending) tm_need_fetch(s, s->height, 0, out); /* decided; the bytes are missing */
  int again = s->dec_pending;
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    tm_slot *sl = &s->slots[i];
    if (!sl->used || sl->height != s->height || sl->round > s->round) continue;
    if (sl->round == s->round && sl->has_prop && tm_proposer(s, s->height, s->round) == s->cfg.self) {
      TM_TRY(bft_act_broadcast(out, TM_MSG_PROPOSAL, sl->prop_msg, sl->prop_len));
      again = 1;
    }
    int rc = repeat_vote(s, TM_MSG_PREVOTE, sl, out);
    TM_TRY(rc);
    again |= rc;
    rc = repeat_vote(s, TM_MSG_PRECOMMIT, sl, out);
    TM_TRY(rc);
    again |= rc;
  }
  return again || top >= s->height ? tm_arm_retransmit(s, out) : 0;
}

/* Votes of the decided round that arrive after the decision are the normal tail of every
 * height (the sender decides from the same precommits we did): they get no answer. A message
 * of another round, or one repeated (its sender's retransmit timer: it is stuck), does; so
 * does a precommit we held already when we decided, and a GET_PROPOSAL (the sender saw others
 * at the next height and asks for the decision; answered once per height and round). */
int tm_answer_late(tm_state *s, uint32_t from, uint8_t kind, uint64_t height, uint64_t round, bft_actions *out) {
  if (!s->last_valid) return tm_reject(s, BFT_E_STALE);
  if (s->late_h[from] != height || s->late_r[from] != round) {
    s->late_h[from] = height;
    s->late_r[from] = round;
    s->late_kinds[from] = 0;
  }
  /* A precommit we already held when we decided comes again: its sender is repeating it. */
  int repeated = ((s->late_kinds[from] >> kind) & 1) ||
                 (kind == TM_MSG_PRECOMMIT && height == s->last_h && ((s->last_pc_mask >> from) & 1));
  s->late_kinds[from] |= (uint8_t)(1u << kind);
  if (kind == TM_MSG_GET_PROPOSAL) {
    if (repeated) return tm_reject(s, BFT_E_DUPLICATE);
  } else if (height == s->last_h && round == s->last_r && !repeated) {
    return 0; /* noted, no answer */
  }
  wire_writer w;
  uint8_t b[8 + BFT_DIGEST_LEN + TM_CERT_MAX + BFT_SIG_LEN];
  wire_writer_init(&w, b, sizeof b);
  wire_put_u64(&w, s->last_h);
  wire_put_fixed(&w, s->last_digest, BFT_DIGEST_LEN);
  wire_put_fixed(&w, s->last_cert, s->last_cert_len);
  if (w.err) return w.err;
  return tm_emit(s, TM_MSG_DECISION, b, (uint32_t)w.len, sizeof b, from, out);
}

static int fetch_kick(tm_state *s, bft_actions *out) {
  uint64_t mask = s->fetch_mask;
  if (!mask)
    for (uint32_t i = 0; i < s->cfg.n; i++)
      if (i != s->cfg.self) mask |= 1ull << i;
  /* Round robin over the replicas that showed they have it: a faulty one only delays us. */
  uint32_t to = s->cfg.self;
  for (uint32_t k = 0; k < s->cfg.n; k++) {
    uint32_t i = (s->fetch_rr + k) % s->cfg.n;
    if (i != s->cfg.self && (mask & (1ull << i))) {
      to = i;
      break;
    }
  }
  BFT_ASSERT(to != s->cfg.self);
  s->fetch_rr = (to + 1) % s->cfg.n;
  s->fetch_tag++;
  s->fetch_from = s->committed;
  TM_TRY(bft_act_fetch(out, to, s->committed + 1));
  return bft_act_timer_set(out, TM_TIMER_FETCH, s->fetch_tag, s->cfg.timeout_ms);
}

void tm_need_fetch(tm_state *s, uint64_t target, uint64_t mask, bft_actions *out) {
  if (target <= s->committed) return;
  mask &= ~(1ull << s->cfg.self);
  if (target > s->fetch_target) s->fetch_target = target;
  s->fetch_mask |= mask;
  if (s->fetching || !s->started) return; /* the fetch timer retries; one fetch at a time */
  s->fetching = 1;
  s->fetch_tries = 0;
  /* Dropped only when the action list is full, which the driver treats as a broken
   * invariant anyway; the fetch timer would retry otherwise. */
  (void)fetch_kick(s, out);
}

int tm_on_sync(tm_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
               uint32_t cert_len, bft_actions *out) {
  if (seq != s->committed + 1) return tm_reject(s, BFT_E_STALE);
  if (len > BFT_MAX_BATCH_BYTES || cert_len > TM_CERT_MAX) return tm_reject(s, BFT_E_TOO_LARGE);
  TM_TRY(tm_decide(s, batch, len, cert, cert_len, out));
  return tm_check_rules(s, out);
}

/* ---- timers ------------------------------------------------------------------------------- */

int tm_on_timer(tm_state *s, uint32_t id, uint64_t tag, bft_actions *out) {
  switch (id) {
    case TM_TIMER_PROPOSE: /* OnTimeoutPropose, lines 57-60 */
      if (tag != s->epoch || s->step != TM_STEP_PROPOSE) return 0;
      {
        tm_slot *sl = tm_slot_find(s, s->height, s->round);
        uint32_t p = tm_proposer(s, s->height, s->round);
        if ((!sl || !sl->has_prop) && s->missed[p] < TM_MISS_MAX) s->missed[p]++;
      }
      s->step = TM_STEP_PREVOTE;
      TM_TRY(tm_cast_vote(s, TM_MSG_PREVOTE, NIL_ID, out));
      return tm_check_rules(s, out);
    case TM_TIMER_PREVOTE: /* OnTimeoutPrevote, lines 61-64 */
      if (tag != s->epoch || s->step != TM_STEP_PREVOTE) return 0;
      s->step = TM_STEP_PRECOMMIT;
      TM_TRY(tm_cast_vote(s, TM_MSG_PRECOMMIT, NIL_ID, out));
      return tm_check_rules(s, out);
    case TM_TIMER_PRECOMMIT: /* OnTimeoutPrecommit, lines 65-67 */
      if (tag != s->epoch) return 0;
      s->timeouts++;
      TM_TRY(tm_start_round(s, s->round + 1, out));
      return tm_check_rules(s, out);
    case TM_TIMER_BATCH: {
      if (tag != s->epoch || !s->pulled || s->step != TM_STEP_PROPOSE || proposed_here(s)) return 0;
      uint8_t empty[4];
      uint32_t n = bft_batch_encoded_empty(empty);
      TM_TRY(tm_propose(s, empty, n, TM_NIL_ROUND, NULL, out));
      return tm_check_rules(s, out);
    }
    case TM_TIMER_PULL:
      if (tag != s->epoch || !s->pulled || s->step != TM_STEP_PROPOSE || proposed_here(s)) return 0;
      return bft_act_pull(out, s->cfg.batch_max);
    case TM_TIMER_RETRANSMIT:
      if (tag != s->rt_tag || !s->rt_armed) return 0;
      return retransmit(s, out);
    case TM_TIMER_FETCH:
      if (tag != s->fetch_tag || !s->fetching) return 0;
      if (s->committed >= s->fetch_target) {
        s->fetching = 0;
        s->fetch_mask = 0;
        return 0;
      }
      /* Every replica asked in turn and none had it: the height we were told of may not
       * exist (one replica's word). Stop; new evidence (a DECISION, a later height heard of
       * again on the retransmit timer) starts a new fetch. */
      s->fetch_tries = s->committed > s->fetch_from ? 0 : s->fetch_tries + 1;
      if (s->fetch_tries >= s->cfg.n) {
        s->fetching = 0;
        s->fetch_mask = 0;
        s->fetch_target = s->committed;
        return 0;
      }
      s->fetch_mask = 0; /* the chosen ones did not answer: try everyone in turn */
      return fetch_kick(s, out);
    default:
      return tm_reject(s, BFT_E_INVAL);
  }
}
