/* What the simulator's files share: one run's context, its nodes (a replica runtime each, or
 * one copy of a twin), the event types, and the functions each file offers the others.
 *   sim_run.c    the event loop, clients, dispatch
 *   sim_node.c   the shell around the real runtime (rt_core): I/O, disk, timers, crash, restart
 *   sim_faults.c crash and partition schedule, Byzantine plans and what they do to messages
 *   sim_check.c  agreement, validity, liveness */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "replica/byzantine.h"
#include "replica/core.h"
#include "tests/sim/sim.h"
#include "tests/sim/sim_heap.h"
#include "tests/sim/sim_net.h"
#include "tests/sim/sim_rng.h"

/* WAL bytes before the first compaction: low, so that ordinary runs compact often and restarts
 * replay compacted WALs (a path a real replica takes only after long uptimes). */
#define SIM_COMPACT_BYTES (16u * 1024u)
/* A run whose required work is done ends after this much virtual time without any commit or
 * fetch (instead of idling to the bound while periodic timers tick). */
#define SIM_QUIET_US (30ull * 1000 * 1000)
/* A crash strikes the victim's next step part-way; if it has none within this long, it
 * crashes between events. */
#define SIM_CRASH_FALLBACK_US 20000u
#define SIM_MAX_NODES (BFT_MAX_REPLICAS + BFT_MAX_REPLICAS / 3) /* replicas plus f twins */
#define SIM_NONE UINT32_MAX
#define SIM_WORLD_BOTH 2 /* a replica that hears, and is heard by, both copies of every twin */

enum { EV_MSG = 1, EV_TIMER, EV_REQ, EV_CLIENT_RETRY, EV_REPLY, EV_FAULT, EV_CLIENT_NEXT };
enum { F_CRASH = 1, F_RESTART, F_SPLIT, F_HEAL, F_END, F_CRASH_NOW };
/* PRNG streams: one per concern, so e.g. an extra timer draw cannot move the fault schedule. */
enum { RNG_NET = 1, RNG_FAULT, RNG_TIMER, RNG_CLIENT, RNG_BYZ, RNG__COUNT };

/* A frame in flight, shared by every copy (broadcast recipients, duplicates). */
typedef struct sim_msg {
  uint32_t refs;
  uint32_t len;
  uint8_t kind; /* wire kind */
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t body[];
} sim_msg;

typedef struct sim_out { /* a frame the runtime queued in this step, released after its sync */
  uint32_t to;           /* replica id, or SIM_NONE for every other replica */
  sim_msg *m;
} sim_out;

typedef struct sim_timer {
  int armed;
  uint64_t gen;
} sim_timer;

struct sim_ctx;

typedef struct sim_node {
  struct sim_ctx *S;
  uint32_t idx;  /* in S->nodes */
  uint32_t id;   /* replica id; the two copies of a twin share it */
  uint32_t side; /* which copy of a twin (0 for everyone else) */
  int plan;      /* SIM_BYZ_* when this replica id is faulty, else 0 */
  int up, open;
  uint32_t incarnation;
  rt_core core;
  rt_crypto crypto;
  rt_memfile wal, ledger; /* the disk: survives crashes */
  rt_memfile snap, snapcert; /* the newest snapshot and certificate (replaced atomically) */
  void *engine_mem;
  rt_core_bufs *bufs;
  sim_timer timers[BFT_MAX_TIMERS];
  uint64_t timer_gen; /* never reset, so a timer armed before a crash can never fire after */
  sim_out *out;
  uint32_t nout, capout;
  /* observed from the runtime (rebuilt from the ledger at every start) */
  uint8_t *executed; /* per request index */
  uint32_t nexecuted;
  uint64_t head;
  int64_t unreplied; /* executed by the last block and not yet answered */
  uint64_t want_after_faults; /* highest height fetched after the fault window (0: none) */
  int crash_armed;
  rt_byz byz; /* output misbehaviour of a faulty node (modes 0 for the others) */
  uint8_t *byz_buf; /* a mutated frame being sent (WIRE_FRAME_MAX_BODY) */
} sim_node;

typedef struct sim_client {
  uint32_t next_k, total, inflight;
} sim_client;

