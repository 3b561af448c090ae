/* The runtime core: engine driving (events in, actions out), client request admission,
 * execution of committed batches into the application and the ledger, state transfer. */
#include "replica/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "replica/core_app.h"
#include "replica/core_verify.h"
#include "replica/durable.h"
#include "replica/metrics.h"
#include "replica/rt_limits.h"

#define COMP "core"

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- failure: our own invariants, storage errors ------------------------------------------ */

#define core_fail rt_core_fail
int rt_core_fail(rt_core *c, int rc, const char *fmt, ...) {
  if (!c->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    c->failed = 1;
    rt_logf(c->log, RT_LOG_ERROR, COMP, "event=fatal reason=\"%s\"", c->fail_msg);
  }
  return rc ? rc : BFT_E_STATE;
}

/* ---- the engine env: Ed25519 with the cluster keys; batches checked through the cache ---- */

/* The default crypto: Ed25519 with this replica's key and the cluster file's keys. */
static int ed_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  return bft_sign(c->kp, c->cluster->id, tag, msg, len, sig);
}

static int ed_verify(void *ctx, uint32_t signer, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                     uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  return bft_verify(pk, c->cluster->id, tag, msg, len, sig);
}

static void env_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  if (c->crypto.sign(c->crypto.ctx, tag, msg, len, sig) != 0) {
    /* Never a plausible value: the process stops before anything signed with it leaves. */
    memset(sig, 0, BFT_SIG_LEN);
    core_fail(c, BFT_E_CRYPTO, "signing under tag %s failed", tag);
  }
}

static int env_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                      const uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  if (signer >= c->cluster->n) return BFT_E_UNKNOWN_SENDER;
  return c->crypto.verify(c->crypto.ctx, signer, c->cluster->replicas[signer].pk, tag, msg, len, sig);
}

/* ---- stepping ------------------------------------------------------------------------------ */

static void start_fetch(rt_core *c, uint32_t to, uint64_t seq, int force);

static int apply_send(rt_core *c, const bft_action *a) {
  if (a->kind < 1 || a->kind > WIRE_KIND_ENGINE_LAST - WIRE_KIND_ENGINE)
    return core_fail(c, BFT_E_STATE, "engine emitted message kind %u", a->kind);
  uint8_t wk = (uint8_t)(WIRE_KIND_ENGINE + a->kind);
  if (a->type == BFT_ACT_BROADCAST) {
    c->io.broadcast(c->io.ctx, wk, a->data, a->len);
  } else {
    if (a->to >= c->cfg.n || a->to == c->self)
      return core_fail(c, BFT_E_STATE, "engine sent to replica %u", a->to);
    c->io.send(c->io.ctx, a->to, wk, a->data, a->len);
  }
  return 0;
}

/* Requests of a batch another leader proposed: not handed out again in this pull epoch. */
static void mark_inflight(rt_core *c, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  if (bft_batch_open(&br, batch, len) != 0) return;
  const uint8_t *rq;
  uint32_t rl;
  while (bft_batch_next(&br, &rq, &rl) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    rt_pool_mark_pulled(&c->pool, d, c->ledger.head);
  }
}

/* Keep evidence the engine found, after checking both signatures ourselves (it is what we will
 * show others); logged once per offender and view. */
static void keep_evidence(rt_core *c, const bft_action *a) {
  wire_reader r;
  wire_reader_init(&r, a->data, a->len);
  uint32_t l1, l2;
  const uint8_t *m1 = wire_get_blob(&r, &l1, BFT_MAX_ENGINE_MSG);
  const uint8_t *m2 = wire_get_blob(&r, &l2, BFT_MAX_ENGINE_MSG);
  int ok = wire_reader_finish(&r) == 0 && a->to < c->cfg.n && a->to != c->self && a->len <= RT_EVIDENCE_MAX_BYTES &&
           (l1 != l2 || memcmp(m1, m2, l1) != 0) &&
           bft_engine_check_message(c->ops, &c->cfg, &c->env, a->to, a->kind, m1, l1) == 0 &&
           bft_engine_check_message(c->ops, &c->cfg, &c->env, a->to, a->kind, m2, l2) == 0;
  if (!ok) {
    c->ctr.evidence_refused++;
    rt_logf_rl(c->log, &c->rl_msg, RT_LOG_ERROR, COMP, "event=evidence_refused offender=%u kind=%u", a->to, a->kind);
    return;
  }
  bft_engine_status st;
  c->ops->status(c->engine, &st);
  uint8_t *copy = malloc(a->len);
  if (!copy) return;
  memcpy(copy, a->data, a->len);
  if (c->nevidence < RT_EVIDENCE_MAX) c->nevidence++;
  rt_evidence *e = &c->evidence[c->evidence_next];
  c->evidence_next = (c->evidence_next + 1) % RT_EVIDENCE_MAX;
  c->evidence_bytes -= e->data ? e->len : 0;
  free(e->data);
  *e = (rt_evidence){.offender = a->to, .kind = a->kind, .view = st.view, .len = a->len, .data = copy};
  c->evidence_bytes += a->len;
  while (c->evidence_bytes > RT_EVIDENCE_MAX_BYTES) { /* the oldest go first */
    rt_evidence *o = &c->evidence[(c->evidence_next + RT_EVIDENCE_MAX - c->nevidence) % RT_EVIDENCE_MAX];
    c->evidence_bytes -= o->len;
    free(o->data);
    *o = (rt_evidence){0};
    c->nevidence--;
  }
  c->ctr.evidence++;
  c->evidence_per[a->to]++;
  if (c->evidence_logged_view[a->to] != st.view + 1) {
    c->evidence_logged_view[a->to] = st.view + 1;
    const char *name = c->ops->msg_name ? c->ops->msg_name(a->kind) : NULL;
    rt_logf(c->log, RT_LOG_WARN, COMP,
            "event=equivocation offender=%u kind=%s view=%llu evidence_from_offender=%llu note=\"two conflicting "
            "messages signed by the same replica are kept as evidence\"",
            a->to, name ? name : "?", (unsigned long long)st.view, (unsigned long long)c->evidence_per[a->to]);
  }
}

int rt_core_evidence(const rt_core *c, uint8_t *out, uint32_t cap) {
  wire_writer w;
  wire_writer_init(&w, out, cap);
  wire_put_blob(&w, c->ops->name, (uint32_t)strlen(c->ops->name));
  size_t count_at = w.len;
  wire_put_u32(&w, 0);
  uint32_t n = 0;
  for (uint32_t k = 0; k < c->nevidence; k++) { /* oldest first */
    const rt_evidence *e = &c->evidence[(c->evidence_next + RT_EVIDENCE_MAX - c->nevidence + k) % RT_EVIDENCE_MAX];
    if (!e->data || w.len + 4 + 1 + 8 + 4 + e->len > cap) break;
    wire_put_u32(&w, e->offender);
    wire_put_u8(&w, e->kind);
    wire_put_u64(&w, e->view);
    wire_put_blob(&w, e->data, e->len);
    n++;
  }
  if (w.err) return w.err;
  put_le32(out + count_at, n);
  return (int)w.len;
}

