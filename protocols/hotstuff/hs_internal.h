/* HotStuff engine internals shared by its .c files: limits, the one fixed-size state struct,
 * decoded messages and the functions each file offers the others. Not for use outside
 * protocols/hotstuff (tests use hotstuff.h and the engine interface). */
#ifndef BFT_HS_INTERNAL_H
#define BFT_HS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocols/hotstuff/hotstuff.h"
#include "protocols/ledger.h"
#include "protocols/pending.h"
#include "protocols/quorum.h"
#include "protocols/request.h"
#include "protocols/wire/wire.h"

/* ---- limits ------------------------------------------------------------------------------ */

#define HS_MAX_BLOCKS 64        /* block tree: uncommitted blocks held (plus forks) */
#define HS_MAX_AHEAD 40         /* never vote for a block more than this above our committed head */
#define HS_CERT_MAX_HEADERS 48  /* headers in one commit certificate */
#define HS_RING 64              /* recent committed blocks remembered (restart, lock checks) */
#define HS_MAX_WANT 16          /* blocks being fetched at once */
#define HS_WANT_TRIES 8         /* retry rounds for a block or a catch-up before giving up */
#define HS_MAX_BACKOFF 6        /* the view timer doubles at most this many times */
#define HS_PROPOSE_WAIT_MS 2    /* a leader waits this long for a batch before flushing empty */
#define HS_SYNC_GAP 4           /* a QC this far above our head: also FETCH committed blocks */
#define HS_VIEW_AHEAD 100000    /* messages of views further ahead are refused (window) */
#define HS_LEADER_TERM 16       /* consecutive views one leader holds (round robin by terms) */
#define HS_PROP_KEEP 8          /* signed proposals kept (latest (leader, view) pairs) as evidence */

#define HS_STMT_LEN (8 + 8 + BFT_DIGEST_LEN + 4)
#define HS_HEADER_LEN (8 + BFT_DIGEST_LEN + BFT_DIGEST_LEN) /* in a certificate: height implied */
#define HS_QC_ENC_MAX (8 + 8 + BFT_DIGEST_LEN + BFT_QC_SIGS_MAX)
#define HS_CERT_MAX (4 + HS_CERT_MAX_HEADERS * HS_HEADER_LEN + 3 * BFT_QC_SIGS_MAX)
#define HS_BLOCK_MSG_MAX (8 + 8 + BFT_DIGEST_LEN + 8 + BFT_QC_SIGS_MAX + 4 + BFT_MAX_BATCH_BYTES)
#define HS_VOTE_REC_LEN (8 + 8 + BFT_DIGEST_LEN + BFT_SIG_LEN)
#define HS_TMO_MAX (8 + 4 + HS_QC_ENC_MAX + 1 + HS_VOTE_REC_LEN)
#define HS_COMMIT_REC_LEN (1 + 8 + 8 + BFT_DIGEST_LEN)
#define HS_SNAP_MAX (1 + 8 + 1 + HS_VOTE_REC_LEN + 2 * HS_QC_ENC_MAX + 4 + HS_RING * (8 + 8 + BFT_DIGEST_LEN))

_Static_assert(HS_CERT_MAX <= BFT_MAX_CERT_BYTES, "a HotStuff commit certificate fits its limit");
_Static_assert(HS_BLOCK_MSG_MAX + BFT_SIG_LEN <= BFT_MAX_ENGINE_MSG, "a proposal fits a message");
_Static_assert(HS_TMO_MAX + BFT_SIG_LEN <= HS_BLOCK_MSG_MAX, "a TIMEOUT is built in the scratch buffer");
_Static_assert(HS_SNAP_MAX <= HS_BLOCK_MSG_MAX, "a snapshot is built in the scratch buffer");
_Static_assert(HS_CERT_MAX_HEADERS >= HS_MAX_AHEAD + 3, "a certificate reaches over the whole pipeline");
_Static_assert(HS_MAX_BLOCKS > HS_MAX_AHEAD + 3, "the tree holds the whole pipeline");
_Static_assert(HS_RING >= HS_MAX_AHEAD, "the ring covers what one commit delivers");
_Static_assert(HS_CERT_MAX_HEADERS * (BFT_MAX_BATCH_BYTES + HS_CERT_MAX + 2 * HS_COMMIT_REC_LEN) +
                       3 * (HS_BLOCK_MSG_MAX + BFT_SIG_LEN) <
                   BFT_ACTION_ARENA,
               "a step that delivers a whole pipeline and proposes fits the action arena");
