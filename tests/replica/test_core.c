/* Tests of the replica core driven by the solo test engine: request admission (new,
 * duplicate, retransmission, old, not permitted, bad signature), at-most-once execution with
 * cached signed replies, ledger blocks, state transfer through FETCH_REPLY, restart (ledger
 * re-execution and WAL replay), WAL compaction, and signature verdicts reached off the core
 * (rt_core_submit_verdict) or for a proposed batch on a verify pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/kv.h"
#include "replica/core.h"
#include "replica/durable.h"
#include "tests/replica/solo_engine.h"

#define NCLIENTS 3

typedef struct recorder {
  uint32_t sends, broadcasts, replied, fetches, forwarded;
  uint32_t last_replied;
  uint8_t last_kind;
  uint32_t last_to;
  uint8_t last_body[64];
  uint32_t last_len;
  uint64_t now;
} recorder;

static void io_send(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  recorder *r = ctx;
  r->sends++;
  r->last_kind = kind;
  r->last_to = to;
  if (kind == WIRE_KIND_FETCH) r->fetches++;
  if (kind == WIRE_KIND_REQUEST) r->forwarded++;
  r->last_len = len < sizeof r->last_body ? len : (uint32_t)sizeof r->last_body;
  memcpy(r->last_body, body, r->last_len);
}
static void io_broadcast(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len) {
  ((recorder *)ctx)->broadcasts++;
}
static void io_timer_set(void *ctx, uint32_t id, uint64_t delay) {}
static void io_timer_cancel(void *ctx, uint32_t id) {}
static void io_replied(void *ctx, uint32_t client) {
  recorder *r = ctx;
  r->replied++;
  r->last_replied = client;
}
static uint64_t io_now(void *ctx) { return ((recorder *)ctx)->now; }

/* An application of the test's own, given to the core instead of the built-in store: the kv
 * store plus a height() that says where a state that outlived the core is, a count of execute
 * calls, and a check() that refuses puts of key "bad". */
static bft_app *g_app;
static rt_vpool *g_vpool; /* lent to the cores open_core opens */
static bft_app g_inner;
static uint64_t g_height, g_executes, g_rejected;
static char g_reason[BFT_APP_MAX_REASON];
static int ext_execute(void *app, uint64_t h, const bft_app_op *ops, uint32_t n, bft_app_result *res) {
  g_executes++;
  g_height = h;
  return g_inner.ops->execute(g_inner.state, h, ops, n, res);
}
static void ext_digest(void *app, uint8_t out[32]) { g_inner.ops->digest(g_inner.state, out); }
static uint64_t ext_height(void *app) { return g_height; }
static int ext_restore_begin(void *app, uint64_t h) {
  g_height = h;
  return g_inner.ops->restore_begin(g_inner.state, h);
}
static int ext_restore_chunk(void *app, const uint8_t *p, uint32_t l) { return g_inner.ops->restore_chunk(g_inner.state, p, l); }
static int ext_restore_end(void *app) { return g_inner.ops->restore_end(g_inner.state); }
static int ext_check(void *app, const bft_app_op *ops, uint32_t n, uint8_t *verdict, char (*reason)[BFT_APP_MAX_REASON]) {
  for (uint32_t i = 0; i < n; i++) {
    bft_kv_op op;
    verdict[i] = bft_kv_decode(ops[i].op, ops[i].len, &op) != 0 || (op.key_len == 3 && memcmp(op.key, "bad", 3) == 0);
    if (verdict[i]) snprintf(reason[i], BFT_APP_MAX_REASON, "key bad refused by client %u seq %llu", ops[i].client,
                             (unsigned long long)ops[i].seq);
  }
  return 0;
}
static const bft_app_ops EXT_OPS = {.name = "ext", .execute = ext_execute, .digest = ext_digest, .height = ext_height,
                                    .restore_begin = ext_restore_begin, .restore_chunk = ext_restore_chunk,
                                    .restore_end = ext_restore_end, .check = ext_check};
static void io_rejected(void *ctx, uint32_t client, const uint8_t pk[32], uint64_t seq, const char *reason) {
  g_rejected++;
  snprintf(g_reason, sizeof g_reason, "%s", reason);
}

typedef struct world {
  bft_cluster *cluster;
  bft_keypair replicas[4], clients[NCLIENTS], stranger;
  char dir[64];
  rt_log log;
  recorder rec;
  rt_core core;
} world;

static uint32_t g_snap_every; /* the next open_core's snapshot_every (0: the default) */
static int open_core(world *w) {
  rt_core_config cc = {.cluster = w->cluster, .kp = &w->replicas[0], .self = 0, .ops = &solo_engine_ops,
                       .data_dir = w->dir, .log = &w->log, .app = g_app, .vpool = g_vpool,
                       .snapshot_every = g_snap_every};
  cc.io = (rt_io){.ctx = &w->rec, .send = io_send, .broadcast = io_broadcast, .timer_set = io_timer_set,
                  .timer_cancel = io_timer_cancel, .replied = io_replied, .now_ms = io_now, .rejected = io_rejected};
  char err[256] = "";
  int rc = rt_core_open(&w->core, &cc, err, sizeof err);
  if (rc) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  return rt_core_start(&w->core);
}

