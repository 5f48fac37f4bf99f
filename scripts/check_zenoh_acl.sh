#!/usr/bin/env bash
# Checks the Zenoh transport security of config/zenoh/ end to end, on loopback only:
# TLS, mTLS with one certificate per robot, and the access control that keeps a robot to its
# own keys (fms/robot/<its id>/...). See docs/security.md, "Zenoh transport security".
#
#   1. makes a throwaway CA and certificates with openssl (scripts/zenoh_acl/make_certs.sh):
#      router (SAN localhost, 127.0.0.1), robots CN=r1, r2, r3, fms-phone, fms-server, and a
#      rogue CA's CN=r2;
#   2. writes the router config for robots r1,r2 (scripts/zenoh_acl/gen_acl.py) and the
#      clients' configs from the templates in config/zenoh/ (paths substituted);
#   3. starts fms_server with it on tls/127.0.0.1:<free port>, the agents r1 and r2 with
#      their certificates, and an independent Python client (eclipse-zenoh, venv
#      target/zenoh-venv from scripts/zenoh_venv.sh, scripts/zenoh_acl/acl_client.py) that misbehaves;
#   4. prints PASS/FAIL per check with what it measured; exits 1 if any check failed:
#      a   the r1 agent (CN=r1) is ONLINE with state in /api/robots;
#      b1  a client with r1's certificate publishing RobotState on fms/robot/r2/state and
#          holding the token fms/robot/r2/alive: r2 never appears, r1's state keeps flowing;
#      b2  control: the same client and payload with r2's certificate: r2 appears;
#      b3  a valid certificate whose CN (r3) has no rules can do nothing (default deny);
#      c1  r1's certificate putting an e-stop on fms/robot/r2/cmd/emergency_stop: r2 ignores;
#      c2  r1's certificate subscribed to fms/robot/r2/cmd/**, fms/robot/*/cmd/**,
#          fms/robot/** (and liveliness): nothing of r2's while the server e-stops r2, whose
#          own agent gets it (ESTOPPED); c3 control: r1's own e-stop reaches that client;
#      d1  a TLS client without a certificate, d2 CN=r2 signed by another CA: refused in the
#          TLS handshake;
#      e1-e3 the service identities: fms-phone drives r1 (teleop), `fms_server phone` lists
#          the robots, fms_server in client mode (fms-server) sees them;
#      f   router-tls.json5 + client-tls.json5 (TLS only) work;
#      g   config/zenoh/router-mtls-acl.json5 is the generator's output for r1,r2.
#
# Environment: FMS_SERVER_BIN, FMS_AGENT_BIN (default target/debug/...; built first unless
# FMS_SKIP_BUILD=1), ACL_WINDOW (seconds a refused robot is watched for, default 5),
# FMS_API_KEY (sent as X-API-Key to the servers' HTTP API, if it needs one),
# KEEP_TMP=1 (keep the temp dir with certificates, configs and logs). About 50 s.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
ACLDIR="$ROOT/scripts/zenoh_acl"
WINDOW="${ACL_WINDOW:-5}"

# --- binaries -------------------------------------------------------------------------------
if [ "${FMS_SKIP_BUILD:-0}" != 1 ]; then
    echo "== build (skip with FMS_SKIP_BUILD=1)"
    cargo build -p fms_server -p fms_agent --locked
fi
SERVER_BIN="${FMS_SERVER_BIN:-$TARGET/debug/fms_server}"
AGENT_BIN="${FMS_AGENT_BIN:-$TARGET/debug/fms_agent}"
for bin in "$SERVER_BIN" "$AGENT_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin is missing: cargo build -p fms_server -p fms_agent" >&2
        exit 1
    fi
done
for tool in openssl curl python3; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# --- Python venv with eclipse-zenoh ---------------------------------------------------------
PY="$("$ROOT/scripts/zenoh_venv.sh")"
VENV="$(dirname "$(dirname "$PY")")"
ZVER="$("$PY" -c 'from importlib.metadata import version; print(version("eclipse-zenoh"))')"
echo "== eclipse-zenoh $ZVER in $VENV"

# --- temp dir, processes, cleanup, time bound -----------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fms-zacl.XXXXXX")"
PIDS=()
WATCHDOG=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null || true; fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "(kept $TMP)"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted or out of time" >&2; exit 124' INT TERM
# Bound the whole run: 300 s is several times what it takes.
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep 300 & s=$!; wait "$s" && kill -TERM $$ ) \
    >/dev/null 2>&1 &
