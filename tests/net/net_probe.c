/* net-probe: speaks the wire protocol to one replica the way a faulty or hostile party would,
 * for the security tests and the attack benchmark: `tamper` sends a request whose signature was
 * altered after signing and expects a signed REJECTED reply; `impersonate` runs the peer
 * handshake of replica/replica.c claiming one replica's id while signing with another key, and
 * expects to be dropped; `stranger` sends a HELLO and checks that nothing signed comes back;
 * `flood` opens many connections from one address and holds them; `slow` trickles a frame;
 * `badsig` streams requests with invalid signatures (with --prove 1 on a connection that first
 * proved a key with a valid request, all of them in one write). Plain blocking sockets with timeouts;
 * every wait and every loop is bounded in count and time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto/bft_crypto.h"
#include "protocols/cluster/cluster.h"
#include "protocols/kv.h"
#include "protocols/request.h"
#include "replica/replica.h" /* RT_TAG_HELLO, RT_HELLO_*: the handshake's constants */

#define PROBE_MAX_FRAME (WIRE_FRAME_HEADER_LEN + BFT_MAX_REPLY_BYTES + 512)

typedef struct probe {
  bft_cluster *cluster;
  bft_keypair kp;
  uint32_t replica;
  uint32_t as; /* impersonate: the replica id claimed */
  int timeout_ms;
  int fd;
  uint32_t conns;  /* flood: connections; badsig: requests per connection */
  int hold_s;      /* flood/badsig: how long to keep going */
  int reconnect;   /* flood/badsig: reopen what the replica closed */
  int prove;       /* badsig: a valid request first on each connection (a proven client's) */
} probe;

static int probe_connect(probe *p) {
  const bft_replica_info *ri = &p->cluster->replicas[p->replica];
  char port[8];
  snprintf(port, sizeof port, "%u", ri->port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(ri->host, port, &hints, &res) != 0 || !res) return -1;
  p->fd = socket(res->ai_family, SOCK_STREAM, 0);
  int rc = p->fd < 0 ? -1 : connect(p->fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return rc;
}

static int probe_send(probe *p, uint8_t kind, uint32_t sender, const uint8_t *body, uint32_t len) {
  uint8_t hdr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(hdr, kind, sender, len);
  if (write(p->fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr) return -1;
  return write(p->fd, body, len) == (ssize_t)len ? 0 : -1;
}

/* Read exactly n bytes before the deadline (ms since the epoch of CLOCK_MONOTONIC). */
static int probe_read(probe *p, uint8_t *buf, size_t n, int64_t deadline) {
  size_t got = 0;
  while (got < n) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= deadline) return -2;
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return -2;
    ssize_t r = read(p->fd, buf + got, n - got);
    if (r == 0) return -1; /* closed by the replica */
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int64_t probe_deadline(const probe *p) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + p->timeout_ms;
}

/* A request signed correctly, then one bit of its signature flipped: the replica must refuse
 * it (and answer with a signed rejection naming the reason). */
static int probe_tamper(probe *p) {
  uint8_t op[64], req[256];
  bft_kv_op kop = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"tampered", .key_len = 8,
                   .value = (const uint8_t *)"x", .value_len = 1};
  int olen = bft_kv_encode(&kop, op, sizeof op);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t seq = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  int len = bft_request_encode(&p->kp, p->cluster->id, seq, op, (uint32_t)olen, req, sizeof req);
  if (olen < 0 || len < 0) return 2;
  req[len - 10] ^= 0x01; /* inside the signature */
  if (probe_connect(p) != 0) {
    printf("net-probe: cannot connect to replica %u: %s\n", p->replica, strerror(errno));
    return 2;
  }
  if (probe_send(p, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, req, (uint32_t)len) != 0) return 2;
  int64_t deadline = probe_deadline(p);
  uint8_t *buf = malloc(PROBE_MAX_FRAME);
  int ex = 1;
  while (buf) {
    int rc = probe_read(p, buf, WIRE_FRAME_HEADER_LEN, deadline);
    wire_frame_header h;
    if (rc == 0 && (wire_frame_header_decode(buf, WIRE_FRAME_HEADER_LEN, &h) != 0 ||
                    h.body_len > PROBE_MAX_FRAME - WIRE_FRAME_HEADER_LEN))
      rc = -3;
    if (rc == 0) rc = probe_read(p, buf + WIRE_FRAME_HEADER_LEN, h.body_len, deadline);
    if (rc) {
      printf("net-probe: no rejection from replica %u (%s)\n", p->replica,
             rc == -2 ? "timed out" : rc == -1 ? "connection closed" : "bad frame");
      break;
    }
    if (h.kind != WIRE_KIND_REPLY) continue;
    bft_reply rp;
    if (bft_reply_verify(p->cluster, buf + WIRE_FRAME_HEADER_LEN, h.body_len, &rp) != 0) {
      printf("net-probe: replica %u sent a reply that does not verify\n", p->replica);
      break;
    }
    if (rp.seq != seq) continue;
    if (rp.status == BFT_KV_REJECTED) {
      printf("REJECTED by replica %u: %.*s\n", rp.replica, (int)rp.result_len, (const char *)rp.result);
      ex = 0;
    } else {
      printf("net-probe: replica %u EXECUTED the tampered request (status %u)\n", rp.replica, rp.status);
    }
    break;
  }
  free(buf);
  return ex;
}

