/* One simulated run from one seed: n replicas each behind a driver that carries out the
 * engine.h contract, C clients, a faulty network, a crash/partition schedule confined to the
 * fault window, and the agreement, validity and liveness checks. Everything a run touches
 * lives in its sim_ctx; the world (keys, requests) is shared read-only. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/ledger.h"
#include "protocols/request.h"
#include "tests/sim/sim.h"
#include "tests/sim/sim_heap.h"
#include "tests/sim/sim_net.h"
#include "tests/sim/sim_rng.h"

/* WAL records before the first compaction: low, so that ordinary runs compact often and
 * restarts replay compacted WALs (a path a real replica takes only after long uptimes). */
#define SIM_COMPACT_MIN 32u
/* A run whose required work is done ends after this much virtual time without any commit or
 * fetch (instead of idling to the bound while periodic timers tick): a lagging replica that
 * stays silent that long is not about to catch up. */
#define SIM_QUIET_US (30ull * 1000 * 1000)

enum { EV_MSG = 1, EV_TIMER, EV_REQ, EV_CLIENT_RETRY, EV_REPLY, EV_FETCH, EV_FETCH_REPLY, EV_FAULT, EV_CLIENT_NEXT };
enum { F_CRASH = 1, F_RESTART, F_SPLIT, F_HEAL, F_END, F_CRASH_NOW };
/* A crash strikes the victim's next step part-way through its action list; if it has none
 * within this long, it crashes between events. */
#define SIM_CRASH_FALLBACK_US 20000u
/* PRNG streams: one per concern, so e.g. an extra timer draw cannot move the fault schedule. */
enum { RNG_NET = 1, RNG_FAULT, RNG_TIMER, RNG_CLIENT };

/* An engine message in flight, shared by every copy (broadcast recipients, duplicates). */
typedef struct sim_msg {
  uint32_t refs;
  uint32_t len;
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t body[];
} sim_msg;

/* One delivered batch in a replica's ledger. Buffers are immutable once written and live
 * until the run ends, so fetch replies can point at them. */
typedef struct sim_block {
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t *batch;
  uint32_t batch_len;
  uint8_t *cert;
  uint32_t cert_len;
} sim_block;

typedef struct sim_fetch_reply {
  uint64_t first;
  uint32_t count;
  uint32_t incarnation; /* of the requester when it asked: a restarted replica did not ask */
  uint8_t digest[BFT_DIGEST_LEN];
  sim_block b[BFT_LEDGER_MAX_BLOCKS_PER_REPLY];
} sim_fetch_reply;

typedef struct sim_timer {
  int armed;
  uint64_t tag, gen;
} sim_timer;

typedef struct sim_record {
  uint8_t *p;
  uint32_t len;
} sim_record;

struct sim_ctx;
typedef struct sim_envctx {
  struct sim_ctx *S;
  uint32_t node;
} sim_envctx;

typedef struct sim_node {
  uint32_t id;
  int up;
  uint32_t incarnation;
  void *state;
  bft_engine_config cfg;
  sim_envctx ectx;
  bft_engine_env env;
  sim_timer timers[BFT_MAX_TIMERS];
  uint64_t timer_gen; /* never reset, so a timer armed before a crash can never fire after */
  /* durable: survives a crash */
  sim_record *rec;
  uint32_t nrec, caprec;
  uint64_t rec_bytes;
  sim_block *ledger;
  uint32_t nledger, capledger;
  uint8_t *executed; /* per request index; derived from the ledger, so as durable as it */
  uint32_t nexecuted;
  /* volatile: lost in a crash */
  uint8_t *in_pool;
  uint64_t *handed; /* epoch + 1 in which the request was last handed out by a pull */
  uint32_t *pool;   /* request indices in arrival order (entries may be stale) */
  uint32_t npool;
  uint8_t *verified; /* real crypto: client signature already checked (verify once) */
  uint32_t compact_at; /* WAL length that triggers the next ops->compact */
  uint64_t epoch, epoch_view;
  uint32_t pull_max;
  int pull_pending;
  uint64_t want_after_faults; /* highest seq fetched after the fault window (0: none) */
  int crash_armed;            /* crash during the next step, after a prefix of its actions */
  uint64_t rejected;
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
  uint32_t n, f, R;
  uint64_t now, fault_end, deadline;
  sim_rng rng[5];
  sim_heap heap;
  sim_net net;
  sim_node nodes[BFT_MAX_REPLICAS];
  sim_client clients[SIM_MAX_CLIENTS];
  uint32_t *exec_count; /* replicas that executed each request */
  uint64_t requests_done;
  uint8_t (*decided)[BFT_DIGEST_LEN]; /* first digest delivered at each seq (index seq-1) */
  uint32_t *decided_by;
  uint32_t ndecided, capdecided;
  bft_action *items;
  uint8_t *arena;
  bft_actions acts;
  uint8_t *batch_buf;
  bft_digest_ctx trace;
  int oracle; /* 1 while the simulator verifies on its own behalf: not counted as engine cost */
  int fault_over, dirty;
  uint32_t down;
  uint64_t think_us; /* mean client pause between a completion and the next submission */
  sim_scratch *scr;
  uint64_t last_progress; /* virtual time of the last COMMIT or FETCH anywhere */
  int required_done;      /* every request executed by n-f correct replicas */
} sim_ctx;

struct sim_scratch {
  void *state[BFT_MAX_REPLICAS];
  size_t state_size;
  bft_action *items;
  uint8_t *arena;
  uint8_t *batch_buf;
};

sim_scratch *sim_scratch_new(void) { return calloc(1, sizeof(sim_scratch)); }

static void scratch_release(sim_scratch *scr) {
  for (uint32_t i = 0; i < BFT_MAX_REPLICAS; i++) {
    free(scr->state[i]);
    scr->state[i] = NULL;
  }
  free(scr->items);
  free(scr->arena);
  free(scr->batch_buf);
  scr->items = NULL;
  scr->arena = scr->batch_buf = NULL;
  scr->state_size = 0;
}

void sim_scratch_free(sim_scratch *scr) {
  if (!scr) return;
  scratch_release(scr);
  free(scr);
}

static int scratch_fit(sim_scratch *scr, size_t state_size, uint32_t n) {
  if (scr->state_size != state_size) { /* another engine: start over */
    scratch_release(scr);
    scr->state_size = state_size;
  }
  for (uint32_t i = 0; i < n; i++)
    if (!scr->state[i] && !(scr->state[i] = malloc(state_size ? state_size : 1))) return BFT_E_NOMEM;
  if (!scr->items) scr->items = malloc(BFT_MAX_ACTIONS * sizeof *scr->items);
  if (!scr->arena) scr->arena = malloc(BFT_ACTION_ARENA);
  if (!scr->batch_buf) scr->batch_buf = malloc(BFT_MAX_BATCH_BYTES);
  return scr->items && scr->arena && scr->batch_buf ? 0 : BFT_E_NOMEM;
}

/* ---- reporting ----------------------------------------------------------------------------- */

static void fail(sim_ctx *S, int outcome, const char *fmt, ...) {
  if (S->res->outcome) return; /* the first failure is the one worth replaying */
  S->res->outcome = outcome;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(S->res->reason, sizeof S->res->reason, fmt, ap);
  va_end(ap);
  if (S->vb)
    fprintf(S->vb, "[%12.3f ms] %s: %s\n", (double)S->now / 1000.0, outcome == SIM_STALLED ? "STALLED" : "VIOLATION",
            S->res->reason);
}

