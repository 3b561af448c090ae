/* Request pool: fixed entry array, arrival-ordered list with a pull cursor, digest index. */
#include "replica/pool.h"

#include <stdlib.h>
#include <string.h>

#include "replica/rt_limits.h"

static uint32_t digest_slot(const uint8_t d[BFT_DIGEST_LEN], uint32_t mask) {
  return ((uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24) & mask;
}

int rt_pool_init(rt_pool *p, uint32_t nclients, uint32_t max_requests, uint64_t max_bytes,
                 uint32_t max_per_client) {
  memset(p, 0, sizeof *p);
  p->cap = max_requests ? max_requests : RT_POOL_MAX_REQUESTS;
  p->max_bytes = max_bytes ? max_bytes : RT_POOL_MAX_BYTES;
  p->max_per_client = max_per_client ? max_per_client : RT_POOL_MAX_PER_CLIENT;
  p->nclients = nclients;
  uint32_t icap = 16;
  while (icap < 2 * p->cap) icap *= 2;
  p->index_mask = icap - 1;
  p->e = calloc(p->cap, sizeof *p->e);
  p->index = malloc(icap * sizeof *p->index);
  p->chead = malloc((nclients ? nclients : 1) * sizeof *p->chead);
  p->ccount = calloc(nclients ? nclients : 1, sizeof *p->ccount);
  if (!p->e || !p->index || !p->chead || !p->ccount) return rt_pool_free(p), BFT_E_NOMEM;
  for (uint32_t i = 0; i < icap; i++) p->index[i] = RT_POOL_NIL;
  for (uint32_t i = 0; i < nclients; i++) p->chead[i] = RT_POOL_NIL;
  for (uint32_t i = 0; i < p->cap; i++) p->e[i].next = i + 1 < p->cap ? i + 1 : RT_POOL_NIL;
  p->free_head = 0;
  p->head = p->tail = p->cursor = RT_POOL_NIL;
  p->epoch = 1;
  return 0;
}

void rt_pool_free(rt_pool *p) {
  if (p->e)
    for (uint32_t i = 0; i < p->cap; i++) free(p->e[i].bytes);
  free(p->e);
  free(p->index);
  free(p->chead);
  free(p->ccount);
  memset(p, 0, sizeof *p);
}

static uint32_t index_find(const rt_pool *p, const uint8_t d[BFT_DIGEST_LEN]) {
  for (uint32_t j = digest_slot(d, p->index_mask);; j = (j + 1) & p->index_mask) {
    uint32_t i = p->index[j];
    if (i == RT_POOL_NIL || memcmp(p->e[i].digest, d, BFT_DIGEST_LEN) == 0) return j;
  }
}

static void index_remove(rt_pool *p, uint32_t slot) {
  p->index[slot] = RT_POOL_NIL;
  uint32_t hole = slot, m = p->index_mask;
  for (uint32_t j = (slot + 1) & m; p->index[j] != RT_POOL_NIL; j = (j + 1) & m) {
    uint32_t home = digest_slot(p->e[p->index[j]].digest, m);
    int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      p->index[hole] = p->index[j];
      p->index[j] = RT_POOL_NIL;
      hole = j;
    }
  }
}

int rt_pool_contains(const rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN]) {
  return p->index[index_find(p, digest)] != RT_POOL_NIL;
}

static int client_has_seq(const rt_pool *p, uint32_t client, uint64_t seq) {
  for (uint32_t i = p->chead[client]; i != RT_POOL_NIL; i = p->e[i].cnext)
    if (p->e[i].seq == seq) return 1;
  return 0;
}

int rt_pool_add(rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN], uint32_t client, uint64_t seq,
                const uint8_t *bytes, uint32_t len) {
  if (client >= p->nclients) return BFT_E_INVAL;
  uint32_t slot = index_find(p, digest);
  if (p->index[slot] != RT_POOL_NIL || client_has_seq(p, client, seq)) return BFT_E_DUPLICATE;
  if (p->free_head == RT_POOL_NIL || p->bytes + len > p->max_bytes ||
      p->ccount[client] >= p->max_per_client)
    return BFT_E_FULL;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return BFT_E_NOMEM;
  memcpy(copy, bytes, len);
  uint32_t i = p->free_head;
  rt_pool_entry *e = &p->e[i];
  p->free_head = e->next;
  memcpy(e->digest, digest, BFT_DIGEST_LEN);
  e->bytes = copy;
  e->len = len;
  e->client = client;
  e->seq = seq;
  e->used = 1;
  e->prev = p->tail;
  e->next = RT_POOL_NIL;
  if (p->tail != RT_POOL_NIL) p->e[p->tail].next = i;
  else p->head = i;
  p->tail = i;
  if (p->cursor == RT_POOL_NIL) p->cursor = i;
  e->cnext = p->chead[client];
  p->chead[client] = i;
  p->ccount[client]++;
  p->index[slot] = i;
  p->count++;
  p->bytes += len;
  return 0;
}

