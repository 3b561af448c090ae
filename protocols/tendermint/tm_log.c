/* Tendermint statements, commit certificates and the persisted records that let a restarted
 * replica keep its word: the last (height, round, step) it signed with its lock (SIGN), and
 * validValue with its proof (VALID). Layouts are in tendermint.h. */
#include <string.h>

#include "protocols/tendermint/tm_internal.h"

void tm_stmt_body(uint8_t out[TM_STMT_BODY], uint64_t height, uint64_t round, const uint8_t digest[BFT_DIGEST_LEN]) {
  wire_writer w;
  wire_writer_init(&w, out, TM_STMT_BODY);
  wire_put_u64(&w, height);
  wire_put_u64(&w, round);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  BFT_ASSERT(!w.err && w.len == TM_STMT_BODY);
}

int tm_build_cert(uint64_t round, const bft_qc *qc, uint8_t *buf, uint32_t cap) {
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u64(&w, round);
  bft_qc_put(&w, qc);
  return w.err ? w.err : (int)w.len;
}

int tm_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                   const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  if (cfg->n < BFT_MIN_REPLICAS || cfg->n > BFT_MAX_REPLICAS || cfg->f != (cfg->n - 1) / 3) return BFT_E_INVAL;
  if (len > TM_CERT_MAX || seq == 0 || tm_is_nil(digest)) return BFT_E_BAD_CERT;
  wire_reader r;
  wire_reader_init(&r, cert, len);
  uint64_t round = wire_get_u64(&r);
  bft_qc_view v;
  bft_qc_get(&r, &v);
  if (wire_reader_finish(&r) != 0) return BFT_E_BAD_CERT;
  uint8_t body[TM_STMT_BODY];
  tm_stmt_body(body, seq, round, digest);
  return bft_qc_verify(cfg, env, TM_TAG_PRECOMMIT, body, sizeof body, &v, UINT32_MAX);
}

/* ---- records ----------------------------------------------------------------------------- */

int tm_persist_sign(tm_state *s, bft_actions *out) {
  BFT_ASSERT(s->ls_valid);
  uint8_t b[TM_SIGN_REC_LEN];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  wire_put_u8(&w, TM_REC_SIGN);
  wire_put_u64(&w, s->ls_height);
  wire_put_u64(&w, s->ls_round);
  wire_put_u8(&w, s->ls_step);
  wire_put_fixed(&w, s->ls_digest, BFT_DIGEST_LEN);
  /* The lock at ls_height: ours if we are there, the one our records promised if we are
   * still catching up to it (a restart behind its records), else none. */
  static const uint8_t nil[BFT_DIGEST_LEN];
  uint64_t lr = TM_NIL_ROUND;
  const uint8_t *ld = nil;
  if (s->ls_height == s->height && s->locked_round != TM_NIL_ROUND) {
    lr = s->locked_round;
    ld = s->locked_digest;
  } else if (s->ls_height == s->rec_height && s->ls_height > s->height) {
    lr = s->rec_locked_round;
    ld = s->rec_locked_digest;
  }
  wire_put_u64(&w, lr);
  wire_put_fixed(&w, ld, BFT_DIGEST_LEN);
  if (w.err) return w.err;
  return bft_act_persist(out, b, (uint32_t)w.len);
}

int tm_persist_valid(tm_state *s, bft_actions *out) {
  BFT_ASSERT(s->valid_round != TM_NIL_ROUND);
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u8(&w, TM_REC_VALID);
  wire_put_u64(&w, s->height);
  wire_put_u64(&w, s->valid_round);
  bft_qc_put(&w, &s->valid_pol);
  wire_put_blob(&w, s->valid_val, s->valid_len);
  if (w.err) return w.err;
  return bft_act_persist(out, s->scratch, (uint32_t)w.len);
}

