/* PBFT safety: when a replica may accept a pre-prepare, vote, count a certificate, trust a
 * VIEW-CHANGE, and accept a NEW-VIEW (recomputed from its view-changes, as in Castro & Liskov
 * §4.4 / TOCS §4.5). Nothing here depends on timing; timers and triggers are in
 * pbft_liveness.c. Every handler checks everything before it changes anything. */
#include "protocols/pbft/pbft_internal.h"

int pbft_may_vote(const pbft_mine *m, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (!m->valid || m->view < view) return 1;
  return m->view == view && memcmp(m->digest, digest, BFT_DIGEST_LEN) == 0;
}

static void set_mine(pbft_mine *m, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]) {
  m->valid = 1;
  m->view = view;
  memcpy(m->digest, digest, BFT_DIGEST_LEN);
}

int pbft_build_commit_cert(const pbft_state *s, const pbft_slot *sl, uint8_t *buf, uint32_t cap) {
  BFT_ASSERT(sl->committed && sl->ccert.count == s->q);
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u64(&w, sl->cm_view);
  bft_qc_put(&w, &sl->ccert);
  return w.err ? w.err : (int)w.len;
}

int pbft_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                     const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  if (cfg->n < BFT_MIN_REPLICAS || cfg->n > PBFT_MAX_REPLICAS || cfg->f != (cfg->n - 1) / 3)
    return BFT_E_INVAL;
  if (len > PBFT_CERT_MAX) return BFT_E_BAD_CERT;
  wire_reader r;
  wire_reader_init(&r, cert, len);
  uint64_t view = wire_get_u64(&r);
  bft_qc_view qc;
  bft_qc_get(&r, &qc);
  if (wire_reader_finish(&r) != 0) return BFT_E_BAD_CERT;
  return pbft_verify_votes(cfg, env, PBFT_TAG_COMMIT, view, seq, digest, &qc, UINT32_MAX);
}

/* ---- normal case -------------------------------------------------------------------------- */

static int sign_vote(pbft_state *s, uint8_t kind, uint64_t view, uint64_t seq,
                     const uint8_t digest[BFT_DIGEST_LEN], uint8_t msg[PBFT_VOTE_LEN + BFT_SIG_LEN]) {
  pbft_vote_stmt(msg, view, seq, digest, s->cfg.self);
  s->env.sign(s->env.ctx, pbft_tag(kind), msg, PBFT_VOTE_LEN, msg + PBFT_VOTE_LEN);
  return 0;
}

int pbft_send_prepare(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (!pbft_may_vote(&sl->my_prep, sl->pp_view, sl->pp_digest)) return BFT_E_STATE;
  uint8_t msg[PBFT_VOTE_LEN + BFT_SIG_LEN];
  sign_vote(s, PBFT_MSG_PREPARE, sl->pp_view, sl->seq, sl->pp_digest, msg);
  if (!(sl->my_prep.valid && sl->my_prep.view == sl->pp_view))
    PBFT_TRY(pbft_persist_vote(s, PBFT_MSG_PREPARE, sl->pp_view, sl->seq, sl->pp_digest, out));
  set_mine(&sl->my_prep, sl->pp_view, sl->pp_digest);
  pbft_bytes_vote(sl, sl->pp_view, sl->pp_digest);
  bft_voteset_set(&sl->prep, s->cfg.self, sl->pp_view, sl->seq, sl->pp_digest, msg + PBFT_VOTE_LEN);
  PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_PREPARE, msg, sizeof msg));
  return pbft_arm_retransmit(s, out);
}

static int send_commit(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (!pbft_may_vote(&sl->my_com, sl->pp_view, sl->pp_digest)) return 0; /* never two digests */
  uint8_t msg[PBFT_VOTE_LEN + BFT_SIG_LEN];
  sign_vote(s, PBFT_MSG_COMMIT, sl->pp_view, sl->seq, sl->pp_digest, msg);
  /* The PCERT record doubles as the record of this COMMIT vote. */
  PBFT_TRY(pbft_persist_pcert(s, sl, out));
  set_mine(&sl->my_com, sl->pp_view, sl->pp_digest);
  bft_voteset_set(&sl->com, s->cfg.self, sl->pp_view, sl->seq, sl->pp_digest, msg + PBFT_VOTE_LEN);
  PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_COMMIT, msg, sizeof msg));
  return pbft_arm_retransmit(s, out);
}

/* A commit certificate for any (view, digest) at this seq: 2f+1 COMMITs, so f+1 correct
 * replicas prepared it and no other digest can ever commit here. It settles the seq even
 * without our own pre-prepare (lost, or a view we were not in): we deliver once we have the
 * bytes, fetching them from the signers otherwise. */
