/* Vote sets and quorum certificates shared by every engine (layouts in quorum.h). */
#include "protocols/quorum.h"

#include <string.h>

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bft_stmt_make(uint8_t out[BFT_STMT_MAX], const uint8_t *body, uint32_t body_len, uint32_t replica) {
  if (body_len > BFT_STMT_MAX - 4) return BFT_E_FULL;
  memcpy(out, body, body_len);
  for (int i = 0; i < 4; i++) out[body_len + (uint32_t)i] = (uint8_t)(replica >> (8 * i));
  return (int)(body_len + 4);
}

void bft_qc_put(wire_writer *w, const bft_qc *c) {
  uint32_t n = c ? c->count : 0;
  BFT_ASSERT(n <= BFT_QUORUM_MAX);
  wire_put_u32(w, n);
  for (uint32_t i = 0; i < n; i++) {
    wire_put_u32(w, c->ids[i]);
    wire_put_fixed(w, c->sigs[i], BFT_SIG_LEN);
  }
}

void bft_qc_get(wire_reader *r, bft_qc_view *v) {
  v->count = wire_get_count(r, BFT_QUORUM_MAX);
  v->p = wire_get_view(r, (size_t)v->count * BFT_QC_ENTRY);
  if (!v->p) v->count = 0;
}

void bft_qc_from_view(const bft_qc_view *v, bft_qc *c) {
  memset(c, 0, sizeof *c);
  uint32_t n = v->p && v->count <= BFT_QUORUM_MAX ? v->count : 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = v->p + (size_t)i * BFT_QC_ENTRY;
    c->ids[i] = le32(e);
    memcpy(c->sigs[i], e + 4, BFT_SIG_LEN);
  }
  c->count = n;
}

/* The shared check over (id, sig) pairs, wherever they live. */
static int verify_pairs(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag,
                        const uint8_t *body, uint32_t body_len, uint32_t count, const uint32_t *ids,
                        const uint8_t *const *sigs, uint32_t need) {
  uint32_t q = bft_quorum(cfg);
  /* (an n beyond the key table would make env->verify read past it) */
  if (count != q || cfg->n > BFT_MAX_REPLICAS || body_len > BFT_STMT_MAX - 4) return BFT_E_BAD_CERT;
  int have_need = need == UINT32_MAX;
  for (uint32_t i = 0; i < q; i++) { /* cheap structure first */
    if (ids[i] >= cfg->n || (i > 0 && ids[i] <= ids[i - 1])) return BFT_E_BAD_CERT;
    if (ids[i] == need) have_need = 1;
  }
  if (!have_need) return BFT_E_BAD_CERT;
  uint8_t st[BFT_STMT_MAX];
  for (uint32_t i = 0; i < q; i++) {
    int len = bft_stmt_make(st, body, body_len, ids[i]);
    if (len < 0 || env->verify(env->ctx, ids[i], tag, st, (uint32_t)len, sigs[i]) != 0) return BFT_E_BAD_CERT;
  }
  return 0;
}

int bft_qc_verify(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, const uint8_t *body,
                  uint32_t body_len, const bft_qc_view *v, uint32_t need) {
  if (!v->p || v->count != bft_quorum(cfg) || v->count > BFT_QUORUM_MAX) return BFT_E_BAD_CERT;
  uint32_t ids[BFT_QUORUM_MAX];
  const uint8_t *sigs[BFT_QUORUM_MAX];
  for (uint32_t i = 0; i < v->count; i++) {
    ids[i] = le32(v->p + (size_t)i * BFT_QC_ENTRY);
    sigs[i] = v->p + (size_t)i * BFT_QC_ENTRY + 4;
  }
  return verify_pairs(cfg, env, tag, body, body_len, v->count, ids, sigs, need);
}

int bft_qc_verify_qc(const bft_engine_config *cfg, const bft_engine_env *env, const char *tag, const uint8_t *body,
                     uint32_t body_len, const bft_qc *c, uint32_t need) {
  if (c->count != bft_quorum(cfg) || c->count > BFT_QUORUM_MAX) return BFT_E_BAD_CERT;
  const uint8_t *sigs[BFT_QUORUM_MAX];
  for (uint32_t i = 0; i < c->count; i++) sigs[i] = c->sigs[i];
  return verify_pairs(cfg, env, tag, body, body_len, c->count, c->ids, sigs, need);
}

