/* The PBFT unit tests' cluster: the shared engine harness (tests/common) running "pbft", and the
 * request-timer helper the view-change tests use. */
#ifndef PBFT_TEST_HARNESS_H
#define PBFT_TEST_HARNESS_H

#include "protocols/pbft/pbft.h"
#include "tests/common/engine_harness.h"

static inline harness *h_new(uint32_t n, uint32_t batch_max, uint32_t window, uint32_t k) {
  return h_new_engine("pbft", "pbft-test", n, batch_max, window, k);
}

/* The request timer runs out at replica i: fired, and fired once more when the first period saw
 * the view work (new votes arrived, so it only re-armed: protocols/pbft/pbft_liveness.c) and
 * nothing happened since. Returns the last step's rc (or 1 when not armed). */
static inline int h_request_timeout(harness *h, uint32_t i) {
  int rc = h_fire(h, i, PBFT_TIMER_REQUEST);
  bft_engine_status st;
  h_status(h, i, &st);
  if (rc == 0 && !st.changing_view && h->r[i].timer_armed[PBFT_TIMER_REQUEST]) rc = h_fire(h, i, PBFT_TIMER_REQUEST);
  return rc;
}

#endif
