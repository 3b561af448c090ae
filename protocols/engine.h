/* The one interface every consensus engine implements (PBFT, chained HotStuff, Tendermint).
 * An engine is a pure, deterministic state machine in the style of etcd's raft: it is stepped
 * with events and answers with actions as data, which its driver (the libuv runtime in
 * replica/, or the simulator in tests/sim) carries out. Engines touch no socket, clock, file,
 * allocator or random source; they sign and verify only through the driver's env.
 *
 * Contract between engine and driver
 * ----------------------------------
 * - State: the driver allocates ops->state_size bytes once, never moves them, calls init,
 *   then restore() once per persisted record in the order they were persisted, then start().
 *   All engine state lives there, with fixed capacities from protocols/limits.h.
 * - Messages: every engine message body is `payload || sig[64]`, where sig is the sender's
 *   signature (bft_sign, tag ops->msg_tag(kind), the cluster id) over payload. The driver
 *   checks it with bft_engine_check_message() before stepping BFT_EV_MESSAGE, so `from` is
 *   authentic; the engine still validates content and any nested certificates. A vote's
 *   payload *is* the statement a certificate is made of, so 2f+1 (replica, sig) pairs taken
 *   from vote messages form a certificate that anyone holding the public keys can check.
 * - SEND goes to one replica; BROADCAST goes to every replica except the sender. An engine
 *   processes its own votes itself (no loopback through the network).
 * - PERSIST: the record must be durable before any SEND/BROADCAST that follows it in the same
 *   action list, or in any later one, leaves the replica (persist before you speak). A driver
 *   replays records through restore() after a crash; a restarted engine must never sign a
 *   statement that conflicts with one it signed before.
 * - TIMER_SET (id < BFT_MAX_TIMERS, tag, delay_ms) replaces any armed timer with the same id;
 *   TIMER_CANCEL disarms it. When it fires the driver steps BFT_EV_TIMER with id and tag; the
 *   engine ignores a fire whose tag is stale. Drivers may add up to +10% seeded jitter.
 * - PROPOSE_PULL (max_requests): "I am ready to propose". If the driver's request pool holds
 *   requests not yet committed nor handed out in this pull epoch, it steps BFT_EV_BATCH at once
 *   with up to max_requests of them (encoded as in protocols/request.h); otherwise it does
 *   nothing and the engine pulls again on its next BFT_EV_REQUEST. A pull epoch ends whenever
 *   status().epoch changes (a new leader must be able to re-propose what an old one dropped).
 * - INFLIGHT (batch): the engine accepted a proposal carrying these requests (chained HotStuff's
 *   pipelined blocks of other leaders); the driver does not hand them out again in this pull
 *   epoch, so the next leader does not propose them a second time. Purely an optimisation:
 *   execution skips repeats anyway. Marks (and pulls) also expire per status().repropose_after.
 * - EVIDENCE (to = offender, kind, data = u32 len1 | body1 | u32 len2 | body2): two engine
 *   messages of one kind, each `payload || sig` signed by replica `to`, that no correct replica
 *   would both send (a second vote for another digest in the same view/round, a second
 *   proposal for one slot). Anyone with the cluster file can check both signatures. The driver
 *   keeps it (bounded), logs it once per offender and view and counts it.
 *   Requests leave the pool when a committed batch containing them is executed. A batch may
 *   thus repeat requests already in flight after a leader change: execution skips a (client,
 *   seq) it has already executed, identically on every replica.
 * - BFT_EV_REQUEST tells the engine that a valid new request entered the pool (so a leader
 *   can pull and a backup can watch for a stalled leader).
 * - Batches proposed by others are checked with env->check_batch before the engine votes.
 * - COMMIT delivers committed batches strictly in sequence order 1, 2, 3, ... with no gap,
 *   each exactly once, with the digest of the batch and a certificate that
 *   ops->verify_certificate accepts. An engine may deliver an empty batch (PBFT null request).
 * - FETCH (to, seq): the engine is behind (it saw proof that batches up to some seq committed
 *   but has not got them); the driver asks replica `to` for committed batches from `seq` on,
 *   checks each certificate with verify_certificate and steps BFT_EV_SYNC for each in order.
 *   The engine answers a SYNC for seq committed+1 with a COMMIT action for it, exactly as for
 *   a batch it committed itself (one delivery path), and ignores any other seq.
 * - Restart: cfg.committed is the highest seq the driver has already executed durably (its
 *   ledger head); the engine's next COMMIT is committed+1.
 *
 * How the three engines map onto it
 * ---------------------------------
 * - PBFT: seq = PBFT sequence number; the primary pulls and pipelines pre-prepares inside the
 *   watermarks; PREPARE/COMMIT are votes; the commit certificate is 2f+1 signed COMMITs for
 *   (view, seq, digest); checkpoints every K are votes too; view change on the request timer
 *   (timer 0) with doubling view-change timeout (timer 1).
 * - Chained HotStuff: seq = position of the block in the committed chain; each block carries
 *   its parent link and the highest QC; votes are SENDs to the next leader; a three-chain
 *   delivers the ancestors in order, each with the QC that certifies its child chain; the
 *   pacemaker is a view timer.
 * - Tendermint: seq = height; propose/prevote/precommit are messages, the commit certificate
 *   is 2f+1 precommits for (height, round, digest); locked/valid values are PERSISTed with
 *   every vote; round timeouts grow linearly with the round (timer per step).
 */