#define VLOG(S, ...)                                                   \
  do {                                                                 \
    if ((S)->vb) {                                                     \
      fprintf((S)->vb, "[%12.3f ms] ", (double)(S)->now / 1000.0);     \
      fprintf((S)->vb, __VA_ARGS__);                                   \
      fputc('\n', (S)->vb);                                            \
    }                                                                  \
  } while (0)

static const char *short_hex(const uint8_t *d, char out[17]) {
  bft_hex_encode(out, d, 8);
  return out;
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Every processed event goes into the trace digest: two runs agree on it only if they did
 * the same things in the same order at the same virtual times. */
static void trace_event(sim_ctx *S, const sim_event *ev, const uint8_t *digest) {
  uint8_t rec[8 + 1 + 1 + 4 + 4 + 8 + BFT_DIGEST_LEN];
  put_le(rec, ev->time, 8);
  rec[8] = ev->type;
  rec[9] = ev->kind;
  put_le(rec + 10, ev->node, 4);
  put_le(rec + 14, ev->from, 4);
  put_le(rec + 18, ev->a, 8);
  if (digest)
    memcpy(rec + 26, digest, BFT_DIGEST_LEN);
  else
    memset(rec + 26, 0, BFT_DIGEST_LEN);
  bft_digest_update(&S->trace, rec, sizeof rec);
}

/* 0, or -1 when the queue is at its bound (the run then fails: an engine or a client that
 * floods the network is a finding, not something to absorb silently). */
static int push(sim_ctx *S, const sim_event *ev) {
  if (sim_heap_push(&S->heap, ev) == 0) return 0;
  fail(S, SIM_VIOLATION, "bound: event queue full (%u events queued): message storm", S->heap.count);
  return -1;
}

/* ---- engine services --------------------------------------------------------------------- */

static void env_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  sim_envctx *e = ctx;
  if (!e->S->oracle) e->S->res->sigs++;
  sim_world_sign(e->S->w, e->node, tag, msg, len, sig);
}

static int env_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                      const uint8_t sig[BFT_SIG_LEN]) {
  sim_envctx *e = ctx;
  if (!e->S->oracle) e->S->res->verifies++;
  return sim_world_verify(e->S->w, signer, tag, msg, len, sig);
}

/* A client request is acceptable when it is one a simulated client actually submitted (the
 * oracle), after the structural checks a real replica makes; with real crypto, its Ed25519
 * signature is checked too, once per replica. */
static int accept_request(sim_ctx *S, sim_node *nd, const uint8_t *rq, uint32_t len, int64_t *idx_out) {
  bft_request r;
  int rc = bft_request_decode(rq, len, &r);
  if (rc) return rc;
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, rq, len);
  int64_t idx = sim_world_find(S->w, d);
  if (idx < 0) return BFT_E_NOT_PERMITTED;
  if (S->o->real_crypto && nd && !nd->verified[idx]) {
    if (sim_world_verify_request(S->w, (uint32_t)idx) != 0) return BFT_E_BAD_SIG;
    nd->verified[idx] = 1;
  }
  *idx_out = idx;
  return 0;
}

static int env_check_batch(void *ctx, const uint8_t *batch, uint32_t len) {
  sim_envctx *e = ctx;
  sim_ctx *S = e->S;
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  if (rc) return rc;
  const uint8_t *rq;
  uint32_t rl;
  while ((rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    int64_t idx;
    rc = accept_request(S, &S->nodes[e->node], rq, rl, &idx);
    if (rc) return rc;
  }
  return rc;
}

/* ---- messages ------------------------------------------------------------------------------ */

static sim_msg *msg_new(const uint8_t *body, uint32_t len) {
  sim_msg *m = malloc(sizeof *m + len);
  if (!m) return NULL;
  m->refs = 0;
  m->len = len;
  memcpy(m->body, body, len);
  bft_digest(m->digest, body, len);
  return m;
}

static void msg_unref(sim_msg *m) {
  if (m && --m->refs == 0) free(m);
}

static void free_payload(sim_event *ev) {
  if (ev->type == EV_MSG)
    msg_unref(ev->p);
  else if (ev->type == EV_FETCH_REPLY)
    free(ev->p);
  ev->p = NULL;
}

static void send_engine(sim_ctx *S, uint32_t from, uint32_t to, uint8_t kind, sim_msg *m) {
  S->res->msgs++;
  S->res->bytes += m->len + WIRE_FRAME_HEADER_LEN;
  uint64_t at[2];
  uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], from, to, S->now, at);
  for (uint32_t c = 0; c < copies; c++) {
    sim_event ev = {.time = at[c], .type = EV_MSG, .kind = kind, .node = to, .from = from, .p = m};
    if (push(S, &ev) == 0) m->refs++;
  }
}

/* ---- the driver: stepping an engine and carrying out its actions ----------------------- */

static void node_deliver(sim_ctx *S, sim_node *nd, const bft_event *ev);
static void node_crash(sim_ctx *S, sim_node *nd);

static void update_epoch(sim_ctx *S, sim_node *nd) {
  bft_engine_status st;
  S->ops->status(nd->state, &st);
  if (st.epoch != nd->epoch_view) {
    /* A new view is a new pull epoch: everything still in the pool may be handed out again,
     * so a new leader can re-propose what an old one dropped. */
    nd->epoch++;
    nd->epoch_view = st.epoch;
  }
  if (st.view > S->res->max_view) S->res->max_view = st.view;
}

static int persist(sim_ctx *S, sim_node *nd, const uint8_t *p, uint32_t len) {
  if (nd->nrec >= SIM_MAX_RECORDS || nd->rec_bytes + len > SIM_MAX_RECORD_BYTES) {
    fail(S, SIM_VIOLATION, "bound: replica %u persisted over %u records / %u bytes", nd->id, SIM_MAX_RECORDS,
         SIM_MAX_RECORD_BYTES);
    return -1;
  }
  if (nd->nrec == nd->caprec) {
    uint32_t nc = nd->caprec ? nd->caprec * 2 : 64;
    sim_record *r = realloc(nd->rec, (size_t)nc * sizeof *r);
    if (!r) return BFT_E_NOMEM;
    nd->rec = r;
    nd->caprec = nc;
  }
  uint8_t *c = malloc(len ? len : 1);
  if (!c) return BFT_E_NOMEM;
  memcpy(c, p, len);
  nd->rec[nd->nrec++] = (sim_record){c, len};
  nd->rec_bytes += len;
  return 0;
}

static void pool_remove_executed(sim_node *nd, uint32_t idx) { nd->in_pool[idx] = 0; }

static void on_executed(sim_ctx *S, uint32_t idx) {
  if (++S->exec_count[idx] != S->f + 1) return;
  /* f+1 replicas executed it: the client would now hold f+1 matching replies. */
  S->requests_done++;
  const sim_request *rq = sim_world_request(S->w, idx);
  sim_event ev = {.time = S->now + sim_rng_range(&S->rng[RNG_CLIENT], S->o->delay_min_us, S->o->delay_max_us),
                  .type = EV_REPLY, .node = rq->client, .from = SIM_NET_CLIENT, .a = idx};
  push(S, &ev);
}

