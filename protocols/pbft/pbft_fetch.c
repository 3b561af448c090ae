/* PBFT fetch by digest. A replica that must vote on or deliver a batch it knows only by digest
 * (a NEW-VIEW re-proposal, a commit certificate for a batch it never saw) asks for the bytes
 * with BATCH_GET, PBFT_ASK_FANOUT replicas at a time: first those likely to hold them (the
 * commit signers; the replicas whose VIEW-CHANGE carried the chosen prepared certificate, and
 * the primary), then every other replica in turn, so a holder that is slow, faulty or
 * withholding only costs one round of the ask timer. A BATCH answer is kept only if we asked
 * its sender for that digest, its bytes hash to the digest, the slot still wants them
 * (pbft_bytes_wanted) and check_batch accepts them. Answers go to the asker only, for bytes we
 * hold, at most `window` per asker per timeout. Liveness only: the bytes must match a digest
 * the votes already fixed, so nothing here changes what commits. */
#include "protocols/pbft/pbft_internal.h"

/* The digest whose bytes the slot should ask for, or NULL. */
static const uint8_t *wanted_digest(const pbft_state *s, const pbft_slot *sl) {
  if (sl->committed && pbft_bytes_wanted(s, sl, sl->cm_digest)) return sl->cm_digest;
  if (sl->has_pp && sl->pp_view == s->view && !s->changing && pbft_bytes_wanted(s, sl, sl->pp_digest))
    return sl->pp_digest;
  return NULL;
}

static uint64_t likely_holders(const pbft_state *s, const pbft_slot *sl, const uint8_t digest[BFT_DIGEST_LEN]) {
  uint64_t m = 0;
  if (sl->committed && memcmp(sl->cm_digest, digest, BFT_DIGEST_LEN) == 0)
    for (uint32_t i = 0; i < s->cfg.n; i++)
      if (bft_voteset_has(&sl->com, i, sl->cm_view, sl->seq, sl->cm_digest)) m |= 1ull << i;
  if (sl->has_pp && memcmp(sl->pp_digest, digest, BFT_DIGEST_LEN) == 0)
    m |= sl->holders | 1ull << pbft_primary(s, sl->pp_view);
  return m;
}

/* The first replica in `cand` from seq's position on (slots spread their asks over holders). */
static uint32_t pick(const pbft_state *s, uint64_t cand, uint64_t seq) {
  for (uint32_t k = 0; k < s->cfg.n; k++) {
    uint32_t i = (uint32_t)((seq + k) % s->cfg.n);
    if (cand & (1ull << i)) return i;
  }
  return UINT32_MAX;
}

int pbft_arm_ask(pbft_state *s, bft_actions *out) {
  if (s->ask_armed) return 0;
  s->ask_armed = 1;
  return bft_act_timer_set(out, PBFT_TIMER_BATCH, ++s->ask_tag, pbft_half_timeout(s));
}

/* u64 seq | digest, the head of BATCH_GET and BATCH. */
static void get_head(wire_reader *r, const uint8_t *p, uint32_t len, uint64_t *seq, uint8_t digest[BFT_DIGEST_LEN]) {
  wire_reader_init(r, p, len);
  *seq = wire_get_u64(r);
  wire_get_fixed(r, digest, BFT_DIGEST_LEN);
}

int pbft_ask_slot(pbft_state *s, pbft_slot *sl, int retry, bft_actions *out) {
  const uint8_t *d = wanted_digest(s, sl);
  if (!d) {
    sl->asking = 0;
    return 0;
  }
  if (!sl->asking || memcmp(sl->ask_digest, d, BFT_DIGEST_LEN) != 0) {
    sl->asking = 1;
    memcpy(sl->ask_digest, d, BFT_DIGEST_LEN);
    sl->asked = sl->tried = 0;
  } else if (!retry) {
    return 0; /* asked already: the ask timer asks the next ones */
  }
  uint64_t all = (s->cfg.n >= 64 ? ~0ull : (1ull << s->cfg.n) - 1) & ~(1ull << s->cfg.self);
  uint64_t likely = likely_holders(s, sl, d) & all, sent = 0;
  for (uint32_t k = 0; k < PBFT_ASK_FANOUT; k++) {
    uint64_t cand = likely & ~sl->tried & ~sent;
    if (!cand) cand = all & ~sl->tried & ~sent;
    if (!cand) { /* everyone was asked in this round: start the next one */
      sl->tried = sent;
      cand = (likely & ~sent) ? likely & ~sent : all & ~sent;
    }
    uint32_t to = pick(s, cand, sl->seq);
    if (to == UINT32_MAX) break;
    sent |= 1ull << to;
    sl->tried |= 1ull << to;
    sl->asked |= 1ull << to;
    uint8_t b[PBFT_BATCH_GET_LEN + BFT_SIG_LEN];
    wire_writer w;
    wire_writer_init(&w, b, sizeof b);
    wire_put_u64(&w, sl->seq);
    wire_put_fixed(&w, d, BFT_DIGEST_LEN);
    if (w.err) return w.err;
    PBFT_TRY(pbft_emit(s, PBFT_MSG_BATCH_GET, b, (uint32_t)w.len, sizeof b, to, out));
  }
  return pbft_arm_ask(s, out);
}

