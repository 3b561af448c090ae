/* The run's judges, over the correct replicas only: agreement (one digest per height, every
 * certificate verifies), validity (only requests a client signed, each executed at most once
 * per replica, every execution answered), liveness (after the fault window everything is done). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/request.h"
#include "tests/sim/sim_internal.h"

static const char *short_hex(const uint8_t *d, char out[17]) {
  bft_hex_encode(out, d, 8);
  return out;
}

/* The agreement record: the first digest a correct replica delivered at each height. */
static int check_agreement(sim_ctx *S, sim_node *nd, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN]) {
  if (seq <= S->ndecided) {
    if (memcmp(S->decided[seq - 1], digest, BFT_DIGEST_LEN) != 0) {
      char a[17], b[17];
      sim_fail(S, SIM_VIOLATION,
               "agreement: correct replicas %u and %u delivered different batches at seq %" PRIu64 " (%s vs %s)",
               S->decided_by[seq - 1], nd->id, seq, short_hex(S->decided[seq - 1], a), short_hex(digest, b));
      return -1;
    }
    return 0;
  }
  if (seq != (uint64_t)S->ndecided + 1) { /* ledgers grow without gaps, so the record does too */
    sim_fail(S, SIM_VIOLATION, "contract: replica %u delivered seq %" PRIu64 " with the record at %u", nd->id, seq,
             S->ndecided);
    return -1;
  }
  if (S->ndecided == S->capdecided) {
    uint32_t nc = S->capdecided ? S->capdecided * 2 : 256;
    void *d = realloc(S->decided, (size_t)nc * BFT_DIGEST_LEN);
    if (!d) return BFT_E_NOMEM;
    S->decided = d;
    uint32_t *by = realloc(S->decided_by, (size_t)nc * sizeof *by);
    if (!by) return BFT_E_NOMEM;
    S->decided_by = by;
    S->capdecided = nc;
  }
  memcpy(S->decided[S->ndecided], digest, BFT_DIGEST_LEN);
  S->decided_by[S->ndecided] = nd->id;
  S->ndecided++;
  S->res->batches = S->ndecided;
  return 0;
}

/* Every request of a committed batch is one a client submitted; those not executed before on
 * this replica are executed now (the runtime answers each of them: counted in unreplied). */
static int mark_executed(sim_ctx *S, sim_node *nd, const bft_block *b, int replayed) {
  bft_batch_reader br;
  int rc = bft_batch_open(&br, b->batch, b->batch_len);
  const uint8_t *rq;
  uint32_t rl;
  while (rc == 0 && (rc = bft_batch_next(&br, &rq, &rl)) == 1) {
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, rq, rl);
    int64_t idx = sim_world_find(S->w, d);
    if (idx < 0) {
      sim_fail(S, SIM_VIOLATION, "validity: replica %u committed at seq %" PRIu64 " a request no client submitted",
               nd->id, b->height);
      return -1;
    }
    rc = 0;
    if (nd->executed[idx]) continue; /* a repeat: skipped by every replica alike */
    nd->executed[idx] = 1;
    nd->nexecuted++;
    if (!replayed) nd->unreplied++;
  }
  if (rc < 0) {
    sim_fail(S, SIM_VIOLATION, "validity: replica %u committed a malformed batch at seq %" PRIu64, nd->id, b->height);
    return -1;
  }
  return 0;
}

void sim_check_committed(sim_ctx *S, sim_node *nd, const bft_block *b, int replayed) {
  if (S->res->outcome) return;
  if (nd->unreplied != 0) {
    sim_fail(S, SIM_VIOLATION, "validity: replica %u executed %" PRId64 " requests before seq %" PRIu64
             " without answering their clients", nd->id, nd->unreplied, b->height);
    return;
  }
  if (b->height != nd->head + 1) {
    sim_fail(S, SIM_VIOLATION, "contract: replica %u appended seq %" PRIu64 " after %" PRIu64, nd->id, b->height,
             nd->head);
    return;
  }
  nd->head = b->height;
  if (!replayed) {
    S->oracle = 1;
    int rc = S->ops->verify_certificate(&nd->core.cfg, &nd->core.env, b->height, b->batch_digest, b->cert, b->cert_len);
    S->oracle = 0;
    if (rc) {
      sim_fail(S, SIM_VIOLATION, "agreement: replica %u delivered seq %" PRIu64 " with a certificate that does not "
               "verify (%s)", nd->id, b->height, bft_strerror(rc));
      return;
    }
    if (sim_correct(S, nd->id) && check_agreement(S, nd, b->height, b->batch_digest)) return;
    S->dirty = 1;
    S->last_progress = S->now;
    if (S->vb) {
      char h[17];
      VLOG(S, "n%u COMMIT seq=%" PRIu64 " digest=%s cert=%uB", nd->idx, b->height, short_hex(b->batch_digest, h),
           b->cert_len);
    }
  }
  mark_executed(S, nd, b, replayed);
}

