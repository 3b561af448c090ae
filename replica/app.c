/* Helpers over the public application interface: whole-state snapshot and restore over the
 * chunked calls, and the check that an ops table is usable. */
#include "replica/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rt_app_valid(const bft_app_ops *o, char *why, size_t whylen) {
  const char *bad = NULL;
  if (!o || !o->execute || !o->digest) bad = "execute and digest are required";
  else if (!!o->snapshot_begin + !!o->snapshot_next + !!o->snapshot_end != 0 &&
           !(o->snapshot_begin && o->snapshot_next && o->snapshot_end))
    bad = "snapshot_begin, snapshot_next and snapshot_end go together";
  else if (!!o->restore_begin + !!o->restore_chunk + !!o->restore_end != 0 &&
           !(o->restore_begin && o->restore_chunk && o->restore_end))
    bad = "restore_begin, restore_chunk and restore_end go together";
  if (bad && why) snprintf(why, whylen, "application %s: %s", o && o->name ? o->name : "?", bad);
  return bad == NULL;
}

int bft_app_snapshot_all(const bft_app *app, uint8_t **out, size_t *len) {
  const bft_app_ops *o = app->ops;
  if (!o->snapshot_begin) return BFT_E_UNSUPPORTED;
  void *cur = NULL;
  int rc = o->snapshot_begin(app->state, &cur);
  if (rc) return rc < 0 ? rc : BFT_E_STATE;
  size_t cap = 1u << 16, n = 0;
  uint8_t *buf = malloc(cap);
  int done = 0;
  while (!rc && buf && !done) {
    if (cap - n < BFT_APP_MAX_CHUNK) {
      uint8_t *nb = realloc(buf, cap * 2 > n + BFT_APP_MAX_CHUNK ? cap * 2 : n + BFT_APP_MAX_CHUNK);
      if (!nb) break;
      buf = nb;
      cap = cap * 2 > n + BFT_APP_MAX_CHUNK ? cap * 2 : n + BFT_APP_MAX_CHUNK;
    }
    uint32_t l = 0;
    rc = o->snapshot_next(app->state, cur, buf + n, BFT_APP_MAX_CHUNK, &l, &done);
    if (!rc && l > BFT_APP_MAX_CHUNK) rc = BFT_E_TOO_LARGE;
    n += l;
  }
  o->snapshot_end(app->state, cur);
  if (!rc && !done) rc = BFT_E_NOMEM;
  if (rc) {
    free(buf);
    return rc < 0 ? rc : BFT_E_STATE;
  }
  *out = buf;
  *len = n;
  return 0;
}

int bft_app_restore_all(const bft_app *app, uint64_t height, const uint8_t *snap, size_t len) {
  const bft_app_ops *o = app->ops;
  if (!o->restore_begin) return BFT_E_UNSUPPORTED;
  int rc = o->restore_begin(app->state, height);
  for (size_t off = 0; !rc && off < len; off += BFT_APP_MAX_CHUNK) {
    size_t l = len - off < BFT_APP_MAX_CHUNK ? len - off : BFT_APP_MAX_CHUNK;
    rc = o->restore_chunk(app->state, snap + off, (uint32_t)l);
  }
  if (!rc) rc = o->restore_end(app->state);
  return rc < 0 ? rc : rc ? BFT_E_STATE : 0;
}