/* A fresh data folder (dir holds its path), and its removal. */
static void make_dir(char dir[64]) {
  snprintf(dir, 64, "/tmp/bft-core-test-XXXXXX"); /* mkdtemp's template */
  assert_non_null(mkdtemp(dir));
}
static void remove_dir(const char *dir) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
  world *w = calloc(1, sizeof *w);
  w->cluster = calloc(1, sizeof *w->cluster);
  bft_cluster *c = w->cluster;
  snprintf(c->name, sizeof c->name, "core-test");
  bft_cluster_id_from_name(c->id, c->name);
  c->n = 4;
  c->f = 1;
  for (uint32_t i = 0; i < 4; i++) {
    bft_keypair_generate(&w->replicas[i]);
    c->replicas[i].id = i;
    memcpy(c->replicas[i].pk, w->replicas[i].pk, 32);
    snprintf(c->replicas[i].host, sizeof c->replicas[i].host, "127.0.0.1");
    c->replicas[i].port = (uint16_t)(7000 + i);
  }
  c->nclients = NCLIENTS;
  for (uint32_t i = 0; i < NCLIENTS; i++) {
    bft_keypair_generate(&w->clients[i]);
    c->clients[i].id = i;
    memcpy(c->clients[i].pk, w->clients[i].pk, 32);
  }
  bft_keypair_generate(&w->stranger);
  make_dir(w->dir);
  rt_log_init(&w->log, RT_LOG_ERROR, getenv("TEST_VERBOSE") ? stderr : NULL, 0);
  assert_int_equal(open_core(w), 0);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  rt_core_close(&w->core);
  remove_dir(w->dir);
  free(w->cluster);
  free(w);
  return 0;
}

static int make_request(world *w, const bft_keypair *kp, uint64_t seq, uint8_t opcode, const char *key,
                        const char *value, uint8_t *buf, uint32_t cap) {
  bft_kv_op op = {.opcode = opcode, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key)};
  if (value) op.value = (const uint8_t *)value, op.value_len = (uint32_t)strlen(value);
  uint8_t ob[256];
  int ol = bft_kv_encode(&op, ob, sizeof ob);
  assert_true(ol > 0);
  int len = bft_request_encode(kp, w->cluster->id, seq, ob, (uint32_t)ol, buf, cap);
  assert_true(len > 0);
  return len;
}

static int submit(world *w, const bft_keypair *kp, uint64_t seq, uint8_t opcode, const char *key, const char *value) {
  uint8_t buf[512];
  int len = make_request(w, kp, seq, opcode, key, value, buf, sizeof buf);
  rt_submit out;
  rt_core_submit(&w->core, buf, (uint32_t)len, 0, &out);
  return out.outcome;
}

/* The cached reply of client i, checked against replica 0's key. */
static bft_reply reply_of(world *w, uint32_t client, uint8_t *buf, uint32_t cap) {
  int len = rt_core_encode_reply(&w->core, client, buf, cap);
  assert_true(len > 0);
  bft_reply rp;
  assert_int_equal(bft_reply_verify(w->cluster, buf, (uint32_t)len, &rp), 0);
  assert_int_equal(rp.replica, 0);
  assert_memory_equal(rp.client, w->clients[client].pk, 32);
  return rp;
}

static void test_execute_and_reply(void **state) {
  world *w = *state;
  uint8_t buf[1024];
  assert_int_equal(submit(w, &w->clients[0], 1, BFT_KV_PUT, "k", "v1"), RT_SUBMIT_NEW);
  assert_int_equal(w->core.ledger.head, 1);
  assert_int_equal(w->rec.replied, 1);
  assert_int_equal(w->rec.last_replied, 0);
  bft_reply rp = reply_of(w, 0, buf, sizeof buf);
  assert_int_equal(rp.seq, 1);
  assert_int_equal(rp.height, 1);
  assert_int_equal(rp.status, BFT_KV_OK);
  assert_int_equal(submit(w, &w->clients[1], 1, BFT_KV_GET, "k", NULL), RT_SUBMIT_NEW);
  rp = reply_of(w, 1, buf, sizeof buf);
  assert_int_equal(rp.status, BFT_KV_OK);
  assert_int_equal(rp.result_len, 2);
  assert_memory_equal(rp.result, "v1", 2);
  assert_int_equal(w->core.pool.count, 0); /* executed requests left the pool */
}

static void test_at_most_once(void **state) {
  world *w = *state;
  uint8_t buf[1024];
  assert_int_equal(submit(w, &w->clients[0], 5, BFT_KV_PUT, "n", "1"), RT_SUBMIT_NEW);
  uint64_t head = w->core.ledger.head;
  /* the same seq again, even with another op: answered from the cache, not executed */
  assert_int_equal(submit(w, &w->clients[0], 5, BFT_KV_PUT, "n", "2"), RT_SUBMIT_RETRANSMIT);
  assert_int_equal(w->core.ledger.head, head);
  bft_reply rp = reply_of(w, 0, buf, sizeof buf);
  assert_int_equal(rp.seq, 5);
  /* older seqs are ignored */
  assert_int_equal(submit(w, &w->clients[0], 4, BFT_KV_PUT, "n", "3"), RT_SUBMIT_OLD);
  assert_int_equal(w->core.ledger.head, head);
  uint32_t vl;
  const uint8_t *v = rt_kv_lookup(&w->core.kv, (const uint8_t *)"n", 1, &vl);
  assert_non_null(v);
  assert_memory_equal(v, "1", 1);
}

