/* Unit tests of the replica's files: WAL round trip, torn tails truncated, corruption in the
 * middle detected, atomic rewrite (compaction); ledger append, reload, chain verification. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "protocols/request.h"
#include "replica/ledger_store.h"
#include "replica/wal.h"

static char *make_dir(void) {
  char *d = strdup("/tmp/bft-replica-test-XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void remove_dir(char *d) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  assert_int_equal(system(cmd), 0);
  free(d);
}

static off_t file_size(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  return st.st_size;
}

static void poke(const char *dir, const char *name, off_t off, uint8_t xor_with) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= xor_with;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static void append_raw(const char *dir, const char *name, const void *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
}

/* ---- WAL --------------------------------------------------------------------------------- */

typedef struct collected {
  uint32_t n;
  uint8_t recs[64][64];
  uint32_t lens[64];
} collected;

static int collect(void *arg, uint64_t off, const uint8_t *data, uint32_t len) {
  collected *c = arg;
  if (c->n < 64 && len <= 64) {
    memcpy(c->recs[c->n], data, len);
    c->lens[c->n] = len;
  }
  c->n++;
  return 0;
}

static void write_records(const char *dir, uint32_t n) {
  rt_wal w;
  char err[256];
  assert_int_equal(rt_wal_open(&w, dir, NULL, NULL, NULL, err, sizeof err), 0);
  for (uint32_t i = 0; i < n; i++) {
    char rec[32];
    int l = snprintf(rec, sizeof rec, "record-%u", i);
    assert_int_equal(rt_wal_append(&w, (const uint8_t *)rec, (uint32_t)l), 0);
    if (i % 3 == 0) assert_int_equal(rt_wal_sync(&w), 0);
  }
  assert_int_equal(rt_wal_sync(&w), 0);
  rt_wal_close(&w);
}

/* CRC-32C known answers (RFC 3720's check value), in one call and split at every point, so
 * the hardware and table paths agree on any alignment and length. */
static void test_crc32c_known_answer(void **state) {
  (void)state;
  const char *s = "123456789";
  assert_int_equal(rt_crc32c(0, s, 9), 0xE3069283u);
  for (size_t k = 0; k <= 9; k++) assert_int_equal(rt_crc32c(rt_crc32c(0, s, k), s + k, 9 - k), 0xE3069283u);
  uint8_t zeros[32] = {0};
  assert_int_equal(rt_crc32c(0, zeros, sizeof zeros), 0x8A9136AAu);
}

static void test_wal_round_trip(void **state) {
  char *dir = make_dir();
  write_records(dir, 10);
  collected c = {0};
  rt_wal w;
  char err[256];
  uint64_t torn = 99;
  assert_int_equal(rt_wal_open(&w, dir, collect, &c, &torn, err, sizeof err), 0);
  assert_int_equal(torn, 0);
  assert_int_equal(c.n, 10);
  assert_int_equal(w.records, 10);
  for (uint32_t i = 0; i < 10; i++) {
    char rec[32];
    int l = snprintf(rec, sizeof rec, "record-%u", i);
    assert_int_equal(c.lens[i], l);
    assert_memory_equal(c.recs[i], rec, (size_t)l);
  }
  /* appending after a reopen continues the log */
  assert_int_equal(rt_wal_append(&w, (const uint8_t *)"more", 4), 0);
  assert_int_equal(rt_wal_sync(&w), 0);
  rt_wal_close(&w);
  memset(&c, 0, sizeof c);
  assert_int_equal(rt_wal_open(&w, dir, collect, &c, &torn, err, sizeof err), 0);
  assert_int_equal(c.n, 11);
  assert_memory_equal(c.recs[10], "more", 4);
  rt_wal_close(&w);
  remove_dir(dir);
}

static void check_torn(const char *dir, uint32_t want_records, uint64_t want_torn) {
  collected c = {0};
  rt_wal w;
  char err[256];
  uint64_t torn = 0;
  assert_int_equal(rt_wal_open(&w, dir, collect, &c, &torn, err, sizeof err), 0);
  assert_int_equal(c.n, want_records);
  assert_int_equal(torn, want_torn);
  rt_wal_close(&w);
}

