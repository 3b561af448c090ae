/* PBFT liveness: who is primary, when the primary pulls and proposes, when a backup suspects
 * it (request timer) and starts a view change, the f+1 rule, the doubling view-change
 * timeout, building the NEW-VIEW, and catching up by FETCH when behind. Whether anything may
 * be signed or accepted is decided in pbft_safety.c; nothing here can break agreement. */
#include "protocols/pbft/pbft_internal.h"

uint32_t pbft_primary(const pbft_state *s, uint64_t view) { return (uint32_t)(view % s->cfg.n); }

int pbft_is_primary(const pbft_state *s) { return pbft_primary(s, s->view) == s->cfg.self; }

/* ---- proposing ---------------------------------------------------------------------------- */

int pbft_maybe_pull(pbft_state *s, bft_actions *out) {
  if (!s->started || s->changing || !pbft_is_primary(s) || s->pulled) return 0;
  if (s->next_seq >= s->h + s->cfg.window) return 0; /* window full: wait for a checkpoint */
  uint32_t depth = s->cfg.pipeline ? s->cfg.pipeline : s->cfg.window;
  if (s->next_seq >= s->committed + depth) return 0; /* enough in flight: wait for a delivery */
  s->pulled = 1;
  return bft_act_pull(out, s->cfg.batch_max);
}

int pbft_on_batch(pbft_state *s, const uint8_t *batch, uint32_t len, bft_actions *out) {
  s->pulled = 0;
  if (s->changing || !pbft_is_primary(s) || s->next_seq >= s->h + s->cfg.window)
    return pbft_reject(s, BFT_E_STATE);
  if (len > BFT_MAX_BATCH_BYTES) return pbft_reject(s, BFT_E_TOO_LARGE);
  uint8_t digest[BFT_DIGEST_LEN];
  bft_digest(digest, batch, len);
  uint64_t seq = s->next_seq + 1;
  pbft_slot *sl = pbft_slot_make(s, seq);
  if (!sl || !pbft_may_vote(&sl->my_prep, s->view, digest) || (sl->has_pp && sl->pp_view == s->view))
    return pbft_reject(s, BFT_E_STATE);
  /* The bytes we propose are held like any other slot's: durably (see pbft_take_bytes). They
   * replace any others: a seq above the NEW-VIEW's re-proposals holds no prepared certificate
   * of ours, and the other correct voters of a batch we drop keep its bytes. */
  PBFT_TRY(pbft_persist_batch(s, seq, batch, len, out));
  s->next_seq = seq;
  sl->has_pp = 1;
  sl->pp_view = s->view;
  memcpy(sl->pp_digest, digest, BFT_DIGEST_LEN);
  sl->prepared = 0;
  memcpy(sl->batch, batch, len);
  sl->batch_len = len;
  memcpy(sl->batch_digest, digest, BFT_DIGEST_LEN);
  sl->has_batch = 1;
  sl->bytes_voted = 1;
  sl->bytes_view = s->view;

  /* The pre-prepare carries our signed PREPARE statement: it is the primary's prepare. */
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u64(&w, s->view);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  uint8_t st[PBFT_VOTE_LEN];
  pbft_vote_stmt(st, s->view, seq, digest, s->cfg.self);
  uint8_t *sig = wire_put_reserve(&w, BFT_SIG_LEN);
  wire_put_blob(&w, batch, len);
  if (w.err) return w.err;
  s->env.sign(s->env.ctx, PBFT_TAG_PREPARE, st, sizeof st, sig);
  bft_voteset_set(&sl->prep, s->cfg.self, s->view, seq, digest, sig);
  sl->my_prep.valid = 1;
  sl->my_prep.view = s->view;
  memcpy(sl->my_prep.digest, digest, BFT_DIGEST_LEN);
  PBFT_TRY(pbft_persist_vote(s, PBFT_MSG_PREPARE, s->view, seq, digest, out));
  PBFT_TRY(pbft_emit(s, PBFT_MSG_PRE_PREPARE, s->scratch, (uint32_t)w.len, sizeof s->scratch, PBFT_ALL, out));
  PBFT_TRY(pbft_arm_retransmit(s, out));
  PBFT_TRY(pbft_progress(s, sl, out));
  return pbft_maybe_pull(s, out);
}

