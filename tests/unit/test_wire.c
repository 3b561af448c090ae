/* The canonical codec: every type round-trips, every proper prefix of a valid frame is
 * rejected, oversized lengths are rejected before allocation, trailing bytes are rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "protocols/wire/wire.h"

static void test_roundtrip_all_types(void **st) {
  (void)st;
  uint8_t buf[256];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  const uint8_t fixed[3] = {9, 8, 7};
  wire_put_u8(&w, 0);
  wire_put_u8(&w, 0xFF);
  wire_put_u16(&w, 0xBEEF);
  wire_put_u32(&w, 0);
  wire_put_u32(&w, 0xFFFFFFFFu);
  wire_put_u64(&w, 0x0102030405060708ull);
  wire_put_u64(&w, UINT64_MAX);
  wire_put_bool(&w, 1);
  wire_put_bool(&w, 0);
  wire_put_fixed(&w, fixed, 3);
  wire_put_blob(&w, "hello", 5);
  wire_put_blob(&w, NULL, 0);
  assert_int_equal(w.err, 0);
  /* Little-endian, no padding: the u16 is at offset 2 as EF BE. */
  assert_int_equal(buf[2], 0xEF);
  assert_int_equal(buf[3], 0xBE);
  assert_int_equal(w.len, 1 + 1 + 2 + 4 + 4 + 8 + 8 + 1 + 1 + 3 + 4 + 5 + 4);

  wire_reader r;
  wire_reader_init(&r, buf, w.len);
  assert_int_equal(wire_get_u8(&r), 0);
  assert_int_equal(wire_get_u8(&r), 0xFF);
  assert_int_equal(wire_get_u16(&r), 0xBEEF);
  assert_int_equal(wire_get_u32(&r), 0);
  assert_int_equal(wire_get_u32(&r), 0xFFFFFFFFu);
  assert_true(wire_get_u64(&r) == 0x0102030405060708ull);
  assert_true(wire_get_u64(&r) == UINT64_MAX);
  assert_int_equal(wire_get_bool(&r), 1);
  assert_int_equal(wire_get_bool(&r), 0);
  uint8_t f[3];
  wire_get_fixed(&r, f, 3);
  assert_memory_equal(f, fixed, 3);
  uint32_t n;
  const uint8_t *b = wire_get_blob(&r, &n, 16);
  assert_int_equal(n, 5);
  assert_memory_equal(b, "hello", 5);
  b = wire_get_blob(&r, &n, 16);
  assert_int_equal(n, 0);
  assert_int_equal(wire_reader_finish(&r), 0);
}

static void test_distinct_errors(void **st) {
  (void)st;
  /* Truncated. */
  uint8_t three[3] = {1, 2, 3};
  wire_reader r;
  wire_reader_init(&r, three, 3);
  (void)wire_get_u32(&r);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TRUNCATED);
  /* Trailing. */
  wire_reader_init(&r, three, 3);
  (void)wire_get_u16(&r);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TRAILING);
  /* Oversized length: reported as TOO_LARGE even though the input is short, because the
   * length is checked against its maximum before anything else. */
  uint8_t huge[4] = {0xFF, 0xFF, 0xFF, 0xFF};
  uint32_t n = 77;
  wire_reader_init(&r, huge, 4);
  assert_null(wire_get_blob(&r, &n, 1024));
  assert_int_equal(n, 0);
  assert_int_equal(wire_reader_finish(&r), BFT_E_TOO_LARGE);
  wire_reader_init(&r, huge, 4);
  assert_int_equal(wire_get_count(&r, 100), 0);
  assert_int_equal(r.err, BFT_E_TOO_LARGE);
  /* Blob within max but longer than the input: truncated. */
  uint8_t shortblob[6] = {10, 0, 0, 0, 'a', 'b'};
  wire_reader_init(&r, shortblob, 6);
  assert_null(wire_get_blob(&r, &n, 1024));
  assert_int_equal(r.err, BFT_E_TRUNCATED);
  /* Non-canonical boolean. */
  uint8_t two = 2;
  wire_reader_init(&r, &two, 1);
  (void)wire_get_bool(&r);
  assert_int_equal(wire_reader_finish(&r), BFT_E_MALFORMED);
  /* The error is sticky: later reads return zero and do not move. */
  wire_reader_init(&r, three, 3);
  (void)wire_get_u64(&r);
  assert_int_equal(wire_get_u8(&r), 0);
  assert_int_equal(r.err, BFT_E_TRUNCATED);
}