static void test_wal_torn_tail(void **state) {
  char *dir = make_dir();
  write_records(dir, 5);
  off_t good = file_size(dir, "wal");
  /* a partial header */
  append_raw(dir, "wal", "\x20\x00\x00", 3);
  check_torn(dir, 5, 3);
  assert_int_equal(file_size(dir, "wal"), good);
  /* a full header promising more bytes than were written */
  append_raw(dir, "wal", "\x20\x00\x00\x00\x11\x22\x33\x44partial", 15);
  check_torn(dir, 5, 15);
  /* zeros, as a file system may leave after a crash */
  uint8_t zeros[100] = {0};
  append_raw(dir, "wal", zeros, sizeof zeros);
  check_torn(dir, 5, 100);
  /* the last record garbled (checksum mismatch at the very end) */
  poke(dir, "wal", good - 1, 0x5A);
  check_torn(dir, 4, 8 + strlen("record-4"));
  assert_true(file_size(dir, "wal") < good);
  /* still appendable afterwards */
  rt_wal w;
  char err[256];
  assert_int_equal(rt_wal_open(&w, dir, NULL, NULL, NULL, err, sizeof err), 0);
  assert_int_equal(rt_wal_append(&w, (const uint8_t *)"after", 5), 0);
  assert_int_equal(rt_wal_sync(&w), 0);
  rt_wal_close(&w);
  check_torn(dir, 5, 0);
  remove_dir(dir);
}

static void test_wal_corruption_in_middle(void **state) {
  char *dir = make_dir();
  write_records(dir, 6);
  off_t size = file_size(dir, "wal");
  poke(dir, "wal", 8 + 2, 0x01); /* a data byte of the first record */
  collected c = {0};
  rt_wal w;
  char err[256] = "";
  int rc = rt_wal_open(&w, dir, collect, &c, NULL, err, sizeof err);
  assert_int_equal(rc, BFT_E_MALFORMED);
  assert_non_null(strstr(err, "corrupt record at offset 0"));
  assert_int_equal(file_size(dir, "wal"), size); /* nothing truncated */
  /* an impossible length in the middle is corruption too, not a torn tail */
  poke(dir, "wal", 8 + 2, 0x01);
  poke(dir, "wal", 3, 0x7F);
  rc = rt_wal_open(&w, dir, collect, &c, NULL, err, sizeof err);
  assert_int_equal(rc, BFT_E_MALFORMED);
  remove_dir(dir);
}

static void test_wal_rewrite(void **state) {
  char *dir = make_dir();
  write_records(dir, 20);
  rt_wal w;
  char err[256];
  assert_int_equal(rt_wal_open(&w, dir, NULL, NULL, NULL, err, sizeof err), 0);
  uint64_t before = rt_wal_size(&w);
  bft_action items[4];
  uint8_t arena[256];
  bft_actions acts;
  bft_actions_init(&acts, items, 4, arena, sizeof arena);
  assert_int_equal(bft_act_persist(&acts, (const uint8_t *)"snapshot", 8), 0);
  assert_int_equal(rt_wal_rewrite(&w, &acts), 0);
  assert_true(rt_wal_size(&w) < before);
  assert_int_equal(rt_wal_append(&w, (const uint8_t *)"next", 4), 0);
  assert_int_equal(rt_wal_sync(&w), 0);
  rt_wal_close(&w);
  collected c = {0};
  assert_int_equal(rt_wal_open(&w, dir, collect, &c, NULL, err, sizeof err), 0);
  assert_int_equal(c.n, 2);
  assert_memory_equal(c.recs[0], "snapshot", 8);
  assert_memory_equal(c.recs[1], "next", 4);
  /* only PERSIST actions may be written */
  bft_actions_reset(&acts);
  assert_int_equal(bft_act_pull(&acts, 3), 0);
  assert_int_equal(rt_wal_rewrite(&w, &acts), BFT_E_INVAL);
  rt_wal_close(&w);
  remove_dir(dir);
}

/* ---- ledger ------------------------------------------------------------------------------ */

static const uint8_t CLUSTER_ID[32] = {1, 2, 3, 4, 5, 6, 7, 8};

static void make_block(bft_block *b, uint64_t h, uint8_t *batch, uint32_t *len) {
  memset(b, 0, sizeof *b);
  b->height = h;
  uint32_t l = 4 + (uint32_t)(h % 7);
  memset(batch, 0, 4);
  for (uint32_t i = 4; i < l; i++) batch[i] = (uint8_t)(h + i);
  *len = l;
  b->batch = batch;
  b->batch_len = l;
  bft_digest(b->batch_digest, batch, l);
  memset(b->state_digest, (int)h, 32);
  snprintf(b->protocol, sizeof b->protocol, "pbft");
  b->cert = (const uint8_t *)"certificate";
  b->cert_len = 11;
}

