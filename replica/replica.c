/* bft-replica's libuv glue: listeners, peer dialing and handshake, frame dispatch for peers
 * and clients, engine timers, the per-iteration group commit and coalesced flush, metrics,
 * signals. Everything protocol- or storage-related is in core.c. */
#include "replica/replica.h"
#include "replica/durable.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocols/kv.h"
#include "replica/app_socket.h"
#include "replica/recfile.h"
#include "protocols/status.h"

#define COMP_NET "net"
#define COMP_RT "replica"
#define RT_SWEEP_MS 1000u
#define RT_STATUS_BURST 32u /* signed STATUS answers: bucket size ... */
#define RT_STATUS_PER_S 16u /* ... and refill (each costs a signature; anyone may ask) */

enum conn_role { ROLE_UNKNOWN = 0, ROLE_DIALING, ROLE_HS_DIAL, ROLE_HS_ACCEPT, ROLE_PEER, ROLE_CLIENT, ROLE_HS_PROVED };
static const char *const ROLE_NAMES[] = {"unknown", "dialing", "handshake", "handshake", "peer", "client", "handshake"};

/* c->counted bits: what the connection is counted in (undone once, in on_closing). */
#define CNT_CLIENT 1u   /* r->nclient_conns and its source's conns */
#define CNT_UNPROVEN 2u /* the unproven LRU list */
#define CNT_HS 4u       /* r->nhandshakes and its claimed peer's hs_pending */

static const char *const OFFENCE_NAMES[RT_OFF_COUNT] = {
    "limit_total", "limit_source", "evicted", "backoff", "first_frame", "frame_timeout", "idle", "malformed",
    "bad_sig", "unknown_key", "fail_budget", "reject_unsent", "hs_rate", "hs_limit", "hs_failed"};

const char *rt_offence_name(int why) { return why >= 0 && why < RT_OFF_COUNT ? OFFENCE_NAMES[why] : "?"; }

