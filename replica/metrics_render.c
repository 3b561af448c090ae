/* What a replica exposes on /metrics: formatted from its counters at scrape time only (the hot
 * paths bump plain integers). Every family is documented in README.md, "Metrics". */
#include <stdio.h>
#include <string.h>

#include "replica/replica.h"

static const char *wire_kind_name(const rt_replica *r, uint8_t kind, char *tmp, size_t n) {
  switch (kind) {
    case WIRE_KIND_HELLO: return "hello";
    case WIRE_KIND_HELLO_ACK: return "hello_ack";
    case WIRE_KIND_REQUEST: return "request";
    case WIRE_KIND_REPLY: return "reply";
    case WIRE_KIND_LEDGER_GET: return "ledger_get";
    case WIRE_KIND_LEDGER_BLOCKS: return "ledger_blocks";
    case WIRE_KIND_EVIDENCE_GET: return "evidence_get";
    case WIRE_KIND_EVIDENCE: return "evidence";
    case WIRE_KIND_STATUS_GET: return "status_get";
    case WIRE_KIND_STATUS: return "status";
    case WIRE_KIND_FETCH: return "fetch";
    case WIRE_KIND_FETCH_REPLY: return "fetch_reply";
    default: break;
  }
  if (kind > WIRE_KIND_ENGINE && kind <= WIRE_KIND_ENGINE_LAST && r->ops->msg_name) {
    const char *nm = r->ops->msg_name((uint8_t)(kind - WIRE_KIND_ENGINE));
    if (nm) {
      snprintf(tmp, n, "%s_%s", r->ops->name, nm);
      return tmp;
    }
  }
  snprintf(tmp, n, "0x%02x", kind);
  return tmp;
}

static void counter(rt_prom *p, const char *name, const char *help, uint64_t v) {
  rt_prom_family(p, name, "counter", help);
  rt_prom_sample_u64(p, name, NULL, v);
}

static void gauge(rt_prom *p, const char *name, const char *help, double v) {
  rt_prom_family(p, name, "gauge", help);
  rt_prom_sample(p, name, NULL, v);
}

static void render_frames(rt_prom *p, const rt_replica *r, const char *name, const char *help,
                          const uint64_t *counts) {
  char tmp[64];
  rt_prom_family(p, name, "counter", help);
  for (int k = 1; k < 256; k++) {
    if (!counts[k]) continue;
    const char *l[] = {"kind", wire_kind_name(r, (uint8_t)k, tmp, sizeof tmp), NULL};
    rt_prom_sample_u64(p, name, l, counts[k]);
  }
}

static void render_consensus(rt_prom *p, const rt_replica *r, const bft_engine_status *st) {
  char self[16];
  snprintf(self, sizeof self, "%u", r->self);
  const char *info[] = {"replica", self, "protocol", r->ops->name, "cluster", r->cluster->name, NULL};
  rt_prom_family(p, "bft_replica_info", "gauge", "Constant 1, labelled with the replica id, engine and cluster name");
  rt_prom_sample(p, "bft_replica_info", info, 1);
  const rt_counters *k = &r->core.ctr;
  counter(p, "bft_committed_blocks_total", "Blocks committed and appended to the ledger since start", k->commits);
  counter(p, "bft_committed_requests_total", "Client requests executed since start (ledger replay at start included)",
          k->executed);
  gauge(p, "bft_ledger_height", "Height of the last block in the ledger", (double)r->core.ledger.head);
  gauge(p, "bft_view", "Current view (PBFT, HotStuff) or round of the current height (Tendermint)", (double)st->view);
  gauge(p, "bft_engine_height", "Height the engine works on (Tendermint: being decided; others: committed + 1)",
        (double)st->height);
  gauge(p, "bft_leader", "Replica id this replica currently follows as leader/proposer", (double)st->leader);
  gauge(p, "bft_is_leader", "1 when this replica is the current leader", st->leader == r->self ? 1 : 0);
  gauge(p, "bft_changing_view", "1 while a view change / round change is in progress", st->changing_view ? 1 : 0);
  counter(p, "bft_view_changes_total", "Views or rounds left because of a timeout (not normal rotation)",
          st->view_changes);
  counter(p, "bft_proposed_batches_total", "Batches this replica proposed as leader", k->pulls);
  counter(p, "bft_proposed_requests_total", "Requests in the batches this replica proposed", k->pulled_requests);
  counter(p, "bft_state_transfer_blocks_total", "Blocks taken from peers by state transfer (FETCH)", k->sync_blocks);
  counter(p, "bft_fsyncs_total", "Group commits that made records durable (one per loop iteration at most)", k->syncs);
  counter(p, "bft_equivocation_evidence_total", "Equivocation evidence kept (two conflicting messages, both checked)",
          k->evidence);
  counter(p, "bft_equivocations_detected_total", "Conflicting signed statements the engine detected", st->equivocations);
}

