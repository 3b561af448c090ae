/* A tiny hand-driven cluster for engine unit tests (PBFT, HotStuff, Tendermint): n engines of
 * one kind with real Ed25519 keys, one FIFO
 * queue of messages the test can filter (drop, rewrite, hold) before delivery, timers fired by
 * hand, persisted records kept per replica for restarts, and per-replica delivery logs whose
 * certificates are checked as they arrive. */
#ifndef BFT_ENGINE_HARNESS_H
#define BFT_ENGINE_HARNESS_H

#include <stdint.h>

#include "protocols/engine.h"
#include "protocols/request.h"

#define H_MAXN 7
#define H_MAXREQ 512
#define H_MAXSEQ 1024

typedef struct h_msg {
  uint32_t from, to;
  uint8_t kind;
  uint8_t *body;
  uint32_t len;
} h_msg;

typedef struct h_commit {
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t *batch;
  uint32_t len;
  uint8_t *cert;
  uint32_t cert_len;
} h_commit;

struct harness;
typedef struct h_env_ctx {
  struct harness *h;
  uint32_t id;
} h_env_ctx;

typedef struct h_replica {
  void *st;
  bft_engine_config cfg;
  bft_engine_env env;
  h_env_ctx ctx;
  uint8_t **recs;
  uint32_t *rec_len;
  uint32_t nrec, caprec;
  h_commit commits[H_MAXSEQ + 1]; /* by seq; ncommit = ledger head */
  uint64_t ncommit;
  int timer_armed[BFT_MAX_TIMERS];
  uint64_t timer_tag[BFT_MAX_TIMERS];
  uint64_t timer_delay[BFT_MAX_TIMERS];
  int down;
  uint64_t epoch_view;
  uint8_t handed[H_MAXREQ];
  uint8_t executed[H_MAXREQ];
  uint32_t pulls;
  uint32_t fetches;  /* FETCH actions seen */
  uint32_t evidence; /* EVIDENCE actions seen (conflicting statements reported) */
  uint32_t ev_offender; /* the last EVIDENCE action: offender, kind and data (malloc'd) */
  uint8_t ev_kind;
  uint8_t *ev_data;
  uint32_t ev_len;
  uint32_t inflights; /* INFLIGHT actions seen */
  uint32_t fetch_to[64];
  uint64_t fetch_seq[64];
  uint32_t nfetch_pending;
  int last_rc;
} h_replica;

/* What a filter decides for one message. */
enum { H_DELIVER = 0, H_DROP = 1 };
typedef int (*h_filter_fn)(struct harness *h, h_msg *m, void *arg);

typedef struct harness {
  uint32_t n;
  const bft_engine_ops *ops;
  bft_keypair keys[H_MAXN];
  bft_keypair client;
  uint8_t cluster_id[BFT_CLUSTER_ID_LEN];
  h_replica r[H_MAXN];
  uint8_t *req[H_MAXREQ];
  uint32_t req_len[H_MAXREQ];
  uint8_t req_digest[H_MAXREQ][BFT_DIGEST_LEN];
  uint32_t nreq;
  h_msg *q;
  uint32_t qhead, qtail, qcap;
  h_filter_fn filter;
  void *filter_arg;
  bft_actions acts;
  bft_action *items;
  uint8_t *arena;
  /* what the last step of any replica emitted (copied), for assertions */
  uint32_t last_sends[16]; /* count per kind (below 16) sent by the last stepped replica */
  uint32_t last_nact;
  uint32_t last_persist;
  uint64_t delivered_msgs;
  int fire_zero_timers; /* h_run also fires timers armed with a 0 ms delay (a step of their own) */
} harness;

/* Set up n replicas of `engine` with defaults modified by batch_max, window, K (0 keeps the
 * default); name goes into the cluster id. */
harness *h_new_engine(const char *engine, const char *name, uint32_t n, uint32_t batch_max, uint32_t window,
                      uint32_t k);
void h_free(harness *h);
/* Create a signed request, add it to every pool and step BFT_EV_REQUEST at every live replica. */
uint32_t h_submit(harness *h, const char *op);
/* Deliver queued messages (through the filter) until the queue is empty or max messages. */
uint64_t h_run(harness *h, uint64_t max);
/* Fire a timer if armed; returns the step's rc (or 1 when not armed). */
int h_fire(harness *h, uint32_t i, uint32_t id);
/* Step one event at replica i (actions are carried out). */
int h_step(harness *h, uint32_t i, const bft_event *ev);
/* Step a message at replica i as from `from` after the driver's signature check (which
 * must pass); returns the engine's rc, or the check's when it fails. */
int h_deliver(harness *h, uint32_t to, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len);
/* Build payload||sig signed by replica `signer` under kind's tag; returns malloc'd body. */
uint8_t *h_seal(harness *h, uint32_t signer, uint8_t kind, const uint8_t *payload, uint32_t len,
                uint32_t *out_len);
void h_sign(harness *h, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
            uint8_t sig[BFT_SIG_LEN]);
/* Crash replica i and restart it from its persisted records; ledger keeps `keep` commits
 * (UINT64_MAX: all of them). */
void h_restart(harness *h, uint32_t i, uint64_t keep);
void h_status(harness *h, uint32_t i, bft_engine_status *st);
/* Carry out the actions the last step left in h->acts for replica i. */
void h_absorb(harness *h, uint32_t i);
/* Drop every queued message. */
void h_clear_queue(harness *h);
/* Agreement: no two replicas delivered different digests at one seq. Returns 1 if OK. */
int h_agree(harness *h);
/* Build an encoded batch of the given harness requests. */
uint32_t h_batch(harness *h, const uint32_t *reqs, uint32_t n, uint8_t *buf, uint32_t cap);

#endif
