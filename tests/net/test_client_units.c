/* Unit tests of the client side's pure parts: reply matching and quorum, the cheap reply
 * pre-checks, sequence numbers, bft-client and bft-bench argument parsing, the latency
 * histogram and the linearizability checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "client/bft_client.h"
#include "client/bft_client_cli.h"
#include "tests/net/net_lincheck.h"

/* ---- quorum ------------------------------------------------------------------------------ */

static void test_quorum_needs_f_plus_1_distinct(void **state) {
  (void)state;
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 4, 2, 7);
  const uint8_t v[] = "value";
  assert_int_equal(bft_client_quorum_add(&q, 1, 7, BFT_KV_OK, 3, v, 5), 0);
  /* the same replica again does not make two votes */
  assert_int_equal(bft_client_quorum_add(&q, 1, 7, BFT_KV_OK, 3, v, 5), 0);
  assert_int_equal(bft_client_quorum_add(&q, 2, 7, BFT_KV_OK, 3, v, 5), 1);
}

static void test_quorum_mismatch_result_or_status(void **state) {
  (void)state;
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 4, 2, 9);
  assert_int_equal(bft_client_quorum_add(&q, 0, 9, BFT_KV_OK, 1, (const uint8_t *)"a", 1), 0);
  assert_int_equal(bft_client_quorum_add(&q, 1, 9, BFT_KV_OK, 1, (const uint8_t *)"b", 1), 0);
  assert_int_equal(bft_client_quorum_add(&q, 2, 9, BFT_KV_NOT_FOUND, 1, (const uint8_t *)"a", 1), 0);
  uint32_t votes, best;
  bft_client_quorum_count(&q, &votes, &best);
  assert_int_equal(votes, 3);
  assert_int_equal(best, 1);
  assert_int_equal(bft_client_quorum_add(&q, 3, 9, BFT_KV_OK, 1, (const uint8_t *)"b", 1), 1);
}

static void test_quorum_height_not_compared(void **state) {
  (void)state;
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 4, 2, 1);
  assert_int_equal(bft_client_quorum_add(&q, 0, 1, BFT_KV_OK, 5, NULL, 0), 0);
  assert_int_equal(bft_client_quorum_add(&q, 3, 1, BFT_KV_OK, 6, NULL, 0), 1);
}

static void test_quorum_stale_and_unknown(void **state) {
  (void)state;
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 4, 2, 5);
  assert_int_equal(bft_client_quorum_add(&q, 0, 4, BFT_KV_OK, 1, NULL, 0), BFT_E_STALE);
  assert_int_equal(bft_client_quorum_add(&q, 4, 5, BFT_KV_OK, 1, NULL, 0), BFT_E_UNKNOWN_SENDER);
  uint32_t votes;
  bft_client_quorum_count(&q, &votes, NULL);
  assert_int_equal(votes, 0);
}

static void test_quorum_replaced_vote(void **state) {
  (void)state;
  /* a replica that first rejected and then answered counts with its newer answer only */
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 4, 2, 2);
  assert_int_equal(bft_client_quorum_add(&q, 0, 2, BFT_KV_REJECTED, 0, (const uint8_t *)"busy", 4), 0);
  assert_int_equal(bft_client_quorum_add(&q, 1, 2, BFT_KV_OK, 1, NULL, 0), 0);
  assert_int_equal(bft_client_quorum_add(&q, 0, 2, BFT_KV_OK, 1, NULL, 0), 1);
}

static void test_quorum_rejection_quorum(void **state) {
  (void)state;
  bft_client_quorum q;
  bft_client_quorum_reset(&q, 7, 3, 2);
  const uint8_t r[] = "client not permitted";
  assert_int_equal(bft_client_quorum_add(&q, 0, 2, BFT_KV_REJECTED, 0, r, sizeof r - 1), 0);
  assert_int_equal(bft_client_quorum_add(&q, 5, 2, BFT_KV_REJECTED, 0, r, sizeof r - 1), 0);
  assert_int_equal(bft_client_quorum_add(&q, 6, 2, BFT_KV_REJECTED, 0, r, sizeof r - 1), 1);
}

