/* Client requests, batches and replies: the encodings shared by clients, replicas, engines
 * (which treat batches as opaque bytes) and the simulator.
 *
 *   request v1 := u8 1 | client_pk[32] | u64 seq | blob op | sig[64]
 *              sig = client's bft_sign(tag "client/request") over everything before it;
 *              replies to it are v1 (signed)
 *   request v2 := the same with version 2: replies to it are v2 (MAC), which costs the replica
 *              and the client a keyed hash instead of an Ed25519 signature and verification
 *   request v3 := u8 3 | client_pk[32] | u64 seq | blob op | u8 n | n x mac[16]
 *              protocol-only mode: no signature, an authenticator instead, entry i being
 *              bft_mac(K(replica i, client), "client/request", everything before the u8 n).
 *              Accepted only by a cluster whose file says `protocol_only = true`; replies are v2.
 *   batch   := u32 count | count x blob request          (count <= BFT_MAX_BATCH_REQUESTS)
 *   reply v1 := u8 1 | u32 replica | client_pk[32] | u64 seq | u64 height | u8 status
 *              | blob result | sig[64]   (replica's bft_sign, tag "client/reply")
 *   reply v2 := the same fields with version 2, then mac[32] = bft_mac(K(replica, client),
 *              "client/reply", everything before it) instead of the signature
 *
 * K(replica, client) is bft_session_key (static X25519 of the two Ed25519 keys): only that
 * replica and that client can make or check those MACs, so f+1 matching v2 replies convince
 * the client as f+1 signed ones do (but no third party: ask for v1 replies for that).
 * A request's identity is (client_pk, seq); its digest is BLAKE2b-256 of its full encoding. */
#ifndef BFT_REQUEST_H
#define BFT_REQUEST_H

#include <stdint.h>

#include "crypto/bft_crypto.h"
#include "protocols/cluster/cluster.h"
#include "protocols/limits.h"
#include "protocols/wire/wire.h"

#define BFT_REQUEST_VERSION 1     /* signed request, signed replies */
#define BFT_REQUEST_V_MAC_REPLY 2 /* signed request, MAC replies */
#define BFT_REQUEST_V_MAC 3       /* authenticator request (protocol-only mode), MAC replies */
#define BFT_REPLY_V_SIG 1
#define BFT_REPLY_V_MAC 2
#define BFT_TAG_REQUEST "client/request"
#define BFT_TAG_REPLY "client/reply"

typedef struct bft_request { /* a decoded request; op is borrowed from the encoding */
  uint8_t client[BFT_PK_LEN];
  uint64_t seq;
  const uint8_t *op;
  uint32_t op_len;
  const uint8_t *sig;   /* v1, v2; NULL for v3 */
  uint32_t signed_len;  /* bytes covered by the signature (or the authenticator's MACs) */
  uint8_t version;      /* BFT_REQUEST_* */
  const uint8_t *auth;  /* v3: nauth x BFT_AUTH_MAC_LEN bytes, entry i for replica i */
  uint32_t nauth;
} bft_request;

/* Encode and sign a request into buf; returns its length or a negative BFT_E*. */
int bft_request_encode(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                       uint64_t seq, const uint8_t *op, uint32_t op_len, uint8_t *buf, uint32_t cap);
/* The MACs of one (replica, client) session, K = bft_session_key, ready to use: the request
 * authenticator entry and the reply MAC, each with key and tag absorbed once. Sensitive: zero
 * it (sodium_memzero) when done. 64-byte aligned (see bft_mac_ctx). */
typedef struct bft_session_mac {
  bft_mac_ctx request; /* BFT_TAG_REQUEST, BFT_AUTH_MAC_LEN bytes */
  bft_mac_ctx reply;   /* BFT_TAG_REPLY, BFT_MAC_LEN bytes */
} bft_session_mac;
void bft_session_mac_init(bft_session_mac *m, const uint8_t key[BFT_MAC_KEY_LEN]);
/* n sessions in one aligned allocation (NULL when out of memory); free with free() after
 * sodium_memzero. */
bft_session_mac *bft_session_mac_alloc(uint32_t n);

/* Encode a request of any version: v1 and v2 are signed with kp; v3 carries an authenticator
 * made with macs[0..n) (the sessions with replicas 0..n-1; unused otherwise). */
int bft_request_encode_v(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], uint8_t version,
                         const bft_session_mac *macs, uint32_t n, uint64_t seq, const uint8_t *op,
                         uint32_t op_len, uint8_t *buf, uint32_t cap);
