/* PBFT normal case: commits with certificates that verify (and fail when tampered with),
 * pipelining inside the watermarks, checkpoints that move them and trim the log, and replayed
 * or forged messages that change nothing and are counted. */
#include "tests/pbft/util.h"

static void assert_all_committed(harness *h, uint64_t seq) {
  for (uint32_t i = 0; i < h->n; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.committed, seq);
    assert_int_equal(h->r[i].ncommit, seq);
  }
  assert_true(h_agree(h));
}

static void test_normal_commit_and_certificates(void **unused) {
  (void)unused;
  harness *h = h_new(4, 0, 0, 0);
  submit_and_run(h, 5, "put");
  assert_all_committed(h, 5);
  for (uint32_t i = 0; i < 4; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.view, 0);
    assert_int_equal(st.leader, 0);
    assert_int_equal(st.changing_view, 0);
    assert_int_equal(st.rejected_cert + st.rejected_digest + st.rejected_other, 0);
  }
  /* every replica executed every request exactly once */
  for (uint32_t i = 0; i < 4; i++)
    for (uint32_t k = 0; k < 5; k++) assert_true(h->r[i].executed[k]);

  const bft_engine_ops *ops = h->ops;
  h_replica *r = &h->r[2];
  h_commit *c = &r->commits[3];
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, c->cert, c->cert_len), 0);
  /* canonical layout: u64 view | u32 count | count x (u32 id | sig) */
  assert_int_equal(c->cert_len, 8 + 4 + 3 * 68);
  assert_int_equal(get32(c->cert + 8), 3);
  uint8_t bad[2048];
  /* a flipped byte anywhere in a signature */
  memcpy(bad, c->cert, c->cert_len);
  bad[8 + 4 + 68 + 4 + 10] ^= 1;
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len), BFT_E_BAD_CERT);
  /* the view changed */
  memcpy(bad, c->cert, c->cert_len);
  bad[0] ^= 1;
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len), BFT_E_BAD_CERT);
  /* another seq or digest */
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 4, c->digest, c->cert, c->cert_len), BFT_E_BAD_CERT);
  uint8_t d2[32];
  memcpy(d2, c->digest, 32);
  d2[0] ^= 1;
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, d2, c->cert, c->cert_len), BFT_E_BAD_CERT);
  /* a duplicated signer: the second entry replaced by the first */
  memcpy(bad, c->cert, c->cert_len);
  memcpy(bad + 12 + 68, bad + 12, 68);
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len), BFT_E_BAD_CERT);
  /* the same, swapped into descending order: still two from one signer */
  memcpy(bad, c->cert, c->cert_len);
  memcpy(bad + 12, c->cert + 12 + 68, 68);
  memcpy(bad + 12 + 68, c->cert + 12 + 68, 68);
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len), BFT_E_BAD_CERT);
  /* too few signers */
  memcpy(bad, c->cert, c->cert_len);
  put32(bad + 8, 2);
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len - 68), BFT_E_BAD_CERT);
  /* trailing bytes, truncation */
  memcpy(bad, c->cert, c->cert_len);
  bad[c->cert_len] = 0;
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len + 1), BFT_E_BAD_CERT);
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len - 1), BFT_E_BAD_CERT);
  /* a signer id out of range */
  memcpy(bad, c->cert, c->cert_len);
  put32(bad + 12 + 2 * 68, 9);
  assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, 3, c->digest, bad, c->cert_len), BFT_E_BAD_CERT);
  /* certificates of all replicas verify for the same seq and digest */
  for (uint32_t i = 0; i < 4; i++)
    for (uint64_t s = 1; s <= 5; s++) {
      h_commit *x = &h->r[i].commits[s];
      assert_int_equal(ops->verify_certificate(&r->cfg, &r->env, s, h->r[0].commits[s].digest, x->cert, x->cert_len), 0);
    }
  h_free(h);
}

