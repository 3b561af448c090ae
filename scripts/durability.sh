#!/usr/bin/env bash
# SIGKILL every replica at once, at a random moment under load, ROUNDS times (issue 13), then
# check that nothing acknowledged was lost, that the ledgers are identical and that each one
# verifies (from its certified snapshot on: replicas run --snapshot-every 8 --retain-blocks 16).
# Load: bft-bench with 4 clients in the background, and 4 writers, each putting its own counter key (dur-wW = 1, 2, 3, ...) and a fresh key per
# write (dur-wW-I), one at a time; a write counts as acknowledged once bft-client returned OK.
# After every restart the cluster must commit again within 60 s and each counter must be at
# least the last acknowledged value (no rollback).
# Usage: scripts/durability.sh BIN_DIR [ROUNDS] [PROTOCOL...]   (default 20 rounds, every engine)
set -euo pipefail
BIN=$(cd "${1:?usage: durability.sh BIN_DIR [ROUNDS] [PROTOCOL...]}" && pwd)
ROUNDS=${2:-20}
shift 2 || shift $#
PROTOCOLS=("$@")
[ ${#PROTOCOLS[@]} -gt 0 ] || PROTOCOLS=(pbft hotstuff tendermint)
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ${#PROTOCOLS[@]} -gt 1 ]; then # one process per engine: each gets its own folder and ports
  summary=""
  rc=0
  for p in "${PROTOCOLS[@]}"; do
    if bash "$0" "$BIN" "$ROUNDS" "$p"; then summary+="$p: PASS ($ROUNDS rounds)"$'\n'; else rc=1; summary+="$p: FAIL"$'\n'; fi
  done
  printf '%s' "$summary"
  exit $rc
fi

NET_PROTOCOL=${PROTOCOLS[0]}
NET_BIN=$BIN
NET_NAME=killall-$NET_PROTOCOL
. "$HERE/../tests/net/net_lib.sh"
net_require_bins bft-replica bft-keygen bft-client
net_make_cluster 4 12
NET_REPLICA_ARGS=(--snapshot-every 8 --retain-blocks 16)
WRITERS=4
WPIDS=()

writer() { # writer W: sequential puts until killed; acknowledged values appended to ack-W
  local w=$1 i
  i=$(($(tail -n 1 "$NET_DIR/ack-$w" 2>/dev/null || echo 0) + 1))
  while :; do
    if "$NET_BIN/bft-client" --config "$NET_CFG" --key "$NET_DIR/keys/client-$((w + 7)).key" --timeout 5 \
      put "dur-w$w-$i" "v$i" >/dev/null 2>&1 &&
      "$NET_BIN/bft-client" --config "$NET_CFG" --key "$NET_DIR/keys/client-$((w + 7)).key" --timeout 5 \
        put "dur-w$w" "$i" >/dev/null 2>&1; then
      echo "$i" >>"$NET_DIR/ack-$w"
      i=$((i + 1))
    fi
  done
}

start_writers() {
  local w
  WPIDS=()
  # background load from 4 more clients (bft-bench; its outcome does not matter: it is killed)
  "$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --duration 30 --timeout 5 \
    --ops mixed --keyspace 500 >>"$NET_DIR/bench.log" 2>&1 &
  WPIDS+=($!)
  for ((w = 1; w <= WRITERS; w++)); do
    writer "$w" &
    WPIDS+=($!)
  done
}

stop_writers() {
  local p
  for p in "${WPIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${WPIDS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
  WPIDS=()
}

kill_all_replicas() { # SIGKILL, all at once
  local pids=() id
  for id in "${!NET_REPLICA_PID[@]}"; do pids+=("${NET_REPLICA_PID[$id]}"); done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for id in "${!NET_REPLICA_PID[@]}"; do net_kill_replica "$id" KILL; done
  NET_PIDS=() # all gone and reaped: never signal a pid the system may reuse
}

check_counters() { # every counter key holds at least its last acknowledged value
  local w acked got
  for ((w = 1; w <= WRITERS; w++)); do
    acked=$(tail -n 1 "$NET_DIR/ack-$w" 2>/dev/null || echo 0)
    got=$(net_client --timeout 20 get "dur-w$w") || net_fail "get dur-w$w failed"
    got=${got:-0}
    [ "$got" -ge "$acked" ] || net_fail "LOST: dur-w$w is $got but $acked was acknowledged"
  done
}

trap 'rc=$?; set +e; stop_writers; (exit $rc); net_cleanup' EXIT
net_start_all
net_wait_ready 60
for ((round = 1; round <= ROUNDS; round++)); do
  start_writers
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + 2.5 * r / 32767 }')"
  kill_all_replicas
  stop_writers
  acked=0
  for ((w = 1; w <= WRITERS; w++)); do acked=$((acked + $(wc -l <"$NET_DIR/ack-$w" 2>/dev/null || echo 0))); done
  net_start_all
  t0=$SECONDS
  net_wait_ready 60
  check_counters
  net_log "round $round: all 4 SIGKILLed and restarted; commits again after $((SECONDS - t0)) s; $acked writes acknowledged so far, none lost"
done

# Final checks: agreement on the head, identical blocks where the ledgers overlap, every ledger
# verifies, every acknowledged fresh key (a sample of 40) is there.
head=$(net_wait_agree "0 1 2 3" 60)
net_log "all four agree on the head (height, batch, state, hash): $head"
ref=""
for id in 0 1 2 3; do
  out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica "$id" verify-ledger) ||
    net_fail "verify-ledger of replica $id: $out"
  net_log "replica $id: $out"
  content=$(net_ledger_content "$id")
  first=$(head -n 1 <<<"$content" | sed 's/height=\([0-9]*\).*/\1/')
  [ -z "$ref" ] && ref=$content && reffirst=$first && continue
  start=$((first > reffirst ? first : reffirst))
  # up to the lower of the two heads: pending requests may still commit while we read
  last=$(tail -n 1 <<<"$content" | sed 's/height=\([0-9]*\).*/\1/')
  reflast=$(tail -n 1 <<<"$ref" | sed 's/height=\([0-9]*\).*/\1/')
  end=$((last < reflast ? last : reflast))
  a=$(awk -v s="$start" -v e="$end" '{ h = $1; sub("height=", "", h); if (h + 0 >= s && h + 0 <= e) print }' <<<"$ref")
  b=$(awk -v s="$start" -v e="$end" '{ h = $1; sub("height=", "", h); if (h + 0 >= s && h + 0 <= e) print }' <<<"$content")
  [ -n "$a" ] && [ "$a" = "$b" ] || net_fail "the ledgers of replicas 0 and $id differ (heights $start-$end)"
done
net_log "ledgers identical where they overlap (each pruned below its own snapshot)"
check_counters
checked=0
for ((w = 1; w <= WRITERS; w++)); do
  for i in $(shuf -n 10 "$NET_DIR/ack-$w" 2>/dev/null || true); do
    got=$(net_client --timeout 20 get "dur-w$w-$i") || net_fail "get dur-w$w-$i failed"
    [ "$got" = "v$i" ] || net_fail "LOST: dur-w$w-$i was acknowledged but reads '$got'"
    checked=$((checked + 1))
  done
done
net_log "$checked acknowledged fresh keys read back"
echo "[$NET_NAME] PASS: $ROUNDS rounds of SIGKILL-all; nothing acknowledged lost; ledgers identical and verified"
