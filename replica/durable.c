/* Snapshots of the runtime core: restore at open, capture every K blocks, write after the
 * group commit, attest and certify, prune the ledger below the newest certified snapshot. */
#include "replica/durable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replica/core.h"

#define COMP "durable"

void rt_dur_free(rt_durable *d) {
  rt_snap_free(&d->pending);
  free(d->own_manifest);
  free(d->cert);
  free(d->cert_manifest);
  rt_xfer_free(&d->x);
  d->own_manifest = d->cert = d->cert_manifest = NULL;
}

static int snap_verify(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  if (signer >= c->cluster->n) return BFT_E_UNKNOWN_SENDER;
  return c->crypto.verify(c->crypto.ctx, signer, c->cluster->replicas[signer].pk, RT_SNAP_TAG, msg, len, sig);
}

static int set_copy(uint8_t **dst, uint32_t *dlen, const uint8_t *src, uint32_t len) {
  uint8_t *p = malloc(len ? len : 1);
  if (!p) return BFT_E_NOMEM;
  memcpy(p, src, len);
  free(*dst);
  *dst = p;
  *dlen = len;
  return 0;
}

/* Our snapshot s is now the newest we hold. */
static int adopt_own(rt_durable *d, const rt_snap *s) {
  d->have_own = 1;
  d->own_certified = 0;
  d->own = s->st;
  d->own_attest_ms = 0;
  return set_copy(&d->own_manifest, &d->own_manifest_len, s->manifest, s->manifest_len);
}

/* Remember a certified snapshot as the one we serve. */
static int adopt_cert(rt_durable *d, uint64_t height, const uint8_t *cert, uint32_t cert_len, const uint8_t *manifest,
                      uint32_t manifest_len) {
  int rc = set_copy(&d->cert, &d->cert_len, cert, cert_len);
  if (!rc) rc = set_copy(&d->cert_manifest, &d->cert_manifest_len, manifest, manifest_len);
  if (!rc) d->cert_height = height;
  return rc;
}

/* ---- open -------------------------------------------------------------------------------------- */

/* A certificate on disk for snapshot s that verifies: adopt it. */
static void load_cert_for(rt_core *c, const rt_snap *s) {
  rt_durable *d = c->dur;
  uint8_t *cert = NULL;
  uint32_t len = 0;
  if (rt_snap_store_load_cert(&d->store, s->st.height, &cert, &len) != 0) return;
  rt_snap_stmt st;
  if (rt_snap_cert_verify(cert, len, c->cluster->n, c->cfg.f ? c->cfg.f : (c->cluster->n - 1) / 3, snap_verify, c,
                          &st) == 0 &&
      memcmp(&st, &s->st, sizeof st) == 0 && adopt_cert(d, s->st.height, cert, len, s->manifest, s->manifest_len) == 0) {
    if (d->have_own && d->own.height == s->st.height) d->own_certified = 1;
  } else {
    rt_logf(c->log, RT_LOG_WARN, COMP, "event=snapshot_cert_ignored height=%llu", (unsigned long long)s->st.height);
  }
  free(cert);
}

int rt_dur_open(rt_core *c, char *err, size_t errlen) {
  rt_durable *d = c->dur;
  if (!d->snap_every && !d->store.mem && !d->store.dir) return 0;
  rt_snap s;
  if (rt_snap_store_load(&d->store, UINT64_MAX, &s) != 0) return 0; /* none: replay the whole ledger */
  int rc = rt_snap_apply(&s, &c->app, &c->sessions, c->cluster);
  uint8_t sd[BFT_DIGEST_LEN];
  if (!rc) {
    rt_core_state_digest(c, sd);
    if (memcmp(sd, s.st.state_digest, BFT_DIGEST_LEN) != 0) rc = BFT_E_BAD_DIGEST;
  }
  if (rc) {
    snprintf(err, errlen, "%s: snapshot at height %llu cannot be restored: %s", c->data_dir,
             (unsigned long long)s.st.height, bft_strerror(rc));
    rt_snap_free(&s);
    return rc;
  }
  memcpy(c->state_digest, sd, BFT_DIGEST_LEN);
  d->loaded = s.st.height;
  d->loaded_st = s.st;
  rc = adopt_own(d, &s);
  if (!rc) load_cert_for(c, &s);
  uint64_t newest = s.st.height;
  rt_snap_free(&s);
  if (!rc && !d->cert_height && rt_snap_store_load(&d->store, newest - 1, &s) == 0) { /* an older certified one */
    load_cert_for(c, &s);
    rt_snap_free(&s);
  }
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_loaded height=%llu certified=%d", (unsigned long long)d->loaded,
          d->own_certified);
  return rc;
}

