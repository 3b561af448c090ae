/* The replica's side of the application socket (app_socket.h). Blocking calls on the replica's
 * loop thread: execution is synchronous anyway, and one round trip per batch keeps it cheap. */
#include "replica/app_socket.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocols/wire/wire.h"
#include "replica/app.h"
#include "replica/app_proto.h"

typedef struct app_sock {
  bft_app_ops ops;
  int fd;
  char where[120];  /* "unix:PATH" */
  char name[200];   /* shown as the application's name */
  uint32_t features;
  uint64_t height;
  uint8_t digest[BFT_APP_DIGEST_LEN];
  uint8_t *out, *in;
  size_t out_cap, in_cap;
  int timeout_ms;
  int dead;
  char err[460];
} app_sock;

static int fail(app_sock *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(app_sock *s, const char *fmt, ...) {
  if (!s->dead) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->err, sizeof s->err, "application at %.120s %.320s", s->where, msg);
    s->dead = 1;
  }
  return BFT_E_IO;
}

static const char *msg_name(uint8_t t) {
  static const char *const names[] = {"?", "HELLO", "EXECUTE", "DIGEST", "SNAPSHOT_BEGIN", "SNAPSHOT_NEXT",
                                      "SNAPSHOT_END", "RESTORE_BEGIN", "RESTORE_CHUNK", "RESTORE_END", "CHECK", "QUERY"};
  return t < sizeof names / sizeof *names ? names[t] : "?";
}

/* Room for a payload of n bytes after the 5-byte header. */
static uint8_t *payload(app_sock *s, size_t n) { return app_frame_room(&s->out, &s->out_cap, n); }

/* Send request `type` with `len` payload bytes (already in place) and read its answer into
 * s->in: the answer's payload length, or a negative error (s->err says why). */
static int call(app_sock *s, uint8_t type, size_t len, uint32_t *alen) {
  if (s->dead) return BFT_E_IO;
  uint32_t fl = (uint32_t)len + 1;
  for (int i = 0; i < 4; i++) s->out[i] = (uint8_t)(fl >> (8 * i));
  s->out[4] = type;
  char why[200];
  if (app_write_all(s->fd, s->out, len + 5, s->timeout_ms, why, sizeof why) != 0)
    return fail(s, "stopped answering (%s while sending %s)", why, msg_name(type));
  uint8_t at;
  int rc = app_read_frame(s->fd, &s->in, &s->in_cap, &at, alen, s->timeout_ms, why, sizeof why);
  if (rc) return fail(s, "stopped answering (%s, waiting for the answer to %s)", why, msg_name(type));
  if (at == APP_MSG_ERROR) {
    wire_reader r;
    wire_reader_init(&r, s->in, *alen);
    uint32_t ml;
    const uint8_t *m = wire_get_blob(&r, &ml, 1000);
    return fail(s, "reported an error to %s: %.*s", msg_name(type), r.err ? 0 : (int)(ml > 200 ? 200 : ml),
                r.err ? "" : (const char *)m);
  }
  if (at != (type | 0x80)) return fail(s, "answered garbage: message type 0x%02x to %s", at, msg_name(type));
  return 0;
}

static int garbage(app_sock *s, const char *what, int rc) {
  return fail(s, "answered garbage to %s (%s)", what, bft_strerror(rc));
}

static size_t ops_size(const bft_app_op *ops, uint32_t n) {
  size_t sz = 4;
  for (uint32_t i = 0; i < n; i++) sz += 4 + BFT_APP_KEY_LEN + 8 + 4 + ops[i].len;
  return sz;
}

static void put_ops(wire_writer *w, const bft_app_op *ops, uint32_t n) {
  wire_put_u32(w, n);
  for (uint32_t i = 0; i < n; i++) {
    wire_put_u32(w, ops[i].client);
    wire_put_fixed(w, ops[i].client_key, BFT_APP_KEY_LEN);
    wire_put_u64(w, ops[i].seq);
    wire_put_blob(w, ops[i].op, ops[i].len);
  }
}

