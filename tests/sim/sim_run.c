/* One simulated run from one seed: the event loop, the clients, routing of frames between the
 * nodes (each a real replica runtime, see sim_node.c) through the simulated network, and the
 * final judgement. Everything a run touches lives in its sim_ctx; the world (keys, requests) is
 * shared read-only. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim_internal.h"

/* ---- reporting ------------------------------------------------------------------------------ */

void sim_fail(sim_ctx *S, int outcome, const char *fmt, ...) {
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

void sim_vlog(sim_ctx *S, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(S->vb, "[%12.3f ms] ", (double)S->now / 1000.0);
  vfprintf(S->vb, fmt, ap);
  fputc('\n', S->vb);
  va_end(ap);
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Every processed event goes into the trace digest: two runs agree on it only if they did the
 * same things in the same order at the same virtual times. */
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

int sim_push(sim_ctx *S, const sim_event *ev) {
  if (sim_heap_push(&S->heap, ev) == 0) return 0;
  sim_fail(S, SIM_VIOLATION, "bound: event queue full (%u events queued): message storm", S->heap.count);
  return -1;
}

/* ---- frames --------------------------------------------------------------------------------- */

sim_msg *sim_msg_new(uint8_t kind, const uint8_t *body, uint32_t len) {
  sim_msg *m = malloc(sizeof *m + len);
  if (!m) return NULL;
  m->refs = 1; /* the creator's */
  m->len = len;
  m->kind = kind;
  memcpy(m->body, body, len);
  bft_digest(m->digest, body, len);
  return m;
}

void sim_msg_unref(sim_msg *m) {
  if (m && --m->refs == 0) free(m);
}

static void free_payload(sim_event *ev) {
  if (ev->type == EV_MSG) sim_msg_unref(ev->p);
  ev->p = NULL;
}

/* Twins split the cluster in two worlds: a frame from a node in world w reaches replica `to`
 * only if `to` lives in w (an ordinary replica) or through its copy in w (a twinned one). */
static uint32_t node_world(const sim_ctx *S, const sim_node *nd) {
  return S->twinned[nd->id] ? nd->side : S->world[nd->id];
}

static void route_to_node(sim_ctx *S, const sim_node *src, uint32_t to, uint32_t dst, sim_msg *m) {
  uint64_t at[2];
  uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], src->id, to, S->now, at);
  for (uint32_t c = 0; c < copies; c++) {
    sim_event ev = {.time = at[c], .type = EV_MSG, .kind = m->kind, .node = dst, .from = src->id, .p = m};
    if (sim_push(S, &ev) == 0) m->refs++;
  }
}

void sim_route(sim_ctx *S, const sim_node *src, uint32_t to, sim_msg *m) {
  if (to >= S->n || to == src->id) return;
  uint32_t w = node_world(S, src);
  if (S->twinned[to]) {
    if (w != 1) route_to_node(S, src, to, to, m); /* copy 0 */
    if (w != 0) route_to_node(S, src, to, S->twin_node[to], m);
  } else if (!S->twinned[src->id] || S->world[to] == w || S->world[to] == SIM_WORLD_BOTH) {
    route_to_node(S, src, to, to, m);
  }
}

/* ---- clients -------------------------------------------------------------------------------- */

static void client_send(sim_ctx *S, uint32_t idx) {
  for (uint32_t i = 0; i < S->nnodes; i++) {
    const sim_node *nd = &S->nodes[i];
    if (!sim_faults_gets_request(S, nd, idx)) continue;
    uint64_t at[2];
    uint32_t copies = sim_net_route(&S->net, &S->rng[RNG_NET], SIM_NET_CLIENT, nd->id, S->now, at);
    for (uint32_t c = 0; c < copies; c++) {
      sim_event ev = {.time = at[c], .type = EV_REQ, .node = i, .from = SIM_NET_CLIENT, .a = idx};
      sim_push(S, &ev);
    }
  }
  sim_event retry = {.time = S->now + S->o->client_timeout_ms * 1000, .type = EV_CLIENT_RETRY,
                     .node = sim_world_request(S->w, idx)->client, .from = SIM_NET_CLIENT, .a = idx};
  sim_push(S, &retry);
}

/* A client has one request in flight (the runtime executes a client's requests in seq order). */
static void client_submit_one(sim_ctx *S, uint32_t c) {
  sim_client *cl = &S->clients[c];
  if (cl->inflight || cl->next_k >= cl->total) return;
  uint32_t idx = c + cl->next_k * S->C;
  cl->next_k++;
  cl->inflight++;
  VLOG(S, "client%u submits request %u (seq %" PRIu64 ")", c, idx, sim_world_request(S->w, idx)->seq);
  client_send(S, idx);
}

