/* Replica metrics: counters and histograms updated on the hot paths, the Prometheus text
 * exposition writer, and the HTTP request-head parser of the /metrics endpoint. */
#include "replica/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bft_err.h"

/* ---- histograms ----------------------------------------------------------------------------- */

const rt_hist_spec RT_HIST_LATENCY_US = {
    17, {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
         5000000, 10000000}};
const rt_hist_spec RT_HIST_BATCH = {11, {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512}};

void rt_hist_init(rt_hist *h, const rt_hist_spec *spec) {
  memset(h, 0, sizeof *h);
  h->spec = spec;
}

void rt_hist_observe(rt_hist *h, uint64_t v) {
  uint32_t i = 0;
  while (i < h->spec->n && v > h->spec->le[i]) i++;
  h->bucket[i]++;
  h->count++;
  h->sum += v;
}

/* ---- runtime counters ------------------------------------------------------------------------- */

int rt_metrics_init(rt_metrics *m, uint32_t nclients) {
  memset(m, 0, sizeof *m);
  rt_hist_init(&m->req_to_commit, &RT_HIST_LATENCY_US);
  rt_hist_init(&m->commit_to_exec, &RT_HIST_LATENCY_US);
  rt_hist_init(&m->fsync_wal, &RT_HIST_LATENCY_US);
  rt_hist_init(&m->fsync_ledger, &RT_HIST_LATENCY_US);
  rt_hist_init(&m->batch_size, &RT_HIST_BATCH);
  m->nclients = nclients;
  m->admit_us = calloc(nclients ? nclients : 1, sizeof *m->admit_us);
  m->admit_seq = calloc(nclients ? nclients : 1, sizeof *m->admit_seq);
  if (!m->admit_us || !m->admit_seq) {
    rt_metrics_free(m);
    return BFT_E_NOMEM;
  }
  return 0;
}

void rt_metrics_free(rt_metrics *m) {
  free(m->admit_us);
  free(m->admit_seq);
  m->admit_us = m->admit_seq = NULL;
  m->nclients = 0;
}

uint64_t rt_metrics_now(const rt_metrics *m) { return m->now_us ? m->now_us(m->clock_ctx) : 0; }

void rt_metrics_admitted(rt_metrics *m, uint32_t client, uint64_t seq) {
  if (client >= m->nclients) return;
  m->admit_us[client] = rt_metrics_now(m);
  m->admit_seq[client] = seq;
}

void rt_metrics_executed(rt_metrics *m, uint64_t t_commit_us, uint32_t n, const uint32_t *client,
                         const uint64_t *seq) {
  uint64_t now = rt_metrics_now(m);
  rt_hist_observe(&m->commit_to_exec, now - t_commit_us);
  rt_hist_observe(&m->batch_size, n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = client[i];
    /* Only a request this replica admitted itself (one whose admission time it holds): one
     * that arrived only inside a proposal has no start on this replica. */
    if (k >= m->nclients || m->admit_seq[k] != seq[i] || m->admit_us[k] == 0) continue;
    rt_hist_observe(&m->req_to_commit, t_commit_us >= m->admit_us[k] ? t_commit_us - m->admit_us[k] : 0);
    m->admit_us[k] = 0;
  }
}

/* ---- exposition ------------------------------------------------------------------------------- */

void rt_prom_init(rt_prom *p, char *buf, size_t cap) {
  p->buf = buf;
  p->cap = cap;
  p->len = 0;
  p->overflow = 0;
  if (cap) buf[0] = '\0';
}

static void prom_raw(rt_prom *p, const char *s, size_t n) {
  if (p->overflow) return;
  if (p->len + n + 1 > p->cap) {
    p->overflow = 1;
    return;
  }
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  p->buf[p->len] = '\0';
}

static void prom_str(rt_prom *p, const char *s) { prom_raw(p, s, strlen(s)); }

