/* Canonical encodings of HotStuff blocks, QCs, TIMEOUTs, commit certificates and persisted
 * records (layouts in hotstuff.h), and certificate verification from public keys alone.
 * Decoders check structure and bounds; what values mean is judged in hs_safety.c. */
#include "protocols/hotstuff/hs_internal.h"

#define HS_BLOCK_DOMAIN "hotstuff/block"
#define HS_GENESIS_DOMAIN "hotstuff/genesis"

void hs_block_hash(uint64_t view, uint64_t height, const uint8_t parent[BFT_DIGEST_LEN],
                   const uint8_t batch_digest[BFT_DIGEST_LEN], uint8_t out[BFT_DIGEST_LEN]) {
  uint8_t buf[sizeof HS_BLOCK_DOMAIN - 1 + 16 + 2 * BFT_DIGEST_LEN];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_fixed(&w, HS_BLOCK_DOMAIN, sizeof HS_BLOCK_DOMAIN - 1);
  wire_put_u64(&w, view);
  wire_put_u64(&w, height);
  wire_put_fixed(&w, parent, BFT_DIGEST_LEN);
  wire_put_fixed(&w, batch_digest, BFT_DIGEST_LEN);
  BFT_ASSERT(!w.err && w.len == sizeof buf);
  bft_digest(out, buf, sizeof buf);
}

void hs_genesis_hash(const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t out[BFT_DIGEST_LEN]) {
  uint8_t buf[sizeof HS_GENESIS_DOMAIN - 1 + BFT_CLUSTER_ID_LEN];
  memcpy(buf, HS_GENESIS_DOMAIN, sizeof HS_GENESIS_DOMAIN - 1);
  memcpy(buf + sizeof HS_GENESIS_DOMAIN - 1, cluster_id, BFT_CLUSTER_ID_LEN);
  bft_digest(out, buf, sizeof buf);
}

void hs_vote_body(uint8_t out[HS_STMT_LEN - 4], uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN]) {
  wire_writer w;
  wire_writer_init(&w, out, HS_STMT_LEN - 4);
  wire_put_u64(&w, view);
  wire_put_u64(&w, height);
  wire_put_fixed(&w, hash, BFT_DIGEST_LEN);
}

int hs_decode_block(const uint8_t *p, uint32_t len, hs_blockmsg *b) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  b->view = wire_get_u64(&r);
  b->height = wire_get_u64(&r);
  wire_get_fixed(&r, b->parent, BFT_DIGEST_LEN);
  b->jview = wire_get_u64(&r);
  bft_qc_get(&r, &b->jsigs);
  b->batch = wire_get_blob(&r, &b->batch_len, BFT_MAX_BATCH_BYTES);
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  /* A block extends the block its justify certifies, from an earlier view. */
  if (b->height < 1 || b->view <= b->jview || b->view > UINT64_MAX / 4) return BFT_E_MALFORMED;
  return 0;
}

int hs_encode_block(const hs_block *b, uint8_t *buf, uint32_t cap) {
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u64(&w, b->view);
  wire_put_u64(&w, b->height);
  wire_put_fixed(&w, b->parent, BFT_DIGEST_LEN);
  wire_put_u64(&w, b->jview);
  bft_qc_put(&w, &b->jsigs);
  wire_put_blob(&w, b->batch, b->batch_len);
  return w.err ? w.err : (int)w.len;
}

void hs_put_qc(wire_writer *w, const hs_qc *qc) {
  wire_put_u64(w, qc->view);
  wire_put_u64(w, qc->height);
  wire_put_fixed(w, qc->hash, BFT_DIGEST_LEN);
  bft_qc_put(w, &qc->sigs);
}

void hs_get_qc(wire_reader *r, hs_qc *qc) {
  qc->view = wire_get_u64(r);
  qc->height = wire_get_u64(r);
  wire_get_fixed(r, qc->hash, BFT_DIGEST_LEN);
  bft_qc_view v;
  bft_qc_get(r, &v);
  bft_qc_from_view(&v, &qc->sigs);
}

