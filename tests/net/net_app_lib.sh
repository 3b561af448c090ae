# Helpers of the application tests (sourced after net_lib.sh): Python applications over the
# application socket, started and stopped by pid like the replicas; readiness and the token
# ledger's books checked through stale queries to every replica.

NET_EXAMPLES=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples" && pwd)
declare -A NET_APP_PID=()

# Start an application process for replica I: $2.. is its command line (it gets
# --socket $NET_DIR/app-I.sock appended); bft-replica I is then given --app unix:that socket.
net_start_app() {
  local id=$1
  shift
  rm -f "$NET_DIR/app-$id.sock"
  "$@" --socket "$NET_DIR/app-$id.sock" >>"$NET_DIR/app-$id.log" 2>&1 </dev/null &
  NET_APP_PID[$id]=$!
  NET_PIDS+=($!)
  NET_REPLICA_EXTRA[$id]="--app unix:$NET_DIR/app-$id.sock"
  local deadline=$((SECONDS + 10))
  while [ ! -S "$NET_DIR/app-$id.sock" ]; do
    net_running "${NET_APP_PID[$id]}" || net_fail "application $id exited: $(tail -n 3 "$NET_DIR/app-$id.log")"
    [ $SECONDS -lt $deadline ] || net_fail "application $id did not listen within 10s"
    sleep 0.05
  done
}

net_kill_app() {
  local pid=${NET_APP_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 5))
  while net_running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  { wait "$pid"; } 2>/dev/null || true
  unset "NET_APP_PID[$1]"
}

# Wait until an ordered token operation commits (bounded by $1 s).
net_wait_token_ready() {
  local deadline=$((SECONDS + ${1:-30}))
  while [ $SECONDS -lt $deadline ]; do
    if net_client --timeout 3 exec "balance c1" >/dev/null 2>&1; then
      net_check_alive
      net_log "cluster commits token operations"
      return 0
    fi
    sleep 0.2
  done
  net_fail "the token ledger cluster did not commit within ${1:-30}s"
}

# Every replica in $1 answers, from its own state, the balances the load generator's
# acknowledged transfers imply (file $2: "expect cI BALANCE" lines) and the supply $3.
net_check_books() {
  local ids=$1 expect=$2 supply=$3 id acct want got
  for id in $ids; do
    got=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 5 --replica "$id" query --stale supply 2>/dev/null) ||
      net_fail "replica $id did not answer the supply query"
    [ "$got" = "supply=$supply accounts=$(wc -l <"$expect") sum=$supply" ] ||
      net_fail "replica $id: '$got', expected supply=$supply with every balance summing to it"
    while read -r _ acct want; do
      got=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 5 --replica "$id" query --stale "balance $acct" 2>/dev/null)
      [ "$got" = "$want" ] || net_fail "replica $id: balance of $acct is '$got', the acknowledged transfers give $want"
    done <"$expect"
  done
  net_log "replicas $ids hold exactly the balances the acknowledged transfers imply; supply $supply conserved"
}

# Every replica in $1 accepts its whole ledger with verify-ledger.
net_verify_ledgers() {
  local id out
  for id in $1; do
    out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica "$id" verify-ledger) ||
      net_fail "verify-ledger of replica $id: $out"
    grep -q '^OK: ' <<<"$out" || net_fail "verify-ledger of replica $id: $out"
  done
  net_log "verify-ledger accepts the ledgers of replicas $1"
}

# Like net_wait_agree, for a replica catching up after a restart: while the replicas in $1 do
# not agree yet, keep the cluster committing (one ordered read per round), as clients would, so
# a replica behind an idle cluster is not left waiting for traffic. Bounded by $2 s (default 60).
net_wait_agree_busy() {
  net_wait_agree "$1" "${2:-60}" 'net_client --timeout 5 exec "balance c1"'
}

# Wait (bounded by $2 + 90 s) for the token load generator started as pid $1 to end, then
# require that every transfer succeeded and keep its expected balances in $NET_DIR/expect.txt;
# its RESULT line is left in NET_LOAD_RESULT.
net_finish_token_load() {
  local load=$1 deadline=$((SECONDS + $2 + 90)) rc=0 result
  while net_running "$load"; do
    [ $SECONDS -lt $deadline ] || net_fail "the load generator did not finish"
    sleep 0.2
  done
  wait "$load" || rc=$?
  result=$(grep '^RESULT ' "$NET_DIR/load.out" || true)
  net_log "$result"
  [ "$rc" -eq 0 ] && grep -q ' errors=0 other=0 ' <<<"$result" ||
    net_fail "transfers failed (exit $rc): $(tail -n 3 "$NET_DIR/load.log" 2>/dev/null)"
  grep '^expect ' "$NET_DIR/load.out" >"$NET_DIR/expect.txt"
  NET_LOAD_RESULT=$result
}