static void begin_stop(rt_replica *r, int code);
static void schedule_redial(rt_peer *p);

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t rng_next(rt_replica *r) { /* splitmix64 */
  uint64_t z = (r->prng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* delay plus up to +pct% of it, from the seeded generator. */
static uint64_t jitter(rt_replica *r, uint64_t delay, unsigned pct) {
  uint64_t span = delay * pct / 100;
  return delay + (span ? rng_next(r) % (span + 1) : 0);
}

static void check_core(rt_replica *r) {
  if (r->core.failed && !r->stopping) begin_stop(r, 1);
}

static void mark_dirty(rt_replica *r, rt_conn *c) {
  if (c->dirty || c->closing) return;
  c->dirty = 1;
  r->dirty[r->ndirty++] = c;
}

static void unmark_dirty(rt_replica *r, rt_conn *c) {
  if (!c->dirty) return;
  for (uint32_t i = 0; i < r->ndirty; i++)
    if (r->dirty[i] == c) {
      r->dirty[i] = r->dirty[--r->ndirty];
      break;
    }
  c->dirty = 0;
}

/* ---- sending -------------------------------------------------------------------------------- */

static void peer_enqueue(rt_replica *r, rt_peer *p, rt_frame *f) {
  uint64_t dropped = 0;
  int rc = rt_outq_push(&p->q, f, 1, &dropped);
  if (dropped || rc) {
    p->drops += dropped + (rc ? 1 : 0);
    rt_logf_rl(&r->log, &r->rl_drop, RT_LOG_WARN, COMP_NET,
               "event=peer_queue_full peer=%u dropped=%llu queued_bytes=%llu connected=%d", p->id,
               (unsigned long long)(dropped + (rc ? 1 : 0)), (unsigned long long)p->q.bytes, p->conn != NULL);
  }
  p->frames_out++;
  if (r->m_ready) rt_metrics_frame_out(&r->m, f->data[5], f->len - WIRE_FRAME_HEADER_LEN);
  if (p->conn) mark_dirty(r, p->conn);
}

/* The faulty-replica shell hands its frames back through here. */
static void byz_enqueue(rt_replica *r, uint32_t to, rt_frame *f) { peer_enqueue(r, &r->peers[to], f); }

void rt_replica_send_peer(rt_replica *r, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  if (to >= r->cluster->n || to == r->self) return;
  if (r->byz) {
    rt_byz_shell_send(r->byz, to, kind, body, len);
    return;
  }
  rt_frame *f = rt_frame_new(kind, r->self, body, len);
  if (!f) return; /* out of memory: as good as a lost message */
  peer_enqueue(r, &r->peers[to], f);
  rt_frame_unref(f);
}

static void io_send(void *ctx, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_replica *r = ctx;
  if (r->twin) rt_byz_twin_send(r->twin, 0, to, kind, body, len); /* copy A of an equivocating replica */
  else rt_replica_send_peer(r, to, kind, body, len);
}

static void io_broadcast(void *ctx, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_replica *r = ctx;
  if (r->byz) { /* falsified per destination */
    for (uint32_t i = 0; i < r->cluster->n; i++)
      if (i != r->self) io_send(r, i, kind, body, len);
    return;
  }
  rt_frame *f = rt_frame_new(kind, r->self, body, len);
  if (!f) return;
  for (uint32_t i = 0; i < r->cluster->n; i++)
    if (i != r->self) peer_enqueue(r, &r->peers[i], f);
  rt_frame_unref(f);
}

/* A frame to a client connection; a client that does not read is disconnected. */
static void client_send(rt_replica *r, rt_conn *c, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_frame *f = rt_frame_new(kind, r->self, body, len);
  if (!f) return;
  if (r->m_ready) rt_metrics_frame_out(&r->m, kind, len);
  int rc = rt_conn_send(c, f);
  rt_frame_unref(f);
  if (rc) {
    r->clients_closed++;
    rt_logf_rl(&r->log, &r->rl_client, RT_LOG_WARN, COMP_NET, "event=client_closed conn=%llu addr=%s reason=\"%s\"",
               (unsigned long long)c->id, c->addr, "send queue full: the client does not read its replies");
    rt_conn_close(c, "client send queue full");
  }
}

static void send_cached_reply(rt_replica *r, rt_core *core, rt_conn *c, uint32_t client) {
  int len = rt_core_encode_reply(core, client, r->scratch, WIRE_FRAME_MAX_BODY);
  if (len > 0) client_send(r, c, WIRE_KIND_REPLY, r->scratch, (uint32_t)len);
}

/* The application's check() refused a request: a signed rejection with its reason. */
static void io_rejected(void *ctx, uint32_t client, const uint8_t pk[BFT_PK_LEN], uint64_t seq, const char *reason) {
  rt_replica *r = ctx;
  rt_conn *c = r->client_conn[client];
  if (!c) return;
  int n = rt_core_encode_reject(&r->core, pk, seq, reason, r->scratch, WIRE_FRAME_MAX_BODY);
  if (n > 0) client_send(r, c, WIRE_KIND_REPLY, r->scratch, (uint32_t)n);
}

void rt_replica_reply(rt_replica *r, rt_core *core, uint32_t client) {
  rt_conn *c = r->client_conn[client];
  if (c) send_cached_reply(r, core, c, client);
}

static void io_replied(void *ctx, uint32_t client) { rt_replica_reply(ctx, &((rt_replica *)ctx)->core, client); }

/* ---- engine timers -------------------------------------------------------------------------- */

static void on_engine_timer(uv_timer_t *t) {
  rt_replica *r = t->data;
  uint32_t id = (uint32_t)(t - r->engine_timers);
  rt_core_on_timer(&r->core, id);
  check_core(r);
}

static void io_timer_set(void *ctx, uint32_t id, uint64_t delay_ms) {
  rt_replica *r = ctx;
  if (r->stopping) return;
  uv_timer_start(&r->engine_timers[id], on_engine_timer, jitter(r, delay_ms, 10), 0);
}

static void io_timer_cancel(void *ctx, uint32_t id) {
  rt_replica *r = ctx;
  uv_timer_stop(&r->engine_timers[id]);
}

static uint64_t io_now(void *ctx) { return uv_now(((rt_replica *)ctx)->loop); }

/* ---- admission and offences ------------------------------------------------------------- */

/* Count an offence and say so at warn, once per source per RT_SOURCE_WARN_MS (with how many
 * lines were held back): a flood shows up in the log without flooding it. */
static void offence(rt_replica *r, rt_conn *c, int why, const char *detail) {
  r->offences[why]++;
  rt_source *src = c ? c->src : NULL;
  uint64_t suppressed = 0;
  if (!src || !rt_source_warn(src, uv_now(r->loop), &suppressed)) return;
  char ip[64];
  rt_source_name(src, ip, sizeof ip);
  rt_logf(&r->log, RT_LOG_WARN, COMP_NET,
          "event=source_offence source=%s reason=%s detail=\"%s\" conns=%u refused_for_ms=%llu suppressed=%llu",
          ip, OFFENCE_NAMES[why], detail, src->conns,
          (unsigned long long)(rt_source_refused(src, uv_now(r->loop)) ? src->refused_until_ms - uv_now(r->loop) : 0),
          (unsigned long long)suppressed);
}

static void unproven_remove(rt_replica *r, rt_conn *c) {
  if (!(c->counted & CNT_UNPROVEN)) return;
  if (c->uprev) c->uprev->unext = c->unext;
  else r->unproven_head = c->unext;
  if (c->unext) c->unext->uprev = c->uprev;
  else r->unproven_tail = c->uprev;
  c->uprev = c->unext = NULL;
  c->counted &= ~CNT_UNPROVEN;
}

static void unproven_touch(rt_replica *r, rt_conn *c) { /* most recently active at the tail */
  unproven_remove(r, c);
  c->uprev = r->unproven_tail;
  c->unext = NULL;
  if (r->unproven_tail) r->unproven_tail->unext = c;
  else r->unproven_head = c;
  r->unproven_tail = c;
  c->counted |= CNT_UNPROVEN;
}

/* No longer a client-side connection (it became a handshake): out of the client limits. */
static void uncount_client(rt_replica *r, rt_conn *c) {
  unproven_remove(r, c);
  if (!(c->counted & CNT_CLIENT)) return;
  c->counted &= ~CNT_CLIENT;
  r->nclient_conns--;
  ((rt_source *)c->src)->conns--;
}

/* The least recently active unproven connection (of source `src` if not NULL; the scan is
 * bounded), closed to make room for a new one; 0 when there is none. */
static int evict_unproven(rt_replica *r, rt_source *src) {
  uint32_t k = 0;
  for (rt_conn *c = r->unproven_head; c && k < 1024; c = c->unext, k++) {
    if (src && c->src != src) continue;
    offence(r, c, RT_OFF_EVICTED, "oldest unproven connection closed to admit a newer one");
    rt_conn_close(c, "evicted: client limit reached");
    return 1;
  }
  return 0;
}

/* A new accepted connection: within the total and per-source client limits, evicting the
 * least recently active unproven connection when one is full. Proven clients (a verified
 * request) and peers are never evicted; peers are not counted here once they said HELLO. */
static int admit(rt_replica *r, rt_conn *c) {
  uint64_t now = uv_now(r->loop);
  rt_source *src = rt_sources_get(&r->sources, &c->sa, now);
  c->src = src;
  if (src->conns >= r->lim.max_per_source && !evict_unproven(r, src)) {
    offence(r, c, RT_OFF_LIMIT_SOURCE, "per-source connection limit");
    return -1;
  }
  if (r->nclient_conns >= r->lim.max_clients && !evict_unproven(r, NULL)) {
    offence(r, c, RT_OFF_LIMIT_TOTAL, "client connection limit");
    return -1;
  }
  c->counted |= CNT_CLIENT;
  r->nclient_conns++;
  src->conns++;
  unproven_touch(r, c);
  return 0;
}

/* A failed verification on connection c (claiming client key index `key`, or -1): within its
 * own budget and its source's bucket, or the connection is closed (-1) and, when the source's
 * bucket is empty, the source refused. The key's own bucket marks it suspect (key_suspect).
 * c is NULL for a request whose connection closed before its check (vq). */
static int verify_failed(rt_replica *r, rt_conn *c, int key) {
  uint64_t now = uv_now(r->loop);
  if (key >= 0) (void)rt_bucket_take(&r->key_fails[key], RT_KEY_FAIL_BURST, RT_KEY_FAIL_PER_S, now); /* empty: suspect */
  if (!c) return -1; /* checked after its connection closed: only the key pays */
  rt_source *src = c->src;
  c->fails++;
  if (!rt_bucket_take(&src->fails, RT_SOURCE_FAIL_BURST, RT_SOURCE_FAIL_PER_S, now)) {
    rt_source_offend(src, now);
    offence(r, c, RT_OFF_FAIL_BUDGET, "source spent its failed-verification budget: refused for a while");
    return -1;
  }
  if (c->fails >= r->lim.fail_budget) {
    offence(r, c, RT_OFF_FAIL_BUDGET, "connection spent its failed-verification budget");
    return -1;
  }
  return 0;
}

/* A key whose failed verifications exhausted its bucket: someone is forging requests in its
 * name. While its source is refused, an unproven connection claiming it gets no verify. */
static int key_suspect(rt_replica *r, int key) {
  return key < 0 || !rt_bucket_has(&r->key_fails[key], RT_KEY_FAIL_BURST, RT_KEY_FAIL_PER_S, uv_now(r->loop));
}

/* ---- handshake -------------------------------------------------------------------------------- */

static void hs_statement(uint8_t out[72], uint32_t signer, uint32_t other, const uint8_t other_nonce[32],
                         const uint8_t signer_nonce[32]) {
  for (int i = 0; i < 4; i++) {
    out[i] = (uint8_t)(signer >> (8 * i));
    out[4 + i] = (uint8_t)(other >> (8 * i));
  }
  memcpy(out + 8, other_nonce, 32);
  memcpy(out + 40, signer_nonce, 32);
}

static int conn_send_body(rt_replica *r, rt_conn *c, uint8_t kind, const uint8_t *b, uint32_t len) {
  rt_frame *f = rt_frame_new(kind, r->self, b, len);
  if (!f) return BFT_E_NOMEM;
  int rc = rt_conn_send(c, f);
  rt_frame_unref(f);
  return rc;
}

static int send_hello(rt_replica *r, rt_conn *c) {
  uint8_t b[RT_HELLO_LEN];
  wire_writer w;
  wire_writer_init(&w, b, sizeof b);
  randombytes_buf(c->nonce_local, sizeof c->nonce_local);
  wire_put_u8(&w, RT_HELLO_VERSION);
  wire_put_fixed(&w, r->cluster->id, BFT_CLUSTER_ID_LEN);
  wire_put_u32(&w, r->self);
  wire_put_u32(&w, c->peer);
  wire_put_fixed(&w, c->nonce_local, 32);
  return conn_send_body(r, c, WIRE_KIND_HELLO, b, (uint32_t)w.len);
}

/* HELLO_ACK carrying my signature over (me, peer, peer's nonce, my nonce). */
static int send_hs_sig(rt_replica *r, rt_conn *c) {
  uint8_t st[72], sig[RT_HELLO_SIG_LEN];
  hs_statement(st, r->self, c->peer, c->nonce_remote, c->nonce_local);
  if (bft_sign(&r->kp, r->cluster->id, RT_TAG_HELLO, st, sizeof st, sig) != 0) return BFT_E_CRYPTO;
  return conn_send_body(r, c, WIRE_KIND_HELLO_ACK, sig, sizeof sig);
}

static int hs_check_sig(rt_replica *r, rt_conn *c, const uint8_t *sig) {
  uint8_t st[72];
  hs_statement(st, c->peer, r->self, c->nonce_local, c->nonce_remote);
  return bft_verify(r->cluster->replicas[c->peer].pk, r->cluster->id, RT_TAG_HELLO, st, sizeof st, sig);
}

static int hs_refuse(rt_replica *r, rt_conn *c, const char *why) {
  r->handshakes_failed++;
  if (c->role == ROLE_UNKNOWN || c->role == ROLE_HS_ACCEPT) offence(r, c, RT_OFF_HS_FAILED, why);
  rt_logf_rl(&r->log, &r->rl_hs, RT_LOG_WARN, COMP_NET, "event=handshake_refused conn=%llu addr=%s peer=%d reason=\"%s\"",
             (unsigned long long)c->id, c->addr, c->role == ROLE_UNKNOWN ? -1 : (int)c->peer, why);
  return -1;
}

static void uncount_hs(rt_replica *r, rt_conn *c) {
  if (!(c->counted & CNT_HS)) return;
  c->counted &= ~CNT_HS;
  r->nhandshakes--;
  r->peers[c->peer].hs_pending--;
}

static void establish(rt_replica *r, rt_conn *c) {
  rt_peer *p = &r->peers[c->peer];
  uncount_hs(r, c);
  c->role = ROLE_PEER;
  c->max_body = WIRE_FRAME_MAX_BODY;
  c->wmax = RT_WRITE_MAX_BUFS;
  c->deadline_ms = 0;
  if (p->dialing == c) p->dialing = NULL;
  if (p->conn && p->conn != c) {
    rt_conn *old = p->conn;
    p->conn = NULL;
    rt_conn_close(old, "replaced by a newer authenticated connection");
  }
  p->conn = c;
  p->backoff_ms = RT_REDIAL_MIN_MS;
  c->extra = &p->q;
  if (p->q.count || c->q.count) mark_dirty(r, c);
  rt_logf(&r->log, RT_LOG_INFO, COMP_NET, "event=peer_connected peer=%u conn=%llu addr=%s queued=%u", p->id,
          (unsigned long long)c->id, c->addr, p->q.count);
  /* A peer (re)connected: ask it for blocks above our head. A replica that restarted, or was
   * cut off, while the cluster went idle would otherwise learn it is behind only from the next
   * request's traffic (seen: 6 blocks behind an idle cluster for a minute). The answer is 12
   * bytes when we are not behind. */
  if (r->core_ready && !r->core.failed) rt_core_fetch(&r->core, p->id);
}

/* Close the oldest accepted handshake in progress claiming replica `id`. */
static void evict_handshake(rt_replica *r, uint32_t id) {
  rt_conn *oldest = NULL;
  for (rt_conn *c = r->conns; c; c = c->next)
    if (c->role == ROLE_HS_ACCEPT && c->peer == id && (!oldest || c->id < oldest->id)) oldest = c;
  if (!oldest) return;
  offence(r, oldest, RT_OFF_HS_LIMIT, "older handshake claiming the same replica closed for a newer one");
  rt_conn_close(oldest, "replaced by a newer handshake for the same replica id");
}

/* First frame HELLO on an accepted connection: a lower replica introduces itself. Answered
 * with an unsigned challenge: nothing is signed for a party that has not proved its key. */
static int on_hello(rt_replica *r, rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  uncount_client(r, c); /* a would-be peer: out of the client limits, into the handshake ones */
  wire_reader rd;
  wire_reader_init(&rd, body, h->body_len);
  uint8_t ver = wire_get_u8(&rd), cid[BFT_CLUSTER_ID_LEN];
  wire_get_fixed(&rd, cid, sizeof cid);
  uint32_t from = wire_get_u32(&rd), to = wire_get_u32(&rd);
  wire_get_fixed(&rd, c->nonce_remote, 32);
  if (wire_reader_finish(&rd) != 0 || ver != RT_HELLO_VERSION) return hs_refuse(r, c, "malformed HELLO");
  if (memcmp(cid, r->cluster->id, BFT_CLUSTER_ID_LEN) != 0) return hs_refuse(r, c, "another cluster id");
  if (to != r->self) return hs_refuse(r, c, "HELLO addressed to another replica");
  if (from >= r->cluster->n || from == r->self || h->sender != from) return hs_refuse(r, c, "bad sender id");
  if (from > r->self) return hs_refuse(r, c, "higher replica dialed a lower one (lower ids dial)");
  /* The per-source rate binds only while the claimed replica is connected: a replica of the
   * cluster file that lost its connection must get back in even while a HELLO flood from its
   * own address runs (on one host, everyone shares 127.0.0.1). */
  if (!rt_bucket_take(&((rt_source *)c->src)->hs, RT_SOURCE_HS_BURST, RT_SOURCE_HS_PER_S, uv_now(r->loop)) &&
      r->peers[from].conn) {
    offence(r, c, RT_OFF_HS_RATE, "handshake attempts over the per-source rate");
    return -1;
  }
  /* Slots per claimed id, newest first: a flood claiming replica j evicts its own older
   * attempts, and the real j (whose proof takes one round trip) completes in between. */
  if (r->peers[from].hs_pending >= RT_HS_PER_ID) evict_handshake(r, from);
  if (r->nhandshakes >= RT_MAX_HANDSHAKES) {
    offence(r, c, RT_OFF_HS_LIMIT, "too many handshakes in progress");
    return -1;
  }
  c->role = ROLE_HS_ACCEPT;
  c->peer = from;
  c->counted |= CNT_HS;
  r->nhandshakes++;
  r->peers[from].hs_pending++;
  c->deadline_ms = uv_now(r->loop) + RT_HANDSHAKE_TIMEOUT_MS;
  randombytes_buf(c->nonce_local, sizeof c->nonce_local);
  return conn_send_body(r, c, WIRE_KIND_HELLO_ACK, c->nonce_local, RT_HELLO_CHALLENGE_LEN)
             ? hs_refuse(r, c, "cannot answer HELLO") : 0;
}

/* HELLO_ACK, by role: the dialer gets the challenge and proves its key; the acceptor checks
 * that proof and only then signs; the dialer checks the acceptor's signature. */
static int on_hello_ack(rt_replica *r, rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  if (h->sender != c->peer) return hs_refuse(r, c, "HELLO_ACK from another sender id");
  switch (c->role) {
    case ROLE_HS_DIAL:
      if (h->body_len != RT_HELLO_CHALLENGE_LEN) return hs_refuse(r, c, "malformed challenge");
      memcpy(c->nonce_remote, body, 32);
      if (send_hs_sig(r, c) != 0) return hs_refuse(r, c, "cannot answer the challenge");
      c->role = ROLE_HS_PROVED;
      return 0;
    case ROLE_HS_ACCEPT:
      if (h->body_len != RT_HELLO_SIG_LEN) return hs_refuse(r, c, "malformed proof");
      if (hs_check_sig(r, c, body) != 0) {
        if (verify_failed(r, c, -1) != 0) return -1;
        return hs_refuse(r, c, "handshake signature does not match the replica's key in the cluster file");
      }
      if (send_hs_sig(r, c) != 0) return hs_refuse(r, c, "cannot sign the handshake");
      establish(r, c);
      return 0;
    case ROLE_HS_PROVED:
      if (h->body_len != RT_HELLO_SIG_LEN) return hs_refuse(r, c, "malformed HELLO_ACK");
      if (hs_check_sig(r, c, body) != 0)
        return hs_refuse(r, c, "handshake signature does not match the replica's key in the cluster file");
      establish(r, c);
      return 0;
    default:
      return hs_refuse(r, c, "unexpected HELLO_ACK");
  }
}

/* ---- frames from peers and clients ------------------------------------------------------------ */

static void serve_blocks(rt_replica *r, rt_conn *c, const uint8_t *body, uint32_t len) {
  int n = rt_core_blocks(&r->core, body, len, r->scratch, WIRE_FRAME_MAX_BODY);
  if (n >= 0) client_send(r, c, WIRE_KIND_LEDGER_BLOCKS, r->scratch, (uint32_t)n);
}

/* The equivocation evidence this replica holds (bft-client evidence). */
static void serve_evidence(rt_replica *r, rt_conn *c) {
  int n = rt_core_evidence(&r->core, r->scratch, WIRE_FRAME_MAX_BODY);
  if (n >= 0) client_send(r, c, WIRE_KIND_EVIDENCE, r->scratch, (uint32_t)n);
}

/* A signed status (bft-client status): within a global rate, since anyone may ask and each
 * answer costs a signature; over it the request goes unanswered (counted). */
static int serve_status(rt_replica *r, rt_conn *c, const uint8_t *body, uint32_t len) {
  if (len != BFT_STATUS_NONCE_LEN) return -1;
  if (!rt_bucket_take(&r->status_tokens, RT_STATUS_BURST, RT_STATUS_PER_S, uv_now(r->loop))) {
    r->m.status_refused++;
    return 0;
  }
  bft_engine_status es;
  rt_core_status(&r->core, &es);
  bft_status st;
  memset(&st, 0, sizeof st);
  memcpy(st.nonce, body, BFT_STATUS_NONCE_LEN);
  st.replica = r->self;
  snprintf(st.protocol, sizeof st.protocol, "%s", r->ops->name);
  st.view = es.view;
  st.height = es.height;
  st.leader = es.leader;
  st.changing_view = es.changing_view ? 1 : 0;
  st.view_changes = es.view_changes;
  st.committed = r->core.ledger.head;
  memcpy(st.head_hash, r->core.ledger.head_hash, BFT_DIGEST_LEN);
  st.batch_max = r->core.cfg.batch_max;
  st.window = r->core.cfg.window;
  for (uint32_t i = 0; i < r->cluster->n; i++) st.peers_up += i != r->self && r->peers[i].conn != NULL;
  st.pool = r->core.pool.count;
  uv_rusage_t ru;
  if (uv_getrusage(&ru) == 0)
    st.cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
                (uint64_t)ru.ru_stime.tv_usec;
  st.executed = r->core.ctr.executed;
  st.protocol_only = (uint8_t)(r->cluster->protocol_only != 0);
  st.unsafe_no_fsync = (uint8_t)rt_recfile_unsafe_no_sync();
  int n = bft_status_encode(&st, &r->kp, r->cluster->id, r->scratch, WIRE_FRAME_MAX_BODY);
  if (n < 0) return 0; /* cannot sign: nothing goes out unsigned */
  r->m.status_served++;
  client_send(r, c, WIRE_KIND_STATUS, r->scratch, (uint32_t)n);
  return 0;
}

static int on_peer_frame(rt_replica *r, rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  rt_peer *p = &r->peers[c->peer];
  p->frames_in++;
  if (h->sender != c->peer) {
    p->rejected++;
    r->offences[RT_OFF_MALFORMED]++;
    rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_WARN, COMP_NET, "event=frame_refused peer=%u sender=%u kind=%u reason=\"%s\"",
               c->peer, h->sender, h->kind, "sender is not the authenticated peer: connection closed");
    return -1;
  }
  /* Everything a peer may send is handled by the core, exactly as in the simulator. A frame
   * that is not an engine message and does not decode closes the connection (the peer redials);
   * an engine message that fails its checks is only counted (votes are judged one by one). */
  int rc = r->twin ? rt_byz_twin_on_peer_frame(r->twin, c->peer, h->kind, body, h->body_len)
                   : rt_core_on_peer_frame(&r->core, c->peer, h->kind, body, h->body_len);
  if (rc == BFT_E_MALFORMED &&
      !(h->kind >= WIRE_KIND_ENGINE && h->kind <= WIRE_KIND_ENGINE_LAST)) {
    p->rejected++;
    r->offences[RT_OFF_MALFORMED]++;
    check_core(r);
    return -1;
  }
  check_core(r);
  return 0;
}

static void map_client(rt_replica *r, uint32_t client, rt_conn *c) { r->client_conn[client] = c; }

/* What a client request's outcome costs its sender and how it is answered. The core says what
 * the request is (rt_core_submit stays I/O-free); here the glue decides: a key outside the
 * cluster file gets no verify and no answer, a bad signature a signed rejection only within the
 * source's rate, and both count against the connection's and the source's failed-verification
 * budgets. c is NULL when the connection closed while the request waited for its check (vq):
 * then only what needs no connection is counted. 0, or -1 to close c. */
static int request_outcome(rt_replica *r, rt_conn *c, rt_core *core, const rt_submit *out) {
  if (out->client >= 0 && c) {
    map_client(r, (uint32_t)out->client, c);
    if (!c->verified) {
      c->verified = 1; /* proved a key of the cluster file: never evicted, longer idle timeout */
      unproven_remove(r, c);
    }
  }
  switch (out->outcome) {
    case RT_SUBMIT_RETRANSMIT:
      if (c) send_cached_reply(r, core, c, (uint32_t)out->client);
      return 0;
    case RT_SUBMIT_MALFORMED:
      offence(r, c, RT_OFF_MALFORMED, "undecodable request");
      return -1;
    case RT_SUBMIT_NOT_PERMITTED:
      offence(r, c, RT_OFF_UNKNOWN_KEY, "request from a key outside the cluster file");
      return verify_failed(r, c, -1);
    case RT_SUBMIT_BAD_SIG: {
      offence(r, c, RT_OFF_BAD_SIG, "request signature does not verify");
      if (verify_failed(r, c, rt_sessions_find(&r->core.sessions, out->pk)) != 0) return -1;
      if (!rt_bucket_take(&((rt_source *)c->src)->rejects, RT_SOURCE_REJECT_BURST, RT_SOURCE_REJECT_PER_S,
                          uv_now(r->loop))) {
        r->offences[RT_OFF_REJECT_UNSENT]++;
        return 0;
      }
      int n = rt_core_encode_reject(&r->core, out->pk, out->seq, out->reason, r->scratch, WIRE_FRAME_MAX_BODY);
      if (n > 0) client_send(r, c, WIRE_KIND_REPLY, r->scratch, (uint32_t)n);
      return 0;
    }
    default:
      return 0;
  }
}

/* Check the signatures of every request waiting in vq together on the pool, then hand each to
 * its core with its verdict, in arrival order (the core finds nothing left to verify). Runs at
 * the end of the loop iteration before pulls are answered, so these requests can join the next
 * batch, and earlier when vq fills or a connection's budget says so (queue_request). */
static void flush_requests(rt_replica *r) {
  if (!r->vq.n || r->vq_flushing) return;
  r->vq_flushing = 1; /* nothing below reads a client frame; asserted against re-entry anyway */
  r->vq_batches++;
  rt_vq_verify(&r->vq, r->vpool);
  for (uint32_t i = 0; i < r->vq.n && !r->stopping; i++) {
    rt_vq_entry *e = &r->vq.e[i];
    rt_conn *c = e->conn; /* NULL when it closed meanwhile (on_closing forgets it) */
    if (c) c->queued--;
    rt_submit out;
    rt_core_submit_verdict(e->core, rt_vq_bytes(&r->vq, i), e->len, 0, e->verdict, &out);
    if (request_outcome(r, c, e->core, &out) != 0 && c) rt_conn_close(c, "protocol error");
    check_core(r);
  }
  rt_vq_clear(&r->vq);
  r->vq_flushing = 0;
}

/* A request on a proven connection, with a pool: when its signature needs a check it waits in
 * vq for the end of the iteration (as does anything its connection sends after it, so its order
 * holds); otherwise it is submitted now. A connection never has more requests waiting than
 * failed verifications left in its budget, so a key holder sending forgeries still costs at
 * most --fail-budget verifies before its connection closes, as without the pool. 0 or -1. */
static int queue_request(rt_replica *r, rt_conn *c, rt_core *core, const uint8_t *body, uint32_t len) {
  BFT_ASSERT(!r->vq_flushing);
  if (rt_vq_full(&r->vq, len)) {
    r->vq_early++;
    flush_requests(r);
    if (c->closing) return -1;
  }
  bft_request rq;
  int verify = rt_core_needs_verify(core, body, len, &rq);
  if (!verify && !c->queued) {
    rt_submit out;
    rt_core_submit(core, body, len, 0, &out);
    return request_outcome(r, c, core, &out);
  }
  int pushed = rt_vq_push(&r->vq, c, core, body, len, verify ? &rq : NULL);
  BFT_ASSERT(pushed == 0); /* room was made above */
  c->queued++;
  r->vq_requests++;
  uint32_t left = r->lim.fail_budget > c->fails ? r->lim.fail_budget - c->fails : 1;
  if (c->queued >= left) {
    r->vq_early++;
    flush_requests(r);
  }
  return c->closing ? -1 : 0;
}

/* A client REQUEST: a refused source's unproven connections are turned away first; then the
 * request is queued for a check on the pool (queue_request) or submitted now. 0, or -1 to close. */
static int on_client_request(rt_replica *r, rt_conn *c, const uint8_t *body, uint32_t len) {
  /* A refused source keeps its proven connections; on an unproven one, a request claiming a
   * suspect key (or one outside the cluster file) is refused without a verify, while other
   * keys are still checked (same-host honest clients keep getting in during an attack). */
  if (!c->verified && rt_source_refused(c->src, uv_now(r->loop))) {
    bft_request rq;
    int key = bft_request_decode(body, len, &rq) == 0 ? rt_sessions_find(&r->core.sessions, rq.client) : -1;
    if (key_suspect(r, key)) {
      offence(r, c, RT_OFF_BACKOFF, "request from a refused source claiming a suspect key on an unproven connection");
      return -1;
    }
  }
  rt_core *core = r->twin ? rt_byz_twin_core_for(r->twin, body, len) : &r->core; /* equivocate: by seq parity */
  /* Only proven connections wait for the pool: an unproven one (a stranger, or a client's first
   * request) is checked at once, so forgeries keep their cost and budgets exactly as without it. */
  if (r->vpool && c->verified) return queue_request(r, c, core, body, len);
  rt_submit out;
  rt_core_submit(core, body, len, 0, &out);
  return request_outcome(r, c, core, &out);
}

static int on_client_frame(rt_replica *r, rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  int rc = 0;
  if (!c->verified) unproven_touch(r, c);
  if (h->sender != WIRE_SENDER_CLIENT) rc = -1;
  else if (h->kind == WIRE_KIND_REQUEST) rc = on_client_request(r, c, body, h->body_len);
  else if (h->kind == WIRE_KIND_LEDGER_GET) {
    if (!c->verified && rt_source_refused(c->src, uv_now(r->loop))) {
      offence(r, c, RT_OFF_BACKOFF, "ledger read from a refused source on an unproven connection");
      rc = -1;
    } else {
      serve_blocks(r, c, body, h->body_len);
    }
  } else if (h->kind == WIRE_KIND_EVIDENCE_GET) {
    serve_evidence(r, c);
  } else if (h->kind == WIRE_KIND_QUERY) {
    if (!c->verified && rt_source_refused(c->src, uv_now(r->loop))) {
      offence(r, c, RT_OFF_BACKOFF, "query from a refused source on an unproven connection");
      rc = -1;
    } else {
      int n = rt_core_query(&r->core, body, h->body_len, r->scratch, WIRE_FRAME_MAX_BODY);
      if (n > 0) client_send(r, c, WIRE_KIND_QUERY_REPLY, r->scratch, (uint32_t)n);
      else if (!r->core.failed) rc = -1, offence(r, c, RT_OFF_MALFORMED, "undecodable query");
    }
  } else if (h->kind == WIRE_KIND_SNAP_GET) { /* the certified snapshot anchoring a pruned ledger */
    int n = rt_xfer_meta(&r->core, 0, r->scratch, WIRE_FRAME_MAX_BODY);
    if (n >= 0) client_send(r, c, WIRE_KIND_SNAP_META, r->scratch, (uint32_t)n);
  } else if (h->kind == WIRE_KIND_STATUS_GET) {
    rc = serve_status(r, c, body, h->body_len);
  } else rc = -1;
  if (rc && h->sender != WIRE_SENDER_CLIENT) offence(r, c, RT_OFF_MALFORMED, "client frame with a replica's sender id");
  else if (rc && h->kind == WIRE_KIND_STATUS_GET)
    offence(r, c, RT_OFF_MALFORMED, "malformed STATUS_GET");
  else if (rc && h->kind != WIRE_KIND_REQUEST && h->kind != WIRE_KIND_LEDGER_GET && h->kind != WIRE_KIND_EVIDENCE_GET &&
           h->kind != WIRE_KIND_QUERY && h->kind != WIRE_KIND_SNAP_GET)
    offence(r, c, RT_OFF_MALFORMED, "frame kind a client may not send");
  check_core(r);
  return rc;
}

static int on_frame(rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  rt_replica *r = c->owner;
  if (r->stopping) return 0;
  if (r->m_ready) rt_metrics_frame_in(&r->m, h->kind, h->body_len);
  switch (c->role) {
    case ROLE_PEER:
      return on_peer_frame(r, c, h, body);
    case ROLE_CLIENT:
      return on_client_frame(r, c, h, body);
    case ROLE_HS_DIAL:
    case ROLE_HS_PROVED:
    case ROLE_HS_ACCEPT:
      if (h->kind != WIRE_KIND_HELLO_ACK) return hs_refuse(r, c, "expected HELLO_ACK");
      return on_hello_ack(r, c, h, body);
    case ROLE_UNKNOWN:
      if (h->kind == WIRE_KIND_HELLO) return on_hello(r, c, h, body);
      if ((h->kind == WIRE_KIND_REQUEST || h->kind == WIRE_KIND_LEDGER_GET || h->kind == WIRE_KIND_EVIDENCE_GET ||
           h->kind == WIRE_KIND_QUERY || h->kind == WIRE_KIND_SNAP_GET || h->kind == WIRE_KIND_STATUS_GET) &&
          h->sender == WIRE_SENDER_CLIENT) {
        c->role = ROLE_CLIENT;
        c->deadline_ms = 0;
        c->q.shared = &r->client_queue_bytes;
        c->q.shared_max = RT_CLIENT_QUEUES_TOTAL_BYTES;
        return on_client_frame(r, c, h, body);
      }
      offence(r, c, RT_OFF_MALFORMED, "first frame is neither HELLO nor a client frame");
      return -1;
    default:
      return -1;
  }
}

/* ---- connection lifecycle --------------------------------------------------------------------- */

static void conn_list_add(rt_replica *r, rt_conn *c) {
  c->next = r->conns;
  if (r->conns) r->conns->prev = c;
  r->conns = c;
  r->nconns++;
}

static void conn_list_remove(rt_replica *r, rt_conn *c) {
  if (c->prev) c->prev->next = c->next;
  else r->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  r->nconns--;
}

static void on_closing(rt_conn *c, const char *why) {
  rt_replica *r = c->owner;
  unmark_dirty(r, c);
  conn_list_remove(r, c);
  uncount_client(r, c);
  uncount_hs(r, c);
  r->closed_since_trim++;
  if (c->queued) { /* its waiting requests are still checked and submitted, but not answered */
    rt_vq_forget(&r->vq, c);
    c->queued = 0;
  }
  if (c->role == ROLE_CLIENT) {
    for (uint32_t i = 0; i < r->cluster->nclients; i++)
      if (r->client_conn[i] == c) r->client_conn[i] = NULL;
  }
  if (c->role == ROLE_DIALING || c->role == ROLE_HS_DIAL || c->role == ROLE_HS_PROVED || c->role == ROLE_HS_ACCEPT ||
      c->role == ROLE_PEER) {
    rt_peer *p = &r->peers[c->peer];
    int was_up = p->conn == c;
    if (p->conn == c) p->conn = NULL;
    if (p->dialing == c) p->dialing = NULL;
    if (was_up)
      rt_logf(&r->log, RT_LOG_INFO, COMP_NET, "event=peer_disconnected peer=%u conn=%llu reason=\"%s\"", p->id,
              (unsigned long long)c->id, why);
    else if (c->role != ROLE_DIALING)
      rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_DEBUG, COMP_NET, "event=conn_closed conn=%llu role=%s peer=%u reason=\"%s\"",
                 (unsigned long long)c->id, ROLE_NAMES[c->role], p->id, why);
    if (!r->stopping && r->self < p->id && !p->conn && !p->dialing) schedule_redial(p);
  } else {
    rt_logf(&r->log, RT_LOG_DEBUG, COMP_NET, "event=conn_closed conn=%llu role=%s addr=%s reason=\"%s\"",
            (unsigned long long)c->id, ROLE_NAMES[c->role], c->addr, why);
  }
}

