/* Cluster files: a good one loads with n and f derived; each bad one is refused with a
 * message naming the file, the line where there is one, and what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocols/cluster/cluster.h"

#define K(x) "public_key = " x "\n"
#define PK0 "1111111111111111111111111111111111111111111111111111111111111111"
#define PK1 "2222222222222222222222222222222222222222222222222222222222222222"
#define PK2 "3333333333333333333333333333333333333333333333333333333333333333"
#define PK3 "4444444444444444444444444444444444444444444444444444444444444444"
#define PK4 "5555555555555555555555555555555555555555555555555555555555555555"
#define PKC "6666666666666666666666666666666666666666666666666666666666666666"

#define R(i, port, pk) "[replica." #i "]\naddress = 127.0.0.1:" #port "\n" K(pk)
#define GOOD_REPLICAS R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2) R(3, 7003, PK3)

static bft_cluster *c;
static char err[512];

static int parse(const char *text) {
  err[0] = '\0';
  return bft_cluster_parse(text, "test.ini", c, err, sizeof err);
}

/* The error must be a config error whose message contains `want` (and the line "test.ini:L:"
 * when line > 0). */
static void expect_error(const char *text, int line, const char *want) {
  int rc = parse(text);
  if (rc != BFT_E_CONFIG || !strstr(err, want)) {
    print_error("input:\n%s\ngot rc=%d err='%s', wanted '%s'\n", text, rc, err, want);
    fail();
  }
  char prefix[32];
  if (line > 0) snprintf(prefix, sizeof prefix, "test.ini:%d: ", line);
  else snprintf(prefix, sizeof prefix, "test.ini: ");
  if (strncmp(err, prefix, strlen(prefix)) != 0) {
    print_error("err '%s' does not start with '%s'\n", err, prefix);
    fail();
  }
}

static void test_good(void **st) {
  (void)st;
  const char *text = "# a comment\n[cluster]\nid = prod-1\n" GOOD_REPLICAS "[client.0]\n" K(PKC);
  assert_int_equal(parse(text), 0);
  assert_string_equal(c->name, "prod-1");
  assert_int_equal(c->n, 4);
  assert_int_equal(c->f, 1);
  assert_int_equal(bft_cluster_quorum(c), 3);
  assert_string_equal(c->replicas[2].host, "127.0.0.1");
  assert_int_equal(c->replicas[2].port, 7002);
  assert_int_equal(c->nclients, 1);
  assert_int_equal(c->warning[0], '\0');
  uint8_t id[32];
  bft_cluster_id_from_name(id, "prod-1");
  assert_memory_equal(c->id, id, 32);
  uint8_t pk[32];
  bft_hex_decode(pk, 32, PKC);
  assert_int_equal(bft_cluster_find_client(c, pk), 0);
  bft_hex_decode(pk, 32, PK2);
  assert_int_equal(bft_cluster_find_client(c, pk), -1);
  assert_int_equal(bft_cluster_find_replica(c, pk), 2);
}

static void test_n_not_3f_plus_1_warns(void **st) {
  (void)st;
  const char *text = "[cluster]\nid = x\n" GOOD_REPLICAS R(4, 7004, PK4);
  assert_int_equal(parse(text), 0);
  assert_int_equal(c->n, 5);
  assert_int_equal(c->f, 1);
  assert_non_null(strstr(c->warning, "not of the form 3f+1"));
}

