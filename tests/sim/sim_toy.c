/* Engines that exist only to test the simulator itself, never shipped: "sim-toy", a fixed-
 * leader vote-and-commit engine (safe, but no view change, so it stalls when replica 0
 * crashes), and "sim-toy-unsafe", whose leader equivocates and whose replicas commit on the
 * proposal alone — the agreement checker must catch it. */
#include <string.h>

#include "protocols/request.h"
#include "tests/sim/sim.h"

enum { TOY_PROPOSE = 1, TOY_VOTE = 2, TOY_HEAD = 3 };
#define TOY_TAG_PROPOSE "sim-toy/propose"
#define TOY_TAG_VOTE "sim-toy/vote"
#define TOY_TAG_HEAD "sim-toy/head"
#define TOY_TICK_MS 200
#define TOY_SCRATCH (BFT_MAX_BATCH_BYTES + 256)

typedef struct toy {
  bft_engine_config cfg;
  bft_engine_env env;
  int unsafe;
  uint64_t committed;
  /* the one instance in progress: seq committed+1 */
  int have_prop;
  uint8_t digest[BFT_DIGEST_LEN];
  uint32_t batch_len;
  uint64_t votes;
  uint8_t sigs[BFT_MAX_REPLICAS][BFT_SIG_LEN];
  /* persisted: never vote two digests for one seq */
  uint64_t voted_seq;
  uint8_t voted_digest[BFT_DIGEST_LEN];
  uint64_t tick;
  uint8_t batch[BFT_MAX_BATCH_BYTES];
  uint8_t scratch[TOY_SCRATCH];
} toy;

static const char *toy_msg_tag(uint8_t kind) {
  return kind == TOY_PROPOSE ? TOY_TAG_PROPOSE
         : kind == TOY_VOTE  ? TOY_TAG_VOTE
         : kind == TOY_HEAD  ? TOY_TAG_HEAD
                             : NULL;
}

static int toy_init_common(void *state, const bft_engine_config *cfg, const bft_engine_env *env, int unsafe) {
  toy *t = state;
  memset(t, 0, sizeof *t);
  t->cfg = *cfg;
  t->env = *env;
  t->unsafe = unsafe;
  t->committed = cfg->committed;
  return 0;
}
static int toy_init(void *s, const bft_engine_config *c, const bft_engine_env *e) { return toy_init_common(s, c, e, 0); }
static int toy_init_unsafe(void *s, const bft_engine_config *c, const bft_engine_env *e) {
  return toy_init_common(s, c, e, 1);
}

static int toy_restore(void *state, const uint8_t *rec, uint32_t len) {
  toy *t = state;
  wire_reader r;
  wire_reader_init(&r, rec, len);
  uint64_t seq = wire_get_u64(&r);
  uint8_t d[BFT_DIGEST_LEN];
  wire_get_fixed(&r, d, BFT_DIGEST_LEN);
  if (wire_reader_finish(&r)) return BFT_E_MALFORMED;
  if (seq >= t->voted_seq) {
    t->voted_seq = seq;
    memcpy(t->voted_digest, d, BFT_DIGEST_LEN);
  }
  return 0;
}

static void vote_payload(uint8_t out[8 + BFT_DIGEST_LEN], uint64_t seq, const uint8_t d[BFT_DIGEST_LEN]) {
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(seq >> (8 * i));
  memcpy(out + 8, d, BFT_DIGEST_LEN);
}

static int send_vote(toy *t, bft_actions *out) {
  uint8_t p[8 + BFT_DIGEST_LEN];
  uint64_t seq = t->committed + 1;
  vote_payload(p, seq, t->digest);
  if (t->voted_seq != seq) {
    uint8_t rec[8 + BFT_DIGEST_LEN];
    memcpy(rec, p, sizeof rec);
    int rc = bft_act_persist(out, rec, sizeof rec);
    if (rc) return rc;
    t->voted_seq = seq;
    memcpy(t->voted_digest, t->digest, BFT_DIGEST_LEN);
  }
  int len = bft_engine_seal(&t->env, TOY_TAG_VOTE, p, sizeof p, t->scratch, TOY_SCRATCH);
  if (len < 0) return len;
  memcpy(t->sigs[t->cfg.self], t->scratch + sizeof p, BFT_SIG_LEN);
  t->votes |= 1ull << t->cfg.self;
  return bft_act_broadcast(out, TOY_VOTE, t->scratch, (uint32_t)len);
}

