/* An application in another process, over a Unix socket (bft-replica --app unix:PATH): a
 * bft_app whose every call is one framed round trip (app_proto.h, docs/app-socket.md); a whole
 * committed batch is one EXECUTE. A dead or garbled application makes the call fail with a
 * one-line reason (last_error), and the replica stops before anything of that batch is
 * recorded or answered. */
#ifndef RT_APP_SOCKET_H
#define RT_APP_SOCKET_H

#include <stddef.h>

#include "bft_app.h"

#define RT_APP_CONNECT_MS 10000 /* the application may start up to this long after the replica */
#define RT_APP_TIMEOUT_MS 30000 /* one answer */

/* spec: "unix:PATH". Connects (retrying until connect_ms), says HELLO, and fills app. */
int rt_app_socket_open(const char *spec, int connect_ms, int timeout_ms, bft_app *app, char *err, size_t errlen);
/* The same over a connected stream socket (taken over: closed on failure or by close). */
int rt_app_socket_attach(int fd, const char *where, int timeout_ms, bft_app *app, char *err, size_t errlen);
void rt_app_socket_close(bft_app *app);
/* The connection's descriptor (for the replica to watch it between calls), or -1. */
int rt_app_socket_fd(const bft_app *app);
/* Between calls nothing may arrive: 0 while the connection is quiet, else -1 with the reason
 * (closed, or unsolicited bytes) in why. */
int rt_app_socket_idle_check(const bft_app *app, char *why, size_t whylen);

#endif
