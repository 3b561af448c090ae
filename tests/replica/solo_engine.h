/* A trivial engine for testing the replica core without a consensus protocol: every pulled
 * batch commits at once with a fake certificate "solo" || u64 seq. Not Byzantine tolerant. */
#ifndef TEST_SOLO_ENGINE_H
#define TEST_SOLO_ENGINE_H

#include "protocols/engine.h"

typedef struct solo_state {
  bft_engine_config cfg;
  uint64_t committed;
  uint64_t restored_max; /* highest seq seen in restored records */
  uint32_t restored_records;
  uint64_t view;
  int pull_on_request;
} solo_state;

extern const bft_engine_ops solo_engine_ops;
#define SOLO_MSG_KIND 1
#define SOLO_TAG "solo/msg"

#endif
