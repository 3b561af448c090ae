/* Signatures verify, fail on any flipped bit of message, signature or key, and fail across
 * domains (tag, cluster); digests; hex; key files and their permission checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/bft_crypto.h"

static const uint8_t CID_A[32] = {0xA};
static const uint8_t CID_B[32] = {0xB};

static void keypair(bft_keypair *kp, uint8_t s) {
  uint8_t seed[32];
  memset(seed, s, sizeof seed);
  assert_int_equal(bft_keypair_from_seed(kp, seed), 0);
}

static void test_sign_verify(void **st) {
  (void)st;
  bft_keypair kp;
  keypair(&kp, 1);
  const uint8_t msg[] = "pre-prepare v=1 n=7";
  uint8_t sig[64];
  assert_int_equal(bft_sign(&kp, CID_A, "pbft/prepare", msg, sizeof msg, sig), 0);
  assert_int_equal(bft_verify(kp.pk, CID_A, "pbft/prepare", msg, sizeof msg, sig), 0);
  /* Deterministic: Ed25519 signs the same statement the same way. */
  uint8_t sig2[64];
  bft_sign(&kp, CID_A, "pbft/prepare", msg, sizeof msg, sig2);
  assert_memory_equal(sig, sig2, 64);
}

static void test_flipped_bits_fail(void **st) {
  (void)st;
  bft_keypair kp;
  keypair(&kp, 2);
  uint8_t msg[24];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)i;
  uint8_t sig[64];
  bft_sign(&kp, CID_A, "t", msg, sizeof msg, sig);
  for (size_t bit = 0; bit < sizeof msg * 8; bit++) {
    msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(bft_verify(kp.pk, CID_A, "t", msg, sizeof msg, sig), BFT_E_BAD_SIG);
    msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  for (size_t bit = 0; bit < 64 * 8; bit++) {
    sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(bft_verify(kp.pk, CID_A, "t", msg, sizeof msg, sig), BFT_E_BAD_SIG);
    sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  for (size_t bit = 0; bit < 32 * 8; bit++) {
    uint8_t pk[32];
    memcpy(pk, kp.pk, 32);
    pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(bft_verify(pk, CID_A, "t", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  }
  assert_int_equal(bft_verify(kp.pk, CID_A, "t", msg, sizeof msg, sig), 0);
}

static void test_cross_domain_fails(void **st) {
  (void)st;
  bft_keypair kp, other;
  keypair(&kp, 3);
  keypair(&other, 4);
  const uint8_t msg[] = {1, 2, 3, 4};
  uint8_t sig[64];
  bft_sign(&kp, CID_A, "pbft/prepare", msg, sizeof msg, sig);
  assert_int_equal(bft_verify(kp.pk, CID_A, "pbft/commit", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  assert_int_equal(bft_verify(kp.pk, CID_B, "pbft/prepare", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  assert_int_equal(bft_verify(kp.pk, CID_A, "hotstuff/vote", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  assert_int_equal(bft_verify(other.pk, CID_A, "pbft/prepare", msg, sizeof msg, sig), BFT_E_BAD_SIG);
  /* Moving bytes between tag and message must not give the same statement. */
  uint8_t s1[32], s2[32];
  assert_int_equal(bft_statement(s1, CID_A, "ab", (const uint8_t *)"c", 1), 0);
  assert_int_equal(bft_statement(s2, CID_A, "a", (const uint8_t *)"bc", 2), 0);
  assert_memory_not_equal(s1, s2, 32);
  /* Tags are bounded and non-empty. */
  char longtag[BFT_TAG_MAX + 2];
  memset(longtag, 'x', sizeof longtag - 1);
  longtag[sizeof longtag - 1] = '\0';
  assert_int_equal(bft_sign(&kp, CID_A, longtag, msg, sizeof msg, sig), BFT_E_INVAL);
  assert_int_equal(bft_sign(&kp, CID_A, "", msg, sizeof msg, sig), BFT_E_INVAL);
  assert_int_equal(bft_verify(kp.pk, CID_A, longtag, msg, sizeof msg, sig), BFT_E_BAD_SIG);
}

static void test_digest(void **st) {
  (void)st;
  /* BLAKE2b-256 of the empty string (RFC 7693 parameters, 32-byte output). */
  static const char *empty = "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";
  uint8_t d[32], want[32];
  bft_digest(d, "", 0);
  assert_int_equal(bft_hex_decode(want, 32, empty), 0);
  assert_memory_equal(d, want, 32);
  uint8_t big[1000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  bft_digest(d, big, sizeof big);
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, big, 333);
  bft_digest_update(&c, big + 333, sizeof big - 333);
  bft_digest_final(&c, want);
  assert_memory_equal(d, want, 32);
  uint8_t id1[32], id2[32];
  bft_cluster_id_from_name(id1, "alpha");
  bft_cluster_id_from_name(id2, "alphb");
  assert_memory_not_equal(id1, id2, 32);
}

static void test_hex_and_ct(void **st) {
  (void)st;
  uint8_t in[5] = {0, 1, 0xab, 0xff, 0x10}, out[5];
  char hex[11];
  bft_hex_encode(hex, in, 5);
  assert_string_equal(hex, "0001abff10");
  assert_int_equal(bft_hex_decode(out, 5, hex), 0);
  assert_memory_equal(in, out, 5);
  assert_int_equal(bft_hex_decode(out, 5, "0001abff1"), BFT_E_MALFORMED);
  assert_int_equal(bft_hex_decode(out, 5, "0001abff1g"), BFT_E_MALFORMED);
  assert_int_equal(bft_hex_decode(out, 5, "0001abff1000"), BFT_E_MALFORMED);
  assert_true(bft_ct_equal(in, in, 5));
  out[4] ^= 1;
  assert_false(bft_ct_equal(in, out, 5));
}

static char tmpdir[64];

static int setup_dir(void **st) {
  (void)st;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/bft-crypto-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **st) {
  (void)st;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd);
}

static void test_keyfile(void **st) {
  (void)st;
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/replica-0.key", tmpdir);
  bft_keypair kp, back;
  keypair(&kp, 9);
  assert_int_equal(bft_keyfile_save(path, "replica", 0, &kp, err, sizeof err), 0);
  struct stat s;
  assert_int_equal(stat(path, &s), 0);
  assert_int_equal(s.st_mode & 0777, 0600);
  assert_int_equal(bft_keyfile_load(path, &back, err, sizeof err), 0);
  assert_memory_equal(kp.pk, back.pk, 32);
  assert_memory_equal(kp.sk, back.sk, 64);

  /* Loose permissions are refused, with a message naming the file and the fix. */
  const mode_t loose[] = {0644, 0640, 0604, 0660, 0602};
  for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
    assert_int_equal(chmod(path, loose[i]), 0);
    err[0] = '\0';
    assert_int_equal(bft_keyfile_load(path, &back, err, sizeof err), BFT_E_PERM);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "chmod 600"));
  }
  assert_int_equal(chmod(path, 0600), 0);
  /* Saving again over a loose file tightens it. */
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(bft_keyfile_save(path, "replica", 0, &kp, err, sizeof err), 0);
  assert_int_equal(stat(path, &s), 0);
  assert_int_equal(s.st_mode & 0777, 0600);

  /* A public key that does not belong to the seed is refused. */
  char bad[128];
  snprintf(bad, sizeof bad, "%s/bad.key", tmpdir);
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fprintf(f, "public_key = %064d\nsecret_seed = %064d\n", 1, 2);
  fclose(f);
  chmod(bad, 0600);
  assert_int_equal(bft_keyfile_load(bad, &back, err, sizeof err), BFT_E_CONFIG);
  assert_non_null(strstr(err, "does not match"));
  f = fopen(bad, "w");
  fprintf(f, "public_key = zz\n");
  fclose(f);
  assert_int_equal(bft_keyfile_load(bad, &back, err, sizeof err), BFT_E_CONFIG);
  f = fopen(bad, "w");
  fprintf(f, "this is not a key file\n");
  fclose(f);
  assert_int_equal(bft_keyfile_load(bad, &back, err, sizeof err), BFT_E_CONFIG);
  snprintf(bad, sizeof bad, "%s/missing.key", tmpdir);
  assert_int_equal(bft_keyfile_load(bad, &back, err, sizeof err), BFT_E_IO);
  assert_non_null(strstr(err, "missing.key"));
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_verify),
      cmocka_unit_test(test_flipped_bits_fail),
      cmocka_unit_test(test_cross_domain_fails),
      cmocka_unit_test(test_digest),
      cmocka_unit_test(test_hex_and_ct),
      cmocka_unit_test_setup_teardown(test_keyfile, setup_dir, teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
