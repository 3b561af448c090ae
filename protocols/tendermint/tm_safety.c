/* Tendermint safety: Algorithm 1's upon rules (lines 22-56) over the messages of a height,
 * the double-sign guard, locks, valid values, decisions and equivocation evidence. Nothing
 * here depends on timing; timers, the proposer and catch-up are in tm_rounds.c. Handlers check
 * everything before they change anything. */
#include <stddef.h>

#include "protocols/tendermint/tm_internal.h"

/* ---- slots -------------------------------------------------------------------------------- */

/* Is (height, round) inside the windows of kept messages (see TM_PAST in tm_internal.h)? */
static int acceptable(const tm_state *s, uint64_t height, uint64_t round) {
  if (height == s->height) {
    uint64_t lo = s->round > TM_PAST ? s->round - TM_PAST : 0;
    return round >= lo && (round <= s->round || round - s->round <= TM_FUTURE);
  }
  if (height == s->height + 1) return round < TM_NEXT;
  return 0;
}

tm_slot *tm_slot_find(tm_state *s, uint64_t height, uint64_t round) {
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    tm_slot *sl = &s->slots[i];
    if (sl->used && sl->height == height && sl->round == round) return sl;
  }
  return NULL;
}

tm_slot *tm_slot_make(tm_state *s, uint64_t height, uint64_t round) {
  tm_slot *sl = tm_slot_find(s, height, round);
  if (sl) return sl;
  if (!acceptable(s, height, round)) return NULL;
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    sl = &s->slots[i];
    if (sl->used && acceptable(s, sl->height, sl->round)) continue;
    memset(sl, 0, offsetof(tm_slot, prop_msg));
    sl->used = 1;
    sl->height = height;
    sl->round = round;
    return sl;
  }
  BFT_ASSERT(0 && "more acceptable rounds than slots");
  return NULL;
}

const uint8_t *tm_find_value(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], uint32_t *len) {
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    tm_slot *sl = &s->slots[i];
    if (sl->used && sl->height == s->height && sl->has_prop && sl->prop_valid && tm_same(sl->prop_digest, digest)) {
      *len = sl->val_len;
      return sl->prop_msg + sl->val_off;
    }
  }
  if (s->valid_round != TM_NIL_ROUND && tm_same(s->valid_digest, digest)) {
    *len = s->valid_len;
    return s->valid_val;
  }
  return NULL;
}

/* ---- signing ------------------------------------------------------------------------------ */

/* CometBFT's double-sign guard: (height, round, step) never goes back, and at the very same
 * (height, round, step) only the statement already signed may be signed again. */
int tm_may_sign(const tm_state *s, uint64_t height, uint64_t round, uint8_t step, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (!s->ls_valid) return 1;
  if (height != s->ls_height) return height > s->ls_height;
  if (round != s->ls_round) return round > s->ls_round;
  if (step != s->ls_step) return step > s->ls_step;
  return tm_same(digest, s->ls_digest);
}

static void note_signed(tm_state *s, uint8_t step, const uint8_t digest[BFT_DIGEST_LEN]) {
  s->ls_valid = 1;
  s->ls_height = s->height;
  s->ls_round = s->round;
  s->ls_step = step;
  memcpy(s->ls_digest, digest, BFT_DIGEST_LEN);
}

int tm_cast_vote(tm_state *s, uint8_t kind, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  uint8_t step = kind == TM_MSG_PREVOTE ? TM_STEP_PREVOTE : TM_STEP_PRECOMMIT;
  /* Refused only when our records say we already signed past this point (a restart behind
   * them): then we stay silent, which is always safe. */
  if (!tm_may_sign(s, s->height, s->round, step, digest)) return 0;
  note_signed(s, step, digest);
  TM_TRY(tm_persist_sign(s, out)); /* persist before we speak */
  uint8_t body[TM_STMT_BODY], msg[BFT_STMT_MAX + BFT_SIG_LEN]; /* stmt helpers take BFT_STMT_MAX */
  tm_stmt_body(body, s->height, s->round, digest);
  int len = bft_stmt_make(msg, body, sizeof body, s->cfg.self);
  BFT_ASSERT(len == TM_VOTE_LEN);
  s->env.sign(s->env.ctx, tm_tag(kind), msg, TM_VOTE_LEN, msg + TM_VOTE_LEN);
  tm_slot *sl = tm_slot_make(s, s->height, s->round);
  BFT_ASSERT(sl != NULL);
  int added = bft_voteset_add(kind == TM_MSG_PREVOTE ? &sl->prevotes : &sl->precommits, s->cfg.self, s->round,
                              s->height, digest, msg + TM_VOTE_LEN);
  BFT_ASSERT(added == BFT_VOTE_NEW || added == BFT_VOTE_SAME);
  TM_TRY(bft_act_broadcast(out, kind, msg, TM_VOTE_LEN + BFT_SIG_LEN));
  return tm_arm_retransmit(s, out);
}

