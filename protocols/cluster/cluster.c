/* Cluster file parsing with libinih. inih reads line by line through our reader, so the
 * handler always knows the line it is looking at and errors can name it. */
#include "protocols/cluster/cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct parse_ctx {
  bft_cluster *c;
  const char *fname;
  const char *text; /* string input cursor */
  int line;
  int failed;
  char *err;
  size_t errlen;
  int have_cluster_id;
  int have_cluster_section;
  uint8_t rep_seen[BFT_MAX_REPLICAS]; /* bit 0: section, 1: address, 2: key */
  int rep_line[BFT_MAX_REPLICAS];
  uint32_t max_client_id;
  uint8_t *client_seen; /* BFT_MAX_CLIENTS entries: 1 section, 2 key */
  int *client_line;
} parse_ctx;

static int fail(parse_ctx *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parse_ctx *p, int line, const char *fmt, ...) {
  if (p->failed) return 0;
  p->failed = 1;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (p->err && p->errlen) {
    if (line > 0) snprintf(p->err, p->errlen, "%s:%d: %s", p->fname, line, what);
    else snprintf(p->err, p->errlen, "%s: %s", p->fname, what);
  }
  return 0;
}

/* "replica.12" -> 12; -1 when the suffix is not a plain decimal id below max. */
static long section_id(const char *section, const char *prefix, long max) {
  size_t pl = strlen(prefix);
  if (strncmp(section, prefix, pl) != 0) return -2;
  const char *s = section + pl;
  if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0')) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0 || v >= max) return -1;
  return v;
}

static int parse_address(const char *v, char *host, uint16_t *port) {
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v) return -1;
  size_t hl = (size_t)(colon - v);
  if (hl > BFT_MAX_HOST) return -1;
  for (size_t i = 0; i < hl; i++) {
    char ch = v[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '-'))
      return -1;
  }
  const char *ps = colon + 1;
  if (!*ps) return -1;
  long pv = 0;
  for (const char *q = ps; *q; q++) {
    if (*q < '0' || *q > '9') return -1;
    pv = pv * 10 + (*q - '0');
    if (pv > 65535) return -1;
  }
  if (pv == 0) return -1;
  memcpy(host, v, hl);
  host[hl] = '\0';
  *port = (uint16_t)pv;
  return 0;
}

static int valid_name(const char *v) {
  size_t l = strlen(v);
  if (l == 0 || l > BFT_MAX_CLUSTER_NAME) return 0;
  for (size_t i = 0; i < l; i++) {
    char ch = v[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '-' || ch == '_'))
      return 0;
  }
  return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
  parse_ctx *p = user;
  bft_cluster *c = p->c;
  int line = p->line;
  if (p->failed) return 0;
  if (strcmp(section, "cluster") == 0) {
    if (!name) {
      if (p->have_cluster_section) return fail(p, line, "duplicate [cluster] section");
      p->have_cluster_section = 1;
      return 1;
    }
    if (strcmp(name, "id") == 0) {
      if (p->have_cluster_id) return fail(p, line, "duplicate cluster id");
      if (!valid_name(value))
        return fail(p, line, "cluster id must be 1-%d characters of [A-Za-z0-9._-]", BFT_MAX_CLUSTER_NAME);
      snprintf(c->name, sizeof c->name, "%s", value);
      p->have_cluster_id = 1;
      return 1;
    }
    if (strcmp(name, "protocol_only") == 0) {
      if (strcmp(value, "true") == 0) c->protocol_only = 1;
      else if (strcmp(value, "false") == 0) c->protocol_only = 0;
      else return fail(p, line, "protocol_only must be true or false, not '%s'", value);
      return 1;
    }
    return fail(p, line, "unknown key '%s' in [cluster]", name);
  }
  long id = section_id(section, "replica.", BFT_MAX_REPLICAS);
  if (id != -2) {
    if (id < 0) return fail(p, line, "bad replica section [%s]: expected [replica.I] with 0 <= I < %d", section, BFT_MAX_REPLICAS);
    if (!name) {
      if (p->rep_seen[id] & 1) return fail(p, line, "duplicate replica id %ld (first at line %d)", id, p->rep_line[id]);
      p->rep_seen[id] |= 1;
      p->rep_line[id] = line;
      return 1;
    }
    bft_replica_info *r = &c->replicas[id];
    r->id = (uint32_t)id;
    if (strcmp(name, "address") == 0) {
      if (p->rep_seen[id] & 2) return fail(p, line, "duplicate address for replica %ld", id);
      if (parse_address(value, r->host, &r->port))
        return fail(p, line, "bad address '%s' for replica %ld: expected host:port with port 1-65535", value, id);
      p->rep_seen[id] |= 2;
      return 1;
    }
    if (strcmp(name, "public_key") == 0) {
      if (p->rep_seen[id] & 4) return fail(p, line, "duplicate public_key for replica %ld", id);
      if (bft_hex_decode(r->pk, BFT_PK_LEN, value))
        return fail(p, line, "bad public key for replica %ld: expected 64 hex digits", id);
      p->rep_seen[id] |= 4;
      return 1;
    }
    return fail(p, line, "unknown key '%s' in [%s]", name, section);
  }
  id = section_id(section, "client.", BFT_MAX_CLIENTS);
  if (id != -2) {
    if (id < 0) return fail(p, line, "bad client section [%s]: expected [client.J] with 0 <= J < %d", section, BFT_MAX_CLIENTS);
    if (!name) {
      if (p->client_seen[id] & 1) return fail(p, line, "duplicate client id %ld (first at line %d)", id, p->client_line[id]);
      p->client_seen[id] |= 1;
      p->client_line[id] = line;
      return 1;
    }
    if (strcmp(name, "public_key") == 0) {
      uint8_t pk[BFT_PK_LEN];
      if (p->client_seen[id] & 2) return fail(p, line, "duplicate public_key for client %ld", id);
      if (bft_hex_decode(pk, BFT_PK_LEN, value))
        return fail(p, line, "bad public key for client %ld: expected 64 hex digits", id);
      if (c->nclients >= BFT_MAX_CLIENTS) return fail(p, line, "too many clients (max %d)", BFT_MAX_CLIENTS);
      c->clients[c->nclients].id = (uint32_t)id;
      memcpy(c->clients[c->nclients].pk, pk, BFT_PK_LEN);
      c->nclients++;
      p->client_seen[id] |= 2;
      return 1;
    }
    return fail(p, line, "unknown key '%s' in [%s]", name, section);
  }
  if (!name) return fail(p, line, "unknown section [%s]", section);
  return fail(p, line, "key '%s' outside a known section", name);
}

