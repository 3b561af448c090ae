/* Canonical encodings of PBFT statements, VIEW-CHANGE and NEW-VIEW (layouts in pbft.h), and the
 * checks of PBFT's certificates (bft_qc's over vote and checkpoint bodies, protocols/quorum.h).
 * Decoders only check structure and bounds; what the values mean is judged in pbft_safety.c. */
#include "protocols/pbft/pbft_internal.h"

void pbft_vote_body(uint8_t out[PBFT_VOTE_BODY_LEN], uint64_t view, uint64_t seq,
                    const uint8_t digest[BFT_DIGEST_LEN]) {
  wire_writer w;
  wire_writer_init(&w, out, PBFT_VOTE_BODY_LEN);
  wire_put_u64(&w, view);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  BFT_ASSERT(w.err == 0 && w.len == PBFT_VOTE_BODY_LEN);
}

void pbft_ckpt_body(uint8_t out[PBFT_CKPT_BODY_LEN], uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN]) {
  wire_writer w;
  wire_writer_init(&w, out, PBFT_CKPT_BODY_LEN);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  BFT_ASSERT(w.err == 0 && w.len == PBFT_CKPT_BODY_LEN);
}

/* body || u32 replica, as bft_stmt_make builds it for certificate checks. */
static void put_replica(uint8_t *out, uint32_t replica) {
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(replica >> (8 * i));
}

void pbft_vote_stmt(uint8_t out[PBFT_VOTE_LEN], uint64_t view, uint64_t seq,
                    const uint8_t digest[BFT_DIGEST_LEN], uint32_t replica) {
  pbft_vote_body(out, view, seq, digest);
  put_replica(out + PBFT_VOTE_BODY_LEN, replica);
}

void pbft_ckpt_stmt(uint8_t out[PBFT_CKPT_LEN], uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                    uint32_t replica) {
  pbft_ckpt_body(out, seq, digest);
  put_replica(out + PBFT_CKPT_BODY_LEN, replica);
}

int pbft_decode_vote(const uint8_t *p, uint32_t len, uint64_t *view, uint64_t *seq,
                     uint8_t digest[BFT_DIGEST_LEN], uint32_t *replica) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  *view = wire_get_u64(&r);
  *seq = wire_get_u64(&r);
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  *replica = wire_get_u32(&r);
  return wire_reader_finish(&r);
}

int pbft_decode_ckpt(const uint8_t *p, uint32_t len, uint64_t *seq, uint8_t digest[BFT_DIGEST_LEN],
                     uint32_t *replica) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  *seq = wire_get_u64(&r);
  wire_get_fixed(&r, digest, BFT_DIGEST_LEN);
  *replica = wire_get_u32(&r);
  return wire_reader_finish(&r);
}

int pbft_verify_votes(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, uint64_t view,
                      uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN], const bft_qc_view *qc, uint32_t need) {
  uint8_t body[PBFT_VOTE_BODY_LEN];
  pbft_vote_body(body, view, seq, digest);
  return bft_qc_verify(cfg, env, tag, body, sizeof body, qc, need);
}

int pbft_verify_ckpts(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                      const uint8_t digest[BFT_DIGEST_LEN], const bft_qc_view *qc) {
  uint8_t body[PBFT_CKPT_BODY_LEN];
  pbft_ckpt_body(body, seq, digest);
  return bft_qc_verify(cfg, env, PBFT_TAG_CHECKPOINT, body, sizeof body, qc, UINT32_MAX);
}

int pbft_decode_vc(const uint8_t *p, uint32_t len, pbft_vc *vc) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  vc->new_view = wire_get_u64(&r);
  vc->replica = wire_get_u32(&r);
  vc->stable_seq = wire_get_u64(&r);
  wire_get_fixed(&r, vc->stable_digest, BFT_DIGEST_LEN);
  bft_qc_get(&r, &vc->proof);
  vc->n = wire_get_count(&r, BFT_MAX_WINDOW);
  for (uint32_t i = 0; i < vc->n && !r.err; i++) {
    pbft_vc_entry *e = &vc->e[i];
    e->view = wire_get_u64(&r);
    e->seq = wire_get_u64(&r);
    wire_get_fixed(&r, e->digest, BFT_DIGEST_LEN);
    bft_qc_get(&r, &e->sigs);
    if (r.err) break;
    /* Canonical: seqs strictly ascending above the stable checkpoint. */
    if (e->seq <= vc->stable_seq || (i > 0 && e->seq <= vc->e[i - 1].seq)) return BFT_E_MALFORMED;
    if (e->view >= vc->new_view) return BFT_E_MALFORMED;
  }
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (vc->stable_seq == 0 && vc->proof.count != 0) return BFT_E_MALFORMED;
  return 0;
}

int pbft_decode_nv(const uint8_t *p, uint32_t len, pbft_nv *nv) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  nv->view = wire_get_u64(&r);
  nv->nvc = wire_get_count(&r, PBFT_QUORUM_MAX);
  for (uint32_t i = 0; i < nv->nvc && !r.err; i++)
    nv->vc[i] = wire_get_blob(&r, &nv->vc_len[i], PBFT_VC_BODY_MAX);
  nv->min_s = wire_get_u64(&r);
  nv->no = wire_get_count(&r, BFT_MAX_WINDOW);
  nv->o = wire_get_view(&r, (size_t)nv->no * PBFT_NV_ENTRY);
  return wire_reader_finish(&r);
}

void pbft_empty_digest(uint8_t out[BFT_DIGEST_LEN]) {
  uint8_t e[4];
  uint32_t n = bft_batch_encoded_empty(e);
  bft_digest(out, e, n);
}
