/* One blocking request/answer with one replica on a connection of its own (bft-client
 * evidence, status; bft-bench reading the cluster's tuning): dial, send one client frame,
 * read one frame of the expected kind, close — all within one deadline. */
#ifndef BFT_RPC_H
#define BFT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/cluster/cluster.h"

/* Send frame `kind` with body[0..len) to replica `replica` and wait for a frame of kind
 * want_kind with a body of at most max_body bytes; *out (malloc'd, caller frees) gets its body.
 * 0, or a negative BFT_E* (TIMEOUT, IO, MALFORMED: another kind or size) with one line in err. */
int bft_rpc_exchange(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t kind, const uint8_t *body,
                     uint32_t len, uint8_t want_kind, uint32_t max_body, uint8_t **out, uint32_t *out_len, char *err,
                     size_t errlen);

#endif
