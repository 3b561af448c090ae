/* HotStuff safety: what a replica may vote for (once per view, the safe-node rule), what a
 * QC does (raise the high QC, lock on the two-chain, commit on a three-chain of consecutive
 * views), and delivering the committed chain in order with its certificates. Nothing here
 * depends on timing; views and leaders move in hs_pacemaker.c. */
#include "protocols/hotstuff/hs_internal.h"

static int same_qc(const hs_qc *q, uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN]) {
  return q->view == view && q->height == height && memcmp(q->hash, hash, BFT_DIGEST_LEN) == 0;
}

int hs_check_qc(hs_state *s, uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN], bft_qc *sigs) {
  if (view > 0 && same_qc(&s->high, view, height, hash)) {
    *sigs = s->high.sigs;
    return 0;
  }
  if (view > 0 && same_qc(&s->locked, view, height, hash)) {
    *sigs = s->locked.sigs;
    return 0;
  }
  hs_block *b = hs_find(s, hash);
  if (view > 0 && b && b->certified && b->view == view && b->height == height) {
    *sigs = b->qc;
    return 0;
  }
  return hs_qc_check(&s->cfg, &s->env, s->genesis, view, height, hash, sigs);
}

/* ---- voting ------------------------------------------------------------------------------- */

int hs_safe_node(hs_state *s, const hs_block *b) {
  /* Extends the locked block, or carries a QC newer than the lock (HotStuff's liveness rule:
   * the lock was formed in an older view than a QC someone else has seen). */
  return b->jview > s->locked.view || hs_extends(s, b, s->locked.height, s->locked.hash);
}

int hs_cast_vote(hs_state *s, hs_block *b, bft_actions *out) {
  BFT_ASSERT(b->view > s->voted_view);
  uint8_t body[HS_STMT_LEN - 4], st[BFT_STMT_MAX];
  hs_vote_body(body, b->view, b->height, b->hash);
  int n = bft_stmt_make(st, body, sizeof body, s->cfg.self);
  BFT_ASSERT(n == HS_STMT_LEN);
  s->voted_view = b->view;
  s->have_last_vote = 1;
  s->lv_view = b->view;
  s->lv_height = b->height;
  memcpy(s->lv_hash, b->hash, BFT_DIGEST_LEN);
  s->env.sign(s->env.ctx, HS_TAG_VOTE, st, (uint32_t)n, s->lv_sig);
  /* Persist before the vote (or the proposal that goes with a leader's vote) leaves: the
   * block too, so that a QC for it never outlives every copy of it. */
  HS_TRY(hs_persist_block(s, b, out));
  HS_TRY(hs_persist_vote(s, out));
  uint32_t to = hs_leader(s, b->view + 1);
  if (to != s->cfg.self) {
    uint8_t msg[HS_STMT_LEN + BFT_SIG_LEN];
    memcpy(msg, st, HS_STMT_LEN);
    memcpy(msg + HS_STMT_LEN, s->lv_sig, BFT_SIG_LEN);
    HS_TRY(bft_act_send(out, to, HS_MSG_VOTE, msg, sizeof msg));
  }
  /* Our own vote counts wherever a QC forms here: at the next leader, or from the votes
   * TIMEOUTs carry when that leader failed. */
  return hs_add_vote(s, s->cfg.self, b->view, b->height, b->hash, s->lv_sig, 1, out);
}

/* A proposal of a later view (at most two leader terms ahead) from its leader: its view was
 * entered on timeouts we missed, and voting there is safe (once per view, safe node). One
 * further ahead is never voted for from where we are, so it must not become the candidate:
 * a faulty leader's proposal for a far view would otherwise hide every real one until the
 * cluster reached that view (seen with `corrupt`, which moves a proposal's view). */
static int votable_view(const hs_state *s, uint64_t view) {
  return view >= s->view && view <= s->view + 2 * HS_LEADER_TERM;
}

int hs_try_vote(hs_state *s, bft_actions *out) {
  if (!s->has_cand || s->cand_view < s->view || s->voted_view >= s->cand_view || !s->root_valid) return 0;
  if (!votable_view(s, s->cand_view)) return 0;
  hs_block *b = hs_find(s, s->cand_hash);
  if (!b || !b->connected) return 0; /* its ancestry is being fetched: voted once it arrives */
  if (b->height > s->committed + HS_MAX_AHEAD) return 0; /* bounded pipeline (liveness only) */
  if (!hs_safe_node(s, b)) return 0;
  if (!b->checked) {
    b->checked = 1;
    b->batch_ok = s->env.check_batch(s->env.ctx, b->batch, b->batch_len) == 0;
  }
  if (!b->batch_ok) return 0;
  if (s->cand_view > s->view) return hs_enter_view(s, s->cand_view, b->jview + 1 == s->cand_view, out);
  return hs_cast_vote(s, b, out);
}

