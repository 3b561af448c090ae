/* Replica metrics: plain counters and fixed-bucket histograms that the runtime bumps on its hot
 * paths (no allocation, no formatting, no locks: one loop thread), the Prometheus text
 * exposition writer that formats them only when /metrics is scraped, and the minimal HTTP/1.1
 * request parser of the metrics endpoint. Pure C, no libuv: unit tests and fuzzers use it as is.
 * The endpoint itself (libuv) is metrics_http.c; what a replica exposes, metrics_render.c. */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- histograms ----------------------------------------------------------------------------- */

#define RT_HIST_MAX_BUCKETS 20

/* Upper bounds (inclusive, in the histogram's base unit: microseconds or requests), ascending;
 * an implicit +Inf bucket follows. */
typedef struct rt_hist_spec {
  uint32_t n;
  uint64_t le[RT_HIST_MAX_BUCKETS];
} rt_hist_spec;

typedef struct rt_hist {
  const rt_hist_spec *spec;
  uint64_t count, sum;
  uint64_t bucket[RT_HIST_MAX_BUCKETS + 1]; /* not cumulative; last = above every bound */
} rt_hist;

extern const rt_hist_spec RT_HIST_LATENCY_US; /* 50 us .. 10 s */
extern const rt_hist_spec RT_HIST_BATCH;      /* 0, 1, 2, 4 .. 512 requests */

void rt_hist_init(rt_hist *h, const rt_hist_spec *spec);
void rt_hist_observe(rt_hist *h, uint64_t v);

/* ---- what the runtime counts ------------------------------------------------------------------ */

typedef struct rt_metrics {
  /* Monotonic microseconds (the replica lends uv_hrtime / 1000; NULL reads as 0). */
  uint64_t (*now_us)(void *ctx);
  void *clock_ctx;
  /* Phases of a request on this replica. */
  rt_hist req_to_commit;  /* request admitted to the pool .. its batch delivered by the engine */
  rt_hist commit_to_exec; /* batch delivered .. executed and appended to the ledger */
  rt_hist batch_size;     /* requests executed per committed block */
  rt_hist fsync_wal, fsync_ledger; /* one group-commit fdatasync each */
  /* Admission time of each client's newest pooled request (client index of the cluster file). */
  uint32_t nclients;
  uint64_t *admit_us, *admit_seq;
  /* Frames by wire kind (peers and clients). */
  uint64_t frames_in[256], bytes_in[256], frames_out[256], bytes_out[256];
  /* The endpoint's own counters. */
  uint64_t scrapes, http_bad, http_refused, status_served, status_refused;
} rt_metrics;

/* 0 or BFT_E_NOMEM. */
int rt_metrics_init(rt_metrics *m, uint32_t nclients);
void rt_metrics_free(rt_metrics *m);
uint64_t rt_metrics_now(const rt_metrics *m);
/* A client's request entered the pool. */
void rt_metrics_admitted(rt_metrics *m, uint32_t client, uint64_t seq);
/* A committed batch (delivered at t_commit_us) executed: n requests of these clients/seqs. */
void rt_metrics_executed(rt_metrics *m, uint64_t t_commit_us, uint32_t n, const uint32_t *client,
                         const uint64_t *seq);
static inline void rt_metrics_frame_in(rt_metrics *m, uint8_t kind, uint32_t body_len) {
  m->frames_in[kind]++;
  m->bytes_in[kind] += body_len;
}
static inline void rt_metrics_frame_out(rt_metrics *m, uint8_t kind, uint32_t body_len) {
  m->frames_out[kind]++;
  m->bytes_out[kind] += body_len;
}

/* ---- Prometheus text exposition format (version 0.0.4) ------------------------------------ */

/* Output buffer with a sticky overflow flag: the caller sizes it once (RT_PROM_MAX_BYTES). */
#define RT_PROM_MAX_BYTES (512u * 1024u)
typedef struct rt_prom {
  char *buf;
  size_t cap, len;
  int overflow;
} rt_prom;

void rt_prom_init(rt_prom *p, char *buf, size_t cap);
/* # HELP and # TYPE lines of a family; type is "counter", "gauge" or "histogram". */
void rt_prom_family(rt_prom *p, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. labels is NULL or "k1", "v1", "k2", "v2", ..., NULL; values
 * are escaped (backslash, double quote, newline). */
void rt_prom_sample(rt_prom *p, const char *name, const char *const *labels, double value);
void rt_prom_sample_u64(rt_prom *p, const char *name, const char *const *labels, uint64_t value);
/* name_bucket{labels,le=".."} (cumulative, ending with +Inf), name_sum, name_count; bucket
 * bounds and the sum are multiplied by scale (1e-6 turns microseconds into seconds). */
void rt_prom_histogram(rt_prom *p, const char *name, const char *const *labels, const rt_hist *h, double scale);

/* ---- HTTP/1.1 request head parser ----------------------------------------------------------- */

#define RT_HTTP_MAX_REQUEST 4096u /* request line and headers; larger is refused (431) */
#define RT_HTTP_MAX_TARGET 256u

enum rt_http_result {
  RT_HTTP_INCOMPLETE = 0, /* no blank line yet: read more */
  RT_HTTP_OK = 1,         /* a well-formed request head */
  RT_HTTP_BAD = -1,       /* malformed: 400 */
  RT_HTTP_TOO_LARGE = -2  /* head over RT_HTTP_MAX_REQUEST: 431 */
};

typedef struct rt_http_request {
  char method[16];
  char target[RT_HTTP_MAX_TARGET + 1];
  int minor;      /* HTTP/1.minor */
  size_t head_len; /* bytes up to and including the blank line */
  int has_body;   /* Content-Length > 0 or Transfer-Encoding present (refused by the server) */
} rt_http_request;

/* Parse the head of one request from buf[0..len). Strict: request line "METHOD SP target SP
 * HTTP/1.x CRLF", header lines "name: value CRLF" with token names and no control characters,
 * then CRLF. Bare LF line ends are accepted (as most servers do); anything else is RT_HTTP_BAD. */
int rt_http_parse(const char *buf, size_t len, rt_http_request *req);

#endif
