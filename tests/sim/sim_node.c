/* The simulated shell around the real replica runtime (replica/core.c): the same core a
 * bft-replica process runs, with its sockets, clock, timers and disk replaced by the
 * simulator's. Frames the core queues are held until the step's sync, as the libuv glue holds
 * them until its fdatasync (persist before you speak); a crash mid-step decides what of the
 * step reached the disk and the network. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim_internal.h"

/* ---- the runtime's I/O ---------------------------------------------------------------------- */

static void outbox_add(sim_node *nd, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  sim_ctx *S = nd->S;
  if (nd->nout == nd->capout) {
    uint32_t nc = nd->capout ? nd->capout * 2 : 16;
    sim_out *o = realloc(nd->out, (size_t)nc * sizeof *o);
    if (!o) {
      sim_fail(S, SIM_VIOLATION, "simulator out of memory");
      return;
    }
    nd->out = o;
    nd->capout = nc;
  }
  sim_msg *m = sim_msg_new(kind, body, len);
  if (!m) {
    sim_fail(S, SIM_VIOLATION, "simulator out of memory");
    return;
  }
  nd->out[nd->nout++] = (sim_out){to, m};
}

static void io_send(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  sim_node *nd = ctx;
  if (kind == WIRE_KIND_FETCH && nd->S->fault_over && len >= 8) {
    uint64_t from = 0;
    for (int i = 0; i < 8; i++) from |= (uint64_t)body[i] << (8 * i);
    if (from > nd->want_after_faults) nd->want_after_faults = from;
  }
  outbox_add(nd, to, kind, body, len);
}

static void io_broadcast(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len) {
  outbox_add(ctx, SIM_NONE, kind, body, len);
}

static void io_timer_set(void *ctx, uint32_t id, uint64_t delay_ms) {
  sim_node *nd = ctx;
  sim_ctx *S = nd->S;
  uint64_t ms = delay_ms > 86400000ull ? 86400000ull : delay_ms; /* a day is forever here */
  uint64_t us = ms * 1000;
  us += sim_rng_range(&S->rng[RNG_TIMER], 0, us / 10); /* +0..10% jitter, as the contract allows */
  sim_timer *t = &nd->timers[id];
  t->armed = 1;
  t->gen = ++nd->timer_gen;
  sim_event ev = {.time = S->now + us, .type = EV_TIMER, .kind = (uint8_t)id, .node = nd->idx, .from = nd->id,
                  .b = t->gen};
  sim_push(S, &ev);
}

static void io_timer_cancel(void *ctx, uint32_t id) { ((sim_node *)ctx)->timers[id].armed = 0; }

static void io_replied(void *ctx, uint32_t client) {
  sim_node *nd = ctx;
  sim_check_replied(nd->S, nd, client, 1);
}

static uint64_t io_now(void *ctx) { return ((sim_node *)ctx)->S->now / 1000; }

static void io_committed(void *ctx, const bft_block *b, int replayed) {
  sim_node *nd = ctx;
  sim_check_committed(nd->S, nd, b, replayed);
}

/* ---- signatures: the world's fast stand-in (or real Ed25519), counted as engine cost -------- */

static int cr_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  sim_node *nd = ctx;
  if (!nd->S->oracle) nd->S->res->sigs++;
  sim_world_sign(nd->S->w, nd->id, tag, msg, len, sig);
  return 0;
}

static int cr_verify(void *ctx, uint32_t signer, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                     uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  sim_node *nd = ctx;
  if (!nd->S->oracle) nd->S->res->verifies++;
  if (signer == RT_SIGNER_CLIENT) return sim_world_verify_client(nd->S->w, pk, tag, msg, len, sig);
  return sim_world_verify(nd->S->w, signer, tag, msg, len, sig);
}

/* ---- stepping ------------------------------------------------------------------------------- */

static void outbox_drop(sim_node *nd, uint32_t from) {
  for (uint32_t i = from; i < nd->nout; i++) sim_msg_unref(nd->out[i].m);
  nd->nout = 0;
}

/* One frame to one replica, through the node's misbehaviour modes when it is faulty. */
static void send_one(sim_ctx *S, sim_node *nd, uint32_t to, sim_msg *m) {
  if (!nd->byz.cfg.modes) {
    sim_route(S, nd, to, m);
    return;
  }
  S->oracle = 1; /* a corrupt re-signature is the attacker's cost, not the engine's */
  int v = rt_byz_outgoing(&nd->byz, to, m->kind, m->body, m->len, nd->byz_buf, &nd->crypto);
  S->oracle = 0;
  if (v == RT_BYZ_DROP) return;
  if (v == RT_BYZ_SEND) {
    sim_route(S, nd, to, m);
  } else {
    sim_msg *c = sim_msg_new(m->kind, nd->byz_buf, m->len);
    if (!c) return;
    sim_route(S, nd, to, c);
    sim_msg_unref(c);
  }
  uint32_t rto, rlen;
  uint8_t rkind;
  const uint8_t *rbody;
  if (rt_byz_replay(&nd->byz, &rto, &rkind, &rbody, &rlen)) {
    sim_msg *r = sim_msg_new(rkind, rbody, rlen);
    if (!r) return;
    sim_route(S, nd, rto, r);
    sim_msg_unref(r);
  }
}

