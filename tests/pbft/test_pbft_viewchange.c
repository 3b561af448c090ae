/* PBFT view changes: a prepared batch survives into the new view at the same sequence
 * number, a NEW-VIEW that drops it is refused, an equivocating primary cannot get two
 * digests committed at one seq, the f+1 join rule, and the doubling view-change timeout. */
#include "tests/pbft/util.h"

static void status_of(harness *h, uint32_t i, bft_engine_status *st) { h_status(h, i, st); }

/* Commit `pre` requests normally, then let one more prepare everywhere while every COMMIT is
 * lost. Returns the digest prepared at seq pre+1. */
static void prepare_but_commit_nowhere(harness *h, recorder *rec, int pre, uint8_t d[32]) {
  h->filter = record_filter;
  h->filter_arg = rec;
  submit_and_run(h, pre, "pre");
  rec->drop_kinds = 1u << PBFT_MSG_COMMIT;
  submit_and_run(h, 1, "x");
  h_msg *pp = rec_find(rec, 0, 1, PBFT_MSG_PRE_PREPARE, (uint64_t)pre + 1);
  assert_non_null(pp);
  memcpy(d, pp->body + 16, 32);
  for (uint32_t i = 0; i < h->n; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.committed, pre);
  }
  rec->drop_kinds = 0;
}

static void test_prepared_batch_reproposed_same_seq(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 4, 2);
  recorder *rec = calloc(1, sizeof *rec);
  uint8_t d[32];
  prepare_but_commit_nowhere(h, rec, 2, d);
  h->r[0].down = 1; /* the primary of view 0 crashes */
  /* Two backups time out; the third joins on the f+1 rule. */
  assert_int_equal(h_request_timeout(h, 1), 0);
  assert_int_equal(h_request_timeout(h, 2), 0);
  h_run(h, 1000000);
  for (uint32_t i = 1; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.leader, 1);
    assert_int_equal(st.changing_view, 0);
    /* seq 3 as prepared; the new primary may also re-propose the still-pooled request at 4
     * (execution skips what already ran) */
    assert_true(st.committed >= 3);
    assert_true(st.stable >= 2);
    assert_memory_equal(h->r[i].commits[3].digest, d, 32);
    assert_int_equal(get64(h->r[i].commits[3].cert), 1); /* committed in view 1 */
  }
  /* the new primary goes on at seq 4 */
  uint64_t before_after = h->r[1].ncommit;
  submit_and_run(h, 1, "after");
  for (uint32_t i = 1; i < 4; i++) assert_int_equal(h->r[i].ncommit, before_after + 1);
  assert_true(h_agree(h));
  /* an old-view message changes nothing */
  h_msg *old = rec_find(rec, 2, 1, PBFT_MSG_PREPARE, 3);
  assert_non_null(old);
  bft_engine_status b, a;
  status_of(h, 1, &b);
  assert_int_equal(h_deliver(h, 1, 2, old->kind, old->body, old->len), BFT_E_STALE);
  status_of(h, 1, &a);
  assert_int_equal(a.rejected_stale, b.rejected_stale + 1);
  assert_int_equal(h->last_nact, 0);
  /* the old primary comes back: it is behind in views; the current primary hands it the
   * NEW-VIEW when its view-change arrives, and it catches up on what it missed */
  h->r[0].down = 0;
  h->filter = NULL;
  submit_and_run(h, 1, "late");
  h_fire(h, 0, PBFT_TIMER_FETCH);
  h_run(h, 1000000);
  bft_engine_status st0;
  status_of(h, 0, &st0);
  assert_true(h_agree(h));
  assert_int_equal(st0.committed, h->r[1].ncommit);
  recorder_free(rec);
  free(rec);
  h_free(h);
}

/* Rewrite NEW-VIEWs: mode 1 drops all re-proposals, mode 2 turns them into null batches. */
typedef struct nv_rewrite {
  recorder rec;
  int mode;
  uint32_t rewritten;
} nv_rewrite;

