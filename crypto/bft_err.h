/* One error enum for the whole project (libuv style): functions return 0 or a negative
 * BFT_E* code. Lives in crypto/ because crypto is the bottom layer and knows nothing else. */
#ifndef BFT_ERR_H
#define BFT_ERR_H

enum bft_err {
  BFT_OK = 0,
  BFT_E_INVAL = -1,          /* bad argument from our own caller */
  BFT_E_TRUNCATED = -2,      /* input ended before the value did */
  BFT_E_TOO_LARGE = -3,      /* a length exceeds its named maximum */
  BFT_E_TRAILING = -4,       /* bytes left after a complete value */
  BFT_E_MALFORMED = -5,      /* non-canonical or out-of-range value */
  BFT_E_BAD_SIG = -6,        /* signature does not verify */
  BFT_E_NOMEM = -7,
  BFT_E_IO = -8,
  BFT_E_PERM = -9,           /* private key file readable by group or others */
  BFT_E_CONFIG = -10,        /* cluster or key file content is wrong */
  BFT_E_BAD_MAGIC = -11,
  BFT_E_VERSION = -12,
  BFT_E_UNKNOWN_SENDER = -13,
  BFT_E_STALE = -14,         /* message from an old view/round/height */
  BFT_E_WINDOW = -15,        /* outside the watermarks */
  BFT_E_BAD_DIGEST = -16,
  BFT_E_BAD_CERT = -17,
  BFT_E_DUPLICATE = -18,
  BFT_E_FULL = -19,          /* a bounded buffer or table is full */
  BFT_E_NOT_PERMITTED = -20, /* client not in the cluster file */
  BFT_E_UNSUPPORTED = -21,
  BFT_E_STATE = -22,         /* not valid in the current state (e.g. not the leader) */
  BFT_E_CRYPTO = -23,        /* libsodium failed to initialise */
  BFT_E_TIMEOUT = -24,
  BFT_E__MIN = -24
};

/* Static text for an error code; never NULL. */
const char *bft_strerror(int err);

/* Our own invariants, checked in every build (cheap checks only: quorum sizes, monotonic
 * heights and views, window bounds), so a simulator run stops at the first broken invariant
 * rather than at a far-away symptom. Never for input from the network or a file. */
void bft_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define BFT_ASSERT(e) ((e) ? (void)0 : bft_assert_fail(#e, __FILE__, __LINE__))

#endif
