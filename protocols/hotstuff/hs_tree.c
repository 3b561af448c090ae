/* The HotStuff block tree: a fixed array of block slots above the committed root, which block
 * reaches the root through its parents (connected), which is certified, eviction when full,
 * and fetching the blocks a QC or a proposal refers to that we lack (BLOCK_REQ / BLOCK), with
 * catch-up through the driver's FETCH when far behind. */
#include "protocols/hotstuff/hs_internal.h"

hs_block *hs_find(hs_state *s, const uint8_t hash[BFT_DIGEST_LEN]) {
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++)
    if (s->blocks[i].used && memcmp(s->blocks[i].hash, hash, BFT_DIGEST_LEN) == 0) return &s->blocks[i];
  return NULL;
}

hs_block *hs_parent(hs_state *s, const hs_block *b) {
  if (b->height <= s->committed + 1) return NULL;
  hs_block *p = hs_find(s, b->parent);
  return p && p->height + 1 == b->height ? p : NULL;
}

/* Never evicted: the blocks a vote, the lock or the high QC still needs. */
static int pinned(const hs_state *s, const hs_block *b) {
  if (s->has_cand && memcmp(b->hash, s->cand_hash, BFT_DIGEST_LEN) == 0) return 1;
  return b->connected && b->certified;
}

static hs_block *free_slot(hs_state *s) {
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++)
    if (!s->blocks[i].used) return &s->blocks[i];
  /* Full: give up the unconnected or uncertified block of the lowest view (forks, stale
   * proposals); a block on the certified chain stays. */
  hs_block *victim = NULL;
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
    hs_block *b = &s->blocks[i];
    if (pinned(s, b)) continue;
    if (!victim || b->view < victim->view) victim = b;
  }
  if (victim) victim->used = 0;
  return victim;
}

hs_block *hs_insert(hs_state *s, const hs_blockmsg *m, const bft_qc *jsigs, const uint8_t hash[BFT_DIGEST_LEN],
                    uint32_t src, bft_actions *out) {
  hs_block *b = hs_find(s, hash);
  if (b) return b;
  if (m->height <= s->committed) return NULL;
  b = free_slot(s);
  if (!b) return NULL;
  memset(b, 0, offsetof(hs_block, batch));
  b->used = 1;
  b->view = m->view;
  b->height = m->height;
  memcpy(b->parent, m->parent, BFT_DIGEST_LEN);
  memcpy(b->hash, hash, BFT_DIGEST_LEN);
  b->jview = m->jview;
  b->jsigs = *jsigs;
  b->src = src;
  memcpy(b->batch, m->batch, m->batch_len);
  b->batch_len = m->batch_len;
  bft_digest(b->batch_digest, m->batch, m->batch_len);
  bft_batch_reader br;
  b->batch_count = bft_batch_open(&br, m->batch, m->batch_len) == 0 ? br.count : 0;
  /* Another leader's requests are in flight: the driver does not hand them out again. */
  if (b->batch_count > 0 && out && bft_act_inflight(out, m->batch, m->batch_len) != 0) return NULL;
  return b;
}

int hs_extends(hs_state *s, const hs_block *b, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN]) {
  if (height == 0) return memcmp(hash, s->genesis, BFT_DIGEST_LEN) == 0;
  const hs_block *cur = b;
  for (uint32_t guard = 0; cur && cur->height > height && guard <= HS_MAX_BLOCKS; guard++) {
    if (cur->height == s->committed + 1) {
      /* The rest of the chain is committed: compare with what we delivered. */
      if (!s->root_valid || memcmp(cur->parent, s->root_hash, BFT_DIGEST_LEN) != 0) return 0;
      if (height == s->committed) return memcmp(s->root_hash, hash, BFT_DIGEST_LEN) == 0;
      uint32_t i = (uint32_t)(height % HS_RING);
      return s->ring_height[i] == height && memcmp(s->ring_hash[i], hash, BFT_DIGEST_LEN) == 0;
    }
    cur = hs_parent(s, cur);
  }
  return cur && cur->height == height && memcmp(cur->hash, hash, BFT_DIGEST_LEN) == 0;
}

