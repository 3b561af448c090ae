/* The PBFT engine's entry points (bft_engine_ops "pbft"): init, restore, start, the one
 * dispatch in step that checks what all messages share (sender, kind, view, watermarks)
 * before handing them to the pbft_on_* handlers, and status. */
#include "protocols/pbft/pbft_internal.h"

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

int pbft_reject(pbft_state *s, int rc) {
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

static const char *pbft_msg_tag(uint8_t kind) { return pbft_tag(kind); }

static const char *pbft_msg_name(uint8_t kind) {
  switch (kind) {
    case PBFT_MSG_PRE_PREPARE: return "pre-prepare";
    case PBFT_MSG_PREPARE: return "prepare";
    case PBFT_MSG_COMMIT: return "commit";
    case PBFT_MSG_CHECKPOINT: return "checkpoint";
    case PBFT_MSG_VIEW_CHANGE: return "view-change";
    case PBFT_MSG_NEW_VIEW: return "new-view";
    case PBFT_MSG_BATCH_GET: return "batch-get";
    case PBFT_MSG_BATCH: return "batch";
    default: return NULL;
  }
}

static int pbft_msg_class(uint8_t kind) {
  switch (kind) {
    case PBFT_MSG_PRE_PREPARE: return BFT_MSGC_PROPOSAL;
    case PBFT_MSG_PREPARE:
    case PBFT_MSG_COMMIT:
    case PBFT_MSG_CHECKPOINT: return BFT_MSGC_VOTE;
    case PBFT_MSG_VIEW_CHANGE:
    case PBFT_MSG_NEW_VIEW: return BFT_MSGC_VIEW;
    case PBFT_MSG_BATCH: return BFT_MSGC_DATA; /* bytes a peer asked for (`withhold` drops them) */
    default: return BFT_MSGC_OTHER;
  }
}

static int pbft_init(void *state, const bft_engine_config *cfg, const bft_engine_env *env) {
  pbft_state *s = state;
  int rc = bft_engine_config_check(cfg);
  if (rc) return rc;
  if (cfg->n > PBFT_MAX_REPLICAS) return BFT_E_INVAL;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->env = *env;
  s->q = bft_quorum(cfg);
  s->committed = cfg->committed;
  s->chain_valid = cfg->committed == 0;
  /* The ledger's last batch digests: our DELIVERED records may lag the ledger by one group
   * commit (the driver syncs the ledger first); start() steps the chain over them. */
  s->hint_count = cfg->head_digests && cfg->head_count <= cfg->window ? cfg->head_count : 0;
  if (s->hint_count > cfg->committed) s->hint_count = (uint32_t)cfg->committed;
  for (uint32_t i = 0; i < s->hint_count; i++) memcpy(s->hint_dig[i], cfg->head_digests[i], BFT_DIGEST_LEN);
  s->cfg.head_digests = NULL; /* borrowed for init only */
  s->cfg.head_cert = NULL;
  s->cfg.head_count = s->cfg.head_cert_len = 0;
  return 0;
}

/* Chain at `committed` from the newest chain we recorded at or below it (or the stable
 * checkpoint), stepped over the ledger's digests after it; 1 when found. */
static int chain_from_hints(pbft_state *s) {
  uint32_t L = s->cfg.window;
  uint64_t first = s->committed - s->hint_count + 1; /* hint_dig[0] is block `first` */
  for (uint64_t q = s->committed; q + 1 >= first && q > 0; q--) {
    const uint8_t *base = NULL;
    if (s->chain_seq[q % L] == q) base = s->chain_ring[q % L];
    else if (q == s->h) base = s->h_digest;
    if (!base) continue;
    uint8_t ch[BFT_DIGEST_LEN];
    memcpy(ch, base, BFT_DIGEST_LEN);
    for (uint64_t k = q + 1; k <= s->committed; k++) {
      pbft_chain_step(ch, s->hint_dig[k - first]);
      s->chain_seq[k % L] = k;
      memcpy(s->chain_ring[k % L], ch, BFT_DIGEST_LEN);
    }
    memcpy(s->chain, ch, BFT_DIGEST_LEN);
    return 1;
  }
  return 0;
}

static int pbft_restore(void *state, const uint8_t *rec, uint32_t len) {
  pbft_state *s = state;
  if (s->started) return BFT_E_STATE;
  return pbft_restore_record(s, rec, len);
}

static int pbft_start(void *state, bft_actions *out) {
  pbft_state *s = state;
  if (s->started) return BFT_E_STATE;
  s->started = 1;
  /* Where does the history digest stand at the driver's ledger head? */
  uint32_t L = s->cfg.window;
  if (s->committed == 0) {
    memset(s->chain, 0, BFT_DIGEST_LEN);
    s->chain_valid = 1;
  } else if (s->chain_seq[s->committed % L] == s->committed) {
    memcpy(s->chain, s->chain_ring[s->committed % L], BFT_DIGEST_LEN);
    s->chain_valid = 1;
  } else if (s->committed == s->h) {
    memcpy(s->chain, s->h_digest, BFT_DIGEST_LEN);
    s->chain_valid = 1;
  } else if (s->hint_count && chain_from_hints(s)) {
    s->chain_valid = 1;
  }
  /* A restarted primary never re-uses a sequence number it pre-prepared in this view. */
  s->next_seq = s->h;
  for (uint64_t q = s->h + 1; q <= s->h + L; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl && sl->my_prep.valid && sl->my_prep.view >= s->view && q > s->next_seq) s->next_seq = q;
    /* Restored bytes: those of our latest PREPARE were voted for in its view; others may have
     * been voted for in an older view before a vote without bytes (the records do not say), so
     * keep them as voted for in view 0 (pbft_take_bytes). */
    if (sl && sl->has_batch) {
      sl->bytes_voted = 1;
      sl->bytes_view = 0;
      if (sl->my_prep.valid) pbft_bytes_vote(sl, sl->my_prep.view, sl->my_prep.digest);
    }
  }
  if (s->changing) {
    PBFT_TRY(pbft_send_view_change(s, out));
    s->vc_tag++;
    PBFT_TRY(bft_act_timer_set(out, PBFT_TIMER_VIEW, s->vc_tag, s->cfg.timeout_ms));
  } else {
    PBFT_TRY(pbft_maybe_pull(s, out));
  }
  /* Behind our own records (the ledger lags what we delivered) or our stable checkpoint. */
  uint64_t target = s->delivered_max > s->h ? s->delivered_max : s->h;
  if (target > s->committed) pbft_need_fetch(s, target, 0, out);
  return 0;
}

