/* The runtime core's side of the replicated application, kept apart from the engine driving
 * in core.c: one execute call per committed batch, resynchronising an application whose state
 * does not match the ledger, check() batched per loop iteration, stale queries, and the signed
 * state digests that catch a diverging application (attest.h). Internal to the core. */
#ifndef RT_CORE_APP_H
#define RT_CORE_APP_H

#include "replica/core.h"

/* core.c, for core_app.c */
void rt_core_state_digest(rt_core *c, uint8_t out[BFT_DIGEST_LEN]);
int rt_core_execute(rt_core *c, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *batch, uint32_t len,
                    const uint8_t *cert, uint32_t cert_len, const bft_block *replayed);
int rt_core_admit(rt_core *c, const uint8_t d[BFT_DIGEST_LEN], uint32_t client, uint64_t seq, const uint8_t *req,
                  uint32_t len, int from_peer, rt_submit *out);

/* core_app.c, for core.c */
int rt_core_run_app(rt_core *c, uint64_t height, uint32_t n);
int rt_core_replay_held(rt_core *c, const bft_block *b);
int rt_core_resync_app(rt_core *c, char *err, size_t errlen);
void rt_core_attest_own(rt_core *c, uint64_t h);
void rt_core_attest_flush(rt_core *c);
int rt_core_on_state_digest(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len);
int rt_core_queue_check(rt_core *c, const uint8_t d[BFT_DIGEST_LEN], uint32_t client, uint64_t seq, const uint8_t *req,
                        uint32_t len);

#endif
