/* Unit tests of the transport's bounded queues and shared frames: a slow or dead peer's queue
 * never exceeds its bounds (oldest frames dropped and counted), client queues refuse instead,
 * a group budget is shared, and a broadcast frame is freed when its last queue lets go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "replica/net.h"

static rt_frame *frame_of(uint32_t body_len, uint8_t tag) {
  uint8_t body[256];
  memset(body, tag, sizeof body);
  return rt_frame_new(WIRE_KIND_ENGINE + 1, 3, body, body_len);
}

static void test_frame_encoding(void **state) {
  rt_frame *f = frame_of(100, 7);
  assert_int_equal(f->len, WIRE_FRAME_HEADER_LEN + 100);
  wire_frame_header h;
  const uint8_t *body;
  assert_int_equal(wire_frame_decode(f->data, f->len, &h, &body), 0);
  assert_int_equal(h.kind, WIRE_KIND_ENGINE + 1);
  assert_int_equal(h.sender, 3);
  assert_int_equal(h.body_len, 100);
  assert_int_equal(body[99], 7);
  rt_frame_unref(f);
}

static void test_drop_oldest(void **state) {
  rt_outq q;
  rt_outq_init(&q, 10, 10 * (WIRE_FRAME_HEADER_LEN + 100));
  uint64_t dropped = 0;
  for (uint8_t i = 0; i < 25; i++) {
    rt_frame *f = frame_of(100, i);
    assert_int_equal(rt_outq_push(&q, f, 1, &dropped), 0);
    rt_frame_unref(f);
    assert_true(q.count <= 10);
    assert_true(q.bytes <= q.max_bytes);
  }
  assert_int_equal(dropped, 15);
  rt_frame *f = rt_outq_pop(&q); /* the newest ten survive, in order */
  assert_int_equal(f->data[WIRE_FRAME_HEADER_LEN], 15);
  rt_frame_unref(f);
  /* a byte bound drops as many old frames as a large one needs */
  rt_frame *big = frame_of(250, 99);
  assert_int_equal(rt_outq_push(&q, big, 1, &dropped), 0);
  rt_frame_unref(big);
  assert_true(q.bytes <= q.max_bytes);
  assert_int_equal(dropped, 17);
  rt_outq_free(&q);
  assert_int_equal(q.count, 0);
}

static void test_refuse_and_share(void **state) {
  uint64_t group = 0;
  rt_outq a, b;
  rt_outq_init(&a, 100, 1000);
  rt_outq_init(&b, 100, 1000);
  a.shared = b.shared = &group;
  a.shared_max = b.shared_max = 500;
  rt_frame *f = frame_of(100, 1); /* 116 bytes */
  assert_int_equal(rt_outq_push(&a, f, 0, NULL), 0);
  assert_int_equal(rt_outq_push(&a, f, 0, NULL), 0);
  assert_int_equal(rt_outq_push(&b, f, 0, NULL), 0);
  assert_int_equal(rt_outq_push(&b, f, 0, NULL), 0);
  assert_int_equal(group, 4 * 116);
  assert_int_equal(rt_outq_push(&b, f, 0, NULL), BFT_E_FULL); /* the group budget */
  rt_frame_unref(rt_outq_pop(&a));
  assert_int_equal(group, 3 * 116);
  assert_int_equal(rt_outq_push(&b, f, 0, NULL), 0);
  /* one frame shared by every queue: freed after the last reference goes */
  assert_int_equal(f->refs, 5); /* ours, one in a, three in b */
  rt_outq_free(&a);
  rt_outq_free(&b);
  assert_int_equal(f->refs, 1);
  assert_int_equal(group, 0);
  rt_frame_unref(f);
  /* a frame over a queue's whole bound is refused even when dropping */
  rt_outq small;
  rt_outq_init(&small, 4, 50);
  rt_frame *g = frame_of(100, 2);
  assert_int_equal(rt_outq_push(&small, g, 1, NULL), BFT_E_TOO_LARGE);
  rt_frame_unref(g);
  rt_outq_free(&small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_encoding),
      cmocka_unit_test(test_drop_oldest),
      cmocka_unit_test(test_refuse_and_share),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
