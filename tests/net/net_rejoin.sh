#!/usr/bin/env bash
# Real processes: a replica stopped and started again with a fresh (empty) data folder rejoins
# without breaking the others: requests keep committing while it is away and after it is back,
# the other three agree on the ledger head, it catches up to them, and the ledger verifies.
# Then a replica restarted (old data folder) behind an idle cluster catches up with no request.
# Usage: net_rejoin.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_rejoin.sh BIN_DIR}" && pwd)
NET_NAME=rejoin
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
net_make_cluster 4 4

bench() { # bench N: N more operations from 4 clients; all must complete
  local out rc=0
  out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --total-ops "$1" \
    --duration 60 --timeout 30 --ops mixed --keyspace 20 2>>"$NET_DIR/bench.log") || rc=$?
  local result
  result=$(grep '^RESULT ' <<<"$out" || true)
  [ $rc -eq 0 ] && grep -q " ops=$1 .* errors=0" <<<"$result" || net_fail "bench of $1 ops: exit $rc, $result"
  net_log "$1 operations committed: ${result#RESULT }"
}

net_start_all
net_wait_ready 30
bench 150

net_kill_replica 3 TERM
net_log "stopped replica 3"
bench 100 # the other three carry on without it
rm -rf "$NET_DIR/data-3"
net_start_replica 3 "$NET_DIR/data-3"
sleep 0.3
net_check_alive
net_log "restarted replica 3 with an empty data folder"
bench 150

head=$(net_wait_agree "0 1 2" 20)
net_log "replicas 0, 1, 2 agree on the head (height, batch, state): $head"
# The fresh replica fetches what it missed; one more request after it rejoined lets it learn
# the head if it has not yet.
net_client --timeout 10 put rejoin-check done >/dev/null || net_fail "put after the rejoin failed"
head=$(net_wait_agree "0 1 2 3" 30)
net_log "replica 3 caught up: all four agree on the head (height, batch, state): $head"
net_same_ledgers "0 1 2 3"
out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica 3 verify-ledger) ||
  net_fail "verify-ledger of replica 3: $out"
net_log "replica 3's ledger: $out"

# Catch-up with no traffic: the first leader (replica 0) misses 60 operations, the cluster goes
# idle under a new leader, and it comes back with its old data folder. Nothing more is
# submitted: it must learn it is behind from its peers as they connect, not from the next
# request (an application test once saw such a replica 6 blocks behind for a minute).
net_kill_replica 0 TERM
bench 60
head=$(net_wait_agree "1 2 3" 20)
net_start_replica 0 "$NET_DIR/data-0"
net_log "restarted replica 0 (old data folder) behind an idle cluster at $head"
head=$(net_wait_agree "0 1 2 3" 20)
net_log "replica 0 caught up with no new request: $head"
echo "[$NET_NAME] PASS"
