#!/usr/bin/env bash
# No processes: net_same_ledgers (net_lib.sh) against made-up ledgers. Replicas whose ledgers
# grow between two reads (Tendermint commits empty heights while a faulty replica keeps its
# timers running) must pass when they agree up to the height compared; a block that differs
# below it, or a ledger missing blocks of that range, must fail.
NET_BIN=/nonexistent
NET_NAME=net-lib-selftest
. "$(dirname "$0")/net_lib.sh"

declare -A LEN=() BAD=()
block() { # height, marked "x" when this replica's block at that height differs
  printf 'height=%s hash=h%s%s prev=p requests=1 batch=b%s state=s%s cert_bytes=9 protocol=t\n' "$1" "$1" "${2:-}" "$1" "$1"
}
net_ledger_content() { # replica $1's ledger: LEN[$1] blocks; reading it makes it grow by one
  local h
  for ((h = 1; h <= LEN[$1]; h++)); do block "$h" "$([ "${BAD[$1]:-0}" = "$h" ] && echo x)"; done |
    awk '{ print $1, $2, $4, $5, $6 }'
  LEN[$1]=$((LEN[$1] + 1))
}
expect() { # expect pass|fail, then the net_same_ledgers arguments, run in a subshell (net_fail exits)
  local want=$1 rc=0
  shift
  (trap - EXIT; net_same_ledgers "$@") >/dev/null 2>&1 || rc=$?
  if [ "$want" = pass ] && [ $rc -ne 0 ]; then echo "[$NET_NAME] FAIL: expected a pass for $* (${LEN[*]})"; exit 1; fi
  if [ "$want" = fail ] && [ $rc -eq 0 ]; then echo "[$NET_NAME] FAIL: expected a failure for $* (${LEN[*]})"; exit 1; fi
  return 0
}

LEN=([0]=50 [1]=50 [2]=50)
expect pass "0 1 2" 50          # each read appends a block: the old whole-ledger compare failed here
LEN=([0]=50 [1]=53 [2]=57)
expect pass "0 1 2" 50          # different lengths, same prefix
LEN=([0]=50 [1]=50 [2]=50) BAD=([2]=17)
expect fail "0 1 2" 50          # a real divergence below the compared height
LEN=([0]=50 [1]=40 [2]=50) BAD=()
expect fail "0 1 2" 50          # replica 1 lacks blocks 41..50
echo "[$NET_NAME] PASS"