static void test_rejections(void **state) {
  world *w = *state;
  uint8_t buf[512], rb[1024];
  rt_submit out;
  int len = make_request(w, &w->stranger, 1, BFT_KV_PUT, "x", "y", buf, sizeof buf);
  rt_core_submit(&w->core, buf, (uint32_t)len, 0, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_NOT_PERMITTED);
  assert_string_equal(out.reason, "client not permitted by the cluster file");
  int rl = rt_core_encode_reject(&w->core, out.pk, out.seq, out.reason, rb, sizeof rb);
  bft_reply rp;
  assert_int_equal(bft_reply_verify(w->cluster, rb, (uint32_t)rl, &rp), 0);
  assert_int_equal(rp.status, BFT_KV_REJECTED);
  assert_memory_equal(rp.client, w->stranger.pk, 32);
  assert_int_equal(rp.seq, 1);

  len = make_request(w, &w->clients[2], 1, BFT_KV_PUT, "x", "y", buf, sizeof buf);
  buf[len - 1] ^= 1;
  rt_core_submit(&w->core, buf, (uint32_t)len, 0, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_BAD_SIG);
  assert_string_equal(out.reason, "bad request signature");
  /* signed by someone else with client 2's key in it */
  len = make_request(w, &w->clients[1], 1, BFT_KV_PUT, "x", "y", buf, sizeof buf);
  memcpy(buf + 1, w->clients[2].pk, 32);
  rt_core_submit(&w->core, buf, (uint32_t)len, 0, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_BAD_SIG);

  rt_core_submit(&w->core, (const uint8_t *)"junk", 4, 0, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_MALFORMED);
  assert_int_equal(w->core.ledger.head, 0);
  assert_int_equal(w->core.ctr.req_not_permitted, 1);
  assert_int_equal(w->core.ctr.req_bad_sig, 2);
}

static void test_pool_holds_until_pulled(void **state) {
  world *w = *state;
  ((solo_state *)w->core.engine)->pull_on_request = 0;
  assert_int_equal(submit(w, &w->clients[0], 1, BFT_KV_PUT, "a", "1"), RT_SUBMIT_NEW);
  assert_int_equal(submit(w, &w->clients[0], 1, BFT_KV_PUT, "a", "1"), RT_SUBMIT_DUPLICATE);
  assert_int_equal(w->rec.forwarded, 0); /* we are the solo leader: nothing to forward */
  assert_int_equal(submit(w, &w->clients[1], 1, BFT_KV_PUT, "b", "1"), RT_SUBMIT_NEW);
  assert_int_equal(w->core.pool.count, 2);
  assert_int_equal(w->core.ledger.head, 0);
  /* the engine pulls: both commit in one batch */
  ((solo_state *)w->core.engine)->pull_on_request = 1;
  assert_int_equal(submit(w, &w->clients[2], 1, BFT_KV_PUT, "c", "1"), RT_SUBMIT_NEW);
  assert_int_equal(w->core.ledger.head, 1);
  assert_int_equal(w->core.pool.count, 0);
  assert_int_equal(w->rec.replied, 3);
}

/* A FETCH_REPLY body holding one block built by hand. */
static uint32_t fetch_reply(uint8_t *out, uint32_t cap, uint64_t height, const uint8_t *batch, uint32_t blen,
                            int good_cert) {
  bft_block b = {.height = height, .batch = batch, .batch_len = blen};
  bft_digest(b.batch_digest, batch, blen);
  snprintf(b.protocol, sizeof b.protocol, "solo");
  uint8_t cert[12];
  memcpy(cert, "solo", 4);
  for (int i = 0; i < 8; i++) cert[4 + i] = (uint8_t)((height + (good_cert ? 0 : 1)) >> (8 * i));
  b.cert = cert;
  b.cert_len = sizeof cert;
  uint8_t *enc = malloc(BFT_MAX_BLOCK_BYTES);
  int el = bft_block_encode(&b, enc, BFT_MAX_BLOCK_BYTES);
  assert_true(el > 0);
  wire_writer w;
  wire_writer_init(&w, out, cap);
  wire_put_u64(&w, height);
  wire_put_u32(&w, 1);
  wire_put_blob(&w, enc, (uint32_t)el);
  free(enc);
  assert_int_equal(w.err, 0);
  return (uint32_t)w.len;
}

/* A signed solo message from replica 1, which makes the solo engine fetch from it. */
static void poke_from_peer(world *w) {
  uint8_t body[2 + BFT_SIG_LEN];
  memcpy(body, "hi", 2);
  bft_sign(&w->replicas[1], w->cluster->id, SOLO_TAG, body, 2, body + 2);
  assert_int_equal(rt_core_on_message(&w->core, 1, WIRE_KIND_ENGINE + SOLO_MSG_KIND, body, sizeof body), 0);
  /* the same bytes claimed by replica 2 fail the signature check before the engine */
  assert_int_equal(rt_core_on_message(&w->core, 2, WIRE_KIND_ENGINE + SOLO_MSG_KIND, body, sizeof body),
                   BFT_E_BAD_SIG);
}

