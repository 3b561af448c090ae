/* Fault plans, all drawn from the seed: crashes (with restarts) and partitions confined to the
 * fault window, and Byzantine replicas that keep misbehaving for the whole run. A Byzantine
 * replica runs the honest runtime and engine; its misbehaviour is in what the shell does with
 * its identity and its outgoing frames (Twins: two honest copies under one key), so no plan
 * needs protocol-specific attack code and every engine is attacked the same way. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim_internal.h"

static const char *const BYZ_NAMES[SIM_BYZ__COUNT] = {"none",   "twin",     "equivocate", "silent", "corrupt",
                                                      "bad-sig", "replay", "withhold", "mixed"};

const char *sim_byz_name(int plan) { return plan >= 0 && plan < SIM_BYZ__COUNT ? BYZ_NAMES[plan] : "?"; }

int sim_byz_parse(const char *s) {
  for (int i = 0; i < SIM_BYZ__COUNT; i++)
    if (strcmp(s, BYZ_NAMES[i]) == 0) return i;
  return -1;
}

/* ---- Byzantine plans ------------------------------------------------------------------------- */

static int is_twin_plan(int plan) { return plan == SIM_BYZ_TWIN || plan == SIM_BYZ_EQUIVOCATE; }

/* Pick the faulty ids (a seeded shuffle) and their plans; when there are twins, split the other
 * replicas between the two worlds, each world holding at least one of them. */
int sim_faults_assign(sim_ctx *S) {
  const sim_options *o = S->o;
  if (!o->byzantine) return 0;
  uint32_t k = o->faulty == SIM_FAULTY_F ? S->f : o->faulty;
  if (k > S->n) k = S->n;
  sim_rng *r = &S->rng[RNG_BYZ];
  uint32_t ids[BFT_MAX_REPLICAS];
  for (uint32_t i = 0; i < S->n; i++) ids[i] = i;
  for (uint32_t i = S->n - 1; i > 0; i--) {
    uint32_t j = (uint32_t)sim_rng_below(r, (uint64_t)i + 1);
    uint32_t t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
  }
  int twins = 0;
  for (uint32_t i = 0; i < k; i++) {
    int plan = o->byzantine;
    if (plan == SIM_BYZ_MIXED) plan = SIM_BYZ_TWIN + (int)sim_rng_below(r, SIM_BYZ_MIXED - SIM_BYZ_TWIN);
    S->plan[ids[i]] = plan;
    S->twinned[ids[i]] = (uint8_t)is_twin_plan(plan);
    twins |= is_twin_plan(plan);
    S->res->byzantine++;
  }
  if (!twins) return 0;
  /* The others, ids[k..n), in shuffled order: the first in world 0, the second in world 1,
   * the rest anywhere. Equivocators also get a bridge: one correct replica that hears both
   * copies (and is heard by both), so conflicting statements meet at a correct replica and
   * must be detected there, not only tolerated. */
  int bridge = o->byzantine == SIM_BYZ_EQUIVOCATE && S->n - k >= 3;
  for (uint32_t i = k; i < S->n; i++)
    S->world[ids[i]] = (uint8_t)(i == k ? 0 : i == k + 1 ? 1 : (bridge && i == k + 2) ? SIM_WORLD_BOTH : sim_rng_below(r, 2));
  return 0;
}

int sim_faults_gets_request(const sim_ctx *S, const sim_node *nd, uint32_t idx) {
  if (nd->plan != SIM_BYZ_EQUIVOCATE) return 1;
  return (idx & 1u) == nd->side; /* the copies pull different batches for the same slot */
}

/* The runtime's misbehaviour modes (replica/byzantine.c, shared with bft-replica --byzantine)
 * that a plan maps to; twins and equivocators misbehave through routing instead. */
uint32_t sim_faults_modes(int plan) {
  switch (plan) {
    case SIM_BYZ_SILENT: return RT_BYZ_SILENT;
    case SIM_BYZ_CORRUPT: return RT_BYZ_CORRUPT;
    case SIM_BYZ_BAD_SIG: return RT_BYZ_BAD_SIG;
    case SIM_BYZ_REPLAY: return RT_BYZ_REPLAY;
    case SIM_BYZ_WITHHOLD: return RT_BYZ_WITHHOLD;
    default: return 0;
  }
}

/* ---- crashes and partitions ----------------------------------------------------------------- */

/* The replica most correct up replicas follow (ties: the highest view they report). */
static int64_t current_leader(sim_ctx *S) {
  uint32_t votes[BFT_MAX_REPLICAS] = {0};
  uint64_t view[BFT_MAX_REPLICAS] = {0};
  for (uint32_t i = 0; i < S->nnodes; i++) {
    if (!S->nodes[i].up || S->nodes[i].plan) continue;
    bft_engine_status st;
    sim_node_status(&S->nodes[i], &st);
    if (st.leader >= S->n) continue;
    votes[st.leader]++;
    if (st.view > view[st.leader]) view[st.leader] = st.view;
  }
  int64_t best = -1;
  for (uint32_t i = 0; i < S->n; i++)
    if (votes[i] && (best < 0 || votes[i] > votes[best] || (votes[i] == votes[best] && view[i] > view[best])))
      best = i;
  return best;
}

