/* The runtime core's side of the replicated application (core_app.h). */
#include "replica/core_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica/rt_limits.h"

#define COMP "core"

void rt_short_hex16(char out[17], const uint8_t *d) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hx[d[i] >> 4];
    out[2 * i + 1] = hx[d[i] & 15];
  }
  out[16] = 0;
}

/* The application's own account of a failure (an application over a socket says what broke),
 * or a generic one. Returns a static buffer of the core. */
static const char *app_error(rt_core *c, const char *what, int rc) {
  const char *e = c->app.ops->last_error ? c->app.ops->last_error(c->app.state) : NULL;
  if (e && *e) snprintf(c->app_err, sizeof c->app_err, "%s", e);
  else snprintf(c->app_err, sizeof c->app_err, "application %s %s (%d)", c->app.ops->name, what, rc);
  return c->app_err;
}

/* Hand the selected operations of block `height` to the application, one call for the batch.
 * A failure stops the replica before anything of the block is recorded or answered. */
int rt_core_run_app(rt_core *c, uint64_t height, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    c->bufs->xres[i] = (bft_app_result){.status = 0, .len = 0, .data = c->bufs->xarena + RT_APP_ARENA_BYTES(i)};
  int rc = c->app.ops->execute(c->app.state, height, c->bufs->xops, n, c->bufs->xres);
  if (rc)
    return rt_core_fail(c, BFT_E_STATE, "%s; block %llu was not executed: nothing of it was recorded or answered",
                     app_error(c, "failed to execute a batch", rc), (unsigned long long)height);
  for (uint32_t i = 0; i < n; i++) {
    if (c->bufs->xres[i].len > BFT_APP_MAX_RESULT)
      return rt_core_fail(c, BFT_E_TOO_LARGE, "application %s returned a result of %u bytes (max %u) at height %llu",
                       c->app.ops->name, c->bufs->xres[i].len, BFT_APP_MAX_RESULT, (unsigned long long)height);
    rt_sessions_set_result(&c->sessions, c->bufs->xclient[i], c->bufs->xseq[i], c->bufs->xres[i].status,
                           c->bufs->xres[i].data, c->bufs->xres[i].len);
  }
  return 0;
}

/* Replaying a block the application already executed before this start (its own durable
 * state): only the sessions move; at the application's height its digest must give the
 * block's state digest, else the application is restored and the whole ledger replayed. */
int rt_core_replay_held(rt_core *c, const bft_block *b) {
  c->ctr.app_skipped_blocks++;
  memcpy(c->state_digest, b->state_digest, BFT_DIGEST_LEN);
  if (b->height == c->app_skip_to) {
    uint8_t d[BFT_DIGEST_LEN];
    rt_core_state_digest(c, d);
    if (memcmp(d, b->state_digest, BFT_DIGEST_LEN) != 0) {
      c->app_mismatch = 1;
      c->app_skip_to = UINT64_MAX; /* nothing more is executed in this pass */
    }
  }
  if (c->io.committed) c->io.committed(c->io.ctx, b, 1);
  return 0;
}

void rt_core_attest_flush(rt_core *c) {
  uint8_t body[RT_ATTEST_MSG_MAX];
  uint32_t len = rt_attest_take(&c->attest, body);
  if (c->crypto.sign(c->crypto.ctx, RT_TAG_STATE_DIGEST, body, len, body + len) != 0) {
    rt_core_fail(c, BFT_E_CRYPTO, "signing a state digest failed");
    return;
  }
  c->io.broadcast(c->io.ctx, WIRE_KIND_STATE_DIGEST, body, len + BFT_SIG_LEN);
}

static void diverged(rt_core *c) {
  char ours[17], theirs[17];
  rt_short_hex16(ours, c->attest.ours);
  rt_short_hex16(theirs, c->attest.theirs);
  rt_core_fail(c, BFT_E_BAD_DIGEST,
            "application diverged at height %llu: our state digest %s..., %u of the %u other replicas signed another "
            "(e.g. %s...); application %s is not deterministic, or this replica's copy is broken (fix it, move this "
            "data folder aside and let the replica catch up)",
            (unsigned long long)c->attest.diverged, ours, c->attest.diverged_differ, c->cfg.n - 1, theirs,
            c->app.ops->name);
}

void rt_core_attest_own(rt_core *c, uint64_t h) {
  rt_attest *a = &c->attest;
  if (a->pend_count && (a->pend_first + a->pend_count != h || a->pend_count == RT_ATTEST_MAX_PER_MSG))
    rt_core_attest_flush(c);
  if (rt_attest_own(a, h, c->state_digest, c->io.now_ms(c->io.ctx))) diverged(c);
}

