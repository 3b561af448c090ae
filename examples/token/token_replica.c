/* token-replica: a replica of a BFT cluster whose replicated state machine is the token ledger
 * of token_app.c, embedded through the replica library (bft_replica.h). With --serve it runs
 * the same application out of process instead, for bft-replica --app unix:PATH. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bft_replica.h"
#include "token_app.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: token-replica --config FILE --id I --key KEYFILE --data-dir DIR [--protocol NAME]\n"
          "                     [--admin-client J] [--log-level LEVEL]\n"
          "       token-replica --serve unix:PATH [--admin-client J]\n"
          "\n"
          "Runs replica I of a BFT cluster replicating a token ledger (accounts, mint by the\n"
          "administrator client J of the cluster file, default 0, transfers with a balance check).\n"
          "Operations (bft-client exec): 'mint ACCOUNT AMOUNT', 'transfer TO AMOUNT' (from your own\n"
          "account c<your client index>), 'balance ACCOUNT'. Stale queries (bft-client query --stale):\n"
          "'balance ACCOUNT', 'supply'.\n"
          "  --protocol NAME   pbft (default), hotstuff or tendermint\n"
          "  --serve unix:PATH serve the application on a Unix socket for bft-replica --app unix:PATH\n"
          "  --socket PATH     the same as --serve unix:PATH\n"
          "  -h, --help        this text\n");
}

static volatile int stop_serving;
static void on_term(int sig) { (void)sig; stop_serving = 1; }

int main(int argc, char **argv) {
  static const struct option LONG[] = {
      {"config", required_argument, NULL, 'c'},   {"id", required_argument, NULL, 'i'},
      {"key", required_argument, NULL, 'k'},      {"data-dir", required_argument, NULL, 'd'},
      {"protocol", required_argument, NULL, 'p'}, {"admin-client", required_argument, NULL, 'a'},
      {"log-level", required_argument, NULL, 'l'}, {"serve", required_argument, NULL, 's'},
      {"socket", required_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
  bft_replica_options o;
  bft_replica_options_init(&o);
  const char *serve = NULL;
  static char serve_buf[256];
  unsigned long admin = 0;
  int opt, have_id = 0;
  while ((opt = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
    switch (opt) {
      case 'c': o.config = optarg; break;
      case 'i': o.id = (uint32_t)strtoul(optarg, NULL, 10); have_id = 1; break;
      case 'k': o.key = optarg; break;
      case 'd': o.data_dir = optarg; break;
      case 'p': o.protocol = optarg; break;
      case 'a': admin = strtoul(optarg, NULL, 10); break;
      case 'l': o.log_level = optarg; break;
      case 's': serve = optarg; break;
      case 'S': /* --socket PATH: the same as --serve unix:PATH (as token_app.py takes it) */
        snprintf(serve_buf, sizeof serve_buf, "unix:%s", optarg);
        serve = serve_buf;
        break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  bft_app app;
  if (token_app_new(&app, (uint32_t)admin) != 0) {
    fprintf(stderr, "token-replica: cannot create the application\n");
    return 1;
  }
  if (serve) {
    if (strncmp(serve, "unix:", 5) != 0) {
      fprintf(stderr, "token-replica: --serve needs unix:PATH\n");
      return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: a blocked accept() returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = bft_app_serve_unix(serve + 5, &app, &stop_serving);
    token_app_free(&app);
    return rc ? 1 : 0;
  }
  if (!o.config || !have_id || !o.key || !o.data_dir) {
    fprintf(stderr, "token-replica: --config, --id, --key and --data-dir are required (see --help)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  o.app = &app;
  o.handle_signals = 1;
  bft_replica *r;
  char err[512];
  if (bft_replica_create(&o, &r, err, sizeof err) != 0) {
    fprintf(stderr, "token-replica: %s\n", err);
    token_app_free(&app);
    return 1;
  }
  int rc = bft_replica_run(r);
  if (bft_replica_error(r)) fprintf(stderr, "token-replica: stopped: %s\n", bft_replica_error(r));
  bft_replica_destroy(r);
  token_app_free(&app);
  return rc;
}
