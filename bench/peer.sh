#!/usr/bin/env bash
# Polyport side by side with the Node peer and with bare axum / bare tonic, per core (issue 13).
#
#   bash bench/peer.sh [ROUNDS=2] [SECS=10]
#
# Runs ../shared/peer-node/compare.sh as it is (each server pinned to core 0 with one worker
# thread, wrk/h2load pinned to core 1), after building the release binary and the bare
# examples. Prints req/s, p99, server CPU us per request and RSS per (round, target, operation),
# the background load before each round, then medians and the issue's ratios. Results are kept
# under .build/peer-bench/<time>/. Exits 0 with a message when the peer folder is absent.
#
# Knobs: PEER_DIR (../shared/peer-node), BENCH_SKIP_BUILD=1 (use the binaries in target/release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PEER="${PEER_DIR:-../shared/peer-node}"
if [ ! -f "$PEER/compare.sh" ]; then
    echo "no Node peer at $PEER (set PEER_DIR): nothing to compare"
    exit 0
fi
for tool in wrk h2load nghttp bc; do
    if ! command -v "$tool" >/dev/null; then
        echo "installing wrk nghttp2-client bc"
        apt-get install -y -qq wrk nghttp2-client bc >/dev/null
        break
    fi
done
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin polyport --examples
fi
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
bash "$PEER/compare.sh" "${1:-2}" "${2:-10}"
