/* Ed25519 keys and domain-separated signatures, BLAKE2b-256 digests, constant-time compare
 * and private key files (mode 0600, refused when others can read them). Thin over libsodium. */
#ifndef BFT_CRYPTO_H
#define BFT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/bft_err.h"

#define BFT_PK_LEN 32
#define BFT_SK_LEN 64        /* libsodium layout: seed || public key */
#define BFT_SEED_LEN 32
#define BFT_SIG_LEN 64
#define BFT_DIGEST_LEN 32    /* BLAKE2b-256, the one digest used everywhere */
#define BFT_CLUSTER_ID_LEN 32
#define BFT_TAG_MAX 48       /* longest signature domain tag */

typedef struct bft_keypair {
  uint8_t pk[BFT_PK_LEN];
  uint8_t sk[BFT_SK_LEN];
} bft_keypair;

/* Call once per process before anything else here. 0 or BFT_E_CRYPTO. */
int bft_crypto_init(void);

int bft_keypair_generate(bft_keypair *kp);
int bft_keypair_from_seed(bft_keypair *kp, const uint8_t seed[BFT_SEED_LEN]);
void bft_keypair_wipe(bft_keypair *kp);

/* Domain-separated signatures. What is signed is never the raw message but the statement
 *   BLAKE2b-256("bft-sig-v1" || u8 len(tag) || tag || cluster_id[32] || u64le len(msg) || msg)
 * so a signature made under one tag (message kind, protocol) or one cluster never verifies
 * under another. Tags are short ASCII names such as "pbft/prepare" or "client/request". */
int bft_sign(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], const char *tag,
             const uint8_t *msg, size_t len, uint8_t sig[BFT_SIG_LEN]);
/* 0 when valid, BFT_E_BAD_SIG otherwise (also for a malformed key or an over-long tag). */
int bft_verify(const uint8_t pk[BFT_PK_LEN], const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
               const char *tag, const uint8_t *msg, size_t len, const uint8_t sig[BFT_SIG_LEN]);
/* The 32-byte statement that bft_sign signs (exposed for tests and for the simulator's
 * fast stand-in signer). BFT_E_INVAL for an over-long tag. */
int bft_statement(uint8_t out[BFT_DIGEST_LEN], const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                  const char *tag, const uint8_t *msg, size_t len);

/* Digests. */
void bft_digest(uint8_t out[BFT_DIGEST_LEN], const void *data, size_t len);
typedef struct bft_digest_ctx {
  crypto_generichash_state st;
} bft_digest_ctx;
void bft_digest_init(bft_digest_ctx *c);
void bft_digest_update(bft_digest_ctx *c, const void *data, size_t len);
void bft_digest_final(bft_digest_ctx *c, uint8_t out[BFT_DIGEST_LEN]);

/* The 32-byte cluster id used in every signature domain, derived from the cluster's name. */
void bft_cluster_id_from_name(uint8_t out[BFT_CLUSTER_ID_LEN], const char *name);

/* Constant-time equality (for secrets and MACs); 1 when equal. */
int bft_ct_equal(const void *a, const void *b, size_t len);

/* Pairwise MAC keys between a replica and a client, with no handshake: both ends already hold
 * each other's Ed25519 public key (the cluster file), so each converts its own Ed25519 secret
 * key and the other's public key to X25519 and derives
 *   key = BLAKE2b-256("bft-session-v1" || cluster_id || replica_pk || client_pk || X25519 shared)
 * The replica calls it with its key pair and the client's public key (replica_side = 1), the
 * client with its key pair and the replica's public key (replica_side = 0); both get the same
 * key. BFT_E_CRYPTO when a public key is not a valid point or the shared secret is degenerate. */
#define BFT_MAC_KEY_LEN 32
#define BFT_MAC_LEN 32     /* reply MACs */
#define BFT_AUTH_MAC_LEN 16 /* one entry of a request authenticator (protocol-only mode) */
int bft_session_key(const bft_keypair *self, const uint8_t peer_pk[BFT_PK_LEN], int replica_side,
                    const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t key[BFT_MAC_KEY_LEN]);
/* Keyed BLAKE2b over ("bft-mac-v1" || u8 len(tag) || tag || msg), out_len bytes (16..64).
 * bft_mac_check compares in constant time: 0 when equal, BFT_E_BAD_SIG otherwise. */
void bft_mac(const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, const uint8_t *msg, size_t len, uint8_t *out,
             size_t out_len);
int bft_mac_check(const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, const uint8_t *msg, size_t len,
                  const uint8_t *mac, size_t mac_len);
/* The same MAC with the key and tag absorbed once: a keyed BLAKE2b spends a whole compression
 * on its key block, which for a ~100-byte request or reply is a third to a half of the work.
 * A context is plain data (copy it, zero it when done); it needs the 64-byte alignment of
 * its type (aligned_alloc, or the stack). */
typedef struct bft_mac_ctx {
  crypto_generichash_state st; /* after the key block and the "bft-mac-v1" header */
  size_t out_len;
} bft_mac_ctx;
void bft_mac_ctx_init(bft_mac_ctx *m, const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, size_t out_len);
void bft_mac_ctx_mac(const bft_mac_ctx *m, const uint8_t *msg, size_t len, uint8_t *out); /* m->out_len bytes */
int bft_mac_ctx_check(const bft_mac_ctx *m, const uint8_t *msg, size_t len, const uint8_t *mac, size_t mac_len);

/* Lower-case hex. encode writes 2*len+1 bytes; decode needs exactly 2*outlen hex digits
 * (BFT_E_MALFORMED otherwise). */
void bft_hex_encode(char *out, const uint8_t *in, size_t len);
int bft_hex_decode(uint8_t *out, size_t outlen, const char *hex);

/* Private key files: a small INI text ("kind", "id", "public_key", "secret_seed").
 * save writes with mode 0600 (replacing any file there) and fsyncs it.
 * load refuses a file whose mode lets group or others read or write it (BFT_E_PERM), and one
 * whose public key does not match its seed (BFT_E_CONFIG). err (may be NULL) gets one line. */
int bft_keyfile_save(const char *path, const char *kind, unsigned id, const bft_keypair *kp,
                     char *err, size_t errlen);
int bft_keyfile_load(const char *path, bft_keypair *kp, char *err, size_t errlen);
/* mkdir -p for a folder of keys or data: every folder it makes is mode 0700. 0, or -1 with
 * errno set (ENAMETOOLONG past 4095 bytes). */
int bft_mkdirs(const char *dir);

#endif