static int apply_action(rt_core *c, const bft_action *a) {
  switch (a->type) {
    case BFT_ACT_SEND:
    case BFT_ACT_BROADCAST:
      return apply_send(c, a);
    case BFT_ACT_TIMER_SET:
    case BFT_ACT_TIMER_CANCEL:
      if (a->timer_id >= BFT_MAX_TIMERS) return core_fail(c, BFT_E_STATE, "engine timer id %u", a->timer_id);
      if (a->type == BFT_ACT_TIMER_CANCEL) {
        c->io.timer_cancel(c->io.ctx, a->timer_id);
      } else {
        c->timer_tags[a->timer_id] = a->timer_tag;
        c->io.timer_set(c->io.ctx, a->timer_id, a->delay_ms);
      }
      return 0;
    case BFT_ACT_PERSIST: {
      int rc = rt_wal_append(&c->wal, a->data, a->len);
      if (rc) return core_fail(c, rc, "cannot append to the WAL: %s", bft_strerror(rc));
      c->ctr.persists++;
      return 0;
    }
    case BFT_ACT_PROPOSE_PULL:
      c->pull_pending = a->max_requests ? a->max_requests : 1;
      return 0;
    case BFT_ACT_COMMIT:
      return rt_core_execute(c, a->seq, a->digest, a->data, a->len, a->cert, a->cert_len, NULL);
    case BFT_ACT_FETCH:
      start_fetch(c, a->to, a->seq, 0);
      return 0;
    case BFT_ACT_INFLIGHT:
      mark_inflight(c, a->data, a->len);
      return 0;
    case BFT_ACT_EVIDENCE:
      keep_evidence(c, a);
      return 0;
    default:
      return core_fail(c, BFT_E_STATE, "engine emitted action type %u", a->type);
  }
}

static void check_epoch(rt_core *c) {
  bft_engine_status st;
  c->ops->status(c->engine, &st);
  c->repropose_after = st.repropose_after;
  if (st.epoch != c->epoch_view) { /* a new leader must be able to re-propose everything */
    c->epoch_view = st.epoch;
    c->pull_pending = 0; /* a pull of the old view is not answered in the new one */
    rt_pool_new_epoch(&c->pool);
    rt_logf(c->log, RT_LOG_INFO, COMP, "event=view view=%llu leader=%u", (unsigned long long)st.view,
            st.leader);
  }
}

/* Run the actions the last step produced, in order. */
static int apply_actions(rt_core *c) {
  if (c->acts.overflow) return core_fail(c, BFT_E_FULL, "engine action list overflowed");
  /* The epoch first: a pull or INFLIGHT mark in these actions belongs to the epoch the step
   * moved to (an engine that changes view and pulls in one step must get its batch), while a
   * pull left over from an earlier step is dropped with the old epoch. */
  check_epoch(c);
  for (uint32_t i = 0; i < c->acts.count && !c->failed; i++) apply_action(c, &c->acts.items[i]);
  return c->failed ? BFT_E_STATE : 0;
}

static int step_once(rt_core *c, const bft_event *ev) {
  bft_actions_reset(&c->acts);
  int rc = c->ops->step(c->engine, ev, &c->acts);
  if (rc < 0 && c->acts.count) c->ctr.half_applied++; /* carried out anyway: the state did move */
  int arc = apply_actions(c);
  return arc ? arc : rc;
}

/* Answer deferred pulls: PROPOSE_PULL is served right after the actions that asked for it. */
/* Adaptive batching when pulls are deferred: with nothing of ours in flight a pull is answered
 * at once (lowest latency); while a batch is in flight it waits until a full batch is pending
 * or the in-flight requests executed, so a busy leader proposes large batches (the cost of a
 * block is its votes' signatures, the same for 1 request as for 256). */
static int pull_may_wait(const rt_core *c, uint32_t max) {
  return c->defer_pulls && c->pool.inflight > 0 && c->pool.count - c->pool.inflight < max;
}

static int drain_pulls(rt_core *c) {
  while (c->pull_pending && !c->failed) {
    uint32_t max = c->pull_pending;
    if (pull_may_wait(c, max)) break;
    c->pull_pending = 0;
    if (!rt_pool_has_unpulled(&c->pool) && !rt_pool_expire(&c->pool, c->ledger.head, c->repropose_after)) break;
    bft_batch_writer bw;
    bft_batch_begin(&bw, c->bufs->batch_buf, BFT_MAX_BATCH_BYTES);
    uint32_t n = rt_pool_pull(&c->pool, max, &bw, c->ledger.head);
    if (!n) break;
    bft_event ev = {.type = BFT_EV_BATCH};
    ev.u.batch.data = c->bufs->batch_buf;
    ev.u.batch.len = bft_batch_end(&bw);
    ev.u.batch.count = n;
    c->ctr.pulls++;
    c->ctr.pulled_requests += n;
    rt_logf(c->log, RT_LOG_DEBUG, COMP, "event=propose requests=%u pool=%u", n, c->pool.count);
    if (step_once(c, &ev) < 0 && !c->failed) {
      /* Refused (the engine's state moved on): make those requests eligible again. */
      rt_pool_new_epoch(&c->pool);
    }
  }
  return c->failed ? BFT_E_STATE : 0;
}

static int run_event(rt_core *c, const bft_event *ev) {
  if (c->failed) return BFT_E_STATE;
  int rc = step_once(c, ev);
  int drc = c->defer_pulls ? 0 : drain_pulls(c);
  return drc ? drc : rc;
}

int rt_core_answer_pulls(rt_core *c) {
  if (c->failed) return BFT_E_STATE;
  if (c->nchecks && rt_core_run_checks(c) != 0 && c->failed) return BFT_E_STATE;
  return drain_pulls(c);
}

/* ---- execution ----------------------------------------------------------------------------- */

void rt_core_state_digest(rt_core *c, uint8_t out[BFT_DIGEST_LEN]) {
  uint8_t a[BFT_DIGEST_LEN], s[BFT_DIGEST_LEN];
  c->app.ops->digest(c->app.state, a);
  rt_sessions_digest(&c->sessions, s);
  bft_digest_ctx d;
  bft_digest_init(&d);
  bft_digest_update(&d, "bft/state", 9);
  bft_digest_update(&d, a, sizeof a);
  bft_digest_update(&d, s, sizeof s);
  bft_digest_final(&d, out);
}

/* Pick the requests of a batch that execute: permitted client, seq above its last executed
 * (also within this batch). Identical on every replica; returns how many. */
static uint32_t select_requests(rt_core *c, const uint8_t *batch, uint32_t len, uint64_t height) {
  bft_batch_reader br;
  c->ntouched = 0;
  if (bft_batch_open(&br, batch, len) != 0) return 0;
  const uint8_t *rq;
  uint32_t rl, n = 0;
  while (bft_batch_next(&br, &rq, &rl) == 1) {
    bft_request r;
    int client;
    if (bft_request_decode(rq, rl, &r) != 0 || (client = rt_sessions_find(&c->sessions, r.client)) < 0) {
      c->ctr.skipped++;
      continue;
    }
    c->bufs->xtouched[c->ntouched++] = (uint32_t)client;
    if (r.seq <= c->sessions.s[client].last_seq) {
      c->ctr.skipped++;
      continue;
    }
    rt_sessions_advance(&c->sessions, (uint32_t)client, r.seq, height);
    c->sessions.s[client].reply_mac = (uint8_t)bft_request_wants_mac(&r);
    c->bufs->xops[n] = (bft_app_op){.client_key = c->sessions.pks[client], .client = (uint32_t)client,
                                    .seq = r.seq, .op = r.op, .len = r.op_len};
    c->bufs->xclient[n] = (uint32_t)client;
    c->bufs->xseq[n] = r.seq;
    n++;
  }
  return n;
}

