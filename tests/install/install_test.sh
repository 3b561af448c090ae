#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then build tests/install/tiny_app.c OUT OF TREE with
# nothing but `pkg-config --cflags --libs bft-replica bft-client` and run it: four replicas of an
# application of its own in one process, a client running operations through them. Also checks
# that the prefix holds the headers, the static and versioned shared libraries, the programs and
# both pkg-config files.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "${1:?usage: install_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?SOURCE_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bft-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "[install] FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
p=$tmp/prefix
for f in include/bft/bft_app.h include/bft/bft_replica.h include/bft/client/bft_client.h \
         lib/libbft-replica.a lib/libbft-client.a lib/libbft-replica.so.1 lib/libbft-client.so.1 \
         lib/libbft-replica.so lib/pkgconfig/bft-replica.pc lib/pkgconfig/bft-client.pc \
         bin/bft-replica bin/bft-client bin/bft-keygen bin/bft-bench; do
  [ -e "$p/$f" ] || fail "$f is not installed"
done
export PKG_CONFIG_PATH=$p/lib/pkgconfig
flags=$(pkg-config --cflags --libs bft-replica bft-client) || fail "pkg-config does not know bft-replica/bft-client"
inc=$(pkg-config --cflags-only-I bft-replica | sed 's/^-I//; s/ .*//')
[ "$(cd "$inc" && pwd -P)" = "$(cd "$p/include/bft" && pwd -P)" ] || fail "pkg-config points elsewhere: $flags"
mkdir "$tmp/outside"
cp "$src/tests/install/tiny_app.c" "$tmp/outside/"
# shellcheck disable=SC2086
cc -Wall -Werror -o "$tmp/outside/tiny_app" "$tmp/outside/tiny_app.c" $flags || fail "out-of-tree build"
base=$((20000 + RANDOM % 10000))
"$p/bin/bft-keygen" --replicas 4 --clients 1 --out "$tmp/keys" --base-port $base >/dev/null
LD_LIBRARY_PATH=$p/lib timeout 60 "$tmp/outside/tiny_app" "$tmp/keys" "$tmp/new/data" >"$tmp/run.log" 2>&1 ||
  { cat "$tmp/run.log"; fail "the out-of-tree program failed"; }
cat "$tmp/run.log"
grep -q 'tiny_app: OK' "$tmp/run.log" || fail "no OK line"
echo "[install] PASS"