void hs_tree_refresh(hs_state *s) {
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
    hs_block *b = &s->blocks[i];
    if (!b->used) continue;
    b->connected = 0;
    /* At or below the committed root, or a fork off it: never needed again. */
    if (b->height <= s->committed ||
        (b->height == s->committed + 1 && s->root_valid && memcmp(b->parent, s->root_hash, BFT_DIGEST_LEN) != 0))
      b->used = 0;
  }
  for (int changed = 1; changed;) {
    changed = 0;
    for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
      hs_block *b = &s->blocks[i];
      if (!b->used || b->connected) continue;
      int c;
      if (b->height == s->committed + 1) c = s->root_valid;
      else {
        hs_block *p = hs_parent(s, b);
        c = p && p->connected;
      }
      if (c) b->connected = changed = 1;
    }
  }
  /* A child's justify is a QC for its parent; so is the high QC for its block. */
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) {
    hs_block *b = &s->blocks[i];
    if (!b->used) continue;
    hs_block *p = hs_parent(s, b);
    if (p && !p->certified && b->jview == p->view) {
      p->certified = 1;
      p->qc = b->jsigs;
    }
  }
  hs_block *h = hs_find(s, s->high.hash);
  if (h && !h->certified && h->view == s->high.view) {
    h->certified = 1;
    h->qc = s->high.sigs;
  }
  for (uint32_t i = 0; i < HS_MAX_WANT; i++) {
    hs_want *w = &s->want[i];
    if (w->used && (w->height <= s->committed || hs_find(s, w->hash))) w->used = 0;
  }
}

static int uncommitted_payload(hs_state *s, const hs_block *b) {
  for (uint32_t guard = 0; b && guard <= HS_MAX_BLOCKS; guard++, b = hs_parent(s, b))
    if (b->batch_count > 0) return 1;
  return 0;
}

int hs_work_pending(hs_state *s) {
  if (s->pend.n > 0) return 1;
  if (s->high.height <= s->committed) return 0;
  hs_block *b = hs_find(s, s->high.hash);
  return b ? uncommitted_payload(s, b) : 1;
}

int hs_flush_needed(hs_state *s) {
  if (s->high.height <= s->committed) return 0;
  /* Requests committed by the high QC's three-chain reach the others only with the next
   * block, which carries that QC. */
  if (s->last_payload > 0 && s->last_payload + 2 >= s->high.height) return 1;
  hs_block *b = hs_find(s, s->high.hash);
  return b ? uncommitted_payload(s, b) : 1;
}

/* ---- fetching --------------------------------------------------------------------------- */

static uint32_t next_of(const hs_state *s, uint32_t *rr) {
  *rr = (*rr + 1) % s->cfg.n;
  if (*rr == s->cfg.self) *rr = (*rr + 1) % s->cfg.n;
  return *rr;
}

static uint32_t next_peer(hs_state *s) { return next_of(s, &s->fetch_rr); }
static uint32_t next_sync_peer(hs_state *s) { return next_of(s, &s->sync_rr); }

static int arm_fetch(hs_state *s, bft_actions *out) {
  if (s->fetch_armed) return 0;
  s->fetch_armed = 1;
  s->fetch_tag++;
  uint64_t d = s->cfg.timeout_ms / 4 ? s->cfg.timeout_ms / 4 : 1;
  /* A catch-up that went round the peers HS_WANT_TRIES times without progress keeps asking,
   * less often (up to 32x): in an idle cluster no new evidence would ever restart it. */
  uint32_t rounds = s->sync_tries / HS_WANT_TRIES;
  return bft_act_timer_set(out, HS_TIMER_FETCH, s->fetch_tag, d << (rounds < 5 ? rounds : 5));
}

static int send_req(hs_state *s, const hs_want *w, uint32_t to, bft_actions *out) {
  uint8_t buf[BFT_DIGEST_LEN + 8 + BFT_SIG_LEN];
  wire_writer wr;
  wire_writer_init(&wr, buf, sizeof buf);
  wire_put_fixed(&wr, w->hash, BFT_DIGEST_LEN);
  wire_put_u64(&wr, w->height);
  return hs_emit(s, HS_MSG_BLOCK_REQ, buf, (uint32_t)wr.len, sizeof buf, to, out);
}

static int fetch(hs_state *s, uint32_t to, bft_actions *out) {
  s->sync_from = s->committed + 1;
  s->sync_peer = to;
  return bft_act_fetch(out, to, s->committed + 1);
}

int hs_need_sync(hs_state *s, uint64_t target, uint32_t hint, bft_actions *out) {
  if (target <= s->committed) return 0;
  int fresh = s->sync_target <= s->committed;
  if (target > s->sync_target) s->sync_target = target;
  s->sync_tries = 0;
  if (fresh) HS_TRY(fetch(s, hint < s->cfg.n && hint != s->cfg.self ? hint : next_sync_peer(s), out));
  return arm_fetch(s, out);
}

int hs_sync_more(hs_state *s, bft_actions *out) {
  if (s->sync_target <= s->committed || s->committed + 1 < s->sync_from + BFT_LEDGER_MAX_BLOCKS_PER_REPLY) return 0;
  return fetch(s, s->sync_peer, out);
}

