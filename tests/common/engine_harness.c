/* The hand-driven engine test cluster (see engine_harness.h): a FIFO network, timers fired by hand,
 * per-replica persisted records and delivery logs checked against verify_certificate. */
#include "tests/common/engine_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Always evaluated, also under NDEBUG: the harness's own invariants and the engine's contract. */
#define assert(c)                                                                   \
  do {                                                                              \
    if (!(c)) {                                                                     \
      fprintf(stderr, "%s:%d: harness check failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                      \
    }                                                                               \
  } while (0)

static void env_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  h_env_ctx *c = ctx;
  int rc = bft_sign(&c->h->keys[c->id], c->h->cluster_id, tag, msg, len, sig);
  assert(rc == 0);
}

static int env_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                      const uint8_t sig[BFT_SIG_LEN]) {
  h_env_ctx *c = ctx;
  if (signer >= c->h->n) return BFT_E_UNKNOWN_SENDER;
  return bft_verify(c->h->keys[signer].pk, c->h->cluster_id, tag, msg, len, sig);
}

static int env_check_batch(void *ctx, const uint8_t *batch, uint32_t len) {
  h_env_ctx *c = ctx;
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  if (rc) return rc;
  const uint8_t *rq;
  uint32_t rl;
  while ((rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    bft_request r;
    rc = bft_request_verify(c->h->cluster_id, rq, rl, &r);
    if (rc) return rc;
    if (memcmp(r.client, c->h->client.pk, BFT_PK_LEN) != 0) return BFT_E_NOT_PERMITTED;
  }
  return rc;
}

static void seed_of(uint8_t seed[BFT_SEED_LEN], uint8_t who) {
  memset(seed, 0, BFT_SEED_LEN);
  seed[0] = 0x5a;
  seed[1] = who;
}

static void engine_boot(harness *h, uint32_t i) {
  h_replica *r = &h->r[i];
  memset(r->st, 0xA5, h->ops->state_size); /* init must not rely on zeroed memory */
  int rc = h->ops->init(r->st, &r->cfg, &r->env);
  assert(rc == 0);
  for (uint32_t k = 0; k < r->nrec; k++) {
    rc = h->ops->restore(r->st, r->recs[k], r->rec_len[k]);
    if (rc != 0) fprintf(stderr, "restore record %u failed: %d\n", k, rc);
    assert(rc == 0);
  }
  bft_actions_reset(&h->acts);
  rc = h->ops->start(r->st, &h->acts);
  assert(rc == 0);
}

harness *h_new_engine(const char *engine, const char *name, uint32_t n, uint32_t batch_max, uint32_t window,
                      uint32_t k) {
  assert(bft_crypto_init() == 0);
  assert(n <= H_MAXN);
  harness *h = calloc(1, sizeof *h);
  h->n = n;
  h->ops = bft_engine_find(engine);
  assert(h->ops);
  bft_cluster_id_from_name(h->cluster_id, name);
  uint8_t seed[BFT_SEED_LEN];
  for (uint32_t i = 0; i < n; i++) {
    seed_of(seed, (uint8_t)i);
    bft_keypair_from_seed(&h->keys[i], seed);
  }
  seed_of(seed, 200);
  bft_keypair_from_seed(&h->client, seed);
  h->items = calloc(BFT_MAX_ACTIONS, sizeof *h->items);
  h->arena = malloc(BFT_ACTION_ARENA);
  bft_actions_init(&h->acts, h->items, BFT_MAX_ACTIONS, h->arena, BFT_ACTION_ARENA);
  h->qcap = 1u << 16;
  h->q = calloc(h->qcap, sizeof *h->q);
  for (uint32_t i = 0; i < n; i++) {
    h_replica *r = &h->r[i];
    bft_engine_config_defaults(&r->cfg, n, i);
    memcpy(r->cfg.cluster_id, h->cluster_id, BFT_CLUSTER_ID_LEN);
    for (uint32_t j = 0; j < n; j++) memcpy(r->cfg.pubkeys[j], h->keys[j].pk, BFT_PK_LEN);
    if (batch_max) r->cfg.batch_max = batch_max;
    if (window) r->cfg.window = window;
    if (k) r->cfg.checkpoint_interval = k;
    r->ctx.h = h;
    r->ctx.id = i;
    r->env.ctx = &r->ctx;
    r->env.sign = env_sign;
    r->env.verify = env_verify;
    r->env.check_batch = env_check_batch;
    r->st = malloc(h->ops->state_size);
    r->caprec = 1024;
    r->recs = calloc(r->caprec, sizeof *r->recs);
    r->rec_len = calloc(r->caprec, sizeof *r->rec_len);
  }
  for (uint32_t i = 0; i < n; i++) {
    extern void h_absorb(harness * h, uint32_t i);
    engine_boot(h, i);
    h_absorb(h, i);
  }
  return h;
}

void h_free(harness *h) {
  for (uint32_t i = 0; i < h->n; i++) {
    h_replica *r = &h->r[i];
    for (uint32_t k = 0; k < r->nrec; k++) free(r->recs[k]);
    free(r->recs);
    free(r->rec_len);
    free(r->ev_data);
    for (uint64_t s = 1; s <= H_MAXSEQ; s++) {
      free(r->commits[s].batch);
      free(r->commits[s].cert);
    }
    free(r->st);
  }
  h_clear_queue(h);
  free(h->q);
  for (uint32_t i = 0; i < h->nreq; i++) free(h->req[i]);
  free(h->items);
  free(h->arena);
  free(h);
}

static uint8_t *dup(const uint8_t *p, uint32_t len) {
  uint8_t *d = malloc(len ? len : 1);
  if (len) memcpy(d, p, len);
  return d;
}

static void enqueue(harness *h, uint32_t from, uint32_t to, uint8_t kind, const uint8_t *p, uint32_t len) {
  assert(h->qtail - h->qhead < h->qcap);
  h_msg *m = &h->q[h->qtail++ % h->qcap];
  m->from = from;
  m->to = to;
  m->kind = kind;
  m->body = dup(p, len);
  m->len = len;
}

static void mark_executed(harness *h, h_replica *r, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  if (bft_batch_open(&br, batch, len) != 0) return;
  const uint8_t *rq;
  uint32_t rl;
  while (bft_batch_next(&br, &rq, &rl) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    for (uint32_t k = 0; k < h->nreq; k++)
      if (memcmp(d, h->req_digest[k], BFT_DIGEST_LEN) == 0) r->executed[k] = 1;
  }
}

void h_absorb(harness *h, uint32_t i);
void h_absorb(harness *h, uint32_t i) {
  h_replica *r = &h->r[i];
  assert(!h->acts.overflow);
  memset(h->last_sends, 0, sizeof h->last_sends);
  h->last_nact = h->acts.count;
  h->last_persist = 0;
  for (uint32_t a = 0; a < h->acts.count; a++) {
    const bft_action *x = &h->acts.items[a];
    switch (x->type) {
      case BFT_ACT_SEND:
        if (x->kind < 16) h->last_sends[x->kind]++;
        enqueue(h, i, x->to, x->kind, x->data, x->len);
        break;
      case BFT_ACT_BROADCAST:
        if (x->kind < 16) h->last_sends[x->kind]++;
        for (uint32_t j = 0; j < h->n; j++)
          if (j != i) enqueue(h, i, j, x->kind, x->data, x->len);
        break;
      case BFT_ACT_TIMER_SET:
        assert(x->timer_id < BFT_MAX_TIMERS);
        r->timer_armed[x->timer_id] = 1;
        r->timer_tag[x->timer_id] = x->timer_tag;
        r->timer_delay[x->timer_id] = x->delay_ms;
        break;
      case BFT_ACT_TIMER_CANCEL:
        r->timer_armed[x->timer_id] = 0;
        break;
      case BFT_ACT_PERSIST:
        h->last_persist++;
        if (r->nrec == r->caprec) {
          r->caprec *= 2;
          r->recs = realloc(r->recs, r->caprec * sizeof *r->recs);
          r->rec_len = realloc(r->rec_len, r->caprec * sizeof *r->rec_len);
        }
        r->recs[r->nrec] = dup(x->data, x->len);
        r->rec_len[r->nrec] = x->len;
        r->nrec++;
        break;
      case BFT_ACT_PROPOSE_PULL:
        r->pulls++;
        break;
      case BFT_ACT_COMMIT: {
        if (x->seq != r->ncommit + 1) fprintf(stderr, "replica %u commit seq %llu after %llu\n", i,
                                              (unsigned long long)x->seq, (unsigned long long)r->ncommit);
        assert(x->seq == r->ncommit + 1);
        assert(x->seq <= H_MAXSEQ);
        uint8_t d[BFT_DIGEST_LEN];
        bft_digest(d, x->data, x->len);
        assert(memcmp(d, x->digest, BFT_DIGEST_LEN) == 0);
        int rc = h->ops->verify_certificate(&r->cfg, &r->env, x->seq, x->digest, x->cert, x->cert_len);
        assert(rc == 0);
        h_commit *c = &r->commits[x->seq];
        free(c->batch);
        free(c->cert);
        memcpy(c->digest, x->digest, BFT_DIGEST_LEN);
        c->batch = dup(x->data, x->len);
        c->len = x->len;
        c->cert = dup(x->cert, x->cert_len);
        c->cert_len = x->cert_len;
        r->ncommit = x->seq;
        mark_executed(h, r, x->data, x->len);
        break;
      }
      case BFT_ACT_FETCH:
        r->fetches++;
        assert(r->nfetch_pending < 64);
        r->fetch_to[r->nfetch_pending] = x->to;
        r->fetch_seq[r->nfetch_pending] = x->seq;
        r->nfetch_pending++;
        break;
      case BFT_ACT_EVIDENCE:
        r->evidence++;
        free(r->ev_data);
        r->ev_data = malloc(x->len ? x->len : 1);
        assert(r->ev_data);
        memcpy(r->ev_data, x->data, x->len);
        r->ev_len = x->len;
        r->ev_offender = x->to;
        r->ev_kind = x->kind;
        break;
      case BFT_ACT_INFLIGHT: { /* another leader's requests: not handed out again this epoch */
        r->inflights++;
        bft_batch_reader br;
        assert(bft_batch_open(&br, x->data, x->len) == 0);
        const uint8_t *rq;
        uint32_t rl;
        while (bft_batch_next(&br, &rq, &rl) == 1) {
          uint8_t d[BFT_DIGEST_LEN];
          bft_digest(d, rq, rl);
          for (uint32_t k = 0; k < h->nreq; k++)
            if (memcmp(d, h->req_digest[k], BFT_DIGEST_LEN) == 0) r->handed[k] = 1;
        }
        break;
      }
      default:
        assert(0);
    }
  }
  bft_actions_reset(&h->acts);
}

/* One timer armed with a 0 ms delay fired, if any (when the harness is asked to). */
static int fire_zero_timer(harness *h, uint32_t i) {
  h_replica *r = &h->r[i];
  if (!h->fire_zero_timers || r->down) return 0;
  for (uint32_t t = 0; t < BFT_MAX_TIMERS; t++) {
    if (!r->timer_armed[t] || r->timer_delay[t] != 0) continue;
    r->timer_armed[t] = 0;
    bft_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = BFT_EV_TIMER;
    ev.u.timer.id = t;
    ev.u.timer.tag = r->timer_tag[t];
    bft_actions_reset(&h->acts);
    h->ops->step(r->st, &ev, &h->acts);
    h_absorb(h, i);
    return 1;
  }
  return 0;
}

/* Carry out pulls, fetches and 0 ms timers (each steps the engine again). */
static void settle(harness *h, uint32_t i) {
  h_replica *r = &h->r[i];
  for (;;) {
    if (fire_zero_timer(h, i)) continue;
    if (r->nfetch_pending) {
      uint32_t to = r->fetch_to[0];
      uint64_t seq = r->fetch_seq[0];
      r->nfetch_pending--;
      memmove(r->fetch_to, r->fetch_to + 1, r->nfetch_pending * sizeof *r->fetch_to);
      memmove(r->fetch_seq, r->fetch_seq + 1, r->nfetch_pending * sizeof *r->fetch_seq);
      h_replica *peer = &h->r[to];
      if (peer->down) continue;
      for (uint64_t s = seq; s < seq + 16 && s <= peer->ncommit; s++) {
        h_commit *c = &peer->commits[s];
        if (h->ops->verify_certificate(&r->cfg, &r->env, s, c->digest, c->cert, c->cert_len) != 0) break;
        bft_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = BFT_EV_SYNC;
        ev.u.sync.seq = s;
        ev.u.sync.batch = c->batch;
        ev.u.sync.batch_len = c->len;
        ev.u.sync.cert = c->cert;
        ev.u.sync.cert_len = c->cert_len;
        bft_actions_reset(&h->acts);
        h->ops->step(r->st, &ev, &h->acts);
        h_absorb(h, i);
      }
      continue;
    }
    if (r->pulls) {
      r->pulls = 0;
      bft_engine_status st;
      h->ops->status(r->st, &st);
      if (st.epoch != r->epoch_view) {
        r->epoch_view = st.epoch;
        memset(r->handed, 0, sizeof r->handed);
      }
      uint32_t pick[BFT_MAX_BATCH_REQUESTS], np = 0;
      for (uint32_t k = 0; k < h->nreq && np < r->cfg.batch_max; k++)
        if (!r->executed[k] && !r->handed[k]) pick[np++] = k;
      if (np == 0) continue;
      for (uint32_t k = 0; k < np; k++) r->handed[pick[k]] = 1;
      static uint8_t buf[BFT_MAX_BATCH_BYTES];
      uint32_t len = h_batch(h, pick, np, buf, sizeof buf);
      bft_event ev;
      memset(&ev, 0, sizeof ev);
      ev.type = BFT_EV_BATCH;
      ev.u.batch.data = buf;
      ev.u.batch.len = len;
      ev.u.batch.count = np;
      bft_actions_reset(&h->acts);
      h->ops->step(r->st, &ev, &h->acts);
      h_absorb(h, i);
      continue;
    }
    break;
  }
}

int h_step(harness *h, uint32_t i, const bft_event *ev) {
  bft_actions_reset(&h->acts);
  int rc = h->ops->step(h->r[i].st, ev, &h->acts);
  h->r[i].last_rc = rc;
  h_absorb(h, i);
  uint32_t sends[16];
  memcpy(sends, h->last_sends, sizeof sends);
  uint32_t nact = h->last_nact, np = h->last_persist;
  settle(h, i);
  memcpy(h->last_sends, sends, sizeof sends);
  h->last_nact = nact;
  h->last_persist = np;
  return rc;
}

uint32_t h_batch(harness *h, const uint32_t *reqs, uint32_t n, uint8_t *buf, uint32_t cap) {
  bft_batch_writer bw;
  bft_batch_begin(&bw, buf, cap);
  for (uint32_t k = 0; k < n; k++) assert(bft_batch_add(&bw, h->req[reqs[k]], h->req_len[reqs[k]]) == 0);
  return bft_batch_end(&bw);
}

uint32_t h_submit(harness *h, const char *op) {
  assert(h->nreq < H_MAXREQ);
  uint32_t k = h->nreq++;
  uint8_t buf[512];
  int len = bft_request_encode(&h->client, h->cluster_id, k + 1, (const uint8_t *)op, (uint32_t)strlen(op),
                               buf, sizeof buf);
  assert(len > 0);
  h->req[k] = dup(buf, (uint32_t)len);
  h->req_len[k] = (uint32_t)len;
  bft_digest(h->req_digest[k], buf, (size_t)len);
  for (uint32_t i = 0; i < h->n; i++) {
    if (h->r[i].down) continue;
    bft_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = BFT_EV_REQUEST;
    memcpy(ev.u.request.digest, h->req_digest[k], BFT_DIGEST_LEN);
    h_step(h, i, &ev);
  }
  return k;
}

int h_deliver(harness *h, uint32_t to, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len) {
  h_replica *r = &h->r[to];
  int rc = bft_engine_check_message(h->ops, &r->cfg, &r->env, from, kind, body, len);
  if (rc) return rc;
  bft_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BFT_EV_MESSAGE;
  ev.u.msg.from = from;
  ev.u.msg.kind = kind;
  ev.u.msg.body = body;
  ev.u.msg.len = len;
  return h_step(h, to, &ev);
}

uint64_t h_run(harness *h, uint64_t max) {
  uint64_t n = 0;
  while (h->qhead != h->qtail && n < max) {
    h_msg m = h->q[h->qhead++ % h->qcap];
    n++;
    int verdict = H_DELIVER;
    if (h->r[m.to].down || h->r[m.from].down) verdict = H_DROP;
    else if (h->filter) verdict = h->filter(h, &m, h->filter_arg);
    if (verdict == H_DELIVER) {
      h->delivered_msgs++;
      h_deliver(h, m.to, m.from, m.kind, m.body, m.len);
    }
    free(m.body);
  }
  return n;
}

void h_clear_queue(harness *h) {
  while (h->qhead != h->qtail) free(h->q[h->qhead++ % h->qcap].body);
}

int h_fire(harness *h, uint32_t i, uint32_t id) {
  h_replica *r = &h->r[i];
  if (!r->timer_armed[id] || r->down) return 1;
  r->timer_armed[id] = 0;
  bft_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BFT_EV_TIMER;
  ev.u.timer.id = id;
  ev.u.timer.tag = r->timer_tag[id];
  return h_step(h, i, &ev);
}

void h_sign(harness *h, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
            uint8_t sig[BFT_SIG_LEN]) {
  assert(bft_sign(&h->keys[signer], h->cluster_id, tag, msg, len, sig) == 0);
}

uint8_t *h_seal(harness *h, uint32_t signer, uint8_t kind, const uint8_t *payload, uint32_t len,
                uint32_t *out_len) {
  uint8_t *b = malloc(len + BFT_SIG_LEN);
  memcpy(b, payload, len);
  h_sign(h, signer, h->ops->msg_tag(kind), payload, len, b + len);
  *out_len = len + BFT_SIG_LEN;
  return b;
}

void h_restart(harness *h, uint32_t i, uint64_t keep) {
  h_replica *r = &h->r[i];
  if (keep < r->ncommit) {
    for (uint64_t s = keep + 1; s <= r->ncommit; s++) {
      free(r->commits[s].batch);
      free(r->commits[s].cert);
      memset(&r->commits[s], 0, sizeof r->commits[s]);
    }
    r->ncommit = keep;
    memset(r->executed, 0, sizeof r->executed);
    for (uint64_t s = 1; s <= r->ncommit; s++) mark_executed(h, r, r->commits[s].batch, r->commits[s].len);
  }
  memset(r->timer_armed, 0, sizeof r->timer_armed);
  memset(r->handed, 0, sizeof r->handed);
  r->pulls = 0;
  r->nfetch_pending = 0;
  r->cfg.committed = r->ncommit;
  engine_boot(h, i);
  h_absorb(h, i);
  settle(h, i);
}

void h_status(harness *h, uint32_t i, bft_engine_status *st) { h->ops->status(h->r[i].st, st); }

int h_agree(harness *h) {
  for (uint64_t s = 1; s <= H_MAXSEQ; s++) {
    const uint8_t *d = NULL;
    for (uint32_t i = 0; i < h->n; i++) {
      if (h->r[i].ncommit < s) continue;
      if (!d) d = h->r[i].commits[s].digest;
      else if (memcmp(d, h->r[i].commits[s].digest, BFT_DIGEST_LEN) != 0) return 0;
    }
  }
  return 1;
}
