/* The PBFT message log: slots for sequence numbers inside the watermarks (h, h+L], in-order
 * delivery with commit certificates, checkpoints that move the low watermark and discard the
 * log below it, and the persisted records that let a restarted replica keep its word.
 *
 * Persistence (records are written before anything they protect is sent):
 *   VIEW      := u8 2 | u64 view | u8 changing            before a VIEW-CHANGE / on a NEW-VIEW
 *   VOTE      := u8 3 | u8 kind | u64 view | u64 seq | digest   before a PRE-PREPARE or PREPARE
 *   PCERT     := u8 4 | u64 seq | u64 view | digest | qsigs      prepared certificate; also
 *                records the COMMIT vote (view, seq, digest) sent right after it
 *   DELIVERED := u8 5 | u64 seq | u8 chain_valid | chain[32]     before each COMMIT action
 *   BATCH     := u8 6 | u64 seq | blob batch        the bytes a slot now holds (the digest is
 *                recomputed on restore), before the PRE-PREPARE or PREPARE they back
 *   SNAPSHOT  := u8 1 | u64 view | u8 changing | u64 h | h_digest | qsigs h_proof
 *                | u64 delivered_max | u32 n | n x (u64 seq | chain)
 *                | u32 m | m x (u64 seq | u8 flags | [u64 view | digest]  my PREPARE  (flag 1)
 *                                                   | [u64 view | digest]  my COMMIT   (flag 2)
 *                                                   | [u64 view | digest | qsigs] pcert (flag 4))
 * A SNAPSHOT is written every time a checkpoint becomes stable; it holds everything the
 * records before it said that still matters (votes and certificates below h are moot), so
 * replay from the latest snapshot gives the same promises and the number of live records is
 * bounded by about 4 L + a few view changes. Only votes in the latest view can conflict with a
 * future vote (views never go back), so one (view, digest) per slot and kind suffices.
 * Batch bytes are not promises and a snapshot does not repeat them (that would rewrite every
 * in-flight batch at each checkpoint): restoring a SNAPSHOT keeps the bytes that BATCH records
 * before it put in slots still inside the window, and compaction (pbft_compact_records) writes a
 * snapshot followed by one BATCH record per slot holding bytes. So a slot holds after a restart
 * exactly the bytes it held before. */
#include <stddef.h>

#include "protocols/pbft/pbft_internal.h"

#define CHAIN_TAG "pbft/chain"

int pbft_in_window(const pbft_state *s, uint64_t seq) {
  return seq > s->h && seq <= s->h + s->cfg.window;
}

static void slot_reset(pbft_slot *sl) { memset(sl, 0, offsetof(pbft_slot, batch)); }

/* Forget what a slot knows about votes and certificates, but not the batch bytes it holds
 * while its seq stays inside the watermarks. */
static void slot_reset_keep_bytes(const pbft_state *s, pbft_slot *sl) {
  uint64_t seq = sl->seq;
  uint8_t keep = sl->used && sl->has_batch && pbft_in_window(s, seq);
  uint8_t d[BFT_DIGEST_LEN];
  uint32_t len = sl->batch_len;
  memcpy(d, sl->batch_digest, BFT_DIGEST_LEN);
  slot_reset(sl);
  if (!keep) return;
  sl->used = 1;
  sl->seq = seq;
  sl->has_batch = 1;
  sl->batch_len = len;
  memcpy(sl->batch_digest, d, BFT_DIGEST_LEN);
}

pbft_slot *pbft_slot_get(pbft_state *s, uint64_t seq) {
  if (!pbft_in_window(s, seq)) return NULL;
  pbft_slot *sl = &s->slots[seq % s->cfg.window];
  return sl->used && sl->seq == seq ? sl : NULL;
}

pbft_slot *pbft_slot_make(pbft_state *s, uint64_t seq) {
  if (!pbft_in_window(s, seq)) return NULL;
  pbft_slot *sl = &s->slots[seq % s->cfg.window];
  if (!sl->used || sl->seq != seq) {
    slot_reset(sl);
    sl->used = 1;
    sl->seq = seq;
  }
  return sl;
}

/* ---- persistence ------------------------------------------------------------------------- */

