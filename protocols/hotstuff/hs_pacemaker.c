/* HotStuff pacemaker (liveness only): round-robin leaders, entering views on a QC or on 2f+1
 * TIMEOUTs, the view timer with exponential back-off, joining a view change f+1 others
 * started, TIMEOUTs carrying the high QC and the latest vote (so the next leader extends the
 * highest certified block, and can still form the QC a failed leader never formed), and the
 * leader's proposals. Whether anything may be signed is decided in hs_safety.c. */
#include "protocols/hotstuff/hs_internal.h"

/* Leaders take turns by terms of HS_LEADER_TERM consecutive views (round robin); a failed
 * leader loses the rest of its term, so a crashed replica costs one timeout per rotation,
 * not one per turn of a view. */
uint32_t hs_leader(const hs_state *s, uint64_t view) { return (uint32_t)((view / HS_LEADER_TERM) % s->cfg.n); }

static uint64_t next_term(uint64_t view) { return (view / HS_LEADER_TERM + 1) * HS_LEADER_TERM; }

int hs_emit(hs_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to, bft_actions *out) {
  int n = bft_engine_seal(&s->env, hs_tag(kind), buf, len, buf, cap);
  if (n < 0) return n;
  if (to == HS_ALL) return bft_act_broadcast(out, kind, buf, (uint32_t)n);
  return bft_act_send(out, to, kind, buf, (uint32_t)n);
}

/* ---- the view timer ----------------------------------------------------------------------- */

/* The view timer: timeout_ms, doubled per consecutive timeout. Beyond the paper, liveness
 * only: a view that waits on a leader we already timed out on (its proposal, or the QC of our
 * vote that it should form) gets a quarter of the base, until that leader proposes again. A
 * crashed leader's term comes round every n terms and cost a whole timer each time; a correct
 * but slow leader loses at most one term to this (its next proposal clears the mark), and
 * the back-off still doubles towards any bound on the delay. */
static int arm_view_timer(hs_state *s, bft_actions *out) {
  s->view_tag++;
  s->view_armed = 1;
  uint32_t b = s->backoff < HS_MAX_BACKOFF ? s->backoff : HS_MAX_BACKOFF;
  uint64_t base = s->cfg.timeout_ms;
  if ((s->missed[hs_leader(s, s->view)] || s->missed[hs_leader(s, s->view + 1)]) && base / 4) base /= 4;
  return bft_act_timer_set(out, HS_TIMER_VIEW, s->view_tag, base << b);
}

/* Our view timer expired: blame the leader we were waiting on (the next view's, when we
 * voted in this one and its QC never came; else this view's). */
static void mark_missed(hs_state *s) {
  uint32_t l = hs_leader(s, s->have_last_vote && s->lv_view == s->view ? s->view + 1 : s->view);
  if (l != s->cfg.self) s->missed[l] = 1;
}

int hs_update_timer(hs_state *s, bft_actions *out) {
  int work = hs_work_pending(s);
  if (work && !s->view_armed) return arm_view_timer(s, out);
  if (!work && s->view_armed) {
    s->view_armed = 0;
    s->view_tag++;
    return bft_act_timer_cancel(out, HS_TIMER_VIEW);
  }
  return 0;
}

int hs_enter_view(hs_state *s, uint64_t view, int by_qc, bft_actions *out) {
  if (view <= s->view) return 0;
  s->view = view;
  s->timed_out = 0;
  s->by_tc = !by_qc;
  s->pulled = 0;
  s->prop_tag++; /* a pending empty-block proposal of the old view is stale */
  s->pull_later = !by_qc;
  if (!by_qc) {
    /* A view entered on timeouts: the requests of abandoned blocks may be proposed again. */
    s->epoch++;
    s->view_changes++;
    /* We will never vote below this view: say so in the TIMEOUTs we send from now on (our
     * answers to a replica left behind in an old view included). Otherwise a replica that
     * entered the view on the others' TIMEOUTs, without timing out there itself, answered a
     * laggard with an older view, or not at all; with f replicas silent the laggard then never
     * counted the 2f+1 (or f+1) TIMEOUTs it needs to follow, and no TC formed without it until
     * the back-off had grown for minutes (the simulator, n=7, byz-silent, seed 17775). */
    if (s->tmo[s->cfg.self] < view - 1) s->tmo[s->cfg.self] = view - 1;
  }
  if (s->has_cand && s->cand_view < view) s->has_cand = 0;
  /* A fresh timer for the new view (when there is work to time). */
  s->view_armed = 0;
  HS_TRY(hs_update_timer(s, out));
  HS_TRY(hs_try_vote(s, out));
  return hs_maybe_propose(s, out);
}

