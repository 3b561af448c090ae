/* Unit tests of the metrics module: histogram bucketing, the Prometheus text exposition writer
 * (families, labels and their escaping, cumulative histogram buckets, the overflow bound), the
 * phase-latency bookkeeping, the HTTP request-head parser of /metrics, and the signed status
 * codec of bft-client status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/status.h"
#include "replica/metrics.h"

/* ---- histograms --------------------------------------------------------------------------- */

static void test_hist_buckets(void **state) {
  (void)state;
  rt_hist h;
  rt_hist_init(&h, &RT_HIST_BATCH); /* 0, 1, 2, 4, ..., 512 */
  rt_hist_observe(&h, 0);
  rt_hist_observe(&h, 1);
  rt_hist_observe(&h, 3);   /* le 4 */
  rt_hist_observe(&h, 4);   /* le 4: bounds are inclusive */
  rt_hist_observe(&h, 513); /* +Inf */
  assert_int_equal(h.count, 5);
  assert_int_equal(h.sum, 521);
  assert_int_equal(h.bucket[0], 1);
  assert_int_equal(h.bucket[1], 1);
  assert_int_equal(h.bucket[2], 0);
  assert_int_equal(h.bucket[3], 2);
  assert_int_equal(h.bucket[RT_HIST_BATCH.n], 1);
}

/* ---- exposition ----------------------------------------------------------------------------- */

static void test_prom_family_and_samples(void **state) {
  (void)state;
  char buf[1024];
  rt_prom p;
  rt_prom_init(&p, buf, sizeof buf);
  rt_prom_family(&p, "bft_x_total", "counter", "Things\ncounted \\ here");
  const char *l[] = {"kind", "a\"b\\c\nd", "peer", "3", NULL};
  rt_prom_sample_u64(&p, "bft_x_total", l, 18446744073709551615ull);
  rt_prom_sample(&p, "bft_y", NULL, 0.5);
  assert_false(p.overflow);
  assert_string_equal(buf, "# HELP bft_x_total Things\\ncounted \\\\ here\n"
                           "# TYPE bft_x_total counter\n"
                           "bft_x_total{kind=\"a\\\"b\\\\c\\nd\",peer=\"3\"} 18446744073709551615\n"
                           "bft_y 0.5\n");
  assert_int_equal(p.len, strlen(buf));
}

static void test_prom_histogram(void **state) {
  (void)state;
  static const rt_hist_spec spec = {2, {1000, 5000}};
  rt_hist h;
  rt_hist_init(&h, &spec);
  rt_hist_observe(&h, 500);
  rt_hist_observe(&h, 1000);
  rt_hist_observe(&h, 4000);
  rt_hist_observe(&h, 9000);
  char buf[1024];
  rt_prom p;
  rt_prom_init(&p, buf, sizeof buf);
  const char *l[] = {"file", "wal", NULL};
  rt_prom_histogram(&p, "lat_seconds", l, &h, 1e-6);
  assert_false(p.overflow);
  assert_string_equal(buf, "lat_seconds_bucket{file=\"wal\",le=\"0.001\"} 2\n"
                           "lat_seconds_bucket{file=\"wal\",le=\"0.005\"} 3\n"
                           "lat_seconds_bucket{file=\"wal\",le=\"+Inf\"} 4\n"
                           "lat_seconds_sum{file=\"wal\"} 0.0145\n"
                           "lat_seconds_count{file=\"wal\"} 4\n");
  /* Without labels, le is the only one. */
  rt_prom_init(&p, buf, sizeof buf);
  rt_prom_histogram(&p, "n", NULL, &h, 1.0);
  assert_non_null(strstr(buf, "n_bucket{le=\"1000\"} 2\n"));
  assert_non_null(strstr(buf, "n_sum 14500\n"));
}

static void test_prom_overflow_is_sticky(void **state) {
  (void)state;
  char buf[40];
  rt_prom p;
  rt_prom_init(&p, buf, sizeof buf);
  rt_prom_sample_u64(&p, "a_metric_with_a_long_name", NULL, 1);
  assert_false(p.overflow);
  size_t before = p.len;
  rt_prom_sample_u64(&p, "another_metric_too_long", NULL, 2);
  assert_true(p.overflow);
  rt_prom_sample_u64(&p, "x", NULL, 3); /* would fit, but the page is already cut */
  assert_int_equal(p.len, before);
  assert_string_equal(buf, "a_metric_with_a_long_name 1\n");
}

/* ---- phase latencies ------------------------------------------------------------------------ */

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now;
}

