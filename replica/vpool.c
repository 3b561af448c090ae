/* The verification pool: K worker threads parked on a condition variable; a call publishes its
 * items under the mutex and everyone (caller included) takes the next unclaimed index until none
 * is left. The mutex is taken twice per item, noise next to a 50 µs verify. */
#include "replica/vpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replica/rt_limits.h"

struct rt_vpool {
  pthread_mutex_t mu;
  pthread_cond_t work; /* workers: a new call (gen moved) or stop */
  pthread_cond_t done; /* the caller: finished == n */
  pthread_t *tid;
  uint32_t nthreads;
  uint8_t cluster_id[BFT_CLUSTER_ID_LEN];
  /* the call in progress, under mu */
  rt_vitem *items;
  uint32_t n, next, finished;
  uint64_t gen;
  int busy, stop;
  rt_vpool_stats st;
};

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void verify_one(const rt_vpool *p, rt_vitem *it) {
  it->rc = bft_verify(it->pk, p->cluster_id, it->tag, it->msg, it->len, it->sig) == 0 ? 0 : BFT_E_BAD_SIG;
}

/* Take unclaimed items of the current call until none is left; entered and left with mu held.
 * Each index is claimed once, under mu, so no two threads touch one item. */
static uint32_t take_items(rt_vpool *p) {
  uint32_t k = 0;
  while (p->next < p->n) {
    rt_vitem *it = &p->items[p->next++];
    pthread_mutex_unlock(&p->mu);
    verify_one(p, it);
    pthread_mutex_lock(&p->mu);
    p->finished++;
    k++;
  }
  return k;
}

static void *worker(void *arg) {
  rt_vpool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->gen == seen) pthread_cond_wait(&p->work, &p->mu);
    if (p->stop) break;
    seen = p->gen; /* a worker that wakes after the call ended finds next == n == 0: no work */
    uint32_t k = take_items(p);
    p->st.by_workers += k;
    if (k && p->finished == p->n) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void stop_workers(rt_vpool *p, uint32_t started) {
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (uint32_t i = 0; i < started; i++) pthread_join(p->tid[i], NULL);
}

int rt_vpool_open(rt_vpool **out, uint32_t threads, const uint8_t cluster_id[BFT_CLUSTER_ID_LEN]) {
  *out = NULL;
  if (threads > RT_VPOOL_MAX_THREADS) return BFT_E_INVAL;
  rt_vpool *p = calloc(1, sizeof *p);
  if (!p) return BFT_E_NOMEM;
  memcpy(p->cluster_id, cluster_id, BFT_CLUSTER_ID_LEN);
  if (threads && !(p->tid = calloc(threads, sizeof *p->tid))) return free(p), BFT_E_NOMEM;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  /* Workers block every signal: signals stay with the loop thread, which handles them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = 0;
  uint32_t started = 0;
  for (; started < threads; started++)
    if ((rc = pthread_create(&p->tid[started], NULL, worker, p)) != 0) break;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  p->nthreads = started;
  if (rc) {
    rt_vpool_close(p);
    return rc == EAGAIN ? BFT_E_NOMEM : BFT_E_IO;
  }
  *out = p;
  return 0;
}

void rt_vpool_close(rt_vpool *p) {
  if (!p) return;
  BFT_ASSERT(!p->busy);
  stop_workers(p, p->nthreads);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  free(p->tid);
  free(p);
}

uint32_t rt_vpool_threads(const rt_vpool *p) { return p ? p->nthreads : 0; }

void rt_vpool_verify(rt_vpool *p, rt_vitem *items, uint32_t n) {
  if (n == 0) return;
  if (p->nthreads == 0 || n == 1) { /* nothing to share: no hand-off, no wake-ups */
    for (uint32_t i = 0; i < n; i++) verify_one(p, &items[i]);
    pthread_mutex_lock(&p->mu);
    p->st.calls++;
    p->st.items += n;
    pthread_mutex_unlock(&p->mu);
    return;
  }
  pthread_mutex_lock(&p->mu);
  BFT_ASSERT(!p->busy);
  p->busy = 1;
  p->items = items;
  p->n = n;
  p->next = p->finished = 0;
  p->gen++;
  pthread_cond_broadcast(&p->work);
  take_items(p);
  if (p->finished < p->n) { /* a worker still holds an item: the cost of sharing, measured */
    uint64_t t0 = now_us();
    while (p->finished < p->n) pthread_cond_wait(&p->done, &p->mu);
    uint64_t w = now_us() - t0;
    p->st.wait_us += w;
    if (w > p->st.wait_max_us) p->st.wait_max_us = w;
  }
  /* Every item is done and no worker holds one: late wakers find nothing to take. */
  p->items = NULL;
  p->n = p->next = p->finished = 0;
  p->busy = 0;
  p->st.calls++;
  p->st.items += n;
  pthread_mutex_unlock(&p->mu);
}

void rt_vpool_get_stats(rt_vpool *p, rt_vpool_stats *st) {
  pthread_mutex_lock(&p->mu);
  *st = p->st;
  pthread_mutex_unlock(&p->mu);
}

uint32_t rt_vpool_default_threads(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus <= 1) return 0;
  return cpus - 1 > (long)RT_VPOOL_MAX_THREADS ? RT_VPOOL_MAX_THREADS : (uint32_t)(cpus - 1);
}