static int nv_filter(harness *h, h_msg *m, void *arg) {
  nv_rewrite *w = arg;
  if (m->kind != PBFT_MSG_NEW_VIEW || !w->mode || m->from != 1) return record_filter(h, m, &w->rec);
  uint32_t plen = m->len - 64, o = 8;
  const uint8_t *p = m->body;
  uint64_t view = get64(p);
  uint32_t nvc = get32(p + o);
  o += 4;
  for (uint32_t k = 0; k < nvc; k++) o += 4 + get32(p + o);
  uint32_t mcount = get32(p + o + 8);
  uint32_t entries_at = o + 12;
  assert_true(mcount > 0);
  uint8_t *np = malloc(plen);
  memcpy(np, p, plen);
  uint32_t nlen = plen;
  if (w->mode == 1) {
    put32(np + o + 8, 0);
    nlen = entries_at;
  } else {
    uint8_t e[4] = {0}, nd[32];
    bft_digest(nd, e, 4);
    for (uint32_t k = 0; k < mcount; k++) {
      uint8_t *ent = np + entries_at + k * (8 + 32 + 64);
      memcpy(ent + 8, nd, 32);
      uint8_t st[52];
      put64(st, view);
      memcpy(st + 8, ent, 8);
      memcpy(st + 16, nd, 32);
      put32(st + 48, m->from);
      h_sign(h, m->from, PBFT_TAG_PREPARE, st, 52, ent + 40);
    }
  }
  uint32_t blen;
  uint8_t *b = h_seal(h, m->from, PBFT_MSG_NEW_VIEW, np, nlen, &blen);
  free(np);
  free(m->body);
  m->body = b;
  m->len = blen;
  w->rewritten++;
  return H_DELIVER;
}

static void run_omission(int mode) {
  harness *h = h_new(4, 1, 0, 0);
  nv_rewrite *w = calloc(1, sizeof *w);
  uint8_t d[32];
  prepare_but_commit_nowhere(h, &w->rec, 0, d);
  h->filter = nv_filter;
  h->filter_arg = w;
  w->mode = mode;
  h->r[0].down = 1;
  for (uint32_t i = 1; i < 4; i++) h_request_timeout(h, i);
  h_run(h, 1000000);
  assert_true(w->rewritten >= 2);
  for (uint32_t i = 2; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.changing_view, 1); /* the doctored NEW-VIEW was refused */
    assert_true(st.rejected_cert >= 1);
    if (st.committed != 0) fprintf(stderr, "replica %u committed %llu\n", i, (unsigned long long)st.committed);
    assert_int_equal(st.committed, 0);
  }
  /* The honest way out: the view-change timer first repeats the VIEW-CHANGE (the primary of
   * view 1 answers with its NEW-VIEW, doctored again), then moves on to view 2 (primary 2). */
  uint32_t rewritten = w->rewritten;
  for (uint32_t i = 1; i < 4; i++) h_fire(h, i, PBFT_TIMER_VIEW);
  h_run(h, 1000000);
  assert_true(w->rewritten > rewritten);
  for (uint32_t i = 2; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.changing_view, 1);
  }
  for (uint32_t i = 1; i < 4; i++) h_fire(h, i, PBFT_TIMER_VIEW);
  h_run(h, 1000000);
  for (uint32_t i = 1; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.view, 2);
    assert_int_equal(st.changing_view, 0);
    assert_true(st.committed >= 1);
    assert_memory_equal(h->r[i].commits[1].digest, d, 32);
  }
  assert_true(h_agree(h));
  recorder_free(&w->rec);
  free(w);
  h_free(h);
}

static void test_new_view_omitting_prepared_is_rejected(void **unused) {
  (void)unused;
  run_omission(1);
}

static void test_new_view_nulling_prepared_is_rejected(void **unused) {
  (void)unused;
  run_omission(2);
}

/* The primary's pre-prepare to replicas 2 and 3 is replaced by one for another batch, signed
 * by the primary: a primary equivocating at seq 1. */
typedef struct equiv {
  uint8_t *batch2;
  uint32_t len2;
  uint32_t hits;
} equiv;

static int equiv_filter(harness *h, h_msg *m, void *arg) {
  equiv *e = arg;
  if (m->kind == PBFT_MSG_PRE_PREPARE && m->from == 0 && (m->to == 2 || m->to == 3) &&
      get64(m->body) == 0 && get64(m->body + 8) == 1) {
    uint32_t blen;
    uint8_t *b = make_pre_prepare(h, 0, 0, 1, e->batch2, e->len2, &blen);
    free(m->body);
    m->body = b;
    m->len = blen;
    e->hits++;
  }
  return H_DELIVER;
}