/* Our prevote of the current round again, exactly as our records say we signed it before a
 * restart (the same statement: no new promise, so neither the guard nor a record applies);
 * peers that crashed with us lost it, and a round needs 2f+1 prevotes to end. */
int tm_resend_prevote(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  uint8_t body[TM_STMT_BODY], msg[BFT_STMT_MAX + BFT_SIG_LEN];
  tm_stmt_body(body, s->height, s->round, digest);
  int len = bft_stmt_make(msg, body, sizeof body, s->cfg.self);
  BFT_ASSERT(len == TM_VOTE_LEN);
  s->env.sign(s->env.ctx, tm_tag(TM_MSG_PREVOTE), msg, TM_VOTE_LEN, msg + TM_VOTE_LEN);
  tm_slot *sl = tm_slot_make(s, s->height, s->round);
  BFT_ASSERT(sl != NULL);
  (void)bft_voteset_add(&sl->prevotes, s->cfg.self, s->round, s->height, digest, msg + TM_VOTE_LEN); /* new or same */
  return bft_act_broadcast(out, TM_MSG_PREVOTE, msg, TM_VOTE_LEN + BFT_SIG_LEN);
}

int tm_propose(tm_state *s, const uint8_t *value, uint32_t len, uint64_t vr, const bft_qc *pol, bft_actions *out) {
  BFT_ASSERT(tm_proposer(s, s->height, s->round) == s->cfg.self && s->step == TM_STEP_PROPOSE);
  BFT_ASSERT(vr == TM_NIL_ROUND || (vr < s->round && pol && pol->count == s->q));
  uint8_t digest[BFT_DIGEST_LEN];
  bft_digest(digest, value, len);
  if (!tm_may_sign(s, s->height, s->round, TM_STEP_PROPOSE, digest)) return 0;
  tm_slot *sl = tm_slot_make(s, s->height, s->round);
  BFT_ASSERT(sl != NULL && !sl->has_prop);
  wire_writer w;
  wire_writer_init(&w, sl->prop_msg, sizeof sl->prop_msg);
  wire_put_u64(&w, s->height);
  wire_put_u64(&w, s->round);
  wire_put_u64(&w, vr);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  bft_qc_put(&w, vr == TM_NIL_ROUND ? NULL : pol);
  wire_put_u32(&w, len);
  size_t off = w.len;
  wire_put_fixed(&w, value, len);
  if (w.err) return w.err;
  note_signed(s, TM_STEP_PROPOSE, digest);
  TM_TRY(tm_persist_sign(s, out));
  int n = bft_engine_seal(&s->env, TM_TAG_PROPOSAL, sl->prop_msg, (uint32_t)w.len, sl->prop_msg, sizeof sl->prop_msg);
  if (n < 0) return n;
  sl->has_prop = 1;
  sl->prop_valid = 1; /* our own pool's requests, or validValue: both checked */
  sl->prop_vr = vr;
  memcpy(sl->prop_digest, digest, BFT_DIGEST_LEN);
  sl->prop_len = (uint32_t)n;
  sl->val_off = (uint32_t)off;
  sl->val_len = len;
  s->pulled = 0;
  TM_TRY(bft_act_broadcast(out, TM_MSG_PROPOSAL, sl->prop_msg, sl->prop_len));
  return tm_arm_retransmit(s, out); /* the caller runs the rules: we prevote it (line 22/28) */
}

/* ---- evidence ----------------------------------------------------------------------------- */

/* Two votes by one replica for one (height, round, step) and different ids: keep both signed
 * statements (a ring of the latest TM_MAX_EVIDENCE) and count it once. */
