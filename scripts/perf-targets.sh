#!/usr/bin/env bash
# The performance targets of issue 12, measured on this machine (everything on it, load
# generator included) for every engine: signed-request throughput and its share of the crypto
# ceiling, CPU per request per replica, p99 at a fixed open-loop rate, one client's p50, the
# protocol-only (unsigned, MAC-authenticated) throughput, and how long throughput takes to come
# back after the leader is SIGKILLed under load; and, on a cluster started with
# --unsafe-no-fsync, one client's p50 and the protocol-only throughput (what the protocols cost
# without the disk, as libhotstuff and BFT-SMaRt measure themselves). Each figure is the median
# of --reps runs with its spread (min-max); every RESULT line is kept in the output folder. The
# clients share one connection per replica (bft-bench --connections 1, its default).
# Usage: scripts/perf-targets.sh [--engines "pbft hotstuff tendermint"] [--reps N]
#        [--duration S] [--clients C (default 1024)] [--rate R] [--batch-max B] [--out DIR] [--build-dir DIR]
#        [--replica-args "ARGS"]   (more bft-replica options, e.g. "--view-timeout 500")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
engines=
reps=3
duration=5
clients=1024
rate=5000
batch=400
out=
build_dir=$root/build-rel
replica_args=

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "perf-targets: $*" >&2; exit 1; }
say() { printf '[perf %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
. "$root/scripts/bench-lib.sh" # pick_port, field, median_spread, wait_commits

while [ $# -gt 0 ]; do
  case "$1" in
    --engines) engines=${2:?--engines needs names}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --clients) clients=${2:?--clients needs a number}; shift 2 ;;
    --rate) rate=${2:?--rate needs ops/s}; shift 2 ;;
    --batch-max) batch=${2:?--batch-max needs a number}; shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a folder}; shift 2 ;;
    --replica-args) replica_args=${2?--replica-args needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "perf-targets: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$reps" "$duration" "$clients" "$rate" "$batch"; do [[ "$v" =~ ^[0-9]+$ ]] || die "numbers only: '$v'"; done
[ "$reps" -ge 1 ] && [ "$clients" -ge 1 ] && [ "$duration" -ge 2 ] || die "--reps, --clients >= 1 and --duration >= 2"

bin=$build_dir/bin
if [ ! -x "$bin/bft-bench" ] || [ ! -x "$bin/bft-replica" ]; then
  say "building a Release build in $build_dir"
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DBFT_SANITIZE=OFF >/dev/null &&
    cmake --build "$build_dir" -j"$(nproc)" >/dev/null || die "build failed"
fi
[ -n "$engines" ] || engines=$("$bin/bft-replica" --help 2>&1 | sed -n 's/.*consensus protocol: //p' | head -n 1 | tr -d ',')
[ -n "$engines" ] || engines="pbft hotstuff tendermint"
out=${out:-$root/results/perf-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out/raw"
work=$(mktemp -d "${TMPDIR:-/tmp}/bft-perf.XXXXXX")
cluster_dir=
cleanup() {
  local rc=$?
  [ -z "$cluster_dir" ] || BFT_BIN=$bin "$root/scripts/cluster.sh" stop --dir "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
max_clients=$((clients > 256 ? clients : 256))

start_cluster() { # engine tag [extra cluster.sh args]
  local e=$1 tag=$2 port
  shift 2
  cluster_dir=$work/$e-$tag
  port=$(pick_port 4) || die "no free port range"
  BFT_BIN=$bin "$root/scripts/cluster.sh" start --dir "$cluster_dir" --protocol "$e" --base-port "$port" \
    --clients "$max_clients" --batch-max "$batch" --replica-args "$replica_args" "$@" >/dev/null || die "cluster $e did not start ($cluster_dir/logs)"
  wait_commits "$bin" "$cluster_dir" 60 || die "cluster $e does not commit ($cluster_dir/logs)"
}
stop_cluster() {
  [ -n "$cluster_dir" ] || return 0
  BFT_BIN=$bin "$root/scripts/cluster.sh" stop --dir "$cluster_dir" >/dev/null || true
  rm -rf "$cluster_dir"
  cluster_dir=
}
bench() { # tag bft-bench args...: appends the RESULT line to $out/raw/results.txt, echoes it
  local tag=$1 res
  shift
  res=$("$bin/bft-bench" --config "$cluster_dir/keys/cluster.ini" --keys "$cluster_dir/keys" --warmup 1 \
    --timeout 30 "$@" 2>"$out/raw/$tag.err" | tee "$out/raw/$tag.out" | grep '^RESULT') || true
  [ -n "$res" ] && echo "$tag $res" >>"$out/raw/results.txt"
  echo "$res"
}
stat_of() { # key tag-prefix: "median min max" of key over the RESULT lines whose tag starts so
  grep "^$2" "$out/raw/results.txt" 2>/dev/null | while read -r _ line; do field "$1" " $line"; done | median_spread
}

# Seconds from the kill until the first 1-second window (bft-bench --progress) carrying at
# least 90% of the mean rate of the windows before it ("never" when none does), and the rate of
# the last 3 windows over that mean (an engine that rotates leaders keeps paying for the dead
# one at each of its turns, so it may settle below 90%).
recovery() { # progress-file kill-at-seconds
  awk -v k="$2" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } t = v["t"] + 0; r = v["ops/s"] + 0 }
    t > 1.5 && t <= k { pre += r; np++ }
    t > k + 0.2 && np && !done && r >= 0.9 * pre / np { rec = sprintf("%.1f", t - k); done = 1 }
    t > k + 0.2 { last[++nl] = r }
    END {
      s = 0; m = 0; for (i = nl; i > nl - 3 && i > 0; i--) { s += last[i]; m++ }
      printf "recovered_s=%s settled=%.2f", done ? rec : "never", (np && m) ? (s / m) / (pre / np) : 0 }' "$1"
}

say "engines: $engines; $reps runs each; results in $out"
{
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "n=4 batch_max=$batch clients=$clients duration=${duration}s (+1 s warm-up) open-loop rate=$rate reps=$reps"
  echo "replica args: --verify-threads 0 (cluster.sh) $replica_args"
} >"$out/config.txt"

for e in $engines; do
  say "$e: signed requests (MAC replies), $clients clients closed loop; open loop at $rate/s; one client"
  start_cluster "$e" signed
  for ((i = 1; i <= reps; i++)); do
    bench "$e-closed-$i" --clients "$clients" --duration "$duration" >/dev/null
    bench "$e-signedreplies-$i" --clients "$clients" --duration "$duration" --auth signed >/dev/null
    bench "$e-open-$i" --clients "$max_clients" --duration "$duration" --rate "$rate" --backlog 20000 >/dev/null
    bench "$e-one-$i" --clients 1 --duration "$duration" >/dev/null
  done
  stop_cluster
  say "$e: protocol-only (unsigned requests)"
  start_cluster "$e" protoonly --protocol-only
  for ((i = 1; i <= reps; i++)); do
    bench "$e-protoonly-$i" --clients "$max_clients" --duration "$duration" --auth protocol-only >/dev/null
  done
  stop_cluster
  say "$e: without fsync (--unsafe-no-fsync): one client; protocol-only"
  start_cluster "$e" nofsync --protocol-only --replica-args "$replica_args --unsafe-no-fsync"
  for ((i = 1; i <= reps; i++)); do
    bench "$e-nfone-$i" --clients 1 --duration "$duration" >/dev/null
    bench "$e-nfproto-$i" --clients "$max_clients" --duration "$duration" --auth protocol-only >/dev/null
  done
  stop_cluster
  say "$e: leader SIGKILLed under load"
  for ((i = 1; i <= reps; i++)); do
    start_cluster "$e" kill$i
    leader=$("$bin/bft-client" --config "$cluster_dir/keys/cluster.ini" status 2>/dev/null |
      sed -n 's/.* leader=\([0-9]*\).*/\1/p' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
    pid=$(cat "$cluster_dir/pids/replica-${leader:-0}.pid" 2>/dev/null || true)
    [ -n "$pid" ] || die "no pid for replica ${leader:-0} in $cluster_dir/pids"
    (sleep 5 && kill -9 "$pid") &
    killer=$!
    "$bin/bft-bench" --config "$cluster_dir/keys/cluster.ini" --keys "$cluster_dir/keys" --clients "$clients" \
      --warmup 1 --duration 11 --timeout 30 --progress >"$out/raw/$e-kill-$i.out" 2>"$out/raw/$e-kill-$i.progress" || true
    wait "$killer" 2>/dev/null || true
    rec=$(recovery "$out/raw/$e-kill-$i.progress" 5)
    echo "$e-kill-$i $rec leader=${leader:-0}" >>"$out/raw/recovery.txt"
    stop_cluster
  done
done

# ---- the table -------------------------------------------------------------------------------
fmt() { awk '{ printf "%s (%s-%s)", $1, $2, $3 }'; }
{
  echo "engine,metric,median,min,max"
  for e in $engines; do
    for m in "closed throughput_ops" "closed of_ceiling" "closed cpu_us_per_op" "closed p99_ms" \
      "signedreplies throughput_ops" "open throughput_ops" "open p99_ms" "one p50_ms" "protoonly throughput_ops" \
      "nfone p50_ms" "nfproto throughput_ops"; do
      set -- $m
      echo "$e,$1.$2,$(stat_of "$2" "$e-$1-" | tr ' ' ',')"
    done
    echo "$e,kill.recovered_s,$(grep "^$e-kill-" "$out/raw/recovery.txt" | sed 's/.*recovered_s=\([^ ]*\).*/\1/' |
      grep -v never | median_spread | tr ' ' ','),never=$(grep -c "^$e-kill-.*=never" "$out/raw/recovery.txt" || true)"
    echo "$e,kill.settled,$(grep "^$e-kill-" "$out/raw/recovery.txt" | sed 's/.*settled=\([^ ]*\).*/\1/' | median_spread | tr ' ' ',')"
  done
} >"$out/summary.csv"
{
  printf '%-11s %-24s %-20s %-16s %-20s %-22s %-18s %-22s %-18s %-22s %s\n' engine "signed ops/s (spread)" "of ceiling" \
    "CPU us/op/rep" "signed replies ops/s" "open ${rate}/s: p99 ms" "1 client p50 ms" "protocol-only ops/s" \
    "no fsync: 1 cl p50" "no fsync: proto-only" "leader kill: back to 90% in s"
  for e in $engines; do
    printf '%-11s %-24s %-20s %-16s %-20s %-22s %-18s %-22s %-18s %-22s %s\n' "$e" "$(stat_of throughput_ops "$e-closed-" | fmt)" \
      "$(stat_of of_ceiling "$e-closed-" | fmt)" "$(stat_of cpu_us_per_op "$e-closed-" | awk '{ print $1 }')" \
      "$(stat_of throughput_ops "$e-signedreplies-" | awk '{ print $1 }')" \
      "$(stat_of p99_ms "$e-open-" | fmt) @$(stat_of throughput_ops "$e-open-" | awk '{ printf "%.0f", $1 }')" \
      "$(stat_of p50_ms "$e-one-" | fmt)" "$(stat_of throughput_ops "$e-protoonly-" | fmt)" \
      "$(stat_of p50_ms "$e-nfone-" | fmt)" "$(stat_of throughput_ops "$e-nfproto-" | fmt)" \
      "$(grep "^$e-kill-" "$out/raw/recovery.txt" | sed 's/.*recovered_s=\([^ ]*\) settled=\([^ ]*\).*/\1 (\2)/' | tr '\n' ' ')"
  done
  echo
  echo "(median of $reps, spread min-max; 'open ${rate}/s: p99 ms @X' carried X ops/s; the kill column lists each run:"
  echo " seconds until a 1-s window carried 90% of the pre-kill rate, and in brackets the rate of the"
  echo " last 3 s over it)"
  echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/summary.txt"
say "done: $out/summary.txt, summary.csv, raw/"
