#!/usr/bin/env bash
# Profiles fms_server during the measurement window of one fms_bench run:
#   scripts/bench_profile.sh OUT_PREFIX SECONDS -- <fms_bench run arguments>
# Writes OUT_PREFIX.data (perf, cpu-clock with DWARF call graphs), OUT_PREFIX.txt (the
# run's table) and OUT_PREFIX.top.txt (the hottest symbols, inclusive). Needs `perf`
# (Debian: linux-perf) and a release build (scripts/bench.sh builds one).
# FMS_PROFILE_DELAY_S=S starts recording S seconds after the window opens instead: e.g. the
# ingest flood of --saturation-s starts window + 4.5 s after it (docs/performance.md).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"; secs="$2"; shift 3
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/fms_bench"
"$BIN" run "$@" >"$out.txt" 2>"$out.err" &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT
pid=""
for _ in $(seq 1 1200); do
    pid="$(sed -n 's/^fms_bench: measuring for .* (server pid \([0-9]*\))$/\1/p' "$out.err" | head -n 1)"
    [ -n "$pid" ] && break
    kill -0 $bench 2>/dev/null || { cat "$out.err" >&2; exit 1; }
    sleep 0.25
done
[ -n "$pid" ] || { echo "the run never reached its measurement window" >&2; exit 1; }
sleep "${FMS_PROFILE_DELAY_S:-0}"
perf record -e cpu-clock -F 999 -g --call-graph dwarf,32768 -p "$pid" -o "$out.data" -- sleep "$secs" >/dev/null 2>&1
wait $bench
trap - EXIT
cat "$out.txt"
# (head closes the pipe early: no pipefail here)
set +o pipefail
perf report -i "$out.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep '%' | grep -v 'inlined\|call_once\|catch_unwind\|do_call\|clone3\|start_thread\|thread_start\|backtrace\|run_worker\|block_on\|with_budget\|Harness\|Core<\|scoped\|worker::\|blocking::pool' \
    | head -80 | cut -c1-200 >"$out.top.txt"
set -o pipefail
echo "profile: $out.data, hottest symbols: $out.top.txt"
