/* Tendermint engine internals shared by its .c files: limits, the one fixed-size state struct
 * and the functions each file offers the others. Not for use outside protocols/tendermint
 * (tests read the public tendermint.h and the engine interface only). */
#ifndef BFT_TM_INTERNAL_H
#define BFT_TM_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "protocols/pending.h"
#include "protocols/quorum.h"
#include "protocols/request.h"
#include "protocols/tendermint/tendermint.h"
#include "protocols/wire/wire.h"

/* ---- limits ------------------------------------------------------------------------------ */

/* Rounds of the current height whose messages are kept: TM_PAST below the current round (a
 * slow commit of an older round still counts) and TM_FUTURE above it (messages that overtake
 * our round change); and rounds 0..TM_NEXT-1 of the next height (messages of replicas that
 * decided before us). Anything else only counts towards the round-skip rule (line 55) and
 * catch-up; a stalled replica hears it again from the retransmit timer. */
#define TM_PAST 3
#define TM_FUTURE 2
#define TM_NEXT 2
#define TM_SLOTS 8
#define TM_PENDING_HEIGHTS 16   /* a watched request not committed within this many heights is
                                 * forgotten (its (client, seq) may be a repeat execution skips) */
#define TM_MAX_EVIDENCE 16      /* equivocation evidence kept (the count goes on) */
#define TM_MAX_TIMEOUT_ROUND 64 /* timeouts grow linearly up to this round, then stay */
#define TM_MISS_MAX 4           /* a proposer's missed turns counted: timeoutPropose T/4 .. T/32 */
#define TM_STMT_BODY (8 + 8 + BFT_DIGEST_LEN)
#define TM_CERT_MAX (8 + BFT_QC_SIGS_MAX)
#define TM_PROPOSAL_PAYLOAD_MAX (8 + 8 + 8 + BFT_DIGEST_LEN + BFT_QC_SIGS_MAX + 4 + BFT_MAX_BATCH_BYTES)
#define TM_PROPOSAL_BODY_MAX (TM_PROPOSAL_PAYLOAD_MAX + BFT_SIG_LEN)
#define TM_DECISION_PAYLOAD_MAX (8 + 8 + BFT_DIGEST_LEN + BFT_QC_SIGS_MAX)
#define TM_GET_LEN (8 + 8 + BFT_DIGEST_LEN)
#define TM_RELAY_BODY_MAX (4 + 4 + TM_PROPOSAL_BODY_MAX + BFT_SIG_LEN)
#define TM_SIGN_REC_LEN (1 + 8 + 8 + 1 + BFT_DIGEST_LEN + 8 + BFT_DIGEST_LEN)
#define TM_VALID_REC_MAX (1 + 8 + 8 + BFT_QC_SIGS_MAX + 4 + BFT_MAX_BATCH_BYTES)

_Static_assert(TM_PAST + 1 + TM_FUTURE + TM_NEXT <= TM_SLOTS, "every acceptable (height, round) has a slot");
_Static_assert(TM_VOTE_LEN == TM_STMT_BODY + 4, "a vote is its statement body and the signer");
_Static_assert(TM_VOTE_LEN <= BFT_STMT_MAX, "a vote statement fits the quorum helpers");
_Static_assert(TM_CERT_MAX <= BFT_MAX_CERT_BYTES, "a commit certificate fits its limit");
_Static_assert(TM_PROPOSAL_BODY_MAX <= BFT_MAX_ENGINE_MSG, "a PROPOSAL fits a message");
_Static_assert(TM_RELAY_BODY_MAX <= BFT_MAX_ENGINE_MSG, "a RELAY fits a message");
_Static_assert(TM_VALID_REC_MAX <= TM_PROPOSAL_BODY_MAX, "a VALID record is built in the scratch buffer");
_Static_assert(4 * TM_PROPOSAL_BODY_MAX + 2 * TM_VALID_REC_MAX < BFT_ACTION_ARENA,
               "a step (proposal, records, two commits) fits the action arena");
