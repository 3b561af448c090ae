/* net-probe: speaks the wire protocol to one replica the way a faulty or hostile party would,
 * for the security test: `tamper` sends a request whose signature was altered after signing and
 * expects a signed REJECTED reply; `impersonate` runs the peer handshake of replica/replica.c
 * claiming one replica's id while signing with another key, and expects to be dropped. Plain
 * blocking sockets with timeouts: one connection, a few frames, every wait bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
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
  uint8_t nonce[32], hello[RT_HELLO_LEN], buf[512];
  randombytes_buf(nonce, sizeof nonce);
  wire_writer w;
  wire_writer_init(&w, hello, sizeof hello);
  wire_put_u8(&w, RT_HELLO_VERSION);
  wire_put_fixed(&w, p->cluster->id, BFT_CLUSTER_ID_LEN);
  wire_put_u32(&w, p->as);
  wire_put_u32(&w, p->replica);
  wire_put_fixed(&w, nonce, sizeof nonce);
  if (w.err || probe_send(p, WIRE_KIND_HELLO, p->as, hello, (uint32_t)w.len) != 0) return 2;
  int64_t deadline = probe_deadline(p);
  wire_frame_header h;
  int rc = probe_frame(p, buf, sizeof buf, &h, deadline);
  if (rc || h.kind != WIRE_KIND_HELLO_ACK || h.body_len != RT_HELLO_ACK_LEN) {
    printf("net-probe: replica %u did not answer the HELLO with a HELLO_ACK (rc %d)\n", p->replica, rc);
    return 1;
  }
  const uint8_t *their_nonce = buf + WIRE_FRAME_HEADER_LEN;
  uint8_t st[72], ack[RT_HELLO_ACK_LEN];
  probe_hs_statement(st, p->replica, p->as, nonce, their_nonce);
  if (bft_verify(p->cluster->replicas[p->replica].pk, p->cluster->id, RT_TAG_HELLO, st, sizeof st,
                 their_nonce + 32) != 0) {
    printf("net-probe: replica %u's HELLO_ACK does not verify: the probe no longer matches replica.c\n", p->replica);
    return 1;
  }
  probe_hs_statement(st, p->as, p->replica, their_nonce, nonce);
  memcpy(ack, nonce, 32);
  bft_sign(&p->kp, p->cluster->id, RT_TAG_HELLO, st, sizeof st, ack + 32);
  if (probe_send(p, WIRE_KIND_HELLO_ACK, p->as, ack, sizeof ack) != 0) {
    printf("DROPPED by replica %u during the handshake\n", p->replica);
    return 0;
  }
  /* An accepted peer would now be sent engine traffic and kept open; a refused one is closed. */
  deadline = probe_deadline(p);
  for (;;) {
    rc = probe_frame(p, buf, sizeof buf, &h, deadline);
    if (rc == -1) {
      printf("DROPPED by replica %u after a handshake signed with the wrong key\n", p->replica);
      return 0;
    }
    if (rc == -2) {
      printf("net-probe: replica %u kept the connection of a peer claiming to be replica %u open\n", p->replica,
             p->as);
      return 1;
    }
    if (rc == -3) { /* a large engine frame: it treats us as a peer */
      printf("net-probe: replica %u sends peer traffic to an impostor\n", p->replica);
      return 1;
    }
  }
}

static void probe_usage(FILE *f) {
  fprintf(f,
          "usage: net-probe tamper --config FILE --key CLIENT_KEY --replica I [--timeout SEC]\n"
          "       net-probe impersonate --config FILE --key REPLICA_KEY --replica I --as J [--timeout SEC]\n");
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
  else probe_usage(stderr);
  if (p.fd >= 0) close(p.fd);
  bft_keypair_wipe(&p.kp);
  free(p.cluster);
  return ex;
}
