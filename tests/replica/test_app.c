/* Unit tests of the application plumbing: divergence detection over signed state digests
 * (attest.c: the f faulty replicas cannot make a correct one stop, f+1 other digests do), and
 * the application socket (app_socket.c against app_server.c serving the key-value store: one
 * EXECUTE per batch gives the same results and digest as the embedded store, snapshot and
 * restore stream through it; an application that answers garbage or dies makes the call fail
 * with a line that says so). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "protocols/kv.h"
#include "replica/app_proto.h"
#include "replica/app_socket.h"
#include "replica/attest.h"
#include "replica/kv_app.h"

/* ---- attest ---------------------------------------------------------------------------------- */

static void fill(uint8_t d[32], uint8_t v) { memset(d, v, 32); }

static void test_attest_tolerates_f(void **state) {
  rt_attest a;
  assert_int_equal(rt_attest_init(&a, 4, 1, 0), 0);
  uint8_t ours[32], other[32];
  fill(ours, 1);
  fill(other, 2);
  assert_int_equal(rt_attest_own(&a, 1, ours, 0), 0);
  assert_int_equal(rt_attest_peer(&a, 1, 1, 1, other), 0); /* one faulty (or broken) peer: tolerated */
  assert_int_equal(rt_attest_peer(&a, 1, 1, 1, other), 0); /* the same peer again counts once */
  assert_int_equal(rt_attest_peer(&a, 2, 1, 1, ours), 0);
  assert_int_equal(a.diverged, 0);
  assert_int_equal(a.mismatches, 2);
  rt_attest_free(&a);
}

static void test_attest_diverges(void **state) {
  rt_attest a;
  assert_int_equal(rt_attest_init(&a, 4, 1, 3), 0);
  uint8_t ours[32], d[3 * 32];
  fill(ours, 9);
  for (int i = 0; i < 3; i++) fill(d + 32 * i, (uint8_t)(20 + i));
  /* peers ahead of us first: heights 5..7 from replicas 0 and 1, all different from ours at 6 */
  assert_int_equal(rt_attest_peer(&a, 0, 5, 3, d), 0);
  assert_int_equal(rt_attest_peer(&a, 1, 5, 3, d), 0);
  uint8_t same5[32];
  memcpy(same5, d, 32);
  assert_int_equal(rt_attest_own(&a, 5, same5, 0), 0); /* agrees at 5 */
  assert_int_equal(rt_attest_own(&a, 6, ours, 0), 1);  /* two of three others differ at 6 */
  assert_int_equal(a.diverged, 6);
  assert_int_equal(a.diverged_differ, 2);
  assert_memory_equal(a.ours, ours, 32);
  rt_attest_free(&a);
}

static void test_attest_message(void **state) {
  rt_attest a;
  assert_int_equal(rt_attest_init(&a, 7, 2, 0), 0);
  assert_int_equal(a.tolerate, 2);
  uint8_t d[32];
  for (uint64_t h = 1; h <= 3; h++) {
    fill(d, (uint8_t)h);
    rt_attest_own(&a, h, d, 100);
  }
  assert_false(rt_attest_due(&a, 110, 0));
  assert_true(rt_attest_due(&a, 100 + RT_ATTEST_FLUSH_MS, 0));
  uint8_t body[RT_ATTEST_MSG_MAX];
  uint32_t len = rt_attest_take(&a, body);
  assert_int_equal(len, 12 + 3 * 32);
  assert_int_equal(body[0], 1);
  assert_int_equal(body[8], 3);
  assert_int_equal(body[12 + 64], 3);
  assert_false(rt_attest_due(&a, 1000, 1));
  assert_true(rt_attest_relevant(&a, 2, 1));
  assert_false(rt_attest_relevant(&a, 3 + RT_ATTEST_WINDOW + 1, 1));
  rt_attest_free(&a);
}

/* ---- the application socket ------------------------------------------------------------------ */

typedef struct server {
  char path[108];
  bft_app app;
  volatile int stop;
  int mode; /* 0: serve the kv store; 1: answer every request with garbage; 2: hang up after HELLO */
  uv_thread_t th;
} server;

static void bad_server(server *s) {
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, s->path);
  unlink(s->path);
  if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0) abort(); /* not cmocka: another thread */
  int fd = accept(l, NULL, NULL);
  uint8_t *buf = NULL, t;
  size_t cap = 0;
  uint32_t len;
  char why[128];
  /* HELLO: a valid answer (the kv digest of an empty store, no features) */
  if (app_read_frame(fd, &buf, &cap, &t, &len, 5000, why, sizeof why) != 0) abort();
  uint8_t hello[5 + 4 + 4 + 3 + 8 + 32 + 4] = {0};
  uint32_t fl = sizeof hello - 4;
  memcpy(hello, &fl, 4);
  hello[4] = APP_MSG_HELLO | 0x80;
  hello[5] = 1;
  hello[9] = 3;
  memcpy(hello + 13, "bad", 3);
  send(fd, hello, sizeof hello, MSG_NOSIGNAL);
  if (s->mode == 1 && app_read_frame(fd, &buf, &cap, &t, &len, 5000, why, sizeof why) == 0) {
    uint8_t junk[6] = {2, 0, 0, 0, APP_MSG_DIGEST | 0x80, 0}; /* the answer to another request */
    send(fd, junk, sizeof junk, MSG_NOSIGNAL);
  }
  close(fd);
  close(l);
  free(buf);
}

static void server_main(void *arg) {
  server *s = arg;
  if (s->mode) bad_server(s);
  else bft_app_serve_unix(s->path, &s->app, &s->stop);
}

