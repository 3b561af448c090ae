/* bft_client: the client library of the replicated key-value store. It signs requests with the
 * client's key, sends each to every replica, retransmits and reconnects until f+1 replicas return
 * matching authenticated replies, and reads the certified ledger. Many clients in one process
 * can share one connection per replica (bft_client_mux). Use it asynchronously on your own libuv
 * loop (bft_client_*) or blocking (bft_client_sync_*, which runs a private loop).
 * The library never raises SIGPIPE (it sends with MSG_NOSIGNAL) and leaves signal dispositions
 * alone: a replica that hangs up is a dropped connection, reported in the failure's detail. */
#ifndef BFT_CLIENT_H
#define BFT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "crypto/bft_crypto.h"
#include "protocols/cluster/cluster.h"
#include "protocols/kv.h"
#include "protocols/request.h"

/* Threads: a handle belongs to the loop it was opened on; call it only from that loop's thread
 * (several handles may share one loop, as bft-bench does).
 *
 * Sequence numbers
 * ----------------
 * Replicas execute a client's requests in increasing seq order and answer a repeated seq from
 * their reply cache, so a seq must never be reused with a different op. A handle therefore
 * starts at the wall clock in microseconds (CLOCK_REALTIME) and each op takes
 * max(previous + 1, now_us): a CLI started again later, with the same key, always uses larger
 * numbers than any earlier run (provided the clock does not step back and at most one op per
 * microsecond is issued, which the round trip guarantees). Two processes using the same key at
 * the same time are not supported: one of them would see its requests ignored as stale. */

#define BFT_CLIENT_DETAIL_MAX 256
#define BFT_CLIENT_LEDGER_HEAD UINT64_MAX /* `to` of a ledger fetch: up to the head */

typedef struct bft_client bft_client;

typedef struct bft_client_options {
  uint32_t timeout_ms;         /* overall bound of one operation or ledger fetch (default 10000) */
  uint32_t retransmit_ms;      /* first retransmission to all replicas after (default 500) */
  uint32_t retransmit_max_ms;  /* cap of the doubling retransmission interval (default 4000) */
  uint32_t connect_timeout_ms; /* give up a TCP connect after (default 2000) */
  uint32_t reconnect_max_ms;   /* cap of the doubling reconnect backoff (default 2000) */
  uint32_t ledger_request_ms;  /* one LEDGER_GET before another replica is tried (default 3000) */
  uint64_t first_seq;          /* 0: from the wall clock (see above); tests may fix it */
  /* Request encoding (protocols/request.h): 0 or BFT_REQUEST_V_MAC_REPLY (default): signed
   * requests, replies authenticated by a MAC only this client and that replica can make;
   * BFT_REQUEST_VERSION: signed replies too (anyone with the cluster file can check them);
   * BFT_REQUEST_V_MAC: protocol-only mode, no signature at all (the cluster file must say
   * protocol_only = true, or every replica rejects the request). */
  uint8_t request_version;
} bft_client_options;

void bft_client_options_default(bft_client_options *o);

/* The outcome of one operation, handed to the completion callback. */
typedef struct bft_client_result {
  int err;               /* 0 when f+1 replicas agreed; BFT_E_TIMEOUT; BFT_E_STATE if closed */
  uint64_t seq;          /* the request's sequence number */
  uint8_t status;        /* BFT_KV_* agreed by f+1 replicas (when err == 0) */
  uint64_t height;       /* ledger block that executed it (from a matching reply) */
  const uint8_t *result; /* agreed result bytes, borrowed until the callback returns; for
                          * BFT_KV_REJECTED the replicas' one-line reason */
  uint32_t result_len;
  char detail[BFT_CLIENT_DETAIL_MAX]; /* on error: what was seen (connections, rejections) */
} bft_client_result;

typedef void (*bft_client_cb)(void *arg, const bft_client_result *res);

/* Counters of one handle, for benchmarks and diagnostics. */
typedef struct bft_client_stats {
  uint64_t ops_done, ops_failed;
  uint64_t frames_sent, retransmissions;
  uint64_t connects, disconnects;
  uint64_t replies_ok, replies_bad, replies_ignored; /* bad: undecodable or bad signature */
} bft_client_stats;

/* Open a handle on `loop`. `cluster` is borrowed and must outlive the handle (many handles may
 * share one); the key pair is copied. Connects to every replica at once (addresses are resolved
 * here, synchronously). Returns 0 or BFT_E_INVAL / BFT_E_NOMEM / BFT_E_IO (no replica address
 * resolves). Does not check that the key is permitted: see bft_client_key_permitted. */
