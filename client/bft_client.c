/* The asynchronous client on a caller's libuv loop: one TCP connection per replica (reconnected
 * with backoff), one signed operation in flight sent to every replica and retransmitted to all
 * with a doubling interval, completion on f+1 matching verified replies, and ledger reads that
 * move on to another replica when one fails. Also the blocking wrapper (private loop).
 *
 * The connections belong to a bft_client_mux: a handle opened with bft_client_open has a
 * private one; handles opened with bft_client_open_mux share one, so many clients (keys) use one
 * connection per replica. Replies are routed to their handle by the client key they carry.
 * On a shared mux frames are queued per connection and written once per loop iteration (a
 * uv_prepare handle), so the requests a loop iteration produces leave in one send per replica.
 *
 * Writes bypass uv_write: libuv writes with write(2), and a write to a connection the replica
 * has closed raises SIGPIPE, which kills a process that did not ignore it. A library must not
 * die of that nor change the caller's signal dispositions, so frames go out with
 * send(MSG_NOSIGNAL) and a closed connection is an EPIPE/ECONNRESET like any other error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "client/bft_client.h"
#include "protocols/ledger.h"

#define CLIENT_RBUF_INITIAL (64u * 1024u)
/* A reply frame never exceeds this; a larger REPLY header is a protocol error. */
#define CLIENT_MAX_REPLY_FRAME (BFT_MAX_REPLY_BYTES + 256u)
/* Unknown frame kinds are skipped when small, so a newer replica does not break an older client. */
#define CLIENT_MAX_OTHER_FRAME (64u * 1024u)
/* Bytes queued on one connection per handle using it when the socket buffer is full (eight
 * maximal requests); beyond this the replica is not reading and the next retransmission will
 * try again, so a dead peer cannot make the client's memory grow. */
#define CLIENT_MAX_PENDING_BYTES (8u * (WIRE_FRAME_HEADER_LEN + BFT_MAX_REQUEST_BYTES))
/* Retry of a queued write while the socket buffer is full (no libuv write watcher: see above). */
#define CLIENT_WRITE_RETRY_FIRST_MS 1
#define CLIENT_WRITE_RETRY_MAX_MS 50
/* A connection's queue is written at once, not at the end of the loop iteration, beyond this. */
#define CLIENT_FLUSH_NOW_BYTES (256u * 1024u)
#define CLIENT_RECONNECT_FIRST_MS 50
#define CLIENT_LEDGER_GET_LEN 12

enum { CONN_IDLE = 0, CONN_CONNECTING, CONN_CONNECTED, CONN_CLOSING };

typedef struct bft_client_conn {
  struct bft_client_mux *m;
  uint32_t id;
  int state;
  int have_addr;
  struct sockaddr_storage addr;
  uv_tcp_t tcp;
  uv_connect_t creq;
  /* connect timeout while CONNECTING, write retry while CONNECTED, reconnect backoff while IDLE */
  uv_timer_t timer;
  uint32_t backoff_ms;
  uint8_t *rbuf; /* frames being read; grows up to one maximal frame, shrinks when empty */
  size_t rlen, rcap;
  uint8_t *wbuf; /* bytes the socket did not take yet (the rest of a frame, then whole ones) */
  size_t wlen, wcap;
  uint32_t wretry_ms;
  int dirty; /* bytes were queued in this loop iteration: written by the mux's flush */
  char last_error[80];
} bft_client_conn;

typedef struct bft_client_ledger {
  int active, fixed, sent, target_known;
  uint32_t cur, failures; /* replica asked; consecutive failures without progress */
  uint64_t next, to, target, head, deadline;
  bft_client_block_cb block_cb;
  bft_client_ledger_cb done_cb;
  void *arg;
  char last_error[128];
} bft_client_ledger;

struct bft_client {
  uv_loop_t *loop;
  const bft_cluster *cluster;
  bft_keypair kp;
  bft_client_options opt;
  uint32_t n;
  bft_session_mac *macs; /* session i: K(replica i, this client); NULL with signed replies */
  struct bft_client_mux *m; /* the connections this handle uses */
  int own_mux;              /* m is private to this handle (bft_client_open) */
  uint64_t last_seq;
  /* the operation in flight */
  int op_active;
  bft_client_cb op_cb;
  void *op_arg;
  uint8_t *frame; /* header + signed request, kept for retransmissions */
  uint32_t frame_len;
  uint64_t op_seq, op_deadline;
  uint32_t rt_interval;
  uv_timer_t op_timer;
  bft_client_quorum q;
  uint32_t rejecters;
  char reject_reason[96];
  bft_client_ledger lg;
  uv_timer_t lg_timer;
  bft_client_stats st;
  int closing;
  uint32_t open_handles; /* freed when the last one closes (a private mux counts as one) */
  void (*closed_cb)(void *);
  void *closed_arg;
};

/* Connections to every replica, shared by the handles registered on it (members), which are
 * found by their public key when a reply arrives. */
struct bft_client_mux {
  uv_loop_t *loop;
  const bft_cluster *cluster;
  uint32_t n;
  uint32_t connect_timeout_ms, reconnect_max_ms;
  bft_client_conn conn[BFT_MAX_REPLICAS];
  bft_client **members; /* dense, for iteration */
  uint32_t nmembers, members_cap;
  bft_client **map; /* open addressing by key, rebuilt when a member leaves */
  uint32_t map_cap;
  bft_client *ledger; /* the member whose ledger read is in progress (one per mux) */
  uv_prepare_t flush;
  int coalesce; /* shared: frames leave at the end of the loop iteration (private: at once) */
  int flush_armed;
  uint64_t connects, disconnects;
  uint64_t unrouted; /* frames for no member (a key not here, ledger blocks nobody reads) */
  int closing;
  uint32_t open_handles;
  void (*closed_cb)(void *);
  void *closed_arg;
};

void bft_client_options_default(bft_client_options *o) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = 10000;
  o->retransmit_ms = 500;
  o->retransmit_max_ms = 4000;
  o->connect_timeout_ms = 2000;
  o->reconnect_max_ms = 2000;
  o->ledger_request_ms = 3000;
}

static uint64_t client_wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The handle's memory, its key and MAC keys wiped first. */
static void client_free(bft_client *c) {
  bft_keypair_wipe(&c->kp);
  if (c->macs) sodium_memzero(c->macs, (size_t)c->n * sizeof *c->macs);
  free(c->macs);
  free(c->frame);
  free(c);
}

