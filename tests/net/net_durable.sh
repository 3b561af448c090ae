#!/usr/bin/env bash
# Real processes, snapshots and state transfer (issue 13): a replica stopped while OPS operations
# commit is restarted with its old data folder, then again with an EMPTY one, and reaches the
# others' head both times by fetching a certified snapshot (the others pruned the blocks it
# lacks: --snapshot-every 8 --retain-blocks 4) and the blocks after it; then another replica is
# killed and the cluster still commits, so the rejoined one counts in the quorum. Ledgers agree
# and verify from the snapshot's certificate on.
# Usage: net_durable.sh BIN_DIR [OPS]   (NET_PROTOCOL picks the engine; OPS default 20000)
NET_BIN=$(cd "${1:?usage: net_durable.sh BIN_DIR [OPS]}" && pwd)
OPS=${2:-20000}
NET_NAME=durable-${NET_PROTOCOL:-pbft}
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
net_make_cluster 4 8
NET_REPLICA_ARGS=(--snapshot-every 8 --retain-blocks 4)
[ -n "${NET_DURABLE_NOSNAP:-}" ] && NET_REPLICA_ARGS=(--snapshot-every 0) # the same without snapshots (comparison)

bench() { # bench N: N more operations from 8 clients; all must complete
  local out rc=0 result
  out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 8 --total-ops "$1" \
    --duration 600 --timeout 30 --ops mixed --keyspace 200 2>>"$NET_DIR/bench.log") || rc=$?
  result=$(grep '^RESULT ' <<<"$out" || true)
  [ $rc -eq 0 ] && grep -q " ops=$1 .* errors=0" <<<"$result" || net_fail "bench of $1 ops: exit $rc, $result"
  net_log "$1 operations committed: ${result#RESULT }"
}

installs() { grep -c 'event=snapshot_installed' "$NET_DIR/replica-$1.log" || true; }

verify() { # verify ID: its ledger verifies from its certified snapshot on
  local out
  out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica "$1" verify-ledger) ||
    net_fail "verify-ledger of replica $1: $out"
  grep -q '^OK: ' <<<"$out" || net_fail "verify-ledger of replica $1: $out"
  net_log "replica $1: $out"
}

rejoin() { # rejoin HOW: replica 3 catches up after a restart (a put every 5 s while it has not:
  # an idle PBFT replica learns of a block it missed only from the next one)
  local head deadline=$((SECONDS + 90)) k=0
  while :; do
    net_client --timeout 10 put "rejoin-$1-$k" done >/dev/null || net_fail "put after the $1 restart failed"
    k=$((k + 1))
    head=$(agree_within "0 1 2 3" 5) && break
    [ $SECONDS -lt $deadline ] || net_fail "replica 3 ($1) did not reach the others' head within 90 s"
  done
  net_log "replica 3 ($1) reached the others' head (height, batch, state, hash): $head"
}

agree_within() { # agree_within IDS SEC: like net_wait_agree, but returns 1 instead of failing
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    net_heads_agree "$1" && return 0
    sleep 0.3
  done
  return 1
}

net_start_all
net_wait_ready 30
bench 200

net_kill_replica 3 TERM
net_log "stopped replica 3; $OPS operations commit without it"
bench "$OPS"

before=$(installs 3)
net_start_replica 3
sleep 0.3
net_check_alive
rejoin "old data folder"
if [ -z "${NET_DURABLE_NOSNAP:-}" ]; then
  [ "$(installs 3)" -gt "$before" ] || net_fail "replica 3 caught up without installing a snapshot (the others pruned)"
  grep -q 'event=snapshot_loaded' "$NET_DIR/replica-3.log" || net_fail "replica 3 did not start from its own snapshot"
fi
verify 3

net_kill_replica 3 TERM
bench 200
rm -rf "$NET_DIR/data-3"
before=$(installs 3)
net_start_replica 3 "$NET_DIR/data-3"
sleep 0.3
net_check_alive
rejoin "empty data folder"
[ -n "${NET_DURABLE_NOSNAP:-}" ] || [ "$(installs 3)" -gt "$before" ] || net_fail "replica 3 started empty and caught up without a snapshot"
verify 3
verify 0

# Kill the replica replica 0 follows (the leader, unless that is the rejoined 3): the others
# must change view with the rejoined replica in the quorum.
victim=$(grep -o 'event=view view=[0-9]* leader=[0-9]*' "$NET_DIR/replica-0.log" | tail -n 1 | sed 's/.*leader=//' || true)
victim=${victim:-0}
[ "$victim" = 3 ] && victim=1
rest=$(for i in 0 1 2 3; do [ "$i" = "$victim" ] || printf '%s ' "$i"; done)
net_kill_replica "$victim" KILL
net_log "killed replica $victim (the leader replica 0 followed): ${rest}must carry on"
bench 200
head=$(net_wait_agree "$rest" 30)
net_log "replicas ${rest}agree: $head"
verify 3
net_check_alive
echo "[$NET_NAME] PASS"
