/* The token ledger (token_app.h): an open-addressing table of accounts and an incremental
 * digest, the sum modulo 2^256 of one BLAKE2b-256 hash per account, so a batch costs one hash
 * per account it touches, never a pass over the whole state. */
#include "token_app.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX_NAME 32
#define TOKEN_MAX_ACCOUNTS (1u << 20)
#define TOKEN_MAX_AMOUNT (1ull << 62)

typedef struct account {
  char name[TOKEN_MAX_NAME + 1]; /* "" marks an empty slot */
  uint64_t balance;
  uint8_t h[32];                 /* this account's share of the digest */
} account;

typedef struct token {
  account *slots;
  uint64_t cap, count;
  uint64_t supply;               /* minted so far */
  uint64_t sum;                  /* sum of balances: must equal supply after every batch */
  uint8_t acc[32];               /* sum of account hashes, little-endian 256-bit */
  uint32_t admin;
  uint64_t height;
  uint8_t *restoring;            /* snapshot chunks being restored */
  size_t rlen, rcap;
} token;

/* ---- digest -------------------------------------------------------------------------------- */

static void acc_add(uint8_t s[32], const uint8_t h[32], int sub) {
  int carry = 0;
  for (int i = 0; i < 32; i++) {
    int v = sub ? (int)s[i] - h[i] - carry : (int)s[i] + h[i] + carry;
    carry = sub ? v < 0 : v > 255;
    s[i] = (uint8_t)(v & 255);
  }
}

static void account_hash(account *a) {
  uint8_t buf[16 + 1 + TOKEN_MAX_NAME + 8];
  size_t nl = strlen(a->name), n = 0;
  memcpy(buf, "token/account", 13);
  n = 13;
  buf[n++] = (uint8_t)nl;
  memcpy(buf + n, a->name, nl);
  n += nl;
  for (int i = 0; i < 8; i++) buf[n++] = (uint8_t)(a->balance >> (8 * i));
  crypto_generichash(a->h, 32, buf, n, NULL, 0);
}

static void token_digest(void *app, uint8_t out[BFT_APP_DIGEST_LEN]) {
  token *t = app;
  uint8_t buf[11 + 32 + 16];
  memcpy(buf, "token/state", 11);
  memcpy(buf + 11, t->acc, 32);
  for (int i = 0; i < 8; i++) {
    buf[43 + i] = (uint8_t)(t->supply >> (8 * i));
    buf[51 + i] = (uint8_t)(t->count >> (8 * i));
  }
  crypto_generichash(out, BFT_APP_DIGEST_LEN, buf, sizeof buf, NULL, 0);
}

/* ---- accounts ------------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s) { /* FNV-1a: table layout only, never results */
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static account *find(token *t, const char *name, int create) {
  if (create && (t->count + 1) * 2 > t->cap) {
    if (t->count >= TOKEN_MAX_ACCOUNTS) return NULL;
    uint64_t ncap = t->cap ? t->cap * 2 : 1024;
    account *ns = calloc(ncap, sizeof *ns);
    if (!ns) return NULL;
    for (uint64_t i = 0; i < t->cap; i++) {
      if (!t->slots[i].name[0]) continue;
      uint64_t j = name_hash(t->slots[i].name) & (ncap - 1);
      while (ns[j].name[0]) j = (j + 1) & (ncap - 1);
      ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
  }
  if (!t->cap) return NULL;
  for (uint64_t j = name_hash(name) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
    account *a = &t->slots[j];
    if (!a->name[0]) {
      if (!create) return NULL;
      snprintf(a->name, sizeof a->name, "%s", name);
      a->balance = 0;
      account_hash(a);
      acc_add(t->acc, a->h, 0);
      t->count++;
      return a;
    }
    if (strcmp(a->name, name) == 0) return a;
  }
}

static void set_balance(token *t, account *a, uint64_t b) {
  acc_add(t->acc, a->h, 1);
  t->sum = t->sum - a->balance + b;
  a->balance = b;
  account_hash(a);
  acc_add(t->acc, a->h, 0);
}

/* ---- operations ----------------------------------------------------------------------------- */

typedef struct parsed {
  enum { OP_MINT = 1, OP_TRANSFER, OP_BALANCE, OP_SUPPLY } kind;
  char name[TOKEN_MAX_NAME + 1];
  uint64_t amount;
} parsed;

static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > TOKEN_MAX_NAME) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-' || s[i] == '_' || s[i] == '.'))
      return 0;
  return 1;
}

