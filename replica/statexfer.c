/* State transfer of a certified snapshot (frames 0x22-0x26):
 *   SNAP_ATTEST (0x22)  u64 height | block_hash | state_digest | snap_digest | u32 replica | sig
 *   SNAP_GET    (0x23)  u64 height | u32 index   index UINT32_MAX: the newest certified
 *                       snapshot at or above height (manifest and certificate); otherwise chunk
 *                       `index` of the snapshot at exactly `height`
 *   SNAP_META   (0x25)  u64 height (0: none) | blob manifest | blob certificate | u64 ledger base
 *                       | blob block (the sender's block at `height`, empty when pruned)
 *                       (also answered to a client's SNAP_GET: the anchor of bft-client verify-ledger)
 *   SNAP_CHUNK  (0x26)  u64 height | u32 index | blob data
 * The requester checks the certificate (f+1 attestations) and that it covers the manifest's
 * digest, then each chunk against the manifest's chunk digest; a peer that sends a bad chunk or
 * manifest is dropped for this transfer and the same request goes to another peer. Requests are
 * one at a time; one unanswered for RT_XFER_TIMEOUT_MS goes to the next peer. */
#include <stdlib.h>
#include <string.h>

#include "replica/core.h"
#include "replica/durable.h"

#define COMP "xfer"
#define META_INDEX UINT32_MAX

void rt_xfer_free(rt_xfer *x) {
  free(x->block);
  free(x->manifest);
  free(x->cert);
  free(x->payload);
  uint64_t backoff = x->backoff_until;
  memset(x, 0, sizeof *x);
  x->backoff_until = backoff;
}

static int snap_verify(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  rt_core *c = ctx;
  if (signer >= c->cluster->n) return BFT_E_UNKNOWN_SENDER;
  return c->crypto.verify(c->crypto.ctx, signer, c->cluster->replicas[signer].pk, RT_SNAP_TAG, msg, len, sig);
}

static void ask(rt_core *c, uint64_t height, uint32_t index) {
  rt_xfer *x = &c->dur->x;
  uint8_t body[12];
  wire_writer w;
  wire_writer_init(&w, body, sizeof body);
  wire_put_u64(&w, height);
  wire_put_u32(&w, index);
  c->io.send(c->io.ctx, x->peer, WIRE_KIND_SNAP_GET, body, (uint32_t)w.len);
  x->req_ms = c->io.now_ms(c->io.ctx);
}

static void give_up(rt_core *c, const char *why) {
  rt_xfer *x = &c->dur->x;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_transfer_stopped reason=\"%s\" head=%llu", why,
          (unsigned long long)c->ledger.head);
  rt_xfer_free(x);
  x->backoff_until = c->io.now_ms(c->io.ctx) + RT_XFER_BACKOFF_MS;
}

/* The next peer after x->peer that is neither us nor dropped (nor, for manifests, asked). */
static int next_peer(rt_core *c) {
  rt_xfer *x = &c->dur->x;
  uint64_t skip = x->bad | (x->chunks ? 0 : x->tried) | 1ull << c->self;
  for (uint32_t k = 1; k <= c->cluster->n; k++) {
    uint32_t p = (x->peer + k) % c->cluster->n;
    if (!(skip >> p & 1)) {
      x->peer = p;
      return 1;
    }
  }
  return 0;
}

/* Ask again, elsewhere: the manifest (another peer may hold a newer certified snapshot) or the
 * chunk we wait for (of exactly our snapshot's height). */
static void ask_elsewhere(rt_core *c, const char *why) {
  rt_xfer *x = &c->dur->x;
  if (!next_peer(c)) return give_up(c, why);
  if (x->chunks) ask(c, x->st.height, x->next);
  else {
    x->tried |= 1ull << x->peer;
    ask(c, c->ledger.head + 1, META_INDEX);
  }
}

void rt_xfer_consider(rt_core *c, uint32_t from, uint64_t peer_head, int blocks_useful) {
  rt_durable *d = c->dur;
  rt_xfer *x = &d->x;
  if (x->active || !d->snap_every || d->no_transfer || from >= c->cluster->n || from >= 64) return;
  if (peer_head <= c->ledger.head) return;
  /* Blocks serve a replica a little behind; a snapshot one whose blocks the peer pruned, or one
   * far behind (an empty folder among them). */
  if (blocks_useful && peer_head - c->ledger.head < RT_XFER_FAR_BEHIND(d->snap_every)) return;
  uint64_t now = c->io.now_ms(c->io.ctx);
  if (now < x->backoff_until) return;
  rt_xfer_free(x);
  x->active = 1;
  x->peer = from;
  x->tried = 1ull << from;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_transfer_start peer=%u head=%llu peer_head=%llu", from,
          (unsigned long long)c->ledger.head, (unsigned long long)peer_head);
  ask(c, c->ledger.head + 1, META_INDEX);
}

