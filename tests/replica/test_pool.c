/* Unit tests of the request pool (bounds, duplicates, pull epochs, removal on execution), the
 * client sessions with their bounded reply cache, and the verified-digest cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/kv.h"
#include "replica/pool.h"
#include "replica/rt_limits.h"
#include "replica/sessions.h"
#include "replica/vcache.h"

static void fake_request(uint8_t *buf, uint32_t *len, uint32_t client, uint64_t seq, uint32_t size) {
  memset(buf, 0, size);
  memcpy(buf, &client, 4);
  memcpy(buf + 4, &seq, 8);
  *len = size;
}

static int add(rt_pool *p, uint32_t client, uint64_t seq, uint32_t size) {
  uint8_t buf[16384], d[32];
  uint32_t len;
  fake_request(buf, &len, client, seq, size);
  bft_digest(d, buf, len);
  return rt_pool_add(p, d, client, seq, buf, len);
}

static uint32_t pull_at(rt_pool *p, uint32_t max, uint64_t *seqs, uint64_t head) {
  uint8_t *batch = malloc(BFT_MAX_BATCH_BYTES);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, BFT_MAX_BATCH_BYTES);
  uint32_t n = rt_pool_pull(p, max, &bw, head);
  uint32_t len = bft_batch_end(&bw);
  bft_batch_reader br;
  assert_int_equal(bft_batch_open(&br, batch, len), 0);
  const uint8_t *rq;
  uint32_t rl, i = 0;
  while (bft_batch_next(&br, &rq, &rl) == 1) {
    if (seqs) memcpy(&seqs[i], rq + 4, 8);
    i++;
  }
  assert_int_equal(i, n);
  free(batch);
  return n;
}

static uint32_t pull(rt_pool *p, uint32_t max, uint64_t *seqs) { return pull_at(p, max, seqs, 0); }

static void digest_of(uint32_t client, uint64_t seq, uint8_t d[32]) {
  uint8_t buf[16384];
  uint32_t len;
  fake_request(buf, &len, client, seq, 64);
  bft_digest(d, buf, len);
}

/* INFLIGHT marks keep requests another leader proposed out of our pulls; marks and our own
 * pulls expire once the ledger grew `after` blocks without them executing (an abandoned
 * block), and only then. */
static void test_pool_inflight_and_expiry(void **state) {
  rt_pool p;
  assert_int_equal(rt_pool_init(&p, 4, 100, 1 << 20, 10), 0);
  for (uint64_t s = 1; s <= 4; s++) assert_int_equal(add(&p, 0, s, 64), 0);
  uint8_t d[32];
  digest_of(0, 1, d);
  rt_pool_mark_pulled(&p, d, 10); /* seq 1 is in someone's block at head 10 */
  digest_of(0, 3, d);
  rt_pool_mark_pulled(&p, d, 10);
  uint64_t seqs[16];
  assert_int_equal(pull_at(&p, 10, seqs, 10), 2); /* 2 and 4 only */
  assert_int_equal(seqs[0], 2);
  assert_int_equal(seqs[1], 4);
  assert_false(rt_pool_has_unpulled(&p));
  assert_int_equal(rt_pool_expire(&p, 13, 4), 0); /* too early: blocks may still commit */
  assert_int_equal(rt_pool_expire(&p, 14, 0), 0); /* engines without expiry: epochs only */
  assert_int_equal(rt_pool_expire(&p, 14, 4), 4); /* abandoned: all four offered again */
  assert_int_equal(pull_at(&p, 10, seqs, 14), 4);
  assert_int_equal(seqs[0], 1);
  assert_int_equal(seqs[3], 4);
  assert_int_equal(p.inflight, 4);
  rt_pool_remove_upto(&p, 0, 4);
  assert_int_equal(p.inflight, 0);
  assert_int_equal(p.count, 0);
  rt_pool_free(&p);
}

static void test_pool_bounds(void **state) {
  rt_pool p;
  assert_int_equal(rt_pool_init(&p, 3, 5, 10000, 2), 0);
  assert_int_equal(add(&p, 0, 1, 100), 0);
  assert_int_equal(add(&p, 0, 1, 100), BFT_E_DUPLICATE);  /* same bytes */
  assert_int_equal(add(&p, 0, 1, 101), BFT_E_DUPLICATE);  /* same (client, seq), other bytes */
  assert_int_equal(add(&p, 0, 2, 100), 0);
  assert_int_equal(add(&p, 0, 3, 100), BFT_E_FULL);       /* per-client bound */
  assert_int_equal(add(&p, 1, 1, 100), 0);
  assert_int_equal(add(&p, 1, 2, 100), 0);
  assert_int_equal(add(&p, 2, 1, 100), 0);
  assert_int_equal(add(&p, 2, 2, 100), BFT_E_FULL);       /* total requests */
  assert_int_equal(p.count, 5);
  assert_int_equal(add(&p, 5, 1, 100), BFT_E_INVAL);      /* unknown client index */
  rt_pool_remove_upto(&p, 0, 2);
  assert_int_equal(p.count, 3);
  assert_int_equal(add(&p, 2, 2, 9800), BFT_E_FULL);      /* total bytes */
  assert_int_equal(add(&p, 2, 2, 4000), 0);
  assert_int_equal(p.bytes, 4300);
  rt_pool_free(&p);
}

