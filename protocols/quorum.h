/* Quorum plumbing every engine shares: vote sets keyed by (round, height, digest) with the
 * 2f+1 and f+1 thresholds, and quorum certificates (a list of (replica id, signature) over one
 * canonical statement) with their encoding and verification. A PBFT commit certificate, a
 * HotStuff QC and a Tendermint commit are all a bft_qc.
 *
 * Statements: each replica signs `body || u32 replica` (little-endian) under the engine's tag
 * for that vote kind, so that a signature cannot be moved to another signer's slot. The body
 * is the engine's canonical statement (view/round, seq/height, digest, ...).
 *
 * Encoding of a certificate's signatures (qsigs):
 *   qsigs := u32 count (= 2f+1 exactly) | count x (u32 replica | sig[64]), replicas ascending
 * Ascending ids make the encoding canonical and duplicates impossible; exactly 2f+1 entries
 * bound the verification cost a peer can demand. */
#ifndef BFT_QUORUM_H
#define BFT_QUORUM_H

#include <stdint.h>

#include "protocols/engine.h"
#include "protocols/wire/wire.h"

#define BFT_MAX_F ((BFT_MAX_REPLICAS - 1) / 3)
#define BFT_QUORUM_MAX (2 * BFT_MAX_F + 1)
#define BFT_QC_ENTRY (4 + BFT_SIG_LEN)
#define BFT_QC_SIGS_MAX (4 + BFT_QUORUM_MAX * BFT_QC_ENTRY) /* encoded qsigs */
#define BFT_STMT_MAX 128                                     /* statement body + signer id */

_Static_assert(BFT_QC_SIGS_MAX + 64 <= BFT_MAX_CERT_BYTES, "a qsigs fits a certificate with a header");

static inline uint32_t bft_quorum(const bft_engine_config *cfg) { return 2 * cfg->f + 1; }
static inline uint32_t bft_weak_quorum(const bft_engine_config *cfg) { return cfg->f + 1; }

/* ---- statements --------------------------------------------------------------------------- */

/* out = body || u32 replica; returns the length (body_len + 4) or BFT_E_FULL. */
int bft_stmt_make(uint8_t out[BFT_STMT_MAX], const uint8_t *body, uint32_t body_len, uint32_t replica);

/* ---- quorum certificates ------------------------------------------------------------------ */

typedef struct bft_qc { /* 2f+1 signatures over one statement body, ids ascending */
  uint32_t count;
  uint32_t ids[BFT_QUORUM_MAX];
  uint8_t sigs[BFT_QUORUM_MAX][BFT_SIG_LEN];
} bft_qc;

typedef struct bft_qc_view { /* a decoded qsigs, borrowing from the message */
  uint32_t count;
  const uint8_t *p; /* count x (u32 replica | sig) */
} bft_qc_view;

/* Append qsigs of c (count 0 when c is NULL or empty). */
void bft_qc_put(wire_writer *w, const bft_qc *c);
/* Read a qsigs (structure and bounds only; a reader error is sticky in r). */
void bft_qc_get(wire_reader *r, bft_qc_view *v);
/* Copy a view into a bft_qc (no checks beyond the bound). */
void bft_qc_from_view(const bft_qc_view *v, bft_qc *c);

/* Verify: exactly 2f+1 entries, ids strictly ascending and below n, `need` among them
 * (UINT32_MAX: anyone), and each signature made by its replica over body || u32 id under tag.
 * Cheap structure checks come before any signature. 0 or BFT_E_BAD_CERT. */
int bft_qc_verify(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, const uint8_t *body,
                  uint32_t body_len, const bft_qc_view *v, uint32_t need);
/* Same, for a bft_qc held in memory. */
int bft_qc_verify_qc(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, const uint8_t *body,
                     uint32_t body_len, const bft_qc *c, uint32_t need);

/* ---- vote sets ---------------------------------------------------------------------------- */

typedef struct bft_vote { /* one replica's vote held in a set */
  uint64_t round;         /* view / round the vote was cast in */
  uint64_t height;        /* seq / height it is for */
  uint8_t digest[BFT_DIGEST_LEN];
  uint8_t sig[BFT_SIG_LEN];
  uint8_t valid;
} bft_vote;

/* At most one vote per replica, for one slot of an engine (a PBFT sequence number, a
 * Tendermint (height, round, step), a HotStuff view). Fixed size: copyable, no pointers. */
typedef struct bft_voteset {
  bft_vote v[BFT_MAX_REPLICAS];
} bft_voteset;

enum bft_vote_outcome {
  BFT_VOTE_NEW = 1,      /* recorded (first vote of this replica, or of a newer round) */
  BFT_VOTE_SAME = 2,     /* this exact vote was already held */
  BFT_VOTE_STALE = 3,    /* an older round than the one held: ignored */
  BFT_VOTE_CONFLICT = 4  /* same (round, height), another digest: equivocation; first kept */
};

void bft_voteset_clear(bft_voteset *vs);
/* Record replica's signed vote (the signature already checked by the caller). */
int bft_voteset_add(bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                    const uint8_t digest[BFT_DIGEST_LEN], const uint8_t sig[BFT_SIG_LEN]);
/* Hold this vote for replica, replacing whatever was held: for votes the engine decides to
 * hold rather than receives (its own, or a leader's vote carried by its proposal). */
void bft_voteset_set(bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                     const uint8_t digest[BFT_DIGEST_LEN], const uint8_t sig[BFT_SIG_LEN]);
/* Drop replica's vote, if any. */
void bft_voteset_forget(bft_voteset *vs, uint32_t replica);
/* Replicas below n holding a vote for exactly (round, height, digest). */
uint32_t bft_voteset_count(const bft_voteset *vs, uint32_t n, uint64_t round, uint64_t height,
                           const uint8_t digest[BFT_DIGEST_LEN]);
/* Replicas below n holding a vote of (round, height), whatever the digest. */
uint32_t bft_voteset_count_any(const bft_voteset *vs, uint32_t n, uint64_t round, uint64_t height);
/* 1 when replica's held vote is exactly (round, height, digest). */
int bft_voteset_has(const bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                    const uint8_t digest[BFT_DIGEST_LEN]);
/* Build a certificate from the 2f+1 lowest-numbered matching votes, `need` (UINT32_MAX:
 * anyone) among them. 1 when built, 0 when there are not enough. */
int bft_voteset_qc(const bft_voteset *vs, const bft_engine_config *cfg, uint64_t round, uint64_t height,
                   const uint8_t digest[BFT_DIGEST_LEN], uint32_t need, bft_qc *out);

#endif
