/* PBFT restarts and catch-up: replaying persisted records never lets a replica sign a
 * conflicting PREPARE/COMMIT for a (view, seq) it voted on, a restarted primary never reuses
 * a sequence number, a restarted replica resumes its view change, records stay bounded, and a
 * replica that missed stable checkpoints catches up through FETCH/SYNC. */
#include "tests/pbft/util.h"

static uint32_t other_batch(harness *h, uint8_t *batch, uint32_t cap, const char *op) {
  uint8_t rq[512];
  uint32_t rl = make_request(h, 4242, op, rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, cap);
  bft_batch_add(&bw, rq, rl);
  return bft_batch_end(&bw);
}

static void test_restart_never_conflicting_votes(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  recorder *rec = calloc(1, sizeof *rec);
  h->filter = record_filter;
  h->filter_arg = rec;
  rec->drop_to = 1u << 2; /* replica 2 hears nothing on its own yet */
  h_submit(h, "x");
  h_run(h, 1000000);
  h_msg *pp = rec_find(rec, 0, 2, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp);
  /* replica 2 accepts the pre-prepare and sends its PREPARE, persisted first */
  uint32_t before = h->r[2].nrec;
  assert_int_equal(h_deliver(h, 2, 0, pp->kind, pp->body, pp->len), 0);
  assert_int_equal(h->last_sends[PBFT_MSG_PREPARE], 1);
  assert_true(h->r[2].nrec > before);
  /* crash and restart from the records */
  h_restart(h, 2, UINT64_MAX);
  /* a conflicting pre-prepare for the same (view 0, seq 1), properly signed by the primary */
  uint8_t batch2[700];
  uint32_t l2 = other_batch(h, batch2, sizeof batch2, "conflict");
  uint32_t blen;
  uint8_t *b = make_pre_prepare(h, 0, 0, 1, batch2, l2, &blen);
  assert_int_equal(h_deliver(h, 2, 0, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_STATE);
  assert_int_equal(h->last_sends[PBFT_MSG_PREPARE], 0);
  free(b);
  /* the original again: the same vote may be repeated */
  assert_int_equal(h_deliver(h, 2, 0, pp->kind, pp->body, pp->len), 0);
  assert_int_equal(h->last_sends[PBFT_MSG_PREPARE], 1);
  /* now the prepares of 1 and 3 arrive: prepared, COMMIT sent (prepared certificate persisted) */
  h_msg *p1 = rec_find(rec, 1, 2, PBFT_MSG_PREPARE, 1), *p3 = rec_find(rec, 3, 2, PBFT_MSG_PREPARE, 1);
  assert_non_null(p1);
  assert_non_null(p3);
  assert_int_equal(h_deliver(h, 2, 1, p1->kind, p1->body, p1->len), 0);
  assert_int_equal(h->last_sends[PBFT_MSG_COMMIT], 1); /* pre-prepare + 2 prepares */
  assert_int_equal(h_deliver(h, 2, 3, p3->kind, p3->body, p3->len), 0);
  h_restart(h, 2, UINT64_MAX);
  /* after the restart it holds its prepared certificate: its view change reports it */
  b = make_pre_prepare(h, 0, 0, 1, batch2, l2, &blen);
  assert_int_equal(h_deliver(h, 2, 0, PBFT_MSG_PRE_PREPARE, b, blen), BFT_E_STATE);
  free(b);
  rec->drop_to = 0;
  h_clear_queue(h);
  uint8_t d1[32];
  memcpy(d1, pp->body + 16, 32);
  recorder_free(rec);
  /* the primary dies with a request pending; the three others change view */
  h->r[0].down = 1;
  h_submit(h, "y");
  for (uint32_t i = 1; i < 4; i++) assert_int_equal(h_request_timeout(h, i), 0);
  h_run(h, 1000000);
  h_msg *vc2 = rec_find(rec, 2, 1, PBFT_MSG_VIEW_CHANGE, UINT64_MAX);
  assert_non_null(vc2);
  assert_int_equal(get32(vc2->body + 8 + 4 + 8 + 32 + 4), 1); /* its prepared certificate survived */
  for (uint32_t i = 1; i < 4; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.committed, 2);
    assert_memory_equal(h->r[i].commits[1].digest, d1, 32);
  }
  assert_true(h_agree(h));

  /* every record replays on a fresh engine */
  h_restart(h, 3, UINT64_MAX);
  bft_engine_status st;
  h_status(h, 3, &st);
  assert_int_equal(st.view, 1);
  assert_int_equal(st.changing_view, 0);
  h->filter = NULL;
  recorder_free(rec);
  free(rec);
  h_free(h);
}

