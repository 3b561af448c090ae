/* The embeddable replica (bft_replica.h): a replica on its own libuv loop (on the calling
 * thread or a thread of its own) or on the caller's loop, stoppable from any thread. */
#include "replica/embed.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "replica/log.h"

struct bft_replica {
  rt_replica r;
  uv_async_t stop_async;
  uv_mutex_t mu;
  int async_open;    /* under mu */
  uv_thread_t thread;
  int threaded, opened, done;
  int exit_code;
};

static void on_async_closed(uv_handle_t *h) { (void)h; }

/* From the loop: the replica begins to stop (asked to, or after a fatal error). */
static void on_stop(void *arg) {
  bft_replica *b = arg;
  uv_mutex_lock(&b->mu);
  if (b->async_open) {
    b->async_open = 0;
    uv_close((uv_handle_t *)&b->stop_async, on_async_closed);
  }
  uv_mutex_unlock(&b->mu);
}

static void on_async(uv_async_t *a) {
  bft_replica *b = a->data;
  rt_replica_stop(&b->r);
}

void bft_replica_options_init(bft_replica_options *o) {
  memset(o, 0, sizeof *o);
  o->protocol = "pbft";
  o->log_level = "info";
}

int rt_embed_create(const rt_options *o, bft_replica **out, char *err, size_t errlen) {
  *out = NULL;
  bft_replica *b = calloc(1, sizeof *b);
  if (!b) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  uv_mutex_init(&b->mu);
  rt_options ro = *o;
  ro.on_stop = on_stop;
  ro.on_stop_arg = b;
  int rc = rt_replica_open(&b->r, &ro, err, errlen);
  b->opened = 1;
  if (rc) {
    bft_replica_destroy(b);
    return rc;
  }
  uv_async_init(b->r.loop, &b->stop_async, on_async);
  b->stop_async.data = b;
  b->async_open = 1;
  *out = b;
  return 0;
}

int bft_replica_create(const bft_replica_options *o, bft_replica **out, char *err, size_t errlen) {
  rt_options ro;
  memset(&ro, 0, sizeof ro);
  if (!o || !o->config || !o->key || !o->data_dir)
    return snprintf(err, errlen, "config, key and data_dir are required"), BFT_E_INVAL;
  ro.config = o->config;
  ro.key = o->key;
  ro.data_dir = o->data_dir;
  ro.protocol = o->protocol ? o->protocol : "pbft";
  ro.id = o->id;
  ro.listen_client_port = o->listen_client_port;
  ro.log_level = rt_log_level_parse(o->log_level ? o->log_level : "info");
  if (ro.log_level < 0) return snprintf(err, errlen, "log level must be debug, info, warn or error"), BFT_E_INVAL;
  ro.app = o->app;
  ro.loop = o->loop;
  ro.handle_signals = o->handle_signals;
  return rt_embed_create(&ro, out, err, errlen);
}

int bft_replica_run(bft_replica *b) {
  if (!b->r.own_loop || b->threaded) return BFT_E_STATE;
  b->exit_code = rt_replica_run(&b->r);
  b->done = 1;
  return b->exit_code;
}

static void thread_main(void *arg) {
  bft_replica *b = arg;
  b->exit_code = rt_replica_run(&b->r);
}

int bft_replica_start(bft_replica *b) {
  if (!b->r.own_loop) return rt_replica_start(&b->r) ? BFT_E_STATE : 0;
  if (b->threaded) return BFT_E_STATE;
  if (uv_thread_create(&b->thread, thread_main, b) != 0) return BFT_E_NOMEM;
  b->threaded = 1;
  return 0;
}

void bft_replica_stop(bft_replica *b) {
  uv_mutex_lock(&b->mu);
  if (b->async_open) uv_async_send(&b->stop_async);
  uv_mutex_unlock(&b->mu);
}

int bft_replica_wait(bft_replica *b) {
  if (b->threaded) {
    uv_thread_join(&b->thread);
    b->threaded = 0;
    b->done = 1;
    return b->exit_code;
  }
  if (!b->r.own_loop) return b->r.stopping ? (b->r.core.failed ? 1 : b->r.exit_code) : -1;
  return b->done ? b->exit_code : BFT_E_STATE;
}

const char *bft_replica_error(const bft_replica *b) { return b->r.core.failed ? b->r.core.fail_msg : NULL; }

uint64_t bft_replica_height(const bft_replica *b) { return b->r.core.ledger.head; }

void bft_replica_destroy(bft_replica *b) {
  if (!b) return;
  if (b->threaded) {
    bft_replica_stop(b);
    bft_replica_wait(b);
  }
  if (b->opened && b->r.loop && !b->r.own_loop) {
    /* the caller's loop: stop, then let it run the close callbacks of our handles */
    if (!b->r.stopping && b->r.handles_ready) rt_replica_stop(&b->r);
    on_stop(b);
    for (int i = 0; i < 16; i++) uv_run(b->r.loop, UV_RUN_NOWAIT);
  } else if (b->opened && b->r.loop) {
    on_stop(b); /* the async handle closes with the loop's last run in rt_replica_close */
  }
  if (b->opened) rt_replica_close(&b->r);
  uv_mutex_destroy(&b->mu);
  free(b);
}
