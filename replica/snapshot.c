/* Snapshots: capture and apply, manifests, attestation certificates, and the crash-consistent
 * store (files in the data folder, or memory files in the simulator). */
#include "replica/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocols/wire/wire.h"

#define SNAP_MAGIC "BFTSNAP1"
#define STMT_LEN (8 + 3 * BFT_DIGEST_LEN + 4)

void rt_snap_free(rt_snap *s) {
  free(s->manifest);
  free(s->payload);
  free(s->local);
  memset(s, 0, sizeof *s);
}

/* ---- the application adapter: the only calls into the application's snapshot/restore ---- */

int rt_snap_app_snapshot(const bft_app *app, uint8_t **out, size_t *len) {
  return bft_app_snapshot_all(app, out, len);
}

int rt_snap_app_restore(const bft_app *app, uint64_t height, const uint8_t *snap, size_t len) {
  return bft_app_restore_all(app, height, snap, len);
}

/* ---- capture and apply ---------------------------------------------------------------------- */

static void snap_digest_of(const uint8_t *m, uint32_t len, uint8_t out[BFT_DIGEST_LEN]) {
  bft_digest_ctx c;
  bft_digest_init(&c);
  bft_digest_update(&c, "bft/snapshot", 12);
  bft_digest_update(&c, m, len);
  bft_digest_final(&c, out);
}

static int build_manifest(rt_snap *s) {
  uint64_t nchunks = (s->payload_len + RT_SNAP_CHUNK - 1) / RT_SNAP_CHUNK;
  if (s->payload_len > RT_SNAP_MAX_BYTES) return BFT_E_TOO_LARGE;
  uint32_t cap = (uint32_t)(8 + 2 * BFT_DIGEST_LEN + 8 + 4 + nchunks * BFT_DIGEST_LEN);
  s->manifest = malloc(cap);
  if (!s->manifest) return BFT_E_NOMEM;
  wire_writer w;
  wire_writer_init(&w, s->manifest, cap);
  wire_put_u64(&w, s->st.height);
  wire_put_fixed(&w, s->st.block_hash, BFT_DIGEST_LEN);
  wire_put_fixed(&w, s->st.state_digest, BFT_DIGEST_LEN);
  wire_put_u64(&w, s->payload_len);
  wire_put_u32(&w, (uint32_t)nchunks);
  for (uint64_t i = 0; i < nchunks; i++) {
    uint64_t off = i * RT_SNAP_CHUNK;
    uint64_t n = s->payload_len - off < RT_SNAP_CHUNK ? s->payload_len - off : RT_SNAP_CHUNK;
    uint8_t d[BFT_DIGEST_LEN];
    bft_digest(d, s->payload + off, (size_t)n);
    wire_put_fixed(&w, d, BFT_DIGEST_LEN);
  }
  if (w.err) return w.err;
  s->manifest_len = (uint32_t)w.len;
  snap_digest_of(s->manifest, s->manifest_len, s->st.snap_digest);
  return 0;
}

int rt_snap_capture(rt_snap *s, const bft_app *app, const rt_sessions *ss, uint64_t height,
                    const uint8_t block_hash[BFT_DIGEST_LEN], const uint8_t state_digest[BFT_DIGEST_LEN]) {
  memset(s, 0, sizeof *s);
  s->st.height = height;
  memcpy(s->st.block_hash, block_hash, BFT_DIGEST_LEN);
  memcpy(s->st.state_digest, state_digest, BFT_DIGEST_LEN);
  uint8_t *a = NULL;
  size_t alen = 0;
  int rc = rt_snap_app_snapshot(app, &a, &alen);
  if (rc) return rc;
  size_t cap = 4 + alen + 4 + (size_t)ss->n * 16;
  uint64_t local_cap = 4;
  for (uint32_t i = 0; i < ss->n; i++)
    if (ss->s[i].cached) local_cap += 4 + 1 + 4 + ss->s[i].result_len;
  s->payload = malloc(cap);
  s->local = malloc(local_cap);
  if (!s->payload || !s->local || alen > UINT32_MAX || local_cap > UINT32_MAX) {
    free(a);
    rt_snap_free(s);
    return BFT_E_NOMEM;
  }
  wire_writer w;
  wire_writer_init(&w, s->payload, cap);
  wire_put_blob(&w, a, (uint32_t)alen);
  free(a);
  wire_put_u32(&w, ss->n);
  for (uint32_t i = 0; i < ss->n; i++) {
    wire_put_u64(&w, ss->s[i].last_seq);
    wire_put_u64(&w, ss->s[i].height);
  }
  s->payload_len = w.len;
  wire_writer l;
  wire_writer_init(&l, s->local, (size_t)local_cap);
  uint32_t cached = 0;
  wire_put_u32(&l, 0);
  for (uint32_t i = 0; i < ss->n; i++) {
    if (!ss->s[i].cached) continue;
    wire_put_u32(&l, i);
    wire_put_u8(&l, ss->s[i].status);
    wire_put_blob(&l, ss->s[i].result, ss->s[i].result_len);
    cached++;
  }
  for (int i = 0; i < 4; i++) s->local[i] = (uint8_t)(cached >> (8 * i));
  s->local_len = (uint32_t)l.len;
  rc = w.err ? w.err : l.err ? l.err : build_manifest(s);
  if (rc) rt_snap_free(s);
  return rc;
}