/* Validity and execution of a committed batch on one replica. */
static int execute_batch(sim_ctx *S, sim_node *nd, uint64_t seq, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  const uint8_t *rq;
  uint32_t rl;
  uint32_t idxs[BFT_MAX_BATCH_REQUESTS], k = 0;
  /* Check the whole batch before executing any of it: nothing half applied. */
  while (rc == 0 && (rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    int64_t idx;
    S->oracle = 1;
    rc = accept_request(S, NULL, rq, rl, &idx);
    S->oracle = 0;
    if (rc) {
      fail(S, SIM_VIOLATION, "validity: replica %u committed at seq %" PRIu64 " a request no client submitted (%s)",
           nd->id, seq, bft_strerror(rc));
      return -1;
    }
    idxs[k++] = (uint32_t)idx;
    rc = 0;
  }
  if (rc < 0) {
    fail(S, SIM_VIOLATION, "validity: replica %u committed a malformed batch at seq %" PRIu64 " (%s)", nd->id, seq,
         bft_strerror(rc));
    return -1;
  }
  for (uint32_t i = 0; i < k; i++) {
    uint32_t idx = idxs[i];
    /* (client, seq) identifies a submitted request, so the index is the dedup key: execute
     * each at most once, skipping repeats identically on every replica. */
    if (nd->executed[idx]) continue;
    nd->executed[idx] = 1;
    nd->nexecuted++;
    pool_remove_executed(nd, idx);
    on_executed(S, idx);
  }
  return 0;
}

static int ledger_append(sim_ctx *S, sim_node *nd, const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *batch,
                         uint32_t len, const uint8_t *cert, uint32_t cert_len) {
  if (nd->nledger >= SIM_MAX_SEQ) {
    fail(S, SIM_VIOLATION, "bound: replica %u delivered over %u batches", nd->id, SIM_MAX_SEQ);
    return -1;
  }
  if (nd->nledger == nd->capledger) {
    uint32_t nc = nd->capledger ? nd->capledger * 2 : 64;
    sim_block *b = realloc(nd->ledger, (size_t)nc * sizeof *b);
    if (!b) return BFT_E_NOMEM;
    nd->ledger = b;
    nd->capledger = nc;
  }
  sim_block *b = &nd->ledger[nd->nledger];
  b->batch = malloc(len ? len : 1);
  b->cert = malloc(cert_len ? cert_len : 1);
  if (!b->batch || !b->cert) {
    free(b->batch);
    free(b->cert);
    return BFT_E_NOMEM;
  }
  memcpy(b->digest, digest, BFT_DIGEST_LEN);
  memcpy(b->batch, batch, len);
  b->batch_len = len;
  memcpy(b->cert, cert, cert_len);
  b->cert_len = cert_len;
  nd->nledger++;
  return 0;
}

/* The agreement record: the first digest any replica delivered at each seq. */
static int check_agreement(sim_ctx *S, sim_node *nd, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (seq <= S->ndecided) {
    if (memcmp(S->decided[seq - 1], digest, BFT_DIGEST_LEN) != 0) {
      char a[17], b[17];
      fail(S, SIM_VIOLATION, "agreement: replicas %u and %u delivered different batches at seq %" PRIu64 " (%s vs %s)",
           S->decided_by[seq - 1], nd->id, seq, short_hex(S->decided[seq - 1], a), short_hex(digest, b));
      return -1;
    }
    return 0;
  }
  /* seq == ndecided + 1: every replica delivers without gaps, so the first to reach a seq
   * extends the record by exactly one. */
  if (S->ndecided == S->capdecided) {
    uint32_t nc = S->capdecided ? S->capdecided * 2 : 256;
    void *d = realloc(S->decided, (size_t)nc * BFT_DIGEST_LEN);
    if (!d) return BFT_E_NOMEM;
    S->decided = d;
    uint32_t *by = realloc(S->decided_by, (size_t)nc * sizeof *by);
    if (!by) return BFT_E_NOMEM;
    S->decided_by = by;
    S->capdecided = nc;
  }
  memcpy(S->decided[S->ndecided], digest, BFT_DIGEST_LEN);
  S->decided_by[S->ndecided] = nd->id;
  S->ndecided++;
  S->res->batches = S->ndecided;
  return 0;
}

static void do_commit(sim_ctx *S, sim_node *nd, const bft_action *a) {
  uint64_t expect = (uint64_t)nd->nledger + 1;
  if (a->seq != expect) {
    fail(S, SIM_VIOLATION, "contract: replica %u delivered seq %" PRIu64 " where %" PRIu64 " was next", nd->id, a->seq,
         expect);
    return;
  }
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, a->data, a->len);
  if (memcmp(d, a->digest, BFT_DIGEST_LEN) != 0) {
    fail(S, SIM_VIOLATION, "contract: replica %u delivered seq %" PRIu64 " with a digest that is not the batch's",
         nd->id, a->seq);
    return;
  }
  S->oracle = 1;
  int rc = S->ops->verify_certificate(&nd->cfg, &nd->env, a->seq, a->digest, a->cert, a->cert_len);
  S->oracle = 0;
  if (rc) {
    fail(S, SIM_VIOLATION, "agreement: replica %u delivered seq %" PRIu64 " with a certificate that does not verify (%s)",
         nd->id, a->seq, bft_strerror(rc));
    return;
  }
  if (check_agreement(S, nd, a->seq, a->digest)) return;
  if (S->vb) {
    char h[17];
    bft_batch_reader br;
    uint32_t cnt = bft_batch_open(&br, a->data, a->len) == 0 ? br.count : 0;
    VLOG(S, "n%u COMMIT seq=%" PRIu64 " requests=%u digest=%s cert=%uB", nd->id, a->seq, cnt, short_hex(a->digest, h),
         a->cert_len);
  }
  if (ledger_append(S, nd, a->digest, a->data, a->len, a->cert, a->cert_len)) return;
  if (execute_batch(S, nd, a->seq, a->data, a->len)) return;
  S->dirty = 1;
  S->last_progress = S->now;
}

static void arm_timer(sim_ctx *S, sim_node *nd, const bft_action *a) {
  if (a->timer_id >= BFT_MAX_TIMERS) {
    fail(S, SIM_VIOLATION, "contract: replica %u armed timer id %u (max %u)", nd->id, a->timer_id, BFT_MAX_TIMERS - 1);
    return;
  }
  uint64_t ms = a->delay_ms > 86400000ull ? 86400000ull : a->delay_ms; /* a day is forever here */
  uint64_t us = ms * 1000;
  us += sim_rng_range(&S->rng[RNG_TIMER], 0, us / 10); /* +0..10% jitter, as the contract allows */
  sim_timer *t = &nd->timers[a->timer_id];
  t->armed = 1;
  t->tag = a->timer_tag;
  t->gen = ++nd->timer_gen;
  sim_event ev = {.time = S->now + us, .type = EV_TIMER, .kind = (uint8_t)a->timer_id, .node = nd->id,
                  .from = nd->id, .a = a->timer_tag, .b = t->gen};
  push(S, &ev);
  VLOG(S, "n%u timer set id=%u tag=%" PRIu64 " delay=%" PRIu64 "ms", nd->id, a->timer_id, a->timer_tag, a->delay_ms);
}

static void do_fetch(sim_ctx *S, sim_node *nd, const bft_action *a) {
  if (a->to >= S->n || a->to == nd->id) {
    fail(S, SIM_VIOLATION, "contract: replica %u asked to fetch from replica %u", nd->id, a->to);
    return;
  }
  if (S->fault_over && a->seq > nd->want_after_faults) nd->want_after_faults = a->seq;
  S->res->fetches++;
  S->last_progress = S->now;
  VLOG(S, "n%u FETCH from n%u seq=%" PRIu64, nd->id, a->to, a->seq);
  uint64_t at[2];
  uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], nd->id, a->to, S->now, at);
  for (uint32_t c = 0; c < copies; c++) {
    sim_event ev = {.time = at[c], .type = EV_FETCH, .node = a->to, .from = nd->id, .a = a->seq, .b = nd->incarnation};
    push(S, &ev);
  }
}

