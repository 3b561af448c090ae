/* Every bound of the system in one place (TigerBeetle: put a limit on everything). Engines
 * size their fixed state from these; the runtime checks every length read from the network
 * against them before allocating. */
#ifndef BFT_LIMITS_H
#define BFT_LIMITS_H

#include "protocols/wire/wire.h"

#define BFT_MAX_REPLICAS 64          /* n; vote sets are 64-bit masks. PBFT caps n lower
                                      * (PBFT_MAX_REPLICAS: its NEW-VIEW must fit a frame) */
#define BFT_MIN_REPLICAS 4           /* n = 3f+1 with f >= 1 */
#define BFT_MAX_CLIENTS 4096         /* permitted client keys in one cluster file */
#define BFT_MAX_CLUSTER_NAME 64
#define BFT_MAX_HOST 255

#define BFT_MAX_OP_BYTES 16384       /* one application operation */
#define BFT_MAX_REPLY_BYTES 16384    /* one application result */
/* request = u8 version | client pk 32 | u64 seq | blob op | sig 64 */
#define BFT_REQUEST_OVERHEAD (1 + 32 + 8 + 4 + 64)
#define BFT_MAX_REQUEST_BYTES (BFT_MAX_OP_BYTES + BFT_REQUEST_OVERHEAD)
#define BFT_MAX_BATCH_REQUESTS 256   /* requests in one proposed batch */
#define BFT_MAX_BATCH_BYTES (128u * 1024u) /* encoded batch, count and lengths included */

#define BFT_MAX_WINDOW 64            /* PBFT log size L (high - low watermark); pipelining depth */
/* A commit certificate: a PBFT quorum of (id, sig) plus a header fits in ~1.5 KiB (n <= 32);
 * a HotStuff certificate holds three QCs and the block headers from the block up to its
 * three-chain (protocols/hotstuff/hs_internal.h, HS_CERT_MAX: about 13 KiB at n = 64). */
#define BFT_MAX_CERT_BYTES (16u * 1024u)
#define BFT_MAX_ENGINE_MSG (WIRE_FRAME_MAX_BODY) /* body of one engine message */
#define BFT_MAX_TIMERS 8             /* timer ids an engine may use: 0..BFT_MAX_TIMERS-1 */
#define BFT_MAX_ACTIONS 1024         /* actions one step may emit */
#define BFT_ACTION_ARENA (16u * 1024u * 1024u) /* bytes one step may emit (bodies, records) */

_Static_assert(BFT_MAX_REQUEST_BYTES + 8 <= BFT_MAX_BATCH_BYTES, "a batch holds at least one request");
_Static_assert(BFT_MAX_BATCH_BYTES < WIRE_FRAME_MAX_BODY / 2, "a batch fits in a frame with its proof");
_Static_assert(BFT_MAX_REPLICAS <= 64, "vote sets are 64-bit masks at most");
_Static_assert(BFT_MAX_REPLY_BYTES + 256 < WIRE_FRAME_MAX_BODY, "a reply fits in a frame");

#endif