/* A real signed reply, to check that peek reads the same fields as the decoder. */
static void test_reply_peek(void **state) {
  (void)state;
  assert_int_equal(bft_crypto_init(), 0);
  bft_keypair rk, ck;
  bft_keypair_generate(&rk);
  bft_keypair_generate(&ck);
  uint8_t cid[BFT_CLUSTER_ID_LEN] = {1};
  bft_reply rp = {.replica = 2, .seq = 0x1122334455667788ull, .height = 9, .status = BFT_KV_CAS_FAILED,
                  .result = (const uint8_t *)"xyz", .result_len = 3};
  memcpy(rp.client, ck.pk, BFT_PK_LEN);
  uint8_t buf[512];
  int len = bft_reply_encode(&rk, cid, &rp, buf, sizeof buf);
  assert_true(len > 0);
  uint32_t r = 99;
  uint8_t st = 0;
  assert_int_equal(bft_client_reply_peek(buf, (uint32_t)len, ck.pk, rp.seq, 4, &r, &st), 0);
  assert_int_equal(r, 2);
  assert_int_equal(st, BFT_KV_CAS_FAILED);
  assert_int_equal(bft_client_reply_peek(buf, (uint32_t)len, ck.pk, rp.seq + 1, 4, NULL, NULL), BFT_E_STALE);
  assert_int_equal(bft_client_reply_peek(buf, (uint32_t)len, rk.pk, rp.seq, 4, NULL, NULL), BFT_E_STALE);
  assert_int_equal(bft_client_reply_peek(buf, (uint32_t)len, ck.pk, rp.seq, 2, NULL, NULL), BFT_E_UNKNOWN_SENDER);
  assert_int_equal(bft_client_reply_peek(buf, 20, ck.pk, rp.seq, 4, NULL, NULL), BFT_E_TRUNCATED);
}

static void test_next_seq(void **state) {
  (void)state;
  assert_int_equal(bft_client_next_seq(0, 1000), 1000);
  assert_int_equal(bft_client_next_seq(1000, 1000), 1001);
  assert_int_equal(bft_client_next_seq(5000, 1000), 5001); /* clock stepped back: still increasing */
  assert_int_equal(bft_client_next_seq(0, 0), 1);          /* never seq 0 */
}

/* ---- bft-client arguments ---------------------------------------------------------------- */

#define ARGV(...) ((char *[]){"bft-client", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"bft-client", __VA_ARGS__}) / sizeof(char *)))
#define CLI(a, err, ...) bft_client_cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), a, err, sizeof err)

static void test_cli_ops(void **state) {
  (void)state;
  bft_client_cli_args a;
  char err[256];
  assert_int_equal(CLI(&a, err, "--config", "c.ini", "--key", "k.key", "put", "x", "1"), 0);
  assert_int_equal(a.cmd, BFT_CLI_PUT);
  assert_string_equal(a.k, "x");
  assert_string_equal(a.value, "1");
  assert_true(a.timeout_s == 10);
  assert_int_equal(CLI(&a, err, "get", "x", "--config=c.ini", "--key=k.key", "--timeout", "2.5"), 0);
  assert_int_equal(a.cmd, BFT_CLI_GET);
  assert_true(a.timeout_s == 2.5);
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "cas", "x", "old", "new"), 0);
  assert_string_equal(a.expected, "old");
  assert_string_equal(a.value, "new");
  /* "--" lets a value start with dashes */
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "put", "--", "x", "--v"), 0);
  assert_string_equal(a.value, "--v");
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "put", "x", ""), 0);
  assert_string_equal(a.value, "");
}

static void test_cli_ledger(void **state) {
  (void)state;
  bft_client_cli_args a;
  char err[256];
  assert_int_equal(CLI(&a, err, "--config", "c", "ledger", "--from", "5"), 0);
  assert_int_equal(a.cmd, BFT_CLI_LEDGER);
  assert_int_equal(a.from, 5);
  assert_null(a.key);
  assert_int_equal(CLI(&a, err, "--config", "c", "verify-ledger", "--replica", "2"), 0);
  assert_int_equal(a.cmd, BFT_CLI_VERIFY_LEDGER);
  assert_int_equal(a.replica, 2);
  assert_int_equal(CLI(&a, err, "--config", "c", "heads"), 0);
  assert_int_equal(a.replica, -1);
}