/* INFLIGHT: requests of a batch another leader proposed are not handed out again in this epoch. */
static void mark_inflight(sim_ctx *S, sim_node *nd, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  if (bft_batch_open(&br, batch, len) != 0) {
    fail(S, SIM_VIOLATION, "contract: replica %u marked a malformed batch in flight", nd->id);
    return;
  }
  const uint8_t *rq;
  uint32_t rl;
  while (bft_batch_next(&br, &rq, &rl) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    int64_t idx = sim_world_find(S->w, d);
    if (idx >= 0) nd->handed[idx] = nd->epoch + 1;
  }
}

static void process_actions(sim_ctx *S, sim_node *nd) {
  /* The arena is reused by the next step, so everything kept is copied out here. */
  for (uint32_t i = 0; i < S->acts.count && !S->res->outcome; i++) {
    const bft_action *a = &S->acts.items[i];
    switch (a->type) {
      case BFT_ACT_SEND:
      case BFT_ACT_BROADCAST: {
        if (a->type == BFT_ACT_SEND && (a->to >= S->n || a->to == nd->id)) {
          fail(S, SIM_VIOLATION, "contract: replica %u sent kind %u to replica %u", nd->id, a->kind, a->to);
          return;
        }
        sim_msg *m = msg_new(a->data, a->len);
        if (!m) {
          fail(S, SIM_VIOLATION, "simulator out of memory");
          return;
        }
        m->refs = 1; /* held while routing, so a message no copy of survives is freed */
        if (a->type == BFT_ACT_SEND) {
          send_engine(S, nd->id, a->to, a->kind, m);
          VLOG(S, "n%u -> n%u kind=%u len=%u", nd->id, a->to, a->kind, a->len);
        } else {
          for (uint32_t j = 0; j < S->n; j++)
            if (j != nd->id) send_engine(S, nd->id, j, a->kind, m);
          VLOG(S, "n%u -> all kind=%u len=%u", nd->id, a->kind, a->len);
        }
        msg_unref(m);
        break;
      }
      case BFT_ACT_TIMER_SET:
        arm_timer(S, nd, a);
        break;
      case BFT_ACT_TIMER_CANCEL:
        if (a->timer_id >= BFT_MAX_TIMERS) {
          fail(S, SIM_VIOLATION, "contract: replica %u cancelled timer id %u", nd->id, a->timer_id);
          return;
        }
        nd->timers[a->timer_id].armed = 0;
        break;
      case BFT_ACT_PERSIST:
        /* Durable at once: every send that follows in this list leaves after it. */
        if (persist(S, nd, a->data, a->len) < 0 && !S->res->outcome) fail(S, SIM_VIOLATION, "simulator out of memory");
        break;
      case BFT_ACT_PROPOSE_PULL:
        /* Served right after this list, before any other event: the batch step must not
         * reuse the arena these actions still live in. */
        nd->pull_pending = 1;
        nd->pull_max = a->max_requests;
        break;
      case BFT_ACT_COMMIT:
        do_commit(S, nd, a);
        break;
      case BFT_ACT_FETCH:
        do_fetch(S, nd, a);
        break;
      case BFT_ACT_INFLIGHT:
        mark_inflight(S, nd, a->data, a->len);
        break;
      default:
        fail(S, SIM_VIOLATION, "contract: replica %u emitted unknown action type %u", nd->id, a->type);
        return;
    }
  }
}

static void drop_records(sim_node *nd) {
  for (uint32_t i = 0; i < nd->nrec; i++) free(nd->rec[i].p);
  nd->nrec = 0;
  nd->rec_bytes = 0;
}

/* Replace the WAL by the engine's compact form once it has doubled since the last time, so
 * a long run keeps a bounded WAL and every restart after it exercises the compact records.
 * Runs after an action list is fully carried out, when the arena is free again. */
static void maybe_compact(sim_ctx *S, sim_node *nd) {
  if (!S->ops->compact || nd->nrec < nd->compact_at) return;
  bft_actions_reset(&S->acts);
  int rc = S->ops->compact(nd->state, &S->acts);
  if (rc || S->acts.overflow) {
    fail(S, SIM_VIOLATION, "contract: replica %u compact failed: %s", nd->id, rc ? bft_strerror(rc) : "overflow");
    return;
  }
  for (uint32_t i = 0; i < S->acts.count; i++)
    if (S->acts.items[i].type != BFT_ACT_PERSIST) {
      fail(S, SIM_VIOLATION, "contract: replica %u compact emitted a non-PERSIST action (type %u)", nd->id,
           S->acts.items[i].type);
      return;
    }
  uint32_t before = nd->nrec;
  drop_records(nd);
  for (uint32_t i = 0; i < S->acts.count && !S->res->outcome; i++)
    if (persist(S, nd, S->acts.items[i].data, S->acts.items[i].len) < 0 && !S->res->outcome)
      fail(S, SIM_VIOLATION, "simulator out of memory");
  nd->compact_at = nd->nrec * 2 > SIM_COMPACT_MIN ? nd->nrec * 2 : SIM_COMPACT_MIN;
  VLOG(S, "n%u WAL compacted: %u records -> %u", nd->id, before, nd->nrec);
}

static const char *event_desc(const bft_event *ev, char *buf, size_t cap) {
  switch (ev ? ev->type : 0) {
    case BFT_EV_MESSAGE:
      snprintf(buf, cap, "message kind %u from replica %u", ev->u.msg.kind, ev->u.msg.from);
      break;
    case BFT_EV_TIMER:
      snprintf(buf, cap, "timer %u", ev->u.timer.id);
      break;
    case BFT_EV_REQUEST: snprintf(buf, cap, "a request"); break;
    case BFT_EV_BATCH: snprintf(buf, cap, "a batch"); break;
    case BFT_EV_SYNC: snprintf(buf, cap, "sync of seq %" PRIu64, ev->u.sync.seq); break;
    default: snprintf(buf, cap, "an event"); break;
  }
  return buf;
}

static void run_step(sim_ctx *S, sim_node *nd, const bft_event *ev, int is_start) {
  bft_actions_reset(&S->acts);
  int rc = is_start ? S->ops->start(nd->state, &S->acts) : S->ops->step(nd->state, ev, &S->acts);
  if (S->acts.overflow) {
    fail(S, SIM_VIOLATION, "contract: replica %u overflowed its action list (%u actions, %u bytes)", nd->id,
         S->acts.count, S->acts.used);
    return;
  }
  if (rc < 0) {
    if (is_start) {
      fail(S, SIM_VIOLATION, "contract: replica %u start failed: %s", nd->id, bft_strerror(rc));
      return;
    }
    nd->rejected++;
    VLOG(S, "n%u   rejected: %s", nd->id, bft_strerror(rc));
    /* A rejected event must leave the engine as it was; actions prove it changed, i.e. the
     * step was half applied — the first sign of a bug that usually surfaces much later. */
    if (S->acts.count) {
      char d[80];
      S->res->half_applied++;
      if (S->o->tolerate_half_applied)
        VLOG(S, "n%u   (half applied: %u actions carried out anyway)", nd->id, S->acts.count);
      else
        fail(S, SIM_VIOLATION,
             "contract: replica %u rejected %s (%s) yet emitted %u actions: a rejected step must leave the state "
             "unchanged",
             nd->id, event_desc(ev, d, sizeof d), bft_strerror(rc), S->acts.count);
      if (S->res->outcome) return;
    }
  }
  update_epoch(S, nd);
  if (nd->crash_armed) {
    /* The process dies while carrying out this list: only a prefix happens. Whatever the
     * prefix, a restarted engine must not contradict what left — persist before you speak. */
    uint32_t all = S->acts.count;
    S->acts.count = (uint32_t)sim_rng_below(&S->rng[RNG_FAULT], (uint64_t)all + 1);
    VLOG(S, "FAULT n%u crashes after %u of %u actions of this step", nd->id, S->acts.count, all);
    process_actions(S, nd);
    node_crash(S, nd);
    return;
  }
  process_actions(S, nd);
  if (!S->res->outcome) maybe_compact(S, nd);
}

