#!/usr/bin/env bash
# CI smoke benchmark (issue 8): 500 simulated robots x 5 Hz for 10 s against a real
# fms_server with two WebSocket dashboards, on loopback; prints fms_bench's table.
# Fails only if the tool failed or anything was lost (--require-no-loss: every published
# state processed by the server, no sequence gap on the dashboards, no client error).
# No timing assertion: CI machines are noisy. The figures to publish come from
# scripts/bench.sh (release build, docs/performance.md).
#
# Uses the debug build in ${CARGO_TARGET_DIR:-target}/debug (scripts/test.sh builds it
# first); builds fms_bench and fms_server there if they are missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/debug/fms_bench"
if [ ! -x "$BIN" ] || [ ! -x "$TARGET/debug/fms_server" ]; then
    cargo build -p fms_bench -p fms_server --bins --locked
fi
mkdir -p "$TARGET/bench-smoke"
exec "$BIN" run --robots 500 --rate-hz 5 --warmup-s 2 --duration-s 10 --ws-clients 2 \
    --api-robots-rps 1 --max-s 180 --require-no-loss --label ci-smoke \
    --json "$TARGET/bench-smoke/ci-smoke.json" "$@"