_Static_assert(BFT_MAX_TIMERS > HS_TIMER_SHARE, "timer ids fit");
_Static_assert(HS_MAX_BACKOFF < 32, "back-off shifts stay small");

/* ---- state ------------------------------------------------------------------------------- */

typedef struct hs_qc { /* a quorum certificate for (view, height, hash) */
  uint64_t view, height;
  uint8_t hash[BFT_DIGEST_LEN];
  bft_qc sigs; /* count 0: the genesis QC */
} hs_qc;

typedef struct hs_block { /* one slot of the block tree */
  uint8_t used;
  uint8_t connected; /* its ancestry reaches the committed root */
  uint8_t certified; /* qc holds a QC for this block */
  uint8_t checked;   /* env->check_batch ran: batch_ok holds its verdict */
  uint8_t batch_ok;
  uint64_t view, height;
  uint8_t parent[BFT_DIGEST_LEN];
  uint8_t batch_digest[BFT_DIGEST_LEN];
  uint8_t hash[BFT_DIGEST_LEN];
  uint64_t jview;    /* justify: QC for (jview, height-1, parent) */
  bft_qc jsigs;
  bft_qc qc;         /* a QC for this block (valid when certified) */
  uint32_t batch_len;
  uint32_t batch_count; /* requests in the batch */
  uint32_t src;         /* replica it came from (asked first for its ancestors) */
  uint8_t batch[BFT_MAX_BATCH_BYTES];
} hs_block;

typedef struct hs_want { /* a block we lack and ask peers for */
  uint8_t used;
  uint8_t hash[BFT_DIGEST_LEN];
  uint64_t height;
  uint32_t hint; /* a replica that showed evidence of it */
  uint32_t tries; /* retry rounds so far: given up after HS_WANT_TRIES (asked again on new evidence) */
} hs_want;

typedef struct hs_kept_prop { /* a leader's first signed proposal of a view, for evidence */
  uint8_t used;
  uint8_t reported; /* evidence for (from, view) already emitted */
  uint32_t from;
  uint64_t view;
  uint8_t hash[BFT_DIGEST_LEN]; /* the block it proposes */
  uint32_t len; /* payload and signature */
  uint8_t msg[HS_BLOCK_MSG_MAX + BFT_SIG_LEN];
} hs_kept_prop;

typedef struct hs_counters {
  uint64_t stale, window, digest, cert, other;
} hs_counters;

