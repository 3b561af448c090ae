/* PBFT engine internals shared by its .c files: the one fixed-size state struct, the decoded
 * forms of messages, and the functions each file offers the others. Not for use outside
 * protocols/pbft (tests read the public pbft.h and the engine interface only). */
#ifndef BFT_PBFT_INTERNAL_H
#define BFT_PBFT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "protocols/pbft/pbft.h"
#include "protocols/pending.h"
#include "protocols/quorum.h"
#include "protocols/request.h"
#include "protocols/wire/wire.h"

/* ---- limits ------------------------------------------------------------------------------ */

/* PBFT's own bound on n: a NEW-VIEW carries 2f+1 VIEW-CHANGEs, each with a prepared
 * certificate (2f+1 signatures) per slot of the window, so it grows as n^2 * window and at
 * n = 64 would not fit one frame. The other engines go up to BFT_MAX_REPLICAS. */
#define PBFT_MAX_REPLICAS 32
#define PBFT_QUORUM_MAX (2 * ((PBFT_MAX_REPLICAS - 1) / 3) + 1)
#define PBFT_QC_SIGS_MAX (4 + PBFT_QUORUM_MAX * BFT_QC_ENTRY)
_Static_assert(PBFT_MAX_REPLICAS <= BFT_MAX_REPLICAS, "PBFT's bound is within the system's");

/* A statement is body || u32 replica (bft_stmt_make): vote body := u64 view | u64 seq | digest,
 * checkpoint body := u64 seq | digest. Certificates are bft_qc's over these bodies. */
#define PBFT_VOTE_BODY_LEN (8 + 8 + BFT_DIGEST_LEN)
#define PBFT_CKPT_BODY_LEN (8 + BFT_DIGEST_LEN)
#define PBFT_VOTE_LEN (PBFT_VOTE_BODY_LEN + 4)
#define PBFT_CKPT_LEN (PBFT_CKPT_BODY_LEN + 4)
#define PBFT_CERT_MAX (8 + PBFT_QC_SIGS_MAX)
#define PBFT_VC_ENTRY_MAX (8 + 8 + BFT_DIGEST_LEN + PBFT_QC_SIGS_MAX)
#define PBFT_VC_PAYLOAD_MAX \
  (8 + 4 + 8 + BFT_DIGEST_LEN + PBFT_QC_SIGS_MAX + 4 + BFT_MAX_WINDOW * PBFT_VC_ENTRY_MAX)
#define PBFT_VC_BODY_MAX (PBFT_VC_PAYLOAD_MAX + BFT_SIG_LEN)
#define PBFT_NV_ENTRY (8 + BFT_DIGEST_LEN + BFT_SIG_LEN)
#define PBFT_NV_PAYLOAD_MAX \
  (8 + 4 + PBFT_QUORUM_MAX * (4 + PBFT_VC_BODY_MAX) + 8 + 4 + BFT_MAX_WINDOW * PBFT_NV_ENTRY)
#define PBFT_PP_PAYLOAD_MAX (8 + 8 + BFT_DIGEST_LEN + BFT_SIG_LEN + 4 + BFT_MAX_BATCH_BYTES)
#define PBFT_MAX_BACKOFF 10     /* view-change timeout doubles at most this many times */
#define PBFT_REQ_STRIKES 4      /* request-timer periods a request may wait while others commit */
#define PBFT_ASK_FANOUT 2       /* replicas asked at once for a batch by digest (BATCH_GET) */
#define PBFT_BATCH_GET_LEN (8 + BFT_DIGEST_LEN)
/* A snapshot record: header, stable proof, chain ring, and per slot votes + prepared cert. */
#define PBFT_SNAP_SLOT_MAX (8 + 1 + 2 * (8 + BFT_DIGEST_LEN) + 8 + BFT_DIGEST_LEN + PBFT_QC_SIGS_MAX)
#define PBFT_SNAP_MAX                                                                         \
  (1 + 8 + 1 + 8 + BFT_DIGEST_LEN + PBFT_QC_SIGS_MAX + 8 + 4 + BFT_MAX_WINDOW * (8 + BFT_DIGEST_LEN) + \
   4 + BFT_MAX_WINDOW * PBFT_SNAP_SLOT_MAX)

/* A BATCH record: u8 type | u64 seq | blob batch. */
#define PBFT_BATCH_REC_MAX (1 + 8 + 4 + BFT_MAX_BATCH_BYTES)