/* ---- timeouts ----------------------------------------------------------------------------- */

#define HS_ANSWERS_PER_STATE 2 /* one, and one more in case the first was lost */

/* 1 when we may answer `from`'s TIMEOUT of view tview once more (and count it). */
static int answer_budget(hs_state *s, uint32_t from, uint64_t tview) {
  if (s->ans_tview[from] != tview || s->ans_view[from] != s->view || s->ans_high[from] != s->high.view) {
    s->ans_tview[from] = tview;
    s->ans_view[from] = s->view;
    s->ans_high[from] = s->high.view;
    s->ans_count[from] = 0;
  }
  if (s->ans_count[from] >= HS_ANSWERS_PER_STATE) return 0;
  s->ans_count[from]++;
  return 1;
}

static int send_timeout(hs_state *s, uint32_t to, bft_actions *out) {
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u64(&w, s->tmo[s->cfg.self]);
  wire_put_u32(&w, s->cfg.self);
  hs_put_qc(&w, &s->high);
  wire_put_bool(&w, s->have_last_vote);
  if (s->have_last_vote) {
    wire_put_u64(&w, s->lv_view);
    wire_put_u64(&w, s->lv_height);
    wire_put_fixed(&w, s->lv_hash, BFT_DIGEST_LEN);
    wire_put_fixed(&w, s->lv_sig, BFT_SIG_LEN);
  }
  if (w.err) return w.err;
  return hs_emit(s, HS_MSG_TIMEOUT, s->scratch, (uint32_t)w.len, sizeof s->scratch, to, out);
}

/* The k-th largest view given up on, among all replicas or the others only. */
static uint64_t kth_tmo(const hs_state *s, uint32_t k, int others) {
  uint64_t v[BFT_MAX_REPLICAS];
  uint32_t m = 0;
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (!others || i != s->cfg.self) v[m++] = s->tmo[i];
  if (k == 0 || k > m) return 0;
  for (uint32_t a = 0; a < k; a++) /* partial selection sort: n <= 32 */
    for (uint32_t b = a + 1; b < m; b++)
      if (v[b] > v[a]) {
        uint64_t t = v[a];
        v[a] = v[b];
        v[b] = t;
      }
  return v[k - 1];
}

static int local_timeout(hs_state *s, bft_actions *out);

static int check_tc(hs_state *s, bft_actions *out) {
  /* 2f+1 replicas gave up on view w or later: nobody can form a QC there any more. This also
   * applies in view w + 1 when we entered it on the QC of w carried by a TIMEOUT (formed from
   * the votes the TIMEOUTs carried): the replica that formed it moved to the next term, and so
   * must we, or we would wait out a whole view timer in the failed leader's view alone. */
  uint64_t w = kth_tmo(s, s->q, 0);
  if (w > 0 && w + 1 >= s->view) {
    /* When their TIMEOUTs carried the votes of view w (we formed its QC from them), the block
     * of w was proposed and voted for: the leader those votes went to (of w + 1) failed;
     * otherwise the leader of w did. The failed leader's term is over. */
    uint64_t next = s->high.view == w ? next_term(w + 1) : next_term(w);
    HS_TRY(hs_enter_view(s, next, 0, out));
  }
  /* f+1 others gave up on w1 or later, so at least one correct replica did: join them. */
  uint64_t w1 = kth_tmo(s, s->cfg.f + 1, 1);
  if (w1 > 0 && w1 >= s->view && w1 > s->tmo[s->cfg.self]) {
    HS_TRY(hs_enter_view(s, w1, 0, out));
    return local_timeout(s, out);
  }
  return 0;
}

static int local_timeout(hs_state *s, bft_actions *out) {
  s->timed_out = 1;
  if (s->tmo[s->cfg.self] < s->view) s->tmo[s->cfg.self] = s->view;
  if (s->backoff < HS_MAX_BACKOFF) s->backoff++;
  HS_TRY(send_timeout(s, HS_ALL, out));
  HS_TRY(arm_view_timer(s, out)); /* repeats the TIMEOUT until the view changes */
  return check_tc(s, out);
}

