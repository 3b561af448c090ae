/* Write valid seed inputs for a fuzz target into a corpus folder, so fuzzing starts from real
 * frames and files instead of random bytes. Usage: fuzz_seeds TARGET DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/engine.h"
#include "protocols/kv.h"
#include "protocols/ledger.h"
#include "protocols/request.h"
#include "protocols/status.h"

static int save(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/seed-%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(p, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

static size_t frame(uint8_t *out, uint8_t kind, const uint8_t *body, uint32_t len) {
  wire_frame_header_encode(out, kind, WIRE_SENDER_CLIENT, len);
  memcpy(out + WIRE_FRAME_HEADER_LEN, body, len);
  return WIRE_FRAME_HEADER_LEN + len;
}

static int frame_seeds(const char *dir) {
  static uint8_t buf[1 << 16], fr[1 << 17], batch[1 << 15], blk[1 << 16];
  uint8_t seed[32] = {7}, cid[32] = {1};
  bft_keypair kp;
  bft_keypair_from_seed(&kp, seed);
  uint8_t op[256];
  bft_kv_op kv = {.opcode = BFT_KV_CAS, .key = (const uint8_t *)"k", .key_len = 1,
                  .value = (const uint8_t *)"new", .value_len = 3,
                  .expected = (const uint8_t *)"old", .expected_len = 3};
  int ol = bft_kv_encode(&kv, op, sizeof op);
  int rl = bft_request_encode(&kp, cid, 1, op, (uint32_t)ol, buf, sizeof buf);
  if (ol < 0 || rl < 0) return -1;
  int rc = save(dir, "request", fr, frame(fr, WIRE_KIND_REQUEST, buf, (uint32_t)rl));
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, buf, (uint32_t)rl);
  bft_batch_add(&bw, buf, (uint32_t)rl);
  uint32_t bl = bft_batch_end(&bw);
  rc |= save(dir, "batch", fr, frame(fr, WIRE_KIND_ENGINE + 1, batch, bl));
  bft_block b = {.height = 1, .protocol = "pbft", .cert = (const uint8_t *)"cert", .cert_len = 4,
                 .batch = batch, .batch_len = bl};
  bft_digest(b.batch_digest, batch, bl);
  int kl = bft_block_encode(&b, blk, sizeof blk);
  if (kl < 0) return -1;
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u64(&w, 1);
  wire_put_u32(&w, 1);
  wire_put_blob(&w, blk, (uint32_t)kl);
  rc |= save(dir, "blocks", fr, frame(fr, WIRE_KIND_LEDGER_BLOCKS, buf, (uint32_t)w.len));
  return rc;
}

static int cluster_seeds(const char *dir) {
  const char *text =
      "[cluster]\nid = local\n"
      "[replica.0]\naddress = 127.0.0.1:7000\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000001\n"
      "[replica.1]\naddress = 127.0.0.1:7001\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000002\n"
      "[replica.2]\naddress = 127.0.0.1:7002\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000003\n"
      "[replica.3]\naddress = 127.0.0.1:7003\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000004\n"
      "[client.0]\npublic_key = 0000000000000000000000000000000000000000000000000000000000000005\n";
  return save(dir, "cluster", (const uint8_t *)text, strlen(text));
}

static void nosign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  memset(sig, 0, BFT_SIG_LEN);
}
static int anyverify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                     const uint8_t sig[BFT_SIG_LEN]) {
  return 0;
}
static int anybatch(void *ctx, const uint8_t *batch, uint32_t len) { return 0; }

static void append_msg(wire_writer *w, uint8_t kind, uint8_t from, const uint8_t *body, uint32_t len) {
  wire_put_u8(w, kind);
  wire_put_u8(w, from);
  wire_put_u16(w, (uint16_t)len);
  wire_put_fixed(w, body, len);
}

/* A backup's view of a normal-case round: the primary's first message (taken from a real
 * engine acting as primary of view 0), then prepares and commits from replicas 2 and 3 for
 * the same (view, seq, digest), built as the vote statement view|seq|digest|replica. */
static int engine_seeds(const char *dir) {
  const bft_engine_ops *ops = bft_engine_find("pbft");
  if (!ops) return 0;
  bft_engine_config cfg;
  bft_engine_config_defaults(&cfg, 4, 0);
  cfg.window = 8;
  cfg.checkpoint_interval = 2;
  bft_engine_env env = {.sign = nosign, .verify = anyverify, .check_batch = anybatch};
  void *st = calloc(1, ops->state_size);
  bft_action *items = malloc(sizeof(bft_action) * BFT_MAX_ACTIONS);
  uint8_t *arena = malloc(BFT_ACTION_ARENA);
  static uint8_t input[1 << 16], req[512], batch[2048];
  bft_actions out;
  bft_actions_init(&out, items, BFT_MAX_ACTIONS, arena, BFT_ACTION_ARENA);
  int rc = -1;
  if (st && items && arena && ops->init(st, &cfg, &env) == 0) {
    ops->start(st, &out);
    uint8_t seed[32] = {3};
    bft_keypair kp;
    bft_keypair_from_seed(&kp, seed);
    int rl = bft_request_encode(&kp, cfg.cluster_id, 1, (const uint8_t *)"\x02\x01\0\0\0k", 6, req, sizeof req);
    bft_batch_writer bw;
    bft_batch_begin(&bw, batch, sizeof batch);
    bft_batch_add(&bw, req, (uint32_t)rl);
    uint32_t bl = bft_batch_end(&bw);
    bft_actions_reset(&out);
    bft_event ev = {.type = BFT_EV_BATCH};
    ev.u.batch.data = batch;
    ev.u.batch.len = bl;
    ev.u.batch.count = 1;
    ops->step(st, &ev, &out);
    wire_writer w;
    wire_writer_init(&w, input, sizeof input);
    wire_put_u8(&w, 0x00); /* engine selector byte: pbft, replica 1 (a backup) */
    for (uint32_t i = 0; i < out.count; i++) {
      const bft_action *a = &out.items[i];
      if (a->type == BFT_ACT_BROADCAST) append_msg(&w, a->kind, 0, a->data, a->len);
    }
    uint8_t digest[32], vote[52 + 64];
    bft_digest(digest, batch, bl);
    for (uint8_t kind = 2; kind <= 3; kind++)
      for (uint8_t from = 2; from <= 3; from++) {
        wire_writer v;
        wire_writer_init(&v, vote, sizeof vote);
        wire_put_u64(&v, 0);
        wire_put_u64(&v, 1);
        wire_put_fixed(&v, digest, 32);
        wire_put_u32(&v, from);
        memset(vote + v.len, 0, 64);
        append_msg(&w, kind, from, vote, sizeof vote);
      }
    rc = w.err ? -1 : save(dir, "normal-case", input, w.len);
  }
  free(st);
  free(items);
  free(arena);
  return rc;
}