static void on_freed(rt_conn *c) { (void)c; }

static void on_dirty(rt_conn *c) { mark_dirty(c->owner, c); }

/* A bad frame header (magic, version, flags) or a body length over the connection's limit. */
static void on_violation(rt_conn *c, const char *why) {
  rt_replica *r = c->owner;
  if (c->role == ROLE_PEER || c->role == ROLE_DIALING || c->role == ROLE_HS_DIAL || c->role == ROLE_HS_PROVED) {
    r->offences[RT_OFF_MALFORMED]++;
    rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_WARN, COMP_NET, "event=frame_refused peer=%u reason=\"%s\"", c->peer, why);
    return;
  }
  offence(r, c, RT_OFF_MALFORMED, why);
}

static const rt_conn_handler HANDLER = {on_frame, on_closing, on_freed, on_dirty, on_violation};

static rt_conn *conn_make(rt_replica *r) {
  rt_conn *c = rt_conn_new(r->loop, &HANDLER, r, ++r->next_conn_id, RT_CLIENT_QUEUE_MAX_FRAMES,
                           RT_CLIENT_QUEUE_MAX_BYTES);
  if (!c) return NULL;
  c->spare = r->spare;
  conn_list_add(r, c);
  return c;
}

static void on_connection(uv_stream_t *server, int status) {
  rt_replica *r = server->data;
  if (status < 0 || r->stopping) return;
  rt_conn *c = conn_make(r);
  if (!c) return;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    rt_conn_close(c, "accept failed");
    return;
  }
  rt_conn_describe(c);
  c->role = ROLE_UNKNOWN;
  if (admit(r, c) != 0) {
    r->conns_refused++;
    rt_conn_close(c, "connection limit");
    return;
  }
  c->deadline_ms = uv_now(r->loop) + RT_FIRST_FRAME_TIMEOUT_MS;
  if (rt_conn_start(c) != 0) rt_conn_close(c, "cannot read");
}

