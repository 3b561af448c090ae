#!/usr/bin/env bash
# Throughput of the key-value store embedded in bft-replica (the default application) against
# the same store in another process over the application socket (bft-replica --app unix:PATH,
# served by bft-app-serve): a 4-replica PBFT cluster on 127.0.0.1 and bft-bench with CLIENTS
# closed-loop clients for SECONDS, RUNS times each, alternating; prints every run, the medians
# and the ratio socket/embedded (the goal: at least 0.80).
# Usage: scripts/app-bench.sh BIN_DIR [CLIENTS=64] [SECONDS=10] [RUNS=3] [PROTOCOL=pbft]
set -euo pipefail
NET_BIN=$(cd "${1:?usage: app-bench.sh BIN_DIR [CLIENTS] [SECONDS] [RUNS] [PROTOCOL]}" && pwd)
clients=${2:-64}
seconds=${3:-10}
runs=${4:-3}
NET_PROTOCOL=${5:-pbft}
NET_NAME=app-bench
. "$(dirname "$0")/../tests/net/net_lib.sh"
. "$(dirname "$0")/../tests/net/net_app_lib.sh"
net_require_bins bft-replica bft-keygen bft-client bft-bench bft-app-serve

one_run() { # $1 = embedded|socket; prints the throughput
  local mode=$1 i out
  rm -rf "$NET_DIR"/data-*
  for i in 0 1 2 3; do
    NET_REPLICA_EXTRA[$i]=""
    [ "$mode" = socket ] && net_start_app $i "$NET_BIN/bft-app-serve" --app kv
  done
  net_start_all
  net_wait_ready 30 >/dev/null
  out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients "$clients" --duration "$seconds" \
    --ops put --value-size 64 --protocol "$NET_PROTOCOL" 2>/dev/null | grep '^RESULT ')
  net_stop_all
  NET_APP_PID=()
  sed -n 's/.* throughput_ops=\([0-9.]*\).*/\1/p' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

net_make_cluster 4 "$clients"
emb=()
sock=()
for ((r = 1; r <= runs; r++)); do
  e=$(one_run embedded)
  s=$(one_run socket)
  emb+=("$e")
  sock+=("$s")
  net_log "run $r: embedded $e ops/s, socket $s ops/s"
done
me=$(printf '%s\n' "${emb[@]}" | median)
ms=$(printf '%s\n' "${sock[@]}" | median)
ratio=$(awk -v s="$ms" -v e="$me" 'BEGIN { printf "%.2f", (e > 0 ? s / e : 0) }')
echo "RESULT app-bench protocol=$NET_PROTOCOL clients=$clients seconds=$seconds runs=$runs embedded_ops=$me socket_ops=$ms ratio=$ratio"
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.80) }' || { echo "[app-bench] socket below 80% of embedded" >&2; exit 1; }
