/* Ed25519 signatures over domain-separated statements, BLAKE2b-256, key files. */
#include "crypto/bft_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SIG_DOMAIN[] = "bft-sig-v1";

int bft_crypto_init(void) { return sodium_init() < 0 ? BFT_E_CRYPTO : 0; }

int bft_keypair_generate(bft_keypair *kp) {
  return crypto_sign_ed25519_keypair(kp->pk, kp->sk) == 0 ? 0 : BFT_E_CRYPTO;
}

int bft_keypair_from_seed(bft_keypair *kp, const uint8_t seed[BFT_SEED_LEN]) {
  return crypto_sign_ed25519_seed_keypair(kp->pk, kp->sk, seed) == 0 ? 0 : BFT_E_CRYPTO;
}

void bft_keypair_wipe(bft_keypair *kp) { sodium_memzero(kp, sizeof *kp); }

int bft_statement(uint8_t out[BFT_DIGEST_LEN], const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                  const char *tag, const uint8_t *msg, size_t len) {
  size_t tl = strlen(tag);
  if (tl == 0 || tl > BFT_TAG_MAX) return BFT_E_INVAL;
  uint8_t hdr[sizeof SIG_DOMAIN - 1 + 1 + BFT_TAG_MAX + BFT_CLUSTER_ID_LEN + 8];
  size_t o = 0;
  memcpy(hdr, SIG_DOMAIN, sizeof SIG_DOMAIN - 1);
  o += sizeof SIG_DOMAIN - 1;
  hdr[o++] = (uint8_t)tl;
  memcpy(hdr + o, tag, tl);
  o += tl;
  memcpy(hdr + o, cluster_id, BFT_CLUSTER_ID_LEN);
  o += BFT_CLUSTER_ID_LEN;
  uint64_t l = len;
  for (int i = 0; i < 8; i++) hdr[o++] = (uint8_t)(l >> (8 * i));
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, BFT_DIGEST_LEN);
  crypto_generichash_update(&st, hdr, o);
  if (len) crypto_generichash_update(&st, msg, len);
  crypto_generichash_final(&st, out, BFT_DIGEST_LEN);
  return 0;
}

int bft_sign(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], const char *tag,
             const uint8_t *msg, size_t len, uint8_t sig[BFT_SIG_LEN]) {
  uint8_t st[BFT_DIGEST_LEN];
  int rc = bft_statement(st, cluster_id, tag, msg, len);
  if (rc) return rc;
  crypto_sign_ed25519_detached(sig, NULL, st, sizeof st, kp->sk);
  return 0;
}

int bft_verify(const uint8_t pk[BFT_PK_LEN], const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
               const char *tag, const uint8_t *msg, size_t len, const uint8_t sig[BFT_SIG_LEN]) {
  uint8_t st[BFT_DIGEST_LEN];
  if (bft_statement(st, cluster_id, tag, msg, len)) return BFT_E_BAD_SIG;
  return crypto_sign_ed25519_verify_detached(sig, st, sizeof st, pk) == 0 ? 0 : BFT_E_BAD_SIG;
}

int bft_session_key(const bft_keypair *self, const uint8_t peer_pk[BFT_PK_LEN], int replica_side,
                    const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t key[BFT_MAC_KEY_LEN]) {
  uint8_t xsk[crypto_scalarmult_curve25519_SCALARBYTES], xpk[crypto_scalarmult_curve25519_BYTES];
  uint8_t shared[crypto_scalarmult_curve25519_BYTES];
  int rc = BFT_E_CRYPTO;
  if (crypto_sign_ed25519_sk_to_curve25519(xsk, self->sk) != 0 ||
      crypto_sign_ed25519_pk_to_curve25519(xpk, peer_pk) != 0 || crypto_scalarmult_curve25519(shared, xsk, xpk) != 0)
    goto out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, BFT_MAC_KEY_LEN);
  crypto_generichash_update(&st, (const uint8_t *)"bft-session-v1", 14);
  crypto_generichash_update(&st, cluster_id, BFT_CLUSTER_ID_LEN);
  crypto_generichash_update(&st, replica_side ? self->pk : peer_pk, BFT_PK_LEN);
  crypto_generichash_update(&st, replica_side ? peer_pk : self->pk, BFT_PK_LEN);
  crypto_generichash_update(&st, shared, sizeof shared);
  crypto_generichash_final(&st, key, BFT_MAC_KEY_LEN);
  rc = 0;