/* ---- dialing ---------------------------------------------------------------------------------- */

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out) {
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return BFT_E_IO;
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

static void on_connect(uv_connect_t *req, int status) {
  rt_conn *c = req->data;
  rt_replica *r = c->owner;
  if (c->closing) return;
  if (status < 0) {
    rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_DEBUG, COMP_NET, "event=dial_failed peer=%u reason=\"%s\"", c->peer,
               uv_strerror(status));
    rt_conn_close(c, uv_strerror(status));
    return;
  }
  c->role = ROLE_HS_DIAL;
  c->deadline_ms = uv_now(r->loop) + RT_HANDSHAKE_TIMEOUT_MS;
  if (rt_conn_start(c) != 0 || send_hello(r, c) != 0) rt_conn_close(c, "cannot start handshake");
}

static void peer_dial(rt_peer *p) {
  rt_replica *r = p->r;
  if (r->stopping || p->conn || p->dialing) return;
  const bft_replica_info *ri = &r->cluster->replicas[p->id];
  if (!p->addr_ok && resolve(ri->host, ri->port, &p->addr) == 0) p->addr_ok = 1;
  if (!p->addr_ok) {
    rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_WARN, COMP_NET, "event=dial_failed peer=%u reason=\"cannot resolve %s\"",
               p->id, ri->host);
    schedule_redial(p);
    return;
  }
  rt_conn *c = conn_make(r);
  if (!c) return schedule_redial(p);
  c->role = ROLE_DIALING;
  c->peer = p->id;
  c->deadline_ms = uv_now(r->loop) + RT_HANDSHAKE_TIMEOUT_MS;
  snprintf(c->addr, sizeof c->addr, "%.40s:%u", ri->host, ri->port);
  p->dialing = c;
  p->creq.data = c;
  int rc = uv_tcp_connect(&p->creq, &c->tcp, (const struct sockaddr *)&p->addr, on_connect);
  if (rc) rt_conn_close(c, uv_strerror(rc));
}

