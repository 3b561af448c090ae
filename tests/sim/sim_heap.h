/* The simulator's event queue: a binary min-heap ordered by (virtual time, insertion
 * counter), so events due at the same microsecond run in the order they were scheduled —
 * never in an order that depends on memory layout. Bounded: a push beyond `max` fails. */
#ifndef SIM_HEAP_H
#define SIM_HEAP_H

#include <stdint.h>

typedef struct sim_event {
  uint64_t time;  /* virtual µs */
  uint64_t order; /* insertion counter: the deterministic tie-break (set by push) */
  uint8_t type;
  uint8_t kind;
  uint32_t node; /* destination replica (or client) */
  uint32_t from;
  uint64_t a, b; /* type-specific: timer tag/generation, seq, request index, ... */
  void *p;       /* type-specific payload, owned by the event while queued */
} sim_event;

typedef struct sim_heap {
  sim_event *items;
  uint32_t count, cap, max;
  uint64_t next_order;
} sim_heap;

/* 0 or BFT_E_NOMEM. max bounds the number of queued events. */
int sim_heap_init(sim_heap *h, uint32_t max);
void sim_heap_free(sim_heap *h);
/* Copies ev in, stamping its order. 0, or BFT_E_FULL when max events are queued. */
int sim_heap_push(sim_heap *h, const sim_event *ev);
/* 1 and the earliest event in *out, or 0 when empty. */
int sim_heap_pop(sim_heap *h, sim_event *out);

#endif
