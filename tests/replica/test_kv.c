/* Unit tests of the key-value application: put/get/del/cas semantics (absent keys included),
 * store bounds, incremental state digest, snapshot and restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/kv.h"
#include "replica/kv_app.h"

typedef struct fixture {
  rt_kv kv;
  bft_app app;
  uint8_t *arena;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(rt_kv_init(&f->kv, 0, 0), 0);
  rt_kv_app(&f->app, &f->kv);
  f->arena = malloc(RT_APP_ARENA_BYTES(4));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rt_kv_free(&f->kv);
  free(f->arena);
  free(f);
  return 0;
}

/* Run one operation; returns its result (data valid until the next call). */
static bft_app_result run(fixture *f, uint8_t opcode, const char *key, const char *value, const char *expected) {
  bft_kv_op op = {.opcode = opcode, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key)};
  if (value) op.value = (const uint8_t *)value, op.value_len = (uint32_t)strlen(value);
  if (expected) op.expected = (const uint8_t *)expected, op.expected_len = (uint32_t)strlen(expected);
  uint8_t buf[256];
  int len = bft_kv_encode(&op, buf, sizeof buf);
  assert_true(len > 0);
  bft_app_op o = {.op = buf, .len = (uint32_t)len};
  bft_app_result r = {.data = f->arena};
  assert_int_equal(f->app.ops->execute(f->app.state, 1, &o, 1, &r), 0);
  return r;
}

static void assert_result(bft_app_result r, uint8_t status, const char *data) {
  assert_int_equal(r.status, status);
  assert_int_equal(r.len, strlen(data));
  assert_memory_equal(r.data, data, r.len);
}

static void test_put_get_del(void **state) {
  fixture *f = *state;
  assert_result(run(f, BFT_KV_GET, "a", NULL, NULL), BFT_KV_NOT_FOUND, "");
  assert_result(run(f, BFT_KV_PUT, "a", "1", NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "a", NULL, NULL), BFT_KV_OK, "1");
  assert_result(run(f, BFT_KV_PUT, "a", "two", NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "a", NULL, NULL), BFT_KV_OK, "two");
  assert_result(run(f, BFT_KV_PUT, "", "empty key", NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "", NULL, NULL), BFT_KV_OK, "empty key");
  assert_result(run(f, BFT_KV_PUT, "e", "", NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "e", NULL, NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_DEL, "a", NULL, NULL), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_DEL, "a", NULL, NULL), BFT_KV_NOT_FOUND, "");
  assert_result(run(f, BFT_KV_GET, "a", NULL, NULL), BFT_KV_NOT_FOUND, "");
  assert_int_equal(f->kv.count, 2);
}

static void test_cas(void **state) {
  fixture *f = *state;
  /* absent key: fails with an empty current value, and creates nothing */
  assert_result(run(f, BFT_KV_CAS, "k", "new", ""), BFT_KV_CAS_FAILED, "");
  assert_result(run(f, BFT_KV_GET, "k", NULL, NULL), BFT_KV_NOT_FOUND, "");
  run(f, BFT_KV_PUT, "k", "v1", NULL);
  assert_result(run(f, BFT_KV_CAS, "k", "v2", "wrong"), BFT_KV_CAS_FAILED, "v1");
  assert_result(run(f, BFT_KV_CAS, "k", "v2", "v"), BFT_KV_CAS_FAILED, "v1");
  assert_result(run(f, BFT_KV_CAS, "k", "v2", "v1"), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "k", NULL, NULL), BFT_KV_OK, "v2");
  run(f, BFT_KV_PUT, "z", "", NULL); /* present but empty: cas with "" expected succeeds */
  assert_result(run(f, BFT_KV_CAS, "z", "full", ""), BFT_KV_OK, "");
  assert_result(run(f, BFT_KV_GET, "z", NULL, NULL), BFT_KV_OK, "full");
}

static void test_bad_op(void **state) {
  fixture *f = *state;
  uint8_t junk[] = {9, 0, 0, 0, 0};
  bft_app_op o = {.op = junk, .len = sizeof junk};
  bft_app_result r = {.data = f->arena};
  f->app.ops->execute(f->app.state, 1, &o, 1, &r);
  assert_int_equal(r.status, BFT_KV_BAD_OP);
  uint8_t trailing[] = {BFT_KV_GET, 1, 0, 0, 0, 'a', 'x'};
  o = (bft_app_op){.op = trailing, .len = sizeof trailing};
  f->app.ops->execute(f->app.state, 1, &o, 1, &r);
  assert_int_equal(r.status, BFT_KV_BAD_OP);
  assert_int_equal(f->kv.count, 0);
}

