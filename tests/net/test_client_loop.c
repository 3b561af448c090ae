/* The client library against in-process fake replicas on 127.0.0.1 (their own thread and loop):
 * quorum with silent and lying replicas, timeouts, reconnection after dropped connections,
 * rejections, and ledger reads that move on from a failing replica. The fakes execute each
 * request at once (no consensus): what is tested is the client, not agreement. Also a replica
 * that hangs up while the client writes to it, with SIGPIPE at its default disposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/bft_client.h"
#include "protocols/ledger.h"

enum fake_mode {
  FAKE_HONEST = 0,
  FAKE_SILENT,      /* reads everything, answers nothing */
  FAKE_LIAR,        /* answers OK with a made-up result, and ledger blocks out of order */
  FAKE_CLOSE_FIRST, /* drops the connection on its first request, then is honest */
  FAKE_REJECT,      /* answers REJECTED with a reason */
  FAKE_DOWN         /* nothing listens on its port */
};

#define FAKE_N 4
#define FAKE_CONNS 8
#define FAKE_KEYS 16
#define FAKE_BLOCKS 40

typedef struct fake_conn {
  uv_tcp_t tcp;
  struct fake_replica *r;
  int used;
  uint8_t buf[64 * 1024];
  size_t len;
} fake_conn;

typedef struct fake_replica {
  uint32_t id;
  int mode, closed_once;
  bft_keypair kp;
  uv_tcp_t server;
  uint16_t port;
  fake_conn conns[FAKE_CONNS];
  struct fake_world *w;
  char keys[FAKE_KEYS][32], vals[FAKE_KEYS][64];
  uint32_t nkeys;
  uint64_t last_seq;
  uint32_t requests;
  uint32_t accepted; /* connections accepted so far */
  uint32_t max_frames_per_read; /* most frames one read delivered */
} fake_replica;

typedef struct fake_world {
  uv_loop_t loop;
  uv_async_t stop;
  uv_thread_t thread;
  fake_replica r[FAKE_N];
  bft_cluster *cluster;
  bft_keypair client;
} fake_world;

typedef struct fake_write {
  uv_write_t req;
  uint8_t data[];
} fake_write;

static void fake_on_write(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
}

static void fake_send(fake_conn *c, uint8_t kind, const uint8_t *body, uint32_t len) {
  fake_write *w = malloc(sizeof *w + WIRE_FRAME_HEADER_LEN + len);
  wire_frame_header_encode(w->data, kind, c->r->id, len);
  memcpy(w->data + WIRE_FRAME_HEADER_LEN, body, len);
  w->req.data = w;
  uv_buf_t b = uv_buf_init((char *)w->data, WIRE_FRAME_HEADER_LEN + len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, fake_on_write) != 0) free(w);
}

static void fake_conn_closed(uv_handle_t *h) { ((fake_conn *)h->data)->used = 0; }

static void fake_reply(fake_conn *c, const bft_request *rq, uint8_t status, const char *result) {
  bft_reply rp = {.replica = c->r->id, .seq = rq->seq, .height = rq->seq % 1000, .status = status,
                  .result = (const uint8_t *)result, .result_len = (uint32_t)strlen(result)};
  memcpy(rp.client, rq->client, BFT_PK_LEN);
  uint8_t out[1024];
  int len = bft_reply_encode(&c->r->kp, c->r->w->cluster->id, &rp, out, sizeof out);
  assert_true(len > 0);
  fake_send(c, WIRE_KIND_REPLY, out, (uint32_t)len);
}

