/* Engine-independent parts of the engine interface: action lists, configuration defaults and the outer signature check every driver performs. */
#include "protocols/engine.h"

#include <string.h>

void bft_engine_config_defaults(bft_engine_config *cfg, uint32_t n, uint32_t self) {
  memset(cfg, 0, sizeof *cfg);
  cfg->n = n;
  cfg->f = n ? (n - 1) / 3 : 0;
  cfg->self = self;
  cfg->batch_max = 64;
  cfg->window = 32;
  cfg->checkpoint_interval = 8;
  cfg->timeout_ms = 1000;
}

int bft_engine_config_check(const bft_engine_config *cfg) {
  if (cfg->n < BFT_MIN_REPLICAS || cfg->n > BFT_MAX_REPLICAS) return BFT_E_INVAL;
  if (cfg->f != (cfg->n - 1) / 3 || cfg->self >= cfg->n) return BFT_E_INVAL;
  if (cfg->batch_max < 1 || cfg->batch_max > BFT_MAX_BATCH_REQUESTS) return BFT_E_INVAL;
  if (cfg->window < 2 || cfg->window > BFT_MAX_WINDOW) return BFT_E_INVAL;
  if (cfg->checkpoint_interval < 1 || cfg->window % cfg->checkpoint_interval != 0 ||
      cfg->window < 2 * cfg->checkpoint_interval)
    return BFT_E_INVAL;
  if (cfg->pipeline > cfg->window) return BFT_E_INVAL;
  if (cfg->timeout_ms < 1 || cfg->timeout_ms > 3600u * 1000u) return BFT_E_INVAL;
  return 0;
}

void bft_actions_init(bft_actions *a, bft_action *items, uint32_t cap, uint8_t *arena, uint32_t arena_cap) {
  a->items = items;
  a->cap = cap;
  a->arena = arena;
  a->arena_cap = arena_cap;
  bft_actions_reset(a);
}

void bft_actions_reset(bft_actions *a) {
  a->count = 0;
  a->used = 0;
  a->overflow = 0;
}

uint8_t *bft_actions_alloc(bft_actions *a, uint32_t len) {
  if (len > a->arena_cap - a->used) {
    a->overflow = 1;
    return NULL;
  }
  uint8_t *p = a->arena + a->used;
  a->used += len;
  return p;
}

static bft_action *push(bft_actions *a, uint8_t type) {
  if (a->count >= a->cap) {
    a->overflow = 1;
    return NULL;
  }
  bft_action *x = &a->items[a->count++];
  memset(x, 0, sizeof *x);
  x->type = type;
  return x;
}

static const uint8_t *copy(bft_actions *a, const uint8_t *p, uint32_t len) {
  if (len == 0) return a->arena; /* non-NULL, never read */
  uint8_t *d = bft_actions_alloc(a, len);
  if (d) memcpy(d, p, len);
  return d;
}

static int push_bytes(bft_actions *a, uint8_t type, uint32_t to, uint8_t kind, const uint8_t *p, uint32_t len) {
  const uint8_t *d = copy(a, p, len);
  if (!d) return BFT_E_FULL;
  bft_action *x = push(a, type);
  if (!x) return BFT_E_FULL;
  x->to = to;
  x->kind = kind;
  x->data = d;
  x->len = len;
  return 0;
}

int bft_act_send(bft_actions *a, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  return push_bytes(a, BFT_ACT_SEND, to, kind, body, len);
}
int bft_act_broadcast(bft_actions *a, uint8_t kind, const uint8_t *body, uint32_t len) {
  return push_bytes(a, BFT_ACT_BROADCAST, 0, kind, body, len);
}
int bft_act_persist(bft_actions *a, const uint8_t *rec, uint32_t len) {
  return push_bytes(a, BFT_ACT_PERSIST, 0, 0, rec, len);
}