static int on_message(pbft_state *s, const bft_event *ev, bft_actions *out) {
  uint32_t from = ev->u.msg.from;
  uint8_t kind = ev->u.msg.kind;
  if (from >= s->cfg.n || from == s->cfg.self) return pbft_reject(s, BFT_E_UNKNOWN_SENDER);
  if (!pbft_tag(kind)) return pbft_reject(s, BFT_E_MALFORMED);
  if (ev->u.msg.len < BFT_SIG_LEN) return pbft_reject(s, BFT_E_TRUNCATED);
  if (ev->u.msg.len > BFT_MAX_ENGINE_MSG) return pbft_reject(s, BFT_E_TOO_LARGE);
  const uint8_t *p = ev->u.msg.body;
  uint32_t len = ev->u.msg.len - BFT_SIG_LEN; /* payload; its signature follows it */
  switch (kind) {
    case PBFT_MSG_PRE_PREPARE:
    case PBFT_MSG_PREPARE:
    case PBFT_MSG_COMMIT: {
      /* Normal-case messages: this view only, inside the watermarks. */
      if (len < 16) return pbft_reject(s, BFT_E_TRUNCATED);
      uint64_t view = rd64(p), seq = rd64(p + 8);
      /* A COMMIT of an older view still counts towards a commit certificate (which holds in
       * any view); a replica that fell behind in views settles seqs with them. */
      if (view < s->view && kind != PBFT_MSG_COMMIT) return pbft_reject(s, BFT_E_STALE);
      /* Messages of the next view may overtake its NEW-VIEW (reordering): votes are kept per
       * replica (one slot each, so nothing grows), a pre-prepare of the view we are changing
       * into is held; anything further ahead is outside the view window. */
      if (kind == PBFT_MSG_PRE_PREPARE ? view > s->view : view > s->view + 1)
        return pbft_reject(s, BFT_E_WINDOW);
      if (seq <= s->h) return pbft_reject(s, BFT_E_STALE);
      if (seq > s->h + s->cfg.window) return pbft_reject(s, BFT_E_WINDOW);
      int rc = kind == PBFT_MSG_PRE_PREPARE ? pbft_on_pre_prepare(s, from, p, len, out)
               : kind == PBFT_MSG_PREPARE   ? pbft_on_prepare(s, from, p, len, out)
                                            : pbft_on_commit(s, from, p, len, out);
      /* Evidence that this view works (the request timer's "the cluster commits" test). */
      if (rc == 0 && view == s->view && !s->changing) s->view_activity++;
      return rc;
    }
    case PBFT_MSG_CHECKPOINT: return pbft_on_checkpoint(s, from, p, len, out);
    case PBFT_MSG_VIEW_CHANGE: return pbft_on_view_change(s, from, p, ev->u.msg.len, out);
    case PBFT_MSG_NEW_VIEW: return pbft_on_new_view(s, from, p, len, out);
    case PBFT_MSG_BATCH_GET:
    case PBFT_MSG_BATCH: {
      /* Fetch by digest: for seqs inside the watermarks only. */
      if (len < 8) return pbft_reject(s, BFT_E_TRUNCATED);
      uint64_t seq = rd64(p);
      if (seq <= s->h) return pbft_reject(s, BFT_E_STALE);
      if (seq > s->h + s->cfg.window) return pbft_reject(s, BFT_E_WINDOW);
      return kind == PBFT_MSG_BATCH_GET ? pbft_on_batch_get(s, from, p, len, out)
                                        : pbft_on_batch_msg(s, from, p, len, out);
    }
    default: return pbft_reject(s, BFT_E_MALFORMED);
  }
}

