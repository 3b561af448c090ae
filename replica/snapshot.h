/* Application snapshots at stable heights, and the certificates that make one the cluster's.
 *
 * A snapshot at height H is the replicated state after block H: the application's canonical
 * snapshot and every client's (last executed seq, height) — exactly what the state digest of
 * block H covers — cut into chunks of RT_SNAP_CHUNK bytes. Its manifest names H, the hash of
 * block H, the state digest after H, the payload length and each chunk's BLAKE2b; the snapshot
 * digest is BLAKE2b("bft/snapshot" || manifest). Correct replicas produce byte-identical
 * payloads at H, hence identical manifests and digests.
 *
 * Certificate: every replica that writes snapshot H signs an attestation (tag snap/attest) of
 * u64 H | block_hash | state_digest | snap_digest | u32 replica and sends it to all; f+1
 * matching attestations from distinct replicas (one is correct) are the certificate, kept next
 * to the snapshot (snap-H.cert) and checked by anyone with the cluster file. A transferred
 * snapshot is accepted only with such a certificate, each chunk checked against the manifest
 * it covers; the block hash in it anchors the ledger kept after H (verify-ledger).
 *
 * On disk (DATA_DIR/snap-<H, 20 digits>): "BFTSNAP1" | u32 manifest_len | manifest | u64
 * payload_len | payload | u32 local_len | local | u32 crc32c(everything before); `local` holds
 * this replica's cached replies (not replicated state). Written to a temporary file, fsynced,
 * renamed, folder fsynced. In the simulator the store is a pair of memory files. */
#ifndef RT_SNAPSHOT_H
#define RT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/cluster/cluster.h"
#include "protocols/wire/wire.h"
#include "replica/app.h"
#include "replica/recfile.h"
#include "replica/sessions.h"

#define RT_SNAP_CHUNK (1u << 20)              /* bytes per transferred chunk */
#define RT_SNAP_MAX_BYTES (1ull << 30)         /* payload bound (the kv store holds 512 MiB) */
#define RT_SNAP_MAX_CHUNKS ((uint32_t)(RT_SNAP_MAX_BYTES / RT_SNAP_CHUNK))
#define RT_SNAP_MANIFEST_MAX (8 + 32 + 32 + 8 + 4 + RT_SNAP_MAX_CHUNKS * 32)
#define RT_SNAP_CERT_MAX (8 + 3 * 32 + 4 + BFT_MAX_REPLICAS * (4 + BFT_SIG_LEN))
#define RT_SNAP_EVERY_DEFAULT 1024u            /* --snapshot-every */
#define RT_SNAP_TAG "snap/attest"
_Static_assert(RT_SNAP_MANIFEST_MAX + RT_SNAP_CERT_MAX + 64 < WIRE_FRAME_MAX_BODY, "a manifest and its certificate fit one frame");
_Static_assert(RT_SNAP_CHUNK + 64 < WIRE_FRAME_MAX_BODY, "a chunk fits one frame");

/* What an attestation and a certificate state. */
typedef struct rt_snap_stmt {
  uint64_t height;
  uint8_t block_hash[BFT_DIGEST_LEN];
  uint8_t state_digest[BFT_DIGEST_LEN];
  uint8_t snap_digest[BFT_DIGEST_LEN];
} rt_snap_stmt;

/* A snapshot in memory. */
typedef struct rt_snap {
  rt_snap_stmt st;
  uint8_t *manifest;  /* encoded manifest */
  uint32_t manifest_len;
  uint8_t *payload;
  uint64_t payload_len;
  uint8_t *local;
  uint32_t local_len;
} rt_snap;
void rt_snap_free(rt_snap *s);

/* Capture the state after block (height, block_hash): application (through rt_snap_app_*),
 * sessions and the state digest. The adapter below is the one place the application's
 * snapshot/restore are called. */
int rt_snap_capture(rt_snap *s, const bft_app *app, const rt_sessions *ss, uint64_t height,
                    const uint8_t block_hash[BFT_DIGEST_LEN], const uint8_t state_digest[BFT_DIGEST_LEN]);
int rt_snap_app_snapshot(const bft_app *app, uint8_t **out, size_t *len);
int rt_snap_app_restore(const bft_app *app, uint64_t height, const uint8_t *snap, size_t len);
/* Replace application and sessions by the snapshot's payload (and local cached replies when
 * present). The caller checks the resulting state digest against s->st.state_digest. */
int rt_snap_apply(const rt_snap *s, const bft_app *app, rt_sessions *ss, const bft_cluster *cl);

/* Manifest: decode into stmt (snap_digest computed), nchunks and the chunk digests (pointer into m). */
int rt_snap_manifest_decode(const uint8_t *m, uint32_t len, rt_snap_stmt *st, uint64_t *payload_len,
                            uint32_t *nchunks, const uint8_t **chunk_digests);

/* Attestations and certificates. */
void rt_snap_stmt_encode(const rt_snap_stmt *st, uint32_t replica, uint8_t out[8 + 3 * 32 + 4]);
/* The certificate over st from the attestation signatures of `mask` (bit i: sigs[i] valid). */
int rt_snap_cert_encode(const rt_snap_stmt *st, uint64_t mask, const uint8_t (*sigs)[BFT_SIG_LEN], uint8_t *out,
                        uint32_t cap);
/* 0 when cert holds f+1 valid signatures of distinct replicas over a statement; *st gets it. */
typedef int (*rt_snap_verify_fn)(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len,
                                 const uint8_t sig[BFT_SIG_LEN]);
int rt_snap_cert_verify(const uint8_t *cert, uint32_t len, uint32_t n, uint32_t f, rt_snap_verify_fn fn, void *ctx,
                        rt_snap_stmt *st);

/* The store: files in a folder, or memory files (one snapshot and one certificate). */
typedef struct rt_snap_store {
  const char *dir;    /* NULL with mem */
  rt_memfile *mem, *cert_mem;
  int last_errno;
  uint64_t fail_sync_at, nsyncs; /* test hook (RT_FAIL_SYNC_ENV with the name "snap") */
} rt_snap_store;
/* Write snapshot s crash-consistently. */
int rt_snap_store_write(rt_snap_store *ss, const rt_snap *s);
int rt_snap_store_write_cert(rt_snap_store *ss, uint64_t height, const uint8_t *cert, uint32_t len);
/* The newest snapshot with height <= max_height that reads back intact (0 on success; 1 when none). */
int rt_snap_store_load(rt_snap_store *ss, uint64_t max_height, rt_snap *s);
/* The certificate of snapshot `height`, malloc'd (0; 1 when none). */
int rt_snap_store_load_cert(rt_snap_store *ss, uint64_t height, uint8_t **cert, uint32_t *len);
/* Payload bytes [off, off+len) of snapshot `height` into buf. */
int rt_snap_store_read_payload(rt_snap_store *ss, uint64_t height, uint64_t off, uint8_t *buf, uint32_t len);
/* Remove snapshots (and certificates) other than keep1 and keep2. */
void rt_snap_store_prune(rt_snap_store *ss, uint64_t keep1, uint64_t keep2);

#endif