_Static_assert(PBFT_CERT_MAX <= BFT_MAX_CERT_BYTES, "a commit certificate fits its limit");
_Static_assert(PBFT_VOTE_LEN <= BFT_STMT_MAX && PBFT_CKPT_LEN <= BFT_STMT_MAX, "statements fit");
_Static_assert(PBFT_NV_PAYLOAD_MAX + BFT_SIG_LEN <= BFT_MAX_ENGINE_MSG, "a NEW-VIEW fits a message");
_Static_assert(PBFT_PP_PAYLOAD_MAX + BFT_SIG_LEN <= BFT_MAX_ENGINE_MSG, "a PRE-PREPARE fits");
_Static_assert(PBFT_SNAP_MAX <= PBFT_NV_PAYLOAD_MAX, "a snapshot is built in the scratch buffer");
_Static_assert(PBFT_NV_PAYLOAD_MAX + BFT_SIG_LEN + 2 * (PBFT_PP_PAYLOAD_MAX + BFT_SIG_LEN) <
                   BFT_ACTION_ARENA,
               "a NEW-VIEW step fits the action arena");
_Static_assert(PBFT_BATCH_REC_MAX <= PBFT_NV_PAYLOAD_MAX, "a BATCH record is built in the scratch buffer");
_Static_assert(PBFT_SNAP_MAX + BFT_MAX_WINDOW * PBFT_BATCH_REC_MAX <= BFT_ACTION_ARENA,
               "compact (a snapshot and the batch of every slot) fits the action arena");
_Static_assert(BFT_MAX_TIMERS > PBFT_TIMER_RETRANSMIT && BFT_MAX_TIMERS > PBFT_TIMER_BATCH &&
                   BFT_MAX_TIMERS > PBFT_TIMER_ANSWER,
               "timer ids fit");
_Static_assert(PBFT_MAX_REPLICAS <= 64, "replica sets fit a u64 mask");

/* ---- state ------------------------------------------------------------------------------- */

typedef struct pbft_mine { /* what this replica signed (persisted), to never sign otherwise */
  uint64_t view;
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t valid;
} pbft_mine;

typedef struct pbft_slot { /* log entry of one sequence number in (h, h+L] */
  uint64_t seq;
  uint8_t used;
  uint8_t has_pp;    /* a pre-prepare (or NEW-VIEW entry) for (pp_view, pp_digest) accepted */
  uint8_t prepared;  /* prepared in pp_view */
  uint8_t committed; /* 2f+1 COMMITs for (cm_view, cm_digest) seen: a commit certificate */
  uint8_t has_batch; /* batch bytes, whose digest is batch_digest */
  uint8_t early;     /* a pre-prepare of the view we are changing into, held for NEW-VIEW */
  uint8_t has_pcert; /* pcert holds a prepared certificate for (pcert_view, pcert_digest) */
  uint64_t pp_view;
  uint8_t pp_digest[BFT_DIGEST_LEN];
  uint64_t cm_view;
  uint8_t cm_digest[BFT_DIGEST_LEN];
  uint64_t early_view;
  uint8_t early_digest[BFT_DIGEST_LEN];
  uint8_t early_sig[BFT_SIG_LEN];
  uint8_t batch_digest[BFT_DIGEST_LEN];
  uint32_t batch_len;
  uint64_t pcert_view;
  uint8_t pcert_digest[BFT_DIGEST_LEN];
  /* We voted PREPARE for the bytes the slot holds (or proposed them), last in bytes_view:
   * they are kept against other batches (pbft_take_bytes). */
  uint8_t bytes_voted;
  uint64_t bytes_view;
  /* Fetch by digest (pbft_fetch.c): the digest asked for, who is likely to hold it (from the
   * NEW-VIEW), who was ever asked for it (a BATCH from anyone else is refused), and who was
   * asked in the current round of the rotation. */
  uint8_t asking;
  uint8_t ask_digest[BFT_DIGEST_LEN];
  uint64_t holders, asked, tried;
  /* Each replica's latest PREPARE and COMMIT here (round = view, height = seq); the primary's
   * prepare comes from its pre-prepare. */
  bft_voteset prep, com;
  pbft_mine my_prep, my_com;
  bft_qc pcert; /* highest-view prepared certificate, reported in VIEW-CHANGE */
  bft_qc ccert; /* the commit certificate for (cm_view, cm_digest), kept as found (later
                 * votes may replace the votes it was built from) */
  uint8_t batch[BFT_MAX_BATCH_BYTES];
} pbft_slot;

