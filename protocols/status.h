/* A replica's signed status (bft-client status, bft-bench): what an operator's one-line health
 * view shows, and the engine tuning a benchmark reports.
 *
 *   STATUS_GET := nonce[16]                     (client -> replica, any connection)
 *   STATUS     := u8 version(1) | nonce[16] | u32 replica | blob protocol | u64 view
 *                 | u64 height | u32 leader | u8 changing_view | u64 view_changes
 *                 | u64 committed | head_hash[32] | u32 batch_max | u32 window
 *                 | u32 peers_up | u32 pool | u64 cpu_us | u64 executed | u8 protocol_only
 *                 | u8 unsafe_no_fsync | sig[64]
 *                 sig = the replica's bft_sign(tag "client/status") over everything before it
 *
 * The client's fresh nonce makes an answer unreplayable; the signature lets the client check
 * that the replica named in the cluster file said it. */
#ifndef BFT_STATUS_H
#define BFT_STATUS_H

#include <stdint.h>

#include "crypto/bft_crypto.h"
#include "protocols/ledger.h"
#include "protocols/limits.h"

#define BFT_STATUS_VERSION 3
#define BFT_TAG_STATUS "client/status"
#define BFT_STATUS_NONCE_LEN 16
#define BFT_STATUS_MAX_BYTES 256

typedef struct bft_status {
  uint8_t nonce[BFT_STATUS_NONCE_LEN];
  uint32_t replica;
  char protocol[BFT_MAX_PROTOCOL_NAME + 1];
  uint64_t view;          /* PBFT/HotStuff view, Tendermint round */
  uint64_t height;        /* engine's height (Tendermint: being decided; others committed + 1) */
  uint32_t leader;
  uint8_t changing_view;
  uint64_t view_changes;  /* views/rounds left on a timeout */
  uint64_t committed;     /* ledger head */
  uint8_t head_hash[BFT_DIGEST_LEN];
  uint32_t batch_max, window;
  uint32_t peers_up, pool;
  uint64_t cpu_us;        /* CPU time (user + system, all threads) the replica process used */
  uint64_t executed;      /* client requests executed since it started */
  uint8_t protocol_only;  /* its cluster file accepts unsigned (MAC) requests */
  uint8_t unsafe_no_fsync; /* it runs with --unsafe-no-fsync (records never fsynced) */
} bft_status;

/* Encode and sign (sign returns 0 on success); returns the length or a negative BFT_E*. */
int bft_status_encode(const bft_status *st, const bft_keypair *kp, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                      uint8_t *buf, uint32_t cap);
/* Decode and verify with replica public key pk: 0, BFT_E_MALFORMED/TRUNCATED/TRAILING/
 * TOO_LARGE, or BFT_E_BAD_SIG. */
int bft_status_decode(const uint8_t *p, uint32_t len, const uint8_t pk[BFT_PK_LEN],
                      const uint8_t cluster_id[BFT_CLUSTER_ID_LEN], bft_status *st);

#endif