static void client_maybe_free(bft_client *c) {
  if (!c->closing || c->open_handles) return;
  void (*cb)(void *) = c->closed_cb;
  void *arg = c->closed_arg;
  client_free(c);
  if (cb) cb(arg);
}

static void on_handle_closed(uv_handle_t *h) {
  bft_client *c = h->data;
  c->open_handles--;
  client_maybe_free(c);
}

/* ---- members of a mux -------------------------------------------------------------------- */

static uint32_t key_slot(const uint8_t pk[BFT_PK_LEN], uint32_t mask) {
  /* Public keys are uniformly random: any 4 bytes spread them. */
  uint32_t h = (uint32_t)pk[0] | (uint32_t)pk[1] << 8 | (uint32_t)pk[2] << 16 | (uint32_t)pk[3] << 24;
  return h & mask;
}

static bft_client *mux_find(const bft_client_mux *m, const uint8_t pk[BFT_PK_LEN]) {
  if (!m->map_cap) return NULL;
  uint32_t mask = m->map_cap - 1;
  for (uint32_t j = key_slot(pk, mask);; j = (j + 1) & mask) {
    bft_client *c = m->map[j];
    if (!c || memcmp(c->kp.pk, pk, BFT_PK_LEN) == 0) return c;
  }
}

/* Rebuild the key map with room for `want` members (at most half full). 0 or BFT_E_NOMEM. */
static int mux_rehash(bft_client_mux *m, uint32_t want) {
  uint32_t cap = m->map_cap ? m->map_cap : 16;
  while (cap < 2 * want) cap *= 2;
  if (cap != m->map_cap) {
    bft_client **nm = malloc(cap * sizeof *nm);
    if (!nm) return BFT_E_NOMEM;
    free(m->map);
    m->map = nm;
    m->map_cap = cap;
  }
  memset(m->map, 0, m->map_cap * sizeof *m->map);
  for (uint32_t i = 0; i < m->nmembers; i++) {
    uint32_t j = key_slot(m->members[i]->kp.pk, m->map_cap - 1);
    while (m->map[j]) j = (j + 1) & (m->map_cap - 1);
    m->map[j] = m->members[i];
  }
  return 0;
}

/* 0, BFT_E_STATE (the mux is closing, or a member already uses this key: the replicas would
 * take one's requests for the other's), or BFT_E_NOMEM. */
static int mux_join(bft_client_mux *m, bft_client *c) {
  if (m->closing || mux_find(m, c->kp.pk)) return BFT_E_STATE;
  if (m->nmembers == m->members_cap) {
    uint32_t cap = m->members_cap ? 2 * m->members_cap : 4;
    bft_client **nm = realloc(m->members, cap * sizeof *nm);
    if (!nm) return BFT_E_NOMEM;
    m->members = nm;
    m->members_cap = cap;
  }
  if (2 * (m->nmembers + 1) > m->map_cap && mux_rehash(m, m->nmembers + 1) != 0) return BFT_E_NOMEM;
  m->members[m->nmembers++] = c;
  uint32_t j = key_slot(c->kp.pk, m->map_cap - 1);
  while (m->map[j]) j = (j + 1) & (m->map_cap - 1);
  m->map[j] = c;
  c->m = m;
  return 0;
}