typedef struct pbft_ckpt { /* checkpoint votes for one seq in (h, h+L] */
  uint64_t seq;
  uint8_t used;
  bft_voteset v; /* round 0, height = seq */
} pbft_ckpt;

typedef struct pbft_vcrec { /* latest valid VIEW-CHANGE body from one replica */
  uint64_t view;
  uint32_t len;
  uint8_t valid;
  uint8_t body[PBFT_VC_BODY_MAX];
} pbft_vcrec;

typedef struct pbft_counters {
  uint64_t stale, window, digest, cert, other;
  uint64_t equivocations; /* conflicting votes (or pre-prepares) signed by one replica */
} pbft_counters;

typedef struct pbft_state {
  bft_engine_config cfg;
  bft_engine_env env;
  uint32_t q; /* 2f+1 */
  int started;

  /* view */
  uint64_t view;
  int changing; /* a VIEW-CHANGE for `view` was sent; NEW-VIEW not yet accepted */
  uint32_t vc_backoff;
  uint64_t vc_tag;
  int vc_nudged; /* the NEW-VIEW is late: we re-sent our VIEW-CHANGE once before moving on */
  uint64_t rt_tag;
  int rt_armed;
  uint64_t rt_committed; /* `committed` when the retransmit timer last fired */

  /* checkpoints and watermarks */
  uint64_t h;                           /* low watermark = last stable checkpoint */
  uint8_t h_digest[BFT_DIGEST_LEN];
  bft_qc h_proof;                       /* 2f+1 checkpoint signatures (count 0 when h = 0) */
  pbft_ckpt ckpt[BFT_MAX_WINDOW];
  bft_voteset far_ckpt;                 /* latest checkpoint vote above h+L: round 0, height = seq */
  uint64_t ck_last;                     /* our latest checkpoint vote (seq, digest) */
  uint8_t ck_digest[BFT_DIGEST_LEN];
  uint64_t ck_tag;

  /* delivery */
  uint64_t committed;                   /* last seq delivered (COMMIT action emitted) */
  uint8_t chain[BFT_DIGEST_LEN];        /* history digest after `committed` */
  int chain_valid;
  uint64_t chain_seq[BFT_MAX_WINDOW];   /* chain after recent seqs, for restarts */
  uint8_t chain_ring[BFT_MAX_WINDOW][BFT_DIGEST_LEN];
  /* Digests of the batches delivered recently, also while the chain is unknown (a replica that
   * installed a snapshot): a stable checkpoint below `committed` then re-derives the chain. */
  uint64_t dig_seq[BFT_MAX_WINDOW];
  uint32_t hint_count; /* cfg.head_digests at init: digests of the ledger's last blocks */
  uint8_t hint_dig[BFT_MAX_WINDOW][BFT_DIGEST_LEN];
  uint8_t dig_ring[BFT_MAX_WINDOW][BFT_DIGEST_LEN];
  uint64_t delivered_max;               /* highest seq ever delivered (survives restarts) */
  uint64_t kick_tag;

  /* primary */
  uint64_t next_seq; /* last sequence number assigned in this view */
  int pulled;        /* a PROPOSE_PULL is outstanding (at most one at a time) */

  /* backups watching requests */
  bft_pending pend;                      /* tag: the arrival number of each digest */
  uint64_t req_no;                       /* arrivals so far */
  uint64_t req_mark;                     /* arrivals when the request timer was armed */
  uint64_t req_marks[PBFT_REQ_STRIKES];  /* req_mark of the last armings in a row (ring) */
  uint32_t req_nmarks;                   /* armings in a row recorded (reset by a view change) */
  uint64_t req_committed;                /* `committed` when the request timer was armed */
  uint64_t view_activity;                /* new votes/pre-prepares of this view accepted so far */
  uint64_t req_activity;                 /* view_activity when the request timer was armed */
  uint64_t req_tag;
  int req_armed;
  uint64_t req_fetched; /* committed + 1 when a request timeout last fetched instead (0: never) */

  /* catch-up */
  int fetching;
  uint64_t fetch_target;
  uint64_t fetch_mask; /* replicas that proved they have what we fetch */
  uint32_t fetch_rr;
  uint64_t fetch_tag;

  /* fetch by digest */
  uint64_t ask_tag;
  int ask_armed;
  uint32_t answers[BFT_MAX_REPLICAS]; /* BATCH answers sent to each replica this period */
  uint64_t ans_tag;
  int ans_armed;

  pbft_counters rej;
  uint64_t evidence_view[BFT_MAX_REPLICAS]; /* view + 1 of the last evidence emitted per replica */

  pbft_vcrec vcs[BFT_MAX_REPLICAS];
  pbft_slot slots[BFT_MAX_WINDOW];
  uint8_t scratch[PBFT_NV_PAYLOAD_MAX + BFT_SIG_LEN]; /* messages and records being built */
  /* The NEW-VIEW we sent as primary of nv_view: re-sent as is to replicas that missed it
   * (the view-changes it is made of may since have been replaced in vcs[]). */
  uint64_t nv_view;
  uint32_t nv_len;
  uint8_t nv_body[PBFT_NV_PAYLOAD_MAX + BFT_SIG_LEN];
} pbft_state;

