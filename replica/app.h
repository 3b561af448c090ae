/* The replicated application as the runtime sees it: a deterministic state machine that
 * executes the operations of a committed batch in order, returns one result per operation,
 * summarises its state in a digest that goes into every ledger block, and can snapshot and
 * restore itself. The runtime decides which requests execute (at most once per client seq);
 * the application only ever sees operations to run. */
#ifndef RT_APP_H
#define RT_APP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/bft_crypto.h"

typedef struct rt_app_op {
  const uint8_t *op; /* a request's operation bytes, borrowed for the call */
  uint32_t len;
} rt_app_op;

typedef struct rt_app_result {
  uint8_t status;       /* application status byte (protocols/kv.h for the kv store) */
  const uint8_t *data;  /* inside the arena given to execute */
  uint32_t len;         /* <= BFT_MAX_REPLY_BYTES */
} rt_app_result;

/* Bytes an arena needs for n results. */
#define RT_APP_ARENA_BYTES(n) ((size_t)(n) * BFT_MAX_REPLY_BYTES)

typedef struct rt_app_ops {
  const char *name;
  /* Run ops[0..n) in order. res[i] describes ops[i]; result bytes are written to arena, which
   * holds RT_APP_ARENA_BYTES(n). Deterministic: equal histories give equal results and digests.
   * Returns 0; a malformed operation is a result (status), never an error. */
  int (*execute)(void *app, const rt_app_op *ops, uint32_t n, rt_app_result *res, uint8_t *arena);
  /* Digest of the whole state, maintained incrementally (no full rehash per batch). */
  void (*digest)(const void *app, uint8_t out[BFT_DIGEST_LEN]);
  /* Canonical encoding of the state into a malloc'd buffer the caller frees. */
  int (*snapshot)(const void *app, uint8_t **out, size_t *len);
  /* Replace the state by a snapshot; on error the state is left empty. */
  int (*restore)(void *app, const uint8_t *snap, size_t len);
} rt_app_ops;

typedef struct rt_app {
  const rt_app_ops *ops;
  void *state;
} rt_app;

#endif