/* Answer PROPOSE_PULL: up to max requests from the pool not yet handed out in this epoch,
 * in arrival order. Returns the number put in the batch. */
static uint32_t build_batch(sim_ctx *S, sim_node *nd, uint32_t max, uint32_t *len) {
  bft_batch_writer bw;
  bft_batch_begin(&bw, S->batch_buf, BFT_MAX_BATCH_BYTES);
  uint32_t keep = 0, count = 0;
  if (max > BFT_MAX_BATCH_REQUESTS) max = BFT_MAX_BATCH_REQUESTS;
  for (uint32_t i = 0; i < nd->npool; i++) {
    uint32_t idx = nd->pool[i];
    if (!nd->in_pool[idx]) continue; /* executed since: drop the stale entry */
    nd->pool[keep++] = idx;
    if (count >= max || nd->handed[idx] == nd->epoch + 1) continue;
    const sim_request *rq = sim_world_request(S->w, idx);
    if (bft_batch_add(&bw, rq->bytes, rq->len) != 0) {
      max = count; /* full: stop adding, keep compacting */
      continue;
    }
    nd->handed[idx] = nd->epoch + 1;
    count++;
  }
  nd->npool = keep;
  *len = bft_batch_end(&bw);
  return count;
}

static void node_deliver(sim_ctx *S, sim_node *nd, const bft_event *ev) {
  run_step(S, nd, ev, ev == NULL);
  /* Each pull is answered at once; an engine that pipelines may pull again from the batch
   * step, which ends when the pool has nothing left for this epoch. */
  while (nd->pull_pending && !S->res->outcome && nd->up) {
    nd->pull_pending = 0;
    uint32_t len;
    uint32_t cnt = build_batch(S, nd, nd->pull_max, &len);
    if (cnt == 0) break; /* the engine pulls again on its next BFT_EV_REQUEST */
    VLOG(S, "n%u PULL -> batch of %u requests (epoch %" PRIu64 ")", nd->id, cnt, nd->epoch);
    bft_event be = {.type = BFT_EV_BATCH};
    be.u.batch.data = S->batch_buf;
    be.u.batch.len = len;
    be.u.batch.count = cnt;
    run_step(S, nd, &be, 0);
  }
}

/* ---- crash and restart --------------------------------------------------------------------- */

static void node_start(sim_ctx *S, sim_node *nd) {
  sim_world_config(S->w, nd->id, &nd->cfg);
  /* A restarted replica resumes after what it already executed durably. */
  nd->cfg.committed = nd->nledger;
  /* No clearing here: init owns the state (the contract), and after a crash the memory
   * holds a scribble, so an engine that trusted leftovers would show it. */
  int rc = S->ops->init(nd->state, &nd->cfg, &nd->env);
  if (rc) {
    fail(S, SIM_VIOLATION, "contract: replica %u init failed: %s", nd->id, bft_strerror(rc));
    return;
  }
  for (uint32_t i = 0; i < nd->nrec; i++) {
    rc = S->ops->restore(nd->state, nd->rec[i].p, nd->rec[i].len);
    if (rc) {
      fail(S, SIM_VIOLATION, "contract: replica %u rejected its own persisted record %u of %u: %s", nd->id, i, nd->nrec,
           bft_strerror(rc));
      return;
    }
  }
  nd->up = 1;
  nd->incarnation++;
  bft_engine_status st;
  S->ops->status(nd->state, &st);
  nd->epoch++;
  nd->epoch_view = st.epoch;
  node_deliver(S, nd, NULL);
}

static void node_crash(sim_ctx *S, sim_node *nd) {
  nd->up = 0;
  nd->crash_armed = 0;
  for (uint32_t t = 0; t < BFT_MAX_TIMERS; t++) nd->timers[t].armed = 0;
  memset(nd->in_pool, 0, S->R);
  nd->npool = 0;
  memset(nd->verified, 0, S->R);
  nd->pull_pending = 0;
  /* Scribble over the engine's memory: nothing of it may survive except through restore. */
  memset(nd->state, 0xA5, S->ops->state_size);
}

/* The replica most up replicas follow (ties: the highest view they report). */
static int64_t current_leader(sim_ctx *S) {
  uint32_t votes[BFT_MAX_REPLICAS] = {0};
  uint64_t view[BFT_MAX_REPLICAS] = {0};
  for (uint32_t i = 0; i < S->n; i++) {
    if (!S->nodes[i].up) continue;
    bft_engine_status st;
    S->ops->status(S->nodes[i].state, &st);
    if (st.leader >= S->n) continue;
    votes[st.leader]++;
    if (st.view > view[st.leader]) view[st.leader] = st.view;
  }
  int64_t best = -1;
  for (uint32_t i = 0; i < S->n; i++)
    if (votes[i] && (best < 0 || votes[i] > votes[best] || (votes[i] == votes[best] && view[i] > view[best])))
      best = i;
  return best;
}

static void fault_crash(sim_ctx *S) {
  if (S->down + 1 > S->f) {
    VLOG(S, "FAULT crash skipped: %u replicas already down (f=%u)", S->down, S->f);
    return;
  }
  int64_t leader = current_leader(S);
  int64_t victim = -1;
  if (S->o->crash_primary) {
    victim = leader;
  } else {
    uint32_t cand[BFT_MAX_REPLICAS], k = 0;
    for (uint32_t i = 0; i < S->n; i++)
      if (S->nodes[i].up && !S->nodes[i].crash_armed && (int64_t)i != leader) cand[k++] = i;
    if (k) victim = cand[sim_rng_below(&S->rng[RNG_FAULT], k)];
  }
  if (victim < 0 || !S->nodes[victim].up || S->nodes[victim].crash_armed) {
    VLOG(S, "FAULT crash skipped: no suitable victim");
    return;
  }
  sim_node *nd = &S->nodes[victim];
  VLOG(S, "FAULT crash n%u%s armed (ledger head %u)", nd->id, victim == leader ? " (primary)" : "", nd->nledger);
  S->down++; /* counts from now: the victim is as good as gone */
  nd->crash_armed = 1;
  sim_event now = {.time = S->now + SIM_CRASH_FALLBACK_US, .type = EV_FAULT, .kind = F_CRASH_NOW, .node = nd->id,
                   .from = nd->id};
  push(S, &now);
  if (S->o->restart) {
    uint64_t W = S->fault_end;
    uint64_t at = S->now + sim_rng_range(&S->rng[RNG_FAULT], W / 10, W * 3 / 10);
    if (at >= W) at = W - 1;
    sim_event ev = {.time = at, .type = EV_FAULT, .kind = F_RESTART, .node = nd->id, .from = nd->id};
    push(S, &ev);
  }
}

