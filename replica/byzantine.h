/* Deliberate misbehaviour of a faulty replica, for security testing: what it does to the frames
 * it sends. One module serves `bft-replica --byzantine MODES` and the simulator's fault plans, so
 * a mode behaves the same in a real cluster and in a simulated one. No I/O: the shell asks what
 * to do with each outgoing frame and carries it out (delays are the shell's: it holds frames).
 *
 * The replica keeps running the honest runtime and engine; only its output is falsified, so the
 * modes need no protocol-specific attack code and stay meaningful as engines change. Equivocation
 * needs two honest engines under one key, each speaking to part of the cluster (Twins): the
 * split is decided here (rt_byz_twin_reach, rt_byz_twin_side), carried out by replica/byz_twin.c
 * in bft-replica and by the simulator's twin plans in tests/sim. */
#ifndef RT_BYZANTINE_H
#define RT_BYZANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/engine.h"
#include "replica/core.h"

enum rt_byz_mode {
  RT_BYZ_SILENT = 1u << 0,   /* receives, never sends */
  RT_BYZ_DELAY = 1u << 1,    /* holds every frame delay_ms before it leaves (the shell does) */
  RT_BYZ_DROP_TO = 1u << 2,  /* frames to the replicas in drop_to are dropped */
  RT_BYZ_CORRUPT = 1u << 3,  /* a field of half of the engine messages changed, validly signed */
  RT_BYZ_BAD_SIG = 1u << 4,  /* engine messages leave with a broken signature */
  RT_BYZ_REPLAY = 1u << 5,   /* old signed engine messages resent to random replicas */
  RT_BYZ_WITHHOLD = 1u << 6, /* never serves data: FETCH replies, engine messages of class DATA */
  RT_BYZ_EQUIVOCATE = 1u << 7 /* two honest copies under one key (byz_twin.c); no frame is changed here */
};

#define RT_BYZ_RING 32u                  /* old engine messages kept for replay */
#define RT_BYZ_RING_BYTES (4u << 20)     /* ... and their bytes at most */
#define RT_BYZ_MAX_DELAY_MS 600000u

typedef struct rt_byz_config {
  uint32_t modes;    /* enum rt_byz_mode bits; 0: an honest replica */
  uint32_t delay_ms;
  uint64_t drop_to;  /* replica ids, one bit each */
} rt_byz_config;

/* "MODE[,MODE...]" with MODE one of equivocate, silent, delay:MS, drop-to:ID[+ID...], corrupt,
 * bad-sig, replay, withhold. 0, or BFT_E_INVAL with one line in err. */
int rt_byz_parse(const char *spec, uint32_t n, uint32_t self, rt_byz_config *out, char *err, size_t errlen);
/* The modes in the form rt_byz_parse reads. */
void rt_byz_describe(const rt_byz_config *c, char *buf, size_t cap);
/* One line per mode, for --help. */
const char *rt_byz_help(void);

/* Equivocation (Twins): which copies of faulty replica `self` speak with replica `peer` (bit 0:
 * copy A, bit 1: copy B; 0 for self). The bridge, which hears both copies so that conflicting
 * statements reach a correct replica and are detected there, is replica self-1 (mod n): the
 * leader just before self in the round-robin order every engine uses (PBFT views, HotStuff terms,
 * Tendermint heights), so both copies hear the proposals they vote on before their own turn,
 * and both gather the quorum to lead it. Of the others, counted from self+1 on, the first half
 * talk to copy A, the rest to copy B. Needs n >= 4. */
#define RT_BYZ_TWIN_A 1u
#define RT_BYZ_TWIN_B 2u
uint32_t rt_byz_twin_reach(uint32_t n, uint32_t self, uint32_t peer);
/* The copy (0: A, 1: B) that is handed a client request of sequence number seq: the copies see
 * different requests, so as leader they propose different batches for the same slot. */
static inline uint32_t rt_byz_twin_side(uint64_t seq) { return (uint32_t)(seq & 1u); }

typedef struct rt_byz_old { /* an engine message kept for replay */
  uint8_t kind;
  uint32_t len;
  uint8_t *body;
} rt_byz_old;

typedef struct rt_byz {
  rt_byz_config cfg;
  const bft_engine_ops *ops;
  uint32_t n, self;
  uint64_t rng; /* splitmix64 state: seeded by the shell (the simulator from its seed) */
  rt_byz_old ring[RT_BYZ_RING];
  uint32_t nring;
  uint64_t ring_bytes;
  uint64_t dropped, corrupted, bad_sigs, replayed, withheld; /* counters */
} rt_byz;

void rt_byz_init(rt_byz *b, const rt_byz_config *cfg, const bft_engine_ops *ops, uint32_t n, uint32_t self,
                 uint64_t seed);
void rt_byz_free(rt_byz *b);

enum rt_byz_verdict {
  RT_BYZ_SEND = 0,    /* send the frame as it is */
  RT_BYZ_DROP = 1,    /* do not send it */
  RT_BYZ_REPLACED = 2 /* send the len bytes now in out instead (same kind and length) */
};

/* What to do with one outgoing frame of wire kind `kind` to replica `to` (never a broadcast:
 * the shell asks once per destination). out has room for len bytes; cr signs for CORRUPT. */
int rt_byz_outgoing(rt_byz *b, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len, uint8_t *out,
                    const rt_crypto *cr);
/* REPLAY: after a frame went out, maybe one old one to send as well; 1 with it (borrowed until
 * the next call), else 0. */
int rt_byz_replay(rt_byz *b, uint32_t *to, uint8_t *kind, const uint8_t **body, uint32_t *len);

#endif
