# Shared helpers for .ci/run, .ci/schemathesis.sh and bench/*.sh. Source it; do not run it.
# Expects the caller to have `set -euo pipefail` and to be in the repository root.

# Pinned tool versions (bump deliberately).
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV_DIR="${VENV_DIR:-.build/venv}"

section() {
    printf '\n==================== %s ====================\n' "$*"
}

note() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# apt-get install the given packages if any of the given commands is missing.
# Usage: ensure_apt COMMAND PACKAGE [COMMAND PACKAGE ...]
_APT_UPDATED=0
ensure_apt() {
    local missing=()
    while [ "$#" -ge 2 ]; do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    note "installing ${missing[*]} with apt-get"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Create the project virtualenv and install pinned Python tools, only when needed.
ensure_venv() {
    if [ ! -x "$VENV_DIR/bin/python" ] || ! "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
        note "creating virtualenv $VENV_DIR"
        rm -rf "$VENV_DIR"
        mkdir -p "$(dirname "$VENV_DIR")"
        python3 -m venv "$VENV_DIR"
    fi
    local have
    have="$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
    if [ "$have" != "$SCHEMATHESIS_VERSION" ]; then
        note "pip install schemathesis==$SCHEMATHESIS_VERSION (found: ${have:-none})"
        "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    else
        note "schemathesis $have already installed in $VENV_DIR"
    fi
}

# Print a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Random secret of 48 URL-safe characters.
random_secret() {
    python3 -c 'import secrets;print(secrets.token_urlsafe(36))'
}

# wait_http URL EXPECTED_STATUS TIMEOUT_SECONDS [PID [LOGFILE]]
# Polls URL until it answers EXPECTED_STATUS. Fails early when PID dies.
wait_http() {
    local url="$1" want="$2" timeout="$3" pid="${4:-}" log="${5:-}"
    local deadline=$((SECONDS + timeout)) code
    while :; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
        [ "$code" = "$want" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            printf 'process %s exited while waiting for %s\n' "$pid" "$url" >&2
            [ -n "$log" ] && [ -f "$log" ] && tail -n 50 "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf 'timed out after %ss waiting for %s (last status: %s)\n' "$timeout" "$url" "$code" >&2
            [ -n "$log" ] && [ -f "$log" ] && tail -n 50 "$log" >&2
            return 1
        fi
        sleep 0.25
    done
}

# json_field FIELD: read JSON on stdin, print top-level FIELD (fails when absent).
json_field() {
    python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))' "$1"
}

# api_call METHOD URL [JSON_BODY [TOKEN]] -> prints body; fails (showing the body) unless 2xx.
api_call() {
    local method="$1" url="$2" body="${3:-}" token="${4:-}" out code
    local args=(-sS -X "$method" -o - -w '\n%{http_code}' --max-time 30)
    [ -n "$body" ] && args+=(-H 'content-type: application/json' --data-binary "$body")
    [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
    out="$(curl "${args[@]}" "$url")" || { printf 'curl %s %s failed\n' "$method" "$url" >&2; return 1; }
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    if [ "${code:0:1}" != "2" ]; then
        printf '%s %s -> HTTP %s: %s\n' "$method" "$url" "$code" "$out" >&2
        return 1
    fi
    printf '%s' "$out"
}

# Stop a background process we started (by pid), politely then firmly.
stop_pid() {
    local pid="${1:-}"
    [ -z "$pid" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---- a live release server for the client checks ----

# polyport_server WORK [ENV=VALUE ...]
# Builds target/release/polyport unless POLYPORT_BIN names a binary, starts it on a free
# loopback port with a fresh SQLite file under WORK, rate limits no client check reaches, and
# the extra ENV=VALUE settings; waits for /healthz; stops it when the script exits (showing the
# log's tail if the script failed). Sets SERVER_PID, SERVER_LOG, ADDR (host:port) and BASE (URL).
# With POLYPORT_EXTERNAL_BASE set it starts nothing and points at that address instead.
polyport_server() {
    local work="$1" bin="${POLYPORT_BIN:-}"
    shift
    # POLYPORT_EXTERNAL_BASE=http://HOST:PORT: use a server (or a balancer) already running
    # there instead (the cluster run points every client check at HAProxy this way).
    if [ -n "${POLYPORT_EXTERNAL_BASE:-}" ]; then
        mkdir -p "$work"
        BASE="${POLYPORT_EXTERNAL_BASE%/}"
        ADDR="${BASE#http://}"
        SERVER_PID=""
        SERVER_LOG=/dev/null
        wait_http "$BASE/readyz" 200 60
        note "using the running server at $BASE"
        return 0
    fi
    if [ -z "$bin" ]; then
        note "cargo build --release --bin polyport"
        cargo build --release --bin polyport
        bin=./target/release/polyport
    fi
    [ -x "$bin" ] || die "no executable at $bin"
    mkdir -p "$work"
    local db="$work/ci.db"
    rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
    SERVER_LOG="$work/server.log"
    ADDR="127.0.0.1:$(free_port)"
    BASE="http://$ADDR"
    note "starting $bin on $ADDR (log: $SERVER_LOG)"
    env POLYPORT_BIND="$ADDR" DATABASE_URL="sqlite://$db" POLYPORT_JWT_SECRET="$(random_secret)" \
        POLYPORT_RATE_LIMIT_PER_MINUTE=1000000 POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=1000000 "$@" \
        "$bin" >"$SERVER_LOG" 2>&1 </dev/null &
    SERVER_PID=$!
    trap _stop_polyport_server EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    wait_http "$BASE/healthz" 200 60 "$SERVER_PID" "$SERVER_LOG"
    note "server is up"
}

_stop_polyport_server() {
    local rc=$?
    stop_pid "${SERVER_PID:-}"
    if [ "$rc" -ne 0 ] && [ -f "${SERVER_LOG:-}" ]; then
        echo "---- last 40 lines of $SERVER_LOG ----" >&2
        tail -n 40 "$SERVER_LOG" >&2 || true
    fi
    exit "$rc"
}

# npm ci in DIR (default clients/node), only when its node_modules was not installed from this
# exact lockfile.
ensure_node_clients() {
    local dir="${1:-clients/node}"
    ensure_apt node nodejs npm npm
    local stamp="$dir/node_modules/.polyport-lock-stamp"
    if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
        note "npm ci in $dir"
        (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$stamp"
    else
        note "$dir/node_modules up to date"
    fi
}

# run_client KIND NAME COMMAND...: runs one client under a time limit; a failure is remembered in
# FAILED so every client runs. clients_passed KIND then fails naming those that did not pass.
FAILED=()
run_client() {
    local kind="$1" name="$2"
    shift 2
    section "$kind client: $name"
    if ! timeout --kill-after=10 "${CLIENT_TIME_LIMIT:-180}" "$@"; then
        FAILED+=("$name")
    fi
}

clients_passed() {
    [ "${#FAILED[@]}" -eq 0 ] || die "$1 clients failed: ${FAILED[*]}"
    note "$1 clients passed"
}
