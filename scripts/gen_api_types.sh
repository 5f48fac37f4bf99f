#!/usr/bin/env bash
# Generates the dashboard's API types from the server's own OpenAPI document: starts fms_server
# on loopback (free ports, a temp data dir), fetches GET /api/openapi.json, and writes
#   frontend/src/shared/openapi/openapi.json   the document (pretty-printed)
#   frontend/src/shared/openapi/schema.d.ts    its TypeScript types (openapi-typescript,
#                                              pinned in frontend/tools/api-types/package.json)
# Both are committed; frontend/src/shared/types.ts names the types the code uses as aliases of
# them. Run it after changing anything the document shows; scripts/check_frontend.sh fails when
# the committed files differ from what this script writes.
#
# The binary must already be built (this script never runs cargo): FMS_SERVER_BIN, default
# target/debug/fms_server. The generator comes from `npm ci` in frontend/ (run here if missing).
#
#   scripts/gen_api_types.sh             writes into frontend/src/shared/openapi
#   scripts/gen_api_types.sh --out DIR   writes the same two files into DIR instead
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
SERVER="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
OUT="$ROOT/frontend/src/shared/openapi"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

[ -x "$SERVER" ] || { echo "FAIL: $SERVER is missing: build it first (cargo build -p fms_server)" >&2; exit 1; }
GEN="$ROOT/frontend/tools/api-types/node_modules/.bin/openapi-typescript"
if [ ! -x "$GEN" ]; then
    echo "== npm ci (frontend/) for the generator"
    (cd "$ROOT/frontend" && npm ci --no-audit --no-fund)
fi

WORK="$(mktemp -d)"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ZENOH_PORT="$(free_port)"
: >"$WORK/server.log"
"$SERVER" --port 0 --bind 127.0.0.1 --zenoh-listen "tcp/127.0.0.1:$ZENOH_PORT" \
    --data-dir "$WORK/data" --frontend-dir /nonexistent --log-level warn >"$WORK/server.log" 2>&1 &
PID=$!
ADDR=""
for _ in $(seq 1 300); do
    ADDR="$(sed -n 's/.*fms_server listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/server.log" | head -1 || true)"
    [ -n "$ADDR" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ADDR" ]; then
    echo "FAIL: fms_server did not start:" >&2; tail -20 "$WORK/server.log" >&2; exit 1
fi
curl -fsS "http://$ADDR/api/openapi.json" -o "$WORK/raw.json"

mkdir -p "$OUT"
node -e 'const fs = require("fs"); const [src, dst] = process.argv.slice(1);
fs.writeFileSync(dst, JSON.stringify(JSON.parse(fs.readFileSync(src, "utf8")), null, 2) + "\n");' \
    "$WORK/raw.json" "$OUT/openapi.json"
"$GEN" "$OUT/openapi.json" --output "$OUT/schema.d.ts" >/dev/null
echo "== wrote $OUT/openapi.json and $OUT/schema.d.ts (fms_server $ADDR, openapi-typescript $("$GEN" --version 2>/dev/null | tail -1))"
