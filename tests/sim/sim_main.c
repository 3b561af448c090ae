/* bft-sim command line: parses the fault mix, runs a range of seeds, prints one line per
 * failing seed with the exact command that replays it, then one summary line. Exit 0 when
 * every seed passed, 1 on any violation or stall, 2 on bad input. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sim/sim.h"

typedef struct cli {
  sim_options o;
  const char *argv0;
  int help;
} cli;

static void usage(FILE *out, const sim_options *d) {
  fprintf(out,
          "usage: bft-sim [options]\n"
          "Runs n replicas of a consensus engine in one process from a seed: virtual clock, faulty\n"
          "network, crashes and partitions during a fault window; checks agreement, validity and\n"
          "liveness. Same seed, same run: the trace digest proves it.\n"
          "\n"
          "  --protocol NAME        engine (%s; test engines: sim-toy, sim-toy-unsafe)  [%s]\n"
          "  --replicas N           replicas, %u..%u  [%u]\n"
          "  --seeds A | A-B        seeds to run  [%" PRIu64 "-%" PRIu64 "]\n"
          "  --requests R           signed client requests in total, 1..%u  [%u]\n"
          "  --clients C            clients, 1..%u  [%u]\n"
          "  --outstanding K        request streams per client, each its own client identity with\n"
          "                         one request in flight (the runtime runs a client's requests in\n"
          "                         seq order), 1..%u  [%u]\n"
          "  --client-timeout MS    client retransmission timeout  [%" PRIu64 "]\n"
          "  --think US             mean pause before a client's next request; auto spreads the\n"
          "                         requests over the fault window  [auto]\n"
          "  --batch N              engine batch_max (0 = engine default)  [0]\n"
          "  --window N             engine window (0 = engine default)  [0]\n"
          "  --checkpoint N         engine checkpoint interval (0 = engine default)  [0]\n"
          "  --timeout-ms MS        engine base timeout (0 = engine default)  [0]\n"
          "network (delays always; loss, duplication, tails and reordering only in the fault window):\n"
          "  --delay-min US         minimum one-way delay  [%" PRIu64 "]\n"
          "  --delay-max US         maximum one-way delay (uniform in between)  [%" PRIu64 "]\n"
          "  --tail P               chance of a long-tail delay  [%g]\n"
          "  --tail-max US          largest extra delay of a long-tail message  [%" PRIu64 "]\n"
          "  --drop P               chance a message is lost  [%g]\n"
          "  --duplicate P          chance a message is delivered twice  [%g]\n"
          "  --reorder              no per-link FIFO; a quarter of messages take a long detour  [off]\n"
          "faults (only in the fault window; at most f replicas down at once):\n"
          "  --partition            random splits of the replicas, healed later  [off]\n"
          "  --crash N              crash N replicas (backups unless --crash-primary)  [%u]\n"
          "  --crash-primary        crash the current primary (implies --crash 1 if not given)  [off]\n"
          "  --restart              crashed replicas restart (PERSIST records and ledger survive)  [off]\n"
          "  --byzantine PLAN       faulty replicas misbehave for the whole run: twin (two honest copies\n"
          "                         under one key, each talking to part of the cluster), equivocate\n"
          "                         (twins fed different requests: conflicting proposals and votes),\n"
          "                         silent, corrupt (fields mutated, validly signed), bad-sig, replay\n"
          "                         (old signed messages resent), withhold (no data/catch-up served), or\n"
          "                         mixed (one of those per faulty replica, from the seed)  [none]\n"
          "  --faulty K             how many replicas follow the plan (default f; more than f breaks\n"
          "                         the protocol's assumption on purpose, and the checks show it)\n"
          "  --fault-window MS      faults happen in the first MS of virtual time  [%" PRIu64 "]\n"
          "  --liveness-bound MS    after the window, everything must be done within MS  [%" PRIu64 "]\n"
          "  --catchup-all          also stall when a correct replica never caught up on its own  [off]\n"
          "  --lone-timer DIV       replica n-1's engine timeout is 1/DIV of the others': its request\n"
          "                         timer fires alone while the rest commit  [off]\n"
          "  --outside-bound MS     with --lone-timer: stall when replica n-1 is outside the quorum\n"
          "                         (another view, or changing views alone) longer than MS  [off]\n"
          "  --tolerate-half-applied  count (half_applied=) instead of failing on an engine step that\n"
          "                         returned an error yet emitted actions  [off]\n"
          "other:\n"
          "  --real-crypto          real Ed25519 for replica signatures (default: fast keyed BLAKE2b)  [off]\n"
          "  --verbose              readable event trace (one seed only)  [off]\n"
          "  --verbose-runtime      the same, with the replica runtimes' debug log lines  [off]\n"
          "  --help                 this text\n"
          "\n"
          "Output: one FAIL line per failing seed with its replay command, then a summary line:\n"
          "  PROTOCOL n=N seeds=S violations=V stalled=T delivered=BATCHES ... trace=DIGEST\n"
          "trace is the seed's trace digest for one seed, else a digest of all of them in order.\n"
          "Exit status: 0 all passed, 1 violation or stall, 2 bad input.\n",
          bft_engine_names(), d->protocol, BFT_MIN_REPLICAS, BFT_MAX_REPLICAS, d->n, d->seed_lo, d->seed_hi,
          SIM_MAX_REQUESTS, d->requests, SIM_MAX_CLIENTS, d->clients, SIM_MAX_OUTSTANDING, d->outstanding,
          d->client_timeout_ms, d->delay_min_us, d->delay_max_us, d->tail, d->tail_max_us, d->drop, d->dup, d->crash,
          d->fault_ms, d->bound_ms);
}

/* One clear line on stderr, then exit status 2. */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bft-sim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see bft-sim --help)\n");
  va_end(ap);
  return 2;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
  uint64_t v;
  if (parse_u64(s, &v) || v < lo || v > hi) return -1;
  *out = (uint32_t)v;
  return 0;
}