static void mux_leave(bft_client_mux *m, bft_client *c) {
  for (uint32_t i = 0; i < m->nmembers; i++)
    if (m->members[i] == c) {
      m->members[i] = m->members[--m->nmembers];
      break;
    }
  if (m->ledger == c) m->ledger = NULL;
  (void)mux_rehash(m, m->nmembers); /* same capacity: cannot fail */
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_start(bft_client_conn *k);
static void conn_drop(bft_client_conn *k, const char *why);
static void op_send_to(bft_client *c, bft_client_conn *k);
static void lg_send(bft_client *c);
static void lg_failed(bft_client *c, const char *why, int bad_answer);
static void handle_frame(bft_client_conn *k, uint8_t kind, const uint8_t *body, uint32_t len);
static void conn_flush(bft_client_conn *k);
static void mux_maybe_free(bft_client_mux *m);

static void conn_timer_cb(uv_timer_t *t) {
  bft_client_conn *k = t->data;
  if (k->m->closing) return;
  if (k->state == CONN_IDLE) {
    conn_start(k);
  } else if (k->state == CONN_CONNECTED) {
    conn_flush(k);
  } else if (k->state == CONN_CONNECTING) {
    char why[64];
    snprintf(why, sizeof why, "connect timed out after %u ms", k->m->connect_timeout_ms);
    conn_drop(k, why);
  }
}

static void on_tcp_closed(uv_handle_t *h) {
  bft_client_conn *k = h->data;
  bft_client_mux *m = k->m;
  k->state = CONN_IDLE;
  k->rlen = 0;
  k->wlen = 0;
  m->open_handles--;
  if (m->closing) {
    mux_maybe_free(m);
    return;
  }
  /* Back off before reconnecting, so a replica that is down costs one connect attempt per
   * reconnect_max_ms at most rather than a busy loop. */
  uv_timer_start(&k->timer, conn_timer_cb, k->backoff_ms, 0);
  uint32_t next = k->backoff_ms * 2;
  k->backoff_ms = next > m->reconnect_max_ms ? m->reconnect_max_ms : next;
}

static void conn_drop(bft_client_conn *k, const char *why) {
  bft_client_mux *m = k->m;
  if (why) snprintf(k->last_error, sizeof k->last_error, "%s", why);
  if (k->state != CONN_CONNECTING && k->state != CONN_CONNECTED) return;
  if (k->state == CONN_CONNECTED) m->disconnects++;
  k->state = CONN_CLOSING;
  k->rlen = 0;
  k->wlen = 0; /* a frame cut short dies with its connection */
  k->dirty = 0;
  uv_timer_stop(&k->timer);
  uv_close((uv_handle_t *)&k->tcp, on_tcp_closed);
  bft_client *lc = m->ledger;
  if (lc && lc->lg.active && lc->lg.cur == k->id) {
    char line[128];
    snprintf(line, sizeof line, "replica %u: %s", k->id, k->last_error);
    lg_failed(lc, line, 0);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  bft_client_conn *k = h->data;
  (void)suggested;
  if (!k->rbuf) {
    k->rbuf = malloc(CLIENT_RBUF_INITIAL);
    k->rcap = k->rbuf ? CLIENT_RBUF_INITIAL : 0;
  }
  buf->base = k->rbuf ? (char *)k->rbuf + k->rlen : NULL;
  buf->len = k->rbuf ? k->rcap - k->rlen : 0; /* 0 makes libuv report UV_ENOBUFS */
}

/* Largest body accepted for a frame kind from a replica. */
static uint32_t max_body_for(uint8_t kind) {
  if (kind == WIRE_KIND_REPLY) return CLIENT_MAX_REPLY_FRAME;
  if (kind == WIRE_KIND_LEDGER_BLOCKS) return WIRE_FRAME_MAX_BODY;
  return CLIENT_MAX_OTHER_FRAME;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  bft_client_conn *k = s->data;
  (void)buf;
  if (nread < 0) {
    conn_drop(k, nread == UV_EOF ? "connection closed by the replica" : uv_strerror((int)nread));
    return;
  }
  if (k->state != CONN_CONNECTED) return;
  k->rlen += (size_t)nread;
  size_t pos = 0;
  while (k->state == CONN_CONNECTED && k->rlen - pos >= WIRE_FRAME_HEADER_LEN) {
    wire_frame_header h;
    int rc = wire_frame_header_decode(k->rbuf + pos, k->rlen - pos, &h);
    if (rc == 0 && h.body_len > max_body_for(h.kind)) rc = BFT_E_TOO_LARGE;
    if (rc) {
      char why[80];
      snprintf(why, sizeof why, "bad frame from the replica: %s", bft_strerror(rc));
      conn_drop(k, why);
      return;
    }
    size_t total = WIRE_FRAME_HEADER_LEN + (size_t)h.body_len;
    if (k->rlen - pos < total) {
      if (total > k->rcap) { /* make room for this one frame, bounded by max_body_for */
        memmove(k->rbuf, k->rbuf + pos, k->rlen - pos);
        k->rlen -= pos;
        pos = 0;
        uint8_t *nb = realloc(k->rbuf, total);
        if (!nb) {
          conn_drop(k, "out of memory for a frame");
          return;
        }
        k->rbuf = nb;
        k->rcap = total;
      }
      break;
    }
    handle_frame(k, h.kind, k->rbuf + pos + WIRE_FRAME_HEADER_LEN, h.body_len);
    pos += total;
  }
  if (k->state != CONN_CONNECTED) return; /* dropped while handling: rlen was reset */
  if (pos) {
    memmove(k->rbuf, k->rbuf + pos, k->rlen - pos);
    k->rlen -= pos;
  }
  if (k->rlen == 0 && k->rcap > CLIENT_RBUF_INITIAL) { /* give a large ledger buffer back */
    free(k->rbuf);
    k->rbuf = NULL;
    k->rcap = 0;
  }
}

static void on_connect(uv_connect_t *req, int status) {
  bft_client_conn *k = req->data;
  bft_client_mux *m = k->m;
  if (k->state != CONN_CONNECTING) return; /* closed meanwhile (status UV_ECANCELED) */
  if (status < 0) {
    conn_drop(k, uv_strerror(status));
    return;
  }
  int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (rc) {
    conn_drop(k, uv_strerror(rc));
    return;
  }
  uv_timer_stop(&k->timer);
  k->state = CONN_CONNECTED;
  k->last_error[0] = '\0';
  m->connects++;
  for (uint32_t i = 0; i < m->nmembers; i++)
    if (m->members[i]->op_active) op_send_to(m->members[i], k);
  bft_client *lc = m->ledger;
  if (lc && lc->lg.active && lc->lg.cur == k->id && !lc->lg.sent) lg_send(lc);
}

static void conn_start(bft_client_conn *k) {
  bft_client_mux *m = k->m;
  if (m->closing || k->state != CONN_IDLE || !k->have_addr) return;
  int rc = uv_tcp_init(m->loop, &k->tcp);
  if (rc) {
    snprintf(k->last_error, sizeof k->last_error, "%s", uv_strerror(rc));
    uv_timer_start(&k->timer, conn_timer_cb, m->reconnect_max_ms, 0);
    return;
  }
  m->open_handles++;
  k->tcp.data = k;
  k->creq.data = k;
  k->state = CONN_CONNECTING;
  uv_tcp_nodelay(&k->tcp, 1);
  rc = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&k->addr, on_connect);
  if (rc) {
    conn_drop(k, uv_strerror(rc));
    return;
  }
  uv_timer_start(&k->timer, conn_timer_cb, m->connect_timeout_ms, 0);
}

/* send(2) without SIGPIPE and without blocking: bytes taken, 0 when the socket buffer is full,
 * or a negative errno-style UV error (UV_EPIPE, UV_ECONNRESET, ...). */
static ssize_t conn_send(bft_client_conn *k, const struct iovec *iov, int iovcnt) {
  uv_os_fd_t fd;
  int rc = uv_fileno((const uv_handle_t *)&k->tcp, &fd);
  if (rc) return rc;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = (struct iovec *)iov;
  m.msg_iovlen = (size_t)iovcnt;
  for (;;) {
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return uv_translate_sys_error(errno);
  }
}

static void conn_write_failed(bft_client_conn *k, ssize_t err) {
  char why[80];
  snprintf(why, sizeof why, "write failed: %s", uv_strerror((int)err));
  conn_drop(k, why);
}

/* Append the bytes of a frame to the write queue; 0, or -1 without memory. */
static int conn_queue(bft_client_conn *k, const uint8_t *hdr, const uint8_t *body, uint32_t body_len) {
  size_t len = WIRE_FRAME_HEADER_LEN + (size_t)body_len;
  if (k->wlen + len > k->wcap) {
    size_t cap = k->wcap ? k->wcap : 4096;
    while (cap < k->wlen + len) cap *= 2;
    uint8_t *nb = realloc(k->wbuf, cap);
    if (!nb) return -1;
    k->wbuf = nb;
    k->wcap = cap;
  }
  memcpy(k->wbuf + k->wlen, hdr, WIRE_FRAME_HEADER_LEN);
  if (body_len) memcpy(k->wbuf + k->wlen + WIRE_FRAME_HEADER_LEN, body, body_len);
  k->wlen += len;
  return 0;
}

static void conn_retry_later(bft_client_conn *k) {
  if (k->wretry_ms == 0) k->wretry_ms = CLIENT_WRITE_RETRY_FIRST_MS;
  uv_timer_start(&k->timer, conn_timer_cb, k->wretry_ms, 0);
  uint32_t next = k->wretry_ms * 2;
  k->wretry_ms = next > CLIENT_WRITE_RETRY_MAX_MS ? CLIENT_WRITE_RETRY_MAX_MS : next;
}

/* Write what is queued; while the socket buffer stays full, try again on the timer. */
static void conn_flush(bft_client_conn *k) {
  k->dirty = 0;
  if (k->state != CONN_CONNECTED || k->wlen == 0) return;
  struct iovec iov = {.iov_base = k->wbuf, .iov_len = k->wlen};
  ssize_t n = conn_send(k, &iov, 1);
  if (n < 0) {
    conn_write_failed(k, n);
    return;
  }
  if (n > 0) {
    memmove(k->wbuf, k->wbuf + n, k->wlen - (size_t)n);
    k->wlen -= (size_t)n;
    k->wretry_ms = CLIENT_WRITE_RETRY_FIRST_MS;
  }
  if (k->wlen) conn_retry_later(k);
}

/* End of a loop iteration (before libuv polls): write what each connection queued. */
static void mux_flush_cb(uv_prepare_t *p) {
  bft_client_mux *m = p->data;
  m->flush_armed = 0;
  uv_prepare_stop(&m->flush);
  for (uint32_t i = 0; i < m->n; i++)
    if (m->conn[i].dirty) conn_flush(&m->conn[i]);
}

/* Queue one frame (header + body) for a connected replica; on a shared mux it leaves with the
 * others of this loop iteration (mux_flush_cb) or when the queue is large, on a private one at
 * once. Bytes queued while the
 * socket buffer is full are bounded (CLIENT_MAX_PENDING_BYTES per member): beyond that the
 * replica is not reading and the retransmission timer will try again. */
static void conn_write(bft_client *c, bft_client_conn *k, const uint8_t *hdr, const uint8_t *body,
                       uint32_t body_len) {
  bft_client_mux *m = k->m;
  if (k->state != CONN_CONNECTED) return;
  size_t len = WIRE_FRAME_HEADER_LEN + (size_t)body_len;
  if (k->wlen + len > (size_t)CLIENT_MAX_PENDING_BYTES * (m->nmembers ? m->nmembers : 1)) return;
  if (conn_queue(k, hdr, body, body_len) != 0) return; /* out of memory: as if lost */
  c->st.frames_sent++;
  if (!m->coalesce || k->wlen >= CLIENT_FLUSH_NOW_BYTES) {
    conn_flush(k);
    return;
  }
  k->dirty = 1;
  if (!m->flush_armed) {
    m->flush_armed = 1;
    uv_prepare_start(&m->flush, mux_flush_cb);
  }
}

/* ---- the operation in flight ------------------------------------------------------------- */

static void op_send_to(bft_client *c, bft_client_conn *k) {
  conn_write(c, k, c->frame, c->frame + WIRE_FRAME_HEADER_LEN, c->frame_len - WIRE_FRAME_HEADER_LEN);
}

static void op_send_all(bft_client *c) {
  for (uint32_t i = 0; i < c->n; i++) op_send_to(c, &c->m->conn[i]);
}

/* Finish the operation; the state is cleared before the callback so it may submit again. */
static void op_finish(bft_client *c, bft_client_result *res) {
  uv_timer_stop(&c->op_timer);
  bft_client_cb cb = c->op_cb;
  void *arg = c->op_arg;
  c->op_active = 0;
  c->op_cb = NULL;
  if (res->err) c->st.ops_failed++;
  else c->st.ops_done++;
  cb(arg, res);
}

/* One line on why an operation did not complete, for the person at the terminal. */
static void op_describe_failure(bft_client *c, char *out, size_t cap) {
  uint32_t votes, best, connected = bft_client_connected(c);
  bft_client_quorum_count(&c->q, &votes, &best);
  int off;
  if (connected == 0 && votes == 0)
    off = snprintf(out, cap, "no replica reachable within %.1f s", c->opt.timeout_ms / 1000.0);
  else
    off = snprintf(out, cap, "no %u matching replies within %.1f s: connected to %u of %u replicas, %u replied, "
                   "at most %u agreed",
                   c->cluster->f + 1, c->opt.timeout_ms / 1000.0, connected, c->n, votes, best);
  for (uint32_t i = 0; i < c->n && off > 0 && (size_t)off < cap; i++) {
    const bft_client_conn *k = &c->m->conn[i];
    if (k->state == CONN_CONNECTED || !k->last_error[0]) continue;
    off += snprintf(out + off, cap - (size_t)off, " (replica %u at %s:%u: %s)", i, c->cluster->replicas[i].host,
                    c->cluster->replicas[i].port, k->last_error);
    break; /* one example is enough for one line */
  }
  if (c->rejecters && off > 0 && (size_t)off < cap)
    snprintf(out + off, cap - (size_t)off, "; %u replica(s) rejected it: %s", c->rejecters, c->reject_reason);
}

static void op_timer_cb(uv_timer_t *t) {
  bft_client *c = t->data;
  if (!c->op_active) return;
  uint64_t now = uv_now(c->loop);
  if (now >= c->op_deadline) {
    bft_client_result res;
    memset(&res, 0, sizeof res);
    res.err = BFT_E_TIMEOUT;
    res.seq = c->op_seq;
    op_describe_failure(c, res.detail, sizeof res.detail);
    op_finish(c, &res);
    return;
  }
  /* Retransmit to every replica: a backup that never saw the request cannot suspect a faulty
   * primary, and after a view change the new primary needs it too. */
  c->st.retransmissions++;
  op_send_all(c);
  uint64_t next = (uint64_t)c->rt_interval * 2;
  c->rt_interval = (uint32_t)min_u64(next, c->opt.retransmit_max_ms);
  uv_timer_start(&c->op_timer, op_timer_cb, min_u64(c->rt_interval, c->op_deadline - now), 0);
}

static void handle_reply(bft_client *c, bft_client_conn *k, const uint8_t *body, uint32_t len) {
  uint32_t r;
  uint8_t status;
  if (!c->op_active || bft_client_reply_peek(body, len, c->kp.pk, c->op_seq, c->n, &r, &status) != 0) {
    c->st.replies_ignored++;
    return;
  }
  /* A replica's vote is settled unless it was a rejection (which may be transient); skipping
   * the verify then keeps repeated replies to retransmissions cheap. */
  if (c->q.vote[r].have && c->q.vote[r].status != BFT_KV_REJECTED) {
    c->st.replies_ignored++;
    return;
  }
  bft_reply rp;
  int rc = bft_reply_open(c->cluster, c->macs, body, len, &rp);
  if (rc || memcmp(rp.client, c->kp.pk, BFT_PK_LEN) != 0 || rp.seq != c->op_seq) {
    c->st.replies_bad++;
    snprintf(k->last_error, sizeof k->last_error, "invalid reply: %s", bft_strerror(rc ? rc : BFT_E_MALFORMED));
    return;
  }
  c->st.replies_ok++;
  k->backoff_ms = CLIENT_RECONNECT_FIRST_MS; /* a working replica reconnects quickly next time */
  if (rp.status == BFT_KV_REJECTED && !c->q.vote[r].have) {
    if (c->rejecters++ == 0) {
      uint32_t l = rp.result_len < sizeof c->reject_reason - 1 ? rp.result_len : (uint32_t)sizeof c->reject_reason - 1;
      memcpy(c->reject_reason, rp.result, l);
      c->reject_reason[l] = '\0';
      for (uint32_t i = 0; i < l; i++) /* a reason is one line of text, whatever was sent */
        if (c->reject_reason[i] < 0x20 || c->reject_reason[i] == 0x7f) c->reject_reason[i] = '?';
    }
  }
  if (bft_client_quorum_add(&c->q, rp.replica, rp.seq, rp.status, rp.height, rp.result, rp.result_len) != 1)
    return;
  bft_client_result res;
  memset(&res, 0, sizeof res);
  res.seq = rp.seq;
  res.status = rp.status;
  res.height = rp.height;
  res.result = rp.result;
  res.result_len = rp.result_len;
  op_finish(c, &res);
}

int bft_client_submit(bft_client *c, const uint8_t *op, uint32_t op_len, bft_client_cb cb, void *arg) {
  if (!c || !cb || (op_len && !op)) return BFT_E_INVAL;
  if (c->closing || c->op_active) return BFT_E_STATE;
  if (op_len > BFT_MAX_OP_BYTES) return BFT_E_TOO_LARGE;
  uint64_t seq = (c->last_seq == 0 && c->opt.first_seq) ? c->opt.first_seq
                                                          : bft_client_next_seq(c->last_seq, client_wall_us());
  int len = bft_request_encode_v(&c->kp, c->cluster->id, c->opt.request_version, c->macs,
                                 c->n, seq, op, op_len, c->frame + WIRE_FRAME_HEADER_LEN, BFT_MAX_REQUEST_BYTES);
  if (len < 0) return len;
  wire_frame_header_encode(c->frame, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, (uint32_t)len);
  c->frame_len = WIRE_FRAME_HEADER_LEN + (uint32_t)len;
  c->last_seq = seq;
  c->op_seq = seq;
  c->op_cb = cb;
  c->op_arg = arg;
  c->op_active = 1;
  c->rejecters = 0;
  c->reject_reason[0] = '\0';
  bft_client_quorum_reset(&c->q, c->n, c->cluster->f + 1, seq);
  uv_update_time(c->loop);
  c->op_deadline = uv_now(c->loop) + c->opt.timeout_ms;
  c->rt_interval = c->opt.retransmit_ms;
  op_send_all(c);
  uv_timer_start(&c->op_timer, op_timer_cb, min_u64(c->rt_interval, c->opt.timeout_ms), 0);
  return 0;
}

int bft_client_busy(const bft_client *c) { return c->op_active; }

/* ---- ledger reads ------------------------------------------------------------------------ */

static void lg_finish(bft_client *c, int err, const char *detail) {
  uv_timer_stop(&c->lg_timer);
  bft_client_ledger_cb cb = c->lg.done_cb;
  void *arg = c->lg.arg;
  c->lg.active = 0;
  if (c->m->ledger == c) c->m->ledger = NULL;
  cb(arg, err, c->lg.head, c->lg.cur, detail ? detail : "");
}

static void lg_timer_cb(uv_timer_t *t) {
  bft_client *c = t->data;
  if (!c->lg.active) return;
  const bft_client_conn *k = &c->m->conn[c->lg.cur];
  char why[128];
  if (k->state != CONN_CONNECTED && k->last_error[0])
    snprintf(why, sizeof why, "replica %u: %s", k->id, k->last_error);
  else
    snprintf(why, sizeof why, "replica %u did not answer a ledger read within %u ms", k->id, c->opt.ledger_request_ms);
  lg_failed(c, why, 0);
}

/* Ask the current replica for the next blocks (or wait for it to connect). */
static void lg_send(bft_client *c) {
  bft_client_ledger *g = &c->lg;
  bft_client_conn *k = &c->m->conn[g->cur];
  uint64_t now = uv_now(c->loop);
  g->sent = 0;
  if (k->state == CONN_CONNECTED) {
    uint64_t want = BFT_LEDGER_MAX_BLOCKS_PER_REPLY;
    if (g->to != BFT_CLIENT_LEDGER_HEAD && g->to - g->next + 1 < want) want = g->to - g->next + 1;
    uint8_t body[CLIENT_LEDGER_GET_LEN], hdr[WIRE_FRAME_HEADER_LEN];
    wire_writer w;
    wire_writer_init(&w, body, sizeof body);
    wire_put_u64(&w, g->next);
    wire_put_u32(&w, (uint32_t)want);
    wire_frame_header_encode(hdr, WIRE_KIND_LEDGER_GET, WIRE_SENDER_CLIENT, (uint32_t)w.len);
    conn_write(c, k, hdr, body, (uint32_t)w.len);
    g->sent = 1;
  }
  uint64_t left = g->deadline > now ? g->deadline - now : 0;
  uv_timer_start(&c->lg_timer, lg_timer_cb, min_u64(c->opt.ledger_request_ms, left ? left : 1), 0);
}

/* The current replica failed: try the next one until the deadline or until every replica failed
 * twice in a row without progress. A replica asked by name is retried only after a timeout or
 * a dropped connection; a bad answer from it ends the read at once (asking again would only
 * get the same answer). */
static void lg_failed(bft_client *c, const char *why, int bad_answer) {
  bft_client_ledger *g = &c->lg;
  if (!g->active) return;
  snprintf(g->last_error, sizeof g->last_error, "%s", why);
  g->failures++;
  uint64_t now = uv_now(c->loop);
  if (g->fixed && bad_answer) {
    lg_finish(c, BFT_E_IO, g->last_error);
    return;
  }
  if (now >= g->deadline) {
    char d[BFT_CLIENT_DETAIL_MAX];
    snprintf(d, sizeof d, "no answer within %.1f s (%s)", c->opt.timeout_ms / 1000.0, g->last_error);
    lg_finish(c, BFT_E_TIMEOUT, d);
    return;
  }
  if (!g->fixed) {
    if (g->failures >= 2 * c->n) {
      char d[BFT_CLIENT_DETAIL_MAX];
      if (bft_client_connected(c) == 0)
        snprintf(d, sizeof d, "no replica reachable (%s)", g->last_error);
      else
        snprintf(d, sizeof d, "no replica could serve height %llu (last: %s)", (unsigned long long)g->next,
                 g->last_error);
      lg_finish(c, BFT_E_IO, d);
      return;
    }
    g->cur = (g->cur + 1) % c->n;
  }
  lg_send(c);
}

static uint64_t peek_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* LEDGER_BLOCKS := u64 head | u32 count | count x blob block. The whole answer is checked
 * (structure, consecutive heights from `next`) before any block is handed out, so a bad
 * answer delivers nothing and the next replica resumes at the same height. */
static void handle_ledger_blocks(bft_client *c, bft_client_conn *k, const uint8_t *body, uint32_t len) {
  bft_client_ledger *g = &c->lg;
  if (!g->active || !g->sent || k->id != g->cur) return;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t head = wire_get_u64(&r);
  uint32_t count = wire_get_count(&r, WIRE_FRAME_MAX_BODY / 4);
  uint64_t h = g->next;
  for (uint32_t i = 0; i < count && !r.err; i++, h++) {
    uint32_t bl;
    const uint8_t *b = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
    if (r.err) break;
    if (bl < 9 || peek_u64(b + 1) != h) {
      char why[96];
      snprintf(why, sizeof why, "replica %u sent block heights out of order", k->id);
      lg_failed(c, why, 1);
      return;
    }
  }
  if (wire_reader_finish(&r) != 0) {
    char why[96];
    snprintf(why, sizeof why, "malformed ledger answer from replica %u", k->id);
    lg_failed(c, why, 1);
    return;
  }
  k->backoff_ms = CLIENT_RECONNECT_FIRST_MS;
  g->head = head;
  if (!g->target_known) {
    g->target = g->to == BFT_CLIENT_LEDGER_HEAD ? head : g->to;
    g->target_known = 1;
  }
  wire_reader_init(&r, body, len);
  wire_get_u64(&r);
  wire_get_count(&r, WIRE_FRAME_MAX_BODY / 4);
  uint32_t delivered = 0;
  for (uint32_t i = 0; i < count && g->next <= g->target; i++) {
    uint32_t bl;
    const uint8_t *b = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
    uint64_t height = g->next++;
    delivered++;
    if (g->block_cb(g->arg, height, b, bl) != 0) {
      lg_finish(c, 0, NULL);
      return;
    }
    if (!g->active) return; /* the callback closed the handle */
  }
  if (g->next > g->target) {
    lg_finish(c, 0, NULL);
    return;
  }
  if (delivered == 0) {
    char why[128];
    snprintf(why, sizeof why, "replica %u has no block %llu (its head is %llu)", k->id,
             (unsigned long long)g->next, (unsigned long long)head);
    lg_failed(c, why, 1);
    return;
  }
  g->failures = 0;
  lg_send(c);
}

int bft_client_ledger_fetch(bft_client *c, int replica, uint64_t from, uint64_t to,
                            bft_client_block_cb block_cb, bft_client_ledger_cb done_cb, void *arg) {
  if (!c || !block_cb || !done_cb || from == 0 || to < from) return BFT_E_INVAL;
  if (replica >= 0 && (uint32_t)replica >= c->n) return BFT_E_INVAL;
  if (c->closing || c->lg.active) return BFT_E_STATE;
  if (c->m->ledger && c->m->ledger != c) return BFT_E_STATE; /* another member of the mux reads the ledger */
  c->m->ledger = c;
  bft_client_ledger *g = &c->lg;
  memset(g, 0, sizeof *g);
  g->active = 1;
  g->fixed = replica >= 0;
  g->next = from;
  g->to = to;
  g->block_cb = block_cb;
  g->done_cb = done_cb;
  g->arg = arg;
  uv_update_time(c->loop);
  g->deadline = uv_now(c->loop) + c->opt.timeout_ms;
  if (g->fixed) {
    g->cur = (uint32_t)replica;
  } else { /* start with a replica that is connected already, if any */
    g->cur = 0;
    for (uint32_t i = 0; i < c->n; i++)
      if (c->m->conn[i].state == CONN_CONNECTED) {
        g->cur = i;
        break;
      }
  }
  lg_send(c);
  return 0;
}

/* ---- frames, handle lifetime ------------------------------------------------------------- */

/* A frame from a replica, to the member it is for: a REPLY names its client's key; ledger
 * blocks go to the member reading the ledger. Anything else is counted and dropped. */
static void handle_frame(bft_client_conn *k, uint8_t kind, const uint8_t *body, uint32_t len) {
  bft_client_mux *m = k->m;
  bft_client *c = NULL;
  if (kind == WIRE_KIND_REPLY) {
    const uint8_t *pk = bft_client_reply_key(body, len);
    c = pk ? mux_find(m, pk) : NULL;
    if (c) handle_reply(c, k, body, len);
  } else if (kind == WIRE_KIND_LEDGER_BLOCKS) {
    c = m->ledger;
    if (c) handle_ledger_blocks(c, k, body, len);
  }
  if (!c) m->unrouted++;
}

static int resolve(const bft_replica_info *ri, struct sockaddr_storage *out, char *err, size_t errlen) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  memset(out, 0, sizeof *out);
  if (uv_ip4_addr(ri->host, ri->port, &a4) == 0) {
    memcpy(out, &a4, sizeof a4);
    return 0;
  }
  if (uv_ip6_addr(ri->host, ri->port, &a6) == 0) {
    memcpy(out, &a6, sizeof a6);
    return 0;
  }
  /* A host name: resolved once, here, synchronously (uv_getaddrinfo without a callback). */
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return -1;
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[8];
  snprintf(port, sizeof port, "%u", ri->port);
  int rc = uv_getaddrinfo(&loop, &req, NULL, ri->host, port, &hints);
  if (rc == 0 && req.addrinfo && req.addrinfo->ai_addrlen <= sizeof *out)
    memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  else if (rc == 0)
    rc = UV_EAI_NONAME;
  if (req.addrinfo) uv_freeaddrinfo(req.addrinfo);
  uv_loop_close(&loop);
  if (rc) snprintf(err, errlen, "cannot resolve %.40s: %s", ri->host, uv_strerror(rc));
  return rc ? -1 : 0;
}

