/* bft-client: submit one signed key-value operation to the cluster and print the agreed result,
 * or read and verify the certified ledger. Every failure is one line on stderr and a non-zero
 * exit: 1 for an operation or verification that failed, 2 for a bad command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/bft_client.h"
#include "client/bft_client_cli.h"
#include "client/bft_evidence.h"
#include "client/bft_rpc.h"
#include "protocols/ledger.h"
#include "protocols/status.h"

#define CLI_SHORT_HASH 8 /* bytes of a hash shown by `ledger` (16 hex digits) */

static void cli_usage(FILE *f) {
  fprintf(f,
          "usage: bft-client --config FILE --key KEYFILE [--timeout SEC] COMMAND\n"
          "\n"
          "commands (each request is signed with KEYFILE and completes on f+1 matching\n"
          "signed replies from distinct replicas):\n"
          "  put KEY VALUE            store VALUE; prints OK\n"
          "  get KEY                  prints the value and a newline, nothing if KEY is absent\n"
          "  del KEY                  remove KEY; prints OK\n"
          "  cas KEY EXPECTED NEW     set NEW if the value is EXPECTED; prints OK or FAILED\n"
          "  exec OP                  any application's operation (OP as text, or hex bytes with --hex),\n"
          "                           ordered through consensus; prints the result; exit 1 unless status 0\n"
          "  query --stale Q          the application's read-only query answered by ONE replica from its\n"
          "                           current state: a STALE read, neither ordered nor agreed by a quorum\n"
          "                           (signed by that replica; --replica I picks it, else the first up)\n"
          "  ledger [--from H]        one line per block: height, hash, prev, requests, state\n"
          "                           digest, certificate size (no --key needed)\n"
          "  verify-ledger            fetch the whole ledger and check the hash chain and every\n"
          "                           commit certificate with the cluster file's public keys\n"
          "  heads                    each replica's ledger head (height and hash)\n"
          "  evidence                 equivocation evidence each replica holds (two conflicting messages\n"
          "                           signed by one replica), each piece checked with the cluster file\n"
          "  status                   one line per replica: reachable or not, engine, view/round, leader,\n"
          "                           committed height, head hash, batch and window settings (each answer\n"
          "                           signed by the replica and checked); exit 1 if any is unreachable\n"
          "\n"
          "options:\n"
          "  --config FILE            cluster file (replica addresses and public keys)\n"
          "  --key KEYFILE            this client's private key file (mode 0600)\n"
          "  --timeout SEC            give up after SEC seconds (default 10)\n"
          "  --replica I              ledger, verify-ledger, heads, evidence, query, status: ask replica I only\n"
          "  --stale                  query: acknowledge that the answer is a stale read\n"
          "  --hex                    exec, query: the argument and the printed result are hex bytes\n"
          "  --no-permit-check        send even if the key is not in the cluster file (tests)\n"
          "  -h, --help               this text\n"
          "\n"
          "exit status: 0 success (also cas FAILED), 1 operation failed, 2 bad arguments.\n");
}

static void hex_short(char *out, const uint8_t *d) { bft_hex_encode(out, d, CLI_SHORT_HASH); }

typedef struct cli_ctx {
  const bft_cluster *cluster;
  bft_client_sync *s;
  bft_client_options opt;
  /* ledger walking */
  uint64_t blocks;
  uint8_t prev[BFT_DIGEST_LEN];
  uint8_t state[BFT_DIGEST_LEN], batch[BFT_DIGEST_LEN]; /* heads: of the head block */
  uint64_t failed_height;
  char why[256];
  bft_anchor anchor; /* verify-ledger of a pruned ledger */
  int anchored;
} cli_ctx;

/* ---- key-value operations ---------------------------------------------------------------- */

