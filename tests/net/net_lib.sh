# Shared helpers of the real-process tests (sourced, not run): a private temp folder, free ports
# on 127.0.0.1, keys, starting/stopping bft-replica processes by pid (always stopped on exit,
# also on failure), and bounded waits. Every wait has a deadline; nothing runs unbounded.
# Callers set NET_BIN (folder with bft-replica, bft-keygen, bft-client, bft-bench, net-*).

set -euo pipefail

NET_NAME=${NET_NAME:-net}
NET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bft-$NET_NAME.XXXXXX")
NET_PIDS=()        # every process started, by pid
declare -A NET_REPLICA_PID=()
declare -A NET_REPLICA_EXTRA=() # extra bft-replica arguments by id (e.g. --byzantine MODES)
NET_N=0
NET_BASE_PORT=0
NET_CFG=$NET_DIR/keys/cluster.ini
NET_T0=$SECONDS
NET_PROTOCOL=${NET_PROTOCOL:-pbft}
NET_REPLICA_ARGS=()  # extra bft-replica options for every replica started (e.g. limits)
NET_REPLICA_BIN=${NET_REPLICA_BIN:-bft-replica} # or a program embedding the replica (same options)

net_log() { printf '[%s +%ss] %s\n' "$NET_NAME" "$((SECONDS - NET_T0))" "$*"; }

# True while pid runs; a zombie (killed, not yet reaped) counts as gone.
net_running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

net_stop_all() {
  local pid
  for pid in "${NET_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 5))
  for pid in "${NET_PIDS[@]}"; do
    while net_running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true # braces: also silences bash's "Killed" notice
  done
  NET_PIDS=()
}

net_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  net_stop_all
  if [ $rc -ne 0 ]; then
    echo "[$NET_NAME] FAILED (exit $rc); last log lines:" >&2
    local f
    for f in "$NET_DIR"/*.log; do
      [ -e "$f" ] || continue
      echo "--- ${f##*/}" >&2
      tail -n 15 "$f" >&2 || true
    done
    echo "[$NET_NAME] kept $NET_DIR for inspection" >&2
  else
    rm -rf "$NET_DIR"
  fi
  exit $rc
}
trap net_cleanup EXIT
trap 'exit 130' INT TERM

net_fail() {
  echo "[$NET_NAME] FAIL: $*" >&2
  exit 1
}

net_require_bins() {
  local b
  for b in "$@"; do
    [ -x "$NET_BIN/$b" ] || net_fail "$NET_BIN/$b is missing (build it first)"
  done
}

# True when nothing listens on 127.0.0.1 ports $1..$1+$2-1.
net_ports_free() {
  local p
  for ((p = $1; p < $1 + $2; p++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
  done
  return 0
}

# A random base port for $1 consecutive listening ports, free now and outside the kernel's
# ephemeral range: otherwise an outgoing connection (a replica dialing a peer) can take a port
# before the replica meant to listen on it binds it.
net_pick_ports() {
  local count=$1 lo=20000 hi=32000 eph_lo eph_hi tries=0 base
  read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768; eph_hi=60999; }
  if [ "$eph_lo" -le $((lo + 1000)) ]; then lo=$((eph_hi + 1)); hi=65000; fi
  [ "$hi" -gt "$eph_lo" ] && [ "$eph_lo" -gt $((lo + 1000)) ] && hi=$((eph_lo - 1))
  while :; do
    base=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo - count)))
    net_ports_free "$base" "$count" && break
    tries=$((tries + 1))
    [ $tries -lt 50 ] || net_fail "no free port range found in $lo-$hi"
  done
  echo "$base"
}

# Keys and a cluster file for N replicas and M clients on a random free port range.
net_make_cluster() {
  NET_N=$1
  local m=$2
  NET_BASE_PORT=$(net_pick_ports "$NET_N")
  "$NET_BIN/bft-keygen" --replicas "$NET_N" --clients "$m" --out "$NET_DIR/keys" \
    --base-port "$NET_BASE_PORT" ${NET_KEYGEN_ARGS[@]+"${NET_KEYGEN_ARGS[@]}"} >/dev/null || net_fail "bft-keygen failed"
  net_log "cluster of $NET_N replicas on 127.0.0.1:$NET_BASE_PORT.. in $NET_DIR"
}

# Start replica I (its data in $NET_DIR/data-I unless $2 names another folder).
net_start_replica() {
  local id=$1 data=${2:-$NET_DIR/data-$1}
  mkdir -p "$data"
  "$NET_BIN/$NET_REPLICA_BIN" --config "$NET_CFG" --id "$id" --key "$NET_DIR/keys/replica-$id.key" \
    --data-dir "$data" --protocol "$NET_PROTOCOL" ${NET_REPLICA_ARGS[@]+"${NET_REPLICA_ARGS[@]}"} \
    ${NET_REPLICA_EXTRA[$id]:-} >>"$NET_DIR/replica-$id.log" 2>&1 </dev/null &
  NET_REPLICA_PID[$id]=$!
  NET_PIDS+=($!)
}

net_start_all() {
  local i
  for ((i = 0; i < NET_N; i++)); do net_start_replica "$i"; done
}