/* ---- opening and closing ----------------------------------------------------------------- */

static void mux_maybe_free(bft_client_mux *m) {
  if (!m->closing || m->open_handles) return;
  void (*cb)(void *) = m->closed_cb;
  void *arg = m->closed_arg;
  for (uint32_t i = 0; i < m->n; i++) {
    free(m->conn[i].rbuf);
    free(m->conn[i].wbuf);
  }
  free(m->members);
  free(m->map);
  free(m);
  if (cb) cb(arg);
}

static void on_mux_handle_closed(uv_handle_t *h) {
  bft_client_mux *m = h->data;
  m->open_handles--;
  mux_maybe_free(m);
}

static void on_conn_timer_closed(uv_handle_t *h) {
  bft_client_conn *k = h->data;
  k->m->open_handles--;
  mux_maybe_free(k->m);
}

static void fill_options(bft_client_options *o, const bft_client_options *given) {
  if (given) *o = *given;
  else bft_client_options_default(o);
  bft_client_options d;
  bft_client_options_default(&d);
  if (!o->timeout_ms) o->timeout_ms = d.timeout_ms;
  if (!o->retransmit_ms) o->retransmit_ms = d.retransmit_ms;
  if (o->retransmit_max_ms < o->retransmit_ms) o->retransmit_max_ms = o->retransmit_ms;
  if (!o->connect_timeout_ms) o->connect_timeout_ms = d.connect_timeout_ms;
  if (o->reconnect_max_ms < CLIENT_RECONNECT_FIRST_MS) o->reconnect_max_ms = CLIENT_RECONNECT_FIRST_MS;
  if (!o->ledger_request_ms) o->ledger_request_ms = d.ledger_request_ms;
  if (!o->request_version) o->request_version = BFT_REQUEST_V_MAC_REPLY;
}

