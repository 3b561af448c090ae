#!/usr/bin/env bash
# bft-keygen writes a cluster file that loads back, one 0600 key per identity, refuses to
# overwrite keys without --force, and rejects bad arguments with a clear message.
set -euo pipefail
keygen=$1
dir=$(mktemp -d /tmp/bft-keygen-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

out=$("$keygen" --replicas 4 --clients 2 --out "$dir/k" --base-port 9100 --cluster-id test-1)
for f in cluster.ini replica-0.key replica-1.key replica-2.key replica-3.key client-0.key client-1.key; do
  [ -f "$dir/k/$f" ] || fail "missing $f"
done
[ ! -e "$dir/k/replica-4.key" ] || fail "extra replica key"
for f in "$dir"/k/*.key; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not mode 600"
done
[ "$(stat -c %a "$dir/k")" = 700 ] || fail "key folder is not mode 700"
echo "$out" | grep -q "n=4 f=1, 2 clients, ports 9100-9103" || fail "summary line: $out"
grep -q '^address = 127.0.0.1:9103$' "$dir/k/cluster.ini" || fail "port of replica 3"
grep -q '^id = test-1$' "$dir/k/cluster.ini" || fail "cluster id"
# Public keys in the cluster file are those of the key files.
pk=$(sed -n 's/^public_key = //p' "$dir/k/replica-2.key")
grep -q "$pk" "$dir/k/cluster.ini" || fail "replica-2 public key not in cluster file"
# No overwrite without --force; with --force it works.
if "$keygen" --replicas 4 --clients 0 --out "$dir/k" 2>"$dir/err"; then fail "overwrote keys"; fi
grep -q "exists; use --force" "$dir/err" || fail "overwrite message: $(cat "$dir/err")"
"$keygen" --replicas 4 --clients 0 --out "$dir/k" --force >/dev/null || fail "--force"
# Bad arguments.
if "$keygen" --replicas 3 --clients 0 --out "$dir/x" 2>"$dir/err"; then fail "n=3 accepted"; fi
grep -q -- "--replicas must be 4..64" "$dir/err" || fail "n=3 message"
if "$keygen" --replicas 4 --clients 0 --out "$dir/x" --base-port 65534 2>"$dir/err"; then fail "ports overflow accepted"; fi
if "$keygen" --replicas 4 --out "$dir/x" 2>/dev/null; then fail "missing --clients accepted"; fi
"$keygen" --help | grep -q -- "--base-port" || fail "--help"
# n = 5 warns that it is not 3f+1.
"$keygen" --replicas 5 --clients 0 --out "$dir/five" | grep -q "warning: n = 5 is not of the form 3f+1" || fail "n=5 warning"
echo "keygen: all checks passed"