void rt_xfer_tick(rt_core *c) {
  rt_xfer *x = &c->dur->x;
  if (!x->active) return;
  if (c->ledger.head >= x->st.height && x->chunks) return give_up(c, "caught up by blocks");
  if (c->io.now_ms(c->io.ctx) - x->req_ms > RT_XFER_TIMEOUT_MS) ask_elsewhere(c, "no peer answered");
}

static void drop_peer(rt_core *c, const char *why) {
  rt_xfer *x = &c->dur->x;
  c->dur->xfer_bad_chunks++;
  x->bad |= 1ull << x->peer;
  rt_logf_rl(c->log, &c->rl_sync, RT_LOG_WARN, COMP, "event=snapshot_peer_dropped peer=%u height=%llu reason=\"%s\"",
             x->peer, (unsigned long long)x->st.height, why);
  ask_elsewhere(c, "every peer sent bad data");
}

/* ---- serving ---------------------------------------------------------------------------------- */

int rt_xfer_meta(rt_core *c, uint64_t min_height, uint8_t *out, uint32_t cap) {
  rt_durable *d = c->dur;
  wire_writer w;
  wire_writer_init(&w, out, cap);
  if (d->cert_height && d->cert_height >= min_height) {
    wire_put_u64(&w, d->cert_height);
    wire_put_blob(&w, d->cert_manifest, d->cert_manifest_len);
    wire_put_blob(&w, d->cert, d->cert_len);
  } else {
    wire_put_u64(&w, 0);
    wire_put_blob(&w, NULL, 0);
    wire_put_blob(&w, NULL, 0);
  }
  wire_put_u64(&w, c->ledger.base);
  /* Our block at that height: the installer's ledger then starts with it (heads, verify-ledger). */
  uint32_t bl = 0;
  if (d->cert_height && d->cert_height >= min_height && w.len + 4 < cap &&
      rt_ledger_read(&c->ledger, d->cert_height, out + w.len + 4, (uint32_t)(cap - w.len - 4), &bl) != 0)
    bl = 0;
  wire_put_u32(&w, bl);
  w.len += bl;
  return w.err ? w.err : (int)w.len;
}

static int serve(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t height = wire_get_u64(&r);
  uint32_t index = wire_get_u32(&r);
  int rc = wire_reader_finish(&r);
  if (rc) return BFT_E_MALFORMED;
  if (!rt_dur_allow_request(c, from)) return 0;
  uint8_t *out = c->bufs->scratch;
  if (index == META_INDEX) {
    int n = rt_xfer_meta(c, height, out, WIRE_FRAME_MAX_BODY);
    if (n < 0) return n;
    c->io.send(c->io.ctx, from, WIRE_KIND_SNAP_META, out, (uint32_t)n);
    return 0;
  }
  rt_durable *d = c->dur;
  /* chunks of the snapshots we keep: the newest certified one, or our newest */
  const uint8_t *m = height == d->cert_height ? d->cert_manifest : height == d->own.height ? d->own_manifest : NULL;
  uint32_t ml = height == d->cert_height ? d->cert_manifest_len : d->own_manifest_len;
  if (!m || !height) return 0;
  rt_snap_stmt st;
  uint64_t plen;
  uint32_t nch;
  const uint8_t *cd;
  if (rt_snap_manifest_decode(m, ml, &st, &plen, &nch, &cd) != 0 || index >= nch) return 0;
  uint64_t off = (uint64_t)index * RT_SNAP_CHUNK;
  uint32_t n = (uint32_t)(plen - off < RT_SNAP_CHUNK ? plen - off : RT_SNAP_CHUNK);
  wire_writer w;
  wire_writer_init(&w, out, WIRE_FRAME_MAX_BODY);
  wire_put_u64(&w, height);
  wire_put_u32(&w, index);
  wire_put_u32(&w, n);
  if (w.err || rt_snap_store_read_payload(&d->store, height, off, out + w.len, n) != 0) return 0;
  c->io.send(c->io.ctx, from, WIRE_KIND_SNAP_CHUNK, out, (uint32_t)(w.len + n));
  return 0;
}

/* ---- fetching --------------------------------------------------------------------------------- */

