/* The HotStuff unit tests' cluster: the shared engine harness (tests/common) running
 * "hotstuff", and h_pump, which also fires the leaders' short propose timers. */
#ifndef HS_TEST_HARNESS_H
#define HS_TEST_HARNESS_H

#include <assert.h>

#include "protocols/hotstuff/hotstuff.h"
#include "tests/common/engine_harness.h"

/* n replicas with default settings (batch_max 0 keeps it). */
static inline harness *h_new(uint32_t n, uint32_t batch_max) {
  return h_new_engine("hotstuff", "hotstuff-test", n, batch_max, 0, 0);
}

/* Deliver messages and fire the leaders' short propose timers until nothing moves. */
static inline void h_pump(harness *h) {
  for (int round = 0; round < 10000; round++) {
    h_run(h, 1000000);
    int fired = 0;
    for (uint32_t i = 0; i < h->n; i++)
      if (h->r[i].timer_armed[HS_TIMER_PROPOSE] && !h->r[i].down) {
        h_fire(h, i, HS_TIMER_PROPOSE);
        fired = 1;
      }
    if (!fired && h->qhead == h->qtail) return;
  }
  assert(0 && "h_pump: the cluster never settled");
}

#endif