static int persist_writer(pbft_state *s, wire_writer *w, bft_actions *out) {
  if (w->err) return w->err;
  return bft_act_persist(out, w->buf, (uint32_t)w->len);
}

int pbft_persist_view(pbft_state *s, bft_actions *out) {
  uint8_t b[16];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u8(&w, PBFT_REC_VIEW);
  wire_put_u64(&w, s->view);
  wire_put_u8(&w, (uint8_t)(s->changing ? 1 : 0));
  return persist_writer(s, &w, out);
}

int pbft_persist_vote(pbft_state *s, uint8_t kind, uint64_t view, uint64_t seq,
                      const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out) {
  uint8_t b[64];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u8(&w, PBFT_REC_VOTE);
  wire_put_u8(&w, kind);
  wire_put_u64(&w, view);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  return persist_writer(s, &w, out);
}

int pbft_persist_pcert(pbft_state *s, const pbft_slot *sl, bft_actions *out) {
  BFT_ASSERT(sl->has_pcert && sl->pcert.count == s->q);
  uint8_t b[1 + 8 + 8 + BFT_DIGEST_LEN + PBFT_QC_SIGS_MAX];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u8(&w, PBFT_REC_PCERT);
  wire_put_u64(&w, sl->seq);
  wire_put_u64(&w, sl->pcert_view);
  wire_put_fixed(&w, sl->pcert_digest, BFT_DIGEST_LEN);
  bft_qc_put(&w, &sl->pcert);
  return persist_writer(s, &w, out);
}

int pbft_persist_batch(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, bft_actions *out) {
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u8(&w, PBFT_REC_BATCH);
  wire_put_u64(&w, seq);
  wire_put_blob(&w, batch, len);
  return persist_writer(s, &w, out);
}

static int persist_delivered(pbft_state *s, uint64_t seq, bft_actions *out) {
  uint8_t b[64];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u8(&w, PBFT_REC_DELIVERED);
  wire_put_u64(&w, seq);
  wire_put_u8(&w, (uint8_t)(s->chain_valid ? 1 : 0));
  wire_put_fixed(&w, s->chain, BFT_DIGEST_LEN);
  return persist_writer(s, &w, out);
}

int pbft_persist_snapshot(pbft_state *s, bft_actions *out) {
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u8(&w, PBFT_REC_SNAPSHOT);
  wire_put_u64(&w, s->view);
  wire_put_u8(&w, (uint8_t)(s->changing ? 1 : 0));
  wire_put_u64(&w, s->h);
  wire_put_fixed(&w, s->h_digest, BFT_DIGEST_LEN);
  bft_qc_put(&w, &s->h_proof);
  wire_put_u64(&w, s->delivered_max);
  uint32_t L = s->cfg.window, n = 0;
  uint64_t lo = s->delivered_max >= L ? s->delivered_max - L + 1 : 1;
  for (uint64_t q = lo; q <= s->delivered_max; q++)
    if (s->chain_seq[q % L] == q) n++;
  wire_put_u32(&w, n);
  for (uint64_t q = lo; q <= s->delivered_max; q++)
    if (s->chain_seq[q % L] == q) {
      wire_put_u64(&w, q);
      wire_put_fixed(&w, s->chain_ring[q % L], BFT_DIGEST_LEN);
    }
  uint32_t m = 0;
  for (uint64_t q = s->h + 1; q <= s->h + L; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl && (sl->my_prep.valid || sl->my_com.valid || sl->has_pcert)) m++;
  }
  wire_put_u32(&w, m);
  for (uint64_t q = s->h + 1; q <= s->h + L; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (!sl || !(sl->my_prep.valid || sl->my_com.valid || sl->has_pcert)) continue;
    wire_put_u64(&w, q);
    wire_put_u8(&w, (uint8_t)((sl->my_prep.valid ? 1 : 0) | (sl->my_com.valid ? 2 : 0) |
                              (sl->has_pcert ? 4 : 0)));
    if (sl->my_prep.valid) {
      wire_put_u64(&w, sl->my_prep.view);
      wire_put_fixed(&w, sl->my_prep.digest, BFT_DIGEST_LEN);
    }
    if (sl->my_com.valid) {
      wire_put_u64(&w, sl->my_com.view);
      wire_put_fixed(&w, sl->my_com.digest, BFT_DIGEST_LEN);
    }
    if (sl->has_pcert) {
      wire_put_u64(&w, sl->pcert_view);
      wire_put_fixed(&w, sl->pcert_digest, BFT_DIGEST_LEN);
      bft_qc_put(&w, &sl->pcert);
    }
  }
  return persist_writer(s, &w, out);
}

