#!/usr/bin/env bash
# Real processes: 4 replicas; 4 concurrent clients (bft-bench) submit 500 operations in all, puts
# and gets on a few keys with unique values; the primary is SIGKILLed mid-run. Every operation
# must complete, the history must be linearizable, the three survivors must report the same
# ledger head (height, batch and state digests) and hold the same blocks, and verify-ledger must
# accept the whole ledger of each survivor.
# Usage: net_failover.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_failover.sh BIN_DIR}" && pwd)
NET_NAME=failover
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench net-lincheck
total=500
net_make_cluster 4 8
net_start_all
net_wait_ready 30

history=$NET_DIR/history.txt
"$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --total-ops $total \
  --duration 90 --ops mixed --keyspace 5 --value-size 16 --timeout 40 --history "$history" \
  >"$NET_DIR/bench.out" 2>"$NET_DIR/bench.log" &
bench=$!
NET_PIDS+=($bench)

# Kill the primary of view 0 once about a fifth of the operations are done (bounded wait).
deadline=$((SECONDS + 60))
while [ "$({ wc -l <"$history"; } 2>/dev/null || echo 0)" -lt $((total / 5)) ]; do
  net_running $bench || break
  [ $SECONDS -lt $deadline ] || net_fail "fewer than $((total / 5)) operations in 60s"
  sleep 0.05
done
done_before=$(wc -l <"$history")
net_kill_replica 0 KILL
net_log "killed the primary (replica 0) with SIGKILL after $done_before operations"

# bft-bench stops by itself (--duration bounds it); wait for it with a bound of our own too.
deadline=$((SECONDS + 100))
while net_running $bench; do
  [ $SECONDS -lt $deadline ] || net_fail "bft-bench did not finish within 100s"
  sleep 0.2
done
rc=0
wait $bench || rc=$?
cat "$NET_DIR/bench.out"
result=$(grep '^RESULT ' "$NET_DIR/bench.out" || true)
[ -n "$result" ] || net_fail "bft-bench printed no RESULT line (exit $rc)"
ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$result")
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")
[ "$rc" -eq 0 ] && [ "$ops" = $total ] && [ "$errors" = 0 ] ||
  net_fail "expected $total operations without errors, got ops=$ops errors=$errors (exit $rc)"
[ "$(wc -l <"$history")" -eq $total ] || net_fail "history holds $(wc -l <"$history") operations, not $total"
[ "$(awk '$5 < 0 || $6 == "-"' "$history" | wc -l)" -eq 0 ] || net_fail "history has operations without a response"
net_log "all $total operations completed ($((total - done_before)) after the primary was killed)"

"$NET_BIN/net-lincheck" "$history" || net_fail "the history is not linearizable"

head=$(net_wait_agree "1 2 3" 20)
net_log "survivors 1, 2, 3 agree on the ledger head: height, batch, state = $head"
net_same_ledgers "1 2 3"

for i in 1 2 3; do
  out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica $i verify-ledger) ||
    net_fail "verify-ledger of replica $i: $out"
  grep -q '^OK: ' <<<"$out" || net_fail "verify-ledger of replica $i: $out"
  net_log "$out"
done
# Without --replica, as the demo and a user run it: the dead first replica is skipped.
out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 5 verify-ledger) ||
  net_fail "verify-ledger (any replica) with replica 0 down: $out"
grep -q '^OK: .*from replica [123]' <<<"$out" || net_fail "verify-ledger (any replica): $out"
net_log "any replica: $out"
echo "[$NET_NAME] PASS"
