#!/usr/bin/env bash
# Checks a running fms_server: liveness (/healthz), readiness (/readyz: store and Zenoh
# reachable) and its metrics (/metrics: the fleet gauges are there, robots online, none stale,
# no rejected Zenoh traffic piling up). Prints one line per check and exits like a Nagios
# plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad usage, curl missing).
#
#   docker/scripts/healthcheck.sh                          # http://127.0.0.1:8088
#   docker/scripts/healthcheck.sh -u http://fms-server:8088 --min-online 2
#   docker/scripts/healthcheck.sh --quiet || systemctl restart fms-server   # from cron/a timer
set -uo pipefail

usage() {
    cat <<'EOF'
Usage: healthcheck.sh [-u URL] [-t SECONDS] [--min-online N] [--max-stale N] [--quiet]

Probes fms_server's /healthz, /readyz and /metrics.

  -u, --url URL        server base URL (default: $FMS_URL or http://127.0.0.1:8088)
  -t, --timeout SEC    timeout of each request (default 5)
      --min-online N   WARNING when fewer than N robots are ONLINE (default 1; 0 disables)
      --max-stale N    WARNING when more than N robots are STALE (default 0)
  -q, --quiet          print only problems
  -h, --help           this text

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
EOF
}

URL="${FMS_URL:-http://127.0.0.1:8088}"
TIMEOUT=5
MIN_ONLINE=1
MAX_STALE=0
QUIET=0

while [ $# -gt 0 ]; do
    case "$1" in
        -u|--url) URL="${2:?--url needs a value}"; shift 2 ;;
        -t|--timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
        --min-online) MIN_ONLINE="${2:?--min-online needs a value}"; shift 2 ;;
        --max-stale) MAX_STALE="${2:?--max-stale needs a value}"; shift 2 ;;
        -q|--quiet) QUIET=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "healthcheck.sh: unknown argument: $1" >&2; usage >&2; exit 3 ;;
    esac
done
for n in "$TIMEOUT" "$MIN_ONLINE" "$MAX_STALE"; do
    case "$n" in ''|*[!0-9]*) echo "healthcheck.sh: not a number: $n" >&2; exit 3 ;; esac
done
if ! command -v curl >/dev/null; then
    echo "UNKNOWN: curl is not installed"
    exit 3
fi
URL="${URL%/}"

STATUS=0   # worst status so far
report() { # LEVEL MESSAGE
    local level="$1" code=0
    shift
    case "$level" in
        OK) code=0 ;;
        WARNING) code=1 ;;
        CRITICAL) code=2 ;;
    esac
    [ "$code" -gt "$STATUS" ] && STATUS=$code
    if [ "$QUIET" -eq 0 ] || [ "$code" -ne 0 ]; then
        echo "$level: $*"
    fi
}

# GET PATH -> body in $BODY, HTTP status in $CODE ("000" when the server did not answer).
get() {
    local out
    out="$(curl -sS -m "$TIMEOUT" -w '\n%{http_code}' "$URL$1" 2>/dev/null)" || true
    CODE="${out##*$'\n'}"
    BODY="${out%$'\n'*}"
    [ -n "$CODE" ] || CODE=000
}

get /healthz
if [ "$CODE" = 200 ] && [[ "$BODY" == *'"status":"ok"'* ]]; then
    report OK "liveness $URL/healthz"
else
    report CRITICAL "liveness $URL/healthz answered $CODE: ${BODY:0:200}"
    echo "fms_server is not alive; skipping the other checks"
    exit 2
fi

get /readyz
if [ "$CODE" = 200 ] && [[ "$BODY" == "<"* ]]; then
    # The dashboard's page: a server without /readyz falls back to index.html.
    report CRITICAL "readiness $URL/readyz answered the dashboard page: this fms_server has no /readyz"
elif [ "$CODE" = 200 ]; then
    report OK "readiness $URL/readyz"
else
    report CRITICAL "readiness $URL/readyz answered $CODE (store or Zenoh unreachable?): ${BODY:0:200}"
fi

get /metrics
if [ "$CODE" != 200 ]; then
    report CRITICAL "metrics $URL/metrics answered $CODE"
    exit "$STATUS"
fi
METRICS="$BODY"
# value of an unlabelled sample, or empty
metric() { awk -v n="$1" '$1 == n { print $2; exit }' <<<"$METRICS"; }

missing=()
for name in fms_robots_total fms_robots_online fms_robots_stale fms_tasks_active; do
    [ -n "$(metric "$name")" ] || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
    report CRITICAL "metrics lack ${missing[*]}"
    exit "$STATUS"
fi
total="$(metric fms_robots_total)"
online="$(metric fms_robots_online)"
stale="$(metric fms_robots_stale)"
active="$(metric fms_tasks_active)"
report OK "metrics: $total robots, $online online, $stale stale, $active active tasks"

if [ "$MIN_ONLINE" -gt 0 ] && [ "${online%.*}" -lt "$MIN_ONLINE" ]; then
    report WARNING "only $online robot(s) online, expected at least $MIN_ONLINE (Zenoh router, agents?)"
fi
if [ "${stale%.*}" -gt "$MAX_STALE" ]; then
    report WARNING "$stale robot(s) stale (more than $MAX_STALE)"
fi
rejected="$(metric fms_zenoh_messages_rejected_total)"
if [ -n "$rejected" ] && [ "${rejected%.*}" -gt 0 ]; then
    # A counter: any value means it happened since the server started; alerts.yml watches the rate.
    report OK "$rejected Zenoh message(s) rejected since start (see FmsZenohMessagesRejected)"
fi

exit "$STATUS"