# Stop replica I with signal $2 (default TERM) and wait for it to be gone (bounded).
net_kill_replica() {
  local id=$1 sig=${2:-TERM} pid=${NET_REPLICA_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 5))
  while net_running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  { wait "$pid"; } 2>/dev/null || true
  unset "NET_REPLICA_PID[$id]"
}

net_client() {
  "$NET_BIN/bft-client" --config "$NET_CFG" --key "$NET_DIR/keys/client-0.key" "$@"
}

# "ID HEIGHT BATCH STATE HASH" for every replica that answers (bft-client heads).
net_heads() {
  "$NET_BIN/bft-client" --config "$NET_CFG" --timeout 1 heads 2>/dev/null |
    sed -n 's/^replica=\([0-9]*\) address=[^ ]* head=\([0-9]*\) hash=\([0-9a-f-]*\) batch=\([0-9a-f-]*\) state=\([0-9a-f-]*\)$/\1 \2 \4 \5 \3/p' || true
}

# Block contents of replica I's ledger, one line per block: height, hash, requests, batch and
# state digests. (The block hash leaves out the commit certificate, which each replica
# assembles from its own quorum of COMMIT signatures, so correct replicas agree on it.)
net_ledger_content() {
  "$NET_BIN/bft-client" --config "$NET_CFG" --timeout 10 --replica "$1" ledger |
    awk '{ print $1, $2, $4, $5, $6 }'
}

# Every replica started is still running (one that could not bind its port exits at once, and
# the other three would still commit, hiding it until a later failure).
net_check_alive() {
  local id
  for id in "${!NET_REPLICA_PID[@]}"; do
    net_running "${NET_REPLICA_PID[$id]}" ||
      net_fail "replica $id exited: $(tail -n 1 "$NET_DIR/replica-$id.log" 2>/dev/null)"
  done
}

# Wait until the cluster commits a request (bounded by $1 seconds, default 30).
net_wait_ready() {
  local limit=${1:-30} deadline=$((SECONDS + ${1:-30}))
  while [ $SECONDS -lt $deadline ]; do
    if net_client --timeout 3 put net-ready yes >/dev/null 2>&1; then
      net_check_alive
      net_log "cluster commits requests"
      return 0
    fi
    sleep 0.2
  done
  net_fail "cluster did not commit a request within ${limit}s"
}

# One look at the heads: prints "HEIGHT BATCH STATE HASH" and succeeds when the replicas listed
# in $1 (e.g. "1 2 3") report the same head (height, batch digest, state digest, block hash)
# above height 0.
net_heads_agree() {
  local ids=$1 heads id line want="" n=0
  heads=$(net_heads)
  for id in $ids; do
    line=$(awk -v id="$id" '$1 == id { print $2, $3, $4, $5 }' <<<"$heads")
    [ -n "$line" ] || break
    [ -z "$want" ] && want=$line
    [ "$line" = "$want" ] || break
    n=$((n + 1))
  done
  [ $n -eq "$(wc -w <<<"$ids")" ] && [ "${want%% *}" != 0 ] || return 1
  echo "$want"
}

# Wait until the replicas listed in $1 agree on their head (net_heads_agree) and print it.
# Bounded by $2 seconds (default 20). $3, when given, is a command run between looks (e.g. one
# ordered read, to keep the cluster committing as clients would).
net_wait_agree() {
  local ids=$1 limit=${2:-20} busy=${3:-} deadline=$((SECONDS + ${2:-20}))
  while :; do
    net_heads_agree "$ids" && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "[$NET_NAME] heads were (id height batch state hash):" >&2
      net_heads >&2
      net_fail "replicas $ids did not agree on a ledger head within ${limit}s"
    fi
    [ -z "$busy" ] || eval "$busy" >/dev/null 2>&1 || true
    sleep 0.3
  done
}

# The replicas listed in $1 hold the same blocks (contents) from 1 to height $2 (default: the
# height they agree on now, net_wait_agree). Only that common prefix is compared: a cluster may
# still be appending (a replica that hears a message of its current height runs its timers and an
# idle Tendermint proposer then commits an empty height), so two ledgers read one after the other
# can differ in length without differing in content. Each must hold all of 1..H, and a block
# that differs below H is a real divergence: both versions are printed.
net_same_ledgers() {
  local ids=($1) upto=${2:-} first id got n
  if [ -z "$upto" ]; then
    upto=$(net_wait_agree "$1" 20)
    upto=${upto%% *}
  fi
  first=$(net_ledger_content "${ids[0]}" | awk -v h="$upto" '{ split($1, a, "="); if (a[2] + 0 <= h) print }')
  n=$(grep -c . <<<"$first" || true)
  [ "$n" -eq "$upto" ] || net_fail "replica ${ids[0]} returned $n blocks of 1..$upto"
  for id in "${ids[@]:1}"; do
    got=$(net_ledger_content "$id" | awk -v h="$upto" '{ split($1, a, "="); if (a[2] + 0 <= h) print }')
    if [ "$got" != "$first" ]; then
      echo "[$NET_NAME] first difference (height hash requests batch state), replica ${ids[0]} vs $id:" >&2
      diff <(echo "$first") <(echo "$got") | head -n 6 >&2 || true
      net_fail "the ledgers of replicas ${ids[0]} and $id differ in heights 1..$upto"
    fi
  done
  net_log "replicas $1 hold identical ledgers up to height $upto (heights, batches, states)"
}