static void prom_fmt(rt_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prom_fmt(rt_prom *p, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    p->overflow = 1;
    return;
  }
  prom_raw(p, tmp, (size_t)n);
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static void prom_escaped(rt_prom *p, const char *s, int quote) {
  for (; *s; s++) {
    if (*s == '\\') prom_raw(p, "\\\\", 2);
    else if (*s == '\n') prom_raw(p, "\\n", 2);
    else if (quote && *s == '"') prom_raw(p, "\\\"", 2);
    else prom_raw(p, s, 1);
  }
}

void rt_prom_family(rt_prom *p, const char *name, const char *type, const char *help) {
  prom_fmt(p, "# HELP %s ", name);
  prom_escaped(p, help, 0);
  prom_fmt(p, "\n# TYPE %s %s\n", name, type);
}

static void prom_labels(rt_prom *p, const char *const *labels, const char *le) {
  int any = (labels && labels[0]) || le;
  if (!any) return;
  prom_raw(p, "{", 1);
  int first = 1;
  for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
    if (!first) prom_raw(p, ",", 1);
    first = 0;
    prom_str(p, labels[i]);
    prom_raw(p, "=\"", 2);
    prom_escaped(p, labels[i + 1], 1);
    prom_raw(p, "\"", 1);
  }
  if (le) {
    if (!first) prom_raw(p, ",", 1);
    prom_fmt(p, "le=\"%s\"", le);
  }
  prom_raw(p, "}", 1);
}

/* The shortest of %.15g / %.17g that reads back as v (0.0145, not 0.014500000000000001). */
static void fmt_double(char *out, size_t n, double v) {
  snprintf(out, n, "%.15g", v);
  if (strtod(out, NULL) != v) snprintf(out, n, "%.17g", v);
}

static void prom_value(rt_prom *p, double v) {
  char tmp[40];
  if (isnan(v)) prom_str(p, " NaN\n");
  else if (isinf(v)) prom_str(p, v > 0 ? " +Inf\n" : " -Inf\n");
  else {
    fmt_double(tmp, sizeof tmp, v);
    prom_fmt(p, " %s\n", tmp);
  }
}

void rt_prom_sample(rt_prom *p, const char *name, const char *const *labels, double value) {
  prom_str(p, name);
  prom_labels(p, labels, NULL);
  prom_value(p, value);
}

void rt_prom_sample_u64(rt_prom *p, const char *name, const char *const *labels, uint64_t value) {
  prom_str(p, name);
  prom_labels(p, labels, NULL);
  prom_fmt(p, " %llu\n", (unsigned long long)value);
}

void rt_prom_histogram(rt_prom *p, const char *name, const char *const *labels, const rt_hist *h, double scale) {
  char bname[160], le[40];
  uint64_t cum = 0;
  snprintf(bname, sizeof bname, "%s_bucket", name);
  for (uint32_t i = 0; i <= h->spec->n; i++) {
    cum += h->bucket[i];
    if (i < h->spec->n) fmt_double(le, sizeof le, (double)h->spec->le[i] / (1.0 / scale));
    else snprintf(le, sizeof le, "+Inf");
    prom_str(p, bname);
    prom_labels(p, labels, le);
    prom_fmt(p, " %llu\n", (unsigned long long)cum);
  }
  snprintf(bname, sizeof bname, "%s_sum", name);
  rt_prom_sample(p, bname, labels, (double)h->sum / (1.0 / scale));
  snprintf(bname, sizeof bname, "%s_count", name);
  rt_prom_sample_u64(p, bname, labels, h->count);
}

/* ---- HTTP request head ------------------------------------------------------------------------ */

