/* Faulty-replica output falsification shared by bft-replica --byzantine and the simulator. */
#include "replica/byzantine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  uint32_t bit;
} MODES[] = {
    {"equivocate", RT_BYZ_EQUIVOCATE}, {"silent", RT_BYZ_SILENT},   {"delay", RT_BYZ_DELAY},   {"drop-to", RT_BYZ_DROP_TO},   {"corrupt", RT_BYZ_CORRUPT},
    {"bad-sig", RT_BYZ_BAD_SIG}, {"replay", RT_BYZ_REPLAY}, {"withhold", RT_BYZ_WITHHOLD},
};
#define NMODES (sizeof MODES / sizeof MODES[0])

const char *rt_byz_help(void) {
  return "                         equivocate         two honest copies of the replica under its one key, each\n"
         "                                            talking to part of the cluster (replica ID-1 hears both)\n"
         "                                            and fed different client requests (by seq parity):\n"
         "                                            conflicting proposals and votes\n"
         "                         silent             receives everything, sends nothing\n"
         "                         delay:MS           holds every frame MS ms (a slow leader just under the timeout)\n"
         "                         drop-to:ID[+ID..]  drops every frame to those replicas\n"
         "                         corrupt            changes a field (view/seq +-1, a byte) of half its engine\n"
         "                                            messages, validly signed\n"
         "                         bad-sig            sends engine messages with invalid signatures\n"
         "                         replay             resends old signed engine messages to random replicas\n"
         "                         withhold           never serves batch/block bytes or catch-up (FETCH replies)\n";
}

static int parse_ids(const char *s, uint32_t n, uint32_t self, uint64_t *mask) {
  *mask = 0;
  while (*s) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || v >= n || v == self) return -1;
    *mask |= 1ull << v;
    s = end;
    if (*s == '+' && s[1]) s++;
    else if (*s) return -1;
  }
  return *mask ? 0 : -1;
}

static int parse_one(const char *tok, uint32_t n, uint32_t self, rt_byz_config *out, char *err, size_t errlen) {
  const char *arg = strchr(tok, ':');
  size_t nl = arg ? (size_t)(arg - tok) : strlen(tok);
  for (size_t i = 0; i < NMODES; i++) {
    if (strlen(MODES[i].name) != nl || strncmp(MODES[i].name, tok, nl) != 0) continue;
    uint32_t bit = MODES[i].bit;
    int wants_arg = bit == RT_BYZ_DELAY || bit == RT_BYZ_DROP_TO;
    if (wants_arg != (arg != NULL)) {
      snprintf(err, errlen, "--byzantine %s %s", MODES[i].name, wants_arg ? "needs a value (see --help)" : "takes no value");
      return BFT_E_INVAL;
    }
    if (bit == RT_BYZ_DELAY) {
      char *end;
      unsigned long ms = strtoul(arg + 1, &end, 10);
      if (!arg[1] || *end || ms == 0 || ms > RT_BYZ_MAX_DELAY_MS) {
        snprintf(err, errlen, "--byzantine delay:MS wants 1..%u milliseconds, not '%s'", RT_BYZ_MAX_DELAY_MS, arg + 1);
        return BFT_E_INVAL;
      }
      out->delay_ms = (uint32_t)ms;
    }
    if (bit == RT_BYZ_DROP_TO && parse_ids(arg + 1, n, self, &out->drop_to) != 0) {
      snprintf(err, errlen, "--byzantine drop-to:IDS wants other replicas' ids joined by '+' (0..%u), not '%s'", n - 1,
               arg + 1);
      return BFT_E_INVAL;
    }
    out->modes |= bit;
    return 0;
  }
  snprintf(err, errlen, "unknown --byzantine mode '%.*s' (equivocate, silent, delay:MS, drop-to:IDS, corrupt, bad-sig, replay, withhold)",
           (int)nl, tok);
  return BFT_E_INVAL;
}

int rt_byz_parse(const char *spec, uint32_t n, uint32_t self, rt_byz_config *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  char buf[256];
  if (!spec || !*spec || strlen(spec) >= sizeof buf) {
    snprintf(err, errlen, "--byzantine wants MODE[,MODE...]");
    return BFT_E_INVAL;
  }
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = buf, *next; tok; tok = next) { /* strict: an empty mode is an error */
    next = strchr(tok, ',');
    if (next) *next++ = '\0';
    int rc = parse_one(tok, n, self, out, err, errlen);
    if (rc) return rc;
  }
  if (!out->modes) {
    snprintf(err, errlen, "--byzantine wants MODE[,MODE...]");
    return BFT_E_INVAL;
  }
  return 0;
}

void rt_byz_describe(const rt_byz_config *c, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < NMODES && k < cap; i++) {
    if (!(c->modes & MODES[i].bit)) continue;
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? "," : "", MODES[i].name);
    if (MODES[i].bit == RT_BYZ_DELAY && k < cap) k += (size_t)snprintf(buf + k, cap - k, ":%u", c->delay_ms);
    if (MODES[i].bit == RT_BYZ_DROP_TO)
      for (uint32_t id = 0, first = 1; id < 64 && k < cap; id++)
        if (c->drop_to >> id & 1) {
          k += (size_t)snprintf(buf + k, cap - k, "%c%u", first ? ':' : '+', id);
          first = 0;
        }
  }
}

uint32_t rt_byz_twin_reach(uint32_t n, uint32_t self, uint32_t peer) {
  if (n < 3 || self >= n || peer >= n || peer == self) return 0;
  uint32_t bridge = (self + n - 1) % n;
  if (peer == bridge) return RT_BYZ_TWIN_A | RT_BYZ_TWIN_B;
  /* rank among the n - 2 others, counted from the one after self, in rotation order */
  uint32_t k = (peer + n - self - 1) % n;
  return k < (n - 2 + 1) / 2 ? RT_BYZ_TWIN_A : RT_BYZ_TWIN_B;
}

