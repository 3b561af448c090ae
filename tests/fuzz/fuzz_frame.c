/* Fuzz the frame decoder and every message decoder behind it: requests, replies, batches,
 * kv operations, ledger blocks and ledger replies. Nothing may read out of bounds, allocate
 * from an unchecked length, or accept trailing bytes. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/ledger.h"
#include "protocols/request.h"
#include "protocols/wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_blocks(const uint8_t *p, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, p, len);
  (void)wire_get_u64(&r);
  uint32_t count = wire_get_count(&r, BFT_LEDGER_MAX_BLOCKS_PER_REPLY);
  for (uint32_t i = 0; i < count && !r.err; i++) {
    uint32_t bl;
    const uint8_t *b = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
    bft_block blk;
    if (b && bft_block_decode(b, bl, &blk) == 0) {
      uint8_t h[BFT_DIGEST_LEN];
      bft_block_hash(b, bl, h);
      (void)bft_batch_check(NULL, blk.batch, blk.batch_len);
    }
  }
  (void)wire_reader_finish(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wire_frame_header h;
  const uint8_t *body;
  if (wire_frame_decode(data, size, &h, &body) != 0) {
    /* Also exercise the header check alone on any prefix-like input. */
    (void)wire_frame_header_decode(data, size, &h);
    return 0;
  }
  switch (h.kind) {
  case WIRE_KIND_REQUEST: {
    bft_request rq;
    if (bft_request_decode(body, h.body_len, &rq) == 0) {
      bft_kv_op op;
      (void)bft_kv_decode(rq.op, rq.op_len, &op);
    }
    break;
  }
  case WIRE_KIND_LEDGER_BLOCKS:
  case WIRE_KIND_FETCH_REPLY: decode_blocks(body, h.body_len); break;
  default: {
    /* Treat the body as a batch: the structure checker walks every request in it. */
    (void)bft_batch_check(NULL, body, h.body_len);
    bft_kv_op op;
    (void)bft_kv_decode(body, h.body_len, &op);
    break;
  }
  }
  return 0;
}
