#!/usr/bin/env bash
# Real processes: a replica whose WAL fsync fails (injected: BFT_TEST_FAIL_SYNC=wal:N makes its
# N-th sync fail with ENOSPC, as a full disk would) stops with one clear line and exit status
# 1; the other three keep committing; restarted (no injection) it catches up, and the same
# holds for a failing snapshot write (snap:1). Nothing acknowledged is lost: every operation the
# load generator saw acknowledged completed with errors=0, and the ledgers agree.
# Usage: net_diskfull.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_diskfull.sh BIN_DIR}" && pwd)
NET_NAME=diskfull-${NET_PROTOCOL:-pbft}
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
net_make_cluster 4 4
NET_REPLICA_ARGS=(--snapshot-every 8)

bench() {
  local out rc=0 result
  out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --total-ops "$1" \
    --duration 120 --timeout 30 --ops mixed --keyspace 50 2>>"$NET_DIR/bench.log") || rc=$?
  result=$(grep '^RESULT ' <<<"$out" || true)
  [ $rc -eq 0 ] && grep -q " ops=$1 .* errors=0" <<<"$result" || net_fail "bench of $1 ops: exit $rc, $result"
  net_log "$1 operations committed: ${result#RESULT }"
}

fails_once() { # fails_once SPEC WHAT: replica 0 started with the injected failure must stop cleanly
  local spec=$1 what=$2 pid deadline code
  net_kill_replica 0 TERM
  BFT_TEST_FAIL_SYNC=$spec net_start_replica 0
  pid=${NET_REPLICA_PID[0]}
  bench 300
  deadline=$((SECONDS + 30))
  while net_running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  net_running "$pid" && net_fail "replica 0 still runs after its $what failed"
  code=0
  wait "$pid" 2>/dev/null || code=$?
  unset "NET_REPLICA_PID[0]"
  [ "$code" = 1 ] || net_fail "replica 0 exited with $code after its $what failed (want 1)"
  line=$(grep '^fatal: ' "$NET_DIR/replica-0.log" | tail -n 1)
  grep -q "^fatal: fsync of .*$what.* failed: No space left on device — stopping; nothing acknowledged was lost$" <<<"$line" ||
    net_fail "no clear fatal line for the $what: '$line'"
  net_log "replica 0 stopped (exit 1): $line"
  net_start_replica 0
  net_client --timeout 10 put "after-$what" yes >/dev/null || net_fail "put after the restart failed"
  head=$(net_wait_agree "0 1 2 3" 60)
  net_log "replica 0 restarted and caught up: $head"
}

net_start_all
net_wait_ready 30
bench 100
fails_once wal:40 wal
fails_once snap:1 snap
fails_once ledger:30 ledger
net_check_alive
echo "[$NET_NAME] PASS"