typedef struct sim_ctx {
  const sim_world *w;
  const sim_options *o;
  const bft_engine_ops *ops;
  sim_result *res;
  FILE *vb;
  uint32_t n, f, R, C, nnodes;
  uint64_t now, fault_end, deadline;
  sim_rng rng[RNG__COUNT];
  sim_heap heap;
  sim_net net;
  sim_node nodes[SIM_MAX_NODES];
  /* Byzantine plan per replica id. Twins split the cluster in two worlds (the Twins paper's
   * partitions): replica j lives in world[j]; copy s of a twinned id lives in world s; frames
   * flow only inside a world. */
  int plan[BFT_MAX_REPLICAS];
  uint8_t twinned[BFT_MAX_REPLICAS];
  uint8_t world[BFT_MAX_REPLICAS];
  uint32_t twin_node[BFT_MAX_REPLICAS]; /* node index of a twinned id's second copy */
  sim_client clients[SIM_MAX_CLIENTS * SIM_MAX_OUTSTANDING];
  uint64_t *replied_mask; /* per request: replica ids that executed it */
  uint64_t requests_done;
  uint8_t (*decided)[BFT_DIGEST_LEN]; /* first digest a correct replica delivered at each seq */
  uint32_t *decided_by;
  uint32_t ndecided, capdecided;
  bft_digest_ctx trace;
  rt_log log; /* the runtimes' logs: discarded, or on the verbose trace at debug level */
  int oracle; /* 1 while the simulator verifies on its own behalf: not counted as engine cost */
  int fault_over, dirty;
  uint32_t down; /* correct replicas down (or about to crash) */
  uint64_t think_us;
  sim_scratch *scr;
  uint64_t last_progress; /* virtual time of the last commit or fetch anywhere */
  uint64_t outside_since; /* lone_div: when replica n-1 left the quorum (0: it is inside) */
  int required_done;
} sim_ctx;

struct sim_scratch {
  void *state[SIM_MAX_NODES];
  size_t state_size;
  rt_core_bufs *bufs[SIM_MAX_NODES]; /* the runtimes' scratch buffers, lent at every open */
};

/* ---- sim_run.c ------------------------------------------------------------------------------ */
void sim_fail(sim_ctx *S, int outcome, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sim_vlog(sim_ctx *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define VLOG(S, ...)                        \
  do {                                      \
    if ((S)->vb) sim_vlog((S), __VA_ARGS__); \
  } while (0)
/* 0, or -1 when the queue is at its bound (the run then fails). */
int sim_push(sim_ctx *S, const sim_event *ev);
sim_msg *sim_msg_new(uint8_t kind, const uint8_t *body, uint32_t len);
void sim_msg_unref(sim_msg *m);
/* Route one frame from node src to replica id `to`: network fate, twin sides, partitions. */
void sim_route(sim_ctx *S, const sim_node *src, uint32_t to, sim_msg *m);
int sim_correct(const sim_ctx *S, uint32_t id);

/* ---- sim_node.c ----------------------------------------------------------------------------- */
int sim_node_start(sim_ctx *S, sim_node *nd);   /* open the runtime over the node's disk, start */
void sim_node_crash(sim_ctx *S, sim_node *nd);  /* between steps */
void sim_node_free(sim_node *nd);
/* Hand one event to the runtime; then crash mid-step, or sync and release the outbox. */
void sim_node_frame(sim_ctx *S, sim_node *nd, uint32_t from, const sim_msg *m);
void sim_node_timer(sim_ctx *S, sim_node *nd, uint32_t id, uint64_t gen);
void sim_node_request(sim_ctx *S, sim_node *nd, uint32_t idx);
void sim_node_status(const sim_node *nd, bft_engine_status *st);

/* ---- sim_faults.c --------------------------------------------------------------------------- */
/* Choose the faulty replica ids and their plans, create twin copies. */
int sim_faults_assign(sim_ctx *S);
void sim_faults_schedule(sim_ctx *S);
void sim_faults_on_event(sim_ctx *S, const sim_event *ev);
/* The replica/byzantine.c modes a plan falsifies its output with (0: none). */
uint32_t sim_faults_modes(int plan);
/* Does node nd receive client request idx? (equivocating twins split the requests) */
int sim_faults_gets_request(const sim_ctx *S, const sim_node *nd, uint32_t idx);

/* ---- sim_check.c ---------------------------------------------------------------------------- */
/* A block appended to a node's ledger (replayed: re-executed at start). */
void sim_check_committed(sim_ctx *S, sim_node *nd, const bft_block *b, int replayed);
/* The runtime answered client `client` (its last executed request): fresh after executing
 * it, or from its reply cache for a retransmission. */
void sim_check_replied(sim_ctx *S, sim_node *nd, uint32_t client, int fresh);
int sim_check_all_done(sim_ctx *S);
int64_t sim_check_first_short(sim_ctx *S, uint32_t *count);
void sim_check_liveness(sim_ctx *S);

#endif
