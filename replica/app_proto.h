/* The application socket protocol (docs/app-socket.md), shared by the replica's client side
 * (app_socket.c, bft-replica --app unix:PATH) and the server side (app_server.c,
 * bft_app_serve_unix). Frames: u32 length (of what follows) | u8 type | payload, little-endian,
 * strings and byte strings as u32 length + bytes (protocols/wire/wire.h). Every request gets
 * exactly one answer of type request|0x80, or APP_MSG_ERROR. */
#ifndef RT_APP_PROTO_H
#define RT_APP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "bft_app.h"

#define APP_PROTO_VERSION 1
#define APP_MAX_FRAME (2u * BFT_APP_MAX_BATCH * (BFT_APP_MAX_RESULT + 64u) + BFT_APP_MAX_CHUNK)

enum app_msg {
  APP_MSG_HELLO = 0x01,          /* u32 version | blob peer name  ->  u32 version | blob app name | u64 height
                                  * | digest[32] | u32 features */
  APP_MSG_EXECUTE = 0x02,        /* u64 height | u32 n | n x op  ->  u64 height | u32 n | n x (u8 status |
                                  * blob result) | digest[32] */
  APP_MSG_DIGEST = 0x03,         /* -> digest[32] */
  APP_MSG_SNAPSHOT_BEGIN = 0x04, /* -> (empty) */
  APP_MSG_SNAPSHOT_NEXT = 0x05,  /* u32 max  ->  u8 done | blob chunk */
  APP_MSG_SNAPSHOT_END = 0x06,   /* -> (empty) */
  APP_MSG_RESTORE_BEGIN = 0x07,  /* u64 height -> (empty) */
  APP_MSG_RESTORE_CHUNK = 0x08,  /* blob chunk -> (empty) */
  APP_MSG_RESTORE_END = 0x09,    /* -> digest[32] */
  APP_MSG_CHECK = 0x0A,          /* u32 n | n x op  ->  u32 n | n x (u8 verdict | blob reason) */
  APP_MSG_QUERY = 0x0B,          /* blob query  ->  u8 status | blob result */
  APP_MSG_ERROR = 0x7F           /* app -> replica, instead of an answer: blob message */
};
/* op := u32 client | client_key[32] | u64 seq | blob op */
#define APP_FEATURE_CHECK 1u
#define APP_FEATURE_QUERY 2u
#define APP_FEATURE_SNAPSHOT 4u

/* Blocking I/O on a socket with a deadline (timeout_ms < 0: none). 0, or -1 with errno-like
 * text in why. */
int app_write_all(int fd, const uint8_t *p, size_t len, int timeout_ms, char *why, size_t whylen);
int app_read_all(int fd, uint8_t *p, size_t len, int timeout_ms, char *why, size_t whylen);
/* Read one frame into *buf (grown as needed up to APP_MAX_FRAME): its type and payload
 * length. 0, 1 on a clean EOF before the first byte, or -1 with why. */
int app_read_frame(int fd, uint8_t **buf, size_t *cap, uint8_t *type, uint32_t *len, int timeout_ms, char *why,
                   size_t whylen);
/* Room for a frame payload of n bytes after the 5-byte header in *buf (grown as needed):
 * where the payload goes, or NULL when out of memory. */
uint8_t *app_frame_room(uint8_t **buf, size_t *cap, size_t n);

#endif
