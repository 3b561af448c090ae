/* Signed replica status (protocols/status.h). */
#include "protocols/status.h"

#include <string.h>

#include "protocols/wire/wire.h"

int bft_status_encode(const bft_status *st, const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                      uint8_t *buf, uint32_t cap) {
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  uint32_t pl = (uint32_t)strnlen(st->protocol, BFT_MAX_PROTOCOL_NAME);
  wire_put_u8(&w, BFT_STATUS_VERSION);
  wire_put_fixed(&w, st->nonce, BFT_STATUS_NONCE_LEN);
  wire_put_u32(&w, st->replica);
  wire_put_blob(&w, st->protocol, pl);
  wire_put_u64(&w, st->view);
  wire_put_u64(&w, st->height);
  wire_put_u32(&w, st->leader);
  wire_put_u8(&w, st->changing_view ? 1 : 0);
  wire_put_u64(&w, st->view_changes);
  wire_put_u64(&w, st->committed);
  wire_put_fixed(&w, st->head_hash, BFT_DIGEST_LEN);
  wire_put_u32(&w, st->batch_max);
  wire_put_u32(&w, st->window);
  wire_put_u32(&w, st->peers_up);
  wire_put_u32(&w, st->pool);
  wire_put_u64(&w, st->cpu_us);
  wire_put_u64(&w, st->executed);
  wire_put_u8(&w, st->protocol_only ? 1 : 0);
  wire_put_u8(&w, st->unsafe_no_fsync ? 1 : 0);
  size_t signed_len = w.len;
  uint8_t *sig = wire_put_reserve(&w, BFT_SIG_LEN);
  if (w.err || !sig) return BFT_E_FULL;
  if (bft_sign(kp, cluster_id, BFT_TAG_STATUS, buf, signed_len, sig) != 0) return BFT_E_CRYPTO;
  return (int)w.len;
}

int bft_status_decode(const uint8_t *p, uint32_t len, const uint8_t pk[BFT_PK_LEN],
                      const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], bft_status *st) {
  memset(st, 0, sizeof *st);
  if (len > BFT_STATUS_MAX_BYTES) return BFT_E_TOO_LARGE;
  wire_reader r;
  wire_reader_init(&r, p, len);
  uint8_t ver = wire_get_u8(&r);
  wire_get_fixed(&r, st->nonce, BFT_STATUS_NONCE_LEN);
  st->replica = wire_get_u32(&r);
  uint32_t pl;
  const uint8_t *name = wire_get_blob(&r, &pl, BFT_MAX_PROTOCOL_NAME);
  if (name) memcpy(st->protocol, name, pl);
  st->view = wire_get_u64(&r);
  st->height = wire_get_u64(&r);
  st->leader = wire_get_u32(&r);
  st->changing_view = wire_get_u8(&r);
  st->view_changes = wire_get_u64(&r);
  st->committed = wire_get_u64(&r);
  wire_get_fixed(&r, st->head_hash, BFT_DIGEST_LEN);
  st->batch_max = wire_get_u32(&r);
  st->window = wire_get_u32(&r);
  st->peers_up = wire_get_u32(&r);
  st->pool = wire_get_u32(&r);
  st->cpu_us = wire_get_u64(&r);
  st->executed = wire_get_u64(&r);
  st->protocol_only = wire_get_u8(&r);
  st->unsafe_no_fsync = wire_get_u8(&r);
  size_t signed_len = r.off;
  const uint8_t *sig = wire_get_view(&r, BFT_SIG_LEN);
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (ver != BFT_STATUS_VERSION || st->changing_view > 1 || st->protocol_only > 1 || st->unsafe_no_fsync > 1)
    return BFT_E_MALFORMED;
  for (uint32_t i = 0; i < pl; i++)
    if (st->protocol[i] < 0x21 || st->protocol[i] > 0x7e) return BFT_E_MALFORMED;
  return bft_verify(pk, cluster_id, BFT_TAG_STATUS, p, (uint32_t)signed_len, sig) ? BFT_E_BAD_SIG : 0;
}