static void test_pipelining(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 16, 4);
  /* No message moves while the primary receives 6 requests: it pre-prepares each at once. */
  for (int k = 0; k < 6; k++) {
    char op[16];
    snprintf(op, sizeof op, "op%d", k);
    h_submit(h, op);
  }
  uint32_t pp = 0;
  uint64_t seen = 0;
  for (uint32_t i = h->qhead; i != h->qtail; i++) {
    h_msg *m = &h->q[i % h->qcap];
    if (m->kind != PBFT_MSG_PRE_PREPARE) continue;
    assert_int_equal(m->from, 0);
    pp++;
    seen |= 1ull << get64(m->body + 8);
  }
  assert_int_equal(pp, 6 * 3);
  assert_int_equal(seen, 0x7e); /* seqs 1..6 in flight together */
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.committed, 0);
  h_run(h, 1000000);
  assert_all_committed(h, 6);
  /* the pipeline is bounded by the high watermark: checkpoint 4 is stable, and with the
   * checkpoints after it lost, nothing above 4 + L = 20 is proposed */
  for (uint32_t i = 0; i < 4; i++) {
    h_status(h, i, &st);
    assert_int_equal(st.stable, 4);
  }
  recorder *rec = calloc(1, sizeof *rec);
  rec->drop_kinds = 1u << PBFT_MSG_CHECKPOINT;
  h->filter = record_filter;
  h->filter_arg = rec;
  for (int k = 0; k < 20; k++) {
    char op[16];
    snprintf(op, sizeof op, "more%d", k);
    h_submit(h, op);
  }
  h_run(h, 1000000);
  assert_all_committed(h, 20);
  h_status(h, 0, &st);
  assert_int_equal(st.stable, 4);
  /* lost checkpoints are repeated on the checkpoint timer; the window moves on */
  rec->drop_kinds = 0;
  for (uint32_t i = 0; i < 4; i++) h_fire(h, i, PBFT_TIMER_CHECKPOINT);
  h_run(h, 1000000);
  for (int round = 0; round < 4; round++) {
    for (uint32_t i = 0; i < 4; i++) h_fire(h, i, PBFT_TIMER_CHECKPOINT);
    h_run(h, 1000000);
  }
  assert_all_committed(h, 26);
  h->filter = NULL;
  recorder_free(rec);
  free(rec);
  h_free(h);
}

/* --pipeline 2: with 6 requests waiting the primary pre-prepares only seqs 1 and 2 until one of
 * them is delivered; each delivery lets exactly one more batch out, and everything commits. */
static void test_pipeline_depth_bounds_batches_in_flight(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 16, 4);
  for (uint32_t i = 0; i < 4; i++) {
    h->r[i].cfg.pipeline = 2;
    h_restart(h, i, h->r[i].ncommit);
  }
  for (int k = 0; k < 6; k++) {
    char op[16];
    snprintf(op, sizeof op, "op%d", k);
    h_submit(h, op);
  }
  uint64_t seen = 0;
  for (uint32_t i = h->qhead; i != h->qtail; i++) {
    h_msg *m = &h->q[i % h->qcap];
    if (m->kind == PBFT_MSG_PRE_PREPARE) seen |= 1ull << get64(m->body + 8);
  }
  assert_int_equal(seen, 0x6); /* seqs 1 and 2 only */
  h_run(h, 1000000);
  assert_all_committed(h, 6);
  /* a depth above the window is refused */
  bft_engine_config c = h->r[0].cfg;
  c.pipeline = c.window + 1;
  assert_int_equal(bft_engine_config_check(&c), BFT_E_INVAL);
  c.pipeline = c.window;
  assert_int_equal(bft_engine_config_check(&c), 0);
  h_free(h);
}

