/* bft-replica: command line of the networked replica, a thin main over the embeddable replica
 * (bft_replica.h, embed.c). Parses and checks the arguments, connects an application given
 * with --app unix:PATH, then runs the replica. Exit codes: 0 after SIGINT/SIGTERM, 1 on a runtime or setup error,
 * 2 on bad arguments. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/engine.h"
#include "replica/app_socket.h"
#include "replica/byzantine.h"
#include "replica/embed.h"
#include "replica/log.h"
#include "replica/replica.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: bft-replica --config FILE --id I --key KEYFILE --protocol NAME --data-dir DIR [options]\n"
          "\n"
          "Runs replica I of the cluster described by FILE. It listens on the host:port the cluster file\n"
          "gives replica I, for the other replicas and for clients alike, keeps its write-ahead log and\n"
          "ledger in DIR (created if missing), and stops cleanly on SIGINT or SIGTERM.\n"
          "\n"
          "  --config FILE        cluster file (replicas, their keys and addresses, permitted clients)\n"
          "  --id I               this replica's id in the cluster file\n"
          "  --key KEYFILE        this replica's private key file (mode 0600; must match replica I)\n"
          "  --protocol NAME      consensus protocol: %s\n"
          "  --data-dir DIR       folder for the WAL and the ledger (created with its parents, mode 0700)\n"
          "  --app APP            the replicated application: kv (default, the built-in key-value store)\n"
          "                       or unix:PATH, an application in another process answering the\n"
          "                       application socket protocol (docs/app-socket.md) at PATH\n"
          "  --app-timeout SEC    an application over a socket must answer each call within (default %u)\n"
          "  --listen-client PORT also accept clients (and peers) on this port of the same host\n"
          "  --log-level LEVEL    debug, info (default), warn or error\n"
          "  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (README, \"Metrics\")\n"
          "  --batch-max N        requests per proposed batch, 1-%u (default: the engine's, 64)\n"
          "  --window N           PBFT log window (high - low watermark), 2-%u (default 32; others ignore it)\n"
          "  --pipeline N         PBFT: batches in flight (proposed, not yet delivered) at most, 1 to the\n"
          "                       window (default: the window). Below it a partial batch leaves at once;\n"
          "                       at it the primary waits for a delivery, so batches grow under load\n"
          "  --view-timeout MS    the engine's base timeout, 50-60000 ms (default 1000): PBFT's request\n"
          "                       timer, HotStuff's view timer, Tendermint's timeoutPropose; lower fails\n"
          "                       over faster from a dead leader, but too low for the machine's latency\n"
          "                       changes views (rounds) without a fault; give every replica the same value\n"
          "  --verify-threads N   threads that verify client request signatures with the event loop, 0-%u\n"
          "                       (default: online CPUs - 1, here %u; 0: every verify on the event loop)\n"
          "  --unsafe-no-fsync    write the WAL and ledger but never fsync them: a power loss (not a\n"
          "                       killed process) can lose acknowledged operations and make the replica\n"
          "                       contradict its own votes. For measuring the protocols without the\n"
          "                       disk only; said in the first log line, in status and in bft-bench\n"
          "  -h, --help           this text\n"
          "\n"
          "Limits against hostile clients (replica/README.md, \"Admission and the cost of trust\"):\n"
          "  --max-clients N             client and not-yet-identified connections, all sources (default %u)\n"
          "  --max-conns-per-source N    the same from one remote address (default %u); when a limit is\n"
          "                              reached the least recently active unproven connection is closed\n"
          "  --client-idle-timeout SEC   close a client connection silent this long (default %u; %u for a\n"
          "                              client that never sent a verified request)\n"
          "  --frame-timeout SEC         a client frame, once begun, must arrive in full within (default %u)\n"
          "  --fail-budget N             failed signature checks per connection before it is closed (default %u)\n"
          "\n"
          "Security testing:\n"
          "  --snapshot-every K   snapshot the application every K blocks (default 1024; 0: never)\n"
          "  --retain-blocks N    prune the ledger below the newest certified snapshot, keeping N blocks\n"
          "                       below it (default: keep every block)\n"
          "  --byzantine MODES    misbehave on purpose (MODE[,MODE...]); the replica says so in its first\n"
          "                       log line and its metrics. Modes:\n"
          "%s"
          "                       More than f faulty replicas void the protocol's guarantees.\n",
          bft_engine_names(), RT_APP_TIMEOUT_MS / 1000, BFT_MAX_BATCH_REQUESTS, BFT_MAX_WINDOW, RT_VPOOL_MAX_THREADS,
          rt_vpool_default_threads(), RT_MAX_CONNS, RT_MAX_CONNS_PER_SOURCE, RT_CLIENT_IDLE_MS / 1000, RT_UNPROVEN_IDLE_MS / 1000,
          RT_FRAME_TIMEOUT_MS / 1000, RT_CONN_FAIL_BUDGET, rt_byz_help());
}

static int bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_args(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bft-replica: %s (see --help)\n", msg);
  return 2;
}

static int parse_u32(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-' || *s == '+') return -1;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

enum { OPT_CONFIG = 1, OPT_ID, OPT_KEY, OPT_PROTOCOL, OPT_DATA_DIR, OPT_LISTEN_CLIENT, OPT_LOG_LEVEL, OPT_MAX_CLIENTS,
       OPT_MAX_PER_SOURCE, OPT_IDLE, OPT_FRAME_TIMEOUT, OPT_FAIL_BUDGET, OPT_BYZANTINE, OPT_APP, OPT_APP_TIMEOUT,
       OPT_SNAP_EVERY, OPT_RETAIN, OPT_METRICS, OPT_BATCH_MAX, OPT_WINDOW, OPT_VERIFY_THREADS, OPT_UNSAFE_NO_FSYNC,
       OPT_VIEW_TIMEOUT, OPT_PIPELINE };

static const char *g_app = "kv";
static int g_app_timeout_ms = RT_APP_TIMEOUT_MS;

static int parse_args(int argc, char **argv, rt_options *o) {
  static const struct option LONG[] = {
      {"config", required_argument, NULL, OPT_CONFIG},   {"id", required_argument, NULL, OPT_ID},
      {"key", required_argument, NULL, OPT_KEY},         {"protocol", required_argument, NULL, OPT_PROTOCOL},
      {"data-dir", required_argument, NULL, OPT_DATA_DIR}, {"listen-client", required_argument, NULL, OPT_LISTEN_CLIENT},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL}, {"help", no_argument, NULL, 'h'},
      {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
      {"max-conns-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE},
      {"client-idle-timeout", required_argument, NULL, OPT_IDLE},
      {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
      {"fail-budget", required_argument, NULL, OPT_FAIL_BUDGET},
      {"byzantine", required_argument, NULL, OPT_BYZANTINE},
      {"app", required_argument, NULL, OPT_APP},
      {"app-timeout", required_argument, NULL, OPT_APP_TIMEOUT},
      {"snapshot-every", required_argument, NULL, OPT_SNAP_EVERY},
      {"retain-blocks", required_argument, NULL, OPT_RETAIN},
      {"metrics", required_argument, NULL, OPT_METRICS},
      {"batch-max", required_argument, NULL, OPT_BATCH_MAX},
      {"window", required_argument, NULL, OPT_WINDOW},
      {"view-timeout", required_argument, NULL, OPT_VIEW_TIMEOUT},
      {"pipeline", required_argument, NULL, OPT_PIPELINE},
      {"verify-threads", required_argument, NULL, OPT_VERIFY_THREADS},
      {"unsafe-no-fsync", no_argument, NULL, OPT_UNSAFE_NO_FSYNC},
      {NULL, 0, NULL, 0}};
  int have_id = 0, opt;
  unsigned long v;
  memset(o, 0, sizeof *o);
  o->log_level = RT_LOG_INFO;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
    switch (opt) {
      case OPT_CONFIG: o->config = optarg; break;
      case OPT_KEY: o->key = optarg; break;
      case OPT_PROTOCOL: o->protocol = optarg; break;
      case OPT_DATA_DIR: o->data_dir = optarg; break;
      case OPT_ID:
        if (parse_u32(optarg, BFT_MAX_REPLICAS - 1, &v)) return bad_args("--id must be a replica id, got '%s'", optarg);
        o->id = (uint32_t)v;
        have_id = 1;
        break;
      case OPT_LISTEN_CLIENT:
        if (parse_u32(optarg, 65535, &v) || v == 0) return bad_args("--listen-client must be a port 1-65535, got '%s'", optarg);
        o->listen_client_port = (int)v;
        break;
      case OPT_LOG_LEVEL:
        if ((o->log_level = rt_log_level_parse(optarg)) < 0)
          return bad_args("--log-level must be debug, info, warn or error, got '%s'", optarg);
        break;
      case OPT_BYZANTINE: o->byzantine = optarg; break;
      case OPT_APP:
        if (strcmp(optarg, "kv") != 0 && (strncmp(optarg, "unix:", 5) != 0 || !optarg[5]))
          return bad_args("--app must be kv or unix:PATH, got '%s'", optarg);
        g_app = optarg;
        break;
      case OPT_APP_TIMEOUT:
        if (parse_u32(optarg, 86400, &v) || v == 0) return bad_args("--app-timeout must be 1-86400 s, got '%s'", optarg);
        g_app_timeout_ms = (int)v * 1000;
        break;
      case OPT_SNAP_EVERY:
        if (parse_u32(optarg, 1u << 30, &v)) return bad_args("--snapshot-every must be 0 (off) to 2^30 blocks, got '%s'", optarg);
        o->snapshot_every = v ? (uint32_t)v : UINT32_MAX;
        break;
      case OPT_RETAIN:
        if (parse_u32(optarg, 1u << 30, &v)) return bad_args("--retain-blocks must be 0 to 2^30, got '%s'", optarg);
        o->retain_blocks = (uint64_t)v + 1;
        break;
      case OPT_METRICS: o->metrics_addr = optarg; break;
      case OPT_BATCH_MAX:
        if (parse_u32(optarg, BFT_MAX_BATCH_REQUESTS, &v) || v == 0)
          return bad_args("--batch-max must be 1-%u, got '%s'", BFT_MAX_BATCH_REQUESTS, optarg);
        o->batch_max = (uint32_t)v;
        break;
      case OPT_WINDOW: /* the engine checks it against the checkpoint interval at open */
        if (parse_u32(optarg, BFT_MAX_WINDOW, &v) || v < 2) return bad_args("--window must be 2-%u, got '%s'", BFT_MAX_WINDOW, optarg);
        o->window = (uint32_t)v;
        break;
      case OPT_PIPELINE:
        if (parse_u32(optarg, BFT_MAX_WINDOW, &v) || v < 1)
          return bad_args("--pipeline must be 1-%u (and at most --window), got '%s'", BFT_MAX_WINDOW, optarg);
        o->pipeline = (uint32_t)v;
        break;
      case OPT_VIEW_TIMEOUT:
        if (parse_u32(optarg, 60000, &v) || v < 50) return bad_args("--view-timeout must be 50-60000 ms, got '%s'", optarg);
        o->timeout_ms = (uint32_t)v;
        break;
      case OPT_UNSAFE_NO_FSYNC:
        o->unsafe_no_fsync = 1;
        break;
      case OPT_VERIFY_THREADS:
        if (parse_u32(optarg, RT_VPOOL_MAX_THREADS, &v))
          return bad_args("--verify-threads must be 0-%u, got '%s'", RT_VPOOL_MAX_THREADS, optarg);
        o->verify_threads = v ? (uint32_t)v : RT_VERIFY_INLINE;
        break;
      case OPT_MAX_CLIENTS:
        if (parse_u32(optarg, 1u << 20, &v) || v == 0) return bad_args("--max-clients must be 1-1048576, got '%s'", optarg);
        o->limits.max_clients = (uint32_t)v;
        break;
      case OPT_MAX_PER_SOURCE:
        if (parse_u32(optarg, 1u << 20, &v) || v == 0)
          return bad_args("--max-conns-per-source must be 1-1048576, got '%s'", optarg);
        o->limits.max_per_source = (uint32_t)v;
        break;
      case OPT_IDLE:
        if (parse_u32(optarg, 86400, &v) || v == 0) return bad_args("--client-idle-timeout must be 1-86400 s, got '%s'", optarg);
        o->limits.client_idle_ms = (uint32_t)v * 1000u;
        break;
      case OPT_FRAME_TIMEOUT:
        if (parse_u32(optarg, 3600, &v) || v == 0) return bad_args("--frame-timeout must be 1-3600 s, got '%s'", optarg);
        o->limits.frame_timeout_ms = (uint32_t)v * 1000u;
        break;
      case OPT_FAIL_BUDGET:
        if (parse_u32(optarg, 1u << 20, &v) || v == 0) return bad_args("--fail-budget must be 1-1048576, got '%s'", optarg);
        o->limits.fail_budget = (uint32_t)v;
        break;
      case 'h': usage(stdout); return 1;
      case ':': return bad_args("%s needs a value", argv[optind - 1]);
      default: return bad_args("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return bad_args("unexpected argument '%s'", argv[optind]);
  if (!o->config) return bad_args("missing --config");
  if (!have_id) return bad_args("missing --id");
  if (!o->key) return bad_args("missing --key");
  if (!o->protocol) return bad_args("missing --protocol");
  if (!o->data_dir) return bad_args("missing --data-dir");
  if (o->pipeline > (o->window ? o->window : 32u))
    return bad_args("--pipeline %u is larger than the window (%u): batches in flight cannot exceed the log", o->pipeline,
                    o->window ? o->window : 32u);
  if (o->byzantine) { /* syntax now; ids against the cluster's size once it is loaded */
    rt_byz_config bc;
    char err[256];
    if (rt_byz_parse(o->byzantine, BFT_MAX_REPLICAS, o->id, &bc, err, sizeof err) != 0) return bad_args("%s", err);
  }
  if (!bft_engine_find(o->protocol)) {
    fprintf(stderr, "bft-replica: unknown protocol '%s'; this build has: %s\n", o->protocol, bft_engine_names());
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  rt_options o;
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc == 1 ? 0 : rc;
  signal(SIGPIPE, SIG_IGN);
  char err[512] = "";
  bft_app app = {0};
  if (strcmp(g_app, "kv") != 0) {
    if (rt_app_socket_open(g_app, RT_APP_CONNECT_MS, g_app_timeout_ms, &app, err, sizeof err) != 0) {
      fprintf(stderr, "bft-replica: %s\n", err);
      return 1;
    }
    o.app = &app;
    o.app_watch = 1;
  }
  o.handle_signals = 1;
  bft_replica *r = NULL;
  if (rt_embed_create(&o, &r, err, sizeof err) != 0) {
    fprintf(stderr, "bft-replica: %s\n", err);
    rt_app_socket_close(&app);
    return 1;
  }
  rc = bft_replica_run(r);
  const char *why = bft_replica_error(r);
  if (why) fprintf(stderr, "bft-replica: stopped: %s\n", why);
  bft_replica_destroy(r);
  rt_app_socket_close(&app);
  return rc;
}
