/* Client requests read during one loop iteration that wait for their signatures to be checked
 * together on the verify pool (vpool.h) at the end of the iteration: copies of their bytes in one
 * bounded arena, the connection each came on (forgotten when it closes) and the core that
 * handles it. I/O-free bookkeeping: the glue (replica.c) decides what waits here and what
 * happens to each request after its check. */
#ifndef RT_VQUEUE_H
#define RT_VQUEUE_H

#include <stdint.h>

#include "protocols/request.h"
#include "replica/vpool.h"

typedef struct rt_vq_entry {
  void *conn;        /* the connection it came on (owner-defined); NULL once that closed */
  void *core;        /* the core that handles it (owner-defined) */
  uint32_t off, len; /* its bytes in the arena */
  int32_t item;      /* its signature check in items[], or -1: it waits only to keep its connection's order */
  int verdict;       /* enum rt_sig_verdict (core.h) once rt_vq_verify ran; RT_SIG_UNCHECKED before */
} rt_vq_entry;

typedef struct rt_vq {
  rt_vq_entry *e;    /* RT_VQ_MAX_REQUESTS */
  rt_vitem *items;   /* RT_VQ_MAX_REQUESTS: the signatures to check, in arrival order */
  uint8_t *arena;    /* RT_VQ_MAX_BYTES */
  uint32_t n, nitems, used;
} rt_vq;

int rt_vq_init(rt_vq *q); /* 0 or BFT_E_NOMEM */
void rt_vq_free(rt_vq *q);
/* 1 when a request of len bytes would not fit now: check what waits first. */
int rt_vq_full(const rt_vq *q, uint32_t len);
/* Copy a request in. With r (its decoding, pointing into req) its signature is checked at
 * rt_vq_verify; without, it only waits. BFT_E_FULL when it does not fit (rt_vq_full). */
int rt_vq_push(rt_vq *q, void *conn, void *core, const uint8_t *req, uint32_t len, const bft_request *r);
/* The connection closed: its requests stay (their checks are not wasted) but lose it. */
void rt_vq_forget(rt_vq *q, const void *conn);
/* Check every signature that waits, on the pool; each entry gets its verdict. */
void rt_vq_verify(rt_vq *q, rt_vpool *p);
static inline const uint8_t *rt_vq_bytes(const rt_vq *q, uint32_t i) { return q->arena + q->e[i].off; }
void rt_vq_clear(rt_vq *q);

#endif
