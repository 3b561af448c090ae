/* Unit tests of the simulator's own parts: event order, PRNG reproducibility, the network's
 * loss/duplication rates and partitions, and — with the sim-local toy engines — that whole
 * runs are deterministic and that the agreement checker does catch an unsafe engine. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "tests/sim/sim.h"
#include "tests/sim/sim_heap.h"
#include "tests/sim/sim_net.h"
#include "tests/sim/sim_rng.h"

static void heap_orders_by_time_then_insertion(void **unused) {
  (void)unused;
  sim_heap h;
  assert_int_equal(sim_heap_init(&h, 100000), 0);
  sim_rng r;
  sim_rng_seed(&r, 7, 1);
  enum { N = 5000 };
  for (uint32_t i = 0; i < N; i++) {
    /* few distinct times, so most events tie and the insertion counter decides */
    sim_event ev = {.time = sim_rng_below(&r, 50), .a = i};
    assert_int_equal(sim_heap_push(&h, &ev), 0);
  }
  sim_event prev, cur;
  assert_int_equal(sim_heap_pop(&h, &prev), 1);
  uint32_t popped = 1;
  while (sim_heap_pop(&h, &cur)) {
    assert_true(cur.time > prev.time || (cur.time == prev.time && cur.a > prev.a));
    prev = cur;
    popped++;
  }
  assert_int_equal(popped, N);
  assert_int_equal(sim_heap_pop(&h, &cur), 0);
  sim_heap_free(&h);
}

static void heap_is_bounded(void **unused) {
  (void)unused;
  sim_heap h;
  assert_int_equal(sim_heap_init(&h, 3000), 0);
  sim_event ev = {.time = 1};
  for (int i = 0; i < 3000; i++) assert_int_equal(sim_heap_push(&h, &ev), 0);
  assert_int_equal(sim_heap_push(&h, &ev), BFT_E_FULL);
  sim_heap_free(&h);
}

static void rng_is_reproducible(void **unused) {
  (void)unused;
  sim_rng a, b, c, d;
  sim_rng_seed(&a, 42, 1);
  sim_rng_seed(&b, 42, 1);
  sim_rng_seed(&c, 43, 1);
  sim_rng_seed(&d, 42, 2);
  int diff_seed = 0, diff_stream = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = sim_rng_next(&a);
    assert_int_equal(x, sim_rng_next(&b));
    diff_seed += x != sim_rng_next(&c);
    diff_stream += x != sim_rng_next(&d);
  }
  assert_true(diff_seed > 990);
  assert_true(diff_stream > 990);
  /* A known value pins the algorithm: a changed generator would silently change every
   * recorded regression seed, so it must be a deliberate, visible change. */
  sim_rng_seed(&a, 1, 1);
  assert_int_equal(sim_rng_next(&a), 6592125140368359645ull);
}

static void rng_ranges_and_rates(void **unused) {
  (void)unused;
  sim_rng r;
  sim_rng_seed(&r, 9, 3);
  uint32_t hist[10] = {0};
  for (int i = 0; i < 100000; i++) {
    uint64_t v = sim_rng_below(&r, 10);
    assert_true(v < 10);
    hist[v]++;
    uint64_t w = sim_rng_range(&r, 5, 7);
    assert_true(w >= 5 && w <= 7);
    double u = sim_rng_unit(&r);
    assert_true(u >= 0.0 && u < 1.0);
  }
  for (int i = 0; i < 10; i++) assert_true(hist[i] > 9400 && hist[i] < 10600);
  assert_int_equal(sim_rng_chance(&r, 0.0), 0);
  assert_int_equal(sim_rng_chance(&r, 1.0), 1);
  assert_int_equal(sim_rng_range(&r, 3, 3), 3);
}

static sim_net_config lossy(void) {
  sim_net_config c = {.delay_min_us = 1000, .delay_max_us = 5000, .tail = 0.0, .tail_max_us = 0,
                      .drop = 0.1, .dup = 0.05, .reorder = 0};
  return c;
}

/* Measured rate within 5 standard deviations of p over N Bernoulli trials. */
static void assert_rate(uint64_t hits, uint64_t n, double p) {
  double sd = sqrt(p * (1 - p) / (double)n);
  double got = (double)hits / (double)n;
  if (fabs(got - p) > 5 * sd) fail_msg("rate %.5f, expected %.5f +- %.5f", got, p, 5 * sd);
}

