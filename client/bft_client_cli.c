/* Command-line parsing of bft-client and bft-bench, and bft-bench's latency histogram: pure
 * functions (no I/O, no globals; getopt is avoided because it keeps global state). */
#include "client/bft_client_cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/request.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Option cursor: "--name VALUE" or "--name=VALUE". */
typedef struct opt_cursor {
  int argc, i;
  char **argv;
} opt_cursor;

/* 1 when argv[i] is option `name` (value set if it takes one), 0 if not, -1 if its value is
 * missing. */
static int opt_match(opt_cursor *o, const char *name, int takes_value, const char **value) {
  const char *arg = o->argv[o->i];
  size_t nl = strlen(name);
  if (strncmp(arg, name, nl) != 0) return 0;
  if (arg[nl] == '\0') {
    if (!takes_value) return 1;
    if (o->i + 1 >= o->argc) return -1;
    *value = o->argv[++o->i];
    return 1;
  }
  if (arg[nl] == '=' && takes_value) {
    *value = arg + nl + 1;
    return 1;
  }
  return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_seconds(const char *s, double min, double max, double *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v) || v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* ---- bft-client -------------------------------------------------------------------------- */

typedef struct cli_cmd_def {
  const char *name;
  int cmd, nargs;
  const char *usage;
} cli_cmd_def;

static const cli_cmd_def CLI_CMDS[] = {
    {"put", BFT_CLI_PUT, 2, "put KEY VALUE"},
    {"get", BFT_CLI_GET, 1, "get KEY"},
    {"del", BFT_CLI_DEL, 1, "del KEY"},
    {"cas", BFT_CLI_CAS, 3, "cas KEY EXPECTED NEW"},
    {"ledger", BFT_CLI_LEDGER, 0, "ledger [--from H]"},
    {"verify-ledger", BFT_CLI_VERIFY_LEDGER, 0, "verify-ledger"},
    {"heads", BFT_CLI_HEADS, 0, "heads"},
    {"evidence", BFT_CLI_EVIDENCE, 0, "evidence"},
    {"exec", BFT_CLI_EXEC, 1, "exec OP"},
    {"query", BFT_CLI_QUERY, 1, "query --stale QUERY"},
    {"status", BFT_CLI_STATUS, 0, "status"},
};

int bft_client_cli_parse(int argc, char **argv, bft_client_cli_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->timeout_s = 10;
  a->from = 1;
  a->replica = -1;
  const char *pos[8];
  int npos = 0, opts_done = 0, have_from = 0;
  opt_cursor o = {.argc = argc, .argv = argv};
  for (o.i = 1; o.i < argc; o.i++) {
    const char *arg = argv[o.i], *v = NULL;
    if (!opts_done && arg[0] == '-' && arg[1] != '\0') {
      int m;
      if (strcmp(arg, "--") == 0) {
        opts_done = 1;
      } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        a->cmd = BFT_CLI_HELP;
        return 0;
      } else if ((m = opt_match(&o, "--config", 1, &v)) != 0) {
        if (m < 0) return fail(err, errlen, "--config needs a file");
        a->config = v;
      } else if ((m = opt_match(&o, "--key", 1, &v)) != 0) {
        if (m < 0) return fail(err, errlen, "--key needs a key file");
        a->key = v;
      } else if ((m = opt_match(&o, "--timeout", 1, &v)) != 0) {
        if (m < 0 || parse_seconds(v, 0.001, 86400, &a->timeout_s))
          return fail(err, errlen, "--timeout needs a number of seconds between 0.001 and 86400");
      } else if ((m = opt_match(&o, "--from", 1, &v)) != 0) {
        if (m < 0 || parse_u64(v, 1, UINT64_MAX - 1, &a->from))
          return fail(err, errlen, "--from needs a block height of 1 or more");
        have_from = 1;
      } else if ((m = opt_match(&o, "--replica", 1, &v)) != 0) {
        uint64_t r;
        if (m < 0 || parse_u64(v, 0, 1023, &r)) return fail(err, errlen, "--replica needs a replica id");
        a->replica = (int)r;
      } else if ((m = opt_match(&o, "--no-permit-check", 0, &v)) != 0) {
        a->no_permit_check = 1;
      } else if ((m = opt_match(&o, "--stale", 0, &v)) != 0) {
        a->stale = 1;
      } else if ((m = opt_match(&o, "--hex", 0, &v)) != 0) {
        a->hex = 1;
      } else {
        return fail(err, errlen, "unknown option '%s'", arg);
      }
      continue;
    }
    if (npos == (int)(sizeof pos / sizeof pos[0])) return fail(err, errlen, "too many arguments");
    pos[npos++] = arg;
  }
  if (npos == 0)
    return fail(err, errlen, "no command given (put, get, del, cas, exec, query, ledger, verify-ledger, heads, evidence, status)");
  const cli_cmd_def *d = NULL;
  for (size_t i = 0; i < sizeof CLI_CMDS / sizeof CLI_CMDS[0]; i++)
    if (strcmp(pos[0], CLI_CMDS[i].name) == 0) d = &CLI_CMDS[i];
  if (!d) return fail(err, errlen, "unknown command '%s'", pos[0]);
  if (npos - 1 != d->nargs)
    return fail(err, errlen, "'%s' takes %d argument%s: %s", d->name, d->nargs, d->nargs == 1 ? "" : "s", d->usage);
  a->cmd = d->cmd;
  if (have_from && a->cmd != BFT_CLI_LEDGER) return fail(err, errlen, "--from applies to 'ledger' only");
  if (a->cmd == BFT_CLI_QUERY && !a->stale)
    return fail(err, errlen, "'query' answers from one replica's current state, unordered: say so with --stale "
                             "(for a linearizable read use 'exec' or 'get')");
  if (a->stale && a->cmd != BFT_CLI_QUERY) return fail(err, errlen, "--stale applies to 'query' only");
  if (a->hex && a->cmd != BFT_CLI_QUERY && a->cmd != BFT_CLI_EXEC) return fail(err, errlen, "--hex applies to 'exec' and 'query' only");
  if (a->cmd == BFT_CLI_EXEC || a->cmd == BFT_CLI_QUERY) {
    a->k = pos[1];
    if (strlen(a->k) > (a->hex ? 2 * BFT_MAX_OP_BYTES : BFT_MAX_OP_BYTES))
      return fail(err, errlen, "operation is longer than %d bytes", BFT_MAX_OP_BYTES);
  }
  if (!a->config) return fail(err, errlen, "--config FILE is required");
  int is_op = a->cmd == BFT_CLI_PUT || a->cmd == BFT_CLI_GET || a->cmd == BFT_CLI_DEL || a->cmd == BFT_CLI_CAS;
  if (a->cmd == BFT_CLI_EXEC && !a->key) return fail(err, errlen, "--key KEYFILE is required for 'exec'");
  if (is_op && !a->key) return fail(err, errlen, "--key KEYFILE is required for '%s'", d->name);
  if (is_op) {
    a->k = pos[1];
    if (strlen(a->k) > BFT_KV_MAX_KEY) return fail(err, errlen, "key is longer than %d bytes", BFT_KV_MAX_KEY);
  }
  if (a->cmd == BFT_CLI_PUT) a->value = pos[2];
  if (a->cmd == BFT_CLI_CAS) {
    a->expected = pos[2];
    a->value = pos[3];
  }
  if ((a->value && strlen(a->value) > BFT_KV_MAX_VALUE) || (a->expected && strlen(a->expected) > BFT_KV_MAX_VALUE))
    return fail(err, errlen, "value is longer than %d bytes", (int)BFT_KV_MAX_VALUE);
  return 0;
}

