/* The registry of consensus engines selectable with --protocol. */
#include <string.h>

#include "protocols/engine.h"
#include "protocols/hotstuff/hotstuff.h"
#include "protocols/pbft/pbft.h"
#include "protocols/tendermint/tendermint.h"

static const bft_engine_ops *const ENGINES[] = {&pbft_engine_ops, &hs_engine_ops, &tm_engine_ops};

const bft_engine_ops *bft_engine_find(const char *name) {
  for (size_t i = 0; i < sizeof ENGINES / sizeof ENGINES[0]; i++)
    if (strcmp(ENGINES[i]->name, name) == 0) return ENGINES[i];
  return NULL;
}

const char *bft_engine_names(void) { return "pbft, hotstuff, tendermint"; }