/* ---- watching requests -------------------------------------------------------------------- */

/* Backups watch pending requests with the request timer. The primary watches too, with twice
 * the timeout: a primary that cannot get its proposals through (the others moved to a view it
 * never heard of, e.g. behind a partition) must not wait forever; its VIEW-CHANGE makes the
 * current primary hand it the NEW-VIEW, or joins the others' view change.
 *
 * No replica leaves alone (issue 16). A VIEW-CHANGE is a promise that can never be taken back
 * (the replica stops voting in the old view; going back would let a later NEW-VIEW, built from
 * that stale VIEW-CHANGE plus f faulty ones, drop a batch the old view committed with this
 * replica's votes). So the rule is about when to make it. When the timer fires with a request
 * that was already pending when it was armed:
 *   - if nothing was delivered during the whole period and no new pre-prepare or vote of this
 *     view was accepted, the primary is stuck (as far as this replica can see): start the view
 *     change, as before;
 *   - if batches were delivered or new votes of this view arrived (the cluster works in this
 *     view), the primary works and this
 *     replica may just be behind or busy: re-arm and keep voting, unless a request has now been
 *     pending for PBFT_REQ_STRIKES whole periods in a row (a primary that commits others' requests
 *     but never this one: censorship), which starts the view change.
 * Bound: a correct replica to which the cluster delivers at least one batch per timeout period
 * stays in the view, voting, for as long as each of its requests commits within
 * PBFT_REQ_STRIKES periods of its arrival (4 s at the default 1 s timeout): time outside the
 * quorum 0. Liveness: a stuck primary is suspected after the first whole period with no activity
 * in the view (at most 2 periods after it stopped), a censoring one after at most
 * PBFT_REQ_STRIKES. Safety does not depend on timers at all. */
static int arm_request_timer(pbft_state *s, bft_actions *out) {
  s->req_tag++;
  s->req_armed = 1;
  s->req_mark = s->req_no;
  s->req_marks[s->req_nmarks % PBFT_REQ_STRIKES] = s->req_no;
  s->req_nmarks++;
  s->req_committed = s->committed;
  s->req_activity = s->view_activity;
  uint64_t d = (uint64_t)s->cfg.timeout_ms * (pbft_is_primary(s) ? 2 : 1);
  return bft_act_timer_set(out, PBFT_TIMER_REQUEST, s->req_tag, d);
}

static int cancel_request_timer(pbft_state *s, bft_actions *out) {
  s->req_nmarks = 0; /* nothing pending (or a new view): the next arming starts a new row */
  if (!s->req_armed) return 0;
  s->req_armed = 0;
  s->req_tag++;
  return bft_act_timer_cancel(out, PBFT_TIMER_REQUEST);
}

int pbft_on_request(pbft_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  s->pulled = 0; /* the pool has something new: a pull may now be answered */
  if (pbft_is_primary(s) && !s->changing) PBFT_TRY(pbft_maybe_pull(s, out));
  /* Everyone tracks what is pending and runs the timer (see arm_request_timer). */
  int added = bft_pending_add(&s->pend, digest, s->req_no + 1);
  if (added == 0) return 0;
  /* A full set only loses precision: the timer still runs for the ones we hold. */
  if (added > 0) s->req_no++;
  if (!s->req_armed && !s->changing && s->started) return arm_request_timer(s, out);
  return 0;
}

void pbft_requests_done(pbft_state *s, const uint8_t *batch, uint32_t len) {
  bft_pending_forget_batch(&s->pend, batch, len);
}

int pbft_after_delivery(pbft_state *s, bft_actions *out) {
  s->vc_backoff = 0; /* the view works: the next view change starts from the base timeout */
  if (s->pend.n == 0) PBFT_TRY(cancel_request_timer(s, out));
  if (s->fetching && s->committed >= s->fetch_target) {
    s->fetching = 0;
    s->fetch_mask = 0;
    s->fetch_tag++;
    PBFT_TRY(bft_act_timer_cancel(out, PBFT_TIMER_FETCH));
  }
  return pbft_maybe_pull(s, out); /* a delivery may have made room in the pipeline */
}

/* ---- view change -------------------------------------------------------------------------- */