static void render_latency(rt_prom *p, const rt_replica *r) {
  rt_prom_family(p, "bft_request_to_commit_seconds", "histogram",
                 "From a request entering this replica's pool to the engine delivering its batch");
  rt_prom_histogram(p, "bft_request_to_commit_seconds", NULL, &r->m.req_to_commit, 1e-6);
  rt_prom_family(p, "bft_commit_to_execute_seconds", "histogram",
                 "From the engine delivering a batch to it being executed and appended to the ledger");
  rt_prom_histogram(p, "bft_commit_to_execute_seconds", NULL, &r->m.commit_to_exec, 1e-6);
  rt_prom_family(p, "bft_batch_size_requests", "histogram", "Requests executed per committed block");
  rt_prom_histogram(p, "bft_batch_size_requests", NULL, &r->m.batch_size, 1.0);
  rt_prom_family(p, "bft_fsync_seconds", "histogram", "Duration of one group-commit fdatasync, by file");
  const char *wal[] = {"file", "wal", NULL}, *led[] = {"file", "ledger", NULL};
  rt_prom_histogram(p, "bft_fsync_seconds", wal, &r->m.fsync_wal, 1e-6);
  rt_prom_histogram(p, "bft_fsync_seconds", led, &r->m.fsync_ledger, 1e-6);
}

static void render_rejections(rt_prom *p, const rt_replica *r, const bft_engine_status *st) {
  const rt_counters *k = &r->core.ctr;
  const char *name = "bft_rejected_total";
  rt_prom_family(p, name, "counter", "Connections, frames, messages and requests refused, by reason");
  for (int i = 0; i < RT_OFF_COUNT; i++) {
    const char *l[] = {"reason", rt_offence_name(i), NULL};
    rt_prom_sample_u64(p, name, l, r->offences[i]);
  }
  struct { const char *reason; uint64_t v; } more[] = {
      {"engine_bad_sig", k->msgs_bad_sig},        {"engine_rejected", k->msgs_rejected},
      {"engine_stale", st->rejected_stale},       {"engine_window", st->rejected_window},
      {"engine_digest", st->rejected_digest},     {"engine_cert", st->rejected_cert},
      {"engine_other", st->rejected_other},       {"request_not_permitted", k->req_not_permitted},
      {"request_bad_sig", k->req_bad_sig},        {"request_malformed", k->req_malformed},
      {"request_pool_full", k->req_busy},         {"sync_block", k->sync_rejected},
      {"evidence_unverifiable", k->evidence_refused}};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
    const char *l[] = {"reason", more[i].reason, NULL};
    rt_prom_sample_u64(p, name, l, more[i].v);
  }
  name = "bft_requests_total";
  rt_prom_family(p, name, "counter", "Client requests received, by what became of them");
  struct { const char *o; uint64_t v; } req[] = {{"new", k->req_new},
                                                   {"duplicate", k->req_dup},
                                                   {"old", k->req_old},
                                                   {"retransmit", k->req_retransmit},
                                                   {"forwarded", k->req_forwarded}};
  for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
    const char *l[] = {"outcome", req[i].o, NULL};
    rt_prom_sample_u64(p, name, l, req[i].v);
  }
}