static int cli_run_op(cli_ctx *x, const bft_client_cli_args *a) {
  bft_kv_op op;
  memset(&op, 0, sizeof op);
  op.key = (const uint8_t *)a->k;
  op.key_len = (uint32_t)strlen(a->k);
  switch (a->cmd) {
  case BFT_CLI_PUT: op.opcode = BFT_KV_PUT; break;
  case BFT_CLI_GET: op.opcode = BFT_KV_GET; break;
  case BFT_CLI_DEL: op.opcode = BFT_KV_DEL; break;
  default: op.opcode = BFT_KV_CAS; break;
  }
  if (a->value) {
    op.value = (const uint8_t *)a->value;
    op.value_len = (uint32_t)strlen(a->value);
  }
  if (a->expected) {
    op.expected = (const uint8_t *)a->expected;
    op.expected_len = (uint32_t)strlen(a->expected);
  }
  static const uint32_t cap = BFT_MAX_OP_BYTES;
  uint8_t *buf = malloc(cap);
  bft_client_reply *rp = malloc(sizeof *rp);
  int rc = buf && rp ? bft_kv_encode(&op, buf, cap) : BFT_E_NOMEM;
  if (rc < 0) {
    fprintf(stderr, "bft-client: cannot encode the operation: %s\n", bft_strerror(rc));
    free(buf);
    free(rp);
    return 1;
  }
  rc = bft_client_sync_submit(x->s, buf, (uint32_t)rc, rp);
  free(buf);
  int ex = 1;
  if (rc == BFT_E_TIMEOUT) {
    fprintf(stderr, "bft-client: cluster did not answer: %s\n", rp->detail);
  } else if (rc) {
    fprintf(stderr, "bft-client: %s%s%s\n", bft_strerror(rc), rp->detail[0] ? ": " : "", rp->detail);
  } else if (rp->status == BFT_KV_REJECTED) {
    fprintf(stderr, "bft-client: the cluster rejected the request: %.*s\n", (int)rp->result_len,
            (const char *)rp->result);
  } else if (rp->status == BFT_KV_BAD_OP) {
    fprintf(stderr, "bft-client: the replicas refused the operation as malformed\n");
  } else if (a->cmd == BFT_CLI_GET && rp->status == BFT_KV_OK) {
    fwrite(rp->result, 1, rp->result_len, stdout);
    fputc('\n', stdout);
    ex = 0;
  } else if (a->cmd == BFT_CLI_GET && rp->status == BFT_KV_NOT_FOUND) {
    ex = 0; /* absent: print nothing */
  } else if (a->cmd == BFT_CLI_CAS && rp->status == BFT_KV_CAS_FAILED) {
    printf("FAILED\n");
    ex = 0;
  } else if (rp->status == BFT_KV_OK || (a->cmd == BFT_CLI_DEL && rp->status == BFT_KV_NOT_FOUND)) {
    printf("OK\n");
    ex = 0;
  } else {
    fprintf(stderr, "bft-client: unexpected reply status %u\n", rp->status);
  }
  free(rp);
  return ex;
}

/* ---- any application: ordered operations and stale queries -------------------------------- */

static int cli_op_bytes(const bft_client_cli_args *a, uint8_t *buf, uint32_t cap, uint32_t *len) {
  size_t l = strlen(a->k);
  if (!a->hex) {
    if (l > cap) return -1;
    memcpy(buf, a->k, l);
    *len = (uint32_t)l;
    return 0;
  }
  if (l % 2 || l / 2 > cap) return -1;
  for (size_t i = 0; i < l / 2; i++) {
    unsigned v;
    if (sscanf(a->k + 2 * i, "%2x", &v) != 1) return -1;
    buf[i] = (uint8_t)v;
  }
  *len = (uint32_t)(l / 2);
  return 0;
}

static void cli_print_result(const bft_client_cli_args *a, const uint8_t *p, uint32_t len, FILE *f) {
  if (a->hex) {
    for (uint32_t i = 0; i < len; i++) fprintf(f, "%02x", p[i]);
  } else {
    fwrite(p, 1, len, f);
  }
  fputc('\n', f);
}

