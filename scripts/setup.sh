#!/usr/bin/env bash
# Install what the project needs from Debian's packages (only what is missing; quiet when all is
# present), then configure and build. Usage: scripts/setup.sh [--build-dir DIR] [--sanitize]
#   [--release] [--no-build]. Both README commands call it, so a fresh machine needs nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$root/build"
sanitize=OFF
build_type=RelWithDebInfo
do_build=1
fuzz=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --sanitize) sanitize=ON; shift ;;
    --release) build_type=Release; shift ;;
    --fuzz) fuzz=ON; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

packages=(gcc make cmake pkg-config libsodium-dev libuv1-dev libcmocka-dev libinih-dev clang libclang-rt-14-dev
          python3     # the Python application example and its tests (standard library only)
          gnuplot-nox) # scripts/compare.sh plots
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$do_build" -eq 1 ] || exit 0
cc_args=()
[ "$fuzz" = ON ] && cc_args=(-DCMAKE_C_COMPILER=clang)
if ! out=$(cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DBFT_SANITIZE="$sanitize" \
    -DBFT_FUZZ="$fuzz" "${cc_args[@]}" 2>&1); then
  printf '%s\n' "$out" >&2; echo "setup: cmake configure failed" >&2; exit 1
fi
if ! out=$(cmake --build "$build_dir" -j"$(nproc)" 2>&1); then
  printf '%s\n' "$out" | grep -vE '^\[ *[0-9]+%\]' >&2; echo "setup: build failed" >&2; exit 1
fi
echo "setup: built into $build_dir"