static void net_drop_and_dup_rates(void **unused) {
  (void)unused;
  sim_net net;
  sim_net_config c = lossy();
  sim_net_init(&net, &c, 4);
  net.faulty = 1;
  sim_rng r;
  sim_rng_seed(&r, 5, 1);
  enum { N = 200000 };
  uint64_t lost = 0, twice = 0, once = 0;
  for (uint32_t i = 0; i < N; i++) {
    uint64_t at[2];
    uint32_t k = sim_net_route(&net, &r, i % 4, (i + 1) % 4, 1000000, at);
    lost += k == 0;
    once += k == 1;
    twice += k == 2;
    for (uint32_t j = 0; j < k; j++) assert_true(at[j] >= 1000000 + c.delay_min_us);
  }
  assert_int_equal(lost + once + twice, N);
  assert_int_equal(lost, net.dropped);
  assert_int_equal(twice, net.duplicated);
  assert_rate(lost, N, c.drop);
  assert_rate(twice, N - lost, c.dup); /* duplication is drawn for delivered messages */
}

static void net_is_reliable_after_the_window(void **unused) {
  (void)unused;
  sim_net net;
  sim_net_config c = lossy();
  c.tail = 0.5;
  c.tail_max_us = 1000000;
  c.reorder = 1;
  sim_net_init(&net, &c, 4);
  net.faulty = 0;
  sim_rng r;
  sim_rng_seed(&r, 6, 1);
  uint64_t last = 0;
  for (uint32_t i = 0; i < 10000; i++) {
    uint64_t at[2];
    uint64_t now = 1000 * (uint64_t)i;
    assert_int_equal(sim_net_route(&net, &r, 0, 1, now, at), 1);
    /* base delay only, and FIFO on the link */
    assert_true(at[0] >= now + c.delay_min_us && at[0] <= now + c.delay_max_us);
    assert_true(at[0] >= last);
    last = at[0];
  }
}

static void net_reorders_only_when_asked(void **unused) {
  (void)unused;
  for (int reorder = 0; reorder <= 1; reorder++) {
    sim_net net;
    sim_net_config c = lossy();
    c.drop = c.dup = 0;
    c.reorder = reorder;
    sim_net_init(&net, &c, 4);
    net.faulty = 1;
    sim_rng r;
    sim_rng_seed(&r, 8, 1);
    uint64_t last = 0, overtaken = 0;
    for (uint32_t i = 0; i < 10000; i++) {
      uint64_t at[2];
      sim_net_route(&net, &r, 2, 3, 100 * (uint64_t)i, at);
      overtaken += at[0] < last;
      if (at[0] > last) last = at[0];
    }
    if (reorder)
      assert_true(overtaken > 1000);
    else
      assert_int_equal(overtaken, 0);
  }
}

static void partition_blocks_delivery(void **unused) {
  (void)unused;
  sim_net net;
  sim_net_config c = lossy();
  sim_net_init(&net, &c, 7);
  for (uint32_t a = 0; a < 7; a++)
    for (uint32_t b = 0; b < 7; b++) assert_int_equal(sim_net_blocked(&net, a, b), 0);
  uint8_t g[BFT_MAX_REPLICAS] = {0, 0, 1, 1, 0, 1, 0};
  sim_net_partition(&net, g);
  for (uint32_t a = 0; a < 7; a++)
    for (uint32_t b = 0; b < 7; b++) assert_int_equal(sim_net_blocked(&net, a, b), g[a] != g[b]);
  /* clients are outside the partition */
  assert_int_equal(sim_net_blocked(&net, SIM_NET_CLIENT, 2), 0);
  assert_int_equal(sim_net_blocked(&net, 2, SIM_NET_CLIENT), 0);
  sim_net_heal(&net);
  for (uint32_t a = 0; a < 7; a++)
    for (uint32_t b = 0; b < 7; b++) assert_int_equal(sim_net_blocked(&net, a, b), 0);
}

/* ---- whole runs with the sim-local toy engines -------------------------------------------- */

static sim_options toy_options(const char *engine) {
  sim_options o;
  sim_options_defaults(&o);
  o.protocol = engine;
  o.requests = 40;
  o.drop = 0.1;
  o.dup = 0.05;
  o.reorder = 1;
  o.partition = 1;
  o.crash = 1;
  o.restart = 1;
  o.fault_ms = 2000;
  return o;
}

