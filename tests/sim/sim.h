/* bft-sim: a deterministic cluster simulator. One process runs n replicas of any engine,
 * each inside the real replica runtime (replica/core.c: request pool, signature checks,
 * execution, ledger, WAL, state transfer) behind a simulated shell, C clients, a virtual clock
 * and a faulty network from one seed, with crash and Byzantine fault plans, and checks
 * agreement, validity and liveness over the correct replicas. */
#ifndef SIM_H
#define SIM_H

#include <stdint.h>
#include <stdio.h>

#include "crypto/bft_crypto.h"
#include "protocols/cluster/cluster.h"
#include "protocols/engine.h"

#define SIM_MAX_REQUESTS 100000u    /* --requests */
#define SIM_MAX_CLIENTS 64u         /* --clients */
#define SIM_MAX_OUTSTANDING 64u     /* --outstanding, per client */
#define SIM_MAX_EVENTS (1u << 21)   /* queued events (in-flight messages, timers, ...) */
#define SIM_MAX_SEQ (1u << 20)      /* delivered batches per replica (ledger length) */
#define SIM_MAX_RECORDS (1u << 20)  /* PERSIST records per replica */
#define SIM_MAX_RECORD_BYTES (256u * 1024u * 1024u) /* PERSIST bytes per replica */

typedef struct sim_options {
  const char *protocol;
  uint32_t n;
  uint64_t seed_lo, seed_hi;
  uint32_t requests, clients, outstanding;
  /* engine configuration; 0 keeps the engine default */
  uint32_t batch, window, checkpoint, timeout_ms;
  /* network */
  uint64_t delay_min_us, delay_max_us, tail_max_us;
  double tail, drop, dup;
  int reorder;
  /* faults */
  int partition;
  uint32_t crash;
  int crash_primary, restart;
  int byzantine;             /* SIM_BYZ_* plan of the faulty replicas (0: none) */
  uint32_t faulty;           /* how many replicas follow it; SIM_FAULTY_F = f */
  uint64_t fault_ms;         /* faults happen in [0, fault_ms) of virtual time */
  uint64_t bound_ms;         /* liveness bound after the fault window */
  uint64_t client_timeout_ms;
  int64_t think_us;          /* mean pause before a client's next request; -1 = pace the
                              * workload over the fault window */
  int catchup_all;           /* every correct replica must reach the cluster head */
  uint32_t lone_div;         /* >1: replica n-1's engine timeout is timeout/lone_div, so its
                                timer fires alone while the others commit (issue 16) */
  uint64_t outside_bound_ms; /* with lone_div: replica n-1 may spend at most this long outside
                                the quorum (another view, or changing views without 2f others) */
  int tolerate_half_applied; /* count, rather than fail on, rejected steps that emitted actions */
  int real_crypto;
  int verbose;
} sim_options;

#define SIM_FAULTY_F UINT32_MAX

/* Byzantine fault plans (Twins, Bano et al.: honest code, faulty identity). */
enum sim_byz {
  SIM_BYZ_NONE = 0,
  SIM_BYZ_TWIN,       /* two honest copies under one key, each connected to part of the cluster */
  SIM_BYZ_EQUIVOCATE, /* twins whose copies see different client requests: as leader they
                       * propose different batches for one slot, as voters vote both ways */
  SIM_BYZ_SILENT,     /* receives, never sends */
  SIM_BYZ_CORRUPT,    /* mutates fields of outgoing engine messages, signs them validly */
  SIM_BYZ_BAD_SIG,    /* sends engine messages with invalid signatures */
  SIM_BYZ_REPLAY,     /* resends old signed messages to random replicas */
  SIM_BYZ_WITHHOLD,   /* never sends data others lack: block/batch fetch replies, catch-up */
  SIM_BYZ_MIXED,      /* each faulty replica draws one of the above from the seed */
  SIM_BYZ__COUNT
};
const char *sim_byz_name(int plan);
int sim_byz_parse(const char *s); /* plan or -1 */

void sim_options_defaults(sim_options *o);

/* Keys, the signed requests every client will submit, and their digest index: built once per
 * process (signing is the expensive part) and only read by runs. */
typedef struct sim_world sim_world;