static void fake_execute(fake_conn *c, const bft_request *rq) {
  fake_replica *r = c->r;
  bft_kv_op op;
  if (bft_kv_decode(rq->op, rq->op_len, &op) != 0) {
    fake_reply(c, rq, BFT_KV_BAD_OP, "");
    return;
  }
  char key[32];
  snprintf(key, sizeof key, "%.*s", (int)op.key_len, (const char *)op.key);
  uint32_t k = 0;
  while (k < r->nkeys && strcmp(r->keys[k], key) != 0) k++;
  if (op.opcode == BFT_KV_PUT) {
    if (k == r->nkeys && r->nkeys < FAKE_KEYS) snprintf(r->keys[r->nkeys++], 32, "%s", key);
    snprintf(r->vals[k], 64, "%.*s", (int)op.value_len, (const char *)op.value);
    fake_reply(c, rq, BFT_KV_OK, "");
  } else if (op.opcode == BFT_KV_GET) {
    if (k == r->nkeys) fake_reply(c, rq, BFT_KV_NOT_FOUND, "");
    else fake_reply(c, rq, BFT_KV_OK, r->vals[k]);
  } else {
    fake_reply(c, rq, BFT_KV_BAD_OP, "");
  }
}

static void fake_on_request(fake_conn *c, const uint8_t *body, uint32_t len) {
  fake_replica *r = c->r;
  bft_request rq;
  if (bft_request_verify(r->w->cluster->id, body, len, &rq) != 0) return;
  r->requests++;
  switch (r->mode) {
  case FAKE_SILENT: return;
  case FAKE_LIAR: fake_reply(c, &rq, BFT_KV_OK, "lie"); return;
  case FAKE_REJECT: fake_reply(c, &rq, BFT_KV_REJECTED, "client not permitted"); return;
  case FAKE_CLOSE_FIRST:
    if (!r->closed_once) {
      r->closed_once = 1;
      uv_close((uv_handle_t *)&c->tcp, fake_conn_closed);
      return;
    }
    break;
  default: break;
  }
  /* Every request is executed, retransmissions too (puts are idempotent here): the fake keeps no
   * per-client order, so several handles may share one key in a test. */
  if (rq.seq > r->last_seq) r->last_seq = rq.seq;
  fake_execute(c, &rq);
}

/* block := u8 version | u64 height | filler: enough for the client, which only peeks heights */
static void fake_on_ledger_get(fake_conn *c, const uint8_t *body, uint32_t len) {
  fake_replica *r = c->r;
  if (r->mode == FAKE_SILENT || len != 12) return;
  wire_reader rd;
  wire_reader_init(&rd, body, len);
  uint64_t from = wire_get_u64(&rd);
  uint32_t max = wire_get_u32(&rd);
  if (max > BFT_LEDGER_MAX_BLOCKS_PER_REPLY) max = BFT_LEDGER_MAX_BLOCKS_PER_REPLY;
  uint8_t out[4096];
  wire_writer w;
  wire_writer_init(&w, out, sizeof out);
  wire_put_u64(&w, FAKE_BLOCKS);
  uint32_t count = 0;
  for (uint64_t h = from; h <= FAKE_BLOCKS && count < max; h++) count++;
  wire_put_u32(&w, count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t blk[20] = {BFT_LEDGER_VERSION};
    uint64_t h = from + i + (r->mode == FAKE_LIAR ? 1 : 0);
    for (int b = 0; b < 8; b++) blk[1 + b] = (uint8_t)(h >> (8 * b));
    blk[19] = (uint8_t)r->id;
    wire_put_blob(&w, blk, sizeof blk);
  }
  assert_int_equal(w.err, 0);
  fake_send(c, WIRE_KIND_LEDGER_BLOCKS, out, (uint32_t)w.len);
}

static void fake_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  fake_conn *c = h->data;
  (void)s;
  b->base = (char *)c->buf + c->len;
  b->len = sizeof c->buf - c->len;
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  fake_conn *c = s->data;
  (void)b;
  if (n < 0) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, fake_conn_closed);
    return;
  }
  c->len += (size_t)n;
  size_t pos = 0;
  uint32_t frames = 0;
  while (c->len - pos >= WIRE_FRAME_HEADER_LEN && !uv_is_closing((uv_handle_t *)s)) {
    wire_frame_header h;
    assert_int_equal(wire_frame_header_decode(c->buf + pos, c->len - pos, &h), 0);
    assert_int_equal(h.sender, WIRE_SENDER_CLIENT);
    if (c->len - pos < WIRE_FRAME_HEADER_LEN + h.body_len) break;
    const uint8_t *body = c->buf + pos + WIRE_FRAME_HEADER_LEN;
    if (h.kind == WIRE_KIND_REQUEST) fake_on_request(c, body, h.body_len);
    else if (h.kind == WIRE_KIND_LEDGER_GET) fake_on_ledger_get(c, body, h.body_len);
    pos += WIRE_FRAME_HEADER_LEN + h.body_len;
    frames++;
  }
  if (frames > c->r->max_frames_per_read) c->r->max_frames_per_read = frames;
  memmove(c->buf, c->buf + pos, c->len - pos);
  c->len -= pos;
}

