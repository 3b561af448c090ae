/* Canonical encodings of PBFT statements, quorum signatures, VIEW-CHANGE and NEW-VIEW (layouts
 * in pbft.h), and the one routine that checks a quorum of signatures. Decoders only check
 * structure and bounds; what the values mean is judged in pbft_safety.c. */
#include "protocols/pbft/pbft_internal.h"

void pbft_vote_stmt(uint8_t out[PBFT_VOTE_LEN], uint64_t view, uint64_t seq,
                    const uint8_t digest[BFT_DIGEST_LEN], uint32_t replica) {
  wire_writer w;
  wire_writer_init(&w, out, PBFT_VOTE_LEN);
  wire_put_u64(&w, view);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  wire_put_u32(&w, replica);
}

void pbft_ckpt_stmt(uint8_t out[PBFT_CKPT_LEN], uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                    uint32_t replica) {
  wire_writer w;
  wire_writer_init(&w, out, PBFT_CKPT_LEN);
  wire_put_u64(&w, seq);
  wire_put_fixed(&w, digest, BFT_DIGEST_LEN);
  wire_put_u32(&w, replica);
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

void pbft_put_qsigs(wire_writer *w, const pbft_qcert *c) {
  uint32_t n = c->valid ? c->count : 0;
  wire_put_u32(w, n);
  for (uint32_t i = 0; i < n; i++) {
    wire_put_u32(w, c->ids[i]);
    wire_put_fixed(w, c->sigs[i], BFT_SIG_LEN);
  }
}

void pbft_get_qsigs(wire_reader *r, pbft_qsigs_view *v) {
  v->count = wire_get_count(r, PBFT_QUORUM_MAX);
  v->p = wire_get_view(r, (size_t)v->count * PBFT_QSIG_ENTRY);
  if (!v->p) v->count = 0;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int pbft_check_qsigs(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, int ckpt,
                     uint64_t view, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                     const pbft_qsigs_view *qs, uint32_t need) {
  uint32_t q = 2 * cfg->f + 1;
  /* Cheap structure first: exactly a quorum, strictly ascending (hence distinct) known signers. */
  if (qs->count != q || !qs->p) return BFT_E_BAD_CERT;
  int have_need = need == UINT32_MAX;
  for (uint32_t i = 0; i < q; i++) {
    uint32_t id = le32(qs->p + (size_t)i * PBFT_QSIG_ENTRY);
    if (id >= cfg->n) return BFT_E_BAD_CERT;
    if (i > 0 && id <= le32(qs->p + (size_t)(i - 1) * PBFT_QSIG_ENTRY)) return BFT_E_BAD_CERT;
    if (id == need) have_need = 1;
  }
  if (!have_need) return BFT_E_BAD_CERT;
  for (uint32_t i = 0; i < q; i++) {
    const uint8_t *e = qs->p + (size_t)i * PBFT_QSIG_ENTRY;
    uint32_t id = le32(e);
    uint8_t st[PBFT_VOTE_LEN];
    uint32_t stlen = ckpt ? PBFT_CKPT_LEN : PBFT_VOTE_LEN;
    if (ckpt) pbft_ckpt_stmt(st, seq, digest, id);
    else pbft_vote_stmt(st, view, seq, digest, id);
    if (env->verify(env->ctx, id, tag, st, stlen, e + 4) != 0) return BFT_E_BAD_CERT;
  }
  return 0;
}

int pbft_decode_vc(const uint8_t *p, uint32_t len, pbft_vc *vc) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  vc->new_view = wire_get_u64(&r);
  vc->replica = wire_get_u32(&r);
  vc->stable_seq = wire_get_u64(&r);
  wire_get_fixed(&r, vc->stable_digest, BFT_DIGEST_LEN);
  pbft_get_qsigs(&r, &vc->proof);
  vc->n = wire_get_count(&r, BFT_MAX_WINDOW);
  for (uint32_t i = 0; i < vc->n && !r.err; i++) {
    pbft_vc_entry *e = &vc->e[i];
    e->view = wire_get_u64(&r);
    e->seq = wire_get_u64(&r);
    wire_get_fixed(&r, e->digest, BFT_DIGEST_LEN);
    pbft_get_qsigs(&r, &e->sigs);
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