static void on_fault(sim_ctx *S, const sim_event *ev) {
  switch (ev->kind) {
    case F_CRASH:
      fault_crash(S);
      break;
    case F_CRASH_NOW: {
      sim_node *nd = &S->nodes[ev->node];
      if (!nd->crash_armed) break; /* it already died mid-step */
      VLOG(S, "FAULT n%u crashes between steps", nd->id);
      node_crash(S, nd);
      break;
    }
    case F_RESTART: {
      sim_node *nd = &S->nodes[ev->node];
      if (nd->crash_armed) node_crash(S, nd);
      if (nd->up) break;
      S->down--;
      VLOG(S, "FAULT restart n%u (%u records, ledger head %u)", nd->id, nd->nrec, nd->nledger);
      node_start(S, nd);
      S->dirty = 1;
      break;
    }
    case F_SPLIT: {
      uint8_t g[BFT_MAX_REPLICAS];
      char desc[3 * BFT_MAX_REPLICAS + 8] = "", *p = desc;
      for (uint32_t i = 0; i < S->n; i++) g[i] = (uint8_t)((ev->a >> i) & 1);
      for (int side = 0; side < 2; side++) {
        for (uint32_t i = 0; i < S->n; i++)
          if (g[i] == side) p += sprintf(p, "%u", i);
        if (side == 0) p += sprintf(p, " | ");
      }
      VLOG(S, "FAULT partition %s", desc);
      sim_net_partition(&S->net, g);
      break;
    }
    case F_HEAL:
      VLOG(S, "FAULT heal");
      sim_net_heal(&S->net);
      break;
    case F_END:
      VLOG(S, "FAULT window over: network reliable from now on, liveness bound at %.3f ms",
           (double)S->deadline / 1000.0);
      S->net.faulty = 0;
      sim_net_heal(&S->net);
      S->fault_over = 1;
      S->dirty = 1;
      S->last_progress = S->now;
      break;
  }
}

/* The whole fault schedule except crash victims (chosen when the crash happens, since the
 * primary is whoever leads then) is drawn up front from its own stream. */
static void schedule_faults(sim_ctx *S) {
  sim_rng *r = &S->rng[RNG_FAULT];
  uint64_t W = S->fault_end;
  sim_event ev = {.type = EV_FAULT, .from = SIM_NET_CLIENT};
  if (S->o->partition) {
    uint64_t t = sim_rng_range(r, W / 20, W / 4);
    while (t < W) {
      uint64_t mask;
      do mask = sim_rng_below(r, 1ull << S->n);
      while (mask == 0 || mask == (1ull << S->n) - 1);
      ev.time = t;
      ev.kind = F_SPLIT;
      ev.a = mask;
      push(S, &ev);
      t += sim_rng_range(r, W / 10, W * 35 / 100);
      ev.time = t < W ? t : W;
      ev.kind = F_HEAL;
      ev.a = 0;
      push(S, &ev);
      t += sim_rng_range(r, W / 20, W / 5);
    }
  }
  for (uint32_t i = 0; i < S->o->crash; i++) {
    ev.time = sim_rng_range(r, W / 10, W * 6 / 10);
    ev.kind = F_CRASH;
    ev.a = i;
    push(S, &ev);
  }
  ev.time = W;
  ev.kind = F_END;
  ev.a = 0;
  push(S, &ev);
}

/* ---- clients ------------------------------------------------------------------------------- */

static void client_send(sim_ctx *S, uint32_t idx) {
  for (uint32_t r = 0; r < S->n; r++) {
    uint64_t at[2];
    uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], SIM_NET_CLIENT, r, S->now, at);
    for (uint32_t c = 0; c < copies; c++) {
      sim_event ev = {.time = at[c], .type = EV_REQ, .node = r, .from = SIM_NET_CLIENT, .a = idx};
      push(S, &ev);
    }
  }
  sim_event retry = {.time = S->now + S->o->client_timeout_ms * 1000, .type = EV_CLIENT_RETRY,
                     .node = sim_world_request(S->w, idx)->client, .from = SIM_NET_CLIENT, .a = idx};
  push(S, &retry);
}

static void client_submit_one(sim_ctx *S, uint32_t c) {
  sim_client *cl = &S->clients[c];
  if (cl->inflight >= S->o->outstanding || cl->next_k >= cl->total) return;
  uint32_t idx = c + cl->next_k * S->o->clients;
  cl->next_k++;
  cl->inflight++;
  VLOG(S, "client%u submits request %u (seq %" PRIu64 ")", c, idx, sim_world_request(S->w, idx)->seq);
  client_send(S, idx);
}

/* Each of a client's `outstanding` streams submits, waits for completion, thinks, submits
 * again. Thinking spreads the workload over the fault window, so crashes and partitions
 * strike while requests are in flight rather than after the work is done. */
static void client_think(sim_ctx *S, uint32_t c, uint64_t max_us) {
  if (S->think_us == 0) {
    client_submit_one(S, c);
    return;
  }
  sim_event ev = {.time = S->now + sim_rng_range(&S->rng[RNG_CLIENT], 0, max_us), .type = EV_CLIENT_NEXT,
                  .node = c, .from = SIM_NET_CLIENT};
  push(S, &ev);
}

/* ---- event handlers ------------------------------------------------------------------------ */

static void on_msg(sim_ctx *S, const sim_event *ev) {
  sim_msg *m = ev->p;
  sim_node *nd = &S->nodes[ev->node];
  if (!nd->up || sim_net_blocked(&S->net, ev->from, ev->node)) return;
  /* The runtime checks the sender's signature before the engine sees anything. Honest
   * replicas only sign correctly, so a failure here is an engine bug, not a fault. */
  int rc = bft_engine_check_message(S->ops, &nd->cfg, &nd->env, ev->from, ev->kind, m->body, m->len);
  if (rc) {
    fail(S, SIM_VIOLATION, "contract: message kind %u from replica %u to %u fails bft_engine_check_message: %s",
         ev->kind, ev->from, ev->node, bft_strerror(rc));
    return;
  }
  VLOG(S, "n%u <- n%u kind=%u len=%u", nd->id, ev->from, ev->kind, m->len);
  bft_event e = {.type = BFT_EV_MESSAGE};
  e.u.msg.from = ev->from;
  e.u.msg.kind = ev->kind;
  e.u.msg.body = m->body;
  e.u.msg.len = m->len;
  node_deliver(S, nd, &e);
}

static void on_timer(sim_ctx *S, const sim_event *ev) {
  sim_node *nd = &S->nodes[ev->node];
  sim_timer *t = &nd->timers[ev->kind];
  if (!nd->up || !t->armed || t->gen != ev->b) return; /* replaced, cancelled or crashed */
  t->armed = 0;
  VLOG(S, "n%u timer fires id=%u tag=%" PRIu64, nd->id, ev->kind, t->tag);
  bft_event e = {.type = BFT_EV_TIMER};
  e.u.timer.id = ev->kind;
  e.u.timer.tag = t->tag;
  node_deliver(S, nd, &e);
}

static void on_request(sim_ctx *S, const sim_event *ev) {
  sim_node *nd = &S->nodes[ev->node];
  uint32_t idx = (uint32_t)ev->a;
  if (!nd->up || nd->executed[idx] || nd->in_pool[idx]) return;
  const sim_request *rq = sim_world_request(S->w, idx);
  int64_t got;
  if (accept_request(S, nd, rq->bytes, rq->len, &got) != 0) {
    fail(S, SIM_VIOLATION, "simulator: replica %u refused submitted request %u", nd->id, idx);
    return;
  }
  nd->in_pool[idx] = 1;
  /* npool <= R: a request enters at most once per incarnation (an executed one never
   * re-enters, and a crash empties the pool), so the array cannot overflow. */
  nd->pool[nd->npool++] = idx;
  VLOG(S, "n%u request %u enters the pool", nd->id, idx);
  bft_event e = {.type = BFT_EV_REQUEST};
  memcpy(e.u.request.digest, rq->digest, BFT_DIGEST_LEN);
  node_deliver(S, nd, &e);
}

