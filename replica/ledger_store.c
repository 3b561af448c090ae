/* Ledger file: checksummed records of hash-chained blocks plus an offset index. */
#include "replica/ledger_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bft_crypto.h"

typedef struct open_ctx {
  rt_ledger *l;
  rt_block_fn fn;
  void *arg;
  char why[160];
} open_ctx;

static int index_push(rt_ledger *l, uint64_t off) {
  if (l->head - l->base == l->offs_cap) {
    uint64_t cap = l->offs_cap ? l->offs_cap * 2 : 1024;
    uint64_t *n = realloc(l->offs, cap * sizeof *n);
    if (!n) return BFT_E_NOMEM;
    l->offs = n;
    l->offs_cap = cap;
  }
  l->offs[l->head - l->base] = off;
  return 0;
}

/* Structure, height, chain link and batch digest; the certificate is checked when a block is
 * accepted (our own commits, or fetched blocks), not again when reading our own file. */
static int check_block(const rt_ledger *l, const uint8_t *p, uint32_t len, bft_block *b, char *why,
                       size_t whylen) {
  int rc = bft_block_decode(p, len, b);
  if (rc) return snprintf(why, whylen, "undecodable block"), rc;
  if (b->height != l->head + 1)
    return snprintf(why, whylen, "height %llu after %llu", (unsigned long long)b->height,
                    (unsigned long long)l->head),
           BFT_E_MALFORMED;
  if (memcmp(b->prev_hash, l->head_hash, BFT_DIGEST_LEN) != 0)
    return snprintf(why, whylen, "block %llu does not chain to its predecessor",
                    (unsigned long long)b->height),
           BFT_E_BAD_DIGEST;
  uint8_t d[BFT_DIGEST_LEN];
  if (b->height <= l->trust_upto) return 0;
  bft_digest(d, b->batch, b->batch_len);
  if (memcmp(d, b->batch_digest, BFT_DIGEST_LEN) != 0)
    return snprintf(why, whylen, "block %llu batch digest mismatch", (unsigned long long)b->height),
           BFT_E_BAD_DIGEST;
  return 0;
}

static int on_record(void *arg, uint64_t off, const uint8_t *data, uint32_t len) {
  open_ctx *c = arg;
  rt_ledger *l = c->l;
  if (len > 0 && data[0] == RT_LEDGER_BASE_TAG) { /* only as the first record */
    if (off != 0 || len != 1 + 8 + BFT_DIGEST_LEN)
      return snprintf(c->why, sizeof c->why, "misplaced base record"), BFT_E_MALFORMED;
    uint64_t base = 0;
    for (int i = 0; i < 8; i++) base |= (uint64_t)data[1 + i] << (8 * i);
    l->base = l->head = base;
    memcpy(l->base_hash, data + 9, BFT_DIGEST_LEN);
    memcpy(l->head_hash, data + 9, BFT_DIGEST_LEN);
    return 0;
  }
  bft_block b;
  int rc = check_block(l, data, len, &b, c->why, sizeof c->why);
  if (rc) return rc;
  if (c->fn && (rc = c->fn(c->arg, &b)) != 0) {
    snprintf(c->why, sizeof c->why, "block %llu could not be re-executed", (unsigned long long)b.height);
    return rc;
  }
  if ((rc = index_push(l, off)) != 0) return rc;
  l->head++;
  bft_block_hash(data, len, l->head_hash);
  return 0;
}

static int ledger_open(rt_ledger *l, const char *dir, rt_memfile *mem, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                       uint64_t trust_upto, rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen) {
  memset(l, 0, sizeof *l);
  l->f.fd = -1;
  l->trust_upto = trust_upto;
  memcpy(l->cluster_id, cluster_id, BFT_CLUSTER_ID_LEN);
  memcpy(l->head_hash, cluster_id, BFT_DIGEST_LEN);
  memcpy(l->base_hash, cluster_id, BFT_DIGEST_LEN);
  l->enc = malloc(BFT_MAX_BLOCK_BYTES);
  if (!l->enc) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  char path[RT_PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/ledger", dir) >= sizeof path) {
    snprintf(err, errlen, "%s: path too long", dir);
    rt_ledger_close(l);
    return BFT_E_INVAL;
  }
  open_ctx c = {.l = l, .fn = fn, .arg = arg};
  int rc = mem ? rt_recfile_open_mem(&l->f, mem, path, RT_LEDGER_MAX_RECORD, on_record, &c, torn, err, errlen)
               : rt_recfile_open(&l->f, path, RT_LEDGER_MAX_RECORD, on_record, &c, torn, err, errlen);
  if (rc) {
    size_t n = strlen(err);
    if (c.why[0] && n + 3 < errlen) snprintf(err + n, errlen - n, " (%s)", c.why);
    rt_ledger_close(l);
  }
  return rc;
}

