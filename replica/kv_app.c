/* Key-value store: open addressing with linear probing and backward-shift deletion, keyed
 * SipHash against hash flooding, and a set-hash state digest updated per operation. */
#include "replica/kv_app.h"

#include <stdlib.h>
#include <string.h>

#include "protocols/kv.h"
#include "protocols/wire/wire.h"
#include "replica/rt_limits.h"

#define KV_ENTRY_OVERHEAD 64u /* accounted per entry besides key and value */
#define KV_MIN_CAP 1024u
#define KV_SNAPSHOT_VERSION 1

/* ---- 256-bit set hash ----------------------------------------------------------------------- */

static void sum_add(uint8_t s[BFT_DIGEST_LEN], const uint8_t h[BFT_DIGEST_LEN]) {
  unsigned carry = 0;
  for (int i = 0; i < BFT_DIGEST_LEN; i++) {
    unsigned v = (unsigned)s[i] + h[i] + carry;
    s[i] = (uint8_t)v;
    carry = v >> 8;
  }
}

static void sum_sub(uint8_t s[BFT_DIGEST_LEN], const uint8_t h[BFT_DIGEST_LEN]) {
  int borrow = 0;
  for (int i = 0; i < BFT_DIGEST_LEN; i++) {
    int v = (int)s[i] - h[i] - borrow;
    borrow = v < 0;
    s[i] = (uint8_t)(v + (borrow ? 256 : 0));
  }
}

static void entry_hash(uint8_t out[BFT_DIGEST_LEN], const uint8_t *k, uint32_t kl, const uint8_t *v,
                       uint32_t vl) {
  uint8_t lens[8];
  for (int i = 0; i < 4; i++) {
    lens[i] = (uint8_t)(kl >> (8 * i));
    lens[4 + i] = (uint8_t)(vl >> (8 * i));
  }
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft/kv/entry", 12);
  bft_digest_update(&c, lens, sizeof lens);
  bft_digest_update(&c, k, kl);
  bft_digest_update(&c, v, vl);
  bft_digest_final(&c, out);
}

/* ---- table ---------------------------------------------------------------------------------- */

static uint64_t key_hash(const rt_kv *kv, const uint8_t *k, uint32_t kl) {
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, k, kl, kv->sipkey);
  uint64_t h = 0;
  for (int i = 0; i < 8; i++) h |= (uint64_t)out[i] << (8 * i);
  return h;
}

/* Slot holding key, or the empty slot where it would go. */
static uint64_t find_slot(const rt_kv *kv, const uint8_t *k, uint32_t kl, uint64_t h) {
  uint64_t mask = kv->cap - 1;
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    const rt_kv_entry *e = &kv->slots[i];
    if (!e->kv) return i;
    if (e->hash == h && e->klen == kl && memcmp(e->kv, k, kl) == 0) return i;
  }
}

static int grow(rt_kv *kv) {
  uint64_t ncap = kv->cap * 2;
  rt_kv_entry *ns = calloc(ncap, sizeof *ns);
  if (!ns) return BFT_E_NOMEM;
  rt_kv_entry *old = kv->slots;
  uint64_t ocap = kv->cap;
  kv->slots = ns;
  kv->cap = ncap;
  for (uint64_t i = 0; i < ocap; i++) {
    if (!old[i].kv) continue;
    uint64_t mask = ncap - 1, j = old[i].hash & mask;
    while (ns[j].kv) j = (j + 1) & mask;
    ns[j] = old[i];
  }
  free(old);
  return 0;
}

static void remove_slot(rt_kv *kv, uint64_t i) {
  rt_kv_entry *e = &kv->slots[i];
  sum_sub(kv->sum, e->h);
  kv->bytes -= (uint64_t)e->klen + e->vlen + KV_ENTRY_OVERHEAD;
  kv->count--;
  free(e->kv);
  memset(e, 0, sizeof *e);
  /* Backward shift: pull later members of the probe run into the hole. */
  uint64_t mask = kv->cap - 1, hole = i;
  for (uint64_t j = (i + 1) & mask; kv->slots[j].kv; j = (j + 1) & mask) {
    uint64_t home = kv->slots[j].hash & mask;
    int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      kv->slots[hole] = kv->slots[j];
      memset(&kv->slots[j], 0, sizeof kv->slots[j]);
      hole = j;
    }
  }
}

