/* bft-client evidence: ask one replica for the equivocation evidence it holds and check every
 * piece with the cluster file alone — both messages must carry valid signatures of the replica
 * accused, under the engine's tag for their kind, and differ. One blocking request/answer on
 * its own connection (nothing else of the client library is needed). */
#include "client/bft_evidence.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocols/ledger.h"
#include "protocols/request.h"
#include "protocols/wire/wire.h"
#include "replica/snapshot.h"

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

int bft_evidence_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen) {
  *body = NULL;
  *len = 0;
  uint64_t deadline = now_ms() + timeout_ms;
  int fd = dial(&c->replicas[replica], deadline, err, errlen);
  if (fd < 0) return fd;
  uint8_t hdr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(hdr, WIRE_KIND_EVIDENCE_GET, WIRE_SENDER_CLIENT, 0);
  int rc = io_all(fd, hdr, sizeof hdr, 1, deadline);
  if (!rc) rc = io_all(fd, hdr, sizeof hdr, 0, deadline);
  wire_frame_header h;
  if (!rc && (wire_frame_header_decode(hdr, sizeof hdr, &h) != 0 || h.kind != WIRE_KIND_EVIDENCE)) rc = BFT_E_MALFORMED;
  uint8_t *b = NULL;
  if (!rc && !(b = malloc(h.body_len ? h.body_len : 1))) rc = BFT_E_NOMEM;
  if (!rc) rc = io_all(fd, b, h.body_len, 0, deadline);
  close(fd);
  if (rc) {
    free(b);
    snprintf(err, errlen, "no evidence answer from replica %u: %s", replica,
             rc == BFT_E_TIMEOUT ? "timed out" : rc == BFT_E_MALFORMED ? "unexpected answer" : bft_strerror(rc));
    return rc;
  }
  *body = b;
  *len = h.body_len;
  return 0;
}

/* Both messages signed by the offender under the engine's tag for their kind, and not equal. */
static int check_piece(const bft_engine_ops *ops, const bft_engine_config *cfg, const bft_engine_env *env,
                       uint32_t offender, uint8_t kind, const uint8_t *data, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, data, len);
  uint32_t l1, l2;
  const uint8_t *m1 = wire_get_blob(&r, &l1, BFT_MAX_ENGINE_MSG);
  const uint8_t *m2 = wire_get_blob(&r, &l2, BFT_MAX_ENGINE_MSG);
  if (wire_reader_finish(&r) != 0) return BFT_E_MALFORMED;
  if (l1 == l2 && memcmp(m1, m2, l1) == 0) return BFT_E_DUPLICATE;
  int rc = bft_engine_check_message(ops, cfg, env, offender, kind, m1, l1);
  return rc ? rc : bft_engine_check_message(ops, cfg, env, offender, kind, m2, l2);
}

int bft_evidence_print(const bft_cluster *c, uint32_t replica, const uint8_t *body, uint32_t len, FILE *out,
                       uint32_t *valid, uint32_t *invalid) {
  *valid = *invalid = 0;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint32_t nl;
  const uint8_t *name = wire_get_blob(&r, &nl, BFT_MAX_PROTOCOL_NAME);
  uint32_t count = wire_get_count(&r, 1u << 16);
  if (r.err) return BFT_E_MALFORMED;
  char proto[BFT_MAX_PROTOCOL_NAME + 1];
  memcpy(proto, name, nl);
  proto[nl] = '\0';
  const bft_engine_ops *ops = bft_engine_find(proto);
  if (!ops) return BFT_E_UNSUPPORTED;
  bft_engine_config cfg;
  bft_config_from_cluster(&cfg, c, 0);
  cfg.self = UINT32_MAX; /* a verifier, not a replica: every id may be the offender */
  bft_std_env ectx = {.cluster = c, .kp = NULL};
  bft_engine_env env;
  bft_std_env_bind(&env, &ectx);
  fprintf(out, "replica=%u protocol=%s evidence=%u\n", replica, proto, count);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t offender = wire_get_u32(&r);
    uint8_t kind = wire_get_u8(&r);
    uint64_t view = wire_get_u64(&r);
    uint32_t dl;
    const uint8_t *data = wire_get_blob(&r, &dl, 2 * BFT_MAX_ENGINE_MSG + 8);
    if (r.err) return BFT_E_MALFORMED;
    int rc = offender < c->n ? check_piece(ops, &cfg, &env, offender, kind, data, dl) : BFT_E_UNKNOWN_SENDER;
    const char *kn = ops->msg_name ? ops->msg_name(kind) : NULL;
    fprintf(out, "  offender=%u kind=%s view=%llu bytes=%u %s\n", offender, kn ? kn : "?", (unsigned long long)view, dl,
            rc ? "INVALID" : "valid: two different messages, both signed by the offender");
    if (rc) ++*invalid;
    else ++*valid;
  }
  return wire_reader_finish(&r);
}

