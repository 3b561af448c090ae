/* Append-only files of checksummed records, the storage under the WAL and the ledger:
 *   record := u32 len | u32 crc32c(len || data) | data[len]      (little-endian)
 * Appends are buffered and reach the disk at the next rt_recfile_sync (write + fdatasync), so
 * the caller decides when one sync covers many records (group commit). Opening scans every
 * record: a torn tail (what a crash during an append leaves) is truncated; a bad record with
 * intact data after it is corruption and opening fails. */
#ifndef RT_RECFILE_H
#define RT_RECFILE_H

#include <stddef.h>
#include <stdint.h>

#include "replica/rt_limits.h"

#define RT_RECORD_HEADER 8u

/* A file kept in memory instead of on disk (the simulator's disk): it survives the rt_recfile
 * that wrote it, as a file survives a process. `synced` is what the last sync made durable; a
 * simulated crash may keep any prefix of the bytes after it (a torn tail). Owned by the caller;
 * free data with rt_memfile_free. */
typedef struct rt_memfile {
  uint8_t *data;
  size_t len, cap;
  size_t synced;
  uint64_t syncs;
} rt_memfile;
void rt_memfile_free(rt_memfile *m);

typedef struct rt_recfile {
  int fd;
  rt_memfile *mem;   /* non-NULL: the file lives here, fd is unused */
  uint32_t max_record;
  uint64_t size;     /* logical size: on disk plus buffered */
  uint64_t written;  /* bytes handed to write() */
  uint64_t synced;   /* bytes known durable */
  uint8_t *wbuf;     /* appends not yet written */
  size_t wlen, wcap;
  char path[RT_PATH_MAX];
  int last_errno;    /* errno of the last failed write or sync (0: none), for the fatal line */
  uint64_t nsyncs;   /* syncs of this file so far (the injected-failure hook counts them) */
  uint64_t fail_sync_at; /* test hook: the sync with this number fails with ENOSPC (0: never) */
  int hold;          /* 1: appends reach the file only at a sync (never early, at 1 MiB) */
} rt_recfile;

/* bft-replica --unsafe-no-fsync: from now on, syncs of every record file in this process write
 * but skip fdatasync (a power loss or kernel crash may lose acknowledged records and let the
 * replica contradict what it signed; a killed process loses nothing). For measuring what the
 * protocols cost without the disk; never for data anyone keeps. Set once, before opening. */
void rt_recfile_set_unsafe_no_sync(int on);
int rt_recfile_unsafe_no_sync(void);

/* Test hook for the disk-full path: BFT_TEST_FAIL_SYNC="NAME:N" makes the N-th sync (N >= 1)
 * of every record file whose name (last path component) is NAME fail as if the disk were
 * full (ENOSPC). Read when a file is opened; no effect when unset. */
#define RT_FAIL_SYNC_ENV "BFT_TEST_FAIL_SYNC"
/* The N of RT_FAIL_SYNC_ENV for a file of this path, or 0. Also used by the snapshot store. */
uint64_t rt_fail_sync_at(const char *path);

/* Called for each good record during open; a non-zero return stops the scan with that code. */
typedef int (*rt_record_fn)(void *arg, uint64_t off, const uint8_t *data, uint32_t len);

uint32_t rt_crc32c(uint32_t crc, const void *data, size_t len);

/* Open (creating if missing) and scan. *torn gets the bytes truncated from the tail (0 when
 * none). On failure returns BFT_E_IO or BFT_E_MALFORMED and writes one line to err. */
int rt_recfile_open(rt_recfile *f, const char *path, uint32_t max_record, rt_record_fn fn, void *arg,
                    uint64_t *torn, char *err, size_t errlen);
/* The same over a memory file (path only names it in messages). */
int rt_recfile_open_mem(rt_recfile *f, rt_memfile *mem, const char *path, uint32_t max_record, rt_record_fn fn,
                        void *arg, uint64_t *torn, char *err, size_t errlen);
/* Queue one record; *off (may be NULL) gets its offset. BFT_E_TOO_LARGE over max_record. */
int rt_recfile_append(rt_recfile *f, const uint8_t *data, uint32_t len, uint64_t *off);
/* Write what is buffered and fdatasync when anything was appended since the last sync. */
int rt_recfile_sync(rt_recfile *f);
/* 1 when appended records are not yet durable. */
int rt_recfile_dirty(const rt_recfile *f);
/* Read and check the record at off into buf (cap bytes); *len gets its length. */
int rt_recfile_read(rt_recfile *f, uint64_t off, uint8_t *buf, uint32_t cap, uint32_t *len);
/* Replace the whole file by these records atomically (temporary file, fsync, rename, fsync of
 * the folder). On failure the old file is untouched. */
int rt_recfile_rewrite(rt_recfile *f, const uint8_t *const *recs, const uint32_t *lens, uint32_t n);
void rt_recfile_close(rt_recfile *f);

#endif