static int record_equivocation(tm_state *s, uint8_t kind, uint32_t from, const bft_vote *held,
                               const uint8_t digest[BFT_DIGEST_LEN], const uint8_t sig[BFT_SIG_LEN], bft_actions *out) {
  uint32_t kept = s->nevidence < TM_MAX_EVIDENCE ? s->nevidence : TM_MAX_EVIDENCE;
  for (uint32_t i = 0; i < kept; i++) {
    const tm_evidence *e = &s->evidence[i];
    if (e->replica == from && e->kind == kind && e->height == held->height && e->round == held->round) return 0;
  }
  tm_evidence *e = &s->evidence[s->nevidence % TM_MAX_EVIDENCE];
  e->replica = from;
  e->kind = kind;
  e->height = held->height;
  e->round = held->round;
  memcpy(e->digest[0], held->digest, BFT_DIGEST_LEN);
  memcpy(e->sig[0], held->sig, BFT_SIG_LEN);
  memcpy(e->digest[1], digest, BFT_DIGEST_LEN);
  memcpy(e->sig[1], sig, BFT_SIG_LEN);
  s->nevidence++;
  s->equivocations++;
  /* Both votes, as the messages they came in, go to the runtime, which keeps and shows them. */
  uint8_t a[BFT_STMT_MAX + BFT_SIG_LEN], b[BFT_STMT_MAX + BFT_SIG_LEN], body[TM_STMT_BODY];
  tm_stmt_body(body, held->height, held->round, held->digest);
  bft_stmt_make(a, body, TM_STMT_BODY, from);
  memcpy(a + TM_VOTE_LEN, held->sig, BFT_SIG_LEN);
  tm_stmt_body(body, held->height, held->round, digest);
  bft_stmt_make(b, body, TM_STMT_BODY, from);
  memcpy(b + TM_VOTE_LEN, sig, BFT_SIG_LEN);
  return bft_act_evidence(out, from, kind, a, TM_VOTE_LEN + BFT_SIG_LEN, b, TM_VOTE_LEN + BFT_SIG_LEN);
}

/* ---- messages ----------------------------------------------------------------------------- */

static void note_seen(tm_state *s, uint32_t from, uint64_t height, uint64_t round) {
  if (height > s->seen_h[from] || (height == s->seen_h[from] && round > s->seen_r[from])) {
    s->seen_h[from] = height;
    s->seen_r[from] = round;
  }
}

static const uint8_t NIL_ID[BFT_DIGEST_LEN];

/* GET_PROPOSAL(height, round, digest) to one replica. */
static int send_get(tm_state *s, uint32_t to, uint64_t height, uint64_t round, const uint8_t digest[BFT_DIGEST_LEN],
                    bft_actions *out) {
  uint8_t b[TM_GET_LEN + BFT_SIG_LEN];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u64(&w, height);
  wire_put_u64(&w, round);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  return tm_emit(s, TM_MSG_GET_PROPOSAL, b, (uint32_t)w.len, sizeof b, to, out);
}

/* A replica already at the next height decided ours: ask it for the decision (a GET_PROPOSAL
 * of our height, which it answers with a DECISION), once per replica and height. Without it
 * we would learn the decision only when our retransmit timer repeats our messages. */
static int ask_decision(tm_state *s, uint32_t from, bft_actions *out) {
  if (s->dask_h != s->height) {
    s->dask_h = s->height;
    s->dask_mask = 0;
  }
  if ((s->dask_mask >> from) & 1) return 0;
  s->dask_mask |= 1ull << from;
  return send_get(s, from, s->height, s->round, NIL_ID, out);
}

/* What every message of a height does besides its own rule: it counts for the round skip
 * (line 55), shows someone is working at our height, or that we are behind. */
static int after_message(tm_state *s, uint32_t from, uint64_t height, uint64_t round, bft_actions *out) {
  note_seen(s, from, height, round);
  if (height == s->height) TM_TRY(tm_became_active(s, out));
  if (height >= s->height + 2) tm_need_fetch(s, height - 1, 1ull << from, out);
  else if (height == s->height + 1) {
    TM_TRY(ask_decision(s, from, out));
    TM_TRY(tm_arm_retransmit(s, out)); /* it checks again later */
  }
  return tm_check_rules(s, out);
}