static void test_equivocating_primary(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  equiv e = {0};
  uint8_t rq[512], batch[700];
  uint32_t rl = make_request(h, 999, "evil twin", rq, sizeof rq);
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, rq, rl);
  e.batch2 = batch;
  e.len2 = bft_batch_end(&bw);
  h->filter = equiv_filter;
  h->filter_arg = &e;
  submit_and_run(h, 1, "x");
  assert_int_equal(e.hits, 2);
  assert_true(h_agree(h));
  uint32_t committed = 0;
  for (uint32_t i = 0; i < 4; i++) committed += h->r[i].ncommit > 0;
  assert_int_equal(committed, 0); /* neither digest gathers 2f+1 prepares */
  /* the backups' request timers fire: view 1 settles seq 1 once for everyone */
  h->filter = NULL;
  for (uint32_t i = 1; i < 4; i++) h_request_timeout(h, i);
  h_run(h, 1000000);
  /* Replicas 2 and 3 prepared the twin (pre-prepare + 2 prepares), so view 1 re-proposes it
   * at seq 1; replicas 0 and 1 never saw its bytes and fetch them once it commits (the
   * first try may reach a peer that has not delivered yet: the fetch timer retries). */
  for (uint32_t i = 0; i < 4; i++) h_fire(h, i, PBFT_TIMER_FETCH);
  h_run(h, 1000000);
  for (uint32_t i = 0; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    if (0) fprintf(stderr, "r%u view %llu ch %d committed %llu rej s%llu w%llu d%llu c%llu o%llu\n", i,
            (unsigned long long)st.view, st.changing_view, (unsigned long long)st.committed,
            (unsigned long long)st.rejected_stale, (unsigned long long)st.rejected_window,
            (unsigned long long)st.rejected_digest, (unsigned long long)st.rejected_cert,
            (unsigned long long)st.rejected_other);
  }
  for (uint32_t i = 0; i < 4; i++) {
    bft_engine_status st;
    status_of(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_true(st.committed >= 1);
  }
  assert_true(h_agree(h));
  /* the original request committed exactly once everywhere */
  for (uint32_t i = 0; i < 4; i++) assert_true(h->r[i].executed[0]);
  submit_and_run(h, 2, "more");
  assert_true(h_agree(h));
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(h->r[i].ncommit, h->r[1].ncommit);
  h_free(h);
}

static void test_view_change_timeout_doubles(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  recorder *rec = calloc(1, sizeof *rec);
  h->filter = record_filter;
  h->filter_arg = rec;
  rec->drop_kinds = 1u << PBFT_MSG_PRE_PREPARE; /* a silent primary */
  h->r[1].down = 1;                             /* and the next one is crashed */
  submit_and_run(h, 1, "x");
  assert_int_equal(h->r[2].timer_delay[PBFT_TIMER_REQUEST], 1000);
  h_request_timeout(h, 2);
  h_request_timeout(h, 3);
  h_run(h, 1000000);
  bft_engine_status st;
  for (uint32_t i = 0; i < 4; i += 2) {
    status_of(h, i, &st);
    assert_int_equal(st.view, 1); /* the old primary joined too (f+1 rule) */
    assert_int_equal(st.changing_view, 1);
  }
  assert_int_equal(h->r[2].timer_delay[PBFT_TIMER_VIEW], 1000);
  rec->drop_kinds = 0;
  for (int round = 0; round < 2; round++) { /* once to repeat the VIEW-CHANGE, then move on */
    for (uint32_t i = 0; i < 4; i++) h_fire(h, i, PBFT_TIMER_VIEW);
    h_run(h, 1000000);
  }
  for (uint32_t i = 0; i < 4; i++) {
    if (i == 1) continue;
    status_of(h, i, &st);
    assert_int_equal(st.view, 2);
    assert_int_equal(st.changing_view, 0);
    assert_int_equal(st.committed, 1);
  }
  /* view 2 began after a failed view 1: the timer it armed on the way was doubled */
  assert_int_equal(h->r[3].timer_delay[PBFT_TIMER_VIEW], 2000);
  assert_true(h_agree(h));
  h->filter = NULL;
  recorder_free(rec);
  free(rec);
  h_free(h);
}

/* No replica leaves alone (issue 16): replica 3 waits for a request nobody else has, while the
 * cluster keeps committing others. Its request timer fires three times and it stays in view 0,
 * voting; the fourth period (the request waited 4 whole periods: censorship, as far as it can
 * tell) starts its view change. A timeout with no activity at all still starts one at once. */