/* ---- decoded messages (borrowing from the body) --------------------------------------------- */

typedef struct pbft_vc_entry {
  uint64_t view, seq;
  uint8_t digest[BFT_DIGEST_LEN];
  bft_qc_view sigs;
} pbft_vc_entry;

typedef struct pbft_vc {
  uint64_t new_view;
  uint32_t replica;
  uint64_t stable_seq;
  uint8_t stable_digest[BFT_DIGEST_LEN];
  bft_qc_view proof;
  uint32_t n;
  pbft_vc_entry e[BFT_MAX_WINDOW];
} pbft_vc;

typedef struct pbft_nv {
  uint64_t view;
  uint32_t nvc;
  const uint8_t *vc[PBFT_QUORUM_MAX];
  uint32_t vc_len[PBFT_QUORUM_MAX];
  uint64_t min_s;
  uint32_t no;
  const uint8_t *o; /* no x (u64 seq | digest | sig) */
} pbft_nv;

typedef struct pbft_o_entry { /* one seq of the NEW-VIEW's re-proposals */
  uint64_t view; /* view of the chosen prepared certificate (0 and !have: null batch) */
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t have;
} pbft_o_entry;

typedef struct pbft_o_set {
  uint64_t min_s, max_s;
  uint8_t min_digest[BFT_DIGEST_LEN]; /* stable checkpoint digest at min_s */
  int32_t min_from;                   /* index into the VC list holding min_s's proof */
  pbft_o_entry e[BFT_MAX_WINDOW];     /* e[i] is seq min_s + 1 + i */
} pbft_o_set;

/* ---- pbft_codec.c ------------------------------------------------------------------------- */

void pbft_vote_body(uint8_t out[PBFT_VOTE_BODY_LEN], uint64_t view, uint64_t seq,
                    const uint8_t digest[BFT_DIGEST_LEN]);
void pbft_ckpt_body(uint8_t out[PBFT_CKPT_BODY_LEN], uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN]);
/* The statements (body || u32 replica): what a vote message carries and its signature covers. */
void pbft_vote_stmt(uint8_t out[PBFT_VOTE_LEN], uint64_t view, uint64_t seq,
                    const uint8_t digest[BFT_DIGEST_LEN], uint32_t replica);
void pbft_ckpt_stmt(uint8_t out[PBFT_CKPT_LEN], uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                    uint32_t replica);
int pbft_decode_vote(const uint8_t *p, uint32_t len, uint64_t *view, uint64_t *seq,
                     uint8_t digest[BFT_DIGEST_LEN], uint32_t *replica);
int pbft_decode_ckpt(const uint8_t *p, uint32_t len, uint64_t *seq, uint8_t digest[BFT_DIGEST_LEN],
                     uint32_t *replica);
int pbft_decode_vc(const uint8_t *p, uint32_t len, pbft_vc *vc);
int pbft_decode_nv(const uint8_t *p, uint32_t len, pbft_nv *nv);
/* Check a certificate of 2f+1 PREPAREs or COMMITs (tag) for (view, seq, digest), `need`
 * (UINT32_MAX: anyone) among the signers; of 2f+1 CHECKPOINTs for (seq, digest). 0 or
 * BFT_E_BAD_CERT. */
int pbft_verify_votes(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, uint64_t view,
                      uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN], const bft_qc_view *qc, uint32_t need);