int pbft_emit(pbft_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to,
              bft_actions *out) {
  int n = bft_engine_seal(&s->env, pbft_tag(kind), buf, len, buf, cap);
  if (n < 0) return n;
  if (to == PBFT_ALL) return bft_act_broadcast(out, kind, buf, (uint32_t)n);
  return bft_act_send(out, to, kind, buf, (uint32_t)n);
}

static int arm_view_timer(pbft_state *s, bft_actions *out) {
  s->vc_tag++;
  uint64_t d = (uint64_t)s->cfg.timeout_ms << s->vc_backoff;
  return bft_act_timer_set(out, PBFT_TIMER_VIEW, s->vc_tag, d);
}

int pbft_send_view_change(pbft_state *s, bft_actions *out) {
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u64(&w, s->view);
  wire_put_u32(&w, s->cfg.self);
  wire_put_u64(&w, s->h);
  wire_put_fixed(&w, s->h_digest, BFT_DIGEST_LEN);
  bft_qc_put(&w, &s->h_proof);
  uint32_t n = 0;
  for (uint64_t q = s->h + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl && sl->has_pcert) n++;
  }
  wire_put_u32(&w, n);
  for (uint64_t q = s->h + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (!sl || !sl->has_pcert) continue;
    wire_put_u64(&w, sl->pcert_view);
    wire_put_u64(&w, q);
    wire_put_fixed(&w, sl->pcert_digest, BFT_DIGEST_LEN);
    bft_qc_put(&w, &sl->pcert);
  }
  if (w.err) return w.err;
  int len = bft_engine_seal(&s->env, PBFT_TAG_VIEW_CHANGE, s->scratch, (uint32_t)w.len, s->scratch,
                            sizeof s->scratch);
  if (len < 0) return len;
  pbft_vcrec *mine = &s->vcs[s->cfg.self];
  mine->valid = 1;
  mine->view = s->view;
  mine->len = (uint32_t)len;
  memcpy(mine->body, s->scratch, (size_t)len);
  return bft_act_broadcast(out, PBFT_MSG_VIEW_CHANGE, s->scratch, (uint32_t)len);
}

static uint32_t count_vcs(const pbft_state *s, uint64_t view) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (s->vcs[i].valid && s->vcs[i].view == view) c++;
  return c;
}

/* Replicas that gave up on every view below `view` (a VIEW-CHANGE for it or a later one): the
 * view timer's "2f+1 replicas are changing views" condition. Counting only exact matches
 * would deadlock a split such as 2f+1-k replicas changing to v and k to v+1 (k < f+1). */
static uint32_t count_vcs_from(const pbft_state *s, uint64_t view) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (s->vcs[i].valid && s->vcs[i].view >= view) c++;
  return c;
}

static int maybe_new_view(pbft_state *s, bft_actions *out) {
  if (!s->changing || pbft_primary(s, s->view) != s->cfg.self) return 0;
  if (count_vcs(s, s->view) < s->q) return 0;
  return pbft_send_new_view(s, PBFT_ALL, out);
}

int pbft_start_view_change(pbft_state *s, uint64_t view, bft_actions *out) {
  if (view <= s->view) return 0;
  s->view = view;
  s->changing = 1;
  s->vc_nudged = 0;
  s->pulled = 0;
  PBFT_TRY(cancel_request_timer(s, out));
  /* Persist before speaking: a restarted replica must not take part in older views. */
  PBFT_TRY(pbft_persist_view(s, out));
  PBFT_TRY(pbft_send_view_change(s, out));
  PBFT_TRY(arm_view_timer(s, out));
  return maybe_new_view(s, out);
}

int pbft_vc_joined(pbft_state *s, uint32_t from, bft_actions *out) {
  (void)from;
  /* f+1 replicas want a view above ours: at least one correct replica suspects the primary,
   * so join the smallest such view rather than wait for our own timer (paper §4.5.2). */
  uint32_t cnt = 0;
  uint64_t low = UINT64_MAX;
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    if (i == s->cfg.self || !s->vcs[i].valid || s->vcs[i].view <= s->view) continue;
    cnt++;
    if (s->vcs[i].view < low) low = s->vcs[i].view;
  }
  if (cnt >= s->cfg.f + 1) return pbft_start_view_change(s, low, out);
  return maybe_new_view(s, out);
}

