#!/usr/bin/env bash
# The console at `/` and the AsyncAPI document against a live release server (issue 14):
#   - clients/node/chromium_console.mjs  Debian's Chromium via playwright-core drives the console:
#                                        every protocol's post operations succeed from the page,
#                                        events appear in all four live panes, an empty title is
#                                        each protocol's own error, no request leaves the origin;
#                                        screenshot at .build/console/console.png
#   - clients/node/asyncapi_validate.mjs @asyncapi/parser (pinned) parses /api/v1/asyncapi.json
#                                        with no error
# Called by .ci/run; also runnable by hand: `bash .ci/console.sh`.
#
# Environment knobs (all optional):
#   POLYPORT_BIN   use this binary instead of building target/release/polyport
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

WORK=.build/console

if [ ! -x /usr/bin/chromium ]; then
    ensure_apt chromium chromium
fi
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
ensure_node_clients
note "node $(node --version); $(/usr/bin/chromium --version 2>/dev/null | head -n1)"

polyport_server "$WORK"

run_client console "Chromium (the console at /)" node clients/node/chromium_console.mjs "$BASE" "$WORK/console.png"
run_client console "@asyncapi/parser (AsyncAPI document)" node clients/node/asyncapi_validate.mjs "$BASE" "$WORK/asyncapi.json"
clients_passed console