/* A peer's signed state digests: cheap checks, then (only when some height matters to us)
 * the signature, then the comparison. */
int rt_core_on_state_digest(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  if (!c->attest_on) return 0;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t first = wire_get_u64(&r);
  uint32_t count = wire_get_count(&r, RT_ATTEST_MAX_PER_MSG);
  const uint8_t *d = wire_get_view(&r, (size_t)count * BFT_DIGEST_LEN);
  const uint8_t *sig = wire_get_view(&r, BFT_SIG_LEN);
  int rc = wire_reader_finish(&r);
  if (!rc && (count == 0 || first == 0 || first > UINT64_MAX - count)) rc = BFT_E_MALFORMED;
  if (rc) {
    c->attest.refused++;
    return BFT_E_MALFORMED;
  }
  if (!rt_attest_relevant(&c->attest, first, count)) return 0;
  rc = c->crypto.verify(c->crypto.ctx, from, c->cluster->replicas[from].pk, RT_TAG_STATE_DIGEST, body,
                        len - BFT_SIG_LEN, sig);
  if (rc) {
    c->attest.refused++;
    c->ctr.msgs_bad_sig++;
    return rc;
  }
  uint64_t before = c->attest.mismatches;
  if (rt_attest_peer(&c->attest, from, first, count, d)) diverged(c);
  else if (c->attest.mismatches != before)
    rt_logf_rl(c->log, &c->rl_sync, RT_LOG_WARN, COMP,
               "event=state_digest_differs from=%u heights=%llu-%llu note=\"replica %u signed another state digest than "
               "ours; tolerated up to %u replicas\"", from, (unsigned long long)first,
               (unsigned long long)(first + count - 1), from, c->attest.tolerate);
  return 0;
}

/* The application's state does not match our ledger (it is ahead of it, or another state at
 * its height): restore it to the initial state and re-execute the whole ledger, sessions too. */
int rt_core_resync_app(rt_core *c, char *err, size_t errlen) {
  rt_logf(c->log, RT_LOG_WARN, COMP,
          "event=app_resync app_height=%llu ledger_head=%llu note=\"application state does not match the ledger: "
          "restored to its initial state and the ledger re-executed\"",
          (unsigned long long)c->app_height, (unsigned long long)c->ledger.head);
  if (!c->app.ops->restore_begin)
    return snprintf(err, errlen, "application %s is at height %llu, which does not match our ledger (head %llu), and "
                    "it cannot be restored (no restore)", c->app.ops->name, (unsigned long long)c->app_height,
                    (unsigned long long)c->ledger.head), BFT_E_STATE;
  int rc = bft_app_restore_all(&c->app, 0, NULL, 0);
  if (rc) return snprintf(err, errlen, "application %s refused to restore its initial state: %s", c->app.ops->name,
                          bft_strerror(rc)), rc;
  rt_sessions_free(&c->sessions);
  if ((rc = rt_sessions_init(&c->sessions, c->cluster, 0)) != 0) return snprintf(err, errlen, "out of memory"), rc;
  c->app_skip_to = 0;
  c->app_mismatch = 0;
  rt_core_state_digest(c, c->state_digest);
  for (uint64_t h = 1; h <= c->ledger.head && !c->failed; h++) {
    uint32_t len;
    bft_block b;
    rc = rt_ledger_read(&c->ledger, h, c->bufs->block_buf, BFT_MAX_BLOCK_BYTES, &len);
    if (!rc) rc = bft_block_decode(c->bufs->block_buf, len, &b);
    if (rc) return snprintf(err, errlen, "cannot read block %llu of our ledger: %s", (unsigned long long)h,
                            bft_strerror(rc)), rc;
    rt_core_execute(c, b.height, b.batch_digest, b.batch, b.batch_len, b.cert, b.cert_len, &b);
  }
  if (c->failed) return snprintf(err, errlen, "%s", c->fail_msg), BFT_E_STATE;
  return 0;
}

