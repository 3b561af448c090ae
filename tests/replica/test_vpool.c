/* Unit tests of the verification pool (replica/vpool.c): every item gets the verdict a serial
 * bft_verify gives it, whatever the number of workers and items (none, one, many more than
 * workers), across many calls, with good and bad signatures mixed; the workers share the work.
 * And of the queue of requests waiting for it (replica/vqueue.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "replica/core.h"
#include "replica/rt_limits.h"
#include "replica/vpool.h"
#include "replica/vqueue.h"

#define NKEYS 4
#define NMSGS 300
#define MSG_LEN 96

typedef struct fixture {
  uint8_t cid[BFT_CLUSTER_ID_LEN];
  bft_keypair kp[NKEYS];
  uint8_t msg[NMSGS][MSG_LEN];
  uint8_t sig[NMSGS][BFT_SIG_LEN];
  int want[NMSGS]; /* 0 or BFT_E_BAD_SIG */
  rt_vitem items[NMSGS];
} fixture;

/* Message i signed by key i % NKEYS; one in five spoiled in one of four ways (bit of the
 * signature, byte of the message, another key, another tag). */
static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(bft_crypto_init(), 0);
  bft_cluster_id_from_name(f->cid, "vpool-test");
  for (int k = 0; k < NKEYS; k++) assert_int_equal(bft_keypair_generate(&f->kp[k]), 0);
  for (int i = 0; i < NMSGS; i++) {
    for (int j = 0; j < MSG_LEN; j++) f->msg[i][j] = (uint8_t)(i * 7 + j);
    assert_int_equal(bft_sign(&f->kp[i % NKEYS], f->cid, "test/vpool", f->msg[i], MSG_LEN, f->sig[i]), 0);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

/* Fresh items (results poisoned) for messages [0, n), and the verdicts a serial check gives. */
static void fill(fixture *f, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    rt_vitem *it = &f->items[i];
    memcpy(it->pk, f->kp[i % NKEYS].pk, BFT_PK_LEN);
    it->tag = "test/vpool";
    it->msg = f->msg[i];
    it->len = MSG_LEN;
    it->sig = f->sig[i];
    it->rc = 12345;
    if (i % 5 == 1) {
      switch ((i / 5) % 4) {
        case 0: f->sig[i][i % BFT_SIG_LEN] ^= 0x10; break;
        case 1: f->msg[i][i % MSG_LEN] ^= 0x01; break;
        case 2: memcpy(it->pk, f->kp[(i + 1) % NKEYS].pk, BFT_PK_LEN); break;
        default: it->tag = "test/other"; break;
      }
    }
    f->want[i] = bft_verify(it->pk, f->cid, it->tag, it->msg, it->len, it->sig);
  }
}

/* Undo the spoiling of fill(), so the next round starts from good signatures. */
static void unspoil(fixture *f, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (i % 5 != 1) continue;
    if ((i / 5) % 4 == 0) f->sig[i][i % BFT_SIG_LEN] ^= 0x10;
    if ((i / 5) % 4 == 1) f->msg[i][i % MSG_LEN] ^= 0x01;
  }
}

static void check_round(fixture *f, rt_vpool *p, uint32_t n) {
  fill(f, n);
  rt_vpool_verify(p, f->items, n);
  uint32_t bad = 0;
  for (uint32_t i = 0; i < n; i++) {
    assert_int_equal(f->items[i].rc, f->want[i]);
    bad += f->want[i] != 0;
  }
  if (n > 1) assert_int_equal(bad, (n + 3) / 5); /* the mix is what we meant: i % 5 == 1 */
  unspoil(f, n);
}

static void test_mixed_many_workers(void **state) {
  fixture *f = *state;
  rt_vpool *p;
  assert_int_equal(rt_vpool_open(&p, 3, f->cid), 0);
  assert_int_equal(rt_vpool_threads(p), 3);
  check_round(f, p, NMSGS); /* n much larger than the workers */
  rt_vpool_stats st;
  rt_vpool_get_stats(p, &st);
  assert_int_equal(st.calls, 1);
  assert_int_equal(st.items, NMSGS);
  assert_true(st.by_workers <= NMSGS);
  rt_vpool_close(p);
}

static void test_sizes_and_rounds(void **state) {
  fixture *f = *state;
  rt_vpool *p;
  assert_int_equal(rt_vpool_open(&p, 2, f->cid), 0);
  static const uint32_t sizes[] = {0, 1, 2, 3, 5, 17, 64, 255, 256, NMSGS};
  uint64_t total = 0, calls = 0;
  for (int round = 0; round < 20; round++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      check_round(f, p, sizes[s]);
      total += sizes[s];
      calls += sizes[s] > 0;
    }
  rt_vpool_stats st;
  rt_vpool_get_stats(p, &st);
  assert_int_equal(st.items, total);
  assert_int_equal(st.calls, calls);
  /* With two workers and rounds of hundreds of verifies the workers take part. */
  assert_true(st.by_workers > 0);
  assert_true(st.wait_max_us <= st.wait_us);
  rt_vpool_close(p);
}