int pbft_compact_records(pbft_state *s, bft_actions *out) {
  PBFT_TRY(pbft_persist_snapshot(s, out));
  for (uint64_t q = s->h + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl && sl->has_batch) PBFT_TRY(pbft_persist_batch(s, q, sl->batch, sl->batch_len, out));
  }
  return 0;
}

/* ---- restore ----------------------------------------------------------------------------- */

/* A certificate from our own records: none (count 0) or a quorum (our records are trusted:
 * the signatures were checked before they were written). */
static int get_qc(wire_reader *r, bft_qc *c, uint32_t q) {
  bft_qc_view v;
  bft_qc_get(r, &v);
  if (r->err) return r->err;
  if (v.count != 0 && v.count != q) return BFT_E_MALFORMED;
  bft_qc_from_view(&v, c);
  return 0;
}

static void restore_mine(pbft_mine *m, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (m->valid && m->view > view) return;
  m->valid = 1;
  m->view = view;
  memcpy(m->digest, digest, BFT_DIGEST_LEN);
}

static void restore_chain(pbft_state *s, uint64_t seq, const uint8_t chain[BFT_DIGEST_LEN]) {
  uint32_t L = s->cfg.window;
  s->chain_seq[seq % L] = seq;
  memcpy(s->chain_ring[seq % L], chain, BFT_DIGEST_LEN);
  if (seq > s->delivered_max) s->delivered_max = seq;
}

static void drop_below_h(pbft_state *s) {
  for (uint32_t i = 0; i < s->cfg.window; i++) {
    if (s->slots[i].used && s->slots[i].seq <= s->h) slot_reset(&s->slots[i]);
    if (s->ckpt[i].used && s->ckpt[i].seq <= s->h) memset(&s->ckpt[i], 0, sizeof s->ckpt[i]);
  }
}

static int restore_snapshot(pbft_state *s, wire_reader *r) {
  s->view = wire_get_u64(r);
  s->changing = wire_get_u8(r) != 0;
  s->h = wire_get_u64(r);
  wire_get_fixed(r, s->h_digest, BFT_DIGEST_LEN);
  PBFT_TRY(get_qc(r, &s->h_proof, s->q));
  s->delivered_max = wire_get_u64(r);
  for (uint32_t i = 0; i < s->cfg.window; i++) {
    slot_reset_keep_bytes(s, &s->slots[i]);
    s->chain_seq[i] = 0;
  }
  drop_below_h(s);
  uint32_t n = wire_get_count(r, BFT_MAX_WINDOW);
  for (uint32_t i = 0; i < n && !r->err; i++) {
    uint64_t q = wire_get_u64(r);
    uint8_t c[BFT_DIGEST_LEN];
    wire_get_fixed(r, c, BFT_DIGEST_LEN);
    if (!r->err) restore_chain(s, q, c);
  }
  uint32_t m = wire_get_count(r, BFT_MAX_WINDOW);
  for (uint32_t i = 0; i < m && !r->err; i++) {
    uint64_t q = wire_get_u64(r);
    uint8_t flags = wire_get_u8(r);
    pbft_slot *sl = pbft_slot_make(s, q);
    if (!sl || flags == 0 || flags > 7) return BFT_E_MALFORMED;
    uint8_t d[BFT_DIGEST_LEN];
    if (flags & 1) {
      uint64_t v = wire_get_u64(r);
      wire_get_fixed(r, d, BFT_DIGEST_LEN);
      restore_mine(&sl->my_prep, v, d);
    }
    if (flags & 2) {
      uint64_t v = wire_get_u64(r);
      wire_get_fixed(r, d, BFT_DIGEST_LEN);
      restore_mine(&sl->my_com, v, d);
    }
    if (flags & 4) {
      sl->pcert_view = wire_get_u64(r);
      wire_get_fixed(r, sl->pcert_digest, BFT_DIGEST_LEN);
      PBFT_TRY(get_qc(r, &sl->pcert, s->q));
      if (sl->pcert.count == 0) return BFT_E_MALFORMED;
      sl->has_pcert = 1;
    }
  }
  return 0;
}

