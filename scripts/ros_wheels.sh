#!/usr/bin/env bash
# Installs a ROS 2 core from PyPI wheels, without root, so that fms_agent's `ros2` backend
# (r2r) can be built, linked and run on a machine with no ROS installation: CI, or a laptop.
#
#   scripts/ros_wheels.sh [jazzy]             (idempotent, ~1 min the first time)
#   source target/ros/<distro>/env.sh
#   cargo build -p fms_agent --features ros2   # builds into target/ros/<distro>/cargo
#   python3 -c "import rclpy"                  # the venv's Python
#
# Everything lands under target/ros/<distro>/:
#   venv/      a CPython 3.11 venv with the wheels of scripts/ros_wheels/requirements-<distro>.txt
#              (rclpy, rcl, rcl_action, Fast DDS, the message packages, the rosidl generators,
#              ament_cmake, cmake); the venv itself is an ament prefix (share/, lib/, include/).
#   install/   interface packages that have no wheel, generated here: nav2_msgs, from the
#              stand-in package scripts/ros_wheels/nav2_msgs_<distro>/ (NavigateToPose only).
#   stub/      an empty librmw_implementation.so (see below).
#   env.sh     what to source.
#
# The workarounds below belong to this wheel environment only. A robot with ROS 2 from apt or
# source builds the agent as docs/ros2.md says, with none of this.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DISTRO="${1:-jazzy}"
case "$DISTRO" in
    jazzy) ;;
    kilted)
        # ros-kilted-* wheels exist, but r2r 0.9.7 (the agent's ROS binding) refuses the
        # distribution: its build script panics "ROS_DISTRO not supported: kilted".
        echo "ros_wheels.sh: kilted is not offered: r2r 0.9.7 does not support it (docs/ros2.md)" >&2
        exit 2
        ;;
    *)
        echo "usage: $0 [jazzy]" >&2
        exit 2
        ;;
esac
HERE="$ROOT/scripts/ros_wheels"
REQS="$HERE/requirements-$DISTRO.txt"
PKG="$HERE/nav2_msgs_$DISTRO"
PREFIX="$ROOT/target/ros/$DISTRO"
VENV="$PREFIX/venv"
INSTALL="$PREFIX/install"
mkdir -p "$PREFIX"

# The wheels are built for CPython 3.11 only.
PYTHON="${FMS_ROS_PYTHON:-}"
if [ -z "$PYTHON" ]; then
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null && [ "$("$p" -c 'import sys; print(sys.version_info[:2] == (3, 11))')" = True ]; then
            PYTHON="$(command -v "$p")"
            break
        fi
    done
fi
if [ -z "$PYTHON" ]; then
    echo "ros_wheels.sh: the ROS 2 wheels need CPython 3.11 (set FMS_ROS_PYTHON)" >&2
    exit 1
fi

# --- the venv and the wheels ---------------------------------------------------------------
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
WHEELS_STAMP="$(stamp_of "$REQS")"
if [ "$(cat "$PREFIX/.wheels" 2>/dev/null)" != "$WHEELS_STAMP" ]; then
    echo "== ros_wheels: installing the $DISTRO wheels into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --prefer-binary -r "$REQS" >&2
    # The wheels' cmake exports hard-code the include dirs of the machine that built them:
    # point them at this Python's and this numpy's.
    PY_INCLUDE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    NP_INCLUDE="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
    { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } |
        xargs -0 -r sed -i \
            -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP_INCLUDE#g" \
            -e "s#/opt/python/cp311-cp311/include/python3.11#$PY_INCLUDE#g"
    echo "$WHEELS_STAMP" >"$PREFIX/.wheels"
    rm -f "$PREFIX/.nav2_msgs"
fi

