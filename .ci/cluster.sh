#!/usr/bin/env bash
# A real cluster: N Polyport instances (default 3) over one PostgreSQL database and one Redis,
# behind HAProxy (deploy/haproxy.cfg) on one front port that carries HTTP/1.1, h2c gRPC,
# WebSocket and SSE. Through the balancer: the README tour, the protocol clients CI runs
# against one server (zeep/suds, EventSource/websockets/Chromium, grpcurl/grpcio/connect-web,
# graphql-js/graphql-ws/gql), then clients/python/cluster_checks.py (alternating flow, shared
# login budget, SSE across a kill -9, SIGTERM under load).
#
#   bash .ci/cluster.sh        (called by .ci/run; CLUSTER_SIZE, POLYPORT_BIN, TEST_DATABASE_URL,
#                               TEST_REDIS_URL are optional)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

N="${CLUSTER_SIZE:-3}"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
WORK=.build/cluster
rm -rf "$WORK" && mkdir -p "$WORK"
PIDS=()
HAPROXY_PID=""
DB="polyport_cluster_$(date +%s)_$$"

cleanup() {
    local rc=$?
    stop_pid "$HAPROXY_PID"
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [ "$rc" -ne 0 ]; then
        for log in "$WORK"/*.log; do
            echo "---- last 20 lines of $log ----" >&2
            tail -n 20 "$log" >&2 || true
        done
    fi
    psql "$ADMIN_URL" -qc "drop database if exists $DB" >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_apt haproxy haproxy
ensure_venv
if [ -z "${POLYPORT_BIN:-}" ]; then
    cargo build --release --bin polyport
    POLYPORT_BIN=./target/release/polyport
fi
redis-cli -u "$REDIS_URL" ping >/dev/null || die "Redis does not answer at $REDIS_URL"
psql "$ADMIN_URL" -qc "create database $DB" >/dev/null
DATABASE="${ADMIN_URL%/*}/$DB"
SECRET="$(random_secret)"
PREFIX="polyport-cluster-$DB:"
REALTIME_PAGE_PORT="$(free_port)"
export REALTIME_PAGE_PORT

# ---- instances: started together on an empty database (they migrate it once between them) ----
HTTP_SERVERS=""
GRPC_SERVERS=""
PAIRS=()
for i in $(seq 1 "$N"); do
    port="$(free_port)"
    env POLYPORT_BIND="127.0.0.1:$port" DATABASE_URL="$DATABASE" POLYPORT_JWT_SECRET="$SECRET" \
        POLYPORT_REDIS_URL="$REDIS_URL" POLYPORT_REDIS_PREFIX="$PREFIX" \
        POLYPORT_SHUTDOWN_DELAY_SECS=2 \
        POLYPORT_RATE_LIMIT_PER_MINUTE=1000000 POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=1000000 \
        POLYPORT_MAX_CONNECTIONS_PER_ADDRESS=20000 POLYPORT_STREAMS_PER_CALLER=1000 \
        POLYPORT_CORS_ORIGINS="http://127.0.0.1:$REALTIME_PAGE_PORT" POLYPORT_LOG=warn \
        "$POLYPORT_BIN" >"$WORK/s$i.log" 2>&1 </dev/null &
    PIDS+=($!)
    PAIRS+=("s$i=$!")
    HTTP_SERVERS+="    server s$i 127.0.0.1:$port\n"
    GRPC_SERVERS+="    server s$i 127.0.0.1:$port\n"
    eval "PORT_$i=$port"
done
for i in $(seq 1 "$N"); do
    eval "port=\$PORT_$i"
    wait_http "http://127.0.0.1:$port/readyz" 200 60 "${PIDS[$((i - 1))]}" "$WORK/s$i.log"
done
note "$N instances ready over $DATABASE and $REDIS_URL: ${PAIRS[*]}"

# ---- the balancer ----
FRONT_PORT="$(free_port)"
sed -e "s|^    # servers (HTTP/1.1)$|&\n$HTTP_SERVERS|" -e "s|^    # servers (HTTP/2)$|&\n$GRPC_SERVERS|" \
    deploy/haproxy.cfg >"$WORK/haproxy.cfg"
FRONT="127.0.0.1:$FRONT_PORT" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
BASE="http://127.0.0.1:$FRONT_PORT"
wait_http "$BASE/readyz" 200 30 "$HAPROXY_PID" "$WORK/haproxy.log"
note "HAProxy on $BASE (round-robin, health checks on /readyz)"

# ---- the README tour ----
python3 - README.md >"$WORK/tour.sh" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
start = lines.index("## Tour")
first = next(i for i in range(start, len(lines)) if lines[i] == "```sh")
end = next(i for i in range(first + 1, len(lines)) if lines[i] == "```")
print("\n".join(lines[first + 1:end]))
PY
BASE="$BASE" bash -euo pipefail "$WORK/tour.sh" >"$WORK/tour.out" || { cat "$WORK/tour.out"; die "the README tour failed through the balancer"; }
note "README tour through the balancer: ok ($(wc -l <"$WORK/tour.out") lines)"

# ---- the protocol clients, each pointed at the balancer ----
export POLYPORT_EXTERNAL_BASE="$BASE"
ZEEP_VERSION=4.3.1
SUDS_VERSION=1.2.0
"$VENV_DIR/bin/pip" install -q --disable-pip-version-check "zeep==$ZEEP_VERSION" "suds-community==$SUDS_VERSION"
ensure_apt xmllint libxml2-utils
"$VENV_DIR/bin/python" clients/python/soap_clients.py "$BASE" --out "$WORK/soap" || die "SOAP clients failed through the balancer"
bash .ci/realtime_clients.sh || die "realtime clients failed through the balancer"
bash .ci/grpc_clients.sh || die "gRPC clients failed through the balancer"
bash .ci/graphql_clients.sh || die "GraphQL clients failed through the balancer"
unset POLYPORT_EXTERNAL_BASE

# ---- what only a cluster can show ----
"$VENV_DIR/bin/python" clients/python/cluster_checks.py "$BASE" "${PAIRS[@]}" || die "cluster checks failed"
note "cluster: all checks passed through HAProxy over $N instances"
