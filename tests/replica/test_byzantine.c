/* Tests of the faulty-replica modes (replica/byzantine.c): parsing of --byzantine specs with a
 * clear error for bad input, and what each mode does to outgoing frames — silent and drop-to
 * drop, withhold drops data only, corrupt changes a field and signs it validly, bad-sig leaves
 * an invalid signature, replay resends only what was sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/pbft/pbft.h"
#include "replica/byzantine.h"

static const uint8_t CID[BFT_CLUSTER_ID_LEN] = {7};

static int ed_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  return bft_sign(ctx, CID, tag, msg, len, sig);
}

static void test_parse(void **state) {
  (void)state;
  rt_byz_config c;
  char err[256], desc[128];
  assert_int_equal(rt_byz_parse("silent", 4, 1, &c, err, sizeof err), 0);
  assert_int_equal(c.modes, RT_BYZ_SILENT);
  assert_int_equal(rt_byz_parse("delay:900,drop-to:0+3,corrupt", 4, 1, &c, err, sizeof err), 0);
  assert_int_equal(c.modes, RT_BYZ_DELAY | RT_BYZ_DROP_TO | RT_BYZ_CORRUPT);
  assert_int_equal(c.delay_ms, 900);
  assert_int_equal(c.drop_to, (1ull << 0) | (1ull << 3));
  rt_byz_describe(&c, desc, sizeof desc);
  assert_string_equal(desc, "delay:900,drop-to:0+3,corrupt");
  assert_int_equal(rt_byz_parse("bad-sig,replay,withhold", 4, 1, &c, err, sizeof err), 0);
  assert_int_equal(c.modes, RT_BYZ_BAD_SIG | RT_BYZ_REPLAY | RT_BYZ_WITHHOLD);
  assert_int_equal(rt_byz_parse("equivocate,delay:100", 4, 1, &c, err, sizeof err), 0);
  assert_int_equal(c.modes, RT_BYZ_EQUIVOCATE | RT_BYZ_DELAY);
  rt_byz_describe(&c, desc, sizeof desc);
  assert_string_equal(desc, "equivocate,delay:100");
  assert_non_null(strstr(rt_byz_help(), "equivocate"));

  const char *bad[] = {"", "loud", "delay", "delay:", "delay:0", "delay:abc", "delay:999999999", "drop-to",
                       "drop-to:", "drop-to:1" /* self */, "drop-to:4" /* >= n */, "drop-to:0+", "silent:3",
                       "corrupt,,", "equivocate:1", "equivocates"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(rt_byz_parse(bad[i], 4, 1, &c, err, sizeof err), BFT_E_INVAL);
    assert_true(strstr(err, "--byzantine") != NULL); /* one clear line naming the flag */
  }
}

/* The twin split: the replica before self in the rotation hears both copies, the rest are
 * halved between them, and every other replica is reached by at least one copy. */
static void test_twin_split(void **state) {
  (void)state;
  assert_int_equal(rt_byz_twin_reach(4, 0, 0), 0);
  assert_int_equal(rt_byz_twin_reach(4, 0, 1), RT_BYZ_TWIN_A);
  assert_int_equal(rt_byz_twin_reach(4, 0, 2), RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(4, 0, 3), RT_BYZ_TWIN_A | RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(4, 2, 3), RT_BYZ_TWIN_A);
  assert_int_equal(rt_byz_twin_reach(4, 2, 0), RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(4, 2, 1), RT_BYZ_TWIN_A | RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(7, 3, 2), RT_BYZ_TWIN_A | RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(7, 3, 4), RT_BYZ_TWIN_A);
  assert_int_equal(rt_byz_twin_reach(7, 3, 6), RT_BYZ_TWIN_A);
  assert_int_equal(rt_byz_twin_reach(7, 3, 0), RT_BYZ_TWIN_B);
  assert_int_equal(rt_byz_twin_reach(7, 3, 1), RT_BYZ_TWIN_B);
  for (uint32_t n = 4; n <= 16; n++)
    for (uint32_t self = 0; self < n; self++) {
      uint32_t a = 0, b = 0, both = 0;
      for (uint32_t p = 0; p < n; p++) {
        uint32_t r = rt_byz_twin_reach(n, self, p);
        if (p != self) assert_int_not_equal(r, 0);
        a += r == RT_BYZ_TWIN_A;
        b += r == RT_BYZ_TWIN_B;
        both += r == (RT_BYZ_TWIN_A | RT_BYZ_TWIN_B);
      }
      assert_int_equal(both, 1);
      assert_true(a >= 1 && b >= 1 && (a > b ? a - b : b - a) <= 1);
    }
  assert_int_equal(rt_byz_twin_side(1), 1);
  assert_int_equal(rt_byz_twin_side(2), 0);
}

typedef struct fixture {
  bft_keypair kp;
  rt_crypto cr;
  uint8_t msg[200], out[200];
  uint32_t len;
  uint8_t kind;
} fixture;

