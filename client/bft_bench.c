/* bft-bench: C clients on one libuv loop, each with its own client key, submitting put/get
 * operations for a duration (or a total count) and reporting throughput and latency
 * percentiles, ending with one machine-parseable RESULT line. Closed loop by default (each
 * client submits its next operation when the last completes); with --rate, open loop: arrivals
 * at a fixed or Poisson rate wait in a bounded backlog for a free client, and latency counts
 * from the intended arrival time, so queueing is not hidden (no coordinated omission).
 * --history records every operation's invocation and response for the linearizability
 * checker in tests/net. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/bft_client.h"
#include "client/bft_client_cli.h"
#include "client/bft_rpc.h"
#include "protocols/ledger.h"
#include "protocols/status.h"

#define BENCH_KEY_MAX 48
#define BENCH_MAX_ERROR_LINES 5 /* first failures printed in full; the rest only counted */

enum { BENCH_WARMUP = 1, BENCH_MEASURE, BENCH_STOPPING };

struct bench;

typedef struct bench_client {
  struct bench *b;
  uint32_t id;
  bft_client *c;
  uint64_t issued;    /* operations this client started (for unique values) */
  uint64_t start_ns;  /* invocation time of the one in flight */
  int is_put;
  char key[BENCH_KEY_MAX];
  uint32_t key_len;
  char *value;        /* value of the put in flight (value_size + room for the unique tag) */
  uint32_t value_len;
} bench_client;

typedef struct bench {
  bench_args a;
  bft_cluster *cluster;
  uv_loop_t loop;
  bench_client *cl;
  uint32_t nopen;
  int phase;
  uint64_t rng;
  uint64_t t_measure_ns, t_end_ns;
  uint64_t issued_total, completed_total;
  uint64_t ops, errors, incomplete, error_lines;
  bench_hist hist;
  FILE *history;
  uv_timer_t phase_timer, progress_timer;
  uv_signal_t sigint;
  uint64_t progress_last_ops;
  uint8_t *opbuf;
  char protocol[BFT_MAX_PROTOCOL_NAME + 1];
  char key_prefix[24];
  bft_client *probe; /* reads the protocol name from block 1 at the end */
  bft_client_mux **mux; /* --connections K: the K shared connection sets (NULL with 0) */
  uint32_t nmux;
  bft_client_stats cst; /* summed over the clients when they stop */
  /* open loop */
  uv_timer_t arrival_timer;
  uint64_t next_arrival_ns;
  uint32_t *idle, nidle;        /* clients with nothing in flight */
  uint64_t *backlog;            /* intended arrival times waiting for a client (ring) */
  uint32_t bl_head, bl_count, bl_max;
  uint64_t offered, drops;      /* arrivals and drops while measuring */
  /* --progress */
  uint64_t t_start_ns;
  bench_hist ihist;             /* latencies of the current second */
  /* the cluster's tuning, read from replica status (0 when no replica answered) */
  uint32_t batch_max, window;
  int protocol_only;            /* some replica said its cluster file accepts v3 requests */
  int no_fsync;                 /* some replica said it runs with --unsafe-no-fsync */
  /* each replica's CPU time and executed requests before and after the run (signed status);
   * have bit 0: before, bit 1: after */
  uint64_t cpu0[BFT_MAX_REPLICAS], cpu1[BFT_MAX_REPLICAS], exe0[BFT_MAX_REPLICAS], exe1[BFT_MAX_REPLICAS];
  uint8_t have[BFT_MAX_REPLICAS];
  double sign_us, verify_us;    /* Ed25519 on this machine, measured at start (one thread) */
  double sign_all_us, verify_all_us; /* machine time per operation with every core busy (0: unknown) */
} bench;