static int check_committed(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (sl->committed) return 0;
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    const bft_vote *v = &sl->com.v[i];
    if (!v->valid) continue;
    BFT_ASSERT(v->height == sl->seq);
    bft_qc c;
    if (!bft_voteset_qc(&sl->com, &s->cfg, v->round, sl->seq, v->digest, UINT32_MAX, &c)) continue;
    sl->committed = 1;
    sl->ccert = c;
    sl->cm_view = v->round;
    memcpy(sl->cm_digest, v->digest, BFT_DIGEST_LEN);
    PBFT_TRY(pbft_ask_slot(s, sl, 0, out)); /* nothing when we hold the bytes */
    return pbft_try_deliver(s, out);
  }
  return 0;
}

int pbft_progress(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (!sl->has_pp || sl->pp_view != s->view || s->changing) return check_committed(s, sl, out);
  if (!sl->prepared) {
    /* prepared = the pre-prepare (the primary's prepare) + 2f matching prepares. */
    bft_qc c;
    if (!bft_voteset_qc(&sl->prep, &s->cfg, sl->pp_view, sl->seq, sl->pp_digest, pbft_primary(s, sl->pp_view),
                        &c))
      return 0;
    sl->prepared = 1;
    sl->has_pcert = 1;
    sl->pcert_view = sl->pp_view;
    memcpy(sl->pcert_digest, sl->pp_digest, BFT_DIGEST_LEN);
    sl->pcert = c;
    PBFT_TRY(send_commit(s, sl, out));
  }
  return check_committed(s, sl, out);
}

/* A replica repeats its PRE-PREPARE/PREPARE for a seq we already delivered: it is stuck there
 * for want of COMMITs that were lost. Hand it ours (never in answer to a COMMIT, so two
 * replicas cannot answer each other forever). */
static int help_laggard(pbft_state *s, pbft_slot *sl, uint32_t to, bft_actions *out) {
  if (!sl || sl->seq > s->committed || !sl->com.v[s->cfg.self].valid) return 0;
  const bft_vote *cv = &sl->com.v[s->cfg.self];
  uint8_t msg[PBFT_VOTE_LEN + BFT_SIG_LEN];
  pbft_vote_stmt(msg, cv->round, sl->seq, cv->digest, s->cfg.self);
  memcpy(msg + PBFT_VOTE_LEN, cv->sig, BFT_SIG_LEN);
  PBFT_TRY(bft_act_send(out, to, PBFT_MSG_COMMIT, msg, sizeof msg));
  return 1;
}

/* Accept the slot's pre-prepare (view, digest) by the primary, whose prepare signature is
 * `psig`, with its batch bytes: check the batch, keep the bytes if the slot may, vote PREPARE. */
static int accept_pre_prepare(pbft_state *s, pbft_slot *sl, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN],
                              const uint8_t psig[BFT_SIG_LEN], const uint8_t *batch, uint32_t blen,
                              bft_actions *out) {
  if (!pbft_may_vote(&sl->my_prep, view, digest)) return BFT_E_STATE;
  int rc = s->env.check_batch(s->env.ctx, batch, blen);
  if (rc) return rc < 0 ? rc : BFT_E_MALFORMED;
  PBFT_TRY(pbft_take_bytes(s, sl, batch, blen, digest, out));
  sl->has_pp = 1;
  sl->pp_view = view;
  memcpy(sl->pp_digest, digest, BFT_DIGEST_LEN);
  sl->prepared = 0;
  bft_voteset_set(&sl->prep, pbft_primary(s, view), view, sl->seq, digest, psig);
  PBFT_TRY(pbft_send_prepare(s, sl, out));
  return pbft_progress(s, sl, out);
}

/* Keep the bytes of a batch in the slot (one buffer per slot), unless the bytes there may
 * still be needed: those of our prepared certificate (a later NEW-VIEW may re-propose them,
 * and we may be the only correct replica left holding them), of a commit certificate we have
 * yet to deliver, or of a batch we voted for (below). A batch we could not keep is fetched if it
 * ever commits. What a slot holds is persisted first (BATCH record): a restart must not lose
 * the bytes we may be the last to hold.
 *
 * Why the bytes of a batch we voted for, not only those of our prepared certificate: a
 * prepared certificate for D1 in view v is 2f+1 PREPAREs, so f+1 correct replicas voted for D1
 * (with its bytes, when D1 was a new proposal), but maybe none of them collected the
 * certificate; only a faulty replica may hold it. If the NEW-VIEW of v+1 leaves the seq free
 * (its view-changes carry no certificate there) and the new primary proposes D2 at the seq,
 * those voters, having no certificate, used to take D2's bytes in place of D1's. Should D2 not
 * prepare, a later NEW-VIEW built with the faulty replica's VIEW-CHANGE re-proposes D1, the
 * highest certificate, and no correct replica holds its bytes any more: D1 can commit and
 * never be delivered. So a slot now keeps the bytes of the batch it voted for against any
 * other batch until one of its own certificates settles it: a commit certificate for another
 * digest (D1 can then never commit at this seq) or a prepared certificate for another digest
 * from a later view than our vote (the one a NEW-VIEW including our VIEW-CHANGE re-proposes,
 * and the one we then keep). Until then we vote for D2 without its bytes, as for a NEW-VIEW
 * entry, and fetch them by digest if D2 commits. One buffer per slot, no more memory; the
 * primary's own new proposal (pbft_on_batch) still replaces them: the other correct voters of
 * D1 keep theirs. */