static void runs_are_deterministic(void **unused) {
  (void)unused;
  sim_options o = toy_options("sim-toy");
  sim_world *w;
  char err[200] = "";
  assert_int_equal(sim_world_create(&w, &o, sim_test_engine_find(o.protocol), err, sizeof err), 0);
  sim_result a, b, c;
  assert_int_equal(sim_run(w, &o, 11, NULL, NULL, &a), 0);
  assert_int_equal(sim_run(w, &o, 11, NULL, NULL, &b), 0);
  assert_int_equal(sim_run(w, &o, 12, NULL, NULL, &c), 0);
  if (a.outcome) fail_msg("toy run failed: %s", a.reason);
  assert_int_equal(a.requests_done, o.requests);
  assert_memory_equal(a.trace, b.trace, BFT_DIGEST_LEN);
  assert_int_equal(a.msgs, b.msgs);
  assert_int_equal(a.events, b.events);
  assert_memory_not_equal(a.trace, c.trace, BFT_DIGEST_LEN);
  sim_world_free(w);
}

static void toy_survives_every_fault_mix(void **unused) {
  (void)unused;
  sim_options o = toy_options("sim-toy");
  o.n = 7;
  o.crash = 2;
  sim_world *w;
  char err[200] = "";
  assert_int_equal(sim_world_create(&w, &o, sim_test_engine_find(o.protocol), err, sizeof err), 0);
  for (uint64_t seed = 1; seed <= 10; seed++) {
    sim_result r;
    assert_int_equal(sim_run(w, &o, seed, NULL, NULL, &r), 0);
    if (r.outcome) fail_msg("seed %llu: %s", (unsigned long long)seed, r.reason);
  }
  sim_world_free(w);
}

static void agreement_checker_catches_an_unsafe_engine(void **unused) {
  (void)unused;
  sim_options o;
  sim_options_defaults(&o);
  o.protocol = "sim-toy-unsafe";
  o.requests = 20;
  sim_world *w;
  char err[200] = "";
  assert_int_equal(sim_world_create(&w, &o, sim_test_engine_find(o.protocol), err, sizeof err), 0);
  sim_result r;
  assert_int_equal(sim_run(w, &o, 1, NULL, NULL, &r), 0);
  assert_int_equal(r.outcome, SIM_VIOLATION);
  assert_non_null(strstr(r.reason, "agreement"));
  sim_world_free(w);
}

static void validity_oracle_knows_submitted_requests(void **unused) {
  (void)unused;
  sim_options o;
  sim_options_defaults(&o);
  o.protocol = "sim-toy";
  o.requests = 30;
  sim_world *w;
  char err[200] = "";
  assert_int_equal(sim_world_create(&w, &o, sim_test_engine_find(o.protocol), err, sizeof err), 0);
  for (uint32_t i = 0; i < o.requests; i++) {
    const sim_request *rq = sim_world_request(w, i);
    assert_int_equal(sim_world_find(w, rq->digest), (int64_t)i);
  }
  uint8_t other[BFT_DIGEST_LEN];
  memcpy(other, sim_world_request(w, 0)->digest, BFT_DIGEST_LEN);
  other[31] ^= 1;
  assert_int_equal(sim_world_find(w, other), -1);
  /* the fast signer is a real MAC: right signer verifies, wrong signer or bytes do not */
  uint8_t sig[BFT_SIG_LEN];
  const uint8_t msg[] = "statement";
  sim_world_sign(w, 2, "t/x", msg, sizeof msg, sig);
  assert_int_equal(sim_world_verify(w, 2, "t/x", msg, sizeof msg, sig), 0);
  assert_int_equal(sim_world_verify(w, 1, "t/x", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  assert_int_equal(sim_world_verify(w, 2, "t/y", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  assert_int_equal(sim_world_verify(w, 9, "t/x", msg, sizeof msg, sig), BFT_E_UNKNOWN_SENDER);
  sim_world_free(w);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(heap_orders_by_time_then_insertion),
      cmocka_unit_test(heap_is_bounded),
      cmocka_unit_test(rng_is_reproducible),
      cmocka_unit_test(rng_ranges_and_rates),
      cmocka_unit_test(net_drop_and_dup_rates),
      cmocka_unit_test(net_is_reliable_after_the_window),
      cmocka_unit_test(net_reorders_only_when_asked),
      cmocka_unit_test(partition_blocks_delivery),
      cmocka_unit_test(runs_are_deterministic),
      cmocka_unit_test(toy_survives_every_fault_mix),
      cmocka_unit_test(agreement_checker_catches_an_unsafe_engine),
      cmocka_unit_test(validity_oracle_knows_submitted_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