static void test_bad_files(void **st) {
  (void)st;
  expect_error("[cluster]\nid = x\n" R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2), 0,
               "at least 4 are needed");
  expect_error("[cluster]\nid = x\n" GOOD_REPLICAS "[replica.1]\naddress = 127.0.0.1:7009\n", 15,
               "duplicate replica id 1");
  expect_error("[cluster]\nid = x\n[replica.0]\naddress = 127.0.0.1:7000\npublic_key = 12zz\n", 5,
               "bad public key for replica 0");
  expect_error("[cluster]\nid = x\n[replica.0]\naddress = 127.0.0.1\n", 4, "bad address '127.0.0.1'");
  expect_error("[cluster]\nid = x\n[replica.0]\naddress = 127.0.0.1:0\n", 4, "bad address");
  expect_error("[cluster]\nid = x\n[replica.0]\naddress = 127.0.0.1:70000\n", 4, "bad address");
  expect_error("[cluster]\nid = x\n[replica.0]\naddress = bad host:7000\n", 4, "bad address");
  expect_error("[cluster]\nid = x\n" R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2) R(4, 7004, PK4),
               0, "replica 3 is missing");
  expect_error("[cluster]\nid = x\n" R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2)
               "[replica.3]\n" K(PK3), 12, "replica 3 has no address");
  expect_error("[cluster]\nid = x\n" R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2) R(3, 7003, PK2),
               12, "same public key as replica 2");
  expect_error("[cluster]\nid = x\n" R(0, 7000, PK0) R(1, 7001, PK1) R(2, 7002, PK2) R(3, 7002, PK3),
               12, "same address as replica 2");
  expect_error(GOOD_REPLICAS, 0, "missing [cluster] section");
  expect_error("[cluster]\nid = bad id!\n", 2, "cluster id must be");
  expect_error("[cluster]\nid = x\ncolour = blue\n", 3, "unknown key 'colour'");
  expect_error("[cluster]\nid = x\n[replicas.0]\n", 3, "unknown section [replicas.0]");
  expect_error("[cluster]\nid = x\n[replica.x]\n", 3, "bad replica section");
  expect_error("[cluster]\nid = x\n[replica.01]\n", 3, "bad replica section");
  expect_error("[cluster]\nid = x\n[replica.0]\nthis line has no equals sign\n", 4, "syntax error");
  expect_error("[cluster]\nid = x\n" GOOD_REPLICAS "[client.0]\npublic_key = abc\n", 16,
               "bad public key for client 0");
  expect_error("[cluster]\nid = x\n" GOOD_REPLICAS "[client.0]\n" K(PK1), 15,
               "client 0 uses a replica's public key");
  expect_error("[cluster]\nid = x\n" GOOD_REPLICAS "[client.3]\n", 15, "client 3 has no public_key");
}

static void test_load_from_file(void **st) {
  (void)st;
  char path[] = "/tmp/bft-cluster-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("[cluster]\nid = x\n[replica.0]\naddress = nowhere\n", f);
  fclose(f);
  assert_int_equal(bft_cluster_load(path, c, err, sizeof err), BFT_E_CONFIG);
  char want[64];
  snprintf(want, sizeof want, "%s:4: bad address", path);
  assert_non_null(strstr(err, want));
  unlink(path);
  assert_int_equal(bft_cluster_load(path, c, err, sizeof err), BFT_E_IO);
  assert_non_null(strstr(err, "cannot open cluster file"));
}

static void test_save_load_roundtrip(void **st) {
  (void)st;
  const char *text = "[cluster]\nid = rt\n" GOOD_REPLICAS "[client.0]\n" K(PKC);
  assert_int_equal(parse(text), 0);
  bft_cluster *copy = malloc(sizeof *copy);
  memcpy(copy, c, sizeof *c);
  char path[] = "/tmp/bft-cluster-rt-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  assert_int_equal(bft_cluster_save(path, copy, err, sizeof err), 0);
  assert_int_equal(bft_cluster_load(path, c, err, sizeof err), 0);
  assert_int_equal(c->n, copy->n);
  assert_int_equal(c->nclients, 1);
  assert_memory_equal(c->replicas, copy->replicas, sizeof c->replicas[0] * 4);
  assert_memory_equal(c->id, copy->id, 32);
  unlink(path);
  free(copy);
}

int main(void) {
  if (bft_crypto_init() != 0) return 1;
  c = malloc(sizeof *c);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good),
      cmocka_unit_test(test_n_not_3f_plus_1_warns),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_load_from_file),
      cmocka_unit_test(test_save_load_roundtrip),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(c);
  return rc;
}