static void test_bounds(void **state) {
  rt_kv kv;
  bft_app app;
  uint8_t *arena = malloc(RT_APP_ARENA_BYTES(1));
  assert_int_equal(rt_kv_init(&kv, 3, 0), 0);
  rt_kv_app(&app, &kv);
  fixture f = {.kv = kv, .app = app, .arena = arena};
  f.app.state = &f.kv;
  assert_result(run(&f, BFT_KV_PUT, "1", "x", NULL), BFT_KV_OK, "");
  assert_result(run(&f, BFT_KV_PUT, "2", "x", NULL), BFT_KV_OK, "");
  assert_result(run(&f, BFT_KV_PUT, "3", "x", NULL), BFT_KV_OK, "");
  bft_app_result r = run(&f, BFT_KV_PUT, "4", "x", NULL);
  assert_int_equal(r.status, BFT_KV_REJECTED);
  assert_result(run(&f, BFT_KV_PUT, "3", "replace is fine", NULL), BFT_KV_OK, "");
  assert_int_equal(f.kv.count, 3);
  rt_kv_free(&f.kv);
  free(arena);
  (void)state;
}

static void digest_of(fixture *f, uint8_t out[32]) { f->app.ops->digest(f->app.state, out); }

static void test_digest(void **state) {
  fixture *f = *state;
  fixture *g;
  setup((void **)&g);
  uint8_t a[32], b[32], empty[32];
  digest_of(f, empty);
  /* the same final contents reached by different paths give the same digest */
  run(f, BFT_KV_PUT, "x", "1", NULL);
  run(f, BFT_KV_PUT, "y", "2", NULL);
  run(g, BFT_KV_PUT, "y", "0", NULL);
  run(g, BFT_KV_PUT, "x", "1", NULL);
  run(g, BFT_KV_CAS, "y", "2", "0");
  digest_of(f, a);
  digest_of(g, b);
  assert_memory_equal(a, b, 32);
  /* one differing value gives a different digest */
  run(g, BFT_KV_PUT, "y", "3", NULL);
  digest_of(g, b);
  assert_memory_not_equal(a, b, 32);
  /* key/value boundary matters: ("ab","c") differs from ("a","bc") */
  run(g, BFT_KV_DEL, "x", NULL, NULL);
  run(g, BFT_KV_DEL, "y", NULL, NULL);
  digest_of(g, b);
  assert_memory_equal(b, empty, 32);
  run(g, BFT_KV_PUT, "ab", "c", NULL);
  digest_of(g, a);
  run(g, BFT_KV_DEL, "ab", NULL, NULL);
  run(g, BFT_KV_PUT, "a", "bc", NULL);
  digest_of(g, b);
  assert_memory_not_equal(a, b, 32);
  /* reads do not change the digest */
  run(g, BFT_KV_GET, "a", NULL, NULL);
  run(g, BFT_KV_GET, "missing", NULL, NULL);
  digest_of(g, a);
  assert_memory_equal(a, b, 32);
  teardown((void **)&g);
}

static void test_many_keys_and_deletes(void **state) {
  fixture *f = *state;
  char k[32], v[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    snprintf(v, sizeof v, "val-%d", i * 7);
    assert_int_equal(run(f, BFT_KV_PUT, k, v, NULL).status, BFT_KV_OK);
  }
  for (int i = 0; i < 5000; i += 2) {
    snprintf(k, sizeof k, "key-%d", i);
    assert_int_equal(run(f, BFT_KV_DEL, k, NULL, NULL).status, BFT_KV_OK);
  }
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    snprintf(v, sizeof v, "val-%d", i * 7);
    bft_app_result r = run(f, BFT_KV_GET, k, NULL, NULL);
    if (i % 2) assert_result(r, BFT_KV_OK, v);
    else assert_int_equal(r.status, BFT_KV_NOT_FOUND);
  }
  assert_int_equal(f->kv.count, 2500);
}