static void bench_usage(FILE *f) {
  fprintf(f,
          "usage: bft-bench --config FILE --keys DIR --clients C --duration SEC [options]\n"
          "\n"
          "Runs C clients in one process (one libuv loop); client J signs with DIR/client-J.key\n"
          "(bft-keygen writes client-0.key..client-(M-1).key). Closed loop by default: each client\n"
          "submits its next operation when the previous one completes (f+1 matching replies);\n"
          "with --rate, open loop (below).\n"
          "\n"
          "options:\n"
          "  --config FILE       cluster file\n"
          "  --keys DIR          folder with client-J.key files\n"
          "  --clients C         concurrent clients (default 1; at most the number of keys)\n"
          "  --duration SEC      measured time after the warm-up (default 10)\n"
          "  --warmup SEC        time before measuring starts (default 1; 0 with --total-ops)\n"
          "  --value-size B      bytes per put value (default 64)\n"
          "  --ops put|get|mixed operation mix (default put; mixed = half puts, half gets)\n"
          "  --keyspace K        keys key-0..key-(K-1), chosen uniformly (default 1000)\n"
          "  --key-prefix P      keys P0..P(K-1) instead (default key-; with --history a fresh\n"
          "                      key-RUN- so that the history holds every write to its keys)\n"
          "  --timeout SEC       per-operation bound; a timed-out operation is an error (30)\n"
          "  --total-ops N       stop after N operations in all (--duration is then a bound)\n"
          "  --history FILE      record each operation: client op key value inv_ns resp_ns result\n"
          "  --protocol NAME     label for the RESULT line (default: the engine the replicas report)\n"
          "  --seed N            key choice seed (default: from the clock)\n"
          "  --progress          print elapsed time, ops/s and p99 every second on stderr\n"
          "  --payload B         exactly B bytes per put value (0..%d; not with --history)\n"
          "  --auth MODE         mac-replies (default): signed requests, replies authenticated by a\n"
          "                      per-client MAC; signed: signed replies too; protocol-only: no\n"
          "                      signatures at all, requests carry a MAC per replica (the cluster\n"
          "                      file must say protocol_only = true; for comparing engines alone)\n"
          "  --connections K     the clients share K connections per replica (client J uses set J mod K;\n"
          "                      default 1): replicas then read many requests per read and answer them\n"
          "                      in one write, as behind a gateway; 0 = one connection per client and\n"
          "                      replica (what separate client processes cost the replicas)\n"
          "\n"
          "open loop (arrivals independent of completions):\n"
          "  --rate OPS          operations per second offered; each waits for a free client of the C\n"
          "                      (at most C in flight); latency counts from the intended arrival time\n"
          "  --arrival poisson|fixed  exponential or constant gaps between arrivals (default poisson)\n"
          "  --backlog N         arrivals waiting for a client, at most (default 100000); beyond it an\n"
          "                      arrival is dropped and counted (drops=)\n"
          "  -h, --help          this text\n"
          "\n"
          "The last line is machine-parseable:\n"
          "RESULT protocol=P clients=C ops=N duration_s=D throughput_ops=T p50_ms=.. p90_ms=..\n"
          "       p99_ms=.. max_ms=.. errors=E mode=closed|open rate=R offered_ops=O drops=D\n"
          "       backlog_max=B unfinished=U payload=V batch_max=M window=W auth=A cpu_us_per_op=U\n"
          "       ceiling_ops=C of_ceiling=R connections=K fsync=0|1\n"
          "(batch_max and window as the replicas report them, 0 when none answered; cpu_us_per_op:\n"
          "the replicas' mean CPU time per executed request, from their signed status before and\n"
          "after the run, 0 when unknown; ceiling_ops: what this machine's cores could sign and\n"
          "verify if every request cost exactly one client signature and one verification per\n"
          "replica and nothing else, measured at start with every core signing (verifying) at once;\n"
          "of_ceiling = throughput / ceiling;\n"
          "connections: the shared connection sets, 0 when each client had its own; fsync=0 when a\n"
          "replica said it runs with --unsafe-no-fsync.)\n",
          (int)BFT_KV_MAX_VALUE);
}

static uint64_t bench_now_ns(const bench *b) {
  (void)b;
  return uv_hrtime();
}

