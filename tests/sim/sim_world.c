/* The simulated cluster's fixed identity: replica keys (fast stand-in secrets and real
 * Ed25519 keypairs from fixed seeds), client keys, and every client request, encoded and
 * signed once, with a digest index that serves as the validity oracle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/request.h"
#include "tests/sim/sim.h"

struct sim_world {
  const bft_engine_ops *ops;
  sim_options opt;
  uint32_t n;
  uint8_t cluster_id[BFT_CLUSTER_ID_LEN];
  uint8_t secret[BFT_MAX_REPLICAS][32]; /* fast mode: per-replica MAC key */
  bft_keypair kp[BFT_MAX_REPLICAS];     /* real mode */
  uint8_t pk[BFT_MAX_REPLICAS][BFT_PK_LEN];
  bft_keypair *client_kp;
  uint32_t nclients;    /* client identities: clients x outstanding, one request in flight each */
  bft_cluster *cluster; /* what the runtime sees */
  sim_request *req;
  uint32_t nreq;
  uint32_t *index; /* open addressing: request index + 1, 0 = empty */
  uint32_t mask;
};

void sim_options_defaults(sim_options *o) {
  memset(o, 0, sizeof *o);
  o->protocol = "pbft";
  o->n = 4;
  o->seed_lo = 1;
  o->seed_hi = 100;
  o->requests = 200;
  o->clients = 4;
  o->outstanding = 2;
  o->delay_min_us = 1000;
  o->delay_max_us = 5000;
  o->tail = 0.02;
  o->tail_max_us = 300000;
  o->fault_ms = 5000;
  o->bound_ms = 120000;
  o->client_timeout_ms = 1500;
  o->think_us = -1;
  o->faulty = SIM_FAULTY_F;
}

/* Fixed seeds: keys are part of the cluster, not of the run, so every seed sees the same
 * keys and a replayed seed reproduces byte for byte. */
static void fixed_seed(uint8_t out[32], const char *what, uint32_t i) {
  bft_digest_ctx c;
  uint8_t le[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
  bft_digest_init(&c);
  bft_digest_update(&c, what, strlen(what));
  bft_digest_update(&c, le, 4);
  bft_digest_final(&c, out);
}

static uint64_t digest_key(const uint8_t d[BFT_DIGEST_LEN]) {
  uint64_t k = 0;
  for (int i = 0; i < 8; i++) k |= (uint64_t)d[i] << (8 * i);
  return k;
}

int64_t sim_world_find(const sim_world *w, const uint8_t digest[BFT_DIGEST_LEN]) {
  for (uint64_t h = digest_key(digest) & w->mask;; h = (h + 1) & w->mask) {
    uint32_t v = w->index[h];
    if (v == 0) return -1;
    if (memcmp(w->req[v - 1].digest, digest, BFT_DIGEST_LEN) == 0) return (int64_t)v - 1;
  }
}

/* Each stream (client x outstanding) is its own client identity with one request in flight:
 * the runtime executes a client's requests in seq order only (a lower seq committed after a
 * higher one is skipped, as for any client that pipelines), so streams must not share one. */
static int make_requests(sim_world *w, char *err, size_t errlen) {
  uint32_t R = w->opt.requests, C = w->opt.clients * w->opt.outstanding;
  if (C > R) C = R ? R : 1;
  w->nclients = C;
  w->req = calloc(R ? R : 1, sizeof *w->req);
  w->client_kp = calloc(C, sizeof *w->client_kp);
  uint32_t slots = 16;
  while (slots < 2 * R) slots *= 2;
  w->index = calloc(slots, sizeof *w->index);
  w->mask = slots - 1;
  if (!w->req || !w->client_kp || !w->index) return BFT_E_NOMEM;
  for (uint32_t c = 0; c < C; c++) {
    uint8_t seed[32];
    fixed_seed(seed, "bft-sim client", c);
    if (bft_keypair_from_seed(&w->client_kp[c], seed)) return BFT_E_CRYPTO;
  }
  /* Request i belongs to client i % C and is that client's (i / C + 1)-th: clients interleave
   * so each one's requests are spread over the whole run. */
  for (uint32_t i = 0; i < R; i++) {
    sim_request *r = &w->req[i];
    r->client = i % C;
    r->seq = i / C + 1;
    char key[32], val[48];
    int kl = snprintf(key, sizeof key, "c%u/%llu", r->client, (unsigned long long)r->seq);
    int vl = snprintf(val, sizeof val, "value of request %u", i);
    bft_kv_op op = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)key, .key_len = (uint32_t)kl,
                    .value = (const uint8_t *)val, .value_len = (uint32_t)vl};
    uint8_t opbuf[128], buf[256];
    int ol = bft_kv_encode(&op, opbuf, sizeof opbuf);
    if (ol < 0) return ol;
    int len = bft_request_encode(&w->client_kp[r->client], w->cluster_id, r->seq, opbuf, (uint32_t)ol, buf, sizeof buf);
    if (len < 0) {
      snprintf(err, errlen, "cannot encode request %u: %s", i, bft_strerror(len));
      return len;
    }
    r->bytes = malloc((size_t)len);
    if (!r->bytes) return BFT_E_NOMEM;
    memcpy(r->bytes, buf, (size_t)len);
    r->len = (uint32_t)len;
    bft_digest(r->digest, r->bytes, r->len);
    uint64_t h = digest_key(r->digest) & w->mask;
    while (w->index[h]) h = (h + 1) & w->mask;
    w->index[h] = i + 1;
  }
  w->nreq = R;
  return 0;
}

