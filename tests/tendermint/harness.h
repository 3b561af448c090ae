/* The Tendermint unit tests' cluster: the shared engine harness (tests/common) running
 * "tendermint", with 0 ms timers fired as they come (the engine pulls from one). */
#ifndef TM_TEST_HARNESS_H
#define TM_TEST_HARNESS_H

#include "protocols/tendermint/tendermint.h"
#include "tests/common/engine_harness.h"

static inline harness *h_new(uint32_t n, uint32_t batch_max, uint32_t window, uint32_t k) {
  harness *h = h_new_engine("tendermint", "tm-test", n, batch_max, window, k);
  if (h) h->fire_zero_timers = 1;
  return h;
}

#endif