static void test_sync_dedups_within_batch(void **state) {
  world *w = *state;
  uint8_t r1[512], r2[512], r3[512], r4[512];
  int l1 = make_request(w, &w->clients[0], 10, BFT_KV_PUT, "s", "first", r1, sizeof r1);
  int l2 = make_request(w, &w->clients[0], 9, BFT_KV_PUT, "s", "older", r2, sizeof r2);
  int l3 = make_request(w, &w->clients[1], 3, BFT_KV_PUT, "t", "x", r3, sizeof r3);
  int l4 = make_request(w, &w->clients[0], 10, BFT_KV_PUT, "s", "same seq", r4, sizeof r4);
  uint8_t batch[4096];
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, r1, (uint32_t)l1);
  bft_batch_add(&bw, r2, (uint32_t)l2);
  bft_batch_add(&bw, r1, (uint32_t)l1); /* a repeat of the same request */
  bft_batch_add(&bw, r3, (uint32_t)l3);
  bft_batch_add(&bw, r4, (uint32_t)l4);
  uint32_t blen = bft_batch_end(&bw);
  uint8_t body[8192];

  /* unsolicited FETCH_REPLY: ignored without any verification */
  uint32_t fl = fetch_reply(body, sizeof body, 1, batch, blen, 1);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), BFT_E_STATE);
  assert_int_equal(w->core.ledger.head, 0);

  poke_from_peer(w);
  assert_int_equal(w->rec.fetches, 1);
  assert_int_equal(w->rec.last_to, 1);
  /* a bad certificate is refused */
  fl = fetch_reply(body, sizeof body, 1, batch, blen, 0);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), BFT_E_BAD_CERT);
  assert_int_equal(w->core.ledger.head, 0);
  assert_int_equal(w->core.ctr.sync_rejected, 1);

  w->rec.now += RT_FETCH_RETRY_MS + 1;
  poke_from_peer(w);
  fl = fetch_reply(body, sizeof body, 1, batch, blen, 1);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), 0);
  assert_int_equal(w->core.ledger.head, 1);
  assert_int_equal(w->core.ctr.executed, 2); /* (c0,10) once and (c1,3); the rest skipped */
  assert_int_equal(w->core.ctr.skipped, 3);
  uint32_t vl;
  const uint8_t *v = rt_kv_lookup(&w->core.kv, (const uint8_t *)"s", 1, &vl);
  assert_int_equal(vl, 5);
  assert_memory_equal(v, "first", 5);
  assert_int_equal(w->core.sessions.s[0].last_seq, 10);
}

/* Two answers to FETCHes of ours may be on the way (a retry, a continuation): one that
 * starts below what we asked for last and brings nothing is stale and must leave the FETCH in
 * flight alone, or the awaited answer would arrive unsolicited and be dropped. The same FETCH
 * is never sent twice while one is in flight. */
static void test_stale_fetch_reply_keeps_the_fetch(void **state) {
  world *w = *state;
  uint8_t r1[512], r2[512], b1[1024], b2[1024], body[4096];
  int l1 = make_request(w, &w->clients[0], 1, BFT_KV_PUT, "a", "1", r1, sizeof r1);
  int l2 = make_request(w, &w->clients[1], 1, BFT_KV_PUT, "b", "2", r2, sizeof r2);
  bft_batch_writer bw;
  bft_batch_begin(&bw, b1, sizeof b1);
  bft_batch_add(&bw, r1, (uint32_t)l1);
  uint32_t bl1 = bft_batch_end(&bw);
  bft_batch_begin(&bw, b2, sizeof b2);
  bft_batch_add(&bw, r2, (uint32_t)l2);
  uint32_t bl2 = bft_batch_end(&bw);

  poke_from_peer(w);
  assert_int_equal(w->rec.fetches, 1);
  uint32_t fl = fetch_reply(body, sizeof body, 1, b1, bl1, 1);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), 0);
  assert_int_equal(w->core.ledger.head, 1);

  poke_from_peer(w); /* FETCH from height 2 */
  assert_int_equal(w->rec.fetches, 2);
  poke_from_peer(w); /* the same FETCH again, within the retry time: not sent */
  assert_int_equal(w->rec.fetches, 2);
  /* a late duplicate answer to the first FETCH: ignored, the FETCH stays in flight */
  fl = fetch_reply(body, sizeof body, 1, b1, bl1, 1);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), 0);
  assert_int_equal(w->core.ledger.head, 1);
  assert_true(w->core.fetch_active);
  /* the awaited answer is taken */
  fl = fetch_reply(body, sizeof body, 2, b2, bl2, 1);
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), 0);
  assert_int_equal(w->core.ledger.head, 2);
  assert_false(w->core.fetch_active);
}

/* The answer to our FETCH brings blocks the engine delivered to us meanwhile, from a peer whose
 * head is above ours: we ask it again from our new head (once per height without progress),
 * instead of waiting for traffic that an idle cluster never sends. */
