/* The simulated network: decides, for each message sent, whether it is lost, duplicated and
 * when each copy arrives (uniform delay with an occasional long tail, per-link FIFO unless
 * reordering is on), and which replicas a partition currently separates. Pure decisions from
 * a caller-supplied PRNG; the event queue lives elsewhere. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

#include "protocols/limits.h"
#include "tests/sim/sim_rng.h"

#define SIM_NET_CLIENT 0xFFFFFFFFu /* endpoint of any client: outside partitions, no FIFO */

typedef struct sim_net_config {
  uint64_t delay_min_us, delay_max_us; /* base one-way delay, uniform */
  double tail;                         /* in the fault window: chance of a long-tail delay */
  uint64_t tail_max_us;                /* extra delay of a long-tail message, uniform 0..max */
  double drop, dup;                    /* in the fault window: loss and duplication chances */
  int reorder;                         /* in the fault window: no per-link FIFO, extra jitter */
} sim_net_config;

typedef struct sim_net {
  sim_net_config cfg;
  uint32_t n;
  int faulty;      /* 1 inside the fault window: drop/dup/tail/reorder apply */
  int partitioned; /* 1 while group[] splits the replicas */
  uint8_t group[BFT_MAX_REPLICAS];
  /* Latest arrival scheduled on each replica link: FIFO links never let a later message
   * overtake an earlier one (as TCP would not). */
  uint64_t last[BFT_MAX_REPLICAS][BFT_MAX_REPLICAS];
  uint64_t routed, dropped, duplicated, blocked;
} sim_net;

void sim_net_init(sim_net *net, const sim_net_config *cfg, uint32_t n);
/* Fate of one message sent at `now` from -> to (either may be SIM_NET_CLIENT): the number
 * of copies that will arrive (0 lost, 1, or 2 duplicated) and their arrival times. */
uint32_t sim_net_route(sim_net *net, sim_rng *rng, uint32_t from, uint32_t to, uint64_t now, uint64_t at[2]);
/* 1 when a partition currently separates from and to (checked at delivery). */
int sim_net_blocked(sim_net *net, uint32_t from, uint32_t to);
/* Split the replicas: group[i] is 0 or 1 for replica i. */
void sim_net_partition(sim_net *net, const uint8_t *group);
void sim_net_heal(sim_net *net);

#endif
