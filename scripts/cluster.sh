#!/usr/bin/env bash
# Run a local cluster of bft-replica processes on 127.0.0.1: start, stop or show it. Keys are
# made with bft-keygen on first use; keys, logs, data and pid files live under one folder.
# Usage: scripts/cluster.sh start|stop|status [--replicas N] [--protocol P] [--dir DIR]
#        [--base-port P] [--clients M] [--batch-max N] [--window N] [--metrics-base-port P]
#        [--replica-args "ARGS"] [--protocol-only]
#        (--metrics-base-port: replica I serves Prometheus metrics on 127.0.0.1:P+I;
#        --replica-args: more bft-replica options for every replica, split at spaces,
#        e.g. --replica-args "--verify-threads 1 --log-level warn"; the replicas of one machine
#        share its cores, so they start with --verify-threads 0 unless ARGS say otherwise;
#        --protocol-only: a new cluster file accepts unsigned, MAC-authenticated requests,
#        bft-bench --auth protocol-only, for measuring the engines alone)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BFT_BIN:-$root/build/bin}
cmd=${1:-}
[ $# -gt 0 ] && shift
replicas=4
protocol=pbft
dir=$root/run/cluster
base_port=7000
clients=64
keygen_opts=()  # --protocol-only: written into a new cluster file
# Passed to every bft-replica started: --batch-max, --window, --replica-args (later ones win).
# A verify pool only pays when a core is idle; the replicas of one machine share its cores.
replica_opts=(--verify-threads 0)
metrics_base=
stop_wait_s=5 # SIGTERM, then SIGKILL after this many seconds

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) replicas=${2:?--replicas needs a number}; shift 2 ;;
    --protocol) protocol=${2:?--protocol needs a name}; shift 2 ;;
    --dir) dir=${2:?--dir needs a folder}; shift 2 ;;
    --base-port) base_port=${2:?--base-port needs a port}; shift 2 ;;
    --clients) clients=${2:?--clients needs a number}; shift 2 ;;
    --batch-max) replica_opts+=(--batch-max "${2:?--batch-max needs a number}"); shift 2 ;;
    --window) replica_opts+=(--window "${2:?--window needs a number}"); shift 2 ;;
    --protocol-only) keygen_opts+=(--protocol-only); shift ;;
    --metrics-base-port) metrics_base=${2:?--metrics-base-port needs a port}; shift 2 ;;
    --replica-args)
      read -r -a extra <<<"${2?--replica-args needs a value}"
      replica_opts+=(${extra[@]+"${extra[@]}"}); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$cmd" in
  start|stop|status) ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "cluster.sh: expected start, stop or status" >&2; usage >&2; exit 2 ;;
esac
[[ "$replicas" =~ ^[0-9]+$ ]] && [ "$replicas" -ge 4 ] || die "--replicas must be a number >= 4"
[[ "$base_port" =~ ^[0-9]+$ ]] && [ "$base_port" -ge 1 ] && [ "$base_port" -le 65000 ] || die "--base-port must be 1..65000"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
keys=$dir/keys
config=$keys/cluster.ini

# True while pid runs. A zombie counts as gone: replicas started with setsid are reparented,
# and whoever reaps orphans may be slow to do it (or never do it, in some containers).
running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# pid of replica I if its pid file names a live bft-replica process (not a recycled pid).
live_pid() {
  local f=$dir/pids/replica-$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q bft-replica || return 1
  echo "$pid"
}

# Replica ids and addresses from the cluster file: "ID HOST:PORT" per line.
cluster_members() {
  awk -F'[][ =]+' '/^\[replica\./ { split($2, a, "."); id = a[2] }
       /^address/ && id != "" { print id, $2; id = "" }' "$config" 2>/dev/null
}

ensure_built() {
  local need=()
  for b in bft-replica bft-keygen bft-client; do [ -x "$bin/$b" ] || need+=("$b"); done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "cluster.sh: ${need[*]} missing in $bin; building with scripts/setup.sh"
  "$root/scripts/setup.sh" >&2 || die "build failed"
  for b in "${need[@]}"; do [ -x "$bin/$b" ] || die "$bin/$b still missing after the build"; done
}