/* 1 when replies to this request are MAC-authenticated (v2 and v3). */
static inline int bft_request_wants_mac(const struct bft_request *rq) { return rq->version >= BFT_REQUEST_V_MAC_REPLY; }
/* Replica `self` checks its own entry of a v3 request's authenticator: 0 or BFT_E_BAD_SIG
 * (also when the authenticator does not have exactly n entries). */
int bft_request_check_mac(const bft_request *rq, const uint8_t *p, uint32_t self, uint32_t n,
                          const bft_session_mac *mac);
/* Decode (structure only, no signature check). */
int bft_request_decode(const uint8_t *p, uint32_t len, bft_request *rq);
/* Decode and verify the client's signature (v1, v2; a v3 request has none: BFT_E_BAD_SIG).
 * Does not check that the client is permitted. */
int bft_request_verify(const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], const uint8_t *p, uint32_t len,
                       bft_request *rq);

/* Batch building into a caller buffer. */
typedef struct bft_batch_writer {
  wire_writer w;
  uint32_t count;
} bft_batch_writer;
void bft_batch_begin(bft_batch_writer *b, uint8_t *buf, uint32_t cap);
/* BFT_E_FULL when the request would exceed the buffer or BFT_MAX_BATCH_REQUESTS. */
int bft_batch_add(bft_batch_writer *b, const uint8_t *req, uint32_t len);
/* Finish (patches the count); returns the encoded length. */
uint32_t bft_batch_end(bft_batch_writer *b);

/* Iterate the requests of a batch. */
typedef struct bft_batch_reader {
  wire_reader r;
  uint32_t count, next;
} bft_batch_reader;
int bft_batch_open(bft_batch_reader *b, const uint8_t *batch, uint32_t len);
/* 1 with the next request's bytes, 0 at the end, or a negative BFT_E*. */
int bft_batch_next(bft_batch_reader *b, const uint8_t **req, uint32_t *len);
/* Structure check of a whole batch, plus, when c is given, every signature and that every
 * client is permitted by the cluster file (the std check_batch). A v3 request (no signature)
 * passes only when c->protocol_only: a third party cannot check its MACs. */
int bft_batch_check(const bft_cluster *c, const uint8_t *batch, uint32_t len);
uint32_t bft_batch_encoded_empty(uint8_t out[4]); /* the empty batch: count 0 */

typedef struct bft_reply {
  uint32_t replica;
  uint8_t client[BFT_PK_LEN];
  uint64_t seq;
  uint64_t height; /* ledger block that executed the request */
  uint8_t status;  /* application status byte */
  const uint8_t *result;
  uint32_t result_len;
} bft_reply;

int bft_reply_encode(const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                     const bft_reply *rp, uint8_t *buf, uint32_t cap);
/* Encode with room for the signature, which the caller writes: the total length L is
 * returned, and the signature (tag BFT_TAG_REPLY) over buf[0, L-64) goes at buf[L-64, L). */
int bft_reply_encode_unsigned(const bft_reply *rp, uint8_t *buf, uint32_t cap);
/* Encode a v2 reply: its MAC in the session of (rp->replica, rp->client). */
int bft_reply_encode_mac(const bft_reply *rp, const bft_session_mac *mac, uint8_t *buf, uint32_t cap);
/* Decode and verify against the replica's key from the cluster file (v1 only). */
int bft_reply_verify(const bft_cluster *c, const uint8_t *p, uint32_t len, bft_reply *rp);
/* Decode and authenticate a v1 reply (signature) or a v2 reply (MAC in session macs[replica];
 * macs may be NULL, then v2 replies are refused with BFT_E_BAD_SIG). */
int bft_reply_open(const bft_cluster *c, const bft_session_mac *macs, const uint8_t *p, uint32_t len,
                   bft_reply *rp);

/* The standard engine env for a real replica: Ed25519 with the cluster's keys.
 * kp may be NULL for verify-only use (clients checking certificates). */
typedef struct bft_std_env {
  const bft_cluster *cluster;
  const bft_keypair *kp;
} bft_std_env;
struct bft_engine_env;
void bft_std_env_bind(struct bft_engine_env *env, bft_std_env *ctx);
/* A config from a cluster file, with engine defaults. */
struct bft_engine_config;
void bft_config_from_cluster(struct bft_engine_config *cfg, const bft_cluster *c, uint32_t self);

#endif