static void test_fetch_reply_overtaken_asks_again(void **state) {
  world *w = *state;
  uint8_t r1[512], b1[1024], body[4096];
  int l1 = make_request(w, &w->clients[0], 1, BFT_KV_PUT, "a", "1", r1, sizeof r1);
  bft_batch_writer bw;
  bft_batch_begin(&bw, b1, sizeof b1);
  bft_batch_add(&bw, r1, (uint32_t)l1);
  uint32_t bl1 = bft_batch_end(&bw);

  poke_from_peer(w); /* FETCH from height 1 to replica 1 */
  assert_int_equal(w->rec.fetches, 1);
  submit(w, &w->clients[1], 1, BFT_KV_PUT, "b", "2"); /* the engine commits height 1 itself */
  assert_int_equal(w->core.ledger.head, 1);
  uint32_t fl = fetch_reply(body, sizeof body, 1, b1, bl1, 1);
  memset(body, 0, 8), body[0] = 5; /* replica 1's head: 5 */
  assert_int_equal(rt_core_on_fetch_reply(&w->core, 1, body, fl), 0);
  assert_int_equal(w->core.ledger.head, 1);
  assert_int_equal(w->rec.fetches, 2); /* asked again, from height 2 */
  assert_true(w->core.fetch_active);
  assert_int_equal(w->core.fetch_seq, 2);
}

static void test_ledger_get(void **state) {
  world *w = *state;
  for (uint64_t s = 1; s <= 20; s++) submit(w, &w->clients[s % 2], s, BFT_KV_PUT, "k", "v");
  assert_int_equal(w->core.ledger.head, 20);
  uint8_t get[12], *out = malloc(WIRE_FRAME_MAX_BODY);
  wire_writer gw;
  wire_writer_init(&gw, get, sizeof get);
  wire_put_u64(&gw, 0);
  wire_put_u32(&gw, 1000);
  int len = rt_core_blocks(&w->core, get, sizeof get, out, WIRE_FRAME_MAX_BODY);
  assert_true(len > 0);
  wire_reader r;
  wire_reader_init(&r, out, (size_t)len);
  assert_int_equal(wire_get_u64(&r), 20);
  uint32_t count = wire_get_u32(&r);
  assert_int_equal(count, BFT_LEDGER_MAX_BLOCKS_PER_REPLY);
  uint8_t prev[32];
  memcpy(prev, w->cluster->id, 32);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t bl;
    const uint8_t *p = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
    bft_block b;
    assert_int_equal(bft_block_decode(p, bl, &b), 0);
    assert_int_equal(b.height, i + 1);
    assert_memory_equal(b.prev_hash, prev, 32);
    bft_block_hash(p, bl, prev);
  }
  assert_int_equal(wire_reader_finish(&r), 0);
  /* from beyond the head: none, but the head is reported */
  wire_writer_init(&gw, get, sizeof get);
  wire_put_u64(&gw, 21);
  wire_put_u32(&gw, 5);
  len = rt_core_blocks(&w->core, get, sizeof get, out, WIRE_FRAME_MAX_BODY);
  assert_int_equal(len, 12);
  /* a malformed LEDGER_GET */
  assert_int_equal(rt_core_blocks(&w->core, get, 5, out, WIRE_FRAME_MAX_BODY), BFT_E_TRUNCATED);
  free(out);
}

static void test_restart(void **state) {
  world *w = *state;
  uint8_t buf[1024];
  for (uint64_t s = 1; s <= 12; s++) {
    char v[16];
    snprintf(v, sizeof v, "v%llu", (unsigned long long)s);
    submit(w, &w->clients[0], s, BFT_KV_PUT, "k", v);
    submit(w, &w->clients[1], s, BFT_KV_CAS, "k", "zz");
  }
  assert_int_equal(rt_core_sync(&w->core), 0);
  uint64_t head = w->core.ledger.head;
  uint8_t digest[32];
  memcpy(digest, w->core.state_digest, 32);
  rt_core_close(&w->core);

  memset(&w->rec, 0, sizeof w->rec);
  assert_int_equal(open_core(w), 0);
  assert_int_equal(w->core.ledger.head, head);
  assert_memory_equal(w->core.state_digest, digest, 32);
  solo_state *s = w->core.engine;
  assert_int_equal(s->committed, head);           /* cfg.committed = ledger head */
  assert_int_equal(s->restored_records, head);    /* every PERSIST replayed */
  assert_int_equal(s->restored_max, head);
  /* sessions survive: the last request is a retransmission with the same reply */
  assert_int_equal(submit(w, &w->clients[0], 12, BFT_KV_PUT, "k", "v12"), RT_SUBMIT_RETRANSMIT);
  bft_reply rp = reply_of(w, 0, buf, sizeof buf);
  assert_int_equal(rp.seq, 12);
  assert_int_equal(rp.height, head - 1);
  assert_int_equal(submit(w, &w->clients[0], 3, BFT_KV_PUT, "k", "v3"), RT_SUBMIT_OLD);
  /* and execution continues at head + 1 */
  assert_int_equal(submit(w, &w->clients[0], 13, BFT_KV_GET, "k", NULL), RT_SUBMIT_NEW);
  assert_int_equal(w->core.ledger.head, head + 1);
  rp = reply_of(w, 0, buf, sizeof buf);
  assert_int_equal(rp.result_len, 3);
  assert_memory_equal(rp.result, "v12", 3);
}

