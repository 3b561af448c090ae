/* The Tendermint engine's entry points (bft_engine_ops "tendermint"): init, restore, start,
 * the one dispatch in step that checks what all messages share (sender, kind, size) before
 * handing them to the tm_on_* handlers, status and compact. */
#include "protocols/tendermint/tm_internal.h"

int tm_reject(tm_state *s, int rc) {
  switch (rc) {
    case BFT_E_STALE:
    case BFT_E_DUPLICATE: s->rej.stale++; break;
    case BFT_E_WINDOW: s->rej.window++; break;
    case BFT_E_BAD_DIGEST: s->rej.digest++; break;
    case BFT_E_BAD_CERT:
    case BFT_E_BAD_SIG: s->rej.cert++; break;
    default: s->rej.other++; break;
  }
  return rc;
}

const char *tm_tag(uint8_t kind) {
  switch (kind) {
    case TM_MSG_PROPOSAL: return TM_TAG_PROPOSAL;
    case TM_MSG_PREVOTE: return TM_TAG_PREVOTE;
    case TM_MSG_PRECOMMIT: return TM_TAG_PRECOMMIT;
    case TM_MSG_DECISION: return TM_TAG_DECISION;
    case TM_MSG_GET_PROPOSAL: return TM_TAG_GET_PROPOSAL;
    case TM_MSG_RELAY: return TM_TAG_RELAY;
    default: return NULL;
  }
}

static const char *tm_msg_name(uint8_t kind) {
  switch (kind) {
    case TM_MSG_PROPOSAL: return "proposal";
    case TM_MSG_PREVOTE: return "prevote";
    case TM_MSG_PRECOMMIT: return "precommit";
    case TM_MSG_DECISION: return "decision";
    case TM_MSG_GET_PROPOSAL: return "get_proposal";
    case TM_MSG_RELAY: return "relay";
    default: return NULL;
  }
}

static int tm_msg_class(uint8_t kind) {
  switch (kind) {
    case TM_MSG_PROPOSAL: return BFT_MSGC_PROPOSAL;
    case TM_MSG_PREVOTE:
    case TM_MSG_PRECOMMIT: return BFT_MSGC_VOTE;
    case TM_MSG_DECISION:
    case TM_MSG_RELAY: return BFT_MSGC_DATA;
    default: return BFT_MSGC_OTHER;
  }
}

int tm_emit(tm_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to, bft_actions *out) {
  int n = bft_engine_seal(&s->env, tm_tag(kind), buf, len, buf, cap);
  if (n < 0) return n;
  if (to == TM_ALL) return bft_act_broadcast(out, kind, buf, (uint32_t)n);
  return bft_act_send(out, to, kind, buf, (uint32_t)n);
}

static int tm_init(void *state, const bft_engine_config *cfg, const bft_engine_env *env) {
  tm_state *s = state;
  int rc = bft_engine_config_check(cfg);
  if (rc) return rc;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->env = *env;
  s->q = 2 * cfg->f + 1;
  s->committed = cfg->committed;
  s->height = cfg->committed + 1;
  s->locked_round = TM_NIL_ROUND;
  s->rec_locked_round = TM_NIL_ROUND;
  s->valid_round = TM_NIL_ROUND;
  return 0;
}

static int tm_restore(void *state, const uint8_t *rec, uint32_t len) {
  tm_state *s = state;
  if (s->started) return BFT_E_STATE;
  return tm_restore_record(s, rec, len);
}

static const uint8_t NIL_ID[BFT_DIGEST_LEN];

/* Resume the round our records say we last signed in, at the step we reached: say again what
 * we said last (the guard allows exactly that statement), and let timeouts move us on. */
static int resume_round(tm_state *s, bft_actions *out) {
  s->round = s->ls_round;
  s->step = s->ls_step;
  s->epoch++;
  s->active = 1; /* we were working at this height: run the timeouts */
  if (s->ls_step == TM_STEP_PROPOSE) {
    BFT_ASSERT(tm_proposer(s, s->height, s->round) == s->cfg.self);
    /* A proposal of validValue can be repeated; a pulled batch was not kept (the guard
     * forbids proposing anything else here), so then we wait for timeoutPropose. */
    if (s->valid_round != TM_NIL_ROUND && s->valid_round < s->round && tm_same(s->valid_digest, s->ls_digest))
      TM_TRY(tm_propose(s, s->valid_val, s->valid_len, s->valid_round, &s->valid_pol, out));
    TM_TRY(tm_became_active(s, out));
  } else {
    if (s->ls_step == TM_STEP_PRECOMMIT && s->pv_valid && s->pv_height == s->height && s->pv_round == s->round)
      TM_TRY(tm_resend_prevote(s, s->pv_digest, out));
    TM_TRY(tm_cast_vote(s, s->ls_step == TM_STEP_PREVOTE ? TM_MSG_PREVOTE : TM_MSG_PRECOMMIT,
                        tm_is_nil(s->ls_digest) ? NIL_ID : s->ls_digest, out));
  }
  return tm_arm_retransmit(s, out);
}

