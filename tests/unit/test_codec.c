/* Message codecs above the wire layer: client requests (signed, tamper-evident, replay across
 * domains rejected), batches, replies, kv operations and ledger blocks. Every proper prefix
 * and every extension by one byte of a valid encoding is rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/ledger.h"
#include "protocols/request.h"

static bft_cluster *cl;
static bft_keypair client_kp, replica_kp[4], stranger_kp;

static void kp_from(bft_keypair *kp, uint8_t s) {
  uint8_t seed[32];
  memset(seed, s, sizeof seed);
  bft_keypair_from_seed(kp, seed);
}

static int setup(void **st) {
  (void)st;
  cl = calloc(1, sizeof *cl);
  snprintf(cl->name, sizeof cl->name, "codec");
  bft_cluster_id_from_name(cl->id, cl->name);
  cl->n = 4;
  cl->f = 1;
  for (int i = 0; i < 4; i++) {
    kp_from(&replica_kp[i], (uint8_t)(10 + i));
    memcpy(cl->replicas[i].pk, replica_kp[i].pk, 32);
  }
  kp_from(&client_kp, 1);
  kp_from(&stranger_kp, 2);
  cl->nclients = 1;
  memcpy(cl->clients[0].pk, client_kp.pk, 32);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  free(cl);
  return 0;
}

typedef int (*decode_fn)(const uint8_t *p, uint32_t len);

static void all_prefixes_and_extension_fail(const uint8_t *p, uint32_t len, decode_fn fn) {
  assert_int_equal(fn(p, len), 0);
  for (uint32_t i = 0; i < len; i++) assert_int_not_equal(fn(p, i), 0);
  uint8_t *longer = malloc(len + 1);
  memcpy(longer, p, len);
  longer[len] = 0;
  assert_int_equal(fn(longer, len + 1), BFT_E_TRAILING);
  free(longer);
}

static int dec_request(const uint8_t *p, uint32_t len) {
  bft_request rq;
  return bft_request_decode(p, len, &rq);
}
static int dec_kv(const uint8_t *p, uint32_t len) {
  bft_kv_op op;
  return bft_kv_decode(p, len, &op);
}
static int dec_block(const uint8_t *p, uint32_t len) {
  bft_block b;
  return bft_block_decode(p, len, &b);
}
static int dec_reply(const uint8_t *p, uint32_t len) {
  bft_reply rp;
  return bft_reply_verify(cl, p, len, &rp);
}
static int dec_batch(const uint8_t *p, uint32_t len) { return bft_batch_check(NULL, p, len); }

static int make_request(uint8_t *buf, uint32_t cap, const bft_keypair *kp, uint64_t seq) {
  uint8_t op[64];
  bft_kv_op kv = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"k", .key_len = 1,
                  .value = (const uint8_t *)"v1", .value_len = 2};
  int ol = bft_kv_encode(&kv, op, sizeof op);
  assert_true(ol > 0);
  return bft_request_encode(kp, cl->id, seq, op, (uint32_t)ol, buf, cap);
}

static void test_request(void **st) {
  (void)st;
  uint8_t buf[512];
  int len = make_request(buf, sizeof buf, &client_kp, 42);
  assert_true(len > 0);
  bft_request rq;
  assert_int_equal(bft_request_verify(cl->id, buf, (uint32_t)len, &rq), 0);
  assert_int_equal(rq.seq, 42);
  assert_memory_equal(rq.client, client_kp.pk, 32);
  bft_kv_op op;
  assert_int_equal(bft_kv_decode(rq.op, rq.op_len, &op), 0);
  assert_int_equal(op.opcode, BFT_KV_PUT);
  assert_memory_equal(op.value, "v1", 2);
  all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_request);
  /* Any flipped byte breaks the signature (or the structure). */
  for (int i = 0; i < len; i++) {
    buf[i] ^= 0x01;
    assert_int_not_equal(bft_request_verify(cl->id, buf, (uint32_t)len, &rq), 0);
    buf[i] ^= 0x01;
  }
  /* The same bytes under another cluster id do not verify. */
  uint8_t other[32];
  bft_cluster_id_from_name(other, "other");
  assert_int_equal(bft_request_verify(other, buf, (uint32_t)len, &rq), BFT_E_BAD_SIG);
  /* Client sequence numbers start at 1. */
  len = make_request(buf, sizeof buf, &client_kp, 0);
  assert_int_equal(bft_request_decode(buf, (uint32_t)len, &rq), BFT_E_MALFORMED);
  /* Oversized op is refused when encoding. */
  static uint8_t bigop[BFT_MAX_OP_BYTES + 1];
  static uint8_t bigbuf[BFT_MAX_REQUEST_BYTES + 16];
  assert_int_equal(bft_request_encode(&client_kp, cl->id, 1, bigop, sizeof bigop, bigbuf, sizeof bigbuf),
                   BFT_E_TOO_LARGE);
}