static int is_tchar(unsigned char ch) { /* RFC 9110 token characters */
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The next line of buf[*off..end): its bounds without the line end; 0 if no line end yet,
 * -1 for a bare CR or a NUL. */
static int next_line(const char *buf, size_t end, size_t *off, size_t *ls, size_t *le) {
  size_t i = *off;
  for (; i < end; i++) {
    if (buf[i] == '\0') return -1;
    if (buf[i] == '\n') break;
    if (buf[i] == '\r' && (i + 1 >= end || buf[i + 1] != '\n')) {
      if (i + 1 >= end) return 0; /* CR at the end: its LF may follow */
      return -1;
    }
  }
  if (i >= end) return 0;
  *ls = *off;
  *le = (i > *off && buf[i - 1] == '\r') ? i - 1 : i;
  *off = i + 1;
  return 1;
}

static int parse_request_line(const char *s, size_t n, rt_http_request *req) {
  size_t i = 0, m = 0;
  while (i < n && is_tchar((unsigned char)s[i])) {
    if (m + 1 >= sizeof req->method) return RT_HTTP_BAD;
    req->method[m++] = s[i++];
  }
  req->method[m] = '\0';
  if (m == 0 || i >= n || s[i] != ' ') return RT_HTTP_BAD;
  i++;
  size_t t = 0;
  while (i < n && s[i] != ' ') {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7f) return RT_HTTP_BAD;
    if (t >= RT_HTTP_MAX_TARGET) return RT_HTTP_BAD;
    req->target[t++] = s[i++];
  }
  req->target[t] = '\0';
  if (t == 0 || i >= n || s[i] != ' ') return RT_HTTP_BAD;
  i++;
  if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || s[i + 7] < '0' || s[i + 7] > '9') return RT_HTTP_BAD;
  req->minor = s[i + 7] - '0';
  return RT_HTTP_OK;
}

static int header_is(const char *s, size_t n, const char *name) {
  size_t k = strlen(name);
  if (n != k) return 0;
  for (size_t i = 0; i < k; i++) {
    char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
    if (a != name[i]) return 0;
  }
  return 1;
}

static int parse_header(const char *s, size_t n, rt_http_request *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)s[i])) i++;
  if (i == 0 || i >= n || s[i] != ':') return RT_HTTP_BAD;
  size_t name_len = i++;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  size_t vs = i;
  for (; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return RT_HTTP_BAD;
  }
  if (header_is(s, name_len, "transfer-encoding")) req->has_body = 1;
  if (header_is(s, name_len, "content-length")) {
    size_t k = vs;
    int digits = 0, nonzero = 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') {
      if (s[k] != '0') nonzero = 1;
      k++, digits++;
    }
    while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
    if (!digits || k != n) return RT_HTTP_BAD;
    if (nonzero) req->has_body = 1;
  }
  return RT_HTTP_OK;
}

int rt_http_parse(const char *buf, size_t len, rt_http_request *req) {
  memset(req, 0, sizeof *req);
  size_t end = len > RT_HTTP_MAX_REQUEST ? RT_HTTP_MAX_REQUEST : len;
  size_t off = 0, ls, le;
  int r = next_line(buf, end, &off, &ls, &le);
  if (r < 0) return RT_HTTP_BAD;
  if (r == 0) return len >= RT_HTTP_MAX_REQUEST ? RT_HTTP_TOO_LARGE : RT_HTTP_INCOMPLETE;
  if (parse_request_line(buf + ls, le - ls, req) != RT_HTTP_OK) return RT_HTTP_BAD;
  for (;;) {
    r = next_line(buf, end, &off, &ls, &le);
    if (r < 0) return RT_HTTP_BAD;
    if (r == 0) return len >= RT_HTTP_MAX_REQUEST ? RT_HTTP_TOO_LARGE : RT_HTTP_INCOMPLETE;
    if (le == ls) break; /* the blank line */
    if (buf[ls] == ' ' || buf[ls] == '\t') return RT_HTTP_BAD; /* obsolete line folding */
    if (parse_header(buf + ls, le - ls, req) != RT_HTTP_OK) return RT_HTTP_BAD;
  }
  req->head_len = off;
  return RT_HTTP_OK;
}