int hs_on_proposal(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  hs_blockmsg m;
  int rc = hs_decode_block(p, len, &m);
  if (rc) return hs_reject(s, rc);
  if (from != hs_leader(s, m.view)) return hs_reject(s, BFT_E_MALFORMED);
  s->missed[from] = 0; /* it proposes: views waiting on it get the full timer again */
  if (m.view > s->view + HS_VIEW_AHEAD) return hs_reject(s, BFT_E_WINDOW);
  if (m.height <= s->committed) return hs_reject(s, BFT_E_STALE);
  uint8_t bd[BFT_DIGEST_LEN], hash[BFT_DIGEST_LEN];
  bft_digest(bd, m.batch, m.batch_len);
  hs_block_hash(m.view, m.height, m.parent, bd, hash);
  if (s->seen_view[from] == m.view && memcmp(s->seen_hash[from], hash, BFT_DIGEST_LEN) != 0) {
    s->equivocations++; /* two proposals signed by one leader for one view */
    return hs_reject(s, BFT_E_DUPLICATE);
  }
  if (hs_find(s, hash)) {
    if (!votable_view(s, m.view) || (s->has_cand && s->cand_view >= m.view)) return hs_reject(s, BFT_E_DUPLICATE);
    s->has_cand = 1; /* a block we fetched before its proposal reached us */
    s->cand_view = m.view;
    memcpy(s->cand_hash, hash, BFT_DIGEST_LEN);
    return hs_settle(s, out);
  }
  bft_qc js;
  bft_qc_from_view(&m.jsigs, &js);
  rc = hs_check_qc(s, m.jview, m.height - 1, m.parent, &js);
  if (rc) return hs_reject(s, rc);

  /* Checked: from here on the proposal changes our state. */
  s->seen_view[from] = m.view;
  memcpy(s->seen_hash[from], hash, BFT_DIGEST_LEN);
  hs_qc jq = {.view = m.jview, .height = m.height - 1, .sigs = js};
  memcpy(jq.hash, m.parent, BFT_DIGEST_LEN);
  HS_TRY(hs_on_qc(s, &jq, from, 1, out));
  hs_block *b = hs_insert(s, &m, &js, hash, from, out);
  if (b && votable_view(s, m.view) && (!s->has_cand || s->cand_view < m.view)) { /* may vote: hs_try_vote */
    s->has_cand = 1;
    s->cand_view = m.view;
    memcpy(s->cand_hash, hash, BFT_DIGEST_LEN);
  }
  return hs_settle(s, out);
}

/* ---- votes and QCs ------------------------------------------------------------------------ */

int hs_add_vote(hs_state *s, uint32_t replica, uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN],
                const uint8_t sig[BFT_SIG_LEN], int enter, bft_actions *out) {
  bft_vote held = s->votes.v[replica];
  int o = bft_voteset_add(&s->votes, replica, view, height, hash, sig);
  if (o == BFT_VOTE_CONFLICT) {
    /* Two votes signed by one replica for one view: both, as VOTE messages, are evidence. */
    s->equivocations++;
    if (replica == s->cfg.self) return 0;
    uint8_t a[BFT_STMT_MAX + BFT_SIG_LEN], b[BFT_STMT_MAX + BFT_SIG_LEN], body[HS_STMT_LEN - 4];
    hs_vote_body(body, held.round, held.height, held.digest);
    bft_stmt_make(a, body, sizeof body, replica);
    memcpy(a + HS_STMT_LEN, held.sig, BFT_SIG_LEN);
    hs_vote_body(body, view, height, hash);
    bft_stmt_make(b, body, sizeof body, replica);
    memcpy(b + HS_STMT_LEN, sig, BFT_SIG_LEN);
    return bft_act_evidence(out, replica, HS_MSG_VOTE, a, HS_STMT_LEN + BFT_SIG_LEN, b, HS_STMT_LEN + BFT_SIG_LEN);
  }
  if (o != BFT_VOTE_NEW || view <= s->high.view) return 0;
  if (bft_voteset_count(&s->votes, s->cfg.n, view, height, hash) < s->q) return 0;
  hs_qc qc = {.view = view, .height = height};
  memcpy(qc.hash, hash, BFT_DIGEST_LEN);
  if (!bft_voteset_qc(&s->votes, &s->cfg, view, height, hash, UINT32_MAX, &qc.sigs)) return 0;
  return hs_on_qc(s, &qc, replica == s->cfg.self ? UINT32_MAX : replica, enter, out);
}