/* Parse "word [NAME [AMOUNT]]"; NULL on success or the reason it is malformed. */
static const char *parse(const uint8_t *p, uint32_t len, parsed *o) {
  char buf[96];
  if (len == 0 || len >= sizeof buf) return "malformed operation: empty or too long";
  memcpy(buf, p, len);
  buf[len] = 0;
  if (memchr(p, 0, len)) return "malformed operation: NUL byte";
  char *w[4] = {0};
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    if (n == 4) return "malformed operation: too many words";
    w[n++] = tok;
  }
  memset(o, 0, sizeof *o);
  if (n == 3 && strcmp(w[0], "mint") == 0) o->kind = OP_MINT;
  else if (n == 3 && strcmp(w[0], "transfer") == 0) o->kind = OP_TRANSFER;
  else if (n == 2 && strcmp(w[0], "balance") == 0) o->kind = OP_BALANCE;
  else if (n == 1 && strcmp(w[0], "supply") == 0) o->kind = OP_SUPPLY;
  else return "malformed operation: expected mint ACCOUNT AMOUNT, transfer TO AMOUNT or balance ACCOUNT";
  if (n >= 2) {
    if (!valid_name(w[1], strlen(w[1]))) return "malformed operation: account names are 1-32 of [A-Za-z0-9._-]";
    snprintf(o->name, sizeof o->name, "%s", w[1]);
  }
  if (n == 3) {
    char *end;
    if (w[2][0] < '0' || w[2][0] > '9') return "malformed operation: amount is not a number";
    unsigned long long v = strtoull(w[2], &end, 10);
    if (*end || v == 0 || v > TOKEN_MAX_AMOUNT) return "malformed operation: amount must be 1..2^62";
    o->amount = v;
  }
  return NULL;
}

