#!/usr/bin/env bash
# Paper-style comparison of the consensus engines on this machine: for every engine, closed-loop
# client sweeps, open-loop rate sweeps, scaling with n, batch sizes and payloads, each point
# repeated (median and spread), plus messages and bytes per decision from the simulator; CSV
# and PNG plots (gnuplot) in one results folder that also records the machine, the commit and
# the exact configuration.
# Usage: scripts/compare.sh [--quick | --full] [--out DIR] [--engines "pbft hotstuff ..."]
#        [--reps N] [--dry-run] [--replot DIR] [--build-dir DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
preset=quick
out=
engines=
reps=
dry_run=0
replot=
build_dir=$root/build-rel

usage() {
  cat <<'EOF'
usage: scripts/compare.sh [--quick | --full] [options]

Runs real 4/7/10-replica clusters of every engine on 127.0.0.1 and bft-bench against them,
then the simulator for messages and bytes per decision up to n = 64, and writes CSV and PNG
plots into one results folder (default results/compare-DATE).

presets:
  --quick            clients 1,8,32,128; 3 rates; n 4,7,10; batch 1,100,400; payload 0,128,1024;
                     3 repetitions of 2 s (+0.5 s warm-up); 7-9 minutes on 2 cores
  --full             clients 1..128 (8 points) at every n, 7 rates, batch x clients, payloads;
                     5 repetitions of 10 s (+2 s warm-up); prints its estimate before starting
  --smoke            a minute's check of the whole pipeline (2 client counts, 1 rate, n 4, 1 s runs)

options:
  --out DIR          results folder
  --engines "A B"    engines to compare (default: every engine bft-replica has)
  --reps N           repetitions per point (at least 3)
  --build-dir DIR    release build to use/make (default build-rel)
  --dry-run          print the plan and its estimated duration, run nothing
  --replot DIR       redraw the plots of an earlier results folder from its CSV files
  -h, --help         this text
EOF
}

die() { echo "compare.sh: $*" >&2; exit 1; }
. "$root/scripts/bench-lib.sh" # pick_port, field, wait_commits
say() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) preset=quick; shift ;;
    --full) preset=full; shift ;;
    --smoke) preset=smoke; shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --engines) engines=${2:?--engines needs names}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a folder}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --replot) replot=${2:?--replot needs a results folder}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

# ---- the plan --------------------------------------------------------------------------------
# Base point: n = 4, batch 100, payload 128 B, 32 clients (the "CS" of the one-factor sweeps).
base_n=4 base_batch=100 base_payload=128 base_clients=32
if [ "$preset" = smoke ]; then
  sweep_clients="1 8"; sweep_ns="4"; rates="200"; rate_clients=16
  ns="4"; batches="100"; batch_clients="32"; payloads="128"
  duration=1; warmup=0.3; : "${reps:=3}"; sim_ns="4 7"; sim_requests=100
elif [ "$preset" = quick ]; then
  sweep_clients="1 8 32 128"; sweep_ns="4"; rates="250 750 1500"; rate_clients=64
  ns="4 7 10"; batches="1 100 400"; batch_clients="32"; payloads="0 128 1024"
  duration=2; warmup=0.5; : "${reps:=3}"; sim_ns="4 7 10 16 22 31 43 64"; sim_requests=300
else
  sweep_clients="1 2 4 8 16 32 64 128"; sweep_ns="4 7 10"; rates="100 250 500 1000 1500 2000 3000"; rate_clients=128
  ns="4 7 10"; batches="1 100 400"; batch_clients="1 32 128"; payloads="0 128 1024"
  duration=10; warmup=2; : "${reps:=5}"; sim_ns="4 7 10 13 16 19 22 25 28 31 37 43 49 55 61 64"; sim_requests=1000
fi
[[ "$reps" =~ ^[0-9]+$ ]] && [ "$reps" -ge 3 ] || die "--reps must be a number >= 3 (median and spread)"
max_clients=128
open_backlog=20000

bin=$build_dir/bin

