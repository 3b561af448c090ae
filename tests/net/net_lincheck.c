/* The zone check behind net_lincheck.h. Per key, the write of value v and every read returning v
 * form a cluster; the absent value is a cluster whose write happened at time 0. A cluster's
 * zone spans from its earliest response to its latest invocation ("forward" when the first is
 * earlier, else "backward"). The history is linearizable iff no read precedes its write, no
 * two forward zones overlap and no backward zone lies inside a forward zone. */
#include "tests/net/net_lincheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_lin_parse_line(const char *line, net_lin_op *op) {
  char kind[8], resp[32], result[16];
  unsigned long long inv;
  memset(op, 0, sizeof *op);
  if (sscanf(line, "%u %7s %64s %128s %llu %31s %15s", &op->client, kind, op->key, op->value, &inv, resp, result) != 7)
    return -1;
  op->inv = inv;
  if (strcmp(kind, "put") == 0) op->is_put = 1;
  else if (strcmp(kind, "get") != 0) return -1;
  int ok = strcmp(result, "ok") == 0, notfound = strcmp(result, "notfound") == 0;
  if (!ok && !notfound && strcmp(result, "error") != 0) return -1;
  if (strcmp(resp, "-") == 0 || (!ok && !notfound)) {
    op->resp = NET_LIN_UNKNOWN;
    op->failed = !op->is_put;
  } else {
    char *end;
    op->resp = strtoull(resp, &end, 10);
    if (*end || op->resp < op->inv) return -1;
  }
  op->found = op->is_put || ok;
  return 0;
}

static int by_key(const void *a, const void *b) {
  return strcmp(((const net_lin_op *)a)->key, ((const net_lin_op *)b)->key);
}

typedef struct lin_zone {
  uint64_t lo, hi;
  int forward;
  const char *value; /* NULL for the absent value */
} lin_zone;

#define LIN_VAL(z) ((z)->value ? (z)->value : "(absent)")

static int check_key(net_lin_op *ops, size_t n, char *why, size_t whylen) {
  /* zones[0] is the absent value; then one per put */
  lin_zone *z = calloc(n + 1, sizeof *z);
  if (!z) return -1;
  size_t nz = 1;
  int rc = 0;
  uint64_t absent_start = 0, absent_finish = 0; /* the virtual initial write at time 0 */
  for (size_t i = 0; i < n; i++) {
    if (!ops[i].is_put) continue;
    for (size_t k = 1; k < nz; k++)
      if (strcmp(z[k].value, ops[i].value) == 0) {
        snprintf(why, whylen, "key %s: value %s written twice; the check needs unique values", ops[i].key,
                 ops[i].value);
        free(z);
        return -1;
      }
    z[nz].value = ops[i].value;
    z[nz].lo = ops[i].resp; /* min response so far */
    z[nz].hi = ops[i].inv;  /* max invocation so far */
    nz++;
  }
  for (size_t i = 0; i < n && rc == 0; i++) {
    const net_lin_op *g = &ops[i];
    if (g->is_put || g->failed) continue;
    if (!g->found) {
      if (g->inv > absent_start) absent_start = g->inv;
      continue;
    }
    size_t k = 1;
    while (k < nz && strcmp(z[k].value, g->value) != 0) k++;
    if (k == nz) {
      snprintf(why, whylen, "key %s: client %u read %s, which no put wrote", g->key, g->client, g->value);
      rc = 1;
      break;
    }
    const net_lin_op *w = NULL;
    for (size_t j = 0; j < n; j++)
      if (ops[j].is_put && strcmp(ops[j].value, g->value) == 0) w = &ops[j];
    if (g->resp < w->inv) {
      snprintf(why, whylen, "key %s: client %u's get returned %s before the put of it began", g->key, g->client,
               g->value);
      rc = 1;
      break;
    }
    if (g->resp < z[k].lo) z[k].lo = g->resp;
    if (g->inv > z[k].hi) z[k].hi = g->inv;
  }
  z[0].lo = absent_finish;
  z[0].hi = absent_start;
  /* normalise: forward zones run from the earliest response to the latest invocation */
  for (size_t k = 0; k < nz; k++) {
    uint64_t f = z[k].lo, s = z[k].hi;
    z[k].forward = f < s;
    z[k].lo = f < s ? f : s;
    z[k].hi = f < s ? s : f;
  }
  for (size_t a = 0; a < nz && rc == 0; a++) {
    if (!z[a].forward) continue;
    for (size_t b = 0; b < nz && rc == 0; b++) {
      if (a == b) continue;
      if (z[b].forward && b > a && z[a].lo < z[b].hi && z[b].lo < z[a].hi) {
        snprintf(why, whylen,
                 "key %s: values %s and %s were each observed after the other was overwritten "
                 "(overlapping forward zones)",
                 ops[0].key, LIN_VAL(&z[a]), LIN_VAL(&z[b]));
        rc = 1;
      } else if (!z[b].forward && z[a].lo < z[b].lo && z[b].hi < z[a].hi) {
        snprintf(why, whylen,
                 "key %s: value %s was written and overwritten entirely while %s had to be current "
                 "(backward zone inside a forward zone)",
                 ops[0].key, LIN_VAL(&z[b]), LIN_VAL(&z[a]));
        rc = 1;
      }
    }
  }
  free(z);
  return rc;
}

int net_lin_check(net_lin_op *ops, size_t n, char *why, size_t whylen) {
  qsort(ops, n, sizeof *ops, by_key);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && strcmp(ops[j].key, ops[i].key) == 0) j++;
    int rc = check_key(ops + i, j - i, why, whylen);
    if (rc) return rc;
    i = j;
  }
  if (why && whylen) why[0] = '\0';
  return 0;
}
