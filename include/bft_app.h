/* bft_app.h: the replicated application as every consensus engine sees it (installed, public).
 * An application is a deterministic state machine: the runtime hands it each committed batch
 * in order, one call per batch, and it returns one result per operation and a digest of its
 * whole state, which goes into the ledger block and is compared across replicas (a replica
 * whose digest differs from what the others signed stops: "application diverged at height H").
 *
 * Rules an application must keep:
 * - execute is a pure function of (state, batch): no clock, randomness, environment, thread
 *   timing or hash-table iteration order may reach its results or its digest;
 * - execute never fails half way: it runs every operation of the batch (a malformed operation
 *   is a result with a status, never an error), or returns non-zero and the replica stops;
 * - the digest is maintained incrementally (a batch must not rehash the whole state);
 * - snapshot/restore round-trip exactly (restore(snapshot(S)) has S's digest).
 *
 * The runtime decides what executes: each operation comes from a request whose signature it
 * verified, at most once per (client, seq), and in seq order per client.
 * Threads: every callback is called from the replica's loop thread, one at a time. */
#ifndef BFT_APP_H
#define BFT_APP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BFT_APP_API_VERSION 1
#define BFT_APP_KEY_LEN 32          /* client public key (Ed25519) */
#define BFT_APP_DIGEST_LEN 32
#define BFT_APP_MAX_OP 16384        /* bytes of one operation */
#define BFT_APP_MAX_RESULT 16384    /* bytes of one result */
#define BFT_APP_MAX_BATCH 512       /* operations in one batch */
#define BFT_APP_MAX_REASON 200      /* bytes of a check() rejection reason */
#define BFT_APP_MAX_CHUNK (1u << 20) /* bytes of one snapshot chunk */

/* Status bytes the runtime itself uses; applications use 0..254 as they like (0 = success by
 * convention). BFT_APP_REJECTED answers a request check() refused, result = the reason. */
#define BFT_APP_OK 0
#define BFT_APP_REJECTED 255

/* One operation of a committed batch (borrowed for the call). */
typedef struct bft_app_op {
  const uint8_t *client_key; /* BFT_APP_KEY_LEN bytes: the authenticated client's public key */
  uint32_t client;           /* that client's index in the cluster file ([client.N]) */
  uint64_t seq;              /* the request's sequence number (increasing per client) */
  const uint8_t *op;         /* the operation bytes the client signed */
  uint32_t len;              /* <= BFT_APP_MAX_OP */
} bft_app_op;

/* One result: `data` points to BFT_APP_MAX_RESULT bytes of room the runtime owns; the
 * application writes len bytes there and sets status. */
typedef struct bft_app_result {
  uint8_t status;
  uint32_t len;
  uint8_t *data;
} bft_app_result;

typedef struct bft_app_ops {
  const char *name;          /* shown in logs, e.g. "kv", "token-ledger" */
  /* Required. Run ops[0..n) of block `height` in order; res[i] answers ops[i]. 0, or non-zero
   * when the application cannot go on (the replica stops; the batch counts as not executed). */
  int (*execute)(void *app, uint64_t height, const bft_app_op *ops, uint32_t n, bft_app_result *res);
  /* Required. Digest of the whole state after the last executed batch. */
  void (*digest)(void *app, uint8_t out[BFT_APP_DIGEST_LEN]);
  /* Snapshot, chunked so that a large state can be streamed. begin captures the state as it is
   * now (later execute calls must not change what the cursor yields); next writes at most cap
   * bytes into buf, sets *len, and sets *done to 1 with the last chunk; end releases the
   * cursor (also when a transfer is abandoned half way). All three or none. */
  int (*snapshot_begin)(void *app, void **cursor);
  int (*snapshot_next)(void *app, void *cursor, uint8_t *buf, uint32_t cap, uint32_t *len, int *done);
  void (*snapshot_end)(void *app, void *cursor);
  /* Restore: begin empties the state; chunks arrive in order; end checks and installs it. An
   * error at any step leaves the state empty. Restoring zero chunks gives the initial state.
   * `height` is the block the snapshot was taken after. All three or none. */
  int (*restore_begin)(void *app, uint64_t height);
  int (*restore_chunk)(void *app, const uint8_t *p, uint32_t len);
  int (*restore_end)(void *app);
  /* Optional. Stateless check of a request before it enters the pool (like ABCI's CheckTx),
   * for n requests at once. verdict[i] = 0 to accept, or non-zero with a one-line reason
   * (< BFT_APP_MAX_REASON bytes, NUL-terminated) in reason[i]: the client gets status
   * BFT_APP_REJECTED with that reason. Advisory only: a faulty leader can still order an
   * operation check() would refuse, so execute must handle any bytes. */
  int (*check)(void *app, const bft_app_op *ops, uint32_t n, uint8_t *verdict, char (*reason)[BFT_APP_MAX_REASON]);
  /* Optional. Read-only query answered by one replica from its current state (may be stale:
   * not ordered, not agreed by a quorum; clients label it so). Writes the answer to res. */
  int (*query)(void *app, const uint8_t *q, uint32_t len, bft_app_result *res);
  /* Optional. Height the state is at when the replica opens (an application that keeps its
   * own durable state); NULL means 0, an empty state. The replica then re-executes only the
   * blocks above it, or restores the application when it is ahead of the ledger. */
  uint64_t (*height)(void *app);
  /* Optional. One line saying why the last call failed (put in the replica's stop line). */
  const char *(*last_error)(void *app);
  /* Optional. Called once when the replica closes. */
  void (*close)(void *app);
} bft_app_ops;

typedef struct bft_app {
  const bft_app_ops *ops;
  void *state;
} bft_app;

/* Whole-state helpers over the chunked calls (the caller frees *out). */
int bft_app_snapshot_all(const bft_app *app, uint8_t **out, size_t *len);
int bft_app_restore_all(const bft_app *app, uint64_t height, const uint8_t *snap, size_t len);

/* The built-in key-value store (put/get/del/cas), the default application. */
int bft_app_kv_new(bft_app *out);
void bft_app_kv_free(bft_app *app);

/* Serve `app` to a replica over the Unix socket at `path` (docs/app-socket.md): listens,
 * accepts one replica connection at a time and answers it until it closes (then waits for
 * the next) or until *stop becomes non-zero (checked between messages; may be NULL).
 * Returns 0 when stopped, or a negative error. */
int bft_app_serve_unix(const char *path, const bft_app *app, volatile int *stop);

#ifdef __cplusplus
}
#endif
#endif
