#!/usr/bin/env bash
# The C token ledger (token-replica --socket) and the Python one (examples/token/token_app.py)
# give the same results, digests and snapshots for the same batches (app_cross_check.py).
# Usage: app_cross_check.sh BIN_DIR
NET_BIN=$(cd "${1:?usage: app_cross_check.sh BIN_DIR}" && pwd)
NET_NAME=app-cross-check
. "$(dirname "$0")/net_lib.sh"
. "$(dirname "$0")/net_app_lib.sh"
command -v python3 >/dev/null || net_fail "python3 is needed (scripts/setup.sh installs it)"
net_start_app 0 "$NET_BIN/token-replica"
net_start_app 1 python3 "$NET_EXAMPLES/token/token_app.py"
timeout 60 python3 "$(dirname "$0")/app_cross_check.py" "$NET_DIR/app-0.sock" "$NET_DIR/app-1.sock" ||
  net_fail "the C and Python token ledgers disagree"
echo "[$NET_NAME] PASS"
