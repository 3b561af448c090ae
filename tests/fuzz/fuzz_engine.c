/* Fuzz every engine's message decoders and handlers: the input is a sequence of messages
 * (u8 kind | u8 sender | u16 length | body) stepped into a fresh engine whose env accepts
 * every signature, so the fuzzer reaches past the signature checks into decoding, quorum
 * counting, view change and certificate validation. Nothing may crash or overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/engine.h"
#include "protocols/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_sign(void *ctx, const char *tag, const uint8_t *msg, uint32_t len, uint8_t sig[BFT_SIG_LEN]) {
  memset(sig, 0, BFT_SIG_LEN);
}
static int fz_verify(void *ctx, uint32_t signer, const char *tag, const uint8_t *msg, uint32_t len,
                     const uint8_t sig[BFT_SIG_LEN]) {
  return 0;
}
static int fz_check_batch(void *ctx, const uint8_t *batch, uint32_t len) {
  return bft_batch_check(NULL, batch, len);
}

typedef struct fz_ctx {
  void *state;
  size_t state_size;
  bft_action *items;
  uint8_t *arena;
} fz_ctx;

static fz_ctx *ctx_for(const bft_engine_ops *ops) {
  static fz_ctx c; /* one engine's buffers, reused across inputs (fuzzer harness only) */
  if (!c.items) {
    c.items = malloc(sizeof(bft_action) * BFT_MAX_ACTIONS);
    c.arena = malloc(BFT_ACTION_ARENA);
  }
  if (c.state_size < ops->state_size) {
    free(c.state);
    c.state = malloc(ops->state_size);
    c.state_size = ops->state_size;
  }
  return &c;
}

static void run(const bft_engine_ops *ops, uint32_t self, const uint8_t *data, size_t size) {
  fz_ctx *c = ctx_for(ops);
  bft_engine_config cfg;
  bft_engine_config_defaults(&cfg, 4, self);
  cfg.window = 8;
  cfg.checkpoint_interval = 2;
  for (uint32_t i = 0; i < 4; i++) memset(cfg.pubkeys[i], (int)i + 1, BFT_PK_LEN);
  bft_engine_env env = {.ctx = NULL, .sign = fz_sign, .verify = fz_verify, .check_batch = fz_check_batch};
  memset(c->state, 0, ops->state_size);
  if (ops->init(c->state, &cfg, &env) != 0) abort();
  bft_actions out;
  bft_actions_init(&out, c->items, BFT_MAX_ACTIONS, c->arena, BFT_ACTION_ARENA);
  ops->start(c->state, &out);
  size_t off = 0;
  while (size - off >= 4) {
    uint8_t kind = data[off], from = data[off + 1] % 4;
    uint32_t len = (uint32_t)data[off + 2] | (uint32_t)data[off + 3] << 8;
    off += 4;
    if (len > size - off) len = (uint32_t)(size - off);
    bft_event ev = {.type = BFT_EV_MESSAGE};
    if (kind >= 0xF0) { /* a few timer and request events between messages */
      ev.type = kind & 1 ? BFT_EV_TIMER : BFT_EV_REQUEST;
      ev.u.timer.id = from;
      ev.u.timer.tag = len;
    } else {
      ev.u.msg.from = from;
      ev.u.msg.kind = (uint8_t)(kind % 8);
      ev.u.msg.body = data + off;
      ev.u.msg.len = len;
      if (from == self || !ops->msg_tag(ev.u.msg.kind) || len < BFT_SIG_LEN) {
        off += len;
        continue;
      }
    }
    bft_actions_reset(&out);
    (void)ops->step(c->state, &ev, &out);
    if (out.overflow) abort(); /* an engine must bound what one step emits */
    off += len;
  }
  bft_engine_status st;
  ops->status(c->state, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *names[] = {"pbft", "hotstuff", "tendermint"};
  const bft_engine_ops *ops = NULL;
  for (unsigned i = 0; i < 3 && !ops; i++) ops = bft_engine_find(names[(data[0] + i) % 3]);
  if (!ops) return 0;
  /* Alternate the replica's role: 0 is the primary of view 0, 1 a backup. */
  run(ops, data[0] & 0x80 ? 0 : 1, data + 1, size - 1);
  return 0;
}