/* Read one whole frame into buf (cap bytes): 0, -1 closed, -2 timed out, -3 bad frame. */
static int probe_frame(probe *p, uint8_t *buf, size_t cap, wire_frame_header *h, int64_t deadline) {
  int rc = probe_read(p, buf, WIRE_FRAME_HEADER_LEN, deadline);
  if (rc) return rc;
  if (wire_frame_header_decode(buf, WIRE_FRAME_HEADER_LEN, h) != 0 || h->body_len > cap - WIRE_FRAME_HEADER_LEN)
    return -3;
  return probe_read(p, buf + WIRE_FRAME_HEADER_LEN, h->body_len, deadline);
}

/* The statement a handshake signature covers; mirrors hs_statement in replica/replica.c:
 * u32 signer | u32 other | other's nonce | signer's nonce. */
static void probe_hs_statement(uint8_t out[72], uint32_t signer, uint32_t other, const uint8_t other_nonce[32],
                               const uint8_t signer_nonce[32]) {
  for (int i = 0; i < 4; i++) {
    out[i] = (uint8_t)(signer >> (8 * i));
    out[4 + i] = (uint8_t)(other >> (8 * i));
  }
  memcpy(out + 8, other_nonce, 32);
  memcpy(out + 40, signer_nonce, 32);
}

static int probe_hello(probe *p, uint32_t as, uint8_t nonce[32]) {
  uint8_t hello[RT_HELLO_LEN];
  randombytes_buf(nonce, 32);
  wire_writer w;
  wire_writer_init(&w, hello, sizeof hello);
  wire_put_u8(&w, RT_HELLO_VERSION);
  wire_put_fixed(&w, p->cluster->id, BFT_CLUSTER_ID_LEN);
  wire_put_u32(&w, as);
  wire_put_u32(&w, p->replica);
  wire_put_fixed(&w, nonce, 32);
  return w.err || probe_send(p, WIRE_KIND_HELLO, as, hello, (uint32_t)w.len) != 0 ? -1 : 0;
}

/* Wait until the replica closes the connection: 0 closed, 1 something else came or time ran out. */
static int probe_wait_closed(probe *p, uint8_t *buf, size_t cap, const char *what) {
  int64_t deadline = probe_deadline(p);
  wire_frame_header h;
  for (;;) {
    int rc = probe_frame(p, buf, cap, &h, deadline);
    if (rc == -1) return 0;
    if (rc == -2) {
      printf("net-probe: replica %u kept the connection open after %s\n", p->replica, what);
      return 1;
    }
    if (rc == -3 || h.kind == WIRE_KIND_HELLO_ACK) {
      printf("net-probe: replica %u answered %s with kind %u (%u bytes)\n", p->replica, what, h.kind, h.body_len);
      return 1;
    }
  }
}

/* Dial replica I as if we were replica `as` (a lower id, since lower ids dial), answer its
 * challenge with a signature by our key (another replica's), and wait to be dropped. */