WATCHDOG=$!

FAILS=0
PASSES=0
pass() { PASSES=$((PASSES + 1)); echo "PASS $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }
check() { local name="$1" ok="$2"; shift 2; if [ "$ok" = 1 ]; then pass "$name: $*"; else fail "$name: $*"; fi; }

# HTTP to our servers; FMS_API_KEY, when set, is sent as X-API-Key (a server with API auth).
hcurl() {
    if [ -n "${FMS_API_KEY:-}" ]; then curl -sf --max-time 3 -H "X-API-Key: $FMS_API_KEY" "$@"
    else curl -sf --max-time 3 "$@"; fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }
# start NAME CMD...: runs CMD in the background, output in $TMP/NAME.log; sets LAST_PID.
start() {
    local name="$1"; shift
    "$@" >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# http_of LOG: waits (20 s at most) for the "listening on http://..." line and prints the URL.
http_of() {
    local _
    for _ in $(seq 1 100); do
        if grep -q "listening on http://" "$1" 2>/dev/null; then
            grep -o 'http://[0-9.:]*' "$1" | head -1
            return 0
        fi
        sleep 0.2
    done
    echo "FAIL: no 'listening' line in $1:" >&2
    tail -20 "$1" >&2
    return 1
}
# robot URL ID: one line "presence mode seq stamp_ms operator" from URL/api/robots, or "absent".
robot() {
    hcurl "$1/api/robots" | python3 -c '
import json, sys
rid = sys.argv[1]
for r in json.load(sys.stdin):
    if r.get("id") == rid:
        s = r.get("state") or {}
        print(r.get("presence", "-"), s.get("mode", "-"), s.get("seq", "-"),
              s.get("stamp_ms", 0), s.get("teleop_operator") or "-")
        break
else:
    print("absent")' "$2" || echo "error"
}
# wait_for SECONDS CMD...: retries CMD every 0.2 s; sets WAITED (seconds, 1 decimal).
wait_for() {
    local limit="$1"; shift
    local t0 t1
    t0=$(now_ms)
    while :; do
        if "$@"; then
            t1=$(now_ms); WAITED=$(python3 -c "print(round(($t1-$t0)/1000,1))"); return 0
        fi
        t1=$(now_ms)
        if [ $((t1 - t0)) -ge $((limit * 1000)) ]; then WAITED="$limit+"; return 1; fi
        sleep 0.2
    done
}
online_with_state() { local r; r=$(robot "$1" "$2"); [ "${r%% *}" = ONLINE ] && [ "$(echo "$r" | cut -d' ' -f3)" != - ]; }
mode_is() { [ "$(robot "$1" "$2" | cut -d' ' -f2)" = "$3" ]; }
newer_than() { local r; r=$(robot "$1" "$2"); [ "${r%% *}" = ONLINE ] && [ "$(echo "$r" | cut -d' ' -f4)" -gt "$3" ]; }
# watch_absent URL ID SECONDS: true if ID never shows in /api/robots for SECONDS (polled at
# 5 Hz); sets SEEN to what was seen ("absent for Ns" or "APPEARED: <presence mode ...>").
watch_absent() {
    local end=$(( $(now_ms) + $3 * 1000 )) r
    SEEN="absent for $3s"
    while [ "$(now_ms)" -lt "$end" ]; do
        r=$(robot "$1" "$2")
        [ "$r" != absent ] && SEEN="APPEARED: $r"
        sleep 0.2
    done
    [ "${SEEN%%:*}" != APPEARED ]
}
client() { timeout 30 "$PY" "$ACLDIR/acl_client.py" "$@"; }
jget() { python3 -c 'import json,sys; d=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]; print(eval(sys.argv[2], {"d": d, "len": len}))' "$@"; }

# --- certificates and configurations --------------------------------------------------------
CERTS="$TMP/certs"
"$ACLDIR/make_certs.sh" "$CERTS" --router --san "DNS:localhost,IP:127.0.0.1" --days 2 \
    r1 r2 r3 fms-phone fms-server
"$ACLDIR/make_certs.sh" "$TMP/rogue" --days 2 r2
echo "== certificates in $CERTS (CA, router, r1, r2, r3, fms-phone, fms-server); rogue CA's r2 in $TMP/rogue"

# Client configs from the templates: /etc/fms/zenoh/robot{,-key}.pem -> DIR/NAME{,-key}.pem.
client_conf() { # NAME CERTDIR OUT
    sed -e "s#/etc/fms/zenoh/robot#$2/$1#g" -e "s#/etc/fms/zenoh/ca.pem#$CERTS/ca.pem#g" \
        "$ROOT/config/zenoh/robot-mtls.json5" >"$3"
}
for n in r1 r2 r3 fms-phone fms-server; do client_conf "$n" "$CERTS" "$TMP/$n.json5"; done
client_conf r2 "$TMP/rogue" "$TMP/rogue-r2.json5"
sed -e "s#/etc/fms/zenoh/#$CERTS/#g" "$ROOT/config/zenoh/client-tls.json5" >"$TMP/nocert.json5"
sed -e "s#/etc/fms/zenoh/#$CERTS/#g" "$ROOT/config/zenoh/router-tls.json5" >"$TMP/router-tls.json5"
python3 "$ACLDIR/gen_acl.py" --robots r1,r2 --cert-dir "$CERTS" --out "$TMP/router-acl.json5"

# --- the fleet server with mTLS + ACL -------------------------------------------------------
ZPORT=$(free_port)
EP="tls/127.0.0.1:$ZPORT"
start server "$SERVER_BIN" --port 0 --bind 127.0.0.1 --data-dir "$TMP/data" \
    --frontend-dir /nonexistent --zenoh-config "$TMP/router-acl.json5" --zenoh-listen "$EP"
HTTP=$(http_of "$TMP/server.log")
echo "== fms_server $HTTP, embedded router on $EP (mTLS + access control for r1, r2)"

# a. the legitimate r1 -------------------------------------------------------------------------
start agent-r1 "$AGENT_BIN" --robot-id r1 --zenoh-endpoint "$EP" \
    --zenoh-config "$TMP/r1.json5" --interface mock --rate 10
ok=0; wait_for 20 online_with_state "$HTTP" r1 && ok=1
check "a  r1 agent over mTLS" "$ok" "r1 $(robot "$HTTP" r1 | cut -d' ' -f1-3) in /api/robots after ${WAITED}s"

# b. r1's certificate on r2's keys --------------------------------------------------------------
seq0=$(robot "$HTTP" r1 | cut -d' ' -f3)
client "$EP" "$TMP/r1.json5" publish --robot r2 --seconds "$WINDOW" >"$TMP/b1.out" &
CPID=$!; PIDS+=("$CPID")
ok=0; watch_absent "$HTTP" r2 $((WINDOW + 1)) && ok=1
wait "$CPID" || true
seq1=$(robot "$HTTP" r1 | cut -d' ' -f3)
opened=$(jget "$TMP/b1.out" 'd[0]["opened"]' 2>/dev/null || echo "?")
sent=$(jget "$TMP/b1.out" 'd[-1].get("sent", 0)' 2>/dev/null || echo 0)
[ "$opened" = True ] && [ "$sent" -gt 0 ] && [ "$seq1" != - ] && [ "$seq0" != - ] && [ "$seq1" -gt "$seq0" ] || ok=0
check "b1 r1 cert spoofing r2" "$ok" "session opened=$opened, $sent RobotState puts on fms/robot/r2/state + token fms/robot/r2/alive: r2 $SEEN; r1's own seq $seq0 -> $seq1 meanwhile"

t0=$(now_ms)
client "$EP" "$TMP/r2.json5" publish --robot r2 --seconds 3 >"$TMP/b2.out" &
CPID=$!; PIDS+=("$CPID")
ok=0; wait_for 10 online_with_state "$HTTP" r2 && ok=1
wait "$CPID" || true
check "b2 control: same client, r2 cert" "$ok" "identical payload and token from r2's own certificate: r2 ONLINE after ${WAITED}s"

client "$EP" "$TMP/r3.json5" publish --robot r3 --seconds "$WINDOW" >"$TMP/b3.out" &
CPID=$!; PIDS+=("$CPID")
ok=0; watch_absent "$HTTP" r3 $((WINDOW + 1)) && ok=1
wait "$CPID" || true
opened=$(jget "$TMP/b3.out" 'd[0]["opened"]' 2>/dev/null || echo "?")
[ "$opened" = True ] || ok=0
check "b3 CN=r3 not in the rules" "$ok" "valid CA certificate, session opened=$opened, publishes fms/robot/r3/state: r3 $SEEN (default deny)"

# c. commands: r2's legit agent, r1's certificate forging and sniffing --------------------------
t0=$(now_ms)
start agent-r2 "$AGENT_BIN" --robot-id r2 --zenoh-endpoint "$EP" \
    --zenoh-config "$TMP/r2.json5" --interface mock --rate 10
ok=0; wait_for 20 newer_than "$HTTP" r2 "$t0" && ok=1
check "c0 r2 agent over mTLS" "$ok" "r2 $(robot "$HTTP" r2 | cut -d' ' -f1-2) with a fresh state after ${WAITED}s"

client "$EP" "$TMP/r1.json5" command --robot r2 --kind estop --seconds 1 >"$TMP/c1.out" || true
sleep 2
mode=$(robot "$HTTP" r2 | cut -d' ' -f2)
sent=$(jget "$TMP/c1.out" 'd[-1].get("sent", 0)' 2>/dev/null || echo 0)
ok=0; [ "$sent" -gt 0 ] && [ "$mode" != ESTOPPED ] && ok=1
check "c1 r1 cert forging r2's e-stop" "$ok" "$sent EstopCommand puts on fms/robot/r2/cmd/emergency_stop: r2 mode $mode 2s later"

# e. the service identities, before c2 e-stops the robots (teleop needs a robot not e-stopped).
# The phone identity may drive (teleop) any robot; the robot's lease then names the operator.
client "$EP" "$TMP/fms-phone.json5" command --robot r1 --kind teleop --seconds 2.5 >"$TMP/e1.out" &
CPID=$!; PIDS+=("$CPID")
ok=0; wait_for 3 mode_is "$HTTP" r1 TELEOP && ok=1
op=$(robot "$HTTP" r1 | cut -d' ' -f5)
wait "$CPID" || true
check "e1 fms-phone cert: teleop r1" "$ok" "r1 mode TELEOP (operator $op) after ${WAITED}s"

start phone "$SERVER_BIN" phone --port 0 --bind 127.0.0.1 --frontend-dir /nonexistent \
    --zenoh-endpoint "$EP" --zenoh-config "$TMP/fms-phone.json5"
PHONE_PID=$LAST_PID
PHTTP=$(http_of "$TMP/phone.log")
phone_sees() { hcurl "$PHTTP/api/robots" | python3 -c 'import json,sys; ids=sorted(r["id"] for r in json.load(sys.stdin)); print(",".join(ids)); sys.exit(0 if ids==["r1","r2"] else 1)' >/dev/null; }
ok=0; wait_for 10 phone_sees && ok=1
seen=$(hcurl "$PHTTP/api/robots" | python3 -c 'import json,sys; print(",".join(sorted(r["id"] for r in json.load(sys.stdin))))' || echo "?")
check "e2 fms_server phone (fms-phone cert)" "$ok" "its /api/robots lists $seen after ${WAITED}s"
stop "$PHONE_PID"

start server-client "$SERVER_BIN" --port 0 --bind 127.0.0.1 --data-dir "$TMP/data2" \
    --frontend-dir /nonexistent --zenoh-endpoint "$EP" --zenoh-config "$TMP/fms-server.json5"
SC_PID=$LAST_PID
SCHTTP=$(http_of "$TMP/server-client.log")
both_online() { online_with_state "$SCHTTP" r1 && online_with_state "$SCHTTP" r2; }
ok=0; wait_for 10 both_online && ok=1
check "e3 fms_server as client (fms-server cert)" "$ok" "sees r1 $(robot "$SCHTTP" r1 | cut -d' ' -f1) and r2 $(robot "$SCHTTP" r2 | cut -d' ' -f1) after ${WAITED}s"
stop "$SC_PID"

client "$EP" "$TMP/r1.json5" sniff --seconds 6 --key 'fms/robot/r2/cmd/**' \
    --key 'fms/robot/*/cmd/**' --key 'fms/robot/**' --key 'fms/robot/r1/cmd/**' \
    --liveliness 'fms/robot/**' >"$TMP/c2.out" &
CPID=$!; PIDS+=("$CPID")
wait_for 10 grep -q '"ready"' "$TMP/c2.out" || true
sleep 0.5
hcurl -X POST "$HTTP/api/robots/r2/emergency-stop" >/dev/null || echo "(POST r2 e-stop failed)"
hcurl -X POST "$HTTP/api/robots/r1/emergency-stop" >/dev/null || echo "(POST r1 e-stop failed)"
ok_r2=0; wait_for 5 mode_is "$HTTP" r2 ESTOPPED && ok_r2=1
r2_wait=$WAITED
ok_r1=0; wait_for 5 mode_is "$HTTP" r1 ESTOPPED && ok_r1=1
wait "$CPID" || true
n_r2=$(jget "$TMP/c2.out" 'len([x for x in d[-1].get("received", []) if "/r2/" in x["key"]])' 2>/dev/null || echo "?")
n_tok=$(jget "$TMP/c2.out" 'len([x for x in d[-1].get("received", []) if x["via"].startswith("liveliness")])' 2>/dev/null || echo "?")
n_r1=$(jget "$TMP/c2.out" 'len([x for x in d[-1].get("received", []) if x["via"] == "fms/robot/r1/cmd/**"])' 2>/dev/null || echo "?")
ok=0; [ "$n_r2" = 0 ] && [ "$n_tok" = 0 ] && [ "$ok_r2" = 1 ] && ok=1
check "c2 r1 cert sniffing r2's commands" "$ok" "server e-stopped r2: r2's agent ESTOPPED after ${r2_wait}s; the r1-cert subscriber on fms/robot/r2/cmd/**, fms/robot/*/cmd/**, fms/robot/** received $n_r2 r2 samples and $n_tok liveliness tokens"
ok=0; [ "$ok_r1" = 1 ] && [ "$n_r1" != "?" ] && [ "$n_r1" -ge 1 ] && ok=1
check "c3 control: r1 cert, own commands" "$ok" "the same subscriber received $n_r1 sample(s) on fms/robot/r1/cmd/** (r1's e-stop); r1 ESTOPPED"

# d. refused at connection ----------------------------------------------------------------------
nocert0=$(grep -c "peer sent no certificates" "$TMP/server.log" || true)
client "$EP" "$TMP/nocert.json5" connect >"$TMP/d1.out" || true
opened=$(jget "$TMP/d1.out" 'd[0]["opened"]' 2>/dev/null || echo "?")
ms=$(jget "$TMP/d1.out" 'd[0]["ms"]' 2>/dev/null || echo "?")
nocert1=$(grep -c "peer sent no certificates" "$TMP/server.log" || true)
ok=0; [ "$opened" = False ] && [ "$nocert1" -gt "$nocert0" ] && ok=1
check "d1 TLS client without certificate" "$ok" "session opened=$opened (client gave up after ${ms}ms); router log 'peer sent no certificates' x$((nocert1 - nocert0))"

bad0=$(grep -c "invalid peer certificate" "$TMP/server.log" || true)
client "$EP" "$TMP/rogue-r2.json5" connect >"$TMP/d2.out" || true
opened=$(jget "$TMP/d2.out" 'd[0]["opened"]' 2>/dev/null || echo "?")
bad1=$(grep -c "invalid peer certificate" "$TMP/server.log" || true)
why=$(grep -o "invalid peer certificate: [A-Za-z]*" "$TMP/server.log" | tail -1 | cut -d' ' -f4)
ok=0; [ "$opened" = False ] && [ "$bad1" -gt "$bad0" ] && ok=1
check "d2 CN=r2 from another CA" "$ok" "session opened=$opened; router log 'invalid peer certificate: $why' x$((bad1 - bad0))"

# f. the TLS-only templates -------------------------------------------------------------------
ZPORT2=$(free_port)
EP2="tls/127.0.0.1:$ZPORT2"
start server-tls "$SERVER_BIN" --port 0 --bind 127.0.0.1 --data-dir "$TMP/data3" \
    --frontend-dir /nonexistent --zenoh-config "$TMP/router-tls.json5" --zenoh-listen "$EP2"
THTTP=$(http_of "$TMP/server-tls.log")
start agent-tls "$AGENT_BIN" --robot-id r3 --zenoh-endpoint "$EP2" \
    --zenoh-config "$TMP/nocert.json5" --interface mock --rate 10
ok=0; wait_for 20 online_with_state "$THTTP" r3 && ok=1
check "f  TLS only (router-tls + client-tls)" "$ok" "agent without client certificate: r3 $(robot "$THTTP" r3 | cut -d' ' -f1-2) after ${WAITED}s"

# g. the committed template is the generator's output ---------------------------------------------
ok=0
python3 "$ACLDIR/gen_acl.py" --robots r1,r2 --out "$TMP/gen.json5" \
    && cmp -s "$TMP/gen.json5" "$ROOT/config/zenoh/router-mtls-acl.json5" && ok=1
check "g  config/zenoh/router-mtls-acl.json5" "$ok" "equals gen_acl.py --robots r1,r2"

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