# Points, one per line: "engine n batch payload mode clients rate" (unique; sorted so that
# points sharing a cluster, i.e. engine n batch, are contiguous).
plan_points() {
  local e n c r b p
  for e in $engines; do
    for n in $sweep_ns; do for c in $sweep_clients; do echo "$e $n $base_batch $base_payload closed $c 0"; done; done
    for r in $rates; do echo "$e $base_n $base_batch $base_payload open $rate_clients $r"; done
    for n in $ns; do echo "$e $n $base_batch $base_payload closed $base_clients 0"; done
    for b in $batches; do for c in $batch_clients; do echo "$e $base_n $b $base_payload closed $c 0"; done; done
    for p in $payloads; do echo "$e $base_n $base_batch $p closed $base_clients 0"; done
  done | awk '!seen[$0]++' | sort -k1,1 -k2,2n -k3,3n -k4,4n -k5,5 -k6,6n -k7,7n
}

estimate_s() { # clusters x 4 s + points x reps x (duration + warm-up + 0.7 s) + simulator runs
  local points clusters
  points=$(plan_points | wc -l)
  clusters=$(plan_points | awk '{ print $1, $2, $3 }' | sort -u | wc -l)
  local ne
  ne=$(wc -w <<<"$engines")
  # a simulator run costs about 1 + (n/20)^2 s (n = 64: about 16 s)
  awk -v p="$points" -v c="$clusters" -v r="$reps" -v d="$duration" -v w="$warmup" -v e="$ne" -v ns="$sim_ns" \
    'BEGIN { k = split(ns, a, " "); for (i = 1; i <= k; i++) sim += 1 + (a[i] / 20) ^ 2
             printf "%d\n", c * 4 + p * r * (d + w + 0.7) + e * sim }'
}

# ---- plotting ----------------------------------------------------------------------------------

median_awk='
function med(a, k,   i, j, t) { for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
function mn(a, k,   i, m) { m = a[1]; for (i = 2; i <= k; i++) if (a[i] < m) m = a[i]; return m }
function mx(a, k,   i, m) { m = a[1]; for (i = 2; i <= k; i++) if (a[i] > m) m = a[i]; return m }'

# results.csv (one row per repetition) -> summary.csv (median, min, max per point)
summarize() {
  local dir=$1
  awk -F, "$median_awk"'
    NR == 1 { next }
    { key = $1 "," $2 "," $3 "," $4 "," $5 "," $6 "," $7
      if (!(key in k)) { order[++nk] = key; k[key] = 0 }
      i = ++k[key]; tp[key, i] = $9; p50[key, i] = $10; p99[key, i] = $12; dr[key, i] = $15; er[key] += $14; of[key, i] = $16 }
    END {
      print "engine,n,batch,payload,mode,clients,rate,reps,tput_med,tput_min,tput_max,p50_med,p50_min,p50_max,p99_med,p99_min,p99_max,drops_med,offered_med,errors"
      for (o = 1; o <= nk; o++) { key = order[o]; m = k[key]
        for (i = 1; i <= m; i++) { a[i] = tp[key, i]; b[i] = p50[key, i]; c[i] = p99[key, i]; d[i] = dr[key, i]; f[i] = of[key, i] }
        printf "%s,%d,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%.1f,%d\n", key, m,
          med(a, m), mn(a, m), mx(a, m), med(b, m), mn(b, m), mx(b, m), med(c, m), mn(c, m), mx(c, m), med(d, m), med(f, m), er[key] } }
  ' "$dir/results.csv" >"$dir/summary.csv"
}

# select FIELD=VALUE ... from summary.csv for one engine, sorted by column $2 (numeric)
select_rows() { # dir engine sortcol filters...
  local dir=$1 e=$2 col=$3
  shift 3
  awk -F, -v e="$e" -v f="$*" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; nf = split(f, fl, " "); next }
    $1 != e { next }
    { ok = 1; for (j = 1; j <= nf; j++) { split(fl[j], kv, "="); if ($(h[kv[1]]) != kv[2]) ok = 0 } if (ok) print }' \
    "$dir/summary.csv" | sort -t, -k"$col","$col"n | tr , ' '
}