static void test_cli_errors(void **state) {
  (void)state;
  bft_client_cli_args a;
  char err[256];
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k"), -1);
  assert_non_null(strstr(err, "no command"));
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "put", "x"), -1);
  assert_non_null(strstr(err, "put KEY VALUE"));
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "frob"), -1);
  assert_non_null(strstr(err, "unknown command"));
  assert_int_equal(CLI(&a, err, "--key", "k", "get", "x"), -1);
  assert_non_null(strstr(err, "--config"));
  assert_int_equal(CLI(&a, err, "--config", "c", "get", "x"), -1);
  assert_non_null(strstr(err, "--key"));
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "--timeout", "soon", "get", "x"), -1);
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "--timeout", "0", "get", "x"), -1);
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "--bogus", "get", "x"), -1);
  assert_non_null(strstr(err, "--bogus"));
  assert_int_equal(CLI(&a, err, "--config", "c", "--key", "k", "get", "x", "--from", "2"), -1);
  assert_int_equal(CLI(&a, err, "--config", "c", "ledger", "--from", "0"), -1);
  assert_int_equal(CLI(&a, err, "--config"), -1);
  assert_int_equal(CLI(&a, err, "--help"), 0);
  assert_int_equal(a.cmd, BFT_CLI_HELP);
}

/* ---- bft-bench arguments ----------------------------------------------------------------- */

static void test_bench_args(void **state) {
  (void)state;
  bench_args a;
  char err[256];
  assert_int_equal(bench_args_parse(ARGC("--config", "c", "--keys", "d"), ARGV("--config", "c", "--keys", "d"), &a,
                                    err, sizeof err),
                   0);
  assert_int_equal(a.clients, 1);
  assert_true(a.duration_s == 10 && a.warmup_s == 1);
  assert_int_equal(a.mix, BENCH_OPS_PUT);
  char *v1[] = {"bft-bench", "--config", "c", "--keys", "d", "--clients", "32", "--duration", "5", "--ops", "mixed",
                "--value-size", "16", "--keyspace", "4", "--total-ops", "500", "--history", "h", NULL};
  assert_int_equal(bench_args_parse(19, v1, &a, err, sizeof err), 0);
  assert_int_equal(a.clients, 32);
  assert_int_equal(a.mix, BENCH_OPS_MIXED);
  assert_int_equal(a.total_ops, 500);
  assert_true(a.warmup_s == 0); /* a counted run measures from the start */
  assert_string_equal(a.history, "h");
  char *v5[] = {"bft-bench", "--config", "c", "--keys", "d", "--key-prefix", "run7-", "--warmup", "0", NULL};
  assert_int_equal(bench_args_parse(9, v5, &a, err, sizeof err), 0);
  assert_string_equal(a.key_prefix, "run7-");
  assert_true(a.warmup_s == 0 && a.duration_s == 10);
  char *v2[] = {"bft-bench", "--config", "c", "--keys", "d", "--ops", "scan", NULL};
  assert_int_equal(bench_args_parse(7, v2, &a, err, sizeof err), -1);
  assert_non_null(strstr(err, "scan"));
  char *v3[] = {"bft-bench", "--config", "c", "--clients", "0", NULL};
  assert_int_equal(bench_args_parse(5, v3, &a, err, sizeof err), -1);
  char *v4[] = {"bft-bench", "--config", "c", NULL};
  assert_int_equal(bench_args_parse(3, v4, &a, err, sizeof err), -1);
  assert_non_null(strstr(err, "--keys"));
}

/* bft-client status: no key needed, no arguments, --replica allowed. */
static void test_cli_status(void **state) {
  (void)state;
  bft_client_cli_args a;
  char err[256];
  char *v1[] = {"bft-client", "--config", "c", "status", "--replica", "2", NULL};
  assert_int_equal(bft_client_cli_parse(6, v1, &a, err, sizeof err), 0);
  assert_int_equal(a.cmd, BFT_CLI_STATUS);
  assert_int_equal(a.replica, 2);
  char *v2[] = {"bft-client", "--config", "c", "status", "extra", NULL};
  assert_int_equal(bft_client_cli_parse(5, v2, &a, err, sizeof err), -1);
  char *v3[] = {"bft-client", "status", NULL};
  assert_int_equal(bft_client_cli_parse(2, v3, &a, err, sizeof err), -1);
  assert_non_null(strstr(err, "--config"));
}