int tm_on_proposal(tm_state *s, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out) {
  uint32_t plen = len - BFT_SIG_LEN;
  wire_reader r;
  wire_reader_init(&r, body, plen);
  uint64_t height = wire_get_u64(&r), round = wire_get_u64(&r), vr = wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  bft_qc_view pol;
  bft_qc_get(&r, &pol);
  uint32_t vlen;
  const uint8_t *value = wire_get_blob(&r, &vlen, BFT_MAX_BATCH_BYTES);
  int rc = wire_reader_finish(&r);
  if (rc) return tm_reject(s, rc);
  if (height == 0 || from != tm_proposer(s, height, round)) return tm_reject(s, BFT_E_STATE);
  if (height < s->height) return tm_answer_late(s, from, TM_MSG_PROPOSAL, height, round, out);
  if (vr != TM_NIL_ROUND ? vr >= round || pol.count == 0 : pol.count != 0) return tm_reject(s, BFT_E_MALFORMED);
  tm_slot *sl = tm_slot_find(s, height, round);
  if (sl && sl->has_prop) {
    if (tm_same(sl->prop_digest, digest)) return tm_reject(s, BFT_E_DUPLICATE);
    return tm_reject(s, BFT_E_STATE); /* a second proposal for (h, r): keep the first */
  }
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, value, vlen);
  if (!tm_same(d, digest) || tm_is_nil(digest)) return tm_reject(s, BFT_E_BAD_DIGEST);
  if (!acceptable(s, height, round)) {
    /* Outside the kept rounds: a later one still counts for the skip and for catch-up. */
    if (height == s->height && round < s->round) return tm_reject(s, BFT_E_STALE);
    return after_message(s, from, height, round, out);
  }
  if (vr != TM_NIL_ROUND) {
    /* Line 28's 2f+1 <PREVOTE, h, vr, id(v)>, carried by the proposal (a proof of lock). */
    uint8_t st[TM_STMT_BODY];
    tm_stmt_body(st, height, vr, digest);
    if (bft_qc_verify(&s->cfg, &s->env, TM_TAG_PREVOTE, st, sizeof st, &pol, UINT32_MAX) != 0)
      return tm_reject(s, BFT_E_BAD_CERT);
  }
  /* valid(v): requests well-formed and signed by permitted clients. An invalid value is
   * still the proposal of this round: correct replicas prevote nil for it (line 26). */
  int valid = s->env.check_batch(s->env.ctx, value, vlen) == 0;
  sl = tm_slot_make(s, height, round);
  BFT_ASSERT(sl != NULL);
  memcpy(sl->prop_msg, body, len);
  sl->has_prop = 1;
  s->missed[from] = 0; /* it proposes: its rounds get the full timeoutPropose again */
  sl->prop_valid = (uint8_t)valid;
  sl->prop_vr = vr;
  memcpy(sl->prop_digest, digest, BFT_DIGEST_LEN);
  sl->prop_len = len;
  sl->val_off = (uint32_t)(value - body);
  sl->val_len = vlen;
  return after_message(s, from, height, round, out);
}

int tm_on_vote(tm_state *s, uint8_t kind, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out) {
  if (len != TM_VOTE_LEN + BFT_SIG_LEN) return tm_reject(s, BFT_E_MALFORMED);
  wire_reader r;
  wire_reader_init(&r, body, TM_VOTE_LEN);
  uint64_t height = wire_get_u64(&r), round = wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  uint32_t replica = wire_get_u32(&r);
  int rc = wire_reader_finish(&r);
  if (rc) return tm_reject(s, rc);
  if (replica != from || height == 0) return tm_reject(s, BFT_E_MALFORMED);
  if (height < s->height) return tm_answer_late(s, from, kind, height, round, out);
  const uint8_t *sig = body + TM_VOTE_LEN;
  tm_slot *sl = tm_slot_find(s, height, round);
  if (!sl && !acceptable(s, height, round)) {
    if (height == s->height && round < s->round) return tm_reject(s, BFT_E_STALE);
    return after_message(s, from, height, round, out);
  }
  if (!sl) sl = tm_slot_make(s, height, round);
  BFT_ASSERT(sl != NULL);
  bft_voteset *vs = kind == TM_MSG_PREVOTE ? &sl->prevotes : &sl->precommits;
  bft_vote held = vs->v[from];
  switch (bft_voteset_add(vs, from, round, height, digest, sig)) {
    case BFT_VOTE_SAME:
      return tm_reject(s, BFT_E_DUPLICATE);
    case BFT_VOTE_CONFLICT:
      rc = record_equivocation(s, kind, from, &held, digest, sig, out);
      return rc < 0 ? rc : 0; /* the first vote stays; the evidence is kept */
    case BFT_VOTE_STALE:
      return tm_reject(s, BFT_E_STALE); /* cannot happen: one (height, round) per slot */
    default:
      break;
  }
  return after_message(s, from, height, round, out);
}

