/* bft-keygen: make Ed25519 key pairs for n replicas and m clients and a ready-to-use cluster
 * file for a local cluster on 127.0.0.1 (or another host), so a cluster can start at once. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/bft_crypto.h"
#include "protocols/cluster/cluster.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: bft-keygen --replicas N --clients M --out DIR [options]\n"
          "\n"
          "Writes DIR/cluster.ini, DIR/replica-I.key (I = 0..N-1) and DIR/client-J.key\n"
          "(J = 0..M-1). Private keys are written with mode 0600; DIR is created with 0700.\n"
          "\n"
          "options:\n"
          "  --replicas N      number of replicas, %d..%d (n = 3f+1 tolerates f faults)\n"
          "  --clients M       number of permitted clients, 0..%d\n"
          "  --out DIR         output folder\n"
          "  --base-port P     replica I listens on P+I (default 7000)\n"
          "  --host H          address of every replica (default 127.0.0.1)\n"
          "  --cluster-id ID   cluster name, [A-Za-z0-9._-]{1,64} (default: local-<random>)\n"
          "  --protocol-only   write protocol_only = true: replicas then also accept unsigned\n"
          "                    requests authenticated by MACs (bft-bench --auth protocol-only),\n"
          "                    for measuring the engines alone; never for a real deployment\n"
          "  --force           overwrite existing key files\n"
          "  -h, --help        this text\n",
          BFT_MIN_REPLICAS, BFT_MAX_REPLICAS, BFT_MAX_CLIENTS);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-') return -1;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

static int write_key(const char *dir, const char *kind, unsigned id, int force, bft_keypair *kp) {
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/%s-%u.key", dir, kind, id);
  if (!force && access(path, F_OK) == 0) {
    fprintf(stderr, "bft-keygen: %s exists; use --force to overwrite keys\n", path);
    return -1;
  }
  if (bft_keypair_generate(kp) != 0 || bft_keyfile_save(path, kind, id, kp, err, sizeof err) != 0) {
    fprintf(stderr, "bft-keygen: %s\n", err);
    return -1;
  }
  printf("wrote %s\n", path);
  return 0;
}

int main(int argc, char **argv) {
  unsigned long n = 0, m = 0, base = 7000;
  int have_n = 0, have_m = 0, force = 0, protocol_only = 0;
  const char *out = NULL, *host = "127.0.0.1", *name = NULL;
  static const struct option opts[] = {
      {"replicas", required_argument, 0, 'n'}, {"clients", required_argument, 0, 'm'},
      {"out", required_argument, 0, 'o'},      {"base-port", required_argument, 0, 'p'},
      {"host", required_argument, 0, 'H'},     {"cluster-id", required_argument, 0, 'c'},
      {"force", no_argument, 0, 'f'},          {"help", no_argument, 0, 'h'},
      {"protocol-only", no_argument, 0, 'P'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'n':
      if (parse_uint(optarg, BFT_MAX_REPLICAS, &n) || n < BFT_MIN_REPLICAS) {
        fprintf(stderr, "bft-keygen: --replicas must be %d..%d\n", BFT_MIN_REPLICAS, BFT_MAX_REPLICAS);
        return 2;
      }
      have_n = 1;
      break;
    case 'm':
      if (parse_uint(optarg, BFT_MAX_CLIENTS, &m)) {
        fprintf(stderr, "bft-keygen: --clients must be 0..%d\n", BFT_MAX_CLIENTS);
        return 2;
      }
      have_m = 1;
      break;
    case 'o': out = optarg; break;
    case 'p':
      if (parse_uint(optarg, 65535, &base) || base == 0) {
        fprintf(stderr, "bft-keygen: --base-port must be 1..65535\n");
        return 2;
      }
      break;
    case 'H': host = optarg; break;
    case 'c': name = optarg; break;
    case 'f': force = 1; break;
    case 'P': protocol_only = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !have_n || !have_m || !out) {
    fprintf(stderr, "bft-keygen: --replicas, --clients and --out are required\n");
    usage(stderr);
    return 2;
  }
  if (base + n - 1 > 65535) {
    fprintf(stderr, "bft-keygen: ports %lu..%lu do not fit below 65536\n", base, base + n - 1);
    return 2;
  }
  if (bft_crypto_init() != 0) {
    fprintf(stderr, "bft-keygen: libsodium failed to initialise\n");
    return 1;
  }
  if (bft_mkdirs(out) != 0) {
    fprintf(stderr, "bft-keygen: cannot create %s: %s\n", out, strerror(errno));
    return 1;
  }
  bft_cluster *c = calloc(1, sizeof *c);
  if (!c) return 1;
  if (name) {
    snprintf(c->name, sizeof c->name, "%s", name);
  } else {
    uint8_t r[4];
    randombytes_buf(r, sizeof r);
    char hex[9];
    bft_hex_encode(hex, r, sizeof r);
    snprintf(c->name, sizeof c->name, "local-%s", hex);
  }
  c->n = (uint32_t)n;
  c->protocol_only = protocol_only;
  c->f = (uint32_t)(n - 1) / 3;
  int rc = 0;
  bft_keypair kp;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    rc = write_key(out, "replica", i, force, &kp);
    c->replicas[i].id = i;
    snprintf(c->replicas[i].host, sizeof c->replicas[i].host, "%s", host);
    c->replicas[i].port = (uint16_t)(base + i);
    memcpy(c->replicas[i].pk, kp.pk, BFT_PK_LEN);
  }
  for (unsigned j = 0; j < m && rc == 0; j++) {
    rc = write_key(out, "client", j, force, &kp);
    c->clients[j].id = j;
    memcpy(c->clients[j].pk, kp.pk, BFT_PK_LEN);
    c->nclients = j + 1;
  }
  bft_keypair_wipe(&kp);
  if (rc == 0) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/cluster.ini", out);
    if (bft_cluster_save(path, c, err, sizeof err) != 0) {
      fprintf(stderr, "bft-keygen: %s\n", err);
      rc = -1;
    } else {
      bft_cluster *check = calloc(1, sizeof *check);
      /* What we wrote must load back: the parser is the judge of the format. */
      if (!check || bft_cluster_load(path, check, err, sizeof err) != 0) {
        fprintf(stderr, "bft-keygen: written cluster file does not load: %s\n", err);
        rc = -1;
      } else {
        printf("wrote %s (cluster %s, n=%u f=%u, %u clients, ports %lu-%lu)\n", path, c->name,
               check->n, check->f, check->nclients, base, base + n - 1);
        if (check->warning[0]) printf("warning: %s\n", check->warning);
      }
      free(check);
    }
  }
  free(c);
  return rc == 0 ? 0 : 1;
}