static int cli_run_exec(cli_ctx *x, const bft_client_cli_args *a) {
  uint8_t *buf = malloc(BFT_MAX_OP_BYTES);
  bft_client_reply *rp = malloc(sizeof *rp);
  uint32_t len = 0;
  int ex = 1;
  if (!buf || !rp || cli_op_bytes(a, buf, BFT_MAX_OP_BYTES, &len) != 0) {
    fprintf(stderr, "bft-client: %s\n", buf && rp ? "--hex needs an even number of hex digits" : "out of memory");
    goto out;
  }
  int rc = bft_client_sync_submit(x->s, buf, len, rp);
  if (rc == BFT_E_TIMEOUT) {
    fprintf(stderr, "bft-client: cluster did not answer: %s\n", rp->detail);
  } else if (rc) {
    fprintf(stderr, "bft-client: %s%s%s\n", bft_strerror(rc), rp->detail[0] ? ": " : "", rp->detail);
  } else if (rp->status == BFT_KV_REJECTED) {
    fprintf(stderr, "bft-client: the cluster rejected the request: %.*s\n", (int)rp->result_len, (const char *)rp->result);
  } else if (rp->status != 0) {
    fprintf(stderr, "bft-client: status %u: ", rp->status);
    cli_print_result(a, rp->result, rp->result_len, stderr);
  } else {
    cli_print_result(a, rp->result, rp->result_len, stdout);
    ex = 0;
  }
out:
  free(buf);
  free(rp);
  return ex;
}

static int cli_run_query(cli_ctx *x, const bft_client_cli_args *a) {
  uint8_t *buf = malloc(BFT_MAX_OP_BYTES);
  bft_client_query_reply *rp = malloc(sizeof *rp);
  uint32_t len = 0;
  int ex = 1;
  if (!buf || !rp || cli_op_bytes(a, buf, BFT_MAX_OP_BYTES, &len) != 0) {
    fprintf(stderr, "bft-client: %s\n", buf && rp ? "--hex needs an even number of hex digits" : "out of memory");
    goto out;
  }
  char err[256] = "no replica";
  int rc = -1;
  for (uint32_t i = 0; i < x->cluster->n && rc != 0; i++) {
    if (a->replica >= 0 && (uint32_t)a->replica != i) continue;
    rc = bft_client_query_stale(x->cluster, i, buf, len, x->opt.timeout_ms, rp, err, sizeof err);
  }
  if (rc) {
    fprintf(stderr, "bft-client: %s\n", err);
  } else if (rp->status == BFT_KV_REJECTED) {
    fprintf(stderr, "bft-client: replica %u refused the query: %.*s\n", rp->replica, (int)rp->result_len,
            (const char *)rp->result);
  } else {
    fprintf(stderr, "bft-client: STALE read: replica %u at height %llu, not ordered, not agreed by a quorum\n",
            rp->replica, (unsigned long long)rp->height);
    if (rp->status != 0) fprintf(stdout, "status %u: ", rp->status);
    cli_print_result(a, rp->result, rp->result_len, stdout);
    ex = rp->status == 0 ? 0 : 1;
  }
out:
  free(buf);
  free(rp);
  return ex;
}

/* ---- ledger ------------------------------------------------------------------------------ */

static int cli_print_block(void *arg, uint64_t height, const uint8_t *p, uint32_t len) {
  cli_ctx *x = arg;
  bft_block b;
  int rc = bft_block_decode(p, len, &b);
  if (rc) {
    x->failed_height = height;
    snprintf(x->why, sizeof x->why, "undecodable block: %s", bft_strerror(rc));
    return 1;
  }
  uint8_t hash[BFT_DIGEST_LEN];
  bft_block_hash(p, len, hash);
  bft_batch_reader br;
  uint32_t nreq = bft_batch_open(&br, b.batch, b.batch_len) == 0 ? br.count : 0;
  char hh[2 * CLI_SHORT_HASH + 1], ph[2 * CLI_SHORT_HASH + 1], sh[2 * CLI_SHORT_HASH + 1];
  hex_short(hh, hash);
  hex_short(ph, b.prev_hash);
  hex_short(sh, b.state_digest);
  char bh[2 * CLI_SHORT_HASH + 1];
  hex_short(bh, b.batch_digest);
  printf("height=%llu hash=%s prev=%s requests=%u batch=%s state=%s cert_bytes=%u protocol=%s\n",
         (unsigned long long)b.height, hh, ph, nreq, bh, sh, b.cert_len, b.protocol);
  x->blocks++;
  return 0;
}