static void test_phase_latencies(void **state) {
  (void)state;
  rt_metrics m;
  assert_int_equal(rt_metrics_init(&m, 3), 0);
  m.now_us = fake_clock;
  fake_now = 1000;
  rt_metrics_admitted(&m, 0, 7);
  fake_now = 1500;
  rt_metrics_admitted(&m, 1, 9);
  rt_metrics_admitted(&m, 5, 1); /* out of range: ignored */
  fake_now = 4000;
  /* committed at 3000, executed at 4000: client 0 seq 7 (admitted 1000), client 1 seq 8 (an
   * older seq than the one admitted: not timed), client 2 (never admitted here: not timed) */
  uint32_t cl[] = {0, 1, 2};
  uint64_t sq[] = {7, 8, 1};
  rt_metrics_executed(&m, 3000, 3, cl, sq);
  assert_int_equal(m.commit_to_exec.count, 1);
  assert_int_equal(m.commit_to_exec.sum, 1000);
  assert_int_equal(m.batch_size.count, 1);
  assert_int_equal(m.batch_size.sum, 3);
  assert_int_equal(m.req_to_commit.count, 1);
  assert_int_equal(m.req_to_commit.sum, 2000);
  /* Timed once: the same request executed again (a repeat) adds nothing. */
  rt_metrics_executed(&m, 3000, 1, cl, sq);
  assert_int_equal(m.req_to_commit.count, 1);
  rt_metrics_free(&m);
}

/* ---- HTTP request heads --------------------------------------------------------------------- */

static int parse(const char *s, rt_http_request *rq) { return rt_http_parse(s, strlen(s), rq); }

