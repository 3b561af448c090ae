/* The application's side of the application socket: bft_app_serve_unix serves any bft_app to
 * a replica (docs/app-socket.md), so a C application can run in its own process exactly as a
 * Python one does. One connection at a time, blocking, one answer per request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocols/wire/wire.h"
#include "replica/app.h"
#include "replica/app_proto.h"

typedef struct srv {
  const bft_app *app;
  int fd;
  uint8_t *in, *out;
  size_t in_cap, out_cap;
  uint8_t *arena;           /* BFT_APP_MAX_BATCH results */
  bft_app_op *ops;
  bft_app_result *res;
  uint8_t *verdicts;
  char (*reasons)[BFT_APP_MAX_REASON];
  void *cursor;             /* snapshot in progress */
  int snapping;
} srv;

static uint8_t *room(srv *s, size_t n) { return app_frame_room(&s->out, &s->out_cap, n); }

static int answer(srv *s, uint8_t type, size_t len) {
  uint32_t fl = (uint32_t)len + 1;
  for (int i = 0; i < 4; i++) s->out[i] = (uint8_t)(fl >> (8 * i));
  s->out[4] = type;
  char why[128];
  return app_write_all(s->fd, s->out, len + 5, -1, why, sizeof why);
}

static int answer_error(srv *s, const char *msg) {
  size_t l = strlen(msg);
  uint8_t *p = room(s, 4 + l);
  if (!p) return -1;
  wire_writer w;
  wire_writer_init(&w, p, 4 + l);
  wire_put_blob(&w, msg, (uint32_t)l);
  return answer(s, APP_MSG_ERROR, w.len);
}

/* Decode n ops from r into s->ops (borrowed from the request). */
static int get_ops(srv *s, wire_reader *r, uint32_t *n) {
  *n = wire_get_count(r, BFT_APP_MAX_BATCH);
  for (uint32_t i = 0; i < *n && !r->err; i++) {
    s->ops[i].client = wire_get_u32(r);
    s->ops[i].client_key = wire_get_view(r, BFT_APP_KEY_LEN);
    s->ops[i].seq = wire_get_u64(r);
    s->ops[i].op = wire_get_blob(r, &s->ops[i].len, BFT_APP_MAX_OP);
  }
  return r->err;
}

static int do_execute(srv *s, wire_reader *r) {
  uint64_t h = wire_get_u64(r);
  uint32_t n;
  if (get_ops(s, r, &n) || wire_reader_finish(r)) return answer_error(s, "malformed EXECUTE");
  for (uint32_t i = 0; i < n; i++) s->res[i] = (bft_app_result){.data = s->arena + (size_t)i * BFT_APP_MAX_RESULT};
  if (s->app->ops->execute(s->app->state, h, s->ops, n, s->res) != 0) return answer_error(s, "execute failed");
  size_t sz = 12 + BFT_APP_DIGEST_LEN;
  for (uint32_t i = 0; i < n; i++) sz += 5 + s->res[i].len;
  uint8_t *p = room(s, sz);
  if (!p) return -1;
  wire_writer w;
  wire_writer_init(&w, p, sz);
  wire_put_u64(&w, h);
  wire_put_u32(&w, n);
  for (uint32_t i = 0; i < n; i++) {
    wire_put_u8(&w, s->res[i].status);
    wire_put_blob(&w, s->res[i].data, s->res[i].len);
  }
  uint8_t d[BFT_APP_DIGEST_LEN];
  s->app->ops->digest(s->app->state, d);
  wire_put_fixed(&w, d, sizeof d);
  return answer(s, APP_MSG_EXECUTE | 0x80, w.len);
}

static int do_check(srv *s, wire_reader *r) {
  uint32_t n;
  if (get_ops(s, r, &n) || wire_reader_finish(r)) return answer_error(s, "malformed CHECK");
  memset(s->verdicts, 0, n);
  for (uint32_t i = 0; i < n; i++) s->reasons[i][0] = 0;
  if (s->app->ops->check && s->app->ops->check(s->app->state, s->ops, n, s->verdicts, s->reasons) != 0)
    return answer_error(s, "check failed");
  size_t sz = 4 + (size_t)n * (5 + BFT_APP_MAX_REASON);
  uint8_t *p = room(s, sz);
  if (!p) return -1;
  wire_writer w;
  wire_writer_init(&w, p, sz);
  wire_put_u32(&w, n);
  for (uint32_t i = 0; i < n; i++) {
    s->reasons[i][BFT_APP_MAX_REASON - 1] = 0;
    wire_put_u8(&w, s->verdicts[i] ? 1 : 0);
    wire_put_blob(&w, s->reasons[i], s->verdicts[i] ? (uint32_t)strlen(s->reasons[i]) : 0);
  }
  return answer(s, APP_MSG_CHECK | 0x80, w.len);
}