/* Insert or replace. BFT_E_FULL when the store's bounds refuse it. */
static int kv_set(rt_kv *kv, const uint8_t *k, uint32_t kl, const uint8_t *v, uint32_t vl) {
  uint64_t h = key_hash(kv, k, kl);
  uint64_t i = find_slot(kv, k, kl, h);
  rt_kv_entry *e = &kv->slots[i];
  uint64_t old_bytes = e->kv ? (uint64_t)e->klen + e->vlen + KV_ENTRY_OVERHEAD : 0;
  uint64_t new_bytes = (uint64_t)kl + vl + KV_ENTRY_OVERHEAD;
  if (!e->kv && kv->count >= kv->max_keys) return BFT_E_FULL;
  if (kv->bytes - old_bytes + new_bytes > kv->max_bytes) return BFT_E_FULL;
  if (!e->kv && (kv->count + 1) * 2 > kv->cap) { /* keep the load at most 1/2 */
    int rc = grow(kv);
    if (rc) return rc;
    i = find_slot(kv, k, kl, h);
    e = &kv->slots[i];
  }
  uint8_t *mem = malloc((size_t)kl + vl + 1);
  if (!mem) return BFT_E_NOMEM;
  memcpy(mem, k, kl);
  if (vl) memcpy(mem + kl, v, vl);
  if (e->kv) {
    sum_sub(kv->sum, e->h);
    free(e->kv);
    kv->bytes -= old_bytes;
  } else {
    kv->count++;
  }
  e->kv = mem;
  e->klen = kl;
  e->vlen = vl;
  e->hash = h;
  entry_hash(e->h, k, kl, v, vl);
  sum_add(kv->sum, e->h);
  kv->bytes += new_bytes;
  return 0;
}

const uint8_t *rt_kv_lookup(const rt_kv *kv, const uint8_t *key, uint32_t klen, uint32_t *vlen) {
  uint64_t i = find_slot(kv, key, klen, key_hash(kv, key, klen));
  const rt_kv_entry *e = &kv->slots[i];
  if (!e->kv) return NULL;
  *vlen = e->vlen;
  return e->kv + e->klen;
}

int rt_kv_init(rt_kv *kv, uint64_t max_keys, uint64_t max_bytes) {
  memset(kv, 0, sizeof *kv);
  kv->max_keys = max_keys ? max_keys : RT_KV_MAX_KEYS;
  kv->max_bytes = max_bytes ? max_bytes : RT_KV_MAX_BYTES;
  kv->cap = KV_MIN_CAP;
  kv->slots = calloc(kv->cap, sizeof *kv->slots);
  if (!kv->slots) return BFT_E_NOMEM;
  crypto_shorthash_keygen(kv->sipkey);
  return 0;
}

static void kv_clear(rt_kv *kv) {
  for (uint64_t i = 0; i < kv->cap; i++) free(kv->slots[i].kv);
  memset(kv->slots, 0, kv->cap * sizeof *kv->slots);
  memset(kv->sum, 0, sizeof kv->sum);
  kv->count = kv->bytes = 0;
}

void rt_kv_free(rt_kv *kv) {
  free(kv->restoring);
  kv->restoring = NULL;
  if (kv->slots) kv_clear(kv);
  free(kv->slots);
  kv->slots = NULL;
}

/* ---- operations ---------------------------------------------------------------------------- */

static void text_result(bft_app_result *r, uint8_t status, const char *msg) {
  size_t l = strlen(msg);
  memcpy(r->data, msg, l);
  r->status = status;
  r->len = (uint32_t)l;
}

static void value_result(bft_app_result *r, uint8_t status, const uint8_t *v, uint32_t vl) {
  if (vl) memcpy(r->data, v, vl);
  r->status = status;
  r->len = vl;
}

static void set_result(bft_app_result *r, int rc) {
  if (rc == BFT_E_FULL) text_result(r, BFT_KV_REJECTED, "key-value store full");
  else if (rc) text_result(r, BFT_KV_REJECTED, "replica out of memory");
  else value_result(r, BFT_KV_OK, NULL, 0);
}