static int probe_impersonate(probe *p) {
  if (p->as >= p->replica) {
    fprintf(stderr, "net-probe: --as must be below --replica (lower replicas dial higher ones)\n");
    return 2;
  }
  if (probe_connect(p) != 0) {
    printf("net-probe: cannot connect to replica %u: %s\n", p->replica, strerror(errno));
    return 2;
  }
  uint8_t nonce[32], buf[512];
  if (probe_hello(p, p->as, nonce) != 0) return 2;
  int64_t deadline = probe_deadline(p);
  wire_frame_header h;
  int rc = probe_frame(p, buf, sizeof buf, &h, deadline);
  if (rc || h.kind != WIRE_KIND_HELLO_ACK || h.body_len != RT_HELLO_CHALLENGE_LEN) {
    printf("net-probe: replica %u did not answer the HELLO with a challenge (rc %d)\n", p->replica, rc);
    return 1;
  }
  const uint8_t *their_nonce = buf + WIRE_FRAME_HEADER_LEN;
  uint8_t st[72], sig[RT_HELLO_SIG_LEN];
  probe_hs_statement(st, p->as, p->replica, their_nonce, nonce);
  bft_sign(&p->kp, p->cluster->id, RT_TAG_HELLO, st, sizeof st, sig);
  if (probe_send(p, WIRE_KIND_HELLO_ACK, p->as, sig, sizeof sig) != 0) {
    printf("DROPPED by replica %u during the handshake\n", p->replica);
    return 0;
  }
  if (probe_wait_closed(p, buf, sizeof buf, "a proof signed with the wrong key") != 0) return 1;
  printf("DROPPED by replica %u after a handshake signed with the wrong key\n", p->replica);
  return 0;
}

/* A stranger's HELLO (claiming replica `as`): the answer must be the bare challenge, with no
 * signature in it, and a made-up proof must close the connection, still without a signature. */
static int probe_stranger(probe *p) {
  if (probe_connect(p) != 0) {
    printf("net-probe: cannot connect to replica %u: %s\n", p->replica, strerror(errno));
    return 2;
  }
  uint8_t nonce[32], buf[512];
  if (probe_hello(p, p->as, nonce) != 0) return 2;
  wire_frame_header h;
  int rc = probe_frame(p, buf, sizeof buf, &h, probe_deadline(p));
  if (rc || h.kind != WIRE_KIND_HELLO_ACK) {
    printf("net-probe: no challenge from replica %u (rc %d)\n", p->replica, rc);
    return 1;
  }
  if (h.body_len != RT_HELLO_CHALLENGE_LEN) {
    printf("net-probe: replica %u answered a stranger's HELLO with %u bytes (a signature?)\n", p->replica, h.body_len);
    return 1;
  }
  uint8_t junk[RT_HELLO_SIG_LEN];
  randombytes_buf(junk, sizeof junk);
  if (probe_send(p, WIRE_KIND_HELLO_ACK, p->as, junk, sizeof junk) == 0 &&
      probe_wait_closed(p, buf, sizeof buf, "a made-up proof") != 0)
    return 1;
  printf("UNSIGNED challenge only from replica %u (%u bytes); closed after a made-up proof\n", p->replica, h.body_len);
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_fd(probe *p) {
  p->fd = -1;
  if (probe_connect(p) != 0) {
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    return -1;
  }
  int fd = p->fd;
  p->fd = -1;
  return fd;
}

static int send_ledger_get(int fd) {
  uint8_t fr[WIRE_FRAME_HEADER_LEN + 12], *b = fr + WIRE_FRAME_HEADER_LEN;
  wire_frame_header_encode(fr, WIRE_KIND_LEDGER_GET, WIRE_SENDER_CLIENT, 12);
  memset(b, 0xff, 8); /* from a height far ahead: an empty answer */
  b[7] = 0x7f;
  memset(b + 8, 0, 4);
  return write(fd, fr, sizeof fr) == (ssize_t)sizeof fr ? 0 : -1;
}

/* Open --conns connections one after the other, a ledger read on each so that it counts as a
 * client, and hold them --hold seconds (reopening closed ones with --reconnect). Prints how
 * many the replica kept open at the end and how many it closed. */
static int probe_flood(probe *p) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl); /* best effort: fewer connections if refused */
  }
  uint32_t n = p->conns ? p->conns : 100;
  struct pollfd *fds = calloc(n, sizeof *fds);
  if (!fds) return 2;
  uint64_t opened = 0, closed = 0, failed = 0;
  int64_t end = now_ms() + (int64_t)p->hold_s * 1000;
  for (uint32_t i = 0; i < n; i++) {
    fds[i].fd = connect_fd(p);
    fds[i].events = POLLIN;
    if (fds[i].fd < 0 || send_ledger_get(fds[i].fd) != 0) failed++;
    else opened++;
  }
  static uint8_t sink[65536];
  while (now_ms() < end) {
    int pr = poll(fds, n, 100);
    if (pr < 0 && errno != EINTR) break;
    for (uint32_t i = 0; i < n && pr > 0; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(fds[i].fd, sink, sizeof sink);
      if (r > 0 || (r < 0 && errno == EINTR)) continue;
      close(fds[i].fd);
      fds[i].fd = -1;
      closed++;
      if (p->reconnect) {
        fds[i].fd = connect_fd(p);
        if (fds[i].fd >= 0 && send_ledger_get(fds[i].fd) == 0) opened++;
      }
    }
  }
  uint32_t open_now = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (fds[i].fd < 0) continue;
    /* still open on our side: is it still open on theirs? */
    struct pollfd one = {.fd = fds[i].fd, .events = POLLIN};
    if (poll(&one, 1, 0) == 1 && read(fds[i].fd, sink, sizeof sink) <= 0) closed++;
    else open_now++;
    close(fds[i].fd);
  }
  free(fds);
  printf("FLOOD replica=%u opened=%llu failed=%llu closed_by_replica=%llu open_at_end=%u\n", p->replica,
         (unsigned long long)opened, (unsigned long long)failed, (unsigned long long)closed, open_now);
  return 0;
}

