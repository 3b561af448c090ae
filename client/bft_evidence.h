/* Equivocation evidence from a replica (bft-client evidence): fetch it and check it with the
 * cluster file alone. */
#ifndef BFT_EVIDENCE_H
#define BFT_EVIDENCE_H

#include <stdint.h>
#include <stdio.h>

#include "protocols/cluster/cluster.h"
#include "protocols/engine.h"

/* Ask replica `replica` for the evidence it holds; *body (malloc'd, caller frees) gets the
 * EVIDENCE frame's body. 0, or a negative BFT_E* with one line in err. */
int bft_evidence_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen);
/* Check and print every piece; counts how many are valid. 0, or BFT_E_MALFORMED /
 * BFT_E_UNSUPPORTED (an engine this build does not have). */
int bft_evidence_print(const bft_cluster *c, uint32_t replica, const uint8_t *body, uint32_t len, FILE *out,
                       uint32_t *valid, uint32_t *invalid);

/* The anchor of a pruned ledger: replica `replica`'s newest certified snapshot (f+1 signed
 * attestations of its height and block hash) and where its ledger starts. */
typedef struct bft_anchor {
  uint64_t height;   /* 0: no certified snapshot */
  uint8_t block_hash[BFT_DIGEST_LEN];
  uint64_t base;     /* the replica's ledger holds blocks base+1 .. head */
} bft_anchor;
int bft_snapmeta_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen);
/* Decode a SNAP_META answer and check its certificate with the cluster file alone. */
int bft_snapmeta_anchor(const bft_cluster *c, const uint8_t *body, uint32_t len, bft_anchor *a, char *err,
                        size_t errlen);

#endif
