#!/usr/bin/env bash
# Real processes: bft-client status on a 4-replica cluster. Every replica answers one signed
# line (engine, view, leader, height, head hash, the batch/window it runs with); with one
# replica stopped, that one is reported unreachable, the others still answer, and the exit
# status is 1. --replica I asks one replica only. Replica 3 runs with --unsafe-no-fsync: its
# line (only its own) says so, and so does its first log line.
# Usage: net_status.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_status.sh BIN_DIR}" && pwd)
NET_NAME=status
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client
net_make_cluster 4 2
NET_REPLICA_ARGS=(--batch-max 100)
NET_REPLICA_EXTRA[3]=--unsafe-no-fsync
net_start_all
net_wait_ready 30
for k in 1 2 3; do net_client put "s$k" v >/dev/null || net_fail "put failed"; done

status() { "$NET_BIN/bft-client" --config "$NET_CFG" --timeout 2 status "$@"; }

# all up: four reachable lines, one engine, one leader, and the same height and head on each
# once the last put has executed everywhere (bounded wait)
deadline=$((SECONDS + 10))
while :; do
  rc=0
  out=$(status) || rc=$?
  heads=$(sed -n 's/.* height=\([0-9]*\) head=\([0-9a-f]*\) .*/\1 \2/p' <<<"$out" | sort -u | wc -l)
  [ $rc -eq 0 ] && [ "$(grep -c ' reachable ' <<<"$out")" -eq 4 ] && [ "$heads" -eq 1 ] && break
  [ $SECONDS -lt $deadline ] || net_fail "status with every replica up (exit $rc): $out"
  sleep 0.3
done
echo "$out"
[ "$(grep -c "engine=$NET_PROTOCOL " <<<"$out")" -eq 4 ] || net_fail "not every replica reports engine $NET_PROTOCOL"
[ "$(sed -n 's/.* leader=\([0-9]*\) .*/\1/p' <<<"$out" | sort -u | wc -l)" -eq 1 ] || net_fail "replicas disagree on the leader"
[ "$(grep -c ' batch_max=100 ' <<<"$out")" -eq 4 ] || net_fail "status does not show --batch-max 100"
grep -q ' height=0 ' <<<"$out" && net_fail "a replica reports an empty ledger after commits"
[ "$(grep -cE ' executed=[1-9][0-9]* cpu_s=[0-9]+\.[0-9]{3}' <<<"$out")" -eq 4 ] ||
  net_fail "not every replica reports requests executed and its CPU time"
[ "$(grep -c ' unsafe_no_fsync=1' <<<"$out")" -eq 1 ] && grep -q '^replica=3 .* unsafe_no_fsync=1' <<<"$out" ||
  net_fail "status does not show replica 3 (and only it) running with --unsafe-no-fsync"
head -n 1 "$NET_DIR/replica-3.log" | grep -q 'event=unsafe_no_fsync' || net_fail "replica 3's first log line does not warn of --unsafe-no-fsync"
net_log "all four reachable and agreeing; replica 3 reports --unsafe-no-fsync"

# one down
net_kill_replica 2
rc=0
out=$(status) || rc=$?
echo "$out"
[ $rc -eq 1 ] || net_fail "status exited $rc with a replica down (wanted 1)"
grep -q '^replica=2 address=127.0.0.1:[0-9]* unreachable (' <<<"$out" || net_fail "replica 2 not reported unreachable"
[ "$(grep -c ' reachable ' <<<"$out")" -eq 3 ] || net_fail "the three others are not all reachable"
[ "$(wc -l <<<"$out")" -eq 4 ] || net_fail "not one line per replica"
grep -q '^replica=0 .* peers_up=2/3 ' <<<"$out" || net_fail "replica 0 does not report the lost peer"
status --replica 1 | grep -q '^replica=1 .* reachable ' || net_fail "--replica 1 did not answer"
net_client --timeout 10 put s4 v >/dev/null || net_fail "the three others do not commit"
net_log "PASS: one line per replica; the stopped one unreachable, exit 1"
