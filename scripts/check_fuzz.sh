#!/usr/bin/env bash
# Short, bounded cargo-fuzz run of the decoders that see every Zenoh payload (fuzz/, see
# docs/security.md, "Fuzzing"). Fails if any target crashes (panic, failed invariant,
# sanitizer report, timeout, out of memory).
#
#   robot_msgs    RobotState, RobotEvent, legacy state: JSON the server decodes
#   command_msgs  Task/Cancel/Estop/Teleop commands, SystemEvent: JSON the agents decode
#   keys          keys::parse_robot_key and RobotId
#   ros_cdr       CDR of the ROS 2 messages the ros2dds backend decodes (fms_agent's
#                 ros_msgs::wire, compiled from its sources without zenoh)
#
# 1. installs cargo-fuzz $CARGO_FUZZ_VERSION if missing (cargo install --locked);
# 2. builds the targets (release, debug assertions, AddressSanitizer) in fuzz/target;
# 3. runs each for FMS_FUZZ_SECONDS (default 20) from the committed seeds (fuzz/corpus/<t>)
#    and crash reproducers (fuzz/regressions/<t>, each run first), growing a scratch copy of
#    the corpus so that the committed one is never modified;
# 4. prints one line per target (runs, coverage, corpus) and exits 1 if any target failed;
#    the crashing input is in fuzz/artifacts/<t>/ and the log's tail is printed.
#
# Environment:
#   FMS_FUZZ_SECONDS=N   fuzzing time per target (default 20)
#   FMS_FUZZ_TARGETS="a b"  run only these targets
#   FMS_FUZZ_ALL=1       build ros_cdr against fms_agent itself (zenoh included: a cold build
#                        of ~11 CPU-minutes) and also drive the agent's RosBridge with the
#                        decoded messages
#   FMS_FUZZ_KEEP_CORPUS=DIR  keep the grown corpora in DIR/<target> (default: a temp dir)
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it accept the nightly-only flags
# cargo-fuzz passes (-Zsanitizer=address, ...). The build always goes to fuzz/target (never
# the workspace's target/), whatever CARGO_TARGET_DIR says.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ="$ROOT/fuzz"
cd "$FUZZ"

CARGO_FUZZ_VERSION=0.13.2
SECS="${FMS_FUZZ_SECONDS:-20}"
TARGETS="${FMS_FUZZ_TARGETS:-robot_msgs command_msgs keys ros_cdr}"
FEATURES=()
if [ "${FMS_FUZZ_ALL:-0}" = 1 ]; then
    FEATURES=(--features agent)
fi
case "$SECS" in '' | *[!0-9]*) echo "FMS_FUZZ_SECONDS must be a whole number" >&2; exit 2 ;; esac

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$FUZZ/target"
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if ! cargo metadata --locked --format-version 1 >/dev/null 2>&1; then
    echo "fuzz/Cargo.lock is out of date (a dependency of fms_msgs or fms_agent changed):" >&2
    echo "  cargo update --manifest-path fuzz/Cargo.toml --workspace   and commit it" >&2
    exit 1
fi

t0=$(date +%s)
echo "== cargo fuzz build ${FEATURES[*]} (fuzz/target)"
cargo fuzz build "${FEATURES[@]}"
t1=$(date +%s)
echo "build: $((t1 - t0)) s"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
KEEP="${FMS_FUZZ_KEEP_CORPUS:-}"
failed=()
for t in $TARGETS; do
    [ -d "corpus/$t" ] || { echo "no seed corpus fuzz/corpus/$t" >&2; exit 2; }
    corpus="$WORK/corpus/$t"
    [ -n "$KEEP" ] && corpus="$KEEP/$t"
    mkdir -p "$corpus" "artifacts/$t"
    dirs=("$corpus" "corpus/$t")
    [ -d "regressions/$t" ] && dirs+=("regressions/$t")
    args=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
    if [ -f "dicts/$t.dict" ]; then
        args+=(-dict="dicts/$t.dict")
    elif [ "$t" = robot_msgs ] || [ "$t" = command_msgs ]; then
        args+=(-dict=dicts/json.dict)
    fi
    log="$WORK/$t.log"
    echo "== fuzz $t (${SECS} s)"
    start=$(date +%s)
    if cargo fuzz run "${FEATURES[@]}" "$t" "${dirs[@]}" -- "${args[@]}" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
    fi
    # "#123456 DONE cov: 1539 ft: 2365 corp: 20/2513b ..." and the final stats.
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "$t: $status, ${runs:-?} runs in $(($(date +%s) - start)) s; ${done_line:-no DONE line}"
    if [ "$status" != ok ]; then
        echo "---- $t: what failed (full log: tail below)"
        grep -m1 -A2 "panicked at" "$log" || true
        grep -E "^(==[0-9]+==ERROR|SUMMARY:|ERROR: libFuzzer)|Test unit written|^Running: " "$log" || true
        echo "---- tail of the $t log"
        tail -25 "$log"
        echo "----"
    fi
done
echo "fuzzing: $(($(date +%s) - t1)) s, total $(($(date +%s) - t0)) s"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; reproduce with" \
        "RUSTC_BOOTSTRAP=1 cargo fuzz run ${FEATURES[*]} <target> <input>; minimize with" \
        "cargo fuzz tmin; keep it as fuzz/regressions/<target>/<name>)" >&2
    exit 1
fi
echo "PASS: ${TARGETS}"