plot_all() {
  local dir=$1
  command -v gnuplot >/dev/null || { say "gnuplot missing (scripts/setup.sh installs gnuplot-nox): CSV only"; return 0; }
  local pd=$dir/plotdata
  mkdir -p "$pd"
  local es e host
  es=$(awk -F, 'NR > 1 { print $1 }' "$dir/summary.csv" | awk '!s[$0]++')
  host="$(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1 | cut -c1-40); machine shared with other jobs"
  local bn bb bp bc
  read -r bn bb bp bc <"$dir/base.txt"
  for e in $es; do
    select_rows "$dir" "$e" 13 "n=$bn batch=$bb payload=$bp mode=closed" >"$pd/tl-$e.dat"
    select_rows "$dir" "$e" 7 "n=$bn batch=$bb payload=$bp mode=open" >"$pd/open-$e.dat"
    select_rows "$dir" "$e" 2 "batch=$bb payload=$bp mode=closed clients=$bc" >"$pd/n-$e.dat"
    select_rows "$dir" "$e" 3 "n=$bn payload=$bp mode=closed clients=$bc" >"$pd/batch-$e.dat"
    select_rows "$dir" "$e" 4 "n=$bn batch=$bb mode=closed clients=$bc" >"$pd/payload-$e.dat"
    for n in 7 10; do select_rows "$dir" "$e" 13 "n=$n batch=$bb payload=$bp mode=closed" >"$pd/tl$n-$e.dat"; done
    [ -f "$dir/sim.csv" ] && awk -F, -v e="$e" 'NR > 1 && $1 == e { print $2, $3, $4 }' "$dir/sim.csv" | sort -n >"$pd/sim-$e.dat"
  done
  local common="set terminal pngcairo size 1600,620 font 'DejaVu Sans,11' enhanced; set grid; set key outside right top vertical box;"
  local pl style i
  # columns of summary rows (space separated): 6 clients 7 rate 9-11 tput 12-14 p50 15-17 p99
  # 1. throughput-latency (closed loop), one curve per engine; p50 and p99 side by side
  pl="" i=0
  for e in $es; do i=$((i + 1)); pl+="'$pd/tl-$e.dat' using 9:12:10:11 with xerrorlines lw 2 pt 7 lc $i title '$e', '' using 9:12:(sprintf('%d', \$6)) with labels offset 0.8,0.8 font ',8' tc lt $i notitle, "; done
  local pl99="" ; i=0
  for e in $es; do i=$((i + 1)); pl99+="'$pd/tl-$e.dat' using 9:15:16:17 with yerrorlines lw 2 pt 7 lc $i title '$e', "; done
  gnuplot <<EOF
$common
set output '$dir/throughput_latency.png'
set multiplot layout 1,2 title "Closed loop, n=$bn, batch $bb, payload $bp B: throughput vs latency (labels: clients; median of $reps runs, bars min-max)\n{/*0.8 $host}"
set xlabel 'throughput (ops/s)'; set ylabel 'p50 latency (ms)'; set logscale y
plot ${pl%, }
set ylabel 'p99 latency (ms)'
plot ${pl99%, }
unset multiplot
EOF
  # 2. open loop: offered rate vs latency (from the intended send time), and carried throughput
  pl="" pl99="" i=0
  for e in $es; do i=$((i + 1)); pl+="'$pd/open-$e.dat' using 7:15:16:17 with yerrorlines lw 2 pt 7 lc $i title '$e p99', '' using 7:12 with linespoints lw 1 dt 2 pt 6 lc $i title '$e p50', "; pl99+="'$pd/open-$e.dat' using 7:9:10:11 with yerrorlines lw 2 pt 7 lc $i title '$e', "; done
  gnuplot <<EOF
$common
set output '$dir/open_loop.png'
set multiplot layout 1,2 title "Open loop (Poisson arrivals), n=$bn, batch $bb, payload $bp B: latency counted from the intended send time\n{/*0.8 $host}"
set xlabel 'offered load (ops/s)'; set ylabel 'latency (ms)'; set logscale y
plot ${pl%, }
unset logscale y; set ylabel 'carried throughput (ops/s)'
set yrange [0:*]
plot ${pl99%, }, x with lines lw 1.5 dt 2 lc rgb '#606060' title 'offered = carried'
unset multiplot
EOF
  # 3. scaling with n
  pl="" pl99="" i=0
  for e in $es; do i=$((i + 1)); pl+="'$pd/n-$e.dat' using 2:9:10:11 with yerrorlines lw 2 pt 7 lc $i title '$e', "; pl99+="'$pd/n-$e.dat' using 2:12:13:14 with yerrorlines lw 2 pt 7 lc $i title '$e', "; done
  gnuplot <<EOF
$common
set output '$dir/scaling_n.png'
set multiplot layout 1,2 title "Scaling with n (all replicas and the load generator on this machine), $bc clients, batch $bb, payload $bp B\n{/*0.8 $host}"
set xlabel 'replicas n'; set xtics (4, 7, 10); set xrange [3:11]
set ylabel 'throughput (ops/s)'; set yrange [0:*]
plot ${pl%, }
set ylabel 'p50 latency (ms)'
plot ${pl99%, }
unset multiplot
EOF
  # 4. batch size and payload
  pl="" pl99="" i=0
  for e in $es; do i=$((i + 1)); pl+="'$pd/batch-$e.dat' using 3:9:10:11 with yerrorlines lw 2 pt 7 lc $i title '$e', "; pl99+="'$pd/payload-$e.dat' using 4:9:10:11 with yerrorlines lw 2 pt 7 lc $i title '$e', "; done
  gnuplot <<EOF
$common
set output '$dir/batch_payload.png'
set multiplot layout 1,2 title "Throughput vs batch limit and payload, n=$bn, $bc clients (median of $reps, bars min-max)\n{/*0.8 $host}"
set xlabel 'batch limit (--batch-max, requests)'; set ylabel 'throughput (ops/s)'; set yrange [0:*]; set logscale x; set xrange [0.7:600]
plot ${pl%, }
set xlabel 'payload (bytes per put value)'; unset logscale x; set xrange [-50:1100]; set xtics (0, 128, 512, 1024)
plot ${pl99%, }
unset multiplot
EOF
  # 5. simulator: messages and bytes per decision
  if [ -f "$dir/sim.csv" ]; then
    pl="" pl99="" i=0
    for e in $es; do i=$((i + 1)); pl+="'$pd/sim-$e.dat' using 1:2 with linespoints lw 2 pt 7 lc $i title '$e', "; pl99+="'$pd/sim-$e.dat' using 1:(\$3/1024) with linespoints lw 2 pt 7 lc $i title '$e', "; done
    gnuplot <<EOF
$common
set output '$dir/sim_messages.png'
set multiplot layout 1,2 title "Simulator: messages and bytes per committed batch (decision) vs n, $(cat "$dir/sim_config.txt" 2>/dev/null)"
set xlabel 'replicas n'; set logscale xy; set xrange [3.5:72]; set xtics (4, 7, 10, 16, 22, 31, 43, 64)
set ylabel 'messages per decision (all replicas)'
plot ${pl%, }, 2*x*x lw 1.5 dt 3 lc rgb '#606060' title '2n^2 (all-to-all vote rounds)', 4*x lw 1.5 dt 2 lc rgb '#606060' title '4n (linear)'
set ylabel 'KiB sent per decision (all replicas)'
plot ${pl99%, }
unset multiplot
EOF
  fi
  say "plots: $(cd "$dir" && ls ./*.png | tr '\n' ' ')"
}