/* Send the first `count` queued frames. */
static void outbox_release(sim_ctx *S, sim_node *nd, uint32_t count) {
  for (uint32_t i = 0; i < count && !S->res->outcome; i++) {
    sim_out *o = &nd->out[i];
    if (o->m->kind >= WIRE_KIND_ENGINE && o->m->kind <= WIRE_KIND_ENGINE_LAST) {
      uint32_t copies = o->to == SIM_NONE ? S->n - 1 : 1;
      S->res->msgs += copies;
      S->res->bytes += (uint64_t)copies * (o->m->len + WIRE_FRAME_HEADER_LEN);
    }
    if (o->to != SIM_NONE) {
      send_one(S, nd, o->to, o->m);
    } else {
      for (uint32_t j = 0; j < S->n; j++)
        if (j != nd->id) send_one(S, nd, j, o->m);
    }
  }
  outbox_drop(nd, 0);
}

/* A crash inside a step: the disk keeps what the last sync made durable plus any prefix of the
 * bytes written since (a torn tail), and nothing queued in this step has left... or the sync
 * happened and a prefix of the queued frames left. Either way a restarted replica must not
 * contradict what others saw: persist before you speak. */
static void crash_mid_step(sim_ctx *S, sim_node *nd) {
  if (sim_rng_below(&S->rng[RNG_FAULT], 2) == 0) {
    rt_memfile *files[2] = {&nd->wal, &nd->ledger};
    for (int i = 0; i < 2; i++) {
      size_t extra = files[i]->len - files[i]->synced;
      files[i]->len = files[i]->synced + (size_t)sim_rng_below(&S->rng[RNG_FAULT], (uint64_t)extra + 1);
    }
    VLOG(S, "FAULT n%u crashes before its sync: %u frames lost, disk torn", nd->idx, nd->nout);
    outbox_drop(nd, 0);
  } else {
    if (rt_core_sync(&nd->core) != 0) {
      sim_fail(S, SIM_VIOLATION, "runtime: replica %u: %s", nd->id, nd->core.fail_msg);
      return;
    }
    uint32_t k = (uint32_t)sim_rng_below(&S->rng[RNG_FAULT], (uint64_t)nd->nout + 1);
    VLOG(S, "FAULT n%u crashes after its sync, %u of %u frames sent", nd->idx, k, nd->nout);
    outbox_release(S, nd, k);
  }
  sim_node_crash(S, nd);
}

/* After the runtime handled one event: checks, then crash or sync-and-send. */
static void after_step(sim_ctx *S, sim_node *nd) {
  if (S->res->outcome) return;
  if (nd->core.failed) {
    sim_fail(S, SIM_VIOLATION, "runtime: replica %u stopped: %s", nd->id, nd->core.fail_msg);
    return;
  }
  if (nd->core.ctr.half_applied) {
    S->res->half_applied += nd->core.ctr.half_applied;
    nd->core.ctr.half_applied = 0;
    if (!S->o->tolerate_half_applied) {
      sim_fail(S, SIM_VIOLATION,
               "contract: replica %u's engine rejected an event yet emitted actions: a rejected step must leave "
               "the state unchanged",
               nd->id);
      return;
    }
  }
  bft_engine_status st;
  sim_node_status(nd, &st);
  if (st.view > S->res->max_view) S->res->max_view = st.view;
  if (nd->crash_armed) {
    crash_mid_step(S, nd);
    return;
  }
  if (rt_core_sync(&nd->core) != 0) {
    sim_fail(S, SIM_VIOLATION, "runtime: replica %u: %s", nd->id, nd->core.fail_msg);
    return;
  }
  outbox_release(S, nd, nd->nout);
}

void sim_node_frame(sim_ctx *S, sim_node *nd, uint32_t from, const sim_msg *m) {
  VLOG(S, "n%u <- r%u kind=0x%02x len=%u", nd->idx, from, m->kind, m->len);
  rt_core_on_peer_frame(&nd->core, from, m->kind, m->body, m->len);
  after_step(S, nd);
}

void sim_node_timer(sim_ctx *S, sim_node *nd, uint32_t id, uint64_t gen) {
  sim_timer *t = &nd->timers[id];
  if (!t->armed || t->gen != gen) return; /* replaced or cancelled */
  t->armed = 0;
  VLOG(S, "n%u timer %u fires", nd->idx, id);
  rt_core_on_timer(&nd->core, id);
  after_step(S, nd);
}