int bft_act_timer_set(bft_actions *a, uint32_t id, uint64_t tag, uint64_t delay_ms) {
  bft_action *x = push(a, BFT_ACT_TIMER_SET);
  if (!x) return BFT_E_FULL;
  x->timer_id = id;
  x->timer_tag = tag;
  x->delay_ms = delay_ms;
  return 0;
}

int bft_act_timer_cancel(bft_actions *a, uint32_t id) {
  bft_action *x = push(a, BFT_ACT_TIMER_CANCEL);
  if (!x) return BFT_E_FULL;
  x->timer_id = id;
  return 0;
}

int bft_act_pull(bft_actions *a, uint32_t max_requests) {
  bft_action *x = push(a, BFT_ACT_PROPOSE_PULL);
  if (!x) return BFT_E_FULL;
  x->max_requests = max_requests;
  return 0;
}

int bft_act_commit(bft_actions *a, uint64_t seq, const uint8_t digest[BFT_DIGEST_LEN],
                   const uint8_t *batch, uint32_t len, const uint8_t *cert, uint32_t cert_len) {
  const uint8_t *b = copy(a, batch, len);
  const uint8_t *c = copy(a, cert, cert_len);
  if (!b || !c) return BFT_E_FULL;
  bft_action *x = push(a, BFT_ACT_COMMIT);
  if (!x) return BFT_E_FULL;
  x->seq = seq;
  memcpy(x->digest, digest, BFT_DIGEST_LEN);
  x->data = b;
  x->len = len;
  x->cert = c;
  x->cert_len = cert_len;
  return 0;
}

int bft_act_fetch(bft_actions *a, uint32_t to, uint64_t seq) {
  bft_action *x = push(a, BFT_ACT_FETCH);
  if (!x) return BFT_E_FULL;
  x->to = to;
  x->seq = seq;
  return 0;
}

int bft_act_inflight(bft_actions *a, const uint8_t *batch, uint32_t len) {
  return push_bytes(a, BFT_ACT_INFLIGHT, 0, 0, batch, len);
}

int bft_act_evidence(bft_actions *a, uint32_t offender, uint8_t kind, const uint8_t *body1, uint32_t len1,
                     const uint8_t *body2, uint32_t len2) {
  uint32_t total = 8 + len1 + len2;
  if (len1 > BFT_MAX_ENGINE_MSG || len2 > BFT_MAX_ENGINE_MSG) return BFT_E_TOO_LARGE;
  uint8_t *d = bft_actions_alloc(a, total);
  if (!d) return BFT_E_FULL;
  wire_writer w;
  wire_writer_init(&w, d, total);
  wire_put_blob(&w, body1, len1);
  wire_put_blob(&w, body2, len2);
  bft_action *x = push(a, BFT_ACT_EVIDENCE);
  if (!x || w.err) return BFT_E_FULL;
  x->to = offender;
  x->kind = kind;
  x->data = d;
  x->len = total;
  return 0;
}

int bft_engine_check_message(const bft_engine_ops *ops, const bft_engine_config *cfg,
                             const bft_engine_env *env, uint32_t from, uint8_t kind,
                             const uint8_t *body, uint32_t len) {
  if (from >= cfg->n || from == cfg->self) return BFT_E_UNKNOWN_SENDER;
  const char *tag = ops->msg_tag(kind);
  if (!tag) return BFT_E_MALFORMED;
  if (len < BFT_SIG_LEN) return BFT_E_TRUNCATED;
  if (len > BFT_MAX_ENGINE_MSG) return BFT_E_TOO_LARGE;
  return env->verify(env->ctx, from, tag, body, len - BFT_SIG_LEN, body + len - BFT_SIG_LEN);
}

int bft_engine_seal(const bft_engine_env *env, const char *tag, const uint8_t *payload,
                    uint32_t len, uint8_t *dst, uint32_t cap) {
  if (cap < BFT_SIG_LEN || len > cap - BFT_SIG_LEN) return BFT_E_FULL;
  if (dst != payload) memmove(dst, payload, len);
  env->sign(env->ctx, tag, dst, len, dst + len);
  return (int)(len + BFT_SIG_LEN);
}