static int propose_to(toy *t, bft_actions *out, int to, const uint8_t *batch, uint32_t len) {
  wire_writer w;
  wire_writer_init(&w, t->scratch, TOY_SCRATCH);
  wire_put_u64(&w, t->committed + 1);
  wire_put_blob(&w, batch, len);
  if (w.err) return w.err;
  int n = bft_engine_seal(&t->env, TOY_TAG_PROPOSE, t->scratch, (uint32_t)w.len, t->scratch, TOY_SCRATCH);
  if (n < 0) return n;
  return to < 0 ? bft_act_broadcast(out, TOY_PROPOSE, t->scratch, (uint32_t)n)
                : bft_act_send(out, (uint32_t)to, TOY_PROPOSE, t->scratch, (uint32_t)n);
}

static int commit_current(toy *t, bft_actions *out) {
  /* cert := u32 count | count x (u32 id | sig) over the vote payload */
  uint8_t cert[BFT_MAX_CERT_BYTES];
  wire_writer w;
  wire_writer_init(&w, cert, sizeof cert);
  uint32_t k = 0;
  for (uint32_t i = 0; i < t->cfg.n; i++) k += (t->votes >> i) & 1;
  wire_put_u32(&w, k);
  for (uint32_t i = 0; i < t->cfg.n; i++)
    if ((t->votes >> i) & 1) {
      wire_put_u32(&w, i);
      wire_put_fixed(&w, t->sigs[i], BFT_SIG_LEN);
    }
  if (w.err) return w.err;
  int rc = bft_act_commit(out, t->committed + 1, t->digest, t->batch, t->batch_len, cert, (uint32_t)w.len);
  if (rc) return rc;
  t->committed++;
  t->have_prop = 0;
  t->votes = 0;
  if (t->cfg.self == 0) return bft_act_pull(out, t->cfg.batch_max);
  return 0;
}

static uint32_t toy_quorum(const toy *t) { return t->unsafe ? 1 : 2 * t->cfg.f + 1; }

static int maybe_commit(toy *t, bft_actions *out) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < t->cfg.n; i++) k += (t->votes >> i) & 1;
  return k >= toy_quorum(t) ? commit_current(t, out) : 0;
}

static int take_proposal(toy *t, const uint8_t *batch, uint32_t len, bft_actions *out) {
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, batch, len);
  if (t->have_prop) return memcmp(d, t->digest, BFT_DIGEST_LEN) == 0 ? 0 : BFT_E_DUPLICATE;
  if (t->voted_seq == t->committed + 1 && memcmp(d, t->voted_digest, BFT_DIGEST_LEN) != 0) return BFT_E_STATE;
  memcpy(t->batch, batch, len);
  t->batch_len = len;
  memcpy(t->digest, d, BFT_DIGEST_LEN);
  t->have_prop = 1;
  t->votes = 0;
  int rc = send_vote(t, out);
  return rc ? rc : maybe_commit(t, out);
}

static int on_batch(toy *t, const bft_event *ev, bft_actions *out) {
  if (t->cfg.self != 0 || t->have_prop) return BFT_E_STATE;
  if (t->unsafe) {
    /* Equivocate: odd replicas get the batch without its last request. */
    bft_batch_reader br;
    bft_batch_writer bw;
    const uint8_t *rq;
    uint32_t rl;
    uint8_t *alt = t->scratch + TOY_SCRATCH / 2;
    bft_batch_open(&br, ev->u.batch.data, ev->u.batch.len);
    bft_batch_begin(&bw, alt, BFT_MAX_BATCH_BYTES / 2);
    for (uint32_t i = 0; i + 1 < ev->u.batch.count && bft_batch_next(&br, &rq, &rl) == 1; i++) bft_batch_add(&bw, rq, rl);
    uint32_t alen = bft_batch_end(&bw);
    memcpy(t->batch, alt, alen); /* park it: propose_to reuses scratch */
    uint8_t dalt[BFT_DIGEST_LEN], p[8 + BFT_DIGEST_LEN];
    bft_digest(dalt, t->batch, alen);
    vote_payload(p, t->committed + 1, dalt);
    for (uint32_t j = 1; j < t->cfg.n; j++) {
      int rc = (j % 2) ? propose_to(t, out, (int)j, t->batch, alen)
                       : propose_to(t, out, (int)j, ev->u.batch.data, ev->u.batch.len);
      if (rc == 0 && j % 2) { /* and the leader's vote for the variant, its "certificate" */
        int len = bft_engine_seal(&t->env, TOY_TAG_VOTE, p, sizeof p, t->scratch, TOY_SCRATCH);
        rc = len < 0 ? len : bft_act_send(out, j, TOY_VOTE, t->scratch, (uint32_t)len);
      }
      if (rc) return rc;
    }
    return take_proposal(t, ev->u.batch.data, ev->u.batch.len, out);
  }
  int rc = propose_to(t, out, -1, ev->u.batch.data, ev->u.batch.len);
  return rc ? rc : take_proposal(t, ev->u.batch.data, ev->u.batch.len, out);
}