int hs_on_vote(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  if (len != HS_STMT_LEN) return hs_reject(s, BFT_E_MALFORMED);
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint64_t view = wire_get_u64(&r), height = wire_get_u64(&r);
  uint8_t hash[BFT_DIGEST_LEN];
  wire_get_fixed(&r, hash, BFT_DIGEST_LEN);
  uint32_t replica = wire_get_u32(&r);
  int rc = wire_reader_finish(&r);
  if (rc || replica != from || view == 0 || height == 0) return hs_reject(s, rc ? rc : BFT_E_MALFORMED);
  if (view <= s->high.view) return hs_reject(s, BFT_E_STALE); /* cannot raise our high QC */
  if (view > s->view + HS_VIEW_AHEAD) return hs_reject(s, BFT_E_WINDOW);
  /* The driver checked the message signature, which is the vote's signature. */
  return hs_add_vote(s, from, view, height, hash, p + len, 1, out);
}

int hs_on_qc(hs_state *s, const hs_qc *qc, uint32_t hint, int enter, bft_actions *out) {
  if (qc->view > s->high.view) {
    s->high = *qc;
    HS_TRY(hs_persist_qc(s, HS_REC_HIGH, qc, out));
  }
  hs_block *b = hs_find(s, qc->hash);
  if (b && !b->certified && b->view == qc->view) {
    b->certified = 1;
    b->qc = qc->sigs;
  }
  if (!b && qc->height > s->committed) HS_TRY(hs_want_block(s, qc->hash, qc->height, hint, out));
  HS_TRY(hs_settle(s, out));
  /* A QC of view v shows that view v is over: move on to v + 1. */
  if (enter && qc->view + 1 > s->view) HS_TRY(hs_enter_view(s, qc->view + 1, 1, out));
  return 0;
}

/* ---- commit --------------------------------------------------------------------------------- */

int hs_deliver(hs_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
               uint32_t cert_len, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN], bft_actions *out) {
  BFT_ASSERT(seq == s->committed + 1);
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, batch, len);
  HS_TRY(hs_persist_commit(s, seq, view, hash, out));
  HS_TRY(bft_act_commit(out, seq, d, batch, len, cert, cert_len));
  s->committed = seq;
  s->root_valid = 1;
  s->root_view = view;
  memcpy(s->root_hash, hash, BFT_DIGEST_LEN);
  hs_ring_put(s, seq, view, hash);
  bft_batch_reader br;
  if (bft_batch_open(&br, batch, len) == 0 && br.count > 0) s->last_payload = seq;
  hs_requests_done(s, batch, len);
  return 0;
}

/* The certificate of chain[i] (chain[j] is at height committed+1+j): its headers up to the
 * lowest three-chain of consecutive views at or above it, and that three-chain's QCs. */
static int build_cert(hs_state *s, hs_block *const *chain, uint32_t n, uint32_t i) {
  uint32_t c = i;
  while (c + 2 < n && !(chain[c + 1]->view == chain[c]->view + 1 && chain[c + 2]->view == chain[c + 1]->view + 1 &&
                         chain[c]->certified && chain[c + 1]->certified && chain[c + 2]->certified))
    c++;
  if (c + 2 >= n) return BFT_E_STATE;
  uint32_t k = c + 3 - i;
  if (k > HS_CERT_MAX_HEADERS) return BFT_E_FULL;
  wire_writer w;
  wire_writer_init(&w, s->cert, sizeof s->cert);
  wire_put_u32(&w, k);
  for (uint32_t j = i; j <= c + 2; j++) {
    wire_put_u64(&w, chain[j]->view);
    wire_put_fixed(&w, chain[j]->parent, BFT_DIGEST_LEN);
    wire_put_fixed(&w, chain[j]->batch_digest, BFT_DIGEST_LEN);
  }
  for (uint32_t j = c; j <= c + 2; j++) bft_qc_put(&w, &chain[j]->qc);
  BFT_ASSERT(!w.err);
  return (int)w.len;
}

