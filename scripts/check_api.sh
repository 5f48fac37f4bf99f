#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI) generates requests from the server's own
# OpenAPI document (/api/openapi.json) and checks every response: no 5xx, the status code,
# content type and body match the document. The server runs with authentication on (an
# admin key, so every operation is reachable), the demo map, rate limits off (the run is
# deliberately hammering), one simulated robot, on loopback ports.
#
#   scripts/check_api.sh             binaries from target/debug (FMS_SERVER_BIN, FMS_AGENT_BIN)
#   FMS_API_SECONDS=120 scripts/check_api.sh     a longer run (default 60 s)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
AGENT="${FMS_AGENT_BIN:-$TARGET/debug/fms_agent}"
VENV="$TARGET/api-venv"
SECONDS_BUDGET="${FMS_API_SECONDS:-60}"

for bin in "$SERVER" "$AGENT"; do
    [ -x "$bin" ] || { echo "FAIL: $bin is missing (cargo build --workspace --bins)" >&2; exit 1; }
done
if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "== making $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/api/requirements.txt

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP_PORT="$(free_port)"
ZENOH_PORT="$(free_port)"
printf '[rate_limit]\nenabled = false\n' >"$WORK/server.toml"
ARGS=(--config "$WORK/server.toml" --data-dir "$WORK" --auth true)
KEY="$("$SERVER" "${ARGS[@]}" keys create --name schemathesis --role admin 2>/dev/null)"
"$SERVER" "${ARGS[@]}" --bind 127.0.0.1 --port "$HTTP_PORT" --zenoh-listen "tcp/127.0.0.1:$ZENOH_PORT" \
    --map config/maps/demo.yaml --frontend-dir /nonexistent --log-level warn >"$WORK/server.log" 2>&1 &
PIDS+=("$!")
"$AGENT" --robot-id r1 --zenoh-endpoint "tcp/127.0.0.1:$ZENOH_PORT" --start-pose 1,1,0 \
    --log-level warn >"$WORK/agent.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "== schemathesis $("$VENV/bin/schemathesis" --version | awk '{print $NF}') for ${SECONDS_BUDGET}s against http://127.0.0.1:$HTTP_PORT/api/openapi.json"
status=0
"$VENV/bin/schemathesis" run "http://127.0.0.1:$HTTP_PORT/api/openapi.json" \
    -H "X-API-Key: $KEY" \
    -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-time "$SECONDS_BUDGET" -w 2 --no-color ${FMS_API_SEED:+--seed "$FMS_API_SEED"} 2>&1 | grep -v "^ *$" | tail -80 || status=$?
if ! kill -0 "${PIDS[0]}" 2>/dev/null; then
    echo "FAIL: fms_server died during the run:"; tail -30 "$WORK/server.log"; exit 1
fi
if grep -q -i panick "$WORK/server.log"; then
    echo "FAIL: fms_server panicked:"; grep -i -A5 panick "$WORK/server.log"; exit 1
fi
[ "$status" -eq 0 ] && echo "== API checks passed" || echo "== API checks FAILED"
exit "$status"