static void test_wal_compaction(void **state) {
  world *w = *state;
  for (uint64_t s = 1; s <= 30; s++) submit(w, &w->clients[0], s, BFT_KV_PUT, "k", "v");
  assert_int_equal(w->core.wal.records, 30);
  w->core.wal_compact_at = 0; /* force */
  assert_int_equal(rt_core_sync(&w->core), 0);
  assert_int_equal(w->core.ctr.compactions, 1);
  assert_int_equal(w->core.wal.records, 1);
  submit(w, &w->clients[0], 31, BFT_KV_PUT, "k", "v");
  assert_int_equal(rt_core_sync(&w->core), 0);
  rt_core_close(&w->core);
  assert_int_equal(open_core(w), 0);
  solo_state *s = w->core.engine;
  assert_int_equal(s->restored_records, 2);
  assert_int_equal(s->restored_max, 31);
  assert_int_equal(w->core.ledger.head, 31);
}

/* An application whose state outlives the core (height() > 0): blocks it holds are not executed
 * again; one ahead of the ledger, or with another state at its height, is restored to the
 * initial state and the ledger re-executed; the digest always ends equal. */
static void test_app_resync(void **state) {
  world *w = *state;
  rt_core_close(&w->core);
  assert_int_equal(bft_app_kv_new(&g_inner), 0);
  bft_app ext = {.ops = &EXT_OPS, .state = NULL};
  g_app = &ext;
  g_height = g_executes = 0;
  assert_int_equal(open_core(w), 0);
  for (uint64_t s = 1; s <= 6; s++) submit(w, &w->clients[0], s, BFT_KV_PUT, s % 2 ? "a" : "b", "v");
  assert_int_equal(w->core.ledger.head, 6);
  assert_int_equal(g_executes, 6);
  assert_int_equal(rt_core_sync(&w->core), 0);
  uint8_t digest[32];
  memcpy(digest, w->core.state_digest, 32);
  rt_core_close(&w->core);

  assert_int_equal(open_core(w), 0); /* the application is at 6, like the ledger */
  assert_int_equal(g_executes, 6);
  assert_int_equal(w->core.ctr.app_skipped_blocks, 6);
  assert_memory_equal(w->core.state_digest, digest, 32);
  assert_int_equal(submit(w, &w->clients[0], 6, BFT_KV_PUT, "b", "v"), RT_SUBMIT_RETRANSMIT); /* sessions rebuilt */
  rt_core_close(&w->core);

  g_height = 9; /* ahead of the ledger: restored and re-executed */
  assert_int_equal(open_core(w), 0);
  assert_int_equal(g_executes, 12);
  assert_memory_equal(w->core.state_digest, digest, 32);
  rt_core_close(&w->core);

  uint8_t rb[BFT_APP_MAX_RESULT], op[64]; /* another state at its height: restored too */
  bft_kv_op kop = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"z", .key_len = 1};
  int ol = bft_kv_encode(&kop, op, sizeof op);
  bft_app_op o = {.client_key = w->clients[0].pk, .op = op, .len = (uint32_t)ol};
  bft_app_result r = {.data = rb};
  g_inner.ops->execute(g_inner.state, 6, &o, 1, &r);
  g_height = 6;
  assert_int_equal(open_core(w), 0);
  assert_int_equal(g_executes, 18);
  assert_memory_equal(w->core.state_digest, digest, 32);
  uint32_t vl;
  assert_null(rt_kv_lookup(g_inner.state, (const uint8_t *)"z", 1, &vl));
  rt_core_close(&w->core);
  g_app = NULL;
  bft_app_kv_free(&g_inner);
  assert_int_equal(open_core(w), 0); /* teardown closes it */
}

/* check(): requests are checked in one call per loop iteration (here at once, pulls not
 * deferred); a refused one never enters the pool and its client is told why. */
static void test_app_check(void **state) {
  world *w = *state;
  rt_core_close(&w->core);
  assert_int_equal(bft_app_kv_new(&g_inner), 0);
  bft_app ext = {.ops = &EXT_OPS, .state = NULL};
  g_app = &ext;
  g_height = g_executes = g_rejected = 0;
  assert_int_equal(open_core(w), 0);
  assert_int_equal(submit(w, &w->clients[1], 1, BFT_KV_PUT, "bad", "x"), RT_SUBMIT_CHECKING);
  assert_int_equal(g_rejected, 1);
  assert_string_equal(g_reason, "key bad refused by client 1 seq 1");
  assert_int_equal(w->core.ledger.head, 0);
  assert_int_equal(w->core.pool.count, 0);
  assert_int_equal(submit(w, &w->clients[1], 2, BFT_KV_PUT, "good", "x"), RT_SUBMIT_CHECKING);
  assert_int_equal(w->core.ledger.head, 1);
  assert_int_equal(g_rejected, 1);
  assert_int_equal(w->core.ctr.req_checked, 2);
  assert_int_equal(w->core.ctr.req_app_rejected, 1);
  rt_core_close(&w->core);
  g_app = NULL;
  bft_app_kv_free(&g_inner);
  assert_int_equal(open_core(w), 0);
}

