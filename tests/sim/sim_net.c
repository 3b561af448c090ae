/* Link model of the simulated network. Faults (loss, duplication, long tails, reordering)
 * apply only inside the fault window so that liveness can be judged after it; delays apply
 * always, so a run never depends on zero-latency shortcuts. */
#include "tests/sim/sim_net.h"

#include <string.h>

void sim_net_init(sim_net *net, const sim_net_config *cfg, uint32_t n) {
  memset(net, 0, sizeof *net);
  net->cfg = *cfg;
  net->n = n;
}

static uint64_t one_delay(sim_net *net, sim_rng *rng) {
  uint64_t d = sim_rng_range(rng, net->cfg.delay_min_us, net->cfg.delay_max_us);
  if (net->faulty && sim_rng_chance(rng, net->cfg.tail)) d += sim_rng_range(rng, 0, net->cfg.tail_max_us);
  /* Reordering: a quarter of the messages take a much longer path, so later messages
   * overtake them by many round trips, not just by the jitter of the base delay. */
  if (net->faulty && net->cfg.reorder && sim_rng_chance(rng, 0.25))
    d += sim_rng_range(rng, 0, 10 * net->cfg.delay_max_us);
  return d < 1 ? 1 : d;
}

static uint64_t arrival(sim_net *net, sim_rng *rng, uint32_t from, uint32_t to, uint64_t now) {
  uint64_t t = now + one_delay(net, rng);
  int fifo = !(net->faulty && net->cfg.reorder) && from < net->n && to < net->n;
  if (fifo) {
    if (t < net->last[from][to]) t = net->last[from][to];
    net->last[from][to] = t;
  }
  return t;
}

uint32_t sim_net_route(sim_net *net, sim_rng *rng, uint32_t from, uint32_t to, uint64_t now, uint64_t at[2]) {
  net->routed++;
  if (net->faulty && sim_rng_chance(rng, net->cfg.drop)) {
    net->dropped++;
    return 0;
  }
  at[0] = arrival(net, rng, from, to, now);
  if (net->faulty && sim_rng_chance(rng, net->cfg.dup)) {
    net->duplicated++;
    at[1] = arrival(net, rng, from, to, now);
    return 2;
  }
  return 1;
}

int sim_net_blocked(sim_net *net, uint32_t from, uint32_t to) {
  if (!net->partitioned || from >= net->n || to >= net->n) return 0;
  if (net->group[from] == net->group[to]) return 0;
  net->blocked++;
  return 1;
}

void sim_net_partition(sim_net *net, const uint8_t *group) {
  for (uint32_t i = 0; i < net->n; i++) net->group[i] = group[i] ? 1 : 0;
  net->partitioned = 1;
}

void sim_net_heal(sim_net *net) {
  net->partitioned = 0;
  memset(net->group, 0, sizeof net->group);
}
