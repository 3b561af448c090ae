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

/* Signature checks off the loop thread (vpool.c) and the requests of one loop iteration that
 * wait for them (vqueue.c): at most this many requests and bytes, then they are checked early. */
#define RT_VPOOL_MAX_THREADS 64u        /* --verify-threads N: workers (default: online CPUs - 1) */
#define RT_VQ_MAX_REQUESTS 256u
#define RT_VQ_MAX_BYTES (1024u * 1024u)

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

/* Connections. Peers (connections that finished a handshake) are never counted against the
 * client limits, so a client flood cannot lock a replica of the cluster file out; connections
 * that have not said what they are yet count as clients until their first frame. */
#define RT_MAX_CONNS 1024u              /* default --max-clients: client and unidentified conns */
#define RT_MAX_CONNS_PER_SOURCE 256u    /* default --max-conns-per-source (one remote address) */
#define RT_MAX_HANDSHAKES 64u           /* peer handshakes in progress at once */
#define RT_HS_PER_ID 4u                 /* of them claiming one replica id (newest kept) */
#define RT_CLIENT_IDLE_MS 30000u        /* default --client-idle-timeout: no frame for this long */
#define RT_UNPROVEN_IDLE_MS 10000u      /* a client that never sent a verified request: shorter */
#define RT_FRAME_TIMEOUT_MS 5000u       /* default --frame-timeout: a frame, once begun, in full */
#define RT_PEER_FRAME_TIMEOUT_MS 60000u /* the same for authenticated peers (frames up to 4 MiB) */
#define RT_KEEPALIVE_S 10u
#define RT_READ_CHUNK (64u * 1024u)     /* the one shared read buffer; partial frames get their own */
#define RT_CLIENT_WRITE_MAX_BUFS 32u    /* frames per write on a client connection */
#define RT_HANDSHAKE_TIMEOUT_MS 5000u   /* a peer must prove its identity within this */
#define RT_FIRST_FRAME_TIMEOUT_MS 5000u /* a new connection must say what it is within this */
#define RT_LISTEN_BACKLOG_MIN 128u      /* listen backlog: max(this, client limit / 2) */

/* Cost before trust: what one connection and one source (remote address) may cost us. */
#define RT_CONN_FAIL_BUDGET 4u          /* default --fail-budget: failed verifications, then closed */
#define RT_SOURCE_FAIL_BURST 32u        /* failed verifications per source: bucket size ... */
#define RT_SOURCE_FAIL_PER_S 8u         /* ... and refill; empty bucket = the source is refused */
#define RT_KEY_FAIL_BURST 16u           /* failed verifications per client key of the cluster ... */
#define RT_KEY_FAIL_PER_S 4u            /* ... file: past it the key is suspect (see replica.c) */
#define RT_SOURCE_BACKOFF_MIN_MS 1000u  /* refusal of an offending source, doubling per offence */
#define RT_SOURCE_BACKOFF_MAX_MS 64000u
#define RT_SOURCE_HS_BURST 16u          /* handshake attempts (HELLO) per source: bucket ... */
#define RT_SOURCE_HS_PER_S 4u           /* ... and refill */
#define RT_SOURCE_REJECT_BURST 8u       /* signed rejections (bad signature) per source ... */
#define RT_SOURCE_REJECT_PER_S 2u       /* ... and refill; beyond, no answer */
#define RT_SOURCES_MAX 4096u            /* remote addresses tracked (LRU among the idle ones) */
#define RT_SOURCE_WARN_MS 10000u        /* one warn line per offending source per interval */
#define RT_TRIM_AFTER_CONNS 256u        /* give freed heap back to the OS after this many closes */
#define RT_REDIAL_MIN_MS 100u
#define RT_REDIAL_MAX_MS 5000u
#define RT_CLIENT_MAX_BODY (BFT_MAX_REQUEST_BYTES) /* largest frame body a client may send */

/* State transfer. */
#define RT_FETCH_RETRY_MS 1000u /* a FETCH unanswered this long may be sent again */
#define RT_FETCH_SWITCH_MS 200u /* ...and after this long, sent to another peer the engine names */

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

_Static_assert(RT_CLIENT_WRITE_MAX_BUFS <= RT_WRITE_MAX_BUFS, "client writes within the write bound");
_Static_assert(RT_MAX_CONNS_PER_SOURCE <= RT_MAX_CONNS, "per-source bound below total");
_Static_assert((RT_SOURCES_MAX & (RT_SOURCES_MAX - 1)) == 0, "source table size is a power of two");
_Static_assert(RT_POOL_MAX_PER_CLIENT <= RT_POOL_MAX_REQUESTS, "per-client bound below total");
_Static_assert(RT_CLIENT_QUEUE_MAX_BYTES > WIRE_FRAME_MAX_BODY + WIRE_FRAME_HEADER_LEN,
               "a client queue holds one full LEDGER_BLOCKS frame");
_Static_assert(RT_PEER_QUEUE_MAX_BYTES > 2 * (WIRE_FRAME_MAX_BODY + WIRE_FRAME_HEADER_LEN),
               "a peer queue holds the largest engine message and a FETCH_REPLY");
_Static_assert(RT_POOL_MAX_BYTES >= RT_POOL_MAX_REQUESTS * 1024u, "pool bytes fit typical requests");
_Static_assert(RT_VQ_MAX_BYTES >= 4u * BFT_MAX_REQUEST_BYTES, "the verify queue holds a few of the largest requests");
_Static_assert((RT_VCACHE_SETS & (RT_VCACHE_SETS - 1)) == 0, "vcache sets is a power of two");

#endif
