#!/usr/bin/env bash
# Builds fms with colcon as a ROS 2 workspace would, on a machine without ROS, and checks the
# result: the install tree (binaries under lib/<package>/, launch and config files under
# share/fms_agent/, ament index entries, setup.bash), then runs the installed fms_agent (mock
# robot, configured through the installed config and parameters files and --ros-args)
# against the installed fms_server and waits for the robot to be ONLINE in /api/robots.
#
# Everything lands under target/: the colcon tools in target/colcon-venv (made on first use
# with pip: colcon-common-extensions, colcon-cargo, colcon-ros-cargo, which brings
# cargo-ament-build), the workspace in target/colcon-ws (src/fms is a symlink to this
# repository). colcon gives every package its own cargo target directory (build/<pkg>);
# here they are symlinks to the repository's cargo target directory, and the crates are
# built with `--workspace` so that features unify as in `cargo build`: after a normal
# `cargo build` the colcon build is mostly a cache hit. FMS_COLCON_SEPARATE_BUILD=1 builds
# exactly as a plain `colcon build` does instead (each package on its own, much slower).
#
#   scripts/check_colcon.sh            prints PASS/FAIL lines and "N passed, M failed"
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
VENV="$ROOT/target/colcon-venv"
WS="$ROOT/target/colcon-ws"
BUILD_TIMEOUT="${FMS_COLCON_BUILD_TIMEOUT:-2400}"

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check "description" command...
    local what="$1"
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

PIDS=()
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fms-colcon-check.XXXXXX")"
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- colcon tools -------------------------------------------------------------------------
if [ ! -x "$VENV/bin/colcon" ] || [ ! -x "$VENV/bin/cargo-ament-build" ]; then
    echo "== installing colcon into $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >"$TMP/venv.log" 2>&1 ||
        ! "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            colcon-common-extensions 'colcon-cargo>=0.2' colcon-ros-cargo >>"$TMP/venv.log" 2>&1; then
        cat "$TMP/venv.log"
        fail "install colcon-common-extensions, colcon-cargo and colcon-ros-cargo with pip"
        rm -rf "$VENV"
        finish
    fi
fi
versions="$("$VENV/bin/python" -c 'from importlib.metadata import version as v
print(", ".join(p + " " + v(p) for p in ("colcon-core", "colcon-cargo", "colcon-ros-cargo", "cargo-ament-build")))')"
pass "colcon tools in $VENV: $versions"

# --- workspace ----------------------------------------------------------------------------
mkdir -p "$WS/src" "$WS/build" "$TARGET"
ln -sfn "$ROOT" "$WS/src/fms"
rm -rf "$WS/install" "$WS/log"
SEPARATE="${FMS_COLCON_SEPARATE_BUILD:-0}"
for pkg in fms_msgs fms_agent fms_server; do
    if [ "$SEPARATE" = 1 ]; then
        [ -L "$WS/build/$pkg" ] && rm "$WS/build/$pkg"
    else
        [ -L "$WS/build/$pkg" ] || rm -rf "$WS/build/$pkg"
        ln -sfn "$TARGET" "$WS/build/$pkg"
    fi
done

cd "$WS"
export PATH="$VENV/bin:$PATH"
listed="$(env -u AMENT_PREFIX_PATH colcon list --base-paths src 2>/dev/null | awk '{print $1 " " $3}' | sort | tr '\n' ' ')"
check "colcon list finds the three ament_cargo packages (a root package.xml does not hide them): $listed" \
    test "$listed" = "fms_agent (ament_cargo) fms_msgs (ament_cargo) fms_server (ament_cargo) "

# No ROS is sourced (and none is needed for the mock build): drop what a shell may carry.
COLCON_ENV=(env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u COLCON_PREFIX_PATH -u ROS_DISTRO)
BUILD_ARGS=(build --base-paths src --executor sequential --event-handlers console_cohesion+)
start=$SECONDS
if [ "$SEPARATE" = 1 ]; then
    "${COLCON_ENV[@]}" timeout "$BUILD_TIMEOUT" colcon "${BUILD_ARGS[@]}" >"$TMP/build.log" 2>&1
    rc=$?
else
    # fms_msgs is a library: cargo-ament-build only checks it, so keep that to the crate;
    # the binaries build with the whole workspace, as `cargo build` does.
    "${COLCON_ENV[@]}" timeout "$BUILD_TIMEOUT" colcon "${BUILD_ARGS[@]}" \
        --packages-select fms_msgs >"$TMP/build.log" 2>&1 &&
        "${COLCON_ENV[@]}" timeout "$BUILD_TIMEOUT" colcon "${BUILD_ARGS[@]}" \
            --packages-select fms_agent fms_server \
            --cargo-args --workspace --locked >>"$TMP/build.log" 2>&1
    rc=$?
