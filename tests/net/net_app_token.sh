#!/usr/bin/env bash
# Real processes: 4 replicas replicating the token ledger, either embedded in C (token-replica,
# through bft_replica.h) or in Python over the application socket (bft-replica --app unix:PATH).
# Concurrent clients transfer between their accounts for DURATION seconds while the leader is
# SIGKILLed a third of the way in; then the leader restarts (an embedded app re-executes the
# ledger; a Python app that outlived its replica is resynchronised) and catches up. Checked:
# every acknowledged transfer and nothing else is in every replica's books (stale queries to each
# replica), the total supply is conserved, all four replicas report the same ledger head and
# state digest, and verify-ledger accepts every ledger.
# Usage: net_app_token.sh BIN_DIR c|python [DURATION_S] [CLIENTS]
NET_BIN=$(cd "${1:?usage: net_app_token.sh BIN_DIR c|python [DURATION_S] [CLIENTS]}" && pwd)
mode=${2:?c or python}
duration=${3:-20}
clients=${4:-8}
NET_NAME=app-token-$mode
. "$(dirname "$0")/net_lib.sh"
. "$(dirname "$0")/net_app_lib.sh"

mint=20000
net_require_bins bft-replica bft-keygen bft-client net-token-load token-replica
net_make_cluster 4 $((clients + 1))
if [ "$mode" = c ]; then
  NET_REPLICA_BIN=token-replica
else
  command -v python3 >/dev/null || net_fail "python3 is needed (scripts/setup.sh installs it)"
  for i in 0 1 2 3; do net_start_app $i python3 "$NET_EXAMPLES/token/token_app.py"; done
fi
net_start_all
net_wait_token_ready 30

"$NET_BIN/net-token-load" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients "$clients" --duration "$duration" \
  --mint $mint --max-amount 5000 --timeout 60 >"$NET_DIR/load.out" 2>"$NET_DIR/load.log" &
load=$!
NET_PIDS+=($load)
sleep "$(awk -v d="$duration" 'BEGIN { print d / 3 + 1 }')"
net_running $load || net_fail "the load generator ended early: $(tail -n 3 "$NET_DIR/load.log")"
net_kill_replica 0 KILL
net_log "killed the leader (replica 0) with SIGKILL"

net_finish_token_load "$load" "$duration"
ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$NET_LOAD_RESULT")
[ "$ok" -gt 0 ] || net_fail "no transfer succeeded"

net_start_replica 0
net_log "restarted replica 0"
head=$(net_wait_agree_busy "0 1 2 3" 60)
if [ "$mode" = python ]; then # the application outlived its replica: taken back where it is, or restored
  line=$(grep -E 'event=app_(resumed|resync)' "$NET_DIR/replica-0.log" | tail -n 1)
  [ -n "$line" ] || net_fail "replica 0 did not say how it resynchronised its application"
  net_log "replica 0 after its restart: ${line#*event=}"
fi
net_log "all four replicas agree: height, batch, state = $head"
net_check_books "0 1 2 3" "$NET_DIR/expect.txt" $((mint * clients))
net_verify_ledgers "0 1 2 3"
net_check_alive
echo "[$NET_NAME] PASS ($ok transfers acknowledged in ${duration}s with the leader killed)"
