#!/usr/bin/env bash
# REST benchmark: Polyport vs a bare axum handler, same machine, same run, loopback only.
#
#   bash bench/rest.sh
#
# Measures with wrk (throughput, p99 latency):
#   - GET  /api/v1/posts/{id} (authenticated)  vs  bare GET  /post (same-sized JSON body)
#   - POST /api/v1/posts      (authenticated)  vs  bare POST /post (same request body)
# and reports polyport/bare ratios. Targets (from the issue): GET by id >= 50% of bare,
# creates >= 2,000/s. Exits 0 when both targets are met and no request failed, 1 otherwise
# (BENCH_NO_FAIL=1 always exits 0 after printing the report).
#
# Environment knobs (optional):
#   BENCH_THREADS (2) BENCH_CONNECTIONS (64) BENCH_DURATION (10s) BENCH_WARMUP (2s, "0" to skip)
#   BENCH_TIMEOUT (5s, wrk per-request timeout)
#   POLYPORT_BIN        use this binary instead of building target/release/polyport
#   BARE_BIN            use this binary instead of building the bare_rest example
#   BENCH_ONLY_BARE=1   benchmark only the bare server (to check the harness itself)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
WRK_TIMEOUT="${BENCH_TIMEOUT:-5s}"
ONLY_BARE="${BENCH_ONLY_BARE:-0}"
GET_RATIO_TARGET=0.50
CREATE_RPS_TARGET=2000

WORK=.build/bench
mkdir -p "$WORK"
POLY_LOG="$WORK/polyport.log"
BARE_LOG="$WORK/bare.log"
POLY_PID=""
BARE_PID=""

cleanup() {
    local rc=$?
    stop_pid "$POLY_PID"
    stop_pid "$BARE_PID"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "tools"
ensure_apt wrk wrk curl curl
note "$(wrk --version 2>&1 | head -n1 || true)"

section "build (release)"
if [ -z "${BARE_BIN:-}" ]; then
    cargo build --release --example bare_rest
    BARE_BIN=./target/release/examples/bare_rest
fi
if [ "$ONLY_BARE" != 1 ] && [ -z "${POLYPORT_BIN:-}" ]; then
    cargo build --release --bin polyport
    POLYPORT_BIN=./target/release/polyport
fi

TOKEN=""
POST_BYTES="${BARE_BODY_BYTES:-400}"
POLY_BYTES="n/a"
if [ "$ONLY_BARE" != 1 ]; then
    section "start polyport"
    DB_FILE="$WORK/bench.db"
    rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm" "$DB_FILE-journal"
    PORT="$(free_port)"
    POLY="http://127.0.0.1:$PORT"
    POLYPORT_BIND="127.0.0.1:$PORT" \
        DATABASE_URL="sqlite://$DB_FILE" \
        POLYPORT_JWT_SECRET="$(random_secret)" \
        POLYPORT_RATE_LIMIT_PER_MINUTE=1000000000 \
        POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=1000000000 \
        POLYPORT_LOG=warn \
        "$POLYPORT_BIN" >"$POLY_LOG" 2>&1 </dev/null &
    POLY_PID=$!
    wait_http "$POLY/healthz" 200 60 "$POLY_PID" "$POLY_LOG"
    note "polyport on $POLY (pid $POLY_PID, log $POLY_LOG)"

    EMAIL="bench@example.com"
    PASSWORD="benchmark password 123"
    api_call POST "$POLY/api/v1/users" \
        "{\"email\":\"$EMAIL\",\"name\":\"Bench\",\"password\":\"$PASSWORD\"}" >/dev/null
    TOKEN="$(api_call POST "$POLY/api/v1/auth/login" \
        "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | json_field access_token)"
    POST_JSON="$(api_call POST "$POLY/api/v1/posts" \
        '{"title":"Benchmark post","body":"A published post read by the benchmark. It has a few sentences of text so that the response is of a realistic size for a short blog post or a comment thread entry.","tags":["bench","rust"]}' \
        "$TOKEN")"
    POST_ID="$(printf '%s' "$POST_JSON" | json_field id)"
    api_call POST "$POLY/api/v1/posts/$POST_ID/publish" "" "$TOKEN" >/dev/null
    POST_BYTES="$(curl -sS -o /dev/null -w '%{size_download}' -H "authorization: Bearer $TOKEN" \
        "$POLY/api/v1/posts/$POST_ID")"
    POLY_BYTES="$POST_BYTES"
    note "post $POST_ID published; GET /api/v1/posts/{id} body is $POST_BYTES bytes"
fi

section "start bare axum baseline"
BARE_BODY_BYTES="$POST_BYTES" "$BARE_BIN" 127.0.0.1:0 >"$BARE_LOG" 2>&1 </dev/null &
BARE_PID=$!
BARE=""
for _ in $(seq 1 100); do
    BARE="$(sed -n 's#^listening on \(http://[^ ]*\).*#\1#p' "$BARE_LOG" | head -n1)"
    [ -n "$BARE" ] && break
    kill -0 "$BARE_PID" 2>/dev/null || { cat "$BARE_LOG" >&2; die "bare server exited"; }
    sleep 0.1