out:
  sodium_memzero(xsk, sizeof xsk);
  sodium_memzero(shared, sizeof shared);
  return rc;
}

void bft_mac_ctx_init(bft_mac_ctx *m, const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, size_t out_len) {
  size_t tl = strlen(tag);
  uint8_t hdr[10 + 1 + 255];
  if (tl > 255) tl = 255;
  memcpy(hdr, "bft-mac-v1", 10);
  hdr[10] = (uint8_t)tl;
  memcpy(hdr + 11, tag, tl);
  crypto_generichash_init(&m->st, key, BFT_MAC_KEY_LEN, out_len);
  crypto_generichash_update(&m->st, hdr, 11 + tl);
  m->out_len = out_len;
}

void bft_mac_ctx_mac(const bft_mac_ctx *m, const uint8_t *msg, size_t len, uint8_t *out) {
  crypto_generichash_state st = m->st;
  if (len) crypto_generichash_update(&st, msg, len);
  crypto_generichash_final(&st, out, m->out_len);
  sodium_memzero(&st, sizeof st);
}

int bft_mac_ctx_check(const bft_mac_ctx *m, const uint8_t *msg, size_t len, const uint8_t *mac, size_t mac_len) {
  uint8_t want[64];
  if (mac_len != m->out_len || mac_len > sizeof want) return BFT_E_BAD_SIG;
  bft_mac_ctx_mac(m, msg, len, want);
  return bft_ct_equal(want, mac, mac_len) ? 0 : BFT_E_BAD_SIG;
}

void bft_mac(const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, const uint8_t *msg, size_t len, uint8_t *out,
             size_t out_len) {
  bft_mac_ctx m;
  bft_mac_ctx_init(&m, key, tag, out_len);
  bft_mac_ctx_mac(&m, msg, len, out);
  sodium_memzero(&m, sizeof m);
}

int bft_mac_check(const uint8_t key[BFT_MAC_KEY_LEN], const char *tag, const uint8_t *msg, size_t len,
                  const uint8_t *mac, size_t mac_len) {
  if (mac_len < 16 || mac_len > 64) return BFT_E_BAD_SIG;
  bft_mac_ctx m;
  bft_mac_ctx_init(&m, key, tag, mac_len);
  int rc = bft_mac_ctx_check(&m, msg, len, mac, mac_len);
  sodium_memzero(&m, sizeof m);
  return rc;
}

void bft_digest(uint8_t out[BFT_DIGEST_LEN], const void *data, size_t len) {
  crypto_generichash(out, BFT_DIGEST_LEN, data, len, NULL, 0);
}
void bft_digest_init(bft_digest_ctx *c) { crypto_generichash_init(&c->st, NULL, 0, BFT_DIGEST_LEN); }
void bft_digest_update(bft_digest_ctx *c, const void *data, size_t len) {
  crypto_generichash_update(&c->st, data, len);
}
void bft_digest_final(bft_digest_ctx *c, uint8_t out[BFT_DIGEST_LEN]) {
  crypto_generichash_final(&c->st, out, BFT_DIGEST_LEN);
}

void bft_cluster_id_from_name(uint8_t out[BFT_CLUSTER_ID_LEN], const char *name) {
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft-cluster-v1", 14);
  bft_digest_update(&c, name, strlen(name));
  bft_digest_final(&c, out);
}

int bft_ct_equal(const void *a, const void *b, size_t len) { return sodium_memcmp(a, b, len) == 0; }

void bft_hex_encode(char *out, const uint8_t *in, size_t len) {
  sodium_bin2hex(out, 2 * len + 1, in, len);
}

int bft_hex_decode(uint8_t *out, size_t outlen, const char *hex) {
  size_t got = 0;
  const char *end = NULL;
  if (strlen(hex) != 2 * outlen) return BFT_E_MALFORMED;
  if (sodium_hex2bin(out, outlen, hex, 2 * outlen, NULL, &got, &end) != 0 || got != outlen)
    return BFT_E_MALFORMED;
  return 0;
}

#define seterr(err, errlen, ...)                  \
  do {                                            \
    if ((err) && (errlen)) snprintf((err), (errlen), __VA_ARGS__); \
  } while (0)