static int on_propose(toy *t, const bft_event *ev, bft_actions *out) {
  if (ev->u.msg.from != 0) return BFT_E_UNKNOWN_SENDER;
  wire_reader r;
  wire_reader_init(&r, ev->u.msg.body, ev->u.msg.len - BFT_SIG_LEN);
  uint64_t seq = wire_get_u64(&r);
  uint32_t len;
  const uint8_t *batch = wire_get_blob(&r, &len, BFT_MAX_BATCH_BYTES);
  if (wire_reader_finish(&r)) return BFT_E_MALFORMED;
  if (seq <= t->committed) return BFT_E_STALE;
  if (seq > t->committed + 1) return bft_act_fetch(out, 0, t->committed + 1);
  int rc = t->env.check_batch(t->env.ctx, batch, len);
  if (rc) return rc;
  if (t->unsafe) { /* commit on the proposal alone, with the leader's vote as "certificate" */
    memcpy(t->batch, batch, len);
    t->batch_len = len;
    bft_digest(t->digest, batch, len);
    t->have_prop = 1;
    t->votes = 0;
    return 0; /* the leader's vote follows and completes the quorum of one */
  }
  return take_proposal(t, batch, len, out);
}

static int on_vote(toy *t, const bft_event *ev, bft_actions *out) {
  if (ev->u.msg.len != 8 + BFT_DIGEST_LEN + BFT_SIG_LEN) return BFT_E_MALFORMED;
  const uint8_t *p = ev->u.msg.body;
  uint64_t seq = 0;
  for (int i = 0; i < 8; i++) seq |= (uint64_t)p[i] << (8 * i);
  if (seq != t->committed + 1 || !t->have_prop) return BFT_E_STALE;
  if (memcmp(p + 8, t->digest, BFT_DIGEST_LEN) != 0) return BFT_E_BAD_DIGEST;
  if (t->unsafe && ev->u.msg.from != 0) return 0;
  memcpy(t->sigs[ev->u.msg.from], p + 8 + BFT_DIGEST_LEN, BFT_SIG_LEN);
  t->votes |= 1ull << ev->u.msg.from;
  return maybe_commit(t, out);
}

static int on_tick(toy *t, bft_actions *out) {
  int rc = bft_act_timer_set(out, 0, ++t->tick, TOY_TICK_MS);
  if (rc) return rc;
  if (t->unsafe) return 0;
  /* Retransmit what this replica contributes to the current instance: lost messages are
   * resent until the instance commits. */
  /* Announce the head so a replica (the leader included) that missed commits fetches them. */
  uint8_t p[8];
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(t->committed >> (8 * i));
  int len = bft_engine_seal(&t->env, TOY_TAG_HEAD, p, sizeof p, t->scratch, TOY_SCRATCH);
  rc = len < 0 ? len : bft_act_broadcast(out, TOY_HEAD, t->scratch, (uint32_t)len);
  if (rc) return rc;
  if (t->cfg.self == 0) {
    if (t->have_prop) {
      rc = propose_to(t, out, -1, t->batch, t->batch_len);
      return rc ? rc : send_vote(t, out);
    }
    return bft_act_pull(out, t->cfg.batch_max);
  }
  return t->have_prop ? send_vote(t, out) : 0;
}

static int toy_start(void *state, bft_actions *out) {
  toy *t = state;
  int rc = bft_act_timer_set(out, 0, ++t->tick, TOY_TICK_MS);
  if (rc == 0 && t->cfg.self == 0) rc = bft_act_pull(out, t->cfg.batch_max);
  return rc;
}