static int tm_start(void *state, bft_actions *out) {
  tm_state *s = state;
  if (s->started) return BFT_E_STATE;
  s->started = 1;
  if (s->ls_valid && s->ls_height == s->height) {
    /* The lock is a promise (safety); validValue only helps a proposer (liveness): each is
     * restored only at the height it was taken. */
    if (s->rec_height == s->height) {
      s->locked_round = s->rec_locked_round;
      memcpy(s->locked_digest, s->rec_locked_digest, BFT_DIGEST_LEN);
    }
    if (s->valid_height != s->height) {
      s->valid_round = TM_NIL_ROUND;
      s->valid_len = 0;
    }
    TM_TRY(resume_round(s, out));
  } else {
    /* Round 0 of height committed + 1, as after a decision; tm_enter_height applies the lock
     * our records hold for a height we have yet to reach. */
    s->height = s->committed;
    TM_TRY(tm_enter_height(s, out));
  }
  /* Our records are ahead of the driver's ledger: heights below the one we signed at were
   * decided; fetch them (the guard keeps us silent until we are past our records). */
  if (s->ls_valid && s->ls_height > s->height) tm_need_fetch(s, s->ls_height - 1, 0, out);
  /* The proposal we prevoted for before a crash, as if it arrived again (it is ours: our own
   * records; its value may exist nowhere else if every replica crashed). */
  if (s->rp_len && s->rp_height == s->height && s->rp_from < s->cfg.n) {
    int rc = tm_on_proposal(s, s->rp_from, s->rp_msg, s->rp_len, out);
    (void)rc; /* rejected (a duplicate, another round's): nothing to resume */
  }
  return tm_check_rules(s, out);
}

static int on_message(tm_state *s, const bft_event *ev, bft_actions *out) {
  uint32_t from = ev->u.msg.from;
  uint8_t kind = ev->u.msg.kind;
  if (from >= s->cfg.n || from == s->cfg.self) return tm_reject(s, BFT_E_UNKNOWN_SENDER);
  if (!tm_tag(kind)) return tm_reject(s, BFT_E_MALFORMED);
  if (ev->u.msg.len < BFT_SIG_LEN) return tm_reject(s, BFT_E_TRUNCATED);
  if (ev->u.msg.len > BFT_MAX_ENGINE_MSG) return tm_reject(s, BFT_E_TOO_LARGE);
  const uint8_t *body = ev->u.msg.body;
  uint32_t len = ev->u.msg.len;
  switch (kind) {
    case TM_MSG_PROPOSAL:
      if (len > TM_PROPOSAL_BODY_MAX) return tm_reject(s, BFT_E_TOO_LARGE);
      return tm_on_proposal(s, from, body, len, out);
    case TM_MSG_PREVOTE:
    case TM_MSG_PRECOMMIT: return tm_on_vote(s, kind, from, body, len, out);
    case TM_MSG_DECISION:
      if (len > TM_DECISION_PAYLOAD_MAX + BFT_SIG_LEN) return tm_reject(s, BFT_E_TOO_LARGE);
      return tm_on_decision(s, from, body, len - BFT_SIG_LEN, out);
    case TM_MSG_GET_PROPOSAL:
      if (len != TM_GET_LEN + BFT_SIG_LEN) return tm_reject(s, BFT_E_MALFORMED);
      return tm_on_get_proposal(s, from, body, len - BFT_SIG_LEN, out);
    case TM_MSG_RELAY:
      if (len > TM_RELAY_BODY_MAX) return tm_reject(s, BFT_E_TOO_LARGE);
      return tm_on_relay(s, from, body, len - BFT_SIG_LEN, out);
    default: return tm_reject(s, BFT_E_MALFORMED);
  }
}

static int tm_step(void *state, const bft_event *ev, bft_actions *out) {
  tm_state *s = state;
  if (!s->started) return BFT_E_STATE;
  switch (ev->type) {
    case BFT_EV_MESSAGE: return on_message(s, ev, out);
    case BFT_EV_TIMER: return tm_on_timer(s, ev->u.timer.id, ev->u.timer.tag, out);
    case BFT_EV_REQUEST: return tm_on_request(s, ev->u.request.digest, out);
    case BFT_EV_BATCH: return tm_on_batch(s, ev->u.batch.data, ev->u.batch.len, out);
    case BFT_EV_SYNC:
      return tm_on_sync(s, ev->u.sync.seq, ev->u.sync.batch, ev->u.sync.batch_len, ev->u.sync.cert,
                        ev->u.sync.cert_len, out);
    default: return tm_reject(s, BFT_E_INVAL);
  }
}

static void tm_status(const void *state, bft_engine_status *st) {
  const tm_state *s = state;
  memset(st, 0, sizeof *st);
  st->view = s->round;
  st->height = s->height;
  st->epoch = s->epoch;
  st->leader = tm_proposer(s, s->height, s->round);
  st->committed = s->committed;
  st->stable = s->committed;
  st->changing_view = s->round > 0;
  st->view_changes = s->timeouts;
  st->equivocations = s->equivocations;
  st->rejected_stale = s->rej.stale;
  st->rejected_window = s->rej.window;
  st->rejected_digest = s->rej.digest;
  st->rejected_cert = s->rej.cert;
  st->rejected_other = s->rej.other;
}

static int tm_compact(void *state, bft_actions *out) { return tm_compact_records(state, out); }

const bft_engine_ops tm_engine_ops = {
    .name = "tendermint",
    .state_size = sizeof(tm_state),
    .max_replicas = BFT_MAX_REPLICAS,
    .init = tm_init,
    .restore = tm_restore,
    .start = tm_start,
    .msg_tag = tm_tag,
    .msg_name = tm_msg_name,
    .msg_class = tm_msg_class,
    .step = tm_step,
    .verify_certificate = tm_verify_cert,
    .status = tm_status,
    .compact = tm_compact,
};