static int sock_execute(void *app, uint64_t height, const bft_app_op *ops, uint32_t n, bft_app_result *res) {
  app_sock *s = app;
  size_t sz = 8 + ops_size(ops, n);
  uint8_t *p = payload(s, sz);
  if (!p) return fail(s, "could not be sent a batch (out of memory)");
  wire_writer w;
  wire_writer_init(&w, p, sz);
  wire_put_u64(&w, height);
  put_ops(&w, ops, n);
  uint32_t al;
  int rc = call(s, APP_MSG_EXECUTE, w.len, &al);
  if (rc) return rc;
  wire_reader r;
  wire_reader_init(&r, s->in, al);
  uint64_t h = wire_get_u64(&r);
  uint32_t m = wire_get_u32(&r);
  if (!r.err && (h != height || m != n))
    return fail(s, "answered garbage to EXECUTE of height %llu: %u results for height %llu (expected %u)",
                (unsigned long long)height, m, (unsigned long long)h, n);
  for (uint32_t i = 0; i < n && !r.err; i++) {
    res[i].status = wire_get_u8(&r);
    uint32_t l;
    const uint8_t *d = wire_get_blob(&r, &l, BFT_APP_MAX_RESULT);
    if (r.err) break;
    memcpy(res[i].data, d, l);
    res[i].len = l;
  }
  wire_get_fixed(&r, s->digest, BFT_APP_DIGEST_LEN);
  if ((rc = wire_reader_finish(&r)) != 0) return garbage(s, "EXECUTE", rc);
  s->height = height;
  return 0;
}

static void sock_digest(void *app, uint8_t out[BFT_APP_DIGEST_LEN]) {
  app_sock *s = app;
  memcpy(out, s->digest, BFT_APP_DIGEST_LEN); /* from the last EXECUTE, HELLO or RESTORE_END */
}

static int sock_check(void *app, const bft_app_op *ops, uint32_t n, uint8_t *verdict,
                      char (*reason)[BFT_APP_MAX_REASON]) {
  app_sock *s = app;
  size_t sz = ops_size(ops, n);
  uint8_t *p = payload(s, sz);
  if (!p) return fail(s, "could not be sent a check (out of memory)");
  wire_writer w;
  wire_writer_init(&w, p, sz);
  put_ops(&w, ops, n);
  uint32_t al;
  int rc = call(s, APP_MSG_CHECK, w.len, &al);
  if (rc) return rc;
  wire_reader r;
  wire_reader_init(&r, s->in, al);
  if (wire_get_u32(&r) != n && !r.err) return fail(s, "answered garbage to CHECK (count)");
  for (uint32_t i = 0; i < n && !r.err; i++) {
    verdict[i] = wire_get_u8(&r);
    uint32_t l;
    const uint8_t *d = wire_get_blob(&r, &l, BFT_APP_MAX_REASON - 1);
    if (r.err) break;
    memcpy(reason[i], d, l);
    reason[i][l] = 0;
  }
  if ((rc = wire_reader_finish(&r)) != 0) return garbage(s, "CHECK", rc);
  return 0;
}

static int sock_query(void *app, const uint8_t *q, uint32_t len, bft_app_result *res) {
  app_sock *s = app;
  uint8_t *p = payload(s, 4 + (size_t)len);
  if (!p) return fail(s, "could not be sent a query (out of memory)");
  wire_writer w;
  wire_writer_init(&w, p, 4 + (size_t)len);
  wire_put_blob(&w, q, len);
  uint32_t al;
  int rc = call(s, APP_MSG_QUERY, w.len, &al);
  if (rc) return rc;
  wire_reader r;
  wire_reader_init(&r, s->in, al);
  res->status = wire_get_u8(&r);
  uint32_t l;
  const uint8_t *d = wire_get_blob(&r, &l, BFT_APP_MAX_RESULT);
  if ((rc = wire_reader_finish(&r)) != 0) return garbage(s, "QUERY", rc);
  memcpy(res->data, d, l);
  res->len = l;
  return 0;
}