typedef struct seen {
  uint64_t n, last;
  int bad;
} seen;

static int on_block(void *arg, const bft_block *b) {
  seen *s = arg;
  if (b->height != s->last + 1) s->bad = 1;
  s->last = b->height;
  s->n++;
  return 0;
}

static void write_ledger(const char *dir, uint64_t n) {
  rt_ledger l;
  char err[256];
  assert_int_equal(rt_ledger_open(&l, dir, CLUSTER_ID, NULL, NULL, NULL, err, sizeof err), 0);
  uint8_t batch[16];
  for (uint64_t h = l.head + 1; h <= n; h++) {
    bft_block b;
    uint32_t len;
    make_block(&b, h, batch, &len);
    assert_int_equal(rt_ledger_append(&l, &b), 0);
  }
  assert_int_equal(rt_ledger_sync(&l), 0);
  rt_ledger_close(&l);
}

static void test_ledger_append_reload(void **state) {
  char *dir = make_dir();
  write_ledger(dir, 25);
  rt_ledger l;
  char err[256];
  seen s = {0};
  assert_int_equal(rt_ledger_open(&l, dir, CLUSTER_ID, on_block, &s, NULL, err, sizeof err), 0);
  assert_int_equal(l.head, 25);
  assert_int_equal(s.n, 25);
  assert_false(s.bad);
  /* chain: block 1 links to the cluster id, block h to the hash of h-1 */
  uint8_t buf[BFT_MAX_BLOCK_BYTES < 4096 ? BFT_MAX_BLOCK_BYTES : 4096];
  uint8_t prev[32];
  memcpy(prev, CLUSTER_ID, 32);
  for (uint64_t h = 1; h <= 25; h++) {
    uint32_t len;
    assert_int_equal(rt_ledger_read(&l, h, buf, sizeof buf, &len), 0);
    bft_block b;
    assert_int_equal(bft_block_decode(buf, len, &b), 0);
    assert_int_equal(b.height, h);
    assert_memory_equal(b.prev_hash, prev, 32);
    bft_block_hash(buf, len, prev);
  }
  assert_memory_equal(prev, l.head_hash, 32);
  /* a block must come at head + 1 */
  bft_block b;
  uint8_t batch[16];
  uint32_t bl;
  make_block(&b, 30, batch, &bl);
  assert_int_equal(rt_ledger_append(&l, &b), BFT_E_STATE);
  assert_int_equal(rt_ledger_read(&l, 26, buf, sizeof buf, &bl), BFT_E_INVAL);
  rt_ledger_close(&l);
  /* appending after a reload continues the chain */
  write_ledger(dir, 30);
  memset(&s, 0, sizeof s);
  assert_int_equal(rt_ledger_open(&l, dir, CLUSTER_ID, on_block, &s, NULL, err, sizeof err), 0);
  assert_int_equal(l.head, 30);
  rt_ledger_close(&l);
  /* another cluster id breaks the chain at block 1 */
  uint8_t other[32] = {9};
  assert_int_equal(rt_ledger_open(&l, dir, other, NULL, NULL, NULL, err, sizeof err), BFT_E_BAD_DIGEST);
  assert_non_null(strstr(err, "does not chain"));
  remove_dir(dir);
}

static void test_ledger_torn_and_corrupt(void **state) {
  char *dir = make_dir();
  write_ledger(dir, 5);
  append_raw(dir, "ledger", "\x40\x00\x00\x00\x01\x02\x03\x04half", 12);
  rt_ledger l;
  char err[256];
  uint64_t torn = 0;
  assert_int_equal(rt_ledger_open(&l, dir, CLUSTER_ID, NULL, NULL, &torn, err, sizeof err), 0);
  assert_int_equal(torn, 12);
  assert_int_equal(l.head, 5);
  rt_ledger_close(&l);
  poke(dir, "ledger", 20, 0x80); /* inside block 1: its checksum no longer matches */
  assert_int_equal(rt_ledger_open(&l, dir, CLUSTER_ID, NULL, NULL, &torn, err, sizeof err), BFT_E_MALFORMED);
  remove_dir(dir);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_known_answer), cmocka_unit_test(test_wal_round_trip),
      cmocka_unit_test(test_wal_torn_tail),
      cmocka_unit_test(test_wal_corruption_in_middle),
      cmocka_unit_test(test_wal_rewrite),
      cmocka_unit_test(test_ledger_append_reload),
      cmocka_unit_test(test_ledger_torn_and_corrupt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