int hs_decode_tmo(const uint8_t *p, uint32_t len, hs_tmomsg *t) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  t->view = wire_get_u64(&r);
  t->replica = wire_get_u32(&r);
  t->qc_view = wire_get_u64(&r);
  t->qc_height = wire_get_u64(&r);
  wire_get_fixed(&r, t->qc_hash, BFT_DIGEST_LEN);
  bft_qc_get(&r, &t->qc_sigs);
  t->has_vote = wire_get_bool(&r);
  if (t->has_vote) {
    t->v_view = wire_get_u64(&r);
    t->v_height = wire_get_u64(&r);
    wire_get_fixed(&r, t->v_hash, BFT_DIGEST_LEN);
    t->v_sig = wire_get_view(&r, BFT_SIG_LEN);
  }
  return wire_reader_finish(&r);
}

int hs_qc_check(const bft_engine_config *cfg, const bft_engine_env *env, const uint8_t genesis[BFT_DIGEST_LEN],
                uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN], const bft_qc *sigs) {
  if (view == 0 || height == 0) {
    /* Only the genesis block is certified without signatures. */
    int ok = view == 0 && height == 0 && sigs->count == 0 && memcmp(hash, genesis, BFT_DIGEST_LEN) == 0;
    return ok ? 0 : BFT_E_BAD_CERT;
  }
  uint8_t body[HS_STMT_LEN - 4];
  hs_vote_body(body, view, height, hash);
  return bft_qc_verify_qc(cfg, env, HS_TAG_VOTE, body, sizeof body, sigs, UINT32_MAX);
}

/* ---- commit certificates -------------------------------------------------------------------- */

int hs_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                   const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  if (!cert || len > HS_CERT_MAX || seq == 0 || seq > UINT64_MAX / 4) return BFT_E_BAD_CERT;
  wire_reader r;
  wire_reader_init(&r, cert, len);
  uint32_t k = wire_get_u32(&r);
  if (r.err || k < 3 || k > HS_CERT_MAX_HEADERS) return BFT_E_BAD_CERT;
  uint64_t views[HS_CERT_MAX_HEADERS];
  uint8_t hashes[HS_CERT_MAX_HEADERS][BFT_DIGEST_LEN];
  for (uint32_t i = 0; i < k; i++) {
    uint8_t parent[BFT_DIGEST_LEN], bd[BFT_DIGEST_LEN];
    views[i] = wire_get_u64(&r);
    wire_get_fixed(&r, parent, BFT_DIGEST_LEN);
    wire_get_fixed(&r, bd, BFT_DIGEST_LEN);
    if (r.err) return BFT_E_BAD_CERT;
    /* The certified block carries the batch; each later header is the child of the one before. */
    if (i == 0 && memcmp(bd, digest, BFT_DIGEST_LEN) != 0) return BFT_E_BAD_CERT;
    if (i > 0 && (memcmp(parent, hashes[i - 1], BFT_DIGEST_LEN) != 0 || views[i] <= views[i - 1]))
      return BFT_E_BAD_CERT;
    hs_block_hash(views[i], seq + i, parent, bd, hashes[i]);
  }
  /* The top three form a three-chain of consecutive views. */
  if (views[k - 2] != views[k - 3] + 1 || views[k - 1] != views[k - 2] + 1) return BFT_E_BAD_CERT;
  bft_qc_view qv[3];
  for (int j = 0; j < 3; j++) bft_qc_get(&r, &qv[j]);
  if (wire_reader_finish(&r) != 0) return BFT_E_BAD_CERT;
  for (uint32_t j = 0; j < 3; j++) {
    uint32_t i = k - 3 + j;
    uint8_t body[HS_STMT_LEN - 4];
    hs_vote_body(body, views[i], seq + i, hashes[i]);
    if (bft_qc_verify(cfg, env, HS_TAG_VOTE, body, sizeof body, &qv[j], UINT32_MAX) != 0) return BFT_E_BAD_CERT;
  }
  return 0;
}

