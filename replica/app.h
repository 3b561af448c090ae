/* The replicated application inside the runtime: the public interface include/bft_app.h is
 * the only one (the key-value store, applications embedded through bft_replica.h and
 * applications over a Unix socket all implement it). This header only ties its limits to the
 * runtime's. */
#ifndef RT_APP_H
#define RT_APP_H

#include "bft_app.h"
#include "crypto/bft_crypto.h"
#include "protocols/limits.h"

_Static_assert(BFT_APP_KEY_LEN == BFT_PK_LEN, "client keys");
_Static_assert(BFT_APP_DIGEST_LEN == BFT_DIGEST_LEN, "digests");
_Static_assert(BFT_APP_MAX_OP == BFT_MAX_OP_BYTES, "operation bound");
_Static_assert(BFT_APP_MAX_RESULT == BFT_MAX_REPLY_BYTES, "result bound");
_Static_assert(BFT_APP_MAX_BATCH == BFT_MAX_BATCH_REQUESTS, "batch bound");

/* Bytes of result room the runtime lends for n results. */
#define RT_APP_ARENA_BYTES(n) ((size_t)(n) * BFT_APP_MAX_RESULT)

/* 1 when the ops table has what the runtime needs (execute, digest, all-or-none groups). */
int rt_app_valid(const bft_app_ops *ops, char *why, size_t whylen);

#endif