/* Snapshots: one at a time per connection, the application keeps the cursor. */
static int sock_snapshot_begin(void *app, void **cursor) {
  app_sock *s = app;
  uint32_t al;
  if (!payload(s, 0)) return BFT_E_NOMEM;
  int rc = call(s, APP_MSG_SNAPSHOT_BEGIN, 0, &al);
  *cursor = s;
  return rc ? rc : al ? garbage(s, "SNAPSHOT_BEGIN", BFT_E_TRAILING) : 0;
}

static int sock_snapshot_next(void *app, void *cursor, uint8_t *buf, uint32_t cap, uint32_t *len, int *done) {
  app_sock *s = app;
  uint8_t *p = payload(s, 4);
  if (!p) return BFT_E_NOMEM;
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(cap >> (8 * i));
  uint32_t al;
  int rc = call(s, APP_MSG_SNAPSHOT_NEXT, 4, &al);
  if (rc) return rc;
  wire_reader r;
  wire_reader_init(&r, s->in, al);
  int d = wire_get_bool(&r);
  uint32_t l;
  const uint8_t *c = wire_get_blob(&r, &l, cap);
  if ((rc = wire_reader_finish(&r)) != 0) return garbage(s, "SNAPSHOT_NEXT", rc);
  memcpy(buf, c, l);
  *len = l;
  *done = d;
  return 0;
}

static void sock_snapshot_end(void *app, void *cursor) {
  app_sock *s = app;
  uint32_t al;
  if (payload(s, 0)) (void)call(s, APP_MSG_SNAPSHOT_END, 0, &al); /* a failure shows at the next call */
}

static int sock_restore_begin(void *app, uint64_t height) {
  app_sock *s = app;
  uint8_t *p = payload(s, 8);
  if (!p) return BFT_E_NOMEM;
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(height >> (8 * i));
  uint32_t al;
  int rc = call(s, APP_MSG_RESTORE_BEGIN, 8, &al);
  s->height = height;
  return rc ? rc : al ? garbage(s, "RESTORE_BEGIN", BFT_E_TRAILING) : 0;
}

static int sock_restore_chunk(void *app, const uint8_t *c, uint32_t len) {
  app_sock *s = app;
  uint8_t *p = payload(s, 4 + (size_t)len);
  if (!p) return BFT_E_NOMEM;
  wire_writer w;
  wire_writer_init(&w, p, 4 + (size_t)len);
  wire_put_blob(&w, c, len);
  uint32_t al;
  int rc = call(s, APP_MSG_RESTORE_CHUNK, w.len, &al);
  return rc ? rc : al ? garbage(s, "RESTORE_CHUNK", BFT_E_TRAILING) : 0;
}

static int sock_restore_end(void *app) {
  app_sock *s = app;
  uint32_t al;
  if (!payload(s, 0)) return BFT_E_NOMEM;
  int rc = call(s, APP_MSG_RESTORE_END, 0, &al);
  if (rc) return rc;
  if (al != BFT_APP_DIGEST_LEN) return garbage(s, "RESTORE_END", BFT_E_MALFORMED);
  memcpy(s->digest, s->in, BFT_APP_DIGEST_LEN);
  return 0;
}

static uint64_t sock_height(void *app) { return ((app_sock *)app)->height; }

static const char *sock_last_error(void *app) {
  app_sock *s = app;
  return s->dead ? s->err : NULL;
}

static int connect_unix(const char *path, int connect_ms, char *why, size_t whylen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return snprintf(why, whylen, "socket path too long"), -1;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return snprintf(why, whylen, "socket: %s", strerror(errno)), -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    int e = errno;
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if ((e != ENOENT && e != ECONNREFUSED) || ms >= connect_ms)
      return snprintf(why, whylen, "cannot connect: %s", strerror(e)), -1;
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
}

