/* One blocking request/answer with one replica on its own connection (bft_rpc.h). */
#include "client/bft_rpc.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

int bft_rpc_exchange(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t kind, const uint8_t *body,
                     uint32_t len, uint8_t want_kind, uint32_t max_body, uint8_t **out, uint32_t *out_len, char *err,
                     size_t errlen) {
  *out = NULL;
  *out_len = 0;
  if (replica >= c->n) {
    snprintf(err, errlen, "no replica %u in the cluster file", replica);
    return BFT_E_INVAL;
  }
  uint64_t deadline = now_ms() + timeout_ms;
  int fd = dial(&c->replicas[replica], deadline, err, errlen);
  if (fd < 0) return fd;
  uint8_t hdr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(hdr, kind, WIRE_SENDER_CLIENT, len);
  int rc = io_all(fd, hdr, sizeof hdr, 1, deadline);
  if (!rc && len) rc = io_all(fd, (uint8_t *)body, len, 1, deadline);
  if (!rc) rc = io_all(fd, hdr, sizeof hdr, 0, deadline);
  wire_frame_header h;
  if (!rc && (wire_frame_header_decode(hdr, sizeof hdr, &h) != 0 || h.kind != want_kind || h.body_len > max_body))
    rc = BFT_E_MALFORMED;
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