int tm_on_decision(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint64_t height = wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  size_t cert_off = (size_t)(len - wire_remaining(&r));
  (void)wire_get_u64(&r);
  bft_qc_view v;
  bft_qc_get(&r, &v);
  int rc = wire_reader_finish(&r);
  if (rc) return tm_reject(s, rc);
  if (height < s->height) return tm_reject(s, BFT_E_STALE);
  if (height == s->height && s->dec_pending && tm_same(digest, s->dec_digest)) {
    tm_need_fetch(s, height, 1ull << from, out); /* still without the bytes: it has them */
    return 0;
  }
  const uint8_t *cert = p + cert_off;
  uint32_t cert_len = len - (uint32_t)cert_off;
  if (tm_verify_cert(&s->cfg, &s->env, height, digest, cert, cert_len) != 0) return tm_reject(s, BFT_E_BAD_CERT);
  if (height > s->height) {
    /* It decided a height above ours: we are behind; its ledger has what we lack. */
    tm_need_fetch(s, height, 1ull << from, out);
    return 0;
  }
  uint32_t vlen;
  const uint8_t *value = tm_find_value(s, digest, &vlen);
  if (value) {
    TM_TRY(tm_decide(s, value, vlen, cert, cert_len, out));
    return tm_check_rules(s, out);
  }
  /* Decided without the bytes: fetch the block from the one that told us. */
  s->dec_pending = 1;
  memcpy(s->dec_digest, digest, BFT_DIGEST_LEN);
  memcpy(s->dec_cert, cert, cert_len);
  s->dec_cert_len = cert_len;
  tm_need_fetch(s, height, 1ull << from, out);
  return 0;
}

/* ---- proposals relayed (liveness only) ------------------------------------------------------ */

/* The paper assumes gossip: a proposal one correct replica received reaches every correct
 * replica. A faulty proposer can instead send it to some replicas only, or garbled to the
 * others, who then wait out timeoutPropose while the rest prevote for it. So a replica still
 * waiting for the proposal of its round asks each replica that prevoted a value there for it
 * (a correct one prevotes a value only when it holds its proposal), once per voter and round;
 * any replica holding the proposal answers each asker once per round with the proposal exactly
 * as its proposer signed it; the asker takes it only from a replica it asked, for the value
 * that replica prevoted, checks the proposer's signature and treats it as if the proposer had
 * sent it. What is accepted is the proposer's own signed message, so safety does not change;
 * the cost is one round trip when a proposal is missing while others vote for it, and at most
 * n-1 small GET_PROPOSALs per round however the faulty replicas vote. */
static int maybe_ask(tm_state *s, bft_actions *out) {
  if (s->step != TM_STEP_PROPOSE) return 0;
  tm_slot *sl = tm_slot_find(s, s->height, s->round);
  if (!sl || sl->has_prop) return 0;
  if (!s->ask_valid || s->ask_h != s->height || s->ask_r != s->round) {
    s->ask_valid = 1;
    s->ask_h = s->height;
    s->ask_r = s->round;
    s->ask_mask = 0;
  }
  for (uint32_t k = 0; k < s->cfg.n; k++) {
    const bft_vote *v = &sl->prevotes.v[k];
    if (k == s->cfg.self || ((s->ask_mask >> k) & 1) || !v->valid || tm_is_nil(v->digest)) continue;
    s->ask_mask |= 1ull << k;
    TM_TRY(send_get(s, k, s->height, s->round, v->digest, out));
  }
  return 0;
}

int tm_on_get_proposal(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint64_t height = wire_get_u64(&r), round = wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  int rc = wire_reader_finish(&r);
  if (rc) return tm_reject(s, rc);
  if (height == 0) return tm_reject(s, BFT_E_MALFORMED);
  if (height < s->height) return tm_answer_late(s, from, TM_MSG_GET_PROPOSAL, height, round, out);
  tm_slot *sl = tm_slot_find(s, height, round);
  if (!sl || !sl->has_prop || !tm_same(sl->prop_digest, digest)) return tm_reject(s, BFT_E_STATE);
  if ((sl->relayed >> from) & 1) return tm_reject(s, BFT_E_DUPLICATE); /* once per asker and round */
  sl->relayed |= 1ull << from;
  wire_writer w;
  wire_writer_init(&w, s->relay_buf, sizeof s->relay_buf);
  wire_put_u32(&w, tm_proposer(s, height, round));
  wire_put_blob(&w, sl->prop_msg, sl->prop_len);
  if (w.err) return w.err;
  return tm_emit(s, TM_MSG_RELAY, s->relay_buf, (uint32_t)w.len, sizeof s->relay_buf, from, out);
}

