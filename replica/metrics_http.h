/* The replica's /metrics endpoint: a minimal HTTP/1.1 server on the replica's own libuv loop.
 * One request per connection (answered with Connection: close), GET /metrics only; a
 * malformed request gets 400, an oversized head 431, and the connection is closed. Bounded:
 * RT_METRICS_MAX_CONNS connections at once (more are closed at accept), RT_HTTP_MAX_REQUEST
 * bytes of request head, RT_METRICS_CONN_TIMEOUT_MS per connection from accept to the end of
 * the answer. Nothing here touches the replica's state except reading it to render. */
#ifndef RT_METRICS_HTTP_H
#define RT_METRICS_HTTP_H

#include <uv.h>

#include "replica/metrics.h"

#define RT_METRICS_MAX_CONNS 8u
#define RT_METRICS_CONN_TIMEOUT_MS 5000u

/* Fill p with the exposition (called once per scrape). */
typedef void (*rt_metrics_render_fn)(void *ctx, rt_prom *p);

typedef struct rt_http_conn rt_http_conn;

typedef struct rt_metrics_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listening;
  rt_metrics *m;          /* scrape and refusal counters */
  rt_metrics_render_fn render;
  void *ctx;
  char *page;             /* RT_PROM_MAX_BYTES, rendered into at each scrape */
  rt_http_conn *conns;    /* open connections */
  uint32_t nconns;
} rt_metrics_server;

/* Parse "HOST:PORT" (IPv4, [IPv6] or a name) into host/port: 0 or -1. */
int rt_metrics_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Listen on addr ("HOST:PORT"). 0, or -1 with one line in err. */
int rt_metrics_server_open(rt_metrics_server *s, uv_loop_t *loop, const char *addr, rt_metrics *m,
                           rt_metrics_render_fn render, void *ctx, char *err, size_t errlen);
/* Stop listening and close every connection (their handles close on the loop). */
void rt_metrics_server_close(rt_metrics_server *s);
/* Free what remains once the loop has run the close callbacks. */
void rt_metrics_server_free(rt_metrics_server *s);

#endif