static int may_replace(const pbft_state *s, const pbft_slot *sl, const uint8_t digest[BFT_DIGEST_LEN]) {
  const uint8_t *held = sl->batch_digest;
  if (!sl->has_batch || memcmp(held, digest, BFT_DIGEST_LEN) == 0) return 1;
  if (sl->committed && memcmp(sl->cm_digest, held, BFT_DIGEST_LEN) != 0) return 1; /* held never commits */
  if (sl->committed && sl->seq > s->committed) return 0;
  if (sl->has_pcert && memcmp(sl->pcert_digest, held, BFT_DIGEST_LEN) == 0) return 0;
  if (sl->bytes_voted && !(sl->has_pcert && sl->pcert_view > sl->bytes_view)) return 0;
  return 1;
}

void pbft_bytes_vote(pbft_slot *sl, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (!sl->has_batch || memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) != 0) return;
  sl->bytes_voted = 1;
  sl->bytes_view = view;
}

int pbft_take_bytes(pbft_state *s, pbft_slot *sl, const uint8_t *batch, uint32_t blen,
                    const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  if (sl->has_batch && memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) == 0) return 1;
  if (!may_replace(s, sl, digest)) return 0;
  PBFT_TRY(pbft_persist_batch(s, sl->seq, batch, blen, out));
  memcpy(sl->batch, batch, blen);
  sl->batch_len = blen;
  memcpy(sl->batch_digest, digest, BFT_DIGEST_LEN);
  sl->has_batch = 1;
  sl->bytes_voted = 0;
  /* Fetched bytes of a batch we already voted for (a NEW-VIEW entry) are ours to keep. */
  if (sl->my_prep.valid) pbft_bytes_vote(sl, sl->my_prep.view, sl->my_prep.digest);
  return 1;
}

int pbft_bytes_wanted(const pbft_state *s, const pbft_slot *sl, const uint8_t digest[BFT_DIGEST_LEN]) {
  uint8_t null_d[BFT_DIGEST_LEN];
  pbft_empty_digest(null_d);
  if (sl->seq <= s->committed || memcmp(digest, null_d, BFT_DIGEST_LEN) == 0) return 0;
  if (sl->has_batch && memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) == 0) return 0;
  int use = (sl->has_pp && memcmp(sl->pp_digest, digest, BFT_DIGEST_LEN) == 0) ||
            (sl->committed && memcmp(sl->cm_digest, digest, BFT_DIGEST_LEN) == 0) ||
            (sl->early && memcmp(sl->early_digest, digest, BFT_DIGEST_LEN) == 0) ||
            (sl->has_pcert && memcmp(sl->pcert_digest, digest, BFT_DIGEST_LEN) == 0);
  return use && may_replace(s, sl, digest);
}

/* Replica `from` signed a vote (or a pre-prepare's embedded prepare) for (view, seq) with
 * another digest than the one held: both statements, as messages of `kind`, are evidence
 * anyone can check. Reported once per offender and view; 1 when reported, 0 when not again. */
static int equivocation(pbft_state *s, uint8_t kind, uint32_t from, const bft_vote *held, const uint8_t digest[BFT_DIGEST_LEN],
                        const uint8_t sig[BFT_SIG_LEN], bft_actions *out) {
  if (s->evidence_view[from] == held->round + 1) return 0;
  s->evidence_view[from] = held->round + 1;
  s->rej.equivocations++;
  uint8_t a[PBFT_VOTE_LEN + BFT_SIG_LEN], b[PBFT_VOTE_LEN + BFT_SIG_LEN];
  pbft_vote_stmt(a, held->round, held->height, held->digest, from);
  memcpy(a + PBFT_VOTE_LEN, held->sig, BFT_SIG_LEN);
  pbft_vote_stmt(b, held->round, held->height, digest, from);
  memcpy(b + PBFT_VOTE_LEN, sig, BFT_SIG_LEN);
  PBFT_TRY(bft_act_evidence(out, from, kind, a, sizeof a, b, sizeof b));
  return 1;
}

