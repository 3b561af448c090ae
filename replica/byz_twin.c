/* bft-replica --byzantine equivocate: copy B of an equivocating replica (see byz_twin.h). Copy
 * A is the replica's own core in replica.c; this file holds copy B's core, its engine timers and
 * the routing between the two copies and the peers. Both copies are honest code: what makes
 * the replica faulty is only that two of them sign under one key. */
#include "replica/byz_twin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocols/request.h"
#include "replica/replica.h"

#define COMP "byzantine"

struct rt_byz_twin {
  rt_replica *r;
  rt_core core; /* copy B */
  int core_open, core_ready;
  rt_log log;   /* copy B's own lines: warnings and errors only (copy A logs the rest) */
  uv_timer_t timers[BFT_MAX_TIMERS];
  int timers_ready, stopped;
  uint8_t reach[BFT_MAX_REPLICAS]; /* RT_BYZ_TWIN_A | RT_BYZ_TWIN_B: which copies speak with i */
  uint64_t sent[2], held_back[2], requests[2];
  char dir[RT_PATH_MAX];
};

/* ---- copy B's rt_io ------------------------------------------------------------------------- */

static void b_send(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_byz_twin_send(ctx, 1, to, kind, body, len);
}

static void b_broadcast(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_byz_twin *t = ctx;
  for (uint32_t i = 0; i < t->r->cluster->n; i++)
    if (i != t->r->self) rt_byz_twin_send(t, 1, i, kind, body, len);
}

static void on_b_timer(uv_timer_t *h) {
  rt_byz_twin *t = h->data;
  rt_core_on_timer(&t->core, (uint32_t)(h - t->timers)); /* a failure is seen in the next prepare */
}

static void b_timer_set(void *ctx, uint32_t id, uint64_t delay_ms) {
  rt_byz_twin *t = ctx;
  if (!t->stopped) uv_timer_start(&t->timers[id], on_b_timer, delay_ms, 0);
}

static void b_timer_cancel(void *ctx, uint32_t id) {
  rt_byz_twin *t = ctx;
  uv_timer_stop(&t->timers[id]);
}

static void b_replied(void *ctx, uint32_t client) {
  rt_byz_twin *t = ctx;
  rt_replica_reply(t->r, &t->core, client);
}

static uint64_t b_now(void *ctx) { return uv_now(((rt_byz_twin *)ctx)->r->loop); }

/* ---- routing -------------------------------------------------------------------------------- */

void rt_byz_twin_send(rt_byz_twin *t, uint32_t side, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  if (to >= t->r->cluster->n || to == t->r->self) return;
  if (!(t->reach[to] & (1u << side))) {
    t->held_back[side]++; /* the other world never hears this copy */
    return;
  }
  t->sent[side]++;
  rt_replica_send_peer(t->r, to, kind, body, len);
}

rt_core *rt_byz_twin_core_for(rt_byz_twin *t, const uint8_t *req, uint32_t len) {
  bft_request rq;
  if (bft_request_decode(req, len, &rq) != 0) return &t->r->core;
  uint32_t side = rt_byz_twin_side(rq.seq);
  t->requests[side]++;
  return side ? &t->core : &t->r->core;
}