int sim_world_create(sim_world **out, const sim_options *o, const bft_engine_ops *ops, char *err, size_t errlen) {
  *out = NULL;
  sim_world *w = calloc(1, sizeof *w);
  if (!w) return BFT_E_NOMEM;
  w->ops = ops;
  w->opt = *o;
  w->n = o->n;
  bft_cluster_id_from_name(w->cluster_id, "bft-sim");
  for (uint32_t i = 0; i < o->n; i++) {
    uint8_t seed[32];
    fixed_seed(seed, "bft-sim replica", i);
    if (bft_keypair_from_seed(&w->kp[i], seed)) {
      sim_world_free(w);
      return BFT_E_CRYPTO;
    }
    fixed_seed(w->secret[i], "bft-sim fast secret", i);
    if (o->real_crypto)
      memcpy(w->pk[i], w->kp[i].pk, BFT_PK_LEN);
    else /* the fast stand-in has no public keys; give each replica a distinct name */
      fixed_seed(w->pk[i], "bft-sim fast public", i);
  }
  int rc = make_requests(w, err, errlen);
  if (rc) {
    if (!err[0]) snprintf(err, errlen, "cannot prepare client requests: %s", bft_strerror(rc));
    sim_world_free(w);
    return rc;
  }
  if (!(w->cluster = calloc(1, sizeof *w->cluster))) {
    sim_world_free(w);
    return BFT_E_NOMEM;
  }
  snprintf(w->cluster->name, sizeof w->cluster->name, "bft-sim");
  memcpy(w->cluster->id, w->cluster_id, BFT_CLUSTER_ID_LEN);
  w->cluster->n = o->n;
  w->cluster->f = (o->n - 1) / 3;
  for (uint32_t i = 0; i < o->n; i++) memcpy(w->cluster->replicas[i].pk, w->pk[i], BFT_PK_LEN);
  w->cluster->nclients = w->nclients;
  for (uint32_t c = 0; c < w->nclients; c++) memcpy(w->cluster->clients[c].pk, w->client_kp[c].pk, BFT_PK_LEN);
  bft_engine_config cfg;
  sim_world_config(w, 0, &cfg);
  if (bft_engine_config_check(&cfg) != 0) {
    snprintf(err, errlen,
             "engine configuration out of its limits (batch=%u window=%u checkpoint=%u timeout=%u ms; "
             "window must be a multiple of checkpoint and at least twice it)",
             cfg.batch_max, cfg.window, cfg.checkpoint_interval, cfg.timeout_ms);
    sim_world_free(w);
    return BFT_E_INVAL;
  }
  *out = w;
  return 0;
}

void sim_world_free(sim_world *w) {
  if (!w) return;
  if (w->req)
    for (uint32_t i = 0; i < w->nreq; i++) free(w->req[i].bytes);
  free(w->req);
  free(w->index);
  free(w->cluster);
  if (w->client_kp) {
    for (uint32_t c = 0; c < w->nclients; c++) bft_keypair_wipe(&w->client_kp[c]);
    free(w->client_kp);
  }
  for (uint32_t i = 0; i < BFT_MAX_REPLICAS; i++) bft_keypair_wipe(&w->kp[i]);
  free(w);
}

