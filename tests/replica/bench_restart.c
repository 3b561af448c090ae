/* Restart time of the runtime core against the length of its ledger (issue 13): builds a data
 * folder holding OPS key-value puts (batches of 64, the solo test engine, request signatures
 * not checked: a restart never re-verifies them), then times rt_core_open + rt_core_start over
 * it, with and without snapshots. Prints one parseable line per measurement:
 *   RESTART ops=N blocks=B snapshot_every=K ledger_bytes=L restart_ms=T
 * Usage: bench-restart OPS [SNAPSHOT_EVERY (0: none)] [RUNS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "protocols/kv.h"
#include "replica/core.h"
#include "tests/replica/solo_engine.h"

#define NCLIENTS 64
#define KEYSPACE 100000u

static void io_send(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {}
static void io_broadcast(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len) {}
static void io_timer_set(void *ctx, uint32_t id, uint64_t delay) {}
static void io_timer_cancel(void *ctx, uint32_t id) {}
static void io_replied(void *ctx, uint32_t client) {}
static uint64_t io_now(void *ctx) { return 1; }
static int fake_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  memset(sig, 0x5a, BFT_SIG_LEN);
  return 0;
}
static int fake_verify(void *ctx, uint32_t signer, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                       uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int open_core(rt_core *c, bft_cluster *cl, const char *dir, uint32_t every, rt_log *log, const rt_crypto *cr) {
  rt_core_config cc = {.cluster = cl, .self = 0, .ops = &solo_engine_ops, .data_dir = dir, .log = log,
                       .crypto = cr, .snapshot_every = every ? every : UINT32_MAX};
  cc.io = (rt_io){.send = io_send, .broadcast = io_broadcast, .timer_set = io_timer_set,
                  .timer_cancel = io_timer_cancel, .replied = io_replied, .now_ms = io_now};
  char err[256] = "";
  int rc = rt_core_open(c, &cc, err, sizeof err);
  if (rc) fprintf(stderr, "bench-restart: open: %s\n", err);
  if (!rc) rc = rt_core_start(c);
  c->defer_pulls = 1;
  return rc;
}

/* request := u8 1 | client_pk | u64 seq | blob op | sig (not checked here) */
static uint32_t make_request(const bft_cluster *cl, uint32_t client, uint64_t seq, uint64_t i, uint8_t *buf) {
  char key[32], val[32];
  snprintf(key, sizeof key, "key-%llu", (unsigned long long)(i % KEYSPACE));
  snprintf(val, sizeof val, "value-%016llu", (unsigned long long)i);
  bft_kv_op op = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key),
                  .value = (const uint8_t *)val, .value_len = (uint32_t)strlen(val)};
  uint8_t ob[128];
  int ol = bft_kv_encode(&op, ob, sizeof ob);
  wire_writer w;
  wire_writer_init(&w, buf, 512);
  wire_put_u8(&w, BFT_REQUEST_VERSION);
  wire_put_fixed(&w, cl->clients[client].pk, BFT_PK_LEN);
  wire_put_u64(&w, seq);
  wire_put_blob(&w, ob, (uint32_t)ol);
  memset(wire_put_reserve(&w, BFT_SIG_LEN), 0x5a, BFT_SIG_LEN);
  return (uint32_t)w.len;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-restart OPS [SNAPSHOT_EVERY] [RUNS]\n");
    return 2;
  }
  uint64_t ops = strtoull(argv[1], NULL, 10);
  uint32_t every = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
  int runs = argc > 3 ? atoi(argv[3]) : 3;
  if (bft_crypto_init() != 0) return 1;
  bft_cluster *cl = calloc(1, sizeof *cl);
  snprintf(cl->name, sizeof cl->name, "bench-restart");
  bft_cluster_id_from_name(cl->id, cl->name);
  cl->n = 4;
  cl->f = 1;
  for (uint32_t i = 0; i < 4; i++) {
    bft_keypair kp;
    bft_keypair_generate(&kp);
    cl->replicas[i].id = i;
    memcpy(cl->replicas[i].pk, kp.pk, BFT_PK_LEN);
  }
  cl->nclients = NCLIENTS;
  for (uint32_t i = 0; i < NCLIENTS; i++) {
    bft_keypair kp;
    bft_keypair_generate(&kp);
    cl->clients[i].id = i;
    memcpy(cl->clients[i].pk, kp.pk, BFT_PK_LEN);
  }
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/bft-bench-restart-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  rt_log log;
  rt_log_init(&log, RT_LOG_ERROR, stderr, 0);
  rt_crypto cr = {.sign = fake_sign, .verify = fake_verify};
  rt_core *c = calloc(1, sizeof *c);
  if (open_core(c, cl, dir, every, &log, &cr) != 0) return 1;
  uint8_t req[512];
  double t0 = now_ms();
  for (uint64_t i = 0; i < ops; i++) {
    uint32_t client = (uint32_t)(i % NCLIENTS);
    rt_submit out;
    rt_core_submit(c, req, make_request(cl, client, i / NCLIENTS + 1, i, req), 0, &out);
    if (out.outcome != RT_SUBMIT_NEW) {
      fprintf(stderr, "bench-restart: request %llu refused (%d)\n", (unsigned long long)i, out.outcome);
      return 1;
    }
    if ((i + 1) % 64 == 0 || i + 1 == ops) { /* a batch; one sync per 16 (durability does not matter here) */
      if (rt_core_answer_pulls(c) != 0) return 1;
      if (((i + 1) % 1024 == 0 || i + 1 == ops) && rt_core_sync(c) != 0) return 1;
    }
  }
  uint64_t blocks = c->ledger.head;
  uint64_t lbytes = c->ledger.f.size;
  fprintf(stderr, "bench-restart: built %llu ops in %llu blocks (%.1f MB ledger) in %.0f ms\n", (unsigned long long)ops,
          (unsigned long long)blocks, lbytes / 1e6, now_ms() - t0);
  rt_core_close(c);
  for (int r = 0; r < runs; r++) {
    double t = now_ms();
    if (open_core(c, cl, dir, every, &log, &cr) != 0) return 1;
    double ms = now_ms() - t;
    if (c->ledger.head != blocks) {
      fprintf(stderr, "bench-restart: reopened at %llu, not %llu\n", (unsigned long long)c->ledger.head,
              (unsigned long long)blocks);
      return 1;
    }
    printf("RESTART ops=%llu blocks=%llu snapshot_every=%u ledger_bytes=%llu restart_ms=%.1f\n", (unsigned long long)ops,
           (unsigned long long)blocks, every, (unsigned long long)lbytes, ms);
    fflush(stdout);
    rt_core_close(c);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  free(c);
  free(cl);
  return 0;
}