int rt_snap_apply(const rt_snap *s, const bft_app *app, rt_sessions *ss, const bft_cluster *cl) {
  wire_reader r;
  wire_reader_init(&r, s->payload, (size_t)s->payload_len);
  uint32_t alen;
  const uint8_t *a = wire_get_blob(&r, &alen, UINT32_MAX);
  uint32_t n = wire_get_u32(&r);
  if (r.err) return r.err;
  if (n != cl->nclients) return BFT_E_MALFORMED; /* another cluster file */
  int rc = rt_snap_app_restore(app, s->st.height, a, alen);
  if (rc) return rc;
  rt_sessions_free(ss);
  if ((rc = rt_sessions_init(ss, cl, 0)) != 0) return rc;
  for (uint32_t i = 0; i < n && !r.err; i++) {
    uint64_t seq = wire_get_u64(&r), h = wire_get_u64(&r);
    if (!r.err && seq) rt_sessions_advance(ss, i, seq, h);
  }
  if ((rc = wire_reader_finish(&r)) != 0) return rc;
  if (!s->local || s->local_len < 4) return 0;
  wire_reader_init(&r, s->local, s->local_len); /* our own cached replies: best effort */
  uint32_t cached = wire_get_u32(&r);
  for (uint32_t k = 0; k < cached && !r.err; k++) {
    uint32_t i = wire_get_u32(&r);
    uint8_t status = wire_get_u8(&r);
    uint32_t rl;
    const uint8_t *res = wire_get_blob(&r, &rl, BFT_MAX_REPLY_BYTES);
    if (!r.err && i < ss->n) (void)rt_sessions_set_result(ss, i, ss->s[i].last_seq, status, res, rl); /* a lost reply is only resent by others */
  }
  return 0;
}

int rt_snap_manifest_decode(const uint8_t *m, uint32_t len, rt_snap_stmt *st, uint64_t *payload_len,
                            uint32_t *nchunks, const uint8_t **chunk_digests) {
  wire_reader r;
  wire_reader_init(&r, m, len);
  st->height = wire_get_u64(&r);
  wire_get_fixed(&r, st->block_hash, BFT_DIGEST_LEN);
  wire_get_fixed(&r, st->state_digest, BFT_DIGEST_LEN);
  *payload_len = wire_get_u64(&r);
  *nchunks = wire_get_u32(&r);
  if (r.err) return r.err;
  if (*payload_len > RT_SNAP_MAX_BYTES || *nchunks != (*payload_len + RT_SNAP_CHUNK - 1) / RT_SNAP_CHUNK)
    return BFT_E_MALFORMED;
  *chunk_digests = m + r.off;
  if (len - r.off != (uint64_t)*nchunks * BFT_DIGEST_LEN) return BFT_E_MALFORMED;
  snap_digest_of(m, len, st->snap_digest);
  return 0;
}

/* ---- attestations and certificates ---------------------------------------------------------- */

void rt_snap_stmt_encode(const rt_snap_stmt *st, uint32_t replica, uint8_t out[STMT_LEN]) {
  wire_writer w;
  wire_writer_init(&w, out, STMT_LEN);
  wire_put_u64(&w, st->height);
  wire_put_fixed(&w, st->block_hash, BFT_DIGEST_LEN);
  wire_put_fixed(&w, st->state_digest, BFT_DIGEST_LEN);
  wire_put_fixed(&w, st->snap_digest, BFT_DIGEST_LEN);
  wire_put_u32(&w, replica);
}

