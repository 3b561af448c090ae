/* PBFT (Castro & Liskov, signature variant) behind the engine interface of protocols/engine.h.
 * This header is the public face: message kinds, signature tags and the encodings other
 * components (ledger verifiers, the simulator, tests) may need to read or forge.
 *
 * Statements (what a signature covers; the signed bytes *are* the vote message's payload):
 *   vote  := u64 view | u64 seq | digest[32] | u32 replica     (PREPARE, COMMIT; 52 bytes)
 *   ckpt  := u64 seq | digest[32] | u32 replica                 (CHECKPOINT; 44 bytes)
 * The primary's PRE-PREPARE carries its own signature over the PREPARE statement of
 * (view, seq, digest, primary): the pre-prepare counts as the primary's prepare, as in the paper.
 *
 * Quorum signatures (qsigs), used by every certificate (a bft_qc, protocols/quorum.h, over the
 * statement's body: the vote or ckpt statement without its u32 replica):
 *   qsigs := u32 count (= 2f+1 exactly) | count x (u32 replica | sig[64]), replicas ascending
 *
 * Messages (payload; the body on the wire is payload || sig[64] by the sender):
 *   PRE_PREPARE := u64 view | u64 seq | digest | sig_prepare[64] | blob batch
 *   PREPARE     := vote statement        COMMIT := vote statement
 *   CHECKPOINT  := ckpt statement
 *   VIEW_CHANGE := u64 new_view | u32 replica | u64 stable_seq | stable_digest
 *                  | qsigs checkpoint proof (count 0 when stable_seq is 0)
 *                  | u32 n | n x (u64 view | u64 seq | digest | qsigs prepares)   (seq ascending)
 *   NEW_VIEW    := u64 view | u32 n | n x blob view_change_body (payload||sig, replica ascending)
 *                  | u64 min_s | u32 m | m x (u64 seq | digest | sig_prepare[64])
 *                  where the m entries are exactly min_s+1 .. max_s, recomputed by every backup.
 *   BATCH_GET   := u64 seq | digest                 "send me the bytes of digest at seq"
 *   BATCH       := u64 seq | digest | blob batch    the answer, to the asker only (class DATA)
 *
 * Commit certificate (what COMMIT actions carry and verify_certificate checks):
 *   cert := u64 view | qsigs over COMMIT statements (view, seq, digest, replica)
 *
 * Beyond the paper, for a lossy, reordering network (all liveness, none weakens a vote rule):
 * - votes of the next view and a pre-prepare of the view being entered are kept until its
 *   NEW-VIEW arrives; COMMITs of older views still count towards a commit certificate, and a
 *   commit certificate settles a seq even without our own pre-prepare (bytes are fetched);
 * - a stalled replica repeats its pre-prepares/votes (timer 5) and its checkpoint vote
 *   (timer 4); replicas that delivered a seq answer a repeated PREPARE/PRE-PREPARE with their
 *   COMMIT, a stale CHECKPOINT or a lone/stale VIEW-CHANGE with their stable checkpoint vote
 *   and COMMITs, and the primary re-sends its NEW-VIEW to a replica asking for its view;
 * - the primary also runs the request timer (twice as long), so a deposed primary that
 *   missed the view change finds its way into the current view;
 * - f+1 checkpoint votes above what we delivered, or a stable checkpoint above it, start a
 *   FETCH from those replicas (retried on timer 2 over all replicas); so does a request
 *   timeout that finds f+1 others' matching COMMITs for the next seq we must deliver (once per
 *   head, before blaming the primary: one that drops our messages leaves us without its
 *   PRE-PREPARE and COMMIT, and an idle cluster sends nothing else for those seqs).
 * Batch bytes: each slot holds one batch, and never gives up the bytes of its prepared
 * certificate (nor of a commit certificate it has yet to deliver), nor those of a batch it voted
 * for until its own prepared or commit certificate names another digest in a later view (see
 * pbft_take_bytes). A NEW-VIEW re-proposes digests only, so a correct replica whose VIEW-CHANGE
 * carried the chosen certificate may be the only one left with the bytes: whatever a slot holds
 * is therefore persisted (a BATCH record, written before the vote it backs) and survives
 * restarts. A replica that holds a pre-prepare, a NEW-VIEW entry or a commit certificate for a
 * digest whose bytes it lacks asks for them by digest (BATCH_GET, two replicas at a time: first
 * those likely to hold them, then the others in turn, on timer 6) and keeps a BATCH only when it
 * asked that replica, the bytes hash to the digest and the slot still wants them. A replica
 * answers a BATCH_GET only for bytes it holds, at most `window` times per asker per timeout
 * (the budget refills on timer 7). FETCH of committed blocks from the commit signers stays, for
 * a replica far behind.
 */
#ifndef BFT_PBFT_H
#define BFT_PBFT_H

#include "protocols/engine.h"

enum pbft_msg_kind {
  PBFT_MSG_PRE_PREPARE = 1,
  PBFT_MSG_PREPARE = 2,
  PBFT_MSG_COMMIT = 3,
  PBFT_MSG_CHECKPOINT = 4,
  PBFT_MSG_VIEW_CHANGE = 5,
  PBFT_MSG_NEW_VIEW = 6,
  PBFT_MSG_BATCH_GET = 7,
  PBFT_MSG_BATCH = 8
};

#define PBFT_TAG_PRE_PREPARE "pbft/pre-prepare"
#define PBFT_TAG_PREPARE "pbft/prepare"
#define PBFT_TAG_COMMIT "pbft/commit"
#define PBFT_TAG_CHECKPOINT "pbft/checkpoint"
#define PBFT_TAG_VIEW_CHANGE "pbft/view-change"
#define PBFT_TAG_NEW_VIEW "pbft/new-view"
#define PBFT_TAG_BATCH_GET "pbft/batch-get"
#define PBFT_TAG_BATCH "pbft/batch"

/* Timer ids. */
enum pbft_timer {
  PBFT_TIMER_REQUEST = 0, /* a backup waits for a pending request to commit */
  PBFT_TIMER_VIEW = 1,    /* a view change waits for its NEW-VIEW */
  PBFT_TIMER_FETCH = 2,   /* retry of a catch-up fetch */
  PBFT_TIMER_KICK = 3,    /* resume deliveries cut short by the action arena's size */
  PBFT_TIMER_CHECKPOINT = 4, /* re-broadcast our checkpoint vote until it is stable */
  PBFT_TIMER_RETRANSMIT = 5, /* repeat our pre-prepares/votes of a stalled view */
  PBFT_TIMER_BATCH = 6,      /* ask other replicas for the batch bytes we still lack */
  PBFT_TIMER_ANSWER = 7      /* refill the per-replica budgets of BATCH answers */
};

/* Persisted record types (first byte of every PERSIST record). A SNAPSHOT record holds the
 * whole safety state: every promise in the records before it. It does not repeat the batch
 * bytes of earlier BATCH records (liveness needs them, safety does not), so a driver shortens
 * its records only through ops->compact, which emits a SNAPSHOT and the BATCH records still
 * needed. See pbft_log.c for the layouts. */
enum pbft_record {
  PBFT_REC_SNAPSHOT = 1,
  PBFT_REC_VIEW = 2,
  PBFT_REC_VOTE = 3,
  PBFT_REC_PCERT = 4,
  PBFT_REC_DELIVERED = 5,
  PBFT_REC_BATCH = 6
};

extern const bft_engine_ops pbft_engine_ops;

#endif