if [ -n "$replot" ]; then
  [ -f "$replot/results.csv" ] || die "$replot/results.csv not found"
  reps=$(awk -F, 'NR > 1 { print $8 }' "$replot/results.csv" | sort -n | tail -n 1)
  summarize "$replot"
  plot_all "$replot"
  exit 0
fi

# ---- build and engines -------------------------------------------------------------------------

if [ "$dry_run" -eq 0 ]; then
  say "release build in $build_dir (scripts/setup.sh installs what is missing, gnuplot included)"
  "$root/scripts/setup.sh" --build-dir "$build_dir" --release >/dev/null || die "build failed"
fi
all_engines="pbft hotstuff tendermint"
if [ -x "$bin/bft-replica" ]; then
  all_engines=$("$bin/bft-replica" --help | sed -n 's/.*consensus protocol: //p' | tr -d ',')
fi
[ -n "$engines" ] || engines=$all_engines
for e in $engines; do grep -qw "$e" <<<"$all_engines" || die "unknown engine $e (this build has: $all_engines)"; done

est=$(estimate_s)
npoints=$(plan_points | wc -l)
say "preset $preset: engines $engines; $npoints points x $reps repetitions; estimated duration $((est / 60)) min $((est % 60)) s"
if [ "$dry_run" -eq 1 ]; then
  plan_points | sed 's/^/  point: /'
  exit 0
