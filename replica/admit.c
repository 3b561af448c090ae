/* Per-source admission bookkeeping: a small open-addressed table of remote addresses with
 * token buckets, refusal back-offs and warn-line limiters (see admit.h). */
#include "replica/admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bft_err.h"
#include "replica/rt_limits.h"

#define PROBE 16u

int rt_bucket_take(rt_bucket *b, uint32_t burst, uint32_t per_s, uint64_t now_ms) {
  uint64_t cap = (uint64_t)burst * 1000u;
  if (!b->init) {
    b->init = 1;
    b->milli = cap;
    b->at_ms = now_ms;
  }
  if (now_ms > b->at_ms) {
    uint64_t add = (now_ms - b->at_ms) * per_s; /* per_s tokens/s = per_s milli-tokens/ms */
    b->milli = b->milli + add > cap ? cap : b->milli + add;
    b->at_ms = now_ms;
  }
  if (b->milli < 1000u) return 0;
  b->milli -= 1000u;
  return 1;
}

int rt_bucket_has(rt_bucket *b, uint32_t burst, uint32_t per_s, uint64_t now_ms) {
  if (!rt_bucket_take(b, burst, per_s, now_ms)) return 0;
  b->milli += 1000u; /* put it back */
  return 1;
}

int rt_sources_init(rt_sources *t) {
  t->tab = calloc(RT_SOURCES_MAX, sizeof *t->tab);
  return t->tab ? 0 : BFT_E_NOMEM;
}

void rt_sources_free(rt_sources *t) {
  free(t->tab);
  t->tab = NULL;
}

static void addr_key(const struct sockaddr_storage *ss, uint8_t ip[16], uint8_t *family) {
  memset(ip, 0, 16);
  *family = 0;
  if (ss->ss_family == AF_INET) {
    memcpy(ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    *family = 4;
  } else if (ss->ss_family == AF_INET6) {
    memcpy(ip, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    *family = 6;
  }
}

static uint32_t addr_hash(const uint8_t ip[16]) { /* FNV-1a */
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; i++) h = (h ^ ip[i]) * 16777619u;
  return h;
}

rt_source *rt_sources_get(rt_sources *t, const struct sockaddr_storage *ss, uint64_t now_ms) {
  uint8_t ip[16], fam;
  addr_key(ss, ip, &fam);
  if (!fam) return &t->tab[0];
  uint32_t h = addr_hash(ip), mask = RT_SOURCES_MAX - 1;
  rt_source *victim = NULL;
  for (uint32_t k = 0; k < PROBE; k++) {
    uint32_t i = (h + k) & mask;
    if (i == 0) continue; /* the shared entry */
    rt_source *s = &t->tab[i];
    if (s->family == fam && memcmp(s->ip, ip, 16) == 0) {
      s->last_seen_ms = now_ms;
      return s;
    }
    if (!s->family) {
      if (!victim || victim->family) victim = s;
      continue;
    }
    /* An entry with no connections and no refusal running may be recycled (oldest first). */
    if (s->conns == 0 && !rt_source_refused(s, now_ms) && (!victim || (victim->family && s->last_seen_ms < victim->last_seen_ms)))
      victim = s;
  }
  if (!victim) return &t->tab[0];
  memset(victim, 0, sizeof *victim);
  memcpy(victim->ip, ip, 16);
  victim->family = fam;
  victim->last_seen_ms = now_ms;
  return victim;
}

void rt_source_offend(rt_source *s, uint64_t now_ms) {
  if (s->backoff_ms && now_ms > s->last_offence_ms + 2 * s->backoff_ms) s->backoff_ms = 0; /* quiet: decay */
  s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : RT_SOURCE_BACKOFF_MIN_MS;
  if (s->backoff_ms > RT_SOURCE_BACKOFF_MAX_MS) s->backoff_ms = RT_SOURCE_BACKOFF_MAX_MS;
  s->refused_until_ms = now_ms + s->backoff_ms;
  s->last_offence_ms = now_ms;
}

int rt_source_refused(const rt_source *s, uint64_t now_ms) { return now_ms < s->refused_until_ms; }

int rt_source_warn(rt_source *s, uint64_t now_ms, uint64_t *suppressed) {
  if (s->warn_at_ms && now_ms < s->warn_at_ms + RT_SOURCE_WARN_MS) {
    s->suppressed++;
    return 0;
  }
  *suppressed = s->suppressed;
  s->suppressed = 0;
  s->warn_at_ms = now_ms ? now_ms : 1;
  return 1;
}

void rt_source_name(const rt_source *s, char *out, size_t cap) {
  if (s->family == 4) {
    if (!inet_ntop(AF_INET, s->ip, out, (socklen_t)cap)) snprintf(out, cap, "?");
  } else if (s->family == 6) {
    if (!inet_ntop(AF_INET6, s->ip, out, (socklen_t)cap)) snprintf(out, cap, "?");
  } else {
    snprintf(out, cap, "other");
  }
}