static server *start_server(int mode) {
  server *s = calloc(1, sizeof *s);
  snprintf(s->path, sizeof s->path, "/tmp/bft-test-app-%d-%d.sock", (int)getpid(), mode);
  s->mode = mode;
  if (!mode) assert_int_equal(bft_app_kv_new(&s->app), 0);
  assert_int_equal(uv_thread_create(&s->th, server_main, s), 0);
  return s;
}

static void stop_server(server *s) {
  s->stop = 1;
  uv_thread_join(&s->th);
  if (!s->mode) bft_app_kv_free(&s->app);
  unlink(s->path);
  free(s);
}

static int op_put(uint8_t *buf, const char *k, const char *v) {
  bft_kv_op op = {.opcode = v ? BFT_KV_PUT : BFT_KV_GET, .key = (const uint8_t *)k, .key_len = (uint32_t)strlen(k)};
  if (v) op.value = (const uint8_t *)v, op.value_len = (uint32_t)strlen(v);
  return bft_kv_encode(&op, buf, 128);
}

static void test_socket_matches_embedded(void **state) {
  server *s = start_server(0);
  char spec[120], err[512];
  snprintf(spec, sizeof spec, "unix:%s", s->path);
  bft_app remote, local;
  assert_int_equal(rt_app_socket_open(spec, 5000, 5000, &remote, err, sizeof err), 0);
  assert_int_equal(bft_app_kv_new(&local), 0);
  assert_non_null(remote.ops->query);
  assert_null(remote.ops->check); /* the kv store offers no check */
  assert_int_equal(remote.ops->height(remote.state), 0);
  uint8_t enc[3][128], ra[3 * BFT_APP_MAX_RESULT], la[3 * BFT_APP_MAX_RESULT], key[32] = {7};
  bft_app_op ops[3];
  const char *ks[3] = {"a", "b", "a"}, *vs[3] = {"1", "2", NULL};
  for (int i = 0; i < 3; i++) {
    int l = op_put(enc[i], ks[i], vs[i]);
    ops[i] = (bft_app_op){.client_key = key, .client = 1, .seq = (uint64_t)i + 1, .op = enc[i], .len = (uint32_t)l};
  }
  bft_app_result rr[3], lr[3];
  for (int i = 0; i < 3; i++) {
    rr[i] = (bft_app_result){.data = ra + i * BFT_APP_MAX_RESULT};
    lr[i] = (bft_app_result){.data = la + i * BFT_APP_MAX_RESULT};
  }
  assert_int_equal(remote.ops->execute(remote.state, 1, ops, 3, rr), 0); /* one round trip */
  assert_int_equal(local.ops->execute(local.state, 1, ops, 3, lr), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(rr[i].status, lr[i].status);
    assert_int_equal(rr[i].len, lr[i].len);
    assert_memory_equal(rr[i].data, lr[i].data, lr[i].len);
  }
  assert_memory_equal(rr[2].data, "1", 1);
  uint8_t dr[32], dl[32];
  remote.ops->digest(remote.state, dr);
  local.ops->digest(local.state, dl);
  assert_memory_equal(dr, dl, 32);
  /* snapshot out through the socket, restore into the embedded store, and back */
  uint8_t *snap;
  size_t len;
  assert_int_equal(bft_app_snapshot_all(&remote, &snap, &len), 0);
  assert_int_equal(bft_app_restore_all(&local, 1, snap, len), 0);
  local.ops->digest(local.state, dl);
  assert_memory_equal(dr, dl, 32);
  assert_int_equal(bft_app_restore_all(&remote, 0, NULL, 0), 0); /* the initial state */
  remote.ops->digest(remote.state, dr);
  assert_memory_not_equal(dr, dl, 32);
  assert_int_equal(bft_app_restore_all(&remote, 1, snap, len), 0);
  remote.ops->digest(remote.state, dr);
  assert_memory_equal(dr, dl, 32);
  free(snap);
  bft_app_result q = {.data = ra};
  int l = op_put(enc[0], "b", NULL);
  assert_int_equal(remote.ops->query(remote.state, enc[0], (uint32_t)l, &q), 0);
  assert_int_equal(q.len, 1);
  assert_memory_equal(q.data, "2", 1);
  assert_null(remote.ops->last_error(remote.state));
  s->stop = 1;
  rt_app_socket_close(&remote);
  bft_app_kv_free(&local);
  stop_server(s);
}

static void test_socket_garbage_and_death(void **state) {
  for (int mode = 1; mode <= 2; mode++) {
    server *s = start_server(mode);
    char spec[120], err[512];
    snprintf(spec, sizeof spec, "unix:%s", s->path);
    bft_app remote;
    assert_int_equal(rt_app_socket_open(spec, 5000, 5000, &remote, err, sizeof err), 0);
    uint8_t enc[128], data[BFT_APP_MAX_RESULT], key[32] = {0};
    int l = op_put(enc, "k", "v");
    bft_app_op op = {.client_key = key, .client = 0, .seq = 1, .op = enc, .len = (uint32_t)l};
    bft_app_result r = {.data = data};
    assert_int_not_equal(remote.ops->execute(remote.state, 7, &op, 1, &r), 0);
    const char *why = remote.ops->last_error(remote.state);
    assert_non_null(why);
    assert_non_null(strstr(why, mode == 1 ? "answered garbage" : "stopped answering"));
    assert_non_null(strstr(why, "EXECUTE"));
    /* once broken, every later call fails at once with the same line */
    assert_int_not_equal(remote.ops->execute(remote.state, 7, &op, 1, &r), 0);
    rt_app_socket_close(&remote);
    stop_server(s);
  }
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_attest_tolerates_f),
      cmocka_unit_test(test_attest_diverges),
      cmocka_unit_test(test_attest_message),
      cmocka_unit_test(test_socket_matches_embedded),
      cmocka_unit_test(test_socket_garbage_and_death),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