static void exec_one(rt_kv *kv, const uint8_t *p, uint32_t len, bft_app_result *res) {
  bft_kv_op op;
  if (bft_kv_decode(p, len, &op) != 0) return text_result(res, BFT_KV_BAD_OP, "malformed operation");
  uint32_t vl = 0;
  const uint8_t *cur = rt_kv_lookup(kv, op.key, op.key_len, &vl);
  switch (op.opcode) {
    case BFT_KV_PUT:
      return set_result(res, kv_set(kv, op.key, op.key_len, op.value, op.value_len));
    case BFT_KV_GET:
      return cur ? value_result(res, BFT_KV_OK, cur, vl) : value_result(res, BFT_KV_NOT_FOUND, NULL, 0);
    case BFT_KV_DEL:
      if (!cur) return value_result(res, BFT_KV_NOT_FOUND, NULL, 0);
      remove_slot(kv, find_slot(kv, op.key, op.key_len, key_hash(kv, op.key, op.key_len)));
      return value_result(res, BFT_KV_OK, NULL, 0);
    case BFT_KV_CAS:
      if (!cur || vl != op.expected_len || (vl && memcmp(cur, op.expected, vl) != 0))
        return value_result(res, BFT_KV_CAS_FAILED, cur, cur ? vl : 0);
      return set_result(res, kv_set(kv, op.key, op.key_len, op.value, op.value_len));
    default:
      return text_result(res, BFT_KV_BAD_OP, "unknown opcode");
  }
}

static int kv_execute(void *app, uint64_t height, const bft_app_op *ops, uint32_t n, bft_app_result *res) {
  rt_kv *kv = app;
  for (uint32_t i = 0; i < n; i++) exec_one(kv, ops[i].op, ops[i].len, &res[i]);
  return 0;
}

/* A stale read: a GET encoding answered from the current state. */
static int kv_query(void *app, const uint8_t *q, uint32_t len, bft_app_result *res) {
  rt_kv *kv = app;
  bft_kv_op op;
  if (bft_kv_decode(q, len, &op) != 0 || op.opcode != BFT_KV_GET) {
    text_result(res, BFT_KV_BAD_OP, "a query is a get");
    return 0;
  }
  exec_one(kv, q, len, res);
  return 0;
}

static void kv_digest(void *app, uint8_t out[BFT_DIGEST_LEN]) {
  const rt_kv *kv = app;
  uint8_t cnt[8];
  for (int i = 0; i < 8; i++) cnt[i] = (uint8_t)(kv->count >> (8 * i));
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft/kv/state", 12);
  bft_digest_update(&c, cnt, sizeof cnt);
  bft_digest_update(&c, kv->sum, sizeof kv->sum);
  bft_digest_final(&c, out);
}

/* ---- snapshot: u8 version | u64 count | count x (blob key | blob value), keys ascending ----- */

static int entry_cmp(const void *a, const void *b) {
  const rt_kv_entry *x = *(const rt_kv_entry *const *)a, *y = *(const rt_kv_entry *const *)b;
  uint32_t m = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->kv, y->kv, m);
  if (c) return c;
  return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static int kv_encode(const rt_kv *kv, uint8_t **out, size_t *len) {
  const rt_kv_entry **v = malloc((kv->count ? kv->count : 1) * sizeof *v);
  size_t cap = 9 + kv->count * 8 + kv->bytes;
  uint8_t *buf = malloc(cap);
  if (!v || !buf) return free(v), free(buf), BFT_E_NOMEM;
  uint64_t n = 0;
  for (uint64_t i = 0; i < kv->cap; i++)
    if (kv->slots[i].kv) v[n++] = &kv->slots[i];
  qsort(v, n, sizeof *v, entry_cmp);
  wire_writer w;
  wire_writer_init(&w, buf, cap);
  wire_put_u8(&w, KV_SNAPSHOT_VERSION);
  wire_put_u64(&w, n);
  for (uint64_t i = 0; i < n; i++) {
    wire_put_blob(&w, v[i]->kv, v[i]->klen);
    wire_put_blob(&w, v[i]->kv + v[i]->klen, v[i]->vlen);
  }
  free(v);
  if (w.err) return free(buf), w.err;
  *out = buf;
  *len = w.len;
  return 0;
}

static int kv_decode(rt_kv *kv, const uint8_t *snap, size_t len) {
  kv_clear(kv);
  if (len == 0) return 0; /* no chunks: the initial, empty store */
  wire_reader r;
  wire_reader_init(&r, snap, len);
  uint8_t ver = wire_get_u8(&r);
  uint64_t n = wire_get_u64(&r);
  int rc = r.err ? r.err : ver != KV_SNAPSHOT_VERSION ? BFT_E_VERSION : n > kv->max_keys ? BFT_E_TOO_LARGE : 0;
  const uint8_t *prev = NULL;
  uint32_t prevl = 0;
  for (uint64_t i = 0; i < n && !rc; i++) {
    uint32_t kl, vl;
    const uint8_t *k = wire_get_blob(&r, &kl, BFT_KV_MAX_KEY);
    const uint8_t *v = wire_get_blob(&r, &vl, BFT_KV_MAX_VALUE);
    if (r.err) rc = r.err;
    else if (prev) { /* canonical: strictly ascending keys */
      uint32_t m = prevl < kl ? prevl : kl;
      int c = memcmp(prev, k, m);
      if (c > 0 || (c == 0 && prevl >= kl)) rc = BFT_E_MALFORMED;
    }
    if (!rc) rc = kv_set(kv, k, kl, v, vl);
    prev = k;
    prevl = kl;
  }
  if (!rc) rc = wire_reader_finish(&r);
  if (rc) kv_clear(kv);
  return rc;
}