static void on_redial(uv_timer_t *t) { peer_dial(t->data); }

static void schedule_redial(rt_peer *p) {
  rt_replica *r = p->r;
  if (r->stopping || uv_is_active((uv_handle_t *)&p->redial)) return;
  uint64_t d = p->backoff_ms;
  d = d - d / 5 + (rng_next(r) % (2 * (d / 5) + 1)); /* +-20% */
  p->backoff_ms = p->backoff_ms * 2 > RT_REDIAL_MAX_MS ? RT_REDIAL_MAX_MS : p->backoff_ms * 2;
  uv_timer_start(&p->redial, on_redial, d, 0);
}

/* ---- per-iteration work ------------------------------------------------------------------------ */

/* Before the loop blocks: make this iteration's records durable, then let its frames leave. */
static void on_prepare(uv_prepare_t *h) {
  rt_replica *r = h->data;
  if (r->stopping) return;
  flush_requests(r); /* before pulls: what this iteration read can join the next batch */
  if (r->stopping) return;
  if (rt_core_answer_pulls(&r->core) != 0 || rt_core_sync(&r->core) != 0) return begin_stop(r, 1);
  if (r->twin && rt_byz_twin_prepare(r->twin) != 0) return begin_stop(r, 1);
  while (r->ndirty) {
    rt_conn *c = r->dirty[--r->ndirty];
    c->dirty = 0;
    rt_conn_flush(c);
  }
}

