/* The replica runtime's core: drives one consensus engine through protocols/engine.h and owns
 * everything around it that is not I/O glue — request pool, signature cache, client sessions
 * and reply cache, application, ledger, WAL, state transfer. Sockets, clocks and timers are
 * reached only through rt_io, so tests (and a simulator) can run the real core; the libuv glue
 * lives in replica.c/net.c.
 *
 * Ordering contract with the glue: everything handed to io->send/broadcast/replied must be
 * held back until the next rt_core_sync() has returned 0 (persist before you speak); the glue
 * calls rt_core_sync once per loop iteration and then writes what it queued. */
#ifndef RT_CORE_H
#define RT_CORE_H

#include <stdint.h>

#include "protocols/engine.h"
#include "protocols/request.h"
#include "replica/attest.h"
#include "replica/kv_app.h"
#include "replica/ledger_store.h"
#include "replica/log.h"
#include "replica/pool.h"
#include "replica/sessions.h"
#include "replica/vcache.h"
#include "replica/vpool.h"
#include "replica/wal.h"

typedef struct rt_io {
  void *ctx;
  /* Queue a frame of wire kind `kind` for replica `to` (never self). */
  void (*send)(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len);
  /* Queue a frame for every other replica. */
  void (*broadcast)(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len);
  /* Arm (replacing) or disarm engine timer id; on expiry call rt_core_on_timer(id). */
  void (*timer_set)(void *ctx, uint32_t id, uint64_t delay_ms);
  void (*timer_cancel)(void *ctx, uint32_t id);
  /* A new reply is cached for client index `client` (rt_core_encode_reply builds it). */
  void (*replied)(void *ctx, uint32_t client);
  uint64_t (*now_ms)(void *ctx);
  /* Optional (may be NULL): block b was appended to the ledger (replayed = 1 while the ledger
   * is re-executed at open). For observers: the simulator's checks, metrics. */
  void (*committed)(void *ctx, const bft_block *b, int replayed);
  /* Optional (may be NULL): the application's check() refused client `client`'s request seq;
   * answer it with rt_core_encode_reject(pk, seq, reason). */
  void (*rejected)(void *ctx, uint32_t client, const uint8_t pk[BFT_PK_LEN], uint64_t seq, const char *reason);
} rt_io;

/* The runtime's large scratch buffers (about 25 MiB of address space, little of it touched):
 * an embedder that opens and closes many cores (the simulator, at every restart and seed) may
 * keep one set per core and lend it through rt_core_config; nothing in them outlives a step. */
typedef struct rt_core_bufs {
  bft_action *items;     /* BFT_MAX_ACTIONS */
  uint8_t *arena;        /* BFT_ACTION_ARENA */
  uint8_t *batch_buf;    /* BFT_MAX_BATCH_BYTES */
  uint8_t *block_buf;    /* BFT_MAX_BLOCK_BYTES */
  uint8_t *scratch;      /* WIRE_FRAME_MAX_BODY: FETCH replies being built */
  /* execution scratch, BFT_MAX_BATCH_REQUESTS each */
  bft_app_op *xops;
  bft_app_result *xres;
  uint32_t *xclient;
  uint64_t *xseq;
  uint32_t *xtouched;
  uint8_t *xarena;
} rt_core_bufs;
rt_core_bufs *rt_core_bufs_new(void); /* NULL when out of memory */
void rt_core_bufs_free(rt_core_bufs *b);

/* Who signs and verifies for the core. NULL in rt_core_config means Ed25519 with the replica's
 * key and the cluster file's keys (bft_sign/bft_verify); the simulator lends a fast stand-in. */
#define RT_SIGNER_CLIENT UINT32_MAX
typedef struct rt_crypto {
  void *ctx;
  /* This replica's signature over msg under tag, cluster id bound in. 0, or non-zero when it
   * could not sign (the core then stops: nothing goes out unsigned). */
  int (*sign)(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]);
  /* 0 when sig is the signature of `signer` (a replica id, or RT_SIGNER_CLIENT for the client
   * whose key is pk) over msg under tag; BFT_E_BAD_SIG otherwise. */
  int (*verify)(void *ctx, uint32_t signer, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                uint32_t len, const uint8_t sig[BFT_SIG_LEN]);
} rt_crypto;