static void test_restarted_primary_keeps_its_sequence(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  recorder *rec = calloc(1, sizeof *rec);
  h->filter = record_filter;
  h->filter_arg = rec;
  rec->drop_kinds = 1u << PBFT_MSG_PRE_PREPARE; /* its pre-prepare is lost in the crash */
  h_submit(h, "a");
  h_run(h, 1000000);
  h_restart(h, 0, UINT64_MAX);
  rec->drop_kinds = 0;
  recorder_free(rec);
  h_submit(h, "b");
  h_run(h, 1000000);
  h_msg *pp = rec_find(rec, 0, 1, PBFT_MSG_PRE_PREPARE, UINT64_MAX);
  assert_non_null(pp);
  assert_int_equal(get64(pp->body + 8), 2); /* not seq 1 again */
  h->filter = NULL;
  recorder_free(rec);
  free(rec);
  h_free(h);
}

static void test_restart_during_view_change(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  submit_and_run(h, 2, "a");
  h->r[0].down = 1;
  h_submit(h, "b");
  h_request_timeout(h, 3);
  h_clear_queue(h);
  h_restart(h, 3, UINT64_MAX);
  bft_engine_status st;
  h_status(h, 3, &st);
  assert_int_equal(st.view, 1);
  assert_int_equal(st.changing_view, 1);
  assert_true(h->r[3].timer_armed[PBFT_TIMER_VIEW]);
  /* its view change was re-sent on start; two more replicas join and view 1 starts */
  h_request_timeout(h, 1);
  h_request_timeout(h, 2);
  h_run(h, 1000000);
  for (uint32_t i = 1; i < 4; i++) {
    h_status(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.changing_view, 0);
    assert_int_equal(st.committed, 3);
  }
  assert_true(h_agree(h));
  h_free(h);
}

static void test_records_bounded_and_ledger_lag(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 4, 2);
  submit_and_run(h, 40, "r");
  /* the latest snapshot record holds every promise of the records before it (it leaves out
   * the bytes of earlier BATCH records, so a real driver compacts through ops->compact) */
  h_replica *r = &h->r[1];
  uint32_t last_snap = 0;
  for (uint32_t k = 0; k < r->nrec; k++)
    if (r->recs[k][0] == PBFT_REC_SNAPSHOT) last_snap = k;
  assert_true(r->nrec - last_snap < 4 * 4 + 8);
  /* replay from the latest snapshot only gives the same replica */
  for (uint32_t k = 0; k < last_snap; k++) free(r->recs[k]);
  memmove(r->recs, r->recs + last_snap, (r->nrec - last_snap) * sizeof *r->recs);
  memmove(r->rec_len, r->rec_len + last_snap, (r->nrec - last_snap) * sizeof *r->rec_len);
  r->nrec -= last_snap;
  /* and the ledger lost its last 3 blocks: the engine re-fetches what it had delivered */
  h_restart(h, 1, 37);
  bft_engine_status st;
  h_status(h, 1, &st);
  assert_int_equal(st.committed, 40);
  assert_int_equal(st.stable, 40);
  assert_true(r->fetches >= 1);
  submit_and_run(h, 4, "s");
  for (uint32_t i = 0; i < 4; i++) {
    h_status(h, i, &st);
    assert_int_equal(st.committed, 44);
    assert_int_equal(st.stable, 44);
  }
  assert_true(h_agree(h));
  h_free(h);
}

static void test_catch_up_after_missed_checkpoints(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 4, 2);
  h->r[3].down = 1; /* partitioned: hears nothing, says nothing */
  submit_and_run(h, 10, "a");
  bft_engine_status st;
  h_status(h, 0, &st);
  assert_int_equal(st.committed, 10);
  assert_int_equal(st.stable, 10);
  h_status(h, 3, &st);
  assert_int_equal(st.committed, 0);
  h->r[3].down = 0;
  submit_and_run(h, 2, "b");
  h_status(h, 3, &st);
  assert_true(h->r[3].fetches >= 1);
  assert_int_equal(st.committed, 12);
  assert_int_equal(st.stable, 12);
  assert_true(st.rejected_window > 0); /* what flew above its old window was refused */
  submit_and_run(h, 3, "c");
  for (uint32_t i = 0; i < 4; i++) {
    h_status(h, i, &st);
    assert_int_equal(st.committed, 15);
  }
  assert_true(h_agree(h));
  /* the certificates it synced verify like its own */
  h_replica *r = &h->r[3];
  for (uint64_t s = 1; s <= 15; s++)
    assert_int_equal(h->ops->verify_certificate(&r->cfg, &r->env, s, r->commits[s].digest, r->commits[s].cert,
                                                r->commits[s].cert_len), 0);
  /* a SYNC for anything but committed+1 is ignored */
  bft_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BFT_EV_SYNC;
  ev.u.sync.seq = 3;
  ev.u.sync.batch = r->commits[3].batch;
  ev.u.sync.batch_len = r->commits[3].len;
  ev.u.sync.cert = r->commits[3].cert;
  ev.u.sync.cert_len = r->commits[3].cert_len;
  assert_int_equal(h_step(h, 3, &ev), BFT_E_STALE);
  assert_int_equal(h->last_nact, 0);
  h_free(h);
}

