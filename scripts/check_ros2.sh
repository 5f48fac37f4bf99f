#!/usr/bin/env bash
# Checks the ROS 2 backend of fms_agent (cargo feature `ros2`, through r2r) on a machine
# without ROS: r2r's `doc-only` feature brings pre-generated bindings for the standard
# message packages instead of generating them from a sourced ROS installation. The backend
# is type-checked and linted, and the ROS message translation tests run with the feature on
# (they run without it in the normal `cargo test` too). Nav2's messages are not among the
# doc-only bindings; the backend reaches them through r2r's untyped action client.
#
# Uses its own target directory (target/ros2-check) so that the feature set of this build
# does not churn the main build cache. Takes about 6 minutes from cold on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/ros2-check"

echo "== cargo clippy -p fms_agent --features ros2,r2r/doc-only"
cargo clippy -p fms_agent --features ros2,r2r/doc-only --all-targets --locked -- -D warnings

echo "== ROS message translation tests with the ros2 feature"
cargo test -p fms_agent --features ros2,r2r/doc-only --locked ros_msgs