/* A verdict reached elsewhere is carried, never checked again: a good signature said to be bad
 * is refused as bad and not cached, one said to be good is cached without a verify. */
static void test_verdicts(void **state) {
  world *w = *state;
  uint8_t buf[512];
  bft_request r;
  rt_submit out;
  int len = make_request(w, &w->clients[0], 1, BFT_KV_PUT, "a", "1", buf, sizeof buf);
  assert_int_equal(rt_core_needs_verify(&w->core, buf, (uint32_t)len, &r), 1);
  assert_int_equal(r.seq, 1);
  rt_core_submit_verdict(&w->core, buf, (uint32_t)len, 0, RT_SIG_BAD, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_BAD_SIG);
  assert_int_equal(w->core.ctr.req_bad_sig, 1);
  assert_int_equal(rt_core_needs_verify(&w->core, buf, (uint32_t)len, &r), 1);
  /* a spoiled signature said to be good enters the cache and the pool: the verdict is trusted */
  len = make_request(w, &w->clients[1], 1, BFT_KV_PUT, "b", "1", buf, sizeof buf);
  buf[len - 1] ^= 1;
  rt_core_submit_verdict(&w->core, buf, (uint32_t)len, 0, RT_SIG_GOOD, &out);
  assert_int_equal(out.outcome, RT_SUBMIT_NEW);
  assert_int_equal(rt_core_needs_verify(&w->core, buf, (uint32_t)len, &r), 0);
  /* what costs no verify anyway: a stranger, junk, an old seq */
  len = make_request(w, &w->stranger, 1, BFT_KV_PUT, "x", "y", buf, sizeof buf);
  assert_int_equal(rt_core_needs_verify(&w->core, buf, (uint32_t)len, &r), 0);
  assert_int_equal(rt_core_needs_verify(&w->core, (const uint8_t *)"junk", 4, &r), 0);
  assert_int_equal(submit(w, &w->clients[2], 5, BFT_KV_PUT, "c", "1"), RT_SUBMIT_NEW);
  len = make_request(w, &w->clients[2], 4, BFT_KV_PUT, "c", "0", buf, sizeof buf);
  assert_int_equal(rt_core_needs_verify(&w->core, buf, (uint32_t)len, &r), 0);
}

/* Requests 0..n-1 of a proposed batch: client i % NCLIENTS, seq base + i; `bad` gets a spoiled
 * signature, `stranger` is signed by a key outside the cluster (-1: none). */
static uint32_t make_batch(world *w, uint64_t base, uint32_t n, int bad, int stranger, uint8_t *batch,
                           uint8_t reqs[][256], uint32_t *lens) {
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, BFT_MAX_BATCH_BYTES);
  for (uint32_t i = 0; i < n; i++) {
    const bft_keypair *kp = (int)i == stranger ? &w->stranger : &w->clients[i % NCLIENTS];
    lens[i] = (uint32_t)make_request(w, kp, base + i, BFT_KV_PUT, "k", "v", reqs[i], 256);
    if ((int)i == bad) reqs[i][lens[i] - 1] ^= 1;
    assert_int_equal(bft_batch_add(&bw, reqs[i], lens[i]), 0);
  }
  return bft_batch_end(&bw);
}

/* The engine's check of a proposed batch answers the same with or without a verify pool: the
 * first refusal in batch order, and every good signature before it cached. */
static void check_batches(world *w) {
  uint8_t *batch = malloc(BFT_MAX_BATCH_BYTES), reqs[8][256];
  uint32_t lens[8], len;
  bft_request r;
  len = make_batch(w, 100, 8, -1, -1, batch, reqs, lens);
  assert_int_equal(w->core.env.check_batch(w->core.env.ctx, batch, len), 0);
  for (int i = 0; i < 8; i++) assert_int_equal(rt_core_needs_verify(&w->core, reqs[i], lens[i], &r), 0);
  assert_int_equal(w->core.env.check_batch(w->core.env.ctx, batch, len), 0); /* all cached now */
  len = make_batch(w, 200, 6, 2, 5, batch, reqs, lens);
  assert_int_equal(w->core.env.check_batch(w->core.env.ctx, batch, len), BFT_E_BAD_SIG);
  assert_int_equal(rt_core_needs_verify(&w->core, reqs[0], lens[0], &r), 0);
  assert_int_equal(rt_core_needs_verify(&w->core, reqs[1], lens[1], &r), 0);
  assert_int_equal(rt_core_needs_verify(&w->core, reqs[2], lens[2], &r), 1);
  assert_int_equal(rt_core_needs_verify(&w->core, reqs[3], lens[3], &r), 1); /* after the refusal */
  len = make_batch(w, 300, 4, 3, 1, batch, reqs, lens);
  assert_int_equal(w->core.env.check_batch(w->core.env.ctx, batch, len), BFT_E_NOT_PERMITTED);
  assert_int_equal(rt_core_needs_verify(&w->core, reqs[0], lens[0], &r), 0);
  assert_true(w->core.env.check_batch(w->core.env.ctx, (const uint8_t *)"\1\0\0\0", 4) < 0); /* truncated */
  free(batch);
}

