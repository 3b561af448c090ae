/* Encoding, decoding and signature checks of client requests, batches and replies, and the
 * standard (real Ed25519) engine env. */
#include "protocols/request.h"

#include <stdlib.h>
#include <string.h>

#include "protocols/engine.h"

void bft_session_mac_init(bft_session_mac *m, const uint8_t key[BFT_MAC_KEY_LEN]) {
  bft_mac_ctx_init(&m->request, key, BFT_TAG_REQUEST, BFT_AUTH_MAC_LEN);
  bft_mac_ctx_init(&m->reply, key, BFT_TAG_REPLY, BFT_MAC_LEN);
}

bft_session_mac *bft_session_mac_alloc(uint32_t n) {
  size_t a = _Alignof(bft_session_mac), size = (size_t)(n ? n : 1) * sizeof(bft_session_mac);
  return aligned_alloc(a, (size + a - 1) / a * a);
}

int bft_request_encode_v(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t version,
                         const bft_session_mac *macs, uint32_t n, uint64_t seq, const uint8_t *op,
                         uint32_t op_len, uint8_t *buf, uint32_t cap) {
  if (op_len > BFT_MAX_OP_BYTES) return BFT_E_TOO_LARGE;
  if (version < BFT_REQUEST_VERSION || version > BFT_REQUEST_V_MAC) return BFT_E_VERSION;
  if (version == BFT_REQUEST_V_MAC && (!macs || n == 0 || n > BFT_MAX_REPLICAS)) return BFT_E_INVAL;
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u8(&w, version);
  wire_put_fixed(&w, kp->pk, BFT_PK_LEN);
  wire_put_u64(&w, seq);
  wire_put_blob(&w, op, op_len);
  size_t signed_len = w.len;
  if (version == BFT_REQUEST_V_MAC) {
    wire_put_u8(&w, (uint8_t)n);
    uint8_t *auth = wire_put_reserve(&w, n * BFT_AUTH_MAC_LEN);
    if (w.err) return w.err;
    for (uint32_t i = 0; i < n; i++)
      bft_mac_ctx_mac(&macs[i].request, buf, signed_len, auth + (size_t)i * BFT_AUTH_MAC_LEN);
    return (int)w.len;
  }
  uint8_t *sig = wire_put_reserve(&w, BFT_SIG_LEN);
  if (w.err) return w.err;
  int rc = bft_sign(kp, cluster_id, BFT_TAG_REQUEST, buf, signed_len, sig);
  return rc ? rc : (int)w.len;
}

int bft_request_encode(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                       uint64_t seq, const uint8_t *op, uint32_t op_len, uint8_t *buf, uint32_t cap) {
  return bft_request_encode_v(kp, cluster_id, BFT_REQUEST_VERSION, NULL, 0, seq, op, op_len, buf, cap);
}

int bft_request_decode(const uint8_t *p, uint32_t len, bft_request *rq) {
  if (len > BFT_MAX_REQUEST_BYTES) return BFT_E_TOO_LARGE;
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint8_t v = wire_get_u8(&r);
  wire_get_fixed(&r, rq->client, BFT_PK_LEN);
  rq->seq = wire_get_u64(&r);
  rq->op = wire_get_blob(&r, &rq->op_len, BFT_MAX_OP_BYTES);
  rq->signed_len = (uint32_t)r.off;
  rq->version = v;
  rq->sig = NULL;
  rq->auth = NULL;
  rq->nauth = 0;
  if (v == BFT_REQUEST_V_MAC) {
    rq->nauth = wire_get_u8(&r);
    if (rq->nauth == 0 || rq->nauth > BFT_MAX_REPLICAS) return BFT_E_MALFORMED;
    rq->auth = wire_get_view(&r, rq->nauth * BFT_AUTH_MAC_LEN);
  } else {
    rq->sig = wire_get_view(&r, BFT_SIG_LEN);
  }
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (v < BFT_REQUEST_VERSION || v > BFT_REQUEST_V_MAC) return BFT_E_VERSION;
  if (rq->seq == 0) return BFT_E_MALFORMED; /* client sequence numbers start at 1 */
  return 0;
}

