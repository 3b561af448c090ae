#!/usr/bin/env bash
# Real processes: how clients authenticate. A cluster file without protocol_only refuses
# unsigned (v3, MAC-authenticated) requests with a reason naming the setting; with
# protocol_only = true the same load runs with no signature on any request; signed requests
# with MAC replies (the default) and with signed replies run on both; bft-bench labels each
# RESULT with auth= and reports the replicas' CPU per request.
# Usage: net_protocol_only.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_protocol_only.sh BIN_DIR}" && pwd)
NET_NAME=protoonly
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
bench() { "$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 4 --warmup 0.2 --duration 1.5 "$@"; }

# 1. An ordinary cluster: signed requests in both reply modes; protocol-only requests refused.
net_make_cluster 4 4
net_start_all
net_wait_ready 30
# (signed replies with every client on its own connections, --connections 0; MAC replies with
# the clients sharing one connection per replica, the default)
for auth in mac-replies signed; do
  conns=1
  [ "$auth" = signed ] && conns=0
  out=$(bench --auth "$auth" --timeout 5 --connections "$conns" | grep '^RESULT') || net_fail "--auth $auth run failed"
  net_log "$out"
  [ "$(field auth "$out")" = "$auth" ] || net_fail "RESULT does not say auth=$auth"
  [ "$(field connections "$out")" = "$conns" ] || net_fail "RESULT does not say connections=$conns"
  [ "$(field errors "$out")" = 0 ] || net_fail "errors with --auth $auth"
  awk -v c="$(field cpu_us_per_op "$out")" 'BEGIN { exit !(c > 0) }' || net_fail "no CPU per request reported"
done
set +e
refused=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 1 --total-ops 1 --timeout 3 \
  --auth protocol-only 2>&1)
rc=$?
set -e
[ "$rc" != 0 ] || net_fail "an ordinary cluster accepted unsigned requests: $refused"
grep -q "protocol_only" <<<"$refused" || net_fail "the refusal does not name protocol_only: $refused"
net_log "ordinary cluster refuses unsigned requests: $(grep -m1 'protocol_only' <<<"$refused")"
net_wait_agree "0 1 2 3" 20 >/dev/null || net_fail "heads differ after the signed runs"
net_stop_all

# 2. A protocol-only cluster: unsigned requests run; signed ones still do.
rm -rf "$NET_DIR/keys" "$NET_DIR"/data-*
NET_KEYGEN_ARGS=(--protocol-only)
net_make_cluster 4 4
grep -q '^protocol_only = true' "$NET_CFG" || net_fail "bft-keygen --protocol-only did not write protocol_only = true"
net_start_all
net_wait_ready 30
out=$(bench --auth protocol-only | grep '^RESULT') || net_fail "protocol-only run failed"
net_log "$out"
[ "$(field auth "$out")" = protocol-only ] && [ "$(field errors "$out")" = 0 ] || net_fail "protocol-only run: $out"
awk -v t="$(field ops "$out")" 'BEGIN { exit !(t > 10) }' || net_fail "protocol-only run completed too few operations"
out=$(bench --auth signed | grep '^RESULT') || net_fail "signed run on a protocol-only cluster failed"
[ "$(field errors "$out")" = 0 ] || net_fail "errors with signed requests on a protocol-only cluster"
net_wait_agree "0 1 2 3" 20 >/dev/null || net_fail "heads differ after the protocol-only run"
"$NET_BIN/bft-client" --config "$NET_CFG" --key "$NET_DIR/keys/client-0.key" verify-ledger >"$NET_DIR/verify.log" 2>&1 ||
  { cat "$NET_DIR/verify.log"; net_fail "verify-ledger failed on the protocol-only ledger"; }
net_log "PASS: signed (MAC and signed replies) on both clusters, unsigned only where protocol_only = true"