static void test_snapshot_restore(void **state) {
  fixture *f = *state;
  fixture *g;
  setup((void **)&g);
  char k[32];
  for (int i = 0; i < 300; i++) {
    snprintf(k, sizeof k, "k%d", i);
    run(f, BFT_KV_PUT, k, k, NULL);
  }
  uint8_t *snap;
  size_t len;
  assert_int_equal(bft_app_snapshot_all(&f->app, &snap, &len), 0);
  run(g, BFT_KV_PUT, "stale", "gone after restore", NULL);
  assert_int_equal(bft_app_restore_all(&g->app, 300, snap, len), 0);
  uint8_t a[32], b[32];
  digest_of(f, a);
  digest_of(g, b);
  assert_memory_equal(a, b, 32);
  assert_result(run(g, BFT_KV_GET, "k123", NULL, NULL), BFT_KV_OK, "k123");
  assert_int_equal(run(g, BFT_KV_GET, "stale", NULL, NULL).status, BFT_KV_NOT_FOUND);
  /* canonical: a second snapshot of the restored store is byte-identical */
  uint8_t *snap2;
  size_t len2;
  assert_int_equal(bft_app_snapshot_all(&g->app, &snap2, &len2), 0);
  assert_int_equal(len, len2);
  assert_memory_equal(snap, snap2, len);
  /* a damaged snapshot is refused and leaves the store empty */
  snap[len - 1] ^= 1;
  snap[5] ^= 0x40; /* count */
  assert_int_not_equal(bft_app_restore_all(&g->app, 300, snap, len), 0);
  assert_int_equal(g->kv.count, 0);
  free(snap);
  free(snap2);
  /* restoring no chunks at all gives the initial, empty store */
  assert_int_equal(bft_app_restore_all(&f->app, 0, NULL, 0), 0);
  assert_int_equal(f->kv.count, 0);
  teardown((void **)&g);
}

/* The snapshot streams in chunks of whatever size the caller asks for, and a query is a stale
 * get answered from the current state. */
static void test_chunks_and_query(void **state) {
  fixture *f = *state;
  char k[32];
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "key%03d", i);
    run(f, BFT_KV_PUT, k, "v", NULL);
  }
  void *cur;
  assert_int_equal(f->app.ops->snapshot_begin(f->app.state, &cur), 0);
  run(f, BFT_KV_PUT, "later", "not in the snapshot", NULL);
  uint8_t buf[1 << 14], chunk[7];
  size_t n = 0;
  int done = 0, chunks = 0;
  while (!done) {
    uint32_t l;
    assert_int_equal(f->app.ops->snapshot_next(f->app.state, cur, chunk, sizeof chunk, &l, &done), 0);
    assert_true(l <= sizeof chunk && n + l <= sizeof buf);
    memcpy(buf + n, chunk, l);
    n += l;
    chunks++;
  }
  f->app.ops->snapshot_end(f->app.state, cur);
  assert_true(chunks > 100);
  fixture *g;
  setup((void **)&g);
  assert_int_equal(g->app.ops->restore_begin(g->app.state, 100), 0);
  for (size_t off = 0; off < n; off += 5)
    assert_int_equal(g->app.ops->restore_chunk(g->app.state, buf + off, (uint32_t)(n - off < 5 ? n - off : 5)), 0);
  assert_int_equal(g->app.ops->restore_end(g->app.state), 0);
  assert_int_equal(g->kv.count, 100);
  assert_int_equal(run(g, BFT_KV_GET, "later", NULL, NULL).status, BFT_KV_NOT_FOUND);
  bft_kv_op op = {.opcode = BFT_KV_GET, .key = (const uint8_t *)"key042", .key_len = 6};
  uint8_t q[64];
  int ql = bft_kv_encode(&op, q, sizeof q);
  bft_app_result r = {.data = g->arena};
  assert_int_equal(g->app.ops->query(g->app.state, q, (uint32_t)ql, &r), 0);
  assert_result(r, BFT_KV_OK, "v");
  op.opcode = BFT_KV_DEL;
  ql = bft_kv_encode(&op, q, sizeof q);
  assert_int_equal(g->app.ops->query(g->app.state, q, (uint32_t)ql, &r), 0);
  assert_int_equal(r.status, BFT_KV_BAD_OP);
  assert_int_equal(g->kv.count, 100);
  teardown((void **)&g);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_op, setup, teardown),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_keys_and_deletes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chunks_and_query, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