int rt_dur_replay_skip(rt_core *c, const bft_block *b) {
  rt_durable *d = c->dur;
  if (!d->loaded) return 0;
  if (b->height == d->loaded + 1 && memcmp(b->prev_hash, d->loaded_st.block_hash, BFT_DIGEST_LEN) != 0)
    return rt_core_fail(c, BFT_E_BAD_DIGEST, "block %llu does not chain to the snapshot at %llu",
                        (unsigned long long)b->height, (unsigned long long)d->loaded);
  if (b->height > d->loaded) return 0;
  if (b->height == d->loaded && memcmp(b->state_digest, d->loaded_st.state_digest, BFT_DIGEST_LEN) != 0)
    return rt_core_fail(c, BFT_E_BAD_DIGEST, "the snapshot at %llu has another state digest than block %llu",
                        (unsigned long long)d->loaded, (unsigned long long)b->height);
  return 1;
}

int rt_dur_after_ledger(rt_core *c, char *err, size_t errlen) {
  rt_durable *d = c->dur;
  rt_ledger *l = &c->ledger;
  if (!d->loaded) {
    if (l->base > 0)
      return snprintf(err, errlen, "%s/ledger starts after block %llu but no snapshot covers the blocks before it",
                      c->data_dir, (unsigned long long)l->base),
             BFT_E_STATE;
    return 0;
  }
  if (l->base > d->loaded)
    return snprintf(err, errlen, "%s: the ledger starts after block %llu, above the newest snapshot (%llu)", c->data_dir,
                    (unsigned long long)l->base, (unsigned long long)d->loaded),
           BFT_E_STATE;
  if (l->head == d->loaded && memcmp(l->head_hash, d->loaded_st.block_hash, BFT_DIGEST_LEN) != 0)
    return snprintf(err, errlen, "%s: the snapshot at %llu does not match the ledger's block", c->data_dir,
                    (unsigned long long)d->loaded),
           BFT_E_BAD_DIGEST;
  if (l->head < d->loaded) { /* a transferred snapshot whose ledger rebase the crash interrupted */
    int rc = rt_ledger_rebase(l, d->loaded, d->loaded_st.block_hash);
    if (rc)
      return snprintf(err, errlen, "%s/ledger: cannot start it at the snapshot (%llu): %s", c->data_dir,
                      (unsigned long long)d->loaded, bft_strerror(rc)),
             rc;
    rt_logf(c->log, RT_LOG_WARN, COMP, "event=ledger_rebased base=%llu reason=\"snapshot ahead of the ledger\"",
            (unsigned long long)d->loaded);
  }
  return 0;
}

/* ---- taking snapshots ------------------------------------------------------------------------- */

int rt_dur_on_commit(rt_core *c, uint64_t height) {
  rt_durable *d = c->dur;
  if (!d->snap_every || height % d->snap_every != 0) return 0;
  rt_snap_free(&d->pending);
  d->have_pending = 0;
  int rc = rt_snap_capture(&d->pending, &c->app, &c->sessions, height, c->ledger.head_hash, c->state_digest);
  if (rc) return rt_core_fail(c, rc, "cannot capture the snapshot at %llu: %s", (unsigned long long)height, bft_strerror(rc));
  d->have_pending = 1;
  return 0;
}

int rt_dur_attest_body(rt_core *c, uint8_t *out, uint32_t cap) {
  rt_durable *d = c->dur;
  if (!d->have_own || cap < 8 + 3 * 32 + 4 + BFT_SIG_LEN) return BFT_E_STATE;
  rt_snap_stmt_encode(&d->own, c->self, out);
  memcpy(out + 8 + 3 * 32 + 4, d->own_sig, BFT_SIG_LEN);
  return 8 + 3 * 32 + 4 + BFT_SIG_LEN;
}

static void send_attest(rt_core *c, int to) {
  uint8_t body[8 + 3 * 32 + 4 + BFT_SIG_LEN];
  int n = rt_dur_attest_body(c, body, sizeof body);
  if (n < 0) return;
  if (to < 0) c->io.broadcast(c->io.ctx, WIRE_KIND_SNAP_ATTEST, body, (uint32_t)n);
  else c->io.send(c->io.ctx, (uint32_t)to, WIRE_KIND_SNAP_ATTEST, body, (uint32_t)n);
  c->dur->own_attest_ms = c->io.now_ms(c->io.ctx);
}

