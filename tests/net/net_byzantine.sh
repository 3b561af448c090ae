#!/usr/bin/env bash
# Real processes: 4 replicas, one of them started with `bft-replica --byzantine MODES`; 4
# concurrent clients (bft-bench) submit operations, puts and gets on a few keys: TOTAL of them, or
# for D seconds when TOTAL is written Ds (e.g. 20s; operations still open when the time is up are
# recorded as open). Every operation must complete, the history must be linearizable, the three
# correct replicas must agree on the ledger head and hold the same blocks, verify-ledger must
# accept each of their ledgers, and the faulty replica must say what it is in its first log line.
# With NET_EXPECT_EVIDENCE=1, at least one correct replica must hold evidence against it, valid
# with the cluster file alone (always required for `corrupt`, except on HotStuff, see below).
# Usage: net_byzantine.sh BIN_DIR FAULTY_ID MODES [TOTAL|Ds]
NET_BIN=$(cd "${1:?usage: net_byzantine.sh BIN_DIR FAULTY_ID MODES [TOTAL|Ds]}" && pwd)
faulty=${2:?faulty replica id}
modes=${3:?--byzantine modes}
total=${4:-300}
NET_NAME=byzantine-$faulty
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench net-lincheck
net_make_cluster 4 8
NET_REPLICA_EXTRA[$faulty]="--byzantine $modes"
net_start_all
net_wait_ready 40
head -n 1 "$NET_DIR/replica-$faulty.log" | grep -q 'event=byzantine_replica' ||
  net_fail "the faulty replica's first log line does not say it is faulty"
net_log "replica $faulty runs --byzantine $modes"

history=$NET_DIR/history.txt
if [[ $total =~ ^([0-9]+)s$ ]]; then # a duration: as many operations as fit
  secs=${BASH_REMATCH[1]}
  load=(--duration "$secs" --warmup 0)
  bound=$((secs + 70))
else
  load=(--total-ops "$total" --duration 100)
  bound=110
fi
"$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 "${load[@]}" \
  --ops mixed --keyspace 5 --value-size 16 --timeout 60 --history "$history" \
  >"$NET_DIR/bench.out" 2>"$NET_DIR/bench.log" &
bench=$!
NET_PIDS+=($bench)
deadline=$((SECONDS + bound))
while net_running $bench; do
  [ $SECONDS -lt $deadline ] || net_fail "bft-bench did not finish within ${bound}s"
  sleep 0.2
done
rc=0
wait $bench || rc=$?
cat "$NET_DIR/bench.out"
result=$(grep '^RESULT ' "$NET_DIR/bench.out" || true)
[ -n "$result" ] || net_fail "bft-bench printed no RESULT line (exit $rc)"
ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$result")
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")
if [ -n "${secs:-}" ]; then
  [ "$rc" -eq 0 ] && [ "${ops:-0}" -gt 0 ] && [ "$errors" = 0 ] ||
    net_fail "expected operations without errors in ${secs}s, got ops=$ops errors=$errors (exit $rc)"
  # completed ones, and the puts still open at the stop
  [ "$(wc -l <"$history")" -ge "$ops" ] || net_fail "history holds $(wc -l <"$history") operations, fewer than $ops"
else
  [ "$rc" -eq 0 ] && [ "$ops" = "$total" ] && [ "$errors" = 0 ] ||
    net_fail "expected $total operations without errors, got ops=$ops errors=$errors (exit $rc)"
  [ "$(wc -l <"$history")" -eq "$total" ] || net_fail "history holds $(wc -l <"$history") operations, not $total"
fi
"$NET_BIN/net-lincheck" "$history" || net_fail "the history is not linearizable"

correct=""
for i in 0 1 2 3; do [ "$i" = "$faulty" ] || correct="$correct $i"; done
head=$(net_wait_agree "${correct# }" 30)
net_log "correct replicas${correct} agree on the ledger head: height, batch, state = $head"
net_same_ledgers "${correct# }" "${head%% *}"
for i in $correct; do
  out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 20 --replica "$i" verify-ledger) ||
    net_fail "verify-ledger of replica $i: $out"
  grep -q '^OK: ' <<<"$out" || net_fail "verify-ledger of replica $i: $out"
  net_log "$out"
done
# A replica that corrupts its votes (validly signed) contradicts itself: the correct replicas
# keep both messages as evidence, and bft-client checks every piece with the cluster file.
evidence() {
  out=$("$NET_BIN/bft-client" --config "$NET_CFG" --timeout 5 evidence) || net_fail "bft-client evidence: $out"
}
evidence
net_log "$(grep -c 'valid: ' <<<"$out") piece(s) of evidence, all valid"
# (HotStuff checks a vote's block before its vote set, so a corrupted vote for a block nobody
# proposed is refused rather than kept as evidence; its equivocation evidence comes from two
# votes for two real blocks of one view, as the simulator's equivocating twins produce.)
# Whether a corrupted message meets its genuine twin at one replica is a matter of chance (a
# replay, a retransmission): a short run can hold none. So while none is held, more operations
# are submitted, 100 at a time, at most 20 times; every batch must still complete.
if [[ ${NET_EXPECT_EVIDENCE:-0} = 1 || ($modes == *corrupt* && ${NET_PROTOCOL:-pbft} != hotstuff) ]]; then
  for more in $(seq 1 20); do
    grep -q "offender=$faulty .*valid: " <<<"$out" && break
    timeout 60 "$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --total-ops 100 \
      --duration 50 --ops mixed --keyspace 5 --value-size 16 --timeout 30 >"$NET_DIR/bench-more.out" 2>&1 ||
      net_fail "100 more operations (batch $more) failed: $(tail -n 3 "$NET_DIR/bench-more.out")"
    evidence
    net_log "after $more more batch(es) of 100 operations: $(grep -c 'valid: ' <<<"$out") piece(s) of evidence"
  done
  grep -q "offender=$faulty .*valid: " <<<"$out" || net_fail "no correct replica reports evidence against replica $faulty: $out"
  net_log "evidence against replica $faulty: $(grep "offender=$faulty .*valid: " <<<"$out" | head -n 3 | tr '\n' ';')"
fi
if [[ $modes == *equivocate* ]]; then
  grep -q 'event=byzantine_twin ' "$NET_DIR/replica-$faulty.log" || net_fail "the equivocating replica did not start its twin"
  net_log "twin: $(grep -m1 -o 'copy_a_peers=[^ ]* copy_b_peers=[^ ]* bridge=[^ ]*' "$NET_DIR/replica-$faulty.log")"
fi
echo "[$NET_NAME] PASS ($modes)"
