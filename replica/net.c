/* Frames, bounded queues and framed TCP connections with coalesced writes. */
#include "replica/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bft_err.h"

/* ---- frames ---------------------------------------------------------------------------------- */

rt_frame *rt_frame_new(uint8_t kind, uint32_t sender, const uint8_t *body, uint32_t len) {
  rt_frame *f = malloc(sizeof *f + WIRE_FRAME_HEADER_LEN + (size_t)len);
  if (!f) return NULL;
  f->refs = 1;
  f->len = WIRE_FRAME_HEADER_LEN + len;
  wire_frame_header_encode(f->data, kind, sender, len);
  if (len) memcpy(f->data + WIRE_FRAME_HEADER_LEN, body, len);
  return f;
}

void rt_frame_ref(rt_frame *f) { f->refs++; }

void rt_frame_unref(rt_frame *f) {
  if (f && --f->refs == 0) free(f);
}

/* ---- queues ---------------------------------------------------------------------------------- */

void rt_outq_init(rt_outq *q, uint32_t max_frames, uint64_t max_bytes) {
  memset(q, 0, sizeof *q);
  q->max_frames = max_frames;
  q->max_bytes = max_bytes;
}

void rt_outq_free(rt_outq *q) {
  rt_frame *f;
  while ((f = rt_outq_pop(q)) != NULL) rt_frame_unref(f);
  free(q->ring);
  q->ring = NULL;
  q->cap = 0;
}

rt_frame *rt_outq_pop(rt_outq *q) {
  if (!q->count) return NULL;
  rt_frame *f = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->count--;
  q->bytes -= f->len;
  if (q->shared) *q->shared -= f->len;
  return f;
}

static int outq_grow(rt_outq *q) {
  uint32_t ncap = q->cap ? q->cap * 2 : 64;
  if (ncap > q->max_frames) ncap = q->max_frames;
  rt_frame **nr = malloc(ncap * sizeof *nr);
  if (!nr) return BFT_E_NOMEM;
  for (uint32_t i = 0; i < q->count; i++) nr[i] = q->ring[(q->head + i) % q->cap];
  free(q->ring);
  q->ring = nr;
  q->cap = ncap;
  q->head = 0;
  return 0;
}

int rt_outq_push(rt_outq *q, rt_frame *f, int drop_oldest, uint64_t *dropped) {
  if (f->len > q->max_bytes) return BFT_E_TOO_LARGE;
  if (q->shared && *q->shared + f->len > q->shared_max && !drop_oldest) return BFT_E_FULL;
  while (q->count >= q->max_frames || q->bytes + f->len > q->max_bytes) {
    if (!drop_oldest) return BFT_E_FULL;
    rt_frame_unref(rt_outq_pop(q));
    if (dropped) (*dropped)++;
  }
  if (q->count == q->cap && outq_grow(q) != 0) return BFT_E_NOMEM;
  rt_frame_ref(f);
  q->ring[(q->head + q->count) % q->cap] = f;
  q->count++;
  q->bytes += f->len;
  if (q->shared) *q->shared += f->len;
  return 0;
}

/* ---- connections ------------------------------------------------------------------------------ */