typedef struct hs_state {
  bft_engine_config cfg;
  bft_engine_env env;
  uint32_t q; /* 2f+1 */
  int started;
  uint8_t genesis[BFT_DIGEST_LEN];

  /* safety state (persisted) */
  uint64_t voted_view; /* highest view we voted (or proposed) in: never vote there again */
  int have_last_vote;  /* our latest vote, repeated in TIMEOUTs so a next leader can form its QC */
  uint64_t lv_view, lv_height;
  uint8_t lv_hash[BFT_DIGEST_LEN];
  uint8_t lv_sig[BFT_SIG_LEN];
  hs_qc locked; /* the two-chain lock */
  hs_qc high;   /* the highest QC known */

  /* committed chain */
  int root_valid; /* the hash of the block at `committed` is known */
  uint64_t committed;
  uint64_t root_view;
  uint8_t root_hash[BFT_DIGEST_LEN];
  uint64_t delivered_max; /* highest height ever delivered (persisted; survives restarts) */
  int head_hint;          /* the driver's ledger head block (cfg.head_cert at init): its view and hash */
  uint64_t head_hint_view;
  uint8_t head_hint_hash[BFT_DIGEST_LEN];
  uint64_t last_payload;  /* height of the last delivered block that held requests */
  uint64_t ring_height[HS_RING]; /* ring_*[h % HS_RING]: committed block at height h */
  uint64_t ring_view[HS_RING];
  uint8_t ring_hash[HS_RING][BFT_DIGEST_LEN];

  /* pacemaker */
  uint64_t view;
  uint64_t epoch;        /* pull epoch: bumped when a view is entered without a QC */
  uint64_t view_changes; /* views entered because of timeouts */
  uint64_t equivocations;
  int by_tc;             /* this view was entered on 2f+1 TIMEOUTs (the leader may propose) */
  int timed_out;         /* we sent TIMEOUT for `view` */
  uint32_t backoff;
  uint64_t view_tag;
  int view_armed;
  uint64_t tmo[BFT_MAX_REPLICAS]; /* highest view each replica gave up on (0: none) */
  int pulled;
  int pull_later;        /* the view was entered on timeouts: pull from the propose timer */
  uint64_t prop_tag;
  uint64_t announced; /* highest QC view we broadcast in a TIMEOUT while idle */
  uint64_t share_tag; /* HS_TIMER_SHARE's current tag */
  uint64_t seen_view[BFT_MAX_REPLICAS]; /* latest proposal per leader, for equivocation */
  /* Liveness only: 1 when a view timer of ours expired waiting for this leader (its proposal,
   * or the QC it should have formed from our vote) and no proposal of its came since; views
   * that wait for it get a short timer (hs_pacemaker.c). */
  uint8_t missed[BFT_MAX_REPLICAS];
  /* Liveness only: the answers to a lagging replica's TIMEOUT (hs_on_timeout) are bounded per
   * situation, the situation being its timeout view with our view and high QC: at most
   * HS_ANSWERS_PER_STATE answers until one of those changes. Without the bound two replicas
   * that each see the other behind (a Byzantine pair under one key) answer each other forever. */
  uint64_t ans_tview[BFT_MAX_REPLICAS], ans_view[BFT_MAX_REPLICAS], ans_high[BFT_MAX_REPLICAS];
  uint8_t ans_count[BFT_MAX_REPLICAS];
  uint8_t seen_hash[BFT_MAX_REPLICAS][BFT_DIGEST_LEN];
  hs_kept_prop kept[HS_PROP_KEEP]; /* the latest signed proposals accepted, for evidence */
  uint32_t kept_next;
  int has_cand;          /* a proposal of `cand_view` we may still vote for */
  uint64_t cand_view;
  uint8_t cand_hash[BFT_DIGEST_LEN];
  bft_voteset votes;     /* votes sent to us (as next leader) or carried by TIMEOUTs */

  /* requests watched (view timer) */
  bft_pending pend;

  /* fetching */
  hs_want want[HS_MAX_WANT];
  uint64_t sync_target; /* FETCH committed blocks up to here */
  uint64_t sync_from;   /* first seq of the last FETCH, and whom it went to */
  uint32_t sync_peer;
  uint32_t sync_tries;  /* retry rounds without a SYNC delivery */
  uint32_t fetch_rr;    /* round robin of BLOCK_REQ targets */
  uint32_t sync_rr;     /* round robin of FETCH targets (its own: sharing one counter with
                         * BLOCK_REQs made FETCHes visit only every other replica) */
  uint64_t fetch_tag;
  int fetch_armed;

  hs_counters rej;
  hs_block blocks[HS_MAX_BLOCKS];
  uint8_t cert[HS_CERT_MAX];
  uint8_t scratch[HS_BLOCK_MSG_MAX + BFT_SIG_LEN]; /* messages and records being built */
} hs_state;

/* ---- decoded messages (borrowing from the body) --------------------------------------------- */

typedef struct hs_blockmsg {
  uint64_t view, height, jview;
  uint8_t parent[BFT_DIGEST_LEN];
  bft_qc_view jsigs;
  const uint8_t *batch;
  uint32_t batch_len;
} hs_blockmsg;

typedef struct hs_tmomsg {
  uint64_t view;
  uint32_t replica;
  uint64_t qc_view, qc_height;
  uint8_t qc_hash[BFT_DIGEST_LEN];
  bft_qc_view qc_sigs;
  int has_vote;
  uint64_t v_view, v_height;
  uint8_t v_hash[BFT_DIGEST_LEN];
  const uint8_t *v_sig;
} hs_tmomsg;

