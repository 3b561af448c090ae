/* Built OUT OF TREE against an installed prefix with `pkg-config --cflags --libs bft-replica
 * bft-client` (tests/install/install_test.sh): a tiny application of its own (a counter that
 * adds the numbers clients send), four replicas of it embedded in this one process (three on
 * loops and threads of their own, the fourth on a libuv loop of ours), and a client that runs
 * operations through consensus and a stale query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bft_replica.h"
#include "client/bft_client.h"

static void run_our_loop(void *arg) { uv_run(arg, UV_RUN_DEFAULT); }

typedef struct counter {
  long long total;
  unsigned long long ops;
} counter;

static int counter_execute(void *app, uint64_t height, const bft_app_op *ops, uint32_t n, bft_app_result *res) {
  counter *c = app;
  for (uint32_t i = 0; i < n; i++) {
    char buf[32];
    uint32_t l = ops[i].len < sizeof buf - 1 ? ops[i].len : (uint32_t)sizeof buf - 1;
    memcpy(buf, ops[i].op, l);
    buf[l] = 0;
    c->total += atoll(buf);
    c->ops++;
    res[i].status = 0;
    res[i].len = (uint32_t)snprintf((char *)res[i].data, BFT_APP_MAX_RESULT, "total=%lld client=%u", c->total,
                                    ops[i].client);
  }
  return 0;
}

static void counter_digest(void *app, uint8_t out[BFT_APP_DIGEST_LEN]) {
  counter *c = app; /* the whole state is two numbers: the digest is them, padded */
  memset(out, 0, BFT_APP_DIGEST_LEN);
  memcpy(out, &c->total, sizeof c->total);
  memcpy(out + 8, &c->ops, sizeof c->ops);
}

static int counter_query(void *app, const uint8_t *q, uint32_t len, bft_app_result *res) {
  counter *c = app;
  res->status = 0;
  res->len = (uint32_t)snprintf((char *)res->data, BFT_APP_MAX_RESULT, "%lld", c->total);
  return 0;
}

static const bft_app_ops COUNTER = {.name = "counter", .execute = counter_execute, .digest = counter_digest,
                                    .query = counter_query};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tiny_app KEYS_DIR DATA_DIR\n");
    return 2;
  }
  char cfg[512], key[512], dir[512], err[512];
  snprintf(cfg, sizeof cfg, "%s/cluster.ini", argv[1]);
  counter state[4] = {{0}};
  bft_app apps[4];
  bft_replica *r[4];
  uv_loop_t our_loop;
  uv_thread_t our_thread;
  uv_loop_init(&our_loop);
  for (int i = 0; i < 4; i++) {
    apps[i] = (bft_app){.ops = &COUNTER, .state = &state[i]};
    bft_replica_options o;
    bft_replica_options_init(&o);
    snprintf(key, sizeof key, "%s/replica-%d.key", argv[1], i);
    snprintf(dir, sizeof dir, "%s/replica-%d", argv[2], i);
    o.config = cfg;
    o.id = (uint32_t)i;
    o.key = key;
    o.data_dir = dir;
    o.app = &apps[i];
    o.log_level = "warn";
    if (i == 3) o.loop = &our_loop; /* registered on our loop, which our thread runs */
    if (bft_replica_create(&o, &r[i], err, sizeof err) != 0 || bft_replica_start(r[i]) != 0) {
      fprintf(stderr, "tiny_app: replica %d: %s\n", i, err);
      return 1;
    }
  }
  uv_thread_create(&our_thread, run_our_loop, &our_loop);
  bft_cluster *cluster = calloc(1, sizeof *cluster);
  bft_keypair kp;
  bft_client_sync *s;
  bft_client_reply *rp = malloc(sizeof *rp);
  snprintf(key, sizeof key, "%s/client-0.key", argv[1]);
  if (!cluster || !rp || bft_cluster_load(cfg, cluster, err, sizeof err) != 0 ||
      bft_keyfile_load(key, &kp, err, sizeof err) != 0 || bft_client_sync_open(cluster, &kp, NULL, &s) != 0) {
    fprintf(stderr, "tiny_app: client: %s\n", err);
    return 1;
  }
  int rc = 0;
  const char *adds[] = {"5", "10", "27"};
  for (int k = 0; k < 3 && !rc; k++) {
    if (bft_client_sync_submit(s, (const uint8_t *)adds[k], (uint32_t)strlen(adds[k]), rp) != 0) {
      fprintf(stderr, "tiny_app: operation failed: %s\n", rp->detail);
      rc = 1;
    } else {
      printf("add %s -> %.*s (height %llu)\n", adds[k], (int)rp->result_len, (const char *)rp->result,
             (unsigned long long)rp->height);
    }
  }
  if (!rc && strncmp((const char *)rp->result, "total=42 client=0", rp->result_len) != 0) {
    fprintf(stderr, "tiny_app: expected total=42 client=0\n");
    rc = 1;
  }
  bft_client_query_reply *q = malloc(sizeof *q);
  if (!rc && (!q || bft_client_query_stale(cluster, 2, (const uint8_t *)"total", 5, 5000, q, err, sizeof err) != 0)) {
    fprintf(stderr, "tiny_app: query: %s\n", err);
    rc = 1;
  } else if (!rc) {
    printf("stale query at replica 2: %.*s\n", (int)q->result_len, (const char *)q->result);
  }
  free(q);
  bft_client_sync_close(s);
  for (int i = 0; i < 4; i++) {
    bft_replica_stop(r[i]);
    if (i == 3) uv_thread_join(&our_thread); /* our loop ends once the replica closed its handles */
    int ex = bft_replica_wait(r[i]);
    if (ex != 0) {
      fprintf(stderr, "tiny_app: replica %d ended with %d: %s\n", i, ex, bft_replica_error(r[i]) ? bft_replica_error(r[i]) : "");
      rc = 1;
    }
    bft_replica_destroy(r[i]);
  }
  uv_loop_close(&our_loop);
  free(rp);
  free(cluster);
  if (!rc) printf("tiny_app: OK\n");
  return rc;
}