static int sign_own(rt_core *c) {
  uint8_t stmt[8 + 3 * 32 + 4];
  rt_snap_stmt_encode(&c->dur->own, c->self, stmt);
  if (c->crypto.sign(c->crypto.ctx, RT_SNAP_TAG, stmt, sizeof stmt, c->dur->own_sig) != 0)
    return rt_core_fail(c, BFT_E_CRYPTO, "signing a snapshot attestation failed");
  return 0;
}

/* f+1 matching attestations (ours included) for our newest snapshot: write its certificate. */
static int try_certify(rt_core *c) {
  rt_durable *d = c->dur;
  if (!d->have_own || d->own_certified) return 0;
  uint8_t sigs[64][BFT_SIG_LEN];
  uint64_t mask = 1ull << c->self;
  memcpy(sigs[c->self], d->own_sig, BFT_SIG_LEN);
  for (uint32_t i = 0; i < c->cluster->n && i < 64; i++) {
    if (i == c->self) continue;
    for (uint32_t k = 0; k < RT_ATT_KEEP; k++) {
      const rt_att *a = &d->att[i][k];
      if (a->valid && memcmp(&a->st, &d->own, sizeof a->st) == 0) {
        mask |= 1ull << i;
        memcpy(sigs[i], a->sig, BFT_SIG_LEN);
      }
    }
  }
  if ((uint32_t)__builtin_popcountll(mask) < c->cfg.f + 1) return 0;
  /* exactly f+1 signatures: the smallest certificate that proves it */
  uint64_t use = 0;
  for (uint32_t i = 0, k = 0; i < 64 && k < c->cfg.f + 1; i++)
    if (mask >> i & 1) use |= 1ull << i, k++;
  uint8_t cert[RT_SNAP_CERT_MAX];
  int n = rt_snap_cert_encode(&d->own, use, (const uint8_t(*)[BFT_SIG_LEN])sigs, cert, sizeof cert);
  if (n < 0) return rt_core_fail(c, n, "encoding a snapshot certificate failed");
  int rc = rt_snap_store_write_cert(&d->store, d->own.height, cert, (uint32_t)n);
  if (rc)
    return rt_core_fail(c, rc, "fsync of %s/snap-%llu.cert failed: %s", c->data_dir, (unsigned long long)d->own.height,
                        strerror(d->store.last_errno ? d->store.last_errno : EIO));
  if ((rc = adopt_cert(d, d->own.height, cert, (uint32_t)n, d->own_manifest, d->own_manifest_len)) != 0)
    return rt_core_fail(c, rc, "out of memory");
  d->own_certified = 1;
  d->certified++;
  d->prune_due = 1;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_certified height=%llu signers=%u", (unsigned long long)d->own.height,
          c->cfg.f + 1);
  return 0;
}

void rt_dur_on_attest(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  rt_durable *d = c->dur;
  if (len != 8 + 3 * 32 + 4 + BFT_SIG_LEN) return;
  wire_reader r;
  wire_reader_init(&r, body, len);
  rt_att a = {0};
  a.st.height = wire_get_u64(&r);
  wire_get_fixed(&r, a.st.block_hash, BFT_DIGEST_LEN);
  wire_get_fixed(&r, a.st.state_digest, BFT_DIGEST_LEN);
  wire_get_fixed(&r, a.st.snap_digest, BFT_DIGEST_LEN);
  uint32_t who = wire_get_u32(&r);
  wire_get_fixed(&r, a.sig, BFT_SIG_LEN);
  if (r.err || who != from || from >= 64) return;
  rt_att *slot = &d->att[from][0];
  for (uint32_t k = 0; k < RT_ATT_KEEP; k++) { /* same height replaced, else the lowest */
    rt_att *s = &d->att[from][k];
    if (s->valid && s->st.height == a.st.height) {
      if (memcmp(&s->st, &a.st, sizeof a.st) == 0 && memcmp(s->sig, a.sig, BFT_SIG_LEN) == 0) goto known;
      slot = s;
      break;
    }
    if (!s->valid || s->st.height < slot->st.height || !slot->valid) slot = s;
  }
  if (slot->valid && slot->st.height > a.st.height) return; /* older than all we keep */
  if (snap_verify(c, from, body, 8 + 3 * 32 + 4, a.sig) != 0) return;
  a.valid = 1;
  *slot = a;
known:
  /* A peer attesting the height of our newest snapshot may be collecting (after a restart): answer once. */
  if (d->have_own && d->own.height == a.st.height && d->answered[from] != a.st.height + 1) {
    d->answered[from] = a.st.height + 1;
    send_attest(c, (int)from);
  }
  (void)try_certify(c);
}

