/* The HotStuff engine's entry points (bft_engine_ops "hotstuff"): init, restore, start, the
 * one dispatch in step that checks what all messages share (sender, kind, size) before the
 * hs_on_* handlers, status and compaction. */
#include "protocols/hotstuff/hs_internal.h"

int hs_reject(hs_state *s, int rc) {
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

void hs_qc_genesis(hs_state *s, hs_qc *qc) {
  memset(qc, 0, sizeof *qc);
  memcpy(qc->hash, s->genesis, BFT_DIGEST_LEN);
}

static const char *hs_msg_tag(uint8_t kind) { return hs_tag(kind); }

static const char *hs_msg_name(uint8_t kind) {
  switch (kind) {
    case HS_MSG_PROPOSAL: return "proposal";
    case HS_MSG_VOTE: return "vote";
    case HS_MSG_TIMEOUT: return "timeout";
    case HS_MSG_BLOCK_REQ: return "block-req";
    case HS_MSG_BLOCK: return "block";
    default: return NULL;
  }
}

static int hs_msg_class(uint8_t kind) {
  switch (kind) {
    case HS_MSG_PROPOSAL: return BFT_MSGC_PROPOSAL;
    case HS_MSG_VOTE: return BFT_MSGC_VOTE;
    case HS_MSG_TIMEOUT: return BFT_MSGC_VIEW;
    case HS_MSG_BLOCK: return BFT_MSGC_DATA;
    default: return BFT_MSGC_OTHER;
  }
}

static int hs_init(void *state, const bft_engine_config *cfg, const bft_engine_env *env) {
  hs_state *s = state;
  int rc = bft_engine_config_check(cfg);
  if (rc) return rc;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->env = *env;
  s->q = 2 * cfg->f + 1;
  s->committed = cfg->committed;
  hs_genesis_hash(cfg->cluster_id, s->genesis);
  hs_qc_genesis(s, &s->high);
  hs_qc_genesis(s, &s->locked);
  /* The committed root from the driver's ledger, for when our records lag it (a crash between
   * the ledger's sync and the WAL's): the certificate's first header is the head block's. */
  uint8_t parent[BFT_DIGEST_LEN], bd[BFT_DIGEST_LEN];
  if (cfg->committed > 0 && cfg->head_cert &&
      hs_cert_first(cfg->head_cert, cfg->head_cert_len, &s->head_hint_view, parent, bd) == 0) {
    hs_block_hash(s->head_hint_view, cfg->committed, parent, bd, s->head_hint_hash);
    s->head_hint = 1;
  }
  s->cfg.head_digests = NULL; /* borrowed for init only */
  s->cfg.head_cert = NULL;
  s->cfg.head_count = s->cfg.head_cert_len = 0;
  return 0;
}

static int hs_restore(void *state, const uint8_t *rec, uint32_t len) {
  hs_state *s = state;
  if (s->started) return BFT_E_STATE;
  return hs_restore_record(s, rec, len);
}

static int hs_start(void *state, bft_actions *out) {
  hs_state *s = state;
  if (s->started) return BFT_E_STATE;
  s->started = 1;
  /* The committed root at the driver's ledger head. */
  uint32_t i = (uint32_t)(s->committed % HS_RING);
  if (s->committed == 0) {
    memcpy(s->root_hash, s->genesis, BFT_DIGEST_LEN);
    s->root_valid = 1;
  } else if (s->ring_height[i] == s->committed) {
    memcpy(s->root_hash, s->ring_hash[i], BFT_DIGEST_LEN);
    s->root_view = s->ring_view[i];
    s->root_valid = 1;
  } else if (s->head_hint) { /* our records lag the ledger: its head block is the root */
    hs_ring_put(s, s->committed, s->head_hint_view, s->head_hint_hash);
    memcpy(s->root_hash, s->head_hint_hash, BFT_DIGEST_LEN);
    s->root_view = s->head_hint_view;
    s->root_valid = 1;
  }
  hs_tree_refresh(s); /* blocks restored from our records hang from the root again */
  /* Never back into a view we voted in; the QC we hold shows where the cluster was. */
  s->view = s->voted_view > s->high.view + 1 ? s->voted_view : s->high.view + 1;
  /* Behind our own records (the ledger lags what we delivered), or root unknown. */
  uint64_t target = s->delivered_max > s->committed ? s->delivered_max : 0;
  if (!s->root_valid && target <= s->committed) target = s->committed + 1;
  if (target > s->committed) HS_TRY(hs_need_sync(s, target, UINT32_MAX, out));
  return hs_maybe_propose(s, out);
}

static int on_message(hs_state *s, const bft_event *ev, bft_actions *out) {
  uint32_t from = ev->u.msg.from;
  uint8_t kind = ev->u.msg.kind;
  if (from >= s->cfg.n || from == s->cfg.self) return hs_reject(s, BFT_E_UNKNOWN_SENDER);
  if (!hs_tag(kind)) return hs_reject(s, BFT_E_MALFORMED);
  if (ev->u.msg.len < BFT_SIG_LEN) return hs_reject(s, BFT_E_TRUNCATED);
  if (ev->u.msg.len > BFT_MAX_ENGINE_MSG) return hs_reject(s, BFT_E_TOO_LARGE);
  const uint8_t *p = ev->u.msg.body;
  uint32_t len = ev->u.msg.len - BFT_SIG_LEN; /* payload; its signature follows it */
  switch (kind) {
    case HS_MSG_PROPOSAL: return hs_on_proposal(s, from, p, len, out);
    case HS_MSG_VOTE: return hs_on_vote(s, from, p, len, out);
    case HS_MSG_TIMEOUT: return hs_on_timeout(s, from, p, len, out);
    case HS_MSG_BLOCK_REQ: return hs_on_block_req(s, from, p, len, out);
    case HS_MSG_BLOCK: return hs_on_block(s, from, p, len, out);
    default: return hs_reject(s, BFT_E_MALFORMED);
  }
}

static int hs_step(void *state, const bft_event *ev, bft_actions *out) {
  hs_state *s = state;
  if (!s->started) return BFT_E_STATE;
  switch (ev->type) {
    case BFT_EV_MESSAGE: return on_message(s, ev, out);
    case BFT_EV_TIMER: return hs_on_timer(s, ev->u.timer.id, ev->u.timer.tag, out);
    case BFT_EV_REQUEST: return hs_on_request(s, ev->u.request.digest, out);
    case BFT_EV_BATCH: return hs_on_batch(s, ev->u.batch.data, ev->u.batch.len, out);
    case BFT_EV_SYNC:
      return hs_on_sync(s, ev->u.sync.seq, ev->u.sync.batch, ev->u.sync.batch_len, ev->u.sync.cert,
                        ev->u.sync.cert_len, out);
    default: return hs_reject(s, BFT_E_INVAL);
  }
}

static void hs_status(const void *state, bft_engine_status *st) {
  const hs_state *s = state;
  memset(st, 0, sizeof *st);
  st->view = s->view;
  st->height = s->committed + 1;
  st->epoch = s->epoch;
  /* A block commits when the ledger reaches its height, a few blocks above the head at which
   * its requests were handed out; twice that without them executing means it was abandoned (a
   * fork lost), with or without a timeout: the runtime offers its requests again. */
  st->repropose_after = 8;
  st->leader = hs_leader(s, s->view);
  st->committed = s->committed;
  st->stable = s->committed; /* nothing at or below the committed root is kept */
  st->changing_view = s->timed_out;
  st->view_changes = s->view_changes;
  st->equivocations = s->equivocations;
  st->rejected_stale = s->rej.stale;
  st->rejected_window = s->rej.window;
  st->rejected_digest = s->rej.digest;
  st->rejected_cert = s->rej.cert;
  st->rejected_other = s->rej.other;
}

/* The WAL compaction hook: one snapshot record holds every promise (voted view, lock) and
 * the recent committed blocks a restart needs to find its root. */
static int hs_compact(void *state, bft_actions *out) { return hs_compact_records(state, out); }

const bft_engine_ops hs_engine_ops = {
    .name = "hotstuff",
    .state_size = sizeof(hs_state),
    .max_replicas = BFT_MAX_REPLICAS,
    .init = hs_init,
    .restore = hs_restore,
    .start = hs_start,
    .msg_tag = hs_msg_tag,
    .msg_name = hs_msg_name,
    .msg_class = hs_msg_class,
    .step = hs_step,
    .verify_certificate = hs_verify_cert,
    .status = hs_status,
    .compact = hs_compact,
};
