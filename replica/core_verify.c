/* Signature checks of client requests for the runtime core (core_verify.h). */
#include "replica/core_verify.h"

#include <stdlib.h>
#include <string.h>

const bft_session_mac *rt_core_session_mac(rt_core *c, uint32_t client) {
  if (!c->kp || !c->mac_state || client >= c->sessions.n) return NULL;
  if (c->mac_state[client] == 0) {
    uint8_t key[BFT_MAC_KEY_LEN];
    if (bft_session_key(c->kp, c->sessions.pks[client], 1, c->cluster->id, key) != 0) {
      c->mac_state[client] = 2;
      return NULL;
    }
    c->macs[client] = bft_session_mac_alloc(1);
    if (c->macs[client]) { /* out of memory: no MAC this time, a signed reply instead */
      bft_session_mac_init(c->macs[client], key);
      c->mac_state[client] = 1;
    }
    sodium_memzero(key, sizeof key);
  }
  return c->mac_state[client] == 1 ? c->macs[client] : NULL;
}

/* Our entry of a v3 request's authenticator (a keyed hash: never worth the pool). */
static int check_mac(rt_core *c, const uint8_t *rq, const bft_request *r, uint32_t client) {
  if (!c->cluster->protocol_only) return BFT_E_NOT_PERMITTED;
  const bft_session_mac *m = rt_core_session_mac(c, client);
  return m ? bft_request_check_mac(r, rq, c->self, c->cluster->n, m) : BFT_E_BAD_SIG;
}

int rt_core_check_request(rt_core *c, const uint8_t *rq, uint32_t len, const uint8_t d[BFT_DIGEST_LEN], bft_request *r,
                          int *client, int verdict) {
  int rc = bft_request_decode(rq, len, r);
  if (rc) return rc;
  *client = rt_sessions_find(&c->sessions, r->client);
  if (*client < 0) return BFT_E_NOT_PERMITTED;
  if (r->version == BFT_REQUEST_V_MAC) {
    /* Checked on arrival, the same bytes need no second keyed hash when they come back in a
     * proposal: the digest is at hand, and the cache remembers bytes found good. */
    if (rt_vcache_has(&c->vcache, d)) return 0;
    if ((rc = check_mac(c, rq, r, (uint32_t)*client)) != 0) return rc;
    rt_vcache_add(&c->vcache, d);
    return 0;
  }
  if (verdict == RT_SIG_BAD) return BFT_E_BAD_SIG;
  if (verdict == RT_SIG_UNCHECKED) {
    if (rt_vcache_has(&c->vcache, d)) return 0;
    rc = c->crypto.verify(c->crypto.ctx, RT_SIGNER_CLIENT, r->client, BFT_TAG_REQUEST, rq, r->signed_len, r->sig);
    if (rc) return rc;
  }
  rt_vcache_add(&c->vcache, d);
  return 0;
}

int rt_core_needs_verify(rt_core *c, const uint8_t *req, uint32_t len, bft_request *r) {
  if (c->failed || bft_request_decode(req, len, r) != 0) return 0;
  int client = rt_sessions_find(&c->sessions, r->client);
  if (client < 0 || r->seq < c->sessions.s[client].last_seq || r->version == BFT_REQUEST_V_MAC) return 0;
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, req, len);
  return !rt_vcache_has(&c->vcache, d);
}

/* One request after the other on the calling thread: the first refusal in batch order. */
static int check_batch_serial(rt_core *c, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  const uint8_t *rq;
  uint32_t rl;
  while (!rc && (rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    bft_request r;
    int client;
    rc = rt_core_check_request(c, rq, rl, d, &r, &client, RT_SIG_UNCHECKED);
  }
  return rc;
}

/* On the pool: the cheap checks of every request first (up to the first that fails them), then
 * the uncached signatures together. The answer and what enters the cache are the serial
 * check's: the first refusal in batch order, every good signature before it cached. */
static int check_batch_pool(rt_core *c, const uint8_t *batch, uint32_t len) {
  bft_batch_reader br;
  int rc = bft_batch_open(&br, batch, len);
  if (rc) return rc;
  const uint8_t *rq = NULL; /* set by every bft_batch_next that returns 1 */
  uint32_t rl = 0, n = 0;
  while ((rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    BFT_ASSERT(n < BFT_MAX_BATCH_REQUESTS); /* bft_batch_open bounds the count */
    bft_request r;
    if ((rc = bft_request_decode(rq, rl, &r)) != 0) break;
    int client = rt_sessions_find(&c->sessions, r.client);
    if (client < 0) {
      rc = BFT_E_NOT_PERMITTED;
      break;
    }
    if (r.version == BFT_REQUEST_V_MAC) {
      if ((rc = check_mac(c, rq, &r, (uint32_t)client)) != 0) break;
      continue;
    }
    bft_digest(c->vdigests[n], rq, rl);
    if (rt_vcache_has(&c->vcache, c->vdigests[n])) continue;
    rt_vitem *it = &c->vitems[n++];
    memcpy(it->pk, r.client, BFT_PK_LEN);
    it->tag = BFT_TAG_REQUEST;
    it->msg = rq;
    it->len = r.signed_len;
    it->sig = r.sig;
  }
  rt_vpool_verify(c->vpool, c->vitems, n);
  for (uint32_t i = 0; i < n; i++) {
    if (c->vitems[i].rc) return c->vitems[i].rc;
    rt_vcache_add(&c->vcache, c->vdigests[i]);
  }
  return rc;
}

int rt_core_check_batch(void *ctx, const uint8_t *batch, uint32_t len) {
  rt_core *c = ctx;
  return c->vpool ? check_batch_pool(c, batch, len) : check_batch_serial(c, batch, len);
}

int rt_core_verify_init(rt_core *c, const rt_core_config *cc) {
  if (c->sessions.n) {
    c->macs = calloc(c->sessions.n, sizeof *c->macs);
    c->mac_state = calloc(c->sessions.n, 1);
    if (!c->macs || !c->mac_state) return BFT_E_NOMEM;
  }
  if (!cc->vpool) return 0;
  c->vitems = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *c->vitems);
  c->vdigests = calloc(BFT_MAX_BATCH_REQUESTS, sizeof *c->vdigests);
  if (!c->vitems || !c->vdigests) return BFT_E_NOMEM;
  c->vpool = cc->vpool;
  return 0;
}

void rt_core_verify_free(rt_core *c) {
  for (uint32_t i = 0; c->macs && i < c->sessions.n; i++)
    if (c->macs[i]) {
      sodium_memzero(c->macs[i], sizeof *c->macs[i]);
      free(c->macs[i]);
    }
  free(c->macs);
  free(c->mac_state);
  c->macs = NULL;
  c->mac_state = NULL;
  free(c->vitems);
  free(c->vdigests);
  c->vitems = NULL;
  c->vdigests = NULL;
  c->vpool = NULL;
}