static int mux_open(uv_loop_t *loop, const bft_cluster *cluster, const bft_client_options *opt, int coalesce,
                    bft_client_mux **out) {
  if (!loop || !cluster || !out || cluster->n == 0 || cluster->n > BFT_MAX_REPLICAS) return BFT_E_INVAL;
  bft_client_options o;
  fill_options(&o, opt);
  bft_client_mux *m = calloc(1, sizeof *m);
  if (!m) return BFT_E_NOMEM;
  m->loop = loop;
  m->cluster = cluster;
  m->n = cluster->n;
  m->coalesce = coalesce;
  m->connect_timeout_ms = o.connect_timeout_ms;
  m->reconnect_max_ms = o.reconnect_max_ms;
  uint32_t resolved = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    bft_client_conn *k = &m->conn[i];
    k->m = m;
    k->id = i;
    k->backoff_ms = CLIENT_RECONNECT_FIRST_MS;
    k->have_addr = resolve(&cluster->replicas[i], &k->addr, k->last_error, sizeof k->last_error) == 0;
    resolved += (uint32_t)k->have_addr;
  }
  if (!resolved) {
    free(m);
    return BFT_E_IO;
  }
  uv_prepare_init(loop, &m->flush);
  m->flush.data = m;
  m->open_handles = 1;
  for (uint32_t i = 0; i < m->n; i++) {
    uv_timer_init(loop, &m->conn[i].timer);
    m->conn[i].timer.data = &m->conn[i];
    m->open_handles++;
  }
  for (uint32_t i = 0; i < m->n; i++) conn_start(&m->conn[i]);
  *out = m;
  return 0;
}