# --- nav2_msgs (no wheel): generated from the stand-in package -----------------------------
NAV2_STAMP="$(stamp_of "$REQS" "$PKG/package.xml" "$PKG/CMakeLists.txt" "$PKG/action/NavigateToPose.action")"
if [ "$(cat "$PREFIX/.nav2_msgs" 2>/dev/null)" != "$NAV2_STAMP" ]; then
    echo "== ros_wheels: generating nav2_msgs (stand-in) into $INSTALL" >&2
    rm -rf "$PREFIX/build/nav2_msgs"
    (
        export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
        cmake -S "$PKG" -B "$PREFIX/build/nav2_msgs" -DCMAKE_INSTALL_PREFIX="$INSTALL" \
            -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" >"$PREFIX/nav2_msgs.log" 2>&1 &&
            cmake --build "$PREFIX/build/nav2_msgs" --target install -j2 >>"$PREFIX/nav2_msgs.log" 2>&1
    ) || {
        tail -40 "$PREFIX/nav2_msgs.log" >&2
        echo "ros_wheels.sh: generating nav2_msgs failed (log: $PREFIX/nav2_msgs.log)" >&2
        exit 1
    }
    echo "$NAV2_STAMP" >"$PREFIX/.nav2_msgs"
fi

# --- link-time stub -------------------------------------------------------------------------
# r2r links rmw_implementation by name; the wheels ship the rmw libraries themselves but no
# librmw_implementation.so. rcl loads the rmw at run time, so an empty library satisfies ld.
if [ ! -e "$PREFIX/stub/librmw_implementation.so" ] && [ ! -e "$VENV/lib/librmw_implementation.so" ]; then
    mkdir -p "$PREFIX/stub"
    gcc -shared -x c /dev/null -o "$PREFIX/stub/librmw_implementation.so"
fi

# --- env.sh ---------------------------------------------------------------------------------
# The wheels keep most shared libraries in per-package folders under site-packages
# (ros_rcl.libs, ...), where Python finds them by itself; a native binary needs them all on its
# library path, at link time (LIBRARY_PATH) and at run time (LD_LIBRARY_PATH).
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PY_LIBDIR="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
PY_LDLIB="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LDLIBRARY"))')"
LIBDIRS="$(
    {
        echo "$INSTALL/lib"
        echo "$VENV/lib"
        [ -d "$PREFIX/stub" ] && echo "$PREFIX/stub"
        find "$SITE" -name '*.so*' -type f -printf '%h\n' | sort -u
    } | paste -sd:
)"
cat >"$PREFIX/env.sh" <<EOF
# ROS 2 $DISTRO from PyPI wheels, made by scripts/ros_wheels.sh: source this file.
export ROS_DISTRO=$DISTRO
export ROS_VERSION=2
export ROS_PYTHON_VERSION=3
export FMS_ROS_PREFIX="$PREFIX"
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:\$PATH"
export AMENT_PREFIX_PATH="$INSTALL:$VENV"
export CMAKE_PREFIX_PATH="$INSTALL:$VENV"
export PYTHONPATH="$INSTALL/lib/python3.11/site-packages\${PYTHONPATH:+:\$PYTHONPATH}"
export LIBRARY_PATH="$LIBDIRS\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$LIBDIRS:$PY_LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
# Fast DDS is the only rmw with wheels; keep discovery on this machine.
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_AUTOMATIC_DISCOVERY_RANGE=\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
# r2r generates bindings for every package on AMENT_PREFIX_PATH unless told otherwise: only
# those the agent uses (and what they depend on), which also keeps its build short.
export IDL_PACKAGE_FILTER="std_msgs;geometry_msgs;nav_msgs;sensor_msgs;nav2_msgs;builtin_interfaces;action_msgs;unique_identifier_msgs;service_msgs;rcl_interfaces;type_description_interfaces"
# The wheels' libraries call into the Python runtime (they are built to live inside rclpy):
# a native binary must load libpython too. This touches every crate's flags, so the build
# gets a target directory of its own and the normal one keeps its cache.
export RUSTFLAGS="-C link-arg=-Wl,--no-as-needed -C link-arg=-L$PY_LIBDIR -C link-arg=-l:$PY_LDLIB -C link-arg=-Wl,-rpath,$PY_LIBDIR -C link-arg=-Wl,--as-needed"
# r2r's bindgen needs libclang; the libclang wheel ships one.
export LIBCLANG_PATH="$SITE/clang/native"
# That libclang comes without its compiler headers (stdbool.h, stddef.h): use gcc's.
export BINDGEN_EXTRA_CLANG_ARGS="-isystem $(gcc -print-file-name=include)"
export CARGO_TARGET_DIR="\${FMS_ROS_CARGO_TARGET_DIR:-$PREFIX/cargo}"
EOF
echo "$PREFIX/env.sh"