int pbft_ask_batches(pbft_state *s, int retry, bft_actions *out) {
  for (uint64_t q = s->h + 1; q <= s->h + s->cfg.window; q++) {
    pbft_slot *sl = pbft_slot_get(s, q);
    if (sl) PBFT_TRY(pbft_ask_slot(s, sl, retry, out));
  }
  return 0;
}

/* BATCH_GET from `from` (the dispatch checked seq against the watermarks). */
int pbft_on_batch_get(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  uint64_t seq;
  uint8_t digest[BFT_DIGEST_LEN];
  get_head(&r, p, len, &seq, digest);
  int rc = wire_reader_finish(&r);
  if (rc) return pbft_reject(s, rc);
  pbft_slot *sl = pbft_slot_get(s, seq);
  if (!sl || !sl->has_batch || memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) != 0)
    return pbft_reject(s, BFT_E_STATE); /* we do not hold them */
  /* A budget per asker: a faulty one cannot make us send more than a window of batches per
   * timeout (the answers of a step also stay within the action arena). */
  if (s->answers[from] >= s->cfg.window || out->arena_cap - out->used < sl->batch_len + 65536u)
    return pbft_reject(s, BFT_E_FULL);
  s->answers[from]++;
  if (!s->ans_armed) {
    s->ans_armed = 1;
    s->ans_tag++;
    PBFT_TRY(bft_act_timer_set(out, PBFT_TIMER_ANSWER, s->ans_tag, s->cfg.timeout_ms));
  }
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  wire_put_blob(&w, sl->batch, sl->batch_len);
  if (w.err) return w.err;
  return pbft_emit(s, PBFT_MSG_BATCH, s->scratch, (uint32_t)w.len, sizeof s->scratch, from, out);
}

int pbft_on_answer_timer(pbft_state *s, uint64_t tag) {
  if (tag != s->ans_tag || !s->ans_armed) return 0;
  s->ans_armed = 0;
  memset(s->answers, 0, sizeof s->answers);
  return 0;
}

/* BATCH from `from` (the dispatch checked seq against the watermarks). */
int pbft_on_batch_msg(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out) {
  wire_reader r;
  uint64_t seq;
  uint8_t digest[BFT_DIGEST_LEN];
  get_head(&r, p, len, &seq, digest);
  uint32_t blen;
  const uint8_t *batch = wire_get_blob(&r, &blen, BFT_MAX_BATCH_BYTES);
  int rc = wire_reader_finish(&r);
  if (rc) return pbft_reject(s, rc);
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, batch, blen);
  if (memcmp(d, digest, BFT_DIGEST_LEN) != 0) return pbft_reject(s, BFT_E_BAD_DIGEST);
  pbft_slot *sl = pbft_slot_get(s, seq);
  if (sl && sl->has_batch && memcmp(sl->batch_digest, digest, BFT_DIGEST_LEN) == 0)
    return pbft_reject(s, BFT_E_DUPLICATE);
  /* Only what we asked this replica for, and still want (cheap checks before check_batch). */
  if (!sl || !sl->asking || memcmp(sl->ask_digest, digest, BFT_DIGEST_LEN) != 0 || !(sl->asked & (1ull << from)) ||
      !pbft_bytes_wanted(s, sl, digest))
    return pbft_reject(s, BFT_E_STATE);
  rc = s->env.check_batch(s->env.ctx, batch, blen);
  if (rc) return pbft_reject(s, rc < 0 ? rc : BFT_E_MALFORMED);
  rc = pbft_take_bytes(s, sl, batch, blen, digest, out);
  if (rc <= 0) return rc < 0 ? rc : pbft_reject(s, BFT_E_STATE);
  sl->asking = 0;
  PBFT_TRY(pbft_progress(s, sl, out));
  return pbft_try_deliver(s, out);
}
