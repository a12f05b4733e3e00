#!/usr/bin/env bash
# gRPC benchmark: Polyport vs a bare tonic unary handler, same machine, same run, loopback only.
#
#   bash bench/grpc.sh
#
# Load comes from the tonic client in examples/bare_grpc.rs (closed loop, HTTP/2, 4 connections):
#   - unary GetPost (authenticated, published post) on Polyport vs GetPost on the bare server
#     (same generated service, same hyper-util stack, fixed answer): rps, p50, p99, ratio
#   - server streaming ListPosts on Polyport over BENCH_POSTS posts: messages per second
# Target (from the issue): Polyport unary rps >= 50% of bare. Exits 1 when missed or on errors
# (BENCH_NO_FAIL=1 always exits 0 after printing the report).
#
# Environment knobs (optional): BENCH_CONCURRENCY (64) BENCH_SECONDS (10) BENCH_POSTS (200)
#   BENCH_STREAMS (4, concurrent ListPosts streams)
#   POLYPORT_BIN / BARE_BIN  use these binaries instead of building release ones
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

CONC="${BENCH_CONCURRENCY:-64}"
SECS="${BENCH_SECONDS:-10}"
POSTS="${BENCH_POSTS:-200}"
STREAMS="${BENCH_STREAMS:-4}"
RATIO_TARGET=0.50
WORK=.build/bench-grpc
mkdir -p "$WORK"
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

if [ -z "${POLYPORT_BIN:-}" ] || [ -z "${BARE_BIN:-}" ]; then
    cargo build --release --bin polyport --example bare_grpc
fi
POLY="${POLYPORT_BIN:-./target/release/polyport}"
BARE="${BARE_BIN:-./target/release/examples/bare_grpc}"

DB="$WORK/bench.db"
rm -f "$DB" "$DB-wal" "$DB-shm"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
POLYPORT_BIND="127.0.0.1:$PORT" DATABASE_URL="sqlite://$DB" POLYPORT_JWT_SECRET="$(random_secret)" \
    POLYPORT_RATE_LIMIT_PER_MINUTE=100000000 POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=100000000 POLYPORT_LOG=warn \
    "$POLY" >"$WORK/polyport.log" 2>&1 </dev/null &
POLY_PID=$!
wait_http "$BASE/healthz" 200 60 "$POLY_PID" "$WORK/polyport.log"
"$BARE" serve 127.0.0.1:0 >"$WORK/bare.log" 2>&1 </dev/null &
BARE_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$WORK/bare.log" 2>/dev/null && break; sleep 0.1; done
BARE_URL="$(sed -n 's/^listening on //p' "$WORK/bare.log" | head -n1)"
[ -n "$BARE_URL" ] || die "bare server did not start"

EMAIL="bench-$(random_secret | tr -dc 'a-z0-9' | head -c 10)@example.com"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
curl -sf -X POST "$BASE/api/v1/users" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"name\":\"Bench\",\"password\":\"correct horse battery\"}" >/dev/null
TOKEN="$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"correct horse battery\"}" | json access_token)"
POST_ID=""
for i in $(seq 1 "$POSTS"); do
    id="$(curl -sf -X POST "$BASE/api/v1/posts" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"title\":\"Bench post $i\",\"body\":\"$(printf 'x%.0s' $(seq 1 200))\",\"tags\":[\"bench\",\"grpc\"]}" | json id)"
    curl -sf -X POST "$BASE/api/v1/posts/$id/publish" -H "authorization: Bearer $TOKEN" >/dev/null
    POST_ID="${POST_ID:-$id}"
done
note "seeded $POSTS published posts; concurrency $CONC for ${SECS}s per run"

"$BARE" unary "$BARE_URL" "$POST_ID" "$CONC" 2 >/dev/null
"$BARE" unary "$BASE" "$POST_ID" "$CONC" 2 "$TOKEN" >/dev/null
bare="$("$BARE" unary "$BARE_URL" "$POST_ID" "$CONC" "$SECS")"
poly="$("$BARE" unary "$BASE" "$POST_ID" "$CONC" "$SECS" "$TOKEN")"
stream="$("$BARE" stream "$BASE" "$STREAMS" "$SECS" "$TOKEN")"

python3 - "$bare" "$poly" "$stream" "$RATIO_TARGET" "$POSTS" <<'PY' || FAILED=1
import json, sys
bare, poly, stream = (json.loads(a) for a in sys.argv[1:4])
target, posts = float(sys.argv[4]), int(sys.argv[5])
ratio = poly["rps"] / bare["rps"] if bare["rps"] else 0
print(f"{'':24}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
print(f"{'bare tonic GetPost':24}{bare['rps']:>10.0f}{bare['p50_ms']:>10.3f}{bare['p99_ms']:>10.3f}{bare['errors']:>8}")
print(f"{'polyport GetPost':24}{poly['rps']:>10.0f}{poly['p50_ms']:>10.3f}{poly['p99_ms']:>10.3f}{poly['errors']:>8}")
print(f"ratio polyport/bare: {ratio:.2f} (target >= {target:.2f})")
print(f"ListPosts server stream ({posts} posts per call): {stream['messages_per_sec']:.0f} messages/s, errors {stream['errors']}")
ok = ratio >= target and poly["errors"] == 0 and bare["errors"] == 0 and stream["errors"] == 0
sys.exit(0 if ok else 1)
PY
if [ "${FAILED:-0}" = 1 ] && [ "${BENCH_NO_FAIL:-0}" != 1 ]; then
    die "gRPC benchmark target missed"
fi