/* fgets-like reader over a string that counts lines for the handler. */
static char *string_reader(char *buf, int size, void *stream) {
  parse_ctx *p = stream;
  const char *s = p->text;
  if (!*s) return NULL;
  int i = 0;
  while (i < size - 1 && s[i] && s[i] != '\n') i++;
  if (i < size - 1 && s[i] == '\n') i++;
  memcpy(buf, s, (size_t)i);
  buf[i] = '\0';
  p->text = s + i;
  p->line++;
  /* The packaged inih does not report empty sections to the handler, so section headers are
   * announced here, with their line, exactly as inih will read them ("[" name "]"). */
  const char *q = buf;
  while (*q == ' ' || *q == '\t') q++;
  const char *close = q[0] == '[' ? strchr(q + 1, ']') : NULL;
  if (close && (size_t)(close - q - 1) < 64) {
    char section[64];
    memcpy(section, q + 1, (size_t)(close - q - 1));
    section[close - q - 1] = '\0';
    handler(p, section, NULL, NULL);
  }
  return buf;
}

static int check_whole(parse_ctx *p) {
  bft_cluster *c = p->c;
  if (!p->have_cluster_id) return fail(p, 0, "missing [cluster] section with an id"), BFT_E_CONFIG;
  uint32_t n = 0;
  for (uint32_t i = 0; i < BFT_MAX_REPLICAS; i++)
    if (p->rep_seen[i]) n = i + 1;
  for (uint32_t i = 0; i < n; i++) {
    if (!p->rep_seen[i]) return fail(p, 0, "replica ids must be 0..%u without gaps: replica %u is missing", n - 1, i), BFT_E_CONFIG;
    if (!(p->rep_seen[i] & 2)) return fail(p, p->rep_line[i], "replica %u has no address", i), BFT_E_CONFIG;
    if (!(p->rep_seen[i] & 4)) return fail(p, p->rep_line[i], "replica %u has no public_key", i), BFT_E_CONFIG;
  }
  if (n < BFT_MIN_REPLICAS)
    return fail(p, 0, "n = %u replicas, but at least %d are needed to tolerate one fault (n = 3f+1)", n, BFT_MIN_REPLICAS), BFT_E_CONFIG;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = i + 1; j < n; j++) {
      if (memcmp(c->replicas[i].pk, c->replicas[j].pk, BFT_PK_LEN) == 0)
        return fail(p, p->rep_line[j], "replica %u has the same public key as replica %u", j, i), BFT_E_CONFIG;
      if (c->replicas[i].port == c->replicas[j].port && strcmp(c->replicas[i].host, c->replicas[j].host) == 0)
        return fail(p, p->rep_line[j], "replica %u has the same address as replica %u", j, i), BFT_E_CONFIG;
    }
  c->n = n;
  for (uint32_t k = 0; k < c->nclients; k++) {
    if (bft_cluster_find_replica(c, c->clients[k].pk) >= 0)
      return fail(p, p->client_line[c->clients[k].id], "client %u uses a replica's public key", c->clients[k].id), BFT_E_CONFIG;
  }
  for (uint32_t i = 0; i < BFT_MAX_CLIENTS; i++)
    if (p->client_seen[i] && !(p->client_seen[i] & 2))
      return fail(p, p->client_line[i], "client %u has no public_key", i), BFT_E_CONFIG;
  c->n = n;
  c->f = (n - 1) / 3;
  if (n != 3 * c->f + 1)
    snprintf(c->warning, sizeof c->warning,
             "n = %u is not of the form 3f+1: it tolerates f = %u faults, as %u replicas would", n, c->f, 3 * c->f + 1);
  bft_cluster_id_from_name(c->id, c->name);
  return 0;
}