static void test_timer_alone_stays_in_view(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 4, 2);
  bft_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BFT_EV_REQUEST;
  memset(ev.u.request.digest, 0xab, sizeof ev.u.request.digest); /* only replica 3 holds it */
  assert_int_equal(h_step(h, 3, &ev), 0);
  for (int period = 1; period <= 3; period++) {
    submit_and_run(h, 1, "others");
    assert_int_equal(h_fire(h, 3, PBFT_TIMER_REQUEST), 0);
    bft_engine_status st;
    status_of(h, 3, &st);
    assert_int_equal(st.view, 0);
    assert_int_equal(st.changing_view, 0);
    assert_int_equal(h->r[3].timer_armed[PBFT_TIMER_REQUEST], 1);
  }
  uint64_t before = h->r[3].ncommit;
  submit_and_run(h, 1, "still");
  assert_int_equal(h->r[3].ncommit, before + 1); /* it kept voting and delivering */
  assert_int_equal(h_fire(h, 3, PBFT_TIMER_REQUEST), 0);
  bft_engine_status st;
  status_of(h, 3, &st);
  assert_int_equal(st.view, 1);
  assert_int_equal(st.changing_view, 1);
  h_free(h);

  /* Nothing happens in the view during a whole period: one timeout is enough. */
  h = h_new(4, 1, 4, 2);
  assert_int_equal(h_step(h, 3, &ev), 0);
  assert_int_equal(h_fire(h, 3, PBFT_TIMER_REQUEST), 0);
  status_of(h, 3, &st);
  assert_int_equal(st.changing_view, 1);
  h_free(h);
}

/* A primary that drops every message to replica 1 (`--byzantine drop-to:1`): replica 1 sees the
 * others' PREPAREs and COMMITs but never the PRE-PREPARE nor the primary's COMMIT, so it cannot
 * complete a seq; under load it catches up at each checkpoint, but once the cluster is idle the
 * seqs above the last checkpoint reach it no more (a real-process run left it 7 blocks behind in
 * a lone view change). Its request timer now fetches them from the f+1 replicas whose COMMITs
 * it holds, once per head; when that brings nothing, the next timeout starts the view change. */
static int drop_0_to_1(harness *h, h_msg *m, void *arg) {
  (void)h, (void)arg;
  return m->from == 0 && m->to == 1 ? H_DROP : H_DELIVER;
}

static void test_behind_fetches_before_view_change(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 8, 4);
  h->filter = drop_0_to_1;
  submit_and_run(h, 2, "cut");
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(h->r[i].ncommit, i == 1 ? 0 : 2);
  uint32_t fetches = h->r[1].fetches;
  /* the first period saw the others' votes (the view works): the timer only re-arms */
  assert_int_equal(h_fire(h, 1, PBFT_TIMER_REQUEST), 0);
  assert_int_equal(h->r[1].fetches, fetches);
  assert_int_equal(h_fire(h, 1, PBFT_TIMER_REQUEST), 0);
  bft_engine_status st;
  status_of(h, 1, &st);
  assert_int_equal(st.changing_view, 0);
  assert_int_equal(h->r[1].fetches, fetches + 1);
  assert_int_equal(h->r[1].ncommit, 2); /* from replica 2 or 3, with their certificates */
  assert_int_equal(h->r[1].timer_armed[PBFT_TIMER_REQUEST], 0); /* nothing pending any more */
  h_free(h);

  /* The same, but the replicas ahead do not answer: one fetch, then the view change. */
  h = h_new(4, 1, 8, 4);
  h->filter = drop_0_to_1;
  submit_and_run(h, 2, "cut");
  h->r[2].down = h->r[3].down = 1;
  fetches = h->r[1].fetches;
  assert_int_equal(h_request_timeout(h, 1), 0);
  status_of(h, 1, &st);
  assert_int_equal(st.changing_view, 0);
  assert_int_equal(h->r[1].fetches, fetches + 1);
  assert_int_equal(h->r[1].ncommit, 0);
  assert_int_equal(h_fire(h, 1, PBFT_TIMER_REQUEST), 0);
  status_of(h, 1, &st);
  assert_int_equal(st.changing_view, 1);
  h_clear_queue(h);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prepared_batch_reproposed_same_seq),
      cmocka_unit_test(test_new_view_omitting_prepared_is_rejected),
      cmocka_unit_test(test_new_view_nulling_prepared_is_rejected),
      cmocka_unit_test(test_equivocating_primary),
      cmocka_unit_test(test_view_change_timeout_doubles),
      cmocka_unit_test(test_timer_alone_stays_in_view),
      cmocka_unit_test(test_behind_fetches_before_view_change),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
