/* Framed blocking I/O for the application socket (app_proto.h). */
#include "replica/app_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline, char *why, size_t whylen) {
  for (;;) {
    int t = -1;
    if (deadline >= 0) {
      int64_t left = deadline - mono_ms();
      if (left <= 0) return snprintf(why, whylen, "no answer within the timeout"), -1;
      t = (int)left;
    }
    struct pollfd p = {.fd = fd, .events = ev};
    int rc = poll(&p, 1, t);
    if (rc > 0) return 0;
    if (rc < 0 && errno != EINTR) return snprintf(why, whylen, "poll: %s", strerror(errno)), -1;
  }
}

int app_write_all(int fd, const uint8_t *p, size_t len, int timeout_ms, char *why, size_t whylen) {
  int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (wait_fd(fd, POLLOUT, deadline, why, whylen)) return -1;
      continue;
    }
    return snprintf(why, whylen, "write failed: %s", n < 0 ? strerror(errno) : "closed"), -1;
  }
  return 0;
}

int app_read_all(int fd, uint8_t *p, size_t len, int timeout_ms, char *why, size_t whylen) {
  int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    if (n == 0) return snprintf(why, whylen, "connection closed"), got ? -1 : 1;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (wait_fd(fd, POLLIN, deadline, why, whylen)) return -1;
      continue;
    }
    return snprintf(why, whylen, "read failed: %s", strerror(errno)), -1;
  }
  return 0;
}

int app_read_frame(int fd, uint8_t **buf, size_t *cap, uint8_t *type, uint32_t *len, int timeout_ms, char *why,
                   size_t whylen) {
  uint8_t h[5];
  int rc = app_read_all(fd, h, sizeof h, timeout_ms, why, whylen);
  if (rc) return rc;
  uint32_t l = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
  if (l < 1 || l > APP_MAX_FRAME)
    return snprintf(why, whylen, "malformed frame: length %u (max %u)", l, APP_MAX_FRAME), -1;
  l -= 1;
  if (*cap < l || !*buf) {
    uint8_t *nb = realloc(*buf, l ? l : 1);
    if (!nb) return snprintf(why, whylen, "out of memory"), -1;
    *buf = nb;
    *cap = l ? l : 1;
  }
  rc = app_read_all(fd, *buf, l, timeout_ms, why, whylen);
  if (rc) return snprintf(why, whylen, "connection closed in the middle of a frame"), -1;
  *type = h[4];
  *len = l;
  return 0;
}

uint8_t *app_frame_room(uint8_t **buf, size_t *cap, size_t n) {
  if (*cap < n + 5) {
    uint8_t *nb = realloc(*buf, n + 5);
    if (!nb) return NULL;
    *buf = nb;
    *cap = n + 5;
  }
  return *buf + 5;
}