int hs_want_block(hs_state *s, const uint8_t hash[BFT_DIGEST_LEN], uint64_t height, uint32_t hint, bft_actions *out) {
  if (height <= s->committed || hs_find(s, hash)) return 0;
  hs_want *slot = NULL;
  for (uint32_t i = 0; i < HS_MAX_WANT; i++) {
    hs_want *w = &s->want[i];
    if (w->used && memcmp(w->hash, hash, BFT_DIGEST_LEN) == 0) return 0;
    if (!w->used && !slot) slot = w;
  }
  if (height > s->committed + HS_SYNC_GAP) HS_TRY(hs_need_sync(s, height - 3, hint, out));
  if (!slot) return arm_fetch(s, out); /* the retry timer asks again once a slot frees */
  slot->used = 1;
  memcpy(slot->hash, hash, BFT_DIGEST_LEN);
  slot->height = height;
  slot->hint = hint;
  slot->tries = 0;
  uint32_t to = hint < s->cfg.n && hint != s->cfg.self ? hint : next_peer(s);
  HS_TRY(send_req(s, slot, to, out));
  return arm_fetch(s, out);
}

int hs_fetch_kick(hs_state *s, bft_actions *out) {
  s->fetch_armed = 0;
  int again = 0;
  uint64_t want_top = 0;
  for (uint32_t i = 0; i < HS_MAX_WANT; i++) {
    hs_want *w = &s->want[i];
    if (!w->used) continue;
    if (++w->tries > HS_WANT_TRIES) { /* nobody has it (an abandoned fork): drop it */
      w->used = 0;
      continue;
    }
    HS_TRY(send_req(s, w, next_peer(s), out));
    again = 1;
    if (w->height > want_top) want_top = w->height;
  }
  /* Still missing after one round: the others may have committed it and pruned it from their
   * trees, so ask for committed blocks too. That is a catch-up of its own, with its own tries
   * (the count of an earlier one that gave up would end it at once). */
  if (want_top > s->sync_target) {
    s->sync_target = want_top;
    s->sync_tries = 0;
  }
  if (s->sync_target > s->committed && s->sync_tries < UINT32_MAX) s->sync_tries++;
  if (s->sync_target > s->committed) {
    HS_TRY(fetch(s, next_sync_peer(s), out));
    again = 1;
  }
  return again ? arm_fetch(s, out) : 0;
}

int hs_on_block_req(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint8_t hash[BFT_DIGEST_LEN];
  wire_get_fixed(&r, hash, BFT_DIGEST_LEN);
  (void)wire_get_u64(&r); /* height: a hint for the asker's own bookkeeping */
  int rc = wire_reader_finish(&r);
  if (rc) return hs_reject(s, rc);
  hs_block *b = hs_find(s, hash);
  if (!b) return hs_reject(s, BFT_E_STALE); /* not held (or committed: the asker FETCHes) */
  int n = hs_encode_block(b, s->scratch, sizeof s->scratch);
  if (n < 0) return n;
  return hs_emit(s, HS_MSG_BLOCK, s->scratch, (uint32_t)n, sizeof s->scratch, from, out);
}

int hs_on_block(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  hs_blockmsg m;
  int rc = hs_decode_block(p, len, &m);
  if (rc) return hs_reject(s, rc);
  uint8_t bd[BFT_DIGEST_LEN], hash[BFT_DIGEST_LEN];
  bft_digest(bd, m.batch, m.batch_len);
  hs_block_hash(m.view, m.height, m.parent, bd, hash);
  int wanted = 0;
  for (uint32_t i = 0; i < HS_MAX_WANT; i++)
    if (s->want[i].used && memcmp(s->want[i].hash, hash, BFT_DIGEST_LEN) == 0) wanted = 1;
  if (!wanted || hs_find(s, hash) || m.height <= s->committed) return hs_reject(s, BFT_E_STALE);
  bft_qc js;
  bft_qc_from_view(&m.jsigs, &js);
  rc = hs_check_qc(s, m.jview, m.height - 1, m.parent, &js);
  if (rc) return hs_reject(s, rc);
  /* Checked; from here on the block is ours. */
  hs_qc jq = {.view = m.jview, .height = m.height - 1, .sigs = js};
  memcpy(jq.hash, m.parent, BFT_DIGEST_LEN);
  HS_TRY(hs_on_qc(s, &jq, from, 1, out));
  (void)hs_insert(s, &m, &js, hash, from, out); /* NULL: tree full of pinned blocks; fetched again later */
  return hs_settle(s, out);
}
