/* bench-vpool: what the verify pool buys on this machine. Verifies n valid Ed25519 signatures
 * per call, `rounds` calls, once with the given number of worker threads and once on the
 * calling thread alone, and prints the wall time per call and per signature, the share checked
 * on workers and the caller's wait for them. Usage: bench-vpool THREADS N ROUNDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replica/rt_limits.h"
#include "replica/vpool.h"

#define MSG_LEN 128 /* about a small client request */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int run(uint32_t k, rt_vitem *it, uint32_t n, uint32_t rounds, const uint8_t *cid) {
  rt_vpool *p;
  if (rt_vpool_open(&p, k, cid) != 0) return fprintf(stderr, "bench-vpool: cannot start %u threads\n", k), 1;
  double t0 = now_s();
  for (uint32_t r = 0; r < rounds; r++) rt_vpool_verify(p, it, n);
  double dt = now_s() - t0;
  for (uint32_t i = 0; i < n; i++)
    if (it[i].rc != 0) return fprintf(stderr, "bench-vpool: a valid signature failed\n"), rt_vpool_close(p), 1;
  rt_vpool_stats st;
  rt_vpool_get_stats(p, &st);
  printf("threads=%u n=%u rounds=%u us_per_call=%.1f us_per_signature=%.1f on_workers_pct=%.0f wait_us_per_call=%.1f\n",
         k, n, rounds, dt / rounds * 1e6, dt / rounds / n * 1e6,
         st.items ? 100.0 * (double)st.by_workers / (double)st.items : 0.0, (double)st.wait_us / rounds);
  rt_vpool_close(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: bench-vpool THREADS N ROUNDS\n"), 2;
  uint32_t k = (uint32_t)strtoul(argv[1], NULL, 10), n = (uint32_t)strtoul(argv[2], NULL, 10),
           rounds = (uint32_t)strtoul(argv[3], NULL, 10);
  if (k > RT_VPOOL_MAX_THREADS || n == 0 || n > 100000 || rounds == 0)
    return fprintf(stderr, "bench-vpool: THREADS 0-%u, N 1-100000, ROUNDS >= 1\n", RT_VPOOL_MAX_THREADS), 2;
  if (bft_crypto_init() != 0) return 1;
  uint8_t cid[BFT_CLUSTER_ID_LEN];
  bft_cluster_id_from_name(cid, "bench-vpool");
  bft_keypair kp;
  rt_vitem *it = calloc(n, sizeof *it);
  uint8_t *msg = calloc(n, MSG_LEN), *sig = calloc(n, BFT_SIG_LEN);
  if (!it || !msg || !sig || bft_keypair_generate(&kp) != 0) return 1;
  for (uint32_t i = 0; i < n; i++) {
    memset(msg + (size_t)i * MSG_LEN, (int)i, MSG_LEN);
    if (bft_sign(&kp, cid, "bench/vpool", msg + (size_t)i * MSG_LEN, MSG_LEN, sig + (size_t)i * BFT_SIG_LEN) != 0) return 1;
    it[i] = (rt_vitem){.tag = "bench/vpool", .msg = msg + (size_t)i * MSG_LEN, .len = MSG_LEN,
                       .sig = sig + (size_t)i * BFT_SIG_LEN};
    memcpy(it[i].pk, kp.pk, BFT_PK_LEN);
  }
  int rc = run(k, it, n, rounds, cid);
  if (!rc && k) rc = run(0, it, n, rounds, cid);
  free(it);
  free(msg);
  free(sig);
  return rc;
}
