/* bft-replica --byzantine equivocate: Twins in a real process. A second, honest runtime core
 * (copy B: its own engine, pool, application, ledger and WAL in DATA_DIR/twin-b) runs next to
 * the replica's own (copy A) under the same key and id. Each copy speaks only with its part of
 * the cluster (rt_byz_twin_reach: one correct "bridge" replica hears both) and is handed only
 * the client requests of its seq parity, so as leader the copies propose different batches for
 * the same slot and as voters they vote both ways: equivocation without protocol-specific
 * attack code, on every engine. Other modes (delay, corrupt, ...) apply to both copies' frames. */
#ifndef RT_BYZ_TWIN_H
#define RT_BYZ_TWIN_H

#include <stddef.h>
#include <stdint.h>

#include "replica/core.h"

struct rt_replica;
typedef struct rt_byz_twin rt_byz_twin;

/* Open copy B (after the replica's own core is open) and log how the cluster is split. 0, or
 * BFT_E_* with one line in err. */
int rt_byz_twin_open(rt_byz_twin **t, struct rt_replica *r, const char *data_dir, char *err, size_t errlen);
/* Start copy B's engine. Non-zero: the process must stop. */
int rt_byz_twin_start(rt_byz_twin *t);
/* A frame copy `side` (0: A, 1: B) sends to replica `to`: dropped unless that copy speaks with it. */
void rt_byz_twin_send(rt_byz_twin *t, uint32_t side, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len);
/* A frame from authenticated peer `from`, handed to the copies that speak with it (a forwarded
 * REQUEST to the copy of its seq parity). 0 when a copy took it, else the first copy's error. */
int rt_byz_twin_on_peer_frame(rt_byz_twin *t, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len);
/* The copy that handles a client request (by seq parity; copy A when it does not decode). */
rt_core *rt_byz_twin_core_for(rt_byz_twin *t, const uint8_t *req, uint32_t len);
/* Once per loop iteration before frames leave: copy B's pulls and group commit. Non-zero: the
 * process must stop (copy B failed). */
int rt_byz_twin_prepare(rt_byz_twin *t);
/* " twin_b_height=.. ..." for the byzantine metrics line. */
void rt_byz_twin_describe(const rt_byz_twin *t, char *buf, size_t cap);
/* Stop copy B's timers (its handles are closed; the loop can end) and make its records durable. */
void rt_byz_twin_stop(rt_byz_twin *t);
/* Close copy B and free everything; after the loop has run the close callbacks. */
void rt_byz_twin_free(rt_byz_twin *t);

#endif
