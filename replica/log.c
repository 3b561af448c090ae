/* Line-oriented key=value logging with per-site rate limiting. */
#include "replica/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "replica/rt_limits.h"

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void rt_log_init(rt_log *l, int level, FILE *out, long replica) {
  l->level = level;
  l->out = out;
  l->replica = replica;
}

int rt_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, LEVEL_NAMES[i]) == 0) return i;
  return -1;
}

uint64_t rt_monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rt_short_hex(char out[9], const uint8_t *p) {
  static const char HEX[] = "0123456789abcdef";
  for (int i = 0; i < 4; i++) {
    out[2 * i] = HEX[p[i] >> 4];
    out[2 * i + 1] = HEX[p[i] & 15];
  }
  out[8] = '\0';
}

static void vlog(const rt_log *l, int level, const char *comp, uint64_t suppressed, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));
static void vlog(const rt_log *l, int level, const char *comp, uint64_t suppressed, const char *fmt,
                 va_list ap) {
  char line[1024];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000L, LEVEL_NAMES[level], comp);
  if (l->replica >= 0 && n < (int)sizeof line)
    n += snprintf(line + n, sizeof line - (size_t)n, " replica=%ld", l->replica);
  if (n < (int)sizeof line - 1) {
    line[n++] = ' ';
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  }
  if (suppressed && n < (int)sizeof line)
    n += snprintf(line + n, sizeof line - (size_t)n, " suppressed=%llu", (unsigned long long)suppressed);
  if (n >= (int)sizeof line) n = (int)sizeof line - 1;
  line[n] = '\0';
  fprintf(l->out, "%s\n", line);
}

void rt_logf(const rt_log *l, int level, const char *comp, const char *fmt, ...) {
  if (!l || !l->out || level < l->level) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(l, level, comp, 0, fmt, ap);
  va_end(ap);
}

void rt_logf_rl(const rt_log *l, rt_ratelimit *rl, int level, const char *comp, const char *fmt, ...) {
  if (!l || !l->out || level < l->level) return;
  uint64_t now = rt_monotonic_ms();
  if (now - rl->window_start_ms >= RT_LOG_WINDOW_MS) {
    rl->window_start_ms = now;
    rl->count = 0;
  }
  if (rl->count >= RT_LOG_BURST) {
    rl->suppressed++;
    return;
  }
  rl->count++;
  uint64_t sup = rl->suppressed;
  rl->suppressed = 0;
  va_list ap;
  va_start(ap, fmt);
  vlog(l, level, comp, sup, fmt, ap);
  va_end(ap);
}
