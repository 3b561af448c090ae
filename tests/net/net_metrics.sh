#!/usr/bin/env bash
# Real processes: the replicas' /metrics endpoint (bft-replica --metrics) while bft-bench loads
# the cluster. Scrapes taken during the load show the counters moving (committed requests and
# blocks, request frames in, request-to-commit latencies); a malformed request is answered 400,
# an oversized head 431, another path 404, connections over the bound are closed at accept; and
# none of it disturbs the replica: the bench ends without errors and the replica still commits.
# Usage: net_metrics.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: net_metrics.sh BIN_DIR}" && pwd)
NET_NAME=metrics
. "$(dirname "$0")/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench
net_make_cluster 4 8
mport=$(net_pick_ports 4)
for i in 0 1 2 3; do NET_REPLICA_EXTRA[$i]="--metrics 127.0.0.1:$((mport + i))"; done
net_start_all
net_wait_ready 30

# http PORT TEXT: send TEXT raw on a fresh connection, print the answer (bounded by 5 s).
http() {
  local out
  out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf "%b" "$2" >&3; cat <&3' _ "$1" "$2") ||
    net_fail "no HTTP answer on port $1"
  printf '%s\n' "$out"
}
scrape() { http "$1" 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'; }
# value NAME_WITH_LABELS < page: the sample's value (empty when absent)
value() { awk -v k="$1" '$1 == k { print $2; exit }'; }

page=$(scrape "$mport")
grep -q '^HTTP/1.1 200 OK' <<<"$page" || net_fail "scrape was not answered 200: $(head -n 1 <<<"$page")"
grep -q '^Content-Type: text/plain; version=0.0.4' <<<"$page" || net_fail "scrape lacks the exposition content type"
for fam in bft_committed_requests_total bft_committed_blocks_total bft_view bft_leader bft_view_changes_total \
  bft_request_to_commit_seconds bft_commit_to_execute_seconds bft_batch_size_requests bft_frames_received_total \
  bft_frame_bytes_sent_total bft_rejected_total bft_equivocation_evidence_total bft_fsync_seconds \
  bft_pool_requests bft_peer_queue_bytes; do
  grep -q "^# TYPE $fam " <<<"$page" || net_fail "family $fam missing from /metrics"
done
grep -q '^bft_replica_info{replica="0",protocol="'"$NET_PROTOCOL"'"' <<<"$page" || net_fail "bft_replica_info does not name replica 0 / $NET_PROTOCOL"

"$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients 8 --duration 5 --warmup 0.5 \
  >"$NET_DIR/bench.out" 2>"$NET_DIR/bench.log" &
bench_pid=$!
NET_PIDS+=("$bench_pid")
sleep 1.5
p1=$(scrape "$mport")

# Hostile scrapes while the load runs.
a=$(http "$mport" 'GARBAGE\r\n\r\n')
grep -q '^HTTP/1.1 400 ' <<<"$a" || net_fail "a malformed request was not answered 400: $(head -n 1 <<<"$a")"
a=$(http "$mport" 'GET /metrics HTTP/1.1\r\nHost: x\x01y\r\n\r\n')
grep -q '^HTTP/1.1 400 ' <<<"$a" || net_fail "a control character in a header was not answered 400"
a=$(http "$mport" "GET /metrics HTTP/1.1\r\nX-Pad: $(head -c 5000 /dev/zero | tr '\0' a)\r\n\r\n")
grep -q '^HTTP/1.1 431 ' <<<"$a" || net_fail "an oversized request head was not answered 431: $(head -n 1 <<<"$a")"
a=$(http "$mport" 'GET /secrets HTTP/1.1\r\n\r\n')
grep -q '^HTTP/1.1 404 ' <<<"$a" || net_fail "another path was not answered 404"
a=$(http "$mport" 'POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd')
grep -q '^HTTP/1.1 400 ' <<<"$a" || net_fail "a request with a body was not answered 400"
# More idle connections than the bound (8): the extra ones are closed at accept.
fds=()
for k in $(seq 1 12); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$mport" || net_fail "cannot open idle connection $k"
  fds+=("$fd")
done
sleep 0.3
for fd in "${fds[@]}"; do exec {fd}>&-; done
sleep 0.3
net_log "hostile scrapes answered 400/431/404 and 12 idle connections opened and closed"

sleep 1
p2=$(scrape "$mport")
for k in bft_committed_requests_total bft_committed_blocks_total 'bft_frames_received_total{kind="request"}' \
  bft_request_to_commit_seconds_count bft_commit_to_execute_seconds_count bft_batch_size_requests_count \
  'bft_fsync_seconds_count{file="wal"}'; do
  v1=$(value "$k" <<<"$p1")
  v2=$(value "$k" <<<"$p2")
  [ -n "$v1" ] && [ -n "$v2" ] || net_fail "$k missing from a scrape"
  awk -v a="$v1" -v b="$v2" 'BEGIN { exit !(b > a) }' || net_fail "$k did not move during the load: $v1 then $v2"
  net_log "$k moved from $v1 to $v2"
done
[ "$(value bft_metrics_http_bad_requests_total <<<"$p2")" -ge 4 ] || net_fail "bad requests were not counted"
[ "$(value bft_metrics_http_refused_total <<<"$p2")" -ge 4 ] || net_fail "connections over the bound were not refused"
# A backup's page too: it received PBFT/HotStuff/Tendermint messages and reports a leader.
pb=$(scrape $((mport + 1)))
grep -q "^bft_frames_received_total{kind=\"${NET_PROTOCOL}_" <<<"$pb" || net_fail "replica 1 counts no engine messages by kind"

wait "$bench_pid" || net_fail "bft-bench failed during the scrapes: $(tail -n 3 "$NET_DIR/bench.log")"
res=$(grep '^RESULT' "$NET_DIR/bench.out")
grep -q ' errors=0 ' <<<"$res" || net_fail "the bench saw errors: $res"
net_log "bench under scrapes: $res"
net_check_alive
net_client --timeout 10 put after-scrapes yes >/dev/null || net_fail "the cluster no longer commits after the scrapes"
p3=$(scrape "$mport")
[ "$(value bft_committed_requests_total <<<"$p3")" -gt "$(value bft_committed_requests_total <<<"$p2")" ] ||
  net_fail "replica 0 did not commit after the scrapes"
net_log "PASS: /metrics moves under load, refuses malformed requests, and the replica keeps committing"