int rt_ledger_open(rt_ledger *l, const char *dir, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                   rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen) {
  return ledger_open(l, dir, NULL, cluster_id, 0, fn, arg, torn, err, errlen);
}

int rt_ledger_open_trusting(rt_ledger *l, const char *dir, rt_memfile *mem, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                            uint64_t trust_upto, rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen) {
  return ledger_open(l, mem ? "mem:" : dir, mem, cluster_id, trust_upto, fn, arg, torn, err, errlen);
}

int rt_ledger_open_mem(rt_ledger *l, rt_memfile *mem, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN],
                       rt_block_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen) {
  return ledger_open(l, "mem:", mem, cluster_id, 0, fn, arg, torn, err, errlen);
}

int rt_ledger_append(rt_ledger *l, bft_block *b) {
  if (b->height != l->head + 1) return BFT_E_STATE;
  memcpy(b->prev_hash, l->head_hash, BFT_DIGEST_LEN);
  int len = bft_block_encode(b, l->enc, BFT_MAX_BLOCK_BYTES);
  if (len < 0) return len;
  uint64_t off;
  int rc = rt_recfile_append(&l->f, l->enc, (uint32_t)len, &off);
  if (rc) return rc;
  if ((rc = index_push(l, off)) != 0) return rc;
  l->head++;
  bft_block_hash(l->enc, (uint32_t)len, l->head_hash);
  return 0;
}

int rt_ledger_read(rt_ledger *l, uint64_t height, uint8_t *buf, uint32_t cap, uint32_t *len) {
  if (height <= l->base || height > l->head) return BFT_E_INVAL;
  return rt_recfile_read(&l->f, l->offs[height - l->base - 1], buf, cap, len);
}

int rt_ledger_rebase(rt_ledger *l, uint64_t base, const uint8_t hash[BFT_DIGEST_LEN]) {
  if (base < l->base || rt_recfile_dirty(&l->f)) return BFT_E_STATE;
  uint64_t keep = base < l->head ? l->head - base : 0;
  if (keep > UINT32_MAX - 1) return BFT_E_TOO_LARGE;
  const uint8_t **recs = calloc(keep + 1, sizeof *recs);
  uint32_t *lens = calloc(keep + 1, sizeof *lens);
  uint8_t baserec[1 + 8 + BFT_DIGEST_LEN];
  int rc = (!recs || !lens) ? BFT_E_NOMEM : 0;
  baserec[0] = RT_LEDGER_BASE_TAG;
  for (int i = 0; i < 8; i++) baserec[1 + i] = (uint8_t)(base >> (8 * i));
  memcpy(baserec + 9, hash, BFT_DIGEST_LEN);
  if (!rc) {
    recs[0] = baserec;
    lens[0] = sizeof baserec;
  }
  for (uint64_t i = 0; i < keep && !rc; i++) { /* the blocks kept, read back from the file */
    uint8_t *buf = malloc(BFT_MAX_BLOCK_BYTES);
    if (!buf) rc = BFT_E_NOMEM;
    else rc = rt_ledger_read(l, base + 1 + i, buf, BFT_MAX_BLOCK_BYTES, &lens[1 + i]);
    recs[1 + i] = buf;
  }
  if (!rc) rc = rt_recfile_rewrite(&l->f, recs, lens, (uint32_t)(keep + 1));
  if (!rc) { /* the new index: records follow one another from offset 0 */
    uint64_t off = RT_RECORD_HEADER + sizeof baserec;
    for (uint64_t i = 0; i < keep; i++) {
      l->offs[i] = off;
      off += RT_RECORD_HEADER + lens[1 + i];
    }
    l->base = base;
    memcpy(l->base_hash, hash, BFT_DIGEST_LEN);
    if (keep == 0) {
      l->head = base;
      memcpy(l->head_hash, hash, BFT_DIGEST_LEN);
    }
  }
  for (uint64_t i = 0; i < keep; i++) free((void *)recs[1 + i]);
  free(recs);
  free(lens);
  return rc;
}

int rt_ledger_sync(rt_ledger *l) { return rt_recfile_sync(&l->f); }
int rt_ledger_dirty(const rt_ledger *l) { return rt_recfile_dirty(&l->f); }

void rt_ledger_close(rt_ledger *l) {
  rt_recfile_close(&l->f);
  free(l->offs);
  free(l->enc);
  l->offs = NULL;
  l->enc = NULL;
}