int pbft_on_pre_prepare(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint64_t view = wire_get_u64(&r), seq = wire_get_u64(&r);
  uint8_t digest[BFT_DIGEST_LEN];
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  const uint8_t *psig = wire_get_view(&r, BFT_SIG_LEN);
  uint32_t blen;
  const uint8_t *batch = wire_get_blob(&r, &blen, BFT_MAX_BATCH_BYTES);
  int rc = wire_reader_finish(&r);
  if (rc) return pbft_reject(s, rc);
  if (from != pbft_primary(s, view)) return pbft_reject(s, BFT_E_STATE);
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, batch, blen);
  if (memcmp(d, digest, BFT_DIGEST_LEN) != 0) return pbft_reject(s, BFT_E_BAD_DIGEST);
  pbft_slot *sl = pbft_slot_get(s, seq);
  int early = s->changing; /* the dispatch let through only view == s->view */
  if (sl && !early && sl->has_pp && sl->pp_view == view) {
    /* One pre-prepare per (view, seq). The same one again only brings bytes we may lack
     * (a NEW-VIEW re-proposal carries digests only). */
    if (memcmp(sl->pp_digest, digest, BFT_DIGEST_LEN) != 0) {
      /* A second pre-prepare for this (view, seq): its embedded prepare, signed, conflicts with
       * the first one's (held as the primary's prepare vote). */
      const bft_vote *held = &sl->prep.v[from];
      uint8_t st[PBFT_VOTE_LEN];
      pbft_vote_stmt(st, view, seq, digest, from);
      if (held->valid && held->round == view && held->height == seq &&
          s->env.verify(s->env.ctx, from, PBFT_TAG_PREPARE, st, sizeof st, psig) == 0) {
        rc = equivocation(s, PBFT_MSG_PREPARE, from, held, digest, psig, out);
        if (rc) return rc < 0 ? rc : 0;
      }
      return pbft_reject(s, BFT_E_STATE);
    }
    if (sl->has_batch && memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) == 0) {
      rc = help_laggard(s, sl, from, out);
      return rc ? (rc < 0 ? rc : 0) : pbft_reject(s, BFT_E_DUPLICATE);
    }
    rc = pbft_take_bytes(s, sl, batch, blen, digest, out);
    if (rc <= 0) return rc < 0 ? rc : pbft_reject(s, BFT_E_DUPLICATE); /* bytes we may not keep */
    return pbft_try_deliver(s, out);
  }
  if (sl && early && sl->early && sl->early_view == view)
    return pbft_reject(s, memcmp(sl->early_digest, digest, BFT_DIGEST_LEN) == 0 ? BFT_E_DUPLICATE : BFT_E_STATE);
  if (sl && !pbft_may_vote(&sl->my_prep, view, digest)) return pbft_reject(s, BFT_E_STATE);
  uint8_t st[PBFT_VOTE_LEN];
  pbft_vote_stmt(st, view, seq, digest, from);
  if (s->env.verify(s->env.ctx, from, PBFT_TAG_PREPARE, st, sizeof st, psig) != 0)
    return pbft_reject(s, BFT_E_BAD_CERT);
  if (early) {
    /* It overtook the NEW-VIEW of its view: hold it until that arrives (pbft_entered_view). */
    sl = pbft_slot_make(s, seq);
    rc = pbft_take_bytes(s, sl, batch, blen, digest, out);
    if (rc <= 0) return rc; /* 0: the primary repeats it later */
    sl->early = 1;
    sl->early_view = view;
    memcpy(sl->early_digest, digest, BFT_DIGEST_LEN);
    memcpy(sl->early_sig, psig, BFT_SIG_LEN);
    return 0;
  }
  rc = s->env.check_batch(s->env.ctx, batch, blen);
  if (rc) return pbft_reject(s, rc < 0 ? rc : BFT_E_MALFORMED);
  sl = pbft_slot_make(s, seq);
  return accept_pre_prepare(s, sl, view, digest, psig, batch, blen, out);
}

int pbft_accept_early(pbft_state *s, pbft_slot *sl, bft_actions *out) {
  if (!sl->early) return 0;
  sl->early = 0;
  if (sl->early_view != s->view || s->changing) return 0;
  if (sl->has_pp && sl->pp_view == s->view) return 0; /* fixed by the NEW-VIEW; bytes are in */
  if (!sl->has_batch || memcmp(sl->batch_digest, sl->early_digest, BFT_DIGEST_LEN) != 0) return 0;
  int rc = accept_pre_prepare(s, sl, sl->early_view, sl->early_digest, sl->early_sig, sl->batch, sl->batch_len, out);
  return rc == BFT_E_FULL ? rc : 0; /* a refused proposal is the primary's loss, not ours */
}

/* Send `to`, whose stable checkpoint is `from_seq`, what lets it catch up with us: our vote
 * for our stable checkpoint (with 2f others it moves its watermarks and fetches) and our
 * COMMITs for the seqs we delivered above it. */
static int help_behind(pbft_state *s, uint32_t to, uint64_t from_seq, bft_actions *out) {
  if (from_seq < s->h && s->committed >= s->h) {
    uint8_t b[PBFT_CKPT_LEN + BFT_SIG_LEN];
    pbft_ckpt_stmt(b, s->h, s->h_digest, s->cfg.self);
    s->env.sign(s->env.ctx, PBFT_TAG_CHECKPOINT, b, PBFT_CKPT_LEN, b + PBFT_CKPT_LEN);
    PBFT_TRY(bft_act_send(out, to, PBFT_MSG_CHECKPOINT, b, sizeof b));
  }
  uint64_t lo = from_seq > s->h ? from_seq : s->h;
  for (uint64_t q = lo + 1; q <= s->committed && q <= s->h + s->cfg.window; q++)
    PBFT_TRY(help_laggard(s, pbft_slot_get(s, q), to, out));
  return 0;
}