const sim_request *sim_world_request(const sim_world *w, uint32_t idx) { return &w->req[idx]; }
const bft_cluster *sim_world_cluster(const sim_world *w) { return w->cluster; }
uint32_t sim_world_clients(const sim_world *w) { return w->nclients; }

int sim_world_verify_client(const sim_world *w, const uint8_t pk[BFT_PK_LEN], const char *tag, const uint8_t *msg,
                            uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  if (w->opt.real_crypto) return bft_verify(pk, w->cluster_id, tag, msg, len, sig);
  /* The stand-in: the digest of exactly these bytes and this signature must be a request a
   * client signed, under the client key it names. A forged or altered request is refused. */
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, msg, len);
  bft_digest_update(&c, sig, BFT_SIG_LEN);
  bft_digest_final(&c, d);
  int64_t idx = sim_world_find(w, d);
  if (idx < 0 || strcmp(tag, BFT_TAG_REQUEST) != 0) return BFT_E_BAD_SIG;
  return memcmp(w->client_kp[w->req[idx].client].pk, pk, BFT_PK_LEN) == 0 ? 0 : BFT_E_BAD_SIG;
}
const bft_engine_ops *sim_world_ops(const sim_world *w) { return w->ops; }

void sim_world_config(const sim_world *w, uint32_t self, bft_engine_config *cfg) {
  bft_engine_config_defaults(cfg, w->n, self);
  memcpy(cfg->cluster_id, w->cluster_id, BFT_CLUSTER_ID_LEN);
  for (uint32_t i = 0; i < w->n; i++) memcpy(cfg->pubkeys[i], w->pk[i], BFT_PK_LEN);
  if (w->opt.batch) cfg->batch_max = w->opt.batch;
  if (w->opt.window) cfg->window = w->opt.window;
  if (w->opt.checkpoint) cfg->checkpoint_interval = w->opt.checkpoint;
  if (w->opt.timeout_ms) cfg->timeout_ms = w->opt.timeout_ms;
  if (w->opt.lone_div > 1 && self == w->n - 1) {
    cfg->timeout_ms /= w->opt.lone_div;
    if (!cfg->timeout_ms) cfg->timeout_ms = 1;
  }
}

/* The fast stand-in: a 64-byte keyed BLAKE2b of the very statement Ed25519 would sign, so
 * domain separation (tag, cluster id, length) is exercised exactly as with real keys. */
static void fast_mac(const sim_world *w, uint32_t who, const uint8_t st[BFT_DIGEST_LEN], uint8_t mac[BFT_SIG_LEN]) {
  crypto_generichash(mac, BFT_SIG_LEN, st, BFT_DIGEST_LEN, w->secret[who], sizeof w->secret[who]);
}

void sim_world_sign(const sim_world *w, uint32_t self, const char *tag, const uint8_t *msg, uint32_t len,
                    uint8_t sig[BFT_SIG_LEN]) {
  if (w->opt.real_crypto) {
    if (bft_sign(&w->kp[self], w->cluster_id, tag, msg, len, sig) != 0) memset(sig, 0, BFT_SIG_LEN);
    return;
  }
  uint8_t st[BFT_DIGEST_LEN];
  if (bft_statement(st, w->cluster_id, tag, msg, len) != 0) {
    memset(sig, 0, BFT_SIG_LEN);
    return;
  }
  fast_mac(w, self, st, sig);
}

int sim_world_verify(const sim_world *w, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                     const uint8_t sig[BFT_SIG_LEN]) {
  if (signer >= w->n) return BFT_E_UNKNOWN_SENDER;
  if (w->opt.real_crypto) return bft_verify(w->pk[signer], w->cluster_id, tag, msg, len, sig);
  uint8_t st[BFT_DIGEST_LEN], mac[BFT_SIG_LEN];
  if (bft_statement(st, w->cluster_id, tag, msg, len) != 0) return BFT_E_BAD_SIG;
  fast_mac(w, signer, st, mac);
  /* Plain memcmp: nothing here is secret from anyone, and sweeps verify millions of times. */
  return memcmp(mac, sig, BFT_SIG_LEN) == 0 ? 0 : BFT_E_BAD_SIG;
}

int sim_world_verify_request(const sim_world *w, uint32_t idx) {
  if (!w->opt.real_crypto) return 0;
  bft_request rq;
  return bft_request_verify(w->cluster_id, w->req[idx].bytes, w->req[idx].len, &rq);
}
