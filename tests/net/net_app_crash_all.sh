#!/usr/bin/env bash
# Real processes: every replica's application (Python token ledger over the socket) crashes in
# the middle of the same batch, so the whole cluster stops under concurrent transfers; the
# applications and replicas are restarted; the load generator's clients retransmit and finish.
# Checked: every replica stopped with the application line, no transfer failed, and every
# replica holds exactly the books of the acknowledged transfers (nothing acknowledged is lost).
# Not in the default ctest (BFT_LONG_TESTS=ON registers it).
# Usage: net_app_crash_all.sh BIN_DIR [DURATION_S]
NET_BIN=$(cd "${1:?usage: net_app_crash_all.sh BIN_DIR [DURATION_S]}" && pwd)
duration=${2:-10}
NET_NAME=app-crash-all
. "$(dirname "$0")/net_lib.sh"
. "$(dirname "$0")/net_app_lib.sh"
command -v python3 >/dev/null || net_fail "python3 is needed (scripts/setup.sh installs it)"
net_require_bins bft-replica bft-keygen bft-client net-token-load
clients=4
mint=20000
net_make_cluster 4 $((clients + 1))
for i in 0 1 2 3; do net_start_app $i python3 "$NET_EXAMPLES/token/token_app.py" --crash-at-height 30; done
net_start_all
net_wait_token_ready 30
"$NET_BIN/net-token-load" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients $clients --duration "$duration" \
  --mint $mint --max-amount 5000 --timeout 60 >"$NET_DIR/load.out" 2>"$NET_DIR/load.log" &
load=$!
NET_PIDS+=($load)
deadline=$((SECONDS + 30))
while :; do
  n=0
  for i in 0 1 2 3; do net_running "${NET_REPLICA_PID[$i]}" && n=$((n + 1)); done
  [ $n -eq 0 ] && break
  [ $SECONDS -lt $deadline ] || net_fail "$n replicas still run after their applications crashed"
  sleep 0.2
done
for i in 0 1 2 3; do
  grep -q 'event=fatal reason="application at unix:.* stopped answering.*block 30 was not executed' \
    "$NET_DIR/replica-$i.log" || net_fail "replica $i did not stop with the application line"
done
net_log "all four replicas stopped at block 30 with their applications"
for i in 0 1 2 3; do
  unset "NET_REPLICA_PID[$i]"
  net_kill_app $i
  net_start_app $i python3 "$NET_EXAMPLES/token/token_app.py"
  net_start_replica $i
done
net_finish_token_load "$load" "$duration"
net_wait_agree_busy "0 1 2 3" 30 >/dev/null
net_check_books "0 1 2 3" "$NET_DIR/expect.txt" $((mint * clients))
net_verify_ledgers "0 1 2 3"
echo "[$NET_NAME] PASS"
