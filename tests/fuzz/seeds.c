/* Write valid seed inputs for a fuzz target into a corpus folder, so fuzzing starts from real
 * frames and files instead of random bytes. Usage: fuzz_seeds TARGET DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/ledger.h"
#include "protocols/request.h"

static int save(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/seed-%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(p, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

static size_t frame(uint8_t *out, uint8_t kind, const uint8_t *body, uint32_t len) {
  wire_frame_header_encode(out, kind, WIRE_SENDER_CLIENT, len);
  memcpy(out + WIRE_FRAME_HEADER_LEN, body, len);
  return WIRE_FRAME_HEADER_LEN + len;
}

static int frame_seeds(const char *dir) {
  static uint8_t buf[1 << 16], fr[1 << 17], batch[1 << 15], blk[1 << 16];
  uint8_t seed[32] = {7}, cid[32] = {1};
  bft_keypair kp;
  bft_keypair_from_seed(&kp, seed);
  uint8_t op[256];
  bft_kv_op kv = {.opcode = BFT_KV_CAS, .key = (const uint8_t *)"k", .key_len = 1,
                  .value = (const uint8_t *)"new", .value_len = 3,
                  .expected = (const uint8_t *)"old", .expected_len = 3};
  int ol = bft_kv_encode(&kv, op, sizeof op);
  int rl = bft_request_encode(&kp, cid, 1, op, (uint32_t)ol, buf, sizeof buf);
  if (ol < 0 || rl < 0) return -1;
  int rc = save(dir, "request", fr, frame(fr, WIRE_KIND_REQUEST, buf, (uint32_t)rl));
  bft_batch_writer bw;
  bft_batch_begin(&bw, batch, sizeof batch);
  bft_batch_add(&bw, buf, (uint32_t)rl);
  bft_batch_add(&bw, buf, (uint32_t)rl);
  uint32_t bl = bft_batch_end(&bw);
  rc |= save(dir, "batch", fr, frame(fr, WIRE_KIND_ENGINE + 1, batch, bl));
  bft_block b = {.height = 1, .protocol = "pbft", .cert = (const uint8_t *)"cert", .cert_len = 4,
                 .batch = batch, .batch_len = bl};
  bft_digest(b.batch_digest, batch, bl);
  int kl = bft_block_encode(&b, blk, sizeof blk);
  if (kl < 0) return -1;
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u64(&w, 1);
  wire_put_u32(&w, 1);
  wire_put_blob(&w, blk, (uint32_t)kl);
  rc |= save(dir, "blocks", fr, frame(fr, WIRE_KIND_LEDGER_BLOCKS, buf, (uint32_t)w.len));
  return rc;
}

static int cluster_seeds(const char *dir) {
  const char *text =
      "[cluster]\nid = local\n"
      "[replica.0]\naddress = 127.0.0.1:7000\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000001\n"
      "[replica.1]\naddress = 127.0.0.1:7001\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000002\n"
      "[replica.2]\naddress = 127.0.0.1:7002\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000003\n"
      "[replica.3]\naddress = 127.0.0.1:7003\npublic_key = "
      "0000000000000000000000000000000000000000000000000000000000000004\n"
      "[client.0]\npublic_key = 0000000000000000000000000000000000000000000000000000000000000005\n";
  return save(dir, "cluster", (const uint8_t *)text, strlen(text));
}

int main(int argc, char **argv) {
  if (argc != 3 || bft_crypto_init() != 0) {
    fprintf(stderr, "usage: fuzz_seeds TARGET DIR\n");
    return 2;
  }
  int rc = 0;
  if (strcmp(argv[1], "fuzz_frame") == 0) rc = frame_seeds(argv[2]);
  else if (strcmp(argv[1], "fuzz_cluster") == 0) rc = cluster_seeds(argv[2]);
  if (rc) fprintf(stderr, "fuzz_seeds: cannot write seeds for %s into %s\n", argv[1], argv[2]);
  return rc ? 1 : 0;
}