static void test_batch_check(void **state) {
  world *w = *state;
  check_batches(w); /* no pool: one by one */
  rt_core_close(&w->core);
  assert_int_equal(rt_vpool_open(&g_vpool, 2, w->cluster->id), 0);
  assert_int_equal(open_core(w), 0);
  assert_non_null(w->core.vpool);
  check_batches(w);
  rt_vpool_stats st;
  rt_vpool_get_stats(g_vpool, &st);
  /* the uncached ones before the first request that fails the cheap checks (decode, client) */
  assert_int_equal(st.items, 8 + 5 + 1);
  rt_core_close(&w->core);
  rt_vpool_close(g_vpool);
  g_vpool = NULL;
  assert_int_equal(open_core(w), 0); /* for teardown */
}

/* A snapshot transfer that finishes in the group commit that also applied fetched blocks
 * (the case seen in net_durable: replica 3 restarted at 26, fetched 27-40, installed 64 before
 * the next sync): the snapshot captured at one of those blocks is older than the installed one
 * and must be dropped. Written, it became our newest, a peer's attestation of that height
 * certified it, and the store pruned the installed snapshot: a ledger starting above every
 * snapshot kept, which the next open refuses. */
static void test_install_drops_an_older_pending_snapshot(void **state) {
  world *w = *state;
  rt_core_close(&w->core);
  g_snap_every = 4;
  assert_int_equal(open_core(w), 0);
  /* a peer's state at height 8, with a certificate from replicas 1 and 2 */
  world *b = calloc(1, sizeof *b);
  *b = *w;
  memset(&b->core, 0, sizeof b->core);
  memset(&b->rec, 0, sizeof b->rec);
  make_dir(b->dir);
  assert_int_equal(open_core(b), 0);
  for (uint64_t q = 1; q <= 8; q++) assert_int_equal(submit(b, &b->clients[0], q, BFT_KV_PUT, "p", "peer"), RT_SUBMIT_NEW);
  assert_int_equal(rt_core_sync(&b->core), 0);
  assert_int_equal(b->core.ledger.head, 8);
  rt_snap s = {0};
  assert_int_equal(rt_snap_capture(&s, &b->core.app, &b->core.sessions, 8, b->core.ledger.head_hash,
                                   b->core.state_digest),
                   0);
  uint8_t want_digest[32];
  memcpy(want_digest, b->core.state_digest, 32);
  static uint8_t sigs[64][BFT_SIG_LEN];
  uint8_t stmt[8 + 3 * 32 + 4], cert[RT_SNAP_CERT_MAX];
  for (uint32_t i = 1; i <= 2; i++) {
    rt_snap_stmt_encode(&s.st, i, stmt);
    assert_int_equal(bft_sign(&w->replicas[i], w->cluster->id, RT_SNAP_TAG, stmt, sizeof stmt, sigs[i]), 0);
  }
  int cl = rt_snap_cert_encode(&s.st, 0x6, (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  assert_true(cl > 0);

  /* ours: blocks 1-4 applied, the snapshot at 4 captured, no sync yet */
  for (uint64_t q = 1; q <= 4; q++) assert_int_equal(submit(w, &w->clients[1], q, BFT_KV_PUT, "o", "own"), RT_SUBMIT_NEW);
  rt_durable *d = w->core.dur;
  assert_true(d->have_pending);
  assert_int_equal(d->pending.st.height, 4);
  rt_snap_stmt st4 = d->pending.st;
  assert_int_equal(rt_dur_install(&w->core, &s, cert, (uint32_t)cl, NULL, 0), 0);
  rt_snap_free(&s);
  /* replica 1 attests our old height (it took its own snapshot there) */
  uint8_t att[8 + 3 * 32 + 4 + BFT_SIG_LEN];
  rt_snap_stmt_encode(&st4, 1, att);
  assert_int_equal(bft_sign(&w->replicas[1], w->cluster->id, RT_SNAP_TAG, att, sizeof att - BFT_SIG_LEN,
                            att + sizeof att - BFT_SIG_LEN),
                   0);
  rt_dur_on_attest(&w->core, 1, att, sizeof att);
  assert_int_equal(rt_core_sync(&w->core), 0);
  rt_dur_on_attest(&w->core, 1, att, sizeof att);
  assert_int_equal(rt_core_sync(&w->core), 0);
  assert_false(d->have_pending);
  assert_int_equal(d->own.height, 8);
  assert_int_equal(d->cert_height, 8);
  assert_int_equal(w->core.ledger.head, 8);

  /* and it opens again from the installed snapshot */
  rt_core_close(&w->core);
  assert_int_equal(open_core(w), 0);
  assert_int_equal(w->core.ledger.head, 8);
  assert_memory_equal(w->core.state_digest, want_digest, 32);
  assert_int_equal(w->core.dur->cert_height, 8);
  g_snap_every = 0;

  rt_core_close(&b->core);
  remove_dir(b->dir);
  free(b);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_execute_and_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_at_most_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_holds_until_pulled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_dedups_within_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_fetch_reply_keeps_the_fetch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fetch_reply_overtaken_asks_again, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wal_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_app_resync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_app_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_install_drops_an_older_pending_snapshot, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