static int append_block(rt_core *c, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *batch,
                        uint32_t len, const uint8_t *cert, uint32_t cert_len) {
  bft_block b = {.height = seq, .cert = cert, .cert_len = cert_len, .batch = batch, .batch_len = len};
  memcpy(b.batch_digest, digest, BFT_DIGEST_LEN);
  memcpy(b.state_digest, c->state_digest, BFT_DIGEST_LEN);
  snprintf(b.protocol, sizeof b.protocol, "%s", c->ops->name);
  int rc = rt_ledger_append(&c->ledger, &b);
  if (rc) return core_fail(c, rc, "cannot append block %llu to the ledger: %s", (unsigned long long)seq,
                           bft_strerror(rc));
  if (c->io.committed) c->io.committed(c->io.ctx, &b, 0);
  return 0;
}

/* Execute committed batch `seq`. replayed != NULL when re-executing our own ledger at start:
 * then nothing is appended or answered, and the state digest must match the block's. */
int rt_core_execute(rt_core *c, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *batch,
                          uint32_t len, const uint8_t *cert, uint32_t cert_len, const bft_block *replayed) {
  uint64_t head = replayed ? seq - 1 : c->ledger.head;
  if (seq <= head) {
    rt_logf(c->log, RT_LOG_WARN, COMP, "event=commit_again seq=%llu head=%llu", (unsigned long long)seq,
            (unsigned long long)head);
    return 0;
  }
  if (seq != head + 1)
    return core_fail(c, BFT_E_STATE, "engine committed seq %llu after %llu (gap)", (unsigned long long)seq,
                     (unsigned long long)head);
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, batch, len);
  if (memcmp(d, digest, BFT_DIGEST_LEN) != 0)
    return core_fail(c, BFT_E_BAD_DIGEST, "committed batch %llu does not match its digest", (unsigned long long)seq);
  uint64_t t_commit = c->metrics && !replayed ? rt_metrics_now(c->metrics) : 0;
  uint32_t n = select_requests(c, batch, len, seq);
  if (replayed && seq <= c->app_skip_to) /* the application already holds this block */
    return rt_core_replay_held(c, replayed);
  int rc = rt_core_run_app(c, seq, n);
  if (rc) return rc;
  rt_core_state_digest(c, c->state_digest);
  /* Everything of these clients at or below their last executed seq can never run: drop it. */
  for (uint32_t i = 0; i < c->ntouched; i++)
    rt_pool_remove_upto(&c->pool, c->bufs->xtouched[i], c->sessions.s[c->bufs->xtouched[i]].last_seq);
  c->ctr.executed += n;
  if (replayed) {
    if (memcmp(c->state_digest, replayed->state_digest, BFT_DIGEST_LEN) != 0) {
      char ours[17], rec[17];
      rt_short_hex16(ours, c->state_digest);
      rt_short_hex16(rec, replayed->state_digest);
      return core_fail(c, BFT_E_BAD_DIGEST,
                       "application diverged at height %llu: re-executing our ledger gives state digest %s..., the "
                       "block records %s... (application %s is not deterministic, or its state is not the one the "
                       "ledger was built on)",
                       (unsigned long long)seq, ours, rec, c->app.ops->name);
    }
    if (c->io.committed) c->io.committed(c->io.ctx, replayed, 1);
    return 0;
  }
  rc = append_block(c, seq, digest, batch, len, cert, cert_len);
  if (!rc) rc = rt_dur_on_commit(c, seq);
  if (rc) return rc;
  c->ctr.commits++;
  if (c->attest_on) rt_core_attest_own(c, seq);
  if (c->metrics) rt_metrics_executed(c->metrics, t_commit, n, c->bufs->xclient, c->bufs->xseq);
  for (uint32_t i = 0; i < n; i++) c->io.replied(c->io.ctx, c->bufs->xclient[i]);
  rt_logf(c->log, RT_LOG_DEBUG, COMP, "event=commit height=%llu requests=%u", (unsigned long long)seq, n);
  return 0;
}

/* ---- opening ------------------------------------------------------------------------------- */

static int replay_block(void *arg, const bft_block *b) {
  rt_core *c = arg;
  int skip = rt_dur_replay_skip(c, b); /* covered by the snapshot restored at open */
  if (skip < 0) return skip;
  if (skip) {
    if (c->io.committed) c->io.committed(c->io.ctx, b, 1);
    return 0;
  }
  return rt_core_execute(c, b->height, b->batch_digest, b->batch, b->batch_len, b->cert, b->cert_len, b);
}

static int restore_record(void *arg, uint64_t off, const uint8_t *data, uint32_t len) {
  rt_core *c = arg;
  return c->ops->restore(c->engine, data, len);
}

rt_core_bufs *rt_core_bufs_new(void) {
  rt_core_bufs *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->items = calloc(BFT_MAX_ACTIONS, sizeof *b->items);
  b->arena = malloc(BFT_ACTION_ARENA);
  b->batch_buf = malloc(BFT_MAX_BATCH_BYTES);
  b->block_buf = malloc(BFT_MAX_BLOCK_BYTES);
  b->scratch = malloc(WIRE_FRAME_MAX_BODY);
  b->xops = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *b->xops);
  b->xres = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *b->xres);
  b->xclient = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *b->xclient);
  b->xseq = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *b->xseq);
  b->xtouched = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *b->xtouched);
  b->xarena = malloc(RT_APP_ARENA_BYTES(BFT_MAX_BATCH_REQUESTS));
  if (!b->items || !b->arena || !b->batch_buf || !b->block_buf || !b->scratch || !b->xops || !b->xres ||
      !b->xclient || !b->xseq || !b->xtouched || !b->xarena) {
    rt_core_bufs_free(b);
    return NULL;
  }
  return b;
}

void rt_core_bufs_free(rt_core_bufs *b) {
  if (!b) return;
  free(b->items);
  free(b->arena);
  free(b->batch_buf);
  free(b->block_buf);
  free(b->scratch);
  free(b->xops);
  free(b->xres);
  free(b->xclient);
  free(b->xseq);
  free(b->xtouched);
  free(b->xarena);
  free(b);
}

static int alloc_buffers(rt_core *c, rt_core_bufs *lent) {
  c->bufs = lent;
  if (!c->bufs) {
    c->bufs = rt_core_bufs_new();
    c->own_bufs = 1;
  }
  if (!c->engine) {
    c->engine = calloc(1, c->ops->state_size);
    c->own_engine = 1;
  }
  if (!c->bufs || !c->engine) return BFT_E_NOMEM;
  bft_actions_init(&c->acts, c->bufs->items, BFT_MAX_ACTIONS, c->bufs->arena, BFT_ACTION_ARENA);
  return 0;
}

