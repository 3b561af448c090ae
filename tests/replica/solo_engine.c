/* The solo test engine: pull, commit immediately, persist one record per commit. */
#include "tests/replica/solo_engine.h"

#include <string.h>

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static int solo_init(void *st, const bft_engine_config *cfg, const bft_engine_env *env) {
  solo_state *s = st;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->committed = cfg->committed;
  s->pull_on_request = 1;
  return 0;
}

static int solo_restore(void *st, const uint8_t *rec, uint32_t len) {
  solo_state *s = st;
  if (len != 8) return BFT_E_MALFORMED;
  uint64_t v = get64(rec);
  if (v > s->restored_max) s->restored_max = v;
  s->restored_records++;
  return 0;
}

static int solo_start(void *st, bft_actions *out) {
  solo_state *s = st;
  return s->pull_on_request ? bft_act_pull(out, s->cfg.batch_max) : 0;
}

static const char *solo_tag(uint8_t kind) { return kind == SOLO_MSG_KIND ? SOLO_TAG : NULL; }

static int commit(solo_state *s, const uint8_t *batch, uint32_t len, bft_actions *out) {
  uint64_t seq = s->committed + 1;
  uint8_t rec[8], cert[12], d[BFT_DIGEST_LEN];
  put64(rec, seq);
  memcpy(cert, "solo", 4);
  put64(cert + 4, seq);
  bft_digest(d, batch, len);
  int rc = bft_act_persist(out, rec, sizeof rec);
  if (!rc) rc = bft_act_commit(out, seq, d, batch, len, cert, sizeof cert);
  if (!rc) s->committed = seq;
  return rc;
}

static int solo_step(void *st, const bft_event *ev, bft_actions *out) {
  solo_state *s = st;
  switch (ev->type) {
    case BFT_EV_REQUEST:
      return s->pull_on_request ? bft_act_pull(out, s->cfg.batch_max) : 0;
    case BFT_EV_BATCH: {
      int rc = commit(s, ev->u.batch.data, ev->u.batch.len, out);
      return rc ? rc : bft_act_pull(out, s->cfg.batch_max);
    }
    case BFT_EV_SYNC:
      if (ev->u.sync.seq != s->committed + 1) return BFT_E_STALE;
      return commit(s, ev->u.sync.batch, ev->u.sync.batch_len, out);
    case BFT_EV_MESSAGE: /* a peer says it is ahead: fetch from it */
      return bft_act_fetch(out, ev->u.msg.from, s->committed + 1);
    default:
      return 0;
  }
}

static int solo_verify_cert(const bft_engine_config *cfg, const bft_engine_env *env, uint64_t seq,
                            const uint8_t digest[BFT_DIGEST_LEN], const uint8_t *cert, uint32_t len) {
  if (len != 12 || memcmp(cert, "solo", 4) != 0 || get64(cert + 4) != seq) return BFT_E_BAD_CERT;
  return 0;
}

static void solo_status(const void *st, bft_engine_status *out) {
  const solo_state *s = st;
  memset(out, 0, sizeof *out);
  out->view = s->view;
  out->leader = s->cfg.self;
  out->committed = s->committed;
}

static int solo_compact(void *st, bft_actions *out) {
  const solo_state *s = st;
  uint8_t rec[8];
  put64(rec, s->committed);
  return bft_act_persist(out, rec, sizeof rec);
}

const bft_engine_ops solo_engine_ops = {
    .name = "solo",
    .state_size = sizeof(solo_state),
    .max_replicas = BFT_MAX_REPLICAS,
    .init = solo_init,
    .restore = solo_restore,
    .start = solo_start,
    .msg_tag = solo_tag,
    .step = solo_step,
    .verify_certificate = solo_verify_cert,
    .status = solo_status,
    .compact = solo_compact,
};