int tm_persist_proposal(tm_state *s, uint32_t from, uint64_t height, const uint8_t *body, uint32_t len,
                        bft_actions *out) {
  if (len > TM_PROPOSAL_BODY_MAX) return BFT_E_TOO_LARGE;
  uint8_t *tmp = bft_actions_alloc(out, 1 + 4 + 8 + len);
  if (!tmp) return BFT_E_FULL;
  tmp[0] = TM_REC_PROPOSAL;
  for (int i = 0; i < 4; i++) tmp[1 + i] = (uint8_t)(from >> (8 * i));
  for (int i = 0; i < 8; i++) tmp[5 + i] = (uint8_t)(height >> (8 * i));
  memcpy(tmp + 13, body, len);
  s->rp_from = from;
  s->rp_height = height;
  s->rp_len = len;
  if (s->rp_msg != body) memcpy(s->rp_msg, body, len);
  return bft_act_persist(out, tmp, 13 + len);
}

/* A restarted replica replays its records here before start(): the guard is the latest SIGN
 * record's (height, round, step); lock and validValue are taken as written, and start()
 * keeps them only if they belong to the height it resumes. */
int tm_restore_record(tm_state *s, const uint8_t *rec, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, rec, len);
  uint8_t type = wire_get_u8(&r);
  switch (type) {
    case TM_REC_SIGN: {
      uint64_t h = wire_get_u64(&r), rd = wire_get_u64(&r);
      uint8_t step = wire_get_u8(&r);
      uint8_t d[BFT_DIGEST_LEN], ld[BFT_DIGEST_LEN];
      wire_get_fixed(&r, d, BFT_DIGEST_LEN);
      uint64_t lr = wire_get_u64(&r);
      wire_get_fixed(&r, ld, BFT_DIGEST_LEN);
      int rc = wire_reader_finish(&r);
      if (rc) return rc;
      if (step < TM_STEP_PROPOSE || step > TM_STEP_PRECOMMIT || h == 0) return BFT_E_MALFORMED;
      if (lr != TM_NIL_ROUND && lr > rd) return BFT_E_MALFORMED;
      s->ls_valid = 1;
      s->ls_height = h;
      s->ls_round = rd;
      s->ls_step = step;
      if (step == TM_STEP_PREVOTE) {
        s->pv_valid = 1;
        s->pv_height = h;
        s->pv_round = rd;
        memcpy(s->pv_digest, d, BFT_DIGEST_LEN);
      }
      memcpy(s->ls_digest, d, BFT_DIGEST_LEN);
      s->rec_height = h;
      s->rec_locked_round = lr;
      memcpy(s->rec_locked_digest, ld, BFT_DIGEST_LEN);
      return 0;
    }
    case TM_REC_VALID: {
      uint64_t h = wire_get_u64(&r), vr = wire_get_u64(&r);
      bft_qc_view v;
      bft_qc_get(&r, &v);
      uint32_t blen;
      const uint8_t *val = wire_get_blob(&r, &blen, BFT_MAX_BATCH_BYTES);
      int rc = wire_reader_finish(&r);
      if (rc) return rc;
      if (h == 0 || vr == TM_NIL_ROUND || v.count == 0) return BFT_E_MALFORMED;
      s->valid_height = h;
      s->valid_round = vr;
      bft_qc_from_view(&v, &s->valid_pol);
      memcpy(s->valid_val, val, blen);
      s->valid_len = blen;
      bft_digest(s->valid_digest, val, blen);
      return 0;
    }
    case TM_REC_PROPOSAL: {
      uint32_t from = wire_get_u32(&r);
      uint64_t h = wire_get_u64(&r);
      if (r.err || len - 13 > TM_PROPOSAL_BODY_MAX || len < 13 + BFT_SIG_LEN) return BFT_E_MALFORMED;
      s->rp_from = from;
      s->rp_height = h;
      s->rp_len = len - 13;
      memcpy(s->rp_msg, rec + 13, s->rp_len);
      return 0;
    }
    default:
      return BFT_E_MALFORMED;
  }
}

int tm_compact_records(tm_state *s, bft_actions *out) {
  if (s->ls_valid) TM_TRY(tm_persist_sign(s, out));
  if (s->valid_round != TM_NIL_ROUND) TM_TRY(tm_persist_valid(s, out));
  if (s->rp_len && s->rp_height >= s->height) TM_TRY(tm_persist_proposal(s, s->rp_from, s->rp_height, s->rp_msg, s->rp_len, out));
  return 0;
}