rt_conn *rt_conn_new(uv_loop_t *loop, const rt_conn_handler *h, void *owner, uint64_t id,
                     uint32_t max_frames, uint64_t max_bytes) {
  rt_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (uv_tcp_init(loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  c->h = h;
  c->owner = owner;
  c->id = id;
  c->max_body = RT_CLIENT_MAX_BODY;
  c->wmax = RT_CLIENT_WRITE_MAX_BUFS;
  c->last_frame_ms = uv_now(loop);
  snprintf(c->addr, sizeof c->addr, "?");
  rt_outq_init(&c->q, max_frames, max_bytes);
  return c;
}

void rt_conn_describe(rt_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[48] = "?";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
  c->sa = ss;
  int port = 0;
  if (ss.ss_family == AF_INET) {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  snprintf(c->addr, sizeof c->addr, "%s:%d", ip, port);
}

static void on_handle_closed(uv_handle_t *hd) {
  rt_conn *c = hd->data;
  if (c->h->on_freed) c->h->on_freed(c);
  for (uint32_t i = 0; i < c->ninflight; i++) rt_frame_unref(c->inflight[i]);
  rt_outq_free(&c->q);
  free(c->rbuf);
  free(c->inflight);
  free(c->bufs);
  free(c);
}

void rt_conn_close(rt_conn *c, const char *why) {
  if (c->closing) return;
  c->closing = 1;
  if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
  c->h->on_closing(c, why);
  c->extra = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Room for the next read: the shared buffer when no frame is partly received; else rbuf grown
 * by at most RT_READ_CHUNK beyond what arrived, and never beyond the frame being assembled. */
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  rt_conn *c = hd->data;
  if (c->rlen == 0 && c->spare) {
    c->in_spare = 1;
    *buf = uv_buf_init((char *)c->spare, RT_READ_CHUNK);
    return;
  }
  c->in_spare = 0;
  size_t need = c->rlen + RT_READ_CHUNK;
  if (c->rlen >= WIRE_FRAME_HEADER_LEN) {
    wire_frame_header h;
    if (wire_frame_header_decode(c->rbuf, c->rlen, &h) == 0 && h.body_len <= c->max_body) {
      size_t frame = WIRE_FRAME_HEADER_LEN + (size_t)h.body_len;
      /* An authenticated peer (a larger body limit) gets the whole frame at once; anyone else
       * grows with what arrives. */
      if (frame > c->rlen && (frame < need || c->max_body > RT_CLIENT_MAX_BODY)) need = frame;
    }
  }
  if (need > c->rcap) {
    uint8_t *nb = realloc(c->rbuf, need);
    if (!nb) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS; we close */
      return;
    }
    c->rbuf = nb;
    c->rcap = need;
  }
  *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* Hand every complete frame in p[0..len) to the owner, checking each header before waiting for
 * its body; returns the bytes consumed (the rest is a partial frame). */
static size_t parse_frames(rt_conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  while (!c->closing && len - off >= WIRE_FRAME_HEADER_LEN) {
    wire_frame_header h;
    int rc = wire_frame_header_decode(p + off, len - off, &h);
    if (rc) {
      if (c->h->on_violation) c->h->on_violation(c, bft_strerror(rc));
      rt_conn_close(c, bft_strerror(rc));
      return off;
    }
    if (h.body_len > c->max_body) {
      if (c->h->on_violation) c->h->on_violation(c, "frame body over the limit for this connection");
      rt_conn_close(c, "frame body over the limit for this connection");
      return off;
    }
    size_t frame = WIRE_FRAME_HEADER_LEN + (size_t)h.body_len;
    if (len - off < frame) break;
    c->frames_in++;
    c->last_frame_ms = uv_now(c->tcp.loop);
    if (c->h->on_frame(c, &h, p + off + WIRE_FRAME_HEADER_LEN) != 0) {
      rt_conn_close(c, "protocol error");
      return off;
    }
    off += frame;
  }
  return off;
}

static void keep_partial(rt_conn *c, const uint8_t *p, size_t n) {
  if (n > c->rcap) {
    size_t cap = n < WIRE_FRAME_HEADER_LEN + 4096 ? WIRE_FRAME_HEADER_LEN + 4096 : n;
    uint8_t *nb = realloc(c->rbuf, cap);
    if (!nb) return rt_conn_close(c, "out of memory");
    c->rbuf = nb;
    c->rcap = cap;
  }
  memcpy(c->rbuf, p, n);
  c->rlen = n;
  c->frame_start_ms = uv_now(c->tcp.loop);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  rt_conn *c = s->data;
  int spare = c->in_spare;
  c->in_spare = 0;
  if (nread < 0) {
    rt_conn_close(c, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
    return;
  }
  if (nread == 0) return;
  c->bytes_in += (uint64_t)nread;
  if (spare) {
    size_t off = parse_frames(c, c->spare, (size_t)nread);
    if (!c->closing && off < (size_t)nread) keep_partial(c, c->spare + off, (size_t)nread - off);
    return;
  }
  size_t before = c->rlen;
  c->rlen += (size_t)nread;
  size_t off = parse_frames(c, c->rbuf, c->rlen);
  if (c->closing) return;
  if (off) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (c->rlen) c->frame_start_ms = uv_now(c->tcp.loop);
  } else if (before == 0) {
    c->frame_start_ms = uv_now(c->tcp.loop);
  }
  if (c->rlen == 0 && (c->spare || c->rcap > 4 * RT_READ_CHUNK)) { /* idle: give the buffer back */
    free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
  }
}

int rt_conn_start(rt_conn *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, RT_KEEPALIVE_S);
  rt_conn_describe(c);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc == 0) c->reading = 1;
  return rc;
}

int rt_conn_send(rt_conn *c, rt_frame *f) {
  if (c->closing) return BFT_E_STATE;
  int rc = rt_outq_push(&c->q, f, 0, NULL);
  if (rc) return rc;
  if (!c->writing && !c->dirty && c->h->on_dirty) c->h->on_dirty(c);
  return 0;
}

static void on_write(uv_write_t *req, int status) {
  rt_conn *c = req->data;
  for (uint32_t i = 0; i < c->ninflight; i++) rt_frame_unref(c->inflight[i]);
  c->ninflight = 0;
  c->writing = 0;
  if (c->closing) return;
  if (status < 0) {
    rt_conn_close(c, uv_strerror(status));
    return;
  }
  if ((c->q.count || (c->extra && c->extra->count)) && !c->dirty && c->h->on_dirty) c->h->on_dirty(c);
}

/* The write arrays, allocated at the first write (a connection that never writes costs none). */
static int ensure_wbufs(rt_conn *c) {
  uint32_t want = c->wmax ? c->wmax : 1;
  if (want > RT_WRITE_MAX_BUFS) want = RT_WRITE_MAX_BUFS;
  if (c->wcap >= want) return 0;
  rt_frame **fi = realloc(c->inflight, want * sizeof *fi);
  if (!fi) return BFT_E_NOMEM;
  c->inflight = fi;
  uv_buf_t *b = realloc(c->bufs, want * sizeof *b);
  if (!b) return BFT_E_NOMEM;
  c->bufs = b;
  c->wcap = want;
  return 0;
}

void rt_conn_flush(rt_conn *c) {
  if (c->writing || c->closing) return;
  if (ensure_wbufs(c) != 0) return rt_conn_close(c, "out of memory");
  uint32_t n = 0;
  uint64_t bytes = 0;
  while (n < c->wcap && bytes < RT_WRITE_MAX_BYTES) {
    rt_frame *f = rt_outq_pop(&c->q);
    if (!f && c->extra) f = rt_outq_pop(c->extra);
    if (!f) break;
    c->inflight[n] = f;
    c->bufs[n] = uv_buf_init((char *)f->data, f->len);
    bytes += f->len;
    n++;
  }
  if (!n) return;
  c->ninflight = n;
  c->writing = 1;
  c->wreq.data = c;
  c->frames_out += n;
  c->bytes_out += bytes;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, n, on_write);
  if (rc) {
    for (uint32_t i = 0; i < n; i++) rt_frame_unref(c->inflight[i]);
    c->ninflight = 0;
    c->writing = 0;
    rt_conn_close(c, uv_strerror(rc));
  }
}