/* K(replica, client) is the same at both ends, differs per pair and per cluster. */
static void test_session_key(void **st) {
  (void)st;
  uint8_t kr[BFT_MAC_KEY_LEN], kc[BFT_MAC_KEY_LEN], k2[BFT_MAC_KEY_LEN], k3[BFT_MAC_KEY_LEN];
  assert_int_equal(bft_session_key(&replica_kp[1], client_kp.pk, 1, cl->id, kr), 0);
  assert_int_equal(bft_session_key(&client_kp, replica_kp[1].pk, 0, cl->id, kc), 0);
  assert_memory_equal(kr, kc, sizeof kr);
  assert_int_equal(bft_session_key(&replica_kp[2], client_kp.pk, 1, cl->id, k2), 0);
  assert_memory_not_equal(kr, k2, sizeof kr);
  uint8_t other[32];
  bft_cluster_id_from_name(other, "other");
  assert_int_equal(bft_session_key(&replica_kp[1], client_kp.pk, 1, other, k3), 0);
  assert_memory_not_equal(kr, k3, sizeof kr);
  /* The side decides the order of the keys in the derivation: swapping roles differs. */
  assert_int_equal(bft_session_key(&replica_kp[1], client_kp.pk, 0, cl->id, k3), 0);
  assert_memory_not_equal(kr, k3, sizeof kr);
  /* A public key that is not a curve point has no X25519 form. */
  uint8_t bad[32];
  memset(bad, 0xff, sizeof bad);
  assert_int_equal(bft_session_key(&replica_kp[1], bad, 1, cl->id, k3), BFT_E_CRYPTO);
  /* MACs: tag-separated, any flipped byte fails, length-checked. */
  uint8_t m1[32], m2[32];
  bft_mac(kr, "a", (const uint8_t *)"msg", 3, m1, sizeof m1);
  bft_mac(kr, "b", (const uint8_t *)"msg", 3, m2, sizeof m2);
  assert_memory_not_equal(m1, m2, sizeof m1);
  assert_int_equal(bft_mac_check(kr, "a", (const uint8_t *)"msg", 3, m1, sizeof m1), 0);
  m1[5] ^= 1;
  assert_int_equal(bft_mac_check(kr, "a", (const uint8_t *)"msg", 3, m1, sizeof m1), BFT_E_BAD_SIG);
  assert_int_equal(bft_mac_check(kr, "a", (const uint8_t *)"msg", 3, m1, 8), BFT_E_BAD_SIG);
  m1[5] ^= 1;
  /* The definition, computed here without the library: keyed BLAKE2b over
   * "bft-mac-v1" || u8 len(tag) || tag || msg. A context (key and tag absorbed once) gives the
   * same bytes, any number of times, and checks only its own length. */
  uint8_t want[32], in[11 + 1 + 3] = "bft-mac-v1";
  in[10] = 1;
  in[11] = 'a';
  memcpy(in + 12, "msg", 3);
  crypto_generichash(want, sizeof want, in, sizeof in, kr, BFT_MAC_KEY_LEN);
  assert_memory_equal(m1, want, sizeof want);
  bft_mac_ctx ctx;
  bft_mac_ctx_init(&ctx, kr, "a", sizeof m2);
  for (int i = 0; i < 2; i++) {
    memset(m2, 0, sizeof m2);
    bft_mac_ctx_mac(&ctx, (const uint8_t *)"msg", 3, m2);
    assert_memory_equal(m2, want, sizeof want);
  }
  assert_int_equal(bft_mac_ctx_check(&ctx, (const uint8_t *)"msg", 3, want, sizeof want), 0);
  assert_int_equal(bft_mac_ctx_check(&ctx, (const uint8_t *)"msG", 3, want, sizeof want), BFT_E_BAD_SIG);
  assert_int_equal(bft_mac_ctx_check(&ctx, (const uint8_t *)"msg", 3, want, 16), BFT_E_BAD_SIG);
}