static int toy_step(void *state, const bft_event *ev, bft_actions *out) {
  toy *t = state;
  switch (ev->type) {
    case BFT_EV_MESSAGE:
      if (ev->u.msg.kind == TOY_PROPOSE) return on_propose(t, ev, out);
      if (ev->u.msg.kind == TOY_VOTE) return on_vote(t, ev, out);
      if (ev->u.msg.kind == TOY_HEAD && ev->u.msg.len == 8 + BFT_SIG_LEN) {
        uint64_t head = 0;
        for (int i = 0; i < 8; i++) head |= (uint64_t)ev->u.msg.body[i] << (8 * i);
        return head > t->committed ? bft_act_fetch(out, ev->u.msg.from, t->committed + 1) : 0;
      }
      return BFT_E_MALFORMED;
    case BFT_EV_TIMER:
      return ev->u.timer.tag == t->tick ? on_tick(t, out) : BFT_E_STALE;
    case BFT_EV_REQUEST:
      return (t->cfg.self == 0 && !t->have_prop) ? bft_act_pull(out, t->cfg.batch_max) : 0;
    case BFT_EV_BATCH:
      return on_batch(t, ev, out);
    case BFT_EV_SYNC: {
      if (ev->u.sync.seq != t->committed + 1) return BFT_E_STALE;
      uint8_t d[BFT_DIGEST_LEN];
      bft_digest(d, ev->u.sync.batch, ev->u.sync.batch_len);
      int rc = bft_act_commit(out, ev->u.sync.seq, d, ev->u.sync.batch, ev->u.sync.batch_len, ev->u.sync.cert,
                              ev->u.sync.cert_len);
      if (rc) return rc;
      t->committed++;
      t->have_prop = 0;
      t->votes = 0;
      return 0;
    }
  }
  return BFT_E_INVAL;
}

static int verify_cert_common(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                              const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len, uint32_t quorum) {
  wire_reader r;
  wire_reader_init(&r, cert, len);
  uint32_t k = wire_get_count(&r, BFT_MAX_REPLICAS);
  uint8_t p[8 + BFT_DIGEST_LEN];
  vote_payload(p, seq, digest);
  uint64_t seen = 0;
  for (uint32_t i = 0; i < k && !r.err; i++) {
    uint32_t id = wire_get_u32(&r);
    const uint8_t *sig = wire_get_view(&r, BFT_SIG_LEN);
    if (r.err) break;
    if (id >= cfg->n || ((seen >> id) & 1)) return BFT_E_BAD_CERT;
    if (env->verify(env->ctx, id, TOY_TAG_VOTE, p, sizeof p, sig)) return BFT_E_BAD_CERT;
    seen |= 1ull << id;
  }
  if (wire_reader_finish(&r)) return BFT_E_MALFORMED;
  return k >= quorum ? 0 : BFT_E_BAD_CERT;
}

static int toy_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                           const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  return verify_cert_common(cfg, env, seq, digest, cert, len, 2 * cfg->f + 1);
}
static int toy_verify_cert_unsafe(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                                  const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  return verify_cert_common(cfg, env, seq, digest, cert, len, 1);
}

/* The whole safety state is the last vote: one record replaces the WAL. */
static int toy_compact(void *state, bft_actions *out) {
  const toy *t = state;
  if (t->voted_seq == 0) return 0;
  uint8_t rec[8 + BFT_DIGEST_LEN];
  vote_payload(rec, t->voted_seq, t->voted_digest);
  return bft_act_persist(out, rec, sizeof rec);
}

static void toy_status(const void *state, bft_engine_status *st) {
  const toy *t = state;
  memset(st, 0, sizeof *st);
  st->leader = 0;
  st->committed = t->committed;
}

static const bft_engine_ops TOY = {.name = "sim-toy",
                                   .state_size = sizeof(toy),
                                   .max_replicas = BFT_MAX_REPLICAS,
                                   .init = toy_init,
                                   .restore = toy_restore,
                                   .start = toy_start,
                                   .msg_tag = toy_msg_tag,
                                   .step = toy_step,
                                   .verify_certificate = toy_verify_cert,
                                   .status = toy_status,
                                   .compact = toy_compact};
static const bft_engine_ops TOY_UNSAFE = {.name = "sim-toy-unsafe",
                                          .state_size = sizeof(toy),
                                          .max_replicas = BFT_MAX_REPLICAS,
                                          .init = toy_init_unsafe,
                                          .restore = toy_restore,
                                          .start = toy_start,
                                          .msg_tag = toy_msg_tag,
                                          .step = toy_step,
                                          .verify_certificate = toy_verify_cert_unsafe,
                                          .status = toy_status,
                                          .compact = NULL};

const bft_engine_ops *sim_test_engine_find(const char *name) {
  if (strcmp(name, TOY.name) == 0) return &TOY;
  if (strcmp(name, TOY_UNSAFE.name) == 0) return &TOY_UNSAFE;
  return NULL;
}