done
[ -n "$BARE" ] || die "bare server did not report its address"
BARE_BYTES="$(curl -sS -o /dev/null -w '%{size_download}' "$BARE/post")"
note "bare on $BARE (pid $BARE_PID); GET /post body is $BARE_BYTES bytes"

# run_wrk NAME SCRIPT URL -> appends "NAME key=value..." to $RESULTS
RESULTS="$WORK/results.txt"
: >"$RESULTS"
export BENCH_TOKEN="$TOKEN"
BENCH_RUN="$(date +%s)-$$"
export BENCH_RUN
run_wrk() {
    local name="$1" script="$2" url="$3" out="$WORK/wrk-$1.txt"
    if [ "$WARMUP" != 0 ]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout "$WRK_TIMEOUT" -s "$script" "$url" >/dev/null
    fi
    section "wrk $name: $url (-t$THREADS -c$CONNECTIONS -d$DURATION)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency -s "$script" "$url" | tee "$out"
    local line
    line="$(grep '^BENCH_RESULT ' "$out" | tail -n1)" || die "no BENCH_RESULT line from wrk for $name"
    printf '%s %s\n' "$name" "${line#BENCH_RESULT }" >>"$RESULTS"
}

run_wrk bare_get bench/get_post.lua "$BARE/post"
[ "$ONLY_BARE" != 1 ] && run_wrk polyport_get bench/get_post.lua "$POLY/api/v1/posts/$POST_ID"
run_wrk bare_post bench/create_post.lua "$BARE/post"
[ "$ONLY_BARE" != 1 ] && run_wrk polyport_post bench/create_post.lua "$POLY/api/v1/posts"

section "results"
set +e
python3 - "$RESULTS" "$POLY_BYTES" "$BARE_BYTES" "$GET_RATIO_TARGET" "$CREATE_RPS_TARGET" \
    "$THREADS" "$CONNECTIONS" "$DURATION" <<'PY'
import sys

path, poly_bytes, bare_bytes, get_target, create_target, threads, conns, duration = sys.argv[1:]
get_target, create_target = float(get_target), float(create_target)
rows = {}
for line in open(path):
    name, *kv = line.split()
    rows[name] = {k: float(v) for k, v in (item.split("=", 1) for item in kv)}

labels = {
    "bare_get": "bare axum   GET  /post",
    "polyport_get": "polyport    GET  /api/v1/posts/{id}",
    "bare_post": "bare axum   POST /post",
    "polyport_post": "polyport    POST /api/v1/posts",
}
print(f"wrk -t{threads} -c{conns} -d{duration}, loopback; GET body: polyport {poly_bytes} B, bare {bare_bytes} B")
print()
hdr = f"{'target':<38} {'req/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
print(hdr)
print("-" * len(hdr))
ok = True
for name in ("bare_get", "polyport_get", "bare_post", "polyport_post"):
    r = rows.get(name)
    if r is None:
        continue
    errors = int(r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"])
    if errors:
        ok = False
    print(f"{labels[name]:<38} {r['rps']:>11,.0f} {r['p50_us']/1000:>8.2f} {r['p99_us']/1000:>8.2f} {errors:>7}")
print()

def ratio(a, b):
    if a in rows and b in rows and rows[b]["rps"] > 0:
        return rows[a]["rps"] / rows[b]["rps"]
    return None

get_ratio = ratio("polyport_get", "bare_get")
post_ratio = ratio("polyport_post", "bare_post")
if get_ratio is not None:
    met = get_ratio >= get_target
    ok &= met
    p99 = rows["polyport_get"]["p99_us"] / max(rows["bare_get"]["p99_us"], 1)
    print(f"GET  by id  polyport/bare throughput: {get_ratio:6.1%}  (target >= {get_target:.0%}: {'PASS' if met else 'FAIL'}); p99 x{p99:.1f}")
if post_ratio is not None:
    p99 = rows["polyport_post"]["p99_us"] / max(rows["bare_post"]["p99_us"], 1)
    print(f"POST create polyport/bare throughput: {post_ratio:6.1%}  (informational); p99 x{p99:.1f}")
if "polyport_post" in rows:
    rps = rows["polyport_post"]["rps"]
    met = rps >= create_target
    ok &= met
    print(f"creates/s: {rps:,.0f}  (target >= {create_target:,.0f}/s: {'PASS' if met else 'FAIL'})")
if not ok:
    print("\nRESULT: FAIL (a target was missed or some requests failed; see above)")
    sys.exit(1)
print("\nRESULT: PASS")
PY
rc=$?
set -e
note "raw wrk output and server logs under $WORK/"
if [ "$rc" -ne 0 ] && [ "${BENCH_NO_FAIL:-0}" = 1 ]; then
    rc=0
fi
exit "$rc"
