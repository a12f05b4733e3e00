#!/usr/bin/env bash
# Cross-instance delivery benchmark (issue 12, item 2): two Polyport instances over one
# PostgreSQL database, loopback only.
#
#   bash bench/cluster.sh
#
# The load client (examples/realtime_bench.rs) opens subscribers (half SSE, half WebSocket) on
# instance B and has one writer create and publish posts, in the same run:
#   same-instance   writer on B   (the commit wakes B's tailer in-process)
#   cross-instance  writer on A   (A's commit sends a NOTIFY; B's LISTEN wakes its tailer)
# Per delivery it records receipt time - occurred_at (same clock). Target: cross-instance p99
# within 10 ms of same-instance p99. Both instances poll the log every 250 ms as a backstop
# (the default), so a p99 near 250 ms would mean the wake-up did not work.
# Exits 1 when the target is missed (BENCH_NO_FAIL=1 always exits 0 after the report).
#
# Knobs: BENCH_DATABASE_URL (a server URL whose database `test` exists; default
#   postgres://postgres@127.0.0.1:5432/test; a fresh database is created beside it),
#   BENCH_CONNS (200), BENCH_EVENTS (200), BENCH_RATE (20/s), BENCH_ROUNDS (3; median by p99),
#   POLYPORT_BIN, BENCH_CLIENT_BIN.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
CONNS="${BENCH_CONNS:-200}"
EVENTS="${BENCH_EVENTS:-200}"
RATE="${BENCH_RATE:-20}"
ROUNDS="${BENCH_ROUNDS:-3}"
TARGET_MS=10
WORK=.build/bench-cluster
mkdir -p "$WORK"
PIDS=()

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "build (release)"
NEED=()
[ -z "${BENCH_CLIENT_BIN:-}" ] && NEED+=(--example realtime_bench)
[ -z "${POLYPORT_BIN:-}" ] && NEED+=(--bin polyport)
[ "${#NEED[@]}" -gt 0 ] && cargo build --release "${NEED[@]}"
CLIENT_BIN="${BENCH_CLIENT_BIN:-./target/release/examples/realtime_bench}"
POLYPORT_BIN="${POLYPORT_BIN:-./target/release/polyport}"

section "database"
DB="polyport_bench_$(date +%s)"
psql "$ADMIN_URL" -qc "create database $DB" >/dev/null
DATABASE="${ADMIN_URL%/*}/$DB"
note "fresh database $DATABASE"
SECRET="$(random_secret)"

# start NAME -> sets URL_<NAME> and PID_<NAME>
start() {
    local name="$1" port log="$WORK/$1.log"
    port="$(free_port)"
    POLYPORT_BIND="127.0.0.1:$port" DATABASE_URL="$DATABASE" POLYPORT_JWT_SECRET="$SECRET" \
        POLYPORT_RATE_LIMIT_PER_MINUTE=100000000 POLYPORT_RATE_LIMIT_ANON_PER_MINUTE=100000000 \
        POLYPORT_STREAMS_PER_CALLER=50000 POLYPORT_STREAMS_MAX=50000 POLYPORT_LOG=warn \
        "$POLYPORT_BIN" >"$log" 2>&1 </dev/null &
    PIDS+=($!)
    eval "URL_$name=http://127.0.0.1:$port PID_$name=$!"
    wait_http "http://127.0.0.1:$port/healthz" 200 60 "$!" "$log"
    note "instance $name on http://127.0.0.1:$port (pid $!)"
}
start A
start B

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    for kind in same cross; do
        writer="$URL_B"
        [ "$kind" = cross ] && writer="$URL_A"
        section "round $round: $kind-instance ($CONNS subscribers on B, writer on ${writer})"
        out="$WORK/$kind-$round.txt"
        timeout --kill-after=10 240 "$CLIENT_BIN" --mode polyport --base "$URL_B" --write-base "$writer" \
            --pid "$PID_B" --conns "$CONNS" --events "$EVENTS" --rate "$RATE" --label "$kind" 2>&1 | tee "$out"
        grep '^BENCH_RESULT ' "$out" | tail -n1 | sed 's/^BENCH_RESULT //' >>"$RESULTS" || true
    done
done

section "results"
set +e
python3 - "$RESULTS" "$TARGET_MS" <<'PY'
import sys
path, target = sys.argv[1], float(sys.argv[2])
runs = {}
for line in open(path):
    kv = dict(item.split("=", 1) for item in line.split())
    runs.setdefault(kv["label"], []).append(kv)
median = {}
for label, rs in runs.items():
    rs = sorted(rs, key=lambda r: float(r["p99_ms"]))
    median[label] = rs[(len(rs) - 1) // 2]
    rounds = ", ".join(f"{float(r['p99_ms']):.2f}" for r in runs[label])
    lost = sum(int(r["lost"]) for r in runs[label])
    m = median[label]
    print(f"{label:<6}-instance: p50 {float(m['p50_ms']):.2f} ms  p99 {float(m['p99_ms']):.2f} ms  "
          f"max {float(m['max_ms']):.2f} ms  lost {lost}  (p99 per round: {rounds})")
if set(median) != {"same", "cross"}:
    print("RESULT: FAIL (a run gave no result)")
    sys.exit(1)
gap = float(median["cross"]["p99_ms"]) - float(median["same"]["p99_ms"])
lost = sum(int(r["lost"]) for rs in runs.values() for r in rs)
ok = gap <= target and lost == 0
print(f"cross - same p99: {gap:.2f} ms (target <= {target:g} ms); lost {lost} (target 0)")
print("RESULT: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
rc=$?
set -e
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
PIDS=()
psql "$ADMIN_URL" -qc "drop database if exists $DB" >/dev/null || true
if [ "$rc" -ne 0 ] && [ "${BENCH_NO_FAIL:-0}" = 1 ]; then
    rc=0
fi
exit "$rc"
