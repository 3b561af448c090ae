/* The embeddable replica's internal entry point: bft-replica's main fills the full option set
 * (limits, faulty-replica modes) that the public bft_replica_options leaves out. */
#ifndef RT_EMBED_H
#define RT_EMBED_H

#include "bft_replica.h"
#include "replica/replica.h"

int rt_embed_create(const rt_options *o, bft_replica **out, char *err, size_t errlen);

#endif