void sim_node_request(sim_ctx *S, sim_node *nd, uint32_t idx) {
  const sim_request *rq = sim_world_request(S->w, idx);
  rt_submit out;
  rt_core_submit(&nd->core, rq->bytes, rq->len, 0, &out);
  if (out.outcome == RT_SUBMIT_NOT_PERMITTED || out.outcome == RT_SUBMIT_BAD_SIG ||
      out.outcome == RT_SUBMIT_MALFORMED) {
    sim_fail(S, SIM_VIOLATION, "runtime: replica %u refused submitted request %u: %s", nd->id, idx,
             out.reason ? out.reason : "malformed");
    return;
  }
  if (out.outcome == RT_SUBMIT_RETRANSMIT) sim_check_replied(S, nd, (uint32_t)out.client, 0);
  VLOG(S, "n%u request %u: outcome %d", nd->idx, idx, out.outcome);
  after_step(S, nd);
}

void sim_node_status(const sim_node *nd, bft_engine_status *st) {
  if (nd->open)
    rt_core_status(&nd->core, st);
  else
    memset(st, 0, sizeof *st);
}

/* ---- start, crash, restart ------------------------------------------------------------------ */

/* Open the runtime over the node's disk (re-executing its ledger, replaying its WAL), then
 * start the engine. The observations (executed requests, head) are rebuilt from the replay. */
int sim_node_start(sim_ctx *S, sim_node *nd) {
  memset(nd->executed, 0, S->R ? S->R : 1);
  nd->nexecuted = 0;
  nd->head = 0;
  nd->unreplied = 0;
  nd->crypto = (rt_crypto){.ctx = nd, .sign = cr_sign, .verify = cr_verify};
  bft_engine_config tuning;
  sim_world_config(S->w, nd->id, &tuning);
  rt_core_config cc = {
      .cluster = sim_world_cluster(S->w),
      .self = nd->id,
      .ops = S->ops,
      .data_dir = "sim",
      .io = {.ctx = nd, .send = io_send, .broadcast = io_broadcast, .timer_set = io_timer_set,
             .timer_cancel = io_timer_cancel, .replied = io_replied, .now_ms = io_now, .committed = io_committed},
      .log = &S->log,
      .crypto = &nd->crypto,
      .wal_mem = &nd->wal,
      .ledger_mem = &nd->ledger,
      .engine_mem = nd->engine_mem,
      .bufs = nd->bufs,
      /* a client has one request in flight: the pool never needs much more than one per client */
      .pool_max_requests = S->C + 64,
      .vcache_sets = 256, /* a forgotten digest costs one more (fast) verify; memory stays small */
      .wal_compact_bytes = SIM_COMPACT_BYTES,
      .tuning = &tuning,
      /* snapshots every 16 blocks: a restart loads the newest and re-executes only what follows */
      .snap_mem = &nd->snap,
      .snapcert_mem = &nd->snapcert,
      .snapshot_every = 16,
      .snapshot_no_transfer = 1,
  };
  char err[256] = "";
  /* No clearing of the engine memory: init owns it, and after a crash it holds a scribble, so
   * an engine that trusted leftovers would show it. */
  int rc = rt_core_open(&nd->core, &cc, err, sizeof err);
  nd->open = 1;
  if (rc) {
    sim_fail(S, SIM_VIOLATION, "runtime: replica %u cannot open its disk: %s", nd->id, err);
    return rc;
  }
  nd->up = 1;
  nd->incarnation++;
  rt_byz_config bc = {.modes = sim_faults_modes(nd->plan)};
  rt_byz_free(&nd->byz);
  rt_byz_init(&nd->byz, &bc, S->ops, S->n, nd->id, sim_rng_next(&S->rng[RNG_BYZ]));
  VLOG(S, "n%u (replica %u%s) starts: ledger head %" PRIu64 ", WAL %zu bytes", nd->idx, nd->id,
       nd->plan ? ", faulty" : "", nd->core.ledger.head, nd->wal.len);
  rt_core_start(&nd->core);
  after_step(S, nd);
  return 0;
}

void sim_node_crash(sim_ctx *S, sim_node *nd) {
  nd->up = 0;
  nd->crash_armed = 0;
  for (uint32_t t = 0; t < BFT_MAX_TIMERS; t++) nd->timers[t].armed = 0;
  outbox_drop(nd, 0);
  if (nd->open) rt_core_close(&nd->core);
  nd->open = 0;
  /* Scribble over the engine's memory: nothing of it may survive except through restore. */
  memset(nd->engine_mem, 0xA5, S->ops->state_size);
}

void sim_node_free(sim_node *nd) {
  if (nd->open) rt_core_close(&nd->core);
  nd->open = 0;
  outbox_drop(nd, 0);
  free(nd->out);
  nd->out = NULL;
  rt_byz_free(&nd->byz);
  free(nd->byz_buf);
  nd->byz_buf = NULL;
  rt_memfile_free(&nd->wal);
  rt_memfile_free(&nd->ledger);
  rt_memfile_free(&nd->snap);
  rt_memfile_free(&nd->snapcert);
  free(nd->executed);
  nd->executed = NULL;
}