static int hello(app_sock *s, char *err, size_t errlen) {
  static const char me[] = "bft-replica";
  uint8_t *p = payload(s, 4 + 4 + sizeof me);
  if (!p) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  wire_writer w;
  wire_writer_init(&w, p, 8 + sizeof me);
  wire_put_u32(&w, APP_PROTO_VERSION);
  wire_put_blob(&w, me, sizeof me - 1);
  uint32_t al;
  int rc = call(s, APP_MSG_HELLO, w.len, &al);
  if (rc) return snprintf(err, errlen, "%s", s->err), rc;
  wire_reader r;
  wire_reader_init(&r, s->in, al);
  uint32_t ver = wire_get_u32(&r), nl;
  const uint8_t *nm = wire_get_blob(&r, &nl, 64);
  s->height = wire_get_u64(&r);
  wire_get_fixed(&r, s->digest, BFT_APP_DIGEST_LEN);
  s->features = wire_get_u32(&r);
  if ((rc = wire_reader_finish(&r)) != 0) {
    garbage(s, "HELLO", rc);
    return snprintf(err, errlen, "%s", s->err), rc;
  }
  if (ver != APP_PROTO_VERSION)
    return snprintf(err, errlen, "application at %s speaks protocol version %u; this replica speaks %u", s->where, ver,
                    APP_PROTO_VERSION), BFT_E_VERSION;
  snprintf(s->name, sizeof s->name, "%.*s at %s", (int)nl, (const char *)nm, s->where);
  return 0;
}

int rt_app_socket_attach(int fd, const char *where, int timeout_ms, bft_app *app, char *err, size_t errlen) {
  app_sock *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  }
  s->fd = fd;
  s->timeout_ms = timeout_ms;
  snprintf(s->where, sizeof s->where, "%.110s", where);
  int rc = hello(s, err, errlen);
  if (rc) {
    close(s->fd);
    free(s->out);
    free(s->in);
    free(s);
    return rc;
  }
  s->ops = (bft_app_ops){.name = s->name, .execute = sock_execute, .digest = sock_digest, .height = sock_height,
                         .last_error = sock_last_error};
  if (s->features & APP_FEATURE_CHECK) s->ops.check = sock_check;
  if (s->features & APP_FEATURE_QUERY) s->ops.query = sock_query;
  if (s->features & APP_FEATURE_SNAPSHOT) {
    s->ops.snapshot_begin = sock_snapshot_begin;
    s->ops.snapshot_next = sock_snapshot_next;
    s->ops.snapshot_end = sock_snapshot_end;
    s->ops.restore_begin = sock_restore_begin;
    s->ops.restore_chunk = sock_restore_chunk;
    s->ops.restore_end = sock_restore_end;
  }
  app->ops = &s->ops;
  app->state = s;
  return 0;
}

int rt_app_socket_open(const char *spec, int connect_ms, int timeout_ms, bft_app *app, char *err, size_t errlen) {
  if (strncmp(spec, "unix:", 5) != 0 || !spec[5])
    return snprintf(err, errlen, "--app must be kv or unix:PATH, got '%s'", spec), BFT_E_INVAL;
  char why[200];
  int fd = connect_unix(spec + 5, connect_ms, why, sizeof why);
  if (fd < 0) return snprintf(err, errlen, "application at %.110s: %s", spec, why), BFT_E_IO;
  return rt_app_socket_attach(fd, spec, timeout_ms, app, err, errlen);
}

void rt_app_socket_close(bft_app *app) {
  if (!app || !app->state) return;
  app_sock *s = app->state;
  if (s->fd >= 0) close(s->fd);
  free(s->out);
  free(s->in);
  free(s);
  app->state = NULL;
  app->ops = NULL;
}

int rt_app_socket_fd(const bft_app *app) {
  return app && app->state && app->ops && app->ops->execute == sock_execute ? ((app_sock *)app->state)->fd : -1;
}

int rt_app_socket_idle_check(const bft_app *app, char *why, size_t whylen) {
  app_sock *s = app->state;
  uint8_t b;
  ssize_t n = recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  snprintf(why, whylen, "application at %s %s while the replica was not calling it", s->where,
           n == 0 ? "closed the connection" : n > 0 ? "sent bytes nobody asked for" : "broke the connection");
  return -1;
}