_Static_assert(BFT_MAX_TIMERS > TM_TIMER_PULL, "timer ids fit");
_Static_assert(BFT_MAX_REPLICAS <= 64, "replica sets are 64-bit masks");

/* ---- state ------------------------------------------------------------------------------- */

/* Everything known about one (height, round): its proposal and its votes. */
typedef struct tm_slot {
  uint8_t used;
  uint64_t height, round;
  bft_voteset prevotes, precommits; /* one vote per replica; a second one is equivocation */
  uint8_t has_prop;                 /* a checked PROPOSAL of proposer(height, round) */
  uint8_t prop_valid;               /* valid(v): env->check_batch accepted the value */
  uint64_t prop_vr;                 /* its valid round (TM_NIL_ROUND: -1) */
  uint8_t prop_digest[BFT_DIGEST_LEN];
  uint32_t prop_len;                /* the whole body, payload || sig, kept to repeat it */
  uint32_t val_off, val_len;        /* the value inside prop_msg */
  uint8_t did_34, did_36, did_47;   /* the "for the first time" rules of this round */
  uint64_t relayed;                 /* replicas we sent this round's proposal to (RELAY) */
  uint8_t prop_msg[TM_PROPOSAL_BODY_MAX];
} tm_slot;

typedef struct tm_evidence { /* two signed conflicting votes by one replica */
  uint32_t replica;
  uint8_t kind; /* TM_MSG_PREVOTE or TM_MSG_PRECOMMIT */
  uint64_t height, round;
  uint8_t digest[2][BFT_DIGEST_LEN];
  uint8_t sig[2][BFT_SIG_LEN];
} tm_evidence;

typedef struct tm_counters {
  uint64_t stale, window, digest, cert, other;
} tm_counters;