/* Prune the ledger to `retain` blocks below the newest certified snapshot. */
static int prune(rt_core *c) {
  rt_durable *d = c->dur;
  d->prune_due = 0;
  if (d->retain == RT_RETAIN_ALL || !d->cert_height) return 0;
  uint64_t target = d->cert_height > d->retain ? d->cert_height - d->retain : 0;
  if (target <= c->ledger.base || target > c->ledger.head) return 0;
  uint8_t hash[BFT_DIGEST_LEN];
  uint32_t len;
  int rc = rt_ledger_read(&c->ledger, target, c->bufs->block_buf, BFT_MAX_BLOCK_BYTES, &len);
  if (rc) return rt_core_fail(c, rc, "cannot read block %llu to prune below it", (unsigned long long)target);
  bft_block_hash(c->bufs->block_buf, len, hash);
  uint64_t before = c->ledger.base;
  rc = rt_ledger_rebase(&c->ledger, target, hash);
  if (rc)
    return rt_core_fail(c, rc, "pruning %s/ledger below %llu failed: %s", c->data_dir, (unsigned long long)target,
                        c->ledger.f.last_errno ? strerror(c->ledger.f.last_errno) : bft_strerror(rc));
  d->pruned += target - before;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=ledger_pruned base=%llu head=%llu anchor=%llu", (unsigned long long)target,
          (unsigned long long)c->ledger.head, (unsigned long long)d->cert_height);
  return 0;
}

static int write_pending(rt_core *c) {
  rt_durable *d = c->dur;
  d->have_pending = 0;
  int rc = rt_snap_store_write(&d->store, &d->pending);
  if (rc)
    return rt_core_fail(c, rc, "fsync of %s/snap-%llu failed: %s", c->data_dir, (unsigned long long)d->pending.st.height,
                        strerror(d->store.last_errno ? d->store.last_errno : EIO));
  if ((rc = adopt_own(d, &d->pending)) != 0) return rt_core_fail(c, rc, "out of memory");
  d->snapshots++;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot height=%llu bytes=%llu", (unsigned long long)d->pending.st.height,
          (unsigned long long)d->pending.payload_len);
  rt_snap_free(&d->pending);
  if ((rc = sign_own(c)) != 0) return rc;
  send_attest(c, -1);
  rt_snap_store_prune(&d->store, d->own.height, d->cert_height);
  return try_certify(c);
}

int rt_dur_after_sync(rt_core *c) {
  rt_durable *d = c->dur;
  int rc = 0;
  if (d->have_pending && (rc = write_pending(c)) != 0) return rc;
  if (d->prune_due) {
    rt_snap_store_prune(&d->store, d->own.height, d->cert_height);
    if ((rc = prune(c)) != 0) return rc;
  }
  if (d->have_own && !d->own_certified) {
    uint64_t now = c->io.now_ms(c->io.ctx);
    if (!d->own_attest_ms || now - d->own_attest_ms > RT_ATTEST_REPEAT_MS) {
      if (!d->own_attest_ms && (rc = sign_own(c)) != 0) return rc; /* loaded at open: not signed yet */
      send_attest(c, -1);
    }
  }
  rt_xfer_tick(c);
  return c->failed ? BFT_E_STATE : 0;
}

int rt_dur_allow_request(rt_core *c, uint32_t from) {
  rt_durable *d = c->dur;
  if (from >= BFT_MAX_REPLICAS) return 0;
  uint64_t now = c->io.now_ms(c->io.ctx);
  if (!d->tokens_ms[from]) {
    d->tokens[from] = RT_PEER_REQ_BURST;
    d->tokens_ms[from] = now ? now : 1;
  }
  uint64_t refill = (now - d->tokens_ms[from]) * RT_PEER_REQ_PER_S / 1000;
  if (refill) {
    d->tokens[from] = d->tokens[from] + refill > RT_PEER_REQ_BURST ? RT_PEER_REQ_BURST : (uint32_t)(d->tokens[from] + refill);
    d->tokens_ms[from] += refill * 1000 / RT_PEER_REQ_PER_S;
  }
  if (!d->tokens[from]) {
    d->refused_requests++;
    rt_logf_rl(c->log, &c->rl_sync, RT_LOG_WARN, COMP, "event=peer_request_refused from=%u reason=\"rate\"", from);
    return 0;
  }
  d->tokens[from]--;
  return 1;
}

