#!/usr/bin/env bash
# The first command to run: set up and build, start a local 4-replica cluster (PBFT unless
# --protocol says otherwise), submit signed requests with bft-client, kill the first leader
# with SIGKILL, show that requests still commit, verify the certified ledger, and stop
# everything it started (also on Ctrl-C or error).
# Usage: scripts/demo.sh [--protocol P] [--base-port P] [--keep]   (--keep leaves run/demo in place)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bin
dir=$root/run/demo
base_port=${BFT_DEMO_PORT:-7000}
keep=0
protocol=pbft
while [ $# -gt 0 ]; do
  case "$1" in
    --protocol) protocol=${2:?--protocol needs a name}; shift 2 ;;
    --base-port) base_port=${2:?--base-port needs a port}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

bold=''; dim=''; off=''
if [ -t 1 ]; then bold=$'\e[1m'; dim=$'\e[2m'; off=$'\e[0m'; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
# Show a command as a person would type it, then run it.
show() {
  local a line=""
  for a in "$@"; do
    a=${a#"$bin/"}
    a=${a//$dir\//}
    [[ "$a" =~ [[:space:]] || -z "$a" ]] && a="'$a'"
    line+="${line:+ }$a"
  done
  printf '%s$ %s%s\n' "$dim" "$line" "$off"
  "$@"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -d "$dir/pids" ]; then
    "$root/scripts/cluster.sh" stop --dir "$dir" >/dev/null 2>&1 || true
  fi
  [ $rc -eq 0 ] || echo "demo.sh: failed (exit $rc); replica logs are in $dir/logs" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Set up and build (installs missing Debian packages on first use)"
"$root/scripts/setup.sh"

# A port range nobody listens on: try the requested one, then a few random ones.
port_free() {
  local p
  for ((p = $1; p < $1 + 4; p++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
  done
  return 0
}
tries=0
until port_free "$base_port"; do
  tries=$((tries + 1))
  [ $tries -le 20 ] || { echo "demo.sh: no free ports found" >&2; exit 1; }
  base_port=$((20000 + RANDOM % 12000)) # below the usual ephemeral range (32768-60999)
done

step "Start 4 replicas (n = 3f+1 with f = 1) running $protocol on 127.0.0.1:$base_port-$((base_port + 3))"
"$root/scripts/cluster.sh" stop --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
"$root/scripts/cluster.sh" start --replicas 4 --protocol "$protocol" --dir "$dir" --base-port "$base_port" --clients 8
"$root/scripts/cluster.sh" status --dir "$dir"

cfg=$dir/keys/cluster.ini
key=$dir/keys/client-0.key
cli=("$bin/bft-client" --config "$cfg" --key "$key" --timeout 20)

# The replicas connect to each other first; the first request waits for that.
step "Submit signed requests (each completes on f+1 = 2 matching signed replies)"
show "${cli[@]}" put greeting hello
show "${cli[@]}" get greeting
show "${cli[@]}" cas greeting hello world
show "${cli[@]}" cas greeting hello again
show "${cli[@]}" get greeting
show "${cli[@]}" put color blue
show "${cli[@]}" del color
printf '%s(get of a deleted key prints nothing)%s\n' "$dim" "$off"
show "${cli[@]}" get color

step "Every replica's ledger head: height, block hash, batch and state digests agree everywhere"
sleep 0.5 # let the last commit reach every replica
show "$bin/bft-client" --config "$cfg" --timeout 2 heads

step "The ledger: one block per committed batch, each with its commit certificate"
show "$bin/bft-client" --config "$cfg" ledger

primary_pid=$(cat "$dir/pids/replica-0.pid")
step "Kill the first leader (replica 0, pid $primary_pid) with SIGKILL"
show kill -KILL "$primary_pid"
sleep 0.2
"$root/scripts/cluster.sh" status --dir "$dir" || true

step "Requests still commit: the others change view and move to a new leader"
start=$(date +%s.%N)
show "${cli[@]}" put after-failover "still here"
end=$(date +%s.%N)
printf '%s(that one took %s s, including the view change)%s\n' "$dim" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" "$off"
show "${cli[@]}" get after-failover
show "${cli[@]}" cas greeting world "view changed"
show "${cli[@]}" get greeting

step "A short load: 4 closed-loop clients for 3 seconds on the 3 survivors"
show "$bin/bft-bench" --config "$cfg" --keys "$dir/keys" --clients 4 --duration 3 --warmup 0.5

step "Verify the whole ledger with only the public keys in the cluster file"
sleep 0.5
show "$bin/bft-client" --config "$cfg" --timeout 2 heads
show "$bin/bft-client" --config "$cfg" verify-ledger

step "Stop the cluster"
"$root/scripts/cluster.sh" stop --dir "$dir"
if [ $keep -eq 0 ]; then rm -rf "$dir"; else echo "demo.sh: kept $dir (keys, logs, data)"; fi
echo
echo "demo.sh: done. Run your own cluster with scripts/cluster.sh start; see README.md."