typedef struct rt_counters {
  uint64_t msgs_in, msgs_bad_sig, msgs_rejected;     /* engine messages */
  uint64_t req_new, req_dup, req_old, req_retransmit, req_not_permitted, req_bad_sig,
      req_malformed, req_busy, req_forwarded;
  uint64_t pulls, pulled_requests, commits, executed, skipped;
  uint64_t fetch_sent, fetch_served, sync_blocks, sync_rejected, state_mismatch;
  uint64_t persists, syncs, compactions;
  uint64_t half_applied; /* engine steps that returned an error yet emitted actions (a contract bug) */
  uint64_t evidence, evidence_refused; /* equivocation evidence kept / refused as unverifiable */
  uint64_t req_checked, req_app_rejected, queries; /* application check() and query() */
  uint64_t app_skipped_blocks;                  /* ledger blocks the application already held at open */
} rt_counters;

/* Two conflicting signed engine messages from one replica (engine.h, BFT_ACT_EVIDENCE). */
typedef struct rt_evidence {
  uint32_t offender;
  uint8_t kind;    /* engine message kind */
  uint64_t view;   /* our view when it was found */
  uint32_t len;
  uint8_t *data;   /* u32 len1 | body1 | u32 len2 | body2 */
} rt_evidence;

typedef struct rt_core_config {
  const bft_cluster *cluster;
  const bft_keypair *kp;
  uint32_t self;
  const bft_engine_ops *ops;
  const char *data_dir;
  rt_io io;
  const rt_log *log;
  const rt_crypto *crypto;       /* NULL: Ed25519 with kp */
  rt_memfile *wal_mem, *ledger_mem; /* both non-NULL: storage in memory, data_dir unused */
  void *engine_mem;              /* ops->state_size bytes the caller owns, or NULL */
  uint64_t wal_compact_bytes;    /* first compaction threshold; 0: RT_WAL_COMPACT_BYTES */
  /* Optional engine tuning: its non-zero batch_max, window, checkpoint_interval and timeout_ms
   * replace the engine defaults (checked with bft_engine_config_check). */
  const bft_engine_config *tuning;
  rt_core_bufs *bufs;            /* lent scratch buffers, or NULL (the core allocates its own) */
  uint32_t pool_max_requests;    /* request pool bound; 0: RT_POOL_MAX_REQUESTS */
  uint32_t vcache_sets;          /* verified-request cache sets (power of two); 0: RT_VCACHE_SETS */
  /* The replicated application (borrowed; must outlive the core), or NULL for the built-in
   * key-value store (rt_core.kv). */
  const bft_app *app;
  /* 1: sign and exchange state digests after blocks, and stop on divergence (attest.h). */
  int attest_state;
  /* Snapshots (replica/durable.h): every snapshot_every blocks (0: RT_SNAP_EVERY_DEFAULT,
   * UINT32_MAX: none); retain_blocks below the newest certified snapshot kept in the ledger
   * plus one (0: keep every block). In memory mode snapshots need snap_mem and snapcert_mem. */
  uint32_t snapshot_every;
  uint64_t retain_blocks;
  int snapshot_no_transfer;      /* 1: never fetch a snapshot (the simulator checks every block) */
  rt_memfile *snap_mem, *snapcert_mem;
  struct rt_metrics *metrics;    /* optional (replica/metrics.h): phase latencies, batch sizes, fsyncs */
  /* Optional (borrowed; must outlive the core): verify the not yet cached requests of a proposed
   * batch together on these threads. Only with the default crypto (crypto == NULL): the pool
   * checks Ed25519 signatures itself. NULL: one by one on the calling thread (the simulator). */
  rt_vpool *vpool;
} rt_core_config;

struct rt_durable;

/* Requests verified and waiting for the application's check() (run once per loop iteration
 * for all of them: one call, one round trip for an application over a socket). */
#define RT_CHECK_MAX BFT_MAX_BATCH_REQUESTS
typedef struct rt_pending_check {
  uint8_t *bytes;
  uint32_t len, client;
  uint64_t seq;
  uint8_t digest[BFT_DIGEST_LEN];
} rt_pending_check;

