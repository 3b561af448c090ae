/* libFuzzer target: the replica's side of the application socket (replica/app_socket.c) reading
 * whatever an application answers. A valid HELLO (every feature offered) is followed by the
 * fuzz input as the application's byte stream, then end of stream; the replica side runs an
 * EXECUTE of two operations, a CHECK, a QUERY and a whole snapshot and restore over it. Nothing
 * may crash, hang or overrun, and once a call failed every later one fails too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "replica/app_proto.h"
#include "replica/app_socket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 100000) return 0; /* stays within the socket buffer: written at once, no peer thread */
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  int one = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
  uint8_t hello[5 + 4 + 4 + 4 + 8 + 32 + 4] = {0};
  uint32_t fl = sizeof hello - 4;
  memcpy(hello, &fl, 4);
  hello[4] = APP_MSG_HELLO | 0x80;
  hello[5] = 1;  /* version */
  hello[9] = 4;  /* name length */
  memcpy(hello + 13, "fuzz", 4);
  hello[sizeof hello - 4] = 7; /* features: check, query, snapshot */
  if (write(sv[1], hello, sizeof hello) != (ssize_t)sizeof hello || (size && write(sv[1], data, size) != (ssize_t)size)) {
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  shutdown(sv[1], SHUT_WR);
  bft_app app;
  char err[512];
  if (rt_app_socket_attach(sv[0], "unix:fuzz", 1000, &app, err, sizeof err) != 0) {
    close(sv[1]);
    return 0;
  }
  static uint8_t arena[2 * BFT_APP_MAX_RESULT];
  static char reasons[2][BFT_APP_MAX_REASON];
  uint8_t key[BFT_APP_KEY_LEN] = {1}, verdict[2], d[BFT_APP_DIGEST_LEN];
  bft_app_op ops[2] = {{.client_key = key, .client = 0, .seq = 1, .op = (const uint8_t *)"a", .len = 1},
                       {.client_key = key, .client = 1, .seq = 2, .op = (const uint8_t *)"bb", .len = 2}};
  bft_app_result res[2] = {{.data = arena}, {.data = arena + BFT_APP_MAX_RESULT}};
  int failed = app.ops->execute(app.state, 1, ops, 2, res) != 0;
  if (!failed && (res[0].len > BFT_APP_MAX_RESULT || res[1].len > BFT_APP_MAX_RESULT)) abort();
  app.ops->digest(app.state, d);
  int rc = app.ops->check(app.state, ops, 2, verdict, reasons);
  if (failed && rc == 0) abort(); /* a broken connection stays broken */
  failed |= rc != 0;
  bft_app_result q = {.data = arena};
  rc = app.ops->query(app.state, (const uint8_t *)"q", 1, &q);
  if (failed && rc == 0) abort();
  failed |= rc != 0;
  if (!rc && q.len > BFT_APP_MAX_RESULT) abort();
  uint8_t *snap = NULL;
  size_t len = 0;
  if (bft_app_snapshot_all(&app, &snap, &len) == 0) {
    if (failed) abort();
    (void)bft_app_restore_all(&app, 1, snap, len); /* any outcome: the stream is what it is */
    free(snap);
  }
  if (app.ops->last_error(app.state) == NULL && failed) abort();
  rt_app_socket_close(&app);
  close(sv[1]);
  return 0;
}