static void remove_entry(rt_pool *p, uint32_t i) {
  rt_pool_entry *e = &p->e[i];
  if (p->cursor == i) p->cursor = e->next;
  if (e->prev != RT_POOL_NIL) p->e[e->prev].next = e->next;
  else p->head = e->next;
  if (e->next != RT_POOL_NIL) p->e[e->next].prev = e->prev;
  else p->tail = e->prev;
  index_remove(p, index_find(p, e->digest));
  if (e->pulled_epoch == p->epoch) p->inflight--;
  p->count--;
  p->bytes -= e->len;
  p->ccount[e->client]--;
  free(e->bytes);
  memset(e, 0, sizeof *e);
  e->next = p->free_head;
  p->free_head = i;
}

void rt_pool_remove_upto(rt_pool *p, uint32_t client, uint64_t upto) {
  if (client >= p->nclients) return;
  uint32_t *link = &p->chead[client];
  while (*link != RT_POOL_NIL) {
    uint32_t i = *link;
    if (p->e[i].seq <= upto) {
      *link = p->e[i].cnext;
      remove_entry(p, i);
    } else {
      link = &p->e[i].cnext;
    }
  }
}

/* Entries at the cursor already handed out (marked in flight) are passed over. */
static void skip_pulled(rt_pool *p) {
  while (p->cursor != RT_POOL_NIL && p->e[p->cursor].pulled_epoch == p->epoch) p->cursor = p->e[p->cursor].next;
}

void rt_pool_new_epoch(rt_pool *p) {
  p->cursor = p->head;
  p->epoch++;
  p->inflight = 0;
}

int rt_pool_has_unpulled(const rt_pool *p) {
  for (uint32_t i = p->cursor; i != RT_POOL_NIL; i = p->e[i].next)
    if (p->e[i].pulled_epoch != p->epoch) return 1;
  return 0;
}

void rt_pool_mark_pulled(rt_pool *p, const uint8_t digest[BFT_DIGEST_LEN], uint64_t head) {
  uint32_t i = p->index[index_find(p, digest)];
  if (i == RT_POOL_NIL) return;
  rt_pool_entry *e = &p->e[i];
  if (e->pulled_epoch == p->epoch) return;
  e->pulled_epoch = p->epoch;
  e->pulled_head = head;
  p->inflight++;
  skip_pulled(p);
}

uint32_t rt_pool_expire(rt_pool *p, uint64_t head, uint32_t after) {
  if (!after) return 0;
  uint32_t n = 0;
  for (uint32_t i = p->head; i != RT_POOL_NIL; i = p->e[i].next) {
    rt_pool_entry *e = &p->e[i];
    if (e->pulled_epoch != p->epoch || e->pulled_head + after > head) continue;
    e->pulled_epoch = 0;
    p->inflight--;
    n++;
  }
  /* Pulls pass over entries handed out in this epoch, so restarting the cursor is safe. */
  if (n) p->cursor = p->head;
  return n;
}

uint32_t rt_pool_pull(rt_pool *p, uint32_t max, bft_batch_writer *bw, uint64_t head) {
  uint32_t n = 0;
  skip_pulled(p);
  while (n < max && p->cursor != RT_POOL_NIL) {
    rt_pool_entry *e = &p->e[p->cursor];
    if (e->pulled_epoch == p->epoch) { /* marked in flight by rt_pool_mark_pulled */
      p->cursor = e->next;
      continue;
    }
    if (bft_batch_add(bw, e->bytes, e->len) != 0) break;
    e->pulled_epoch = p->epoch;
    e->pulled_head = head;
    p->inflight++;
    p->cursor = e->next;
    n++;
  }
  return n;
}
