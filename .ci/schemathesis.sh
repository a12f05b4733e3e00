#!/usr/bin/env bash
# Fuzz the REST API with schemathesis against a live release server.
# Called by .ci/run; also runnable by hand: `bash .ci/schemathesis.sh [extra schemathesis args]`.
#
# Environment knobs (all optional):
#   POLYPORT_BIN                  use this binary instead of building target/release/polyport
#   SCHEMATHESIS_MAX_EXAMPLES     test cases per operation and phase (default 30)
#   SCHEMATHESIS_WORKERS          concurrent workers (default 1: with 2, hypothesis describing a
#                                 lambda in two threads at once can hit CPython 3.11's "AST constructor
#                                 recursion depth mismatch" and report a runtime error)
#   SCHEMATHESIS_TIMEOUT          hard wall-clock cap for the whole schemathesis run, seconds
#                                 (default 840: below the 15 min access-token lifetime)
#   SCHEMATHESIS_SEED             reproduce a run (schemathesis prints the seed it used)
#   SCHEMATHESIS_EXTRA_ARGS       extra arguments, word-split (e.g. "--exclude-checks ignored_auth")
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

ensure_venv

WORK=.build/schemathesis
polyport_server "$WORK"

EMAIL=ci@example.com
PASSWORD='correct horse battery'
api_call POST "$BASE/api/v1/users" \
    "{\"email\":\"$EMAIL\",\"name\":\"CI\",\"password\":\"$PASSWORD\"}" >/dev/null
TOKEN="$(api_call POST "$BASE/api/v1/auth/login" \
    "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | json_field access_token)"
[ -n "$TOKEN" ] || die "login returned no access_token"
note "registered and logged in as $EMAIL"

ARGS=(
    run "$BASE/api/v1/openapi.json"
    --checks all
    --header "Authorization: Bearer $TOKEN"
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}"
    --workers "${SCHEMATHESIS_WORKERS:-1}"
    --request-timeout 10
    --wait-for-schema 30
    --generation-database none
    --report junit --report-dir "$WORK/report"
    # The SSE stream never ends by itself, so every request to it would meet the request timeout;
    # tests/api/realtime_sse.rs and the README's try-it blocks cover it instead.
    --exclude-operation-id subscribeEvents
)
[ -n "${SCHEMATHESIS_SEED:-}" ] && ARGS+=(--seed "$SCHEMATHESIS_SEED")
# shellcheck disable=SC2206
[ -n "${SCHEMATHESIS_EXTRA_ARGS:-}" ] && ARGS+=(${SCHEMATHESIS_EXTRA_ARGS})
ARGS+=("$@")

GLOBAL=(--config-file .ci/schemathesis.toml)
[ -n "${CI:-}" ] && GLOBAL+=(--no-color)

note "schemathesis ${GLOBAL[*]} ${ARGS[*]//Bearer */Bearer ***}"
set +e
# The hooks give each well-formed generated Idempotency-Key its own value (see the file).
SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py \
    timeout --foreground --signal=INT --kill-after=30 "${SCHEMATHESIS_TIMEOUT:-840}" \
    "$VENV_DIR/bin/schemathesis" "${GLOBAL[@]}" "${ARGS[@]}"
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    die "schemathesis exceeded ${SCHEMATHESIS_TIMEOUT:-840}s"
fi
[ "$rc" -eq 0 ] || die "schemathesis reported failures (exit $rc); JUnit report under $WORK/report"
note "schemathesis passed"