/* ---- hs_codec.c ----------------------------------------------------------------------------- */

void hs_block_hash(uint64_t view, uint64_t height, const uint8_t parent[BFT_DIGEST_LEN],
                   const uint8_t batch_digest[BFT_DIGEST_LEN], uint8_t out[BFT_DIGEST_LEN]);
void hs_genesis_hash(const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t out[BFT_DIGEST_LEN]);
/* The statement body (no signer): u64 view | u64 height | hash. */
void hs_vote_body(uint8_t out[HS_STMT_LEN - 4], uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN]);
int hs_decode_block(const uint8_t *p, uint32_t len, hs_blockmsg *b);
/* Encode block slot b as a PROPOSAL/BLOCK payload; returns the length or BFT_E_FULL. */
int hs_encode_block(const hs_block *b, uint8_t *buf, uint32_t cap);
/* HS_REC_BLOCK for b (before our vote for it leaves). */
int hs_persist_block(hs_state *s, const hs_block *b, bft_actions *out);
int hs_decode_tmo(const uint8_t *p, uint32_t len, hs_tmomsg *t);
void hs_put_qc(wire_writer *w, const hs_qc *qc);
void hs_get_qc(wire_reader *r, hs_qc *qc);
/* Verify a QC for (view, height, hash) (genesis needs no signatures). 0 or BFT_E_BAD_CERT. */
int hs_qc_check(const bft_engine_config *cfg, const bft_engine_env *env, const uint8_t genesis[BFT_DIGEST_LEN],
                uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN], const bft_qc *sigs);
int hs_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                   const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len);
/* The header of the certified block (first header) of a certificate that verified. */
int hs_cert_first(const uint8_t *cert, uint32_t len, uint64_t *view, uint8_t parent[BFT_DIGEST_LEN],
                  uint8_t batch_digest[BFT_DIGEST_LEN]);
/* Records. */
int hs_persist_vote(hs_state *s, bft_actions *out);
int hs_persist_qc(hs_state *s, uint8_t type, const hs_qc *qc, bft_actions *out);
int hs_persist_commit(hs_state *s, uint64_t height, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN],
                      bft_actions *out);
int hs_compact_records(hs_state *s, bft_actions *out);
int hs_restore_record(hs_state *s, const uint8_t *rec, uint32_t len);
/* Remember the committed block at height (also raises delivered_max). */
void hs_ring_put(hs_state *s, uint64_t height, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN]);

/* ---- hs_tree.c: the block tree -------------------------------------------------------------- */

hs_block *hs_find(hs_state *s, const uint8_t hash[BFT_DIGEST_LEN]);
/* Insert a verified block (justify QC checked); returns the slot or NULL (stale, tree full). */
hs_block *hs_insert(hs_state *s, const hs_blockmsg *m, const bft_qc *jsigs, const uint8_t hash[BFT_DIGEST_LEN],
                    uint32_t src, bft_actions *out);
/* Parent slot of b (NULL when absent or b's parent is the committed root). */
hs_block *hs_parent(hs_state *s, const hs_block *b);
/* 1 when the block (view, height, hash) lies on the chain of b (b itself or an ancestor);
 * unknown (pruned or missing) ancestry answers 0. */
int hs_extends(hs_state *s, const hs_block *b, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN]);
/* Recompute connectivity and certification, drop what lies at or below the committed root. */
void hs_tree_refresh(hs_state *s);
/* Leader: the pipeline must move on (uncommitted requests in the high QC's chain, or a commit
 * the others learn only from the next block). */