static void fake_on_connection(uv_stream_t *server, int status) {
  fake_replica *r = server->data;
  if (status < 0) return;
  fake_conn *c = NULL;
  for (int i = 0; i < FAKE_CONNS; i++)
    if (!r->conns[i].used) c = &r->conns[i];
  if (!c) { /* full: accept and drop */
    uv_tcp_t *refused = malloc(sizeof *refused);
    uv_tcp_init(&r->w->loop, refused);
    uv_accept(server, (uv_stream_t *)refused);
    uv_close((uv_handle_t *)refused, (uv_close_cb)free);
    return;
  }
  memset(c, 0, sizeof *c);
  c->used = 1;
  c->r = r;
  r->accepted++;
  uv_tcp_init(&r->w->loop, &c->tcp);
  c->tcp.data = c;
  uv_accept(server, (uv_stream_t *)&c->tcp);
  uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
}

static void fake_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void fake_on_stop(uv_async_t *a) { uv_walk(a->loop, fake_walk_close, NULL); }

static void fake_thread(void *arg) {
  fake_world *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

static fake_world *fake_start(const int modes[FAKE_N]) {
  fake_world *w = calloc(1, sizeof *w);
  w->cluster = calloc(1, sizeof *w->cluster);
  assert_int_equal(bft_crypto_init(), 0);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  bft_keypair_generate(&w->client);
  bft_cluster *cl = w->cluster;
  snprintf(cl->name, sizeof cl->name, "fake");
  bft_cluster_id_from_name(cl->id, cl->name);
  cl->n = FAKE_N;
  cl->f = 1;
  cl->nclients = 1;
  memcpy(cl->clients[0].pk, w->client.pk, BFT_PK_LEN);
  for (uint32_t i = 0; i < FAKE_N; i++) {
    fake_replica *r = &w->r[i];
    r->id = i;
    r->mode = modes[i];
    r->w = w;
    bft_keypair_generate(&r->kp);
    uv_tcp_init(&w->loop, &r->server);
    r->server.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&r->server, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&got, &len);
    r->port = ntohs(got.sin_port);
    if (r->mode == FAKE_DOWN) uv_close((uv_handle_t *)&r->server, NULL); /* port now refuses */
    else assert_int_equal(uv_listen((uv_stream_t *)&r->server, 16, fake_on_connection), 0);
    cl->replicas[i].id = i;
    snprintf(cl->replicas[i].host, sizeof cl->replicas[i].host, "127.0.0.1");
    cl->replicas[i].port = r->port;
    memcpy(cl->replicas[i].pk, r->kp.pk, BFT_PK_LEN);
  }
  uv_async_init(&w->loop, &w->stop, fake_on_stop);
  assert_int_equal(uv_thread_create(&w->thread, fake_thread, w), 0);
  return w;
}

static void fake_stop(fake_world *w) {
  uv_async_send(&w->stop);
  uv_thread_join(&w->thread);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  free(w->cluster);
  free(w);
}

static bft_client_sync *open_sync(fake_world *w, uint32_t timeout_ms) {
  bft_client_options o;
  bft_client_options_default(&o);
  o.timeout_ms = timeout_ms;
  o.retransmit_ms = 100;
  o.ledger_request_ms = 300;
  bft_client_sync *s = NULL;
  assert_int_equal(bft_client_sync_open(w->cluster, &w->client, &o, &s), 0);
  return s;
}

