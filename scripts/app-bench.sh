#!/usr/bin/env bash
# Throughput of the key-value store embedded in bft-replica (the default application) against
# the same store in another process over the application socket (bft-replica --app unix:PATH,
# served by bft-app-serve): a 4-replica PBFT cluster on 127.0.0.1 and bft-bench with CLIENTS
# closed-loop clients for SECONDS, RUNS times each, alternating; prints every run, the medians
# and the ratio socket/embedded (the goal: at least 0.80).
# APP=token (environment) compares the token ledger instead: embedded in C (token-replica) against
# the Python one over the socket (examples/token/token_app.py), loaded by net-token-load
# (transfers acknowledged per second).
# Usage: [APP=kv|token] scripts/app-bench.sh BIN_DIR [CLIENTS=64] [SECONDS=10] [RUNS=3] [PROTOCOL=pbft]
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
app=${APP:-kv}
[ "$app" = kv ] || [ "$app" = token ] || net_fail "APP must be kv or token"
[ "$app" = kv ] || net_require_bins token-replica net-token-load

one_run() { # $1 = embedded|socket; prints the throughput
  local mode=$1 i out
  rm -rf "$NET_DIR"/data-*
  NET_REPLICA_BIN=bft-replica
  for i in 0 1 2 3; do
    NET_REPLICA_EXTRA[$i]=""
    if [ "$app" = kv ]; then
      [ "$mode" = socket ] && net_start_app $i "$NET_BIN/bft-app-serve" --app kv
    elif [ "$mode" = socket ]; then
      net_start_app $i python3 "$NET_EXAMPLES/token/token_app.py"
    else
      NET_REPLICA_BIN=token-replica
    fi
  done
  net_start_all
  if [ "$app" = kv ]; then
    net_wait_ready 30 >/dev/null
    out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients "$clients" --duration "$seconds" \
      --ops put --value-size 64 --protocol "$NET_PROTOCOL" 2>/dev/null | grep '^RESULT ')
    sed -n 's/.* throughput_ops=\([0-9.]*\).*/\1/p' <<<"$out"
  else
    net_wait_token_ready 30 >/dev/null
    out=$("$NET_BIN/net-token-load" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients $((clients - 1)) \
      --duration "$seconds" --mint 1000000 --max-amount 100 2>/dev/null | grep '^RESULT ')
    awk -v s="$seconds" '{ for (i = 1; i <= NF; i++) if ($i ~ /^transfers=/) { split($i, kv, "="); printf "%.1f\n", kv[2] / s } }' <<<"$out"
  fi
  net_stop_all
  NET_APP_PID=()
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
echo "RESULT app-bench app=$app protocol=$NET_PROTOCOL clients=$clients seconds=$seconds runs=$runs embedded_ops=$me socket_ops=$ms ratio=$ratio"
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.80) }' || { echo "[app-bench] socket below 80% of embedded" >&2; exit 1; }
