#!/usr/bin/env bash
# scripts/cluster.sh end to end: start a 4-replica cluster in a temp folder on free ports,
# status shows every replica running, a request commits, status after killing one shows it
# stopped, stop stops the rest by pid, and status then shows all stopped.
# Usage: net_cluster_script.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_cluster_script.sh BIN_DIR}" && pwd)
NET_NAME=cluster-script
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client
script=$(cd "$(dirname "$0")/../.." && pwd)/scripts/cluster.sh
dir=$NET_DIR/cluster
port=$(net_pick_ports 4)
# Whatever happens, stop what the script started (by the pids it recorded).
stop_cluster() { BFT_BIN=$NET_BIN "$script" stop --dir "$dir" >/dev/null 2>&1 || true; }
trap 'stop_cluster; net_cleanup' EXIT

BFT_BIN=$NET_BIN "$script" start --replicas 4 --dir "$dir" --base-port "$port" --clients 2 >"$NET_DIR/start.log" 2>&1 ||
  net_fail "cluster.sh start: $(cat "$NET_DIR/start.log")"
grep -q "folder $dir" "$NET_DIR/start.log" || net_fail "cluster.sh start did not print its folder"
status=$(BFT_BIN=$NET_BIN "$script" status --dir "$dir") || net_fail "status with all running: $status"
[ "$(grep -c 'state=running' <<<"$status")" -eq 4 ] || net_fail "status: $status"
grep -q "^replica=2 pid=[0-9]* address=127.0.0.1:$((port + 2)) state=running$" <<<"$status" || net_fail "status: $status"
net_log "status: all 4 running"

cli=("$NET_BIN/bft-client" --config "$dir/keys/cluster.ini" --key "$dir/keys/client-0.key")
deadline=$((SECONDS + 30))
until [ "$("${cli[@]}" --timeout 3 put via-script yes 2>/dev/null)" = OK ]; do
  [ $SECONDS -lt $deadline ] || net_fail "the script's cluster did not commit a request in 30s"
done
net_log "a request committed"

kill -KILL "$(cat "$dir/pids/replica-1.pid")"
sleep 0.2
rc=0
status=$(BFT_BIN=$NET_BIN "$script" status --dir "$dir") || rc=$?
[ $rc -ne 0 ] && grep -q '^replica=1 .* state=stopped$' <<<"$status" || net_fail "status after a kill: $status"
net_log "status shows the killed replica stopped"

pids=$(cat "$dir"/pids/replica-*.pid)
BFT_BIN=$NET_BIN "$script" stop --dir "$dir" >"$NET_DIR/stop.log" 2>&1 || net_fail "stop: $(cat "$NET_DIR/stop.log")"
for pid in $pids; do
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || true)
  [ -z "$st" ] || [ "${st%% *}" = Z ] || net_fail "pid $pid still runs after stop"
done
status=$(BFT_BIN=$NET_BIN "$script" status --dir "$dir" || true)
[ "$(grep -c 'state=stopped' <<<"$status")" -eq 4 ] || net_fail "status after stop: $status"
net_log "stop stopped every replica by pid"
echo "[$NET_NAME] PASS"