int hs_cert_first(const uint8_t *cert, uint32_t len, uint64_t *view, uint8_t parent[BFT_DIGEST_LEN],
                  uint8_t batch_digest[BFT_DIGEST_LEN]) {
  wire_reader r;
  wire_reader_init(&r, cert, len);
  uint32_t k = wire_get_u32(&r);
  *view = wire_get_u64(&r);
  wire_get_fixed(&r, parent, BFT_DIGEST_LEN);
  wire_get_fixed(&r, batch_digest, BFT_DIGEST_LEN);
  return r.err || k < 3 ? BFT_E_BAD_CERT : 0;
}

/* ---- records ------------------------------------------------------------------------------ */

static void put_vote(wire_writer *w, const hs_state *s) {
  wire_put_u64(w, s->lv_view);
  wire_put_u64(w, s->lv_height);
  wire_put_fixed(w, s->lv_hash, BFT_DIGEST_LEN);
  wire_put_fixed(w, s->lv_sig, BFT_SIG_LEN);
}

static void get_vote(wire_reader *r, hs_state *s) {
  s->lv_view = wire_get_u64(r);
  s->lv_height = wire_get_u64(r);
  wire_get_fixed(r, s->lv_hash, BFT_DIGEST_LEN);
  wire_get_fixed(r, s->lv_sig, BFT_SIG_LEN);
}

int hs_persist_vote(hs_state *s, bft_actions *out) {
  uint8_t rec[1 + HS_VOTE_REC_LEN];
  wire_writer w;
  wire_writer_init(&w, rec, sizeof rec);
  wire_put_u8(&w, HS_REC_VOTE);
  put_vote(&w, s);
  BFT_ASSERT(!w.err);
  return bft_act_persist(out, rec, (uint32_t)w.len);
}

int hs_persist_block(hs_state *s, const hs_block *b, bft_actions *out) {
  (void)s;
  uint8_t *tmp = bft_actions_alloc(out, 1 + HS_BLOCK_MSG_MAX);
  if (!tmp) return BFT_E_FULL;
  tmp[0] = HS_REC_BLOCK;
  int n = hs_encode_block(b, tmp + 1, HS_BLOCK_MSG_MAX);
  if (n < 0) return n;
  return bft_act_persist(out, tmp, (uint32_t)n + 1);
}

int hs_persist_qc(hs_state *s, uint8_t type, const hs_qc *qc, bft_actions *out) {
  uint8_t rec[1 + HS_QC_ENC_MAX];
  (void)s;
  wire_writer w;
  wire_writer_init(&w, rec, sizeof rec);
  wire_put_u8(&w, type);
  hs_put_qc(&w, qc);
  BFT_ASSERT(!w.err);
  return bft_act_persist(out, rec, (uint32_t)w.len);
}

int hs_persist_commit(hs_state *s, uint64_t height, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN],
                      bft_actions *out) {
  (void)s;
  uint8_t rec[HS_COMMIT_REC_LEN];
  wire_writer w;
  wire_writer_init(&w, rec, sizeof rec);
  wire_put_u8(&w, HS_REC_COMMIT);
  wire_put_u64(&w, height);
  wire_put_u64(&w, view);
  wire_put_fixed(&w, hash, BFT_DIGEST_LEN);
  BFT_ASSERT(!w.err);
  return bft_act_persist(out, rec, (uint32_t)w.len);
}

/* snapshot := u8 type | u64 voted_view | u8 has_vote | vote | qc locked | qc high
 *             | u32 n | n x (u64 height | u64 view | hash)     (recent committed, ascending) */
