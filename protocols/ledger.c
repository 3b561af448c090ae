/* Ledger block codec and verification with only the cluster file's public keys. */
#include "protocols/ledger.h"

#include <stdio.h>
#include <string.h>

#include "protocols/engine.h"
#include "protocols/request.h"

int bft_block_encode(const bft_block *b, uint8_t *buf, uint32_t cap) {
  size_t pl = strlen(b->protocol);
  if (pl == 0 || pl > BFT_MAX_PROTOCOL_NAME) return BFT_E_INVAL;
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u8(&w, BFT_LEDGER_VERSION);
  wire_put_u64(&w, b->height);
  wire_put_fixed(&w, b->prev_hash, BFT_DIGEST_LEN);
  wire_put_fixed(&w, b->batch_digest, BFT_DIGEST_LEN);
  wire_put_fixed(&w, b->state_digest, BFT_DIGEST_LEN);
  wire_put_blob(&w, b->protocol, (uint32_t)pl);
  wire_put_blob(&w, b->cert, b->cert_len);
  wire_put_blob(&w, b->batch, b->batch_len);
  return w.err ? w.err : (int)w.len;
}

int bft_block_decode(const uint8_t *p, uint32_t len, bft_block *b) {
  if (len > BFT_MAX_BLOCK_BYTES) return BFT_E_TOO_LARGE;
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint8_t v = wire_get_u8(&r);
  b->height = wire_get_u64(&r);
  wire_get_fixed(&r, b->prev_hash, BFT_DIGEST_LEN);
  wire_get_fixed(&r, b->batch_digest, BFT_DIGEST_LEN);
  wire_get_fixed(&r, b->state_digest, BFT_DIGEST_LEN);
  uint32_t pl;
  const uint8_t *proto = wire_get_blob(&r, &pl, BFT_MAX_PROTOCOL_NAME);
  b->cert = wire_get_blob(&r, &b->cert_len, BFT_MAX_CERT_BYTES);
  b->batch = wire_get_blob(&r, &b->batch_len, BFT_MAX_BATCH_BYTES);
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (v != BFT_LEDGER_VERSION) return BFT_E_VERSION;
  if (pl == 0 || memchr(proto, 0, pl)) return BFT_E_MALFORMED;
  memcpy(b->protocol, proto, pl);
  b->protocol[pl] = '\0';
  return 0;
}

void bft_block_hash(const uint8_t *encoded, uint32_t len, uint8_t out[BFT_DIGEST_LEN]) {
  /* The header prefix: version | height | prev | batch digest | state digest | protocol. */
  const uint32_t fixed = 1 + 8 + 3 * BFT_DIGEST_LEN;
  uint32_t hl = len;
  if (len >= fixed + 4) {
    uint32_t pl = (uint32_t)encoded[fixed] | (uint32_t)encoded[fixed + 1] << 8 |
                  (uint32_t)encoded[fixed + 2] << 16 | (uint32_t)encoded[fixed + 3] << 24;
    if (pl <= BFT_MAX_PROTOCOL_NAME && fixed + 4 + pl <= len) hl = fixed + 4 + pl;
  }
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft-block-v1", 12);
  bft_digest_update(&c, encoded, hl);
  bft_digest_final(&c, out);
}

int bft_block_verify(const bft_cluster *c, const uint8_t *p, uint32_t len,
                     const uint8_t expected_prev[BFT_DIGEST_LEN], uint64_t expected_height,
                     char *why, uint32_t whylen) {
  bft_block b;
  int rc = bft_block_decode(p, len, &b);
  if (rc) {
    if (why) snprintf(why, whylen, "undecodable block: %s", bft_strerror(rc));
    return rc;
  }
  if (b.height != expected_height) {
    if (why) snprintf(why, whylen, "height %llu where %llu was expected", (unsigned long long)b.height,
                      (unsigned long long)expected_height);
    return BFT_E_MALFORMED;
  }
  if (memcmp(b.prev_hash, expected_prev, BFT_DIGEST_LEN) != 0) {
    if (why) snprintf(why, whylen, "prev_hash does not match the hash of the previous block");
    return BFT_E_BAD_DIGEST;
  }
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, b.batch, b.batch_len);
  if (memcmp(d, b.batch_digest, BFT_DIGEST_LEN) != 0) {
    if (why) snprintf(why, whylen, "batch does not match batch_digest");
    return BFT_E_BAD_DIGEST;
  }
  const bft_engine_ops *ops = bft_engine_find(b.protocol);
  if (!ops) {
    if (why) snprintf(why, whylen, "unknown protocol '%s'", b.protocol);
    return BFT_E_UNSUPPORTED;
  }
  bft_engine_config cfg;
  bft_config_from_cluster(&cfg, c, 0);
  bft_std_env se = {.cluster = c, .kp = NULL};
  bft_engine_env env;
  bft_std_env_bind(&env, &se);
  rc = ops->verify_certificate(&cfg, &env, b.height, b.batch_digest, b.cert, b.cert_len);
  if (rc) {
    if (why) snprintf(why, whylen, "commit certificate does not verify: %s", bft_strerror(rc));
    return BFT_E_BAD_CERT;
  }
  return 0;
}
