/* bft-client evidence: ask one replica for the equivocation evidence it holds and check every
 * piece with the cluster file alone — both messages must carry valid signatures of the replica
 * accused, under the engine's tag for their kind, and differ. One blocking request/answer on
 * its own connection (bft_rpc.c; nothing else of the client library is needed). */
#include "client/bft_evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/bft_client.h"
#include "protocols/ledger.h"
#include "protocols/request.h"
#include "protocols/wire/wire.h"
#include "replica/snapshot.h"

int bft_evidence_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen) {
  *body = NULL;
  *len = 0;
  int rc = bft_client_exchange(c, replica, WIRE_KIND_EVIDENCE_GET, NULL, 0, WIRE_KIND_EVIDENCE, timeout_ms, body, len,
                               err, errlen);
  if (rc) return rc;
  return 0;
}

/* Both messages signed by the offender under the engine's tag for their kind, and not equal. */
static int check_piece(const bft_engine_ops *ops, const bft_engine_config *cfg, const bft_engine_env *env,
                       uint32_t offender, uint8_t kind, const uint8_t *data, uint32_t len) {
  wire_reader r;
  wire_reader_init(&r, data, len);
  uint32_t l1, l2;
  const uint8_t *m1 = wire_get_blob(&r, &l1, BFT_MAX_ENGINE_MSG);
  const uint8_t *m2 = wire_get_blob(&r, &l2, BFT_MAX_ENGINE_MSG);
  if (wire_reader_finish(&r) != 0) return BFT_E_MALFORMED;
  if (l1 == l2 && memcmp(m1, m2, l1) == 0) return BFT_E_DUPLICATE;
  int rc = bft_engine_check_message(ops, cfg, env, offender, kind, m1, l1);
  return rc ? rc : bft_engine_check_message(ops, cfg, env, offender, kind, m2, l2);
}

int bft_evidence_print(const bft_cluster *c, uint32_t replica, const uint8_t *body, uint32_t len, FILE *out,
                       uint32_t *valid, uint32_t *invalid) {
  *valid = *invalid = 0;
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint32_t nl;
  const uint8_t *name = wire_get_blob(&r, &nl, BFT_MAX_PROTOCOL_NAME);
  uint32_t count = wire_get_count(&r, 1u << 16);
  if (r.err) return BFT_E_MALFORMED;
  char proto[BFT_MAX_PROTOCOL_NAME + 1];
  memcpy(proto, name, nl);
  proto[nl] = '\0';
  const bft_engine_ops *ops = bft_engine_find(proto);
  if (!ops) return BFT_E_UNSUPPORTED;
  bft_engine_config cfg;
  bft_config_from_cluster(&cfg, c, 0);
  cfg.self = UINT32_MAX; /* a verifier, not a replica: every id may be the offender */
  bft_std_env ectx = {.cluster = c, .kp = NULL};
  bft_engine_env env;
  bft_std_env_bind(&env, &ectx);
  fprintf(out, "replica=%u protocol=%s evidence=%u\n", replica, proto, count);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t offender = wire_get_u32(&r);
    uint8_t kind = wire_get_u8(&r);
    uint64_t view = wire_get_u64(&r);
    uint32_t dl;
    const uint8_t *data = wire_get_blob(&r, &dl, 2 * BFT_MAX_ENGINE_MSG + 8);
    if (r.err) return BFT_E_MALFORMED;
    int rc = offender < c->n ? check_piece(ops, &cfg, &env, offender, kind, data, dl) : BFT_E_UNKNOWN_SENDER;
    const char *kn = ops->msg_name ? ops->msg_name(kind) : NULL;
    fprintf(out, "  offender=%u kind=%s view=%llu bytes=%u %s\n", offender, kn ? kn : "?", (unsigned long long)view, dl,
            rc ? "INVALID" : "valid: two different messages, both signed by the offender");
    if (rc) ++*invalid;
    else ++*valid;
  }
  return wire_reader_finish(&r);
}

/* ---- the snapshot anchor of a pruned ledger (verify-ledger) -------------------------------- */

int bft_snapmeta_fetch(const bft_cluster *c, uint32_t replica, uint32_t timeout_ms, uint8_t **body, uint32_t *len,
                       char *err, size_t errlen) {
  *body = NULL;
  *len = 0;
  uint8_t q[12];
  wire_writer w;
  wire_writer_init(&w, q, sizeof q);
  wire_put_u64(&w, 0);
  wire_put_u32(&w, UINT32_MAX); /* the manifest and certificate of the newest certified snapshot */
  char why[160] = "";
  int rc = bft_client_exchange(c, replica, WIRE_KIND_SNAP_GET, q, (uint32_t)w.len, WIRE_KIND_SNAP_META, timeout_ms,
                               body, len, why, sizeof why);
  if (rc) snprintf(err, errlen, "no snapshot answer from replica %u: %s", replica, why[0] ? why : bft_strerror(rc));
  return rc;
}

static int anchor_verify(void *ctx, uint32_t signer, const uint8_t *msg, uint32_t len, const uint8_t sig[BFT_SIG_LEN]) {
  const bft_cluster *c = ctx;
  if (signer >= c->n) return BFT_E_UNKNOWN_SENDER;
  return bft_verify(c->replicas[signer].pk, c->id, RT_SNAP_TAG, msg, len, sig);
}

int bft_snapmeta_anchor(const bft_cluster *c, const uint8_t *body, uint32_t len, bft_anchor *a, char *err,
                        size_t errlen) {
  memset(a, 0, sizeof *a);
  wire_reader r;
  wire_reader_init(&r, body, len);
  uint64_t height = wire_get_u64(&r);
  uint32_t ml, cl;
  const uint8_t *m = wire_get_blob(&r, &ml, RT_SNAP_MANIFEST_MAX);
  const uint8_t *cert = wire_get_blob(&r, &cl, RT_SNAP_CERT_MAX);
  a->base = wire_get_u64(&r);
  uint32_t bl;
  (void)wire_get_blob(&r, &bl, BFT_MAX_BLOCK_BYTES); /* the replica's block there (for replicas) */
  if (wire_reader_finish(&r) != 0) return snprintf(err, errlen, "malformed snapshot answer"), BFT_E_MALFORMED;
  if (height == 0) return 0;
  rt_snap_stmt cst, mst;
  uint64_t plen;
  uint32_t nch;
  const uint8_t *cd;
  if (rt_snap_cert_verify(cert, cl, c->n, c->f, anchor_verify, (void *)c, &cst) != 0)
    return snprintf(err, errlen, "the snapshot certificate at %llu does not verify", (unsigned long long)height),
           BFT_E_BAD_CERT;
  if (rt_snap_manifest_decode(m, ml, &mst, &plen, &nch, &cd) != 0 || memcmp(&cst, &mst, sizeof cst) != 0 ||
      cst.height != height)
    return snprintf(err, errlen, "the snapshot manifest at %llu is not the certified one", (unsigned long long)height),
           BFT_E_BAD_CERT;
  a->height = height;
  memcpy(a->block_hash, cst.block_hash, BFT_DIGEST_LEN);
  return 0;
}