int hs_flush_needed(hs_state *s);
/* The view timer must run: requests pending, or uncommitted requests in the high chain. */
int hs_work_pending(hs_state *s);
/* Ask peers for a block (hint: a replica that has it, or UINT32_MAX). */
int hs_want_block(hs_state *s, const uint8_t hash[BFT_DIGEST_LEN], uint64_t height, uint32_t hint, bft_actions *out);
int hs_fetch_kick(hs_state *s, bft_actions *out);
int hs_need_sync(hs_state *s, uint64_t target, uint32_t hint, bft_actions *out);
/* After a SYNC delivery: ask for the next run of blocks once the last reply is used up. */
int hs_sync_more(hs_state *s, bft_actions *out);
int hs_on_block_req(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int hs_on_block(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);

/* ---- hs_safety.c: vote, lock and commit rules ------------------------------------------------ */

int hs_on_proposal(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int hs_on_vote(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
/* Check a QC carried by a message. When we already hold a QC for the same statement, *sigs
 * is replaced by our (verified) copy and nothing is verified; so stored QCs are always valid. */
int hs_check_qc(hs_state *s, uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN], bft_qc *sigs);
/* A verified QC: raise the high QC, certify its block, lock, commit, and (enter != 0) enter
 * the next view. */
int hs_on_qc(hs_state *s, const hs_qc *qc, uint32_t hint, int enter, bft_actions *out);
/* Record a verified vote (ours, or carried by a message) and form a QC on 2f+1; enter as for
 * hs_on_qc (votes carried by TIMEOUTs leave the view to the pacemaker). */
int hs_add_vote(hs_state *s, uint32_t replica, uint64_t view, uint64_t height, const uint8_t hash[BFT_DIGEST_LEN],
                const uint8_t sig[BFT_SIG_LEN], int enter, bft_actions *out);
/* Apply lock and commit rules for every certified connected block; deliver; vote if we can. */
int hs_settle(hs_state *s, bft_actions *out);
/* Vote for the held candidate proposal when every rule allows it. */
int hs_try_vote(hs_state *s, bft_actions *out);
/* Sign, persist and send our vote for block b (the caller checked the rules). */
int hs_cast_vote(hs_state *s, hs_block *b, bft_actions *out);
int hs_safe_node(hs_state *s, const hs_block *b);
int hs_on_sync(hs_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert, uint32_t cert_len,
               bft_actions *out);
int hs_deliver(hs_state *s, uint64_t seq, const uint8_t *batch, uint32_t len, const uint8_t *cert,
               uint32_t cert_len, uint64_t view, const uint8_t hash[BFT_DIGEST_LEN], bft_actions *out);

/* ---- hs_pacemaker.c: views, leaders, timers, proposing ---------------------------------------- */

uint32_t hs_leader(const hs_state *s, uint64_t view);
int hs_enter_view(hs_state *s, uint64_t view, int by_qc, bft_actions *out);
int hs_on_timeout(hs_state *s, uint32_t from, const uint8_t *p, uint32_t len, bft_actions *out);
int hs_on_timer(hs_state *s, uint32_t id, uint64_t tag, bft_actions *out);
int hs_on_request(hs_state *s, const uint8_t digest[BFT_DIGEST_LEN], bft_actions *out);
int hs_on_batch(hs_state *s, const uint8_t *batch, uint32_t len, bft_actions *out);
int hs_maybe_propose(hs_state *s, bft_actions *out);
/* Arm or cancel the view timer after the work pending changed. */
int hs_update_timer(hs_state *s, bft_actions *out);
void hs_requests_done(hs_state *s, const uint8_t *batch, uint32_t len);
int hs_after_delivery(hs_state *s, bft_actions *out);

/* ---- small helpers ------------------------------------------------------------------------ */

static inline const char *hs_tag(uint8_t kind) {
  switch (kind) {
    case HS_MSG_PROPOSAL: return HS_TAG_PROPOSAL;
    case HS_MSG_VOTE: return HS_TAG_VOTE;
    case HS_MSG_TIMEOUT: return HS_TAG_TIMEOUT;
    case HS_MSG_BLOCK_REQ: return HS_TAG_BLOCK_REQ;
    case HS_MSG_BLOCK: return HS_TAG_BLOCK;
    default: return NULL;
  }
}

#define HS_ALL UINT32_MAX
/* Seal payload in buf (cap >= len + 64) under kind's tag; send to `to` or broadcast (HS_ALL). */
int hs_emit(hs_state *s, uint8_t kind, uint8_t *buf, uint32_t len, uint32_t cap, uint32_t to, bft_actions *out);
int hs_reject(hs_state *s, int rc);
void hs_qc_genesis(hs_state *s, hs_qc *qc);

#define HS_TRY(x)            \
  do {                       \
    int rc_ = (x);           \
    if (rc_ < 0) return rc_; \
  } while (0)

#endif
