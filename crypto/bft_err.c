/* Text for each error code of bft_err.h. */
#include "crypto/bft_err.h"

#include <stdio.h>
#include <stdlib.h>

const char *bft_strerror(int err) {
  switch (err) {
  case BFT_OK: return "ok";
  case BFT_E_INVAL: return "invalid argument";
  case BFT_E_TRUNCATED: return "truncated input";
  case BFT_E_TOO_LARGE: return "length exceeds its maximum";
  case BFT_E_TRAILING: return "trailing bytes after value";
  case BFT_E_MALFORMED: return "malformed value";
  case BFT_E_BAD_SIG: return "bad signature";
  case BFT_E_NOMEM: return "out of memory";
  case BFT_E_IO: return "input/output error";
  case BFT_E_PERM: return "private key file is accessible by group or others";
  case BFT_E_CONFIG: return "bad configuration";
  case BFT_E_BAD_MAGIC: return "bad magic number";
  case BFT_E_VERSION: return "unsupported version";
  case BFT_E_UNKNOWN_SENDER: return "unknown sender";
  case BFT_E_STALE: return "stale message";
  case BFT_E_WINDOW: return "outside the watermarks";
  case BFT_E_BAD_DIGEST: return "digest mismatch";
  case BFT_E_BAD_CERT: return "invalid certificate";
  case BFT_E_DUPLICATE: return "duplicate";
  case BFT_E_FULL: return "bounded buffer full";
  case BFT_E_NOT_PERMITTED: return "not permitted by the cluster file";
  case BFT_E_UNSUPPORTED: return "unsupported";
  case BFT_E_STATE: return "not valid in the current state";
  case BFT_E_CRYPTO: return "crypto library failure";
  case BFT_E_TIMEOUT: return "timed out";
  default: return "unknown error";
  }
}

void bft_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "level=fatal comp=assert expr=\"%s\" at=%s:%d\n", expr, file, line);
  abort();
}
