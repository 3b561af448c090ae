/* One request, one answer, on a connection of its own, blocking: what a client needs for reads
 * that are not ordered requests (evidence, stale application queries). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/bft_client.h"
#include "protocols/wire/wire.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait until fd is ready for `events` or the deadline passes: 0, or BFT_E_TIMEOUT / BFT_E_IO. */
static int wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    uint64_t t = now_ms();
    if (t >= deadline) return BFT_E_TIMEOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, (int)(deadline - t));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return BFT_E_IO;
    if (rc > 0) return 0;
  }
}

static int io_all(int fd, uint8_t *buf, size_t n, int writing, uint64_t deadline) {
  while (n) {
    int rc = wait_fd(fd, writing ? POLLOUT : POLLIN, deadline);
    if (rc) return rc;
    ssize_t k = writing ? send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, buf, n, MSG_DONTWAIT);
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (k <= 0) return BFT_E_IO;
    buf += k;
    n -= (size_t)k;
  }
  return 0;
}

static int dial(const bft_replica_info *ri, uint64_t deadline, char *err, size_t errlen) {
  char port[8];
  snprintf(port, sizeof port, "%u", ri->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo(ri->host, port, &hints, &ai) != 0 || !ai) {
    snprintf(err, errlen, "cannot resolve %s", ri->host);
    return BFT_E_IO;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = fd < 0 ? BFT_E_IO : 0;
  if (!rc && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) rc = BFT_E_IO;
  freeaddrinfo(ai);
  if (!rc) rc = wait_fd(fd, POLLOUT, deadline);
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (!rc && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) rc = BFT_E_IO;
  if (rc) {
    snprintf(err, errlen, "cannot connect to %s:%u: %s", ri->host, ri->port,
             rc == BFT_E_TIMEOUT ? "timed out" : strerror(soerr ? soerr : errno));
    if (fd >= 0) close(fd);
    return rc;
  }
  return fd;
}

int bft_client_exchange(const bft_cluster *c, uint32_t replica, uint8_t kind, const uint8_t *body, uint32_t len,
                        uint8_t want_kind, uint32_t timeout_ms, uint8_t **out, uint32_t *out_len, char *err,
                        size_t errlen) {
  *out = NULL;
  *out_len = 0;
  if (replica >= c->n) return snprintf(err, errlen, "no replica %u", replica), BFT_E_INVAL;
  uint64_t deadline = now_ms() + timeout_ms;
  int fd = dial(&c->replicas[replica], deadline, err, errlen);
  if (fd < 0) return fd;
  uint8_t hdr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(hdr, kind, WIRE_SENDER_CLIENT, len);
  int rc = io_all(fd, hdr, sizeof hdr, 1, deadline);
  if (!rc && len) rc = io_all(fd, (uint8_t *)body, len, 1, deadline);
  if (!rc) rc = io_all(fd, hdr, sizeof hdr, 0, deadline);
  wire_frame_header h;
  if (!rc && (wire_frame_header_decode(hdr, sizeof hdr, &h) != 0 || h.kind != want_kind)) rc = BFT_E_MALFORMED;
  uint8_t *b = NULL;
  if (!rc && !(b = malloc(h.body_len ? h.body_len : 1))) rc = BFT_E_NOMEM;
  if (!rc) rc = io_all(fd, b, h.body_len, 0, deadline);
  close(fd);
  if (rc) {
    free(b);
    snprintf(err, errlen, "no answer from replica %u: %s", replica,
             rc == BFT_E_TIMEOUT ? "timed out" : rc == BFT_E_MALFORMED ? "unexpected answer" : bft_strerror(rc));
    return rc;
  }
  *out = b;
  *out_len = h.body_len;
  return 0;
}

int bft_client_query_stale(const bft_cluster *c, uint32_t replica, const uint8_t *q, uint32_t len, uint32_t timeout_ms,
                           bft_client_query_reply *out, char *err, size_t errlen) {
  if (len > BFT_MAX_OP_BYTES) return snprintf(err, errlen, "query too large"), BFT_E_TOO_LARGE;
  uint8_t nonce_b[8];
  randombytes_buf(nonce_b, sizeof nonce_b);
  uint64_t nonce = 0;
  for (int i = 0; i < 8; i++) nonce |= (uint64_t)nonce_b[i] << (8 * i);
  uint8_t *req = malloc(13 + (size_t)len);
  if (!req) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  wire_writer w;
  wire_writer_init(&w, req, 13 + (size_t)len);
  wire_put_u8(&w, 1);
  wire_put_u64(&w, nonce);
  wire_put_blob(&w, q, len);
  uint8_t *ans;
  uint32_t al;
  int rc = bft_client_exchange(c, replica, WIRE_KIND_QUERY, req, (uint32_t)w.len, WIRE_KIND_QUERY_REPLY, timeout_ms,
                               &ans, &al, err, errlen);
  free(req);
  if (rc) return rc;
  wire_reader r;
  wire_reader_init(&r, ans, al);
  uint8_t ver = wire_get_u8(&r);
  out->replica = wire_get_u32(&r);
  uint64_t got_nonce = wire_get_u64(&r);
  out->height = wire_get_u64(&r);
  out->status = wire_get_u8(&r);
  const uint8_t *res = wire_get_blob(&r, &out->result_len, BFT_MAX_REPLY_BYTES);
  const uint8_t *sig = wire_get_view(&r, BFT_SIG_LEN);
  rc = wire_reader_finish(&r);
  if (!rc && (ver != 1 || out->replica != replica || got_nonce != nonce)) rc = BFT_E_MALFORMED;
  if (!rc) rc = bft_verify(c->replicas[replica].pk, c->id, BFT_TAG_QUERY_REPLY, ans, al - BFT_SIG_LEN, sig);
  if (rc) {
    snprintf(err, errlen, "replica %u sent a %s query answer", replica, rc == BFT_E_BAD_SIG ? "badly signed" : "malformed");
    free(ans);
    return rc;
  }
  memcpy(out->result, res, out->result_len);
  free(ans);
  return 0;
}
