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

# ---- tools (idempotent) ----
if [ ! -x /usr/bin/chromium ]; then
    ensure_apt chromium chromium
fi
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
ensure_node_clients
ensure_venv
if [ "$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("websockets"))' 2>/dev/null || true)" != "$WEBSOCKETS_VERSION" ]; then
    note "pip install websockets==$WEBSOCKETS_VERSION"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
note "node $(node --version); $("$VENV_DIR/bin/python" -c 'import websockets; print("websockets", websockets.__version__)')"
note "$(/usr/bin/chromium --version 2>/dev/null | head -n1)"

# ---- server ----
PAGE_PORT="${REALTIME_PAGE_PORT:-$(free_port)}"
note "page origin http://127.0.0.1:$PAGE_PORT"
polyport_server "$WORK" POLYPORT_CORS_ORIGINS="http://127.0.0.1:$PAGE_PORT"

# ---- clients (all run; fail at the end if any failed) ----
run_client realtime "eventsource (Node, SSE)" node clients/node/realtime_clients.mjs "$BASE"
run_client realtime "websockets (Python, WS)" "$VENV_DIR/bin/python" clients/python/realtime_clients.py "$BASE"
run_client realtime "Chromium (EventSource + WebSocket)" node clients/node/chromium_realtime.mjs "$BASE" "$PAGE_PORT"
clients_passed realtime