static void test_no_workers(void **state) {
  fixture *f = *state;
  rt_vpool *p;
  assert_int_equal(rt_vpool_open(&p, 0, f->cid), 0);
  assert_int_equal(rt_vpool_threads(p), 0);
  check_round(f, p, 0);
  check_round(f, p, 1);
  check_round(f, p, NMSGS);
  rt_vpool_stats st;
  rt_vpool_get_stats(p, &st);
  assert_int_equal(st.items, NMSGS + 1);
  assert_int_equal(st.by_workers, 0);
  assert_int_equal(st.wait_us, 0);
  rt_vpool_close(p);
}

static void test_limits(void **state) {
  fixture *f = *state;
  rt_vpool *p = (rt_vpool *)f; /* must be cleared on failure */
  assert_int_equal(rt_vpool_open(&p, RT_VPOOL_MAX_THREADS + 1, f->cid), BFT_E_INVAL);
  assert_null(p);
  assert_true(rt_vpool_default_threads() <= RT_VPOOL_MAX_THREADS);
  rt_vpool_close(NULL);
  /* open and close at once: the workers are joined even if they never saw a call */
  for (int i = 0; i < 10; i++) {
    assert_int_equal(rt_vpool_open(&p, 4, f->cid), 0);
    rt_vpool_close(p);
  }
}

/* Requests copied in keep their bytes and get their verdicts; those pushed without a decoding
 * only wait; a closed connection is forgotten; the queue says when it is full. */
static void test_vqueue(void **state) {
  fixture *f = *state;
  rt_vpool *p;
  assert_int_equal(rt_vpool_open(&p, 1, f->cid), 0);
  rt_vq q;
  assert_int_equal(rt_vq_init(&q), 0);
  int conn_a, conn_b, core;
  uint8_t req[3][256];
  int len[3];
  for (int i = 0; i < 3; i++) {
    uint8_t op[8] = {'o', 'p', (uint8_t)i};
    len[i] = bft_request_encode(&f->kp[i], f->cid, 10 + (uint64_t)i, op, sizeof op, req[i], sizeof req[i]);
    assert_true(len[i] > 0);
  }
  req[1][len[1] - 1] ^= 1; /* a forgery */
  for (int i = 0; i < 3; i++) {
    bft_request r;
    assert_int_equal(bft_request_decode(req[i], (uint32_t)len[i], &r), 0);
    assert_int_equal(rt_vq_push(&q, i == 1 ? (void *)&conn_b : (void *)&conn_a, &core, req[i], (uint32_t)len[i],
                                i == 2 ? NULL : &r), 0);
  }
  memset(req, 0, sizeof req); /* the queue holds copies */
  assert_int_equal(q.n, 3);
  assert_int_equal(q.nitems, 2);
  rt_vq_forget(&q, &conn_b);
  rt_vq_verify(&q, p);
  assert_int_equal(q.e[0].verdict, RT_SIG_GOOD);
  assert_int_equal(q.e[1].verdict, RT_SIG_BAD);
  assert_int_equal(q.e[2].verdict, RT_SIG_UNCHECKED);
  assert_ptr_equal(q.e[0].conn, &conn_a);
  assert_null(q.e[1].conn);
  assert_ptr_equal(q.e[2].core, &core);
  bft_request r;
  assert_int_equal(bft_request_decode(rt_vq_bytes(&q, 2), q.e[2].len, &r), 0);
  assert_int_equal(r.seq, 12);
  rt_vq_clear(&q);
  /* bounded by count and by bytes */
  uint8_t *big = calloc(1, BFT_MAX_REQUEST_BYTES);
  uint32_t pushed = 0;
  while (!rt_vq_full(&q, BFT_MAX_REQUEST_BYTES)) {
    assert_int_equal(rt_vq_push(&q, &conn_a, &core, big, BFT_MAX_REQUEST_BYTES, NULL), 0);
    pushed++;
  }
  assert_int_equal(pushed, RT_VQ_MAX_BYTES / BFT_MAX_REQUEST_BYTES);
  assert_int_equal(rt_vq_push(&q, &conn_a, &core, big, BFT_MAX_REQUEST_BYTES, NULL), BFT_E_FULL);
  rt_vq_clear(&q);
  for (uint32_t i = 0; i < RT_VQ_MAX_REQUESTS; i++) assert_int_equal(rt_vq_push(&q, &conn_a, &core, big, 8, NULL), 0);
  assert_true(rt_vq_full(&q, 8));
  assert_int_equal(rt_vq_push(&q, &conn_a, &core, big, 8, NULL), BFT_E_FULL);
  rt_vq_verify(&q, p); /* nothing to check: every entry only waits */
  free(big);
  rt_vq_free(&q);
  rt_vpool_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mixed_many_workers),
      cmocka_unit_test(test_sizes_and_rounds),
      cmocka_unit_test(test_no_workers),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_vqueue),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
