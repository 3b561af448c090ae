#!/usr/bin/env bash
# Fail when a consensus engine reaches outside protocols/ and crypto/: engines must be pure,
# deterministic state machines (no libuv, sockets, clock, files, allocator, randomness, threads).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
engines=$(ls -d protocols/pbft protocols/hotstuff protocols/tendermint 2>/dev/null || true)
files=$(find $engines protocols/engine.h protocols/engine.c protocols/quorum.h protocols/quorum.c -name '*.[ch]' 2>/dev/null)
bad=0
check() { # pattern, reason
  local hits
  hits=$(grep -nE "$1" $files /dev/null | grep -vE '^\S+:[0-9]+:\s*(//|/?\*)' || true)
  if [ -n "$hits" ]; then echo "engine purity: $2:"; echo "$hits" | sed 's/^/  /'; bad=1; fi
}
check '#include *[<"](uv|pthread|threads|time|sys/time|sys/socket|netinet/[a-z]+|stdio|fcntl|unistd|sys/stat)\.h[>"]' 'forbidden header'
check '#include *"replica/' 'include from replica/'
check '\b(malloc|calloc|realloc|free|rand|srand|random|time|clock_gettime|gettimeofday|fopen|open|read|write|socket|randombytes_buf|randombytes_random|getpid)\s*\(' 'forbidden call (allocator, clock, randomness or I/O)'
statics=$(grep -nE '^static\s+[A-Za-z_0-9 ]+\**\s*[A-Za-z_0-9]+\s*(\[[^]]*\])*\s*(=|;)' $files /dev/null | grep -v 'const' || true)
if [ -n "$statics" ]; then
  echo "engine purity: mutable file-scope state (keep it in the engine state; make tables const):"
  echo "$statics" | sed 's/^/  /'; bad=1
fi
if [ $bad -ne 0 ]; then exit 1; fi
echo "engine purity: ok ($(echo $files | wc -w) files)"