int pbft_send_new_view(pbft_state *s, uint32_t to, bft_actions *out) {
  if (to != PBFT_ALL) {
    /* A replica asks for a view we run: it missed our NEW-VIEW. */
    if (s->nv_len == 0 || s->nv_view != s->view) return 0;
    return bft_act_send(out, to, PBFT_MSG_NEW_VIEW, s->nv_body, s->nv_len);
  }
  const uint8_t *vcs[PBFT_QUORUM_MAX];
  uint32_t lens[PBFT_QUORUM_MAX], k = 0;
  uint32_t self = s->cfg.self;
  /* Ours plus the 2f lowest-numbered others, in replica order. */
  uint32_t others = 0;
  int have_self = 0;
  for (uint32_t i = 0; i < s->cfg.n && k < s->q; i++) {
    if (!s->vcs[i].valid || s->vcs[i].view != s->view) continue;
    if (i != self && others == s->q - 1) continue;
    if (i != self) others++;
    else have_self = 1;
    vcs[k] = s->vcs[i].body;
    lens[k] = s->vcs[i].len;
    k++;
  }
  if (k < s->q || !have_self) return 0;
  pbft_vc vc;
  pbft_o_set o;
  PBFT_TRY(pbft_compute_o(s, vcs, lens, k, &vc, &o));
  uint8_t osig[BFT_MAX_WINDOW * PBFT_NV_ENTRY];
  uint32_t m = (uint32_t)(o.max_s - o.min_s);
  for (uint32_t i = 0; i < m; i++) {
    uint8_t *e = osig + (size_t)i * PBFT_NV_ENTRY;
    uint64_t q = o.min_s + 1 + i;
    for (int b = 0; b < 8; b++) e[b] = (uint8_t)(q >> (8 * b));
    memcpy(e + 8, o.e[i].digest, BFT_DIGEST_LEN);
    uint8_t st[PBFT_VOTE_LEN];
    pbft_vote_stmt(st, s->view, q, o.e[i].digest, self);
    s->env.sign(s->env.ctx, PBFT_TAG_PREPARE, st, sizeof st, e + 8 + BFT_DIGEST_LEN);
  }
  /* Build it before installing (installing may move the watermarks and reuse scratch). */
  wire_writer w;
  wire_writer_init(&w, s->nv_body, sizeof s->nv_body);
  wire_put_u64(&w, s->view);
  wire_put_u32(&w, k);
  for (uint32_t i = 0; i < k; i++) wire_put_blob(&w, vcs[i], lens[i]);
  wire_put_u64(&w, o.min_s);
  wire_put_u32(&w, m);
  wire_put_fixed(&w, osig, (size_t)m * PBFT_NV_ENTRY);
  if (w.err) return w.err;
  int len = bft_engine_seal(&s->env, PBFT_TAG_NEW_VIEW, s->nv_body, (uint32_t)w.len, s->nv_body,
                            sizeof s->nv_body);
  if (len < 0) return len;
  s->nv_len = (uint32_t)len;
  s->nv_view = s->view;
  /* Install first: its PERSIST records (our prepares inside the NEW-VIEW) precede the send. */
  PBFT_TRY(pbft_install_new_view(s, s->view, &o, vcs, lens, k, osig, out));
  PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_NEW_VIEW, s->nv_body, s->nv_len));
  return pbft_entered_view(s, out);
}

/* Our pre-prepare of the slot again (we are its primary); 1 when the arena is too full. */
static int resend_pre_prepare(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (!sl->has_pp || sl->pp_view != s->view || !sl->has_batch ||
      memcmp(sl->batch_digest, sl->pp_digest, BFT_DIGEST_LEN) != 0 || !sl->prep.v[s->cfg.self].valid)
    return 0;
  if (out->arena_cap - out->used < sl->batch_len + 2u * 65536u) return 1;
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u64(&w, s->view);
  wire_put_u64(&w, sl->seq);
  wire_put_fixed(&w, sl->pp_digest, BFT_DIGEST_LEN);
  wire_put_fixed(&w, sl->prep.v[s->cfg.self].sig, BFT_SIG_LEN);
  wire_put_blob(&w, sl->batch, sl->batch_len);
  if (w.err) return w.err;
  return pbft_emit(s, PBFT_MSG_PRE_PREPARE, s->scratch, (uint32_t)w.len, sizeof s->scratch, PBFT_ALL, out);
}