int pbft_restore_record(pbft_state *s, const uint8_t *rec, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, rec, len);
  uint8_t type = wire_get_u8(&r);
  uint8_t d[BFT_DIGEST_LEN];
  switch (type) {
    case PBFT_REC_SNAPSHOT:
      PBFT_TRY(restore_snapshot(s, &r));
      break;
    case PBFT_REC_VIEW: {
      uint64_t v = wire_get_u64(&r);
      uint8_t ch = wire_get_u8(&r);
      if (!r.err && v >= s->view) {
        s->view = v;
        s->changing = ch != 0;
      }
      break;
    }
    case PBFT_REC_VOTE: {
      uint8_t kind = wire_get_u8(&r);
      uint64_t v = wire_get_u64(&r), q = wire_get_u64(&r);
      wire_get_fixed(&r, d, BFT_DIGEST_LEN);
      if (r.err) break;
      if (kind != PBFT_MSG_PREPARE && kind != PBFT_MSG_COMMIT) return BFT_E_MALFORMED;
      pbft_slot *sl = pbft_slot_make(s, q);
      if (sl) restore_mine(kind == PBFT_MSG_PREPARE ? &sl->my_prep : &sl->my_com, v, d);
      break;
    }
    case PBFT_REC_PCERT: {
      uint64_t q = wire_get_u64(&r), view = wire_get_u64(&r);
      uint8_t digest[BFT_DIGEST_LEN];
      wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
      bft_qc c;
      PBFT_TRY(get_qc(&r, &c, s->q));
      if (c.count == 0) return BFT_E_MALFORMED;
      pbft_slot *sl = pbft_slot_make(s, q);
      if (sl) {
        if (!sl->has_pcert || sl->pcert_view <= view) {
          sl->has_pcert = 1;
          sl->pcert_view = view;
          memcpy(sl->pcert_digest, digest, BFT_DIGEST_LEN);
          sl->pcert = c;
        }
        restore_mine(&sl->my_com, view, digest);
      }
      break;
    }
    case PBFT_REC_BATCH: {
      uint64_t q = wire_get_u64(&r);
      uint32_t blen;
      const uint8_t *batch = wire_get_blob(&r, &blen, BFT_MAX_BATCH_BYTES);
      if (r.err) break;
      pbft_slot *sl = pbft_slot_make(s, q); /* NULL: moot below the window */
      if (sl) {
        memcpy(sl->batch, batch, blen);
        sl->batch_len = blen;
        bft_digest(sl->batch_digest, batch, blen);
        sl->has_batch = 1;
      }
      break;
    }
    case PBFT_REC_DELIVERED: {
      uint64_t q = wire_get_u64(&r);
      uint8_t valid = wire_get_u8(&r);
      wire_get_fixed(&r, d, BFT_DIGEST_LEN);
      if (r.err) break;
      if (valid) restore_chain(s, q, d);
      else if (q > s->delivered_max) s->delivered_max = q;
      break;
    }
    default:
      return BFT_E_MALFORMED;
  }
  return wire_reader_finish(&r);
}

/* ---- delivery ---------------------------------------------------------------------------- */

void pbft_chain_step(uint8_t chain[BFT_DIGEST_LEN], const uint8_t digest[BFT_DIGEST_LEN]) {
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, CHAIN_TAG, sizeof CHAIN_TAG - 1);
  bft_digest_update(&c, chain, BFT_DIGEST_LEN);
  bft_digest_update(&c, digest, BFT_DIGEST_LEN);
  bft_digest_final(&c, chain);
}

/* The checkpoint votes held for seq: its slot's inside the window, else the far ones. */
static bft_voteset *ckpt_votes(pbft_state *s, uint64_t seq) {
  uint32_t K = s->cfg.checkpoint_interval, slots = s->cfg.window / K;
  if (!pbft_in_window(s, seq) || seq % K != 0) return &s->far_ckpt;
  pbft_ckpt *c = &s->ckpt[(seq / K) % slots];
  if (!c->used || c->seq != seq) {
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->seq = seq;
  }
  return &c->v;
}