static void render_queues(rt_prom *p, const rt_replica *r) {
  gauge(p, "bft_pool_requests", "Requests waiting in the pool (not yet executed)", r->core.pool.count);
  gauge(p, "bft_client_queue_bytes", "Bytes queued for all client connections", (double)r->client_queue_bytes);
  gauge(p, "bft_connections", "Open connections (peers, clients, handshakes)", r->nconns);
  gauge(p, "bft_client_connections", "Client and not yet identified connections", r->nclient_conns);
  gauge(p, "bft_wal_bytes", "Size of the write-ahead log", (double)rt_wal_size(&r->core.wal));
  const char *fams[][3] = {{"bft_peer_up", "gauge", "1 when an authenticated connection to the peer is open"},
                           {"bft_peer_queue_frames", "gauge", "Frames queued for the peer"},
                           {"bft_peer_queue_bytes", "gauge", "Bytes queued for the peer"},
                           {"bft_peer_queue_drops_total", "counter", "Frames dropped because the peer's queue was full"}};
  for (int f = 0; f < 4; f++) {
    rt_prom_family(p, fams[f][0], fams[f][1], fams[f][2]);
    for (uint32_t i = 0; i < r->cluster->n; i++) {
      if (i == r->self) continue;
      const rt_peer *pe = &r->peers[i];
      char id[16];
      snprintf(id, sizeof id, "%u", i);
      const char *l[] = {"peer", id, NULL};
      double v = f == 0 ? (pe->conn != NULL) : f == 1 ? pe->q.count : f == 2 ? (double)pe->q.bytes : (double)pe->drops;
      rt_prom_sample(p, fams[f][0], l, v);
    }
  }
}

/* Client request signatures checked on the verify pool (vpool.c) and the queue feeding it. */
static void render_verify(rt_prom *p, const rt_replica *r) {
  rt_vpool_stats vs = {0};
  if (r->vpool) rt_vpool_get_stats(r->vpool, &vs);
  gauge(p, "bft_verify_threads", "Threads that verify client request signatures with the loop (0: the loop alone)",
        rt_vpool_threads(r->vpool));
  counter(p, "bft_verify_batches_total", "Waiting client requests checked together on the verify pool", r->vq_batches);
  counter(p, "bft_verify_queued_requests_total", "Client requests that waited for the verify pool", r->vq_requests);
  counter(p, "bft_verify_early_batches_total", "Of the batches, those checked before the loop iteration ended",
          r->vq_early);
  const char *name = "bft_verify_signatures_total";
  rt_prom_family(p, name, "counter", "Signatures checked on the verify pool, by the thread that checked them");
  const char *lw[] = {"thread", "worker", NULL}, *ll[] = {"thread", "loop", NULL};
  rt_prom_sample_u64(p, name, lw, vs.by_workers);
  rt_prom_sample_u64(p, name, ll, vs.items - vs.by_workers);
  rt_prom_family(p, "bft_verify_wait_seconds_total", "counter",
                 "Time the loop thread waited for worker threads to finish signatures they held");
  rt_prom_sample(p, "bft_verify_wait_seconds_total", NULL, (double)vs.wait_us / 1e6);
}

void rt_metrics_render(void *replica, rt_prom *p) {
  const rt_replica *r = replica;
  bft_engine_status st;
  rt_core_status(&r->core, &st);
  render_consensus(p, r, &st);
  render_latency(p, r);
  render_frames(p, r, "bft_frames_received_total", "Frames received, by wire kind (engine kinds: protocol_message)",
                r->m.frames_in);
  render_frames(p, r, "bft_frame_bytes_received_total", "Frame body bytes received, by wire kind", r->m.bytes_in);
  render_frames(p, r, "bft_frames_sent_total", "Frames sent (queued), per destination, by wire kind", r->m.frames_out);
  render_frames(p, r, "bft_frame_bytes_sent_total", "Frame body bytes sent (queued), per destination, by wire kind",
                r->m.bytes_out);
  render_rejections(p, r, &st);
  render_queues(p, r);
  render_verify(p, r);
  counter(p, "bft_metrics_scrapes_total", "GET /metrics requests answered", r->m.scrapes);
  counter(p, "bft_metrics_http_bad_requests_total", "Malformed or oversized requests to the metrics endpoint",
          r->m.http_bad);
  counter(p, "bft_metrics_http_refused_total", "Metrics connections closed at accept (connection bound)",
          r->m.http_refused);
  rt_prom_family(p, "bft_status_answers_total", "counter", "STATUS_GET requests (bft-client status), by result");
  const char *sv[] = {"result", "served", NULL}, *sr[] = {"result", "refused_rate", NULL};
  rt_prom_sample_u64(p, "bft_status_answers_total", sv, r->m.status_served);
  rt_prom_sample_u64(p, "bft_status_answers_total", sr, r->m.status_refused);
}
