#!/usr/bin/env bash
# Third-party GraphQL clients against a live release server (issue 4, item 8):
#   - clients/node/graphql_clients.mjs    graphql-js 16 (buildClientSchema on the introspection
#                                         result, equal to schema/schema.graphql; every operation
#                                         validated) and graphql-ws 6 + ws (live subscription events)
#   - clients/python/graphql_clients.py   gql 4.4 over HTTP and over the legacy graphql-ws protocol
#   - clients/node/chromium_graphiql.mjs  GraphiQL in Debian's Chromium with every other origin
#                                         blocked: renders, introspects, runs a query
# Called by .ci/run; also runnable by hand: `bash .ci/graphql_clients.sh`.
# Installs only what is missing (apt chromium, npm ci in clients/node, pip gql in the venv).
#
# Environment knobs (all optional):
#   POLYPORT_BIN   use this binary instead of building target/release/polyport
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

GQL_VERSION=4.4.0
WEBSOCKETS_VERSION=17.4
WORK=.build/graphql
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
ensure_apt node nodejs npm npm chromium chromium
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
ensure_venv
if [ "$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("gql"), m.version("websockets"))' 2>/dev/null || true)" != "$GQL_VERSION $WEBSOCKETS_VERSION" ]; then
    note "pip install gql[aiohttp,websockets]==$GQL_VERSION websockets==$WEBSOCKETS_VERSION"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "gql[aiohttp,websockets]==$GQL_VERSION" "websockets==$WEBSOCKETS_VERSION"
fi
NPM_STAMP=clients/node/node_modules/.polyport-lock-stamp
if ! cmp -s clients/node/package-lock.json "$NPM_STAMP" 2>/dev/null; then
    note "npm ci in clients/node"
    (cd clients/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp clients/node/package-lock.json "$NPM_STAMP"
else
    note "clients/node/node_modules up to date"
fi

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
BASE="http://127.0.0.1:$PORT"
note "starting $BIN on 127.0.0.1:$PORT (log: $SERVER_LOG)"
POLYPORT_BIND="127.0.0.1:$PORT" \
    DATABASE_URL="sqlite://$DB_FILE" \
    POLYPORT_JWT_SECRET="$(random_secret)" \
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
    section "GraphQL client: $name"
    if ! timeout --kill-after=10 120 "$@"; then
        FAILED+=("$name")
    fi
}
run_client "graphql-js + graphql-ws (Node)" node clients/node/graphql_clients.mjs "$BASE"
run_client "gql (Python, HTTP + legacy graphql-ws)" "$VENV_DIR/bin/python" clients/python/graphql_clients.py "$BASE"
run_client "GraphiQL in Chromium (offline assets)" node clients/node/chromium_graphiql.mjs "$BASE"

if [ "${#FAILED[@]}" -ne 0 ]; then
    die "GraphQL clients failed: ${FAILED[*]}"
fi
note "GraphQL clients passed"