int rt_core_queue_check(rt_core *c, const uint8_t d[BFT_DIGEST_LEN], uint32_t client, uint64_t seq, const uint8_t *req,
                       uint32_t len) {
  for (uint32_t i = 0; i < c->nchecks; i++)
    if (memcmp(c->checks[i].digest, d, BFT_DIGEST_LEN) == 0) return 0; /* a retransmission: already waiting */
  if (c->nchecks == RT_CHECK_MAX) {
    int rc = rt_core_run_checks(c);
    if (rc) return rc;
  }
  uint8_t *copy = malloc(len);
  if (!copy) return BFT_E_NOMEM;
  memcpy(copy, req, len);
  rt_pending_check *k = &c->checks[c->nchecks++];
  *k = (rt_pending_check){.bytes = copy, .len = len, .client = client, .seq = seq};
  memcpy(k->digest, d, BFT_DIGEST_LEN);
  return 0;
}

int rt_core_run_checks(rt_core *c) {
  if (c->failed) return BFT_E_STATE;
  uint32_t n = c->nchecks;
  if (!n) return 0;
  for (uint32_t i = 0; i < n; i++) {
    bft_request r;
    if (bft_request_decode(c->checks[i].bytes, c->checks[i].len, &r) != 0) { /* decoded at submit */
      r.op = NULL;
      r.op_len = 0;
    }
    c->bufs->xops[i] = (bft_app_op){.client_key = c->sessions.pks[c->checks[i].client], .client = c->checks[i].client,
                                    .seq = c->checks[i].seq, .op = r.op, .len = r.op_len};
    c->check_verdicts[i] = 0;
    c->check_reasons[i][0] = 0;
  }
  int rc = c->app.ops->check(c->app.state, c->bufs->xops, n, c->check_verdicts, c->check_reasons);
  if (rc) return rt_core_fail(c, BFT_E_STATE, "%s", app_error(c, "failed to check requests", rc));
  c->nchecks = 0;
  for (uint32_t i = 0; i < n && !c->failed; i++) {
    rt_pending_check *k = &c->checks[i];
    c->ctr.req_checked++;
    if (c->check_verdicts[i]) {
      c->check_reasons[i][BFT_APP_MAX_REASON - 1] = 0;
      if (!c->check_reasons[i][0]) snprintf(c->check_reasons[i], BFT_APP_MAX_REASON, "refused by the application");
      c->ctr.req_app_rejected++;
      if (c->io.rejected) c->io.rejected(c->io.ctx, k->client, c->sessions.pks[k->client], k->seq, c->check_reasons[i]);
    } else if (k->seq > c->sessions.s[k->client].last_seq) { /* it may have executed meanwhile */
      rt_submit out;
      rt_core_admit(c, k->digest, k->client, k->seq, k->bytes, k->len, 0, &out);
    }
    free(k->bytes);
    k->bytes = NULL;
  }
  return c->failed ? BFT_E_STATE : 0;
}

int rt_core_query(rt_core *c, const uint8_t *body, uint32_t len, uint8_t *out, uint32_t cap) {
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint8_t ver = wire_get_u8(&r);
  uint64_t nonce = wire_get_u64(&r);
  uint32_t ql;
  const uint8_t *q = wire_get_blob(&r, &ql, BFT_APP_MAX_OP);
  int rc = wire_reader_finish(&r);
  if (rc || ver != 1) return rc ? rc : BFT_E_VERSION;
  bft_app_result res = {.status = BFT_APP_REJECTED, .len = 0, .data = c->bufs->xarena};
  c->ctr.queries++;
  if (!c->app.ops->query) {
    static const char why[] = "this application answers no queries";
    memcpy(res.data, why, sizeof why - 1);
    res.len = sizeof why - 1;
  } else {
    rc = c->app.ops->query(c->app.state, q, ql, &res);
    if (rc) return rt_core_fail(c, BFT_E_STATE, "%s", app_error(c, "failed to answer a query", rc));
    if (res.len > BFT_APP_MAX_RESULT) return rt_core_fail(c, BFT_E_TOO_LARGE, "application query result too large");
  }
  wire_writer w;
  wire_writer_init(&w, out, cap);
  wire_put_u8(&w, 1);
  wire_put_u32(&w, c->self);
  wire_put_u64(&w, nonce);
  wire_put_u64(&w, c->ledger.head);
  wire_put_u8(&w, res.status);
  wire_put_blob(&w, res.data, res.len);
  uint8_t *sig = wire_put_reserve(&w, BFT_SIG_LEN);
  if (w.err) return w.err;
  if (c->crypto.sign(c->crypto.ctx, RT_TAG_QUERY_REPLY, out, (uint32_t)w.len - BFT_SIG_LEN, sig) != 0)
    return rt_core_fail(c, BFT_E_CRYPTO, "signing a query reply failed");
  return (int)w.len;
}