static int init_modules(rt_core *c, const rt_core_config *cc) {
  int rc = alloc_buffers(c, cc->bufs);
  if (!rc && !cc->app) rc = rt_kv_init(&c->kv, 0, 0);
  if (!rc) rc = rt_sessions_init(&c->sessions, c->cluster, 0);
  if (!rc) rc = rt_pool_init(&c->pool, c->cluster->nclients, cc->pool_max_requests, 0, 0);
  if (!rc) rc = rt_vcache_init(&c->vcache, cc->vcache_sets);
  if (!rc) rc = rt_core_verify_init(c, cc);
  if (cc->app) c->app = *cc->app;
  else rt_kv_app(&c->app, &c->kv);
  if (!rc && c->app.ops->check) {
    c->checks = calloc(RT_CHECK_MAX, sizeof *c->checks);
    c->check_reasons = calloc(RT_CHECK_MAX, sizeof *c->check_reasons);
    c->check_verdicts = calloc(RT_CHECK_MAX, 1);
    if (!c->checks || !c->check_reasons || !c->check_verdicts) rc = BFT_E_NOMEM;
  }
  if (!rc && cc->attest_state) {
    rc = rt_attest_init(&c->attest, c->cluster->n, c->cluster->f, c->self);
    c->attest_on = rc == 0;
  }
  return rc;
}

/* cfg.head_*: the batch digests of the ledger's last blocks (up to one window) and the head's
 * certificate, for an engine whose records lag the ledger (see rt_core_sync: ledger first). */
static int set_head_hints(rt_core *c) {
  c->cfg.head_digests = NULL;
  c->cfg.head_count = c->cfg.head_cert_len = 0;
  c->cfg.head_cert = NULL;
  free(c->hint_digs);
  free(c->hint_cert);
  c->hint_digs = NULL;
  c->hint_cert = NULL;
  uint64_t n = c->ledger.head - c->ledger.base;
  uint32_t w = c->cfg.window ? c->cfg.window : 1;
  if (n > w) n = w;
  if (n == 0) return 0;
  c->hint_digs = malloc(n * BFT_DIGEST_LEN);
  if (!c->hint_digs) return BFT_E_NOMEM;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t h = c->ledger.head - n + 1 + i;
    uint32_t len;
    bft_block b;
    int rc = rt_ledger_read(&c->ledger, h, c->bufs->block_buf, BFT_MAX_BLOCK_BYTES, &len);
    if (!rc) rc = bft_block_decode(c->bufs->block_buf, len, &b);
    if (rc) return rc;
    memcpy(c->hint_digs + i * BFT_DIGEST_LEN, b.batch_digest, BFT_DIGEST_LEN);
    if (h == c->ledger.head) {
      c->hint_cert = malloc(b.cert_len ? b.cert_len : 1);
      if (!c->hint_cert) return BFT_E_NOMEM;
      memcpy(c->hint_cert, b.cert, b.cert_len);
      c->cfg.head_cert = c->hint_cert;
      c->cfg.head_cert_len = b.cert_len;
    }
  }
  c->cfg.head_digests = (const uint8_t(*)[BFT_DIGEST_LEN])c->hint_digs;
  c->cfg.head_count = (uint32_t)n;
  return 0;
}

static int open_storage(rt_core *c, const rt_core_config *cc, char *err, size_t errlen) {
  const char *dir = cc->data_dir;
  int mem = cc->wal_mem && cc->ledger_mem;
  uint64_t torn = 0;
  int rc = rt_dur_open(c, err, errlen);
  if (rc) return rc;
  rc = rt_ledger_open_trusting(&c->ledger, dir, mem ? cc->ledger_mem : NULL, c->cluster->id, c->dur->loaded,
                               replay_block, c, &torn, err, errlen);
  if (rc) {
    if (c->failed) snprintf(err, errlen, "%s/ledger: %s", dir, c->fail_msg);
    return rc;
  }
  c->ledger_open = 1;
  if ((rc = rt_dur_after_ledger(c, err, errlen)) != 0) return rc;
  if (torn) rt_logf(c->log, RT_LOG_WARN, COMP, "event=ledger_torn_tail truncated_bytes=%llu", (unsigned long long)torn);
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=ledger_loaded head=%llu executed=%llu", (unsigned long long)c->ledger.head,
          (unsigned long long)c->ctr.executed);
  if (c->app_height > c->ledger.head || c->app_mismatch) {
    rc = rt_core_resync_app(c, err, errlen);
    if (rc) return rc;
  } else if (c->app_height) {
    rt_logf(c->log, RT_LOG_INFO, COMP, "event=app_resumed app_height=%llu ledger_head=%llu re_executed=%llu",
            (unsigned long long)c->app_height, (unsigned long long)c->ledger.head,
            (unsigned long long)(c->ledger.head - c->app_height));
  }
  bft_config_from_cluster(&c->cfg, c->cluster, c->self);
  if (cc->tuning) {
    const bft_engine_config *t = cc->tuning;
    if (t->batch_max) c->cfg.batch_max = t->batch_max;
    if (t->window) c->cfg.window = t->window;
    if (t->checkpoint_interval) c->cfg.checkpoint_interval = t->checkpoint_interval;
    if (t->pipeline) c->cfg.pipeline = t->pipeline;
    if (t->timeout_ms) c->cfg.timeout_ms = t->timeout_ms;
  }
  c->cfg.committed = c->ledger.head;
  if (c->cfg.n > c->ops->max_replicas)
    return snprintf(err, errlen, "engine %s runs at most %u replicas; the cluster file has %u", c->ops->name,
                    c->ops->max_replicas, c->cfg.n),
           BFT_E_INVAL;
  if ((rc = set_head_hints(c)) != 0) return snprintf(err, errlen, "cannot read the ledger's head: %s", bft_strerror(rc)), rc;
  if ((rc = bft_engine_config_check(&c->cfg)) != 0)
    return snprintf(err, errlen, "engine configuration refused: %s", bft_strerror(rc)), rc;
  if ((rc = c->ops->init(c->engine, &c->cfg, &c->env)) != 0)
    return snprintf(err, errlen, "engine %s refused to initialise: %s", c->ops->name, bft_strerror(rc)), rc;
  rc = mem ? rt_wal_open_mem(&c->wal, cc->wal_mem, restore_record, c, &torn, err, errlen)
           : rt_wal_open(&c->wal, dir, restore_record, c, &torn, err, errlen);
  if (rc) return rc;
  c->wal_open = 1;
  if (torn) rt_logf(c->log, RT_LOG_WARN, COMP, "event=wal_torn_tail truncated_bytes=%llu", (unsigned long long)torn);
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=wal_replayed records=%llu bytes=%llu", (unsigned long long)c->wal.records,
          (unsigned long long)rt_wal_size(&c->wal));
  c->wal_compact_at = c->compact_min;
  return 0;
}

