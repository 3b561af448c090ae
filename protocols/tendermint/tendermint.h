/* Tendermint (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus", 2018, Algorithm 1)
 * behind the engine interface of protocols/engine.h. This header is the public face: message
 * kinds, signature tags, timers, persisted records and the encodings other components (ledger
 * verifiers, the simulator, tests) may need to read or forge.
 *
 * One height at a time: seq = height. Round r of height h is led by proposer(h, r) =
 * (h + r) mod n. A value is a batch of client requests (protocols/request.h); id(v) is its
 * BLAKE2b digest, and nil is the all-zero digest (no batch digests to it).
 *
 * Statements (what a vote signature covers; the signed bytes *are* the vote message's payload,
 * `body || u32 replica` as protocols/quorum.h builds them):
 *   vote := u64 height | u64 round | digest[32] | u32 replica          (52 bytes)
 * under tag TM_TAG_PREVOTE or TM_TAG_PRECOMMIT.
 *
 * Messages (payload; the body on the wire is payload || sig[64] by the sender):
 *   PROPOSAL  := u64 height | u64 round | u64 valid_round | digest | qsigs pol | blob value
 *                valid_round = TM_NIL_ROUND (the paper's -1) with an empty pol (count 0), or
 *                a round below `round` with pol = 2f+1 PREVOTEs for (height, valid_round,
 *                digest): the proof of lock travels with the proposal, so a replica checks the
 *                paper's "2f+1 <PREVOTE, h, vr, id(v)>" (line 28) without keeping old rounds.
 *   PREVOTE   := vote statement        PRECOMMIT := vote statement
 *   DECISION  := u64 height | digest | cert (u64 round | qsigs, as below)
 *                a commit certificate, sent in answer to a message of a height the sender has
 *                already decided, so a replica that missed the precommits finishes (or learns
 *                it is behind and fetches).
 *   GET_PROPOSAL := u64 height | u64 round | digest
 *                asked by a replica still waiting for the proposal of its round of each
 *                replica that prevoted a value `digest` there, once per voter and round
 *                (liveness only; the paper assumes gossip). With a nil digest, of a replica
 *                already at the next height: a height the receiver has decided is answered
 *                with a DECISION (once per asker, height and round).
 *   RELAY     := u32 proposer | blob proposal (the PROPOSAL body exactly as proposer(height,
 *                round) signed it, payload || its sig)
 *                the answer, once per asker and round; the asker checks the proposer's
 *                signature and takes it as that proposer's PROPOSAL.
 * qsigs is protocols/quorum.h's encoding (u32 count = 2f+1 | count x (u32 replica | sig),
 * replicas ascending).
 *
 * Commit certificate (what COMMIT actions carry and verify_certificate checks, seq = height):
 *   cert := u64 round | qsigs over PRECOMMIT statements (height, round, digest, replica)
 *
 * Persisted records (first byte is the type; each is written before the message it protects):
 *   SIGN  := u8 1 | u64 height | u64 round | u8 step | digest | u64 locked_round | locked digest
 *            before every signed PROPOSAL (step 1), PREVOTE (2) or PRECOMMIT (3): the last
 *            (height, round, step) signed, what was signed, and the lock at that moment.
 *   VALID := u8 2 | u64 height | u64 valid_round | qsigs pol | blob value
 *            whenever validValue/validRound change (line 42), with the bytes, so a restarted
 *            proposer can still re-propose validValue with its proof.
 * A restarted replica never signs at or below the (height, round, step) of its last SIGN
 * record, except the very same statement again (CometBFT's double-sign guard).
 * ops->compact writes the latest SIGN record and, when set, the VALID record.
 */
#ifndef BFT_TENDERMINT_H
#define BFT_TENDERMINT_H

#include "protocols/engine.h"

enum tm_msg_kind {
  TM_MSG_PROPOSAL = 1,
  TM_MSG_PREVOTE = 2,
  TM_MSG_PRECOMMIT = 3,
  TM_MSG_DECISION = 4,
  TM_MSG_GET_PROPOSAL = 5,
  TM_MSG_RELAY = 6
};

#define TM_TAG_PROPOSAL "tm/proposal"
#define TM_TAG_PREVOTE "tm/prevote"
#define TM_TAG_PRECOMMIT "tm/precommit"
#define TM_TAG_DECISION "tm/decision"
#define TM_TAG_GET_PROPOSAL "tm/get-proposal"
#define TM_TAG_RELAY "tm/relay"

/* The paper's -1 for lockedRound, validRound and a proposal's validRound. */
#define TM_NIL_ROUND UINT64_MAX

/* Steps of a round (also the step byte of SIGN records). */
enum tm_step { TM_STEP_PROPOSE = 1, TM_STEP_PREVOTE = 2, TM_STEP_PRECOMMIT = 3 };

/* Timer ids. */
enum tm_timer {
  TM_TIMER_PROPOSE = 0,    /* OnTimeoutPropose(h, r), lines 57-60 */
  TM_TIMER_PREVOTE = 1,    /* OnTimeoutPrevote(h, r), lines 61-64 */
  TM_TIMER_PRECOMMIT = 2,  /* OnTimeoutPrecommit(h, r), lines 65-67 */
  TM_TIMER_RETRANSMIT = 3, /* repeat our messages of a stalled round (the paper's gossip) */
  TM_TIMER_FETCH = 4,      /* retry of a catch-up fetch */
  TM_TIMER_BATCH = 5,      /* an idle proposer that others wait for proposes an empty batch */
  TM_TIMER_PULL = 6        /* 0 ms: pull in a step of its own, after the one that changed the
                            * pull epoch (a driver ends the old epoch's pull with that step) */
};

/* TM_REC_PROPOSAL: u32 proposer | PROPOSAL body (payload || sig), written before we prevote for
 * its value: after a crash of every replica the value of a round that gathered prevotes still
 * exists (at its prevoters), so the round can be finished or its value re-proposed. */
enum tm_record { TM_REC_SIGN = 1, TM_REC_VALID = 2, TM_REC_PROPOSAL = 3 };

/* Bytes of a vote statement (body || u32 replica). */
#define TM_VOTE_LEN (8 + 8 + BFT_DIGEST_LEN + 4)

extern const bft_engine_ops tm_engine_ops;

#endif
