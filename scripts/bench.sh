#!/usr/bin/env bash
# Reproduces docs/performance.md (issue 8): builds fms_bench and fms_server in release, runs
# the scaling curve and the issue's target scenarios against a real fms_server on loopback,
# writes each run's JSON to the output directory and prints a summary with the targets.
#
#   scripts/bench.sh [--quick] [--only NAME[,NAME...]] [--no-build] [OUT_DIR]
#
#   OUT_DIR       where the JSON (one file per run) goes; default $FMS_BENCH_OUT or
#                 target/bench (relative to the repository)
#   --quick       shorter windows (8 s, saturation 5 s), no re-runs: a check of the
#                 scripts, not figures to publish
#   --only A,B    only these runs (names below)
#   --no-build    use the release binaries already in ${CARGO_TARGET_DIR:-target}/release
#   --list        print the runs and exit
#
# Runs (N robots x 10 Hz each, every run bounded by --max-s):
#   scale-100, scale-1000, scale-5000, scale-10000
#                 the scaling curve: 3 dashboards on /ws?batch_ms=100 plus a per-message
#                 latency probe watching 100 robots; scale-10000 also floods the server's
#                 ingest and the raw Zenoh baselines (--saturation-s): the ingest ratio
#   ingest-10k    10,000 robots, one dashboard on /ws?batch_ms=100, 10 s warm-up: loss
#                 (steady state) and RSS
#   latency-1k    1,000 robots, 10 per-message dashboards (/ws, every robot): p99 latency
#   dash100-1k    1,000 robots, 100 dashboards on /ws?batch_ms=100: server CPU
#   api-10k       10,000 robots, GET /api/robots at 10 requests/s: p99 (no live client, so
#                 every request encodes every robot's state)
#   api-10k-dash  the same with one dashboard connected (the usual case): the list reuses
#                 the states the server already encoded for live clients
#
# The machine should be otherwise idle: before each run the script waits (up to
# FMS_BENCH_WAIT_S, default 600 s) for the 1-minute load average to fall below
# FMS_BENCH_QUIET_LOAD (default 1.0), records the load before and after and the CPU other
# processes used during the run ("harness" in each JSON), and runs a scenario once more if
# it ran with background load (scripts/bench_tool.py). The summary is
# `python3 scripts/bench_tool.py summary OUT_DIR [--markdown]`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

quick=0
build=1
only=""
list=0
out="${FMS_BENCH_OUT:-$ROOT/target/bench}"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        --only) only="$2"; shift ;;
        --only=*) only="${1#--only=}" ;;
        --list) list=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) out="$1" ;;
    esac
    shift
done

dur=15; tdur=20; sat=10; attempts=2
if [ "$quick" = 1 ]; then dur=8; tdur=8; sat=5; attempts=1; fi

# name | fms_bench run arguments
runs=(
    "scale-100|--robots 100 --duration-s $dur --ws-clients 3 --ws-batch-ms 100 --probe-watch 100"
    "scale-1000|--robots 1000 --duration-s $dur --ws-clients 3 --ws-batch-ms 100 --probe-watch 100"
    "scale-5000|--robots 5000 --duration-s $dur --ws-clients 3 --ws-batch-ms 100 --probe-watch 100"
    "scale-10000|--robots 10000 --duration-s $dur --ws-clients 3 --ws-batch-ms 100 --probe-watch 100 --saturation-s $sat"
    "ingest-10k|--robots 10000 --duration-s $tdur --warmup-s 10 --ws-clients 1 --ws-batch-ms 100"
    "latency-1k|--robots 1000 --duration-s $tdur --ws-clients 10"
    "dash100-1k|--robots 1000 --duration-s $tdur --ws-clients 100 --ws-batch-ms 100"
    "api-10k|--robots 10000 --duration-s $tdur --ws-clients 0 --api-robots-rps 10"
    "api-10k-dash|--robots 10000 --duration-s $tdur --ws-clients 1 --ws-batch-ms 100 --api-robots-rps 10"
)
if [ "$list" = 1 ]; then
    printf '%s\n' "${runs[@]}" | sed 's/|/\t/'
    exit 0
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/fms_bench"
if [ "$build" = 1 ]; then
    echo "== release build (fms_bench, fms_server)"
    cargo build --release -p fms_bench -p fms_server --locked
fi
if [ ! -x "$BIN" ] || [ ! -x "$TARGET/release/fms_server" ]; then
    echo "no release build in $TARGET/release (run without --no-build)" >&2
    exit 1
fi
mkdir -p "$out"
# The commit the figures belong to (fms_bench records it in each JSON).
export FMS_BENCH_COMMIT="${FMS_BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- fms_server fms_bench fms_msgs fms_agent Cargo.lock 2>/dev/null || echo -dirty)}"

failed=()
for entry in "${runs[@]}"; do
    name="${entry%%|*}"
    args="${entry#*|}"
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then
        continue
    fi
    echo "== $name: fms_bench run $args"
    # shellcheck disable=SC2086
    if ! python3 scripts/bench_tool.py run --json "$out/$name.json" --attempts "$attempts" \
        --quiet-load "${FMS_BENCH_QUIET_LOAD:-1.0}" --wait-s "${FMS_BENCH_WAIT_S:-600}" \
        --rerun-load "${FMS_BENCH_RERUN_LOAD:-1.5}" -- \
        "$BIN" run $args --rate-hz 10 --max-s 300 --label "$name" --json "$out/$name.json"; then
        echo "== $name FAILED" >&2
        failed+=("$name")
    fi
done

echo
echo "== summary ($out)"
python3 scripts/bench_tool.py summary "$out"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed runs: ${failed[*]}" >&2
    exit 1
fi
