/* The write-ahead log of the engine's PERSIST records (DATA_DIR/wal). Records are appended as
 * the engine emits them and made durable by one fdatasync per loop iteration, before that
 * iteration's sends leave (group commit). At start every record is replayed, in order, through
 * the engine's restore(). Growth is bounded by compaction: past RT_WAL_COMPACT_BYTES the driver
 * asks the engine for records equivalent to everything persisted so far (ops->compact) and
 * atomically replaces the file with them. */
#ifndef RT_WAL_H
#define RT_WAL_H

#include "protocols/engine.h"
#include "replica/recfile.h"

typedef struct rt_wal {
  rt_recfile f;
  uint64_t records; /* in the file now */
} rt_wal;

/* Open DIR/wal, calling fn for each record in order. See rt_recfile_open for errors. */
int rt_wal_open(rt_wal *w, const char *dir, rt_record_fn fn, void *arg, uint64_t *torn, char *err,
                size_t errlen);
/* The same, kept in a memory file (the simulator's disk). */
int rt_wal_open_mem(rt_wal *w, rt_memfile *mem, rt_record_fn fn, void *arg, uint64_t *torn, char *err,
                    size_t errlen);
int rt_wal_append(rt_wal *w, const uint8_t *rec, uint32_t len);
int rt_wal_sync(rt_wal *w);
uint64_t rt_wal_size(const rt_wal *w);
/* Replace the log by the PERSIST records in acts (other actions are a caller bug: BFT_E_INVAL).
 * Call only when the log is synced. A failure leaves the process unable to trust the file. */
int rt_wal_rewrite(rt_wal *w, const bft_actions *acts);
void rt_wal_close(rt_wal *w);

#endif