static void test_pool_epochs(void **state) {
  rt_pool p;
  assert_int_equal(rt_pool_init(&p, 4, 100, 1 << 20, 10), 0);
  assert_false(rt_pool_has_unpulled(&p));
  for (uint64_t s = 1; s <= 5; s++) assert_int_equal(add(&p, (uint32_t)(s % 2), s, 64), 0);
  uint64_t seqs[16];
  assert_int_equal(pull(&p, 3, seqs), 3);
  assert_int_equal(seqs[0], 1);
  assert_int_equal(seqs[2], 3);
  assert_int_equal(pull(&p, 10, seqs), 2); /* only what was not handed out */
  assert_int_equal(seqs[0], 4);
  assert_int_equal(pull(&p, 10, seqs), 0);
  assert_false(rt_pool_has_unpulled(&p));
  assert_int_equal(add(&p, 3, 9, 64), 0); /* new arrivals are eligible at once */
  assert_int_equal(pull(&p, 10, seqs), 1);
  assert_int_equal(seqs[0], 9);
  /* a new epoch (view change) makes everything pending eligible again, in arrival order */
  rt_pool_remove_upto(&p, 1, 3); /* seqs 1 and 3 executed */
  rt_pool_new_epoch(&p);
  assert_int_equal(pull(&p, 10, seqs), 4);
  assert_int_equal(seqs[0], 2);
  assert_int_equal(seqs[1], 4);
  assert_int_equal(seqs[2], 5);
  assert_int_equal(seqs[3], 9);
  /* removing the entry under the cursor keeps the rest eligible */
  rt_pool_new_epoch(&p);
  rt_pool_remove_upto(&p, 0, 2);
  assert_int_equal(pull(&p, 10, seqs), 3);
  rt_pool_remove_upto(&p, 0, 100);
  rt_pool_remove_upto(&p, 1, 100);
  rt_pool_remove_upto(&p, 3, 100);
  assert_int_equal(p.count, 0);
  assert_int_equal(p.bytes, 0);
  /* entries are reused after removal */
  for (int round = 0; round < 3; round++)
    for (uint64_t s = 1; s <= 10; s++) {
      assert_int_equal(add(&p, 2, s + 100u * (uint64_t)round, 64), 0);
      rt_pool_remove_upto(&p, 2, s + 100u * (uint64_t)round);
    }
  assert_int_equal(p.count, 0);
  rt_pool_free(&p);
}

static void test_pool_batch_bytes(void **state) {
  rt_pool p;
  assert_int_equal(rt_pool_init(&p, 200, 1000, 64u << 20, 4), 0);
  uint8_t *big = calloc(1, BFT_MAX_REQUEST_BYTES);
  for (uint32_t i = 0; i < 10; i++) {
    uint8_t d[32];
    memcpy(big, &i, 4);
    bft_digest(d, big, BFT_MAX_REQUEST_BYTES);
    assert_int_equal(rt_pool_add(&p, d, i, 1, big, BFT_MAX_REQUEST_BYTES), 0);
  }
  uint32_t per_batch = (BFT_MAX_BATCH_BYTES - 4) / (BFT_MAX_REQUEST_BYTES + 4);
  assert_int_equal(pull(&p, 256, NULL), per_batch); /* stops at the batch byte bound */
  assert_int_equal(pull(&p, 256, NULL), 10 - per_batch);
  free(big);
  rt_pool_free(&p);
}

/* ---- sessions and reply cache --------------------------------------------------------------- */

static bft_cluster *make_cluster(uint32_t nclients, bft_keypair *kps) {
  bft_cluster *c = calloc(1, sizeof *c);
  snprintf(c->name, sizeof c->name, "test");
  bft_cluster_id_from_name(c->id, c->name);
  c->n = 4;
  c->f = 1;
  c->nclients = nclients;
  for (uint32_t i = 0; i < nclients; i++) {
    bft_keypair_generate(&kps[i]);
    c->clients[i].id = i;
    memcpy(c->clients[i].pk, kps[i].pk, 32);
  }
  return c;
}

