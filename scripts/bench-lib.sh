# Shared by scripts/compare.sh and scripts/perf-targets.sh (sourced, not run).

# A free range of $1 TCP ports on 127.0.0.1 below the ephemeral range; prints its first port.
pick_port() {
  local count=$1 lo=20000 hi=32000 eph_lo eph_hi base p ok
  read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
  [ "$eph_lo" -gt $((lo + 1000)) ] && [ "$hi" -ge "$eph_lo" ] && hi=$((eph_lo - 1))
  for _ in $(seq 1 50); do
    base=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo - count)))
    ok=1
    for ((p = base; p < base + count; p++)); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { ok=0; break; }; done
    [ $ok -eq 1 ] && { echo "$base"; return 0; }
  done
  echo "no free port range" >&2
  return 1
}

# The value of key $1 in a "k=v k=v" line $2 (a bft-bench RESULT line).
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Median and spread (min-max) of the numbers on stdin: prints "MEDIAN MIN MAX".
median_spread() {
  sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "- - -"; exit } m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

# Wait (at most $3 seconds, default 60) until the cluster in folder $2 (made by cluster.sh)
# commits a put through $1/bft-client; non-zero when it does not.
wait_commits() {
  local bin=$1 dir=$2 deadline=$((SECONDS + ${3:-60}))
  until "$bin/bft-client" --config "$dir/keys/cluster.ini" --key "$dir/keys/client-0.key" --timeout 3 \
    put bench-ready yes >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}
