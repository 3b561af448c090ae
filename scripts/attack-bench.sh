#!/usr/bin/env bash
# Honest throughput under attack (issue 16), measured as ratios within one run on this machine:
# a 4-replica PBFT cluster on 127.0.0.1, bft-bench's closed-loop clients, and net-probe as the
# attacker sharing the same cores. Phases (each measured with the same bench command):
#   baseline | 3,000-connection flood on the primary | invalid-signature flood on the primary |
#   invalid-signature flood on a backup | HELLO flood on a backup (and a peer restarted meanwhile
#   must reconnect: the ledgers must agree at the end)
# and the primary's resident memory before, during and after the connection flood.
# Usage: scripts/attack-bench.sh BIN_DIR [CLIENTS] [SECONDS]   (a Release build measures best)
NET_BIN=$(cd "${1:?usage: attack-bench.sh BIN_DIR [CLIENTS] [SECONDS]}" && pwd)
CLIENTS=${2:-16}
SECS=${3:-10}
NET_NAME=attack-bench
. "$(dirname "$0")/../tests/net/net_lib.sh"

net_require_bins bft-replica bft-keygen bft-client bft-bench net-probe
net_make_cluster 4 "$((CLIENTS + 1))" # the last key is the attacker's: a permitted key nobody honest uses
net_start_all
net_wait_ready 30
keys=$NET_DIR/keys
rss() { awk '/VmRSS/ { print $2 }' "/proc/${NET_REPLICA_PID[0]}/status"; } # KiB, the primary

bench() { # bench LABEL: one measured run; prints and records ops/s
  local out
  out=$("$NET_BIN/bft-bench" --config "$NET_CFG" --keys "$keys" --clients "$CLIENTS" --duration "$SECS" \
    --warmup 1 --timeout 30 2>"$NET_DIR/bench.err" | tail -n 1) || true
  printf '%-28s %s\n' "$1" "${out:-bench failed: $(tail -n 1 "$NET_DIR/bench.err")}" >&2
  sed -n 's/.*throughput_ops=\([0-9.]*\).*/\1/p' <<<"$out"
}

attack() { # attack SECONDS net-probe-args...: the attacker in the background, by pid
  local hold=$1
  shift
  "$NET_BIN/net-probe" "$@" --config "$NET_CFG" --key "$keys/client-$CLIENTS.key" --hold "$hold" >"$NET_DIR/attack.txt" 2>&1 &
  ATTACK_PID=$!
  NET_PIDS+=("$ATTACK_PID")
}

views() { cat "$NET_DIR"/replica-*.log | { grep -c 'event=view ' || true; }; }
hold=$((SECS + 4))

rss0=$(rss)
t0=$(bench "baseline" | tail -n 1)
v0=$(views)
rss_pre=$(rss) # steady state after a run of honest load: the fair "before"

attack "$hold" flood --replica 0 --conns 3000 --reconnect 1
sleep 2
rss_during=$(rss)
t1=$(bench "3000-conn flood on primary" | tail -n 1)
wait "$ATTACK_PID" || true
echo "   attacker: $(cat "$NET_DIR/attack.txt")"
v1=$(views)
sleep 12 # unproven idle timeout and the sweep's malloc_trim
rss_after=$(rss)

attack "$hold" badsig --replica 0 --conns 100000
sleep 1
t2=$(bench "bad-sig flood on primary" | tail -n 1)
wait "$ATTACK_PID" || true
echo "   attacker: $(cat "$NET_DIR/attack.txt")"

attack "$hold" badsig --replica 1 --conns 100000
sleep 1
t3=$(bench "bad-sig flood on backup 1" | tail -n 1)
wait "$ATTACK_PID" || true
echo "   attacker: $(cat "$NET_DIR/attack.txt")"

attack "$hold" helloflood --replica 3 --as 0
sleep 1
t4=$(bench "HELLO flood on backup 3" | tail -n 1)
# A peer link lost during the flood must come back: restart replica 2 (it dials 3).
net_kill_replica 2
net_start_replica 2
wait "$ATTACK_PID" || true
echo "   attacker: $(cat "$NET_DIR/attack.txt")"
v3=$(views)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
echo "honest ops/s: baseline=$t0 conn-flood=$t1 ($(ratio "$t1" "$t0")) badsig-primary=$t2 ($(ratio "$t2" "$t0")) badsig-backup=$t3 ($(ratio "$t3" "$t0")) hello-flood=$t4 ($(ratio "$t4" "$t0"))"
echo "primary RSS KiB: at-start=$rss0 before-flood=$rss_pre during-flood=$rss_during after=$rss_after ($(ratio "$rss_after" "$rss_pre") of before-flood)"
echo "view changes (event=view lines in all logs): before=$v0 after-conn-flood=$v1 at-end=$v3"
{ grep -h 'event=metrics ' "$NET_DIR/replica-0.log" || true; } | tail -n 1 | { grep -oE 'off_[a-z_]+=[0-9]+' || true; } | tr '\n' ' '
echo
net_check_alive
net_wait_agree "0 1 2 3" 30 >/dev/null
net_same_ledgers "0 1 2 3"