static int pbft_step(void *state, const bft_event *ev, bft_actions *out) {
  pbft_state *s = state;
  if (!s->started) return BFT_E_STATE;
  switch (ev->type) {
    case BFT_EV_MESSAGE: return on_message(s, ev, out);
    case BFT_EV_TIMER: return pbft_on_timer(s, ev->u.timer.id, ev->u.timer.tag, out);
    case BFT_EV_REQUEST: return pbft_on_request(s, ev->u.request.digest, out);
    case BFT_EV_BATCH: return pbft_on_batch(s, ev->u.batch.data, ev->u.batch.len, out);
    case BFT_EV_SYNC:
      return pbft_on_sync(s, ev->u.sync.seq, ev->u.sync.batch, ev->u.sync.batch_len, ev->u.sync.cert,
                          ev->u.sync.cert_len, out);
    default: return pbft_reject(s, BFT_E_INVAL);
  }
}

static void pbft_status(const void *state, bft_engine_status *st) {
  const pbft_state *s = state;
  memset(st, 0, sizeof *st);
  st->view = s->view;
  st->height = s->committed + 1;
  st->epoch = s->view; /* a new primary must be able to re-propose what the old one dropped */
  st->view_changes = s->view; /* every PBFT view change follows a timeout */
  st->leader = pbft_primary(s, s->view);
  st->committed = s->committed;
  st->stable = s->h;
  st->changing_view = s->changing;
  st->rejected_stale = s->rej.stale;
  st->rejected_window = s->rej.window;
  st->rejected_digest = s->rej.digest;
  st->rejected_cert = s->rej.cert;
  st->rejected_other = s->rej.other;
  st->equivocations = s->rej.equivocations;
}

/* The WAL compaction hook: one snapshot record restores every promise made so far, and a
 * BATCH record per slot the bytes it holds. */
static int pbft_compact(void *state, bft_actions *out) { return pbft_compact_records(state, out); }

const bft_engine_ops pbft_engine_ops = {
    .name = "pbft",
    .state_size = sizeof(pbft_state),
    .max_replicas = PBFT_MAX_REPLICAS,
    .init = pbft_init,
    .restore = pbft_restore,
    .start = pbft_start,
    .msg_tag = pbft_msg_tag,
    .msg_name = pbft_msg_name,
    .msg_class = pbft_msg_class,
    .step = pbft_step,
    .verify_certificate = pbft_verify_cert,
    .status = pbft_status,
    .compact = pbft_compact,
};