static void make(fixture *f) {
  uint8_t seed[32] = {1};
  assert_int_equal(bft_keypair_from_seed(&f->kp, seed), 0);
  f->cr = (rt_crypto){.ctx = &f->kp, .sign = ed_sign};
  uint32_t plen = 52; /* a PBFT vote statement's size */
  for (uint32_t i = 0; i < plen; i++) f->msg[i] = (uint8_t)i;
  assert_int_equal(bft_sign(&f->kp, CID, PBFT_TAG_PREPARE, f->msg, plen, f->msg + plen), 0);
  f->len = plen + BFT_SIG_LEN;
  f->kind = (uint8_t)(WIRE_KIND_ENGINE + PBFT_MSG_PREPARE);
}

static int verdict(rt_byz *b, fixture *f, uint32_t to, uint8_t kind) {
  return rt_byz_outgoing(b, to, kind, f->msg, f->len, f->out, &f->cr);
}

static void test_drop_modes(void **state) {
  (void)state;
  fixture f;
  make(&f);
  rt_byz b;
  rt_byz_config c = {.modes = RT_BYZ_SILENT};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 1);
  assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_DROP);
  assert_int_equal(verdict(&b, &f, 2, WIRE_KIND_FETCH_REPLY), RT_BYZ_DROP);
  rt_byz_free(&b);

  c = (rt_byz_config){.modes = RT_BYZ_DROP_TO, .drop_to = 1ull << 2};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 1);
  assert_int_equal(verdict(&b, &f, 2, f.kind), RT_BYZ_DROP);
  assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_SEND);
  assert_int_equal(verdict(&b, &f, 3, f.kind), RT_BYZ_SEND);
  rt_byz_free(&b);

  /* equivocate changes no frame itself (the twins' routing does) */
  c = (rt_byz_config){.modes = RT_BYZ_EQUIVOCATE};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 1);
  assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_SEND);
  assert_int_equal(verdict(&b, &f, 2, WIRE_KIND_FETCH_REPLY), RT_BYZ_SEND);
  rt_byz_free(&b);

  c = (rt_byz_config){.modes = RT_BYZ_WITHHOLD};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 1);
  assert_int_equal(verdict(&b, &f, 0, WIRE_KIND_FETCH_REPLY), RT_BYZ_DROP); /* catch-up data */
  assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_SEND);               /* votes still go */
  assert_int_equal(b.withheld, 1);
  rt_byz_free(&b);
}

static void test_corrupt_signs_validly(void **state) {
  (void)state;
  fixture f;
  make(&f);
  rt_byz b;
  rt_byz_config c = {.modes = RT_BYZ_CORRUPT};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 42);
  uint32_t replaced = 0;
  for (int i = 0; i < 64; i++) {
    int v = verdict(&b, &f, 0, f.kind);
    if (v == RT_BYZ_SEND) continue;
    assert_int_equal(v, RT_BYZ_REPLACED);
    replaced++;
    uint32_t plen = f.len - BFT_SIG_LEN;
    assert_memory_not_equal(f.out, f.msg, plen); /* a field changed */
    assert_int_equal(bft_verify(f.kp.pk, CID, PBFT_TAG_PREPARE, f.out, plen, f.out + plen), 0);
  }
  assert_true(replaced > 10 && replaced < 54); /* about half */
  assert_int_equal(b.corrupted, replaced);
  rt_byz_free(&b);
}

static void test_bad_sig_and_replay(void **state) {
  (void)state;
  fixture f;
  make(&f);
  rt_byz b;
  rt_byz_config c = {.modes = RT_BYZ_BAD_SIG};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 3);
  assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_REPLACED);
  uint32_t plen = f.len - BFT_SIG_LEN;
  assert_memory_equal(f.out, f.msg, plen);
  assert_int_equal(bft_verify(f.kp.pk, CID, PBFT_TAG_PREPARE, f.out, plen, f.out + plen), BFT_E_BAD_SIG);
  assert_int_equal(verdict(&b, &f, 0, WIRE_KIND_FETCH_REPLY), RT_BYZ_SEND); /* not an engine message */
  rt_byz_free(&b);

  c = (rt_byz_config){.modes = RT_BYZ_REPLAY};
  rt_byz_init(&b, &c, &pbft_engine_ops, 4, 1, 5);
  uint32_t to, len;
  uint8_t kind;
  const uint8_t *body;
  assert_int_equal(rt_byz_replay(&b, &to, &kind, &body, &len), 0); /* nothing sent yet */
  uint32_t replays = 0;
  for (int i = 0; i < 300; i++) {
    assert_int_equal(verdict(&b, &f, 0, f.kind), RT_BYZ_SEND);
    if (!rt_byz_replay(&b, &to, &kind, &body, &len)) continue;
    replays++;
    assert_true(to < 4 && to != 1);
    assert_int_equal(kind, f.kind);
    assert_int_equal(len, f.len);
    assert_memory_equal(body, f.msg, len); /* exactly a message it sent before */
  }
  assert_true(replays > 30);
  assert_true(b.nring <= RT_BYZ_RING && b.ring_bytes <= RT_BYZ_RING_BYTES);
  rt_byz_free(&b);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_twin_split),
      cmocka_unit_test(test_drop_modes),
      cmocka_unit_test(test_corrupt_signs_validly),
      cmocka_unit_test(test_bad_sig_and_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
