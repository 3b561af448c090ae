/* protocols/pending.h: the engines' set of pending request digests. A model (the plain arrays
 * with linear search and swap-removal the engines used before the index) runs beside the set
 * through random operations; after each one both must hold the same entries in the same order,
 * and every digest must be found exactly where the model has it. Digests are drawn from a few
 * home slots, some at the end of the table, so probe runs are long and wrap around. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocols/pending.h"
#include "protocols/request.h"

typedef struct model {
  uint32_t n;
  uint8_t d[BFT_PENDING_MAX][BFT_DIGEST_LEN];
  uint64_t tag[BFT_PENDING_MAX];
} model;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A digest whose home slot is one of 6 (two of them the last slots of the table). */
static void colliding_digest(uint8_t d[BFT_DIGEST_LEN]) {
  for (int i = 0; i < BFT_DIGEST_LEN; i++) d[i] = (uint8_t)next();
  static const uint16_t homes[] = {0, 1, 7, 2000, BFT_PENDING_SLOTS - 2, BFT_PENDING_SLOTS - 1};
  uint16_t h = homes[next() % 6];
  d[0] = (uint8_t)h;
  d[1] = (uint8_t)((d[1] & ~((BFT_PENDING_SLOTS - 1) >> 8)) | (h >> 8));
}

static int model_find(const model *m, const uint8_t d[BFT_DIGEST_LEN]) {
  for (uint32_t i = 0; i < m->n; i++)
    if (memcmp(m->d[i], d, BFT_DIGEST_LEN) == 0) return (int)i;
  return -1;
}
static int model_add(model *m, const uint8_t d[BFT_DIGEST_LEN], uint64_t tag) {
  if (model_find(m, d) >= 0) return 0;
  if (m->n >= BFT_PENDING_MAX) return -1;
  memcpy(m->d[m->n], d, BFT_DIGEST_LEN);
  m->tag[m->n++] = tag;
  return 1;
}
static void model_remove_at(model *m, uint32_t i) {
  m->n--;
  memcpy(m->d[i], m->d[m->n], BFT_DIGEST_LEN);
  m->tag[i] = m->tag[m->n];
}

static void same(const bft_pending *p, const model *m) {
  assert_int_equal(p->n, m->n);
  assert_memory_equal(p->d, m->d, (size_t)m->n * BFT_DIGEST_LEN);
  assert_memory_equal(p->tag, m->tag, (size_t)m->n * sizeof m->tag[0]);
  uint32_t used = 0;
  for (uint32_t s = 0; s < BFT_PENDING_SLOTS; s++) used += p->slot[s] != 0;
  assert_int_equal(used, m->n); /* no stale slot survives a removal */
  for (uint32_t i = 0; i < m->n; i++) assert_int_equal(bft_pending_find(p, m->d[i]), (int)i);
}

static void test_random_operations_match_the_model(void **st) {
  (void)st;
  bft_pending *p = calloc(1, sizeof *p);
  model *m = calloc(1, sizeof *m);
  assert_non_null(p);
  assert_non_null(m);
  uint8_t absent[BFT_DIGEST_LEN];
  for (int round = 0; round < 4000; round++) {
    uint64_t op = next() % 10;
    uint8_t d[BFT_DIGEST_LEN];
    if (op < 6 || m->n == 0) {
      if (m->n > 0 && next() % 4 == 0) memcpy(d, m->d[next() % m->n], BFT_DIGEST_LEN); /* known */
      else colliding_digest(d);
      uint64_t tag = next();
      assert_int_equal(bft_pending_add(p, d, tag), model_add(m, d, tag));
    } else {
      uint32_t i = (uint32_t)(next() % m->n);
      bft_pending_remove_at(p, i);
      model_remove_at(m, i);
    }
    same(p, m);
    colliding_digest(absent);
    assert_int_equal(bft_pending_find(p, absent), model_find(m, absent));
  }
  free(p);
  free(m);
}

static void test_full_set_refuses_and_empties(void **st) {
  (void)st;
  bft_pending *p = calloc(1, sizeof *p);
  model *m = calloc(1, sizeof *m);
  assert_non_null(p);
  assert_non_null(m);
  uint8_t d[BFT_DIGEST_LEN];
  while (m->n < BFT_PENDING_MAX) {
    colliding_digest(d);
    uint64_t tag = m->n;
    int want = model_add(m, d, tag); /* a digest drawn twice is "known" to both */
    assert_int_equal(bft_pending_add(p, d, tag), want);
  }
  colliding_digest(d);
  assert_int_equal(bft_pending_add(p, d, 1), -1);
  assert_int_equal(bft_pending_add(p, m->d[5], 1), 0); /* a known digest is not "full" */
  same(p, m);
  while (m->n > 0) { /* from the front: every removal moves the last entry */
    bft_pending_remove_at(p, 0);
    model_remove_at(m, 0);
    if (m->n % 97 == 0) same(p, m);
  }
  same(p, m);
  bft_pending_remove_at(p, 0); /* out of range: nothing happens */
  assert_int_equal(p->n, 0);
  free(p);
  free(m);
}

static void test_forget_batch_removes_its_requests_in_order(void **st) {
  (void)st;
  bft_pending *p = calloc(1, sizeof *p);
  model *m = calloc(1, sizeof *m);
  static uint8_t reqs[64][40];
  static uint8_t batch[64 * 48 + 16];
  assert_non_null(p);
  assert_non_null(m);
  for (int i = 0; i < 64; i++) {
    for (int j = 0; j < 40; j++) reqs[i][j] = (uint8_t)next();
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, reqs[i], sizeof reqs[i]);
    if (i % 3) assert_int_equal(bft_pending_add(p, d, (uint64_t)i), model_add(m, d, (uint64_t)i));
  }
  bft_batch_writer w;
  bft_batch_begin(&w, batch, sizeof batch);
  for (int i = 0; i < 40; i++) assert_int_equal(bft_batch_add(&w, reqs[i], sizeof reqs[i]), 0);
  uint32_t len = bft_batch_end(&w);
  bft_pending_forget_batch(p, batch, len);
  for (int i = 0; i < 40; i++) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, reqs[i], sizeof reqs[i]);
    int k = model_find(m, d);
    if (k >= 0) model_remove_at(m, (uint32_t)k);
  }
  same(p, m);
  assert_int_equal(p->n, 42 - 26); /* 42 pending, the 26 of them among the first 40 forgotten */
  bft_pending_forget_batch(p, batch, len - 1); /* truncated: refused whole or up to the fault */
  same(p, m);
  free(p);
  free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_operations_match_the_model),
      cmocka_unit_test(test_full_set_refuses_and_empties),
      cmocka_unit_test(test_forget_batch_removes_its_requests_in_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