static void client_done(sim_ctx *S, uint32_t idx) {
  S->requests_done++;
  const sim_request *rq = sim_world_request(S->w, idx);
  sim_event ev = {.time = S->now + sim_rng_range(&S->rng[RNG_CLIENT], S->o->delay_min_us, S->o->delay_max_us),
                  .type = EV_REPLY, .node = rq->client, .from = SIM_NET_CLIENT, .a = idx};
  sim_push(S, &ev);
}

/* A reply from replica nd: the client holds f+1 from distinct replica ids once enough came in
 * (twins share an id, so two copies count once, as a real client would count them). */
void sim_check_replied(sim_ctx *S, sim_node *nd, uint32_t client, int fresh) {
  if (S->res->outcome || client >= sim_world_clients(S->w)) return;
  if (fresh && --nd->unreplied < 0) {
    sim_fail(S, SIM_VIOLATION, "validity: replica %u answered client %u for a request it did not execute just now",
             nd->id, client);
    return;
  }
  uint64_t seq = nd->core.sessions.s[client].last_seq;
  if (seq == 0) return;
  uint64_t k = seq - 1;
  uint32_t idx = (uint32_t)(k * sim_world_clients(S->w) + client);
  if (idx >= S->R || !nd->executed[idx]) {
    sim_fail(S, SIM_VIOLATION, "validity: replica %u answered client %u seq %" PRIu64 " it never executed", nd->id,
             client, seq);
    return;
  }
  uint64_t bit = 1ull << nd->id;
  if (S->replied_mask[idx] & bit) return;
  S->replied_mask[idx] |= bit;
  if ((uint32_t)__builtin_popcountll(S->replied_mask[idx]) == S->f + 1) client_done(S, idx);
}

/* ---- liveness -------------------------------------------------------------------------------- */

int sim_correct(const sim_ctx *S, uint32_t id) { return S->plan[id] == SIM_BYZ_NONE; }

/* Correct replicas that must have executed every request: n-f. With B Byzantine replicas a
 * quorum of 2f+1 may hold B of them, so only 2f+1-B correct replicas are sure to have taken
 * part; the other correct ones catch up through checkpoints and FETCH (judged separately). */
static uint32_t need_correct(const sim_ctx *S) {
  uint32_t b = S->res->byzantine;
  return b >= S->n - S->f ? 1 : S->n - S->f - b;
}

/* Index of the first request fewer than need_correct() correct (up) replicas executed, or -1. */
int64_t sim_check_first_short(sim_ctx *S, uint32_t *count) {
  uint32_t need = need_correct(S);
  for (uint32_t idx = 0; idx < S->R; idx++) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < S->nnodes; i++) {
      const sim_node *nd = &S->nodes[i];
      k += nd->up && !nd->plan && nd->executed[idx];
    }
    if (k < need) {
      *count = k;
      return idx;
    }
  }
  return -1;
}

/* Everything done: every request answered, every correct up replica executed all of them and
 * holds the whole decided ledger (it may have executed everything and still be fetching an
 * empty block at the head: that is not done yet). */
int sim_check_all_done(sim_ctx *S) {
  if (S->requests_done < S->R) return 0;
  for (uint32_t i = 0; i < S->nnodes; i++) {
    const sim_node *nd = &S->nodes[i];
    if (nd->up && !nd->plan && (nd->nexecuted < S->R || nd->head < S->ndecided)) return 0;
  }
  return 1;
}

/* After the fault window: every request executed by at least n-f correct (up) replicas, and
 * every correct replica at the cluster head unless it is lagging beyond what catch-up can
 * serve: it never asked (after the faults stopped) for what it lacks. One that asked for a
 * height and never got it has stalled: catch-up itself is broken. */
void sim_check_liveness(sim_ctx *S) {
  uint32_t k;
  int64_t idx = sim_check_first_short(S, &k);
  if (idx >= 0) {
    const sim_request *rq = sim_world_request(S->w, (uint32_t)idx);
    sim_fail(S, SIM_STALLED,
             "liveness: request %u (client %u seq %" PRIu64 ") executed by %u correct replicas, %u needed, at %.3f ms "
             "(%" PRIu64 " of %u requests done, cluster head %u)",
             (uint32_t)idx, rq->client, rq->seq, k, need_correct(S), (double)S->now / 1000.0, S->requests_done, S->R,
             S->ndecided);
    return;
  }
  for (uint32_t i = 0; i < S->nnodes; i++) {
    sim_node *nd = &S->nodes[i];
    if (!nd->up || nd->plan || nd->head >= S->ndecided) continue;
    int unserved = nd->want_after_faults > nd->head;
    if (unserved || S->o->catchup_all) {
      sim_fail(S, SIM_STALLED, "liveness: replica %u stuck at ledger head %" PRIu64 " of %u at %.3f ms%s", nd->id,
               nd->head, S->ndecided, (double)S->now / 1000.0, unserved ? " although it asked to fetch from there" : "");
      return;
    }
    S->res->lagging++;
    VLOG(S, "n%u lagging at ledger head %" PRIu64 " of %u (never asked to catch up)", nd->idx, nd->head, S->ndecided);
  }
}