static void test_checkpoints_move_watermarks(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 4, 2);
  recorder *rec = calloc(1, sizeof *rec);
  h->filter = record_filter;
  h->filter_arg = rec;
  submit_and_run(h, 11, "w");
  assert_all_committed(h, 11);
  for (uint32_t i = 0; i < 4; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.stable, 10);
  }
  /* a PREPARE below the low watermark: the log there is gone, it is rejected and counted */
  h_msg *old = rec_find(rec, 1, 2, PBFT_MSG_PREPARE, 3);
  assert_non_null(old);
  bft_engine_status before, after;
  h_status(h, 2, &before);
  assert_int_equal(h_deliver(h, 2, 1, old->kind, old->body, old->len), BFT_E_STALE);
  h_status(h, 2, &after);
  assert_int_equal(after.rejected_stale, before.rejected_stale + 1);
  assert_int_equal(h->last_nact, 0);
  /* same for a pre-prepare at seq 10 (= h) */
  old = rec_find(rec, 0, 2, PBFT_MSG_PRE_PREPARE, 10);
  assert_non_null(old);
  assert_int_equal(h_deliver(h, 2, 0, old->kind, old->body, old->len), BFT_E_STALE);
  /* above the high watermark (h + L = 14) */
  uint8_t d[32] = {1};
  uint32_t len;
  uint8_t *b = make_vote(h, PBFT_MSG_PREPARE, 1, 0, 15, d, &len);
  assert_int_equal(h_deliver(h, 2, 1, PBFT_MSG_PREPARE, b, len), BFT_E_WINDOW);
  free(b);
  b = make_vote(h, PBFT_MSG_PREPARE, 1, 0, 14, d, &len); /* inside: accepted (and useless) */
  assert_int_equal(h_deliver(h, 2, 1, PBFT_MSG_PREPARE, b, len), 0);
  free(b);
  h_status(h, 2, &after);
  assert_int_equal(after.rejected_window, before.rejected_window + 1);
  assert_int_equal(after.rejected_stale, before.rejected_stale + 2);
  /* a stale checkpoint from a peer gets our stable checkpoint vote back (help for laggards) */
  h_msg *ck = rec_find(rec, 1, 2, PBFT_MSG_CHECKPOINT, UINT64_MAX);
  assert_non_null(ck);
  assert_int_equal(h_deliver(h, 2, 1, ck->kind, ck->body, ck->len), 0);
  assert_int_equal(h->last_sends[PBFT_MSG_CHECKPOINT], 1);
  h->filter = NULL;
  h_clear_queue(h);
  recorder_free(rec);
  free(rec);
  h_free(h);
}