/* What an application answers after HELLO: EXECUTE (2 results + digest), CHECK, QUERY,
 * SNAPSHOT_BEGIN/NEXT/END, RESTORE_BEGIN/CHUNK/END, framed as docs/app-socket.md says. */
static size_t app_frame(uint8_t *out, uint8_t type, const uint8_t *p, uint32_t len) {
  uint32_t fl = len + 1;
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(fl >> (8 * i));
  out[4] = type;
  if (len) memcpy(out + 5, p, len);
  return 5 + (size_t)len;
}

static int app_answer_seeds(const char *dir) {
  static uint8_t buf[4096], body[1024];
  size_t n = 0;
  wire_writer w;
  wire_writer_init(&w, body, sizeof body);
  wire_put_u64(&w, 1);
  wire_put_u32(&w, 2);
  wire_put_u8(&w, 0);
  wire_put_blob(&w, "ok", 2);
  wire_put_u8(&w, 3);
  wire_put_blob(&w, "", 0);
  uint8_t d[32] = {9};
  wire_put_fixed(&w, d, 32);
  n += app_frame(buf + n, 0x82, body, (uint32_t)w.len);
  wire_writer_init(&w, body, sizeof body);
  wire_put_u32(&w, 2);
  wire_put_u8(&w, 0);
  wire_put_blob(&w, "", 0);
  wire_put_u8(&w, 1);
  wire_put_blob(&w, "no", 2);
  n += app_frame(buf + n, 0x8A, body, (uint32_t)w.len);
  wire_writer_init(&w, body, sizeof body);
  wire_put_u8(&w, 0);
  wire_put_blob(&w, "42", 2);
  n += app_frame(buf + n, 0x8B, body, (uint32_t)w.len);
  n += app_frame(buf + n, 0x84, NULL, 0);
  wire_writer_init(&w, body, sizeof body);
  wire_put_u8(&w, 1);
  wire_put_blob(&w, "state", 5);
  n += app_frame(buf + n, 0x85, body, (uint32_t)w.len);
  n += app_frame(buf + n, 0x86, NULL, 0);
  n += app_frame(buf + n, 0x87, NULL, 0);
  n += app_frame(buf + n, 0x88, NULL, 0);
  n += app_frame(buf + n, 0x89, d, 32);
  if (save(dir, "app-all", buf, n)) return -1;
  uint8_t err[16];
  wire_writer_init(&w, body, sizeof body);
  wire_put_blob(&w, "boom", 4);
  return save(dir, "app-error", err, app_frame(err, 0x7F, body, (uint32_t)w.len));
}

/* /metrics request heads (valid and not) and one signed status. */
static int http_seeds(const char *dir) {
  const char *heads[] = {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: */*\r\n\r\n",
                         "GET /metrics HTTP/1.0\n\n", "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"};
  char name[16];
  int rc = 0;
  for (int i = 0; i < 3; i++) {
    snprintf(name, sizeof name, "http-%d", i);
    rc |= save(dir, name, (const uint8_t *)heads[i], strlen(heads[i]));
  }
  uint8_t seed[32] = {9}, cid[32] = {1}, buf[BFT_STATUS_MAX_BYTES];
  bft_keypair kp;
  bft_keypair_from_seed(&kp, seed);
  bft_status st = {.replica = 1, .protocol = "pbft", .view = 2, .committed = 10, .batch_max = 64, .window = 32};
  int n = bft_status_encode(&st, &kp, cid, buf, sizeof buf);
  return n < 0 ? -1 : rc | save(dir, "status", buf, (size_t)n);
}

int main(int argc, char **argv) {
  if (argc != 3 || bft_crypto_init() != 0) {
    fprintf(stderr, "usage: fuzz_seeds TARGET DIR\n");
    return 2;
  }
  int rc = 0;
  if (strcmp(argv[1], "fuzz_frame") == 0) rc = frame_seeds(argv[2]);
  else if (strcmp(argv[1], "fuzz_cluster") == 0) rc = cluster_seeds(argv[2]);
  else if (strcmp(argv[1], "fuzz_engine") == 0) rc = engine_seeds(argv[2]);
  else if (strcmp(argv[1], "fuzz_app_answer") == 0) rc = app_answer_seeds(argv[2]);
  else if (strcmp(argv[1], "fuzz_http") == 0) rc = http_seeds(argv[2]);
  if (rc) fprintf(stderr, "fuzz_seeds: cannot write seeds for %s into %s\n", argv[1], argv[2]);
  return rc ? 1 : 0;
}