/* PREPARE and COMMIT: a signed statement from `from`; one per replica per (view, seq). */
static int on_vote(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, int commit,
                   bft_actions *out) {
  uint64_t view, seq;
  uint32_t replica;
  uint8_t digest[BFT_DIGEST_LEN];
  int rc = pbft_decode_vote(p, len, &view, &seq, digest, &replica);
  if (rc) return pbft_reject(s, rc);
  if (replica != from) return pbft_reject(s, BFT_E_MALFORMED);
  /* (the dispatch checked seq against the watermarks) */
  pbft_slot *sl = pbft_slot_get(s, seq);
  if (!sl) sl = pbft_slot_make(s, seq); /* a fresh slot: the vote below is NEW */
  BFT_ASSERT(sl != NULL);
  switch (bft_voteset_add(commit ? &sl->com : &sl->prep, from, view, seq, digest, p + len)) {
    case BFT_VOTE_NEW: return pbft_progress(s, sl, out);
    case BFT_VOTE_SAME:
      rc = commit ? 0 : help_laggard(s, sl, from, out);
      return rc ? (rc < 0 ? rc : 0) : pbft_reject(s, BFT_E_DUPLICATE);
    case BFT_VOTE_CONFLICT: { /* equivocation: keep the first vote, report both */
      rc = equivocation(s, commit ? PBFT_MSG_COMMIT : PBFT_MSG_PREPARE, from, &(commit ? &sl->com : &sl->prep)->v[from],
                        digest, p + len, out);
      return rc ? (rc < 0 ? rc : 0) : pbft_reject(s, BFT_E_STATE);
    }
    default: return pbft_reject(s, BFT_E_STALE);
  }
}

int pbft_on_prepare(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  return on_vote(s, from, p, len, 0, out);
}

int pbft_on_commit(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  return on_vote(s, from, p, len, 1, out);
}

/* ---- checkpoints -------------------------------------------------------------------------- */

int pbft_on_checkpoint(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  uint64_t seq;
  uint32_t replica;
  uint8_t digest[BFT_DIGEST_LEN];
  int rc = pbft_decode_ckpt(p, len, &seq, digest, &replica);
  if (rc) return pbft_reject(s, rc);
  if (replica != from || seq == 0 || seq % s->cfg.checkpoint_interval != 0)
    return pbft_reject(s, BFT_E_MALFORMED);
  const uint8_t *sig = p + len;
  if (seq <= s->h) {
    /* A peer that is behind: tell it about our stable checkpoint (once it holds 2f+1 such
     * votes it moves its watermarks and fetches), if we executed it ourselves. */
    if (seq < s->h && s->committed >= s->h) {
      uint8_t b[PBFT_CKPT_LEN + BFT_SIG_LEN];
      pbft_ckpt_stmt(b, s->h, s->h_digest, s->cfg.self);
      s->env.sign(s->env.ctx, PBFT_TAG_CHECKPOINT, b, PBFT_CKPT_LEN, b + PBFT_CKPT_LEN);
      PBFT_TRY(bft_act_send(out, from, PBFT_MSG_CHECKPOINT, b, sizeof b));
      return 0;
    }
    return pbft_reject(s, BFT_E_STALE);
  }
  if (pbft_in_window(s, seq)) {
    uint32_t K = s->cfg.checkpoint_interval;
    pbft_ckpt *c = &s->ckpt[(seq / K) % (s->cfg.window / K)];
    if (!c->used || c->seq != seq) {
      memset(c, 0, sizeof *c);
      c->used = 1;
      c->seq = seq;
    }
    switch (bft_voteset_add(&c->v, from, 0, seq, digest, sig)) {
      case BFT_VOTE_NEW: break;
      case BFT_VOTE_SAME: return pbft_reject(s, BFT_E_DUPLICATE);
      default: return pbft_reject(s, BFT_E_STATE); /* another digest at this seq: keep the first */
    }
  } else {
    /* Above our window: keep the latest per replica; enough of them prove we are behind. */
    switch (bft_voteset_add(&s->far_ckpt, from, 0, seq, digest, sig)) {
      case BFT_VOTE_NEW: break;
      case BFT_VOTE_STALE: return pbft_reject(s, BFT_E_STALE);
      default: return pbft_reject(s, BFT_E_DUPLICATE); /* this seq again, whatever the digest */
    }
  }
  PBFT_TRY(pbft_ckpt_check_stable(s, seq, digest, out));
  if (seq > s->committed && seq > s->h) {
    /* f+1 replicas (one of them correct) executed up to seq and we did not: fetch from
     * them rather than wait for votes that were lost or are long gone. */
    uint64_t mask = 0;
    uint32_t cnt = 0;
    for (uint32_t i = 0; i < s->cfg.n; i++) {
      if (i == s->cfg.self) continue;
      int x = 0;
      if (pbft_in_window(s, seq)) {
        uint32_t K = s->cfg.checkpoint_interval;
        const pbft_ckpt *c = &s->ckpt[(seq / K) % (s->cfg.window / K)];
        x = c->used && c->seq == seq && c->v.v[i].valid;
      }
      if (!x) x = s->far_ckpt.v[i].valid && s->far_ckpt.v[i].height >= seq;
      if (x) {
        mask |= 1ull << i;
        cnt++;
      }
    }
    if (cnt >= s->cfg.f + 1) pbft_need_fetch(s, seq, mask, out);
  }
  return 0;
}

