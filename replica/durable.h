/* Durability around the runtime core: snapshots every K blocks (taken when block K·i executes,
 * written after that block is durable), their attestation certificates, ledger pruning below
 * the newest certified snapshot (--retain-blocks), restart from the newest snapshot, and state
 * transfer of a certified snapshot to a replica that is far behind or starts empty
 * (statexfer.c). See replica/README.md, "Snapshots and state transfer".
 *
 * Why restarts always resume: a snapshot never changes what the engine is told at start
 * (cfg.committed = ledger head, as before), it only replaces the re-execution of the blocks
 * up to it; the ledger keeps every block above the newest certified snapshot, so every replica
 * can serve the blocks any peer restarting from its own disk needs; a replica behind the
 * peers' pruned range installs a certified snapshot and then re-initialises its engine at that
 * height, replaying its own WAL (the engine's promises) exactly as at a restart. */
#ifndef RT_DURABLE_H
#define RT_DURABLE_H

#include <stdint.h>

#include "replica/snapshot.h"

struct rt_core;

#define RT_RETAIN_ALL UINT64_MAX       /* default --retain-blocks: never prune */
#define RT_XFER_TIMEOUT_MS 2000u       /* a snapshot request unanswered this long goes elsewhere */
#define RT_XFER_BACKOFF_MS 3000u       /* after a transfer found nothing better, wait this long */
#define RT_XFER_FAR_BEHIND(k) (2ull * (k)) /* behind a peer by this many blocks: fetch a snapshot */
#define RT_ATTEST_REPEAT_MS 5000u      /* an uncertified snapshot's attestation is sent again */
#define RT_PEER_REQ_BURST 32u          /* FETCH and SNAP_GET per peer: token bucket ... */
#define RT_PEER_REQ_PER_S 16u          /* ... and refill per second */
#define RT_ATT_KEEP 4u                 /* attestations kept per replica (latest heights) */

typedef struct rt_att {
  rt_snap_stmt st;
  uint8_t sig[BFT_SIG_LEN];
  int valid;
} rt_att;

typedef struct rt_xfer {
  int active, chunks;     /* chunks: manifest accepted, fetching chunks */
  uint32_t peer;
  uint64_t req_ms, backoff_until;
  uint64_t tried, bad;    /* peers asked for a manifest / dropped for bad data (bit masks) */
  rt_snap_stmt st;
  uint8_t *manifest, *cert, *payload, *block;
  uint32_t manifest_len, cert_len, nchunks, next, block_len;
  uint64_t payload_len;
  const uint8_t *chunk_digests; /* inside manifest */
} rt_xfer;

typedef struct rt_durable {
  rt_snap_store store;
  uint32_t snap_every;    /* 0: no snapshots */
  uint64_t retain;        /* RT_RETAIN_ALL or blocks kept below the newest certified snapshot */
  int no_transfer;        /* never fetch a snapshot from peers */
  rt_snap pending;        /* captured at its block, written at the next sync */
  int have_pending;
  uint64_t loaded;        /* height of the snapshot restored at open (0: none) */
  rt_snap_stmt loaded_st;
  /* the newest snapshot of our own */
  int have_own, own_certified;
  rt_snap_stmt own;
  uint64_t own_attest_ms;
  uint8_t own_sig[BFT_SIG_LEN];
  uint8_t *own_manifest;
  uint32_t own_manifest_len;
  /* the newest certified snapshot (served to peers and clients) */
  uint64_t cert_height;
  uint8_t *cert, *cert_manifest;
  uint32_t cert_len, cert_manifest_len;
  int prune_due;
  rt_att att[BFT_MAX_REPLICAS][RT_ATT_KEEP];
  uint64_t answered[BFT_MAX_REPLICAS]; /* height + 1 of our attestation last sent to a peer */
  uint32_t tokens[BFT_MAX_REPLICAS];
  uint64_t tokens_ms[BFT_MAX_REPLICAS];
  rt_xfer x;
  uint64_t snapshots, certified, pruned, xfer_installed, xfer_bad_chunks, refused_requests;
} rt_durable;

/* Open: restore the newest usable snapshot into the core's application and sessions (sets
 * dur->loaded); 0 or an error written to err. */
int rt_dur_open(struct rt_core *c, char *err, size_t errlen);
/* After the ledger was opened: reconcile it with the loaded snapshot (rebase when the snapshot
 * is ahead of it). */
int rt_dur_after_ledger(struct rt_core *c, char *err, size_t errlen);
/* Replaying our own ledger at open: 1 when block b is covered by the loaded snapshot (not
 * executed), 0 to execute it, negative when it contradicts the snapshot. */
int rt_dur_replay_skip(struct rt_core *c, const bft_block *b);
/* Block `height` was executed and appended (not during replay). */
int rt_dur_on_commit(struct rt_core *c, uint64_t height);
/* After each group commit: write a pending snapshot, attest, prune, drive transfers. */
int rt_dur_after_sync(struct rt_core *c);
void rt_dur_free(rt_durable *d);
/* A peer's FETCH or SNAP_GET costs a token; 0 when the request must be dropped. */
int rt_dur_allow_request(struct rt_core *c, uint32_t from);

/* statexfer.c: frames 0x22, 0x23, 0x25, 0x26. */
int rt_xfer_on_frame(struct rt_core *c, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len);
/* A FETCH_REPLY from `from` showed its head: maybe fetch a snapshot instead of blocks. */
void rt_xfer_consider(struct rt_core *c, uint32_t from, uint64_t peer_head, int blocks_useful);
void rt_xfer_tick(struct rt_core *c);
void rt_xfer_free(rt_xfer *x);
/* SNAP_META body for the newest certified snapshot at or above min_height (height 0: none). */
int rt_xfer_meta(struct rt_core *c, uint64_t min_height, uint8_t *out, uint32_t cap);
/* The attestation frame for our own snapshot (durable.c sends it). */
int rt_dur_attest_body(struct rt_core *c, uint8_t *out, uint32_t cap);
void rt_dur_on_attest(struct rt_core *c, uint32_t from, const uint8_t *body, uint32_t len);
/* Adopt snapshot s (complete, digests checked, certificate `cert` verified): write it, rebase
 * the ledger, re-initialise the engine at its height. */
int rt_dur_install(struct rt_core *c, rt_snap *s, const uint8_t *cert, uint32_t cert_len, const uint8_t *block,
                   uint32_t block_len);

#endif