int tm_on_relay(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint32_t proposer = wire_get_u32(&r), plen;
  const uint8_t *prop = wire_get_blob(&r, &plen, TM_PROPOSAL_BODY_MAX);
  int rc = wire_reader_finish(&r);
  if (rc) return tm_reject(s, rc);
  if (plen < 8 + 8 + 8 + BFT_DIGEST_LEN + BFT_SIG_LEN) return tm_reject(s, BFT_E_TRUNCATED);
  /* Only what we asked this replica for, in our round (cheap checks before the signature). */
  wire_reader_init(&r, prop, plen);
  uint64_t height = wire_get_u64(&r), round = wire_get_u64(&r);
  (void)wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  if (!s->ask_valid || !((s->ask_mask >> from) & 1) || height != s->ask_h || round != s->ask_r)
    return tm_reject(s, BFT_E_STATE);
  if (height != s->height || proposer != tm_proposer(s, height, round)) return tm_reject(s, BFT_E_STALE);
  tm_slot *sl = tm_slot_find(s, height, round);
  if (!sl || !sl->prevotes.v[from].valid || !tm_same(digest, sl->prevotes.v[from].digest))
    return tm_reject(s, BFT_E_STATE); /* not the value it prevoted, the one we asked it for */
  if (sl->has_prop) return tm_reject(s, BFT_E_DUPLICATE); /* another asked one came first */
  if (s->env.verify(s->env.ctx, proposer, TM_TAG_PROPOSAL, prop, plen - BFT_SIG_LEN, prop + plen - BFT_SIG_LEN) != 0)
    return tm_reject(s, BFT_E_BAD_SIG);
  return tm_on_proposal(s, proposer, prop, plen, out);
}

/* ---- decisions ---------------------------------------------------------------------------- */

int tm_decide(tm_state *s, const uint8_t *value, uint32_t len, const uint8_t *cert, uint32_t cert_len,
              bft_actions *out) {
  BFT_ASSERT(s->height == s->committed + 1);
  BFT_ASSERT(cert_len <= TM_CERT_MAX);
  uint8_t digest[BFT_DIGEST_LEN];
  bft_digest(digest, value, len);
  TM_TRY(bft_act_commit(out, s->height, digest, value, len, cert, cert_len));
  tm_requests_done(s, value, len);
  s->committed = s->height;
  s->last_valid = 1;
  s->last_h = s->height;
  memcpy(s->last_digest, digest, BFT_DIGEST_LEN);
  memcpy(s->last_cert, cert, cert_len);
  s->last_cert_len = cert_len;
  wire_reader r;
  wire_reader_init(&r, cert, cert_len);
  s->last_r = wire_get_u64(&r); /* the certificate starts with its round */
  s->last_pc_mask = 0;
  return tm_enter_height(s, out); /* lines 52-54 */
}

/* Line 49: upon <PROPOSAL, h_p, r, v, *> from proposer(h_p, r) AND 2f+1 <PRECOMMIT, h_p, r,
 * id(v)> while decision_p[h_p] = nil, in any round r we hold. A commit quorum whose value we
 * lack (its proposal lost) is fetched from the signers that hold it. */
static int rule_decide(tm_state *s, bft_actions *out, int *progressed) {
  for (uint32_t i = 0; i < TM_SLOTS; i++) {
    tm_slot *sl = &s->slots[i];
    if (!sl->used || sl->height != s->height) continue;
    for (uint32_t j = 0; j < s->cfg.n; j++) {
      const bft_vote *v = &sl->precommits.v[j];
      if (!v->valid || tm_is_nil(v->digest)) continue;
      if (bft_voteset_count(&sl->precommits, s->cfg.n, sl->round, sl->height, v->digest) < s->q) continue;
      bft_qc qc;
      int built = bft_voteset_qc(&sl->precommits, &s->cfg, sl->round, sl->height, v->digest, UINT32_MAX, &qc);
      BFT_ASSERT(built);
      uint8_t cert[TM_CERT_MAX];
      int cl = tm_build_cert(sl->round, &qc, cert, sizeof cert);
      if (cl < 0) return cl;
      uint32_t vlen;
      const uint8_t *value = tm_find_value(s, v->digest, &vlen); /* line 50: valid(v) */
      if (value) {
        *progressed = 1;
        uint64_t held = 0;
        for (uint32_t k = 0; k < s->cfg.n; k++)
          if (sl->precommits.v[k].valid && sl->precommits.v[k].round == sl->round) held |= 1ull << k;
        TM_TRY(tm_decide(s, value, vlen, cert, (uint32_t)cl, out));
        s->last_pc_mask = held; /* (sl now belongs to no height: read before) */
        return 0;
      }
      if (!s->dec_pending) {
        s->dec_pending = 1;
        memcpy(s->dec_digest, v->digest, BFT_DIGEST_LEN);
        memcpy(s->dec_cert, cert, (size_t)cl);
        s->dec_cert_len = (uint32_t)cl;
      }
      uint64_t mask = 0;
      for (uint32_t k = 0; k < qc.count; k++) mask |= 1ull << qc.ids[k];
      tm_need_fetch(s, s->height, mask, out);
      return 0;
    }
  }
  if (s->dec_pending) {
    uint32_t vlen;
    const uint8_t *value = tm_find_value(s, s->dec_digest, &vlen);
    if (value) {
      *progressed = 1;
      return tm_decide(s, value, vlen, s->dec_cert, s->dec_cert_len, out);
    }
  }
  return 0;
}

