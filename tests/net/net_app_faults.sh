#!/usr/bin/env bash
# Real processes, applications that misbehave, over the application socket (4 replicas):
#  1. replica 3 runs a non-deterministic application (tests/net/app_nondet.py), the others the
#     Python token ledger: replica 3 must stop with "application diverged at height H" while the
#     other three keep committing;
#  2. replica 1's application crashes in the middle of a batch at height CRASH_AT under
#     concurrent transfers: replica 1 must stop with one line naming the application, the
#     cluster goes on; after restarting the application and the replica, replica 1 re-executes
#     its ledger, catches up, and holds exactly the books of every acknowledged transfer.
# Usage: net_app_faults.sh BIN_DIR [DURATION_S]
NET_BIN=$(cd "${1:?usage: net_app_faults.sh BIN_DIR [DURATION_S]}" && pwd)
duration=${2:-6}
NET_NAME=app-faults
. "$(dirname "$0")/net_lib.sh"
. "$(dirname "$0")/net_app_lib.sh"

command -v python3 >/dev/null || net_fail "python3 is needed (scripts/setup.sh installs it)"
net_require_bins bft-replica bft-keygen bft-client net-token-load
clients=4
mint=20000
crash_at=40
net_make_cluster 4 $((clients + 1))
net_start_app 0 python3 "$NET_EXAMPLES/token/token_app.py"
net_start_app 1 python3 "$NET_EXAMPLES/token/token_app.py" --crash-at-height $crash_at
net_start_app 2 python3 "$NET_EXAMPLES/token/token_app.py"
net_start_app 3 python3 "$(dirname "$0")/app_nondet.py"
net_start_all

# 1. divergence: replica 3 stops at the first block, with the message.
deadline=$((SECONDS + 30))
until net_client --timeout 3 exec "balance c1" >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || net_fail "the cluster did not commit within 30s"
  sleep 0.2
done
deadline=$((SECONDS + 15))
while net_running "${NET_REPLICA_PID[3]}"; do
  [ $SECONDS -lt $deadline ] || net_fail "replica 3 (non-deterministic application) did not stop"
  sleep 0.1
done
line=$(grep -m1 'application diverged at height' "$NET_DIR/replica-3.log" || true)
[ -n "$line" ] || net_fail "replica 3 stopped without the divergence message: $(tail -n 2 "$NET_DIR/replica-3.log")"
net_log "replica 3 stopped: ${line#*reason=}"
rc=0
wait "${NET_REPLICA_PID[3]}" || rc=$?
[ $rc -ne 0 ] || net_fail "replica 3 exited with status 0 after diverging"
unset "NET_REPLICA_PID[3]"
for i in 0 1 2; do
  ! grep -q 'diverged' "$NET_DIR/replica-$i.log" || net_fail "replica $i, with a deterministic application, stopped too"
done
# Its ledger holds a block with its wrong digest: with a correct application and a fresh data
# folder it catches up from the others.
net_kill_app 3
net_start_app 3 python3 "$NET_EXAMPLES/token/token_app.py"
net_start_replica 3 "$NET_DIR/data-3-fresh"
for _ in 1 2 3; do net_client --timeout 5 exec "balance c1" >/dev/null || net_fail "the cluster stopped committing"; done
net_wait_agree_busy "0 1 2 3" 30 >/dev/null
net_log "replica 3, with a deterministic application and a fresh data folder, caught up"

# 2. a crash in the middle of a batch: replica 1 stops, the other two and 0 go on (f = 1).
"$NET_BIN/net-token-load" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients $clients --duration "$duration" \
  --mint $mint --max-amount 5000 --timeout 60 >"$NET_DIR/load.out" 2>"$NET_DIR/load.log" &
load=$!
NET_PIDS+=($load)
deadline=$((SECONDS + duration + 30))
while net_running "${NET_REPLICA_PID[1]}"; do
  [ $SECONDS -lt $deadline ] || net_fail "replica 1 did not stop when its application crashed at height $crash_at"
  sleep 0.1
done
line=$(grep -m1 'event=fatal' "$NET_DIR/replica-1.log" || true)
grep -q "application at unix:.* stopped answering" <<<"$line" ||
  net_fail "replica 1 stopped without saying its application died: $line"
grep -q "block $crash_at was not executed" <<<"$line" || net_fail "the stop line does not name block $crash_at: $line"
net_log "replica 1 stopped: ${line#*reason=}"
unset "NET_REPLICA_PID[1]"
net_kill_app 1
net_finish_token_load "$load" "$duration"

net_start_app 1 python3 "$NET_EXAMPLES/token/token_app.py"
net_start_replica 1
head=$(net_wait_agree_busy "0 1 2 3" 60)
net_log "replica 1 restarted with a fresh application and caught up: $head"
grep -q 'event=ledger_loaded' "$NET_DIR/replica-1.log" || net_fail "replica 1 did not reload its ledger"
net_check_books "0 1 2 3" "$NET_DIR/expect.txt" $((mint * clients))
net_verify_ledgers "0 1 2 3"
echo "[$NET_NAME] PASS"