/* v2: signed like v1 (replies are MAC'd); v3: an authenticator, one MAC per replica, that only
 * the replica holding the pairwise key can check, and no signature. */
static void test_request_versions(void **st) {
  (void)st;
  uint8_t op[64], buf[1024];
  bft_kv_op kv = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"k", .key_len = 1,
                  .value = (const uint8_t *)"v", .value_len = 1};
  int ol = bft_kv_encode(&kv, op, sizeof op);
  uint8_t keys[4][BFT_MAC_KEY_LEN];
  bft_session_mac macs[4];
  for (int i = 0; i < 4; i++) {
    assert_int_equal(bft_session_key(&client_kp, replica_kp[i].pk, 0, cl->id, keys[i]), 0);
    bft_session_mac_init(&macs[i], keys[i]);
  }
  int len = bft_request_encode_v(&client_kp, cl->id, BFT_REQUEST_V_MAC_REPLY, NULL, 0, 5, op, (uint32_t)ol, buf, sizeof buf);
  assert_true(len > 0);
  bft_request rq;
  assert_int_equal(bft_request_verify(cl->id, buf, (uint32_t)len, &rq), 0);
  assert_int_equal(rq.version, BFT_REQUEST_V_MAC_REPLY);
  assert_true(bft_request_wants_mac(&rq));
  all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_request);

  len = bft_request_encode_v(&client_kp, cl->id, BFT_REQUEST_V_MAC, macs, 4, 6, op,
                             (uint32_t)ol, buf, sizeof buf);
  assert_true(len > 0);
  all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_request);
  assert_int_equal(bft_request_decode(buf, (uint32_t)len, &rq), 0);
  assert_int_equal(rq.nauth, 4);
  assert_null(rq.sig);
  assert_int_equal(bft_request_verify(cl->id, buf, (uint32_t)len, &rq), BFT_E_BAD_SIG); /* nothing signed */
  for (uint32_t i = 0; i < 4; i++) {
    uint8_t kr[BFT_MAC_KEY_LEN];
    bft_session_mac mr;
    assert_int_equal(bft_session_key(&replica_kp[i], client_kp.pk, 1, cl->id, kr), 0);
    bft_session_mac_init(&mr, kr);
    assert_int_equal(bft_request_check_mac(&rq, buf, i, 4, &mr), 0);
    assert_int_equal(bft_request_check_mac(&rq, buf, (i + 1) % 4, 4, &mr), BFT_E_BAD_SIG); /* another's entry */
    assert_int_equal(bft_request_check_mac(&rq, buf, i, 7, &mr), BFT_E_BAD_SIG);           /* wrong n */
  }
  /* A changed op breaks every entry. */
  uint8_t kr0[BFT_MAC_KEY_LEN];
  bft_session_mac mr0;
  bft_session_key(&replica_kp[0], client_kp.pk, 1, cl->id, kr0);
  bft_session_mac_init(&mr0, kr0);
  buf[1 + 32 + 8 + 4] ^= 1;
  assert_int_equal(bft_request_decode(buf, (uint32_t)len, &rq), 0);
  assert_int_equal(bft_request_check_mac(&rq, buf, 0, 4, &mr0), BFT_E_BAD_SIG);
  buf[1 + 32 + 8 + 4] ^= 1;
  /* In a batch: only a protocol-only cluster lets a third party pass it (structure only). */
  uint8_t batch[2048];
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  assert_int_equal(bft_batch_add(&bw, buf, (uint32_t)len), 0);
  uint32_t bl = bft_batch_end(&bw);
  assert_int_equal(bft_batch_check(cl, batch, bl), BFT_E_NOT_PERMITTED);
  cl->protocol_only = 1;
  assert_int_equal(bft_batch_check(cl, batch, bl), 0);
  cl->protocol_only = 0;
  /* An unknown version is refused; v3 without keys cannot be made. */
  assert_int_equal(bft_request_encode_v(&client_kp, cl->id, 4, NULL, 0, 7, op, (uint32_t)ol, buf, sizeof buf),
                   BFT_E_VERSION);
  assert_int_equal(bft_request_encode_v(&client_kp, cl->id, BFT_REQUEST_V_MAC, NULL, 4, 7, op, (uint32_t)ol, buf,
                                        sizeof buf), BFT_E_INVAL);
}