static void test_http_valid(void **state) {
  (void)state;
  rt_http_request rq;
  const char *r = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: curl/7.88\r\nAccept: */*\r\n\r\n";
  assert_int_equal(parse(r, &rq), RT_HTTP_OK);
  assert_string_equal(rq.method, "GET");
  assert_string_equal(rq.target, "/metrics");
  assert_int_equal(rq.minor, 1);
  assert_int_equal(rq.head_len, strlen(r));
  assert_false(rq.has_body);
  /* HTTP/1.0, no headers, bare LF line ends */
  assert_int_equal(parse("GET /metrics?x=1 HTTP/1.0\n\n", &rq), RT_HTTP_OK);
  assert_string_equal(rq.target, "/metrics?x=1");
  assert_int_equal(rq.minor, 0);
  /* a body is noticed (the server refuses it) */
  assert_int_equal(parse("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n", &rq), RT_HTTP_OK);
  assert_true(rq.has_body);
  assert_int_equal(parse("GET /metrics HTTP/1.1\r\ncontent-length: 0\r\n\r\n", &rq), RT_HTTP_OK);
  assert_false(rq.has_body);
  assert_int_equal(parse("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &rq), RT_HTTP_OK);
  assert_true(rq.has_body);
}

static void test_http_incomplete(void **state) {
  (void)state;
  rt_http_request rq;
  const char *full = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  /* Every proper prefix asks for more. */
  for (size_t n = 0; n < strlen(full); n++) assert_int_equal(rt_http_parse(full, n, &rq), RT_HTTP_INCOMPLETE);
  assert_int_equal(rt_http_parse(full, strlen(full), &rq), RT_HTTP_OK);
}

static void test_http_malformed(void **state) {
  (void)state;
  rt_http_request rq;
  const char *bad[] = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /metrics\r\n\r\n",
      "GET  /metrics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/2.0\r\n\r\n",
      "GET /metrics HTTP/1.1 \r\n\r\n",
      "GET /metrics HTTP/1.11\r\n\r\n",
      "GET /met rics HTTP/1.1\r\n\r\n",
      "G(T /metrics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET /metrics HTTP/1.1\r\n: value\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nBad Name: v\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: a\x01\r\n\r\n",
      "GET /metrics HTTP/1.1\rHost: a\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nContent-Length: \r\n\r\n",
      "\r\n\r\n",
      "\x16\x03\x01\x02\x01\xfc\x03\x03\r\n\r\n", /* the start of a TLS ClientHello */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (parse(bad[i], &rq) != RT_HTTP_BAD) fail_msg("accepted malformed request #%zu", i);
  }
  /* A NUL anywhere in the head. */
  const char nul[] = "GET /metrics HTTP/1.1\r\nHost: a\0b\r\n\r\n";
  assert_int_equal(rt_http_parse(nul, sizeof nul - 1, &rq), RT_HTTP_BAD);
  /* An over-long target. */
  char longt[600];
  snprintf(longt, sizeof longt, "GET /%0400d HTTP/1.1\r\n\r\n", 0);
  assert_int_equal(parse(longt, &rq), RT_HTTP_BAD);
}

static void test_http_too_large(void **state) {
  (void)state;
  rt_http_request rq;
  size_t n = RT_HTTP_MAX_REQUEST + 100;
  char *big = malloc(n + 1);
  int k = snprintf(big, n + 1, "GET /metrics HTTP/1.1\r\nX-Pad: ");
  memset(big + k, 'a', n - (size_t)k);
  big[n] = '\0';
  /* No blank line within the bound: refused once the bound is reached, incomplete before. */
  assert_int_equal(rt_http_parse(big, RT_HTTP_MAX_REQUEST - 1, &rq), RT_HTTP_INCOMPLETE);
  assert_int_equal(rt_http_parse(big, RT_HTTP_MAX_REQUEST, &rq), RT_HTTP_TOO_LARGE);
  assert_int_equal(rt_http_parse(big, n, &rq), RT_HTTP_TOO_LARGE);
  free(big);
}

/* ---- signed status ---------------------------------------------------------------------------- */

static void test_status_codec(void **state) {
  (void)state;
  assert_int_equal(bft_crypto_init(), 0);
  bft_keypair kp, other;
  assert_int_equal(bft_keypair_generate(&kp), 0);
  assert_int_equal(bft_keypair_generate(&other), 0);
  uint8_t cid[BFT_CLUSTER_ID_LEN];
  memset(cid, 7, sizeof cid);
  bft_status st = {.replica = 2, .view = 5, .height = 100, .leader = 1, .changing_view = 1, .view_changes = 3,
                   .committed = 99, .batch_max = 400, .window = 32, .peers_up = 3, .pool = 17,
                   .unsafe_no_fsync = 1};
  snprintf(st.protocol, sizeof st.protocol, "hotstuff");
  memset(st.nonce, 0xab, sizeof st.nonce);
  memset(st.head_hash, 0xcd, sizeof st.head_hash);
  uint8_t buf[BFT_STATUS_MAX_BYTES];
  int len = bft_status_encode(&st, &kp, cid, buf, sizeof buf);
  assert_true(len > 0);
  bft_status got;
  assert_int_equal(bft_status_decode(buf, (uint32_t)len, kp.pk, cid, &got), 0);
  assert_string_equal(got.protocol, "hotstuff");
  assert_int_equal(got.replica, 2);
  assert_int_equal(got.view, 5);
  assert_int_equal(got.committed, 99);
  assert_int_equal(got.batch_max, 400);
  assert_int_equal(got.pool, 17);
  assert_int_equal(got.unsafe_no_fsync, 1);
  assert_int_equal(got.protocol_only, 0);
  assert_memory_equal(got.nonce, st.nonce, sizeof st.nonce);
  assert_memory_equal(got.head_hash, st.head_hash, sizeof st.head_hash);
  /* another key, another cluster, a flipped bit, every proper prefix, a trailing byte */
  assert_int_equal(bft_status_decode(buf, (uint32_t)len, other.pk, cid, &got), BFT_E_BAD_SIG);
  uint8_t cid2[BFT_CLUSTER_ID_LEN];
  memset(cid2, 8, sizeof cid2);
  assert_int_equal(bft_status_decode(buf, (uint32_t)len, kp.pk, cid2, &got), BFT_E_BAD_SIG);
  for (int i = 0; i < len; i++) {
    buf[i] ^= 0x10;
    assert_int_not_equal(bft_status_decode(buf, (uint32_t)len, kp.pk, cid, &got), 0);
    buf[i] ^= 0x10;
  }
  for (int n = 0; n < len; n++) assert_int_not_equal(bft_status_decode(buf, (uint32_t)n, kp.pk, cid, &got), 0);
  buf[len] = 0;
  assert_int_equal(bft_status_decode(buf, (uint32_t)len + 1, kp.pk, cid, &got), BFT_E_TRAILING);
  assert_int_equal(bft_status_encode(&st, &kp, cid, buf, (uint32_t)len - 1), BFT_E_FULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hist_buckets),         cmocka_unit_test(test_prom_family_and_samples),
      cmocka_unit_test(test_prom_histogram),       cmocka_unit_test(test_prom_overflow_is_sticky),
      cmocka_unit_test(test_phase_latencies),      cmocka_unit_test(test_http_valid),
      cmocka_unit_test(test_http_incomplete),      cmocka_unit_test(test_http_malformed),
      cmocka_unit_test(test_http_too_large),       cmocka_unit_test(test_status_codec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
