/* Unit tests of replica/admit.c: token buckets, the source table, the doubling refusal and its
 * decay, the one-line-per-interval warn limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "replica/admit.h"
#include "replica/rt_limits.h"

static struct sockaddr_storage v4(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  in->sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
  return ss;
}

static void test_bucket(void **st) {
  (void)st;
  rt_bucket b = {0};
  for (int i = 0; i < 4; i++) assert_int_equal(rt_bucket_take(&b, 4, 2, 1000), 1);
  assert_int_equal(rt_bucket_take(&b, 4, 2, 1000), 0);
  assert_int_equal(rt_bucket_has(&b, 4, 2, 1400), 0); /* 0.8 token */
  assert_int_equal(rt_bucket_has(&b, 4, 2, 1500), 1); /* 1 token, not taken */
  assert_int_equal(rt_bucket_take(&b, 4, 2, 1500), 1);
  assert_int_equal(rt_bucket_take(&b, 4, 2, 1500), 0);
  assert_int_equal(rt_bucket_take(&b, 4, 2, 100000), 1); /* refilled, capped at the burst */
  for (int i = 0; i < 3; i++) assert_int_equal(rt_bucket_take(&b, 4, 2, 100000), 1);
  assert_int_equal(rt_bucket_take(&b, 4, 2, 100000), 0);
}

static void test_sources(void **st) {
  (void)st;
  rt_sources t;
  assert_int_equal(rt_sources_init(&t), 0);
  struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2");
  rt_source *sa = rt_sources_get(&t, &a, 1), *sb = rt_sources_get(&t, &b, 1);
  assert_ptr_not_equal(sa, sb);
  assert_ptr_equal(rt_sources_get(&t, &a, 2), sa);
  sa->conns = 3;
  assert_int_equal(rt_sources_get(&t, &a, 3)->conns, 3);
  char name[64];
  rt_source_name(sa, name, sizeof name);
  assert_string_equal(name, "10.0.0.1");
  struct sockaddr_storage none;
  memset(&none, 0, sizeof none);
  assert_ptr_equal(rt_sources_get(&t, &none, 4), &t.tab[0]);
  /* many addresses: always an entry, never a crash (full probe windows share tab[0]) */
  for (uint32_t i = 0; i < 3 * RT_SOURCES_MAX; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    struct sockaddr_storage x = v4(ip);
    rt_source *s = rt_sources_get(&t, &x, 10 + i);
    assert_non_null(s);
    s->conns++;
  }
  rt_sources_free(&t);
}

static void test_backoff(void **st) {
  (void)st;
  rt_source s;
  memset(&s, 0, sizeof s);
  assert_int_equal(rt_source_refused(&s, 0), 0);
  rt_source_offend(&s, 1000);
  assert_int_equal(s.backoff_ms, RT_SOURCE_BACKOFF_MIN_MS);
  assert_int_equal(rt_source_refused(&s, 1000 + RT_SOURCE_BACKOFF_MIN_MS - 1), 1);
  assert_int_equal(rt_source_refused(&s, 1000 + RT_SOURCE_BACKOFF_MIN_MS), 0);
  uint64_t now = 1000;
  for (int i = 0; i < 20; i++) rt_source_offend(&s, ++now);
  assert_int_equal(s.backoff_ms, RT_SOURCE_BACKOFF_MAX_MS);
  rt_source_offend(&s, now + 10 * RT_SOURCE_BACKOFF_MAX_MS); /* a quiet spell: starts over */
  assert_int_equal(s.backoff_ms, RT_SOURCE_BACKOFF_MIN_MS);
}

static void test_warn(void **st) {
  (void)st;
  rt_source s;
  memset(&s, 0, sizeof s);
  uint64_t sup = 99;
  assert_int_equal(rt_source_warn(&s, 5, &sup), 1);
  assert_int_equal(sup, 0);
  for (int i = 0; i < 7; i++) assert_int_equal(rt_source_warn(&s, 6 + (uint64_t)i, &sup), 0);
  assert_int_equal(rt_source_warn(&s, 5 + RT_SOURCE_WARN_MS, &sup), 1);
  assert_int_equal(sup, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_bucket), cmocka_unit_test(test_sources),
                                     cmocka_unit_test(test_backoff), cmocka_unit_test(test_warn)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