/* Deadlines: first frame, handshake, a frame begun but not finished (slow sender), client
 * idleness (shorter for a client that never proved a key). */
static void sweep_conn(rt_replica *r, rt_conn *c, uint64_t now) {
  if (c->deadline_ms && now > c->deadline_ms) {
    if (c->role == ROLE_UNKNOWN) {
      offence(r, c, RT_OFF_FIRST_FRAME, "no first frame in time");
      rt_conn_close(c, "no first frame in time");
    } else {
      if (c->role == ROLE_HS_ACCEPT) offence(r, c, RT_OFF_HS_FAILED, "handshake timed out");
      rt_conn_close(c, "handshake timed out");
    }
    return;
  }
  uint64_t frame_ms = c->role == ROLE_PEER ? RT_PEER_FRAME_TIMEOUT_MS : r->lim.frame_timeout_ms;
  if (c->rlen > 0 && now > c->frame_start_ms + frame_ms) {
    if (c->role == ROLE_PEER) {
      r->offences[RT_OFF_FRAME_TIMEOUT]++;
      rt_logf_rl(&r->log, &r->rl_conn, RT_LOG_WARN, COMP_NET, "event=frame_timeout peer=%u bytes=%zu", c->peer, c->rlen);
    } else {
      offence(r, c, RT_OFF_FRAME_TIMEOUT, "frame not completed in time (slow sender)");
    }
    rt_conn_close(c, "frame not completed in time");
    return;
  }
  if (c->role == ROLE_CLIENT) {
    uint64_t idle = c->verified ? r->lim.client_idle_ms
                                : (r->lim.client_idle_ms < RT_UNPROVEN_IDLE_MS ? r->lim.client_idle_ms : RT_UNPROVEN_IDLE_MS);
    if (now > c->last_frame_ms + idle && !c->writing && !c->q.count) {
      if (c->verified) r->offences[RT_OFF_IDLE]++; /* an honest client going quiet: not an offence to log */
      else offence(r, c, RT_OFF_IDLE, "unproven client connection idle");
      rt_conn_close(c, "idle");
    }
  }
}

static void on_sweep(uv_timer_t *t) {
  rt_replica *r = t->data;
  uint64_t now = uv_now(r->loop);
  rt_conn *next;
  for (rt_conn *c = r->conns; c; c = next) {
    next = c->next;
    sweep_conn(r, c, now);
  }
#ifdef __GLIBC__
  /* After a flood the freed connection memory sits in malloc's free lists: give it back so
   * resident memory returns to where it was. */
  if (r->closed_since_trim >= RT_TRIM_AFTER_CONNS && r->nclient_conns < r->lim.max_clients / 4) {
    malloc_trim(0);
    r->closed_since_trim = 0;
  }
#endif
}

static void on_metrics(uv_timer_t *t) {
  rt_replica *r = t->data;
  bft_engine_status st;
  rt_core_status(&r->core, &st);
  const rt_counters *k = &r->core.ctr;
  uint32_t up = 0;
  uint64_t drops = 0, out = 0, qbytes = 0;
  for (uint32_t i = 0; i < r->cluster->n; i++) {
    if (i == r->self) continue;
    up += r->peers[i].conn != NULL;
    drops += r->peers[i].drops;
    out += r->peers[i].frames_out;
    qbytes += r->peers[i].q.bytes;
  }
  uint64_t now = uv_now(r->loop), dt = now - r->last_metrics_ms ? now - r->last_metrics_ms : 1;
  char off[RT_OFF_COUNT * 40];
  size_t ol = 0;
  for (int i = 0; i < RT_OFF_COUNT && ol < sizeof off; i++)
    ol += (size_t)snprintf(off + ol, sizeof off - ol, " off_%s=%llu", OFFENCE_NAMES[i], (unsigned long long)r->offences[i]);
  rt_vpool_stats vst = {0};
  if (r->vpool) rt_vpool_get_stats(r->vpool, &vst);
  rt_logf(&r->log, RT_LOG_INFO, "metrics",
          "event=metrics height=%llu view=%llu leader=%u changing_view=%d commits_per_s=%.1f peers_up=%u/%u "
          "conns=%u pool=%u msgs_in=%llu msgs_out=%llu msgs_bad_sig=%llu msgs_rejected=%llu req_new=%llu "
          "req_rejected=%llu req_busy=%llu executed=%llu queue_drops=%llu queued_bytes=%llu syncs=%llu "
          "synced_blocks=%llu wal_bytes=%llu proposed_batches=%llu proposed_requests=%llu client_conns=%u "
          "handshakes=%u conns_refused=%llu handshakes_failed=%llu verify_threads=%u verify_batches=%llu "
          "verify_queued=%llu verify_early=%llu verified_on_workers=%llu verify_wait_ms=%llu verify_wait_max_us=%llu%s",
          (unsigned long long)r->core.ledger.head, (unsigned long long)st.view, st.leader, st.changing_view,
          (double)(k->commits - r->last_commits) * 1000.0 / (double)dt, up, r->cluster->n - 1,
          r->nconns, r->core.pool.count, (unsigned long long)k->msgs_in, (unsigned long long)out,
          (unsigned long long)k->msgs_bad_sig, (unsigned long long)k->msgs_rejected, (unsigned long long)k->req_new,
          (unsigned long long)(k->req_not_permitted + k->req_bad_sig + k->req_malformed),
          (unsigned long long)k->req_busy, (unsigned long long)k->executed, (unsigned long long)drops,
          (unsigned long long)qbytes, (unsigned long long)k->syncs, (unsigned long long)k->sync_blocks,
          (unsigned long long)rt_wal_size(&r->core.wal), (unsigned long long)k->pulls,
          (unsigned long long)k->pulled_requests, r->nclient_conns, r->nhandshakes,
          (unsigned long long)r->conns_refused, (unsigned long long)r->handshakes_failed, rt_vpool_threads(r->vpool),
          (unsigned long long)r->vq_batches, (unsigned long long)r->vq_requests, (unsigned long long)r->vq_early,
          (unsigned long long)vst.by_workers, (unsigned long long)vst.wait_us / 1000u,
          (unsigned long long)vst.wait_max_us, off);
  if (r->byz) {
    char b[768];
    rt_byz_shell_describe(r->byz, b, sizeof b);
    if (r->twin) rt_byz_twin_describe(r->twin, b + strlen(b), sizeof b - strlen(b));
    rt_logf(&r->log, RT_LOG_WARN, "metrics", "event=byzantine_metrics %s", b);
  }
  r->last_commits = k->commits;
  r->last_metrics_ms = now;
}

/* The application's socket became readable while no call was in flight: it died or talks out
 * of turn. Either way the replica stops now, not at the next batch. */
static void on_app_poll(uv_poll_t *h, int status, int events) {
  rt_replica *r = h->data;
  char why[400];
  if (status == 0 && rt_app_socket_idle_check(r->app, why, sizeof why) == 0) return;
  if (status < 0) snprintf(why, sizeof why, "application connection failed: %s", uv_strerror(status));
  rt_core_fail(&r->core, BFT_E_IO, "%s", why);
  check_core(r);
}