/* ---- bft-bench --------------------------------------------------------------------------- */

int bench_args_parse(int argc, char **argv, bench_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->clients = 1;
  a->duration_s = 10;
  a->warmup_s = -1; /* unset: 1 s, or 0 with --total-ops */
  a->value_size = 64;
  a->mix = BENCH_OPS_PUT;
  a->keyspace = 1000;
  a->timeout_s = 30;
  a->arrival = BENCH_ARRIVAL_POISSON;
  a->backlog = 100000;
  a->connections = 1;
  int have_arrival = 0, have_backlog = 0;
  opt_cursor o = {.argc = argc, .argv = argv};
  for (o.i = 1; o.i < argc; o.i++) {
    const char *arg = argv[o.i], *v = NULL;
    uint64_t u;
    int m;
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      a->help = 1;
      return 0;
    } else if ((m = opt_match(&o, "--config", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--config needs a file");
      a->config = v;
    } else if ((m = opt_match(&o, "--keys", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--keys needs a folder");
      a->keys_dir = v;
    } else if ((m = opt_match(&o, "--clients", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 1, 4096, &u)) return fail(err, errlen, "--clients needs a number from 1 to 4096");
      a->clients = (uint32_t)u;
    } else if ((m = opt_match(&o, "--duration", 1, &v)) != 0) {
      if (m < 0 || parse_seconds(v, 0.1, 86400, &a->duration_s))
        return fail(err, errlen, "--duration needs seconds between 0.1 and 86400");
    } else if ((m = opt_match(&o, "--warmup", 1, &v)) != 0) {
      if (m < 0 || parse_seconds(v, 0, 3600, &a->warmup_s))
        return fail(err, errlen, "--warmup needs seconds between 0 and 3600");
    } else if ((m = opt_match(&o, "--value-size", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 0, BFT_KV_MAX_VALUE, &u))
        return fail(err, errlen, "--value-size needs bytes from 0 to %d", (int)BFT_KV_MAX_VALUE);
      a->value_size = (uint32_t)u;
    } else if ((m = opt_match(&o, "--ops", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--ops needs put, get or mixed");
      if (strcmp(v, "put") == 0) a->mix = BENCH_OPS_PUT;
      else if (strcmp(v, "get") == 0) a->mix = BENCH_OPS_GET;
      else if (strcmp(v, "mixed") == 0) a->mix = BENCH_OPS_MIXED;
      else return fail(err, errlen, "--ops must be put, get or mixed, not '%s'", v);
    } else if ((m = opt_match(&o, "--keyspace", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 1, 100000000, &u)) return fail(err, errlen, "--keyspace needs a number from 1 to 100000000");
      a->keyspace = (uint32_t)u;
    } else if ((m = opt_match(&o, "--timeout", 1, &v)) != 0) {
      if (m < 0 || parse_seconds(v, 0.01, 86400, &a->timeout_s))
        return fail(err, errlen, "--timeout needs seconds between 0.01 and 86400");
    } else if ((m = opt_match(&o, "--total-ops", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 1, UINT64_MAX / 2, &a->total_ops))
        return fail(err, errlen, "--total-ops needs a positive number");
    } else if ((m = opt_match(&o, "--history", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--history needs a file");
      a->history = v;
    } else if ((m = opt_match(&o, "--key-prefix", 1, &v)) != 0) {
      if (m < 0 || strlen(v) > 16) return fail(err, errlen, "--key-prefix needs at most 16 characters");
      a->key_prefix = v;
    } else if ((m = opt_match(&o, "--protocol", 1, &v)) != 0) {
      if (m < 0 || !*v || strlen(v) > 32) return fail(err, errlen, "--protocol needs a short name");
      a->protocol = v;
    } else if ((m = opt_match(&o, "--seed", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 1, UINT64_MAX, &a->seed)) return fail(err, errlen, "--seed needs a positive number");
    } else if ((m = opt_match(&o, "--progress", 0, &v)) != 0) {
      a->progress = 1;
    } else if ((m = opt_match(&o, "--payload", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 0, BFT_KV_MAX_VALUE, &u))
        return fail(err, errlen, "--payload needs bytes from 0 to %d", (int)BFT_KV_MAX_VALUE);
      a->value_size = (uint32_t)u;
      a->payload_set = 1;
    } else if ((m = opt_match(&o, "--auth", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--auth needs mac-replies, signed or protocol-only");
      if (strcmp(v, "mac-replies") == 0) a->request_version = BFT_REQUEST_V_MAC_REPLY;
      else if (strcmp(v, "signed") == 0) a->request_version = BFT_REQUEST_VERSION;
      else if (strcmp(v, "protocol-only") == 0) a->request_version = BFT_REQUEST_V_MAC;
      else return fail(err, errlen, "--auth must be mac-replies, signed or protocol-only, not '%s'", v);
    } else if ((m = opt_match(&o, "--rate", 1, &v)) != 0) {
      if (m < 0 || parse_seconds(v, 0.1, 10000000, &a->rate))
        return fail(err, errlen, "--rate needs operations per second between 0.1 and 10000000");
    } else if ((m = opt_match(&o, "--arrival", 1, &v)) != 0) {
      if (m < 0) return fail(err, errlen, "--arrival needs poisson or fixed");
      if (strcmp(v, "poisson") == 0) a->arrival = BENCH_ARRIVAL_POISSON;
      else if (strcmp(v, "fixed") == 0) a->arrival = BENCH_ARRIVAL_FIXED;
      else return fail(err, errlen, "--arrival must be poisson or fixed, not '%s'", v);
      have_arrival = 1;
    } else if ((m = opt_match(&o, "--connections", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 0, 100000, &u))
        return fail(err, errlen, "--connections needs a number from 0 (one set per client) to 100000");
      a->connections = (uint32_t)u;
    } else if ((m = opt_match(&o, "--backlog", 1, &v)) != 0) {
      if (m < 0 || parse_u64(v, 0, 10000000, &u)) return fail(err, errlen, "--backlog needs a number from 0 to 10000000");
      a->backlog = (uint32_t)u;
      have_backlog = 1;
    } else {
      return fail(err, errlen, "unknown argument '%s'", arg);
    }
  }
  if (!a->config) return fail(err, errlen, "--config FILE is required");
  if (!a->keys_dir) return fail(err, errlen, "--keys DIR is required (the folder holding client-J.key files)");
  if (a->warmup_s < 0) a->warmup_s = a->total_ops ? 0 : 1;
  if ((have_arrival || have_backlog) && a->rate <= 0) return fail(err, errlen, "--arrival and --backlog need --rate");
  if (a->payload_set && a->history)
    return fail(err, errlen, "--payload and --history do not go together (the history needs unique values)");
  return 0;
}

const char *bench_auth_name(uint8_t request_version) {
  switch (request_version) {
    case BFT_REQUEST_VERSION: return "signed";
    case BFT_REQUEST_V_MAC: return "protocol-only";
    default: return "mac-replies";
  }
}

/* ---- histogram --------------------------------------------------------------------------- */

void bench_hist_init(bench_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

uint32_t bench_hist_index(uint64_t v) {
  if (v < BENCH_HIST_EXACT) return (uint32_t)v;
  int msb = 63 - __builtin_clzll(v);  /* >= 7 */
  uint32_t shift = (uint32_t)msb - 6; /* keeps 7 significant bits: sub in [64, 128) */
  uint64_t sub = v >> shift;
  return BENCH_HIST_EXACT + (shift - 1) * BENCH_HIST_HALF + (uint32_t)(sub - BENCH_HIST_HALF);
}

static void hist_bounds(uint32_t idx, uint64_t *lo, uint64_t *hi) {
  if (idx < BENCH_HIST_EXACT) {
    *lo = *hi = idx;
    return;
  }
  uint32_t shift = (idx - BENCH_HIST_EXACT) / BENCH_HIST_HALF + 1;
  uint64_t sub = (idx - BENCH_HIST_EXACT) % BENCH_HIST_HALF + BENCH_HIST_HALF;
  *lo = sub << shift;
  *hi = ((sub + 1) << shift) - 1;
}

void bench_hist_record(bench_hist *h, uint64_t v) {
  h->bucket[bench_hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

uint64_t bench_hist_percentile(const bench_hist *h, double p) {
  if (h->count == 0) return 0;
  if (p <= 0) return h->min;
  if (p >= 100) return h->max;
  uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) {
      uint64_t lo, hi;
      hist_bounds(i, &lo, &hi);
      uint64_t mid = lo + (hi - lo) / 2;
      if (mid < h->min) mid = h->min;
      if (mid > h->max) mid = h->max;
      return mid;
    }
  }
  return h->max;
}