#ifndef BFT_ENGINE_H
#define BFT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/bft_crypto.h"
#include "protocols/limits.h"

/* ---- configuration and services -------------------------------------------------------- */

typedef struct bft_engine_config {
  uint32_t n, f;          /* replicas; f = (n-1)/3 */
  uint32_t self;          /* this replica's id, 0..n-1 */
  uint8_t cluster_id[BFT_CLUSTER_ID_LEN];
  uint8_t pubkeys[BFT_MAX_REPLICAS][BFT_PK_LEN];
  uint32_t batch_max;           /* requests per proposed batch, 1..BFT_MAX_BATCH_REQUESTS (all) */
  /* PBFT: log size L (high - low watermark), 2..BFT_MAX_WINDOW. HotStuff, Tendermint: unused
   * (their pipelines are fixed by the protocol: three views, one height). */
  uint32_t window;
  /* PBFT: checkpoint interval K (window a multiple of K, >= 2K). Others: unused. */
  uint32_t checkpoint_interval;
  /* PBFT: batches the primary has proposed and not yet delivered, at most (1..window; 0: the
   * window). Below it a partial batch is proposed at once; at it the primary waits for a
   * delivery, so batches grow under load instead of the pipeline filling with small ones.
   * HotStuff, Tendermint: unused (their pipelines are fixed by the protocol). */
  uint32_t pipeline;
  /* Base timeout: PBFT request timer (the view-change timer doubles from it); HotStuff view
   * timer (doubles per consecutive timeout); Tendermint timeoutPropose(0), with prevote and
   * precommit timeouts a fraction of it, each growing linearly with the round. */
  uint32_t timeout_ms;
  uint64_t committed;           /* ledger head already executed by the driver (0 = fresh) */
  /* What the driver's ledger says about its last blocks, for init() only (the pointers are not
   * valid afterwards; an engine keeps what it needs): the batch digests of blocks
   * committed-head_count+1 .. committed, and the commit certificate of block `committed`.
   * A driver makes its ledger durable before its WAL, so after a crash the engine's records
   * may lag the ledger by the blocks of one group commit; these let it resume there. */
  const uint8_t (*head_digests)[BFT_DIGEST_LEN];
  uint32_t head_count;
  const uint8_t *head_cert;
  uint32_t head_cert_len;
} bft_engine_config;

/* Fill a config with the defaults (batch 64, window 32, K 8, timeout 1000 ms) for n, self. */
void bft_engine_config_defaults(bft_engine_config *cfg, uint32_t n, uint32_t self);
/* 0 or BFT_E_INVAL when a field is out of its limits. */
int bft_engine_config_check(const bft_engine_config *cfg);

/* Services the driver lends the engine: deterministic functions only. */
typedef struct bft_engine_env {
  void *ctx;
  /* Sign payload as this replica under tag (domain separation and cluster id added). */
  void (*sign)(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]);
  /* 0 if sig is replica `signer`'s signature of msg under tag, else BFT_E_BAD_SIG. */
  int (*verify)(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                const uint8_t sig[BFT_SIG_LEN]);
  /* 0 if batch is well-formed and every request in it is signed by a permitted client;
   * otherwise a negative BFT_E* code. Used by backups before voting for a proposal. */
  int (*check_batch)(void *ctx, const uint8_t *batch, uint32_t len);
} bft_engine_env;

/* ---- events ------------------------------------------------------------------------------ */

