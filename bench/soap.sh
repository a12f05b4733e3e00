#!/usr/bin/env bash
# SOAP benchmark: SOAP 1.1 `GetPost` vs REST `GET /api/v1/posts/{id}` on the same server, same
# run, same post, same Bearer token, loopback only.
#
#   bash bench/soap.sh
#
# Target (issue 6): SOAP GetPost throughput >= 50% of REST GET by id. Exits 0 when met and no
# request failed, 1 otherwise (BENCH_NO_FAIL=1 always exits 0 after printing the report).
#
# Environment knobs (optional):
#   BENCH_THREADS (2) BENCH_CONNECTIONS (64) BENCH_DURATION (10s) BENCH_WARMUP (2s, "0" to skip)
#   BENCH_TIMEOUT (5s)   POLYPORT_BIN (use this binary instead of building target/release/polyport)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
WRK_TIMEOUT="${BENCH_TIMEOUT:-5s}"
RATIO_TARGET=0.50

WORK=.build/bench-soap
mkdir -p "$WORK"
POLY_LOG="$WORK/polyport.log"
POLY_PID=""
cleanup() {
    local rc=$?
    stop_pid "$POLY_PID"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "tools"
ensure_apt wrk wrk curl curl

section "build (release)"
if [ -z "${POLYPORT_BIN:-}" ]; then
    cargo build --release --bin polyport
    POLYPORT_BIN=./target/release/polyport
fi

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

EMAIL="bench@example.com"
PASSWORD="benchmark password 123"
api_call POST "$POLY/api/v1/users" "{\"email\":\"$EMAIL\",\"name\":\"Bench\",\"password\":\"$PASSWORD\"}" >/dev/null
TOKEN="$(api_call POST "$POLY/api/v1/auth/login" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | json_field access_token)"
POST_ID="$(api_call POST "$POLY/api/v1/posts" \
    '{"title":"Benchmark post","body":"A published post read by the benchmark. It has a few sentences of text so that the response is of a realistic size for a short blog post or a comment thread entry.","tags":["bench","rust"]}' \
    "$TOKEN" | json_field id)"
api_call POST "$POLY/api/v1/posts/$POST_ID/publish" "" "$TOKEN" >/dev/null
export BENCH_TOKEN="$TOKEN" BENCH_POST_ID="$POST_ID"
SOAP_STATUS="$(curl -sS -o "$WORK/getpost.xml" -w '%{http_code}' -X POST "$POLY/soap" \
    -H 'content-type: text/xml; charset=utf-8' -H 'soapaction: "urn:polyport:v1#GetPost"' \
    -H "authorization: Bearer $TOKEN" \
    --data-binary "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetPost xmlns=\"urn:polyport:v1\"><id>$POST_ID</id></GetPost></soap:Body></soap:Envelope>")"
[ "$SOAP_STATUS" = 200 ] || die "SOAP GetPost answered $SOAP_STATUS: $(cat "$WORK/getpost.xml")"
note "post $POST_ID; REST body $(curl -sS -o /dev/null -w '%{size_download}' -H "authorization: Bearer $TOKEN" "$POLY/api/v1/posts/$POST_ID") B, SOAP body $(wc -c <"$WORK/getpost.xml") B"

RESULTS="$WORK/results.txt"
: >"$RESULTS"
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

run_wrk rest_get bench/get_post.lua "$POLY/api/v1/posts/$POST_ID"
run_wrk soap_get bench/soap_get_post.lua "$POLY/soap"

section "results"
set +e
python3 - "$RESULTS" "$RATIO_TARGET" "$THREADS" "$CONNECTIONS" "$DURATION" <<'PY'
import sys

path, target, threads, conns, duration = sys.argv[1:]
target = float(target)
rows = {}
for line in open(path):
    name, *kv = line.split()
    rows[name] = {k: float(v) for k, v in (item.split("=", 1) for item in kv)}
print(f"wrk -t{threads} -c{conns} -d{duration}, loopback, one polyport process")
hdr = f"{'target':<36} {'req/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
print(hdr)
print("-" * len(hdr))
ok = True
labels = {"rest_get": "REST GET  /api/v1/posts/{id}", "soap_get": "SOAP 1.1  GetPost (POST /soap)"}
for name in ("rest_get", "soap_get"):
    r = rows[name]
    errors = int(r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"])
    ok &= errors == 0
    print(f"{labels[name]:<36} {r['rps']:>11,.0f} {r['p50_us']/1000:>8.2f} {r['p99_us']/1000:>8.2f} {errors:>7}")
ratio = rows["soap_get"]["rps"] / max(rows["rest_get"]["rps"], 1)
met = ratio >= target
ok &= met
print(f"\nSOAP/REST throughput: {ratio:6.1%}  (target >= {target:.0%}: {'PASS' if met else 'FAIL'})")
print("\nRESULT: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "${BENCH_NO_FAIL:-0}" = 1 ] && rc=0
exit "$rc"
