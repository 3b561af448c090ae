/* Every bound of the replica runtime in one place: pool, caches, queues, connections, files.
 * The protocol-wide limits (requests, batches, frames) live in protocols/limits.h; these are
 * the runtime's own, chosen so a slow, dead or hostile peer or client cannot grow memory. */
#ifndef RT_LIMITS_H
#define RT_LIMITS_H

#include "protocols/ledger.h"
#include "protocols/limits.h"

/* Request pool: pending client requests not yet executed. */
#define RT_POOL_MAX_REQUESTS 16384u
#define RT_POOL_MAX_BYTES (64u * 1024u * 1024u)
#define RT_POOL_MAX_PER_CLIENT 64u /* outstanding requests of one client */

/* Digests of requests whose signature verified (4-way set-associative, FIFO per set). */
#define RT_VCACHE_SETS 16384u
#define RT_VCACHE_WAYS 4u

/* Cached result of each client's last executed request, bytes summed over all clients; over
 * the budget the oldest cached results are dropped (the reply is then not resent by us). */
#define RT_REPLY_CACHE_MAX_BYTES (64u * 1024u * 1024u)

/* Key-value store capacity (deterministic: every replica refuses the same put). */
#define RT_KV_MAX_KEYS (1u << 20)
#define RT_KV_MAX_BYTES (512ull * 1024u * 1024u)

/* Peer and client send queues: frames waiting for, or inside, a write. */
#define RT_PEER_QUEUE_MAX_BYTES (16u * 1024u * 1024u)
#define RT_PEER_QUEUE_MAX_FRAMES 16384u
#define RT_CLIENT_QUEUE_MAX_BYTES (8u * 1024u * 1024u)
#define RT_CLIENT_QUEUE_MAX_FRAMES 4096u
#define RT_CLIENT_QUEUES_TOTAL_BYTES (128u * 1024u * 1024u) /* all client connections together */
#define RT_WRITE_MAX_BUFS 512u /* frames coalesced into one uv_write (below IOV_MAX) */
#define RT_WRITE_MAX_BYTES (8u * 1024u * 1024u) /* bytes in one uv_write (at least one frame) */

/* Connections. */
#define RT_MAX_CONNS 1024u
#define RT_KEEPALIVE_S 10u
#define RT_READ_CHUNK (64u * 1024u)
#define RT_HANDSHAKE_TIMEOUT_MS 5000u   /* a peer must prove its identity within this */
#define RT_FIRST_FRAME_TIMEOUT_MS 10000u /* a new connection must say what it is within this */
#define RT_REDIAL_MIN_MS 100u
#define RT_REDIAL_MAX_MS 5000u
#define RT_CLIENT_MAX_BODY (BFT_MAX_REQUEST_BYTES) /* largest frame body a client may send */

/* State transfer. */
#define RT_FETCH_RETRY_MS 1000u /* a FETCH unanswered this long may be sent again */

/* Equivocation evidence kept in memory (two signed messages each; oldest replaced). */
#define RT_EVIDENCE_MAX 64u
#define RT_EVIDENCE_MAX_BYTES (8u * 1024u * 1024u)

/* Files. */
#define RT_WAL_MAX_RECORD (BFT_ACTION_ARENA) /* one PERSIST record */
#define RT_WAL_COMPACT_BYTES (64u * 1024u * 1024u)
#define RT_LEDGER_MAX_RECORD (BFT_MAX_BLOCK_BYTES)
#define RT_PATH_MAX 4096u

/* Metrics line period and log rate limits. */
#define RT_METRICS_INTERVAL_MS 10000u
#define RT_LOG_BURST 10u       /* lines per rate-limited site per window */
#define RT_LOG_WINDOW_MS 10000u

_Static_assert(RT_POOL_MAX_PER_CLIENT <= RT_POOL_MAX_REQUESTS, "per-client bound below total");
_Static_assert(RT_CLIENT_QUEUE_MAX_BYTES > WIRE_FRAME_MAX_BODY + WIRE_FRAME_HEADER_LEN,
               "a client queue holds one full LEDGER_BLOCKS frame");
_Static_assert(RT_PEER_QUEUE_MAX_BYTES > 2 * (WIRE_FRAME_MAX_BODY + WIRE_FRAME_HEADER_LEN),
               "a peer queue holds the largest engine message and a FETCH_REPLY");
_Static_assert(RT_POOL_MAX_BYTES >= RT_POOL_MAX_REQUESTS * 1024u, "pool bytes fit typical requests");
_Static_assert((RT_VCACHE_SETS & (RT_VCACHE_SETS - 1)) == 0, "vcache sets is a power of two");

#endif