static void test_replays_and_forgeries(void **unused) {
  (void)unused;
  harness *h = h_new(4, 0, 0, 0);
  recorder *rec = calloc(1, sizeof *rec);
  h->filter = record_filter;
  h->filter_arg = rec;
  submit_and_run(h, 1, "a");
  /* hold back everything of the second request after the pre-prepare */
  rec->drop_kinds = (1u << PBFT_MSG_PREPARE) | (1u << PBFT_MSG_COMMIT);
  submit_and_run(h, 1, "b");
  assert_all_committed(h, 1);
  h->filter = NULL;

  bft_engine_status before, after;
  h_status(h, 1, &before);
  /* the same messages again; a repeated PREPARE for a seq we delivered is a laggard's
   * retransmission: it is answered with our COMMIT and changes nothing else */
  h_msg *m = rec_find(rec, 2, 1, PBFT_MSG_PREPARE, 1);
  assert_int_equal(h_deliver(h, 1, 2, m->kind, m->body, m->len), 0);
  assert_int_equal(h->last_nact, 1);
  assert_int_equal(h->last_sends[PBFT_MSG_COMMIT], 1);
  h_clear_queue(h);
  m = rec_find(rec, 2, 1, PBFT_MSG_PREPARE, 2); /* held back: new the first time */
  assert_int_equal(h_deliver(h, 1, 2, m->kind, m->body, m->len), 0);
  h_status(h, 1, &before);
  assert_int_equal(h_deliver(h, 1, 2, m->kind, m->body, m->len), BFT_E_DUPLICATE);
  assert_int_equal(h->last_nact, 0);
  m = rec_find(rec, 2, 1, PBFT_MSG_COMMIT, 1);
  assert_int_equal(h_deliver(h, 1, 2, m->kind, m->body, m->len), BFT_E_DUPLICATE);
  m = rec_find(rec, 0, 1, PBFT_MSG_PRE_PREPARE, 2);
  assert_int_equal(h_deliver(h, 1, 0, m->kind, m->body, m->len), BFT_E_DUPLICATE);
  assert_int_equal(h->last_nact, 0);
  h_status(h, 1, &after);
  assert_int_equal(after.rejected_stale, before.rejected_stale + 3);

  /* a pre-prepare whose batch does not match its digest (re-signed by the primary) */
  uint32_t plen = m->len - 64;
  uint8_t *p = malloc(plen);
  memcpy(p, m->body, plen);
  p[plen - 1] ^= 1;
  uint32_t blen;
  uint8_t *b = h_seal(h, 0, PBFT_MSG_PRE_PREPARE, p, plen, &blen);
  assert_int_equal(h_deliver(h, 1, 0, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_BAD_DIGEST);
  free(b);
  /* a different batch for the same (view, seq): equivocation, refused */
  uint8_t rq[512], batch[600];
  uint32_t rl = make_request(h, 77, "other", rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, rq, rl);
  uint32_t bl = bft_batch_end(&bw);
  /* a different batch for the same (view, seq): equivocation, refused; both signed prepare
   * statements (the first pre-prepare's and this one's) are reported as evidence, once */
  b = make_pre_prepare(h, 0, 0, 2, batch, bl, &blen);
  uint32_t ev_before = h->r[1].evidence;
  assert_int_equal(h_deliver(h, 1, 0, PBFT_MSG_PRE_PREPARE, b, blen), 0);
  assert_int_equal(h->r[1].evidence, ev_before + 1);
  h_status(h, 1, &after);
  assert_int_equal(after.equivocations, 1);
  assert_int_equal(h_deliver(h, 1, 0, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_STATE); /* reported already */
  assert_int_equal(h->r[1].evidence, ev_before + 1);
  free(b);
  /* a pre-prepare from a backup */
  b = make_pre_prepare(h, 2, 0, 3, batch, bl, &blen);
  assert_int_equal(h_deliver(h, 1, 2, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_STATE);
  free(b);
  /* a pre-prepare whose embedded prepare signature is not the primary's */
  b = make_pre_prepare(h, 0, 0, 3, batch, bl, &blen);
  b[48] ^= 1;
  uint8_t *b2 = h_seal(h, 0, PBFT_MSG_PRE_PREPARE, b, blen - 64, &blen);
  assert_int_equal(h_deliver(h, 1, 0, PBFT_MSG_PRE_PREPARE, b2, blen), BFT_E_BAD_CERT);
  free(b);
  free(b2);
  /* outside the window, and for a future view */
  b = make_pre_prepare(h, 0, 0, 1000, batch, bl, &blen);
  assert_int_equal(h_deliver(h, 1, 0, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_WINDOW);
  free(b);
  b = make_pre_prepare(h, 1, 1, 3, batch, bl, &blen);
  assert_int_equal(h_deliver(h, 2, 1, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_WINDOW);
  free(b);
  /* a vote whose replica field is not its sender */
  uint8_t dg[32] = {7};
  b = make_vote(h, PBFT_MSG_PREPARE, 3, 0, 2, dg, &blen);
  uint8_t *p2 = malloc(blen - 64);
  memcpy(p2, b, blen - 64);
  put32(p2 + 48, 2);
  b2 = h_seal(h, 3, PBFT_MSG_PREPARE, p2, blen - 64, &blen);
  assert_int_equal(h_deliver(h, 1, 3, PBFT_MSG_PREPARE, b2, blen), BFT_E_MALFORMED);
  free(b);
  free(b2);
  free(p2);
  /* a forged signature never reaches the engine: the driver's check refuses it */
  m = rec_find(rec, 2, 1, PBFT_MSG_PREPARE, 1);
  uint8_t *fx = malloc(m->len);
  memcpy(fx, m->body, m->len);
  fx[m->len - 1] ^= 1;
  assert_int_equal(h_deliver(h, 1, 2, m->kind, fx, m->len), BFT_E_BAD_SIG);
  free(fx);
  /* a VIEW-CHANGE with a forged nested prepared certificate */
  h_msg *pp = rec_find(rec, 0, 1, PBFT_MSG_PRE_PREPARE, 2);
  h_msg *p1 = rec_find(rec, 1, 2, PBFT_MSG_PREPARE, 2);
  h_msg *p3 = rec_find(rec, 3, 1, PBFT_MSG_PREPARE, 2);
  assert_non_null(pp);
  assert_non_null(p1);
  assert_non_null(p3);
  uint8_t vc[1024];
  uint32_t o = 0;
  put64(vc + o, 1), o += 8;        /* new view */
  put32(vc + o, 2), o += 4;        /* replica */
  put64(vc + o, 0), o += 8;        /* stable seq */
  memset(vc + o, 0, 32), o += 32;  /* stable digest */
  put32(vc + o, 0), o += 4;        /* no proof */
  put32(vc + o, 1), o += 4;        /* one prepared certificate */
  put64(vc + o, 0), o += 8;
  put64(vc + o, 2), o += 8;
  memcpy(vc + o, pp->body + 16, 32), o += 32;
  put32(vc + o, 3), o += 4;
  uint32_t sigs_at = o;
  put32(vc + o, 0), memcpy(vc + o + 4, pp->body + 48, 64), o += 68;
  put32(vc + o, 1), memcpy(vc + o + 4, p1->body + 52, 64), o += 68;
  put32(vc + o, 3), memcpy(vc + o + 4, p3->body + 52, 64), o += 68;
  h_status(h, 1, &before);
  vc[sigs_at + 68 + 4 + 5] ^= 1; /* replica 1's prepare signature */
  b = h_seal(h, 2, PBFT_MSG_VIEW_CHANGE, vc, o, &blen);
  assert_int_equal(h_deliver(h, 1, 2, PBFT_MSG_VIEW_CHANGE, b, blen), BFT_E_BAD_CERT);
  free(b);
  vc[sigs_at + 68 + 4 + 5] ^= 1;
  /* without the primary's pre-prepare: 3 prepares are not a prepared certificate */
  uint8_t vc2[1024];
  memcpy(vc2, vc, o);
  put32(vc2 + sigs_at, 2);
  memcpy(vc2 + sigs_at + 4, p1->body + 52, 64); /* wrong signature for 2 anyway */
  b = h_seal(h, 2, PBFT_MSG_VIEW_CHANGE, vc2, o, &blen);
  assert_int_equal(h_deliver(h, 1, 2, PBFT_MSG_VIEW_CHANGE, b, blen), BFT_E_BAD_CERT);
  free(b);
  /* a claimed stable checkpoint without a proof */
  memcpy(vc2, vc, o);
  put64(vc2 + 12, 8);
  b = h_seal(h, 2, PBFT_MSG_VIEW_CHANGE, vc2, o, &blen);
  int rc = h_deliver(h, 1, 2, PBFT_MSG_VIEW_CHANGE, b, blen);
  assert_true(rc == BFT_E_BAD_CERT || rc == BFT_E_MALFORMED);
  free(b);
  h_status(h, 1, &after);
  assert_int_equal(after.view, 0);
  assert_int_equal(after.changing_view, 0);
  assert_int_equal(after.rejected_cert, before.rejected_cert + 2);
  /* the genuine one is accepted and stored (one replica alone moves nobody) */
  b = h_seal(h, 2, PBFT_MSG_VIEW_CHANGE, vc, o, &blen);
  assert_int_equal(h_deliver(h, 1, 2, PBFT_MSG_VIEW_CHANGE, b, blen), 0);
  /* repeated, it earns the sender our COMMITs above its checkpoint (it may just be behind) */
  assert_int_equal(h_deliver(h, 1, 2, PBFT_MSG_VIEW_CHANGE, b, blen), 0);
  assert_int_equal(h->last_nact, h->last_sends[PBFT_MSG_COMMIT]);
  free(b);
  h_status(h, 1, &after);
  assert_int_equal(after.view, 0);
  assert_int_equal(after.changing_view, 0);
  free(p);
  h_clear_queue(h);
  recorder_free(rec);
  free(rec);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normal_commit_and_certificates),
      cmocka_unit_test(test_pipelining),
      cmocka_unit_test(test_pipeline_depth_bounds_batches_in_flight),
      cmocka_unit_test(test_checkpoints_move_watermarks),
      cmocka_unit_test(test_replays_and_forgeries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