fi
for b in bft-replica bft-keygen bft-client bft-bench bft-sim; do [ -x "$bin/$b" ] || die "$bin/$b missing after the build"; done

# ---- results folder ------------------------------------------------------------------------------

[ -n "$out" ] || out=$root/results/compare-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out/raw"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bft-compare.XXXXXX")
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(hostname)"
  echo "nproc=$(nproc)"
  echo "cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
  echo "kernel=$(uname -srmv)"
  echo "memory=$(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
  echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -c . || true)"
  echo "libsodium=$(pkg-config --modversion libsodium 2>/dev/null || echo ?) libuv=$(pkg-config --modversion libuv 2>/dev/null || echo ?)"
  echo "note=all replicas, the load generator and possibly other jobs share these cores; compare figures within one run only"
} >"$out/machine.txt"
{
  echo "preset=$preset engines=\"$engines\" reps=$reps duration_s=$duration warmup_s=$warmup"
  echo "base: n=$base_n batch_max=$base_batch payload=$base_payload clients=$base_clients"
  echo "closed-loop sweep: clients=\"$sweep_clients\" at n=\"$sweep_ns\""
  echo "open-loop sweep: rates=\"$rates\" ops/s, poisson arrivals, $rate_clients clients, backlog $open_backlog"
  echo "scaling: n=\"$ns\"; batch: \"$batches\" x clients \"$batch_clients\"; payload: \"$payloads\""
  echo "replicas: bft-replica --batch-max B (window: engine default 32), WAL+ledger in $work (fdatasync per group commit)"
  echo "bench: bft-bench --clients C --duration $duration --warmup $warmup --payload P [--rate R --arrival poisson --backlog $open_backlog] --ops put --keyspace 1000"
  echo "simulator: bft-sim --seeds 1 --requests $sim_requests --clients 4 (default network: 1-5 ms delays), n=\"$sim_ns\""
  echo "build: $build_dir ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build_dir/CMakeCache.txt" 2>/dev/null))"
} >"$out/config.txt"
plan_points >"$out/plan.txt"
echo "$base_n $base_batch $base_payload $base_clients" >"$out/base.txt"
echo "engine,n,batch,payload,mode,clients,rate,rep,throughput_ops,p50_ms,p90_ms,p99_ms,max_ms,errors,drops,offered_ops,batch_max_reported,duration_s" >"$out/results.csv"