do_start() {
  ensure_built
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if [ ! -f "$config" ]; then
    "$bin/bft-keygen" --replicas "$replicas" --clients "$clients" --out "$keys" --base-port "$base_port" \
      ${keygen_opts[@]+"${keygen_opts[@]}"} >/dev/null || die "bft-keygen failed"
    echo "cluster.sh: made keys for $replicas replicas and $clients clients in $keys"
  fi
  if [ -f "$dir/protocol" ] && [ "$(cat "$dir/protocol")" != "$protocol" ] && [ -n "$(ls -A "$dir/data")" ]; then
    die "$dir holds data of protocol $(cat "$dir/protocol"); use another --dir or remove $dir/data"
  fi
  echo "$protocol" >"$dir/protocol"
  local started=0 id addr pid
  while read -r id addr; do
    if pid=$(live_pid "$id"); then
      echo "replica $id already running (pid $pid)"
      continue
    fi
    mkdir -p "$dir/data/replica-$id"
    local mopt=()
    [ -z "$metrics_base" ] || mopt=(--metrics "127.0.0.1:$((metrics_base + id))")
    # setsid: the replicas outlive this script and a Ctrl-C in its terminal.
    setsid "$bin/bft-replica" --config "$config" --id "$id" --key "$keys/replica-$id.key" \
      --data-dir "$dir/data/replica-$id" --protocol "$protocol" ${replica_opts[@]+"${replica_opts[@]}"} \
      ${mopt[@]+"${mopt[@]}"} >>"$dir/logs/replica-$id.log" 2>&1 </dev/null &
    echo $! >"$dir/pids/replica-$id.pid"
    started=$((started + 1))
  done < <(cluster_members)
  [ -n "$(cluster_members)" ] || die "no replicas in $config"
  # A replica that fails at start-up (bad flag, port taken) exits at once: say so now.
  sleep 0.5
  local bad=0
  while read -r id addr; do
    if ! live_pid "$id" >/dev/null; then
      echo "cluster.sh: replica $id exited; last lines of $dir/logs/replica-$id.log:" >&2
      tail -n 5 "$dir/logs/replica-$id.log" >&2 || true
      bad=1
    fi
  done < <(cluster_members)
  echo "cluster.sh: started $started replica(s) with protocol $protocol; folder $dir"
  echo "cluster.sh: try  $bin/bft-client --config $config --key $keys/client-0.key put hello world"
  [ $bad -eq 0 ] || exit 1
}

do_stop() {
  [ -d "$dir/pids" ] || { echo "cluster.sh: nothing to stop in $dir"; return 0; }
  local f id pid pids=()
  for f in "$dir"/pids/replica-*.pid; do
    [ -e "$f" ] || continue
    id=${f##*/replica-}; id=${id%.pid}
    if pid=$(live_pid "$id"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + stop_wait_s))
  for pid in "${pids[@]}"; do
    while running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if running "$pid"; then
      echo "cluster.sh: pid $pid ignored SIGTERM for ${stop_wait_s}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir"/pids/replica-*.pid
  echo "cluster.sh: stopped ${#pids[@]} replica(s); folder $dir"
}

do_status() {
  [ -f "$config" ] || die "no cluster in $dir (run: scripts/cluster.sh start --dir $dir)"
  local id addr pid all=0
  while read -r id addr; do
    if pid=$(live_pid "$id"); then
      echo "replica=$id pid=$pid address=$addr state=running"
    else
      pid=$(cat "$dir/pids/replica-$id.pid" 2>/dev/null || echo -)
      echo "replica=$id pid=$pid address=$addr state=stopped"
      all=3
    fi
  done < <(cluster_members)
  echo "folder=$dir protocol=$(cat "$dir/protocol" 2>/dev/null || echo "$protocol")"
  return $all
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
esac