static int do_query(srv *s, wire_reader *r) {
  uint32_t l;
  const uint8_t *q = wire_get_blob(r, &l, BFT_APP_MAX_OP);
  if (wire_reader_finish(r)) return answer_error(s, "malformed QUERY");
  bft_app_result res = {.status = BFT_APP_REJECTED, .data = s->arena};
  if (!s->app->ops->query) {
    memcpy(res.data, "no queries", 10);
    res.len = 10;
  } else if (s->app->ops->query(s->app->state, q, l, &res) != 0) {
    return answer_error(s, "query failed");
  }
  uint8_t *p = room(s, 5 + res.len);
  if (!p) return -1;
  wire_writer w;
  wire_writer_init(&w, p, 5 + res.len);
  wire_put_u8(&w, res.status);
  wire_put_blob(&w, res.data, res.len);
  return answer(s, APP_MSG_QUERY | 0x80, w.len);
}

static int do_snapshot(srv *s, uint8_t type, wire_reader *r) {
  const bft_app_ops *o = s->app->ops;
  if (!o->snapshot_begin) return answer_error(s, "no snapshots");
  if (type == APP_MSG_SNAPSHOT_BEGIN) {
    if (s->snapping) o->snapshot_end(s->app->state, s->cursor);
    s->snapping = 0;
    if (wire_reader_finish(r) || o->snapshot_begin(s->app->state, &s->cursor) != 0)
      return answer_error(s, "snapshot failed");
    s->snapping = 1;
    return room(s, 0) ? answer(s, type | 0x80, 0) : -1;
  }
  if (type == APP_MSG_SNAPSHOT_END) {
    if (s->snapping) o->snapshot_end(s->app->state, s->cursor);
    s->snapping = 0;
    return room(s, 0) ? answer(s, type | 0x80, 0) : -1;
  }
  uint32_t max = wire_get_u32(r);
  if (wire_reader_finish(r) || !s->snapping) return answer_error(s, "malformed SNAPSHOT_NEXT");
  if (max > BFT_APP_MAX_CHUNK) max = BFT_APP_MAX_CHUNK;
  uint8_t *p = room(s, 5 + (size_t)max);
  if (!p) return -1;
  uint32_t l = 0;
  int done = 0;
  if (o->snapshot_next(s->app->state, s->cursor, p + 5, max, &l, &done) != 0 || l > max)
    return answer_error(s, "snapshot failed");
  p[0] = done ? 1 : 0;
  for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)(l >> (8 * i));
  return answer(s, type | 0x80, 5 + (size_t)l);
}

static int do_restore(srv *s, uint8_t type, wire_reader *r) {
  const bft_app_ops *o = s->app->ops;
  if (!o->restore_begin) return answer_error(s, "no restore");
  int rc;
  if (type == APP_MSG_RESTORE_BEGIN) {
    uint64_t h = wire_get_u64(r);
    rc = wire_reader_finish(r) ? -1 : o->restore_begin(s->app->state, h);
  } else if (type == APP_MSG_RESTORE_CHUNK) {
    uint32_t l;
    const uint8_t *c = wire_get_blob(r, &l, BFT_APP_MAX_CHUNK);
    rc = wire_reader_finish(r) ? -1 : o->restore_chunk(s->app->state, c, l);
  } else {
    rc = wire_reader_finish(r) ? -1 : o->restore_end(s->app->state);
    if (!rc) {
      uint8_t *p = room(s, BFT_APP_DIGEST_LEN);
      if (!p) return -1;
      o->digest(s->app->state, p);
      return answer(s, type | 0x80, BFT_APP_DIGEST_LEN);
    }
  }
  if (rc) return answer_error(s, "restore failed");
  return room(s, 0) ? answer(s, type | 0x80, 0) : -1;
}