/* Line 55: upon f+1 <*, h_p, round, *, *> with round > round_p: StartRound(round). We take the
 * highest round that f+1 replicas have each reached or passed (their latest messages), so at
 * least one correct replica is there. */
static int rule_skip(tm_state *s, bft_actions *out, int *progressed) {
  uint64_t best = s->round;
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    if (i == s->cfg.self || s->seen_h[i] != s->height || s->seen_r[i] <= best) continue;
    uint32_t cnt = 0;
    for (uint32_t j = 0; j < s->cfg.n; j++)
      cnt += (uint32_t)(j != s->cfg.self && s->seen_h[j] == s->height && s->seen_r[j] >= s->seen_r[i]);
    if (cnt >= s->cfg.f + 1) best = s->seen_r[i];
  }
  if (best == s->round) return 0;
  *progressed = 1;
  return tm_start_round(s, best, out);
}

/* Lines 22-33: the proposal of the current round while step_p = propose. */
/* A prevote for the proposal's value: the proposal is persisted first (TM_REC_PROPOSAL). */
static int prevote_value(tm_state *s, const tm_slot *sl, int yes, bft_actions *out) {
  if (!yes) return tm_cast_vote(s, TM_MSG_PREVOTE, NIL_ID, out);
  TM_TRY(tm_persist_proposal(s, tm_proposer(s, sl->height, sl->round), sl->height, sl->prop_msg, sl->prop_len, out));
  return tm_cast_vote(s, TM_MSG_PREVOTE, sl->prop_digest, out);
}

static int rule_proposal(tm_state *s, const tm_slot *sl, bft_actions *out) {
  int locked_ok = s->locked_round == TM_NIL_ROUND || tm_same(s->locked_digest, sl->prop_digest);
  s->step = TM_STEP_PREVOTE; /* lines 27, 33 */
  if (sl->prop_vr == TM_NIL_ROUND) {
    /* line 22: <PROPOSAL, h_p, round_p, v, -1> from proposer(h_p, round_p); lines 23-26 */
    return prevote_value(s, sl, sl->prop_valid && locked_ok, out);
  }
  /* line 28: <PROPOSAL, h_p, round_p, v, vr> AND 2f+1 <PREVOTE, h_p, vr, id(v)> (the proof,
   * checked on arrival) with 0 <= vr < round_p; lines 29-32 (lockedRound -1 <= any vr) */
  int vr_ok = s->locked_round == TM_NIL_ROUND || s->locked_round <= sl->prop_vr;
  return prevote_value(s, sl, sl->prop_valid && (vr_ok || locked_ok), out);
}

/* Can a value still gather 2f+1 votes of (h, r) in vs? A replica counts once (its first vote:
 * a second one is equivocation), and every replica not heard from yet might still vote for it. */
static int value_possible(const tm_state *s, const bft_voteset *vs, uint64_t r, uint64_t h) {
  uint32_t n = s->cfg.n, unheard = n - bft_voteset_count_any(vs, n, r, h);
  if (unheard >= s->q) return 1;
  for (uint32_t j = 0; j < n; j++) {
    const bft_vote *v = &vs->v[j];
    if (v->valid && v->round == r && v->height == h && !tm_is_nil(v->digest) &&
        bft_voteset_count(vs, n, r, h, v->digest) + unheard >= s->q)
      return 1;
  }
  return 0;
}