/* Send a request frame's first bytes and then one byte a second: the replica must close the
 * connection (frame deadline). Prints after how long. */
static int probe_slow(probe *p) {
  if (probe_connect(p) != 0) return 2;
  uint8_t fr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(fr, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, 200);
  int64_t t0 = now_ms(), end = t0 + p->timeout_ms;
  if (write(p->fd, fr, 10) != 10) return 2;
  size_t sent = 10;
  uint8_t junk = 0;
  while (now_ms() < end) {
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, 1000);
    if (pr > 0) {
      uint8_t b[64];
      if (read(p->fd, b, sizeof b) <= 0) {
        printf("CLOSED slow sender after %.1f s (%zu bytes sent)\n", (double)(now_ms() - t0) / 1000.0, sent);
        return 0;
      }
    } else if (pr == 0) {
      const uint8_t *next = sent < sizeof fr ? fr + sent : &junk;
      if (write(p->fd, next, 1) != 1) {
        printf("CLOSED slow sender after %.1f s (%zu bytes sent)\n", (double)(now_ms() - t0) / 1000.0, sent);
        return 0;
      }
      sent++;
    }
  }
  printf("net-probe: replica %u kept a slow sender for %d s\n", p->replica, p->timeout_ms / 1000);
  return 1;
}

static int tampered_request(probe *p, uint64_t seq, uint8_t *req, size_t cap) {
  uint8_t op[64];
  bft_kv_op kop = {.opcode = BFT_KV_PUT, .key = (const uint8_t *)"badsig", .key_len = 6,
                   .value = (const uint8_t *)"x", .value_len = 1};
  int olen = bft_kv_encode(&kop, op, sizeof op);
  if (olen < 0) return -1;
  int len = bft_request_encode(&p->kp, p->cluster->id, seq, op, (uint32_t)olen, req, cap);
  if (len > 0) req[len - 10] ^= 0x01;
  return len;
}

/* Make fd (a connection to replica p->replica) a proven client connection the way a client's
 * becomes one: a valid request (a get) sent to every replica, and replica p->replica's reply to
 * it awaited on fd. 0, or -1 when no reply came. */
static int prove_connection(probe *p, int fd, uint64_t seq) {
  uint8_t op[64], fr[WIRE_FRAME_HEADER_LEN + 256];
  bft_kv_op kop = {.opcode = BFT_KV_GET, .key = (const uint8_t *)"badsig", .key_len = 6};
  int olen = bft_kv_encode(&kop, op, sizeof op);
  int len = olen < 0 ? -1
                     : bft_request_encode(&p->kp, p->cluster->id, seq, op, (uint32_t)olen, fr + WIRE_FRAME_HEADER_LEN,
                                          sizeof fr - WIRE_FRAME_HEADER_LEN);
  if (len < 0) return -1;
  wire_frame_header_encode(fr, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, (uint32_t)len);
  size_t flen = WIRE_FRAME_HEADER_LEN + (size_t)len;
  uint32_t me = p->replica, nothers = 0;
  int others[BFT_MAX_REPLICAS];
  for (uint32_t j = 0; j < p->cluster->n; j++) {
    p->replica = j;
    int f = j == me ? fd : connect_fd(p);
    if (f < 0) continue;
    if (j != me) others[nothers++] = f;
    if (write(f, fr, flen) != (ssize_t)flen && j == me) break;
  }
  p->replica = me;
  uint8_t *buf = malloc(PROBE_MAX_FRAME);
  int rc = -1;
  int64_t deadline = probe_deadline(p);
  p->fd = fd;
  wire_frame_header h;
  while (buf && rc && probe_frame(p, buf, PROBE_MAX_FRAME, &h, deadline) == 0) {
    bft_reply rp;
    if (h.kind == WIRE_KIND_REPLY && bft_reply_verify(p->cluster, buf + WIRE_FRAME_HEADER_LEN, h.body_len, &rp) == 0 &&
        rp.seq == seq && rp.status != BFT_KV_REJECTED)
      rc = 0;
  }
  p->fd = -1;
  free(buf);
  for (uint32_t i = 0; i < nothers; i++) close(others[i]);
  return rc;
}