int bft_request_verify(const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], const uint8_t *p, uint32_t len,
                       bft_request *rq) {
  int rc = bft_request_decode(p, len, rq);
  if (rc) return rc;
  if (!rq->sig) return BFT_E_BAD_SIG;
  return bft_verify(rq->client, cluster_id, BFT_TAG_REQUEST, p, rq->signed_len, rq->sig);
}

int bft_request_check_mac(const bft_request *rq, const uint8_t *p, uint32_t self, uint32_t n,
                          const bft_session_mac *mac) {
  if (rq->version != BFT_REQUEST_V_MAC || rq->nauth != n || self >= n) return BFT_E_BAD_SIG;
  return bft_mac_ctx_check(&mac->request, p, rq->signed_len, rq->auth + (size_t)self * BFT_AUTH_MAC_LEN,
                           BFT_AUTH_MAC_LEN);
}

void bft_batch_begin(bft_batch_writer *b, uint8_t *buf, uint32_t cap) {
  wire_writer_init(&b->w, buf, cap);
  wire_put_u32(&b->w, 0);
  b->count = 0;
}

int bft_batch_add(bft_batch_writer *b, const uint8_t *req, uint32_t len) {
  if (b->count >= BFT_MAX_BATCH_REQUESTS) return BFT_E_FULL;
  if (b->w.err || 4 + (size_t)len > b->w.cap - b->w.len || b->w.len + 4 + (size_t)len > BFT_MAX_BATCH_BYTES)
    return BFT_E_FULL;
  wire_put_blob(&b->w, req, len);
  b->count++;
  return b->w.err;
}

uint32_t bft_batch_end(bft_batch_writer *b) {
  for (int i = 0; i < 4; i++) b->w.buf[i] = (uint8_t)(b->count >> (8 * i));
  return (uint32_t)b->w.len;
}

uint32_t bft_batch_encoded_empty(uint8_t out[4]) {
  memset(out, 0, 4);
  return 4;
}

int bft_batch_open(bft_batch_reader *b, const uint8_t *batch, uint32_t len) {
  if (len > BFT_MAX_BATCH_BYTES) return BFT_E_TOO_LARGE;
  wire_reader_init(&b->r, batch, len);
  b->count = wire_get_count(&b->r, BFT_MAX_BATCH_REQUESTS);
  b->next = 0;
  return b->r.err;
}

int bft_batch_next(bft_batch_reader *b, const uint8_t **req, uint32_t *len) {
  if (b->next == b->count) return wire_reader_finish(&b->r) ? wire_reader_finish(&b->r) : 0;
  *req = wire_get_blob(&b->r, len, BFT_MAX_REQUEST_BYTES);
  if (b->r.err) return b->r.err;
  b->next++;
  return 1;
}