int hs_on_timeout(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  hs_tmomsg t;
  int rc = hs_decode_tmo(p, len, &t);
  if (rc) return hs_reject(s, rc);
  if (t.replica != from) return hs_reject(s, BFT_E_MALFORMED);
  if (t.view > s->view + HS_VIEW_AHEAD) return hs_reject(s, BFT_E_WINDOW);
  /* Check what we will use before changing anything. */
  int use_qc = t.qc_view > s->high.view;
  hs_qc qc = {.view = t.qc_view, .height = t.qc_height};
  memcpy(qc.hash, t.qc_hash, BFT_DIGEST_LEN);
  if (use_qc) {
    bft_qc_from_view(&t.qc_sigs, &qc.sigs);
    rc = hs_check_qc(s, qc.view, qc.height, qc.hash, &qc.sigs);
    if (rc) return hs_reject(s, rc);
  }
  int use_vote = t.has_vote && t.v_view > s->high.view && t.v_view > 0 && t.v_height > 0;
  if (use_vote) {
    uint8_t body[HS_STMT_LEN - 4], st[BFT_STMT_MAX];
    hs_vote_body(body, t.v_view, t.v_height, t.v_hash);
    int n = bft_stmt_make(st, body, sizeof body, from);
    if (n < 0 || s->env.verify(s->env.ctx, from, HS_TAG_VOTE, st, (uint32_t)n, t.v_sig) != 0)
      return hs_reject(s, BFT_E_BAD_SIG);
  }
  /* A replica behind us learns our high QC (and our own timeout) from our answer. */
  int answer = t.view < s->view && (s->high.view > t.qc_view || s->tmo[s->cfg.self] > t.view);

  if (t.view > s->tmo[from]) s->tmo[from] = t.view;
  if (use_qc) HS_TRY(hs_on_qc(s, &qc, from, 1, out));
  /* Votes a TIMEOUT carries were meant for the leader of the next view. When they complete a
   * QC here, a replica that is not that leader stays in its view (the leader is presumed to
   * have failed: the TC moves everyone past its term, check_tc); the leader itself is live,
   * only late, and enters its view to propose on that QC, as its timely votes would have made
   * it. (Before, it stayed behind too, while the others entered its view on the QC its own
   * TIMEOUT carried, and waited there for a proposal that never came: the simulator, n=7,
   * byz-bad-sig, seed 40448.) */
  int leads_next = use_vote && hs_leader(s, t.v_view + 1) == s->cfg.self;
  if (use_vote) HS_TRY(hs_add_vote(s, from, t.v_view, t.v_height, t.v_hash, t.v_sig, leads_next, out));
  HS_TRY(check_tc(s, out));
  if (answer && answer_budget(s, from, t.view)) HS_TRY(send_timeout(s, from, out));
  return 0;
}

/* ---- proposing ---------------------------------------------------------------------------- */

static int may_propose(const hs_state *s) {
  if (!s->started || !s->root_valid || hs_leader(s, s->view) != s->cfg.self || s->voted_view >= s->view) return 0;
  /* We hold the QC of the view before (normal case), or came in on 2f+1 TIMEOUTs whose high
   * QCs we all processed, so we extend the highest certified block they know. */
  if (!(s->high.view + 1 == s->view || s->by_tc)) return 0;
  return s->high.height + 1 <= s->committed + HS_MAX_AHEAD;
}

int hs_maybe_propose(hs_state *s, bft_actions *out) {
  if (!may_propose(s) || s->pulled) return 0;
  if (s->pull_later) {
    /* A driver ends the pull epoch after the step that changed it, dropping a pull made in
     * that step: pull from the next step instead. */
    s->prop_tag++;
    return bft_act_timer_set(out, HS_TIMER_PROPOSE, s->prop_tag, HS_PROPOSE_WAIT_MS);
  }
  s->pulled = 1;
  HS_TRY(bft_act_pull(out, s->cfg.batch_max));
  /* Nothing may come of the pull: then move the pipeline on with an empty block, or, idle,
   * share the QC we formed (it commits at the others what it committed here). Blocks with
   * requests wait for the three views that commit them: an empty block to carry them on leaves
   * as soon as the pull went unanswered (a driver answers pulls before its timers fire), the
   * idle QC after a short wait for requests. */
  s->prop_tag++;
  return bft_act_timer_set(out, HS_TIMER_PROPOSE, s->prop_tag, hs_flush_needed(s) ? 0 : HS_PROPOSE_WAIT_MS);
}

