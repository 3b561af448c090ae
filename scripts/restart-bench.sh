#!/usr/bin/env bash
# Restart time of a replica's runtime core with 10^5 and 10^6 operations in its ledger, with
# snapshots (every 1024 blocks, the default) and without (every block re-executed).
# Usage: scripts/restart-bench.sh [BIN_DIR (default build-rel/bin)] [OPS...]
set -euo pipefail
BIN=${1:-build-rel/bin}
shift || true
OPS=("$@")
[ ${#OPS[@]} -gt 0 ] || OPS=(100000 1000000)
[ -x "$BIN/bench-restart" ] || { echo "restart-bench: $BIN/bench-restart missing (cmake --build ... --target bench-restart)" >&2; exit 1; }
for n in "${OPS[@]}"; do
  for every in 1024 0; do
    "$BIN/bench-restart" "$n" "$every" 3 | sort -t= -k7 -n | sed -n 2p # the median of 3 restarts
  done
done
