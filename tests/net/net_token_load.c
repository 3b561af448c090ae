/* net-token-load: concurrent clients of a token ledger cluster (examples/token) transferring
 * between each other's accounts for a duration, keeping the books of every transfer the
 * cluster acknowledged. Client 0 (the administrator) first mints --mint tokens to each account
 * c1..cN. At the end it prints, per account, the balance the acknowledged transfers imply
 * ("expect cI BALANCE"), and one line
 *   RESULT transfers=T ok=O insufficient=I errors=E supply=S
 * An operation that fails (timeout) leaves the books unknown: errors > 0 makes the run fail.
 * Usage: net-token-load --config FILE --keys DIR --clients N --duration SEC [--mint AMOUNT]
 *        [--max-amount A] [--timeout SEC] [--seed S] */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client/bft_client.h"

typedef struct load load;
typedef struct tclient {
  load *l;
  uint32_t id; /* client index = account c<id> */
  bft_client *c;
  uint32_t to;
  uint64_t amount;
  char op[64];
} tclient;

struct load {
  uv_loop_t loop;
  bft_cluster cluster;
  tclient *cl;
  uint32_t n;
  int64_t *balance; /* by client index */
  uint64_t transfers, ok, insufficient, errors, other;
  uint64_t rng, max_amount;
  int stopping;
  uint32_t open;
  uv_timer_t timer;
};

