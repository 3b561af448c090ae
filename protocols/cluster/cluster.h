/* The cluster definition: one INI file naming the cluster, each replica (id, host:port,
 * public key) and the public keys of the clients allowed to submit requests.
 *
 *   [cluster]
 *   id = local                      # name; its BLAKE2b hash is the signature domain's cluster id
 *   protocol_only = true            # optional (default false): accept v3 requests, which carry
 *                                   # MACs instead of a signature (protocol-only benchmarks)
 *   [replica.0]
 *   address = 127.0.0.1:7000
 *   public_key = <64 hex digits>
 *   [client.0]
 *   public_key = <64 hex digits>
 *
 * Replica ids are 0..n-1 without gaps; n >= 4; f = (n-1)/3. */
#ifndef BFT_CLUSTER_H
#define BFT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/bft_crypto.h"
#include "protocols/limits.h"

typedef struct bft_replica_info {
  uint32_t id;
  char host[BFT_MAX_HOST + 1];
  uint16_t port;
  uint8_t pk[BFT_PK_LEN];
} bft_replica_info;

typedef struct bft_client_info {
  uint32_t id;
  uint8_t pk[BFT_PK_LEN];
} bft_client_info;

typedef struct bft_cluster {
  char name[BFT_MAX_CLUSTER_NAME + 1];
  uint8_t id[BFT_CLUSTER_ID_LEN];
  uint32_t n, f;
  int protocol_only; /* 1: v3 (MAC-authenticated, unsigned) requests are accepted */
  bft_replica_info replicas[BFT_MAX_REPLICAS];
  uint32_t nclients;
  bft_client_info clients[BFT_MAX_CLIENTS];
  char warning[160]; /* non-fatal remark, e.g. n is not of the form 3f+1; "" if none */
} bft_cluster;

/* Parse a cluster file. On error returns BFT_E_IO or BFT_E_CONFIG and writes one line to err
 * of the form "FILE:LINE: what is wrong" (LINE omitted when the problem is the whole file).
 * The struct is large (~150 KiB): allocate it on the heap. */
int bft_cluster_load(const char *path, bft_cluster *c, char *err, size_t errlen);
/* Same, from a string; `name` is used in error messages. */
int bft_cluster_parse(const char *text, const char *name, bft_cluster *c, char *err, size_t errlen);
/* Write a cluster file (used by bft-keygen). */
int bft_cluster_save(const char *path, const bft_cluster *c, char *err, size_t errlen);

/* Index of the client with this public key, or -1 when it is not permitted. */
int bft_cluster_find_client(const bft_cluster *c, const uint8_t pk[BFT_PK_LEN]);
/* Replica id owning this public key, or -1. */
int bft_cluster_find_replica(const bft_cluster *c, const uint8_t pk[BFT_PK_LEN]);
/* 2f+1, the quorum size used by all three engines. */
static inline uint32_t bft_cluster_quorum(const bft_cluster *c) { return 2 * c->f + 1; }

#endif
