/* One blocking request/answer with one replica on a connection of its own (bft-client
 * evidence, status; bft-bench reading the cluster's tuning): the client library's
 * bft_client_exchange (client/bft_client.h), with a bound on the answer's size. */
#ifndef BFT_RPC_H
#define BFT_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/bft_client.h"
#include "crypto/bft_err.h"

/* Send frame `kind` with body[0..len) to replica `replica` and wait for a frame of kind
 * want_kind with a body of at most max_body bytes; *out (malloc'd, caller frees) gets its body.
 * 0, or a negative BFT_E* (TIMEOUT, IO, MALFORMED: another kind or size) with one line in err. */
static inline int bft_rpc_exchange(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t kind,
                                   const uint8_t *body, uint32_t len, uint8_t want_kind, uint32_t max_body,
                                   uint8_t **out, uint32_t *out_len, char *err, size_t errlen) {
  int rc = bft_client_exchange(c, replica, kind, body, len, want_kind, timeout_ms, out, out_len, err, errlen);
  if (rc == 0 && *out_len > max_body) {
    free(*out);
    *out = NULL;
    snprintf(err, errlen, "replica %u answered with %u bytes, more than %u", replica, *out_len, max_body);
    return BFT_E_MALFORMED;
  }
  return rc;
}

#endif
