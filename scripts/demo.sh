#!/usr/bin/env bash
# Runs the fms demo on this machine: fms_server with its embedded Zenoh router, the dashboard
# (built with npm when needed) on the demo site map, the phone teleop server on 8765, plus N
# simulated robots (real fms_agent processes talking Zenoh), plus a little task traffic so
# there is something to watch. Ctrl-C stops everything.
#
#   scripts/demo.sh [N]        N robots (default 5)
#   DEMO_TRAFFIC=0 scripts/demo.sh     no automatic tasks
#   PORT=9000 scripts/demo.sh          another HTTP port (Zenoh stays on 7447)
#   PHONE_PORT=9765 scripts/demo.sh    another phone teleop port
set -euo pipefail

N="${1:-5}"
PORT="${PORT:-8088}"
ZENOH_PORT="${ZENOH_PORT:-7447}"
PHONE_PORT="${PHONE_PORT:-8765}"
TRAFFIC="${DEMO_TRAFFIC:-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

case "$N" in ''|*[!0-9]*) echo "usage: $0 [number of robots]" >&2; exit 2 ;; esac
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust from https://rustup.rs first" >&2
    exit 1
fi

if ! command -v npm >/dev/null; then
    echo "npm not found: install Node.js 20 or later (it builds the dashboard)" >&2
    exit 1
fi

# The dashboard: rebuilt when its sources changed since the last build.
FRONTEND="$ROOT/frontend"
if [ ! -f "$FRONTEND/dist/index.html" ] \
    || [ -n "$(find "$FRONTEND/src" "$FRONTEND/index.html" "$FRONTEND/phone.html" "$FRONTEND/package-lock.json" -newer "$FRONTEND/dist/index.html" -print -quit 2>/dev/null)" ]; then
    echo "Building the dashboard (npm ci && npm run build)..."
    (cd "$FRONTEND" && npm ci --no-audit --no-fund && npm run build)
fi

echo "Building fms (first build takes a few minutes)..."
cargo build --bins --locked

BIN="$ROOT/target/debug"
LOGS="$ROOT/target/demo-logs"
mkdir -p "$LOGS"
PIDS=()
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "Stopping the demo..."
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unset ZENOH_ENDPOINT # the server embeds the router
"$BIN/fms_server" --port "$PORT" --zenoh-listen "tcp/0.0.0.0:$ZENOH_PORT" \
    --frontend-dir "$FRONTEND/dist" --map "$ROOT/config/maps/demo.yaml" >"$LOGS/server.log" 2>&1 &
PIDS+=("$!")

# Wait for the ready line (printed once Zenoh and HTTP are up).
for _ in $(seq 1 100); do
    grep -q "listening on" "$LOGS/server.log" 2>/dev/null && break
    if ! kill -0 "${PIDS[0]}" 2>/dev/null; then
        echo "fms_server failed to start:" >&2
        cat "$LOGS/server.log" >&2
        exit 1
    fi
    sleep 0.1
done

# The phone teleop server: a Zenoh client like any other fleet component.
"$BIN/fms_server" phone --port "$PHONE_PORT" --zenoh-endpoint "tcp/127.0.0.1:$ZENOH_PORT" \
    --frontend-dir "$FRONTEND/dist" >"$LOGS/phone.log" 2>&1 &
PIDS+=("$!")

# Robots on a grid, 3 m apart, facing +x.
COLS=$(( N < 5 ? N : 5 ))
for i in $(seq 1 "$N"); do
    x=$(( ((i - 1) % COLS) * 3 + 1 ))
    y=$(( ((i - 1) / COLS) * 3 + 1 ))
    "$BIN/fms_agent" --robot-id "robot-$(printf %03d "$i")" \
        --zenoh-endpoint "tcp/127.0.0.1:$ZENOH_PORT" --start-pose "$x,$y,0" \
        --failure-probability 0.05 >"$LOGS/agent-$i.log" 2>&1 &
    PIDS+=("$!")
done

cat <<EOF

fms demo is running with $N simulated robots.
  Dashboard     http://localhost:$PORT/
  Phone teleop  http://localhost:$PHONE_PORT/   (open it on a phone on the same network)
  REST API      http://localhost:$PORT/api/robots   (try: curl -s localhost:$PORT/api/robots | jq length)
  Fleet status  http://localhost:$PORT/api/fleet/status
  WebSocket     ws://localhost:$PORT/ws
  Metrics       http://localhost:$PORT/metrics
  Zenoh router  tcp/localhost:$ZENOH_PORT
  Logs          $LOGS/
Press Ctrl-C to stop.
EOF

if [ "$TRAFFIC" = "1" ]; then
    # Every few seconds, send a task to a random point of the demo area.
    W=$(( COLS * 3 + 1 ))
    H=$(( ((N - 1) / COLS + 1) * 3 + 1 ))
    while sleep 4; do
        x=$(( RANDOM % (W * 10) ))
        y=$(( RANDOM % (H * 10) ))
        curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/tasks" \
            -H 'content-type: application/json' \
            -d "{\"target\":{\"x\":$((x / 10)).$((x % 10)),\"y\":$((y / 10)).$((y % 10))}}" || true
    done
else
    wait
fi