/* v2 replies: MAC under K(replica, client); refused without the keys, by another replica's key,
 * or tampered; v1 replies still verify through the same call. */
static void test_reply_mac(void **st) {
  (void)st;
  uint8_t key[BFT_MAC_KEY_LEN], buf[512];
  bft_session_mac keys[4], kr;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(bft_session_key(&client_kp, replica_kp[i].pk, 0, cl->id, key), 0);
    bft_session_mac_init(&keys[i], key);
  }
  assert_int_equal(bft_session_key(&replica_kp[2], client_kp.pk, 1, cl->id, key), 0);
  bft_session_mac_init(&kr, key);
  bft_reply rp = {.replica = 2, .seq = 9, .height = 3, .status = BFT_KV_OK, .result = (const uint8_t *)"ok",
                  .result_len = 2};
  memcpy(rp.client, client_kp.pk, 32);
  int len = bft_reply_encode_mac(&rp, &kr, buf, sizeof buf);
  assert_true(len > 0);
  bft_reply out;
  assert_int_equal(bft_reply_open(cl, keys, buf, (uint32_t)len, &out), 0);
  assert_int_equal(out.seq, 9);
  assert_int_equal(out.replica, 2);
  assert_memory_equal(out.result, "ok", 2);
  assert_int_equal(bft_reply_open(cl, NULL, buf, (uint32_t)len, &out), BFT_E_BAD_SIG);
  assert_int_equal(bft_reply_verify(cl, buf, (uint32_t)len, &out), BFT_E_BAD_SIG);
  /* Claiming to be replica 1 with replica 2's key fails. */
  buf[1] = 1;
  assert_int_equal(bft_reply_open(cl, keys, buf, (uint32_t)len, &out), BFT_E_BAD_SIG);
  buf[1] = 2;
  for (int i = 5; i < len; i++) {
    buf[i] ^= 0x20;
    assert_int_not_equal(bft_reply_open(cl, keys, buf, (uint32_t)len, &out), 0);
    buf[i] ^= 0x20;
  }
  rp.replica = 1;
  len = bft_reply_encode(&replica_kp[1], cl->id, &rp, buf, sizeof buf);
  assert_int_equal(bft_reply_open(cl, keys, buf, (uint32_t)len, &out), 0);
}

