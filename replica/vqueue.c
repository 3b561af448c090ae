/* The requests of one loop iteration waiting for their signature checks (vqueue.h). */
#include "replica/vqueue.h"

#include <stdlib.h>
#include <string.h>

#include "replica/core.h"
#include "replica/rt_limits.h"

int rt_vq_init(rt_vq *q) {
  memset(q, 0, sizeof *q);
  q->e = calloc(RT_VQ_MAX_REQUESTS, sizeof *q->e);
  q->items = calloc(RT_VQ_MAX_REQUESTS, sizeof *q->items);
  q->arena = malloc(RT_VQ_MAX_BYTES);
  if (!q->e || !q->items || !q->arena) return rt_vq_free(q), BFT_E_NOMEM;
  return 0;
}

void rt_vq_free(rt_vq *q) {
  free(q->e);
  free(q->items);
  free(q->arena);
  memset(q, 0, sizeof *q);
}

int rt_vq_full(const rt_vq *q, uint32_t len) {
  return q->n == RT_VQ_MAX_REQUESTS || len > RT_VQ_MAX_BYTES - q->used;
}

int rt_vq_push(rt_vq *q, void *conn, void *core, const uint8_t *req, uint32_t len, const bft_request *r) {
  if (rt_vq_full(q, len)) return BFT_E_FULL;
  uint8_t *copy = q->arena + q->used;
  memcpy(copy, req, len);
  rt_vq_entry *e = &q->e[q->n++];
  *e = (rt_vq_entry){.conn = conn, .core = core, .off = q->used, .len = len, .item = -1, .verdict = RT_SIG_UNCHECKED};
  q->used += len;
  if (r) {
    BFT_ASSERT(r->sig >= req && r->sig + BFT_SIG_LEN <= req + len && r->signed_len <= len);
    rt_vitem *it = &q->items[q->nitems];
    memcpy(it->pk, r->client, BFT_PK_LEN);
    it->tag = BFT_TAG_REQUEST;
    it->msg = copy;
    it->len = r->signed_len;
    it->sig = copy + (r->sig - req);
    it->rc = 0;
    e->item = (int32_t)q->nitems++;
  }
  return 0;
}

void rt_vq_forget(rt_vq *q, const void *conn) {
  for (uint32_t i = 0; i < q->n; i++)
    if (q->e[i].conn == conn) q->e[i].conn = NULL;
}

void rt_vq_verify(rt_vq *q, rt_vpool *p) {
  rt_vpool_verify(p, q->items, q->nitems);
  for (uint32_t i = 0; i < q->n; i++)
    if (q->e[i].item >= 0) q->e[i].verdict = q->items[q->e[i].item].rc == 0 ? RT_SIG_GOOD : RT_SIG_BAD;
}

void rt_vq_clear(rt_vq *q) { q->n = q->nitems = q->used = 0; }