int bft_client_mux_open(uv_loop_t *loop, const bft_cluster *cluster, const bft_client_options *opt,
                        bft_client_mux **out) {
  return mux_open(loop, cluster, opt, 1, out);
}

int bft_client_open_mux(bft_client_mux *m, const bft_keypair *kp, const bft_client_options *opt,
                        bft_client **out) {
  if (!m || !kp || !out) return BFT_E_INVAL;
  if (m->closing) return BFT_E_STATE;
  bft_client *c = calloc(1, sizeof *c);
  if (!c) return BFT_E_NOMEM;
  c->frame = malloc(WIRE_FRAME_HEADER_LEN + BFT_MAX_REQUEST_BYTES);
  if (!c->frame) {
    free(c);
    return BFT_E_NOMEM;
  }
  c->loop = m->loop;
  c->cluster = m->cluster;
  c->kp = *kp;
  c->n = m->n;
  fill_options(&c->opt, opt);
  if (c->opt.request_version > BFT_REQUEST_V_MAC) {
    client_free(c);
    return BFT_E_INVAL;
  }
  if (c->opt.request_version != BFT_REQUEST_VERSION) {
    c->macs = bft_session_mac_alloc(c->n);
    int krc = c->macs ? 0 : BFT_E_NOMEM;
    for (uint32_t i = 0; !krc && i < c->n; i++) {
      uint8_t key[BFT_MAC_KEY_LEN];
      krc = bft_session_key(&c->kp, c->cluster->replicas[i].pk, 0, c->cluster->id, key);
      if (!krc) bft_session_mac_init(&c->macs[i], key);
      sodium_memzero(key, sizeof key);
    }
    if (krc) {
      client_free(c);
      return krc;
    }
  }
  int rc = mux_join(m, c);
  if (rc) {
    client_free(c);
    return rc;
  }
  uv_timer_init(c->loop, &c->op_timer);
  uv_timer_init(c->loop, &c->lg_timer);
  c->op_timer.data = c;
  c->lg_timer.data = c;
  c->open_handles = 2;
  *out = c;
  return 0;
}

