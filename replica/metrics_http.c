/* The /metrics endpoint on the replica's libuv loop (see metrics_http.h for its bounds). */
#include "replica/metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_http_conn {
  rt_metrics_server *s;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  int open_handles; /* tcp and timer: freed when both closed */
  int closing, answered;
  size_t len;
  char req[RT_HTTP_MAX_REQUEST];
  char *resp;
  rt_http_conn *prev, *next;
};

int rt_metrics_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port) {
  const char *colon;
  size_t hl;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':') return -1;
    hl = (size_t)(rb - s - 1);
    s++;
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return -1;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen) return -1;
  memcpy(host, s, hl);
  host[hl] = '\0';
  char *end;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (errno || *end || colon[1] == '\0' || colon[1] == '-' || colon[1] == '+' || p == 0 || p > 65535) return -1;
  *port = (uint16_t)p;
  return 0;
}

static void conn_freed(uv_handle_t *h) {
  rt_http_conn *c = h->data;
  if (--c->open_handles > 0) return;
  free(c->resp);
  free(c);
}

static void conn_close(rt_http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  rt_metrics_server *s = c->s;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  uv_close((uv_handle_t *)&c->timer, conn_freed);
  uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void on_written(uv_write_t *req, int status) {
  rt_http_conn *c = req->data;
  if (c->closing) return;
  /* Half-close so the answer is delivered in full even if the client sent more than we read. */
  if (status < 0 || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_close(c);
}

static void respond(rt_http_conn *c, int code, const char *reason, const char *ctype, const char *body,
                    size_t body_len) {
  c->answered = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
                    reason, ctype, body_len);
  c->resp = malloc((size_t)hl + body_len);
  if (!c->resp) {
    conn_close(c);
    return;
  }
  memcpy(c->resp, head, (size_t)hl);
  if (body_len) memcpy(c->resp + hl, body, body_len);
  uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hl + body_len));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) conn_close(c);
}

static void respond_text(rt_http_conn *c, int code, const char *reason, const char *msg) {
  respond(c, code, reason, "text/plain; charset=utf-8", msg, strlen(msg));
}

static void handle_request(rt_http_conn *c, const rt_http_request *rq) {
  rt_metrics_server *s = c->s;
  if (rq->has_body) {
    s->m->http_bad++;
    respond_text(c, 400, "Bad Request", "a request body is not accepted\n");
    return;
  }
  if (strcmp(rq->method, "GET") != 0) {
    respond_text(c, 405, "Method Not Allowed", "only GET /metrics\n");
    return;
  }
  size_t tl = strcspn(rq->target, "?");
  if (tl != 8 || strncmp(rq->target, "/metrics", 8) != 0) {
    respond_text(c, 404, "Not Found", "only GET /metrics\n");
    return;
  }
  s->m->scrapes++;
  rt_prom p;
  rt_prom_init(&p, s->page, RT_PROM_MAX_BYTES);
  s->render(s->ctx, &p);
  if (p.overflow) {
    respond_text(c, 500, "Internal Server Error", "metrics page over its size bound\n");
    return;
  }
  respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", p.buf, p.len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rt_http_conn *c = h->data;
  (void)suggested;
  buf->base = c->req + c->len;
  buf->len = sizeof c->req - c->len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  rt_http_conn *c = st->data;
  (void)buf;
  if (c->closing || c->answered) return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  rt_http_request rq;
  int r = rt_http_parse(c->req, c->len, &rq);
  if (r == RT_HTTP_INCOMPLETE && c->len < sizeof c->req) return;
  if (r == RT_HTTP_OK) {
    handle_request(c, &rq);
  } else if (r == RT_HTTP_TOO_LARGE || r == RT_HTTP_INCOMPLETE) {
    c->s->m->http_bad++;
    respond_text(c, 431, "Request Header Fields Too Large", "request head too large\n");
  } else {
    c->s->m->http_bad++;
    respond_text(c, 400, "Bad Request", "malformed request\n");
  }
}

static void on_refused_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  rt_metrics_server *s = server->data;
  if (status < 0) return;
  if (s->nconns >= RT_METRICS_MAX_CONNS) { /* accept and close at once: the backlog stays empty */
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(s->loop, t);
    s->m->http_refused++;
    /* Accepted only to be closed: a failed accept leaves nothing to close but the handle. */
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    return;
  }
  rt_http_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c->sreq.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, RT_METRICS_CONN_TIMEOUT_MS, 0);
}

int rt_metrics_server_open(rt_metrics_server *s, uv_loop_t *loop, const char *addr, rt_metrics *m,
                           rt_metrics_render_fn render, void *ctx, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->m = m;
  s->render = render;
  s->ctx = ctx;
  char host[256];
  uint16_t port;
  if (rt_metrics_parse_addr(addr, host, sizeof host, &port) != 0) {
    snprintf(err, errlen, "--metrics needs HOST:PORT, got '%s'", addr);
    return -1;
  }
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) {
    snprintf(err, errlen, "cannot resolve metrics address %s", host);
    return -1;
  }
  s->page = malloc(RT_PROM_MAX_BYTES);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listening = 1;
  int rc = s->page ? uv_tcp_bind(&s->listener, ai->ai_addr, 0) : UV_ENOMEM;
  freeaddrinfo(ai);
  if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 16, on_connection);
  if (rc) {
    snprintf(err, errlen, "cannot serve metrics on %s: %s", addr, uv_strerror(rc));
    return -1;
  }
  return 0;
}

void rt_metrics_server_close(rt_metrics_server *s) {
  if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener)) uv_close((uv_handle_t *)&s->listener, NULL);
  while (s->conns) conn_close(s->conns);
}

void rt_metrics_server_free(rt_metrics_server *s) {
  free(s->page);
  s->page = NULL;
}