typedef struct sim_request {
  uint8_t *bytes;
  uint32_t len;
  uint8_t digest[BFT_DIGEST_LEN];
  uint32_t client;
  uint64_t seq; /* client sequence number, from 1 */
} sim_request;

/* 0, or a negative BFT_E* with one line in err. */
int sim_world_create(sim_world **out, const sim_options *o, const bft_engine_ops *ops, char *err, size_t errlen);
void sim_world_free(sim_world *w);
const sim_request *sim_world_request(const sim_world *w, uint32_t idx);
/* Client identities (clients x outstanding streams, one request in flight each). */
uint32_t sim_world_clients(const sim_world *w);
/* Index of the submitted request with this digest, or -1 (the validity oracle). */
int64_t sim_world_find(const sim_world *w, const uint8_t digest[BFT_DIGEST_LEN]);
/* The cluster the runtime sees: replica names/keys and every client key. */
const bft_cluster *sim_world_cluster(const sim_world *w);
/* Client request signature check for the runtime: real Ed25519 with --real-crypto; otherwise
 * accepted exactly when (msg, sig) is a request a simulated client signed. */
int sim_world_verify_client(const sim_world *w, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                            uint32_t len, const uint8_t sig[BFT_SIG_LEN]);
/* Fill a replica's engine config (keys, cluster id, option overrides). */
void sim_world_config(const sim_world *w, uint32_t self, bft_engine_config *cfg);
/* Signing services: the fast keyed-BLAKE2b stand-in or real Ed25519, per the options. */
void sim_world_sign(const sim_world *w, uint32_t self, const char *tag, const uint8_t *msg, uint32_t len,
                    uint8_t sig[BFT_SIG_LEN]);
int sim_world_verify(const sim_world *w, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                     const uint8_t sig[BFT_SIG_LEN]);
/* Check a client's signature on request idx (real crypto only; the fast mode trusts the
 * oracle, since a digest match means the bytes are exactly what the client signed). */
int sim_world_verify_request(const sim_world *w, uint32_t idx);
const bft_engine_ops *sim_world_ops(const sim_world *w);

enum sim_outcome { SIM_OK = 0, SIM_VIOLATION = 1, SIM_STALLED = 2 };

typedef struct sim_result {
  int outcome;
  char reason[400];
  uint8_t trace[BFT_DIGEST_LEN]; /* BLAKE2b over every processed event */
  uint64_t batches;              /* distinct sequence numbers delivered by the cluster */
  uint64_t requests_done;        /* requests executed by at least f+1 replicas */
  uint64_t msgs, bytes;          /* engine messages sent (per recipient) and their bytes */
  uint64_t sigs, verifies;       /* env->sign / env->verify calls by engines and driver */
  uint64_t fetches;              /* FETCH requests sent */
  uint64_t events;
  uint64_t end_us;
  uint64_t max_view;
  uint32_t lagging;              /* correct replicas short of the cluster head at the end */
  uint64_t half_applied;         /* steps that returned an error yet emitted actions */
  uint32_t byzantine;            /* faulty replicas in this run */
  uint64_t equivocations;        /* conflicting statements the correct replicas' engines saw */
  uint64_t evidence;             /* evidence the correct replicas' runtimes kept (both signatures checked) */
  uint64_t byz_msgs;             /* messages the faulty replicas mutated, replayed or dropped */
  uint64_t outside_max_us;       /* with lone_div: longest stretch replica n-1 was outside */
} sim_result;

/* Buffers reused from one run to the next: engine states (PBFT's is ~14 MiB per replica).
 * Reusing them spares every seed the page faults of fresh memory; nothing in them carries
 * over, since each run calls init on every state. */
typedef struct sim_scratch sim_scratch;
sim_scratch *sim_scratch_new(void);
void sim_scratch_free(sim_scratch *scr);

/* Run one seed. scr may be NULL (buffers are then allocated for this run only); verbose
 * (may be NULL) gets a readable event trace. Returns 0, or a negative BFT_E* when the
 * simulator itself could not run (out of memory). */
int sim_run(const sim_world *w, const sim_options *o, uint64_t seed, sim_scratch *scr, FILE *verbose,
            sim_result *res);

/* Engines that exist only for testing the simulator itself (tests/sim/sim_toy.c). */
const bft_engine_ops *sim_test_engine_find(const char *name);

#endif