typedef struct rt_core {
  const bft_cluster *cluster;
  const bft_keypair *kp;
  uint32_t self;
  const bft_engine_ops *ops;
  void *engine;
  bft_engine_config cfg;
  bft_engine_env env;
  bft_actions acts;
  rt_core_bufs *bufs;
  int own_bufs;
  rt_io io;
  const rt_log *log;
  rt_crypto crypto;
  int own_engine;        /* engine memory allocated here */
  uint64_t compact_min;  /* smallest compaction threshold */

  rt_kv kv;              /* the built-in application, when the config names none */
  bft_app app;
  uint64_t app_height;   /* the application's height when the core opened */
  uint64_t app_skip_to;  /* while replaying the ledger: blocks up to here the app already holds */
  int app_mismatch;      /* the application's state does not match our ledger: restore it */
  rt_pending_check *checks;
  uint32_t nchecks;
  char (*check_reasons)[BFT_APP_MAX_REASON];
  uint8_t *check_verdicts;
  int attest_on;
  rt_attest attest;
  char app_err[480];
  rt_sessions sessions;
  rt_pool pool;
  rt_vcache vcache;
  /* The MAC session with each client of the cluster file, K(self, client), made on first use
   * (bft_session_key; memory only for the clients that use MACs): mac_state[i] 0 not yet,
   * 1 made, 2 the client's key has no X25519 form. */
  bft_session_mac **macs;
  uint8_t *mac_state;
  rt_vpool *vpool;        /* borrowed, or NULL */
  rt_vitem *vitems;       /* with a pool: BFT_MAX_BATCH_REQUESTS signatures of one batch ... */
  uint8_t (*vdigests)[BFT_DIGEST_LEN]; /* ... and their requests' digests */
  rt_ledger ledger;
  rt_wal wal;
  int ledger_open, wal_open;
  uint8_t state_digest[BFT_DIGEST_LEN]; /* after the last executed block */

  uint64_t timer_tags[BFT_MAX_TIMERS];
  uint64_t epoch_view;
  uint32_t repropose_after; /* the engine's status().repropose_after */
  uint32_t pull_pending; /* max_requests of a pull to answer after the current actions */
  int defer_pulls;       /* 1: answer pulls only in rt_core_answer_pulls (end of loop iteration) */
  uint32_t ntouched;     /* clients with a request in the batch being executed */

  int fetch_active;
  uint32_t fetch_peer;
  uint64_t fetch_seq, fetch_at_ms;
  uint64_t wal_compact_at; /* WAL size that triggers the next compaction */

  rt_evidence evidence[RT_EVIDENCE_MAX];
  uint32_t nevidence, evidence_next;
  uint64_t evidence_bytes;
  uint64_t evidence_per[BFT_MAX_REPLICAS];
  uint64_t evidence_logged_view[BFT_MAX_REPLICAS]; /* view + 1 of the last log line per offender */

  struct rt_durable *dur; /* snapshots, certificates, pruning, snapshot transfer */
  uint8_t *hint_digs, *hint_cert; /* cfg.head_* given to the engine's init */
  char data_dir[RT_PATH_MAX];

  uint64_t refetch_head; /* head + 1 at our last FETCH repeated after a reply that brought nothing */
  rt_counters ctr;
  struct rt_metrics *metrics; /* NULL: nothing measured beyond ctr */
  rt_ratelimit rl_msg, rl_req, rl_sync;
  int failed; /* a fatal error happened: the process must stop */
  char fail_msg[640];
} rt_core;

/* Outcome of a client request handed to rt_core_submit. */
enum rt_submit_outcome {
  RT_SUBMIT_NEW = 0,        /* entered the pool */
  RT_SUBMIT_DUPLICATE,      /* already pending */
  RT_SUBMIT_RETRANSMIT,     /* the client's last executed request: resend the cached reply */
  RT_SUBMIT_OLD,            /* older than the client's last executed request: ignored */
  RT_SUBMIT_NOT_PERMITTED,  /* client not in the cluster file: answer with a rejection */
  RT_SUBMIT_BAD_SIG,        /* signature does not verify: answer with a rejection */
  RT_SUBMIT_MALFORMED,      /* undecodable: nothing to answer */
  RT_SUBMIT_BUSY,           /* pool bound reached: dropped, the client retransmits */
  RT_SUBMIT_CHECKING        /* waiting for the application's check (io.rejected if refused) */
};

typedef struct rt_submit {
  int outcome;
  int client;                 /* index when permitted and verified, else -1 */
  uint8_t pk[BFT_PK_LEN];     /* decoded client key (for rejections) */
  uint64_t seq;
  const char *reason;         /* one line for rejections */
} rt_submit;

/* What a check made before rt_core_submit_verdict found of a request's signature. */
enum rt_sig_verdict {
  RT_SIG_UNCHECKED = 0, /* nothing: the core verifies it (once per digest) */
  RT_SIG_GOOD,          /* verified (rt_vpool_verify): the digest enters the cache, no verify */
  RT_SIG_BAD            /* does not verify: refused as RT_SUBMIT_BAD_SIG, not verified again */
};

/* Load the ledger (re-executing every block), initialise the engine with cfg.committed = the
 * ledger head and replay the WAL through restore(). Does not start the engine. On failure
 * writes one line to err. */
int rt_core_open(rt_core *c, const rt_core_config *cc, char *err, size_t errlen);
/* ops->start and the actions it asks for. */
int rt_core_start(rt_core *c);
void rt_core_close(rt_core *c);

/* An engine message (wire kind WIRE_KIND_ENGINE+k) from authenticated replica `from`. Its
 * signature is checked here before the engine sees it. 0 or the negative reason it was dropped. */