/* Open loop, payload and their refusals. */
static void test_bench_open_loop_args(void **state) {
  (void)state;
  bench_args a;
  char err[256];
  char *v0[] = {"bft-bench", "--config", "c", "--keys", "d", NULL};
  assert_int_equal(bench_args_parse(5, v0, &a, err, sizeof err), 0);
  assert_true(a.rate == 0); /* closed loop by default */
  assert_int_equal(a.arrival, BENCH_ARRIVAL_POISSON);
  assert_int_equal(a.backlog, 100000);
  assert_false(a.payload_set);
  char *v1[] = {"bft-bench", "--config", "c", "--keys", "d", "--rate", "1500.5", "--arrival", "fixed",
                "--backlog", "0", "--payload", "0", NULL};
  assert_int_equal(bench_args_parse(13, v1, &a, err, sizeof err), 0);
  assert_true(a.rate == 1500.5);
  assert_int_equal(a.arrival, BENCH_ARRIVAL_FIXED);
  assert_int_equal(a.backlog, 0);
  assert_true(a.payload_set);
  assert_int_equal(a.value_size, 0);
  char *bad[][9] = {
      {"bft-bench", "--config", "c", "--keys", "d", "--rate", "0", NULL},
      {"bft-bench", "--config", "c", "--keys", "d", "--rate", "-5", NULL},
      {"bft-bench", "--config", "c", "--keys", "d", "--rate", "10", "--arrival", "burst"},
      {"bft-bench", "--config", "c", "--keys", "d", "--backlog", "10", NULL},  /* needs --rate */
      {"bft-bench", "--config", "c", "--keys", "d", "--arrival", "fixed", NULL},
      {"bft-bench", "--config", "c", "--keys", "d", "--payload", "99999", NULL},
      {"bft-bench", "--config", "c", "--keys", "d", "--payload", "8", "--history", "h"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int argc = 0;
    while (argc < 9 && bad[i][argc]) argc++;
    if (bench_args_parse(argc, bad[i], &a, err, sizeof err) != -1) fail_msg("accepted bad bench arguments #%zu", i);
  }
}

/* ---- histogram --------------------------------------------------------------------------- */

static void test_hist_exact_small(void **state) {
  (void)state;
  bench_hist h;
  bench_hist_init(&h);
  assert_int_equal(bench_hist_percentile(&h, 50), 0);
  for (uint64_t v = 1; v <= 100; v++) bench_hist_record(&h, v);
  assert_int_equal(bench_hist_percentile(&h, 50), 50);
  assert_int_equal(bench_hist_percentile(&h, 99), 99);
  assert_int_equal(bench_hist_percentile(&h, 100), 100);
  assert_int_equal(h.min, 1);
}

static void test_hist_relative_error(void **state) {
  (void)state;
  bench_hist *h = malloc(sizeof *h);
  bench_hist_init(h);
  for (uint64_t v = 1; v <= 100000; v++) bench_hist_record(h, v * 10); /* 10 us .. 1 s */
  double p50 = (double)bench_hist_percentile(h, 50), p99 = (double)bench_hist_percentile(h, 99);
  assert_true(p50 > 500000 * 0.99 && p50 < 500000 * 1.01);
  assert_true(p99 > 990000 * 0.99 && p99 < 990000 * 1.01);
  assert_int_equal(bench_hist_percentile(h, 100), 1000000);
  /* indices are monotonic and in range up to the largest value */
  uint32_t prev = 0;
  for (uint64_t v = 1; v < (1ull << 40); v = v * 3 / 2 + 1) {
    uint32_t i = bench_hist_index(v);
    assert_true(i >= prev && i < BENCH_HIST_BUCKETS);
    prev = i;
  }
  assert_true(bench_hist_index(UINT64_MAX) < BENCH_HIST_BUCKETS);
  free(h);
}

/* ---- linearizability checker ------------------------------------------------------------- */

static int lin(const char *const *lines, size_t n, char *why, size_t whylen) {
  net_lin_op ops[32];
  assert_true(n <= 32);
  for (size_t i = 0; i < n; i++) assert_int_equal(net_lin_parse_line(lines[i], &ops[i]), 0);
  return net_lin_check(ops, n, why, whylen);
}

static void test_lin_ok(void **state) {
  (void)state;
  char why[256];
  const char *h[] = {
      "0 get k - 1 2 notfound",      /* before any write */
      "0 put k a 3 10 ok",           /* a */
      "1 get k a 5 6 ok",            /* concurrent with the put: may see it */
      "1 put k b 12 20 ok",          /* b */
      "2 get k a 13 14 ok",          /* concurrent with b: may still see a */
      "2 get k b 21 22 ok",          /* after b */
      "0 put j x 1 100 error",       /* unknown outcome, never read */
      "3 get j - 150 160 notfound",  /* fine: the failed put may not have happened */
  };
  assert_int_equal(lin(h, sizeof h / sizeof h[0], why, sizeof why), 0);
}

static void test_lin_stale_read(void **state) {
  (void)state;
  char why[256];
  const char *h[] = {"0 put k a 1 2 ok", "0 put k b 3 4 ok", "1 get k a 5 6 ok"};
  assert_int_equal(lin(h, 3, why, sizeof why), 1);
}

static void test_lin_new_old_inversion(void **state) {
  (void)state;
  char why[256];
  /* b's put is concurrent with both gets, but once one get saw b a later one cannot see a */
  const char *h[] = {"0 put k a 1 2 ok", "0 put k b 3 20 ok", "1 get k b 4 5 ok", "2 get k a 6 7 ok"};
  assert_int_equal(lin(h, 4, why, sizeof why), 1);
}

static void test_lin_lost_write_and_phantom(void **state) {
  (void)state;
  char why[256];
  const char *lost[] = {"0 put k a 1 2 ok", "1 get k - 3 4 notfound"};
  assert_int_equal(lin(lost, 2, why, sizeof why), 1);
  const char *phantom[] = {"1 get k zz 3 4 ok"};
  assert_int_equal(lin(phantom, 1, why, sizeof why), 1);
  assert_non_null(strstr(why, "no put wrote"));
  const char *early[] = {"1 get k a 1 2 ok", "0 put k a 5 6 ok"};
  assert_int_equal(lin(early, 2, why, sizeof why), 1);
  const char *dup[] = {"0 put k a 1 2 ok", "1 put k a 3 4 ok"};
  assert_int_equal(lin(dup, 2, why, sizeof why), -1);
}

static void test_lin_parse(void **state) {
  (void)state;
  net_lin_op op;
  assert_int_equal(net_lin_parse_line("3 put key-1 c3-7.... 100 - error", &op), 0);
  assert_true(op.is_put && op.resp == NET_LIN_UNKNOWN);
  assert_int_equal(net_lin_parse_line("3 get key-1 - 100 - error", &op), 0);
  assert_true(op.failed);
  assert_int_equal(net_lin_parse_line("3 frob key-1 - 100 200 ok", &op), -1);
  assert_int_equal(net_lin_parse_line("3 get key-1 - 300 200 ok", &op), -1);
  assert_int_equal(net_lin_parse_line("garbage", &op), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quorum_needs_f_plus_1_distinct),
      cmocka_unit_test(test_quorum_mismatch_result_or_status),
      cmocka_unit_test(test_quorum_height_not_compared),
      cmocka_unit_test(test_quorum_stale_and_unknown),
      cmocka_unit_test(test_quorum_replaced_vote),
      cmocka_unit_test(test_quorum_rejection_quorum),
      cmocka_unit_test(test_reply_peek),
      cmocka_unit_test(test_next_seq),
      cmocka_unit_test(test_cli_ops),
      cmocka_unit_test(test_cli_ledger),
      cmocka_unit_test(test_cli_errors),
      cmocka_unit_test(test_bench_args),
      cmocka_unit_test(test_bench_open_loop_args),
      cmocka_unit_test(test_cli_status),
      cmocka_unit_test(test_hist_exact_small),
      cmocka_unit_test(test_hist_relative_error),
      cmocka_unit_test(test_lin_ok),
      cmocka_unit_test(test_lin_stale_read),
      cmocka_unit_test(test_lin_new_old_inversion),
      cmocka_unit_test(test_lin_lost_write_and_phantom),
      cmocka_unit_test(test_lin_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