/* Stream requests with invalid signatures (a key of the cluster file, so each one would cost a
 * verify) on one connection until the replica closes it; with --hold, keep doing so on new
 * connections for that long. With --prove 1 each connection first proves the key with a valid
 * request, then sends its forgeries (at most 64) in one write, so the replica reads them
 * together. Prints requests sent, signed rejections received, connections. */
static int probe_badsig(probe *p) {
  uint32_t per_conn = p->conns ? p->conns : 1000;
  int64_t end = now_ms() + (p->hold_s ? (int64_t)p->hold_s * 1000 : p->timeout_ms);
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  /* Above any seq the key's honest owner uses (µs since the epoch): each request would cost a
   * verify rather than be ignored as old. */
  uint64_t sent = 0, reply_bytes = 0, conns = 0, closed = 0,
           seq = ((uint64_t)rt.tv_sec * 1000000u + (uint64_t)rt.tv_nsec / 1000u) * 1000u;
  uint8_t req[256], buf[4096];
  do {
    int fd = connect_fd(p);
    if (fd < 0) {
      usleep(10000);
      continue;
    }
    conns++;
    int dead = 0;
    if (p->prove) {
      if (prove_connection(p, fd, ++seq) != 0) {
        printf("net-probe: replica %u did not answer the valid request that proves the connection\n", p->replica);
        close(fd);
        return 1;
      }
      uint8_t *all = malloc(64 * (WIRE_FRAME_HEADER_LEN + sizeof req));
      size_t used = 0;
      for (uint32_t i = 0; all && i < per_conn && i < 64; i++) {
        int len = tampered_request(p, ++seq, all + used + WIRE_FRAME_HEADER_LEN, sizeof req);
        wire_frame_header_encode(all + used, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, (uint32_t)len);
        used += WIRE_FRAME_HEADER_LEN + (size_t)len;
        sent++;
      }
      if (!all || write(fd, all, used) != (ssize_t)used) dead = 1;
      free(all);
    }
    for (uint32_t i = 0; !p->prove && i < per_conn && !dead && now_ms() < end; i++) {
      int len = tampered_request(p, ++seq, req, sizeof req);
      uint8_t hdr[WIRE_FRAME_HEADER_LEN];
      wire_frame_header_encode(hdr, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, (uint32_t)len);
      if (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr || write(fd, req, (size_t)len) != len) dead = 1;
      else sent++;
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      while (!dead && poll(&pfd, 1, 0) == 1) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) dead = 1;
        else reply_bytes += (uint64_t)r;
      }
    }
    if (!dead) { /* wait (bounded) for the replica to close it */
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      int64_t d = now_ms() + 2000;
      while (!dead && now_ms() < d && poll(&pfd, 1, 100) >= 0)
        if (pfd.revents && read(fd, buf, sizeof buf) <= 0) dead = 1;
    }
    closed += (uint64_t)dead;
    close(fd);
  } while (p->hold_s && now_ms() < end);
  printf("BADSIG replica=%u sent=%llu reply_bytes=%llu connections=%llu closed_by_replica=%llu proven=%d\n", p->replica,
         (unsigned long long)sent, (unsigned long long)reply_bytes, (unsigned long long)conns, (unsigned long long)closed,
         p->prove);
  return 0;
}

/* For --hold seconds: HELLO claiming replica `as`, read the challenge, answer with a made-up
 * proof, next connection. Prints attempts, challenges received and signatures received (any
 * HELLO_ACK longer than a challenge). */