int bft_client_open(uv_loop_t *loop, const bft_cluster *cluster, const bft_keypair *kp,
                    const bft_client_options *opt, bft_client **out) {
  if (!loop || !cluster || !kp || !out) return BFT_E_INVAL;
  if (opt && opt->request_version > BFT_REQUEST_V_MAC) return BFT_E_INVAL;
  bft_client_mux *m;
  int rc = mux_open(loop, cluster, opt, 0, &m); /* one handle: each frame is written at once */
  if (rc) return rc;
  rc = bft_client_open_mux(m, kp, opt, out);
  if (rc) {
    bft_client_mux_close(m, NULL, NULL);
    return rc;
  }
  (*out)->own_mux = 1;
  return 0;
}

void bft_client_get_stats(const bft_client *c, bft_client_stats *st) {
  *st = c->st;
  st->connects = c->m->connects;
  st->disconnects = c->m->disconnects;
  if (c->own_mux) st->replies_ignored += c->m->unrouted;
}

uint32_t bft_client_connected(const bft_client *c) { return bft_client_mux_connected(c->m); }

uint32_t bft_client_mux_connected(const bft_client_mux *m) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < m->n; i++) k += m->conn[i].state == CONN_CONNECTED;
  return k;
}

uint32_t bft_client_mux_members(const bft_client_mux *m) { return m->nmembers; }