static int cli_verify_block(void *arg, uint64_t height, const uint8_t *p, uint32_t len) {
  cli_ctx *x = arg;
  bft_block b;
  if (x->blocks == 0 && x->anchor.base > 0 && x->anchor.height > x->anchor.base && bft_block_decode(p, len, &b) == 0)
    memcpy(x->prev, b.prev_hash, BFT_DIGEST_LEN); /* pinned by the anchor below, through the hash chain */
  if (bft_block_verify(x->cluster, p, len, x->prev, height, x->why, sizeof x->why) != 0) {
    x->failed_height = height;
    return 1;
  }
  bft_block_hash(p, len, x->prev);
  if (x->anchor.height == height) {
    if (memcmp(x->prev, x->anchor.block_hash, BFT_DIGEST_LEN) != 0) {
      x->failed_height = height;
      snprintf(x->why, sizeof x->why, "its hash is not the one the snapshot certificate attests");
      return 1;
    }
    x->anchored = 1;
  }
  x->blocks++;
  return 0;
}

/* A replica's certified snapshot: where its ledger starts and the block hash f+1 replicas
 * attest there. 0 (x->anchor filled, height 0 when none), or 1 after printing why not. */
static int cli_anchor(cli_ctx *x, uint32_t replica) {
  uint8_t *body = NULL;
  uint32_t len = 0;
  char err[256] = "";
  int rc = bft_snapmeta_fetch(x->cluster, replica, x->opt.timeout_ms, &body, &len, err, sizeof err);
  if (rc == BFT_E_IO || rc == BFT_E_TIMEOUT) { /* unreachable: the caller may ask another replica */
    snprintf(x->why, sizeof x->why, "%s", err);
    return -1;
  }
  if (!rc) rc = bft_snapmeta_anchor(x->cluster, body, len, &x->anchor, err, sizeof err);
  free(body);
  if (rc) {
    printf("FAILED: replica %u: %s\n", replica, err);
    return 1;
  }
  if (x->anchor.base > 0 && x->anchor.height < x->anchor.base) {
    printf("FAILED: replica %u pruned its ledger below %llu without a certified snapshot there\n", replica,
           (unsigned long long)x->anchor.base);
    return 1;
  }
  if (x->anchor.base > 0 && x->anchor.height == x->anchor.base) {
    memcpy(x->prev, x->anchor.block_hash, BFT_DIGEST_LEN); /* the ledger starts right after the snapshot */
    x->anchored = 1;
  }
  return 0;
}

/* Where replica i's ledger starts (0 unless pruned; 0 when it cannot tell). */
static uint64_t ledger_base(cli_ctx *x, uint32_t i) {
  uint8_t *body = NULL;
  uint32_t len = 0;
  char err[256];
  bft_anchor a = {0};
  uint32_t t = x->opt.timeout_ms < 2000 ? x->opt.timeout_ms : 2000;
  if (bft_snapmeta_fetch(x->cluster, i, t, &body, &len, err, sizeof err) == 0)
    (void)bft_snapmeta_anchor(x->cluster, body, len, &a, err, sizeof err); /* base only: no trust needed */
  free(body);
  return a.base;
}