int pbft_arm_retransmit(pbft_state *s, bft_actions *out) {
  if (s->rt_armed) return 0;
  s->rt_armed = 1;
  return bft_act_timer_set(out, PBFT_TIMER_RETRANSMIT, ++s->rt_tag, pbft_half_timeout(s));
}

/* Messages are sent once; on a lossy network a seq whose pre-prepare or votes were lost
 * would wait for a view change. When nothing was delivered for half a timeout, repeat what
 * we said in this view about the seqs not yet delivered (receivers drop duplicates). */
static int retransmit(pbft_state *s, bft_actions *out) {
  s->rt_armed = 0;
  if (s->changing) return 0;
  int pending = 0, stalled = s->committed == s->rt_committed;
  s->rt_committed = s->committed;
  for (uint64_t q = s->committed + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (!sl) continue;
    const bft_vote *pv = &sl->prep.v[s->cfg.self], *cv = &sl->com.v[s->cfg.self];
    int mine = (pv->valid && pv->round == s->view) || (cv->valid && cv->round == s->view);
    if (!mine) continue;
    pending = 1;
    if (!stalled) continue;
    if (pbft_is_primary(s)) {
      int rc = resend_pre_prepare(s, sl, out);
      if (rc == 1) break;
      PBFT_TRY(rc);
    }
    uint8_t msg[PBFT_VOTE_LEN + BFT_SIG_LEN];
    if (!pbft_is_primary(s) && pv->valid && pv->round == s->view) {
      pbft_vote_stmt(msg, pv->round, q, pv->digest, s->cfg.self);
      memcpy(msg + PBFT_VOTE_LEN, pv->sig, BFT_SIG_LEN);
      PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_PREPARE, msg, sizeof msg));
    }
    if (cv->valid && cv->round == s->view) {
      pbft_vote_stmt(msg, cv->round, q, cv->digest, s->cfg.self);
      memcpy(msg + PBFT_VOTE_LEN, cv->sig, BFT_SIG_LEN);
      PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_COMMIT, msg, sizeof msg));
    }
  }
  return pending ? pbft_arm_retransmit(s, out) : 0;
}

int pbft_entered_view(pbft_state *s, bft_actions *out) {
  s->pulled = 0;
  s->vc_tag++;
  PBFT_TRY(bft_act_timer_cancel(out, PBFT_TIMER_VIEW));
  if (pbft_is_primary(s)) {
    /* The NEW-VIEW fixed digests only; send the batches we hold so backups need not fetch
     * them (as far as this step's action arena allows). */
    uint8_t null_d[BFT_DIGEST_LEN];
    pbft_empty_digest(null_d);
    for (uint64_t q = s->h + 1; q <= s->next_seq; q++) {
      pbft_slot *sl = pbft_slot_get(s, q);
      if (!sl || memcmp(sl->pp_digest, null_d, BFT_DIGEST_LEN) == 0) continue;
      int rc = resend_pre_prepare(s, sl, out);
      if (rc == 1) break;
      PBFT_TRY(rc);
    }
  }
  s->req_nmarks = 0; /* a new primary gets PBFT_REQ_STRIKES periods of its own */
  if (s->pend.n > 0) PBFT_TRY(arm_request_timer(s, out));
  for (uint64_t q = s->h + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (!sl) continue;
    PBFT_TRY(pbft_accept_early(s, sl, out));
    PBFT_TRY(pbft_progress(s, sl, out));
  }
  PBFT_TRY(pbft_try_deliver(s, out));
  /* Re-proposed digests whose bytes we lack: as primary, ask those likely to hold them now; as
   * a backup, once the ask timer fires (the primary is re-sending what it holds just now). */
  PBFT_TRY(pbft_is_primary(s) ? pbft_ask_batches(s, 0, out) : pbft_arm_ask(s, out));
  return pbft_maybe_pull(s, out);
}

/* ---- catch-up ----------------------------------------------------------------------------- */

void pbft_need_fetch(pbft_state *s, uint64_t target, uint64_t mask, bft_actions *out) {
  if (target <= s->committed) return;
  mask &= ~(1ull << s->cfg.self);
  if (target > s->fetch_target) s->fetch_target = target;
  s->fetch_mask |= mask;
  if (s->fetching || !s->started) return; /* the fetch timer retries; one fetch at a time */
  s->fetching = 1;
  (void)pbft_fetch_kick(s, out);
}

