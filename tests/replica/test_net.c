/* Unit tests of the transport's bounded queues and shared frames: a slow or dead peer's queue
 * never exceeds its bounds (oldest frames dropped and counted), client queues refuse instead,
 * a group budget is shared, and a broadcast frame is freed when its last queue lets go. And
 * the read side over a real loopback connection: complete frames are parsed in the shared
 * buffer, a partial frame holds only what arrived, and an idle connection holds no buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* ---- read side ---------------------------------------------------------------------------- */

typedef struct rd_ctx {
  uv_loop_t loop;
  uv_tcp_t server;
  rt_conn *conn;
  uint8_t spare[RT_READ_CHUNK];
  int frames, closed;
} rd_ctx;

static int rd_on_frame(rt_conn *c, const wire_frame_header *h, const uint8_t *body) {
  rd_ctx *x = c->owner;
  (void)h;
  (void)body;
  x->frames++;
  return 0;
}
static void rd_on_closing(rt_conn *c, const char *why) {
  (void)why;
  ((rd_ctx *)c->owner)->closed = 1;
}
static const rt_conn_handler RD_HANDLER = {rd_on_frame, rd_on_closing, NULL, NULL, NULL};

static void rd_on_connection(uv_stream_t *server, int status) {
  rd_ctx *x = server->data;
  assert_int_equal(status, 0);
  x->conn = rt_conn_new(&x->loop, &RD_HANDLER, x, 1, 16, 1 << 20);
  assert_non_null(x->conn);
  x->conn->spare = x->spare;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&x->conn->tcp), 0);
  assert_int_equal(rt_conn_start(x->conn), 0);
}

static void rd_pump(rd_ctx *x) { /* let the loop read what the kernel holds */
  for (int i = 0; i < 50; i++) {
    uv_run(&x->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static void rd_write(int fd, const uint8_t *p, size_t n) { assert_int_equal(write(fd, p, n), (ssize_t)n); }

static void test_read_buffers(void **state) {
  (void)state;
  static rd_ctx x;
  memset(&x, 0, sizeof x);
  assert_int_equal(uv_loop_init(&x.loop), 0);
  uv_tcp_init(&x.loop, &x.server);
  x.server.data = &x;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&x.server, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&x.server, 8, rd_on_connection), 0);
  struct sockaddr_storage ss;
  int alen = sizeof ss;
  assert_int_equal(uv_tcp_getsockname(&x.server, (struct sockaddr *)&ss, &alen), 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&ss, (socklen_t)alen), 0);
  rd_pump(&x);
  assert_non_null(x.conn);

  rt_frame *f = frame_of(100, 1);
  rd_write(fd, f->data, f->len);     /* one whole frame ... */
  rd_write(fd, f->data, 5);          /* ... and 5 bytes of the next */
  rd_pump(&x);
  assert_int_equal(x.frames, 1);
  assert_int_equal(x.conn->rlen, 5); /* only the partial frame is kept, in a small buffer */
  assert_true(x.conn->rcap <= WIRE_FRAME_HEADER_LEN + 4096);
  rd_write(fd, f->data + 5, f->len - 5);
  rd_pump(&x);
  assert_int_equal(x.frames, 2);
  assert_null(x.conn->rbuf);         /* idle: no read buffer at all */
  assert_int_equal(x.conn->rcap, 0);
  rt_frame_unref(f);

  /* A header announcing a large body, then a trickle: the buffer follows what arrived. */
  uint8_t hdr[WIRE_FRAME_HEADER_LEN], chunk[100];
  memset(chunk, 9, sizeof chunk);
  x.conn->max_body = 1u << 20;
  wire_frame_header_encode(hdr, WIRE_KIND_REQUEST, WIRE_SENDER_CLIENT, 200000);
  rd_write(fd, hdr, sizeof hdr);
  rd_write(fd, chunk, sizeof chunk);
  rd_pump(&x);
  assert_int_equal(x.conn->rlen, sizeof hdr + sizeof chunk);
  assert_true(x.conn->rcap < 2 * RT_READ_CHUNK);

  close(fd);
  rd_pump(&x);
  assert_int_equal(x.closed, 1);
  uv_close((uv_handle_t *)&x.server, NULL);
  uv_run(&x.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&x.loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_encoding),
      cmocka_unit_test(test_drop_oldest),
      cmocka_unit_test(test_refuse_and_share),
      cmocka_unit_test(test_read_buffers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
