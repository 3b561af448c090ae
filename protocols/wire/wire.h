/* Canonical binary encoding used by every message: fixed-width little-endian integers,
 * u32-length-prefixed byte strings, no padding, exactly one encoding per value. Writers and
 * readers carry a sticky error, so a sequence of puts/gets is checked once at the end. */
#ifndef BFT_WIRE_H
#define BFT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/bft_err.h"

typedef struct wire_writer {
  uint8_t *buf;
  size_t cap;
  size_t len;
  int err; /* 0 or BFT_E_FULL once a put did not fit (nothing more is written) */
} wire_writer;

void wire_writer_init(wire_writer *w, uint8_t *buf, size_t cap);
void wire_put_u8(wire_writer *w, uint8_t v);
void wire_put_u16(wire_writer *w, uint16_t v);
void wire_put_u32(wire_writer *w, uint32_t v);
void wire_put_u64(wire_writer *w, uint64_t v);
void wire_put_bool(wire_writer *w, int v);
void wire_put_fixed(wire_writer *w, const void *p, size_t n); /* raw bytes, length implied */
void wire_put_blob(wire_writer *w, const void *p, uint32_t n); /* u32 length, then bytes */
/* Reserve n bytes to fill later (e.g. a signature over what precedes); NULL on overflow. */
uint8_t *wire_put_reserve(wire_writer *w, size_t n);

typedef struct wire_reader {
  const uint8_t *p;
  size_t len;
  size_t off;
  int err; /* first error: BFT_E_TRUNCATED, BFT_E_TOO_LARGE or BFT_E_MALFORMED */
} wire_reader;

void wire_reader_init(wire_reader *r, const uint8_t *p, size_t len);
uint8_t wire_get_u8(wire_reader *r);
uint16_t wire_get_u16(wire_reader *r);
uint32_t wire_get_u32(wire_reader *r);
uint64_t wire_get_u64(wire_reader *r);
int wire_get_bool(wire_reader *r); /* only 0 or 1 are canonical */
void wire_get_fixed(wire_reader *r, void *out, size_t n);
/* Borrowed pointer to n fixed bytes inside the input (NULL on error). */
const uint8_t *wire_get_view(wire_reader *r, size_t n);
/* A length-prefixed byte string, borrowed from the input. The length is checked against
 * max (BFT_E_TOO_LARGE) before anything else, then against what remains (BFT_E_TRUNCATED). */
const uint8_t *wire_get_blob(wire_reader *r, uint32_t *n, uint32_t max);
/* An element count checked against max before the caller allocates anything. */
uint32_t wire_get_count(wire_reader *r, uint32_t max);
size_t wire_remaining(const wire_reader *r);
/* The sticky error, or BFT_E_TRAILING when bytes are left over; 0 when all was consumed. */
int wire_reader_finish(const wire_reader *r);

/* ---- Frames: what travels on a TCP connection ------------------------------------------
 * header (16 bytes): magic u32 "BFT1" | version u8 | kind u8 | flags u16 (must be 0)
 *                    | sender u32 | body_len u32, then body_len bytes of body. */
#define WIRE_MAGIC 0x31544642u /* "BFT1" read as little-endian */
#define WIRE_VERSION 1
#define WIRE_FRAME_HEADER_LEN 16
#define WIRE_FRAME_MAX_BODY (4u * 1024u * 1024u)
#define WIRE_SENDER_CLIENT 0xFFFFFFFFu /* sender field of frames from clients */

/* Frame kinds. Engine messages use WIRE_KIND_ENGINE + the engine's own kind (1..63). */
enum wire_kind {
  WIRE_KIND_HELLO = 0x01,          /* transport handshake */
  WIRE_KIND_HELLO_ACK = 0x02,
  WIRE_KIND_REQUEST = 0x10,        /* client -> replica: signed request */
  WIRE_KIND_REPLY = 0x11,          /* replica -> client: signed reply */
  WIRE_KIND_LEDGER_GET = 0x12,     /* client -> replica: blocks from a height */
  WIRE_KIND_LEDGER_BLOCKS = 0x13,  /* replica -> client */
  WIRE_KIND_EVIDENCE_GET = 0x14,   /* client -> replica: the equivocation evidence it holds */
  WIRE_KIND_EVIDENCE = 0x15,       /* replica -> client */
  WIRE_KIND_STATUS_GET = 0x16,     /* client -> replica: signed status (protocols/status.h) */
  WIRE_KIND_STATUS = 0x17,         /* replica -> client */
  WIRE_KIND_QUERY = 0x18,          /* client -> replica: read-only application query (stale) */
  WIRE_KIND_QUERY_REPLY = 0x19,    /* replica -> client: signed answer of one replica */
  WIRE_KIND_FETCH = 0x20,          /* replica -> replica: committed batches from a seq */
  WIRE_KIND_FETCH_REPLY = 0x21,
  WIRE_KIND_STATE_DIGEST = 0x24,   /* replica -> replica: signed state digests after blocks */
  WIRE_KIND_SNAP_ATTEST = 0x22,    /* replica -> replicas: signed snapshot attestation */
  WIRE_KIND_SNAP_GET = 0x23,       /* replica (or client, manifest only) -> replica */
  WIRE_KIND_SNAP_META = 0x25,      /* manifest and certificate of a certified snapshot */
  WIRE_KIND_SNAP_CHUNK = 0x26,     /* one chunk of a snapshot's payload */
  WIRE_KIND_ENGINE = 0x40,         /* 0x40..0x7F: consensus engine messages */
  WIRE_KIND_ENGINE_LAST = 0x7F
};

typedef struct wire_frame_header {
  uint8_t version;
  uint8_t kind;
  uint32_t sender;
  uint32_t body_len;
} wire_frame_header;

void wire_frame_header_encode(uint8_t out[WIRE_FRAME_HEADER_LEN], uint8_t kind, uint32_t sender,
                              uint32_t body_len);
/* Decode and check a header: BFT_E_TRUNCATED if fewer than 16 bytes, BFT_E_BAD_MAGIC,
 * BFT_E_VERSION, BFT_E_MALFORMED (flags or kind 0), BFT_E_TOO_LARGE (body over the max). */
int wire_frame_header_decode(const uint8_t *p, size_t len, wire_frame_header *h);
/* Decode one complete frame occupying exactly len bytes; body is borrowed. */
int wire_frame_decode(const uint8_t *p, size_t len, wire_frame_header *h, const uint8_t **body);

#endif
