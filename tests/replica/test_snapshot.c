/* Snapshots (replica/snapshot.c): capture and apply give back the same state digest inputs;
 * a manifest names every chunk; a certificate needs f+1 distinct valid signatures over the
 * statement it carries; the store writes crash-consistently, skips a damaged newest file and
 * prunes; the injected sync failure (BFT_TEST_FAIL_SYNC) reports ENOSPC. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "protocols/kv.h"
#include "replica/kv_app.h"
#include "replica/snapshot.h"

#define N 4

typedef struct fixture {
  bft_cluster cl;
  bft_keypair rk[N];
  rt_kv kv;
  bft_app app;
  rt_sessions ss;
  char dir[64];
} fixture;

static int setup(void **state) {
  fixture *x = calloc(1, sizeof *x);
  assert_int_equal(bft_crypto_init(), 0);
  snprintf(x->cl.name, sizeof x->cl.name, "snap-test");
  bft_cluster_id_from_name(x->cl.id, x->cl.name);
  x->cl.n = N;
  x->cl.f = 1;
  for (uint32_t i = 0; i < N; i++) {
    bft_keypair_generate(&x->rk[i]);
    memcpy(x->cl.replicas[i].pk, x->rk[i].pk, BFT_PK_LEN);
  }
  x->cl.nclients = 3;
  for (uint32_t i = 0; i < 3; i++) {
    bft_keypair k;
    bft_keypair_generate(&k);
    memcpy(x->cl.clients[i].pk, k.pk, BFT_PK_LEN);
  }
  assert_int_equal(rt_kv_init(&x->kv, 0, 0), 0);
  rt_kv_app(&x->app, &x->kv);
  assert_int_equal(rt_sessions_init(&x->ss, &x->cl, 0), 0);
  snprintf(x->dir, sizeof x->dir, "/tmp/bft-snap-test-XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fixture *x = *state;
  rt_kv_free(&x->kv);
  rt_sessions_free(&x->ss);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

static void put(fixture *x, const char *k, const char *v) {
  bft_kv_op op = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)k, .key_len = (uint32_t)strlen(k),
                  .value = (const uint8_t *)v, .value_len = (uint32_t)strlen(v)};
  uint8_t b[256];
  int l = bft_kv_encode(&op, b, sizeof b);
  static const uint8_t client[BFT_APP_KEY_LEN];
  bft_app_op o = {.client_key = client, .client = 0, .seq = 1, .op = b, .len = (uint32_t)l};
  static uint8_t room[BFT_APP_MAX_RESULT];
  bft_app_result r = {.data = room};
  assert_int_equal(x->app.ops->execute(x->app.state, 1, &o, 1, &r), 0);
}

static void digests(fixture *x, uint8_t a[32], uint8_t s[32]) {
  x->app.ops->digest(x->app.state, a);
  rt_sessions_digest(&x->ss, s);
}

static void test_capture_apply_round_trip(void **state) {
  fixture *x = *state;
  for (int i = 0; i < 200; i++) {
    char k[16], v[16];
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "v%d", i * 7);
    put(x, k, v);
  }
  rt_sessions_advance(&x->ss, 1, 42, 9);
  assert_int_equal(rt_sessions_set_result(&x->ss, 1, 42, 0, (const uint8_t *)"ok", 2), 0);
  uint8_t a1[32], s1[32], bh[32] = {1}, sd[32] = {2};
  digests(x, a1, s1);
  rt_snap snap;
  assert_int_equal(rt_snap_capture(&snap, &x->app, &x->ss, 16, bh, sd), 0);
  /* a second capture of the same state is byte-identical (what makes attestations match) */
  rt_snap again;
  assert_int_equal(rt_snap_capture(&again, &x->app, &x->ss, 16, bh, sd), 0);
  assert_int_equal(snap.payload_len, again.payload_len);
  assert_memory_equal(snap.payload, again.payload, snap.payload_len);
  assert_memory_equal(snap.st.snap_digest, again.st.snap_digest, 32);
  rt_snap_free(&again);
  put(x, "k1", "changed"); /* diverge, then restore */
  rt_sessions_advance(&x->ss, 0, 5, 10);
  assert_int_equal(rt_snap_apply(&snap, &x->app, &x->ss, &x->cl), 0);
  uint8_t a2[32], s2[32];
  digests(x, a2, s2);
  assert_memory_equal(a1, a2, 32);
  assert_memory_equal(s1, s2, 32);
  assert_int_equal(x->ss.s[1].last_seq, 42);
  assert_int_equal(x->ss.s[1].cached, 1); /* our cached reply came back (local part) */
  assert_int_equal(x->ss.s[0].last_seq, 0);
  /* the manifest names each chunk */
  rt_snap_stmt st;
  uint64_t plen;
  uint32_t nch;
  const uint8_t *cd;
  assert_int_equal(rt_snap_manifest_decode(snap.manifest, snap.manifest_len, &st, &plen, &nch, &cd), 0);
  assert_int_equal(plen, snap.payload_len);
  assert_int_equal(nch, 1);
  uint8_t d[32];
  bft_digest(d, snap.payload, (size_t)snap.payload_len);
  assert_memory_equal(d, cd, 32);
  assert_memory_equal(st.snap_digest, snap.st.snap_digest, 32);
  /* a manifest with a chunk digest changed names another snapshot */
  snap.manifest[snap.manifest_len - 1] ^= 1;
  assert_int_equal(rt_snap_manifest_decode(snap.manifest, snap.manifest_len, &st, &plen, &nch, &cd), 0);
  assert_memory_not_equal(st.snap_digest, snap.st.snap_digest, 32);
  rt_snap_free(&snap);
}