static int kv(bft_client_sync *s, uint8_t opcode, const char *key, const char *val, bft_client_reply *rp) {
  bft_kv_op op = {.opcode = opcode, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key)};
  if (val) {
    op.value = (const uint8_t *)val;
    op.value_len = (uint32_t)strlen(val);
  }
  uint8_t buf[256];
  int len = bft_kv_encode(&op, buf, sizeof buf);
  assert_true(len > 0);
  return bft_client_sync_submit(s, buf, (uint32_t)len, rp);
}

static bft_client_reply *reply_buf(void) { return calloc(1, sizeof(bft_client_reply)); }

static void test_all_honest(void **state) {
  (void)state;
  int modes[FAKE_N] = {0, 0, 0, 0};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 3000);
  bft_client_reply *rp = reply_buf();
  assert_int_equal(kv(s, BFT_KV_GET, "a", NULL, rp), 0);
  assert_int_equal(rp->status, BFT_KV_NOT_FOUND);
  uint64_t first = rp->seq;
  assert_int_equal(kv(s, BFT_KV_PUT, "a", "one", rp), 0);
  assert_int_equal(rp->status, BFT_KV_OK);
  assert_true(rp->seq > first);
  assert_int_equal(kv(s, BFT_KV_GET, "a", NULL, rp), 0);
  assert_int_equal(rp->status, BFT_KV_OK);
  assert_int_equal(rp->result_len, 3);
  assert_memory_equal(rp->result, "one", 3);
  bft_client_sync_close(s);
  /* a fixed first sequence number is used as given, and later ones follow the clock */
  bft_client_options o;
  bft_client_options_default(&o);
  o.first_seq = 42;
  assert_int_equal(bft_client_sync_open(w->cluster, &w->client, &o, &s), 0);
  assert_int_equal(kv(s, BFT_KV_GET, "a", NULL, rp), 0);
  assert_int_equal(rp->seq, 42);
  assert_int_equal(kv(s, BFT_KV_GET, "a", NULL, rp), 0);
  assert_true(rp->seq > first);
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

static void test_silent_and_liar_are_outvoted(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_SILENT, FAKE_LIAR, FAKE_HONEST, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 3000);
  bft_client_reply *rp = reply_buf();
  assert_int_equal(kv(s, BFT_KV_PUT, "k", "v", rp), 0);
  assert_int_equal(kv(s, BFT_KV_GET, "k", NULL, rp), 0);
  assert_int_equal(rp->status, BFT_KV_OK);
  assert_memory_equal(rp->result, "v", 1);
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

static void test_timeout_without_quorum(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_SILENT, FAKE_SILENT, FAKE_DOWN, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 800);
  bft_client_reply *rp = reply_buf();
  uint64_t t0 = uv_hrtime();
  assert_int_equal(kv(s, BFT_KV_PUT, "k", "v", rp), BFT_E_TIMEOUT);
  uint64_t ms = (uv_hrtime() - t0) / 1000000u;
  assert_true(ms >= 700 && ms < 2000);
  assert_non_null(strstr(rp->detail, "at most 1 agreed"));
  assert_non_null(strstr(rp->detail, "replica 2"));
  /* the silent replicas got the request again on each retransmission */
  assert_true(w->r[0].requests >= 3);
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

static void test_reconnect_after_drop(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_CLOSE_FIRST, FAKE_CLOSE_FIRST, FAKE_CLOSE_FIRST, FAKE_CLOSE_FIRST};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 5000);
  bft_client_reply *rp = reply_buf();
  assert_int_equal(kv(s, BFT_KV_PUT, "k", "v", rp), 0);
  assert_int_equal(rp->status, BFT_KV_OK);
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

static void test_rejected(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_REJECT, FAKE_REJECT, FAKE_REJECT, FAKE_REJECT};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 3000);
  bft_client_reply *rp = reply_buf();
  assert_int_equal(kv(s, BFT_KV_PUT, "k", "v", rp), 0);
  assert_int_equal(rp->status, BFT_KV_REJECTED);
  assert_int_equal(rp->result_len, strlen("client not permitted"));
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