cluster_dir=
cleanup() {
  local rc=$?
  if [ -n "$cluster_dir" ]; then BFT_BIN=$bin "$root/scripts/cluster.sh" stop --dir "$cluster_dir" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_cluster() { # engine n batch
  local e=$1 n=$2 b=$3 port mport
  cluster_dir=$work/$e-n$n-b$b
  port=$(pick_port "$n") || die "no free port range"
  mport=$(pick_port "$n") || die "no free port range"
  BFT_BIN=$bin "$root/scripts/cluster.sh" start --dir "$cluster_dir" --replicas "$n" --protocol "$e" \
    --base-port "$port" --clients "$max_clients" --batch-max "$b" --metrics-base-port "$mport" >/dev/null ||
    die "cluster $e n=$n batch=$b did not start (logs in $cluster_dir/logs)"
  echo "$mport" >"$cluster_dir/metrics_port"
  wait_commits "$bin" "$cluster_dir" 60 || die "cluster $e n=$n batch=$b does not commit (logs in $cluster_dir/logs)"
}

stop_cluster() {
  [ -n "$cluster_dir" ] || return 0
  local tag=${cluster_dir##*/}
  "$bin/bft-client" --config "$cluster_dir/keys/cluster.ini" status >"$out/raw/$tag.status.txt" 2>&1 || true
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET /metrics HTTP/1.1\r\n\r\n" >&3; cat <&3' _ \
    "$(cat "$cluster_dir/metrics_port")" >"$out/raw/$tag.replica0.metrics.txt" 2>/dev/null || true
  BFT_BIN=$bin "$root/scripts/cluster.sh" stop --dir "$cluster_dir" >/dev/null || true
  rm -rf "$cluster_dir"
  cluster_dir=
}

run_point() { # engine n batch payload mode clients rate
  local e=$1 n=$2 b=$3 p=$4 mode=$5 c=$6 r=$7 rep res args tag
  args=(--config "$cluster_dir/keys/cluster.ini" --keys "$cluster_dir/keys" --clients "$c" --duration "$duration"
        --warmup "$warmup" --payload "$p" --protocol "$e" --timeout 30)
  [ "$mode" = open ] && args+=(--rate "$r" --arrival poisson --backlog "$open_backlog")
  for ((rep = 1; rep <= reps; rep++)); do
    tag="$e-n$n-b$b-p$p-$mode-c$c-r$r-$rep"
    res=$("$bin/bft-bench" "${args[@]}" 2>"$out/raw/$tag.err" | tee "$out/raw/$tag.out" | grep '^RESULT') || true
    if [ -z "$res" ]; then
      say "  no RESULT for $tag (see raw/$tag.err)"
      continue
    fi
    echo "$e,$n,$b,$p,$mode,$c,$r,$rep,$(field throughput_ops "$res"),$(field p50_ms "$res"),$(field p90_ms "$res"),$(field p99_ms "$res"),$(field max_ms "$res"),$(field errors "$res"),$(field drops "$res"),$(field offered_ops "$res"),$(field batch_max "$res"),$(field duration_s "$res")" >>"$out/results.csv"
  done
  say "  $e n=$n batch=$b payload=$p $mode clients=$c${r:+ rate=$r}: $(tail -n "$reps" "$out/results.csv" | awk -F, '{ printf "%s ops/s p50 %s ms; ", $9, $10 }')"
}

t_start=$SECONDS
say "results in $out"
current=
while read -r e n b p mode c r; do
  if [ "$current" != "$e $n $b" ]; then
    stop_cluster
    say "cluster: $e n=$n batch=$b"
    start_cluster "$e" "$n" "$b"
    current="$e $n $b"
  fi
  run_point "$e" "$n" "$b" "$p" "$mode" "$c" "$r"
done < <(plan_points)
stop_cluster

say "simulator: messages and bytes per decision"
echo "--seeds 1 --requests $sim_requests --clients 4" >"$out/sim_config.txt"
echo "engine,n,msgs_per_decision,bytes_per_decision,sigs_per_decision,verifies_per_decision,requests_per_decision" >"$out/sim.csv"
for e in $engines; do
  for n in $sim_ns; do
    line=$("$bin/bft-sim" --protocol "$e" --replicas "$n" --seeds 1 --requests "$sim_requests" --clients 4 2>&1 | tail -n 1) || true
    echo "n=$n: $line" >>"$out/raw/sim-$e.txt"
    if grep -q 'runs at most' <<<"$line"; then # the engine's own bound (PBFT: 32)
      say "  sim $e n=$n: ${line#bft-sim: } (skipped)"
      echo "$e n=$n skipped: ${line#bft-sim: }" >>"$out/sim_skipped.txt"
      continue
    fi
    m=$(sed -n 's/.* msgs\/batch=\([0-9.]*\).*/\1/p' <<<"$line")
    [ -n "$m" ] || { say "  sim $e n=$n gave no summary: $line"; continue; }
    echo "$e,$n,$m,$(sed -n 's/.* bytes\/batch=\([0-9.]*\).*/\1/p' <<<"$line"),$(sed -n 's/.* sigs\/batch=\([0-9.]*\).*/\1/p' <<<"$line"),$(sed -n 's/.* verifies\/batch=\([0-9.]*\).*/\1/p' <<<"$line"),$(awk -v l="$line" 'BEGIN { split(l, a, " "); for (i in a) { split(a[i], kv, "="); v[kv[1]] = kv[2] } if (v["delivered"] > 0) printf "%.1f", v["requests"] / v["delivered"] }')" >>"$out/sim.csv"
  done
done

summarize "$out"
plot_all "$out"
echo "duration_s=$((SECONDS - t_start)) loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
say "done in $(((SECONDS - t_start) / 60)) min $(((SECONDS - t_start) % 60)) s: $out (summary.csv, results.csv, sim.csv, *.png)"