static int verify(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  fixture *x = ctx;
  return bft_verify(x->cl.replicas[signer].pk, x->cl.id, RT_SNAP_TAG, msg, len, sig);
}

static void sign_att(fixture *x, const rt_snap_stmt *st, uint32_t i, uint8_t sig[BFT_SIG_LEN]) {
  uint8_t m[8 + 3 * 32 + 4];
  rt_snap_stmt_encode(st, i, m);
  assert_int_equal(bft_sign(&x->rk[i], x->cl.id, RT_SNAP_TAG, m, sizeof m, sig), 0);
}

static void test_certificate_needs_f_plus_1(void **state) {
  fixture *x = *state;
  rt_snap_stmt st = {.height = 64};
  memset(st.block_hash, 3, 32);
  memset(st.state_digest, 4, 32);
  memset(st.snap_digest, 5, 32);
  uint8_t sigs[64][BFT_SIG_LEN];
  for (uint32_t i = 0; i < N; i++) sign_att(x, &st, i, sigs[i]);
  uint8_t cert[RT_SNAP_CERT_MAX];
  rt_snap_stmt got;
  int n = rt_snap_cert_encode(&st, (1u << 0) | (1u << 2), (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  assert_true(n > 0);
  assert_int_equal(rt_snap_cert_verify(cert, (uint32_t)n, N, 1, verify, x, &got), 0);
  assert_memory_equal(&got, &st, sizeof st);
  /* one signature is not enough */
  n = rt_snap_cert_encode(&st, 1u << 1, (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  assert_int_not_equal(rt_snap_cert_verify(cert, (uint32_t)n, N, 1, verify, x, &got), 0);
  /* a signature over another statement (replica 3 signed another snapshot digest) fails */
  rt_snap_stmt other = st;
  other.snap_digest[0] ^= 1;
  sign_att(x, &other, 3, sigs[3]);
  n = rt_snap_cert_encode(&st, (1u << 0) | (1u << 3), (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  assert_int_not_equal(rt_snap_cert_verify(cert, (uint32_t)n, N, 1, verify, x, &got), 0);
  /* the same replica twice does not count twice (hand-made duplicate) */
  n = rt_snap_cert_encode(&st, 1u << 0, (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  uint8_t dup[RT_SNAP_CERT_MAX];
  memcpy(dup, cert, (size_t)n);
  dup[8 + 96] = 2; /* count */
  memcpy(dup + n, cert + 8 + 96 + 4, 4 + BFT_SIG_LEN);
  assert_int_not_equal(rt_snap_cert_verify(dup, (uint32_t)n + 4 + BFT_SIG_LEN, N, 1, verify, x, &got), 0);
  /* any flipped byte of a valid certificate fails */
  n = rt_snap_cert_encode(&st, (1u << 1) | (1u << 2), (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  for (int i = 0; i < n; i += 7) {
    cert[i] ^= 0x10;
    assert_int_not_equal(rt_snap_cert_verify(cert, (uint32_t)n, N, 1, verify, x, &got), 0);
    cert[i] ^= 0x10;
  }
  assert_int_equal(rt_snap_cert_verify(cert, (uint32_t)n, N, 1, verify, x, &got), 0);
}

static void test_store_newest_intact_and_prune(void **state) {
  fixture *x = *state;
  rt_snap_store store = {.dir = x->dir};
  uint8_t bh[32] = {0}, sd[32] = {0};
  for (uint64_t h = 8; h <= 24; h += 8) {
    put(x, "height", h == 8 ? "8" : h == 16 ? "16" : "24");
    rt_snap s;
    assert_int_equal(rt_snap_capture(&s, &x->app, &x->ss, h, bh, sd), 0);
    assert_int_equal(rt_snap_store_write(&store, &s), 0);
    rt_snap_free(&s);
  }
  rt_snap s;
  assert_int_equal(rt_snap_store_load(&store, UINT64_MAX, &s), 0);
  assert_int_equal(s.st.height, 24);
  rt_snap_free(&s);
  assert_int_equal(rt_snap_store_load(&store, 20, &s), 0); /* at most a height */
  assert_int_equal(s.st.height, 16);
  rt_snap_free(&s);
  /* a damaged newest file is skipped: the next one is used */
  char path[256];
  snprintf(path, sizeof path, "%s/snap-%020d", x->dir, 24);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 40, SEEK_SET), 0);
  assert_int_equal(fputc(0xEE, f), 0xEE);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rt_snap_store_load(&store, UINT64_MAX, &s), 0);
  assert_int_equal(s.st.height, 16);
  rt_snap_free(&s);
  rt_snap_store_prune(&store, 16, 0);
  assert_int_equal(rt_snap_store_load(&store, 15, &s), 1); /* 8 is gone */
  assert_int_equal(access(path, F_OK), -1);                  /* 24 too */
}

static void test_injected_sync_failure(void **state) {
  fixture *x = *state;
  char p[128];
  snprintf(p, sizeof p, "%s/snap", x->dir);
  setenv(RT_FAIL_SYNC_ENV, "snap:2", 1);
  rt_snap_store store = {.dir = x->dir, .fail_sync_at = rt_fail_sync_at(p)};
  unsetenv(RT_FAIL_SYNC_ENV);
  assert_int_equal(store.fail_sync_at, 2);
  uint8_t bh[32] = {0}, sd[32] = {0};
  rt_snap s;
  assert_int_equal(rt_snap_capture(&s, &x->app, &x->ss, 8, bh, sd), 0);
  assert_int_equal(rt_snap_store_write(&store, &s), 0);
  s.st.height = 16;
  assert_int_equal(rt_snap_store_write(&store, &s), BFT_E_IO);
  assert_int_equal(store.last_errno, ENOSPC);
  rt_snap_free(&s);
  rt_snap got; /* the failed write left nothing behind: 8 is still the newest */
  assert_int_equal(rt_snap_store_load(&store, UINT64_MAX, &got), 0);
  assert_int_equal(got.st.height, 8);
  rt_snap_free(&got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_capture_apply_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_certificate_needs_f_plus_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_newest_intact_and_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_injected_sync_failure, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
