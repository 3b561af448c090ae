/* PBFT fetch by digest (BATCH_GET / BATCH): a prepared batch whose bytes only some replicas
 * hold reaches the others before it commits after a view change re-proposes it; forged,
 * unsolicited and unneeded BATCHes are refused and counted, a BATCH_GET flood is capped; and a
 * replica keeps the bytes of the batch it voted for when a later view proposes another one at
 * the same seq. */
#include "tests/pbft/util.h"

typedef struct fb_net {
  recorder rec;
  uint32_t drop_pp_to;     /* bit i: drop PRE-PREPAREs to replica i */
  uint32_t drop_commit_to; /* bit i: drop COMMITs to replica i */
  uint32_t drop_batch_to;  /* bit i: drop BATCH answers to replica i */
  int drop_prepares;
  uint64_t batch_seen_commits; /* highest ledger head anywhere when a BATCH was delivered */
  uint32_t batches;            /* BATCH messages delivered */
} fb_net;

static int fb_filter(harness *h, h_msg *m, void *arg) {
  fb_net *f = arg;
  int v = record_filter(h, m, &f->rec);
  if (m->kind == PBFT_MSG_PRE_PREPARE && (f->drop_pp_to >> m->to & 1)) return H_DROP;
  if (m->kind == PBFT_MSG_COMMIT && (f->drop_commit_to >> m->to & 1)) return H_DROP;
  if (m->kind == PBFT_MSG_PREPARE && f->drop_prepares) return H_DROP;
  if (m->kind == PBFT_MSG_BATCH) {
    if (f->drop_batch_to >> m->to & 1) return H_DROP;
    for (uint32_t i = 0; i < h->n; i++)
      if (h->r[i].ncommit > f->batch_seen_commits) f->batch_seen_commits = h->r[i].ncommit;
    f->batches++;
  }
  return v;
}

static fb_net *fb_install(harness *h) {
  fb_net *f = calloc(1, sizeof *f);
  h->filter = fb_filter;
  h->filter_arg = f;
  return f;
}

static void fb_end(harness *h, fb_net *f) {
  h->filter = NULL;
  h_clear_queue(h);
  recorder_free(&f->rec);
  free(f);
  h_free(h);
}

static uint8_t *seal_batch_get(harness *h, uint32_t from, uint64_t seq, const uint8_t d[32], uint32_t *len) {
  uint8_t p[40];
  put64(p, seq);
  memcpy(p + 8, d, 32);
  return h_seal(h, from, PBFT_MSG_BATCH_GET, p, sizeof p, len);
}

static uint8_t *seal_batch(harness *h, uint32_t from, uint64_t seq, const uint8_t d[32], const uint8_t *b,
                           uint32_t blen, uint32_t *len) {
  uint8_t *p = malloc(44 + blen);
  put64(p, seq);
  memcpy(p + 8, d, 32);
  put32(p + 40, blen);
  memcpy(p + 44, b, blen);
  uint8_t *m = h_seal(h, from, PBFT_MSG_BATCH, p, 44 + blen, len);
  free(p);
  return m;
}

/* Did replica i persist a BATCH record (u8 6 | u64 seq | blob) for seq with digest d? */
static int has_batch_record(harness *h, uint32_t i, uint64_t seq, const uint8_t d[32]) {
  for (uint32_t k = 0; k < h->r[i].nrec; k++) {
    const uint8_t *r = h->r[i].recs[k];
    if (h->r[i].rec_len[k] < 13 || r[0] != PBFT_REC_BATCH || get64(r + 1) != seq) continue;
    uint8_t x[32];
    bft_digest(x, r + 13, get32(r + 9));
    if (memcmp(x, d, 32) == 0) return 1;
  }
  return 0;
}

static uint32_t persisted(harness *h, uint32_t i) { return h->r[i].nrec; }

