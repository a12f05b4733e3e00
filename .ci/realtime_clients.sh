#!/usr/bin/env bash
# Third-party realtime clients against a live release server (issue 3, item 8):
#   - clients/node/realtime_clients.mjs   eventsource 4 (Node): SSE live events, library reconnect
#                                         with Last-Event-ID, stream token (?access_token=)
#   - clients/python/realtime_clients.py  websockets (Python): /ws with Authorization header,
#                                         subscribe, request/response, events, ping, errors, resume
#                                         with `after`
#   - clients/node/chromium_realtime.mjs  Debian's Chromium via playwright-core: native EventSource
#                                         and WebSocket from a page on another origin
#                                         (clients/web/realtime.html)
# Called by .ci/run; also runnable by hand: `bash .ci/realtime_clients.sh`.
# Installs only what is missing (apt chromium, npm ci in clients/node, pip websockets in the venv).
#
# Environment knobs (all optional):
#   POLYPORT_BIN   use this binary instead of building target/release/polyport
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

WEBSOCKETS_VERSION=17.4
WORK=.build/realtime
mkdir -p "$WORK"
DB_FILE="$WORK/ci.db"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""

cleanup() {
    local rc=$?
    stop_pid "$SERVER_PID"
    if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
        echo "---- last 40 lines of $SERVER_LOG ----" >&2
        tail -n 40 "$SERVER_LOG" >&2 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools (idempotent) ----
if [ ! -x /usr/bin/chromium ]; then
    ensure_apt chromium chromium
fi
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
ensure_apt node nodejs npm npm
ensure_venv
if [ "$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("websockets"))' 2>/dev/null || true)" != "$WEBSOCKETS_VERSION" ]; then
    note "pip install websockets==$WEBSOCKETS_VERSION"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
# npm ci only when node_modules was not installed from this exact lockfile (stamp file).
NPM_STAMP=clients/node/node_modules/.polyport-lock-stamp
if ! cmp -s clients/node/package-lock.json "$NPM_STAMP" 2>/dev/null; then
    note "npm ci in clients/node"
    (cd clients/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp clients/node/package-lock.json "$NPM_STAMP"
else
    note "clients/node/node_modules up to date"
fi
note "node $(node --version); $("$VENV_DIR/bin/python" -c 'import websockets; print("websockets", websockets.__version__)')"
note "$(/usr/bin/chromium --version 2>/dev/null | head -n1)"

# ---- server ----
if [ -n "${POLYPORT_BIN:-}" ]; then
    BIN="$POLYPORT_BIN"
else
    note "cargo build --release --bin polyport"
    cargo build --release --bin polyport
    BIN=./target/release/polyport
fi
[ -x "$BIN" ] || die "no executable at $BIN"

rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm" "$DB_FILE-journal"
PORT="$(free_port)"
PAGE_PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
note "starting $BIN on 127.0.0.1:$PORT (log: $SERVER_LOG); page origin http://127.0.0.1:$PAGE_PORT"
POLYPORT_BIND="127.0.0.1:$PORT" \
    DATABASE_URL="sqlite://$DB_FILE" \
    POLYPORT_JWT_SECRET="$(random_secret)" \
    POLYPORT_CORS_ORIGINS="http://127.0.0.1:$PAGE_PORT" \
    POLYPORT_RATE_LIMIT_PER_MINUTE=100000 \
    POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=100000 \
    "$BIN" >"$SERVER_LOG" 2>&1 </dev/null &
SERVER_PID=$!
wait_http "$BASE/healthz" 200 60 "$SERVER_PID" "$SERVER_LOG"
note "server is up"

# ---- clients (all run; fail at the end if any failed) ----
FAILED=()
run_client() {
    local name="$1"
    shift
    section "realtime client: $name"
    if ! timeout --kill-after=10 180 "$@"; then
        FAILED+=("$name")
    fi
}
run_client "eventsource (Node, SSE)" node clients/node/realtime_clients.mjs "$BASE"
run_client "websockets (Python, WS)" "$VENV_DIR/bin/python" clients/python/realtime_clients.py "$BASE"
run_client "Chromium (EventSource + WebSocket)" node clients/node/chromium_realtime.mjs "$BASE" "$PAGE_PORT"

if [ "${#FAILED[@]}" -ne 0 ]; then
    die "realtime clients failed: ${FAILED[*]}"
fi
note "realtime clients passed"