/* b0 <- b1 <- b2 is a certified three-chain of consecutive views: deliver everything up to b0. */
static int commit_chain(hs_state *s, hs_block *b2, bft_actions *out) {
  hs_block *chain[HS_MAX_BLOCKS];
  uint32_t n = 0;
  for (hs_block *x = b2; x && n < HS_MAX_BLOCKS; x = hs_parent(s, x)) chain[n++] = x;
  BFT_ASSERT(n >= 3 && chain[n - 1]->height == s->committed + 1);
  for (uint32_t a = 0, z = n - 1; a < z; a++, z--) {
    hs_block *t = chain[a];
    chain[a] = chain[z];
    chain[z] = t;
  }
  for (uint32_t i = 0; i + 2 < n; i++) {
    int clen = build_cert(s, chain, n, i);
    if (clen == BFT_E_FULL) /* longer than a certificate may be: take it from the others */
      return hs_need_sync(s, chain[n - 3]->height, UINT32_MAX, out);
    BFT_ASSERT(clen > 0);
    HS_TRY(hs_deliver(s, chain[i]->height, chain[i]->batch, chain[i]->batch_len, s->cert, (uint32_t)clen,
                      chain[i]->view, chain[i]->hash, out));
  }
  return 1;
}

/* Lock on the two-chain and find the highest block a three-chain commits. */
static hs_block *apply_rules(hs_state *s, bft_actions *out, int *rc) {
  hs_block *best = NULL;
  *rc = 0;
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
    hs_block *b2 = &s->blocks[i];
    if (!b2->used || !b2->connected || !b2->certified) continue;
    /* A QC for b2 locks b2's parent, whose QC b2 carries. */
    if (b2->jview > s->locked.view) {
      s->locked.view = b2->jview;
      s->locked.height = b2->height - 1;
      memcpy(s->locked.hash, b2->parent, BFT_DIGEST_LEN);
      s->locked.sigs = b2->jsigs;
      *rc = hs_persist_qc(s, HS_REC_LOCK, &s->locked, out);
      if (*rc) return NULL;
    }
    hs_block *b1 = hs_parent(s, b2);
    hs_block *b0 = b1 ? hs_parent(s, b1) : NULL;
    if (!b0 || b2->view != b1->view + 1 || b1->view != b0->view + 1) continue;
    if (!best || b2->height > best->height) best = b2;
  }
  return best;
}

int hs_settle(hs_state *s, bft_actions *out) {
  int delivered = 0;
  for (uint32_t round = 0; round < HS_MAX_BLOCKS; round++) {
    hs_tree_refresh(s);
    int rc;
    hs_block *b2 = apply_rules(s, out, &rc);
    if (rc) return rc;
    if (!b2) break;
    rc = commit_chain(s, b2, out);
    if (rc < 0) return rc;
    if (rc == 0) break;
    delivered = 1;
  }
  hs_tree_refresh(s);
  /* Ancestors we lack: ask whoever gave us the child. */
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
    hs_block *b = &s->blocks[i];
    if (b->used && !b->connected && b->height > s->committed + 1 && !hs_find(s, b->parent))
      HS_TRY(hs_want_block(s, b->parent, b->height - 1, b->src, out));
  }
  if (delivered) HS_TRY(hs_after_delivery(s, out));
  HS_TRY(hs_try_vote(s, out));
  return hs_update_timer(s, out);
}

int hs_on_sync(hs_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert, uint32_t cert_len,
               bft_actions *out) {
  if (seq != s->committed + 1) return 0; /* only the next one; the driver may repeat others */
  if (len > BFT_MAX_BATCH_BYTES || cert_len > HS_CERT_MAX) return hs_reject(s, BFT_E_TOO_LARGE);
  uint64_t view;
  uint8_t parent[BFT_DIGEST_LEN], bd[BFT_DIGEST_LEN], d[BFT_DIGEST_LEN], hash[BFT_DIGEST_LEN];
  if (hs_cert_first(cert, cert_len, &view, parent, bd) != 0) return hs_reject(s, BFT_E_BAD_CERT);
  bft_digest(d, batch, len);
  if (memcmp(d, bd, BFT_DIGEST_LEN) != 0) return hs_reject(s, BFT_E_BAD_DIGEST);
  /* The driver verified the certificate: a committed block whose parent is not our root
   * would mean two committed chains. */
  if (s->root_valid && memcmp(parent, s->root_hash, BFT_DIGEST_LEN) != 0) return hs_reject(s, BFT_E_BAD_CERT);
  hs_block_hash(view, seq, parent, bd, hash);
  HS_TRY(hs_deliver(s, seq, batch, len, cert, cert_len, view, hash, out));
  s->sync_tries = 0;
  HS_TRY(hs_sync_more(s, out));
  HS_TRY(hs_after_delivery(s, out));
  return hs_settle(s, out);
}