enum bft_event_type {
  BFT_EV_MESSAGE = 1, /* a signature-checked engine message from replica `from` */
  BFT_EV_TIMER,       /* a timer the engine armed has fired */
  BFT_EV_REQUEST,     /* a valid new client request entered the pool */
  BFT_EV_BATCH,       /* answer to PROPOSE_PULL: a batch to propose */
  BFT_EV_SYNC         /* a committed batch fetched from a peer; certificate already verified */
};

typedef struct bft_event { /* everything borrowed until step() returns */
  int type;
  union {
    struct {
      uint32_t from;
      uint8_t kind;        /* engine message kind, 1..63 */
      const uint8_t *body; /* payload || sig */
      uint32_t len;
    } msg;
    struct {
      uint32_t id;
      uint64_t tag;
    } timer;
    struct {
      uint8_t digest[BFT_DIGEST_LEN];
    } request;
    struct {
      const uint8_t *data; /* encoded batch (protocols/request.h) */
      uint32_t len;
      uint32_t count;
    } batch;
    struct {
      uint64_t seq;
      const uint8_t *batch;
      uint32_t batch_len;
      const uint8_t *cert;
      uint32_t cert_len;
    } sync;
  } u;
} bft_event;

/* ---- actions ----------------------------------------------------------------------------- */

enum bft_action_type {
  BFT_ACT_SEND = 1,
  BFT_ACT_BROADCAST,
  BFT_ACT_TIMER_SET,
  BFT_ACT_TIMER_CANCEL,
  BFT_ACT_PERSIST,
  BFT_ACT_PROPOSE_PULL,
  BFT_ACT_COMMIT,
  BFT_ACT_FETCH,
  BFT_ACT_INFLIGHT,
  BFT_ACT_EVIDENCE
};

typedef struct bft_action { /* data and cert point into the actions' arena */
  uint8_t type;
  uint8_t kind;            /* SEND/BROADCAST: engine message kind */
  uint32_t to;             /* SEND, FETCH: replica id; EVIDENCE: the offender */
  uint32_t timer_id;       /* TIMER_SET/CANCEL */
  uint64_t timer_tag;      /* TIMER_SET */
  uint64_t delay_ms;       /* TIMER_SET */
  uint32_t max_requests;   /* PROPOSE_PULL */
  uint64_t seq;            /* COMMIT, FETCH */
  uint8_t digest[BFT_DIGEST_LEN]; /* COMMIT: digest of the batch */
  const uint8_t *data;     /* SEND/BROADCAST: body; PERSIST: record; COMMIT, INFLIGHT: batch */
  uint32_t len;
  const uint8_t *cert;     /* COMMIT: commit certificate */
  uint32_t cert_len;
} bft_action;

/* A bounded action list whose bytes live in a caller-owned arena. When it overflows the
 * push fails and `overflow` is set; the driver treats that as a broken invariant. */
typedef struct bft_actions {
  bft_action *items;
  uint32_t count, cap;
  uint8_t *arena;
  uint32_t used, arena_cap;
  int overflow;
} bft_actions;

void bft_actions_init(bft_actions *a, bft_action *items, uint32_t cap, uint8_t *arena, uint32_t arena_cap);
void bft_actions_reset(bft_actions *a);
/* Space in the arena (NULL and overflow set when full). */
uint8_t *bft_actions_alloc(bft_actions *a, uint32_t len);
/* Each helper copies its bytes into the arena; returns 0 or BFT_E_FULL. */
int bft_act_send(bft_actions *a, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len);
int bft_act_broadcast(bft_actions *a, uint8_t kind, const uint8_t *body, uint32_t len);
int bft_act_timer_set(bft_actions *a, uint32_t id, uint64_t tag, uint64_t delay_ms);
int bft_act_timer_cancel(bft_actions *a, uint32_t id);
int bft_act_persist(bft_actions *a, const uint8_t *rec, uint32_t len);
int bft_act_pull(bft_actions *a, uint32_t max_requests);
int bft_act_commit(bft_actions *a, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                   const uint8_t *batch, uint32_t len, const uint8_t *cert, uint32_t cert_len);
int bft_act_fetch(bft_actions *a, uint32_t to, uint64_t seq);
int bft_act_inflight(bft_actions *a, const uint8_t *batch, uint32_t len);
int bft_act_evidence(bft_actions *a, uint32_t offender, uint8_t kind, const uint8_t *body1, uint32_t len1,
                     const uint8_t *body2, uint32_t len2);

/* ---- the engine -------------------------------------------------------------------------- */

