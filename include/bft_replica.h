/* bft_replica.h: run a replica of a BFT cluster inside your own program (installed, public).
 * A replica is created from a cluster file, its private key, a data folder, an engine name
 * ("pbft", "hotstuff", "tendermint") and an application (bft_app.h; NULL = the built-in
 * key-value store). It runs on its own libuv loop (bft_replica_run on the calling thread, or
 * bft_replica_start on a thread of its own) or on a libuv loop of yours (options.loop).
 *
 *   bft_replica_options o;
 *   bft_replica_options_init(&o);
 *   o.config = "cluster.ini"; o.id = 0; o.key = "replica-0.key"; o.data_dir = "data/0";
 *   o.protocol = "pbft"; o.app = &my_app;
 *   bft_replica *r;
 *   char err[512];
 *   if (bft_replica_create(&o, &r, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); exit(1); }
 *   bft_replica_start(r);            ... bft_replica_stop(r);
 *   int rc = bft_replica_wait(r);    // 0 after a stop, 1 after a fatal error (bft_replica_error)
 *   bft_replica_destroy(r);
 *
 * Link with `pkg-config --cflags --libs bft-replica`. */
#ifndef BFT_REPLICA_H
#define BFT_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "bft_app.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bft_replica bft_replica;

typedef struct bft_replica_options {
  const char *config;     /* cluster file */
  uint32_t id;            /* this replica's id in it */
  const char *key;        /* this replica's private key file (mode 0600) */
  const char *data_dir;   /* WAL and ledger; created (with missing parents, mode 0700) */
  const char *protocol;   /* engine: "pbft" (default), "hotstuff", "tendermint" */
  const bft_app *app;     /* borrowed, must outlive the replica; NULL: key-value store */
  const char *log_level;  /* "debug", "info" (default), "warn", "error"; logs go to stderr */
  void *loop;             /* a uv_loop_t * of yours to run on, or NULL for a loop of its own */
  int handle_signals;     /* 1: stop cleanly on SIGINT/SIGTERM (a program's main does this) */
  int listen_client_port; /* also accept clients on this port (0: none) */
} bft_replica_options;

void bft_replica_options_init(bft_replica_options *o);
/* Load keys and cluster file, open the data folder (replaying the ledger through the
 * application) and listen. 0, or a negative error with one line in err. */
int bft_replica_create(const bft_replica_options *o, bft_replica **out, char *err, size_t errlen);
/* Own loop: run it on the calling thread until stopped; returns 0 after a stop, 1 after a
 * fatal error. With a loop of yours: not allowed (use start). */
int bft_replica_run(bft_replica *r);
/* Own loop: run it on a new thread. Your loop: register with it (run your loop yourself). */
int bft_replica_start(bft_replica *r);
/* Ask the replica to stop; safe from any thread and from signal-free contexts. */
void bft_replica_stop(bft_replica *r);
/* Own loop on its thread: wait for it to end; returns as bft_replica_run. Your loop: returns
 * at once with the exit code so far (-1 while still running). */
int bft_replica_wait(bft_replica *r);
/* The line that stopped the replica after a fatal error (e.g. "application diverged at
 * height H ..."), or NULL. */
const char *bft_replica_error(const bft_replica *r);
/* Committed height of the ledger (read it from the replica's thread, or after it stopped). */
uint64_t bft_replica_height(const bft_replica *r);
/* Free everything. With your loop, call it after stopping, from the loop's thread: it runs
 * your loop (UV_RUN_NOWAIT) until the replica's handles are closed. */
void bft_replica_destroy(bft_replica *r);

#ifdef __cplusplus
}
#endif
#endif
