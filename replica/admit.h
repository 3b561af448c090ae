/* Per-source bookkeeping for admission and the cost of trust: a source is a remote IP address.
 * Each has its connection count, token buckets (failed verifications, handshake attempts,
 * signed rejections), a refusal back-off that doubles per offence, and a warn-line limiter.
 * Pure bookkeeping with the clock passed in: no I/O, no libuv (unit-testable). */
#ifndef RT_ADMIT_H
#define RT_ADMIT_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct rt_bucket { /* tokens in thousandths; refilled lazily from the last update */
  uint64_t milli;
  uint64_t at_ms;
  int init;
} rt_bucket;

/* Take one token from a bucket of `burst` tokens refilled at per_s tokens a second: 1 taken, 0 empty. */
int rt_bucket_take(rt_bucket *b, uint32_t burst, uint32_t per_s, uint64_t now_ms);

/* Would a token be available now (nothing taken)? */
int rt_bucket_has(rt_bucket *b, uint32_t burst, uint32_t per_s, uint64_t now_ms);

typedef struct rt_source {
  uint8_t ip[16];
  uint8_t family;           /* 0: unused entry */
  uint32_t conns;           /* client and unidentified connections from here */
  rt_bucket fails, hs, rejects;
  uint64_t refused_until_ms, backoff_ms, last_offence_ms;
  uint64_t warn_at_ms, suppressed; /* warn-line limiter */
  uint64_t last_seen_ms;
} rt_source;

typedef struct rt_sources {
  rt_source *tab; /* RT_SOURCES_MAX entries; tab[0] is the shared entry when the table is full */
} rt_sources;

int rt_sources_init(rt_sources *t);
void rt_sources_free(rt_sources *t);
/* The entry of the address (created if needed); never NULL. */
rt_source *rt_sources_get(rt_sources *t, const struct sockaddr_storage *ss, uint64_t now_ms);
/* The source offended (over a budget): refuse it for a back-off that doubles with every
 * offence (RT_SOURCE_BACKOFF_MIN_MS..MAX) and decays back after a quiet back-off period. */
void rt_source_offend(rt_source *s, uint64_t now_ms);
int rt_source_refused(const rt_source *s, uint64_t now_ms);
/* 1: log a warn line about this source now (*suppressed = lines held back since the last one);
 * 0: counted as suppressed. At most one line per RT_SOURCE_WARN_MS per source. */
int rt_source_warn(rt_source *s, uint64_t now_ms, uint64_t *suppressed);
/* Text of the address, for logs. */
void rt_source_name(const rt_source *s, char *out, size_t cap);

#endif
