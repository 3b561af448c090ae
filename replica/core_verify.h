/* The runtime core's signature checks of client requests, kept apart from the engine driving in
 * core.c: each request verified once per replica and cached by digest (vcache.h), a verdict
 * reached off the loop thread carried in instead of verifying again, and the uncached requests
 * of a proposed batch verified together on the core's verify pool (vpool.h) when it has one.
 * Internal to the core. */
#ifndef RT_CORE_VERIFY_H
#define RT_CORE_VERIFY_H

#include "replica/core.h"

/* Decode, permitted client, then the signature unless the digest is cached (a v3 request:
 * our entry of its authenticator, every time, and only in a protocol-only cluster); `verdict`
 * (enum rt_sig_verdict) is what a check done elsewhere found (RT_SIG_UNCHECKED: verify here).
 * 0 (the digest is then cached), or the reason it is refused. */
int rt_core_check_request(rt_core *c, const uint8_t *rq, uint32_t len, const uint8_t d[BFT_DIGEST_LEN], bft_request *r,
                          int *client, int verdict);
/* K(self, client), made once per client (an X25519 scalar multiplication); NULL when this core
 * has no key pair of its own (the simulator) or the client's key has no X25519 form. */
const bft_session_mac *rt_core_session_mac(rt_core *c, uint32_t client);
/* The engine env's check_batch (env.ctx is the core). */
int rt_core_check_batch(void *ctx, const uint8_t *batch, uint32_t len);
/* The MAC keys' table, and the scratch a pool needs (cc->vpool non-NULL); rt_core_verify_free
 * releases both. */
int rt_core_verify_init(rt_core *c, const rt_core_config *cc);
void rt_core_verify_free(rt_core *c);

#endif
