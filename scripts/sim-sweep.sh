#!/usr/bin/env bash
# Long simulator sweeps: every fault mix (crash, partition, loss and the Byzantine plans) at
# n=4 and n=7 (10,000 seeds each by default) on a Release build of bft-sim. SIM_SWEEP_MIXES
# (names separated by spaces) runs only some mixes. Prints each run's FAIL lines and summary line, in a fixed order,
# and exits non-zero when any seed of any run found a violation or a stall.
# With --chunk C each (mix, n) runs in jobs of C seeds; with --results FILE every finished job
# appends one line to FILE (the commit of the code bft-sim was built from, then the job and its
# summary line), and a job whose line FILE already holds for the same code commit is skipped,
# so a long sweep stopped anywhere goes on where it stopped when run again.
#
#   scripts/sim-sweep.sh [--seeds N] [--first S] [--requests R] [--replicas "4 7"]
#                        [--protocol NAME] [--jobs J] [--chunk C] [--results FILE]
#                        [--build-dir DIR] [--build-type TYPE] [--no-build] [-- extra bft-sim flags]
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
chunk=0
results=

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
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
    --chunk) chunk=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "sim-sweep: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
extra="$*"

case "$seeds$first$requests$jobs$chunk" in
  *[!0-9]*) echo "sim-sweep: --seeds, --first, --requests, --jobs and --chunk take numbers" >&2; exit 2 ;;
esac
if [ "$seeds" -lt 1 ] || [ "$jobs" -lt 1 ]; then
  echo "sim-sweep: --seeds and --jobs must be >= 1" >&2
  exit 2
fi
last=$((first + seeds - 1))
[ "$chunk" -ge 1 ] && [ "$chunk" -lt "$seeds" ] || chunk=$seeds
# The code bft-sim is built from: the last commit that changed anything it compiles (a commit
# that only touches documentation or results does not start a sweep over).
code=$(git -C "$root" log -1 --format=%h -- protocols replica crypto tests/sim tools CMakeLists.txt cmake 2>/dev/null || true)
if [ -n "$results" ]; then
  [ -n "$code" ] || { echo "sim-sweep: --results needs a git checkout (to name the code swept)" >&2; exit 2; }
  [ "$do_build" = 1 ] || { echo "sim-sweep: --results builds bft-sim from this tree (drop --no-build), so that its lines name the code swept" >&2; exit 2; }
  if [ -n "$(git -C "$root" status --porcelain -- protocols replica crypto tests/sim tools CMakeLists.txt cmake)" ]; then
    echo "sim-sweep: --results: the code has uncommitted changes; commit them first" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$results")"
  touch "$results"
fi

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

echo "sim-sweep: $protocol seeds $first-$last requests=$requests replicas=\"$replicas\" jobs=$jobs chunk=$chunk ($build_type build${code:+, code $code})"
start=$(date +%s)

# One job per (seed chunk, n, mix), at most $jobs at once; results are printed in submission
# order (and, with --results, appended to FILE as each job ends).
i=0 skipped=0
for ((a = first; a <= last; a += chunk)); do
  b=$((a + chunk - 1 > last ? last : a + chunk - 1))
  for n in $replicas; do
    for k in "${!mix_names[@]}"; do
      key="$code $protocol n=$n ${mix_names[$k]} $a-$b:"
      if [ -n "$results" ] && grep -qF "$key $protocol n=$n seeds=" "$results"; then
        skipped=$((skipped + 1))
        continue
      fi
      i=$((i + 1))
      tag=$(printf '%05d' "$i")
      echo "${mix_names[$k]} n=$n $a-$b" >"$out/$tag.name"
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      flags=${mix_flags[$k]//@F@/$(( (n - 1) / 3 ))}
      # shellcheck disable=SC2086 # the flags are word lists on purpose
      ( rc=0; "$sim" --protocol "$protocol" --replicas "$n" --seeds "$a-$b" --requests "$requests" \
            $flags $extra >"$out/$tag.out" 2>&1 || rc=$?; echo "$rc" >"$out/$tag.rc"
        if [ -n "$results" ] && [ "$rc" -le 1 ]; then
          { grep "^FAIL" "$out/$tag.out" | sed "s|^|$key |" || true; echo "$key $(tail -n 1 "$out/$tag.out")"; } >>"$results"
        fi ) &
    done
  done
done
wait
[ "$skipped" = 0 ] || echo "sim-sweep: $skipped job(s) already in $results, skipped"

status=0
for f in "$out"/*.name; do
  [ -e "$f" ] || continue # every job was already in --results
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
if [ -n "$results" ]; then
  # Everything FILE holds for this code and engine, this run's jobs and earlier ones together.
  echo "sim-sweep: $results, code $code, $protocol (seeds, violations, stalls per mix):"
  awk -v c="$code" -v p="$protocol" '$1 == c && $2 == p && / seeds=/ {
      key = $3 " " $4
      for (i = 5; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "seeds") s[key] += kv[2]
        if (kv[1] == "violations") v[key] += kv[2]
        if (kv[1] == "stalled") t[key] += kv[2]
      }
    }
    END { for (k in s) printf "  %-20s %7d %4d %4d\n", k, s[k], v[k], t[k] }' "$results" | sort
  if awk -v c="$code" -v p="$protocol" '$1 == c && $2 == p && (/ violations=[1-9]/ || / stalled=[1-9]/) { bad = 1 } END { exit !bad }' "$results"; then
    status=1
  fi
fi
echo "sim-sweep: done in $(( $(date +%s) - start ))s: $([ $status = 0 ] && echo 'all passed' || echo 'FAILURES above')"
exit $status
