/* The quorum plumbing every engine shares (protocols/quorum.h): vote sets and their outcomes,
 * certificates built from them, the qsigs encoding, and certificate verification, which must
 * reject every malformed or forged certificate before a replica trusts it. Real Ed25519. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocols/quorum.h"

#define TAG "test/vote"
#define NMAX 7

typedef struct fixture {
  bft_engine_config cfg; /* n = 4, f = 1 (q = 3) unless a test says otherwise */
  bft_engine_env env;
  bft_keypair kp[NMAX];
  uint8_t body[48]; /* a statement body: u64 round | u64 height | digest */
  uint8_t digest[BFT_DIGEST_LEN];
} fixture;

static int env_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                      const uint8_t sig[BFT_SIG_LEN]) {
  const fixture *fx = ctx;
  /* Keys exist beyond n on purpose: only the certificate check may refuse an id >= n. */
  if (signer >= BFT_MAX_REPLICAS) return BFT_E_BAD_SIG;
  return bft_verify(fx->cfg.pubkeys[signer], fx->cfg.cluster_id, tag, msg, len, sig);
}

static void set_n(fixture *fx, uint32_t n) {
  fx->cfg.n = n;
  fx->cfg.f = (n - 1) / 3;
}

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  assert_int_equal(bft_crypto_init(), 0);
  bft_engine_config_defaults(&fx->cfg, 4, 0);
  memset(fx->cfg.cluster_id, 0x5a, sizeof fx->cfg.cluster_id);
  for (uint32_t i = 0; i < NMAX; i++) {
    uint8_t seed[BFT_SEED_LEN];
    memset(seed, (int)(40 + i), sizeof seed);
    assert_int_equal(bft_keypair_from_seed(&fx->kp[i], seed), 0);
    memcpy(fx->cfg.pubkeys[i], fx->kp[i].pk, BFT_PK_LEN);
  }
  set_n(fx, 4);
  fx->env.ctx = fx;
  fx->env.verify = env_verify;
  for (size_t i = 0; i < sizeof fx->body; i++) fx->body[i] = (uint8_t)(i * 7 + 1);
  memset(fx->digest, 0xd1, sizeof fx->digest);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

/* Replica i's signature over body || u32 i under tag. */
static void sign_as(const fixture *fx, uint32_t i, const char *tag, const uint8_t *body, uint32_t len,
                    uint8_t sig[BFT_SIG_LEN]) {
  uint8_t st[BFT_STMT_MAX];
  int sl = bft_stmt_make(st, body, len, i);
  assert_true(sl > 0);
  assert_int_equal(bft_sign(&fx->kp[i], fx->cfg.cluster_id, tag, st, (size_t)sl, sig), 0);
}

/* A certificate signed by the given ids, in the given order (valid or not). */
static void make_qc(const fixture *fx, const uint32_t *ids, uint32_t count, bft_qc *c) {
  memset(c, 0, sizeof *c);
  c->count = count;
  for (uint32_t k = 0; k < count; k++) {
    c->ids[k] = ids[k];
    sign_as(fx, ids[k] % NMAX, TAG, fx->body, sizeof fx->body, c->sigs[k]);
  }
}

/* Encode c, decode it back, and verify both the in-memory and the decoded forms; they must
 * agree. Returns the verdict. */
static int verify_both(const fixture *fx, const bft_qc *c, uint32_t need) {
  uint8_t buf[BFT_QC_SIGS_MAX];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  bft_qc_put(&w, c);
  assert_int_equal(w.err, 0);
  wire_reader r;
  wire_reader_init(&r, buf, w.len);
  bft_qc_view v;
  bft_qc_get(&r, &v);
  assert_int_equal(wire_reader_finish(&r), 0);
  int a = bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, c, need);
  int b = bft_qc_verify(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &v, need);
  assert_int_equal(a, b);
  return a;
}

/* ---- statements ---------------------------------------------------------------------------- */