/* The snapshot is encoded whole at begin (a consistent copy while execution goes on) and
 * handed out in chunks; a restore collects its chunks (bounded by the store's byte limit)
 * and decodes them at end. */
typedef struct kv_cursor {
  uint8_t *buf;
  size_t len, off;
} kv_cursor;

static int kv_snapshot_begin(void *app, void **cursor) {
  kv_cursor *k = calloc(1, sizeof *k);
  if (!k) return BFT_E_NOMEM;
  int rc = kv_encode(app, &k->buf, &k->len);
  if (rc) return free(k), rc;
  *cursor = k;
  return 0;
}

static int kv_snapshot_next(void *app, void *cursor, uint8_t *buf, uint32_t cap, uint32_t *len, int *done) {
  kv_cursor *k = cursor;
  size_t l = k->len - k->off < cap ? k->len - k->off : cap;
  memcpy(buf, k->buf + k->off, l);
  k->off += l;
  *len = (uint32_t)l;
  *done = k->off == k->len;
  return 0;
}

static void kv_snapshot_end(void *app, void *cursor) {
  kv_cursor *k = cursor;
  if (!k) return;
  free(k->buf);
  free(k);
}

static int kv_restore_begin(void *app, uint64_t height) {
  rt_kv *kv = app;
  kv_clear(kv);
  free(kv->restoring);
  kv->restoring = NULL;
  kv->restoring_len = kv->restoring_cap = 0;
  kv->restore_active = 1;
  return 0;
}

static int kv_restore_chunk(void *app, const uint8_t *p, uint32_t len) {
  rt_kv *kv = app;
  if (!kv->restore_active) return BFT_E_STATE;
  if (kv->restoring_len + len > 9 + kv->max_keys * 8 + kv->max_bytes) return BFT_E_TOO_LARGE;
  if (kv->restoring_len + len > kv->restoring_cap) {
    size_t nc = kv->restoring_cap ? kv->restoring_cap * 2 : 1u << 16;
    while (nc < kv->restoring_len + len) nc *= 2;
    uint8_t *nb = realloc(kv->restoring, nc);
    if (!nb) return BFT_E_NOMEM;
    kv->restoring = nb;
    kv->restoring_cap = nc;
  }
  memcpy(kv->restoring + kv->restoring_len, p, len);
  kv->restoring_len += len;
  return 0;
}

static int kv_restore_end(void *app) {
  rt_kv *kv = app;
  if (!kv->restore_active) return BFT_E_STATE;
  int rc = kv_decode(kv, kv->restoring, kv->restoring_len);
  free(kv->restoring);
  kv->restoring = NULL;
  kv->restoring_len = kv->restoring_cap = 0;
  kv->restore_active = 0;
  return rc;
}

const bft_app_ops rt_kv_app_ops = {
    .name = "kv",
    .execute = kv_execute,
    .digest = kv_digest,
    .snapshot_begin = kv_snapshot_begin,
    .snapshot_next = kv_snapshot_next,
    .snapshot_end = kv_snapshot_end,
    .restore_begin = kv_restore_begin,
    .restore_chunk = kv_restore_chunk,
    .restore_end = kv_restore_end,
    .query = kv_query,
};

void rt_kv_app(bft_app *app, rt_kv *kv) {
  app->ops = &rt_kv_app_ops;
  app->state = kv;
}

int bft_app_kv_new(bft_app *out) {
  if (bft_crypto_init() != 0) return BFT_E_CRYPTO;
  rt_kv *kv = malloc(sizeof *kv);
  if (!kv) return BFT_E_NOMEM;
  int rc = rt_kv_init(kv, 0, 0);
  if (rc) {
    rt_kv_free(kv);
    free(kv);
    return rc;
  }
  rt_kv_app(out, kv);
  return 0;
}

void bft_app_kv_free(bft_app *app) {
  if (!app || !app->state) return;
  rt_kv_free(app->state);
  free(app->state);
  app->state = NULL;
}
