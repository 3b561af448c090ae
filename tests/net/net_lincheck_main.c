/* net-lincheck: read bft-bench --history files and say whether the history is linearizable
 * (exit 0), not (exit 1, with the first violation), or unusable (exit 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/net/net_lincheck.h"

#define LIN_MAX_OPS 1000000 /* bound on what one run reads */

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    fprintf(argc < 2 ? stderr : stdout, "usage: net-lincheck HISTORY...\n");
    return argc < 2 ? 2 : 0;
  }
  size_t n = 0, cap = 1024;
  net_lin_op *ops = malloc(cap * sizeof *ops);
  char line[512];
  for (int f = 1; f < argc && ops; f++) {
    FILE *fp = fopen(argv[f], "r");
    if (!fp) {
      fprintf(stderr, "net-lincheck: cannot read %s\n", argv[f]);
      return 2;
    }
    unsigned lineno = 0;
    while (fgets(line, sizeof line, fp)) {
      lineno++;
      if (n == cap) {
        if (cap >= LIN_MAX_OPS) {
          fprintf(stderr, "net-lincheck: more than %d operations\n", LIN_MAX_OPS);
          return 2;
        }
        cap *= 2;
        net_lin_op *nb = realloc(ops, cap * sizeof *ops);
        if (!nb) return 2;
        ops = nb;
      }
      if (net_lin_parse_line(line, &ops[n]) != 0) {
        fprintf(stderr, "net-lincheck: %s:%u: malformed line\n", argv[f], lineno);
        return 2;
      }
      n++;
    }
    fclose(fp);
  }
  if (!ops) return 2;
  size_t puts = 0, gets = 0;
  for (size_t i = 0; i < n; i++) ops[i].is_put ? puts++ : gets++;
  char why[512];
  int rc = net_lin_check(ops, n, why, sizeof why);
  free(ops);
  if (rc == 0) {
    printf("net-lincheck: linearizable (%zu puts, %zu gets)\n", puts, gets);
    return 0;
  }
  printf("net-lincheck: %s: %s\n", rc > 0 ? "NOT linearizable" : "cannot check", why);
  return rc > 0 ? 1 : 2;
}