static void test_stmt(void **state) {
  (void)state;
  uint8_t out[BFT_STMT_MAX], body[BFT_STMT_MAX];
  memset(body, 0xab, sizeof body);
  assert_int_equal(bft_stmt_make(out, body, 10, 0x04030201u), 14);
  assert_memory_equal(out, body, 10);
  const uint8_t le[4] = {1, 2, 3, 4};
  assert_memory_equal(out + 10, le, 4);
  assert_int_equal(bft_stmt_make(out, body, BFT_STMT_MAX - 4, 7), BFT_STMT_MAX);
  assert_int_equal(bft_stmt_make(out, body, BFT_STMT_MAX - 3, 7), BFT_E_FULL);
}

/* ---- vote sets ----------------------------------------------------------------------------- */

static void test_voteset_outcomes(void **state) {
  (void)state;
  bft_voteset vs;
  bft_voteset_clear(&vs);
  uint8_t d1[BFT_DIGEST_LEN], d2[BFT_DIGEST_LEN], s1[BFT_SIG_LEN], s2[BFT_SIG_LEN];
  memset(d1, 1, sizeof d1);
  memset(d2, 2, sizeof d2);
  memset(s1, 0x11, sizeof s1);
  memset(s2, 0x22, sizeof s2);

  assert_int_equal(bft_voteset_add(&vs, 2, 5, 9, d1, s1), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_add(&vs, 2, 5, 9, d1, s2), BFT_VOTE_SAME);
  assert_memory_equal(vs.v[2].sig, s1, BFT_SIG_LEN); /* SAME keeps the first signature */
  /* equivocation: first kept */
  assert_int_equal(bft_voteset_add(&vs, 2, 5, 9, d2, s2), BFT_VOTE_CONFLICT);
  assert_true(bft_voteset_has(&vs, 2, 5, 9, d1));
  assert_false(bft_voteset_has(&vs, 2, 5, 9, d2));
  /* older round: ignored, whatever the digest */
  assert_int_equal(bft_voteset_add(&vs, 2, 4, 9, d1, s1), BFT_VOTE_STALE);
  assert_int_equal(bft_voteset_add(&vs, 2, 4, 9, d2, s2), BFT_VOTE_STALE);
  /* same round, lower height: stale; higher height: replaces */
  assert_int_equal(bft_voteset_add(&vs, 2, 5, 8, d2, s2), BFT_VOTE_STALE);
  assert_true(bft_voteset_has(&vs, 2, 5, 9, d1));
  /* a newer round replaces the vote, even for another digest */
  assert_int_equal(bft_voteset_add(&vs, 2, 6, 9, d2, s2), BFT_VOTE_NEW);
  assert_false(bft_voteset_has(&vs, 2, 5, 9, d1));
  assert_true(bft_voteset_has(&vs, 2, 6, 9, d2));
  assert_memory_equal(vs.v[2].sig, s2, BFT_SIG_LEN);
  assert_int_equal(bft_voteset_count(&vs, 4, 5, 9, d1), 0);
  assert_int_equal(bft_voteset_count(&vs, 4, 6, 9, d2), 1);
  /* and then the old round is stale */
  assert_int_equal(bft_voteset_add(&vs, 2, 5, 9, d1, s1), BFT_VOTE_STALE);
  assert_int_equal(bft_voteset_add(&vs, 2, 6, 10, d1, s1), BFT_VOTE_NEW);
  /* other replicas are independent */
  assert_int_equal(bft_voteset_add(&vs, 0, 1, 1, d1, s1), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_add(&vs, BFT_MAX_REPLICAS - 1, 1, 1, d1, s1), BFT_VOTE_NEW);
  assert_false(bft_voteset_has(&vs, BFT_MAX_REPLICAS, 1, 1, d1));
  /* set replaces whatever is held (even a newer round); forget drops it */
  bft_voteset_set(&vs, 2, 1, 9, d1, s2);
  assert_true(bft_voteset_has(&vs, 2, 1, 9, d1));
  assert_memory_equal(vs.v[2].sig, s2, BFT_SIG_LEN);
  assert_int_equal(bft_voteset_add(&vs, 2, 1, 9, d2, s1), BFT_VOTE_CONFLICT);
  bft_voteset_forget(&vs, 2);
  assert_false(vs.v[2].valid);
  assert_int_equal(bft_voteset_add(&vs, 2, 0, 0, d2, s1), BFT_VOTE_NEW);
  bft_voteset_clear(&vs);
  assert_false(bft_voteset_has(&vs, 0, 1, 1, d1));
  assert_int_equal(bft_voteset_count_any(&vs, BFT_MAX_REPLICAS, 1, 1), 0);
}