static void test_batch(void **st) {
  (void)st;
  uint8_t r1[512], r2[512], batch[2048];
  int l1 = make_request(r1, sizeof r1, &client_kp, 1);
  int l2 = make_request(r2, sizeof r2, &client_kp, 2);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  assert_int_equal(bft_batch_add(&bw, r1, (uint32_t)l1), 0);
  assert_int_equal(bft_batch_add(&bw, r2, (uint32_t)l2), 0);
  uint32_t bl = bft_batch_end(&bw);
  assert_int_equal(bft_batch_check(cl, batch, bl), 0);
  bft_batch_reader br;
  assert_int_equal(bft_batch_open(&br, batch, bl), 0);
  const uint8_t *p;
  uint32_t len;
  assert_int_equal(bft_batch_next(&br, &p, &len), 1);
  assert_int_equal(len, (uint32_t)l1);
  assert_int_equal(bft_batch_next(&br, &p, &len), 1);
  assert_memory_equal(p, r2, (size_t)l2);
  assert_int_equal(bft_batch_next(&br, &p, &len), 0);
  all_prefixes_and_extension_fail(batch, bl, dec_batch);
  /* A request from a client the cluster does not permit poisons the batch. */
  int l3 = make_request(r2, sizeof r2, &stranger_kp, 1);
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, r1, (uint32_t)l1);
  bft_batch_add(&bw, r2, (uint32_t)l3);
  bl = bft_batch_end(&bw);
  assert_int_equal(bft_batch_check(NULL, batch, bl), 0);
  assert_int_equal(bft_batch_check(cl, batch, bl), BFT_E_NOT_PERMITTED);
  /* A tampered request poisons it too. */
  batch[bl - 1] ^= 1;
  assert_int_equal(bft_batch_check(cl, batch, bl), BFT_E_BAD_SIG);
  /* The empty batch. */
  uint8_t e[4];
  assert_int_equal(bft_batch_encoded_empty(e), 4);
  assert_int_equal(bft_batch_check(cl, e, 4), 0);
  /* A count above the maximum is refused before reading further. */
  uint8_t huge[4] = {0xFF, 0xFF, 0, 0};
  assert_int_equal(bft_batch_check(NULL, huge, 4), BFT_E_TOO_LARGE);
  /* Builder refuses what would not fit. */
  uint8_t tiny[16];
  bft_batch_begin(&bw, tiny, sizeof tiny);
  assert_int_equal(bft_batch_add(&bw, r1, (uint32_t)l1), BFT_E_FULL);
}

static void test_reply(void **st) {
  (void)st;
  bft_reply rp = {.replica = 2, .seq = 9, .height = 17, .status = BFT_KV_OK,
                  .result = (const uint8_t *)"value", .result_len = 5};
  memcpy(rp.client, client_kp.pk, 32);
  uint8_t buf[512];
  int len = bft_reply_encode(&replica_kp[2], cl->id, &rp, buf, sizeof buf);
  assert_true(len > 0);
  bft_reply back;
  assert_int_equal(bft_reply_verify(cl, buf, (uint32_t)len, &back), 0);
  assert_int_equal(back.replica, 2);
  assert_int_equal(back.height, 17);
  assert_memory_equal(back.result, "value", 5);
  all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_reply);
  /* Claiming to be another replica fails: the signature is replica 2's. */
  rp.replica = 1;
  len = bft_reply_encode(&replica_kp[2], cl->id, &rp, buf, sizeof buf);
  assert_int_equal(bft_reply_verify(cl, buf, (uint32_t)len, &back), BFT_E_BAD_SIG);
  rp.replica = 7;
  len = bft_reply_encode(&replica_kp[2], cl->id, &rp, buf, sizeof buf);
  assert_int_equal(bft_reply_verify(cl, buf, (uint32_t)len, &back), BFT_E_UNKNOWN_SENDER);
  /* A request signature replayed as a reply signature fails (domain separation). */
  uint8_t stmt[64], sig[64];
  memset(stmt, 3, sizeof stmt);
  bft_sign(&replica_kp[0], cl->id, BFT_TAG_REQUEST, stmt, sizeof stmt, sig);
  assert_int_equal(bft_verify(replica_kp[0].pk, cl->id, BFT_TAG_REPLY, stmt, sizeof stmt, sig), BFT_E_BAD_SIG);
}