int rt_snap_cert_encode(const rt_snap_stmt *st, uint64_t mask, const uint8_t (*sigs)[BFT_SIG_LEN], uint8_t *out,
                        uint32_t cap) {
  wire_writer w;
  wire_writer_init(&w, out, cap);
  uint8_t stmt[STMT_LEN];
  rt_snap_stmt_encode(st, 0, stmt);
  wire_put_fixed(&w, stmt, STMT_LEN - 4);
  uint32_t count = (uint32_t)__builtin_popcountll(mask);
  wire_put_u32(&w, count);
  for (uint32_t i = 0; i < 64; i++) {
    if (!(mask >> i & 1)) continue;
    wire_put_u32(&w, i);
    wire_put_fixed(&w, sigs[i], BFT_SIG_LEN);
  }
  return w.err ? w.err : (int)w.len;
}

int rt_snap_cert_verify(const uint8_t *cert, uint32_t len, uint32_t n, uint32_t f, rt_snap_verify_fn fn, void *ctx,
                        rt_snap_stmt *st) {
  wire_reader r;
  wire_reader_init(&r, cert, len);
  st->height = wire_get_u64(&r);
  wire_get_fixed(&r, st->block_hash, BFT_DIGEST_LEN);
  wire_get_fixed(&r, st->state_digest, BFT_DIGEST_LEN);
  wire_get_fixed(&r, st->snap_digest, BFT_DIGEST_LEN);
  uint32_t count = wire_get_count(&r, BFT_MAX_REPLICAS);
  if (r.err) return r.err;
  if (count < f + 1) return BFT_E_BAD_CERT;
  uint64_t seen = 0;
  uint32_t prev = 0;
  for (uint32_t k = 0; k < count; k++) {
    uint32_t id = wire_get_u32(&r);
    uint8_t sig[BFT_SIG_LEN];
    wire_get_fixed(&r, sig, BFT_SIG_LEN);
    if (r.err) return r.err;
    if (id >= n || (k && id <= prev) || (seen >> id & 1)) return BFT_E_BAD_CERT; /* ascending, distinct */
    prev = id;
    seen |= 1ull << id;
    uint8_t stmt[STMT_LEN];
    rt_snap_stmt_encode(st, id, stmt);
    if (fn(ctx, id, stmt, STMT_LEN, sig) != 0) return BFT_E_BAD_CERT;
  }
  return wire_reader_finish(&r);
}

/* ---- the store ------------------------------------------------------------------------------ */