static int do_hello(srv *s, wire_reader *r) {
  uint32_t ver = wire_get_u32(r), nl;
  (void)wire_get_blob(r, &nl, 256);
  if (wire_reader_finish(r)) return answer_error(s, "malformed HELLO");
  if (ver != APP_PROTO_VERSION) return answer_error(s, "unsupported protocol version");
  const bft_app_ops *o = s->app->ops;
  const char *name = o->name ? o->name : "app";
  size_t sz = 4 + 4 + strlen(name) + 8 + BFT_APP_DIGEST_LEN + 4;
  uint8_t *p = room(s, sz);
  if (!p) return -1;
  wire_writer w;
  wire_writer_init(&w, p, sz);
  wire_put_u32(&w, APP_PROTO_VERSION);
  wire_put_blob(&w, name, (uint32_t)strlen(name));
  wire_put_u64(&w, o->height ? o->height(s->app->state) : 0);
  uint8_t d[BFT_APP_DIGEST_LEN];
  o->digest(s->app->state, d);
  wire_put_fixed(&w, d, sizeof d);
  wire_put_u32(&w, (o->check ? APP_FEATURE_CHECK : 0) | (o->query ? APP_FEATURE_QUERY : 0) |
                       (o->snapshot_begin && o->restore_begin ? APP_FEATURE_SNAPSHOT : 0));
  return answer(s, APP_MSG_HELLO | 0x80, w.len);
}

/* Answer one replica connection until it closes or *stop. */
static void serve_conn(srv *s, volatile int *stop) {
  for (;;) {
    if (stop && *stop) return;
    uint8_t type;
    uint32_t len;
    char why[200];
    if (app_read_frame(s->fd, &s->in, &s->in_cap, &type, &len, -1, why, sizeof why) != 0) return;
    wire_reader r;
    wire_reader_init(&r, s->in, len);
    int rc;
    switch (type) {
      case APP_MSG_HELLO: rc = do_hello(s, &r); break;
      case APP_MSG_EXECUTE: rc = do_execute(s, &r); break;
      case APP_MSG_DIGEST:
        rc = room(s, BFT_APP_DIGEST_LEN) ? (s->app->ops->digest(s->app->state, s->out + 5),
                                            answer(s, type | 0x80, BFT_APP_DIGEST_LEN))
                                         : -1;
        break;
      case APP_MSG_CHECK: rc = do_check(s, &r); break;
      case APP_MSG_QUERY: rc = do_query(s, &r); break;
      case APP_MSG_SNAPSHOT_BEGIN:
      case APP_MSG_SNAPSHOT_NEXT:
      case APP_MSG_SNAPSHOT_END: rc = do_snapshot(s, type, &r); break;
      case APP_MSG_RESTORE_BEGIN:
      case APP_MSG_RESTORE_CHUNK:
      case APP_MSG_RESTORE_END: rc = do_restore(s, type, &r); break;
      default: rc = answer_error(s, "unknown message type");
    }
    if (rc) return;
  }
}

int bft_app_serve_unix(const char *path, const bft_app *app, volatile int *stop) {
  if (!rt_app_valid(app->ops, NULL, 0)) return BFT_E_INVAL;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return BFT_E_INVAL;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return BFT_E_IO;
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path); /* a stale socket of an earlier run */
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4) != 0) {
    close(lfd);
    return BFT_E_IO;
  }
  srv s = {.app = app, .fd = -1};
  s.arena = malloc((size_t)BFT_APP_MAX_BATCH * BFT_APP_MAX_RESULT);
  s.ops = calloc(BFT_APP_MAX_BATCH, sizeof *s.ops);
  s.res = calloc(BFT_APP_MAX_BATCH, sizeof *s.res);
  s.verdicts = calloc(BFT_APP_MAX_BATCH, 1);
  s.reasons = calloc(BFT_APP_MAX_BATCH, sizeof *s.reasons);
  int rc = s.arena && s.ops && s.res && s.verdicts && s.reasons ? 0 : BFT_E_NOMEM;
  while (!rc && !(stop && *stop)) {
    s.fd = accept(lfd, NULL, NULL);
    if (s.fd < 0) {
      if (errno == EINTR) continue;
      rc = BFT_E_IO;
      break;
    }
    serve_conn(&s, stop);
    if (s.snapping) app->ops->snapshot_end(app->state, s.cursor);
    s.snapping = 0;
    close(s.fd);
  }
  close(lfd);
  unlink(path);
  free(s.in);
  free(s.out);
  free(s.arena);
  free(s.ops);
  free(s.res);
  free(s.verdicts);
  free(s.reasons);
  return rc;
}