int pbft_fetch_kick(pbft_state *s, bft_actions *out) {
  uint64_t mask = s->fetch_mask;
  if (!mask)
    for (uint32_t i = 0; i < s->cfg.n; i++)
      if (i != s->cfg.self) mask |= 1ull << i;
  /* Round robin over the replicas that proved they have it: a faulty one only delays us. */
  uint32_t to = s->cfg.self;
  for (uint32_t k = 0; k < s->cfg.n; k++) {
    uint32_t i = (s->fetch_rr + k) % s->cfg.n;
    if (mask & (1ull << i)) {
      to = i;
      break;
    }
  }
  s->fetch_rr = (to + 1) % s->cfg.n;
  s->fetch_tag++;
  PBFT_TRY(bft_act_fetch(out, to, s->committed + 1));
  return bft_act_timer_set(out, PBFT_TIMER_FETCH, s->fetch_tag, s->cfg.timeout_ms);
}

int pbft_arm_kick(pbft_state *s, bft_actions *out) {
  s->kick_tag++;
  return bft_act_timer_set(out, PBFT_TIMER_KICK, s->kick_tag, 1);
}

int pbft_on_sync(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
                 uint32_t cert_len, bft_actions *out) {
  if (seq != s->committed + 1) return pbft_reject(s, BFT_E_STALE);
  if (len > BFT_MAX_BATCH_BYTES || cert_len > BFT_MAX_CERT_BYTES) return pbft_reject(s, BFT_E_TOO_LARGE);
  PBFT_TRY(pbft_deliver_one(s, seq, batch, len, cert, cert_len, out));
  PBFT_TRY(pbft_after_delivery(s, out));
  return pbft_try_deliver(s, out);
}

/* ---- timers ------------------------------------------------------------------------------- */

/* Others are ahead of us: f+1 replicas other than us (one of them correct, so it prepared)
 * sent matching COMMITs for the next seq we must deliver. *mask gets them, *target the last seq
 * of the run above `committed` that has such COMMITs. */
static int commits_ahead(pbft_state *s, uint64_t *mask, uint64_t *target) {
  *mask = 0;
  *target = 0;
  for (uint64_t q = s->committed + 1; q <= s->h + s->cfg.window; q++) {
    const pbft_slot *sl = pbft_slot_get(s, q);
    if (!sl) break;
    uint64_t best = 0;
    uint32_t nbest = 0;
    for (uint32_t i = 0; i < s->cfg.n && i < 64; i++) {
      const bft_vote *a = &sl->com.v[i];
      if (i == s->cfg.self || !a->valid) continue;
      uint64_t m = 0;
      uint32_t k = 0;
      for (uint32_t j = 0; j < s->cfg.n && j < 64; j++) {
        const bft_vote *b = &sl->com.v[j];
        if (j != s->cfg.self && b->valid && memcmp(a->digest, b->digest, BFT_DIGEST_LEN) == 0) m |= 1ull << j, k++;
      }
      if (k > nbest) best = m, nbest = k;
    }
    if (nbest < s->cfg.f + 1) break;
    if (q == s->committed + 1) *mask = best;
    *target = q;
  }
  return *target != 0;
}