/* ---- view change -------------------------------------------------------------------------- */

int pbft_validate_vc(pbft_state *s, const uint8_t *body, uint32_t len, pbft_vc *vc) {
  if (len < BFT_SIG_LEN || len > PBFT_VC_BODY_MAX) return BFT_E_MALFORMED;
  uint32_t plen = len - BFT_SIG_LEN;
  int rc = pbft_decode_vc(body, plen, vc);
  if (rc) return rc;
  if (vc->replica >= s->cfg.n) return BFT_E_MALFORMED;
  /* Already validated these very bytes (when they arrived on their own)? */
  const pbft_vcrec *st = &s->vcs[vc->replica];
  if (st->valid && st->len == len && memcmp(st->body, body, len) == 0) return 0;
  if (s->env.verify(s->env.ctx, vc->replica, PBFT_TAG_VIEW_CHANGE, body, plen, body + plen) != 0)
    return BFT_E_BAD_SIG;
  if (vc->stable_seq % s->cfg.checkpoint_interval != 0) return BFT_E_MALFORMED;
  if (vc->stable_seq > 0 && pbft_verify_ckpts(&s->cfg, &s->env, vc->stable_seq, vc->stable_digest, &vc->proof) != 0)
    return BFT_E_BAD_CERT;
  for (uint32_t i = 0; i < vc->n; i++) {
    const pbft_vc_entry *e = &vc->e[i];
    if (e->seq > vc->stable_seq + s->cfg.window) return BFT_E_MALFORMED;
    /* A prepared certificate: the pre-prepare (primary's prepare) + 2f prepares. */
    if (pbft_verify_votes(&s->cfg, &s->env, PBFT_TAG_PREPARE, e->view, e->seq, e->digest, &e->sigs,
                          pbft_primary(s, e->view)) != 0)
      return BFT_E_BAD_CERT;
  }
  return 0;
}

/* The NEW-VIEW's contents as a function of its view-changes (the paper's O set): min-s is
 * the latest stable checkpoint among them; every seq in (min-s, max-s] gets the digest of the
 * prepared certificate with the highest view for it, or the null (empty) batch. */
int pbft_compute_o(pbft_state *s, const uint8_t *const *vcs, const uint32_t *lens, uint32_t n,
                   pbft_vc *vc, pbft_o_set *o) {
  memset(o, 0, sizeof *o);
  o->min_from = -1;
  for (uint32_t k = 0; k < n; k++) {
    PBFT_TRY(pbft_decode_vc(vcs[k], lens[k] - BFT_SIG_LEN, vc));
    if (o->min_from < 0 || vc->stable_seq > o->min_s) {
      o->min_s = vc->stable_seq;
      memcpy(o->min_digest, vc->stable_digest, BFT_DIGEST_LEN);
      o->min_from = (int32_t)k;
    }
  }
  o->max_s = o->min_s;
  for (uint32_t k = 0; k < n; k++) {
    PBFT_TRY(pbft_decode_vc(vcs[k], lens[k] - BFT_SIG_LEN, vc));
    for (uint32_t i = 0; i < vc->n; i++) {
      const pbft_vc_entry *e = &vc->e[i];
      if (e->seq <= o->min_s) continue;
      uint64_t idx = e->seq - o->min_s - 1;
      if (idx >= s->cfg.window) return BFT_E_MALFORMED;
      pbft_o_entry *x = &o->e[idx];
      if (!x->have || e->view > x->view) {
        x->have = 1;
        x->view = e->view;
        memcpy(x->digest, e->digest, BFT_DIGEST_LEN);
      }
      if (e->seq > o->max_s) o->max_s = e->seq;
    }
  }
  uint8_t null_d[BFT_DIGEST_LEN];
  pbft_empty_digest(null_d);
  for (uint64_t q = o->min_s + 1; q <= o->max_s; q++) {
    pbft_o_entry *x = &o->e[q - o->min_s - 1];
    if (!x->have) memcpy(x->digest, null_d, BFT_DIGEST_LEN);
  }
  return 0;
}