static int send_checkpoint(pbft_state *s, bft_actions *out) {
  uint8_t b[PBFT_CKPT_LEN + BFT_SIG_LEN];
  pbft_ckpt_stmt(b, s->committed, s->chain, s->cfg.self);
  uint8_t sig[BFT_SIG_LEN];
  s->env.sign(s->env.ctx, PBFT_TAG_CHECKPOINT, b, PBFT_CKPT_LEN, sig);
  bft_voteset_set(ckpt_votes(s, s->committed), s->cfg.self, 0, s->committed, s->chain, sig);
  memcpy(b + PBFT_CKPT_LEN, sig, BFT_SIG_LEN);
  PBFT_TRY(bft_act_broadcast(out, PBFT_MSG_CHECKPOINT, b, sizeof b));
  /* Checkpoint votes are sent once; until this one is stable, a timer repeats it (a lost
   * vote must not freeze the watermarks). */
  s->ck_last = s->committed;
  memcpy(s->ck_digest, s->chain, BFT_DIGEST_LEN);
  s->ck_tag++;
  PBFT_TRY(bft_act_timer_set(out, PBFT_TIMER_CHECKPOINT, s->ck_tag, s->cfg.timeout_ms));
  return pbft_ckpt_check_stable(s, s->committed, s->chain, out);
}

int pbft_deliver_one(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len,
                     const uint8_t *cert, uint32_t cert_len, bft_actions *out) {
  uint8_t digest[BFT_DIGEST_LEN];
  bft_digest(digest, batch, len);
  if (s->chain_valid) pbft_chain_step(s->chain, digest);
  s->committed = seq;
  s->dig_seq[seq % s->cfg.window] = seq;
  memcpy(s->dig_ring[seq % s->cfg.window], digest, BFT_DIGEST_LEN);
  /* A chain we could not follow (restart behind our own records) resumes at a checkpoint
   * that 2f+1 replicas proved. */
  if (!s->chain_valid && seq == s->h && s->h > 0) {
    memcpy(s->chain, s->h_digest, BFT_DIGEST_LEN);
    s->chain_valid = 1;
  }
  if (s->chain_valid) {
    uint32_t L = s->cfg.window;
    s->chain_seq[seq % L] = seq;
    memcpy(s->chain_ring[seq % L], s->chain, BFT_DIGEST_LEN);
  }
  if (seq > s->delivered_max) s->delivered_max = seq;
  PBFT_TRY(persist_delivered(s, seq, out));
  PBFT_TRY(bft_act_commit(out, seq, digest, batch, len, cert, cert_len));
  pbft_requests_done(s, batch, len);
  if (s->chain_valid && seq % s->cfg.checkpoint_interval == 0 && seq > s->h)
    PBFT_TRY(send_checkpoint(s, out));
  return 0;
}