/* Ask replica `at` for (seq, d) as `from`: 1 when it answered with a BATCH, 0 when it did not. */
static int answers(harness *h, uint32_t at, uint32_t from, uint64_t seq, const uint8_t d[32], int *rc) {
  uint32_t len;
  uint8_t *m = seal_batch_get(h, from, seq, d, &len);
  *rc = h_deliver(h, at, from, PBFT_MSG_BATCH_GET, m, len);
  free(m);
  return h->last_sends[PBFT_MSG_BATCH] == 1;
}

static void fire_retransmit_until(harness *h, uint32_t lo, uint32_t hi, uint64_t seq) {
  for (int round = 0; round < 6; round++) {
    int done = 1;
    for (uint32_t i = lo; i <= hi; i++) done &= h->r[i].ncommit >= seq;
    if (done) return;
    for (uint32_t i = lo; i <= hi; i++) h_fire(h, i, PBFT_TIMER_RETRANSMIT);
    h_run(h, 1000000);
  }
}

/* n = 7: the pre-prepare of seq 1 reaches replicas 2..5 only (the next primary, 1, and
 * replica 6 never see it); 0, 2..5 prepare it, every COMMIT is lost, then 0 crashes. The
 * NEW-VIEW of view 1 re-proposes its digest: the new primary asks the replicas whose
 * VIEW-CHANGE carried the certificate at once, backup 6 on its ask timer; both hold the bytes
 * (and persisted them) while nothing has committed anywhere; then all correct replicas deliver
 * the same batch, with no FETCH. */
static void test_reproposed_batch_fetched_by_digest(void **unused) {
  (void)unused;
  harness *h = h_new(7, 1, 0, 0);
  fb_net *f = fb_install(h);
  f->drop_pp_to = 1u << 1 | 1u << 6;
  f->drop_commit_to = 0x7f;
  submit_and_run(h, 1, "x");
  h_msg *pp = rec_find(&f->rec, 0, 2, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp);
  uint8_t d[32];
  memcpy(d, pp->body + 16, 32);
  for (uint32_t i = 0; i < 7; i++) assert_int_equal(h->r[i].ncommit, 0);
  assert_false(has_batch_record(h, 1, 1, d));
  assert_false(has_batch_record(h, 6, 1, d));

  h->r[0].down = 1;
  for (uint32_t i = 1; i <= 3; i++) assert_int_equal(h_request_timeout(h, i), 0);
  h_run(h, 1000000);
  for (uint32_t i = 1; i < 7; i++) {
    bft_engine_status st;
    h_status(h, i, &st);
    assert_int_equal(st.view, 1);
    assert_int_equal(st.changing_view, 0);
    assert_int_equal(st.committed, 0);
  }
  /* the new primary asked at once and got the bytes; backup 6 has not asked yet */
  assert_true(has_batch_record(h, 1, 1, d));
  assert_null(rec_find(&f->rec, 6, UINT32_MAX, PBFT_MSG_BATCH_GET, UINT64_MAX));
  assert_false(has_batch_record(h, 6, 1, d));
  assert_true(h->r[6].timer_armed[PBFT_TIMER_BATCH]);
  assert_int_equal(h_fire(h, 6, PBFT_TIMER_BATCH), 0);
  h_run(h, 1000000);
  h_msg *get = rec_find(&f->rec, 6, UINT32_MAX, PBFT_MSG_BATCH_GET, UINT64_MAX);
  assert_non_null(get);
  assert_int_equal(get64(get->body), 1);
  assert_memory_equal(get->body + 8, d, 32);
  assert_non_null(rec_find(&f->rec, UINT32_MAX, 6, PBFT_MSG_BATCH, UINT64_MAX));
  assert_true(has_batch_record(h, 6, 1, d));
  /* the bytes came before the seq committed anywhere */
  assert_true(f->batches >= 2);
  assert_int_equal(f->batch_seen_commits, 0);
  for (uint32_t i = 1; i < 7; i++) assert_int_equal(h->r[i].ncommit, 0);
  /* a second fire asks nobody: nothing is missing any more */
  uint32_t gets = 0;
  for (uint32_t k = 0; k < f->rec.n; k++) gets += f->rec.m[k].kind == PBFT_MSG_BATCH_GET;
  h_fire(h, 6, PBFT_TIMER_BATCH);
  h_fire(h, 1, PBFT_TIMER_BATCH);
  h_run(h, 1000000);
  uint32_t gets2 = 0;
  for (uint32_t k = 0; k < f->rec.n; k++) gets2 += f->rec.m[k].kind == PBFT_MSG_BATCH_GET;
  assert_int_equal(gets2, gets);

  /* COMMITs (and pre-prepares) flow again: every correct replica delivers the batch, from its
   * own bytes */
  f->drop_commit_to = 0;
  f->drop_pp_to = 0;
  fire_retransmit_until(h, 1, 6, 1);
  for (uint32_t i = 1; i < 7; i++) {
    assert_true(h->r[i].ncommit >= 1);
    assert_memory_equal(h->r[i].commits[1].digest, d, 32);
    assert_int_equal(get64(h->r[i].commits[1].cert), 1); /* committed in view 1 */
  }
  assert_int_equal(h->r[1].fetches, 0);
  assert_int_equal(h->r[6].fetches, 0);
  assert_true(h_agree(h));
  fb_end(h, f);
}