int pbft_on_view_change(pbft_state *s, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out) {
  pbft_vc vc;
  if (len < BFT_SIG_LEN || len > PBFT_VC_BODY_MAX) return pbft_reject(s, BFT_E_TOO_LARGE);
  int rc = pbft_decode_vc(body, len - BFT_SIG_LEN, &vc);
  if (rc) return pbft_reject(s, rc);
  if (vc.replica != from) return pbft_reject(s, BFT_E_MALFORMED);
  if (vc.new_view < s->view || (vc.new_view == s->view && !s->changing)) {
    /* A replica still asking for a view we already run: the primary hands it the proof,
     * everyone the COMMITs of what it may have missed. */
    if (s->changing) return pbft_reject(s, BFT_E_STALE);
    rc = pbft_validate_vc(s, body, len, &vc);
    if (rc) return pbft_reject(s, rc == BFT_E_BAD_SIG || rc == BFT_E_BAD_CERT ? BFT_E_BAD_CERT : rc);
    if (pbft_is_primary(s) && s->view > 0) PBFT_TRY(pbft_send_new_view(s, from, out));
    PBFT_TRY(help_behind(s, from, vc.stable_seq, out));
    return 0;
  }
  pbft_vcrec *st = &s->vcs[from];
  if (st->valid && st->view >= vc.new_view) {
    /* Repeated (its view-change timer): it is still stuck, perhaps only behind. */
    if (st->view == vc.new_view && st->len == len && memcmp(st->body, body, len) == 0 && !s->changing &&
        s->committed > vc.stable_seq && s->committed > s->h) {
      PBFT_TRY(help_behind(s, from, vc.stable_seq, out));
      return 0;
    }
    return pbft_reject(s, st->view == vc.new_view ? BFT_E_DUPLICATE : BFT_E_STALE);
  }
  rc = pbft_validate_vc(s, body, len, &vc);
  if (rc) return pbft_reject(s, rc == BFT_E_BAD_SIG || rc == BFT_E_BAD_CERT ? BFT_E_BAD_CERT : rc);
  st->valid = 1;
  st->view = vc.new_view;
  st->len = len;
  memcpy(st->body, body, len);
  /* A lone suspicion may just be a replica that fell behind: our COMMITs let it settle what
   * we delivered since its checkpoint (it fetches the batches from the signers). */
  if (!s->changing) PBFT_TRY(help_behind(s, from, vc.stable_seq, out));
  /* Its checkpoint proof is as good as any: learn a newer stable checkpoint from it. */
  if (vc.stable_seq > s->h) {
    bft_qc proof; /* the stable checkpoint proof the (validated) VIEW-CHANGE carries */
    bft_qc_from_view(&vc.proof, &proof);
    PBFT_TRY(pbft_make_stable(s, vc.stable_seq, vc.stable_digest, &proof, out));
  }
  return pbft_vc_joined(s, from, out);
}

int pbft_install_new_view(pbft_state *s, uint64_t view, const pbft_o_set *o,
                          const uint8_t *const *vcs, const uint32_t *lens, uint32_t n,
                          const uint8_t *o_sigs, bft_actions *out) {
  uint32_t primary = pbft_primary(s, view);
  s->view = view;
  s->changing = 0;
  PBFT_TRY(pbft_persist_view(s, out));
  s->next_seq = o->max_s;
  if (o->min_s > s->h) {
    pbft_vc vc;
    PBFT_TRY(pbft_decode_vc(vcs[o->min_from], lens[o->min_from] - BFT_SIG_LEN, &vc));
    bft_qc proof;
    bft_qc_from_view(&vc.proof, &proof);
    PBFT_TRY(pbft_make_stable(s, o->min_s, o->min_digest, &proof, out));
  }
  if (s->next_seq < s->h) s->next_seq = s->h;
  /* Pre-prepares of older views above max-s are void in the new view (their prepared
   * certificates stay, for later view changes). */
  for (uint32_t i = 0; i < s->cfg.window; i++) {
    pbft_slot *sl = &s->slots[i];
    if (sl->used && sl->has_pp && sl->pp_view < view) sl->has_pp = sl->prepared = 0;
  }
  for (uint64_t q = o->min_s + 1; q <= o->max_s; q++) {
    if (q <= s->h) continue;
    const uint8_t *e = o_sigs + (size_t)(q - o->min_s - 1) * PBFT_NV_ENTRY;
    const uint8_t *digest = e + 8, *sig = e + 8 + BFT_DIGEST_LEN;
    pbft_slot *sl = pbft_slot_make(s, q);
    if (!sl) return BFT_E_STATE; /* q <= min_s + L <= h + L */
    sl->has_pp = 1;
    sl->pp_view = view;
    memcpy(sl->pp_digest, digest, BFT_DIGEST_LEN);
    sl->prepared = 0;
    sl->holders = 1ull << primary;
    /* (null batches need no bytes: pbft_try_deliver makes them) */
    bft_voteset_set(&sl->prep, primary, view, q, digest, sig);
    if (primary == s->cfg.self) {
      /* Our NEW-VIEW carries our prepare for each entry: record them before it leaves. */
      if (!pbft_may_vote(&sl->my_prep, view, digest)) return BFT_E_STATE;
      PBFT_TRY(pbft_persist_vote(s, PBFT_MSG_PREPARE, view, q, digest, out));
      set_mine(&sl->my_prep, view, digest);
      pbft_bytes_vote(sl, view, digest);
    } else {
      PBFT_TRY(pbft_send_prepare(s, sl, out));
    }
  }
  /* Who is likely to hold the bytes of each re-proposed digest (besides the primary): the
   * replicas whose VIEW-CHANGE carried a prepared certificate for it. A replica lacking them
   * asks those first (pbft_fetch.c). */
  pbft_vc vc;
  for (uint32_t k = 0; k < n; k++) {
    PBFT_TRY(pbft_decode_vc(vcs[k], lens[k] - BFT_SIG_LEN, &vc));
    if (vc.replica >= s->cfg.n) continue;
    for (uint32_t i = 0; i < vc.n; i++) {
      pbft_slot *sl = vc.e[i].seq <= o->max_s ? pbft_slot_get(s, vc.e[i].seq) : NULL;
      if (sl && sl->has_pp && sl->pp_view == view && memcmp(sl->pp_digest, vc.e[i].digest, BFT_DIGEST_LEN) == 0)
        sl->holders |= 1ull << vc.replica;
    }
  }
  return 0;
}