static void result(bft_app_result *r, uint8_t status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void result(bft_app_result *r, uint8_t status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf((char *)r->data, BFT_APP_MAX_RESULT, fmt, ap);
  va_end(ap);
  r->status = status;
  r->len = n > 0 ? (uint32_t)n : 0;
}

static void run_one(token *t, const bft_app_op *op, bft_app_result *r) {
  parsed p;
  const char *why = parse(op->op, op->len, &p);
  if (why || p.kind == OP_SUPPLY) return result(r, TOKEN_BAD_OP, "%s", why ? why : "supply is a query");
  if (p.kind == OP_BALANCE) {
    account *a = find(t, p.name, 0);
    return result(r, TOKEN_OK, "%llu", a ? (unsigned long long)a->balance : 0ull);
  }
  if (p.kind == OP_MINT) {
    if (op->client != t->admin) return result(r, TOKEN_NOT_ADMIN, "only the administrator may mint");
    if (t->supply + p.amount > TOKEN_MAX_AMOUNT) return result(r, TOKEN_OVERFLOW, "supply would exceed 2^62");
    account *a = find(t, p.name, 1);
    if (!a) return result(r, TOKEN_OVERFLOW, "too many accounts");
    t->supply += p.amount;
    set_balance(t, a, a->balance + p.amount);
    return result(r, TOKEN_OK, "ok supply=%llu", (unsigned long long)t->supply);
  }
  char from_name[16];
  snprintf(from_name, sizeof from_name, "c%u", op->client);
  if (strcmp(from_name, p.name) == 0) return result(r, TOKEN_BAD_OP, "transfer to your own account");
  account *from = find(t, from_name, 0);
  if (!from || from->balance < p.amount)
    return result(r, TOKEN_INSUFFICIENT, "insufficient funds: balance %llu", from ? (unsigned long long)from->balance : 0);
  account *to = find(t, p.name, 1);
  if (!to) return result(r, TOKEN_OVERFLOW, "too many accounts");
  from = find(t, from_name, 0); /* the table may have grown */
  set_balance(t, from, from->balance - p.amount);
  set_balance(t, to, to->balance + p.amount);
  result(r, TOKEN_OK, "ok balance=%llu", (unsigned long long)from->balance);
}

static int token_execute(void *app, uint64_t height, const bft_app_op *ops, uint32_t n, bft_app_result *res) {
  token *t = app;
  for (uint32_t i = 0; i < n; i++) run_one(t, &ops[i], &res[i]);
  t->height = height;
  if (t->sum != t->supply) { /* the invariant: nothing is created or destroyed by a transfer */
    fprintf(stderr, "token ledger: invariant broken at height %llu: supply %llu, sum of balances %llu\n",
            (unsigned long long)height, (unsigned long long)t->supply, (unsigned long long)t->sum);
    return -1;
  }
  return 0;
}

static int token_check(void *app, const bft_app_op *ops, uint32_t n, uint8_t *verdict,
                       char (*reason)[BFT_APP_MAX_REASON]) {
  token *t = app;
  for (uint32_t i = 0; i < n; i++) {
    parsed p;
    const char *why = parse(ops[i].op, ops[i].len, &p);
    if (!why && p.kind == OP_SUPPLY) why = "supply is a query (bft-client query --stale supply)";
    if (!why && p.kind == OP_MINT && ops[i].client != t->admin) why = "only the administrator may mint";
    verdict[i] = why != NULL;
    if (why) snprintf(reason[i], BFT_APP_MAX_REASON, "%s", why);
  }
  return 0;
}

static int token_query(void *app, const uint8_t *q, uint32_t len, bft_app_result *r) {
  token *t = app;
  parsed p;
  const char *why = parse(q, len, &p);
  if (why || (p.kind != OP_BALANCE && p.kind != OP_SUPPLY)) {
    result(r, TOKEN_BAD_OP, "queries: balance ACCOUNT, supply");
  } else if (p.kind == OP_BALANCE) {
    account *a = find(t, p.name, 0);
    result(r, TOKEN_OK, "%llu", a ? (unsigned long long)a->balance : 0ull);
  } else {
    int k = snprintf((char *)r->data, BFT_APP_MAX_RESULT, "supply=%llu accounts=%llu sum=%llu",
                     (unsigned long long)t->supply, (unsigned long long)t->count, (unsigned long long)t->sum);
    r->status = TOKEN_OK;
    r->len = (uint32_t)k;
  }
  return 0;
}

/* ---- snapshot: "token-snapshot-v1 SUPPLY COUNT\n" then "NAME BALANCE\n" in name order ------- */

typedef struct cursor {
  char *text;
  size_t len, off;
} cursor;

static int by_name(const void *a, const void *b) {
  return strcmp((*(const account *const *)a)->name, (*(const account *const *)b)->name);
}

static int token_snapshot_begin(void *app, void **out) {
  token *t = app;
  cursor *c = calloc(1, sizeof *c);
  account **v = malloc((t->count ? t->count : 1) * sizeof *v);
  size_t cap = 64 + t->count * (TOKEN_MAX_NAME + 24);
  if (c) c->text = malloc(cap);
  if (!c || !v || !c->text) {
    if (c) free(c->text);
    free(c);
    free(v);
    return -1;
  }
  uint64_t n = 0;
  for (uint64_t i = 0; i < t->cap; i++)
    if (t->slots[i].name[0]) v[n++] = &t->slots[i];
  qsort(v, n, sizeof *v, by_name);
  c->len = (size_t)snprintf(c->text, cap, "token-snapshot-v1 %llu %llu\n", (unsigned long long)t->supply,
                            (unsigned long long)n);
  for (uint64_t i = 0; i < n; i++)
    c->len += (size_t)snprintf(c->text + c->len, cap - c->len, "%s %llu\n", v[i]->name, (unsigned long long)v[i]->balance);
  free(v);
  *out = c;
  return 0;
}

static int token_snapshot_next(void *app, void *cur, uint8_t *buf, uint32_t cap, uint32_t *len, int *done) {
  cursor *c = cur;
  size_t l = c->len - c->off < cap ? c->len - c->off : cap;
  memcpy(buf, c->text + c->off, l);
  c->off += l;
  *len = (uint32_t)l;
  *done = c->off == c->len;
  return 0;
}

static void token_snapshot_end(void *app, void *cur) {
  cursor *c = cur;
  if (c) free(c->text);
  free(c);
}

static void clear(token *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->count = t->supply = t->sum = 0;
  memset(t->acc, 0, sizeof t->acc);
}

static int token_restore_begin(void *app, uint64_t height) {
  token *t = app;
  clear(t);
  t->height = height;
  t->rlen = 0;
  return 0;
}

static int token_restore_chunk(void *app, const uint8_t *p, uint32_t len) {
  token *t = app;
  if (t->rlen + len + 1 > t->rcap) {
    size_t nc = t->rcap ? t->rcap : 4096;
    while (nc < t->rlen + len + 1) nc *= 2;
    uint8_t *nb = realloc(t->restoring, nc);
    if (!nb) return -1;
    t->restoring = nb;
    t->rcap = nc;
  }
  memcpy(t->restoring + t->rlen, p, len);
  t->rlen += len;
  return 0;
}

static int token_restore_end(void *app) {
  token *t = app;
  if (t->rlen == 0) return 0; /* no chunks: the initial state */
  t->restoring[t->rlen] = 0;
  char *save = NULL, *line = strtok_r((char *)t->restoring, "\n", &save);
  unsigned long long supply, n;
  if (!line || sscanf(line, "token-snapshot-v1 %llu %llu", &supply, &n) != 2) return clear(t), -1;
  for (unsigned long long i = 0; i < n; i++) {
    char name[TOKEN_MAX_NAME + 1];
    unsigned long long b;
    line = strtok_r(NULL, "\n", &save);
    if (!line || sscanf(line, "%32s %llu", name, &b) != 2 || !valid_name(name, strlen(name))) return clear(t), -1;
    account *a = find(t, name, 1);
    if (!a) return clear(t), -1;
    set_balance(t, a, b);
  }
  t->supply = supply;
  t->rlen = 0;
  if (t->sum != t->supply || t->count != n) return clear(t), -1;
  return 0;
}

static uint64_t token_height(void *app) { return ((token *)app)->height; }

static const bft_app_ops TOKEN_OPS = {
    .name = "token-ledger",
    .execute = token_execute,
    .digest = token_digest,
    .snapshot_begin = token_snapshot_begin,
    .snapshot_next = token_snapshot_next,
    .snapshot_end = token_snapshot_end,
    .restore_begin = token_restore_begin,
    .restore_chunk = token_restore_chunk,
    .restore_end = token_restore_end,
    .check = token_check,
    .query = token_query,
    .height = token_height,
};

int token_app_new(bft_app *app, uint32_t admin) {
  if (sodium_init() < 0) return -1;
  token *t = calloc(1, sizeof *t);
  if (!t) return -1;
  t->admin = admin;
  app->ops = &TOKEN_OPS;
  app->state = t;
  return 0;
}

void token_app_free(bft_app *app) {
  token *t = app->state;
  if (!t) return;
  clear(t);
  free(t->restoring);
  free(t);
  app->state = NULL;
}
