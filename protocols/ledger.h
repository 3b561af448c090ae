/* Ledger blocks: one per committed batch, hash-chained, each carrying the engine's commit
 * certificate, so anyone holding the cluster file can verify the whole ledger without trusting
 * the replica that served it.
 *
 *   block := u8 version(1) | u64 height | prev_hash[32] | batch_digest[32] | state_digest[32]
 *            | blob protocol | blob cert | blob batch
 *   hash(block) = BLAKE2b-256("bft-block-v1" || encoding up to and including protocol), i.e.
 *   everything but the certificate and the batch (which batch_digest covers). The certificate is
 *   left out because each replica assembles its own 2f+1 signatures: correct replicas then hold
 *   blocks with identical hashes, and every block still carries a proof anyone can check.
 *   prev_hash of block 1 is the cluster id.
 * height equals the engine's sequence number of the batch (engines deliver 1, 2, 3, ...). */
#ifndef BFT_LEDGER_H
#define BFT_LEDGER_H

#include <stdint.h>

#include "protocols/cluster/cluster.h"
#include "protocols/limits.h"

#define BFT_LEDGER_VERSION 1
#define BFT_MAX_PROTOCOL_NAME 16
#define BFT_MAX_BLOCK_BYTES (BFT_MAX_BATCH_BYTES + BFT_MAX_CERT_BYTES + 256)

typedef struct bft_block { /* decoded; cert, batch and protocol are borrowed */
  uint64_t height;
  uint8_t prev_hash[BFT_DIGEST_LEN];
  uint8_t batch_digest[BFT_DIGEST_LEN];
  uint8_t state_digest[BFT_DIGEST_LEN];
  char protocol[BFT_MAX_PROTOCOL_NAME + 1];
  const uint8_t *cert;
  uint32_t cert_len;
  const uint8_t *batch;
  uint32_t batch_len;
} bft_block;

/* Encode into buf; returns the length or a negative BFT_E*. */
int bft_block_encode(const bft_block *b, uint8_t *buf, uint32_t cap);
int bft_block_decode(const uint8_t *p, uint32_t len, bft_block *b);
/* Hash of an encoded block (see above); call it on a block that decodes. */
void bft_block_hash(const uint8_t *encoded, uint32_t len, uint8_t out[BFT_DIGEST_LEN]);

/* Verify one encoded block against the cluster: structure, prev_hash == expected_prev,
 * batch digest, and the commit certificate of the named engine. On failure writes a reason
 * to why (may be NULL). */
int bft_block_verify(const bft_cluster *c, const uint8_t *p, uint32_t len,
                     const uint8_t expected_prev[BFT_DIGEST_LEN], uint64_t expected_height,
                     char *why, uint32_t whylen);

/* Ledger reads over the client port (no consensus: every block proves itself):
 *   LEDGER_GET    := u64 from_height | u32 max_blocks            (client -> replica)
 *   LEDGER_BLOCKS := u64 head_height | u32 count | count x blob block   (replica -> client)
 * A replica answers with at most BFT_LEDGER_MAX_BLOCKS_PER_REPLY blocks and at most
 * WIRE_FRAME_MAX_BODY bytes. The same body answers replica-to-replica FETCH / FETCH_REPLY
 * (from_height = first seq wanted), which drivers use to carry out BFT_ACT_FETCH. */
#define BFT_LEDGER_MAX_BLOCKS_PER_REPLY 16

#endif