static void test_minority_rejection_in_timeout_detail(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_REJECT, FAKE_SILENT, FAKE_SILENT, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 600);
  bft_client_reply *rp = reply_buf();
  assert_int_equal(kv(s, BFT_KV_PUT, "k", "v", rp), BFT_E_TIMEOUT);
  assert_non_null(strstr(rp->detail, "client not permitted"));
  free(rp);
  bft_client_sync_close(s);
  fake_stop(w);
}

typedef struct ledger_walk {
  uint64_t next, count;
  int out_of_order;
} ledger_walk;

static int walk_block(void *arg, uint64_t height, const uint8_t *b, uint32_t len) {
  ledger_walk *lw = arg;
  uint64_t h = 0;
  for (int i = 7; i >= 0; i--) h = (h << 8) | b[1 + i];
  if (height != lw->next || h != height || len != 20) lw->out_of_order = 1;
  lw->next++;
  lw->count++;
  return 0;
}

static void test_ledger_moves_on(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_SILENT, FAKE_LIAR, FAKE_HONEST, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  bft_client_sync *s = open_sync(w, 5000);
  ledger_walk lw = {.next = 3};
  uint64_t head = 0;
  uint32_t by = 99;
  char detail[256];
  assert_int_equal(bft_client_sync_ledger(s, -1, 3, BFT_CLIENT_LEDGER_HEAD, walk_block, &lw, &head, &by, detail,
                                          sizeof detail),
                   0);
  assert_int_equal(lw.count, FAKE_BLOCKS - 2);
  assert_false(lw.out_of_order);
  assert_int_equal(head, FAKE_BLOCKS);
  assert_true(by >= 2);
  /* a bounded range, and a fixed replica that lies: refused, nothing delivered */
  lw = (ledger_walk){.next = 5};
  assert_int_equal(bft_client_sync_ledger(s, 2, 5, 7, walk_block, &lw, &head, &by, NULL, 0), 0);
  assert_int_equal(lw.count, 3);
  lw = (ledger_walk){.next = 1};
  int rc = bft_client_sync_ledger(s, 1, 1, BFT_CLIENT_LEDGER_HEAD, walk_block, &lw, NULL, NULL, detail, sizeof detail);
  assert_int_not_equal(rc, 0);
  assert_int_equal(lw.count, 0);
  bft_client_sync_close(s);
  fake_stop(w);
}

/* Several handles on one caller loop, as bft-bench uses them. */
typedef struct async_ctx {
  int done, ok;
} async_ctx;

static void async_cb(void *arg, const bft_client_result *res) {
  async_ctx *a = arg;
  a->done++;
  if (res->err == 0 && res->status == BFT_KV_OK) a->ok++;
}

static void closed_cb(void *arg) { (*(int *)arg)--; }

static void test_async_many_handles(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_HONEST, FAKE_HONEST, FAKE_SILENT, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  uv_loop_t loop;
  uv_loop_init(&loop);
  bft_client *h[3];
  async_ctx ctx = {0};
  int open = 3;
  uint8_t op[64];
  bft_kv_op kop = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"x", .key_len = 1,
                   .value = (const uint8_t *)"y", .value_len = 1};
  int len = bft_kv_encode(&kop, op, sizeof op);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(bft_client_open(&loop, w->cluster, &w->client, NULL, &h[i]), 0);
    assert_int_equal(bft_client_submit(h[i], op, (uint32_t)len, async_cb, &ctx), 0);
    assert_int_equal(bft_client_submit(h[i], op, (uint32_t)len, async_cb, &ctx), BFT_E_STATE);
  }
  while (ctx.done < 3) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(ctx.ok, 3);
  for (int i = 0; i < 3; i++) bft_client_close(h[i], closed_cb, &open);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(open, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  fake_stop(w);
}

/* Many clients (keys) over one connection per replica: each reply reaches the handle whose key
 * it names, the requests of one loop iteration leave in one write (a replica reads several
 * frames at once), a key can join a mux once, one ledger read at a time, and closing the mux
 * completes what is in flight. */