/* What an engine message is for, independent of the protocol. */
enum bft_msg_class {
  BFT_MSGC_OTHER = 0,
  BFT_MSGC_PROPOSAL, /* carries a proposed batch/block (PRE-PREPARE, HotStuff PROPOSAL, Tendermint PROPOSAL) */
  BFT_MSGC_VOTE,     /* a signed vote (PREPARE, COMMIT, CHECKPOINT, HotStuff VOTE, PREVOTE, PRECOMMIT) */
  BFT_MSGC_VIEW,     /* leader/round change (VIEW-CHANGE, NEW-VIEW, HotStuff NEW-VIEW/TIMEOUT) */
  BFT_MSGC_DATA      /* bytes sent because a peer lacks them (block/batch fetch replies) */
};

typedef struct bft_engine_status {
  uint64_t view;        /* PBFT view; HotStuff view; Tendermint round (of `height`) */
  uint64_t height;      /* Tendermint height being decided; PBFT, HotStuff: committed + 1 */
  uint64_t epoch;       /* pull epoch (see PROPOSE_PULL): PBFT view; HotStuff: bumped by a
                         * view timeout; Tendermint: bumped by every new (height, round) */
  uint32_t leader;      /* replica id this engine currently follows */
  uint64_t committed;   /* highest seq delivered */
  uint64_t stable;      /* highest seq below which state was discarded (checkpoint) */
  int changing_view;    /* 1 while a view change / round change is in progress */
  uint64_t view_changes;  /* views/rounds left because of a timeout (not normal rotation) */
  /* A request handed out by a pull (or marked INFLIGHT) that has not executed once the ledger
   * grew by this many blocks since is offered again: its block was abandoned without an epoch
   * change (chained HotStuff forks). 0: only a new epoch offers it again (PBFT, Tendermint). */
  uint32_t repropose_after;
  uint64_t equivocations; /* conflicting signed statements by one replica detected so far */
  /* rejected-input counters, by reason */
  uint64_t rejected_stale, rejected_window, rejected_digest, rejected_cert, rejected_other;
} bft_engine_status;

typedef struct bft_engine_ops {
  const char *name; /* "pbft", "hotstuff", "tendermint" */
  size_t state_size;
  uint32_t max_replicas; /* largest n this engine runs (<= BFT_MAX_REPLICAS); init refuses more */
  int (*init)(void *state, const bft_engine_config *cfg, const bft_engine_env *env);
  int (*restore)(void *state, const uint8_t *rec, uint32_t len);
  int (*start)(void *state, bft_actions *out);
  /* Signature tag of message kind (1..63), or NULL for a kind this engine does not know. */
  const char *(*msg_tag)(uint8_t kind);
  /* Short name ("prepare", "vote", "prevote") and class (enum bft_msg_class) of a kind, for
   * metrics, logs and the fault plans of the simulator and --byzantine (e.g. `withhold` drops
   * BFT_MSGC_DATA). NULL / BFT_MSGC_OTHER for an unknown kind. */
  const char *(*msg_name)(uint8_t kind);
  int (*msg_class)(uint8_t kind);
  /* 0, or a negative BFT_E* when the event was rejected (state unchanged, counted). */
  int (*step)(void *state, const bft_event *ev, bft_actions *out);
  /* Check a commit certificate for (seq, digest) using only the config's public keys. */
  int (*verify_certificate)(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                            const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len);
  void (*status)(const void *state, bft_engine_status *st);
  /* Optional (NULL when unsupported): emit PERSIST actions only, records that, replayed through
   * restore() into a freshly initialised engine (cfg.committed >= this engine's committed),
   * restore every promise the engine persisted so far. A driver uses it to replace its WAL with
   * a compact one once the WAL grows past a bound; without it the WAL is never compacted. */
  int (*compact)(void *state, bft_actions *out);
} bft_engine_ops;

/* Engine by name, or NULL. */
const bft_engine_ops *bft_engine_find(const char *name);
/* Names of all engines, comma separated, for --help. */
const char *bft_engine_names(void);

/* Check the outer signature of an engine message: body = payload || sig by `from` under
 * ops->msg_tag(kind). Cheap checks first (sender range, kind, length). */
int bft_engine_check_message(const bft_engine_ops *ops, const bft_engine_config *cfg,
                             const bft_engine_env *env, uint32_t from, uint8_t kind,
                             const uint8_t *body, uint32_t len);
/* Build `payload || sig` in dst (cap bytes) by signing payload through env; returns the
 * total length or BFT_E_FULL. */
int bft_engine_seal(const bft_engine_env *env, const char *tag, const uint8_t *payload,
                    uint32_t len, uint8_t *dst, uint32_t cap);

#endif