void rt_byz_init(rt_byz *b, const rt_byz_config *cfg, const bft_engine_ops *ops, uint32_t n, uint32_t self,
                 uint64_t seed) {
  memset(b, 0, sizeof *b);
  b->cfg = *cfg;
  b->ops = ops;
  b->n = n;
  b->self = self;
  b->rng = seed;
}

void rt_byz_free(rt_byz *b) {
  for (uint32_t i = 0; i < b->nring; i++) free(b->ring[i].body);
  b->nring = 0;
  b->ring_bytes = 0;
}

static uint64_t next_rand(rt_byz *b) { /* splitmix64 */
  uint64_t z = (b->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t below(rt_byz *b, uint64_t n) { return n ? next_rand(b) % n : 0; }

static int is_engine(uint8_t kind) { return kind >= WIRE_KIND_ENGINE && kind <= WIRE_KIND_ENGINE_LAST; }

static int is_data(const rt_byz *b, uint8_t kind) {
  if (kind == WIRE_KIND_FETCH_REPLY) return 1;
  return is_engine(kind) && b->ops->msg_class &&
         b->ops->msg_class((uint8_t)(kind - WIRE_KIND_ENGINE)) == BFT_MSGC_DATA;
}

static void forget(rt_byz *b, uint32_t i) {
  rt_byz_old *o = &b->ring[i];
  if (o->body) b->ring_bytes -= o->len;
  free(o->body);
  o->body = NULL;
}

/* Keep a copy for replay, within the ring's count and byte bounds (random old ones go). */
static void keep(rt_byz *b, uint8_t kind, const uint8_t *body, uint32_t len) {
  if (len > RT_BYZ_RING_BYTES / 4) return;
  uint32_t slot = b->nring < RT_BYZ_RING ? b->nring++ : (uint32_t)below(b, RT_BYZ_RING);
  forget(b, slot);
  /* ring_bytes > 3/4 of the bound means some body is held, so this ends */
  while (b->ring_bytes + len > RT_BYZ_RING_BYTES) forget(b, (uint32_t)below(b, b->nring));
  rt_byz_old *o = &b->ring[slot];
  o->body = malloc(len ? len : 1);
  if (!o->body) return;
  memcpy(o->body, body, len);
  o->kind = kind;
  o->len = len;
  b->ring_bytes += len;
}

/* Change one field-sized spot of the payload and sign the result validly with our own key:
 * ±1 on a byte of the leading counters (views, rounds, heights, sequence numbers come first in
 * every engine's layouts), or a byte replaced anywhere (digests, ids, batch bytes). */
static int corrupt(rt_byz *b, uint8_t kind, uint8_t *out, uint32_t len, const rt_crypto *cr) {
  const char *tag = b->ops->msg_tag((uint8_t)(kind - WIRE_KIND_ENGINE));
  if (!tag || len <= BFT_SIG_LEN) return RT_BYZ_SEND;
  uint32_t plen = len - BFT_SIG_LEN;
  uint32_t how = (uint32_t)below(b, 3);
  uint32_t at = (uint32_t)(how < 2 ? below(b, plen < 24 ? plen : 24) : below(b, plen));
  if (how == 0) out[at]++;
  else if (how == 1) out[at]--;
  else out[at] ^= (uint8_t)(1 + below(b, 255));
  if (cr->sign(cr->ctx, tag, out, plen, out + plen) != 0) return RT_BYZ_DROP;
  b->corrupted++;
  return RT_BYZ_REPLACED;
}

int rt_byz_outgoing(rt_byz *b, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len, uint8_t *out,
                    const rt_crypto *cr) {
  const rt_byz_config *c = &b->cfg;
  if ((c->modes & RT_BYZ_SILENT) || ((c->modes & RT_BYZ_DROP_TO) && to < 64 && (c->drop_to >> to & 1))) {
    b->dropped++;
    return RT_BYZ_DROP;
  }
  if ((c->modes & RT_BYZ_WITHHOLD) && is_data(b, kind)) {
    b->withheld++;
    return RT_BYZ_DROP;
  }
  if (!is_engine(kind)) return RT_BYZ_SEND;
  if (c->modes & RT_BYZ_REPLAY) keep(b, kind, body, len);
  int verdict = RT_BYZ_SEND;
  if ((c->modes & RT_BYZ_CORRUPT) && below(b, 2) == 0) {
    memcpy(out, body, len);
    verdict = corrupt(b, kind, out, len, cr);
  }
  if ((c->modes & RT_BYZ_BAD_SIG) && len >= BFT_SIG_LEN) {
    if (verdict == RT_BYZ_SEND) memcpy(out, body, len);
    out[len - 1 - (uint32_t)below(b, BFT_SIG_LEN)] ^= (uint8_t)(1u << below(b, 8));
    b->bad_sigs++;
    verdict = RT_BYZ_REPLACED;
  }
  return verdict;
}

int rt_byz_replay(rt_byz *b, uint32_t *to, uint8_t *kind, const uint8_t **body, uint32_t *len) {
  if (!(b->cfg.modes & RT_BYZ_REPLAY) || !b->nring || below(b, 3) != 0) return 0;
  const rt_byz_old *o = &b->ring[below(b, b->nring)];
  uint32_t dest = (uint32_t)below(b, b->n);
  if (!o->body || dest == b->self) return 0;
  *to = dest;
  *kind = o->kind;
  *body = o->body;
  *len = o->len;
  b->replayed++;
  return 1;
}
