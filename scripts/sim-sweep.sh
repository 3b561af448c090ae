#!/usr/bin/env bash
# Long simulator sweeps: every fault mix (crash, partition, loss and the Byzantine plans) at
# n=4 and n=7 (10,000 seeds each by default) on a Release build of bft-sim. SIM_SWEEP_MIXES
# (names separated by spaces) runs only some mixes. Prints each run's FAIL lines and summary line, in a fixed order,
# and exits non-zero when any seed of any run found a violation or a stall.
#
#   scripts/sim-sweep.sh [--seeds N] [--first S] [--requests R] [--replicas "4 7"]
#                        [--protocol NAME] [--jobs J] [--build-dir DIR] [--build-type TYPE]
#                        [--no-build] [-- extra bft-sim flags]
set -euo pipefail

seeds=10000
first=1
requests=200
replicas="4 7"
protocol=pbft
jobs=$(nproc 2>/dev/null || echo 2)
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-sim-rel"
build_type=Release
do_build=1

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

defaults: --seeds $seeds --first $first --requests $requests --replicas "$replicas"
          --protocol $protocol --jobs $jobs --build-dir $build --build-type $build_type
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --first) first=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    --protocol) protocol=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "sim-sweep: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
extra="$*"

case "$seeds$first$requests$jobs" in
  *[!0-9]*) echo "sim-sweep: --seeds, --first, --requests and --jobs take numbers" >&2; exit 2 ;;
esac
if [ "$seeds" -lt 1 ] || [ "$jobs" -lt 1 ]; then
  echo "sim-sweep: --seeds and --jobs must be >= 1" >&2
  exit 2
fi
last=$((first + seeds - 1))

if [ "$do_build" = 1 ]; then
  # Sanitizers off and optimisation on: sweeps are about throughput (the sanitized build is
  # what ctest runs).
  # Logs live inside the build directory, which .gitignore already covers.
  mkdir -p "$build"
  log="$build/sim-sweep"
  if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$build_type" -DBFT_SANITIZE=OFF >"$log.configure.log" 2>&1 ||
     ! cmake --build "$build" --target bft-sim -j"$jobs" >"$log.build.log" 2>&1; then
    echo "sim-sweep: building bft-sim ($build_type) failed; see $log.configure.log / $log.build.log:" >&2
    grep -hE "error|Error" "$log.build.log" "$log.configure.log" 2>/dev/null | head -5 >&2
    exit 2
  fi
fi
sim="$build/bin/bft-sim"
[ -x "$sim" ] || { echo "sim-sweep: $sim not found (build it, or drop --no-build)" >&2; exit 2; }

# The same mixes as the ctest runs in tests/sim/CMakeLists.txt; @F@ is f = (n-1)/3, so at
# n=7 two primaries crash in turn, or two backups crash and restart.
# The Byzantine mixes make f replicas faulty for the whole run (twin: two honest copies under
# one key; equivocate: twins fed different requests; ...), over a lossy, reordering network.
mix_names=(loss partition crash-primary crash-restart
           byz-twin byz-equivocate byz-silent byz-corrupt byz-bad-sig byz-replay byz-withhold)
mix_flags=("--drop 0.1 --duplicate 0.05 --reorder" "--partition" "--crash @F@ --crash-primary" "--crash @F@ --restart"
           "--byzantine twin --drop 0.05 --reorder" "--byzantine equivocate --drop 0.05 --reorder"
           "--byzantine silent --drop 0.05 --reorder" "--byzantine corrupt --drop 0.05 --reorder"
           "--byzantine bad-sig --drop 0.05 --reorder"
           "--byzantine replay --drop 0.05 --reorder" "--byzantine withhold --drop 0.05 --reorder")
if [ -n "${SIM_SWEEP_MIXES:-}" ]; then # e.g. SIM_SWEEP_MIXES="byz-twin byz-corrupt"
  sel_names=() sel_flags=()
  for k in "${!mix_names[@]}"; do
    case " $SIM_SWEEP_MIXES " in *" ${mix_names[$k]} "*) sel_names+=("${mix_names[$k]}"); sel_flags+=("${mix_flags[$k]}") ;; esac
  done
  mix_names=("${sel_names[@]}") mix_flags=("${sel_flags[@]}")
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/sim-sweep.XXXXXX")
trap 'rm -rf "$out"' EXIT
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM

echo "sim-sweep: $protocol seeds $first-$last requests=$requests replicas=\"$replicas\" jobs=$jobs ($build_type build)"
start=$(date +%s)

# One job per (mix, n), at most $jobs at once; results are printed in submission order.
i=0
for n in $replicas; do
  for k in "${!mix_names[@]}"; do
    i=$((i + 1))
    tag=$(printf '%02d' "$i")
    echo "${mix_names[$k]} n=$n" >"$out/$tag.name"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    flags=${mix_flags[$k]//@F@/$(( (n - 1) / 3 ))}
    # shellcheck disable=SC2086 # the flags are word lists on purpose
    ( rc=0; "$sim" --protocol "$protocol" --replicas "$n" --seeds "$first-$last" --requests "$requests" \
          $flags $extra >"$out/$tag.out" 2>&1 || rc=$?; echo "$rc" >"$out/$tag.rc" ) &
  done
done
wait

status=0
for f in "$out"/*.name; do
  tag=$(basename "$f" .name)
  rc=$(cat "$out/$tag.rc" 2>/dev/null || echo 99)
  printf '%-20s ' "$(cat "$f"):"
  tail -n 1 "$out/$tag.out"
  # FAIL lines (with their replay commands) for anything that did not pass.
  if [ "$rc" != 0 ]; then
    status=1
    grep -A1 '^FAIL' "$out/$tag.out" | grep -v '^--$' | sed 's/^/    /' || true
    [ "$rc" = 1 ] || { echo "    bft-sim exited $rc:"; sed 's/^/    /' "$out/$tag.out" | tail -n 5; }
  fi
done
echo "sim-sweep: done in $(( $(date +%s) - start ))s: $([ $status = 0 ] && echo 'all passed' || echo 'FAILURES above')"
exit $status