/* n = 4: replica 3 misses the pre-prepare of seq 1 but collects the others' COMMITs, which
 * nobody else receives: it holds a commit certificate without the bytes and asks two of the
 * signers (their BATCH answers are held back). Then: a forged BATCH, an unsolicited one (a
 * signer it did not ask), one for a seq it does not need, a truncated one: refused, counted,
 * nothing persisted or delivered; the genuine answer is kept and delivered, and repeated it is a
 * duplicate. Replica 0, which holds the bytes, answers BATCH_GETs from one replica a window's
 * worth of times per timeout, never for bytes it does not hold. */
static void test_batch_fetch_refusals(void **unused) {
  (void)unused;
  harness *h = h_new(4, 1, 0, 0);
  fb_net *f = fb_install(h);
  f->drop_pp_to = 1u << 3;
  f->drop_commit_to = 0x7;
  f->drop_batch_to = 1u << 3;
  submit_and_run(h, 1, "x");
  h_msg *pp = rec_find(&f->rec, 0, 1, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp);
  uint8_t d[32];
  memcpy(d, pp->body + 16, 32);
  uint32_t blen = get32(pp->body + 112);
  const uint8_t *bytes = pp->body + 116;
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(h->r[i].ncommit, 0);
  uint32_t asked = 0, nget = 0;
  for (uint32_t k = 0; k < f->rec.n; k++) {
    h_msg *m = &f->rec.m[k];
    if (m->kind != PBFT_MSG_BATCH_GET || m->from != 3) continue;
    assert_int_equal(get64(m->body), 1);
    assert_memory_equal(m->body + 8, d, 32);
    asked |= 1u << m->to;
    nget++;
  }
  assert_int_equal(nget, 2); /* two at a time */
  assert_int_equal(__builtin_popcount(asked), 2);
  assert_int_equal(asked & 1u << 3, 0);
  uint32_t a = (uint32_t)__builtin_ctz(asked), u = 0;
  while (asked >> u & 1 || u == 3) u++;
  assert_true(u < 3);
  assert_non_null(rec_find(&f->rec, a, 3, PBFT_MSG_BATCH, UINT64_MAX));

  bft_engine_status b, s;
  uint32_t len, np;
  uint8_t *m;
  /* forged: the bytes do not hash to the digest named */
  uint8_t *forged = malloc(blen);
  memcpy(forged, bytes, blen);
  forged[blen - 1] ^= 1;
  h_status(h, 3, &b);
  np = persisted(h, 3);
  m = seal_batch(h, a, 1, d, forged, blen, &len);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, m, len), BFT_E_BAD_DIGEST);
  free(m);
  h_status(h, 3, &s);
  assert_int_equal(s.rejected_digest, b.rejected_digest + 1);
  assert_int_equal(persisted(h, 3), np);
  assert_int_equal(h->r[3].ncommit, 0);
  /* forged bytes under their own digest: not what we asked for */
  uint8_t fd[32];
  bft_digest(fd, forged, blen);
  m = seal_batch(h, a, 1, fd, forged, blen, &len);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, m, len), BFT_E_STATE);
  free(m);
  free(forged);
  /* unsolicited: the right bytes from a signer we did not ask */
  m = seal_batch(h, u, 1, d, bytes, blen, &len);
  assert_int_equal(h_deliver(h, 3, u, PBFT_MSG_BATCH, m, len), BFT_E_STATE);
  free(m);
  /* unneeded: the right bytes for a seq we hold nothing for */
  m = seal_batch(h, a, 2, d, bytes, blen, &len);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, m, len), BFT_E_STATE);
  free(m);
  /* outside the window */
  m = seal_batch(h, a, 1000, d, bytes, blen, &len);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, m, len), BFT_E_WINDOW);
  free(m);
  /* truncated: a digest cut short */
  uint8_t shortp[20] = {0};
  put64(shortp, 1);
  m = h_seal(h, a, PBFT_MSG_BATCH, shortp, sizeof shortp, &len);
  assert_true(h_deliver(h, 3, a, PBFT_MSG_BATCH, m, len) < 0);
  free(m);
  h_status(h, 3, &s);
  assert_int_equal(s.rejected_other, b.rejected_other + 4);
  assert_int_equal(s.rejected_window, b.rejected_window + 1);
  assert_int_equal(persisted(h, 3), np);
  assert_int_equal(h->r[3].ncommit, 0);
  assert_false(has_batch_record(h, 3, 1, d));
  /* the genuine answer: kept (persisted first) and delivered */
  h_msg *ans = rec_find(&f->rec, a, 3, PBFT_MSG_BATCH, UINT64_MAX);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, ans->body, ans->len), 0);
  assert_true(has_batch_record(h, 3, 1, d));
  assert_int_equal(h->r[3].ncommit, 1);
  assert_memory_equal(h->r[3].commits[1].digest, d, 32);
  h_status(h, 3, &b);
  assert_int_equal(h_deliver(h, 3, a, PBFT_MSG_BATCH, ans->body, ans->len), BFT_E_DUPLICATE);
  h_status(h, 3, &s);
  assert_int_equal(s.rejected_stale, b.rejected_stale + 1);
  h_clear_queue(h);

  /* A flood of BATCH_GETs from replica 3 at replica 0: a window's worth of answers, then
   * refusals (counted) until the answer timer refills the budget. */
  h_status(h, 0, &b);
  int rc;
  uint32_t window = 32; /* the default */
  for (uint32_t k = 0; k < window; k++) {
    assert_true(answers(h, 0, 3, 1, d, &rc));
    assert_int_equal(rc, 0);
  }
  assert_true(h->r[0].timer_armed[PBFT_TIMER_ANSWER]);
  for (uint32_t k = 0; k < 10; k++) {
    assert_false(answers(h, 0, 3, 1, d, &rc));
    assert_int_equal(rc, BFT_E_FULL);
  }
  h_status(h, 0, &s);
  assert_int_equal(s.rejected_other, b.rejected_other + 10);
  /* another asker has its own budget */
  assert_true(answers(h, 0, 2, 1, d, &rc));
  /* never bytes we do not hold, nor outside the window */
  uint8_t other[32];
  memcpy(other, d, 32);
  other[0] ^= 1;
  assert_false(answers(h, 0, 2, 1, other, &rc));
  assert_int_equal(rc, BFT_E_STATE);
  assert_false(answers(h, 0, 2, 5, d, &rc));
  assert_int_equal(rc, BFT_E_STATE);
  assert_false(answers(h, 0, 2, 1000, d, &rc));
  assert_int_equal(rc, BFT_E_WINDOW);
  assert_int_equal(h_fire(h, 0, PBFT_TIMER_ANSWER), 0);
  assert_true(answers(h, 0, 3, 1, d, &rc));
  assert_int_equal(rc, 0);
  fb_end(h, f);
}