static int parse_prob(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !(v >= 0.0 && v <= 1.0)) return -1; /* also refuses NaN */
  *out = v;
  return 0;
}

static int parse_seeds(const char *s, uint64_t *lo, uint64_t *hi) {
  char buf[64];
  if (!s || strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  char *dash = strchr(buf, '-');
  if (!dash) {
    if (parse_u64(buf, lo)) return -1;
    *hi = *lo;
    return 0;
  }
  *dash = '\0';
  if (parse_u64(buf, lo) || parse_u64(dash + 1, hi) || *lo > *hi) return -1;
  return 0;
}

/* Options taking a value accept "--opt V" and "--opt=V". */
static int parse_args(int argc, char **argv, cli *c) {
  sim_options *o = &c->o;
  int crash_given = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    char name[64];
    const char *val = NULL;
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof name) {
      memcpy(name, arg, (size_t)(eq - arg));
      name[eq - arg] = '\0';
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", arg);
    }
    /* flags */
    int is_flag = 1;
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) c->help = 1;
    else if (!strcmp(name, "--reorder")) o->reorder = 1;
    else if (!strcmp(name, "--partition")) o->partition = 1;
    else if (!strcmp(name, "--crash-primary")) o->crash_primary = 1;
    else if (!strcmp(name, "--restart")) o->restart = 1;
    else if (!strcmp(name, "--catchup-all")) o->catchup_all = 1;
    else if (!strcmp(name, "--tolerate-half-applied")) o->tolerate_half_applied = 1;
    else if (!strcmp(name, "--real-crypto")) o->real_crypto = 1;
    else if (!strcmp(name, "--verbose")) o->verbose = 1;
    else if (!strcmp(name, "--verbose-runtime")) o->verbose = 2;
    else is_flag = 0;
    if (is_flag) {
      if (val) return bad("option %s takes no value", name);
      continue;
    }
    static const char *const with_value[] = {
        "--protocol", "--replicas", "--seeds", "--requests", "--clients", "--outstanding", "--client-timeout",
        "--think", "--batch", "--window", "--checkpoint", "--timeout-ms", "--delay-min", "--delay-max", "--tail",
        "--tail-max", "--drop", "--duplicate", "--crash", "--fault-window", "--liveness-bound", "--byzantine", "--faulty",
        "--lone-timer", "--outside-bound"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(name, with_value[k]);
    if (!known) {
      if (strncmp(name, "-", 1) != 0) return bad("unexpected argument '%s'", name);
      return bad("unknown option '%s'", name);
    }
    if (!val) {
      if (i + 1 >= argc) return bad("option %s needs a value", name);
      val = argv[++i];
    }
    int err = 0;
    if (!strcmp(name, "--protocol")) o->protocol = val;
    else if (!strcmp(name, "--replicas")) err = parse_u32(val, 0, UINT32_MAX, &o->n);
    else if (!strcmp(name, "--seeds")) err = parse_seeds(val, &o->seed_lo, &o->seed_hi);
    else if (!strcmp(name, "--requests")) err = parse_u32(val, 1, SIM_MAX_REQUESTS, &o->requests);
    else if (!strcmp(name, "--clients")) err = parse_u32(val, 1, SIM_MAX_CLIENTS, &o->clients);
    else if (!strcmp(name, "--outstanding")) err = parse_u32(val, 1, SIM_MAX_OUTSTANDING, &o->outstanding);
    else if (!strcmp(name, "--client-timeout")) err = parse_u64(val, &o->client_timeout_ms) || !o->client_timeout_ms;
    else if (!strcmp(name, "--think")) {
      uint64_t t = 0;
      if (!strcmp(val, "auto"))
        o->think_us = -1;
      else if (parse_u64(val, &t) || t > 3600000000ull) /* an hour of thinking is plenty */
        err = 1;
      else
        o->think_us = (int64_t)t;
    } else if (!strcmp(name, "--batch")) err = parse_u32(val, 0, BFT_MAX_BATCH_REQUESTS, &o->batch);
    else if (!strcmp(name, "--window")) err = parse_u32(val, 0, BFT_MAX_WINDOW, &o->window);
    else if (!strcmp(name, "--checkpoint")) err = parse_u32(val, 0, BFT_MAX_WINDOW, &o->checkpoint);
    else if (!strcmp(name, "--timeout-ms")) err = parse_u32(val, 0, 3600000, &o->timeout_ms);
    else if (!strcmp(name, "--delay-min")) err = parse_u64(val, &o->delay_min_us);
    else if (!strcmp(name, "--delay-max")) err = parse_u64(val, &o->delay_max_us);
    else if (!strcmp(name, "--tail")) err = parse_prob(val, &o->tail);
    else if (!strcmp(name, "--tail-max")) err = parse_u64(val, &o->tail_max_us);
    else if (!strcmp(name, "--drop")) err = parse_prob(val, &o->drop);
    else if (!strcmp(name, "--duplicate")) err = parse_prob(val, &o->dup);
    else if (!strcmp(name, "--crash")) {
      err = parse_u32(val, 0, BFT_MAX_REPLICAS, &o->crash);
      crash_given = 1;
    } else if (!strcmp(name, "--fault-window")) err = parse_u64(val, &o->fault_ms) || !o->fault_ms;
    else if (!strcmp(name, "--liveness-bound")) err = parse_u64(val, &o->bound_ms) || !o->bound_ms;
    else if (!strcmp(name, "--lone-timer")) err = parse_u32(val, 2, 1000, &o->lone_div);
    else if (!strcmp(name, "--outside-bound")) err = parse_u64(val, &o->outside_bound_ms) || !o->outside_bound_ms;
    else if (!strcmp(name, "--byzantine")) {
      int plan = sim_byz_parse(val);
      if (plan <= 0) return bad("unknown --byzantine plan '%s' (twin, equivocate, silent, corrupt, bad-sig, replay, withhold, mixed)", val);
      o->byzantine = plan;
    } else if (!strcmp(name, "--faulty")) err = parse_u32(val, 0, BFT_MAX_REPLICAS, &o->faulty);
    if (err) {
      if (!strcmp(name, "--seeds")) return bad("bad seed range '%s': want A or A-B with A <= B", val);
      if (!strcmp(name, "--drop") || !strcmp(name, "--duplicate") || !strcmp(name, "--tail"))
        return bad("%s must be a probability in [0,1], not '%s'", name, val);
      return bad("bad value for %s: '%s'", name, val);
    }
  }
  if (c->help) return 0;
  if (o->crash_primary && !crash_given) o->crash = 1;
  uint32_t f = o->n >= 1 ? (o->n - 1) / 3 : 0;
  if (o->n < BFT_MIN_REPLICAS || o->n > BFT_MAX_REPLICAS) {
    fprintf(stderr, "bft-sim: --replicas must be in %u..%u (n = 3f+1 with f >= 1), not %u\n", BFT_MIN_REPLICAS,
            BFT_MAX_REPLICAS, o->n);
    return 2;
  }
  if (!o->restart && o->crash > f) {
    fprintf(stderr, "bft-sim: --crash %u without --restart would leave more than f=%u replicas down\n", o->crash, f);
    return 2;
  }
  if (o->delay_min_us < 1 || o->delay_min_us > o->delay_max_us || o->delay_max_us > 10000000) {
    fprintf(stderr, "bft-sim: want 1 <= --delay-min <= --delay-max <= 10000000 us\n");
    return 2;
  }
  if (o->fault_ms > 86400000ull || o->bound_ms > 86400000ull || o->client_timeout_ms > 3600000ull ||
      o->tail_max_us > 60000000ull) {
    fprintf(stderr, "bft-sim: a time option is beyond its limit (a day for windows, an hour for timeouts)\n");
    return 2;
  }
  if (o->clients > o->requests) o->clients = o->requests;
  if (o->verbose && o->seed_lo != o->seed_hi) {
    fprintf(stderr, "bft-sim: --verbose traces one seed: give --seeds N\n");
    return 2;
  }
  return 0;
}