static void on_private_mux_closed(void *arg) {
  bft_client *c = arg;
  c->open_handles--;
  client_maybe_free(c);
}

void bft_client_close(bft_client *c, void (*closed_cb)(void *arg), void *arg) {
  if (!c || c->closing) return;
  if (c->op_active) {
    bft_client_result res;
    memset(&res, 0, sizeof res);
    res.err = BFT_E_STATE;
    res.seq = c->op_seq;
    snprintf(res.detail, sizeof res.detail, "client closed");
    op_finish(c, &res);
  }
  if (c->lg.active) lg_finish(c, BFT_E_STATE, "client closed");
  c->closing = 1;
  c->closed_cb = closed_cb;
  c->closed_arg = arg;
  mux_leave(c->m, c);
  uv_close((uv_handle_t *)&c->op_timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->lg_timer, on_handle_closed);
  if (c->own_mux) {
    c->open_handles++; /* the private connections: freed before this handle's closed_cb */
    bft_client_mux_close(c->m, on_private_mux_closed, c);
  }
}

void bft_client_mux_close(bft_client_mux *m, void (*closed_cb)(void *arg), void *arg) {
  if (!m || m->closing) return;
  m->closing = 1; /* no member joins from here on */
  /* Members still open are closed first (their operations complete with BFT_E_STATE). */
  while (m->nmembers) bft_client_close(m->members[m->nmembers - 1], NULL, NULL);
  m->closed_cb = closed_cb;
  m->closed_arg = arg;
  uv_close((uv_handle_t *)&m->flush, on_mux_handle_closed);
  for (uint32_t i = 0; i < m->n; i++) {
    bft_client_conn *k = &m->conn[i];
    uv_close((uv_handle_t *)&k->timer, on_conn_timer_closed);
    if (k->state == CONN_CONNECTING || k->state == CONN_CONNECTED) {
      k->state = CONN_CLOSING;
      uv_close((uv_handle_t *)&k->tcp, on_tcp_closed);
    }
  }
}

/* ---- blocking wrapper -------------------------------------------------------------------- */

struct bft_client_sync {
  uv_loop_t loop;
  bft_client *c;
  int done, err;
  bft_client_reply *reply;
  uint64_t head;
  uint32_t served_by;
  char detail[BFT_CLIENT_DETAIL_MAX];
};

int bft_client_sync_open(const bft_cluster *cluster, const bft_keypair *kp, const bft_client_options *opt,
                         bft_client_sync **out) {
  bft_client_sync *s = calloc(1, sizeof *s);
  if (!s) return BFT_E_NOMEM;
  if (uv_loop_init(&s->loop) != 0) {
    free(s);
    return BFT_E_IO;
  }
  int rc = bft_client_open(&s->loop, cluster, kp, opt, &s->c);
  if (rc) {
    uv_loop_close(&s->loop);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void sync_op_cb(void *arg, const bft_client_result *res) {
  bft_client_sync *s = arg;
  bft_client_reply *r = s->reply;
  s->done = 1;
  s->err = res->err;
  r->seq = res->seq;
  r->height = res->height;
  r->status = res->status;
  r->result_len = res->result_len <= BFT_MAX_REPLY_BYTES ? res->result_len : BFT_MAX_REPLY_BYTES;
  if (r->result_len) memcpy(r->result, res->result, r->result_len);
  snprintf(r->detail, sizeof r->detail, "%s", res->detail);
}

int bft_client_sync_submit(bft_client_sync *s, const uint8_t *op, uint32_t op_len, bft_client_reply *reply) {
  memset(reply, 0, offsetof(bft_client_reply, result));
  reply->detail[0] = '\0';
  s->reply = reply;
  s->done = 0;
  int rc = bft_client_submit(s->c, op, op_len, sync_op_cb, s);
  if (rc) return rc;
  /* The op timer is always armed while the op is active, so each turn returns in bounded time. */
  while (!s->done) uv_run(&s->loop, UV_RUN_ONCE);
  return s->err;
}

typedef struct sync_ledger {
  bft_client_sync *s;
  bft_client_block_cb cb;
  void *arg;
} sync_ledger;

static int sync_block_cb(void *arg, uint64_t height, const uint8_t *block, uint32_t len) {
  sync_ledger *l = arg;
  return l->cb(l->arg, height, block, len);
}

static void sync_ledger_done(void *arg, int err, uint64_t head, uint32_t replica, const char *detail) {
  sync_ledger *l = arg;
  l->s->done = 1;
  l->s->err = err;
  l->s->head = head;
  l->s->served_by = replica;
  snprintf(l->s->detail, sizeof l->s->detail, "%s", detail);
}

int bft_client_sync_ledger(bft_client_sync *s, int replica, uint64_t from, uint64_t to,
                           bft_client_block_cb block_cb, void *arg, uint64_t *head, uint32_t *served_by,
                           char *detail, size_t detail_len) {
  sync_ledger l = {.s = s, .cb = block_cb, .arg = arg};
  s->done = 0;
  s->detail[0] = '\0';
  int rc = bft_client_ledger_fetch(s->c, replica, from, to, sync_block_cb, sync_ledger_done, &l);
  if (rc) return rc;
  while (!s->done) uv_run(&s->loop, UV_RUN_ONCE);
  if (head) *head = s->head;
  if (served_by) *served_by = s->served_by;
  if (detail && detail_len) snprintf(detail, detail_len, "%s", s->detail);
  return s->err;
}

void bft_client_sync_close(bft_client_sync *s) {
  if (!s) return;
  bft_client_close(s->c, NULL, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  free(s);
}
