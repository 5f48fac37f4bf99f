#!/usr/bin/env python3
"""An independent Zenoh client (eclipse-zenoh, Python) for scripts/check_zenoh_acl.sh: it
plays a robot, honest or not, against the fms router and prints what happened as one JSON
line per step on stdout.

  acl_client.py ENDPOINT CONFIG publish --robot ID --seconds S
      opens a session with CONFIG (a robot-mtls.json5 made for some certificate), declares
      the liveliness token fms/robot/ID/alive and publishes a valid RobotState on
      fms/robot/ID/state at 10 Hz for S seconds.
  acl_client.py ENDPOINT CONFIG sniff --seconds S --key KE [--key KE ...] [--liveliness KE]
      subscribes to each KE (and to liveliness tokens on KE) for S seconds; prints
      {"ready": ...} once declared, then the keys received.
  acl_client.py ENDPOINT CONFIG command --robot ID --kind estop|teleop --seconds S
      puts, at 10 Hz for S seconds, an EstopCommand {"engage": true} on
      fms/robot/ID/cmd/emergency_stop or a TeleopCommand (operator "acl-check") on
      fms/robot/ID/cmd/teleop: a forged command unless the certificate may send it.
  acl_client.py ENDPOINT CONFIG connect
      only opens the session (with a short connect timeout) and reports whether it opened.

Exit status: 0 when the session opened, 3 when it did not; the verdicts are the caller's.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import zenoh


def out(**kv) -> None:
    print(json.dumps(kv), flush=True)


def unix_ms() -> int:
    return int(time.time() * 1000)


def robot_state(seq: int) -> bytes:
    # Same shape as docs/protocol.md's RobotState example (an idle robot).
    return json.dumps(
        {
            "protocol": 1,
            "seq": seq,
            "stamp_ms": unix_ms(),
            "pose": {"x": 3.25, "y": -1.5, "yaw": 1.57, "frame": "map"},
            "velocity": {"linear": 0.0, "angular": 0.0},
            "battery": {"percentage": 76.5, "voltage": 12.1, "charging": False},
            "mode": "IDLE",
        }
    ).encode()


def open_session(endpoint: str, config: str, timeout_ms: int) -> zenoh.Session:
    conf = zenoh.Config.from_file(config)
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
    conf.insert_json5("connect/timeout_ms", str(timeout_ms))
    conf.insert_json5("connect/exit_on_failure", "true")
    conf.insert_json5("scouting/multicast/enabled", "false")
    return zenoh.open(conf)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("endpoint")
    ap.add_argument("config")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--robot", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    s = sub.add_parser("sniff")
    s.add_argument("--key", action="append", default=[])
    s.add_argument("--liveliness", action="append", default=[])
    s.add_argument("--seconds", type=float, default=5.0)
    c = sub.add_parser("command")
    c.add_argument("--robot", required=True)
    c.add_argument("--kind", choices=["estop", "teleop"], default="estop")
    c.add_argument("--seconds", type=float, default=1.0)
    sub.add_parser("connect")
    args = ap.parse_args()

    zenoh.init_log_from_env_or("error")
    t0 = time.monotonic()
    try:
        session = open_session(args.endpoint, args.config, 4000)
    except Exception as e:  # zenoh.ZError: the link or the handshake was refused
        out(step="open", opened=False, error=str(e)[:300],
            ms=round((time.monotonic() - t0) * 1000))
        return 3
    routers = [str(z) for z in session.info.routers_zid()]
    out(step="open", opened=bool(routers), zid=str(session.info.zid()), routers=routers,
        ms=round((time.monotonic() - t0) * 1000))
    if not routers:
        session.close()
        return 3

    if args.cmd == "publish":
        token = session.liveliness().declare_token(f"fms/robot/{args.robot}/alive")
        pub = session.declare_publisher(f"fms/robot/{args.robot}/state")
        sent = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            sent += 1
            pub.put(robot_state(sent))
            time.sleep(0.1)
        out(step="publish", key=f"fms/robot/{args.robot}/state", sent=sent,
            token=f"fms/robot/{args.robot}/alive")
        token.undeclare()
        pub.undeclare()
    elif args.cmd == "sniff":
        got: list[dict] = []
        lock = threading.Lock()

        def on_sample(via: str):
            def cb(sample: zenoh.Sample) -> None:
                with lock:
                    got.append({"via": via, "key": str(sample.key_expr)})
            return cb

        subs = [session.declare_subscriber(k, on_sample(k)) for k in args.key]
        subs += [session.liveliness().declare_subscriber(k, on_sample("liveliness " + k),
                                                         history=True)
                 for k in args.liveliness]
        out(step="ready", keys=args.key, liveliness=args.liveliness)
        time.sleep(args.seconds)
        for s_ in subs:
            s_.undeclare()
        with lock:
            out(step="sniff", received=got)
    elif args.cmd == "command":
        if args.kind == "estop":
            key = f"fms/robot/{args.robot}/cmd/emergency_stop"
            body = {"engage": True, "reason": "acl check"}
        else:
            key = f"fms/robot/{args.robot}/cmd/teleop"
            body = {"linear": 0.1, "angular": 0.0, "operator": "acl-check"}
        sent = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            session.put(key, json.dumps(body).encode())
            sent += 1
            time.sleep(0.1)
        out(step="command", key=key, sent=sent)
    session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
