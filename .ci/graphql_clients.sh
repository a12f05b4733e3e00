#!/usr/bin/env bash
# Third-party GraphQL clients against a live release server (issue 4, item 8):
#   - clients/node/graphql_clients.mjs    graphql-js 16 (buildClientSchema on the introspection
#                                         result, equal to schema/schema.graphql; every operation
#                                         validated) and graphql-ws 6 + ws (live subscription events)
#   - clients/python/graphql_clients.py   gql 4.4 over HTTP and over the legacy graphql-ws protocol
#   - clients/node/graphql_http_audit.mjs the GraphQL-over-HTTP spec's reference audits (npm
#                                         graphql-http serverAudits): every one ok, no warning
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

# ---- tools (idempotent) ----
ensure_apt chromium chromium
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
ensure_venv
if [ "$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("gql"), m.version("websockets"))' 2>/dev/null || true)" != "$GQL_VERSION $WEBSOCKETS_VERSION" ]; then
    note "pip install gql[aiohttp,websockets]==$GQL_VERSION websockets==$WEBSOCKETS_VERSION"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "gql[aiohttp,websockets]==$GQL_VERSION" "websockets==$WEBSOCKETS_VERSION"
fi
ensure_node_clients

# ---- server ----
polyport_server "$WORK"

# ---- clients (all run; fail at the end if any failed) ----
run_client GraphQL "graphql-js + graphql-ws (Node)" node clients/node/graphql_clients.mjs "$BASE"
run_client GraphQL "gql (Python, HTTP + legacy graphql-ws)" "$VENV_DIR/bin/python" clients/python/graphql_clients.py "$BASE"
run_client GraphQL "graphql-http serverAudits (GraphQL over HTTP spec)" node clients/node/graphql_http_audit.mjs "$BASE"
run_client GraphQL "GraphiQL in Chromium (offline assets)" node clients/node/chromium_graphiql.mjs "$BASE"
clients_passed GraphQL
