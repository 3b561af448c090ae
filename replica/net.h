/* Transport primitives of the replica over libuv: reference-counted frames (a broadcast is
 * encoded once and shared by every peer queue), bounded frame queues, and TCP connections that
 * assemble incoming frames (header checked, body size bounded before it is read) and send what
 * is queued with one coalesced uv_write at a time. What a frame means is decided by the owner
 * (replica.c) through rt_conn_handler. */
#ifndef RT_NET_H
#define RT_NET_H

#include <stdint.h>
#include <uv.h>

#include "protocols/wire/wire.h"
#include "replica/rt_limits.h"

/* ---- frames -------------------------------------------------------------------------------- */

typedef struct rt_frame {
  uint32_t refs;
  uint32_t len;     /* header + body */
  uint8_t data[];   /* header (16 bytes) then body */
} rt_frame;

/* A frame with one reference, body copied in; NULL when out of memory. */
rt_frame *rt_frame_new(uint8_t kind, uint32_t sender, const uint8_t *body, uint32_t len);
void rt_frame_ref(rt_frame *f);
void rt_frame_unref(rt_frame *f);

/* ---- bounded queues -------------------------------------------------------------------------- */

typedef struct rt_outq {
  rt_frame **ring;
  uint32_t cap, head, count; /* ring grows by doubling up to max_frames */
  uint32_t max_frames;
  uint64_t bytes, max_bytes;
  uint64_t *shared;          /* optional: bytes of a group of queues, with its bound */
  uint64_t shared_max;
} rt_outq;

void rt_outq_init(rt_outq *q, uint32_t max_frames, uint64_t max_bytes);
void rt_outq_free(rt_outq *q);
/* Take a reference to f and append it. When a bound would be exceeded: with drop_oldest, the
 * oldest frames are dropped (counted in *dropped) to make room; without, nothing is added and
 * BFT_E_FULL returned. */
int rt_outq_push(rt_outq *q, rt_frame *f, int drop_oldest, uint64_t *dropped);
/* Oldest frame (its reference passes to the caller), or NULL. */
rt_frame *rt_outq_pop(rt_outq *q);

/* ---- connections ------------------------------------------------------------------------------ */

typedef struct rt_conn rt_conn;

typedef struct rt_conn_handler {
  /* One complete frame (body borrowed for the call). Non-zero closes the connection. */
  int (*on_frame)(rt_conn *c, const wire_frame_header *h, const uint8_t *body);
  /* The connection is closing (called once); nothing may be queued on it any more. */
  void (*on_closing)(rt_conn *c, const char *why);
  /* Its memory is about to be freed. */
  void (*on_freed)(rt_conn *c);
  /* Its queue has frames and no write is in flight: flush it at the end of this iteration. */
  void (*on_dirty)(rt_conn *c);
  /* Optional: a frame header is invalid or its body over max_body; the connection closes next. */
  void (*on_violation)(rt_conn *c, const char *why);
} rt_conn_handler;

struct rt_conn {
  uv_tcp_t tcp;
  const rt_conn_handler *h;
  void *owner;
  uint64_t id;
  int role;            /* owner-defined */
  uint32_t peer;       /* owner-defined (replica id) */
  uint32_t max_body;   /* largest frame body accepted now; checked on the header */
  uint64_t deadline_ms;/* owner-defined; 0 = none */
  int closing, reading, dirty;
  char addr[64];       /* remote address, for logs */
  struct sockaddr_storage sa; /* remote address (family 0 when unknown) */
  /* read side. Reads land in the owner's shared buffer `spare` (RT_READ_CHUNK bytes) whenever
   * no frame is partly received, so an idle connection holds no read buffer at all; only the
   * bytes of a partial frame are copied into rbuf, which grows with what actually arrived (a
   * slow sender costs what it sent, not what its header announced) and is freed once empty. */
  uint8_t *spare;
  int in_spare;
  uint8_t *rbuf;
  size_t rlen, rcap;
  uint64_t frame_start_ms; /* when the first byte of the partial frame in rbuf arrived */
  uint64_t last_frame_ms;  /* when the last complete frame arrived (or the connection opened) */
  /* handshake challenges (owner-defined use) */
  uint8_t nonce_local[32], nonce_remote[32];
  /* write side */
  rt_outq q;           /* frames of this connection (handshake, client replies) */
  rt_outq *extra;      /* flushed after q: the peer's queue once authenticated */
  int writing;
  uv_write_t wreq;
  uint32_t ninflight;
  uint32_t wmax, wcap;   /* frames per uv_write (owner sets wmax <= RT_WRITE_MAX_BUFS); arrays */
  rt_frame **inflight;   /* allocated at the first write, wcap entries */
  uv_buf_t *bufs;
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  /* owner's list links */
  rt_conn *prev, *next;
  rt_conn *uprev, *unext; /* owner's second list (replica.c: unproven connections, LRU order) */
  void *user;          /* owner data */
  void *src;           /* owner's per-source record */
  int verified;        /* owner-defined: the client proved a key of the cluster file */
  uint32_t fails;      /* owner-defined: failed verifications on this connection */
  uint32_t queued;     /* owner-defined: its requests waiting for a signature check */
  int counted;         /* owner-defined: counted in the per-source / client limits */
};

/* A connection object around an initialised-but-unconnected tcp handle on loop. */
rt_conn *rt_conn_new(uv_loop_t *loop, const rt_conn_handler *h, void *owner, uint64_t id,
                     uint32_t max_frames, uint64_t max_bytes);
/* Begin reading (after connect/accept); 0 or a libuv error. */
int rt_conn_start(rt_conn *c);
/* Queue a frame on the connection's own queue (takes a reference). BFT_E_FULL when its bound
 * would be exceeded (the caller decides: clients are closed). */
int rt_conn_send(rt_conn *c, rt_frame *f);
/* Write what is queued (q, then *extra) with one uv_write, unless one is in flight. */
void rt_conn_flush(rt_conn *c);
/* Close once; on_closing now, on_freed after libuv released the handle. */
void rt_conn_close(rt_conn *c, const char *why);
/* Remote address as text into c->addr. */
void rt_conn_describe(rt_conn *c);

#endif
