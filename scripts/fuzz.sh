#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan+UBSan) and run each for a bounded time.
# Usage: scripts/fuzz.sh [--seconds S] [--target NAME]   (default 60 s per target)
# Crashes are saved under build-fuzz/artifacts/ and make the script fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --target) only=$2; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bdir="$root/build-fuzz"
"$root/scripts/setup.sh" --no-build
cmake -S "$root" -B "$bdir" -DCMAKE_C_COMPILER=clang -DBFT_FUZZ=ON -DBFT_TESTS=OFF \
  -DBFT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(sed -n 's/^bft_fuzz_target(\([a-z_0-9]*\).*/\1/p' "$root/tests/fuzz/CMakeLists.txt")
[ -n "$only" ] && targets=$only
# shellcheck disable=SC2086
cmake --build "$bdir" -j"$(nproc)" --target $targets fuzz_seeds >/dev/null
mkdir -p "$bdir/artifacts"
fail=0
for t in $targets; do
  corpus="$bdir/corpus/$t"
  mkdir -p "$corpus"
  "$bdir/bin/fuzz_seeds" "$t" "$corpus"
  if "$bdir/bin/$t" "$corpus" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$bdir/artifacts/$t-" -print_final_stats=1 >"$bdir/$t.log" 2>&1; then
    echo "fuzz $t: ok, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$bdir/$t.log" | grep -o '[0-9]*$') runs in ${seconds}s"
  else
    echo "fuzz $t: FAILED (see $bdir/$t.log)"; tail -n 30 "$bdir/$t.log"; fail=1
  fi
done
exit $fail