int rt_core_open(rt_core *c, const rt_core_config *cc, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->cluster = cc->cluster;
  c->kp = cc->kp;
  c->self = cc->self;
  c->ops = cc->ops;
  c->io = cc->io;
  c->log = cc->log;
  c->crypto = cc->crypto ? *cc->crypto : (rt_crypto){.ctx = c, .sign = ed_sign, .verify = ed_verify};
  c->engine = cc->engine_mem;
  c->metrics = cc->metrics;
  c->compact_min = cc->wal_compact_bytes ? cc->wal_compact_bytes : RT_WAL_COMPACT_BYTES;
  c->env = (bft_engine_env){.ctx = c, .sign = env_sign, .verify = env_verify, .check_batch = rt_core_check_batch};
  if (cc->app && !rt_app_valid(cc->app->ops, err, errlen)) return BFT_E_INVAL;
  if (cc->vpool && cc->crypto) /* the pool checks Ed25519 itself: it would bypass the lent crypto */
    return snprintf(err, errlen, "a verify pool needs the default crypto"), BFT_E_INVAL;
  snprintf(c->data_dir, sizeof c->data_dir, "%s", cc->data_dir ? cc->data_dir : "mem");
  c->dur = calloc(1, sizeof *c->dur);
  if (!c->dur) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  c->dur->snap_every = cc->snapshot_every ? cc->snapshot_every : RT_SNAP_EVERY_DEFAULT;
  if (cc->snapshot_every == UINT32_MAX || ((cc->wal_mem || cc->ledger_mem) && !(cc->snap_mem && cc->snapcert_mem)))
    c->dur->snap_every = 0;
  c->dur->retain = cc->retain_blocks ? cc->retain_blocks - 1 : RT_RETAIN_ALL;
  c->dur->no_transfer = cc->snapshot_no_transfer;
  c->dur->store = (rt_snap_store){.dir = cc->wal_mem ? NULL : c->data_dir, .mem = cc->snap_mem,
                                  .cert_mem = cc->snapcert_mem};
  if (!cc->wal_mem) {
    char p[RT_PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/snap", c->data_dir);
    c->dur->store.fail_sync_at = rt_fail_sync_at(p);
  }
  int rc = init_modules(c, cc);
  if (rc) return snprintf(err, errlen, "out of memory"), rc;
  c->app_height = c->app.ops->height ? c->app.ops->height(c->app.state) : 0;
  c->app_skip_to = c->app_height;
  rt_core_state_digest(c, c->state_digest);
  rc = open_storage(c, cc, err, errlen);
  if (rc) return rc;
  bft_engine_status st;
  c->ops->status(c->engine, &st);
  c->epoch_view = st.epoch;
  return 0;
}

int rt_core_start(rt_core *c) {
  bft_actions_reset(&c->acts);
  int rc = c->ops->start(c->engine, &c->acts);
  if (rc) return core_fail(c, rc, "engine %s refused to start: %s", c->ops->name, bft_strerror(rc));
  rc = apply_actions(c);
  if (!rc && !c->defer_pulls) rc = drain_pulls(c);
  return rc;
}

void rt_core_close(rt_core *c) {
  if (c->wal_open) rt_wal_close(&c->wal);
  if (c->ledger_open) rt_ledger_close(&c->ledger);
  c->wal_open = c->ledger_open = 0;
  rt_vcache_free(&c->vcache);
  rt_core_verify_free(c);
  rt_pool_free(&c->pool);
  rt_sessions_free(&c->sessions);
  rt_kv_free(&c->kv);
  for (uint32_t i = 0; i < c->nchecks; i++) free(c->checks[i].bytes);
  free(c->checks);
  free(c->check_reasons);
  free(c->check_verdicts);
  c->checks = NULL;
  c->check_reasons = NULL;
  c->check_verdicts = NULL;
  c->nchecks = 0;
  if (c->attest_on) rt_attest_free(&c->attest);
  c->attest_on = 0;
  for (uint32_t i = 0; i < RT_EVIDENCE_MAX; i++) free(c->evidence[i].data);
  memset(c->evidence, 0, sizeof c->evidence);
  c->nevidence = 0;
  if (c->own_bufs) rt_core_bufs_free(c->bufs);
  c->bufs = NULL;
  c->own_bufs = 0;
  if (c->own_engine) free(c->engine);
  c->own_engine = 0;
  free(c->hint_digs);
  free(c->hint_cert);
  c->hint_digs = c->hint_cert = NULL;
  c->engine = NULL;
  if (c->dur) rt_dur_free(c->dur);
  free(c->dur);
  c->dur = NULL;
}

void rt_core_status(const rt_core *c, bft_engine_status *st) { c->ops->status(c->engine, st); }

/* ---- events from the network and the clock ------------------------------------------------ */

int rt_core_on_message(rt_core *c, uint32_t from, uint8_t wire_kind, const uint8_t *body, uint32_t len) {
  c->ctr.msgs_in++;
  uint8_t kind = (uint8_t)(wire_kind - WIRE_KIND_ENGINE);
  int rc = bft_engine_check_message(c->ops, &c->cfg, &c->env, from, kind, body, len);
  if (rc) {
    c->ctr.msgs_bad_sig++;
    rt_logf_rl(c->log, &c->rl_msg, RT_LOG_WARN, COMP, "event=message_dropped from=%u kind=%u len=%u reason=\"%s\"",
               from, kind, len, bft_strerror(rc));
    return rc;
  }
  bft_event ev = {.type = BFT_EV_MESSAGE};
  ev.u.msg.from = from;
  ev.u.msg.kind = kind;
  ev.u.msg.body = body;
  ev.u.msg.len = len;
  rc = run_event(c, &ev);
  if (rc && !c->failed) {
    c->ctr.msgs_rejected++;
    rt_logf_rl(c->log, &c->rl_msg, RT_LOG_DEBUG, COMP, "event=message_rejected from=%u kind=%u reason=\"%s\"", from,
               kind, bft_strerror(rc));
  }
  return rc;
}

int rt_core_on_timer(rt_core *c, uint32_t id) {
  if (id >= BFT_MAX_TIMERS) return BFT_E_INVAL;
  bft_event ev = {.type = BFT_EV_TIMER};
  ev.u.timer.id = id;
  ev.u.timer.tag = c->timer_tags[id];
  int rc = run_event(c, &ev);
  return c->failed ? rc : 0;
}

static int submit_reject(rt_core *c, rt_submit *out, int outcome, const char *reason, int rc) {
  out->outcome = outcome;
  out->reason = reason;
  rt_logf_rl(c->log, &c->rl_req, RT_LOG_WARN, COMP, "event=request_rejected seq=%llu reason=\"%s\" err=\"%s\"",
             (unsigned long long)out->seq, reason, bft_strerror(rc));
  return rc;
}

/* A retransmitted request this replica already holds: make sure the leader has it too. */
static void forward_to_leader(rt_core *c, const uint8_t *req, uint32_t len) {
  bft_engine_status st;
  c->ops->status(c->engine, &st);
  if (st.leader == c->self || st.leader >= c->cfg.n) return;
  c->io.send(c->io.ctx, st.leader, WIRE_KIND_REQUEST, req, len);
  c->ctr.req_forwarded++;
}

int rt_core_submit(rt_core *c, const uint8_t *req, uint32_t len, int from_peer, rt_submit *out) {
  return rt_core_submit_verdict(c, req, len, from_peer, RT_SIG_UNCHECKED, out);
}

int rt_core_submit_verdict(rt_core *c, const uint8_t *req, uint32_t len, int from_peer, int verdict, rt_submit *out) {
  memset(out, 0, sizeof *out);
  out->client = -1;
  if (c->failed) return BFT_E_STATE;
  bft_request r;
  int rc = bft_request_decode(req, len, &r);
  if (rc) {
    c->ctr.req_malformed++;
    out->outcome = RT_SUBMIT_MALFORMED;
    rt_logf_rl(c->log, &c->rl_req, RT_LOG_WARN, COMP, "event=request_malformed len=%u err=\"%s\"", len, bft_strerror(rc));
    return rc;
  }
  memcpy(out->pk, r.client, BFT_PK_LEN);
  out->seq = r.seq;
  int client = rt_sessions_find(&c->sessions, r.client);
  if (client < 0) {
    c->ctr.req_not_permitted++;
    return submit_reject(c, out, RT_SUBMIT_NOT_PERMITTED, "client not permitted by the cluster file", BFT_E_NOT_PERMITTED);
  }
  if (r.seq < c->sessions.s[client].last_seq) { /* cheap: no verify for what we ignore anyway */
    c->ctr.req_old++;
    out->outcome = RT_SUBMIT_OLD;
    return 0;
  }
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, req, len);
  rc = rt_core_check_request(c, req, len, d, &r, &client, verdict);
  if (rc) {
    c->ctr.req_bad_sig++;
    if (r.version == BFT_REQUEST_V_MAC && !c->cluster->protocol_only)
      return submit_reject(c, out, RT_SUBMIT_BAD_SIG,
                           "unsigned (MAC) requests need protocol_only = true in the cluster file", rc);
    return submit_reject(c, out, RT_SUBMIT_BAD_SIG,
                         r.version == BFT_REQUEST_V_MAC ? "bad request authenticator" : "bad request signature", rc);
  }
  out->client = client;
  if (r.seq == c->sessions.s[client].last_seq) {
    c->ctr.req_retransmit++;
    out->outcome = RT_SUBMIT_RETRANSMIT;
    return 0;
  }
  if (c->app.ops->check && !from_peer && !rt_pool_contains(&c->pool, d)) {
    rc = rt_core_queue_check(c, d, (uint32_t)client, r.seq, req, len);
    out->outcome = RT_SUBMIT_CHECKING;
    if (!rc && !c->defer_pulls) rc = rt_core_run_checks(c);
    return c->failed ? BFT_E_STATE : rc;
  }
  return rt_core_admit(c, d, (uint32_t)client, r.seq, req, len, from_peer, out);
}