/* The sim's seed 355 (n=4, window 4, K 2, loss + partitions + crash/restart) at engine level.
 * Replica 0 alone prepares batch A at seq 1 in view 0 (replicas 1 and 2 voted for it but never
 * saw each other's PREPARE) and crashes. View 1 re-uses seq 1 for batch B, whose PRE-PREPARE
 * replaces A's bytes at replicas 1 and 2 (they hold no certificate protecting A). Replica 0
 * restarts; its VIEW-CHANGE carries A's prepared certificate, so the NEW-VIEW of view 2 must
 * re-propose A at seq 1 (digest only). Unless replica 0's restart kept A's bytes, no replica
 * holds them: seq 1 commits everywhere, nobody can deliver it, and views spin for ever. */
typedef struct lost_bytes_net {
  recorder rec;
  int phase;
} lost_bytes_net;

static int lost_bytes_filter(harness *h, h_msg *m, void *arg) {
  lost_bytes_net *net = arg;
  (void)record_filter(h, m, &net->rec);
  int vote = m->kind == PBFT_MSG_PREPARE || m->kind == PBFT_MSG_COMMIT;
  switch (net->phase) {
    case 0: /* view 0: A reaches 1 and 2; only replica 0 hears their PREPAREs; no COMMIT lands */
      if (m->to == 3 || m->kind == PBFT_MSG_COMMIT) return H_DROP;
      if (m->kind == PBFT_MSG_PREPARE && m->to != 0) return H_DROP;
      return H_DELIVER;
    case 1: /* view 1 without replica 0: B pre-prepared at seq 1, but never prepared */
      return vote ? H_DROP : H_DELIVER;
    default: /* view 2: replica 3's VIEW-CHANGE misses the new primary, so 0's is used */
      if (vote && get64(m->body) < 2) return H_DROP;
      if (m->kind == PBFT_MSG_VIEW_CHANGE && m->from == 3 && m->to == 2) return H_DROP;
      return H_DELIVER;
  }
}

static void test_restart_keeps_bytes_of_prepared_batch(void **unused) {
  (void)unused;
  harness *h = h_new(4, 2, 4, 2);
  lost_bytes_net *net = calloc(1, sizeof *net);
  h->filter = lost_bytes_filter;
  h->filter_arg = net;
  h_submit(h, "x");
  h_run(h, 1000000);
  h_msg *pp = rec_find(&net->rec, 0, 1, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp);
  uint8_t a[32];
  memcpy(a, pp->body + 16, 32);
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(h->r[i].ncommit, 0);

  /* Replica 0 crashes; the others move to view 1, whose primary proposes B = [x, y] at seq 1. */
  h->r[0].down = 1;
  h_clear_queue(h);
  net->phase = 1;
  h_submit(h, "y");
  for (uint32_t i = 1; i < 4; i++) assert_int_equal(h_request_timeout(h, i), 0);
  h_run(h, 1000000);
  h_msg *ppb = rec_find(&net->rec, 1, 2, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(ppb);
  assert_int_equal(get64(ppb->body), 1);
  assert_memory_not_equal(ppb->body + 16, a, 32);
  for (uint32_t i = 1; i < 4; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.committed, 0);
  }

  /* Replica 0 restarts from its records and joins the move to view 2 (primary 2). */
  h_restart(h, 0, UINT64_MAX);
  h->r[0].down = 0;
  h_clear_queue(h);
  recorder_free(&net->rec);
  net->phase = 2;
  for (uint32_t i = 1; i < 4; i++) assert_int_equal(h_request_timeout(h, i), 0);
  h_run(h, 1000000);
  h_msg *vc0 = rec_find(&net->rec, 0, 2, PBFT_MSG_VIEW_CHANGE, UINT64_MAX);
  assert_non_null(vc0);
  assert_int_equal(get64(vc0->body), 2);
  assert_int_equal(get32(vc0->body + 8 + 4 + 8 + 32 + 4), 1); /* A's prepared certificate */
  assert_memory_equal(vc0->body + 8 + 4 + 8 + 32 + 4 + 4 + 8 + 8, a, 32);
  /* Whoever lacks A's bytes fetches seq 1 from a replica that delivered it (retried on the
   * fetch timer). */
  for (int round = 0; round < 4; round++) {
    for (uint32_t i = 0; i < 4; i++) h_fire(h, i, PBFT_TIMER_FETCH);
    h_run(h, 1000000);
  }
  for (uint32_t i = 0; i < 4; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.view, 2);
    assert_true(h->r[i].ncommit >= 1);
    assert_memory_equal(h->r[i].commits[1].digest, a, 32);
  }
  assert_true(h_agree(h));
  /* and the cluster goes on */
  h->filter = NULL;
  submit_and_run(h, 2, "after");
  for (uint32_t i = 0; i < 4; i++) assert_true(h->r[i].ncommit >= 2);
  assert_true(h_agree(h));
  recorder_free(&net->rec);
  free(net);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_restart_never_conflicting_votes),
      cmocka_unit_test(test_restarted_primary_keeps_its_sequence),
      cmocka_unit_test(test_restart_during_view_change),
      cmocka_unit_test(test_records_bounded_and_ledger_lag),
      cmocka_unit_test(test_catch_up_after_missed_checkpoints),
      cmocka_unit_test(test_restart_keeps_bytes_of_prepared_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
