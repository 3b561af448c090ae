#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: install what is missing, build with
# warnings as errors plus AddressSanitizer/UndefinedBehaviorSanitizer, check that the engines
# stay pure, run ctest, then fuzz every decoder for a bounded time (BFT_FUZZ_SECONDS, default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" --build-dir "$root/build-test" --sanitize
"$root/scripts/check-engine-purity.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$root/build-test" && ctest --output-on-failure -j"$(nproc)" --timeout 600)
"$root/scripts/fuzz.sh" --seconds "${BFT_FUZZ_SECONDS:-10}"