/* n = 4, batches of up to 2: replicas vote PREPARE for D1 = [x] at seq 1 in view 0, but every
 * PREPARE is lost (nobody prepares) and the primary crashes. View 1 leaves seq 1 free and its
 * primary proposes D2 = [x, y] there. Replica 2 votes for D2 yet keeps D1's bytes (a later
 * NEW-VIEW could still re-propose D1, a certificate for it may exist at a faulty replica),
 * also across a restart, until D2 commits: then it fetches D2 by digest and delivers it. */
static void test_voted_bytes_kept_until_superseded(void **unused) {
  (void)unused;
  harness *h = h_new(4, 2, 0, 0);
  fb_net *f = fb_install(h);
  f->drop_prepares = 1;
  f->drop_commit_to = 0xf;
  submit_and_run(h, 1, "x");
  h_msg *pp = rec_find(&f->rec, 0, 2, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp);
  uint8_t d1[32];
  memcpy(d1, pp->body + 16, 32);
  assert_true(has_batch_record(h, 2, 1, d1));
  h->r[0].down = 1;
  submit_and_run(h, 1, "y");
  for (uint32_t i = 1; i <= 3; i++) h_request_timeout(h, i);
  h_run(h, 1000000);
  h_msg *pp2 = rec_find(&f->rec, 1, 2, PBFT_MSG_PRE_PREPARE, 1);
  assert_non_null(pp2);
  assert_int_equal(get64(pp2->body), 1);
  uint8_t d2[32];
  memcpy(d2, pp2->body + 16, 32);
  assert_memory_not_equal(d1, d2, 32);
  /* replica 2 voted for D2 in view 1 */
  int voted = 0;
  for (uint32_t k = 0; k < f->rec.n; k++) {
    h_msg *m = &f->rec.m[k];
    if (m->from == 2 && m->kind == PBFT_MSG_PREPARE && get64(m->body) == 1 && get64(m->body + 8) == 1 &&
        memcmp(m->body + 16, d2, 32) == 0)
      voted = 1;
  }
  assert_true(voted);
  /* ... yet still holds D1's bytes, not D2's */
  int rc;
  assert_true(answers(h, 2, 3, 1, d1, &rc));
  assert_int_equal(rc, 0);
  assert_false(answers(h, 2, 3, 1, d2, &rc));
  assert_int_equal(rc, BFT_E_STATE);
  assert_false(has_batch_record(h, 2, 1, d2));
  h_clear_queue(h);
  /* a restart (its latest PREPARE is for D2) keeps D1's bytes, and keeps refusing D2's */
  h_restart(h, 2, UINT64_MAX);
  h_clear_queue(h);
  assert_true(answers(h, 2, 3, 1, d1, &rc));
  h_clear_queue(h);
  uint32_t np = h->r[2].nrec;
  /* (accepted anew after the restart: its vote for it stands, without its bytes) */
  assert_int_equal(h_deliver(h, 2, 1, PBFT_MSG_PRE_PREPARE, pp2->body, pp2->len), 0);
  assert_int_equal(h->r[2].nrec, np);
  assert_false(has_batch_record(h, 2, 1, d2));
  assert_int_equal(h_deliver(h, 2, 1, PBFT_MSG_PRE_PREPARE, pp2->body, pp2->len), BFT_E_DUPLICATE);
  assert_true(answers(h, 2, 3, 1, d1, &rc));
  h_clear_queue(h);
  /* D2 commits: replica 2 gives D1's bytes up for D2's and delivers */
  f->drop_prepares = 0;
  f->drop_commit_to = 0;
  fire_retransmit_until(h, 1, 3, 1);
  for (uint32_t i = 1; i <= 3; i++) {
    assert_true(h->r[i].ncommit >= 1);
    assert_memory_equal(h->r[i].commits[1].digest, d2, 32);
  }
  assert_true(has_batch_record(h, 2, 1, d2));
  assert_true(answers(h, 2, 3, 1, d2, &rc));
  assert_true(h_agree(h));
  fb_end(h, f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reproposed_batch_fetched_by_digest),
      cmocka_unit_test(test_batch_fetch_refusals),
      cmocka_unit_test(test_voted_bytes_kept_until_superseded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