static void on_meta(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  rt_xfer *x = &c->dur->x;
  if (!x->active || x->chunks || from != x->peer) return;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t height = wire_get_u64(&r);
  uint32_t ml, cl;
  const uint8_t *m = wire_get_blob(&r, &ml, RT_SNAP_MANIFEST_MAX);
  const uint8_t *cert = wire_get_blob(&r, &cl, RT_SNAP_CERT_MAX);
  (void)wire_get_u64(&r); /* its ledger base: for clients */
  uint32_t bl;
  const uint8_t *blk = wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES);
  if (wire_reader_finish(&r) != 0) return drop_peer(c, "malformed SNAP_META");
  if (height == 0 || height <= c->ledger.head) return ask_elsewhere(c, "no peer holds a newer certified snapshot");
  rt_snap_stmt cst, mst;
  uint64_t plen;
  uint32_t nch;
  const uint8_t *cd;
  if (rt_snap_cert_verify(cert, cl, c->cluster->n, c->cfg.f, snap_verify, c, &cst) != 0)
    return drop_peer(c, "snapshot certificate does not verify");
  if (rt_snap_manifest_decode(m, ml, &mst, &plen, &nch, &cd) != 0 || memcmp(&cst, &mst, sizeof cst) != 0 ||
      mst.height != height)
    return drop_peer(c, "manifest not covered by its certificate");
  free(x->block);
  x->block = NULL;
  x->block_len = 0;
  if (bl && (x->block = malloc(bl)) != NULL) { /* checked at install; optional */
    memcpy(x->block, blk, bl);
    x->block_len = bl;
  }
  x->manifest = malloc(ml ? ml : 1);
  x->cert = malloc(cl ? cl : 1);
  x->payload = malloc(plen ? plen : 1);
  if (!x->manifest || !x->cert || !x->payload) return give_up(c, "out of memory");
  memcpy(x->manifest, m, ml);
  memcpy(x->cert, cert, cl);
  x->manifest_len = ml;
  x->cert_len = cl;
  x->payload_len = plen;
  x->nchunks = nch;
  x->chunk_digests = x->manifest + (cd - m);
  x->st = mst;
  x->chunks = 1;
  x->next = 0;
  rt_logf(c->log, RT_LOG_INFO, COMP, "event=snapshot_manifest peer=%u height=%llu bytes=%llu chunks=%u", from,
          (unsigned long long)height, (unsigned long long)plen, nch);
  if (nch == 0) return; /* cannot be: the payload holds at least the sessions count */
  ask(c, height, 0);
}

static void finish(rt_core *c) {
  rt_xfer *x = &c->dur->x;
  rt_snap s = {.st = x->st, .manifest = x->manifest, .manifest_len = x->manifest_len, .payload = x->payload,
               .payload_len = x->payload_len};
  uint8_t *cert = x->cert, *block = x->block;
  uint32_t cert_len = x->cert_len, block_len = x->block_len;
  uint32_t peer = x->peer;
  x->manifest = x->payload = x->cert = x->block = NULL;
  rt_xfer_free(x);
  int rc = rt_dur_install(c, &s, cert, cert_len, block, block_len);
  rt_snap_free(&s);
  free(cert);
  free(block);
  if (!rc && !c->failed) rt_core_fetch(c, peer); /* then the blocks after it */
}

static void on_chunk(rt_core *c, uint32_t from, const uint8_t *body, uint32_t len) {
  rt_xfer *x = &c->dur->x;
  if (!x->active || !x->chunks || from != x->peer) return;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t height = wire_get_u64(&r);
  uint32_t index = wire_get_u32(&r);
  uint32_t n;
  const uint8_t *data = wire_get_blob(&r, &n, RT_SNAP_CHUNK);
  if (wire_reader_finish(&r) != 0) return drop_peer(c, "malformed SNAP_CHUNK");
  if (height != x->st.height || index != x->next) return; /* a late answer to an earlier request */
  uint64_t off = (uint64_t)index * RT_SNAP_CHUNK;
  uint64_t want = x->payload_len - off < RT_SNAP_CHUNK ? x->payload_len - off : RT_SNAP_CHUNK;
  uint8_t d[BFT_DIGEST_LEN];
  bft_digest(d, data, n);
  if (n != want || memcmp(d, x->chunk_digests + (size_t)index * BFT_DIGEST_LEN, BFT_DIGEST_LEN) != 0)
    return drop_peer(c, "chunk does not match the certified manifest");
  memcpy(x->payload + off, data, n);
  x->next++;
  if (x->next == x->nchunks) return finish(c);
  ask(c, x->st.height, x->next);
}

int rt_xfer_on_frame(rt_core *c, uint32_t from, uint8_t kind, const uint8_t *body, uint32_t len) {
  switch (kind) {
    case WIRE_KIND_SNAP_ATTEST:
      rt_dur_on_attest(c, from, body, len);
      return 0;
    case WIRE_KIND_SNAP_GET:
      return serve(c, from, body, len);
    case WIRE_KIND_SNAP_META:
      on_meta(c, from, body, len);
      return 0;
    case WIRE_KIND_SNAP_CHUNK:
      on_chunk(c, from, body, len);
      return 0;
    default:
      return BFT_E_MALFORMED;
  }
}