typedef struct tm_state {
  bft_engine_config cfg;
  bft_engine_env env;
  uint32_t q; /* 2f+1 */
  int started;

  /* Algorithm 1, lines 2-9 (decision_p is the driver's ledger) */
  uint64_t height; /* h_p = committed + 1 */
  uint64_t round;  /* round_p */
  uint8_t step;    /* step_p */
  uint64_t committed;
  uint64_t locked_round; /* TM_NIL_ROUND: -1 */
  uint8_t locked_digest[BFT_DIGEST_LEN];
  uint64_t valid_round;  /* TM_NIL_ROUND: -1 */
  uint8_t valid_digest[BFT_DIGEST_LEN];
  bft_qc valid_pol;      /* the 2f+1 PREVOTEs of valid_round for valid_digest */
  uint32_t valid_len;    /* validValue's bytes are valid_val[] */

  /* double-sign guard: the last (height, round, step) signed and what */
  int ls_valid;
  uint64_t ls_height, ls_round;
  uint8_t ls_step;
  uint8_t ls_digest[BFT_DIGEST_LEN];
  /* the lock our records hold for rec_height: applied when we reach that height (a restart
   * behind our own records must not forget a lock it promised there) */
  uint64_t rec_height, rec_locked_round;
  uint8_t rec_locked_digest[BFT_DIGEST_LEN];
  /* our last prevote per our records (restore): resent after a restart that resumes at the
   * precommit step of that round, since peers that crashed too lost it */
  int pv_valid;
  uint64_t pv_height, pv_round;
  uint8_t pv_digest[BFT_DIGEST_LEN];
  uint64_t valid_height; /* height of validValue restored from a VALID record */

  uint64_t epoch;        /* bumped on every new (height, round) */
  uint64_t timeouts;     /* rounds given up: timeoutPrecommit, or 2f+1 nil precommits */
  int pulled;            /* proposer: a PROPOSE_PULL is outstanding for this round */
  int active;            /* someone else spoke at this height: propose / time out */

  /* what each replica said last: (height, round) of its latest checked message */
  uint64_t seen_h[BFT_MAX_REPLICAS], seen_r[BFT_MAX_REPLICAS];

  /* a commit certificate for this height whose value we lack (fetched if need be) */
  int dec_pending;
  uint8_t dec_digest[BFT_DIGEST_LEN];
  uint32_t dec_cert_len;
  uint8_t dec_cert[TM_CERT_MAX];

  /* the last decision, to answer replicas still at that height */
  int last_valid;
  uint64_t last_h;
  uint8_t last_digest[BFT_DIGEST_LEN];
  uint64_t last_r;       /* the round it was decided in */
  uint64_t last_pc_mask; /* replicas whose precommit of that round we held when deciding */
  uint32_t last_cert_len;
  uint8_t last_cert[TM_CERT_MAX];
  /* late messages of each replica: their (height, round) and the kinds seen there (bits) */
  uint64_t late_h[BFT_MAX_REPLICAS], late_r[BFT_MAX_REPLICAS];
  uint8_t late_kinds[BFT_MAX_REPLICAS];
  /* Liveness only: how many of this replica's last rounds led by that proposer ended in a row
   * in timeoutPropose with no proposal from it (at most TM_MISS_MAX); its next timeoutPropose
   * is shorter the more (tm_rounds.c). */
  uint8_t missed[BFT_MAX_REPLICAS];
  uint64_t tp_epoch; /* epoch whose timeoutPropose is armed */
  /* Liveness only: the round whose missing proposal we asked its prevoters for (GET_PROPOSAL),
   * and whom (each once per round). */
  int ask_valid;
  uint64_t ask_h, ask_r, ask_mask;
  /* Liveness only: the height whose decision we asked replicas already past it for, and whom. */
  uint64_t dask_h, dask_mask;
  uint64_t bt_epoch; /* epoch whose batch wait (an idle proposer's) is armed */

  /* client requests seen but not yet committed: a backup times out only when there is work */
  bft_pending pend; /* tag: the height at which each arrived */

  /* timers and catch-up */
  uint64_t rt_tag;
  int rt_armed;
  int fetching;
  uint64_t fetch_target, fetch_mask, fetch_tag;
  uint64_t fetch_from;  /* committed when the last fetch went out */
  uint32_t fetch_rr;
  uint32_t fetch_tries; /* fetches in a row that brought nothing */

  /* equivocation evidence (a ring of the latest) */
  uint64_t equivocations;
  uint32_t nevidence;
  tm_evidence evidence[TM_MAX_EVIDENCE];

  tm_counters rej;
  tm_slot slots[TM_SLOTS];
  uint8_t scratch[TM_PROPOSAL_BODY_MAX];
  uint8_t relay_buf[TM_RELAY_BODY_MAX];
  uint8_t valid_val[BFT_MAX_BATCH_BYTES];
  /* the proposal we last prevoted for (TM_REC_PROPOSAL), replayed by start() at its height */
  uint32_t rp_from, rp_len;
  uint64_t rp_height;
  uint8_t rp_msg[TM_PROPOSAL_BODY_MAX];
} tm_state;

/* ---- tm_log.c: statements, certificates, records ------------------------------------------ */

void tm_stmt_body(uint8_t out[TM_STMT_BODY], uint64_t height, uint64_t round, const uint8_t digest[BFT_DIGEST_LEN]);
int tm_persist_sign(tm_state *s, bft_actions *out);
int tm_persist_valid(tm_state *s, bft_actions *out);
int tm_resend_prevote(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
int tm_persist_proposal(tm_state *s, uint32_t from, uint64_t height, const uint8_t *body, uint32_t len, bft_actions *out);
int tm_restore_record(tm_state *s, const uint8_t *rec, uint32_t len);
int tm_compact_records(tm_state *s, bft_actions *out);
int tm_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                   const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len);
int tm_build_cert(uint64_t round, const bft_qc *qc, uint8_t *buf, uint32_t cap);

/* ---- tm_safety.c: Algorithm 1's upon rules, votes, locks, decisions ------------------------- */

