#!/usr/bin/env bash
# Checks the ROS 2 over DDS backend (`fms_agent --interface ros2dds`, cargo feature `ros2dds`)
# end to end, without ROS: a fake ROS 2 robot written with Cyclone DDS's Python binding
# (fms_agent/tests/ros2dds/fake_robot.py: odom, amcl_pose, battery_state, cmd_vel and a fake
# Nav2 navigate_to_pose action server) talks DDS to the agent's in-process
# zenoh-plugin-ros2dds, and fms_server drives the agent as in production.
#
#   1. builds the binaries (skipped with FMS_SKIP_BUILD=1);
#   2. makes the Python venv target/ros2dds-venv (reused when present) with
#      fms_agent/tests/ros2dds/requirements.txt, wheels only (cyclonedds ships its libddsc);
#   3. creates a loopback-only network namespace fmsdds-<pid> (lo up with multicast, route
#      224.0.0.0/4 on lo), so that DDS discovery never leaves this test, and inside it runs
#      dds_selftest.py (the fake robot against a second DDS participant acting as rclpy;
#      Jazzy layout in the root namespace, then Humble in /tb3_1) and e2e.py (fake robot +
#      fms_server + fms_agent; PASS/FAIL per check);
#   4. always deletes the namespace.
#
# Needs root (ip netns). Environment: FMS_SKIP_BUILD=1, FMS_SERVER_BIN, FMS_AGENT_BIN (what
# e2e.py runs; default target/debug/fms_server and target/ros2dds/fms_agent), ROS_DOMAIN_ID.
#
#   scripts/check_ros2dds.sh           exits non-zero if anything failed
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
TESTS="$ROOT/fms_agent/tests/ros2dds"
VENV="$ROOT/target/ros2dds-venv"

# --- build ----------------------------------------------------------------------------------
# >>> BUILD (skipped with FMS_SKIP_BUILD=1) >>>
# The ros2dds agent is built on its own and copied aside, so that a later plain
# `cargo build` (which rebuilds target/debug/fms_agent without the feature) does not replace it.
if [ "${FMS_SKIP_BUILD:-0}" != 1 ]; then
    # zenoh-plugin-ros2dds builds Cyclone DDS from C (cyclors): cmake, and clang for bindgen.
    if ! command -v cmake >/dev/null || ! command -v clang >/dev/null \
        || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
        echo "== installing cmake, clang, libclang-dev (Debian)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake clang libclang-dev >/dev/null
    fi
    echo "== clippy and unit tests with --features ros2dds"
    cargo clippy -p fms_agent --features ros2dds --all-targets --locked -- -D warnings
    cargo test -p fms_agent --features ros2dds --lib --locked -- ros2dds wire ros_names
    echo "== build (fms_agent with --features ros2dds: builds Cyclone DDS from C)"
    cargo build -p fms_agent --features ros2dds --locked
    mkdir -p "$TARGET/ros2dds"
    cp "$TARGET/debug/fms_agent" "$TARGET/ros2dds/fms_agent"
    cargo build -p fms_server --locked
fi
# <<< BUILD <<<
export FMS_SERVER_BIN="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
export FMS_AGENT_BIN="${FMS_AGENT_BIN:-$TARGET/ros2dds/fms_agent}"
for bin in "$FMS_SERVER_BIN" "$FMS_AGENT_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin is missing: build it first (see the BUILD section of $0)" >&2
        exit 1
    fi
done

# --- Python venv ----------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import cyclonedds' 2>/dev/null; then
    echo "== making $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: \
    -r "$TESTS/requirements.txt"
echo "== $("$VENV/bin/python" -c 'from importlib.metadata import version; print("cyclonedds", version("cyclonedds"))') in $VENV"

# --- network namespace ----------------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "FAIL: needs root for ip netns" >&2
    exit 1
fi
NS="fmsdds-$$"
cleanup() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns delete "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up multicast on
ip netns exec "$NS" ip route add 224.0.0.0/4 dev lo
echo "== network namespace $NS (loopback only)"

in_ns() { ip netns exec "$NS" env ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-0}" "$@"; }

status=0
echo "== DDS self test of the fake robot (Jazzy, root namespace)"
in_ns timeout 120 "$VENV/bin/python" "$TESTS/dds_selftest.py" --distro jazzy || status=1
echo "== DDS self test of the fake robot (Humble, /tb3_1)"
in_ns timeout 120 "$VENV/bin/python" "$TESTS/dds_selftest.py" --distro humble --namespace /tb3_1 || status=1
if [ "$status" -ne 0 ]; then
    echo "FAIL: the fake robot does not pass its DDS self test; e2e not run"
    exit 1
fi
echo "== end to end: fake robot + fms_server + fms_agent --interface ros2dds (Jazzy, root namespace)"
in_ns timeout 200 "$VENV/bin/python" "$TESTS/e2e.py" || status=1
echo "== end to end (Humble GIDs and result, robot in namespace /tb3_1)"
in_ns timeout 200 "$VENV/bin/python" "$TESTS/e2e.py" --distro humble --namespace /tb3_1 || status=1
[ "$status" -eq 0 ] && echo "== ros2dds checks passed" || echo "== ros2dds checks FAILED"
exit "$status"