static void test_kv(void **st) {
  (void)st;
  const bft_kv_op ops[] = {
      {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"a", .key_len = 1, .value = (const uint8_t *)"b", .value_len = 1},
      {.opcode = BFT_KV_GET, .key = (const uint8_t *)"a", .key_len = 1},
      {.opcode = BFT_KV_DEL, .key = (const uint8_t *)"", .key_len = 0},
      {.opcode = BFT_KV_CAS, .key = (const uint8_t *)"a", .key_len = 1, .value = (const uint8_t *)"new",
       .value_len = 3, .expected = (const uint8_t *)"b", .expected_len = 1},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    uint8_t buf[64];
    int len = bft_kv_encode(&ops[i], buf, sizeof buf);
    assert_true(len > 0);
    bft_kv_op back;
    assert_int_equal(bft_kv_decode(buf, (uint32_t)len, &back), 0);
    assert_int_equal(back.opcode, ops[i].opcode);
    assert_int_equal(back.key_len, ops[i].key_len);
    assert_int_equal(back.value_len, ops[i].value_len);
    assert_int_equal(back.expected_len, ops[i].expected_len);
    all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_kv);
  }
  uint8_t bad[5] = {9, 0, 0, 0, 0};
  bft_kv_op op;
  assert_int_equal(bft_kv_decode(bad, sizeof bad, &op), BFT_E_MALFORMED);
  bft_kv_op big = {.opcode = BFT_KV_GET, .key_len = BFT_KV_MAX_KEY + 1};
  uint8_t buf[8];
  assert_int_equal(bft_kv_encode(&big, buf, sizeof buf), BFT_E_TOO_LARGE);
}

static void test_block(void **st) {
  (void)st;
  uint8_t batch[4], buf[1024];
  uint32_t bl = bft_batch_encoded_empty(batch);
  bft_block b = {.height = 1, .protocol = "pbft", .cert = (const uint8_t *)"xyz", .cert_len = 3,
                 .batch = batch, .batch_len = bl};
  memcpy(b.prev_hash, cl->id, 32);
  bft_digest(b.batch_digest, batch, bl);
  memset(b.state_digest, 5, 32);
  int len = bft_block_encode(&b, buf, sizeof buf);
  assert_true(len > 0);
  bft_block back;
  assert_int_equal(bft_block_decode(buf, (uint32_t)len, &back), 0);
  assert_int_equal(back.height, 1);
  assert_string_equal(back.protocol, "pbft");
  assert_memory_equal(back.state_digest, b.state_digest, 32);
  all_prefixes_and_extension_fail(buf, (uint32_t)len, dec_block);
  char why[128];
  /* Wrong predecessor, wrong height, and a batch that does not match its digest are named. */
  uint8_t wrong[32] = {0};
  assert_int_equal(bft_block_verify(cl, buf, (uint32_t)len, wrong, 1, why, sizeof why), BFT_E_BAD_DIGEST);
  assert_non_null(strstr(why, "prev_hash"));
  assert_int_equal(bft_block_verify(cl, buf, (uint32_t)len, cl->id, 2, why, sizeof why), BFT_E_MALFORMED);
  assert_non_null(strstr(why, "height"));
  /* A certificate that is not one is refused. */
  assert_int_equal(bft_block_verify(cl, buf, (uint32_t)len, cl->id, 1, why, sizeof why), BFT_E_BAD_CERT);
  b.batch_digest[0] ^= 1;
  len = bft_block_encode(&b, buf, sizeof buf);
  assert_int_equal(bft_block_verify(cl, buf, (uint32_t)len, cl->id, 1, why, sizeof why), BFT_E_BAD_DIGEST);
  assert_non_null(strstr(why, "batch"));
  strcpy(b.protocol, "nope");
  b.batch_digest[0] ^= 1;
  len = bft_block_encode(&b, buf, sizeof buf);
  assert_int_equal(bft_block_verify(cl, buf, (uint32_t)len, cl->id, 1, why, sizeof why), BFT_E_UNSUPPORTED);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request), cmocka_unit_test(test_batch), cmocka_unit_test(test_reply),
      cmocka_unit_test(test_session_key), cmocka_unit_test(test_request_versions), cmocka_unit_test(test_reply_mac),
      cmocka_unit_test(test_kv),      cmocka_unit_test(test_block),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
