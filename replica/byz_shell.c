/* bft-replica --byzantine: the libuv side of the faulty-replica modes. Every frame the runtime
 * sends to a peer goes through rt_byz_outgoing (replica/byzantine.c, the same module the
 * simulator's plans use); `delay:MS` holds frames in a FIFO (the delay is constant, so release
 * times are in order) released by one timer. */
#include "replica/byz_shell.h"

#include <stdlib.h>
#include <string.h>

#include "replica/replica.h"

#define COMP "byzantine"
#define RT_BYZ_DELAY_MAX_FRAMES 65536u
#define RT_BYZ_DELAY_MAX_BYTES (256u << 20)

typedef struct held {
  uint32_t to;
  rt_frame *f;
  uint64_t due_ms;
} held;

struct rt_byz_shell {
  rt_replica *r;
  rt_byz byz;
  rt_crypto crypto; /* our own Ed25519 key: corrupt messages are validly signed */
  uint8_t *buf;     /* WIRE_FRAME_MAX_BODY: a falsified frame */
  rt_byz_enqueue_fn enqueue;
  uv_timer_t timer;
  int timer_ready;
  held *q; /* ring of delayed frames */
  uint32_t head, count, cap;
  uint64_t bytes, delay_drops;
};

static int ed_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  rt_replica *r = ctx;
  return bft_sign(&r->kp, r->cluster->id, tag, msg, len, sig);
}

static void release_due(uv_timer_t *t) {
  rt_byz_shell *b = t->data;
  uint64_t now = uv_now(b->r->loop);
  while (b->count && b->q[b->head].due_ms <= now) {
    held *h = &b->q[b->head];
    b->enqueue(b->r, h->to, h->f);
    b->bytes -= h->f->len;
    rt_frame_unref(h->f);
    b->head = (b->head + 1) % b->cap;
    b->count--;
  }
  if (b->count) uv_timer_start(&b->timer, release_due, b->q[b->head].due_ms - now, 0);
}

static void hold(rt_byz_shell *b, uint32_t to, rt_frame *f) {
  if (b->count == b->cap || b->bytes + f->len > RT_BYZ_DELAY_MAX_BYTES) {
    b->delay_drops++; /* bounded: a delayed replica that falls too far behind loses frames */
    return;
  }
  uint32_t tail = (b->head + b->count) % b->cap;
  rt_frame_ref(f);
  b->q[tail] = (held){to, f, uv_now(b->r->loop) + b->byz.cfg.delay_ms};
  b->bytes += f->len;
  if (b->count++ == 0) uv_timer_start(&b->timer, release_due, b->byz.cfg.delay_ms, 0);
}

static void out(rt_byz_shell *b, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  rt_frame *f = rt_frame_new(kind, b->r->self, body, len);
  if (!f) return;
  if (b->byz.cfg.modes & RT_BYZ_DELAY)
    hold(b, to, f);
  else
    b->enqueue(b->r, to, f);
  rt_frame_unref(f);
}

int rt_byz_shell_open(rt_byz_shell **out_b, rt_replica *r, const char *spec, rt_byz_enqueue_fn enqueue, char *err,
                      size_t errlen) {
  *out_b = NULL;
  rt_byz_config cfg;
  int rc = rt_byz_parse(spec, r->cluster->n, r->self, &cfg, err, errlen);
  if (rc) return rc;
  rt_byz_shell *b = calloc(1, sizeof *b);
  if (!b) return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  b->r = r;
  b->enqueue = enqueue;
  b->crypto = (rt_crypto){.ctx = r, .sign = ed_sign};
  b->buf = malloc(WIRE_FRAME_MAX_BODY);
  b->cap = RT_BYZ_DELAY_MAX_FRAMES;
  b->q = (cfg.modes & RT_BYZ_DELAY) ? calloc(b->cap, sizeof *b->q) : NULL;
  if (!b->buf || ((cfg.modes & RT_BYZ_DELAY) && !b->q)) {
    rt_byz_shell_close(b);
    return snprintf(err, errlen, "out of memory"), BFT_E_NOMEM;
  }
  uint64_t seed;
  randombytes_buf(&seed, sizeof seed);
  rt_byz_init(&b->byz, &cfg, r->ops, r->cluster->n, r->self, seed);
  uv_timer_init(r->loop, &b->timer);
  b->timer.data = b;
  b->timer_ready = 1;
  char desc[160];
  rt_byz_describe(&cfg, desc, sizeof desc);
  rt_logf(&r->log, RT_LOG_WARN, COMP,
          "event=byzantine_mode modes=%s note=\"THIS REPLICA MISBEHAVES ON PURPOSE (security testing): do not count "
          "it as correct; more than f such replicas void the protocol's guarantees\"",
          desc);
  *out_b = b;
  return 0;
}

void rt_byz_shell_send(rt_byz_shell *b, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len) {
  int v = rt_byz_outgoing(&b->byz, to, kind, body, len, b->buf, &b->crypto);
  if (v == RT_BYZ_SEND) out(b, to, kind, body, len);
  else if (v == RT_BYZ_REPLACED) out(b, to, kind, b->buf, len);
  uint32_t rto, rlen;
  uint8_t rkind;
  const uint8_t *rbody;
  if (rt_byz_replay(&b->byz, &rto, &rkind, &rbody, &rlen)) out(b, rto, rkind, rbody, rlen);
}

uint32_t rt_byz_shell_modes(const rt_byz_shell *b) { return b->byz.cfg.modes; }

void rt_byz_shell_describe(const rt_byz_shell *b, char *buf, size_t cap) {
  char modes[160];
  rt_byz_describe(&b->byz.cfg, modes, sizeof modes);
  snprintf(buf, cap,
           "byzantine=%s byz_dropped=%llu byz_corrupted=%llu byz_bad_sigs=%llu byz_replayed=%llu byz_withheld=%llu "
           "byz_delayed=%u byz_delay_drops=%llu",
           modes, (unsigned long long)b->byz.dropped, (unsigned long long)b->byz.corrupted,
           (unsigned long long)b->byz.bad_sigs, (unsigned long long)b->byz.replayed, (unsigned long long)b->byz.withheld,
           b->count, (unsigned long long)b->delay_drops);
}

static void on_timer_closed(uv_handle_t *h) {
  rt_byz_shell *b = h->data;
  free(b);
}

void rt_byz_shell_close(rt_byz_shell *b) {
  if (!b) return;
  while (b->count) {
    rt_frame_unref(b->q[b->head].f);
    b->head = (b->head + 1) % b->cap;
    b->count--;
  }
  free(b->q);
  free(b->buf);
  rt_byz_free(&b->byz);
  if (b->timer_ready) {
    uv_close((uv_handle_t *)&b->timer, on_timer_closed); /* freed once libuv lets go */
    return;
  }
  free(b);
}