/* A verified request (and checked, when the application checks) enters the pool. */
int rt_core_admit(rt_core *c, const uint8_t d[BFT_DIGEST_LEN], uint32_t client, uint64_t seq,
                         const uint8_t *req, uint32_t len, int from_peer, rt_submit *out) {
  int rc = rt_pool_add(&c->pool, d, client, seq, req, len);
  if (rc == BFT_E_DUPLICATE) {
    c->ctr.req_dup++;
    out->outcome = RT_SUBMIT_DUPLICATE;
    if (!from_peer) forward_to_leader(c, req, len);
    return 0;
  }
  if (rc) {
    c->ctr.req_busy++;
    out->outcome = RT_SUBMIT_BUSY;
    rt_logf_rl(c->log, &c->rl_req, RT_LOG_WARN, COMP, "event=request_dropped reason=\"%s\" pool=%u",
               bft_strerror(rc), c->pool.count);
    return rc;
  }
  c->ctr.req_new++;
  if (c->metrics) rt_metrics_admitted(c->metrics, client, seq);
  out->outcome = RT_SUBMIT_NEW;
  bft_event ev = {.type = BFT_EV_REQUEST};
  memcpy(ev.u.request.digest, d, BFT_DIGEST_LEN);
  rc = run_event(c, &ev);
  return c->failed ? rc : 0;
}

/* Sign an encoding made with room for its signature (bft_reply_encode_unsigned). */
static int seal_reply(rt_core *c, uint8_t *buf, int len) {
  if (len < 0) return len;
  uint32_t signed_len = (uint32_t)len - BFT_SIG_LEN;
  if (c->crypto.sign(c->crypto.ctx, BFT_TAG_REPLY, buf, signed_len, buf + signed_len) != 0)
    return core_fail(c, BFT_E_CRYPTO, "signing a reply failed");
  return len;
}

/* A v2 (MAC) reply when the client's last request asked for one and we can make its key,
 * else a signed v1 reply. */
int rt_core_encode_reply(rt_core *c, uint32_t client, uint8_t *buf, uint32_t cap) {
  if (client >= c->sessions.n) return BFT_E_INVAL;
  bft_reply rp;
  int rc = rt_sessions_reply(&c->sessions, client, c->self, &rp);
  if (rc) return rc;
  const bft_session_mac *m = c->sessions.s[client].reply_mac ? rt_core_session_mac(c, client) : NULL;
  if (m) return bft_reply_encode_mac(&rp, m, buf, cap);
  return seal_reply(c, buf, bft_reply_encode_unsigned(&rp, buf, cap));
}

int rt_core_encode_reject(rt_core *c, const uint8_t pk[BFT_PK_LEN], uint64_t seq, const char *reason,
                          uint8_t *buf, uint32_t cap) {
  bft_reply rp = {.replica = c->self, .seq = seq, .height = 0, .status = BFT_KV_REJECTED,
                  .result = (const uint8_t *)reason, .result_len = (uint32_t)strlen(reason)};
  memcpy(rp.client, pk, BFT_PK_LEN);
  return seal_reply(c, buf, bft_reply_encode_unsigned(&rp, buf, cap));
}

/* ---- ledger reads and state transfer -------------------------------------------------------- */


int rt_core_blocks(rt_core *c, const uint8_t *body, uint32_t len, uint8_t *out, uint32_t cap) {
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t from = wire_get_u64(&r);
  uint32_t max = wire_get_u32(&r);
  int rc = wire_reader_finish(&r);
  if (rc) return rc;
  if (cap < 12) return BFT_E_FULL;
  if (from <= c->ledger.base) from = c->ledger.base + 1; /* pruned below: from the snapshot on */
  if (max > BFT_LEDGER_MAX_BLOCKS_PER_REPLY) max = BFT_LEDGER_MAX_BLOCKS_PER_REPLY;
  wire_writer w;
  wire_writer_init(&w, out, cap);
  wire_put_u64(&w, c->ledger.head);
  wire_put_u32(&w, 0);
  uint32_t count = 0;
  for (uint64_t h = from; h <= c->ledger.head && count < max; h++) {
    if (w.len + 4 >= w.cap) break;
    uint32_t bl;
    rc = rt_ledger_read(&c->ledger, h, out + w.len + 4, (uint32_t)(w.cap - w.len - 4), &bl);
    if (rc == BFT_E_TOO_LARGE) break; /* does not fit in this reply */
    if (rc) return core_fail(c, rc, "cannot read block %llu of our ledger: %s", (unsigned long long)h, bft_strerror(rc));
    put_le32(out + w.len, bl);
    w.len += 4 + bl;
    count++;
  }
  put_le32(out + 8, count);
  return (int)w.len;
}

