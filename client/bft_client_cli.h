/* Argument parsing of the bft-client and bft-bench programs, kept apart from their main()s
 * so unit tests can check every accepted and refused command line, plus the latency
 * histogram bft-bench reports from (log-linear buckets: bounded memory, < 1% error). */
#ifndef BFT_CLIENT_CLI_H
#define BFT_CLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>

/* ---- bft-client -------------------------------------------------------------------------- */

enum bft_client_cmd {
  BFT_CLI_HELP = 1,
  BFT_CLI_PUT,
  BFT_CLI_GET,
  BFT_CLI_DEL,
  BFT_CLI_CAS,
  BFT_CLI_LEDGER,
  BFT_CLI_VERIFY_LEDGER,
  BFT_CLI_HEADS,
  BFT_CLI_EVIDENCE,
  BFT_CLI_EXEC,   /* exec OP: any application's operation, ordered */
  BFT_CLI_QUERY,  /* query --stale Q: one replica's read-only answer, unordered */
  BFT_CLI_STATUS  /* status: each replica's signed one-line health */
};

typedef struct bft_client_cli_args {
  int cmd;
  const char *config, *key;
  double timeout_s;      /* default 10 */
  uint64_t from;         /* ledger: first height (default 1) */
  int replica;           /* ledger commands: ask only this replica; -1 = any */
  int no_permit_check;   /* skip the local "is my key in the cluster file" check (tests) */
  int stale;             /* query: --stale given (required: says what the answer is) */
  int hex;               /* exec/query: the argument is hex-encoded bytes */
  const char *k, *value, *expected; /* borrowed from argv */
} bft_client_cli_args;

/* 0 on success (cmd set; BFT_CLI_HELP for -h/--help); -1 with one line in err otherwise.
 * Options may come before or after the command; "--" ends them (for values that begin with
 * "--"). --config is always required; --key for put/get/del/cas. */
int bft_client_cli_parse(int argc, char **argv, bft_client_cli_args *a, char *err, size_t errlen);

/* ---- bft-bench --------------------------------------------------------------------------- */

enum bench_mix { BENCH_OPS_PUT = 1, BENCH_OPS_GET, BENCH_OPS_MIXED };
enum bench_arrival { BENCH_ARRIVAL_POISSON = 1, BENCH_ARRIVAL_FIXED };

typedef struct bench_args {
  int help;
  const char *config, *keys_dir;
  uint32_t clients;     /* default 1 */
  double duration_s;    /* measured time (default 10); with --total-ops an upper bound */
  double warmup_s;      /* default 1, 0 with --total-ops */
  uint32_t value_size;  /* default 64 */
  int mix;              /* default BENCH_OPS_PUT */
  uint32_t keyspace;    /* default 1000 */
  double timeout_s;     /* per operation (default 30) */
  uint64_t total_ops;   /* 0: run for the duration; else stop after this many operations */
  const char *history;  /* file to record invocations/responses in, or NULL */
  const char *key_prefix; /* keys are PREFIX0..PREFIX(K-1); default "key-", with --history
                           * "key-RUN-" where RUN is random, so the history starts empty */
  const char *protocol; /* label for the RESULT line; default: read from the ledger */
  uint64_t seed;        /* 0: from the clock */
  int progress;         /* print elapsed time, throughput and p99 every second on stderr */
  /* Open loop (rate > 0): operations arrive at `rate` per second whatever the cluster does;
   * each waits for a free client (at most `clients` in flight) in a backlog of at most
   * `backlog`, beyond which it is dropped (counted). Latency runs from the intended arrival. */
  double rate;          /* 0: closed loop */
  int arrival;          /* BENCH_ARRIVAL_POISSON (default) or _FIXED */
  uint32_t backlog;     /* default 100000 */
  int payload_set;      /* --payload given: value_size is exact (no unique tag) */
  uint8_t request_version; /* --auth: BFT_REQUEST_V_MAC_REPLY (default), _VERSION (signed),
                            * _V_MAC (protocol-only) */
  /* --connections: the clients share this many connections per replica (client J uses set
   * J mod K, a bft_client_mux); 0: each client has its own. Default 1. */
  uint32_t connections;
} bench_args;
/* The --auth name of a request version (RESULT's auth=). */
const char *bench_auth_name(uint8_t request_version);

/* 0 on success (help set for -h/--help), -1 with one line in err. */
int bench_args_parse(int argc, char **argv, bench_args *a, char *err, size_t errlen);

/* ---- latency histogram ------------------------------------------------------------------- */

#define BENCH_HIST_EXACT 128u                 /* values below are counted exactly */
#define BENCH_HIST_HALF (BENCH_HIST_EXACT / 2) /* sub-buckets per power of two above */
#define BENCH_HIST_BUCKETS (BENCH_HIST_EXACT + 57u * BENCH_HIST_HALF)

typedef struct bench_hist {
  uint64_t count, min, max, sum;
  uint64_t bucket[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t v);
/* Value at percentile p (0..100]: the midpoint of the bucket holding that rank, clamped to
 * [min, max]; 0 when empty. */
uint64_t bench_hist_percentile(const bench_hist *h, double p);
uint32_t bench_hist_index(uint64_t v);

#endif