/* Lines 22-48 for the current round; at most one of them fires per call. */
static int rule_round(tm_state *s, bft_actions *out, int *progressed) {
  tm_slot *sl = tm_slot_make(s, s->height, s->round);
  BFT_ASSERT(sl != NULL);
  uint64_t h = s->height, r = s->round;
  uint32_t n = s->cfg.n;
  if (s->step == TM_STEP_PROPOSE && sl->has_prop) {
    *progressed = 1;
    return rule_proposal(s, sl, out);
  }
  if (s->step == TM_STEP_PREVOTE && !sl->did_34 && bft_voteset_count_any(&sl->prevotes, n, r, h) >= s->q) {
    /* line 34: 2f+1 <PREVOTE, h_p, round_p, *> while step_p = prevote, for the first time */
    sl->did_34 = 1;
    *progressed = 1;
    return tm_schedule(s, TM_TIMER_PREVOTE, out); /* line 35 */
  }
  if (s->step >= TM_STEP_PREVOTE && !sl->did_36 && sl->has_prop && sl->prop_valid &&
      bft_voteset_count(&sl->prevotes, n, r, h, sl->prop_digest) >= s->q) {
    /* line 36: <PROPOSAL, h_p, round_p, v, *> AND 2f+1 <PREVOTE, h_p, round_p, id(v)> while
     * valid(v) and step_p >= prevote, for the first time */
    sl->did_36 = 1;
    *progressed = 1;
    /* lines 42-43 (persisted first: what we lock below is then always re-proposable) */
    if (!(s->valid_round == r && tm_same(s->valid_digest, sl->prop_digest))) {
      int built = bft_voteset_qc(&sl->prevotes, &s->cfg, r, h, sl->prop_digest, UINT32_MAX, &s->valid_pol);
      BFT_ASSERT(built);
      memcpy(s->valid_val, sl->prop_msg + sl->val_off, sl->val_len);
      s->valid_len = sl->val_len;
      memcpy(s->valid_digest, sl->prop_digest, BFT_DIGEST_LEN);
      s->valid_round = r;
      TM_TRY(tm_persist_valid(s, out));
    }
    if (s->step == TM_STEP_PREVOTE) { /* lines 37-41 */
      s->locked_round = r;
      memcpy(s->locked_digest, sl->prop_digest, BFT_DIGEST_LEN);
      s->step = TM_STEP_PRECOMMIT;
      return tm_cast_vote(s, TM_MSG_PRECOMMIT, sl->prop_digest, out);
    }
    return 0;
  }
  if (s->step == TM_STEP_PREVOTE && bft_voteset_count(&sl->prevotes, n, r, h, NIL_ID) >= s->q) {
    /* line 44: 2f+1 <PREVOTE, h_p, round_p, nil> while step_p = prevote; lines 45-46 */
    *progressed = 1;
    s->step = TM_STEP_PRECOMMIT;
    return tm_cast_vote(s, TM_MSG_PRECOMMIT, NIL_ID, out);
  }
  if (bft_voteset_count(&sl->precommits, n, r, h, NIL_ID) >= s->q) {
    /* Beyond the paper, liveness only: 2f+1 <PRECOMMIT, h_p, round_p, nil> mean f+1 correct
     * replicas will never precommit a value in this round, so nothing can be decided in it;
     * start the next round now rather than after timeoutPrecommit (line 67's effect). */
    *progressed = 1;
    s->timeouts++; /* a round given up, like one left by timeoutPrecommit */
    return tm_start_round(s, r + 1, out);
  }
  if (!sl->did_47 && bft_voteset_count_any(&sl->precommits, n, r, h) >= s->q) {
    /* line 47: 2f+1 <PRECOMMIT, h_p, round_p, *> for the first time */
    sl->did_47 = 1;
    *progressed = 1;
    return tm_schedule(s, TM_TIMER_PRECOMMIT, out); /* line 48 */
  }
  /* Beyond the paper, liveness only: the timeouts of lines 35 and 48 wait for votes that could
   * still make a quorum. When the votes held (one per replica, 2f+1 of them at least) leave no
   * value able to reach 2f+1 whatever the others say, waiting cannot change what the timeout
   * then does (precommit nil; start the next round), so do it now. A faulty proposer that
   * splits the prevotes (equivocation, a proposal only some could check) then costs a round
   * trip, not timeoutPrevote + timeoutPrecommit. */
  if (s->step == TM_STEP_PREVOTE && sl->did_34 && !value_possible(s, &sl->prevotes, r, h)) {
    *progressed = 1;
    s->step = TM_STEP_PRECOMMIT;
    return tm_cast_vote(s, TM_MSG_PRECOMMIT, NIL_ID, out); /* as OnTimeoutPrevote, lines 61-64 */
  }
  if (sl->did_47 && !value_possible(s, &sl->precommits, r, h)) {
    *progressed = 1;
    s->timeouts++;
    return tm_start_round(s, r + 1, out); /* as OnTimeoutPrecommit, lines 65-67 */
  }
  return 0;
}

int tm_check_rules(tm_state *s, bft_actions *out) {
  /* Every firing moves (height, round, step) forward or sets a once-per-round flag, so the
   * loop ends; the bound only turns a bug into an assertion instead of a hang. */
  for (uint32_t iter = 0; iter < 10000; iter++) {
    int progressed = 0;
    TM_TRY(rule_decide(s, out, &progressed));
    if (!progressed) TM_TRY(rule_skip(s, out, &progressed));
    if (!progressed) TM_TRY(rule_round(s, out, &progressed));
    if (!progressed) return maybe_ask(s, out);
  }
  BFT_ASSERT(0 && "tendermint rules did not settle");
  return BFT_E_STATE;
}
