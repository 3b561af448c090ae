/* Linearizability check of a key-value history in which every put writes a value unique to
 * its key (bft-bench --history makes them so): per key, a register, checked with the zone
 * method of Gibbons & Korach (as used by Anderson et al., "What consistency does your
 * key-value store actually provide?"), which is exact and O(n^2) for such histories. */
#ifndef NET_LINCHECK_H
#define NET_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

#define NET_LIN_KEY_MAX 64
#define NET_LIN_VALUE_MAX 128
#define NET_LIN_UNKNOWN UINT64_MAX /* response time of an operation whose outcome is unknown */

typedef struct net_lin_op {
  uint32_t client;
  int is_put;
  int found;      /* get: 1 when it returned a value, 0 when the key was absent */
  int failed;     /* get that did not complete: ignored */
  uint64_t inv, resp;
  char key[NET_LIN_KEY_MAX + 1];
  char value[NET_LIN_VALUE_MAX + 1];
} net_lin_op;

/* One line of a bft-bench history: "J put|get KEY VALUE INV_NS RESP_NS|- ok|notfound|error".
 * 0 or -1 (malformed). A put that failed or was cancelled gets resp = NET_LIN_UNKNOWN (it may
 * or may not have taken effect); a get that failed is marked failed. */
int net_lin_parse_line(const char *line, net_lin_op *op);

/* 0 when linearizable; 1 with the first violation described in why; -1 when the history is
 * unusable (a value written twice to one key). ops are reordered in place. */
int net_lin_check(net_lin_op *ops, size_t n, char *why, size_t whylen);

#endif