/* xorshift64*: a small seeded generator owned by the bench context. */
static uint64_t bench_rand(bench *b) {
  uint64_t x = b->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  b->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static void bench_issue(bench_client *bc, uint64_t intended_ns);

static void bench_history(bench *b, const bench_client *bc, const bft_client_result *res, uint64_t end_ns) {
  if (!b->history) return;
  const char *what;
  char val[128];
  if (res->err) what = "error";
  else if (res->status == BFT_KV_OK) what = "ok";
  else if (res->status == BFT_KV_NOT_FOUND) what = "notfound";
  else what = "error";
  if (bc->is_put) {
    snprintf(val, sizeof val, "%.*s", (int)(bc->value_len < 100 ? bc->value_len : 100), bc->value);
  } else if (!res->err && res->status == BFT_KV_OK) {
    uint32_t l = res->result_len < 100 ? res->result_len : 100;
    memcpy(val, res->result, l);
    val[l] = '\0';
  } else {
    snprintf(val, sizeof val, "-");
  }
  for (char *p = val; *p; p++) /* one field per column, whatever the value holds */
    if (*p <= ' ' || *p == 0x7f) *p = '_';
  if (!val[0]) snprintf(val, sizeof val, "_");
  if (res->err)
    fprintf(b->history, "%u %s %.*s %s %" PRIu64 " - %s\n", bc->id, bc->is_put ? "put" : "get", (int)bc->key_len,
            bc->key, val, bc->start_ns, what);
  else
    fprintf(b->history, "%u %s %.*s %s %" PRIu64 " %" PRIu64 " %s\n", bc->id, bc->is_put ? "put" : "get",
            (int)bc->key_len, bc->key, val, bc->start_ns, end_ns, what);
}

static void bench_done_cb(void *arg, const bft_client_result *res) {
  bench_client *bc = arg;
  bench *b = bc->b;
  uint64_t end = bench_now_ns(b);
  if (res->err == BFT_E_STATE) { /* cancelled by the stop: its outcome is unknown */
    b->incomplete++;
    if (b->history && bc->is_put) bench_history(b, bc, res, end);
    return;
  }
  b->completed_total++;
  bench_history(b, bc, res, end);
  int failed = res->err || res->status == BFT_KV_REJECTED || res->status == BFT_KV_BAD_OP;
  if (failed && b->error_lines++ < BENCH_MAX_ERROR_LINES) {
    if (res->err)
      fprintf(stderr, "bft-bench: client %u: %s: %s\n", bc->id, bft_strerror(res->err), res->detail);
    else
      fprintf(stderr, "bft-bench: client %u: replicas answered status %u: %.*s\n", bc->id, res->status,
              (int)(res->result_len < 120 ? res->result_len : 120), (const char *)res->result);
  }
  /* A failure counts whatever the phase (an operation refused during the warm-up is as wrong
   * as one refused later); only successes during the warm-up stay out of the figures. */
  if (failed) b->errors++;
  else if (b->phase == BENCH_MEASURE) {
    b->ops++;
    bench_hist_record(&b->hist, (end - bc->start_ns) / 1000u); /* microseconds */
  }
  if (!failed) bench_hist_record(&b->ihist, (end - bc->start_ns) / 1000u);
  if (b->phase == BENCH_STOPPING) return;
  if (b->a.rate <= 0) {
    bench_issue(bc, 0);
  } else if (b->bl_count) { /* the oldest waiting arrival, with its own start time */
    uint64_t t = b->backlog[b->bl_head];
    b->bl_head = (b->bl_head + 1) % b->a.backlog;
    b->bl_count--;
    bench_issue(bc, t);
  } else {
    b->idle[b->nidle++] = bc->id;
  }
}

static void bench_stop(bench *b);

/* Submit bc's next operation; its latency counts from intended_ns (open loop) or from now (0). */
static void bench_issue(bench_client *bc, uint64_t intended_ns) {
  bench *b = bc->b;
  if (b->a.total_ops && b->issued_total >= b->a.total_ops) {
    if (b->completed_total >= b->a.total_ops) bench_stop(b);
    return;
  }
  uint64_t r = bench_rand(b);
  bc->is_put = b->a.mix == BENCH_OPS_PUT || (b->a.mix == BENCH_OPS_MIXED && (r & 1));
  bc->key_len = (uint32_t)snprintf(bc->key, sizeof bc->key, "%s%" PRIu64, b->key_prefix, (r >> 1) % b->a.keyspace);
  bft_kv_op op;
  memset(&op, 0, sizeof op);
  op.opcode = bc->is_put ? BFT_KV_PUT : BFT_KV_GET;
  op.key = (const uint8_t *)bc->key;
  op.key_len = bc->key_len;
  if (bc->is_put) {
    /* Unique per client and operation, so a read names the write it observed (with --payload,
     * exactly that many bytes: the tag cut short or padded). */
    int tag = snprintf(bc->value, 40, "c%u-%" PRIu64, bc->id, bc->issued);
    uint32_t len = b->a.value_size > (uint32_t)tag || b->a.payload_set ? b->a.value_size : (uint32_t)tag;
    if (b->a.payload_set && len < (uint32_t)tag) tag = (int)len;
    if (len > (uint32_t)tag) memset(bc->value + tag, '.', len - (uint32_t)tag);
    bc->value_len = len;
    op.value = (const uint8_t *)bc->value;
    op.value_len = len;
  }
  int len = bft_kv_encode(&op, b->opbuf, BFT_MAX_OP_BYTES);
  if (len < 0) {
    fprintf(stderr, "bft-bench: cannot encode an operation: %s\n", bft_strerror(len));
    bench_stop(b);
    return;
  }
  bc->issued++;
  b->issued_total++;
  bc->start_ns = intended_ns ? intended_ns : bench_now_ns(b);
  int rc = bft_client_submit(bc->c, b->opbuf, (uint32_t)len, bench_done_cb, bc);
  if (rc) {
    fprintf(stderr, "bft-bench: client %u cannot submit: %s\n", bc->id, bft_strerror(rc));
    bench_stop(b);
  }
}

static void bench_closed(void *arg) {
  bench *b = arg;
  b->nopen--;
}

static int bench_probe_block(void *arg, uint64_t height, const uint8_t *p, uint32_t len) {
  bench *b = arg;
  bft_block blk;
  (void)height;
  if (bft_block_decode(p, len, &blk) == 0) snprintf(b->protocol, sizeof b->protocol, "%s", blk.protocol);
  return 1;
}

static void bench_probe_done(void *arg, int err, uint64_t head, uint32_t replica, const char *detail) {
  bench *b = arg;
  (void)err, (void)head, (void)replica, (void)detail;
  bft_client_close(b->probe, bench_closed, b);
}

static void bench_stop(bench *b) {
  if (b->phase == BENCH_STOPPING) return;
  if (b->phase != BENCH_MEASURE) b->t_measure_ns = bench_now_ns(b);
  b->phase = BENCH_STOPPING;
  b->t_end_ns = bench_now_ns(b);
  uv_timer_stop(&b->phase_timer);
  uv_close((uv_handle_t *)&b->phase_timer, NULL);
  uv_close((uv_handle_t *)&b->progress_timer, NULL);
  uv_close((uv_handle_t *)&b->arrival_timer, NULL);
  uv_close((uv_handle_t *)&b->sigint, NULL);
  for (uint32_t i = 0; i < b->a.clients; i++) {
    bft_client_stats s;
    bft_client_get_stats(b->cl[i].c, &s);
    b->cst.retransmissions += s.retransmissions;
    if (!b->nmux || i < b->nmux) { /* a shared set's connections are counted once */
      b->cst.connects += s.connects;
      b->cst.disconnects += s.disconnects;
    }
    b->cst.replies_bad += s.replies_bad;
    bft_client_close(b->cl[i].c, bench_closed, b);
  }
  for (uint32_t i = 0; i < b->nmux; i++) bft_client_mux_close(b->mux[i], bench_closed, b);
  if (!b->a.protocol && strcmp(b->protocol, "unknown") == 0) { /* no status answered: ask the ledger */
    bft_client_options o;
    bft_client_options_default(&o);
    o.timeout_ms = 3000;
    bft_keypair kp;
    if (bft_keypair_generate(&kp) == 0 && bft_client_open(&b->loop, b->cluster, &kp, &o, &b->probe) == 0) {
      b->nopen++;
      if (bft_client_ledger_fetch(b->probe, -1, 1, 1, bench_probe_block, bench_probe_done, b) != 0)
        bft_client_close(b->probe, bench_closed, b);
    }
    bft_keypair_wipe(&kp);
  }
}

/* ---- open loop ------------------------------------------------------------------------------ */

/* Nanoseconds to the next arrival: constant, or exponential with mean 1/rate. */
static uint64_t bench_gap_ns(bench *b) {
  double mean = 1e9 / b->a.rate;
  if (b->a.arrival == BENCH_ARRIVAL_FIXED) return (uint64_t)mean > 0 ? (uint64_t)mean : 1;
  double u = ((double)(bench_rand(b) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
  double g = -log(u) * mean;
  return g < 1 ? 1 : (uint64_t)g;
}

/* One operation arrives (intended at t): to an idle client, else into the backlog, else dropped. */
static void bench_arrive(bench *b, uint64_t t) {
  if (b->a.total_ops && b->issued_total + b->bl_count >= b->a.total_ops) return;
  if (b->phase == BENCH_MEASURE) b->offered++;
  if (b->nidle) {
    bench_issue(&b->cl[b->idle[--b->nidle]], t);
  } else if (b->bl_count < b->a.backlog) {
    b->backlog[(b->bl_head + b->bl_count) % b->a.backlog] = t;
    b->bl_count++;
    if (b->bl_count > b->bl_max) b->bl_max = b->bl_count;
  } else if (b->phase == BENCH_MEASURE) {
    b->drops++;
  }
}

static void bench_arrival_cb(uv_timer_t *t) {
  bench *b = t->data;
  uint64_t now = bench_now_ns(b);
  /* Every arrival due by now, each with its own intended time (a late timer does not thin the
   * load); bounded per call so the loop still serves completions. */
  for (uint32_t k = 0; k < 100000 && b->next_arrival_ns <= now && b->phase != BENCH_STOPPING; k++) {
    bench_arrive(b, b->next_arrival_ns);
    b->next_arrival_ns += bench_gap_ns(b);
  }
  if (b->phase == BENCH_STOPPING) return;
  uint64_t wait_ms = b->next_arrival_ns > now ? (b->next_arrival_ns - now + 999999) / 1000000 : 0;
  uv_timer_start(&b->arrival_timer, bench_arrival_cb, wait_ms, 0);
}

static void bench_phase_cb(uv_timer_t *t) {
  bench *b = t->data;
  if (b->phase == BENCH_WARMUP) {
    b->phase = BENCH_MEASURE;
    b->t_measure_ns = bench_now_ns(b);
    uv_timer_start(&b->phase_timer, bench_phase_cb, (uint64_t)(b->a.duration_s * 1000.0), 0);
    return;
  }
  bench_stop(b);
}

static void bench_progress_cb(uv_timer_t *t) {
  bench *b = t->data;
  uint64_t done = b->completed_total;
  double el = (double)(bench_now_ns(b) - b->t_start_ns) / 1e9;
  fprintf(stderr,
          "bft-bench: t=%.1fs %s ops/s=%" PRIu64 " p99_ms=%.3f done=%" PRIu64 " errors=%" PRIu64 " backlog=%u drops=%" PRIu64
          "\n",
          el, b->phase == BENCH_WARMUP ? "warmup" : "measure", done - b->progress_last_ops,
          bench_hist_percentile(&b->ihist, 99) / 1000.0, done, b->errors, b->bl_count, b->drops);
  b->progress_last_ops = done;
  bench_hist_init(&b->ihist);
}

/* Every replica's signed status: the tuning (from the first that answers), and its CPU time
 * and executed requests (`after` 0: before the run, 1: after it). */
static void bench_read_status(bench *b, int after) {
  for (uint32_t i = 0; i < b->cluster->n; i++) {
    uint8_t nonce[BFT_STATUS_NONCE_LEN], *body = NULL;
    uint32_t len = 0;
    char err[256];
    randombytes_buf(nonce, sizeof nonce);
    if (bft_rpc_exchange(b->cluster, i, 1000, WIRE_KIND_STATUS_GET, nonce, sizeof nonce, WIRE_KIND_STATUS,
                         BFT_STATUS_MAX_BYTES, &body, &len, err, sizeof err) != 0)
      continue;
    bft_status st;
    int ok = bft_status_decode(body, len, b->cluster->replicas[i].pk, b->cluster->id, &st) == 0 &&
             memcmp(st.nonce, nonce, sizeof nonce) == 0;
    free(body);
    if (!ok) continue;
    if (!b->batch_max) {
      b->batch_max = st.batch_max;
      b->window = st.window;
    }
    if (st.protocol[0] && strcmp(b->protocol, "unknown") == 0) /* the engine, as the replica says */
      snprintf(b->protocol, sizeof b->protocol, "%s", st.protocol);
    if (st.protocol_only) b->protocol_only = 1;
    if (st.unsafe_no_fsync) b->no_fsync = 1;
    (after ? b->cpu1 : b->cpu0)[i] = st.cpu_us;
    (after ? b->exe1 : b->exe0)[i] = st.executed;
    b->have[i] |= (uint8_t)(after ? 2 : 1);
  }
}

/* One thread of the all-cores measurement: as many verifies (or signs) as fit in `ms`. */
typedef struct bench_cthread {
  const bft_keypair *kp;
  int sign;
  uint64_t ms, done, ns;
} bench_cthread;

static void bench_cthread_run(void *arg) {
  bench_cthread *t = arg;
  uint8_t cid[BFT_CLUSTER_ID_LEN] = {0}, msg[200], sig[BFT_SIG_LEN];
  memset(msg, 7, sizeof msg);
  (void)bft_sign(t->kp, cid, BFT_TAG_REQUEST, msg, sizeof msg, sig);
  uint64_t t0 = uv_hrtime(), end = t0 + t->ms * 1000000u, now = t0;
  while (now < end) {
    for (int i = 0; i < 8; i++) {
      if (t->sign) (void)bft_sign(t->kp, cid, BFT_TAG_REQUEST, msg, sizeof msg, sig);
      else (void)bft_verify(t->kp->pk, cid, BFT_TAG_REQUEST, msg, sizeof msg, sig);
    }
    t->done += 8;
    now = uv_hrtime();
  }
  t->ns = now - t0;
}

/* Microseconds of machine time per operation with every core doing it at once (the threads'
 * summed rate), or 0 when threads cannot start. Cores that share execution units (SMT), or a
 * hypervisor that shares them, make this more than the one-thread time divided by the cores. */
static double bench_all_cores_us(const bft_keypair *kp, int sign, long ncpu) {
  enum { MAXT = 64 };
  bench_cthread t[MAXT];
  uv_thread_t th[MAXT];
  if (ncpu > MAXT) ncpu = MAXT;
  long started = 0;
  for (long i = 0; i < ncpu; i++) {
    t[i] = (bench_cthread){.kp = kp, .sign = sign, .ms = 150};
    if (uv_thread_create(&th[i], bench_cthread_run, &t[i]) != 0) break;
    started++;
  }
  double rate = 0; /* operations per microsecond, all threads */
  for (long i = 0; i < started; i++) {
    uv_thread_join(&th[i]);
    if (t[i].ns) rate += (double)t[i].done / ((double)t[i].ns / 1e3);
  }
  return started == ncpu && rate > 0 ? 1.0 / rate : 0;
}

/* Ed25519 sign and verify times on this machine, for the signed-request ceiling: every request
 * costs one client signature and one verification at each of the n replicas, whatever the
 * engine. Measured on one thread (a few hundred of each, ~30 ms) and with every core at once
 * (~0.6 s), which is what a run gets. */
static void bench_measure_crypto(bench *b) {
  bft_keypair kp;
  uint8_t cid[BFT_CLUSTER_ID_LEN] = {0}, msg[200], sig[BFT_SIG_LEN];
  memset(msg, 7, sizeof msg);
  if (bft_keypair_generate(&kp) != 0) return;
  /* the best of 5 rounds: other processes on the machine only ever make a round slower */
  const int N = 60;
  double best_s = 1e9, best_v = 1e9;
  int bad = 0;
  for (int round = 0; round < 5; round++) {
    uint64_t t = uv_hrtime();
    for (int i = 0; i < N; i++) {
      msg[0] = (uint8_t)i;
      (void)bft_sign(&kp, cid, BFT_TAG_REQUEST, msg, sizeof msg, sig);
    }
    double s_us = (double)(uv_hrtime() - t) / 1e3 / N;
    t = uv_hrtime();
    for (int i = 0; i < N; i++) bad += bft_verify(kp.pk, cid, BFT_TAG_REQUEST, msg, sizeof msg, sig) != 0;
    double v_us = (double)(uv_hrtime() - t) / 1e3 / N;
    if (s_us < best_s) best_s = s_us;
    if (v_us < best_v) best_v = v_us;
  }
  b->sign_us = best_s;
  b->verify_us = best_v;
  /* With every core busy at once (as during a run): the better of 2 rounds. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  double as = 0, av = 0;
  for (int round = 0; round < 2; round++) {
    double s_all = bench_all_cores_us(&kp, 1, ncpu), v_all = bench_all_cores_us(&kp, 0, ncpu);
    if (s_all > 0 && (as == 0 || s_all < as)) as = s_all;
    if (v_all > 0 && (av == 0 || v_all < av)) av = v_all;
  }
  b->sign_all_us = as;
  b->verify_all_us = av;
  bft_keypair_wipe(&kp);
  (void)bad;
}

static void bench_sigint_cb(uv_signal_t *s, int signum) {
  bench *b = s->data;
  (void)signum;
  fprintf(stderr, "bft-bench: interrupted, stopping\n");
  bench_stop(b);
}

/* Number of consecutive DIR/client-J.key files from J = 0. */
static uint32_t bench_count_keys(const char *dir, uint32_t want) {
  char path[4096];
  uint32_t j = 0;
  for (; j < want + 1 && j < BFT_MAX_CLIENTS; j++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/client-%u.key", dir, j);
    if (stat(path, &st) != 0) break;
  }
  return j;
}

static void bench_report(bench *b) {
  double secs = (double)(b->t_end_ns - b->t_measure_ns) / 1e9;
  if (secs <= 0) secs = 1e-9;
  double tput = (double)b->ops / secs;
  double p50 = bench_hist_percentile(&b->hist, 50) / 1000.0, p90 = bench_hist_percentile(&b->hist, 90) / 1000.0;
  double p99 = bench_hist_percentile(&b->hist, 99) / 1000.0, mx = (double)b->hist.max / 1000.0;
  double mean = b->hist.count ? (double)b->hist.sum / (double)b->hist.count / 1000.0 : 0;
  const char *mix = b->a.mix == BENCH_OPS_PUT ? "put" : b->a.mix == BENCH_OPS_GET ? "get" : "mixed";
  uint64_t errors = b->errors + (b->a.total_ops ? b->incomplete : 0);
  printf("bft-bench: %u clients, %s ops, %u-byte values, %u keys (%s*), %.2f s measured after %.1f s warm-up\n",
         b->a.clients, mix, b->a.value_size, b->a.keyspace, b->key_prefix, secs, b->a.warmup_s);
  printf("  completed  %" PRIu64 " ops, %.1f ops/s, %" PRIu64 " errors%s\n", b->ops, tput, errors,
         b->a.total_ops && b->incomplete ? " (including operations still open at the stop)" : "");
  printf("  latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n", p50, p90, p99, mx, mean);
  printf("  clients    %" PRIu64 " retransmissions, %" PRIu64 " connections made, %" PRIu64 " dropped, %" PRIu64
         " invalid replies\n",
         b->cst.retransmissions, b->cst.connects, b->cst.disconnects, b->cst.replies_bad);
  if (b->a.rate > 0)
    printf("  open loop  %.1f ops/s offered (%s arrivals), %" PRIu64 " dropped over a backlog of %u, backlog peak %u, "
           "%u waiting at the end\n",
           (double)b->offered / secs, b->a.arrival == BENCH_ARRIVAL_FIXED ? "fixed" : "poisson", b->drops, b->a.backlog,
           b->bl_max, b->bl_count);
  /* CPU per executed request, per replica (from its signed status before and after the run). */
  double cpu_sum = 0;
  uint32_t cpu_n = 0;
  char per[BFT_MAX_REPLICAS * 16] = "";
  size_t po = 0;
  for (uint32_t i = 0; i < b->cluster->n; i++) {
    if (b->have[i] != 3 || b->exe1[i] <= b->exe0[i] || b->cpu1[i] < b->cpu0[i]) continue;
    double us = (double)(b->cpu1[i] - b->cpu0[i]) / (double)(b->exe1[i] - b->exe0[i]);
    cpu_sum += us;
    cpu_n++;
    if (po < sizeof per - 16) po += (size_t)snprintf(per + po, sizeof per - po, " r%u=%.1f", i, us);
  }
  double cpu_us = cpu_n ? cpu_sum / cpu_n : 0;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  /* The ceiling from the all-cores measurement when there is one (the one-thread times divided
   * by the cores assume cores that do not slow each other down). */
  double per_req1 = b->sign_us + (double)b->cluster->n * b->verify_us;
  double ceiling1 = per_req1 > 0 ? (double)ncpu * 1e6 / per_req1 : 0;
  double per_req = b->sign_all_us + (double)b->cluster->n * b->verify_all_us;
  double ceiling = b->sign_all_us > 0 && b->verify_all_us > 0 ? 1e6 / per_req : ceiling1;
  if (cpu_n)
    printf("  replicas   CPU per executed request (user+system, all threads):%s; mean %.1f us\n", per, cpu_us);
  else
    printf("  replicas   CPU per request unknown (no replica answered a status request before and after)\n");
  printf("  crypto     Ed25519 sign %.1f us, verify %.1f us on one thread; with all %ld cores at once %.1f and %.1f us\n"
         "             of machine time each; signed-request ceiling %.0f ops/s (1 / (1 sign + %u verifies); %.0f from\n"
         "             the one-thread times); this run %.2f of it%s\n",
         b->sign_us, b->verify_us, ncpu, b->sign_all_us, b->verify_all_us, ceiling, b->cluster->n, ceiling1,
         ceiling > 0 ? tput / ceiling : 0,
         b->a.request_version == BFT_REQUEST_V_MAC ? " (protocol-only: requests are not signed)" : "");
  printf("RESULT protocol=%s clients=%u ops=%" PRIu64 " duration_s=%.3f throughput_ops=%.1f p50_ms=%.3f p90_ms=%.3f "
         "p99_ms=%.3f max_ms=%.3f errors=%" PRIu64 " mode=%s rate=%.1f offered_ops=%.1f drops=%" PRIu64
         " backlog_max=%u unfinished=%u payload=%u batch_max=%u window=%u auth=%s cpu_us_per_op=%.1f"
         " ceiling_ops=%.0f of_ceiling=%.3f connections=%u fsync=%d\n",
         b->a.protocol ? b->a.protocol : b->protocol, b->a.clients, b->ops, secs, tput, p50, p90, p99, mx, errors,
         b->a.rate > 0 ? "open" : "closed", b->a.rate, b->a.rate > 0 ? (double)b->offered / secs : tput, b->drops,
         b->bl_max, b->bl_count, b->a.value_size, b->batch_max, b->window, bench_auth_name(b->a.request_version), cpu_us,
         ceiling, ceiling > 0 ? tput / ceiling : 0, b->nmux, b->no_fsync ? 0 : 1);
}

static int bench_setup_clients(bench *b) {
  char err[512], path[4096];
  bft_client_options o;
  bft_client_options_default(&o);
  o.timeout_ms = (uint32_t)(b->a.timeout_s * 1000.0);
  o.request_version = b->a.request_version;
  uint32_t have = bench_count_keys(b->a.keys_dir, b->a.clients);
  if (have < b->a.clients) {
    fprintf(stderr,
            "bft-bench: --clients %u needs %u client keys but %s holds %u (client-0.key..client-%u.key); "
            "make more with bft-keygen --clients %u\n",
            b->a.clients, b->a.clients, b->a.keys_dir, have, b->a.clients - 1, b->a.clients);
    return -1;
  }
  if (b->a.connections) { /* shared connection sets (bft_client_mux) */
    b->nmux = b->a.connections < b->a.clients ? b->a.connections : b->a.clients;
    b->mux = calloc(b->nmux, sizeof *b->mux);
    if (!b->mux) return -1;
    for (uint32_t i = 0; i < b->nmux; i++) {
      int rc = bft_client_mux_open(&b->loop, b->cluster, &o, &b->mux[i]);
      if (rc) {
        fprintf(stderr, "bft-bench: cannot open connection set %u: %s\n", i, bft_strerror(rc));
        b->nmux = i;
        return -1;
      }
      b->nopen++;
    }
  }
  uint32_t vcap = b->a.value_size + 48;
  for (uint32_t j = 0; j < b->a.clients; j++) {
    bench_client *bc = &b->cl[j];
    bc->b = b;
    bc->id = j;
    bc->value = malloc(vcap);
    if (!bc->value) return -1;
    bft_keypair kp;
    snprintf(path, sizeof path, "%s/client-%u.key", b->a.keys_dir, j);
    if (bft_keyfile_load(path, &kp, err, sizeof err) != 0) {
      fprintf(stderr, "bft-bench: %s\n", err);
      return -1;
    }
    if (!bft_client_key_permitted(b->cluster, kp.pk)) {
      fprintf(stderr, "bft-bench: %s is not a permitted client of %s (its public key is not listed)\n", path,
              b->a.config);
      bft_keypair_wipe(&kp);
      return -1;
    }
    int rc = b->nmux ? bft_client_open_mux(b->mux[j % b->nmux], &kp, &o, &bc->c)
                     : bft_client_open(&b->loop, b->cluster, &kp, &o, &bc->c);
    bft_keypair_wipe(&kp);
    if (rc) {
      fprintf(stderr, "bft-bench: cannot open client %u: %s\n", j, bft_strerror(rc));
      return -1;
    }
    b->nopen++;
  }
  return 0;
}

int main(int argc, char **argv) {
  /* No socket write here raises SIGPIPE (the client library sends with MSG_NOSIGNAL); a reader of
   * our output that went away must not kill a run either. */
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  bench *b = calloc(1, sizeof *b);
  if (!b) return 1;
  if (bench_args_parse(argc, argv, &b->a, err, sizeof err) != 0) {
    fprintf(stderr, "bft-bench: %s (see bft-bench --help)\n", err);
    free(b);
    return 2;
  }
  if (b->a.help) {
    bench_usage(stdout);
    free(b);
    return 0;
  }
  int ex = 1;
  snprintf(b->protocol, sizeof b->protocol, "unknown");
  bench_hist_init(&b->hist);
  bench_hist_init(&b->ihist);
  b->rng = b->a.seed ? b->a.seed : (uv_hrtime() ^ ((uint64_t)time(NULL) << 20)) | 1;
  if (b->a.key_prefix)
    snprintf(b->key_prefix, sizeof b->key_prefix, "%s", b->a.key_prefix);
  else if (b->a.history) /* keys no earlier run wrote, so the recorded history is complete */
    snprintf(b->key_prefix, sizeof b->key_prefix, "key-%06x-", (unsigned)((uv_hrtime() ^ (uint64_t)time(NULL)) & 0xffffff));
  else
    snprintf(b->key_prefix, sizeof b->key_prefix, "key-");
  b->cluster = calloc(1, sizeof *b->cluster);
  b->cl = calloc(b->a.clients, sizeof *b->cl);
  b->opbuf = malloc(BFT_MAX_OP_BYTES);
  b->idle = calloc(b->a.clients, sizeof *b->idle);
  b->backlog = calloc(b->a.backlog ? b->a.backlog : 1, sizeof *b->backlog);
  if (!b->cluster || !b->cl || !b->opbuf || !b->idle || !b->backlog || uv_loop_init(&b->loop) != 0) {
    fprintf(stderr, "bft-bench: out of memory\n");
    return 1;
  }
  if (bft_crypto_init() != 0) {
    fprintf(stderr, "bft-bench: libsodium failed to initialise\n");
    goto out;
  }
  if (bft_cluster_load(b->a.config, b->cluster, err, sizeof err) != 0) {
    fprintf(stderr, "bft-bench: %s\n", err);
    goto out;
  }
  if (b->a.history && !(b->history = fopen(b->a.history, "w"))) {
    fprintf(stderr, "bft-bench: cannot write %s: %s\n", b->a.history, strerror(errno));
    goto out;
  }
  if (b->history) setvbuf(b->history, NULL, _IOLBF, 0); /* whole lines, so a watcher can count them */
  if (bench_setup_clients(b) != 0) {
    for (uint32_t j = 0; j < b->a.clients; j++)
      if (b->cl[j].c) bft_client_close(b->cl[j].c, bench_closed, b);
    for (uint32_t i = 0; i < b->nmux; i++) bft_client_mux_close(b->mux[i], bench_closed, b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    goto out;
  }
  bench_measure_crypto(b);
  bench_read_status(b, 0);
  if (b->a.request_version == BFT_REQUEST_V_MAC && !b->protocol_only)
    fprintf(stderr, "bft-bench: warning: --auth protocol-only, but no replica reports protocol_only = true in its "
                    "cluster file; expect every request to be rejected\n");
  uv_update_time(&b->loop); /* the measurements above took a while: timers start from now */
  uv_timer_init(&b->loop, &b->phase_timer);
  uv_timer_init(&b->loop, &b->progress_timer);
  uv_timer_init(&b->loop, &b->arrival_timer);
  uv_signal_init(&b->loop, &b->sigint);
  b->phase_timer.data = b->progress_timer.data = b->arrival_timer.data = b->sigint.data = b;
  b->t_start_ns = bench_now_ns(b);
  uv_signal_start(&b->sigint, bench_sigint_cb, SIGINT);
  if (b->a.progress) uv_timer_start(&b->progress_timer, bench_progress_cb, 1000, 1000);
  if (b->a.warmup_s > 0) {
    b->phase = BENCH_WARMUP;
    uv_timer_start(&b->phase_timer, bench_phase_cb, (uint64_t)(b->a.warmup_s * 1000.0), 0);
  } else {
    b->phase = BENCH_MEASURE;
    b->t_measure_ns = bench_now_ns(b);
    uv_timer_start(&b->phase_timer, bench_phase_cb, (uint64_t)(b->a.duration_s * 1000.0), 0);
  }
  if (b->a.rate > 0) {
    for (uint32_t j = b->a.clients; j > 0; j--) b->idle[b->nidle++] = j - 1;
    b->next_arrival_ns = bench_now_ns(b);
    bench_arrival_cb(&b->arrival_timer);
  } else {
    for (uint32_t j = 0; j < b->a.clients && b->phase != BENCH_STOPPING; j++) bench_issue(&b->cl[j], 0);
  }
  uv_run(&b->loop, UV_RUN_DEFAULT);
  bench_read_status(b, 1);
  bench_report(b);
  ex = (b->errors || (b->a.total_ops && b->incomplete)) ? 1 : 0;
out:
  if (b->history && fclose(b->history) != 0) {
    fprintf(stderr, "bft-bench: writing %s failed\n", b->a.history);
    ex = 1;
  }
  uv_loop_close(&b->loop);
  for (uint32_t j = 0; b->cl && j < b->a.clients; j++) free(b->cl[j].value);
  free(b->cl);
  free(b->mux);
  free(b->opbuf);
  free(b->idle);
  free(b->backlog);
  free(b->cluster);
  free(b);
  return ex;
}
