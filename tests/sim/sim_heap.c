/* Binary heap of events by value (no per-event allocation); grows by doubling up to its
 * bound so a short run touches little memory and a long one cannot exhaust it. */
#include "tests/sim/sim_heap.h"

#include <stdlib.h>

#include "crypto/bft_err.h"

int sim_heap_init(sim_heap *h, uint32_t max) {
  h->count = 0;
  h->cap = max < 1024 ? max : 1024;
  h->max = max;
  h->next_order = 0;
  h->items = malloc((size_t)h->cap * sizeof *h->items);
  return h->items ? 0 : BFT_E_NOMEM;
}

void sim_heap_free(sim_heap *h) {
  free(h->items);
  h->items = NULL;
  h->count = h->cap = 0;
}

static int before(const sim_event *x, const sim_event *y) {
  return x->time < y->time || (x->time == y->time && x->order < y->order);
}

int sim_heap_push(sim_heap *h, const sim_event *ev) {
  if (h->count >= h->max) return BFT_E_FULL;
  if (h->count == h->cap) {
    uint32_t ncap = h->cap * 2 > h->max ? h->max : h->cap * 2;
    sim_event *n = realloc(h->items, (size_t)ncap * sizeof *n);
    if (!n) return BFT_E_NOMEM;
    h->items = n;
    h->cap = ncap;
  }
  sim_event e = *ev;
  e.order = h->next_order++;
  uint32_t i = h->count++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!before(&e, &h->items[parent])) break;
    h->items[i] = h->items[parent];
    i = parent;
  }
  h->items[i] = e;
  return 0;
}

int sim_heap_pop(sim_heap *h, sim_event *out) {
  if (h->count == 0) return 0;
  *out = h->items[0];
  sim_event last = h->items[--h->count];
  uint32_t i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= h->count) break;
    if (c + 1 < h->count && before(&h->items[c + 1], &h->items[c])) c++;
    if (!before(&h->items[c], &last)) break;
    h->items[i] = h->items[c];
    i = c;
  }
  if (h->count > 0) h->items[i] = last;
  return 1;
}