static void test_voteset_counts(void **state) {
  (void)state;
  bft_voteset vs;
  bft_voteset_clear(&vs);
  uint8_t d1[BFT_DIGEST_LEN], d2[BFT_DIGEST_LEN], sig[BFT_SIG_LEN];
  memset(d1, 1, sizeof d1);
  memset(d2, 2, sizeof d2);
  memset(sig, 0, sizeof sig);
  assert_int_equal(bft_voteset_add(&vs, 0, 3, 7, d1, sig), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_add(&vs, 1, 3, 7, d1, sig), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_add(&vs, 2, 3, 7, d2, sig), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_add(&vs, 3, 2, 7, d1, sig), BFT_VOTE_NEW); /* older round */
  assert_int_equal(bft_voteset_add(&vs, 4, 3, 8, d1, sig), BFT_VOTE_NEW); /* other height */
  assert_int_equal(bft_voteset_add(&vs, 6, 3, 7, d1, sig), BFT_VOTE_NEW);
  assert_int_equal(bft_voteset_count(&vs, 7, 3, 7, d1), 3);
  assert_int_equal(bft_voteset_count(&vs, 7, 3, 7, d2), 1);
  assert_int_equal(bft_voteset_count(&vs, 7, 2, 7, d1), 1);
  assert_int_equal(bft_voteset_count_any(&vs, 7, 3, 7), 4);
  assert_int_equal(bft_voteset_count_any(&vs, 7, 3, 8), 1);
  /* only replicas below n count */
  assert_int_equal(bft_voteset_count(&vs, 4, 3, 7, d1), 2);
  assert_int_equal(bft_voteset_count_any(&vs, 4, 3, 7), 3);
  assert_int_equal(bft_voteset_count(&vs, BFT_MAX_REPLICAS + 5, 3, 7, d1), 3);
  assert_int_equal(bft_voteset_count(&vs, 0, 3, 7, d1), 0);
}

/* Votes in a set signed for real, so the certificates built from it verify. */
static void add_signed(const fixture *fx, bft_voteset *vs, uint32_t i) {
  uint8_t sig[BFT_SIG_LEN];
  sign_as(fx, i, TAG, fx->body, sizeof fx->body, sig);
  assert_int_equal(bft_voteset_add(vs, i, 1, 2, fx->digest, sig), BFT_VOTE_NEW);
}