static int cli_run_ledger(cli_ctx *x, const bft_client_cli_args *a, int verify) {
  uint64_t head = 0;
  uint32_t by = 0;
  char detail[BFT_CLIENT_DETAIL_MAX];
  memcpy(x->prev, x->cluster->id, BFT_DIGEST_LEN); /* block 1 links to the cluster id */
  uint64_t from = verify ? 1 : a->from;
  int replica = a->replica;
  if (verify) { /* a pruned ledger is verified from its certified snapshot on (one replica's) */
    int rc = -1;
    if (replica >= 0) {
      rc = cli_anchor(x, (uint32_t)replica);
    } else { /* any replica: the first that answers, whose ledger is then the one verified */
      for (uint32_t i = 0; i < x->cluster->n && rc < 0; i++)
        if ((rc = cli_anchor(x, i)) >= 0) replica = (int)i;
    }
    if (rc < 0) printf("FAILED: %s\n", x->why[0] ? x->why : "no replica answered");
    if (rc != 0) return 1;
    x->why[0] = 0;
    if (x->anchor.base > 0) from = x->anchor.base + 1;
  } else if (replica >= 0 && ledger_base(x, (uint32_t)replica) >= from) {
    from = ledger_base(x, (uint32_t)replica) + 1; /* pruned below: from where it starts */
  }
  int rc = bft_client_sync_ledger(x->s, replica, from, BFT_CLIENT_LEDGER_HEAD,
                                  verify ? cli_verify_block : cli_print_block, x, &head, &by, detail,
                                  sizeof detail);
  if (x->failed_height) {
    if (verify)
      printf("FAILED: block %llu (served by replica %u) does not verify: %s\n", (unsigned long long)x->failed_height,
             by, x->why);
    else
      fprintf(stderr, "bft-client: block %llu: %s\n", (unsigned long long)x->failed_height, x->why);
    return 1;
  }
  if (rc) {
    fprintf(stderr, "bft-client: cannot read the ledger: %s\n", detail[0] ? detail : bft_strerror(rc));
    return 1;
  }
  if (verify && x->anchor.base > 0 && !x->anchored) {
    printf("FAILED: replica %u's ledger (from %llu) does not contain its certified snapshot's block %llu\n", by,
           (unsigned long long)from, (unsigned long long)x->anchor.height);
    return 1;
  }
  if (verify && x->anchor.base > 0) {
    char hh[2 * BFT_DIGEST_LEN + 1];
    bft_hex_encode(hh, x->prev, BFT_DIGEST_LEN);
    printf("OK: %llu blocks verified (from replica %u; blocks %llu-%llu, anchored by the certified snapshot at %llu; "
           "head hash %s)\n", (unsigned long long)x->blocks, by, (unsigned long long)from, (unsigned long long)head,
           (unsigned long long)x->anchor.height, hh);
  } else if (verify) {
    char hh[2 * BFT_DIGEST_LEN + 1];
    bft_hex_encode(hh, x->prev, BFT_DIGEST_LEN);
    if (x->blocks == 0) printf("OK: 0 blocks verified (the ledger of replica %u is empty)\n", by);
    else
      printf("OK: %llu blocks verified (from replica %u; head %llu, hash %s)\n", (unsigned long long)x->blocks, by,
             (unsigned long long)head, hh);
  } else if (x->blocks == 0) {
    fprintf(stderr, "bft-client: no blocks from height %llu (replica %u's head is %llu)\n",
            (unsigned long long)from, by, (unsigned long long)head);
  }
  return 0;
}

static int cli_head_block(void *arg, uint64_t height, const uint8_t *p, uint32_t len) {
  cli_ctx *x = arg;
  bft_block b;
  (void)height;
  if (bft_block_decode(p, len, &b) != 0) return 1;
  bft_block_hash(p, len, x->prev);
  memcpy(x->state, b.state_digest, BFT_DIGEST_LEN);
  memcpy(x->batch, b.batch_digest, BFT_DIGEST_LEN);
  x->blocks++;
  return 0;
}

/* Every replica's head: height from a one-block read, then the head block itself. Correct
 * replicas agree on height, batch and state digests; the block hash also covers the commit
 * certificate, which each replica assembles from its own 2f+1 COMMIT messages, so it may
 * differ between correct replicas. */
static int cli_run_heads(cli_ctx *x, const bft_client_cli_args *a) {
  int answered = 0;
  for (uint32_t i = 0; i < x->cluster->n; i++) {
    if (a->replica >= 0 && (uint32_t)a->replica != i) continue;
    const bft_replica_info *ri = &x->cluster->replicas[i];
    uint64_t head = 0;
    char detail[BFT_CLIENT_DETAIL_MAX] = "";
    x->blocks = 0;
    uint64_t first = ledger_base(x, i) + 1;
    int rc = bft_client_sync_ledger(x->s, (int)i, first, first, cli_head_block, x, &head, NULL, detail, sizeof detail);
    if (rc == 0 && head > 0) {
      x->blocks = 0;
      rc = bft_client_sync_ledger(x->s, (int)i, head, head, cli_head_block, x, NULL, NULL, detail, sizeof detail);
      if (rc == 0 && x->blocks != 1) rc = BFT_E_IO;
    }
    if (rc) {
      printf("replica=%u address=%s:%u unreachable (%s)\n", i, ri->host, ri->port,
             detail[0] ? detail : bft_strerror(rc));
      continue;
    }
    char hh[2 * BFT_DIGEST_LEN + 1] = "-", sh[2 * BFT_DIGEST_LEN + 1] = "-", bh[2 * BFT_DIGEST_LEN + 1] = "-";
    if (head > 0) {
      bft_hex_encode(hh, x->prev, BFT_DIGEST_LEN);
      bft_hex_encode(sh, x->state, BFT_DIGEST_LEN);
      bft_hex_encode(bh, x->batch, BFT_DIGEST_LEN);
    }
    printf("replica=%u address=%s:%u head=%llu hash=%s batch=%s state=%s\n", i, ri->host, ri->port,
           (unsigned long long)head, hh, bh, sh);
    answered++;
  }
  return answered ? 0 : 1;
}

