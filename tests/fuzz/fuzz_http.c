/* Fuzz the /metrics endpoint's HTTP request-head parser (replica/metrics.c) and the signed
 * status decoder (protocols/status.c): any bytes from a stranger. Nothing may read out of
 * bounds; an accepted head must lie within the input and its fields be terminated. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocols/status.h"
#include "replica/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_http_request rq;
  int r = rt_http_parse((const char *)data, size, &rq);
  if (r == RT_HTTP_OK) {
    if (rq.head_len == 0 || rq.head_len > size || rq.head_len > RT_HTTP_MAX_REQUEST) __builtin_trap();
    if (strlen(rq.method) >= sizeof rq.method || strlen(rq.target) > RT_HTTP_MAX_TARGET) __builtin_trap();
    /* The same head parses the same way on its own. */
    rt_http_request again;
    if (rt_http_parse((const char *)data, rq.head_len, &again) != RT_HTTP_OK || again.head_len != rq.head_len)
      __builtin_trap();
  }
  uint8_t pk[BFT_PK_LEN] = {0}, cid[BFT_CLUSTER_ID_LEN] = {0};
  bft_status st;
  (void)bft_status_decode(data, (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size), pk, cid, &st);
  return 0;
}