static void snap_path(const rt_snap_store *ss, uint64_t h, const char *suffix, char *out, size_t cap) {
  snprintf(out, cap, "%s/snap-%020" PRIu64 "%s", ss->dir, h, suffix);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return BFT_E_IO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* tmp, fsync, rename, fsync of the folder. */
static int write_file_atomic(rt_snap_store *ss, const char *path, const uint8_t *const *parts, const size_t *lens,
                             int nparts) {
  char tmp[RT_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ss->last_errno = errno, BFT_E_IO;
  int rc = 0;
  for (int i = 0; i < nparts && !rc; i++) rc = write_all(fd, parts[i], lens[i]);
  ss->nsyncs++;
  if (!rc && ss->fail_sync_at && ss->nsyncs == ss->fail_sync_at) {
    errno = ENOSPC; /* injected (RT_FAIL_SYNC_ENV) */
    rc = BFT_E_IO;
  }
  if (!rc && fsync(fd) != 0) rc = BFT_E_IO;
  if (rc) ss->last_errno = errno;
  close(fd);
  if (!rc && rename(tmp, path) != 0) rc = BFT_E_IO, ss->last_errno = errno;
  if (!rc) {
    int dfd = open(ss->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) rc = BFT_E_IO, ss->last_errno = errno;
    if (dfd >= 0) close(dfd);
  }
  if (rc) unlink(tmp);
  return rc;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

int rt_snap_store_write(rt_snap_store *ss, const rt_snap *s) {
  uint8_t head[8 + 4], plen[8], llen[4], crcb[4];
  memcpy(head, SNAP_MAGIC, 8);
  put32(head + 8, s->manifest_len);
  put64(plen, s->payload_len);
  put32(llen, s->local_len);
  uint32_t crc = rt_crc32c(0, head, sizeof head);
  crc = rt_crc32c(crc, s->manifest, s->manifest_len);
  crc = rt_crc32c(crc, plen, 8);
  crc = rt_crc32c(crc, s->payload, (size_t)s->payload_len);
  crc = rt_crc32c(crc, llen, 4);
  crc = rt_crc32c(crc, s->local, s->local_len);
  put32(crcb, crc);
  const uint8_t *parts[] = {head, s->manifest, plen, s->payload, llen, s->local, crcb};
  size_t lens[] = {sizeof head, s->manifest_len, 8, (size_t)s->payload_len, 4, s->local_len, 4};
  if (ss->mem) { /* the simulator's disk: the new image replaces the old at once (a rename) */
    size_t total = 0;
    for (int i = 0; i < 7; i++) total += lens[i];
    uint8_t *img = malloc(total ? total : 1);
    if (!img) return BFT_E_NOMEM;
    size_t off = 0;
    for (int i = 0; i < 7; i++) {
      if (lens[i]) memcpy(img + off, parts[i], lens[i]);
      off += lens[i];
    }
    free(ss->mem->data);
    *ss->mem = (rt_memfile){.data = img, .len = total, .cap = total, .synced = total, .syncs = ss->mem->syncs + 1};
    return 0;
  }
  char path[RT_PATH_MAX + 64];
  snap_path(ss, s->st.height, "", path, sizeof path);
  return write_file_atomic(ss, path, parts, lens, 7);
}

int rt_snap_store_write_cert(rt_snap_store *ss, uint64_t height, const uint8_t *cert, uint32_t len) {
  if (ss->mem) {
    uint8_t *img = malloc(len + 8);
    if (!img) return BFT_E_NOMEM;
    put64(img, height);
    memcpy(img + 8, cert, len);
    free(ss->cert_mem->data);
    *ss->cert_mem = (rt_memfile){.data = img, .len = len + 8, .cap = len + 8, .synced = len + 8};
    return 0;
  }
  char path[RT_PATH_MAX + 64];
  snap_path(ss, height, ".cert", path, sizeof path);
  const uint8_t *parts[] = {cert};
  size_t lens[] = {len};
  return write_file_atomic(ss, path, parts, lens, 1);
}

/* Parse a whole snapshot image (copies the parts). */
static int parse_image(const uint8_t *p, size_t len, rt_snap *s) {
  memset(s, 0, sizeof *s);
  if (len < 12 + 8 + 4 + 4 || memcmp(p, SNAP_MAGIC, 8) != 0) return BFT_E_BAD_MAGIC;
  if (rt_crc32c(0, p, len - 4) != get32(p + len - 4)) return BFT_E_BAD_DIGEST;
  uint64_t off = 12, ml = get32(p + 8);
  if (ml > RT_SNAP_MANIFEST_MAX || off + ml + 8 > len - 4) return BFT_E_MALFORMED;
  const uint8_t *m = p + off;
  off += ml;
  uint64_t pl = get64(p + off);
  off += 8;
  if (pl > len || off + pl + 4 > len - 4) return BFT_E_MALFORMED;
  const uint8_t *pay = p + off;
  off += pl;
  uint64_t ll = get32(p + off);
  off += 4;
  if (off + ll != len - 4) return BFT_E_MALFORMED;
  uint64_t plen2;
  uint32_t nch;
  const uint8_t *cd;
  int rc = rt_snap_manifest_decode(m, (uint32_t)ml, &s->st, &plen2, &nch, &cd);
  if (rc) return rc;
  if (plen2 != pl) return BFT_E_MALFORMED;
  s->manifest = malloc(ml ? ml : 1);
  s->payload = malloc(pl ? pl : 1);
  s->local = malloc(ll ? ll : 1);
  if (!s->manifest || !s->payload || !s->local) return rt_snap_free(s), BFT_E_NOMEM;
  memcpy(s->manifest, m, ml);
  memcpy(s->payload, pay, pl);
  memcpy(s->local, p + off, ll);
  s->manifest_len = (uint32_t)ml;
  s->payload_len = pl;
  s->local_len = (uint32_t)ll;
  return 0;
}

static int read_whole(const char *path, uint8_t **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return BFT_E_IO;
  struct stat st;
  int rc = fstat(fd, &st) != 0 ? BFT_E_IO : 0;
  uint8_t *buf = rc ? NULL : malloc(st.st_size ? (size_t)st.st_size : 1);
  size_t got = 0;
  if (!rc && !buf) rc = BFT_E_NOMEM;
  while (!rc && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) rc = BFT_E_IO;
    else got += (size_t)r;
  }
  close(fd);
  if (rc) return free(buf), rc;
  *out = buf;
  *len = got;
  return 0;
}

/* Heights of the snapshots in the folder, descending; returns how many (at most cap). */
static int list_heights(const rt_snap_store *ss, uint64_t *hs, int cap) {
  DIR *d = opendir(ss->dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "snap-", 5) != 0 || strlen(e->d_name) != 25) continue;
    char *end;
    uint64_t h = strtoull(e->d_name + 5, &end, 10);
    if (*end) continue;
    if (n < cap) hs[n++] = h;
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort, descending */
    for (int j = i; j > 0 && hs[j] > hs[j - 1]; j--) {
      uint64_t t = hs[j];
      hs[j] = hs[j - 1];
      hs[j - 1] = t;
    }
  return n;
}

#define SNAP_LIST_MAX 64

int rt_snap_store_load(rt_snap_store *ss, uint64_t max_height, rt_snap *s) {
  if (ss->mem) {
    if (!ss->mem->len) return 1;
    int rc = parse_image(ss->mem->data, ss->mem->len, s);
    if (rc) return rc;
    if (s->st.height > max_height) return rt_snap_free(s), 1;
    return 0;
  }
  uint64_t hs[SNAP_LIST_MAX];
  int n = list_heights(ss, hs, SNAP_LIST_MAX);
  for (int i = 0; i < n; i++) {
    if (hs[i] > max_height) continue;
    char path[RT_PATH_MAX + 64];
    snap_path(ss, hs[i], "", path, sizeof path);
    uint8_t *img;
    size_t len;
    if (read_whole(path, &img, &len) != 0) continue;
    int rc = parse_image(img, len, s);
    free(img);
    if (rc == 0 && s->st.height == hs[i]) return 0;
    if (rc == 0) rt_snap_free(s);
  }
  return 1;
}

int rt_snap_store_load_cert(rt_snap_store *ss, uint64_t height, uint8_t **cert, uint32_t *len) {
  if (ss->mem) {
    if (ss->cert_mem->len < 8 || get64(ss->cert_mem->data) != height) return 1;
    *len = (uint32_t)(ss->cert_mem->len - 8);
    *cert = malloc(*len ? *len : 1);
    if (!*cert) return BFT_E_NOMEM;
    memcpy(*cert, ss->cert_mem->data + 8, *len);
    return 0;
  }
  char path[RT_PATH_MAX + 64];
  snap_path(ss, height, ".cert", path, sizeof path);
  size_t l;
  if (read_whole(path, cert, &l) != 0) return 1;
  if (l > RT_SNAP_CERT_MAX) return free(*cert), 1;
  *len = (uint32_t)l;
  return 0;
}

int rt_snap_store_read_payload(rt_snap_store *ss, uint64_t height, uint64_t off, uint8_t *buf, uint32_t len) {
  if (ss->mem) {
    rt_snap s;
    if (rt_snap_store_load(ss, height, &s) != 0) return BFT_E_STATE;
    int ok = s.st.height == height && off + len <= s.payload_len;
    if (ok) memcpy(buf, s.payload + off, len);
    rt_snap_free(&s);
    return ok ? 0 : BFT_E_STATE;
  }
  char path[RT_PATH_MAX + 64];
  snap_path(ss, height, "", path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return BFT_E_STATE;
  uint8_t h[12];
  int rc = pread(fd, h, 12, 0) == 12 ? 0 : BFT_E_IO;
  uint64_t base = 12 + (uint64_t)get32(h + 8) + 8;
  size_t got = 0;
  while (!rc && got < len) {
    ssize_t r = pread(fd, buf + got, len - got, (off_t)(base + off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) rc = BFT_E_IO;
    else got += (size_t)r;
  }
  close(fd);
  return rc;
}

void rt_snap_store_prune(rt_snap_store *ss, uint64_t keep1, uint64_t keep2) {
  if (ss->mem) return; /* one snapshot at most */
  uint64_t hs[SNAP_LIST_MAX];
  int n = list_heights(ss, hs, SNAP_LIST_MAX);
  for (int i = 0; i < n; i++) {
    if (hs[i] == keep1 || hs[i] == keep2) continue;
    char path[RT_PATH_MAX + 64];
    snap_path(ss, hs[i], ".cert", path, sizeof path);
    unlink(path);
    snap_path(ss, hs[i], "", path, sizeof path);
    unlink(path); /* the data goes last: a snapshot without its certificate is still ours */
  }
}