static void fault_crash(sim_ctx *S) {
  if (S->down + S->res->byzantine + 1 > S->f) {
    VLOG(S, "FAULT crash skipped: %u down and %u Byzantine already (f=%u)", S->down, S->res->byzantine, S->f);
    return;
  }
  int64_t leader = current_leader(S);
  int64_t victim = -1;
  if (S->o->crash_primary) {
    victim = leader >= 0 && sim_correct(S, (uint32_t)leader) ? leader : -1;
  } else {
    uint32_t cand[BFT_MAX_REPLICAS], k = 0;
    for (uint32_t i = 0; i < S->n; i++)
      if (S->nodes[i].up && !S->nodes[i].crash_armed && !S->nodes[i].plan && (int64_t)i != leader) cand[k++] = i;
    if (k) victim = cand[sim_rng_below(&S->rng[RNG_FAULT], k)];
  }
  if (victim < 0 || !S->nodes[victim].up || S->nodes[victim].crash_armed) {
    VLOG(S, "FAULT crash skipped: no suitable victim");
    return;
  }
  sim_node *nd = &S->nodes[victim]; /* correct replicas are nodes 0..n-1, node index = id */
  VLOG(S, "FAULT crash n%u%s armed (ledger head %" PRIu64 ")", nd->idx, victim == leader ? " (primary)" : "", nd->head);
  S->down++; /* counts from now: the victim is as good as gone */
  nd->crash_armed = 1;
  sim_event now = {.time = S->now + SIM_CRASH_FALLBACK_US, .type = EV_FAULT, .kind = F_CRASH_NOW, .node = nd->idx,
                   .from = nd->id};
  sim_push(S, &now);
  if (S->o->restart) {
    uint64_t W = S->fault_end;
    uint64_t at = S->now + sim_rng_range(&S->rng[RNG_FAULT], W / 10, W * 3 / 10);
    if (at >= W) at = W - 1;
    sim_event ev = {.time = at, .type = EV_FAULT, .kind = F_RESTART, .node = nd->idx, .from = nd->id};
    sim_push(S, &ev);
  }
}

static void fault_split(sim_ctx *S, uint64_t mask) {
  uint8_t g[BFT_MAX_REPLICAS];
  char desc[3 * BFT_MAX_REPLICAS + 8] = "", *p = desc;
  for (uint32_t i = 0; i < S->n; i++) g[i] = (uint8_t)((mask >> i) & 1);
  for (int side = 0; side < 2; side++) {
    for (uint32_t i = 0; i < S->n; i++)
      if (g[i] == side) p += sprintf(p, "%u", i);
    if (side == 0) p += sprintf(p, " | ");
  }
  VLOG(S, "FAULT partition %s", desc);
  sim_net_partition(&S->net, g);
}

void sim_faults_on_event(sim_ctx *S, const sim_event *ev) {
  sim_node *nd = ev->node < S->nnodes ? &S->nodes[ev->node] : NULL;
  switch (ev->kind) {
    case F_CRASH:
      fault_crash(S);
      break;
    case F_CRASH_NOW:
      if (!nd->crash_armed) break; /* it already died mid-step */
      VLOG(S, "FAULT n%u crashes between steps", nd->idx);
      sim_node_crash(S, nd);
      break;
    case F_RESTART:
      if (nd->crash_armed) sim_node_crash(S, nd);
      if (nd->up) break;
      S->down--;
      VLOG(S, "FAULT restart n%u (WAL %zu bytes, ledger %zu bytes)", nd->idx, nd->wal.len, nd->ledger.len);
      sim_node_start(S, nd);
      S->dirty = 1;
      break;
    case F_SPLIT:
      fault_split(S, ev->a);
      break;
    case F_HEAL:
      VLOG(S, "FAULT heal");
      sim_net_heal(&S->net);
      break;
    case F_END:
      VLOG(S, "FAULT window over: network reliable from now on, liveness bound at %.3f ms",
           (double)S->deadline / 1000.0);
      S->net.faulty = 0;
      sim_net_heal(&S->net);
      S->fault_over = 1;
      S->dirty = 1;
      S->last_progress = S->now;
      break;
  }
}

/* The whole schedule except crash victims (chosen when the crash happens, since the primary is
 * whoever leads then) is drawn up front from its own stream. */
void sim_faults_schedule(sim_ctx *S) {
  sim_rng *r = &S->rng[RNG_FAULT];
  uint64_t W = S->fault_end;
  sim_event ev = {.type = EV_FAULT, .node = SIM_NONE, .from = SIM_NET_CLIENT};
  if (S->o->partition) {
    uint64_t t = sim_rng_range(r, W / 20, W / 4);
    while (t < W) {
      uint64_t mask;
      do mask = sim_rng_below(r, 1ull << S->n);
      while (mask == 0 || mask == (1ull << S->n) - 1);
      ev.time = t;
      ev.kind = F_SPLIT;
      ev.a = mask;
      sim_push(S, &ev);
      t += sim_rng_range(r, W / 10, W * 35 / 100);
      ev.time = t < W ? t : W;
      ev.kind = F_HEAL;
      ev.a = 0;
      sim_push(S, &ev);
      t += sim_rng_range(r, W / 20, W / 5);
    }
  }
  for (uint32_t i = 0; i < S->o->crash; i++) {
    ev.time = sim_rng_range(r, W / 10, W * 6 / 10);
    ev.kind = F_CRASH;
    ev.a = i;
    sim_push(S, &ev);
  }
  ev.time = W;
  ev.kind = F_END;
  ev.a = 0;
  sim_push(S, &ev);
}