fi
elapsed=$((SECONDS - start))
cp "$TMP/build.log" "$WS/colcon-build.log"
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$TMP/build.log"
    fail "colcon build (exit $rc after ${elapsed}s; log: $WS/colcon-build.log)"
    finish
fi
pass "colcon build in ${elapsed}s"
cd "$ROOT"

# --- install tree -------------------------------------------------------------------------
INSTALL="$WS/install"
AGENT="$INSTALL/fms_agent/lib/fms_agent/fms_agent"
SERVER="$INSTALL/fms_server/lib/fms_server/fms_server"
SHARE="$INSTALL/fms_agent/share/fms_agent"
check "lib/fms_agent/fms_agent is installed and executable" test -x "$AGENT"
check "lib/fms_server/fms_server is installed and executable" test -x "$SERVER"
for f in agent.launch.py fleet_sim.launch.py server.launch.py; do
    check "share/fms_agent/launch/$f is installed" test -f "$SHARE/launch/$f"
done
for f in agent.toml fms_agent.params.yaml; do
    check "share/fms_agent/config/$f is installed, a copy of config/$f" \
        cmp -s "$SHARE/config/$f" "$ROOT/config/$f"
done
for pkg in fms_msgs fms_agent fms_server; do
    check "ament index: share/ament_index/resource_index/packages/$pkg" \
        test -f "$INSTALL/$pkg/share/ament_index/resource_index/packages/$pkg"
    check "share/$pkg/package.xml is installed" test -f "$INSTALL/$pkg/share/$pkg/package.xml"
done
prefix="$(bash -c 'set +u; source "$1/setup.bash" >/dev/null 2>&1; echo "${AMENT_PREFIX_PATH:-}"' _ "$INSTALL")"
case ":$prefix:" in
    *":$INSTALL/fms_agent:"*) pass "install/setup.bash puts fms_agent on AMENT_PREFIX_PATH" ;;
    *) fail "install/setup.bash puts fms_agent on AMENT_PREFIX_PATH (got '$prefix')" ;;
esac

# --- the installed binaries run -----------------------------------------------------------
if [ ! -x "$AGENT" ] || [ ! -x "$SERVER" ]; then
    finish
fi
ZPORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$TMP/data"
"$SERVER" --port 0 --bind 127.0.0.1 --zenoh-listen "tcp/127.0.0.1:$ZPORT" --data-dir "$TMP/data" \
    >"$TMP/server.out" 2>"$TMP/server.err" &
PIDS+=("$!")
addr=""
for _ in $(seq 1 150); do
    addr="$(sed -n 's|^fms_server listening on http://\([^ ]*\) .*|\1|p' "$TMP/server.out" | head -n 1)"
    [ -n "$addr" ] && break
    kill -0 "${PIDS[0]}" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$addr" ]; then
    cat "$TMP/server.out" "$TMP/server.err"
    fail "installed fms_server starts and prints its address"
    finish
fi
pass "installed fms_server listening on $addr (zenoh tcp/127.0.0.1:$ZPORT)"

# The robot id comes from the ROS namespace, as under ros2 launch; the installed config and
# parameters files must parse.
ROBOT=colcon_check
"$AGENT" --config "$SHARE/config/agent.toml" --zenoh-endpoint "tcp/127.0.0.1:$ZPORT" \
    --interface mock --ros-args -r __node:=fms_agent -r "__ns:=/$ROBOT" \
    --params-file "$SHARE/config/fms_agent.params.yaml" >"$TMP/agent.out" 2>&1 &
PIDS+=("$!")
online=""
deadline=$((SECONDS + 15))
while [ $SECONDS -lt $deadline ]; do
    if curl -fsS --max-time 2 "http://$addr/api/robots" -o "$TMP/robots.json" 2>/dev/null &&
        python3 - "$TMP/robots.json" "$ROBOT" <<'EOF'; then
import json, sys
robots = json.load(open(sys.argv[1]))
sys.exit(0 if any(r.get("id") == sys.argv[2] and r.get("presence") == "ONLINE" for r in robots) else 1)
EOF
        online=yes
        break
    fi
    kill -0 "${PIDS[1]}" 2>/dev/null || break
    sleep 0.5
done
if [ -n "$online" ]; then
    pass "installed fms_agent ($ROBOT, mock) is ONLINE in /api/robots"
else
    echo "--- agent output"; cat "$TMP/agent.out"
    echo "--- server log"; tail -n 20 "$TMP/server.err"
    echo "--- /api/robots"; cat "$TMP/robots.json" 2>/dev/null; echo
    fail "installed fms_agent ($ROBOT, mock) is ONLINE in /api/robots within 15 s"
fi
finish