/* Each replica's evidence, checked; exit 0 when every reachable replica answered and every
 * piece verified, 1 otherwise. */
static int cli_run_evidence(cli_ctx *x, const bft_client_cli_args *a, uint32_t timeout_ms) {
  int answered = 0, bad = 0;
  for (uint32_t i = 0; i < x->cluster->n; i++) {
    if (a->replica >= 0 && (uint32_t)a->replica != i) continue;
    uint8_t *body;
    uint32_t len, valid, invalid;
    char err[256];
    if (bft_evidence_fetch(x->cluster, i, timeout_ms, &body, &len, err, sizeof err) != 0) {
      printf("replica=%u unreachable (%s)\n", i, err);
      continue;
    }
    int rc = bft_evidence_print(x->cluster, i, body, len, stdout, &valid, &invalid);
    free(body);
    if (rc) printf("replica=%u sent a malformed evidence list (%s)\n", i, bft_strerror(rc));
    bad |= rc != 0 || invalid != 0;
    answered++;
  }
  return answered && !bad ? 0 : 1;
}

/* Each replica's signed status, one line each (etcdctl's `endpoint status`); exit 0 when every
 * replica asked answered with a valid signed status, 1 otherwise. */
static int cli_run_status(const bft_cluster *c, const bft_client_cli_args *a, uint32_t timeout_ms) {
  int bad = 0;
  for (uint32_t i = 0; i < c->n; i++) {
    if (a->replica >= 0 && (uint32_t)a->replica != i) continue;
    const bft_replica_info *ri = &c->replicas[i];
    uint8_t nonce[BFT_STATUS_NONCE_LEN], *body = NULL;
    uint32_t len = 0;
    char err[256] = "";
    randombytes_buf(nonce, sizeof nonce);
    int rc = bft_rpc_exchange(c, i, timeout_ms, WIRE_KIND_STATUS_GET, nonce, sizeof nonce, WIRE_KIND_STATUS,
                              BFT_STATUS_MAX_BYTES, &body, &len, err, sizeof err);
    bft_status st;
    if (!rc) {
      rc = bft_status_decode(body, len, ri->pk, c->id, &st);
      if (!rc && (st.replica != i || memcmp(st.nonce, nonce, sizeof nonce) != 0)) rc = BFT_E_MALFORMED;
      if (rc) snprintf(err, sizeof err, "invalid status answer: %s", bft_strerror(rc));
    }
    free(body);
    if (rc) {
      printf("replica=%u address=%s:%u unreachable (%s)\n", i, ri->host, ri->port, err);
      bad = 1;
      continue;
    }
    char hh[2 * BFT_DIGEST_LEN + 1];
    bft_hex_encode(hh, st.head_hash, BFT_DIGEST_LEN);
    printf("replica=%u address=%s:%u reachable engine=%s view=%llu leader=%u changing_view=%u view_changes=%llu "
           "height=%llu head=%s batch_max=%u window=%u peers_up=%u/%u pool=%u executed=%llu cpu_s=%.3f%s%s\n",
           i, ri->host, ri->port, st.protocol, (unsigned long long)st.view, st.leader, st.changing_view,
           (unsigned long long)st.view_changes, (unsigned long long)st.committed, hh, st.batch_max, st.window,
           st.peers_up, c->n - 1, st.pool, (unsigned long long)st.executed, (double)st.cpu_us / 1e6,
           st.protocol_only ? " protocol_only=1" : "", st.unsafe_no_fsync ? " unsafe_no_fsync=1" : "");
  }
  return bad;
}