static int probe_helloflood(probe *p) {
  int64_t end = now_ms() + (int64_t)(p->hold_s ? p->hold_s : 5) * 1000;
  uint64_t attempts = 0, challenges = 0, signatures = 0;
  uint8_t buf[512], nonce[32], junk[RT_HELLO_SIG_LEN];
  memset(junk, 0x5a, sizeof junk);
  while (now_ms() < end) {
    if (probe_connect(p) != 0) {
      if (p->fd >= 0) close(p->fd);
      p->fd = -1;
      usleep(10000);
      continue;
    }
    attempts++;
    wire_frame_header h;
    int saved = p->timeout_ms;
    p->timeout_ms = 1000;
    if (probe_hello(p, p->as, nonce) == 0 && probe_frame(p, buf, sizeof buf, &h, probe_deadline(p)) == 0 &&
        h.kind == WIRE_KIND_HELLO_ACK) {
      if (h.body_len == RT_HELLO_CHALLENGE_LEN) challenges++;
      else signatures++;
      (void)probe_send(p, WIRE_KIND_HELLO_ACK, p->as, junk, sizeof junk); /* best effort: we close anyway */
    }
    p->timeout_ms = saved;
    close(p->fd);
    p->fd = -1;
  }
  printf("HELLOFLOOD replica=%u attempts=%llu challenges=%llu signatures=%llu\n", p->replica,
         (unsigned long long)attempts, (unsigned long long)challenges, (unsigned long long)signatures);
  return signatures ? 1 : 0;
}

static void probe_usage(FILE *f) {
  fprintf(f,
          "usage: net-probe tamper --config FILE --key CLIENT_KEY --replica I [--timeout SEC]\n"
          "       net-probe impersonate --config FILE --key REPLICA_KEY --replica I --as J [--timeout SEC]\n"
          "       net-probe stranger --config FILE --key ANY_KEY --replica I --as J [--timeout SEC]\n"
          "       net-probe flood --config FILE --key ANY_KEY --replica I --conns N --hold SEC [--reconnect 1]\n"
          "       net-probe slow --config FILE --key ANY_KEY --replica I [--timeout SEC]\n"
          "       net-probe badsig --config FILE --key CLIENT_KEY --replica I [--conns PER_CONN] [--hold SEC] [--prove 1]\n"
          "       net-probe helloflood --config FILE --key ANY_KEY --replica I --as J [--hold SEC]\n");
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* a replica that hangs up makes write() fail with EPIPE, not kill us */
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    probe_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *mode = argv[1], *config = NULL, *key = NULL;
  probe p = {.replica = 0, .timeout_ms = 5000, .fd = -1};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--config") == 0) config = argv[i + 1];
    else if (strcmp(argv[i], "--key") == 0) key = argv[i + 1];
    else if (strcmp(argv[i], "--replica") == 0) p.replica = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--as") == 0) p.as = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--timeout") == 0) p.timeout_ms = atoi(argv[i + 1]) * 1000;
    else if (strcmp(argv[i], "--conns") == 0) p.conns = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--hold") == 0) p.hold_s = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--reconnect") == 0) p.reconnect = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--prove") == 0) p.prove = atoi(argv[i + 1]);
    else {
      probe_usage(stderr);
      return 2;
    }
  }
  char err[512];
  p.cluster = calloc(1, sizeof *p.cluster);
  if (!config || !key || !p.cluster || bft_crypto_init() != 0) {
    probe_usage(stderr);
    return 2;
  }
  if (bft_cluster_load(config, p.cluster, err, sizeof err) != 0 || bft_keyfile_load(key, &p.kp, err, sizeof err) != 0) {
    fprintf(stderr, "net-probe: %s\n", err);
    return 2;
  }
  if (p.replica >= p.cluster->n) {
    fprintf(stderr, "net-probe: no replica %u\n", p.replica);
    return 2;
  }
  int ex = 2;
  if (strcmp(mode, "tamper") == 0) ex = probe_tamper(&p);
  else if (strcmp(mode, "impersonate") == 0) ex = probe_impersonate(&p);
  else if (strcmp(mode, "stranger") == 0) ex = probe_stranger(&p);
  else if (strcmp(mode, "flood") == 0) ex = probe_flood(&p);
  else if (strcmp(mode, "slow") == 0) ex = probe_slow(&p);
  else if (strcmp(mode, "badsig") == 0) ex = probe_badsig(&p);
  else if (strcmp(mode, "helloflood") == 0) ex = probe_helloflood(&p);
  else probe_usage(stderr);
  if (p.fd >= 0) close(p.fd);
  bft_keypair_wipe(&p.kp);
  free(p.cluster);
  return ex;
}