/* Shortest text that reads back as exactly v, so a replayed probability is bit-identical
 * ("0.1", not "0.10000000000000001"). */
static const char *fmt_prob(char buf[32], double v) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

/* The command that replays one seed: every option that differs from its default. */
static void replay_command(char *out, size_t cap, const cli *c, uint64_t seed) {
  sim_options d;
  sim_options_defaults(&d);
  const sim_options *o = &c->o;
  size_t k = 0;
  char pb[32];
#define ADD(...)                                                                  \
  do {                                                                            \
    if (k < cap) k += (size_t)snprintf(out + k, cap - k, __VA_ARGS__);            \
  } while (0)
  ADD("%s --protocol %s --replicas %u --seeds %" PRIu64, c->argv0, o->protocol, o->n, seed);
  if (o->requests != d.requests) ADD(" --requests %u", o->requests);
  if (o->clients != d.clients) ADD(" --clients %u", o->clients);
  if (o->outstanding != d.outstanding) ADD(" --outstanding %u", o->outstanding);
  if (o->client_timeout_ms != d.client_timeout_ms) ADD(" --client-timeout %" PRIu64, o->client_timeout_ms);
  if (o->think_us != d.think_us) ADD(" --think %" PRId64, o->think_us);
  if (o->batch) ADD(" --batch %u", o->batch);
  if (o->window) ADD(" --window %u", o->window);
  if (o->checkpoint) ADD(" --checkpoint %u", o->checkpoint);
  if (o->timeout_ms) ADD(" --timeout-ms %u", o->timeout_ms);
  if (o->delay_min_us != d.delay_min_us) ADD(" --delay-min %" PRIu64, o->delay_min_us);
  if (o->delay_max_us != d.delay_max_us) ADD(" --delay-max %" PRIu64, o->delay_max_us);
  if (o->tail != d.tail) ADD(" --tail %s", fmt_prob(pb, o->tail));
  if (o->tail_max_us != d.tail_max_us) ADD(" --tail-max %" PRIu64, o->tail_max_us);
  if (o->drop != d.drop) ADD(" --drop %s", fmt_prob(pb, o->drop));
  if (o->dup != d.dup) ADD(" --duplicate %s", fmt_prob(pb, o->dup));
  if (o->reorder) ADD(" --reorder");
  if (o->partition) ADD(" --partition");
  if (o->crash) ADD(" --crash %u", o->crash);
  if (o->crash_primary) ADD(" --crash-primary");
  if (o->restart) ADD(" --restart");
  if (o->byzantine) ADD(" --byzantine %s", sim_byz_name(o->byzantine));
  if (o->faulty != d.faulty) ADD(" --faulty %u", o->faulty);
  if (o->fault_ms != d.fault_ms) ADD(" --fault-window %" PRIu64, o->fault_ms);
  if (o->bound_ms != d.bound_ms) ADD(" --liveness-bound %" PRIu64, o->bound_ms);
  if (o->catchup_all) ADD(" --catchup-all");
  if (o->lone_div) ADD(" --lone-timer %u", o->lone_div);
  if (o->outside_bound_ms) ADD(" --outside-bound %" PRIu64, o->outside_bound_ms);
  if (o->tolerate_half_applied) ADD(" --tolerate-half-applied");
  if (o->real_crypto) ADD(" --real-crypto");
  ADD(" --verbose");
#undef ADD
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double per(uint64_t x, uint64_t batches) { return batches ? (double)x / (double)batches : 0.0; }

int main(int argc, char **argv) {
  cli c;
  memset(&c, 0, sizeof c);
  sim_options_defaults(&c.o);
  c.argv0 = argv[0];
  int rc = parse_args(argc, argv, &c);
  if (rc) return rc;
  if (c.help) {
    sim_options d;
    sim_options_defaults(&d);
    usage(stdout, &d);
    return 0;
  }
  if (bft_crypto_init() != 0) {
    fprintf(stderr, "bft-sim: cannot initialise libsodium\n");
    return 2;
  }
  const bft_engine_ops *ops = bft_engine_find(c.o.protocol);
  if (!ops) ops = sim_test_engine_find(c.o.protocol);
  if (!ops) {
    fprintf(stderr, "bft-sim: unknown protocol '%s' (known: %s) (see bft-sim --help)\n", c.o.protocol,
            bft_engine_names());
    return 2;
  }
  if (c.o.n > ops->max_replicas) {
    fprintf(stderr, "bft-sim: %s runs at most %u replicas, not %u\n", ops->name, ops->max_replicas, c.o.n);
    return 2;
  }
  char err[256] = "";
  sim_world *w;
  rc = sim_world_create(&w, &c.o, ops, err, sizeof err);
  if (rc) {
    fprintf(stderr, "bft-sim: %s\n", err[0] ? err : bft_strerror(rc));
    return 2;
  }

  uint64_t seeds = 0, violations = 0, stalled = 0, lagging = 0;
  uint64_t batches = 0, requests = 0, msgs = 0, bytes = 0, sigs = 0, verifies = 0, fetches = 0, sim_us = 0;
  uint64_t max_view = 0, half_applied = 0, byz_msgs = 0, equivocations = 0, evidence = 0, outside_max = 0;
  uint8_t last[BFT_DIGEST_LEN] = {0};
  bft_digest_ctx all;
  bft_digest_init(&all);
  sim_scratch *scr = sim_scratch_new();
  if (!scr) {
    fprintf(stderr, "bft-sim: out of memory\n");
    sim_world_free(w);
    return 1;
  }
  double t0 = now_s();
  for (uint64_t seed = c.o.seed_lo;; seed++) {
    sim_result r;
    rc = sim_run(w, &c.o, seed, scr, c.o.verbose ? stdout : NULL, &r);
    if (rc) {
      fprintf(stderr, "bft-sim: seed %" PRIu64 ": simulator failed: %s\n", seed, bft_strerror(rc));
      sim_scratch_free(scr);
      sim_world_free(w);
      return 1;
    }
    seeds++;
    batches += r.batches;
    requests += r.requests_done;
    msgs += r.msgs;
    bytes += r.bytes;
    sigs += r.sigs;
    verifies += r.verifies;
    fetches += r.fetches;
    sim_us += r.end_us;
    lagging += r.lagging;
    half_applied += r.half_applied;
    byz_msgs += r.byz_msgs;
    equivocations += r.equivocations;
    evidence += r.evidence;
    if (r.max_view > max_view) max_view = r.max_view;
    if (r.outside_max_us > outside_max) outside_max = r.outside_max_us;
    memcpy(last, r.trace, sizeof last);
    bft_digest_update(&all, r.trace, sizeof r.trace);
    if (r.outcome) {
      char cmd[1024];
      replay_command(cmd, sizeof cmd, &c, seed);
      if (r.outcome == SIM_STALLED)
        stalled++;
      else
        violations++;
      printf("FAIL seed=%" PRIu64 " %s: %s\n  replay: %s\n", seed, r.outcome == SIM_STALLED ? "stalled" : "violation",
             r.reason, cmd);
      fflush(stdout);
    }
    if (seed == c.o.seed_hi) break;
  }
  double wall = now_s() - t0;
  uint8_t combined[BFT_DIGEST_LEN];
  bft_digest_final(&all, combined);
  char hex[2 * BFT_DIGEST_LEN + 1];
  bft_hex_encode(hex, seeds == 1 ? last : combined, BFT_DIGEST_LEN);
  printf("%s n=%u seeds=%" PRIu64 " violations=%" PRIu64 " stalled=%" PRIu64 " delivered=%" PRIu64 " requests=%" PRIu64
         " msgs/batch=%.1f bytes/batch=%.0f sigs/batch=%.1f verifies/batch=%.1f fetches=%" PRIu64 " lagging=%" PRIu64
         " half_applied=%" PRIu64 " byz_msgs=%" PRIu64 " equivocations=%" PRIu64 " evidence=%" PRIu64 " max_view=%" PRIu64 " sim_time=%.1fs wall=%.2fs seeds/s=%.1f trace=%s\n",
         ops->name, c.o.n, seeds, violations, stalled, batches, requests, per(msgs, batches), per(bytes, batches),
         per(sigs, batches), per(verifies, batches), fetches, lagging, half_applied, byz_msgs, equivocations, evidence, max_view, (double)sim_us / 1e6, wall,
         wall > 0 ? (double)seeds / wall : 0.0, hex);
  if (c.o.lone_div > 1)
    printf("lone timer: replica %u outside the quorum at most %.0f ms in any seed\n", c.o.n - 1,
           (double)outside_max / 1000.0);
  sim_scratch_free(scr);
  sim_world_free(w);
  return violations || stalled ? 1 : 0;
}