static int propose(hs_state *s, const uint8_t *batch, uint32_t len, bft_actions *out) {
  hs_blockmsg m = {.view = s->view, .height = s->high.height + 1, .jview = s->high.view, .batch = batch,
                   .batch_len = len};
  memcpy(m.parent, s->high.hash, BFT_DIGEST_LEN);
  uint8_t bd[BFT_DIGEST_LEN], hash[BFT_DIGEST_LEN];
  bft_digest(bd, batch, len);
  hs_block_hash(m.view, m.height, m.parent, bd, hash);
  hs_block *b = hs_insert(s, &m, &s->high.sigs, hash, s->cfg.self, NULL);
  if (!b) return hs_reject(s, BFT_E_FULL);
  b->checked = 1;
  b->batch_ok = 1;
  s->prop_tag++;
  s->seen_view[s->cfg.self] = m.view;
  memcpy(s->seen_hash[s->cfg.self], hash, BFT_DIGEST_LEN);
  s->has_cand = 1;
  s->cand_view = m.view;
  memcpy(s->cand_hash, hash, BFT_DIGEST_LEN);
  /* The proposal leaves before our vote for it is durable (one sync less per view): a
   * proposal is not a vote, and our vote leaves (to the next leader, or inside a QC we form)
   * only in sends that follow its PERSIST. A leader that crashes in between and proposes
   * another block in this view after a restart never signed anything else that left. */
  int n = hs_encode_block(b, s->scratch, sizeof s->scratch);
  if (n < 0) return n;
  HS_TRY(hs_emit(s, HS_MSG_PROPOSAL, s->scratch, (uint32_t)n, sizeof s->scratch, HS_ALL, out));
  HS_TRY(hs_cast_vote(s, b, out));
  return hs_settle(s, out);
}

int hs_on_batch(hs_state *s, const uint8_t *batch, uint32_t len, bft_actions *out) {
  if (!s->pulled || !may_propose(s)) return hs_reject(s, BFT_E_STATE);
  if (len > BFT_MAX_BATCH_BYTES) return hs_reject(s, BFT_E_TOO_LARGE);
  return propose(s, batch, len, out);
}

int hs_on_request(hs_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  /* A full set only loses precision: the timer still runs for the ones we hold. */
  (void)bft_pending_add(&s->pend, digest, 0);
  s->pulled = 0; /* the pool has something new: a pull may now be answered */
  HS_TRY(hs_update_timer(s, out));
  return hs_maybe_propose(s, out);
}

void hs_requests_done(hs_state *s, const uint8_t *batch, uint32_t len) {
  bft_pending_forget_batch(&s->pend, batch, len);
}

/* Idle, the leader broadcasts the QC it formed (HS_TIMER_PROPOSE), which commits at the others
 * what it committed. A faulty leader may not, and then a correct replica that missed the last
 * QC stays a block behind for as long as the cluster is idle (a real-process test with a
 * corrupting leader saw it: two correct replicas at 103, one at 102, for good). So every other
 * replica that goes idle also shares its high QC once, after half a timeout: n - 1 TIMEOUTs
 * per idle period, none under load. */
static int arm_share(hs_state *s, bft_actions *out) {
  if (hs_leader(s, s->view) == s->cfg.self || hs_work_pending(s) || s->announced >= s->high.view) return 0;
  uint64_t d = s->cfg.timeout_ms / 2 ? s->cfg.timeout_ms / 2 : 1;
  return bft_act_timer_set(out, HS_TIMER_SHARE, ++s->share_tag, d);
}

int hs_after_delivery(hs_state *s, bft_actions *out) {
  s->backoff = 0; /* the views work: the next timeout starts from the base */
  if (s->sync_target <= s->committed) s->sync_target = 0;
  HS_TRY(hs_update_timer(s, out));
  return arm_share(s, out);
}

int hs_on_timer(hs_state *s, uint32_t id, uint64_t tag, bft_actions *out) {
  switch (id) {
    case HS_TIMER_VIEW:
      if (tag != s->view_tag || !s->view_armed) return 0; /* stale */
      s->view_armed = 0;
      if (!hs_work_pending(s)) return 0; /* idle: nothing to time */
      mark_missed(s);
      return local_timeout(s, out);
    case HS_TIMER_PROPOSE: {
      if (tag != s->prop_tag || !may_propose(s)) return 0;
      if (s->pull_later) {
        s->pull_later = 0;
        return hs_maybe_propose(s, out);
      }
      if (!hs_flush_needed(s)) {
        if (s->announced >= s->high.view) return 0;
        s->announced = s->high.view; /* a TIMEOUT of no new view: it only carries the high QC */
        return send_timeout(s, HS_ALL, out);
      }
      uint8_t empty[4];
      uint32_t n = bft_batch_encoded_empty(empty);
      return propose(s, empty, n, out);
    }
    case HS_TIMER_FETCH:
      if (tag != s->fetch_tag) return 0;
      return hs_fetch_kick(s, out);
    case HS_TIMER_SHARE:
      if (tag != s->share_tag || hs_work_pending(s) || s->announced >= s->high.view) return 0;
      s->announced = s->high.view; /* a TIMEOUT of no new view: it only carries the high QC */
      return send_timeout(s, HS_ALL, out);
    default: return hs_reject(s, BFT_E_INVAL);
  }
}