int main(int argc, char **argv) {
  /* The client library never raises SIGPIPE (it sends with MSG_NOSIGNAL); stdout may be a pipe
   * whose reader is gone: a failed write is then reported below rather than killing us. */
  signal(SIGPIPE, SIG_IGN);
  bft_client_cli_args a;
  char err[512];
  if (bft_client_cli_parse(argc, argv, &a, err, sizeof err) != 0) {
    fprintf(stderr, "bft-client: %s (see bft-client --help)\n", err);
    return 2;
  }
  if (a.cmd == BFT_CLI_HELP) {
    cli_usage(stdout);
    return 0;
  }
  if (bft_crypto_init() != 0) {
    fprintf(stderr, "bft-client: libsodium failed to initialise\n");
    return 1;
  }
  bft_cluster *cluster = calloc(1, sizeof *cluster);
  cli_ctx *x = calloc(1, sizeof *x);
  if (!cluster || !x) {
    fprintf(stderr, "bft-client: out of memory\n");
    return 1;
  }
  int ex = 1;
  bft_keypair kp;
  memset(&kp, 0, sizeof kp);
  if (bft_cluster_load(a.config, cluster, err, sizeof err) != 0) {
    fprintf(stderr, "bft-client: %s\n", err);
    goto out;
  }
  if (a.replica >= 0 && (uint32_t)a.replica >= cluster->n) {
    fprintf(stderr, "bft-client: --replica %d: the cluster has replicas 0..%u\n", a.replica, cluster->n - 1);
    ex = 2;
    goto out;
  }
  if (a.key) {
    if (bft_keyfile_load(a.key, &kp, err, sizeof err) != 0) {
      fprintf(stderr, "bft-client: %s\n", err);
      goto out;
    }
    if (!a.no_permit_check && !bft_client_key_permitted(cluster, kp.pk)) {
      char pkhex[2 * BFT_PK_LEN + 1];
      bft_hex_encode(pkhex, kp.pk, BFT_PK_LEN);
      fprintf(stderr,
              "bft-client: this client is not permitted: the public key of %s (%.16s...) is not listed as a "
              "[client.J] in %s\n",
              a.key, pkhex, a.config);
      goto out;
    }
  } else if (bft_keypair_generate(&kp) != 0) { /* ledger reads are not signed; any key will do */
    fprintf(stderr, "bft-client: cannot make a key pair\n");
    goto out;
  }
  x->cluster = cluster;
  if (a.cmd == BFT_CLI_STATUS) { /* one connection per replica of its own: no client handle */
    uint32_t t = (uint32_t)(a.timeout_s * 1000.0 + 0.5);
    ex = cli_run_status(cluster, &a, t > 3000 ? 3000 : t ? t : 1);
    goto out;
  }
  bft_client_options_default(&x->opt);
  x->opt.timeout_ms = (uint32_t)(a.timeout_s * 1000.0 + 0.5);
  if (x->opt.timeout_ms == 0) x->opt.timeout_ms = 1;
  /* heads asks each replica in turn; one that is down should not cost the whole timeout */
  if ((a.cmd == BFT_CLI_HEADS || a.cmd == BFT_CLI_EVIDENCE || (a.cmd == BFT_CLI_QUERY && a.replica < 0)) &&
      x->opt.timeout_ms > 3000) x->opt.timeout_ms = 3000;
  if (x->opt.ledger_request_ms > x->opt.timeout_ms) x->opt.ledger_request_ms = x->opt.timeout_ms;
  int rc = bft_client_sync_open(cluster, &kp, &x->opt, &x->s);
  if (rc) {
    fprintf(stderr, "bft-client: cannot reach the cluster: %s\n",
            rc == BFT_E_IO ? "no replica address in the cluster file resolves" : bft_strerror(rc));
    goto out;
  }
  switch (a.cmd) {
  case BFT_CLI_LEDGER: ex = cli_run_ledger(x, &a, 0); break;
  case BFT_CLI_VERIFY_LEDGER: ex = cli_run_ledger(x, &a, 1); break;
  case BFT_CLI_HEADS: ex = cli_run_heads(x, &a); break;
  case BFT_CLI_EVIDENCE: ex = cli_run_evidence(x, &a, x->opt.timeout_ms); break;
  case BFT_CLI_EXEC: ex = cli_run_exec(x, &a); break;
  case BFT_CLI_QUERY: ex = cli_run_query(x, &a); break;
  default: ex = cli_run_op(x, &a); break;
  }
  bft_client_sync_close(x->s);
out:
  bft_keypair_wipe(&kp);
  free(cluster);
  free(x);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "bft-client: cannot write the output\n");
    if (ex == 0) ex = 1;
  }
  return ex;
}
