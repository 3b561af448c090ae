/* Checksummed append-only record files with torn-tail recovery and atomic rewrite. */
#include "replica/recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/bft_err.h"

#define RT_RECFILE_FLUSH_AT (1u << 20) /* write() buffered appends beyond this, sync later */
#define RT_SCAN_CHUNK (1u << 20)

/* ---- CRC-32C (Castagnoli), table driven ------------------------------------------------ */

static const uint32_t CRC32C_TABLE[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same CRC with SSE4.2's crc32 instruction (8 bytes per step instead of one table lookup
 * per byte): every WAL and ledger record is checksummed on append and on read. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = (uint32_t)c;
  for (; len; p++, len--) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}
#define RT_CRC32C_HW 1
#endif

uint32_t rt_crc32c(uint32_t crc, const void *data, size_t len) {
  const uint8_t *p = data;
  crc = ~crc;
#ifdef RT_CRC32C_HW
  if (__builtin_cpu_supports("sse4.2")) return ~crc32c_hw(crc, p, len);
#endif
  for (size_t i = 0; i < len; i++) crc = CRC32C_TABLE[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t record_crc(const uint8_t len_le[4], const uint8_t *data, uint32_t len) {
  return rt_crc32c(rt_crc32c(0, len_le, 4), data, len);
}

/* ---- low-level I/O ----------------------------------------------------------------------- */

void rt_memfile_free(rt_memfile *m) {
  free(m->data);
  memset(m, 0, sizeof *m);
}

static int mem_write(rt_memfile *m, const void *buf, size_t n) {
  if (m->len + n > m->cap) {
    size_t cap = m->cap ? m->cap : 64 * 1024;
    while (cap < m->len + n) cap *= 2;
    uint8_t *nb = realloc(m->data, cap);
    if (!nb) return BFT_E_NOMEM;
    m->data = nb;
    m->cap = cap;
  }
  memcpy(m->data + m->len, buf, n);
  m->len += n;
  return 0;
}

static int mem_pread(const rt_memfile *m, void *buf, size_t n, uint64_t off) {
  if (off > m->len || n > m->len - off) return BFT_E_IO;
  memcpy(buf, m->data + off, n);
  return 0;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
  uint8_t *p = buf;
  while (n) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return BFT_E_IO;
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const uint8_t *p = buf;
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return BFT_E_IO;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int fsync_dir_of(const char *path) {
  char tmp[RT_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return BFT_E_IO;
  int rc = fsync(dfd) ? BFT_E_IO : 0;
  close(dfd);
  return rc;
}

/* ---- scanning ----------------------------------------------------------------------------- */

typedef struct scan {
  int fd;
  const rt_memfile *mem;
  uint64_t size;
  uint8_t *buf; /* window of the file starting at buf_off */
  size_t buf_len, buf_cap;
  uint64_t buf_off;
} scan;

/* Pointer to bytes [off, off+n) of the file, or NULL on I/O error (n is within the file). */
static const uint8_t *scan_get(scan *s, uint64_t off, size_t n) {
  if (off >= s->buf_off && off + n <= s->buf_off + s->buf_len) return s->buf + (off - s->buf_off);
  size_t want = n > RT_SCAN_CHUNK ? n : RT_SCAN_CHUNK;
  if (off + want > s->size) want = (size_t)(s->size - off);
  if (want < n) return NULL;
  if (want > s->buf_cap) {
    uint8_t *nb = realloc(s->buf, want);
    if (!nb) return NULL;
    s->buf = nb;
    s->buf_cap = want;
  }
  if (s->mem) return s->mem->data + off; /* no copy needed: the whole file is in memory */
  if (pread_full(s->fd, s->buf, want, off)) return NULL;
  s->buf_off = off;
  s->buf_len = want;
  return s->buf;
}

/* 1 when every byte from off to the end is zero (a file extended but never written). */
static int zeros_to_end(scan *s, uint64_t off) {
  while (off < s->size) {
    size_t n = s->size - off > RT_SCAN_CHUNK ? RT_SCAN_CHUNK : (size_t)(s->size - off);
    const uint8_t *p = scan_get(s, off, n);
    if (!p) return 0;
    for (size_t i = 0; i < n; i++)
      if (p[i]) return 0;
    off += n;
  }
  return 1;
}

enum { REC_OK = 0, REC_TORN = 1, REC_CORRUPT = 2, REC_IOERR = 3 };

/* Classify the record at off; on REC_OK sets data/len. */
static int scan_record(scan *s, uint64_t off, uint32_t max, const uint8_t **data, uint32_t *len,
                       const char **why) {
  if (s->size - off < RT_RECORD_HEADER) return *why = "partial header", REC_TORN;
  const uint8_t *h = scan_get(s, off, RT_RECORD_HEADER);
  if (!h) return REC_IOERR;
  uint32_t l = get_le32(h), crc = get_le32(h + 4);
  uint8_t lenle[4];
  memcpy(lenle, h, 4);
  if (l == 0 || l > max) {
    *why = "impossible record length";
    return zeros_to_end(s, off) ? REC_TORN : REC_CORRUPT;
  }
  if (s->size - off - RT_RECORD_HEADER < l) return *why = "partial record", REC_TORN;
  const uint8_t *d = scan_get(s, off + RT_RECORD_HEADER, l);
  if (!d) return REC_IOERR;
  if (record_crc(lenle, d, l) != crc) {
    *why = "checksum mismatch";
    uint64_t end = off + RT_RECORD_HEADER + l;
    return (end == s->size || zeros_to_end(s, end)) ? REC_TORN : REC_CORRUPT;
  }
  *data = d;
  *len = l;
  return REC_OK;
}

static int scan_file(rt_recfile *f, rt_record_fn fn, void *arg, uint64_t *valid_end, char *err,
                     size_t errlen) {
  scan s = {.fd = f->fd, .mem = f->mem, .size = f->size};
  uint64_t off = 0;
  int rc = 0;
  while (off < s.size) {
    const uint8_t *d = NULL;
    uint32_t l = 0;
    const char *why = "";
    int k = scan_record(&s, off, f->max_record, &d, &l, &why);
    if (k == REC_TORN) break;
    if (k == REC_IOERR) {
      snprintf(err, errlen, "%s: read error at offset %llu: %s", f->path, (unsigned long long)off,
               strerror(errno));
      rc = BFT_E_IO;
      break;
    }
    if (k == REC_CORRUPT) {
      snprintf(err, errlen,
               "%s: corrupt record at offset %llu (%s) with %llu bytes of log after it; the file is "
               "damaged, not merely torn by a crash",
               f->path, (unsigned long long)off, why, (unsigned long long)(s.size - off));
      rc = BFT_E_MALFORMED;
      break;
    }
    if (fn && (rc = fn(arg, off, d, l)) != 0) {
      snprintf(err, errlen, "%s: record at offset %llu refused: %s", f->path, (unsigned long long)off,
               bft_strerror(rc));
      break;
    }
    off += RT_RECORD_HEADER + l;
  }
  free(s.buf);
  *valid_end = off;
  return rc;
}

/* ---- public ------------------------------------------------------------------------------- */

/* Scan what is there, truncate a torn tail, position for appends. */
static int open_scan(rt_recfile *f, rt_record_fn fn, void *arg, uint64_t *torn, char *err, size_t errlen) {
  uint64_t end = 0;
  int rc = scan_file(f, fn, arg, &end, err, errlen);
  if (rc) return rc;
  if (end < f->size) {
    if (torn) *torn = f->size - end;
    if (f->mem) {
      f->mem->len = f->mem->synced = (size_t)end;
    } else if (ftruncate(f->fd, (off_t)end) != 0 || fsync(f->fd) != 0) {
      snprintf(err, errlen, "%s: cannot truncate torn tail: %s", f->path, strerror(errno));
      return BFT_E_IO;
    }
    f->size = end;
  }
  if (!f->mem && lseek(f->fd, (off_t)f->size, SEEK_SET) < 0) {
    snprintf(err, errlen, "%s: seek: %s", f->path, strerror(errno));
    return BFT_E_IO;
  }
  f->written = f->synced = f->size;
  if (f->mem) f->mem->synced = f->mem->len;
  return 0;
}

static int set_path(rt_recfile *f, const char *path, uint32_t max_record, uint64_t *torn, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->max_record = max_record;
  if (torn) *torn = 0;
  if (strlen(path) >= sizeof f->path) {
    snprintf(err, errlen, "%s: path too long", path);
    return BFT_E_INVAL;
  }
  snprintf(f->path, sizeof f->path, "%s", path);
  f->fail_sync_at = rt_fail_sync_at(path);
  return 0;
}

int rt_recfile_open_mem(rt_recfile *f, rt_memfile *mem, const char *path, uint32_t max_record, rt_record_fn fn,
                        void *arg, uint64_t *torn, char *err, size_t errlen) {
  int rc = set_path(f, path, max_record, torn, err, errlen);
  if (rc) return rc;
  f->mem = mem;
  f->size = mem->len;
  rc = open_scan(f, fn, arg, torn, err, errlen);
  if (rc) rt_recfile_close(f);
  return rc;
}

int rt_recfile_open(rt_recfile *f, const char *path, uint32_t max_record, rt_record_fn fn, void *arg,
                    uint64_t *torn, char *err, size_t errlen) {
  int rc = set_path(f, path, max_record, torn, err, errlen);
  if (rc) return rc;
  f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  if (f->fd < 0 || fstat(f->fd, &st) != 0) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    rt_recfile_close(f);
    return BFT_E_IO;
  }
  f->size = (uint64_t)st.st_size;
  if (f->size == 0 && fsync_dir_of(path) != 0) { /* a new file's name must survive a crash too */
    snprintf(err, errlen, "%s: cannot sync its folder: %s", path, strerror(errno));
    rt_recfile_close(f);
    return BFT_E_IO;
  }
  rc = open_scan(f, fn, arg, torn, err, errlen);
  if (rc) rt_recfile_close(f);
  return rc;
}

static int flush_buffer(rt_recfile *f) {
  if (!f->wlen) return 0;
  int rc = f->mem ? mem_write(f->mem, f->wbuf, f->wlen) : write_full(f->fd, f->wbuf, f->wlen);
  if (rc) return rc;
  f->written += f->wlen;
  f->wlen = 0;
  return 0;
}

int rt_recfile_append(rt_recfile *f, const uint8_t *data, uint32_t len, uint64_t *off) {
  if (len == 0 || len > f->max_record) return BFT_E_TOO_LARGE;
  size_t need = f->wlen + RT_RECORD_HEADER + len;
  if (need > f->wcap) {
    size_t cap = f->wcap ? f->wcap : 64 * 1024;
    while (cap < need) cap *= 2;
    uint8_t *nb = realloc(f->wbuf, cap);
    if (!nb) return BFT_E_NOMEM;
    f->wbuf = nb;
    f->wcap = cap;
  }
  uint8_t *h = f->wbuf + f->wlen;
  put_le32(h, len);
  put_le32(h + 4, record_crc(h, data, len));
  memcpy(h + RT_RECORD_HEADER, data, len);
  f->wlen = need;
  if (off) *off = f->size;
  f->size += RT_RECORD_HEADER + len;
  /* A memory file takes every append at once, so a simulated crash can tear it anywhere. */
  if (f->mem || (!f->hold && f->wlen >= RT_RECFILE_FLUSH_AT)) return flush_buffer(f);
  return 0;
}

int rt_recfile_dirty(const rt_recfile *f) { return f->synced != f->size; }

uint64_t rt_fail_sync_at(const char *path) {
  const char *spec = getenv(RT_FAIL_SYNC_ENV);
  if (!spec || !path) return 0;
  const char *colon = strrchr(spec, ':');
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!colon || (size_t)(colon - spec) != strlen(base) || strncmp(spec, base, (size_t)(colon - spec)) != 0) return 0;
  return strtoull(colon + 1, NULL, 10);
}

static int unsafe_no_sync;
void rt_recfile_set_unsafe_no_sync(int on) { unsafe_no_sync = on != 0; }
int rt_recfile_unsafe_no_sync(void) { return unsafe_no_sync; }

int rt_recfile_sync(rt_recfile *f) {
  if (!rt_recfile_dirty(f)) return 0;
  int rc = flush_buffer(f);
  if (rc) return f->last_errno = errno, rc;
  f->nsyncs++;
  if (f->fail_sync_at && f->nsyncs == f->fail_sync_at) {
    f->last_errno = ENOSPC; /* injected: what a full disk answers */
    return BFT_E_IO;
  }
  if (f->mem) {
    f->mem->synced = f->mem->len;
    f->mem->syncs++;
  } else if (!unsafe_no_sync && fdatasync(f->fd) != 0) {
    f->last_errno = errno;
    return BFT_E_IO;
  }
  f->synced = f->size;
  return 0;
}

int rt_recfile_read(rt_recfile *f, uint64_t off, uint8_t *buf, uint32_t cap, uint32_t *len) {
  if (off + RT_RECORD_HEADER > f->size) return BFT_E_INVAL;
  if (off + RT_RECORD_HEADER > f->written && flush_buffer(f)) return BFT_E_IO;
  uint8_t h[RT_RECORD_HEADER];
  if (f->mem ? mem_pread(f->mem, h, sizeof h, off) : pread_full(f->fd, h, sizeof h, off)) return BFT_E_IO;
  uint32_t l = get_le32(h);
  if (l == 0 || l > cap || l > f->max_record) return BFT_E_TOO_LARGE;
  if (off + RT_RECORD_HEADER + l > f->written && flush_buffer(f)) return BFT_E_IO;
  if (f->mem ? mem_pread(f->mem, buf, l, off + RT_RECORD_HEADER) : pread_full(f->fd, buf, l, off + RT_RECORD_HEADER))
    return BFT_E_IO;
  if (record_crc(h, buf, l) != get_le32(h + 4)) return BFT_E_BAD_DIGEST;
  *len = l;
  return 0;
}

/* The records of a rewrite, framed, to a memory image or a file descriptor; *size (may be
 * NULL) gets the bytes written. */
static int write_records(const rt_recfile *f, int fd, rt_memfile *img, const uint8_t *const *recs,
                         const uint32_t *lens, uint32_t n, uint64_t *size) {
  for (uint32_t i = 0; i < n; i++) {
    if (lens[i] == 0 || lens[i] > f->max_record) return BFT_E_TOO_LARGE;
    uint8_t h[RT_RECORD_HEADER];
    put_le32(h, lens[i]);
    put_le32(h + 4, record_crc(h, recs[i], lens[i]));
    int rc = img ? mem_write(img, h, sizeof h) : write_full(fd, h, sizeof h);
    if (!rc) rc = img ? mem_write(img, recs[i], lens[i]) : write_full(fd, recs[i], lens[i]);
    if (rc) return rc;
    if (size) *size += RT_RECORD_HEADER + lens[i];
  }
  return 0;
}

/* Rewrite of a memory file: build the new image aside, then swap it in (the rename). */
static int rewrite_mem(rt_recfile *f, const uint8_t *const *recs, const uint32_t *lens, uint32_t n) {
  rt_memfile img = {0};
  int rc = write_records(f, -1, &img, recs, lens, n, NULL);
  if (rc) {
    rt_memfile_free(&img);
    return rc;
  }
  img.synced = img.len;
  img.syncs = f->mem->syncs + 1;
  rt_memfile_free(f->mem);
  *f->mem = img;
  f->wlen = 0;
  f->size = f->written = f->synced = img.len;
  return 0;
}

int rt_recfile_rewrite(rt_recfile *f, const uint8_t *const *recs, const uint32_t *lens, uint32_t n) {
  if (f->mem) return rewrite_mem(f, recs, lens, n);
  char tmp[RT_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return BFT_E_IO;
  uint64_t size = 0;
  int rc = write_records(f, fd, NULL, recs, lens, n, &size);
  if (!rc && fsync(fd) != 0) rc = BFT_E_IO;
  if (!rc && rename(tmp, f->path) != 0) rc = BFT_E_IO;
  if (!rc) rc = fsync_dir_of(f->path);
  if (rc) {
    f->last_errno = errno;
    close(fd);
    unlink(tmp);
    return rc;
  }
  close(f->fd);
  f->fd = fd;
  if (lseek(fd, (off_t)size, SEEK_SET) < 0) return BFT_E_IO;
  f->wlen = 0;
  f->size = f->written = f->synced = size;
  return 0;
}

void rt_recfile_close(rt_recfile *f) {
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  free(f->wbuf);
  f->wbuf = NULL;
  f->wlen = f->wcap = 0;
}