static void test_voteset_qc(void **state) {
  fixture *fx = *state;
  set_n(fx, 7); /* q = 5 */
  bft_voteset vs;
  bft_voteset_clear(&vs);
  bft_qc qc;
  uint8_t other[BFT_DIGEST_LEN], sig[BFT_SIG_LEN];
  memset(other, 9, sizeof other);
  memset(sig, 0, sizeof sig);
  for (uint32_t i = 0; i < 4; i++) add_signed(fx, &vs, i);
  assert_int_equal(bft_voteset_add(&vs, 4, 1, 2, other, sig), BFT_VOTE_NEW);
  /* not enough: 4 matching of 5 needed; the output is left empty */
  memset(&qc, 0xee, sizeof qc);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, UINT32_MAX, &qc), 0);
  assert_int_equal(qc.count, 0);
  add_signed(fx, &vs, 6);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, UINT32_MAX, &qc), 1);
  const uint32_t want[5] = {0, 1, 2, 3, 6};
  assert_int_equal(qc.count, 5);
  assert_memory_equal(qc.ids, want, sizeof want);
  assert_int_equal(verify_both(fx, &qc, UINT32_MAX), 0);
  assert_int_equal(verify_both(fx, &qc, 6), 0);

  /* with 6 matching votes the 5 lowest are taken, unless `need` must be among them */
  add_signed(fx, &vs, 5);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, UINT32_MAX, &qc), 1);
  const uint32_t low[5] = {0, 1, 2, 3, 5};
  assert_memory_equal(qc.ids, low, sizeof low);
  assert_int_equal(verify_both(fx, &qc, 6), BFT_E_BAD_CERT); /* 6 not among them */
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, 6, &qc), 1);
  const uint32_t with6[5] = {0, 1, 2, 3, 6};
  assert_memory_equal(qc.ids, with6, sizeof with6);
  assert_int_equal(verify_both(fx, &qc, 6), 0);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, 0, &qc), 1);
  assert_memory_equal(qc.ids, low, sizeof low);
  /* `need` without a matching vote: nothing, however many others agree */
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, 4, &qc), 0);
  assert_int_equal(qc.count, 0);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, BFT_MAX_REPLICAS, &qc), 0);
  /* a replica above n never counts, not even as `need` */
  set_n(fx, 4); /* q = 3 */
  bft_voteset_clear(&vs);
  add_signed(fx, &vs, 0);
  add_signed(fx, &vs, 1);
  add_signed(fx, &vs, 5);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, UINT32_MAX, &qc), 0);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, 5, &qc), 0);
  /* other round or height: not counted */
  add_signed(fx, &vs, 3);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 2, 2, fx->digest, UINT32_MAX, &qc), 0);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 3, fx->digest, UINT32_MAX, &qc), 0);
  assert_int_equal(bft_voteset_qc(&vs, &fx->cfg, 1, 2, fx->digest, 3, &qc), 1);
  const uint32_t n4[3] = {0, 1, 3};
  assert_memory_equal(qc.ids, n4, sizeof n4);
  assert_int_equal(verify_both(fx, &qc, 3), 0);
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void test_qc_roundtrip(void **state) {
  fixture *fx = *state;
  const uint32_t ids[3] = {0, 2, 3};
  bft_qc c, back;
  make_qc(fx, ids, 3, &c);
  uint8_t buf[BFT_QC_SIGS_MAX];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  bft_qc_put(&w, &c);
  assert_int_equal(w.err, 0);
  assert_int_equal(w.len, 4 + 3 * BFT_QC_ENTRY);
  /* the layout: u32 count | (u32 id | sig)* */
  assert_int_equal(buf[0], 3);
  assert_int_equal(buf[4 + BFT_QC_ENTRY], 2);
  assert_memory_equal(buf + 4 + BFT_QC_ENTRY + 4, c.sigs[1], BFT_SIG_LEN);
  wire_reader r;
  wire_reader_init(&r, buf, w.len);
  bft_qc_view v;
  bft_qc_get(&r, &v);
  assert_int_equal(wire_reader_finish(&r), 0);
  assert_int_equal(v.count, 3);
  assert_ptr_equal(v.p, buf + 4);
  bft_qc_from_view(&v, &back);
  assert_memory_equal(&back, &c, sizeof c);

  /* NULL and empty both encode as count 0, which decodes to an empty view */
  wire_writer_init(&w, buf, sizeof buf);
  bft_qc_put(&w, NULL);
  memset(&c, 0, sizeof c);
  bft_qc_put(&w, &c);
  assert_int_equal(w.len, 8);
  wire_reader_init(&r, buf, w.len);
  bft_qc_get(&r, &v);
  assert_int_equal(v.count, 0);
  bft_qc_get(&r, &v);
  assert_int_equal(v.count, 0);
  assert_int_equal(wire_reader_finish(&r), 0);
  bft_qc_from_view(&v, &back);
  assert_int_equal(back.count, 0);
  assert_int_equal(bft_qc_verify(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &v, UINT32_MAX),
                   BFT_E_BAD_CERT);

  /* a full-size certificate (n = BFT_MAX_REPLICAS) fits BFT_QC_SIGS_MAX exactly */
  memset(&c, 0, sizeof c);
  c.count = BFT_QUORUM_MAX;
  for (uint32_t i = 0; i < c.count; i++) c.ids[i] = i;
  wire_writer_init(&w, buf, sizeof buf);
  bft_qc_put(&w, &c);
  assert_int_equal(w.err, 0);
  assert_int_equal(w.len, BFT_QC_SIGS_MAX);
}