int pbft_verify_ckpts(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                      const uint8_t digest[BFT_DIGEST_LEN], const bft_qc_view *qc);
void pbft_empty_digest(uint8_t out[BFT_DIGEST_LEN]);

/* ---- pbft_log.c: slots, delivery, checkpoints, persistence --------------------------------- */

pbft_slot *pbft_slot_get(pbft_state *s, uint64_t seq);   /* NULL unless in (h, h+L] and used */
pbft_slot *pbft_slot_make(pbft_state *s, uint64_t seq);  /* create/reuse for seq in (h, h+L] */
int pbft_in_window(const pbft_state *s, uint64_t seq);
int pbft_try_deliver(pbft_state *s, bft_actions *out);
int pbft_deliver_one(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len,
                     const uint8_t *cert, uint32_t cert_len, bft_actions *out);
int pbft_make_stable(pbft_state *s, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                     const bft_qc *proof, bft_actions *out);
int pbft_ckpt_check_stable(pbft_state *s, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                           bft_actions *out);
int pbft_persist_view(pbft_state *s, bft_actions *out);
int pbft_persist_vote(pbft_state *s, uint8_t kind, uint64_t view, uint64_t seq,
                      const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
/* The whole safety state as one SNAPSHOT record (every promise of the earlier records, not
 * the bytes of their BATCH records). */
int pbft_persist_snapshot(pbft_state *s, bft_actions *out);
/* The slot's prepared certificate (PCERT record). */
int pbft_persist_pcert(pbft_state *s, const pbft_slot *sl, bft_actions *out);
/* The bytes a slot is about to hold (built in scratch). */
int pbft_persist_batch(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, bft_actions *out);
/* ops->compact: a SNAPSHOT, then a BATCH record for every slot that holds bytes. */
int pbft_compact_records(pbft_state *s, bft_actions *out);
int pbft_restore_record(pbft_state *s, const uint8_t *rec, uint32_t len);

/* ---- pbft_safety.c: the rules that keep replicas agreeing -------------------------------- */

int pbft_on_pre_prepare(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_prepare(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_commit(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_checkpoint(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_view_change(pbft_state *s, uint32_t from, const uint8_t *body, uint32_t len, bft_actions *out);
int pbft_on_new_view(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
/* May this replica sign a vote of `kind` for (view, seq, digest)? Never two digests at one
 * (view, seq). */
int pbft_may_vote(const pbft_mine *m, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]);
/* Cast this replica's PREPARE (backup) for the slot's pre-prepare: persist, record, send. */
int pbft_send_prepare(pbft_state *s, pbft_slot *sl, bft_actions *out);
/* After a NEW-VIEW: vote for a held pre-prepare of the new view (not fixed by the NEW-VIEW). */
int pbft_accept_early(pbft_state *s, pbft_slot *sl, bft_actions *out);
/* Advance a slot: prepared -> send COMMIT; committed-local -> deliver. */
int pbft_progress(pbft_state *s, pbft_slot *sl, bft_actions *out);
int pbft_validate_vc(pbft_state *s, const uint8_t *body, uint32_t len, pbft_vc *vc);
int pbft_compute_o(pbft_state *s, const uint8_t *const *vcs, const uint32_t *lens, uint32_t n,
                   pbft_vc *scratch, pbft_o_set *o);
/* Install an accepted NEW-VIEW (ours or the primary's): watermarks, re-proposals, votes. */
int pbft_install_new_view(pbft_state *s, uint64_t view, const pbft_o_set *o,
                          const uint8_t *const *vcs, const uint32_t *lens, uint32_t n,
                          const uint8_t *o_sigs, bft_actions *out);
int pbft_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                     const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len);
int pbft_build_commit_cert(const pbft_state *s, const pbft_slot *sl, uint8_t *buf, uint32_t cap);

/* Keep the bytes of a batch in the slot unless it must keep the ones it holds; 1 when the slot
 * holds these bytes, 0 when it keeps others, or an error. */
int pbft_take_bytes(pbft_state *s, pbft_slot *sl, const uint8_t *batch, uint32_t blen,
                    const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
/* Does the slot lack the bytes of `digest`, need them (a digest of its pre-prepare, commit
 * certificate, held early pre-prepare or prepared certificate, seq not yet delivered, not the
 * null batch), and may it take them? */
int pbft_bytes_wanted(const pbft_state *s, const pbft_slot *sl, const uint8_t digest[BFT_DIGEST_LEN]);
/* The slot's bytes are those of digest and we voted for them in `view`. */
void pbft_bytes_vote(pbft_slot *sl, uint64_t view, const uint8_t digest[BFT_DIGEST_LEN]);

/* ---- pbft_fetch.c: fetching a batch by digest --------------------------------------------- */

/* Ask for the bytes every slot lacks (retry: the ask timer fired, so ask the next replicas). */
int pbft_ask_batches(pbft_state *s, int retry, bft_actions *out);
int pbft_ask_slot(pbft_state *s, pbft_slot *sl, int retry, bft_actions *out);
int pbft_arm_ask(pbft_state *s, bft_actions *out);
int pbft_on_batch_get(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_batch_msg(pbft_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int pbft_on_answer_timer(pbft_state *s, uint64_t tag);

/* ---- pbft_liveness.c: timers, primary, view-change triggers, catch-up ---------------------- */

uint32_t pbft_primary(const pbft_state *s, uint64_t view);
int pbft_is_primary(const pbft_state *s);
int pbft_maybe_pull(pbft_state *s, bft_actions *out);
int pbft_on_batch(pbft_state *s, const uint8_t *batch, uint32_t len, bft_actions *out);
int pbft_on_request(pbft_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
int pbft_on_timer(pbft_state *s, uint32_t id, uint64_t tag, bft_actions *out);
int pbft_on_sync(pbft_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
                 uint32_t cert_len, bft_actions *out);
void pbft_requests_done(pbft_state *s, const uint8_t *batch, uint32_t len);
int pbft_after_delivery(pbft_state *s, bft_actions *out);
int pbft_start_view_change(pbft_state *s, uint64_t view, bft_actions *out);
int pbft_send_view_change(pbft_state *s, bft_actions *out);
int pbft_vc_joined(pbft_state *s, uint32_t from, bft_actions *out);
int pbft_send_new_view(pbft_state *s, uint32_t to_or_all, bft_actions *out);
int pbft_entered_view(pbft_state *s, bft_actions *out);
void pbft_need_fetch(pbft_state *s, uint64_t target, uint64_t mask, bft_actions *out);
int pbft_fetch_kick(pbft_state *s, bft_actions *out);
int pbft_arm_kick(pbft_state *s, bft_actions *out);
int pbft_arm_retransmit(pbft_state *s, bft_actions *out);

/* ---- small helpers ------------------------------------------------------------------------ */

static inline const char *pbft_tag(uint8_t kind) {
  switch (kind) {
    case PBFT_MSG_PRE_PREPARE: return PBFT_TAG_PRE_PREPARE;
    case PBFT_MSG_PREPARE: return PBFT_TAG_PREPARE;
    case PBFT_MSG_COMMIT: return PBFT_TAG_COMMIT;
    case PBFT_MSG_CHECKPOINT: return PBFT_TAG_CHECKPOINT;
    case PBFT_MSG_VIEW_CHANGE: return PBFT_TAG_VIEW_CHANGE;
    case PBFT_MSG_NEW_VIEW: return PBFT_TAG_NEW_VIEW;
    case PBFT_MSG_BATCH_GET: return PBFT_TAG_BATCH_GET;
    case PBFT_MSG_BATCH: return PBFT_TAG_BATCH;
    default: return NULL;
  }
}

/* Seal the payload in buf (len bytes, cap >= len + 64: the signature goes in place) under the
 * kind's tag, then send it to `to`, or broadcast when to == PBFT_ALL. */
int pbft_emit(pbft_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to,
              bft_actions *out);
/* Half the base timeout (at least 1 ms): the retransmit and ask timers. */
static inline uint64_t pbft_half_timeout(const pbft_state *s) {
  return s->cfg.timeout_ms / 2 ? s->cfg.timeout_ms / 2 : 1;
}
/* Count a rejection and return rc. */
int pbft_reject(pbft_state *s, int rc);

#define PBFT_ALL UINT32_MAX
#define PBFT_TRY(x)        \
  do {                     \
    int rc_ = (x);         \
    if (rc_ < 0) return rc_; \
  } while (0)

/* chain := BLAKE2b(chain || digest), the history digest checkpoints sign */
void pbft_chain_step(uint8_t chain[BFT_DIGEST_LEN], const uint8_t digest[BFT_DIGEST_LEN]);

#endif