int bft_keyfile_save(const char *path, const char *kind, unsigned id, const bft_keypair *kp,
                     char *err, size_t errlen) {
  char pkhex[2 * BFT_PK_LEN + 1], seedhex[2 * BFT_SEED_LEN + 1];
  bft_hex_encode(pkhex, kp->pk, BFT_PK_LEN);
  bft_hex_encode(seedhex, kp->sk, BFT_SEED_LEN);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    seterr(err, errlen, "%s: cannot create key file: %s", path, strerror(errno));
    sodium_memzero(seedhex, sizeof seedhex);
    return BFT_E_IO;
  }
  int rc = 0;
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "# Ed25519 private key of a BFT cluster member. Keep it secret (mode 0600).\n"
                   "kind = %s\nid = %u\npublic_key = %s\nsecret_seed = %s\n",
                   kind, id, pkhex, seedhex);
  if (fchmod(fd, 0600) != 0 || n < 0 || (size_t)n >= sizeof buf ||
      write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
    seterr(err, errlen, "%s: cannot write key file: %s", path, strerror(errno));
    rc = BFT_E_IO;
  }
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(seedhex, sizeof seedhex);
  if (close(fd) != 0 && rc == 0) rc = BFT_E_IO;
  return rc;
}

typedef struct keyfile_parse {
  uint8_t pk[BFT_PK_LEN];
  uint8_t seed[BFT_SEED_LEN];
  int have_pk, have_seed, bad;
  char what[96];
} keyfile_parse;

static int keyfile_handler(void *user, const char *section, const char *name, const char *value) {
  keyfile_parse *p = user;
  (void)section;
  if (strcmp(name, "public_key") == 0) {
    if (bft_hex_decode(p->pk, BFT_PK_LEN, value)) {
      snprintf(p->what, sizeof p->what, "public_key is not 64 hex digits");
      p->bad = 1;
    }
    p->have_pk = 1;
  } else if (strcmp(name, "secret_seed") == 0) {
    if (bft_hex_decode(p->seed, BFT_SEED_LEN, value)) {
      snprintf(p->what, sizeof p->what, "secret_seed is not 64 hex digits");
      p->bad = 1;
    }
    p->have_seed = 1;
  }
  return 1;
}

int bft_keyfile_load(const char *path, bft_keypair *kp, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    seterr(err, errlen, "%s: cannot open key file: %s", path, strerror(errno));
    return BFT_E_IO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    seterr(err, errlen, "%s: %s", path, "not a regular file");
    close(fd);
    return BFT_E_IO;
  }
  if (st.st_mode & 077) {
    seterr(err, errlen, "%s: private key file is accessible by group or others (mode %03o); run: chmod 600 %s",
           path, (unsigned)(st.st_mode & 0777), path);
    close(fd);
    return BFT_E_PERM;
  }
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    seterr(err, errlen, "%s: %s", path, strerror(errno));
    return BFT_E_IO;
  }
  keyfile_parse p;
  memset(&p, 0, sizeof p);
  int line = ini_parse_file(f, keyfile_handler, &p);
  fclose(f);
  int rc = 0;
  if (line != 0) {
    seterr(err, errlen, "%s:%d: syntax error in key file", path, line);
    rc = BFT_E_CONFIG;
  } else if (p.bad) {
    seterr(err, errlen, "%s: %s", path, p.what);
    rc = BFT_E_CONFIG;
  } else if (!p.have_seed || !p.have_pk) {
    seterr(err, errlen, "%s: %s", path, "key file lacks public_key or secret_seed");
    rc = BFT_E_CONFIG;
  } else if (bft_keypair_from_seed(kp, p.seed) != 0) {
    rc = BFT_E_CRYPTO;
  } else if (!bft_ct_equal(kp->pk, p.pk, BFT_PK_LEN)) {
    seterr(err, errlen, "%s: %s", path, "public_key does not match secret_seed");
    bft_keypair_wipe(kp);
    rc = BFT_E_CONFIG;
  }
  sodium_memzero(&p, sizeof p);
  return rc;
}

int bft_mkdirs(const char *dir) {
  char p[4096];
  size_t l = strlen(dir);
  if (l == 0 || l >= sizeof p) return errno = ENAMETOOLONG, -1;
  memcpy(p, dir, l + 1);
  for (size_t i = 1; i <= l; i++) {
    if (p[i] != '/' && p[i] != 0) continue;
    char keep = p[i];
    p[i] = 0;
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
    p[i] = keep;
  }
  return 0;
}