/* The request timer fired (see arm_request_timer for the rule and its bound). */
static int on_request_timeout(pbft_state *s, bft_actions *out) {
  /* The mark of the arming PBFT_REQ_STRIKES - 1 before this one: a request at or below it has
   * been pending for PBFT_REQ_STRIKES whole periods. */
  uint64_t old_mark = 0;
  int have_old = s->req_nmarks >= PBFT_REQ_STRIKES;
  if (have_old) old_mark = s->req_marks[(s->req_nmarks - PBFT_REQ_STRIKES) % PBFT_REQ_STRIKES];
  int stale = 0, old = 0;
  for (uint32_t i = 0; i < s->pend.n; i++) {
    if (s->pend.tag[i] <= s->req_mark) stale = 1;
    if (have_old && s->pend.tag[i] <= old_mark) old = 1;
  }
  /* Progress: a batch delivered, or a new pre-prepare or vote of this view accepted (the others
   * are still working in this view; our own copy of their COMMITs may just be late). */
  int progress = s->committed > s->req_committed || s->view_activity > s->req_activity;
  if (stale && (!progress || old)) {
    /* Before blaming the primary: if the others committed past us (a primary that drops our
     * messages leaves us without its PRE-PREPARE and its COMMIT, and once the cluster is idle
     * nothing else brings those seqs), fetch them from the replicas whose COMMITs we hold, once
     * per head; the next timeout with no delivery starts the view change. */
    uint64_t mask, target;
    if (s->req_fetched != s->committed + 1 && commits_ahead(s, &mask, &target)) {
      s->req_fetched = s->committed + 1;
      pbft_need_fetch(s, target, mask, out);
      return arm_request_timer(s, out);
    }
    return pbft_start_view_change(s, s->view + 1, out);
  }
  /* Stale but the cluster commits: stay in the view and keep voting. Nothing stale: every
   * request pending at the last arming moved on, so a new row of periods begins. */
  if (!stale) s->req_nmarks = 0;
  return s->pend.n ? arm_request_timer(s, out) : 0;
}

int pbft_on_timer(pbft_state *s, uint32_t id, uint64_t tag, bft_actions *out) {
  switch (id) {
    case PBFT_TIMER_REQUEST: {
      if (tag != s->req_tag || !s->req_armed) return 0; /* stale fire */
      s->req_armed = 0;
      if (s->changing) return 0;
      return on_request_timeout(s, out);
    }
    case PBFT_TIMER_VIEW: {
      if (tag != s->vc_tag || !s->changing) return 0;
      if (count_vcs_from(s, s->view) >= s->q && s->vc_nudged) {
        /* 2f+1 replicas moved yet no NEW-VIEW came: that primary failed too; wait longer. */
        if (s->vc_backoff < PBFT_MAX_BACKOFF) s->vc_backoff++;
        return pbft_start_view_change(s, s->view + 1, out);
      }
      /* Before giving up on this view, say our VIEW-CHANGE once more: if its primary started
       * the view without us (our NEW-VIEW was lost), it answers with its NEW-VIEW. */
      if (count_vcs_from(s, s->view) >= s->q) s->vc_nudged = 1;
      /* Too few joined us so far: say it again (our message may have been lost). */
      const pbft_vcrec *mine = &s->vcs[s->cfg.self];
      if (mine->valid && mine->view == s->view)
        PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_VIEW_CHANGE, mine->body, mine->len));
      return arm_view_timer(s, out);
    }
    case PBFT_TIMER_FETCH:
      if (tag != s->fetch_tag || !s->fetching) return 0;
      if (s->committed >= s->fetch_target) {
        s->fetching = 0;
        s->fetch_mask = 0;
        return 0;
      }
      s->fetch_mask = 0; /* the chosen ones did not answer: try everyone in turn */
      return pbft_fetch_kick(s, out);
    case PBFT_TIMER_RETRANSMIT:
      if (tag != s->rt_tag) return 0;
      return retransmit(s, out);
    case PBFT_TIMER_KICK:
      if (tag != s->kick_tag) return 0;
      return pbft_try_deliver(s, out);
    case PBFT_TIMER_BATCH:
      if (tag != s->ask_tag || !s->ask_armed) return 0;
      s->ask_armed = 0;
      return pbft_ask_batches(s, 1, out);
    case PBFT_TIMER_ANSWER:
      return pbft_on_answer_timer(s, tag);
    case PBFT_TIMER_CHECKPOINT: {
      if (tag != s->ck_tag || s->ck_last <= s->h) return 0;
      uint8_t b[PBFT_CKPT_LEN + BFT_SIG_LEN];
      pbft_ckpt_stmt(b, s->ck_last, s->ck_digest, s->cfg.self);
      PBFT_TRY(pbft_emit(s, PBFT_MSG_CHECKPOINT, b, PBFT_CKPT_LEN, sizeof b, PBFT_ALL, out));
      s->ck_tag++;
      return bft_act_timer_set(out, PBFT_TIMER_CHECKPOINT, s->ck_tag, s->cfg.timeout_ms);
    }
    default:
      return pbft_reject(s, BFT_E_INVAL);
  }
}