/* Each client submits, waits for f+1 replies, thinks, submits again. Thinking spreads the
 * workload over the fault window, so faults strike while requests are in flight. */
static void client_think(sim_ctx *S, uint32_t c, uint64_t max_us) {
  if (S->think_us == 0) {
    client_submit_one(S, c);
    return;
  }
  sim_event ev = {.time = S->now + sim_rng_range(&S->rng[RNG_CLIENT], 0, max_us), .type = EV_CLIENT_NEXT, .node = c,
                  .from = SIM_NET_CLIENT};
  sim_push(S, &ev);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static void on_msg(sim_ctx *S, const sim_event *ev) {
  sim_node *nd = &S->nodes[ev->node];
  if (!nd->up || sim_net_blocked(&S->net, ev->from, nd->id)) return;
  sim_node_frame(S, nd, ev->from, ev->p);
}

static void dispatch(sim_ctx *S, sim_event *ev) {
  switch (ev->type) {
    case EV_MSG:
      trace_event(S, ev, ((sim_msg *)ev->p)->digest);
      on_msg(S, ev);
      break;
    case EV_TIMER:
      trace_event(S, ev, NULL);
      if (S->nodes[ev->node].up) sim_node_timer(S, &S->nodes[ev->node], ev->kind, ev->b);
      break;
    case EV_REQ:
      trace_event(S, ev, sim_world_request(S->w, (uint32_t)ev->a)->digest);
      if (S->nodes[ev->node].up) sim_node_request(S, &S->nodes[ev->node], (uint32_t)ev->a);
      break;
    case EV_CLIENT_RETRY:
      trace_event(S, ev, NULL);
      if ((uint32_t)__builtin_popcountll(S->replied_mask[ev->a]) <= S->f) {
        VLOG(S, "client%u retransmits request %" PRIu64, ev->node, ev->a);
        client_send(S, (uint32_t)ev->a);
      }
      break;
    case EV_REPLY:
      trace_event(S, ev, NULL);
      VLOG(S, "client%u request %" PRIu64 " complete (f+1 replies)", ev->node, ev->a);
      S->clients[ev->node].inflight--;
      client_think(S, ev->node, 2 * S->think_us);
      break;
    case EV_CLIENT_NEXT:
      trace_event(S, ev, NULL);
      client_submit_one(S, ev->node);
      break;
    case EV_FAULT:
      trace_event(S, ev, NULL);
      sim_faults_on_event(S, ev);
      break;
  }
}

/* ---- scratch and setup ---------------------------------------------------------------------- */

sim_scratch *sim_scratch_new(void) { return calloc(1, sizeof(sim_scratch)); }

static void scratch_release(sim_scratch *scr) {
  for (uint32_t i = 0; i < SIM_MAX_NODES; i++) {
    free(scr->state[i]);
    scr->state[i] = NULL;
  }
  scr->state_size = 0;
}

void sim_scratch_free(sim_scratch *scr) {
  if (!scr) return;
  scratch_release(scr);
  for (uint32_t i = 0; i < SIM_MAX_NODES; i++) rt_core_bufs_free(scr->bufs[i]);
  free(scr);
}

static int scratch_fit(sim_scratch *scr, size_t state_size, uint32_t nodes) {
  if (scr->state_size != state_size) { /* another engine: start over */
    scratch_release(scr);
    scr->state_size = state_size;
  }
  for (uint32_t i = 0; i < nodes; i++) {
    if (!scr->state[i] && !(scr->state[i] = malloc(state_size ? state_size : 1))) return BFT_E_NOMEM;
    if (!scr->bufs[i] && !(scr->bufs[i] = rt_core_bufs_new())) return BFT_E_NOMEM;
  }
  return 0;
}

static void ctx_free(sim_ctx *S) {
  sim_event ev;
  while (sim_heap_pop(&S->heap, &ev)) free_payload(&ev);
  sim_heap_free(&S->heap);
  for (uint32_t i = 0; i < S->nnodes; i++) sim_node_free(&S->nodes[i]);
  free(S->replied_mask);
  free(S->decided);
  free(S->decided_by);
  free(S);
}

/* Nodes 0..n-1 are the replicas (node index = replica id); each twinned id gets a second node. */
static int make_nodes(sim_ctx *S) {
  S->nnodes = S->n;
  for (uint32_t id = 0; id < S->n; id++)
    if (S->twinned[id]) S->twin_node[id] = S->nnodes++;
  if (scratch_fit(S->scr, S->ops->state_size, S->nnodes)) return BFT_E_NOMEM;
  for (uint32_t i = 0; i < S->nnodes; i++) {
    sim_node *nd = &S->nodes[i];
    nd->S = S;
    nd->idx = i;
    nd->id = i;
    if (i >= S->n) {
      for (uint32_t id = 0; id < S->n; id++)
        if (S->twinned[id] && S->twin_node[id] == i) nd->id = id;
      nd->side = 1;
    }
    nd->plan = S->plan[nd->id];
    nd->engine_mem = S->scr->state[i];
    nd->bufs = S->scr->bufs[i];
    nd->executed = calloc(S->R ? S->R : 1, 1);
    if (!nd->executed) return BFT_E_NOMEM;
    if (sim_faults_modes(nd->plan) && !(nd->byz_buf = malloc(WIRE_FRAME_MAX_BODY))) return BFT_E_NOMEM;
  }
  return 0;
}

static int ctx_setup(sim_ctx *S, const sim_world *w, const sim_options *o, uint64_t seed) {
  S->w = w;
  S->o = o;
  S->ops = sim_world_ops(w);
  S->n = o->n;
  S->f = (o->n - 1) / 3;
  S->R = o->requests;
  S->C = sim_world_clients(w);
  for (int s = 1; s < RNG__COUNT; s++) sim_rng_seed(&S->rng[s], seed, (uint64_t)s);
  rt_log_init(&S->log, S->vb && o->verbose > 1 ? RT_LOG_DEBUG : RT_LOG_ERROR, S->vb && o->verbose > 1 ? S->vb : NULL, -1);
  S->replied_mask = calloc(S->R ? S->R : 1, sizeof *S->replied_mask);
  if (!S->replied_mask || sim_heap_init(&S->heap, SIM_MAX_EVENTS)) return BFT_E_NOMEM;
  int rc = sim_faults_assign(S);
  if (!rc) rc = make_nodes(S);
  if (rc) return rc;
  sim_net_config nc = {.delay_min_us = o->delay_min_us, .delay_max_us = o->delay_max_us, .tail = o->tail,
                       .tail_max_us = o->tail_max_us, .drop = o->drop, .dup = o->dup, .reorder = o->reorder};
  sim_net_init(&S->net, &nc, S->n);
  S->net.faulty = 1;
  S->fault_end = o->fault_ms * 1000;
  S->deadline = S->fault_end + o->bound_ms * 1000;
  bft_digest_init(&S->trace);
  return 0;
}

static void start_clients(sim_ctx *S) {
  /* Pacing: each client gets an equal share of the requests and of the fault window. */
  S->think_us = S->o->think_us >= 0 ? (uint64_t)S->o->think_us : S->fault_end * S->C / (S->R ? S->R : 1);
  for (uint32_t c = 0; c < S->C; c++) {
    S->clients[c].total = S->R / S->C + (c < S->R % S->C ? 1 : 0);
    client_think(S, c, S->think_us);
  }
}

/* --lone-timer: is replica n-1 inside the quorum, i.e. in the same view and view-change state
 * as at least 2f other correct replicas? Track the longest stretch outside. */
static void watch_lone(sim_ctx *S) {
  uint32_t r = S->n - 1;
  const sim_node *lone = &S->nodes[r];
  if (!lone->up || !lone->open) {
    S->outside_since = 0;
    return;
  }
  bft_engine_status me, st;
  sim_node_status(lone, &me);
  uint32_t with = 0;
  for (uint32_t i = 0; i + 1 < S->n; i++) {
    const sim_node *nd = &S->nodes[i];
    if (!nd->up || !nd->open || nd->plan) continue;
    sim_node_status(nd, &st);
    if (st.view == me.view && st.changing_view == me.changing_view) with++;
  }
  int outside = with < 2 * S->f;
  if (!outside) {
    S->outside_since = 0;
    return;
  }
  if (!S->outside_since) S->outside_since = S->now ? S->now : 1;
  uint64_t len = S->now - S->outside_since;
  if (len > S->res->outside_max_us) S->res->outside_max_us = len;
}

static void run_loop(sim_ctx *S) {
  sim_event ev;
  while (!S->res->outcome && sim_heap_pop(&S->heap, &ev)) {
    if (ev.time > S->deadline) {
      free_payload(&ev);
      S->now = S->deadline;
      break;
    }
    S->now = ev.time;
    S->res->events++;
    dispatch(S, &ev);
    free_payload(&ev);
    if (S->o->lone_div > 1) watch_lone(S);
    if (S->dirty && S->fault_over) {
      uint32_t k;
      S->dirty = 0;
      if (sim_check_all_done(S)) break;
      S->required_done = S->requests_done == S->R && sim_check_first_short(S, &k) < 0;
    }
    if (S->required_done && S->now >= S->last_progress + SIM_QUIET_US) {
      VLOG(S, "quiet for %llu s with the required work done: judging now", SIM_QUIET_US / 1000000ull);
      break;
    }
  }
}

static void summarize(sim_ctx *S) {
  for (uint32_t i = 0; i < S->nnodes; i++) {
    sim_node *nd = &S->nodes[i];
    bft_engine_status st = {0};
    sim_node_status(nd, &st);
    if (!nd->plan) S->res->equivocations += st.equivocations;
    if (!nd->plan && nd->open) S->res->evidence += nd->core.ctr.evidence;
    if (nd->open && nd->core.ctr.evidence_refused && !S->res->outcome)
      sim_fail(S, SIM_VIOLATION, "runtime: replica %u refused evidence its engine found (unverifiable)", nd->id);
    S->res->byz_msgs += nd->byz.dropped + nd->byz.corrupted + nd->byz.bad_sigs + nd->byz.replayed + nd->byz.withheld;
    if (nd->open) S->res->fetches += nd->core.ctr.fetch_sent;
    if (S->vb)
      VLOG(S, "n%u replica %u%s%s %s ledger=%" PRIu64 " executed=%u/%u view=%" PRIu64 " leader=%u wal=%zuB", i, nd->id,
           nd->plan ? " " : "", nd->plan ? sim_byz_name(nd->plan) : "", nd->up ? "up  " : "DOWN", nd->head,
           nd->nexecuted, S->R, st.view, st.leader, nd->wal.len);
  }
  if (S->vb)
    VLOG(S, "net: routed=%" PRIu64 " dropped=%" PRIu64 " duplicated=%" PRIu64 " blocked=%" PRIu64, S->net.routed,
         S->net.dropped, S->net.duplicated, S->net.blocked);
}

int sim_run(const sim_world *w, const sim_options *o, uint64_t seed, sim_scratch *scr, FILE *verbose,
            sim_result *res) {
  memset(res, 0, sizeof *res);
  sim_scratch *own = NULL;
  if (!scr && !(scr = own = sim_scratch_new())) return BFT_E_NOMEM;
  sim_ctx *S = calloc(1, sizeof *S);
  if (!S) {
    sim_scratch_free(own);
    return BFT_E_NOMEM;
  }
  S->scr = scr;
  S->res = res;
  S->vb = verbose;
  int rc = ctx_setup(S, w, o, seed);
  if (rc) {
    ctx_free(S);
    sim_scratch_free(own);
    return rc;
  }
  VLOG(S, "seed %" PRIu64 ": %s n=%u f=%u requests=%u clients=%u byzantine=%u (%s) fault window %" PRIu64 " ms", seed,
       S->ops->name, S->n, S->f, S->R, S->C, res->byzantine, sim_byz_name(o->byzantine), o->fault_ms);
  for (uint32_t i = 0; i < S->nnodes && !res->outcome; i++) sim_node_start(S, &S->nodes[i]);
  sim_faults_schedule(S);
  start_clients(S);
  run_loop(S);
  if (!res->outcome) sim_check_liveness(S);
  if (!res->outcome && o->lone_div > 1 && o->outside_bound_ms && res->outside_max_us > o->outside_bound_ms * 1000) {
    res->outcome = SIM_STALLED;
    snprintf(res->reason, sizeof res->reason,
             "liveness: replica %u (request timer 1/%u of the others') stayed outside the quorum for %.0f ms "
             "(bound %llu ms)", S->n - 1, o->lone_div, (double)res->outside_max_us / 1000.0,
             (unsigned long long)o->outside_bound_ms);
  }
  res->end_us = S->now;
  bft_digest_final(&S->trace, res->trace);
  summarize(S);
  res->requests_done = S->requests_done;
  ctx_free(S);
  sim_scratch_free(own);
  return 0;
}