int rt_byz_twin_on_peer_frame(rt_byz_twin *t, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len) {
  if (from >= t->r->cluster->n || from == t->r->self) return BFT_E_UNKNOWN_SENDER;
  if (kind == WIRE_KIND_REQUEST) /* forwarded by a backup: by seq parity, as from a client */
    return rt_core_on_peer_frame(rt_byz_twin_core_for(t, body, len), from, kind, body, len);
  int rc = BFT_E_STATE, any = 0;
  if (t->reach[from] & RT_BYZ_TWIN_A) {
    rc = rt_core_on_peer_frame(&t->r->core, from, kind, body, len);
    any |= rc == 0;
  }
  if (t->reach[from] & RT_BYZ_TWIN_B) {
    int rb = rt_core_on_peer_frame(&t->core, from, kind, body, len);
    if (!(t->reach[from] & RT_BYZ_TWIN_A)) rc = rb;
    any |= rb == 0;
  }
  return any ? 0 : rc;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static int twin_fail(char *err, size_t errlen, int rc, const char *what) {
  snprintf(err, errlen, "--byzantine equivocate: %s", what);
  return rc;
}

int rt_byz_twin_open(rt_byz_twin **out, rt_replica *r, const char *data_dir, char *err, size_t errlen) {
  *out = NULL;
  if (r->cluster->n < 4) return twin_fail(err, errlen, BFT_E_CONFIG, "needs a cluster of at least 4 replicas");
  rt_byz_twin *t = calloc(1, sizeof *t);
  if (!t) return twin_fail(err, errlen, BFT_E_NOMEM, "out of memory");
  t->r = r;
  *out = t; /* from here on rt_byz_twin_stop/free release whatever was set up */
  for (uint32_t i = 0; i < r->cluster->n; i++) t->reach[i] = (uint8_t)rt_byz_twin_reach(r->cluster->n, r->self, i);
  for (uint32_t i = 0; i < BFT_MAX_TIMERS; i++) {
    uv_timer_init(r->loop, &t->timers[i]);
    t->timers[i].data = t;
  }
  t->timers_ready = 1;
  if ((size_t)snprintf(t->dir, sizeof t->dir, "%s/twin-b", data_dir) >= sizeof t->dir)
    return twin_fail(err, errlen, BFT_E_INVAL, "data folder path too long");
  if (mkdir(t->dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "--byzantine equivocate: cannot create %s: %s", t->dir, strerror(errno));
    return BFT_E_IO;
  }
  rt_log_init(&t->log, r->log.level > RT_LOG_WARN ? r->log.level : RT_LOG_WARN, r->log.out, (long)r->self);
  rt_core_config cc = {.cluster = r->cluster, .kp = &r->kp, .self = r->self, .ops = r->ops, .data_dir = t->dir,
                       .log = &t->log, .vpool = r->vpool};
  cc.io = (rt_io){.ctx = t, .send = b_send, .broadcast = b_broadcast, .timer_set = b_timer_set,
                  .timer_cancel = b_timer_cancel, .replied = b_replied, .now_ms = b_now};
  char e[384];
  int rc = rt_core_open(&t->core, &cc, e, sizeof e);
  t->core_open = 1;
  if (rc) {
    snprintf(err, errlen, "--byzantine equivocate: copy B in %s: %s", t->dir, e);
    return rc;
  }
  t->core_ready = 1;
  t->core.defer_pulls = 1;
  char a[160] = "", b[160] = "", both[16] = "";
  size_t al = 0, bl = 0;
  for (uint32_t i = 0; i < r->cluster->n; i++) {
    if (t->reach[i] == RT_BYZ_TWIN_A) al += (size_t)snprintf(a + al, sizeof a - al, "%s%u", al ? "+" : "", i);
    if (t->reach[i] == RT_BYZ_TWIN_B) bl += (size_t)snprintf(b + bl, sizeof b - bl, "%s%u", bl ? "+" : "", i);
    if (t->reach[i] == (RT_BYZ_TWIN_A | RT_BYZ_TWIN_B)) snprintf(both, sizeof both, "%u", i);
    if (al >= sizeof a || bl >= sizeof b) break;
  }
  rt_logf(&r->log, RT_LOG_WARN, COMP,
          "event=byzantine_twin copy_a_peers=%s copy_b_peers=%s bridge=%s copy_b_dir=%s copy_b_height=%llu "
          "note=\"EQUIVOCATING: two engines sign under this replica's key, each talking to part of the cluster and "
          "fed the client requests of one seq parity\"",
          a, b, both, t->dir, (unsigned long long)t->core.ledger.head);
  return 0;
}

int rt_byz_twin_start(rt_byz_twin *t) { return rt_core_start(&t->core); }

int rt_byz_twin_prepare(rt_byz_twin *t) {
  if (t->stopped) return 0;
  if (rt_core_answer_pulls(&t->core) != 0 || rt_core_sync(&t->core) != 0) return -1;
  return 0;
}

void rt_byz_twin_describe(const rt_byz_twin *t, char *buf, size_t cap) {
  bft_engine_status st;
  rt_core_status(&t->core, &st);
  snprintf(buf, cap,
           " twin_b_height=%llu twin_b_view=%llu twin_a_frames=%llu twin_b_frames=%llu twin_a_held_back=%llu "
           "twin_b_held_back=%llu twin_a_requests=%llu twin_b_requests=%llu",
           (unsigned long long)t->core.ledger.head, (unsigned long long)st.view, (unsigned long long)t->sent[0],
           (unsigned long long)t->sent[1], (unsigned long long)t->held_back[0], (unsigned long long)t->held_back[1],
           (unsigned long long)t->requests[0], (unsigned long long)t->requests[1]);
}

void rt_byz_twin_stop(rt_byz_twin *t) {
  if (!t || t->stopped) return;
  t->stopped = 1;
  if (t->core_ready && !t->core.failed) (void)rt_core_sync(&t->core); /* a failure is logged by the core */
  if (t->timers_ready)
    for (uint32_t i = 0; i < BFT_MAX_TIMERS; i++)
      if (!uv_is_closing((uv_handle_t *)&t->timers[i])) uv_close((uv_handle_t *)&t->timers[i], NULL);
}

void rt_byz_twin_free(rt_byz_twin *t) {
  if (!t) return;
  if (t->core_open) rt_core_close(&t->core);
  free(t);
}
