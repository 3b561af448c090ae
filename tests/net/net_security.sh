#!/usr/bin/env bash
# Real processes: the CLI's clear one-line errors (unreachable cluster, bad arguments, bad or
# loose key files, a client missing from the cluster file), the replicas' refusal of a client not
# in the cluster file (no answer, logged) and of a request whose signature was tampered with
# (answered with a signed rejection and logged), and of a peer that presents another replica's
# identity with its own key.
# The cluster must keep serving correct clients throughout.
# Usage: net_security.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_security.sh BIN_DIR}" && pwd)
NET_NAME=security
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client net-probe
net_make_cluster 4 2
keys=$NET_DIR/keys

# expect_fail EXIT_CODE STDERR_PATTERN command...: the command exits with EXIT_CODE and prints
# exactly one line on stderr, which matches the pattern.
expect_fail() {
  local want=$1 pat=$2 rc=0
  shift 2
  "$@" >"$NET_DIR/out.txt" 2>"$NET_DIR/err.txt" || rc=$?
  [ "$rc" -eq "$want" ] || net_fail "'${*##*/}' exited $rc, not $want; stderr: $(cat "$NET_DIR/err.txt")"
  [ "$(wc -l <"$NET_DIR/err.txt")" -eq 1 ] || net_fail "'${*##*/}' printed $(wc -l <"$NET_DIR/err.txt") stderr lines: $(cat "$NET_DIR/err.txt")"
  grep -qE "$pat" "$NET_DIR/err.txt" || net_fail "'${*##*/}' said: $(cat "$NET_DIR/err.txt") (wanted /$pat/)"
  net_log "ok: $(cat "$NET_DIR/err.txt")"
}

cli=("$NET_BIN/bft-client" --config "$NET_CFG")

# --- before any replica runs: the cluster is unreachable ----------------------------------------
expect_fail 1 "no replica reachable within 1.0 s" "${cli[@]}" --key "$keys/client-0.key" --timeout 1 put k v
expect_fail 2 "takes 2 arguments" "${cli[@]}" --key "$keys/client-0.key" put k
expect_fail 2 "unknown option" "${cli[@]}" --key "$keys/client-0.key" --frobnicate get k
cp "$keys/client-1.key" "$NET_DIR/loose.key"
chmod 644 "$NET_DIR/loose.key"
expect_fail 1 "accessible by group or others" "${cli[@]}" --key "$NET_DIR/loose.key" get k
printf 'not a key\n' >"$NET_DIR/bad.key"
chmod 600 "$NET_DIR/bad.key"
expect_fail 1 "bad.key" "${cli[@]}" --key "$NET_DIR/bad.key" get k
expect_fail 1 "cannot open cluster file" "$NET_BIN/bft-client" --config "$NET_DIR/none.ini" --key "$keys/client-0.key" get k

# --- a running cluster ----------------------------------------------------------------------------
net_start_all
net_wait_ready 30

# A client key that is not in the cluster file: refused locally with a clear line...
"$NET_BIN/bft-keygen" --replicas 4 --clients 1 --out "$NET_DIR/stranger" --base-port "$NET_BASE_PORT" >/dev/null
expect_fail 1 "not permitted.*not listed" "${cli[@]}" --key "$NET_DIR/stranger/client-0.key" put k v
# ...and, if sent anyway, costs the replicas neither a verify nor a signature: no answer at all
# (issue 16), only a count and a rate-limited warn line per source.
expect_fail 1 "no 2 matching replies|no answer within" "${cli[@]}" --key "$NET_DIR/stranger/client-0.key" \
  --no-permit-check --timeout 3 put k v
deadline=$((SECONDS + 5))
until grep -q 'event=source_offence.*reason=unknown_key' "$NET_DIR/replica-0.log"; do
  [ $SECONDS -lt $deadline ] || net_fail "replica 0 did not log the stranger's request"
  sleep 0.1
done

# A request whose signature was altered after signing: a signed rejection, and a log line.
out=$("$NET_BIN/net-probe" tamper --config "$NET_CFG" --key "$keys/client-1.key" --replica 1 --timeout 5) ||
  net_fail "tampered request: $out"
grep -q "REJECTED by replica 1: bad request signature" <<<"$out" || net_fail "tampered request: $out"
net_log "ok: $out"
deadline=$((SECONDS + 5))
until grep -q 'event=request_rejected.*reason="bad request signature"' "$NET_DIR/replica-1.log"; do
  [ $SECONDS -lt $deadline ] || net_fail "replica 1 did not log the tampered request"
  sleep 0.1
done
net_log "ok: replica 1 logged: $(grep -m1 'bad request signature' "$NET_DIR/replica-1.log")"

# A peer that claims to be replica 1 but proves it with replica 2's key: dropped, and logged.
out=$("$NET_BIN/net-probe" impersonate --config "$NET_CFG" --key "$keys/replica-2.key" --replica 3 --as 1 \
  --timeout 5) || net_fail "impersonation: $out"
grep -q "DROPPED by replica 3" <<<"$out" || net_fail "impersonation: $out"
net_log "ok: $out"
deadline=$((SECONDS + 5))
until grep -q "event=handshake_refused.*does not match the replica's key" "$NET_DIR/replica-3.log"; do
  [ $SECONDS -lt $deadline ] || net_fail "replica 3 did not log the refused handshake"
  sleep 0.1
done
net_log "ok: replica 3 logged: $(grep -m1 'event=handshake_refused' "$NET_DIR/replica-3.log")"

# The cluster still serves a correct client, and every replica is still up.
[ "$(net_client --timeout 10 put after-probes ok)" = OK ] || net_fail "put after the probes failed"
[ "$(net_client --timeout 10 get after-probes)" = ok ] || net_fail "get after the probes failed"
for i in 0 1 2 3; do
  net_running "${NET_REPLICA_PID[$i]}" || net_fail "replica $i died"
done
echo "[$NET_NAME] PASS"
