#!/usr/bin/env bash
# Checks the React dashboard and phone teleop page (frontend/): installs Chromium (Debian) if
# missing, then `npm ci`, checks that the committed API types (frontend/src/shared/openapi/)
# are what scripts/gen_api_types.sh generates from FMS_SERVER_BIN's OpenAPI document, `npm run
# build` (type check + Vite build into frontend/dist, with the API explorer's Swagger UI files
# in dist/api-docs/), `npm test` (vitest unit tests) and
# `npm run e2e` (browser end-to-end tests: fms_server + 3 mock robots + the phone server on free
# loopback ports, and a second stack with --auth true, driven in headless Chromium; PASS/FAIL
# per check, screenshots into docs/screenshots/).
#
# The binaries must already be built (this script never runs cargo): by default
# target/debug/fms_server and target/debug/fms_agent, or FMS_SERVER_BIN / FMS_AGENT_BIN.
# Other environment: CHROMIUM_BIN (default /usr/bin/chromium), E2E_KEEP=1 (keep logs), and
# FMS_SKIP_E2E=1 (build and unit tests only).
#
#   scripts/check_frontend.sh        exits non-zero if anything failed
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/frontend"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

if ! command -v npm >/dev/null; then
    echo "FAIL: npm not found: install Node.js 20 or later" >&2
    exit 1
fi
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ "${FMS_SKIP_E2E:-0}" != 1 ] && [ ! -x "$CHROMIUM_BIN" ]; then
    echo "== installing chromium (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM_BIN

echo "== node $(node --version), npm $(npm --version)"
echo "== npm ci"
npm ci --no-audit --no-fund

export FMS_SERVER_BIN="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
echo "== API types current (scripts/gen_api_types.sh into a temp dir, diffed with frontend/src/shared/openapi)"
if [ ! -x "$FMS_SERVER_BIN" ]; then
    echo "FAIL: $FMS_SERVER_BIN is missing: build it first (cargo build --workspace --bins)" >&2
    exit 1
fi
GEN_DIR="$(mktemp -d)"
trap 'rm -rf "$GEN_DIR"' EXIT
"$ROOT/scripts/gen_api_types.sh" --out "$GEN_DIR"
if ! diff -ru "$ROOT/frontend/src/shared/openapi" "$GEN_DIR" >"$GEN_DIR.diff"; then
    head -60 "$GEN_DIR.diff" >&2
    rm -f "$GEN_DIR.diff"
    echo "FAIL: frontend/src/shared/openapi/ (the OpenAPI document and the TypeScript types generated from it) is not what $FMS_SERVER_BIN serves: run scripts/gen_api_types.sh and commit the result" >&2
    exit 1
fi
rm -f "$GEN_DIR.diff"

echo "== npm run build (tsc --noEmit, vite build)"
npm run build
for f in swagger-ui.css swagger-ui-bundle.js init.js; do
    if [ ! -s "dist/api-docs/$f" ]; then
        echo "FAIL: the build did not write dist/api-docs/$f (served by /api/docs)" >&2
        exit 1
    fi
done

echo "== npm test (vitest)"
npm test

if [ "${FMS_SKIP_E2E:-0}" = 1 ]; then
    echo "== e2e skipped (FMS_SKIP_E2E=1)"
    exit 0
fi
export FMS_AGENT_BIN="${FMS_AGENT_BIN:-$TARGET/debug/fms_agent}"
for bin in "$FMS_SERVER_BIN" "$FMS_AGENT_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin is missing: build it first (cargo build --workspace --bins)" >&2
        exit 1
    fi
done
echo "== e2e in $("$CHROMIUM_BIN" --version 2>/dev/null | head -1) with $FMS_SERVER_BIN"
timeout 900 npm run e2e
