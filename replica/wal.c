/* Write-ahead log of engine PERSIST records over a checksummed record file. */
#include "replica/wal.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct wal_open_ctx {
  rt_wal *w;
  rt_record_fn fn;
  void *arg;
} wal_open_ctx;

static int count_record(void *arg, uint64_t off, const uint8_t *data, uint32_t len) {
  wal_open_ctx *c = arg;
  c->w->records++;
  return c->fn ? c->fn(c->arg, off, data, len) : 0;
}

int rt_wal_open(rt_wal *w, const char *dir, rt_record_fn fn, void *arg, uint64_t *torn, char *err,
                size_t errlen) {
  char path[RT_PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/wal", dir) >= sizeof path) {
    snprintf(err, errlen, "%s: path too long", dir);
    return BFT_E_INVAL;
  }
  w->records = 0;
  wal_open_ctx c = {w, fn, arg};
  int rc = rt_recfile_open(&w->f, path, RT_WAL_MAX_RECORD, count_record, &c, torn, err, errlen);
  /* Nothing of the WAL reaches the file before the ledger's blocks of the same group commit
   * (rt_core_sync syncs the ledger first): a record must not claim a block a crash loses. */
  w->f.hold = 1;
  return rc;
}

int rt_wal_open_mem(rt_wal *w, rt_memfile *mem, rt_record_fn fn, void *arg, uint64_t *torn, char *err,
                    size_t errlen) {
  w->records = 0;
  wal_open_ctx c = {w, fn, arg};
  return rt_recfile_open_mem(&w->f, mem, "mem:wal", RT_WAL_MAX_RECORD, count_record, &c, torn, err, errlen);
}

int rt_wal_append(rt_wal *w, const uint8_t *rec, uint32_t len) {
  int rc = rt_recfile_append(&w->f, rec, len, NULL);
  if (!rc) w->records++;
  return rc;
}

int rt_wal_sync(rt_wal *w) { return rt_recfile_sync(&w->f); }

uint64_t rt_wal_size(const rt_wal *w) { return w->f.size; }

int rt_wal_rewrite(rt_wal *w, const bft_actions *acts) {
  if (rt_recfile_dirty(&w->f)) return BFT_E_STATE;
  const uint8_t **recs = calloc(acts->count ? acts->count : 1, sizeof *recs);
  uint32_t *lens = calloc(acts->count ? acts->count : 1, sizeof *lens);
  int rc = (!recs || !lens) ? BFT_E_NOMEM : 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < acts->count && !rc; i++) {
    const bft_action *a = &acts->items[i];
    if (a->type != BFT_ACT_PERSIST) rc = BFT_E_INVAL;
    else if (a->len) {
      recs[n] = a->data;
      lens[n++] = a->len;
    }
  }
  if (!rc) rc = rt_recfile_rewrite(&w->f, recs, lens, n);
  if (!rc) w->records = n;
  free(recs);
  free(lens);
  return rc;
}

void rt_wal_close(rt_wal *w) { rt_recfile_close(&w->f); }