static void on_fetch(sim_ctx *S, const sim_event *ev) {
  sim_node *srv = &S->nodes[ev->node];
  if (!srv->up || sim_net_blocked(&S->net, ev->from, ev->node)) return;
  uint64_t seq = ev->a;
  if (seq < 1 || seq > srv->nledger) return;
  sim_fetch_reply *fr = calloc(1, sizeof *fr);
  if (!fr) {
    fail(S, SIM_VIOLATION, "simulator out of memory");
    return;
  }
  fr->first = seq;
  fr->incarnation = (uint32_t)ev->b;
  uint64_t bytes = 12;
  bft_digest_ctx dc;
  bft_digest_init(&dc);
  while (fr->count < BFT_LEDGER_MAX_BLOCKS_PER_REPLY && seq + fr->count <= srv->nledger) {
    const sim_block *b = &srv->ledger[seq + fr->count - 1];
    uint64_t sz = 8 + b->batch_len + b->cert_len + BFT_DIGEST_LEN + 8;
    if (fr->count > 0 && bytes + sz > WIRE_FRAME_MAX_BODY) break;
    bytes += sz;
    fr->b[fr->count++] = *b;
    bft_digest_update(&dc, b->digest, BFT_DIGEST_LEN);
  }
  bft_digest_final(&dc, fr->digest);
  VLOG(S, "n%u serves fetch of n%u: seq %" PRIu64 "..%" PRIu64, srv->id, ev->from, seq, seq + fr->count - 1);
  uint64_t at[2];
  uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], srv->id, ev->from, S->now, at);
  /* Each copy owns its reply; the copy for a duplicate is made before the original is queued. */
  sim_fetch_reply *dup = NULL;
  if (copies == 2 && (dup = malloc(sizeof *dup)) != NULL) *dup = *fr;
  sim_fetch_reply *own[2] = {fr, dup};
  uint64_t first = fr->first;
  for (uint32_t c = 0; c < 2; c++) {
    if (c >= copies || !own[c] || S->res->outcome) {
      free(own[c]);
      continue;
    }
    sim_event r = {.time = at[c], .type = EV_FETCH_REPLY, .node = ev->from, .from = srv->id, .a = first, .p = own[c]};
    if (push(S, &r) != 0) free(own[c]);
  }
}

static void on_fetch_reply(sim_ctx *S, const sim_event *ev) {
  sim_fetch_reply *fr = ev->p;
  sim_node *nd = &S->nodes[ev->node];
  if (!nd->up || fr->incarnation != nd->incarnation || sim_net_blocked(&S->net, ev->from, ev->node)) return;
  for (uint32_t i = 0; i < fr->count && nd->up && !S->res->outcome; i++) {
    uint64_t seq = fr->first + i;
    if (seq <= nd->nledger) continue; /* already have it: the engine would ignore it */
    const sim_block *b = &fr->b[i];
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, b->batch, b->batch_len);
    int rc = memcmp(d, b->digest, BFT_DIGEST_LEN) ? BFT_E_BAD_DIGEST
                                                   : S->ops->verify_certificate(&nd->cfg, &nd->env, seq, b->digest,
                                                                                b->cert, b->cert_len);
    if (rc) {
      /* Served from an honest replica's own verified ledger: it must verify here too. */
      fail(S, SIM_VIOLATION, "agreement: block %" PRIu64 " fetched by replica %u from %u does not verify: %s", seq,
           nd->id, ev->from, bft_strerror(rc));
      return;
    }
    VLOG(S, "n%u SYNC seq=%" PRIu64 " from n%u", nd->id, seq, ev->from);
    bft_event e = {.type = BFT_EV_SYNC};
    e.u.sync.seq = seq;
    e.u.sync.batch = b->batch;
    e.u.sync.batch_len = b->batch_len;
    e.u.sync.cert = b->cert;
    e.u.sync.cert_len = b->cert_len;
    node_deliver(S, nd, &e);
  }
}

static void dispatch(sim_ctx *S, sim_event *ev) {
  switch (ev->type) {
    case EV_MSG:
      trace_event(S, ev, ((sim_msg *)ev->p)->digest);
      on_msg(S, ev);
      break;
    case EV_TIMER:
      trace_event(S, ev, NULL);
      on_timer(S, ev);
      break;
    case EV_REQ:
      trace_event(S, ev, sim_world_request(S->w, (uint32_t)ev->a)->digest);
      on_request(S, ev);
      break;
    case EV_CLIENT_RETRY:
      trace_event(S, ev, NULL);
      if (S->exec_count[ev->a] <= S->f) {
        VLOG(S, "client%u retransmits request %" PRIu64, ev->node, ev->a);
        client_send(S, (uint32_t)ev->a);
      }
      break;
    case EV_REPLY:
      trace_event(S, ev, NULL);
      VLOG(S, "client%u request %" PRIu64 " complete (f+1 replicas executed it)", ev->node, ev->a);
      S->clients[ev->node].inflight--;
      client_think(S, ev->node, 2 * S->think_us);
      break;
    case EV_CLIENT_NEXT:
      trace_event(S, ev, NULL);
      client_submit_one(S, ev->node);
      break;
    case EV_FETCH:
      trace_event(S, ev, NULL);
      on_fetch(S, ev);
      break;
    case EV_FETCH_REPLY:
      trace_event(S, ev, ((sim_fetch_reply *)ev->p)->digest);
      on_fetch_reply(S, ev);
      break;
    case EV_FAULT:
      trace_event(S, ev, NULL);
      on_fault(S, ev);
      break;
  }
}

/* ---- liveness ------------------------------------------------------------------------------ */

/* Index of the first request fewer than n-f correct (up) replicas executed, or -1. */
static int64_t first_short_request(sim_ctx *S, uint32_t *count) {
  uint32_t need = S->n - S->f;
  for (uint32_t idx = 0; idx < S->R; idx++) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < S->n; i++) k += S->nodes[i].up && S->nodes[i].executed[idx];
    if (k < need) {
      *count = k;
      return idx;
    }
  }
  return -1;
}

static int all_done(sim_ctx *S) {
  if (S->requests_done < S->R) return 0;
  for (uint32_t i = 0; i < S->n; i++)
    if (S->nodes[i].up && S->nodes[i].nexecuted < S->R) return 0;
  return 1;
}

/* After the fault window: every request executed by at least n-f correct (up) replicas, and
 * every correct replica at the cluster head unless it is lagging beyond what catch-up can
 * serve: its engine never asked (after the faults stopped) for what it lacks, so no driver
 * could have helped. One that asked for a seq and never got it has stalled: catch-up itself
 * is broken (or asks a peer that cannot answer and never tries another). */