#define MUX_CLIENTS 6
static int ledger_count_cb(void *arg, uint64_t height, const uint8_t *block, uint32_t len) {
  (void)arg, (void)height, (void)block, (void)len;
  return 0;
}
static void ledger_done_cb(void *arg, int err, uint64_t head, uint32_t replica, const char *detail) {
  (void)head, (void)replica, (void)detail;
  assert_int_equal(err, 0);
  (*(int *)arg)++;
}
static void test_mux_shares_connections(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_HONEST, FAKE_HONEST, FAKE_SILENT, FAKE_HONEST};
  fake_world *w = fake_start(modes);
  uv_loop_t loop;
  uv_loop_init(&loop);
  bft_client_options o;
  bft_client_options_default(&o);
  o.retransmit_ms = 200;
  o.timeout_ms = 5000;
  bft_client_mux *m = NULL;
  assert_int_equal(bft_client_mux_open(&loop, w->cluster, &o, &m), 0);
  while (bft_client_mux_connected(m) < FAKE_N) uv_run(&loop, UV_RUN_ONCE);
  bft_keypair kp[MUX_CLIENTS];
  bft_client *h[MUX_CLIENTS];
  for (int i = 0; i < MUX_CLIENTS; i++) {
    assert_int_equal(bft_keypair_generate(&kp[i]), 0);
    assert_int_equal(bft_client_open_mux(m, &kp[i], &o, &h[i]), 0);
  }
  bft_client *dup = NULL;
  assert_int_equal(bft_client_open_mux(m, &kp[2], &o, &dup), BFT_E_STATE); /* a key joins once */
  assert_int_equal(bft_client_mux_members(m), MUX_CLIENTS);
  assert_int_equal(bft_client_connected(h[0]), FAKE_N); /* the mux's connections, already up */
  /* Each client puts its own value and then reads it back: the read returns what this very
   * client wrote only if replies went to the right handle. */
  async_ctx ctx = {0};
  for (int round = 0; round < 3; round++) {
    int want = ctx.done + MUX_CLIENTS;
    for (int i = 0; i < MUX_CLIENTS; i++) {
      char key[8], val[8];
      snprintf(key, sizeof key, "m%d", i);
      snprintf(val, sizeof val, "v%d-%d", i, round);
      uint8_t op[64];
      bft_kv_op kop = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key),
                       .value = (const uint8_t *)val, .value_len = (uint32_t)strlen(val)};
      int len = bft_kv_encode(&kop, op, sizeof op);
      assert_int_equal(bft_client_submit(h[i], op, (uint32_t)len, async_cb, &ctx), 0);
    }
    while (ctx.done < want) uv_run(&loop, UV_RUN_ONCE);
  }
  assert_int_equal(ctx.ok, 3 * MUX_CLIENTS);
  for (int i = 0; i < MUX_CLIENTS; i++) {
    bft_client_stats st;
    bft_client_get_stats(h[i], &st);
    assert_int_equal(st.ops_done, 3);
    assert_int_equal(st.replies_bad, 0);
  }
  /* One connection per replica in all, and one write carried several clients' requests. */
  for (int i = 0; i < FAKE_N; i++) {
    assert_int_equal(w->r[i].accepted, 1);
    assert_true(w->r[i].max_frames_per_read > 1);
  }
  /* One ledger read per mux at a time. */
  int lg_done = 0;
  assert_int_equal(bft_client_ledger_fetch(h[0], 0, 1, 5, ledger_count_cb, ledger_done_cb, &lg_done), 0);
  assert_int_equal(bft_client_ledger_fetch(h[1], 0, 1, 5, ledger_count_cb, ledger_done_cb, &lg_done), BFT_E_STATE);
  while (!lg_done) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(bft_client_ledger_fetch(h[1], 0, 1, 5, ledger_count_cb, ledger_done_cb, &lg_done), 0);
  while (lg_done < 2) uv_run(&loop, UV_RUN_ONCE);
  /* A handle closed alone leaves; the mux closes the rest, finishing their operations. */
  int open = 2; /* h[0] and the mux report their close; the others are closed without a callback */
  bft_client_close(h[0], closed_cb, &open);
  assert_int_equal(bft_client_mux_members(m), MUX_CLIENTS - 1);
  async_ctx late = {0};
  uint8_t get[] = {BFT_KV_GET, 1, 0, 0, 0, 'k'};
  for (int i = 1; i < MUX_CLIENTS; i++) assert_int_equal(bft_client_submit(h[i], get, sizeof get, async_cb, &late), 0);
  bft_client_mux_close(m, closed_cb, &open);
  assert_int_equal(late.done, MUX_CLIENTS - 1); /* completed with BFT_E_STATE */
  assert_int_equal(late.ok, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(open, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (int i = 0; i < MUX_CLIENTS; i++) bft_keypair_wipe(&kp[i]);
  fake_stop(w);
}

static void test_close_with_op_in_flight(void **state) {
  (void)state;
  int modes[FAKE_N] = {FAKE_SILENT, FAKE_SILENT, FAKE_SILENT, FAKE_SILENT};
  fake_world *w = fake_start(modes);
  uv_loop_t loop;
  uv_loop_init(&loop);
  bft_client *h;
  async_ctx ctx = {0};
  int open = 1;
  assert_int_equal(bft_client_open(&loop, w->cluster, &w->client, NULL, &h), 0);
  uint8_t op[] = {BFT_KV_GET, 1, 0, 0, 0, 'k'};
  assert_int_equal(bft_client_submit(h, op, sizeof op, async_cb, &ctx), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  bft_client_close(h, closed_cb, &open);
  assert_int_equal(ctx.done, 1); /* completed with BFT_E_STATE */
  assert_int_equal(ctx.ok, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(open, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  fake_stop(w);
}

/* A replica that hangs up under the client: each accepts the connection and closes it (the FIN
 * reaches the client, which has not read it yet); the request then written to each draws an RST;
 * the next write to replica 0 fails with EPIPE. With write(2) that write raises SIGPIPE, which
 * kills the process at the default disposition (this test restores it: main ignores SIGPIPE for
 * the fakes' sake); the library must instead drop the connection and report why. */
typedef struct hangup_ctx {
  int op_done, op_err, lg_done, lg_err;
  char op_detail[BFT_CLIENT_DETAIL_MAX], lg_detail[BFT_CLIENT_DETAIL_MAX];
} hangup_ctx;

static void hangup_op_cb(void *arg, const bft_client_result *res) {
  hangup_ctx *h = arg;
  h->op_done = 1;
  h->op_err = res->err;
  snprintf(h->op_detail, sizeof h->op_detail, "%s", res->detail);
}

static int hangup_block_cb(void *arg, uint64_t height, const uint8_t *block, uint32_t len) {
  (void)arg, (void)height, (void)block, (void)len;
  return 0;
}

static void hangup_lg_cb(void *arg, int err, uint64_t head, uint32_t replica, const char *detail) {
  hangup_ctx *h = arg;
  (void)head, (void)replica;
  h->lg_done = 1;
  h->lg_err = err;
  snprintf(h->lg_detail, sizeof h->lg_detail, "%s", detail);
}

/* A cluster of plain listening sockets on 127.0.0.1 (nothing here writes), for client key ckp. */
static bft_cluster *listening_cluster(const bft_keypair *ckp, int lfd[FAKE_N]) {
  bft_cluster *cl = calloc(1, sizeof *cl);
  bft_keypair rkp;
  snprintf(cl->name, sizeof cl->name, "hangup");
  bft_cluster_id_from_name(cl->id, cl->name);
  cl->n = FAKE_N;
  cl->f = 1;
  cl->nclients = 1;
  memcpy(cl->clients[0].pk, ckp->pk, BFT_PK_LEN);
  for (uint32_t i = 0; i < FAKE_N; i++) {
    lfd[i] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd[i] >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd[i], (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd[i], 4), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(lfd[i], (struct sockaddr *)&a, &alen), 0);
    bft_keypair_generate(&rkp);
    cl->replicas[i].id = i;
    snprintf(cl->replicas[i].host, sizeof cl->replicas[i].host, "127.0.0.1");
    cl->replicas[i].port = ntohs(a.sin_port);
    memcpy(cl->replicas[i].pk, rkp.pk, BFT_PK_LEN);
  }
  return cl;
}

static void test_replica_hangs_up_mid_write(void **state) {
  (void)state;
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
  assert_int_equal(bft_crypto_init(), 0);
  bft_keypair ckp;
  bft_keypair_generate(&ckp);
  int lfd[FAKE_N];
  bft_cluster *cl = listening_cluster(&ckp, lfd);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  bft_client_options o;
  bft_client_options_default(&o);
  o.timeout_ms = 30; /* due before replica 0 tries to reconnect (50 ms after its drop) */
  o.retransmit_ms = 1000;
  o.ledger_request_ms = 30;
  bft_client *c;
  assert_int_equal(bft_client_open(&loop, cl, &ckp, &o, &c), 0);
  for (int i = 0; i < 1000 && bft_client_connected(c) < FAKE_N; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(bft_client_connected(c), FAKE_N);
  for (uint32_t i = 0; i < FAKE_N; i++) { /* hang up; later connection attempts are refused */
    int fd = accept(lfd[i], NULL, NULL);
    assert_true(fd >= 0);
    close(fd);
    close(lfd[i]);
  }
  usleep(20 * 1000); /* the FINs arrive; the client's loop does not run, so it has not seen them */
  hangup_ctx h;
  memset(&h, 0, sizeof h);
  uint8_t op[] = {BFT_KV_GET, 1, 0, 0, 0, 'k'};
  assert_int_equal(bft_client_submit(c, op, sizeof op, hangup_op_cb, &h), 0); /* each peer answers RST */
  usleep(40 * 1000);
  bft_client_stats st;
  bft_client_get_stats(c, &st);
  assert_int_equal(st.disconnects, 0);
  /* The write of this ledger read to replica 0 fails at once, with EPIPE. */
  assert_int_equal(bft_client_ledger_fetch(c, 0, 1, 1, hangup_block_cb, hangup_lg_cb, &h), 0);
  bft_client_get_stats(c, &st);
  assert_int_equal(st.disconnects, 1);
  assert_int_equal(bft_client_connected(c), FAKE_N - 1);
  for (int i = 0; i < 1000 && !(h.op_done && h.lg_done); i++) uv_run(&loop, UV_RUN_ONCE);
  assert_true(h.op_done && h.lg_done);
  assert_int_equal(h.op_err, BFT_E_TIMEOUT);
  assert_non_null(strstr(h.op_detail, "replica 0 at 127.0.0.1"));
  assert_non_null(strstr(h.op_detail, "write failed: broken pipe"));
  assert_int_equal(h.lg_err, BFT_E_TIMEOUT);
  assert_non_null(strstr(h.lg_detail, "replica 0: write failed: broken pipe"));
  int open = 1;
  bft_client_close(c, closed_cb, &open);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(open, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  free(cl);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

int main(void) {
  /* The fakes answer with uv_write (write(2)) and clients hang up on them: a fake must not die
   * of SIGPIPE, any more than a real replica does. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_honest),
      cmocka_unit_test(test_silent_and_liar_are_outvoted),
      cmocka_unit_test(test_timeout_without_quorum),
      cmocka_unit_test(test_reconnect_after_drop),
      cmocka_unit_test(test_rejected),
      cmocka_unit_test(test_minority_rejection_in_timeout_detail),
      cmocka_unit_test(test_ledger_moves_on),
      cmocka_unit_test(test_async_many_handles),
      cmocka_unit_test(test_mux_shares_connections),
      cmocka_unit_test(test_close_with_op_in_flight),
      cmocka_unit_test(test_replica_hangs_up_mid_write),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