int pbft_on_new_view(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  pbft_nv nv;
  int rc = pbft_decode_nv(p, len, &nv);
  if (rc) return pbft_reject(s, rc);
  if (nv.view < s->view || (nv.view == s->view && !s->changing)) return pbft_reject(s, BFT_E_STALE);
  if (nv.view == 0 || from != pbft_primary(s, nv.view)) return pbft_reject(s, BFT_E_STATE);
  if (nv.nvc != s->q) return pbft_reject(s, BFT_E_BAD_CERT);
  /* Each view-change: signed by its replica, for this view, valid, replicas ascending. */
  pbft_vc vc;
  for (uint32_t k = 0; k < nv.nvc; k++) {
    rc = pbft_validate_vc(s, nv.vc[k], nv.vc_len[k], &vc);
    if (rc) return pbft_reject(s, BFT_E_BAD_CERT);
    if (vc.new_view != nv.view) return pbft_reject(s, BFT_E_BAD_CERT);
    if (k > 0) {
      pbft_vc prev_hdr;
      /* replicas strictly ascending: compare with the previous one's replica field */
      wire_reader r;
      wire_reader_init(&r, nv.vc[k - 1], nv.vc_len[k - 1]);
      (void)wire_get_u64(&r);
      prev_hdr.replica = wire_get_u32(&r);
      if (vc.replica <= prev_hdr.replica) return pbft_reject(s, BFT_E_BAD_CERT);
    }
  }
  /* Recompute the re-proposals and insist on exactly them. */
  pbft_o_set o;
  rc = pbft_compute_o(s, nv.vc, nv.vc_len, nv.nvc, &vc, &o);
  if (rc) return pbft_reject(s, BFT_E_BAD_CERT);
  if (nv.min_s != o.min_s || nv.no != o.max_s - o.min_s) return pbft_reject(s, BFT_E_BAD_CERT);
  for (uint32_t i = 0; i < nv.no; i++) {
    const uint8_t *e = nv.o + (size_t)i * PBFT_NV_ENTRY;
    uint64_t q = 0;
    for (int b = 0; b < 8; b++) q |= (uint64_t)e[b] << (8 * b);
    if (q != o.min_s + 1 + i || memcmp(e + 8, o.e[i].digest, BFT_DIGEST_LEN) != 0)
      return pbft_reject(s, BFT_E_BAD_CERT);
    uint8_t st[PBFT_VOTE_LEN];
    pbft_vote_stmt(st, nv.view, q, o.e[i].digest, from);
    if (s->env.verify(s->env.ctx, from, PBFT_TAG_PREPARE, st, sizeof st, e + 8 + BFT_DIGEST_LEN) != 0)
      return pbft_reject(s, BFT_E_BAD_CERT);
  }
  /* Our own votes must allow it (a restarted replica may have voted in this view). */
  for (uint64_t q = o.min_s + 1; q <= o.max_s; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl && !pbft_may_vote(&sl->my_prep, nv.view, o.e[q - o.min_s - 1].digest))
      return pbft_reject(s, BFT_E_STATE);
  }
  PBFT_TRY(pbft_install_new_view(s, nv.view, &o, nv.vc, nv.vc_len, nv.nvc, nv.o, out));
  return pbft_entered_view(s, out);
}