static uint64_t rnd(load *l) {
  uint64_t z = (l->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void next(tclient *t);

static void on_closed(void *arg) {
  load *l = arg;
  if (--l->open == 0) uv_close((uv_handle_t *)&l->timer, NULL);
}

static void done(void *arg, const bft_client_result *res) {
  tclient *t = arg;
  load *l = t->l;
  if (res->err) {
    l->errors++;
    fprintf(stderr, "net-token-load: client %u: transfer failed: %s (%s)\n", t->id, bft_strerror(res->err), res->detail);
  } else if (res->status == 0) {
    l->ok++;
    l->balance[t->id] -= (int64_t)t->amount;
    l->balance[t->to] += (int64_t)t->amount;
  } else if (res->status == 1) {
    l->insufficient++;
  } else {
    l->other++;
    fprintf(stderr, "net-token-load: client %u: status %u: %.*s\n", t->id, res->status, (int)res->result_len,
            (const char *)res->result);
  }
  next(t);
}

static void next(tclient *t) {
  load *l = t->l;
  if (l->stopping) {
    bft_client_close(t->c, on_closed, l);
    return;
  }
  do t->to = 1 + (uint32_t)(rnd(l) % l->n);
  while (t->to == t->id);
  t->amount = 1 + rnd(l) % l->max_amount;
  int len = snprintf(t->op, sizeof t->op, "transfer c%u %llu", t->to, (unsigned long long)t->amount);
  l->transfers++;
  if (bft_client_submit(t->c, (const uint8_t *)t->op, (uint32_t)len, done, t) != 0) {
    l->errors++;
    l->stopping = 1;
    bft_client_close(t->c, on_closed, l);
  }
}

static void on_timer(uv_timer_t *h) { ((load *)h->data)->stopping = 1; }

static int mint_all(load *l, const char *keys, uint64_t mint, bft_client_options *o) {
  char path[4096], err[256];
  bft_keypair kp;
  snprintf(path, sizeof path, "%s/client-0.key", keys);
  if (bft_keyfile_load(path, &kp, err, sizeof err) != 0) return fprintf(stderr, "net-token-load: %s\n", err), -1;
  bft_client_sync *s;
  if (bft_client_sync_open(&l->cluster, &kp, o, &s) != 0) return fprintf(stderr, "net-token-load: cannot open\n"), -1;
  bft_client_reply *rp = malloc(sizeof *rp);
  int rc = rp ? 0 : -1;
  for (uint32_t i = 1; i <= l->n && !rc; i++) {
    char op[64];
    int len = snprintf(op, sizeof op, "mint c%u %llu", i, (unsigned long long)mint);
    if (bft_client_sync_submit(s, (const uint8_t *)op, (uint32_t)len, rp) != 0 || rp->status != 0) {
      fprintf(stderr, "net-token-load: '%s' failed: %s\n", op, rp->detail);
      rc = -1;
    }
    l->balance[i] += (int64_t)mint;
  }
  free(rp);
  bft_client_sync_close(s);
  return rc;
}

int main(int argc, char **argv) {
  static const struct option LONG[] = {{"config", 1, 0, 'c'},   {"keys", 1, 0, 'k'},    {"clients", 1, 0, 'n'},
                                       {"duration", 1, 0, 'd'}, {"mint", 1, 0, 'm'},    {"max-amount", 1, 0, 'a'},
                                       {"timeout", 1, 0, 't'},  {"seed", 1, 0, 's'},    {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *config = NULL, *keys = NULL;
  double duration = 5, timeout = 30;
  uint64_t mint = 0, seed = 1;
  load *l = calloc(1, sizeof *l);
  if (!l) return 1;
  l->n = 4;
  l->max_amount = 100;
  int opt;
  while ((opt = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
    switch (opt) {
      case 'c': config = optarg; break;
      case 'k': keys = optarg; break;
      case 'n': l->n = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'd': duration = strtod(optarg, NULL); break;
      case 'm': mint = strtoull(optarg, NULL, 10); break;
      case 'a': l->max_amount = strtoull(optarg, NULL, 10); break;
      case 't': timeout = strtod(optarg, NULL); break;
      case 's': seed = strtoull(optarg, NULL, 10); break;
      case 'h':
        printf("usage: net-token-load --config FILE --keys DIR --clients N --duration SEC [--mint AMOUNT]\n"
               "       [--max-amount A] [--timeout SEC] [--seed S]\n"
               "Concurrent transfers between accounts c1..cN of a token ledger cluster; prints the balances\n"
               "the acknowledged transfers imply and a RESULT line.\n");
        return 0;
      default: return 2;
    }
  }
  char err[512];
  if (!config || !keys || l->n < 2 || l->max_amount == 0 || bft_crypto_init() != 0) {
    fprintf(stderr, "net-token-load: --config, --keys and --clients >= 2 are required\n");
    return 2;
  }
  if (bft_cluster_load(config, &l->cluster, err, sizeof err) != 0) return fprintf(stderr, "%s\n", err), 1;
  if (l->cluster.nclients < l->n + 1) return fprintf(stderr, "net-token-load: need %u client keys\n", l->n + 1), 2;
  l->rng = seed;
  l->balance = calloc(l->n + 1, sizeof *l->balance);
  l->cl = calloc(l->n + 1, sizeof *l->cl);
  bft_client_options o;
  bft_client_options_default(&o);
  o.timeout_ms = (uint32_t)(timeout * 1000);
  if (!l->balance || !l->cl || uv_loop_init(&l->loop) != 0) return 1;
  if (mint && mint_all(l, keys, mint, &o) != 0) return 1;
  for (uint32_t i = 1; i <= l->n; i++) {
    char path[4096];
    bft_keypair kp;
    snprintf(path, sizeof path, "%s/client-%u.key", keys, i);
    if (bft_keyfile_load(path, &kp, err, sizeof err) != 0) return fprintf(stderr, "net-token-load: %s\n", err), 1;
    l->cl[i] = (tclient){.l = l, .id = i};
    if (bft_client_open(&l->loop, &l->cluster, &kp, &o, &l->cl[i].c) != 0) return 1;
    l->open++;
  }
  uv_timer_init(&l->loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, on_timer, (uint64_t)(duration * 1000), 0);
  for (uint32_t i = 1; i <= l->n; i++) next(&l->cl[i]);
  uv_run(&l->loop, UV_RUN_DEFAULT);
  uv_loop_close(&l->loop);
  int64_t supply = 0;
  for (uint32_t i = 1; i <= l->n; i++) {
    printf("expect c%u %lld\n", i, (long long)l->balance[i]);
    supply += l->balance[i];
  }
  printf("RESULT transfers=%llu ok=%llu insufficient=%llu errors=%llu other=%llu supply=%lld\n",
         (unsigned long long)l->transfers, (unsigned long long)l->ok, (unsigned long long)l->insufficient,
         (unsigned long long)l->errors, (unsigned long long)l->other, (long long)supply);
  int rc = l->errors || l->other ? 1 : 0;
  free(l->balance);
  free(l->cl);
  free(l);
  return rc;
}