int bft_client_open(uv_loop_t *loop, const bft_cluster *cluster, const bft_keypair *kp,
                    const bft_client_options *opt, bft_client **out);

/* Submit one operation (op bytes, e.g. from bft_kv_encode; copied). One outstanding operation
 * per handle: BFT_E_STATE while another is in flight. cb is called exactly once, from the loop,
 * never from inside this call. BFT_E_TOO_LARGE for an op over BFT_MAX_OP_BYTES. */
int bft_client_submit(bft_client *c, const uint8_t *op, uint32_t op_len, bft_client_cb cb, void *arg);

/* 1 while an operation is in flight. */
int bft_client_busy(const bft_client *c);

/* Ledger reads. Fetch blocks from..to (to = BFT_CLIENT_LEDGER_HEAD: up to the head reported by
 * the first answer) from replica `replica`, or from any replica when replica < 0 (on a timeout,
 * a dropped connection or a malformed answer the next replica is tried). Blocks are handed to
 * block_cb in height order, each exactly once; they are NOT verified here (bft_block_verify
 * does that with the cluster's keys). block_cb returns 0 to go on, non-zero to stop early.
 * done_cb is called exactly once with 0 or BFT_E_TIMEOUT / BFT_E_IO / BFT_E_STATE, the head
 * height the serving replica reported, and that replica's id. One fetch at a time per handle,
 * independent of the operation in flight. */
typedef int (*bft_client_block_cb)(void *arg, uint64_t height, const uint8_t *block, uint32_t len);
typedef void (*bft_client_ledger_cb)(void *arg, int err, uint64_t head, uint32_t replica,
                                     const char *detail);
int bft_client_ledger_fetch(bft_client *c, int replica, uint64_t from, uint64_t to,
                            bft_client_block_cb block_cb, bft_client_ledger_cb done_cb, void *arg);

/* Counters of this handle; connects and disconnects are those of its connections (shared by
 * every handle of a mux). */
void bft_client_get_stats(const bft_client *c, bft_client_stats *st);
/* Replicas with an established connection right now. */
uint32_t bft_client_connected(const bft_client *c);

/* ---- many clients over shared connections -------------------------------------------------- */

/* A mux is one TCP connection per replica shared by many handles (each with its own key, seq
 * and operation in flight), for a process that runs many clients, as a gateway or a load
 * generator does: the replicas receive the requests of one loop iteration in one read and
 * answer them in one write, instead of one connection, read and write per client. Replicas
 * route each reply back by the client key it carries; nothing changes on their side.
 * bft_client_open is bft_client_mux_open + bft_client_open_mux on a private mux.
 * Options: the mux uses connect_timeout_ms and reconnect_max_ms of `opt`; each handle the rest
 * of its own. Two handles with the same key cannot share a mux (BFT_E_STATE). One ledger read
 * at a time per mux: bft_client_ledger_fetch returns BFT_E_STATE while another handle of the
 * mux reads. */
typedef struct bft_client_mux bft_client_mux;
int bft_client_mux_open(uv_loop_t *loop, const bft_cluster *cluster, const bft_client_options *opt,
                        bft_client_mux **out);
/* Open a handle on the mux (same contract as bft_client_open otherwise). */
int bft_client_open_mux(bft_client_mux *m, const bft_keypair *kp, const bft_client_options *opt,
                        bft_client **out);
uint32_t bft_client_mux_connected(const bft_client_mux *m);
uint32_t bft_client_mux_members(const bft_client_mux *m);
/* Close the mux: handles still open on it are closed first (an operation in flight completes
 * with BFT_E_STATE); closed_cb (may be NULL) runs once the memory is freed. A handle closed on
 * its own (bft_client_close) just leaves the mux. */
void bft_client_mux_close(bft_client_mux *m, void (*closed_cb)(void *arg), void *arg);

/* Close: an operation or fetch in flight completes with BFT_E_STATE, then every handle closes
 * and the memory is freed from the loop (closed_cb, may be NULL, is called after that). */
void bft_client_close(bft_client *c, void (*closed_cb)(void *arg), void *arg);

/* 1 when the key is listed among the cluster file's clients. Replicas refuse other keys; the
 * CLI checks this first to say so clearly. */
int bft_client_key_permitted(const bft_cluster *cluster, const uint8_t pk[BFT_PK_LEN]);

/* ---- blocking use ------------------------------------------------------------------------ */

typedef struct bft_client_sync bft_client_sync;

/* A completed operation with its result copied out. */
typedef struct bft_client_reply {
  uint64_t seq, height;
  uint8_t status;
  uint32_t result_len;
  uint8_t result[BFT_MAX_REPLY_BYTES];
  char detail[BFT_CLIENT_DETAIL_MAX];
} bft_client_reply;