int bft_batch_check(const bft_cluster *c, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  if (rc) return rc;
  const uint8_t *rq = NULL; /* set by every bft_batch_next that returns 1 (-O3 cannot see it) */
  uint32_t rl = 0;
  while ((rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    bft_request r;
    if (c) {
      rc = bft_request_decode(rq, rl, &r);
      if (!rc && r.version == BFT_REQUEST_V_MAC && !c->protocol_only) rc = BFT_E_NOT_PERMITTED;
      if (!rc && r.sig) rc = bft_verify(r.client, c->id, BFT_TAG_REQUEST, rq, r.signed_len, r.sig);
      if (rc) return rc;
      if (bft_cluster_find_client(c, r.client) < 0) return BFT_E_NOT_PERMITTED;
    } else {
      rc = bft_request_decode(rq, rl, &r);
      if (rc) return rc;
    }
  }
  return rc;
}

static void reply_fields(wire_writer *w, uint8_t version, const bft_reply *rp) {
  wire_put_u8(w, version);
  wire_put_u32(w, rp->replica);
  wire_put_fixed(w, rp->client, BFT_PK_LEN);
  wire_put_u64(w, rp->seq);
  wire_put_u64(w, rp->height);
  wire_put_u8(w, rp->status);
  wire_put_blob(w, rp->result, rp->result_len);
}

int bft_reply_encode_unsigned(const bft_reply *rp, uint8_t *buf, uint32_t cap) {
  if (rp->result_len > BFT_MAX_REPLY_BYTES) return BFT_E_TOO_LARGE;
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  reply_fields(&w, BFT_REPLY_V_SIG, rp);
  wire_put_reserve(&w, BFT_SIG_LEN);
  return w.err ? w.err : (int)w.len;
}

int bft_reply_encode(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                     const bft_reply *rp, uint8_t *buf, uint32_t cap) {
  int len = bft_reply_encode_unsigned(rp, buf, cap);
  if (len < 0) return len;
  uint32_t signed_len = (uint32_t)len - BFT_SIG_LEN;
  int rc = bft_sign(kp, cluster_id, BFT_TAG_REPLY, buf, signed_len, buf + signed_len);
  return rc ? rc : len;
}

int bft_reply_encode_mac(const bft_reply *rp, const bft_session_mac *m, uint8_t *buf, uint32_t cap) {
  if (rp->result_len > BFT_MAX_REPLY_BYTES) return BFT_E_TOO_LARGE;
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  reply_fields(&w, BFT_REPLY_V_MAC, rp);
  size_t mac_at = w.len;
  uint8_t *mac = wire_put_reserve(&w, BFT_MAC_LEN);
  if (w.err) return w.err;
  bft_mac_ctx_mac(&m->reply, buf, mac_at, mac);
  return (int)w.len;
}

int bft_reply_open(const bft_cluster *c, const bft_session_mac *macs, const uint8_t *p, uint32_t len,
                   bft_reply *rp) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint8_t v = wire_get_u8(&r);
  rp->replica = wire_get_u32(&r);
  wire_get_fixed(&r, rp->client, BFT_PK_LEN);
  rp->seq = wire_get_u64(&r);
  rp->height = wire_get_u64(&r);
  rp->status = wire_get_u8(&r);
  rp->result = wire_get_blob(&r, &rp->result_len, BFT_MAX_REPLY_BYTES);
  size_t signed_len = r.off;
  const uint8_t *auth = wire_get_view(&r, v == BFT_REPLY_V_MAC ? BFT_MAC_LEN : BFT_SIG_LEN);
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (v != BFT_REPLY_V_SIG && v != BFT_REPLY_V_MAC) return BFT_E_VERSION;
  if (rp->replica >= c->n) return BFT_E_UNKNOWN_SENDER;
  if (v == BFT_REPLY_V_MAC)
    return macs ? bft_mac_ctx_check(&macs[rp->replica].reply, p, signed_len, auth, BFT_MAC_LEN) : BFT_E_BAD_SIG;
  return bft_verify(c->replicas[rp->replica].pk, c->id, BFT_TAG_REPLY, p, signed_len, auth);
}

int bft_reply_verify(const bft_cluster *c, const uint8_t *p, uint32_t len, bft_reply *rp) {
  return bft_reply_open(c, NULL, p, len, rp);
}

static void std_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  bft_std_env *e = ctx;
  if (!e->kp || bft_sign(e->kp, e->cluster->id, tag, msg, len, sig) != 0) memset(sig, 0, BFT_SIG_LEN);
}

static int std_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                      const uint8_t sig[BFT_SIG_LEN]) {
  bft_std_env *e = ctx;
  if (signer >= e->cluster->n) return BFT_E_UNKNOWN_SENDER;
  return bft_verify(e->cluster->replicas[signer].pk, e->cluster->id, tag, msg, len, sig);
}

static int std_check_batch(void *ctx, const uint8_t *batch, uint32_t len) {
  bft_std_env *e = ctx;
  return bft_batch_check(e->cluster, batch, len);
}

void bft_std_env_bind(bft_engine_env *env, bft_std_env *ctx) {
  env->ctx = ctx;
  env->sign = std_sign;
  env->verify = std_verify;
  env->check_batch = std_check_batch;
}

void bft_config_from_cluster(bft_engine_config *cfg, const bft_cluster *c, uint32_t self) {
  bft_engine_config_defaults(cfg, c->n, self);
  memcpy(cfg->cluster_id, c->id, BFT_CLUSTER_ID_LEN);
  for (uint32_t i = 0; i < c->n; i++) memcpy(cfg->pubkeys[i], c->replicas[i].pk, BFT_PK_LEN);
}