static void test_writer_overflow_sticky(void **st) {
  (void)st;
  uint8_t buf[5];
  wire_writer w;
  wire_writer_init(&w, buf, sizeof buf);
  wire_put_u32(&w, 1);
  wire_put_u32(&w, 2);
  assert_int_equal(w.err, BFT_E_FULL);
  size_t len = w.len;
  wire_put_u8(&w, 3);
  assert_int_equal(w.len, len);
  assert_null(wire_put_reserve(&w, 1));
}

static size_t make_frame(uint8_t *out, uint32_t body_len) {
  wire_frame_header_encode(out, WIRE_KIND_REQUEST, 3, body_len);
  for (uint32_t i = 0; i < body_len; i++) out[WIRE_FRAME_HEADER_LEN + i] = (uint8_t)i;
  return WIRE_FRAME_HEADER_LEN + body_len;
}

static void test_frame_roundtrip_and_prefixes(void **st) {
  (void)st;
  uint8_t fr[WIRE_FRAME_HEADER_LEN + 40];
  size_t len = make_frame(fr, 40);
  wire_frame_header h;
  const uint8_t *body;
  assert_int_equal(wire_frame_decode(fr, len, &h, &body), 0);
  assert_int_equal(h.kind, WIRE_KIND_REQUEST);
  assert_int_equal(h.sender, 3);
  assert_int_equal(h.body_len, 40);
  assert_ptr_equal(body, fr + WIRE_FRAME_HEADER_LEN);
  for (size_t p = 0; p < len; p++)
    assert_int_equal(wire_frame_decode(fr, p, &h, &body), BFT_E_TRUNCATED);
  uint8_t longer[sizeof fr + 1];
  memcpy(longer, fr, len);
  longer[len] = 0;
  assert_int_equal(wire_frame_decode(longer, len + 1, &h, &body), BFT_E_TRAILING);
  /* An empty body is a valid frame too. */
  len = make_frame(fr, 0);
  assert_int_equal(wire_frame_decode(fr, len, &h, &body), 0);
}

static void test_frame_header_errors(void **st) {
  (void)st;
  uint8_t fr[WIRE_FRAME_HEADER_LEN + 4];
  wire_frame_header h;
  size_t len = make_frame(fr, 4);
  fr[0] ^= 1;
  assert_int_equal(wire_frame_header_decode(fr, len, &h), BFT_E_BAD_MAGIC);
  len = make_frame(fr, 4);
  fr[4] = 2;
  assert_int_equal(wire_frame_header_decode(fr, len, &h), BFT_E_VERSION);
  len = make_frame(fr, 4);
  fr[6] = 1; /* flags must be zero */
  assert_int_equal(wire_frame_header_decode(fr, len, &h), BFT_E_MALFORMED);
  len = make_frame(fr, 4);
  fr[5] = 0; /* kind 0 */
  assert_int_equal(wire_frame_header_decode(fr, len, &h), BFT_E_MALFORMED);
  /* An oversized body is refused from the header alone, before any body is read. */
  uint8_t hdr[WIRE_FRAME_HEADER_LEN];
  wire_frame_header_encode(hdr, WIRE_KIND_REQUEST, 0, WIRE_FRAME_MAX_BODY + 1);
  assert_int_equal(wire_frame_header_decode(hdr, sizeof hdr, &h), BFT_E_TOO_LARGE);
  wire_frame_header_encode(hdr, WIRE_KIND_REQUEST, 0, WIRE_FRAME_MAX_BODY);
  assert_int_equal(wire_frame_header_decode(hdr, sizeof hdr, &h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_all_types),
      cmocka_unit_test(test_distinct_errors),
      cmocka_unit_test(test_writer_overflow_sticky),
      cmocka_unit_test(test_frame_roundtrip_and_prefixes),
      cmocka_unit_test(test_frame_header_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