int pbft_try_deliver(pbft_state *s, bft_actions *out) {
  int progressed = 0;
  for (;;) {
    uint64_t seq = s->committed + 1;
    pbft_slot *sl = pbft_slot_get(s, seq);
    if (!sl || !sl->committed) break;
    uint8_t null_d[BFT_DIGEST_LEN], empty[4];
    pbft_empty_digest(null_d);
    const uint8_t *batch = sl->batch;
    uint32_t blen = sl->batch_len;
    if (memcmp(sl->cm_digest, null_d, BFT_DIGEST_LEN) == 0) { /* a null request: no bytes needed */
      blen = bft_batch_encoded_empty(empty);
      batch = empty;
    } else if (!sl->has_batch || memcmp(sl->batch_digest, sl->cm_digest, BFT_DIGEST_LEN) != 0) {
      /* Committed without the bytes (a lost pre-prepare, or a NEW-VIEW re-proposal of a batch
       * we never saw): the commit signers who had it deliver it; fetch from them. */
      uint64_t mask = 0;
      for (uint32_t i = 0; i < s->cfg.n; i++)
        if (i != s->cfg.self && bft_voteset_has(&sl->com, i, sl->cm_view, seq, sl->cm_digest)) mask |= 1ull << i;
      pbft_need_fetch(s, seq, mask, out);
      break;
    }
    /* The action arena is bounded: leave room for this batch, its certificate and the small
     * actions that follow; resume on the kick timer. */
    if (out->arena_cap - out->used < blen + PBFT_CERT_MAX + 65536u) {
      PBFT_TRY(pbft_arm_kick(s, out));
      break;
    }
    uint8_t cert[PBFT_CERT_MAX];
    int cl = pbft_build_commit_cert(s, sl, cert, sizeof cert);
    if (cl < 0) return cl;
    PBFT_TRY(pbft_deliver_one(s, seq, batch, blen, cert, (uint32_t)cl, out));
    progressed = 1;
  }
  if (progressed) PBFT_TRY(pbft_after_delivery(s, out));
  return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

int pbft_ckpt_check_stable(pbft_state *s, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                           bft_actions *out) {
  if (seq <= s->h) return 0;
  uint32_t K = s->cfg.checkpoint_interval, slots = s->cfg.window / K;
  const pbft_ckpt *c = pbft_in_window(s, seq) ? &s->ckpt[(seq / K) % slots] : NULL;
  if (c && (!c->used || c->seq != seq)) c = NULL;
  /* A replica's vote for seq may sit in the slot or, cast while seq was above our window, among
   * the far votes: each replica's matching one, from either, counts. */
  bft_voteset votes;
  bft_voteset_clear(&votes);
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    const bft_vote *v = NULL;
    if (c && bft_voteset_has(&c->v, i, 0, seq, digest)) v = &c->v.v[i];
    else if (bft_voteset_has(&s->far_ckpt, i, 0, seq, digest)) v = &s->far_ckpt.v[i];
    if (v) bft_voteset_set(&votes, i, 0, seq, digest, v->sig);
  }
  bft_qc proof;
  if (!bft_voteset_qc(&votes, &s->cfg, 0, seq, digest, UINT32_MAX, &proof)) return 0;
  return pbft_make_stable(s, seq, digest, &proof, out);
}

int pbft_make_stable(pbft_state *s, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                     const bft_qc *proof, bft_actions *out) {
  if (seq <= s->h) return 0;
  BFT_ASSERT(proof->count == s->q);
  s->h = seq;
  memcpy(s->h_digest, digest, BFT_DIGEST_LEN);
  s->h_proof = *proof;
  drop_below_h(s);
  for (uint32_t i = 0; i < s->cfg.n; i++)
    if (s->far_ckpt.v[i].valid && s->far_ckpt.v[i].height <= seq) bft_voteset_forget(&s->far_ckpt, i);
  if (s->committed == seq && !s->chain_valid) {
    memcpy(s->chain, digest, BFT_DIGEST_LEN);
    s->chain_valid = 1;
  } else if (s->committed > seq && !s->chain_valid && s->committed - seq < s->cfg.window) {
    /* Delivered past the proved checkpoint without knowing the chain (after a snapshot
     * install): step it forward from the proof over the digests we delivered since. */
    uint8_t ch[BFT_DIGEST_LEN];
    memcpy(ch, digest, BFT_DIGEST_LEN);
    uint64_t q = seq + 1;
    for (; q <= s->committed && s->dig_seq[q % s->cfg.window] == q; q++) {
      pbft_chain_step(ch, s->dig_ring[q % s->cfg.window]);
      s->chain_seq[q % s->cfg.window] = q;
      memcpy(s->chain_ring[q % s->cfg.window], ch, BFT_DIGEST_LEN);
    }
    if (q > s->committed) {
      memcpy(s->chain, ch, BFT_DIGEST_LEN);
      s->chain_valid = 1;
    }
  }
  if (s->next_seq < seq) s->next_seq = seq;
  PBFT_TRY(pbft_persist_snapshot(s, out));
  if (s->committed < seq) {
    /* 2f+1 replicas signed that they executed up to seq, f+1 of them correct: fetch from
     * the signers. */
    uint64_t mask = 0;
    for (uint32_t i = 0; i < proof->count; i++)
      if (proof->ids[i] != s->cfg.self) mask |= 1ull << proof->ids[i];
    pbft_need_fetch(s, seq, mask, out);
  }
  /* The window moved: slots that were waiting above the old high watermark may proceed. */
  PBFT_TRY(pbft_try_deliver(s, out));
  return pbft_maybe_pull(s, out);
}
