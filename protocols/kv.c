/* Codec of key-value operations. */
#include "protocols/kv.h"

#include "protocols/wire/wire.h"

int bft_kv_encode(const bft_kv_op *op, uint8_t *buf, uint32_t cap) {
  if (op->opcode < BFT_KV_PUT || op->opcode > BFT_KV_CAS) return BFT_E_INVAL;
  if (op->key_len > BFT_KV_MAX_KEY || op->value_len > BFT_KV_MAX_VALUE ||
      op->expected_len > BFT_KV_MAX_VALUE)
    return BFT_E_TOO_LARGE;
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u8(&w, op->opcode);
  wire_put_blob(&w, op->key, op->key_len);
  if (op->opcode == BFT_KV_PUT) wire_put_blob(&w, op->value, op->value_len);
  if (op->opcode == BFT_KV_CAS) {
    wire_put_blob(&w, op->expected, op->expected_len);
    wire_put_blob(&w, op->value, op->value_len);
  }
  return w.err ? w.err : (int)w.len;
}

int bft_kv_decode(const uint8_t *p, uint32_t len, bft_kv_op *op) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  op->opcode = wire_get_u8(&r);
  op->key = wire_get_blob(&r, &op->key_len, BFT_KV_MAX_KEY);
  op->value = NULL;
  op->value_len = 0;
  op->expected = NULL;
  op->expected_len = 0;
  if (op->opcode == BFT_KV_PUT) op->value = wire_get_blob(&r, &op->value_len, BFT_KV_MAX_VALUE);
  if (op->opcode == BFT_KV_CAS) {
    op->expected = wire_get_blob(&r, &op->expected_len, BFT_KV_MAX_VALUE);
    op->value = wire_get_blob(&r, &op->value_len, BFT_KV_MAX_VALUE);
  }
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (op->opcode < BFT_KV_PUT || op->opcode > BFT_KV_CAS) return BFT_E_MALFORMED;
  return 0;
}