static void start_fetch(rt_core *c, uint32_t to, uint64_t seq, int force) {
  if (to >= c->cfg.n || to == c->self) return;
  uint64_t now = c->io.now_ms(c->io.ctx);
  if (c->fetch_active && now - c->fetch_at_ms < RT_FETCH_RETRY_MS) {
    /* One FETCH in flight: the same one twice would only bring a stale duplicate reply. */
    if (to == c->fetch_peer && c->fetch_seq == c->ledger.head + 1) return;
    /* The engine names another peer: switch once the one asked had a fair chance to answer.
     * (Holding every FETCH for RT_FETCH_RETRY_MS dropped most of an engine's rotation: with
     * retries every 250 ms only every 4th peer was ever asked, and at n = 10 those were two
     * withholding replicas and one as far behind as we were.) */
    if (!force && now - c->fetch_at_ms < RT_FETCH_SWITCH_MS) return;
  }
  /* The engine can only take committed+1 next, whatever seq it named: ask from there. */
  (void)seq;
  uint8_t body[12];
  wire_writer w;
  wire_writer_init(&w, body, sizeof body);
  wire_put_u64(&w, c->ledger.head + 1);
  wire_put_u32(&w, BFT_LEDGER_MAX_BLOCKS_PER_REPLY);
  c->io.send(c->io.ctx, to, WIRE_KIND_FETCH, body, (uint32_t)w.len);
  c->fetch_active = 1;
  c->fetch_peer = to;
  c->fetch_seq = c->ledger.head + 1;
  c->fetch_at_ms = now;
  c->ctr.fetch_sent++;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=fetch to=%u from_height=%llu", to, (unsigned long long)c->fetch_seq);
}

static int sync_reject(rt_core *c, uint32_t from, uint64_t h, const char *why, int rc) {
  c->ctr.sync_rejected++;
  rt_logf_rl(c->log, &c->rl_sync, RT_LOG_WARN, COMP, "event=sync_block_rejected from=%u height=%llu reason=\"%s\"",
             from, (unsigned long long)h, why);
  return rc;
}

static int own_state_digest(rt_core *c, uint64_t height, uint8_t out[BFT_DIGEST_LEN]) {
  uint32_t len;
  bft_block b;
  int rc = rt_ledger_read(&c->ledger, height, c->bufs->block_buf, BFT_MAX_BLOCK_BYTES, &len);
  if (!rc) rc = bft_block_decode(c->bufs->block_buf, len, &b);
  if (!rc) memcpy(out, b.state_digest, BFT_DIGEST_LEN);
  return rc;
}

/* Verify one fetched block and hand it to the engine; 1 when it advanced the ledger. */
static int sync_block(rt_core *c, uint32_t from, const uint8_t *p, uint32_t len, uint64_t *height) {
  bft_block b;
  int rc = bft_block_decode(p, len, &b);
  if (rc) return sync_reject(c, from, 0, "undecodable block", rc);
  *height = b.height;
  if (b.height != c->ledger.head + 1) return 0;
  if (strcmp(b.protocol, c->ops->name) != 0) return sync_reject(c, from, b.height, "other protocol", BFT_E_UNSUPPORTED);
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, b.batch, b.batch_len);
  if (memcmp(d, b.batch_digest, BFT_DIGEST_LEN) != 0)
    return sync_reject(c, from, b.height, "batch does not match its digest", BFT_E_BAD_DIGEST);
  rc = c->ops->verify_certificate(&c->cfg, &c->env, b.height, b.batch_digest, b.cert, b.cert_len);
  if (rc) return sync_reject(c, from, b.height, "commit certificate does not verify", BFT_E_BAD_CERT);
  bft_event ev = {.type = BFT_EV_SYNC};
  ev.u.sync.seq = b.height;
  ev.u.sync.batch = b.batch;
  ev.u.sync.batch_len = b.batch_len;
  ev.u.sync.cert = b.cert;
  ev.u.sync.cert_len = b.cert_len;
  uint64_t before = c->ledger.head;
  rc = run_event(c, &ev);
  if (c->failed) return rc;
  if (c->ledger.head == before) return 0;
  c->ctr.sync_blocks++;
  /* The engine may deliver more than this block in one step: compare with our block at b.height. */
  uint8_t ours[BFT_DIGEST_LEN];
  if (own_state_digest(c, b.height, ours) == 0 && memcmp(ours, b.state_digest, BFT_DIGEST_LEN) != 0) {
    c->ctr.state_mismatch++;
    rt_logf_rl(c->log, &c->rl_sync, RT_LOG_WARN, COMP,
               "event=state_digest_differs from=%u height=%llu note=\"our state after this block differs from the peer's\"",
               from, (unsigned long long)b.height);
  }
  return 1;
}

int rt_core_on_fetch_reply(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  if (!c->fetch_active || from != c->fetch_peer) return BFT_E_STATE; /* unsolicited: not worth a verify */
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t peer_head = wire_get_u64(&r);
  uint32_t count = wire_get_count(&r, BFT_LEDGER_MAX_BLOCKS_PER_REPLY);
  uint32_t advanced = 0;
  uint64_t first = 0; /* height of the reply's first block */
  for (uint32_t i = 0; i < count && !r.err; i++) {
    uint32_t bl;
    const uint8_t *p = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
    if (r.err) break;
    uint64_t h = 0;
    int rc = sync_block(c, from, p, bl, &h);
    if (i == 0) first = h;
    if (c->failed) return rc;
    if (rc < 0) {
      c->fetch_active = 0;
      return rc;
    }
    advanced += (uint32_t)rc;
  }
  if (r.err) {
    c->fetch_active = 0;
    return sync_reject(c, from, 0, "malformed FETCH_REPLY", r.err);
  }
  /* A late answer to an earlier FETCH of ours (it starts below what we asked for last and
   * brought nothing new) does not settle the one in flight: its answer is still on the way. */
  if (!advanced && count && first < c->fetch_seq) return 0;
  c->fetch_active = 0;
  /* The peer serves blocks from where we asked (count > 0, first at or below our next height):
   * blocks, not a snapshot, bring us up to its head, even when the ones in this reply were
   * already ours because the engine advanced us meanwhile. (Asking again only after progress
   * left a replica one block short of an idle cluster for good: the reply to its FETCH came
   * after the engine had delivered those blocks.) A peer that pruned below our next height
   * answers from its snapshot on: that is for the snapshot transfer. */
  int serves = count > 0 && first <= c->ledger.head + 1;
  rt_xfer_consider(c, from, peer_head, advanced > 0 || serves);
  /* Without progress, once per height: a peer claiming a head it does not serve cannot keep
   * us asking. */
  int again = advanced || (serves && c->refetch_head != c->ledger.head + 1);
  if (!advanced && serves) c->refetch_head = c->ledger.head + 1;
  if (again && peer_head > c->ledger.head) start_fetch(c, from, c->ledger.head + 1, 1);
  if (advanced)
    rt_logf(c->log, RT_LOG_INFO, COMP, "event=synced from=%u blocks=%u head=%llu peer_head=%llu", from, advanced,
            (unsigned long long)c->ledger.head, (unsigned long long)peer_head);
  return 0;
}

/* ---- frames from peers ---------------------------------------------------------------------- */

