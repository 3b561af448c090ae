#!/usr/bin/env bash
# Throughput under each faulty-replica mode, relative to the fault-free run of the same engine:
# for every engine and every `bft-replica --byzantine` mode, a fresh 4-replica cluster on
# 127.0.0.1 with one faulty replica (the first leader by default) and a fixed-duration closed-loop
# bft-bench; the median of N runs per cell. Figures are ratios within one run of this script on
# this machine (a Release build measures best; other load on the machine moves them all).
#
# Usage: scripts/byzantine-matrix.sh [--bin DIR] [--runs N] [--duration SEC] [--clients C]
#            [--faulty ID] [--engines "pbft hotstuff tendermint"] [--modes "silent delay:100 ..."]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bin
runs=3
secs=10
clients=16
faulty=0
engines="pbft hotstuff tendermint"
modes="silent delay:100 drop-to:1 corrupt bad-sig replay withhold equivocate equivocate,delay:100"

# One cell run (the script calls itself): start the cluster, bench, print "MATRIX ops/s errors", stop.
if [ "${1:-}" = --one ]; then
  NET_BIN=$2 NET_PROTOCOL=$3 mode=$4 faulty=$5 secs=$6 clients=$7
  NET_NAME=byz-matrix
  export NET_PROTOCOL
  . "$root/tests/net/net_lib.sh"
  net_make_cluster 4 "$clients"
  [ "$mode" = none ] || NET_REPLICA_EXTRA[$faulty]="--byzantine $mode"
  net_start_all
  net_wait_ready 60
  out=$(timeout $((secs + 90)) "$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$NET_DIR/keys" --clients "$clients" \
    --duration "$secs" --warmup 1 --timeout 30 2>"$NET_DIR/bench.err" | tail -n 1) || true
  tput=$(sed -n 's/.*throughput_ops=\([0-9.]*\).*/\1/p' <<<"$out")
  errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
  echo "MATRIX ${tput:-0} ${errs:--1}"
  exit 0
fi

while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duration) secs=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --faulty) faulty=$2; shift 2 ;;
    --engines) engines=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "byzantine-matrix.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ && $secs =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ && $faulty =~ ^[0-3]$ ]] ||
  { echo "byzantine-matrix.sh: --runs, --duration, --clients want positive integers, --faulty 0..3" >&2; exit 2; }
bin=$(cd "$bin" && pwd)
for b in bft-replica bft-keygen bft-client bft-bench; do
  [ -x "$bin/$b" ] || { echo "byzantine-matrix.sh: $bin/$b is missing (scripts/setup.sh --release)" >&2; exit 2; }
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A cell=() errs=()
echo "byzantine-matrix: engines [$engines], faulty replica $faulty, $clients clients, ${secs}s per run, median of $runs" >&2
for e in $engines; do
  for m in none $modes; do
    vals=""
    errs[$e/$m]=0
    for ((k = 1; k <= runs; k++)); do
      res=$(bash "$0" --one "$bin" "$e" "$m" "$faulty" "$secs" "$clients" 2>/dev/null | sed -n 's/^MATRIX //p') || true
      read -r t x <<<"${res:-0 -1}"
      echo "  $e ${m}: run $k: ${t} ops/s, errors ${x}" >&2
      vals+="$t"$'\n'
      [ "$x" = 0 ] || errs[$e/$m]=$((errs[$e/$m] + 1))
    done
    cell[$e/$m]=$(printf '%s' "$vals" | median)
  done
done

# The table: ops/s and the ratio to the engine's fault-free run; "!" marks a cell with a run
# that had client errors (or no result).
printf '\n%-22s' "mode (replica $faulty)"
for e in $engines; do printf ' | %-18s' "$e"; done
printf '\n%-22s' "----------------------"
for e in $engines; do printf ' | %-18s' "------------------"; done
echo
for m in none $modes; do
  printf '%-22s' "$m"
  for e in $engines; do
    base=${cell[$e/none]}
    v=${cell[$e/$m]}
    rel=$(awk -v v="$v" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", v / b; else print "-" }')
    mark=""
    [ "${errs[$e/$m]}" = 0 ] || mark="!"
    printf ' | %-18s' "$(printf '%7.1f (%s)%s' "$v" "$rel" "$mark")"
  done
  echo
done