int bft_cluster_parse(const char *text, const char *name, bft_cluster *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  parse_ctx p;
  memset(&p, 0, sizeof p);
  p.c = c;
  p.fname = name;
  p.text = text;
  p.err = err;
  p.errlen = errlen;
  if (err && errlen) err[0] = '\0';
  p.client_seen = calloc(BFT_MAX_CLIENTS, 1);
  p.client_line = calloc(BFT_MAX_CLIENTS, sizeof(int));
  if (!p.client_seen || !p.client_line) {
    free(p.client_seen);
    free(p.client_line);
    return BFT_E_NOMEM;
  }
  int rc = ini_parse_stream(string_reader, &p, handler, &p);
  if (rc != 0 && !p.failed) fail(&p, rc > 0 ? rc : 0, "syntax error (expected [section] or key = value)");
  if (!p.failed) rc = check_whole(&p);
  free(p.client_seen);
  free(p.client_line);
  return p.failed ? BFT_E_CONFIG : rc;
}

#define CLUSTER_FILE_MAX (4u * 1024u * 1024u)

int bft_cluster_load(const char *path, bft_cluster *c, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err) snprintf(err, errlen, "%s: cannot open cluster file: %s", path, strerror(errno));
    return BFT_E_IO;
  }
  char *buf = malloc(CLUSTER_FILE_MAX + 1);
  if (!buf) {
    fclose(f);
    return BFT_E_NOMEM;
  }
  size_t n = fread(buf, 1, CLUSTER_FILE_MAX + 1, f);
  int rd_err = ferror(f);
  fclose(f);
  if (rd_err || n > CLUSTER_FILE_MAX) {
    free(buf);
    if (err) snprintf(err, errlen, "%s: %s", path, rd_err ? "read error" : "cluster file larger than 4 MiB");
    return rd_err ? BFT_E_IO : BFT_E_CONFIG;
  }
  buf[n] = '\0';
  if (memchr(buf, '\0', n)) {
    free(buf);
    if (err) snprintf(err, errlen, "%s: cluster file contains a NUL byte", path);
    return BFT_E_CONFIG;
  }
  int rc = bft_cluster_parse(buf, path, c, err, errlen);
  free(buf);
  return rc;
}

int bft_cluster_save(const char *path, const bft_cluster *c, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return BFT_E_INVAL;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    if (err) snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    return BFT_E_IO;
  }
  char hex[2 * BFT_PK_LEN + 1];
  fprintf(f, "# BFT cluster definition: n = %u replicas tolerate f = %u Byzantine faults.\n", c->n, c->f);
  fprintf(f, "[cluster]\nid = %s\n", c->name);
  if (c->protocol_only)
    fprintf(f, "# Protocol-only benchmarks: clients may send unsigned, MAC-authenticated requests.\nprotocol_only = true\n");
  for (uint32_t i = 0; i < c->n; i++) {
    bft_hex_encode(hex, c->replicas[i].pk, BFT_PK_LEN);
    fprintf(f, "\n[replica.%u]\naddress = %s:%u\npublic_key = %s\n", c->replicas[i].id,
            c->replicas[i].host, c->replicas[i].port, hex);
  }
  for (uint32_t i = 0; i < c->nclients; i++) {
    bft_hex_encode(hex, c->clients[i].pk, BFT_PK_LEN);
    fprintf(f, "\n[client.%u]\npublic_key = %s\n", c->clients[i].id, hex);
  }
  int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    if (err) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    unlink(tmp);
    return BFT_E_IO;
  }
  return 0;
}

int bft_cluster_find_client(const bft_cluster *c, const uint8_t pk[BFT_PK_LEN]) {
  for (uint32_t i = 0; i < c->nclients; i++)
    if (memcmp(c->clients[i].pk, pk, BFT_PK_LEN) == 0) return (int)i;
  return -1;
}

int bft_cluster_find_replica(const bft_cluster *c, const uint8_t pk[BFT_PK_LEN]) {
  for (uint32_t i = 0; i < c->n; i++)
    if (memcmp(c->replicas[i].pk, pk, BFT_PK_LEN) == 0) return (int)i;
  return -1;
}