int rt_core_on_peer_frame(rt_core *c, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len) {
  if (c->failed) return BFT_E_STATE;
  if (from >= c->cfg.n || from == c->self) return BFT_E_UNKNOWN_SENDER;
  if (kind >= WIRE_KIND_ENGINE && kind <= WIRE_KIND_ENGINE_LAST) return rt_core_on_message(c, from, kind, body, len);
  switch (kind) {
    case WIRE_KIND_FETCH: {
      if (!rt_dur_allow_request(c, from)) return 0;
      int n = rt_core_blocks(c, body, len, c->bufs->scratch, WIRE_FRAME_MAX_BODY);
      if (n < 0) return n;
      c->io.send(c->io.ctx, from, WIRE_KIND_FETCH_REPLY, c->bufs->scratch, (uint32_t)n);
      c->ctr.fetch_served++;
      return 0;
    }
    case WIRE_KIND_FETCH_REPLY:
      return rt_core_on_fetch_reply(c, from, body, len);
    case WIRE_KIND_STATE_DIGEST:
      return rt_core_on_state_digest(c, from, body, len);
    case WIRE_KIND_SNAP_ATTEST:
    case WIRE_KIND_SNAP_GET:
    case WIRE_KIND_SNAP_META:
    case WIRE_KIND_SNAP_CHUNK:
      return rt_xfer_on_frame(c, from, kind, body, len);
    case WIRE_KIND_REQUEST: { /* forwarded by a backup */
      rt_submit out;
      return rt_core_submit(c, body, len, 1, &out);
    }
    default:
      rt_logf_rl(c->log, &c->rl_msg, RT_LOG_WARN, COMP, "event=frame_refused from=%u kind=%u", from, kind);
      return BFT_E_MALFORMED;
  }
}

/* ---- durability ------------------------------------------------------------------------------ */

static int compact_wal(rt_core *c) {
  bft_actions_reset(&c->acts);
  int rc = c->ops->compact(c->engine, &c->acts);
  if (rc || c->acts.overflow) return core_fail(c, rc ? rc : BFT_E_FULL, "engine could not compact its records");
  uint64_t before = rt_wal_size(&c->wal);
  rc = rt_wal_rewrite(&c->wal, &c->acts);
  if (rc) return core_fail(c, rc, "WAL compaction failed: %s", bft_strerror(rc));
  c->ctr.compactions++;
  uint64_t after = rt_wal_size(&c->wal);
  c->wal_compact_at = after * 2 > c->compact_min ? after * 2 : c->compact_min;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=wal_compacted bytes_before=%llu bytes_after=%llu records=%llu",
          (unsigned long long)before, (unsigned long long)after, (unsigned long long)c->wal.records);
  return 0;
}

int rt_core_sync(rt_core *c) {
  if (c->failed) return BFT_E_STATE;
  int wal_dirty = rt_recfile_dirty(&c->wal.f), ledger_dirty = rt_ledger_dirty(&c->ledger);
  int dirty = wal_dirty || ledger_dirty;
  /* The ledger first: the engine's records (WAL) never claim a delivery whose block a crash
   * could lose (its bytes may exist nowhere else once every replica crashed); records lagging
   * the ledger are caught up at open from cfg.head_* (set_head_hints). */
  uint64_t t0 = c->metrics && ledger_dirty ? rt_metrics_now(c->metrics) : 0;
  int rc = rt_ledger_sync(&c->ledger);
  if (rc)
    return core_fail(c, rc, "fsync of %s failed: %s", c->ledger.f.path,
                     c->ledger.f.last_errno ? strerror(c->ledger.f.last_errno) : bft_strerror(rc));
  if (c->metrics && ledger_dirty) rt_hist_observe(&c->metrics->fsync_ledger, rt_metrics_now(c->metrics) - t0);
  t0 = c->metrics && wal_dirty ? rt_metrics_now(c->metrics) : 0;
  rc = rt_wal_sync(&c->wal);
  if (rc)
    return core_fail(c, rc, "fsync of %s failed: %s", c->wal.f.path,
                     c->wal.f.last_errno ? strerror(c->wal.f.last_errno) : bft_strerror(rc));
  if (c->metrics && wal_dirty) rt_hist_observe(&c->metrics->fsync_wal, rt_metrics_now(c->metrics) - t0);
  if (dirty) c->ctr.syncs++;
  /* Our state digests leave after the blocks they describe are durable. */
  if (c->attest_on && rt_attest_due(&c->attest, c->io.now_ms(c->io.ctx), 0)) rt_core_attest_flush(c);
  if (c->failed) return BFT_E_STATE;
  if ((rc = rt_dur_after_sync(c)) != 0) return rc;
  if (rt_wal_size(&c->wal) > c->wal_compact_at) {
    if (c->ops->compact) return compact_wal(c);
    rt_logf(c->log, RT_LOG_WARN, COMP, "event=wal_not_compacted bytes=%llu reason=\"engine %s has no compact()\"",
            (unsigned long long)rt_wal_size(&c->wal), c->ops->name);
    c->wal_compact_at *= 2;
  }
  return 0;
}

/* ---- re-initialising the engine after a snapshot install ------------------------------------ */

void rt_core_fetch(rt_core *c, uint32_t to) { start_fetch(c, to, c->ledger.head + 1, 1); }

int rt_core_reset_engine(rt_core *c) {
  if (c->failed) return BFT_E_STATE;
  int rc = rt_wal_sync(&c->wal);
  if (rc) return core_fail(c, rc, "fsync of %s failed: %s", c->wal.f.path, strerror(c->wal.f.last_errno));
  for (uint32_t t = 0; t < BFT_MAX_TIMERS; t++) c->io.timer_cancel(c->io.ctx, t);
  c->cfg.committed = c->ledger.head;
  if ((rc = set_head_hints(c)) != 0) return core_fail(c, rc, "cannot read the ledger's head: %s", bft_strerror(rc));
  if ((rc = c->ops->init(c->engine, &c->cfg, &c->env)) != 0)
    return core_fail(c, rc, "engine %s refused to re-initialise at %llu: %s", c->ops->name,
                     (unsigned long long)c->ledger.head, bft_strerror(rc));
  /* Our promises (votes, locks) are in the WAL: replayed exactly as at a restart. */
  int mem = c->wal.f.mem != NULL;
  rt_memfile *wm = c->wal.f.mem;
  char dir[RT_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", c->data_dir);
  rt_wal_close(&c->wal);
  c->wal_open = 0;
  char err[256] = "";
  uint64_t torn = 0;
  rc = mem ? rt_wal_open_mem(&c->wal, wm, restore_record, c, &torn, err, sizeof err)
           : rt_wal_open(&c->wal, dir, restore_record, c, &torn, err, sizeof err);
  if (rc) return core_fail(c, rc, "reopening the WAL: %s", err);
  c->wal_open = 1;
  c->fetch_active = 0;
  c->pull_pending = 0;
  rt_pool_new_epoch(&c->pool);
  bft_engine_status st;
  c->ops->status(c->engine, &st);
  c->epoch_view = st.epoch;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=engine_reset committed=%llu wal_records=%llu",
          (unsigned long long)c->ledger.head, (unsigned long long)c->wal.records);
  return rt_core_start(c);
}
