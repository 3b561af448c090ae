/* Operations of the replicated key-value store, as clients encode them inside a request's op
 * and replicas decode them; shared so both sides agree byte for byte.
 *
 *   op := u8 opcode | blob key | [blob value]        put: value; get, del: nothing more
 *                                                     cas: blob expected | blob new
 * Reply status (bft_reply.status): BFT_KV_OK, BFT_KV_NOT_FOUND (get of an absent key, result
 * empty), BFT_KV_CAS_FAILED (result holds the current value, empty if absent), BFT_KV_BAD_OP,
 * BFT_KV_REJECTED (the replica refused the request; result is a one-line reason). */
#ifndef BFT_KV_H
#define BFT_KV_H

#include <stdint.h>

#include "protocols/limits.h"

#define BFT_KV_MAX_KEY 1024
#define BFT_KV_MAX_VALUE ((BFT_MAX_OP_BYTES - BFT_KV_MAX_KEY - 64) / 2)

enum bft_kv_opcode { BFT_KV_PUT = 1, BFT_KV_GET = 2, BFT_KV_DEL = 3, BFT_KV_CAS = 4 };
enum bft_kv_status {
  BFT_KV_OK = 0,
  BFT_KV_NOT_FOUND = 1,
  BFT_KV_CAS_FAILED = 2,
  BFT_KV_BAD_OP = 3,
  BFT_KV_REJECTED = 255
};

typedef struct bft_kv_op { /* decoded; pointers borrowed from the encoding */
  uint8_t opcode;
  const uint8_t *key;
  uint32_t key_len;
  const uint8_t *value; /* put: value; cas: new value */
  uint32_t value_len;
  const uint8_t *expected; /* cas only */
  uint32_t expected_len;
} bft_kv_op;

/* Encode into buf; returns the length or a negative BFT_E*. */
int bft_kv_encode(const bft_kv_op *op, uint8_t *buf, uint32_t cap);
/* Decode and validate (opcode known, lengths within limits, no trailing bytes). */
int bft_kv_decode(const uint8_t *p, uint32_t len, bft_kv_op *op);

#endif