int tm_on_proposal(tm_state *s, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out);
int tm_on_vote(tm_state *s, uint8_t kind, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out);
int tm_on_decision(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
/* GET_PROPOSAL and RELAY (payloads without the sender's signature). */
int tm_on_get_proposal(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int tm_on_relay(tm_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
/* Evaluate every rule of lines 22-56 that the state now enables, until none is. */
int tm_check_rules(tm_state *s, bft_actions *out);
/* Lines 49-54 for a value we hold with its commit certificate (also the SYNC path). */
int tm_decide(tm_state *s, const uint8_t *value, uint32_t len, const uint8_t *cert, uint32_t cert_len,
              bft_actions *out);
/* Propose `value` in the current round with valid round vr (and its proof when vr != -1). */
int tm_propose(tm_state *s, const uint8_t *value, uint32_t len, uint64_t vr, const bft_qc *pol, bft_actions *out);
/* The double-sign guard: may we sign (height, round, step, digest)? */
int tm_may_sign(const tm_state *s, uint64_t height, uint64_t round, uint8_t step, const uint8_t digest[BFT_DIGEST_LEN]);
/* Sign, record (persist first) and broadcast our PREVOTE or PRECOMMIT of the current round. */
int tm_cast_vote(tm_state *s, uint8_t kind, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
tm_slot *tm_slot_find(tm_state *s, uint64_t height, uint64_t round);
/* The slot of (height, round), created if it is inside the windows above; NULL otherwise. */
tm_slot *tm_slot_make(tm_state *s, uint64_t height, uint64_t round);
/* Bytes of a value with this digest that we hold (any proposal of this height, validValue). */
const uint8_t *tm_find_value(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], uint32_t *len);

/* ---- tm_rounds.c: proposer, rounds, timeouts, retransmission, catch-up --------------------- */

uint32_t tm_proposer(const tm_state *s, uint64_t height, uint64_t round);
/* StartRound(round), lines 11-21. */
int tm_start_round(tm_state *s, uint64_t round, bft_actions *out);
/* After a decision: the next height, round 0 (line 53-54). */
int tm_enter_height(tm_state *s, bft_actions *out);
int tm_on_batch(tm_state *s, const uint8_t *batch, uint32_t len, bft_actions *out);
int tm_on_request(tm_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
int tm_on_timer(tm_state *s, uint32_t id, uint64_t tag, bft_actions *out);
int tm_on_sync(tm_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
               uint32_t cert_len, bft_actions *out);
/* Someone else is working at this height: arm the propose timeout, let an idle proposer speak. */
int tm_became_active(tm_state *s, bft_actions *out);
/* Line 34 / 47 schedule these; 0 when armed. */
int tm_schedule(tm_state *s, uint32_t timer, bft_actions *out);
int tm_arm_retransmit(tm_state *s, bft_actions *out);
/* A message from `from` of an older height: answer with our last decision when it shows the
 * sender missed it (see tm_rounds.c). */
int tm_answer_late(tm_state *s, uint32_t from, uint8_t kind, uint64_t height, uint64_t round, bft_actions *out);
/* Replicas in mask have decided `target`: fetch up to it (one fetch at a time, retried). */
void tm_need_fetch(tm_state *s, uint64_t target, uint64_t mask, bft_actions *out);
void tm_requests_done(tm_state *s, const uint8_t *batch, uint32_t len);

/* ---- tm.c --------------------------------------------------------------------------------- */

int tm_reject(tm_state *s, int rc);
const char *tm_tag(uint8_t kind);
/* Seal the payload in buf (len bytes; cap >= len + 64) under kind's tag and broadcast it
 * (to == TM_ALL) or send it to `to`. */
int tm_emit(tm_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to, bft_actions *out);

#define TM_ALL UINT32_MAX
#define TM_TRY(x)            \
  do {                       \
    int rc_ = (x);           \
    if (rc_ < 0) return rc_; \
  } while (0)

static inline int tm_is_nil(const uint8_t d[BFT_DIGEST_LEN]) {
  static const uint8_t zero[BFT_DIGEST_LEN];
  return memcmp(d, zero, BFT_DIGEST_LEN) == 0;
}

static inline int tm_same(const uint8_t a[BFT_DIGEST_LEN], const uint8_t b[BFT_DIGEST_LEN]) {
  return memcmp(a, b, BFT_DIGEST_LEN) == 0;
}

#endif
