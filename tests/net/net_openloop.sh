#!/usr/bin/env bash
# Real processes: bft-bench's open loop. At a low rate the offered load is carried with short
# latencies and nothing dropped; far above capacity the arrivals pile up in the bounded
# backlog, the overflow is dropped and counted, and latency (counted from each operation's
# intended arrival time) grows while the run goes on instead of being hidden.
# Usage: net_openloop.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_openloop.sh BIN_DIR}" && pwd)
NET_NAME=openloop
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
net_make_cluster 4 8
net_start_all
net_wait_ready 30

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
bench() { "$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 8 --warmup 0.3 "$@"; }

low=$(bench --rate 40 --arrival fixed --duration 2 | grep '^RESULT') || net_fail "low-rate run failed"
net_log "low rate:  $low"
[ "$(field mode "$low")" = open ] || net_fail "RESULT does not say mode=open"
[ "$(field drops "$low")" = 0 ] || net_fail "drops at 40 ops/s"
awk -v t="$(field throughput_ops "$low")" 'BEGIN { exit !(t > 25 && t < 60) }' || net_fail "40 ops/s offered but $(field throughput_ops "$low") carried"
p99_low=$(field p99_ms "$low")

high=$(bench --rate 50000 --backlog 1500 --duration 3 --progress 2>"$NET_DIR/progress.log" | grep '^RESULT') ||
  net_fail "high-rate run failed"
net_log "high rate: $high"
cat "$NET_DIR/progress.log"
[ "$(field drops "$high")" -gt 0 ] || net_fail "no drops reported far above capacity"
[ "$(field backlog_max "$high")" = 1500 ] || net_fail "the backlog did not fill to its bound"
[ "$(field errors "$high")" = 0 ] || net_fail "errors above capacity"
awk -v o="$(field offered_ops "$high")" -v t="$(field throughput_ops "$high")" 'BEGIN { exit !(o > 10 * t) }' ||
  net_fail "offered load not reported above throughput"
p50_high=$(field p50_ms "$high")
awk -v h="$p50_high" -v l="$p99_low" 'BEGIN { exit !(h > 5 * l && h > 100) }' ||
  net_fail "latency above capacity (p50 ${p50_high} ms) not far above the low-rate p99 (${p99_low} ms)"
# growing while it runs: the last second's p99 above the first second's
first=$(grep -o 'p99_ms=[0-9.]*' "$NET_DIR/progress.log" | head -n 1 | cut -d= -f2)
last=$(grep -o 'p99_ms=[0-9.]*' "$NET_DIR/progress.log" | tail -n 1 | cut -d= -f2)
[ "$(grep -c 't=.*ops/s=.*p99_ms=' "$NET_DIR/progress.log")" -ge 2 ] || net_fail "--progress printed fewer than 2 lines"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > a) }' || net_fail "p99 did not grow over the run ($first then $last ms)"
net_log "PASS: low-rate p99 ${p99_low} ms; above capacity p50 ${p50_high} ms, p99 per second ${first} -> ${last} ms, drops counted"