/* ---- installing a transferred snapshot -------------------------------------------------------- */

/* The peer's block at the snapshot's height, when it proves itself: the block hash the
 * certificate attests, the state digest, its batch digest and its commit certificate. */
static int usable_block(rt_core *c, const rt_snap *s, const uint8_t *p, uint32_t len, bft_block *b) {
  uint8_t h[BFT_DIGEST_LEN], d[BFT_DIGEST_LEN];
  if (!p || !len || bft_block_decode(p, len, b) != 0 || b->height != s->st.height) return 0;
  bft_block_hash(p, len, h);
  bft_digest(d, b->batch, b->batch_len);
  return memcmp(h, s->st.block_hash, BFT_DIGEST_LEN) == 0 &&
         memcmp(b->state_digest, s->st.state_digest, BFT_DIGEST_LEN) == 0 &&
         memcmp(d, b->batch_digest, BFT_DIGEST_LEN) == 0 && strcmp(b->protocol, c->ops->name) == 0 &&
         c->ops->verify_certificate(&c->cfg, &c->env, b->height, b->batch_digest, b->cert, b->cert_len) == 0;
}

int rt_dur_install(rt_core *c, rt_snap *s, const uint8_t *cert, uint32_t cert_len, const uint8_t *block,
                   uint32_t block_len) {
  rt_durable *d = c->dur;
  if (s->st.height <= c->ledger.head) return 0; /* caught up by blocks meanwhile */
  int rc = rt_ledger_sync(&c->ledger);
  if (rc) return rt_core_fail(c, rc, "fsync of %s failed: %s", c->ledger.f.path, strerror(c->ledger.f.last_errno));
  rc = rt_snap_apply(s, &c->app, &c->sessions, c->cluster);
  if (rc) return rt_core_fail(c, rc, "a certified snapshot at %llu does not apply: %s", (unsigned long long)s->st.height, bft_strerror(rc));
  rt_core_state_digest(c, c->state_digest);
  if (memcmp(c->state_digest, s->st.state_digest, BFT_DIGEST_LEN) != 0)
    return rt_core_fail(c, BFT_E_BAD_DIGEST, "the certified snapshot at %llu gives another state digest here",
                        (unsigned long long)s->st.height);
  /* snapshot and certificate first: a crash before the rebase is finished at the next open */
  rc = rt_snap_store_write(&d->store, s);
  if (!rc) rc = rt_snap_store_write_cert(&d->store, s->st.height, cert, cert_len);
  if (rc)
    return rt_core_fail(c, rc, "fsync of %s/snap-%llu failed: %s", c->data_dir, (unsigned long long)s->st.height,
                        strerror(d->store.last_errno ? d->store.last_errno : EIO));
  bft_block b;
  if (usable_block(c, s, block, block_len, &b)) { /* the ledger starts with block H itself */
    rc = rt_ledger_rebase(&c->ledger, s->st.height - 1, b.prev_hash);
    if (!rc) rc = rt_ledger_append(&c->ledger, &b);
    if (!rc) rc = rt_ledger_sync(&c->ledger);
  } else {
    rc = rt_ledger_rebase(&c->ledger, s->st.height, s->st.block_hash);
  }
  if (rc) return rt_core_fail(c, rc, "cannot start %s/ledger at %llu: %s", c->data_dir, (unsigned long long)s->st.height, bft_strerror(rc));
  /* A snapshot of ours captured at a block this group commit applied (the blocks fetched before
   * the transfer finished) is older than this one: written at the next sync, it would become our
   * newest, be certified by peers that attested that height, and make the store prune this one,
   * leaving a ledger that starts above every snapshot kept (a restart refuses it). */
  if (d->have_pending) {
    rt_snap_free(&d->pending);
    d->have_pending = 0;
  }
  if ((rc = adopt_own(d, s)) != 0 || (rc = adopt_cert(d, s->st.height, cert, cert_len, s->manifest, s->manifest_len)) != 0)
    return rt_core_fail(c, rc, "out of memory");
  d->own_certified = 1;
  d->xfer_installed++;
  if ((rc = sign_own(c)) != 0) return rc;
  rt_snap_store_prune(&d->store, d->own.height, d->cert_height);
  for (uint32_t i = 0; i < c->sessions.n; i++) rt_pool_remove_upto(&c->pool, i, c->sessions.s[i].last_seq);
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_installed height=%llu bytes=%llu", (unsigned long long)s->st.height,
          (unsigned long long)s->payload_len);
  return rt_core_reset_engine(c);
}