static void on_signal(uv_signal_t *s, int signum) {
  rt_replica *r = s->data;
  rt_logf(&r->log, RT_LOG_INFO, COMP_RT, "event=shutdown signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  begin_stop(r, 0);
}

static void close_if_open(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void rt_replica_stop(rt_replica *r) { begin_stop(r, 0); }

static void begin_stop(rt_replica *r, int code) {
  if (r->stopping) return;
  r->stopping = 1;
  r->exit_code = code;
  if (r->on_stop) r->on_stop(r->on_stop_arg);
  if (r->core_ready && !r->core.failed && rt_core_sync(&r->core) != 0) r->exit_code = 1;
  if (r->core.failed) {
    r->exit_code = 1;
    rt_logf(&r->log, RT_LOG_ERROR, COMP_RT, "event=stopping reason=\"%s\"", r->core.fail_msg);
    /* Replies leave only after the sync that made them durable succeeded (on_prepare), so a
     * failed sync stops us before anything it covers was acknowledged. */
    fprintf(stderr, "fatal: %s — stopping; nothing acknowledged was lost\n", r->core.fail_msg);
  }
  for (int i = 0; i < r->nlisteners; i++) close_if_open((uv_handle_t *)&r->listeners[i]);
  for (uint32_t i = 0; i < BFT_MAX_TIMERS; i++) close_if_open((uv_handle_t *)&r->engine_timers[i]);
  rt_byz_twin_stop(r->twin);
  for (uint32_t i = 0; i < r->cluster->n; i++) close_if_open((uv_handle_t *)&r->peers[i].redial);
  close_if_open((uv_handle_t *)&r->sweep);
  close_if_open((uv_handle_t *)&r->metrics);
  if (r->msrv_open) rt_metrics_server_close(&r->msrv);
  close_if_open((uv_handle_t *)&r->prepare);
  close_if_open((uv_handle_t *)&r->sigint);
  close_if_open((uv_handle_t *)&r->sigterm);
  if (r->app_watching) close_if_open((uv_handle_t *)&r->app_poll);
  while (r->conns) rt_conn_close(r->conns, "shutting down");
}

/* ---- opening, running, closing ------------------------------------------------------------------ */

static int fail_open(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_open(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static int load_identity(rt_replica *r, const rt_options *o, char *err, size_t errlen) {
  char e[320];
  r->cluster = calloc(1, sizeof *r->cluster);
  if (!r->cluster) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  int rc = bft_cluster_load(o->config, r->cluster, e, sizeof e);
  if (rc) return fail_open(err, errlen, rc, "cannot use cluster file: %s", e);
  if (o->id >= r->cluster->n)
    return fail_open(err, errlen, BFT_E_CONFIG, "replica id %u is not in %s (it defines replicas 0..%u)", o->id,
                     o->config, r->cluster->n - 1);
  rc = bft_keyfile_load(o->key, &r->kp, e, sizeof e);
  if (rc) return fail_open(err, errlen, rc, "cannot use key file: %s", e);
  const uint8_t *want = r->cluster->replicas[o->id].pk;
  if (!bft_ct_equal(r->kp.pk, want, BFT_PK_LEN)) {
    char have_hex[9], want_hex[9];
    rt_short_hex(have_hex, r->kp.pk);
    rt_short_hex(want_hex, want);
    return fail_open(err, errlen, BFT_E_CONFIG,
                     "key file %s holds public key %s..., but %s lists %s... for replica %u: wrong key or wrong --id",
                     o->key, have_hex, o->config, want_hex, o->id);
  }
  r->self = o->id;
  if (r->cluster->warning[0])
    rt_logf(&r->log, RT_LOG_WARN, COMP_RT, "event=cluster_warning note=\"%s\"", r->cluster->warning);
  return 0;
}

static int prepare_data_dir(rt_replica *r, const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno != ENOENT || bft_mkdirs(dir) != 0)
      return fail_open(err, errlen, BFT_E_IO, "cannot create data folder %s: %s", dir, strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return fail_open(err, errlen, BFT_E_IO, "data folder %s is not a folder", dir);
  }
  char path[RT_PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/lock", dir) >= sizeof path)
    return fail_open(err, errlen, BFT_E_INVAL, "data folder path too long");
  r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (r->lock_fd < 0) return fail_open(err, errlen, BFT_E_IO, "cannot open %s: %s", path, strerror(errno));
  if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0)
    return fail_open(err, errlen, BFT_E_IO, "data folder %s is in use by another bft-replica", dir);
  return 0;
}

static int listen_on(rt_replica *r, const char *host, uint16_t port, char *err, size_t errlen) {
  struct sockaddr_storage addr;
  if (resolve(host, port, &addr) != 0)
    return fail_open(err, errlen, BFT_E_CONFIG, "cannot resolve listen address %s", host);
  uv_tcp_t *t = &r->listeners[r->nlisteners];
  uv_tcp_init(r->loop, t);
  t->data = r;
  r->nlisteners++;
  int rc = uv_tcp_bind(t, (const struct sockaddr *)&addr, 0);
  /* Backlog sized for the limits: a burst of honest connects fits while a flood is being
   * accepted and refused (the kernel caps it at net.core.somaxconn). */
  int backlog = (int)(r->lim.max_clients / 2 > RT_LISTEN_BACKLOG_MIN ? r->lim.max_clients / 2 : RT_LISTEN_BACKLOG_MIN);
  if (!rc) rc = uv_listen((uv_stream_t *)t, backlog, on_connection);
  if (rc) return fail_open(err, errlen, BFT_E_IO, "cannot listen on %s:%u: %s", host, port, uv_strerror(rc));
  return 0;
}

static void init_handles(rt_replica *r) {
  for (uint32_t i = 0; i < BFT_MAX_TIMERS; i++) {
    uv_timer_init(r->loop, &r->engine_timers[i]);
    r->engine_timers[i].data = r;
  }
  for (uint32_t i = 0; i < r->cluster->n; i++) {
    rt_peer *p = &r->peers[i];
    p->r = r;
    p->id = i;
    p->backoff_ms = RT_REDIAL_MIN_MS;
    rt_outq_init(&p->q, RT_PEER_QUEUE_MAX_FRAMES, RT_PEER_QUEUE_MAX_BYTES);
    uv_timer_init(r->loop, &p->redial);
    p->redial.data = p;
  }
  uv_timer_init(r->loop, &r->sweep);
  uv_timer_init(r->loop, &r->metrics);
  uv_prepare_init(r->loop, &r->prepare);
  uv_signal_init(r->loop, &r->sigint);
  uv_signal_init(r->loop, &r->sigterm);
  r->sweep.data = r->metrics.data = r->prepare.data = r->sigint.data = r->sigterm.data = r;
  r->handles_ready = 1;
}

static uint64_t metrics_clock(void *ctx) {
  (void)ctx;
  return uv_hrtime() / 1000u;
}

static int open_core(rt_replica *r, const rt_options *o, char *err, size_t errlen) {
  rt_core_config cc = {.cluster = r->cluster, .kp = &r->kp, .self = r->self, .ops = r->ops,
                       .data_dir = o->data_dir, .log = &r->log, .snapshot_every = o->snapshot_every,
                       .retain_blocks = o->retain_blocks};
  bft_engine_config tuning;
  memset(&tuning, 0, sizeof tuning);
  tuning.batch_max = o->batch_max;
  tuning.window = o->window;
  tuning.timeout_ms = o->timeout_ms;
  tuning.pipeline = o->pipeline;
  if (o->batch_max || o->window || o->timeout_ms || o->pipeline) cc.tuning = &tuning;
  if (rt_metrics_init(&r->m, r->cluster->nclients) != 0) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  r->m.now_us = metrics_clock;
  r->m_ready = 1;
  cc.metrics = &r->m;
  cc.io = (rt_io){.ctx = r, .send = io_send, .broadcast = io_broadcast, .timer_set = io_timer_set,
                  .timer_cancel = io_timer_cancel, .replied = io_replied, .now_ms = io_now};
  cc.app = o->app;
  cc.attest_state = 1; /* signed state digests: a diverging application stops its replica */
  cc.io.rejected = io_rejected;
  cc.vpool = r->vpool; /* a proposed batch's uncached requests are verified on it too */
  int rc = rt_core_open(&r->core, &cc, err, errlen);
  r->core_open = 1; /* partially opened state is released by rt_core_close */
  r->core_ready = rc == 0;
  r->core.defer_pulls = 1; /* batch what one loop iteration read */
  return rc;
}

/* The verify pool and the queue of requests waiting for it (none with --verify-threads 0). */
static int open_verify(rt_replica *r, const rt_options *o, char *err, size_t errlen) {
  uint32_t k = o->verify_threads == 0 ? rt_vpool_default_threads()
               : o->verify_threads == RT_VERIFY_INLINE ? 0 : o->verify_threads;
  if (k > RT_VPOOL_MAX_THREADS)
    return fail_open(err, errlen, BFT_E_INVAL, "verify threads must be 0-%u, got %u", RT_VPOOL_MAX_THREADS, k);
  if (k == 0) return 0;
  if (rt_vq_init(&r->vq) != 0) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  int rc = rt_vpool_open(&r->vpool, k, r->cluster->id);
  if (rc) return fail_open(err, errlen, rc, "cannot start %u verify threads: %s", k, bft_strerror(rc));
  return 0;
}

int rt_replica_open(rt_replica *r, const rt_options *o, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->lock_fd = -1;
  rt_log_init(&r->log, o->log_level, stderr, (long)o->id);
  if (o->byzantine) /* the first line says so, whatever the log level */
    rt_logf(&r->log, RT_LOG_ERROR, "byzantine",
            "event=byzantine_replica modes=\"%s\" note=\"FAULTY ON PURPOSE: this replica misbehaves for security "
            "testing\"", o->byzantine);
  if (o->unsafe_no_fsync) { /* said first too: the durability promise is off */
    rt_recfile_set_unsafe_no_sync(1);
    rt_logf(&r->log, RT_LOG_ERROR, "storage",
            "event=unsafe_no_fsync note=\"records are written but never fsynced: a power loss can lose "
            "acknowledged operations and make this replica contradict its own votes; for benchmarks only\"");
  }
  r->ops = bft_engine_find(o->protocol);
  if (!r->ops)
    return fail_open(err, errlen, BFT_E_UNSUPPORTED, "unknown protocol '%s' (this build has: %s)", o->protocol,
                     bft_engine_names());
  if (bft_crypto_init() != 0) return fail_open(err, errlen, BFT_E_CRYPTO, "libsodium failed to initialise");
  int rc = load_identity(r, o, err, errlen);
  if (!rc) rc = prepare_data_dir(r, o->data_dir, err, errlen);
  if (rc) return rc;
  randombytes_buf(&r->prng, sizeof r->prng);
  r->lim = o->limits;
  if (!r->lim.max_clients) r->lim.max_clients = RT_MAX_CONNS;
  if (!r->lim.max_per_source) r->lim.max_per_source = RT_MAX_CONNS_PER_SOURCE;
  if (r->lim.max_per_source > r->lim.max_clients) r->lim.max_per_source = r->lim.max_clients;
  if (!r->lim.client_idle_ms) r->lim.client_idle_ms = RT_CLIENT_IDLE_MS;
  if (!r->lim.frame_timeout_ms) r->lim.frame_timeout_ms = RT_FRAME_TIMEOUT_MS;
  if (!r->lim.fail_budget) r->lim.fail_budget = RT_CONN_FAIL_BUDGET;
  r->spare = malloc(RT_READ_CHUNK);
  if (!r->spare || rt_sources_init(&r->sources) != 0) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  r->scratch = malloc(WIRE_FRAME_MAX_BODY);
  /* Every connection may be dirty at once: clients (bounded by the limit, plus the ones a
   * sweep has not closed yet never exceed it), handshakes, peers and dialers. */
  r->dirty = calloc(r->lim.max_clients + RT_MAX_HANDSHAKES + 4 * BFT_MAX_REPLICAS + 8, sizeof *r->dirty);
  r->client_conn = calloc(r->cluster->nclients ? r->cluster->nclients : 1, sizeof *r->client_conn);
  r->key_fails = calloc(r->cluster->nclients ? r->cluster->nclients : 1, sizeof *r->key_fails);
  if (!r->key_fails) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  r->handle_signals = o->handle_signals;
  r->app = o->app;
  r->app_watch = o->app_watch && o->app;
  r->on_stop = o->on_stop;
  r->on_stop_arg = o->on_stop_arg;
  if (o->loop) {
    r->loop = o->loop;
  } else {
    r->loop = malloc(sizeof *r->loop);
    if (r->loop && uv_loop_init(r->loop) != 0) {
      free(r->loop);
      r->loop = NULL;
      return fail_open(err, errlen, BFT_E_IO, "cannot create the event loop");
    }
    r->own_loop = r->loop != NULL;
  }
  if (!r->scratch || !r->dirty || !r->client_conn || !r->loop) return fail_open(err, errlen, BFT_E_NOMEM, "out of memory");
  init_handles(r);
  if (o->byzantine && (rc = rt_byz_shell_open(&r->byz, r, o->byzantine, byz_enqueue, err, errlen)) != 0) return rc;
  if ((rc = open_verify(r, o, err, errlen)) != 0) return rc;
  if ((rc = open_core(r, o, err, errlen)) != 0) return rc;
  if (r->byz && (rt_byz_shell_modes(r->byz) & RT_BYZ_EQUIVOCATE) &&
      (rc = rt_byz_twin_open(&r->twin, r, o->data_dir, err, errlen)) != 0)
    return rc;
  const bft_replica_info *me = &r->cluster->replicas[r->self];
  if ((rc = listen_on(r, me->host, me->port, err, errlen)) != 0) return rc;
  if (o->listen_client_port && (rc = listen_on(r, me->host, (uint16_t)o->listen_client_port, err, errlen)) != 0)
    return rc;
  if (o->metrics_addr) {
    r->msrv_open = 1;
    if (rt_metrics_server_open(&r->msrv, r->loop, o->metrics_addr, &r->m, rt_metrics_render, r, err, errlen) != 0)
      return BFT_E_IO;
    rt_logf(&r->log, RT_LOG_INFO, COMP_RT, "event=metrics_listening addr=%s", o->metrics_addr);
  }
  rt_logf(&r->log, RT_LOG_INFO, COMP_RT,
          "event=open cluster=%s n=%u f=%u protocol=%s listen=%s:%u clients=%u height=%llu data_dir=%s "
          "max_clients=%u max_conns_per_source=%u client_idle_ms=%u frame_timeout_ms=%u fail_budget=%u "
          "verify_threads=%u",
          r->cluster->name, r->cluster->n, r->cluster->f, r->ops->name, me->host, me->port, r->cluster->nclients,
          (unsigned long long)r->core.ledger.head, o->data_dir, r->lim.max_clients, r->lim.max_per_source,
          r->lim.client_idle_ms, r->lim.frame_timeout_ms, r->lim.fail_budget, rt_vpool_threads(r->vpool));
  return 0;
}

int rt_replica_start(rt_replica *r) {
  if (r->started) return 0;
  r->started = 1;
  uv_prepare_start(&r->prepare, on_prepare);
  uv_timer_start(&r->sweep, on_sweep, RT_SWEEP_MS, RT_SWEEP_MS);
  uv_timer_start(&r->metrics, on_metrics, RT_METRICS_INTERVAL_MS, RT_METRICS_INTERVAL_MS);
  if (r->handle_signals) {
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
  }
  r->last_metrics_ms = uv_now(r->loop);
  rt_logf(&r->log, RT_LOG_DEBUG, COMP_RT, "event=timer_jitter_seed seed=%llu", (unsigned long long)r->prng);
  if (rt_core_start(&r->core) != 0 || (r->twin && rt_byz_twin_start(r->twin) != 0)) {
    begin_stop(r, 1);
    return 1;
  }
  for (uint32_t i = r->self + 1; i < r->cluster->n; i++) peer_dial(&r->peers[i]);
  int fd = r->app_watch ? rt_app_socket_fd(r->app) : -1;
  if (fd >= 0 && uv_poll_init(r->loop, &r->app_poll, fd) == 0) {
    r->app_watching = 1; /* initialised: closed in begin_stop */
    r->app_poll.data = r;
    uv_poll_start(&r->app_poll, UV_READABLE | UV_DISCONNECT, on_app_poll);
  }
  return 0;
}

int rt_replica_run(rt_replica *r) {
  rt_replica_start(r);
  uv_run(r->loop, UV_RUN_DEFAULT);
  rt_logf(&r->log, RT_LOG_INFO, COMP_RT, "event=stopped exit_code=%d height=%llu", r->exit_code,
          (unsigned long long)r->core.ledger.head);
  return r->exit_code;
}

void rt_replica_close(rt_replica *r) {
  rt_byz_shell_close(r->byz); /* its timer is closed by the runs below */
  r->byz = NULL;
  if (r->loop && r->handles_ready) {
    if (!r->stopping) begin_stop(r, r->exit_code);
    if (r->own_loop) uv_run(r->loop, UV_RUN_DEFAULT); /* let every close callback run */
  }
  if (r->loop) {
    for (int i = 0; i < r->nlisteners; i++) close_if_open((uv_handle_t *)&r->listeners[i]);
    if (r->own_loop) {
      uv_run(r->loop, UV_RUN_DEFAULT);
      uv_loop_close(r->loop);
      free(r->loop);
    }
  }
  if (r->core_open) rt_core_close(&r->core);
  rt_byz_twin_free(r->twin);
  r->twin = NULL;
  rt_vpool_close(r->vpool); /* after the cores that borrow it; joins its threads */
  r->vpool = NULL;
  rt_vq_free(&r->vq);
  if (r->msrv_open) rt_metrics_server_free(&r->msrv);
  if (r->m_ready) rt_metrics_free(&r->m);
  for (uint32_t i = 0; r->cluster && i < r->cluster->n; i++) rt_outq_free(&r->peers[i].q);
  if (r->lock_fd >= 0) close(r->lock_fd);
  bft_keypair_wipe(&r->kp);
  free(r->scratch);
  free(r->spare);
  rt_sources_free(&r->sources);
  free(r->dirty);
  free(r->client_conn);
  free(r->key_fails);
  free(r->cluster);
  memset(r, 0, sizeof *r);
}