static void test_sessions(void **state) {
  bft_keypair kps[40], rkp;
  bft_keypair_generate(&rkp);
  bft_cluster *c = make_cluster(40, kps);
  rt_sessions ss;
  assert_int_equal(rt_sessions_init(&ss, c, 1000), 0);
  for (uint32_t i = 0; i < 40; i++) assert_int_equal(rt_sessions_find(&ss, kps[i].pk), (int)i);
  bft_keypair stranger;
  bft_keypair_generate(&stranger);
  assert_int_equal(rt_sessions_find(&ss, stranger.pk), -1);

  uint8_t d0[32], d1[32], buf[1024];
  rt_sessions_digest(&ss, d0);
  assert_int_equal(rt_sessions_encode_reply(&ss, 3, &rkp, c->id, 2, buf, sizeof buf), BFT_E_STATE);
  rt_sessions_advance(&ss, 3, 7, 11);
  assert_int_equal(rt_sessions_set_result(&ss, 3, 7, BFT_KV_OK, (const uint8_t *)"hello", 5), 0);
  rt_sessions_digest(&ss, d1);
  assert_memory_not_equal(d0, d1, 32);
  int len = rt_sessions_encode_reply(&ss, 3, &rkp, c->id, 2, buf, sizeof buf);
  assert_true(len > 0);
  /* the reply verifies against replica 2's key and carries what was cached */
  memcpy(c->replicas[2].pk, rkp.pk, 32);
  bft_reply rp;
  assert_int_equal(bft_reply_verify(c, buf, (uint32_t)len, &rp), 0);
  assert_int_equal(rp.seq, 7);
  assert_int_equal(rp.height, 11);
  assert_int_equal(rp.replica, 2);
  assert_memory_equal(rp.client, kps[3].pk, 32);
  assert_int_equal(rp.result_len, 5);
  /* a result for a seq that is no longer the last is not cached */
  rt_sessions_advance(&ss, 3, 8, 12);
  assert_int_equal(rt_sessions_set_result(&ss, 3, 7, BFT_KV_OK, (const uint8_t *)"late", 4), 0);
  assert_int_equal(rt_sessions_encode_reply(&ss, 3, &rkp, c->id, 2, buf, sizeof buf), BFT_E_STATE);
  /* digest depends on last_seq only and is order independent */
  rt_sessions ss2;
  assert_int_equal(rt_sessions_init(&ss2, c, 0), 0);
  rt_sessions_advance(&ss, 5, 1, 13);
  rt_sessions_advance(&ss2, 5, 1, 1);
  rt_sessions_advance(&ss2, 3, 8, 2);
  rt_sessions_digest(&ss, d0);
  rt_sessions_digest(&ss2, d1);
  assert_memory_equal(d0, d1, 32);
  /* the reply cache stays within its byte budget */
  uint8_t big[300] = {0};
  for (uint32_t i = 0; i < 40; i++) {
    rt_sessions_advance(&ss, i, 100, 20);
    assert_int_equal(rt_sessions_set_result(&ss, i, 100, BFT_KV_OK, big, sizeof big), 0);
    assert_true(ss.cached_bytes <= 1000);
  }
  assert_true(ss.evictions > 0);
  assert_true(rt_sessions_encode_reply(&ss, 39, &rkp, c->id, 2, buf, sizeof buf) > 0); /* newest kept */
  rt_sessions_free(&ss);
  rt_sessions_free(&ss2);
  free(c);
}

static void test_vcache(void **state) {
  rt_vcache v;
  assert_int_equal(rt_vcache_init(&v, 0), 0);
  uint8_t d[32];
  for (uint32_t i = 0; i < 1000; i++) {
    bft_digest(d, &i, sizeof i);
    assert_false(rt_vcache_has(&v, d));
    rt_vcache_add(&v, d);
    assert_true(rt_vcache_has(&v, d));
  }
  /* bounded: after many more insertions the first ones are forgotten */
  for (uint32_t i = 1000; i < 1000 + 8 * RT_VCACHE_SETS * RT_VCACHE_WAYS; i++) {
    bft_digest(d, &i, sizeof i);
    rt_vcache_add(&v, d);
  }
  uint32_t forgotten = 0;
  for (uint32_t i = 0; i < 1000; i++) {
    bft_digest(d, &i, sizeof i);
    forgotten += !rt_vcache_has(&v, d);
  }
  assert_true(forgotten > 900);
  rt_vcache_free(&v);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_bounds),
      cmocka_unit_test(test_pool_epochs),
      cmocka_unit_test(test_pool_inflight_and_expiry),
      cmocka_unit_test(test_pool_batch_bytes),
      cmocka_unit_test(test_sessions),
      cmocka_unit_test(test_vcache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