int hs_compact_records(hs_state *s, bft_actions *out) {
  wire_writer w;
  wire_writer_init(&w, s->scratch, sizeof s->scratch);
  wire_put_u8(&w, HS_REC_SNAPSHOT);
  wire_put_u64(&w, s->voted_view);
  wire_put_bool(&w, s->have_last_vote);
  put_vote(&w, s);
  hs_put_qc(&w, &s->locked);
  hs_put_qc(&w, &s->high);
  uint64_t top = s->delivered_max;
  uint64_t lo = top >= HS_RING ? top - HS_RING + 1 : 1;
  uint32_t n = 0;
  for (uint64_t h = lo; h <= top; h++) n += s->ring_height[h % HS_RING] == h;
  wire_put_u32(&w, n);
  for (uint64_t h = lo; h <= top; h++) {
    if (s->ring_height[h % HS_RING] != h) continue;
    wire_put_u64(&w, h);
    wire_put_u64(&w, s->ring_view[h % HS_RING]);
    wire_put_fixed(&w, s->ring_hash[h % HS_RING], BFT_DIGEST_LEN);
  }
  if (w.err) return w.err;
  HS_TRY(bft_act_persist(out, s->scratch, (uint32_t)w.len));
  for (uint32_t i = 0; i < HS_MAX_BLOCKS; i++) /* the blocks above the root: a QC'd one may exist nowhere else */
    if (s->blocks[i].used && s->blocks[i].height > s->committed) HS_TRY(hs_persist_block(s, &s->blocks[i], out));
  return 0;
}

void hs_ring_put(hs_state *s, uint64_t height, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN]) {
  uint32_t i = (uint32_t)(height % HS_RING);
  s->ring_height[i] = height;
  s->ring_view[i] = view;
  memcpy(s->ring_hash[i], hash, BFT_DIGEST_LEN);
  if (height > s->delivered_max) s->delivered_max = height;
}

static int restore_qc(wire_reader *r, hs_qc *dst) {
  hs_qc qc;
  hs_get_qc(r, &qc);
  if (r->err) return r->err;
  if (qc.view > dst->view) *dst = qc;
  return 0;
}

int hs_restore_record(hs_state *s, const uint8_t *rec, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, rec, len);
  uint8_t type = wire_get_u8(&r);
  switch (type) {
    case HS_REC_SNAPSHOT: {
      uint64_t vv = wire_get_u64(&r);
      int hv = wire_get_bool(&r);
      get_vote(&r, s);
      s->have_last_vote = hv;
      if (vv > s->voted_view) s->voted_view = vv;
      if (restore_qc(&r, &s->locked) || restore_qc(&r, &s->high)) return BFT_E_MALFORMED;
      uint32_t n = wire_get_count(&r, HS_RING);
      for (uint32_t i = 0; i < n && !r.err; i++) {
        uint64_t h = wire_get_u64(&r), v = wire_get_u64(&r);
        uint8_t hash[BFT_DIGEST_LEN];
        wire_get_fixed(&r, hash, BFT_DIGEST_LEN);
        if (!r.err) hs_ring_put(s, h, v, hash);
      }
      break;
    }
    case HS_REC_VOTE:
      get_vote(&r, s);
      s->have_last_vote = 1;
      if (s->lv_view > s->voted_view) s->voted_view = s->lv_view;
      break;
    case HS_REC_LOCK:
      if (restore_qc(&r, &s->locked)) return BFT_E_MALFORMED;
      break;
    case HS_REC_HIGH:
      if (restore_qc(&r, &s->high)) return BFT_E_MALFORMED;
      break;
    case HS_REC_BLOCK: { /* back into the tree if still above the committed root */
      hs_blockmsg m;
      int rc = hs_decode_block(rec + 1, len - 1, &m);
      if (rc) return rc;
      if (m.height <= s->committed) return 0;
      uint8_t bd[BFT_DIGEST_LEN], hash[BFT_DIGEST_LEN];
      bft_digest(bd, m.batch, m.batch_len);
      hs_block_hash(m.view, m.height, m.parent, bd, hash);
      bft_qc js;
      bft_qc_from_view(&m.jsigs, &js);
      (void)hs_insert(s, &m, &js, hash, s->cfg.self, NULL); /* NULL: tree full; peers serve it */
      return 0;
    }
    case HS_REC_COMMIT: {
      uint64_t h = wire_get_u64(&r), v = wire_get_u64(&r);
      uint8_t hash[BFT_DIGEST_LEN];
      wire_get_fixed(&r, hash, BFT_DIGEST_LEN);
      if (!r.err) hs_ring_put(s, h, v, hash);
      break;
    }
    default: return BFT_E_MALFORMED;
  }
  return wire_reader_finish(&r);
}
