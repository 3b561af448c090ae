/* Canonical little-endian codec with sticky errors, and the frame header. */
#include "protocols/wire/wire.h"

#include <string.h>

void wire_writer_init(wire_writer *w, uint8_t *buf, size_t cap) {
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->err = 0;
}

uint8_t *wire_put_reserve(wire_writer *w, size_t n) {
  if (w->err) return NULL;
  if (n > w->cap - w->len) {
    w->err = BFT_E_FULL;
    return NULL;
  }
  uint8_t *p = w->buf + w->len;
  w->len += n;
  return p;
}

static void put_le(wire_writer *w, uint64_t v, int n) {
  uint8_t *p = wire_put_reserve(w, (size_t)n);
  if (!p) return;
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void wire_put_u8(wire_writer *w, uint8_t v) { put_le(w, v, 1); }
void wire_put_u16(wire_writer *w, uint16_t v) { put_le(w, v, 2); }
void wire_put_u32(wire_writer *w, uint32_t v) { put_le(w, v, 4); }
void wire_put_u64(wire_writer *w, uint64_t v) { put_le(w, v, 8); }
void wire_put_bool(wire_writer *w, int v) { put_le(w, v ? 1 : 0, 1); }

void wire_put_fixed(wire_writer *w, const void *p, size_t n) {
  uint8_t *d = wire_put_reserve(w, n);
  if (d && n) memcpy(d, p, n);
}

void wire_put_blob(wire_writer *w, const void *p, uint32_t n) {
  wire_put_u32(w, n);
  wire_put_fixed(w, p, n);
}

void wire_reader_init(wire_reader *r, const uint8_t *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
  r->err = 0;
}

static const uint8_t *take(wire_reader *r, size_t n) {
  if (r->err) return NULL;
  if (n > r->len - r->off) {
    r->err = BFT_E_TRUNCATED;
    return NULL;
  }
  const uint8_t *p = r->p + r->off;
  r->off += n;
  return p;
}

static uint64_t get_le(wire_reader *r, int n) {
  const uint8_t *p = take(r, (size_t)n);
  uint64_t v = 0;
  if (!p) return 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

uint8_t wire_get_u8(wire_reader *r) { return (uint8_t)get_le(r, 1); }
uint16_t wire_get_u16(wire_reader *r) { return (uint16_t)get_le(r, 2); }
uint32_t wire_get_u32(wire_reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t wire_get_u64(wire_reader *r) { return get_le(r, 8); }

int wire_get_bool(wire_reader *r) {
  uint8_t v = wire_get_u8(r);
  if (v > 1 && !r->err) r->err = BFT_E_MALFORMED;
  return v == 1;
}

void wire_get_fixed(wire_reader *r, void *out, size_t n) {
  const uint8_t *p = take(r, n);
  if (p) memcpy(out, p, n);
  else memset(out, 0, n);
}

const uint8_t *wire_get_view(wire_reader *r, size_t n) { return take(r, n); }

const uint8_t *wire_get_blob(wire_reader *r, uint32_t *n, uint32_t max) {
  uint32_t l = wire_get_u32(r);
  *n = 0;
  if (r->err) return NULL;
  if (l > max) {
    r->err = BFT_E_TOO_LARGE;
    return NULL;
  }
  const uint8_t *p = take(r, l);
  if (p) *n = l;
  return p;
}

uint32_t wire_get_count(wire_reader *r, uint32_t max) {
  uint32_t c = wire_get_u32(r);
  if (r->err) return 0;
  if (c > max) {
    r->err = BFT_E_TOO_LARGE;
    return 0;
  }
  return c;
}

size_t wire_remaining(const wire_reader *r) { return r->err ? 0 : r->len - r->off; }

int wire_reader_finish(const wire_reader *r) {
  if (r->err) return r->err;
  return r->off == r->len ? 0 : BFT_E_TRAILING;
}

void wire_frame_header_encode(uint8_t out[WIRE_FRAME_HEADER_LEN], uint8_t kind, uint32_t sender,
                              uint32_t body_len) {
  wire_writer w;
  wire_writer_init(&w, out, WIRE_FRAME_HEADER_LEN);
  wire_put_u32(&w, WIRE_MAGIC);
  wire_put_u8(&w, WIRE_VERSION);
  wire_put_u8(&w, kind);
  wire_put_u16(&w, 0);
  wire_put_u32(&w, sender);
  wire_put_u32(&w, body_len);
}

int wire_frame_header_decode(const uint8_t *p, size_t len, wire_frame_header *h) {
  if (len < WIRE_FRAME_HEADER_LEN) return BFT_E_TRUNCATED;
  wire_reader r;
  wire_reader_init(&r, p, WIRE_FRAME_HEADER_LEN);
  uint32_t magic = wire_get_u32(&r);
  h->version = wire_get_u8(&r);
  h->kind = wire_get_u8(&r);
  uint16_t flags = wire_get_u16(&r);
  h->sender = wire_get_u32(&r);
  h->body_len = wire_get_u32(&r);
  if (magic != WIRE_MAGIC) return BFT_E_BAD_MAGIC;
  if (h->version != WIRE_VERSION) return BFT_E_VERSION;
  if (flags != 0 || h->kind == 0) return BFT_E_MALFORMED;
  if (h->body_len > WIRE_FRAME_MAX_BODY) return BFT_E_TOO_LARGE;
  return 0;
}

int wire_frame_decode(const uint8_t *p, size_t len, wire_frame_header *h, const uint8_t **body) {
  int rc = wire_frame_header_decode(p, len, h);
  if (rc) return rc;
  size_t need = (size_t)WIRE_FRAME_HEADER_LEN + h->body_len;
  if (len < need) return BFT_E_TRUNCATED;
  if (len > need) return BFT_E_TRAILING;
  *body = p + WIRE_FRAME_HEADER_LEN;
  return 0;
}