int bft_client_sync_open(const bft_cluster *cluster, const bft_keypair *kp,
                         const bft_client_options *opt, bft_client_sync **out);
/* Run one operation to completion: 0 (reply filled; check reply->status), BFT_E_TIMEOUT
 * (reply->detail says what was seen), or an argument error. */
int bft_client_sync_submit(bft_client_sync *s, const uint8_t *op, uint32_t op_len,
                           bft_client_reply *reply);
/* Blocking ledger fetch; *head and *replica as in bft_client_ledger_cb; detail gets a line on
 * error (may be NULL). */
int bft_client_sync_ledger(bft_client_sync *s, int replica, uint64_t from, uint64_t to,
                           bft_client_block_cb block_cb, void *arg, uint64_t *head,
                           uint32_t *served_by, char *detail, size_t detail_len);
void bft_client_sync_close(bft_client_sync *s);

/* ---- stale reads and one-shot exchanges ---------------------------------------------------- */

/* A STALE read: the application's read-only query answered by ONE replica from its current
 * state, not ordered and not agreed by a quorum. The answer is signed by that replica (checked
 * here) and says at which ledger height it was given, but the replica may be behind, or faulty.
 * For a linearizable read, submit an operation (it goes through consensus). */
#define BFT_TAG_QUERY_REPLY "client/query-reply"
typedef struct bft_client_query_reply {
  uint32_t replica;
  uint64_t height;       /* the replica's ledger head when it answered */
  uint8_t status;        /* the application's status (BFT_KV_REJECTED: no query support) */
  uint32_t result_len;
  uint8_t result[BFT_MAX_REPLY_BYTES];
} bft_client_query_reply;
int bft_client_query_stale(const bft_cluster *c, uint32_t replica, const uint8_t *q, uint32_t len, uint32_t timeout_ms,
                           bft_client_query_reply *out, char *err, size_t errlen);
/* Send one frame of `kind` to a replica on a new connection and return the body of its answer
 * of kind want_kind (malloc'd; the caller frees). 0 or a negative error with one line in err. */
int bft_client_exchange(const bft_cluster *c, uint32_t replica, uint8_t kind, const uint8_t *body, uint32_t len,
                        uint8_t want_kind, uint32_t timeout_ms, uint8_t **out, uint32_t *out_len, char *err,
                        size_t errlen);

/* ---- pure parts, exposed for unit tests -------------------------------------------------- */

/* Reply matching for one outstanding request: one vote per replica (a newer reply from the
 * same replica replaces its older one, so a transient answer cannot block progress), a quorum
 * is `need` votes with equal status and result digest. Heights are not compared: correct
 * replicas agree on them, and status+result is what the caller acts on. */
typedef struct bft_client_quorum {
  uint32_t n, need;
  uint64_t seq;
  struct {
    uint8_t have, status;
    uint64_t height;
    uint8_t digest[BFT_DIGEST_LEN];
  } vote[BFT_MAX_REPLICAS];
} bft_client_quorum;

void bft_client_quorum_reset(bft_client_quorum *q, uint32_t n, uint32_t need, uint64_t seq);
/* Record a verified reply. Returns 1 when it completes a quorum (the reply just given is one
 * of the matching ones), 0 when recorded without a quorum, BFT_E_STALE for another seq,
 * BFT_E_UNKNOWN_SENDER for replica >= n. */
int bft_client_quorum_add(bft_client_quorum *q, uint32_t replica, uint64_t seq, uint8_t status,
                          uint64_t height, const uint8_t *result, uint32_t result_len);
/* Votes recorded, and the size of the largest group of matching ones. */
void bft_client_quorum_count(const bft_client_quorum *q, uint32_t *votes, uint32_t *best);

/* Cheap checks on a reply before its signature is verified (so that replies the client no
 * longer waits for cost no Ed25519 verify): 0 when it is for client pk and seq, from a replica
 * below n (replica and status, both may be NULL, are set); else BFT_E_STALE / BFT_E_UNKNOWN_SENDER / BFT_E_TRUNCATED. */
int bft_client_reply_peek(const uint8_t *p, uint32_t len, const uint8_t pk[BFT_PK_LEN],
                          uint64_t seq, uint32_t n, uint32_t *replica, uint8_t *status);

/* The client key a reply is for (its pk field), or NULL when too short to be a reply. */
const uint8_t *bft_client_reply_key(const uint8_t *p, uint32_t len);

/* The next sequence number: max(last + 1, now_us). */
uint64_t bft_client_next_seq(uint64_t last, uint64_t now_us);

#endif
