/* bft-app-serve: serve a built-in application on a Unix socket for bft-replica --app unix:PATH
 * (docs/app-socket.md). With the key-value store it is the out-of-process twin of the default
 * embedded application: scripts/app-bench.sh compares the two. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bft_app.h"
#include "crypto/bft_err.h"

static volatile int stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  const char *path = NULL, *app = "kv";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) path = argv[++i];
    else if (strcmp(argv[i], "--app") == 0 && i + 1 < argc) app = argv[++i];
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      printf("usage: bft-app-serve --socket PATH [--app kv]\n"
             "Serves the built-in key-value store over the application socket protocol at PATH,\n"
             "for bft-replica --app unix:PATH. Stops on SIGTERM/SIGINT (after the replica disconnects).\n");
      return 0;
    } else {
      fprintf(stderr, "bft-app-serve: unknown argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (!path || strcmp(app, "kv") != 0) {
    fprintf(stderr, "bft-app-serve: --socket PATH is required and --app must be kv (see --help)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: accept() returns on a signal */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  bft_app a;
  if (bft_app_kv_new(&a) != 0) {
    fprintf(stderr, "bft-app-serve: cannot create the key-value store\n");
    return 1;
  }
  int rc = bft_app_serve_unix(path, &a, &stop);
  bft_app_kv_free(&a);
  if (rc) fprintf(stderr, "bft-app-serve: cannot serve on %s: %s\n", path, bft_strerror(rc));
  return rc ? 1 : 0;
}