/* ---- the snapshot anchor of a pruned ledger (verify-ledger) -------------------------------- */

int bft_snapmeta_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen) {
  *body = NULL;
  *len = 0;
  uint64_t deadline = now_ms() + timeout_ms;
  int fd = dial(&c->replicas[replica], deadline, err, errlen);
  if (fd < 0) return fd;
  uint8_t hdr[WIRE_FRAME_HEADER_LEN], q[12];
  wire_writer w;
  wire_writer_init(&w, q, sizeof q);
  wire_put_u64(&w, 0);
  wire_put_u32(&w, UINT32_MAX); /* the manifest and certificate of the newest certified snapshot */
  wire_frame_header_encode(hdr, WIRE_KIND_SNAP_GET, WIRE_SENDER_CLIENT, (uint32_t)w.len);
  int rc = io_all(fd, hdr, sizeof hdr, 1, deadline);
  if (!rc) rc = io_all(fd, q, w.len, 1, deadline);
  if (!rc) rc = io_all(fd, hdr, sizeof hdr, 0, deadline);
  wire_frame_header h;
  if (!rc && (wire_frame_header_decode(hdr, sizeof hdr, &h) != 0 || h.kind != WIRE_KIND_SNAP_META)) rc = BFT_E_MALFORMED;
  uint8_t *b = NULL;
  if (!rc && !(b = malloc(h.body_len ? h.body_len : 1))) rc = BFT_E_NOMEM;
  if (!rc) rc = io_all(fd, b, h.body_len, 0, deadline);
  close(fd);
  if (rc) {
    free(b);
    snprintf(err, errlen, "no snapshot answer from replica %u: %s", replica,
             rc == BFT_E_TIMEOUT ? "timed out" : rc == BFT_E_MALFORMED ? "unexpected answer" : bft_strerror(rc));
    return rc;
  }
  *body = b;
  *len = h.body_len;
  return 0;
}

static int anchor_verify(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  const bft_cluster *c = ctx;
  if (signer >= c->n) return BFT_E_UNKNOWN_SENDER;
  return bft_verify(c->replicas[signer].pk, c->id, RT_SNAP_TAG, msg, len, sig);
}

int bft_snapmeta_anchor(const bft_cluster *c, const uint8_t *body, uint32_t len, bft_anchor *a, char *err,
                        size_t errlen) {
  memset(a, 0, sizeof *a);
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t height = wire_get_u64(&r);
  uint32_t ml, cl;
  const uint8_t *m = wire_get_blob(&r, &ml, RT_SNAP_MANIFEST_MAX);
  const uint8_t *cert = wire_get_blob(&r, &cl, RT_SNAP_CERT_MAX);
  a->base = wire_get_u64(&r);
  uint32_t bl;
  (void)wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES); /* the replica's block there (for replicas) */
  if (wire_reader_finish(&r) != 0) return snprintf(err, errlen, "malformed snapshot answer"), BFT_E_MALFORMED;
  if (height == 0) return 0;
  rt_snap_stmt cst, mst;
  uint64_t plen;
  uint32_t nch;
  const uint8_t *cd;
  if (rt_snap_cert_verify(cert, cl, c->n, c->f, anchor_verify, (void *)c, &cst) != 0)
    return snprintf(err, errlen, "the snapshot certificate at %llu does not verify", (unsigned long long)height),
           BFT_E_BAD_CERT;
  if (rt_snap_manifest_decode(m, ml, &mst, &plen, &nch, &cd) != 0 || memcmp(&cst, &mst, sizeof cst) != 0 ||
      cst.height != height)
    return snprintf(err, errlen, "the snapshot manifest at %llu is not the certified one", (unsigned long long)height),
           BFT_E_BAD_CERT;
  a->height = height;
  memcpy(a->block_hash, cst.block_hash, BFT_DIGEST_LEN);
  return 0;
}