/* ---- vote sets ---------------------------------------------------------------------------- */

void bft_voteset_clear(bft_voteset *vs) { memset(vs, 0, sizeof *vs); }

static int vote_is(const bft_vote *v, uint64_t round, uint64_t height, const uint8_t digest[BFT_DIGEST_LEN]) {
  return v->valid && v->round == round && v->height == height && memcmp(v->digest, digest, BFT_DIGEST_LEN) == 0;
}

void bft_voteset_set(bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                     const uint8_t digest[BFT_DIGEST_LEN], const uint8_t sig[BFT_SIG_LEN]) {
  BFT_ASSERT(replica < BFT_MAX_REPLICAS);
  bft_vote *v = &vs->v[replica];
  v->valid = 1;
  v->round = round;
  v->height = height;
  memcpy(v->digest, digest, BFT_DIGEST_LEN);
  memcpy(v->sig, sig, BFT_SIG_LEN);
}

void bft_voteset_forget(bft_voteset *vs, uint32_t replica) {
  BFT_ASSERT(replica < BFT_MAX_REPLICAS);
  memset(&vs->v[replica], 0, sizeof vs->v[replica]);
}

int bft_voteset_add(bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                    const uint8_t digest[BFT_DIGEST_LEN], const uint8_t sig[BFT_SIG_LEN]) {
  BFT_ASSERT(replica < BFT_MAX_REPLICAS);
  const bft_vote *v = &vs->v[replica];
  if (v->valid) {
    if (vote_is(v, round, height, digest)) return BFT_VOTE_SAME;
    if (round < v->round || (round == v->round && height < v->height)) return BFT_VOTE_STALE;
    if (round == v->round && height == v->height) return BFT_VOTE_CONFLICT;
  }
  bft_voteset_set(vs, replica, round, height, digest, sig);
  return BFT_VOTE_NEW;
}

uint32_t bft_voteset_count(const bft_voteset *vs, uint32_t n, uint64_t round, uint64_t height,
                           const uint8_t digest[BFT_DIGEST_LEN]) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n && i < BFT_MAX_REPLICAS; i++) k += (uint32_t)vote_is(&vs->v[i], round, height, digest);
  return k;
}

uint32_t bft_voteset_count_any(const bft_voteset *vs, uint32_t n, uint64_t round, uint64_t height) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n && i < BFT_MAX_REPLICAS; i++)
    k += (uint32_t)(vs->v[i].valid && vs->v[i].round == round && vs->v[i].height == height);
  return k;
}

int bft_voteset_has(const bft_voteset *vs, uint32_t replica, uint64_t round, uint64_t height,
                    const uint8_t digest[BFT_DIGEST_LEN]) {
  return replica < BFT_MAX_REPLICAS && vote_is(&vs->v[replica], round, height, digest);
}

int bft_voteset_qc(const bft_voteset *vs, const bft_engine_config *cfg, uint64_t round, uint64_t height,
                   const uint8_t digest[BFT_DIGEST_LEN], uint32_t need, bft_qc *out) {
  uint32_t q = bft_quorum(cfg);
  BFT_ASSERT(cfg->n <= BFT_MAX_REPLICAS && q <= BFT_QUORUM_MAX);
  memset(out, 0, sizeof *out);
  if (need != UINT32_MAX && !bft_voteset_has(vs, need, round, height, digest)) return 0;
  uint32_t room = need == UINT32_MAX ? q : q - 1, others = 0;
  for (uint32_t i = 0; i < cfg->n && out->count < q; i++) {
    int take = i == need || (others < room && vote_is(&vs->v[i], round, height, digest));
    if (!take) continue;
    if (i != need) others++;
    out->ids[out->count] = i;
    memcpy(out->sigs[out->count], vs->v[i].sig, BFT_SIG_LEN);
    out->count++;
  }
  if (out->count < q) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  return 1;
}
