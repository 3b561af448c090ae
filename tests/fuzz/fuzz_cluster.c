/* Fuzz the cluster file parser: any text must give a cluster or one error, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/cluster/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  char *text = malloc(size + 1);
  bft_cluster *c = malloc(sizeof *c);
  if (text && c) {
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256];
    (void)bft_cluster_parse(text, "fuzz", c, err, sizeof err);
  }
  free(text);
  free(c);
  return 0;
}