static void test_qc_truncated_extended(void **state) {
  fixture *fx = *state;
  const uint32_t ids[3] = {1, 2, 3};
  bft_qc c;
  make_qc(fx, ids, 3, &c);
  uint8_t buf[BFT_QC_SIGS_MAX + 1];
  wire_writer w;
  wire_writer_init(&w, buf, BFT_QC_SIGS_MAX);
  bft_qc_put(&w, &c);
  uint32_t len = (uint32_t)w.len;
  for (uint32_t i = 0; i < len; i++) {
    wire_reader r;
    wire_reader_init(&r, buf, i);
    bft_qc_view v;
    bft_qc_get(&r, &v);
    assert_int_equal(wire_reader_finish(&r), BFT_E_TRUNCATED);
    assert_int_equal(v.count, 0);
    assert_int_equal(bft_qc_verify(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &v, UINT32_MAX),
                     BFT_E_BAD_CERT);
  }
  buf[len] = 0;
  wire_reader r;
  wire_reader_init(&r, buf, len + 1);
  bft_qc_view v;
  bft_qc_get(&r, &v);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TRAILING);
  /* a count above the largest quorum is refused before anything else is read */
  const uint8_t big[4] = {BFT_QUORUM_MAX + 1, 0, 0, 0};
  wire_reader_init(&r, big, sizeof big);
  bft_qc_get(&r, &v);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TOO_LARGE);
  assert_int_equal(v.count, 0);
  assert_null(v.p);
  /* a count that claims more entries than there are bytes */
  memcpy(buf, big, 4);
  buf[0] = 4;
  wire_reader_init(&r, buf, len);
  bft_qc_get(&r, &v);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TRUNCATED);
}

/* ---- verification -------------------------------------------------------------------------- */

static void test_verify_good(void **state) {
  fixture *fx = *state;
  const uint32_t ids[3] = {0, 1, 3};
  bft_qc c;
  make_qc(fx, ids, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), 0);
  assert_int_equal(verify_both(fx, &c, 0), 0);
  assert_int_equal(verify_both(fx, &c, 3), 0);
  set_n(fx, 7);
  const uint32_t ids7[5] = {1, 2, 4, 5, 6};
  make_qc(fx, ids7, 5, &c);
  assert_int_equal(verify_both(fx, &c, 6), 0);
}

static void test_verify_count(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t two[2] = {0, 1}, four[4] = {0, 1, 2, 3};
  make_qc(fx, two, 2, &c); /* 2f */
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, four, 4, &c); /* 2f + 2, all valid */
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  c.count = 0;
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  set_n(fx, 7);
  const uint32_t six[6] = {0, 1, 2, 3, 4, 5}, four7[4] = {0, 1, 2, 3};
  make_qc(fx, six, 6, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, four7, 4, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  /* an n beyond the key table is refused before any key is looked up */
  const uint32_t five[5] = {0, 1, 2, 3, 4};
  make_qc(fx, five, 5, &c);
  fx->cfg.n = BFT_MAX_REPLICAS + 1;
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
  set_n(fx, 7);
  /* a count beyond the array is refused, not read */
  c.count = BFT_QUORUM_MAX + 1;
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
}

static void test_verify_ids(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t dup[3] = {0, 1, 1}, dup0[3] = {0, 0, 1}, desc[3] = {3, 1, 0}, swap[3] = {0, 2, 1},
                 high[3] = {0, 1, 4}, huge[3] = {0, 1, UINT32_MAX};
  make_qc(fx, dup, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, dup0, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, desc, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, swap, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, high, 3, &c); /* id 4 >= n = 4 (though its key exists) */
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  make_qc(fx, huge, 3, &c);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
}

