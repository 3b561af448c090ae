/* Logging for the replica: one line per event, `ts=.. level=.. comp=.. replica=.. event=.. k=v`,
 * on stderr. Noisy sites (anything a peer or client can trigger) go through a rate limiter
 * that reports how many lines it suppressed. Never log a secret. */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdint.h>
#include <stdio.h>

enum rt_log_level { RT_LOG_DEBUG = 0, RT_LOG_INFO = 1, RT_LOG_WARN = 2, RT_LOG_ERROR = 3 };

typedef struct rt_log {
  int level;     /* lines below this level are dropped */
  FILE *out;     /* NULL: discard everything (tests) */
  long replica;  /* -1 until known */
} rt_log;

typedef struct rt_ratelimit { /* one per log site; zero-initialised */
  uint64_t window_start_ms;
  uint32_t count;
  uint64_t suppressed;
} rt_ratelimit;

void rt_log_init(rt_log *l, int level, FILE *out, long replica);
/* Level from "debug|info|warn|error", or -1. */
int rt_log_level_parse(const char *s);
uint64_t rt_monotonic_ms(void);

void rt_logf(const rt_log *l, int level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* At most RT_LOG_BURST lines per RT_LOG_WINDOW_MS for this site. */
void rt_logf_rl(const rt_log *l, rt_ratelimit *rl, int level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Lower-case hex of the first 4 bytes, for short identifiers of keys and digests in logs. */
void rt_short_hex(char out[9], const uint8_t *p);

#endif
