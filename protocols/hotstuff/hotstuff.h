/* Chained HotStuff (Yin, Malkhi, Reiter, Gueta, Abraham, PODC 2019, event-driven Algorithm
 * 4/5) behind the engine interface of protocols/engine.h. This header is the public face:
 * message kinds, signature tags, timers, record types and the encodings a ledger verifier,
 * the simulator or a test may need to read or forge.
 *
 * Blocks. One block per view: its parent is always the block its justify QC certifies, so
 * height = parent height + 1 and the heights of the committed chain are the engine's seq.
 *   header := u64 view | u64 height | parent[32] | batch_digest[32]
 *   hash   := BLAKE2b-256("hotstuff/block" | header); genesis (height 0, view 0) is
 *             BLAKE2b-256("hotstuff/genesis" | cluster_id) and needs no QC.
 *
 * Votes and QCs. A vote is the statement  u64 view | u64 height | hash[32] | u32 replica
 * signed under HS_TAG_VOTE (protocols/quorum.h: body || u32 signer); a QC is 2f+1 of them
 * (qsigs). A QC's view is its block's view.
 *   qc := u64 view | u64 height | hash[32] | qsigs        (genesis QC: view 0, count 0)
 *
 * Messages (payload; on the wire payload || sig[64] by the sender under the kind's tag):
 *   PROPOSAL  := u64 view | u64 height | parent[32] | u64 justify_view | qsigs | blob batch
 *                (the justify QC certifies (justify_view, height-1, parent); from leader(view))
 *   VOTE      := the vote statement (52 bytes); sent to leader(view + 1)
 *   TIMEOUT   := u64 view | u32 replica | qc high | u8 has_vote
 *                | [u64 view | u64 height | hash[32] | sig[64]]   (the sender's latest vote)
 *                broadcast when the sender gives up on `view`
 *   BLOCK_REQ := hash[32] | u64 height          (a peer lacks this block)
 *   BLOCK     := PROPOSAL payload of the block asked for (class BFT_MSGC_DATA)
 *
 * Commit certificate (COMMIT actions, verify_certificate, ledger blocks):
 *   cert := u32 k | k x (u64 view | parent[32] | batch_digest[32]) | 3 x qsigs
 *   The k headers are the blocks at heights seq .. seq+k-1, each the parent of the next;
 *   the last three form a three-chain of consecutive views and the qsigs are QCs for them.
 *   3 <= k <= HS_CERT_MAX_HEADERS (bounded by the engine's pipeline, see hs_internal.h).
 *
 * Safety rules (hs_safety.c): vote once per view, only for a block of the current view from
 * its leader whose chain is known and that extends the locked block or carries a justify QC
 * newer than the lock (safe-node rule); lock on the two-chain (a QC for b'' locks b' =
 * b''.parent); commit b when b <- b' <- b'' are certified and their views are consecutive.
 */
#ifndef BFT_HOTSTUFF_H
#define BFT_HOTSTUFF_H

#include "protocols/engine.h"

enum hs_msg_kind {
  HS_MSG_PROPOSAL = 1,
  HS_MSG_VOTE = 2,
  HS_MSG_TIMEOUT = 3,
  HS_MSG_BLOCK_REQ = 4,
  HS_MSG_BLOCK = 5
};

#define HS_TAG_PROPOSAL "hotstuff/proposal"
#define HS_TAG_VOTE "hotstuff/vote"
#define HS_TAG_TIMEOUT "hotstuff/timeout"
#define HS_TAG_BLOCK_REQ "hotstuff/block-req"
#define HS_TAG_BLOCK "hotstuff/block"

enum hs_timer {
  HS_TIMER_VIEW = 0,    /* the view timer (doubles per consecutive timeout) */
  HS_TIMER_PROPOSE = 1, /* a leader with an unflushed pipeline proposes an empty block */
  HS_TIMER_FETCH = 2,   /* retry of block fetches and catch-up */
  HS_TIMER_SHARE = 3    /* an idle replica that is not the leader shares its high QC once */
};

/* Persisted record types (first byte). See hs_codec.c for the layouts. */
enum hs_record {
  HS_REC_SNAPSHOT = 1, /* voted view, last vote, lock, high QC, recent committed blocks */
  HS_REC_VOTE = 2,     /* u64 view | u64 height | hash | sig: written before the vote leaves */
  HS_REC_LOCK = 3,     /* qc */
  HS_REC_HIGH = 4,     /* qc */
  HS_REC_COMMIT = 5,   /* u64 height | u64 view | hash: a delivered block */
  HS_REC_BLOCK = 6     /* block encoding (as in BLOCK): a block we vote for, written before the
                        * vote, so a QC'd block survives a crash of every replica (f+1 correct
                        * voters hold it); compaction keeps those above the committed root */
};

extern const bft_engine_ops hs_engine_ops;

#endif