static void test_verify_need(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t ids[3] = {0, 1, 2};
  make_qc(fx, ids, 3, &c);
  assert_int_equal(verify_both(fx, &c, 2), 0);
  assert_int_equal(verify_both(fx, &c, 3), BFT_E_BAD_CERT);
  assert_int_equal(verify_both(fx, &c, 4), BFT_E_BAD_CERT);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX - 1), BFT_E_BAD_CERT);
}

static void test_verify_sig_bits(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t ids[3] = {0, 2, 3};
  make_qc(fx, ids, 3, &c);
  for (uint32_t k = 0; k < c.count; k++)
    for (uint32_t bit = 0; bit < 8 * BFT_SIG_LEN; bit++) {
      c.sigs[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
      assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &c, UINT32_MAX),
                       BFT_E_BAD_CERT);
      c.sigs[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), 0);
  /* and through the encoded form, one bit per signature byte */
  uint8_t buf[BFT_QC_SIGS_MAX];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  bft_qc_put(&w, &c);
  for (uint32_t k = 0; k < c.count; k++)
    for (uint32_t b = 0; b < BFT_SIG_LEN; b++) {
      uint8_t *p = buf + 4 + k * BFT_QC_ENTRY + 4 + b;
      *p ^= (uint8_t)(1u << (b % 8));
      wire_reader r;
      wire_reader_init(&r, buf, w.len);
      bft_qc_view v;
      bft_qc_get(&r, &v);
      assert_int_equal(bft_qc_verify(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &v, UINT32_MAX),
                       BFT_E_BAD_CERT);
      *p ^= (uint8_t)(1u << (b % 8));
    }
}

static void test_verify_moved_sig(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t ids[3] = {0, 1, 2};
  make_qc(fx, ids, 3, &c);
  /* the signatures swapped between two slots: each is valid, but not for that id */
  uint8_t t[BFT_SIG_LEN];
  memcpy(t, c.sigs[0], BFT_SIG_LEN);
  memcpy(c.sigs[0], c.sigs[2], BFT_SIG_LEN);
  memcpy(c.sigs[2], t, BFT_SIG_LEN);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  /* one replica's signature relabelled as another's (the signer id is in the statement, so
   * it fails even under a key that signed the same body) */
  make_qc(fx, ids, 3, &c);
  c.ids[2] = 3;
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
  /* one replica's signature copied into every slot */
  make_qc(fx, ids, 3, &c);
  memcpy(c.sigs[1], c.sigs[0], BFT_SIG_LEN);
  memcpy(c.sigs[2], c.sigs[0], BFT_SIG_LEN);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), BFT_E_BAD_CERT);
}

static void test_verify_wrong_statement(void **state) {
  fixture *fx = *state;
  bft_qc c;
  const uint32_t ids[3] = {1, 2, 3};
  make_qc(fx, ids, 3, &c);
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, "test/other", fx->body, sizeof fx->body, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
  for (size_t i = 0; i < sizeof fx->body; i++) {
    uint8_t body[sizeof fx->body];
    memcpy(body, fx->body, sizeof body);
    body[i] ^= 0x01;
    assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, body, sizeof body, &c, UINT32_MAX),
                     BFT_E_BAD_CERT);
  }
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body - 1, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
  /* another cluster's signatures */
  fx->cfg.cluster_id[0] ^= 1;
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, fx->body, sizeof fx->body, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
  fx->cfg.cluster_id[0] ^= 1;
  /* a body too long for any statement is refused, not truncated */
  uint8_t long_body[BFT_STMT_MAX];
  memset(long_body, 0, sizeof long_body);
  assert_int_equal(bft_qc_verify_qc(&fx->cfg, &fx->env, TAG, long_body, BFT_STMT_MAX - 3, &c, UINT32_MAX),
                   BFT_E_BAD_CERT);
  assert_int_equal(verify_both(fx, &c, UINT32_MAX), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stmt),
      cmocka_unit_test(test_voteset_outcomes),
      cmocka_unit_test(test_voteset_counts),
      cmocka_unit_test_setup_teardown(test_voteset_qc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qc_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qc_truncated_extended, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_need, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_sig_bits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_moved_sig, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_wrong_statement, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