static void judge_liveness(sim_ctx *S) {
  uint32_t k;
  int64_t idx = first_short_request(S, &k);
  if (idx >= 0) {
    const sim_request *rq = sim_world_request(S->w, (uint32_t)idx);
    fail(S, SIM_STALLED,
         "liveness: request %u (client %u seq %" PRIu64 ") executed by %u correct replicas, %u needed, at %.3f ms "
         "(%" PRIu64 " of %u requests done, cluster head %u)",
         (uint32_t)idx, rq->client, rq->seq, k, S->n - S->f, (double)S->now / 1000.0, S->requests_done, S->R,
         S->ndecided);
    return;
  }
  for (uint32_t i = 0; i < S->n; i++) {
    sim_node *nd = &S->nodes[i];
    if (!nd->up || nd->nledger >= S->ndecided) continue;
    int unserved = nd->want_after_faults > nd->nledger;
    if (unserved || S->o->catchup_all) {
      fail(S, SIM_STALLED, "liveness: replica %u stuck at ledger head %u of %u at %.3f ms%s", nd->id, nd->nledger,
           S->ndecided, (double)S->now / 1000.0, unserved ? " although it asked to fetch from there" : "");
      return;
    }
    S->res->lagging++;
    VLOG(S, "n%u lagging at ledger head %u of %u (never asked to catch up)", nd->id, nd->nledger, S->ndecided);
  }
}

/* ---- the run -------------------------------------------------------------------------------- */

static void ctx_free(sim_ctx *S) {
  sim_event ev;
  while (sim_heap_pop(&S->heap, &ev)) free_payload(&ev);
  sim_heap_free(&S->heap);
  for (uint32_t i = 0; i < BFT_MAX_REPLICAS; i++) {
    sim_node *nd = &S->nodes[i];
    drop_records(nd);
    free(nd->rec);
    for (uint32_t b = 0; b < nd->nledger; b++) {
      free(nd->ledger[b].batch);
      free(nd->ledger[b].cert);
    }
    free(nd->ledger);
    free(nd->executed);
    free(nd->in_pool);
    free(nd->handed);
    free(nd->pool);
    free(nd->verified);
  }
  free(S->exec_count);
  free(S->decided);
  free(S->decided_by);
  free(S);
}

static int ctx_alloc(sim_ctx *S) {
  size_t R = S->R ? S->R : 1;
  S->exec_count = calloc(R, sizeof *S->exec_count);
  S->items = S->scr->items;
  S->arena = S->scr->arena;
  S->batch_buf = S->scr->batch_buf;
  if (!S->exec_count) return BFT_E_NOMEM;
  if (sim_heap_init(&S->heap, SIM_MAX_EVENTS)) return BFT_E_NOMEM;
  bft_actions_init(&S->acts, S->items, BFT_MAX_ACTIONS, S->arena, BFT_ACTION_ARENA);
  for (uint32_t i = 0; i < S->n; i++) {
    sim_node *nd = &S->nodes[i];
    nd->id = i;
    nd->state = S->scr->state[i];
    nd->executed = calloc(R, 1);
    nd->in_pool = calloc(R, 1);
    nd->handed = calloc(R, sizeof *nd->handed);
    nd->pool = calloc(R, sizeof *nd->pool);
    nd->verified = calloc(R, 1);
    if (!nd->state || !nd->executed || !nd->in_pool || !nd->handed || !nd->pool || !nd->verified) return BFT_E_NOMEM;
    nd->compact_at = SIM_COMPACT_MIN;
    nd->ectx.S = S;
    nd->ectx.node = i;
    nd->env.ctx = &nd->ectx;
    nd->env.sign = env_sign;
    nd->env.verify = env_verify;
    nd->env.check_batch = env_check_batch;
  }
  return 0;
}

int sim_run(const sim_world *w, const sim_options *o, uint64_t seed, sim_scratch *scr, FILE *verbose,
            sim_result *res) {
  memset(res, 0, sizeof *res);
  sim_scratch *own = NULL;
  if (!scr && !(scr = own = sim_scratch_new())) return BFT_E_NOMEM;
  sim_ctx *S = calloc(1, sizeof *S);
  if (!S || scratch_fit(scr, sim_world_ops(w)->state_size, o->n) != 0) {
    free(S);
    sim_scratch_free(own);
    return BFT_E_NOMEM;
  }
  S->scr = scr;
  S->w = w;
  S->o = o;
  S->ops = sim_world_ops(w);
  S->res = res;
  S->vb = verbose;
  S->n = o->n;
  S->f = (o->n - 1) / 3;
  S->R = o->requests;
  int rc = ctx_alloc(S);
  if (rc) {
    ctx_free(S);
    sim_scratch_free(own);
    return rc;
  }
  for (int s = 1; s < 5; s++) sim_rng_seed(&S->rng[s], seed, (uint64_t)s);
  sim_net_config nc = {.delay_min_us = o->delay_min_us, .delay_max_us = o->delay_max_us, .tail = o->tail,
                       .tail_max_us = o->tail_max_us, .drop = o->drop, .dup = o->dup, .reorder = o->reorder};
  sim_net_init(&S->net, &nc, S->n);
  S->net.faulty = 1;
  S->fault_end = o->fault_ms * 1000;
  S->deadline = S->fault_end + o->bound_ms * 1000;
  bft_digest_init(&S->trace);

  VLOG(S, "seed %" PRIu64 ": %s n=%u f=%u requests=%u clients=%u fault window %" PRIu64 " ms", seed, S->ops->name, S->n,
       S->f, S->R, o->clients, o->fault_ms);
  for (uint32_t i = 0; i < S->n && !res->outcome; i++) node_start(S, &S->nodes[i]);
  schedule_faults(S);
  /* Pacing: each of clients x outstanding streams gets an equal share of the requests and
   * of the fault window. */
  uint64_t streams = (uint64_t)o->clients * o->outstanding;
  S->think_us = o->think_us >= 0 ? (uint64_t)o->think_us : S->fault_end * streams / (S->R ? S->R : 1);
  for (uint32_t c = 0; c < o->clients; c++) {
    S->clients[c].total = S->R / o->clients + (c < S->R % o->clients ? 1 : 0);
    for (uint32_t k = 0; k < o->outstanding; k++) client_think(S, c, S->think_us);
  }

  sim_event ev;
  while (!res->outcome && sim_heap_pop(&S->heap, &ev)) {
    if (ev.time > S->deadline) {
      free_payload(&ev);
      S->now = S->deadline;
      break;
    }
    S->now = ev.time;
    res->events++;
    dispatch(S, &ev);
    free_payload(&ev);
    if (S->dirty && S->fault_over) {
      uint32_t k;
      S->dirty = 0;
      if (all_done(S)) break;
      S->required_done = S->requests_done == S->R && first_short_request(S, &k) < 0;
    }
    if (S->required_done && S->now >= S->last_progress + SIM_QUIET_US) {
      VLOG(S, "quiet for %llu s with the required work done: judging now", SIM_QUIET_US / 1000000ull);
      break;
    }
  }
  if (!res->outcome) judge_liveness(S);
  res->end_us = S->now;
  bft_digest_final(&S->trace, res->trace);
  if (S->vb) {
    for (uint32_t i = 0; i < S->n; i++) {
      bft_engine_status st = {0};
      if (S->nodes[i].up) S->ops->status(S->nodes[i].state, &st);
      VLOG(S, "n%u %s ledger=%u executed=%u/%u view=%" PRIu64 " leader=%u records=%u rejected=%" PRIu64, i,
           S->nodes[i].up ? "up  " : "DOWN", S->nodes[i].nledger, S->nodes[i].nexecuted, S->R, st.view, st.leader,
           S->nodes[i].nrec, S->nodes[i].rejected);
    }
    VLOG(S, "net: routed=%" PRIu64 " dropped=%" PRIu64 " duplicated=%" PRIu64 " blocked=%" PRIu64, S->net.routed,
         S->net.dropped, S->net.duplicated, S->net.blocked);
  }
  res->requests_done = S->requests_done;
  ctx_free(S);
  sim_scratch_free(own);
  return 0;
}