int rt_core_on_message(rt_core *c, uint32_t from, uint8_t wire_kind, const uint8_t *body, uint32_t len);
int rt_core_on_timer(rt_core *c, uint32_t id);
/* A client request; from_peer is 1 when a replica forwarded it. */
int rt_core_submit(rt_core *c, const uint8_t *req, uint32_t len, int from_peer, rt_submit *out);
/* The same with the signature's verdict (enum rt_sig_verdict) reached elsewhere, e.g. by the
 * glue on its verify pool: every other step and outcome is rt_core_submit's. */
int rt_core_submit_verdict(rt_core *c, const uint8_t *req, uint32_t len, int from_peer, int verdict, rt_submit *out);
/* Would rt_core_submit verify this request's signature now? 1 when it decodes, its client is
 * permitted, its seq is not older than the client's last executed one and its digest is not
 * cached (*r is then its decoding, pointing into req); 0 when submitting it costs no verify.
 * Changes nothing but the cache's lookup counters. */
int rt_core_needs_verify(rt_core *c, const uint8_t *req, uint32_t len, bft_request *r);
/* Signed reply to the client's last executed request (length), or BFT_E_STATE. */
int rt_core_encode_reply(rt_core *c, uint32_t client, uint8_t *buf, uint32_t cap);
/* Signed rejection (status BFT_KV_REJECTED, result = reason). */
int rt_core_encode_reject(rt_core *c, const uint8_t pk[BFT_PK_LEN], uint64_t seq, const char *reason,
                          uint8_t *buf, uint32_t cap);
/* A frame from authenticated replica `from`: engine messages (signature checked here), FETCH
 * (answered with a FETCH_REPLY through io.send), FETCH_REPLY, and REQUESTs a backup forwarded.
 * 0, or the negative reason the frame was dropped. */
int rt_core_on_peer_frame(rt_core *c, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len);
/* The evidence held, encoded: blob protocol | u32 count | count x (u32 offender | u8 kind |
 * u64 view | blob (u32 len1 | body1 | u32 len2 | body2)); returns its length (as much as fits). */
int rt_core_evidence(const rt_core *c, uint8_t *out, uint32_t cap);
/* Answer a LEDGER_GET or FETCH body with a LEDGER_BLOCKS body in out; returns its length. */
int rt_core_blocks(rt_core *c, const uint8_t *body, uint32_t len, uint8_t *out, uint32_t cap);
/* A FETCH_REPLY from replica `from`: verify each block's certificate and sync the engine. */
int rt_core_on_fetch_reply(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len);
/* With defer_pulls set, answer a pending PROPOSE_PULL now: the glue calls this once per loop
 * iteration, so every request read in that iteration can join one batch (no added latency). */
int rt_core_answer_pulls(rt_core *c);
/* Make everything persisted so far durable (WAL and ledger, one fdatasync each at most), then
 * compact the WAL if it grew past its bound. Non-zero means the process must stop. */
int rt_core_sync(rt_core *c);
void rt_core_status(const rt_core *c, bft_engine_status *st);
/* Run the application's check() on every request waiting for it: the accepted enter the pool,
 * the refused are answered through io.rejected. rt_core_answer_pulls calls it first. */
int rt_core_run_checks(rt_core *c);
/* A client QUERY (wire kind 0x18) answered from the current state, unordered (a stale read):
 * the signed QUERY_REPLY body in out, its length, or a negative error (malformed: no answer).
 *   QUERY       := u8 version(1) | u64 nonce | blob query
 *   QUERY_REPLY := u8 version(1) | u32 replica | u64 nonce | u64 height | u8 status | blob result
 *                  | sig[64]  (tag "client/query-reply") */
#define RT_TAG_QUERY_REPLY "client/query-reply"
int rt_core_query(rt_core *c, const uint8_t *body, uint32_t len, uint8_t *out, uint32_t cap);
void rt_short_hex16(char out[17], const uint8_t *d); /* first 8 bytes as hex */
/* Stop the core with a fatal error (one line; the process must stop). Returns rc or BFT_E_STATE. */
int rt_core_fail(rt_core *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* For replica/durable.c and statexfer.c. */
void rt_core_state_digest(rt_core *c, uint8_t out[BFT_DIGEST_LEN]);
/* Re-initialise the engine at cfg.committed = the ledger head (after a snapshot was installed):
 * timers cancelled, init, our WAL replayed through restore(), start. */
int rt_core_reset_engine(rt_core *c);
/* Ask `to` for blocks from our head + 1. */
void rt_core_fetch(rt_core *c, uint32_t to);

#endif
