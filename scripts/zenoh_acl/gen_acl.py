#!/usr/bin/env python3
"""Writes the Zenoh router configuration (JSON5) for fms: TLS with mutual authentication
(mTLS) and access control with one identity per robot.

Zenoh's access control names concrete key expressions and certificate common names, so the
rules for each robot are spelled out here from the robot list:

    scripts/zenoh_acl/gen_acl.py --robots tb3_1,tb3_2 --cert-dir /etc/fms/zenoh \\
        --out /etc/fms/zenoh/router.json5
    fms_server --zenoh-config /etc/fms/zenoh/router.json5 --zenoh-listen tls/0.0.0.0:7447

A robot is the holder of a client certificate, signed by the fleet CA, whose subject common
name (CN) is its robot id. It may only:

  * put (publish) on   fms/robot/<id>/state, fms/robot/<id>/event and the legacy
                       fms/robot/<id>/state/*, fms/robot/<id>/heartbeat        (ingress)
  * declare the liveliness token fms/robot/<id>/alive                         (ingress)
  * subscribe to       fms/robot/<id>/cmd/**                                   (ingress)
  * receive puts on    fms/robot/<id>/cmd/**                                   (egress)
  * learn of the fleet server's subscriptions fms/robot/*/state|event|...      (egress
    declarations only: this is what lets a client publisher know its data is wanted)

Everything else is denied (default_permission "deny"). The fleet server that embeds the
router is not subject to the rules (its session is inside the router: Zenoh applies access
control to remote transports only). `--server-cn` names the certificate of an fms_server that
connects as a client to a separate router; `--phone-cn` the one of `fms_server phone`.

config/zenoh/router-mtls-acl.json5 is this script's output for `--robots r1,r2`.
Standard library only (Python 3.8+).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Characters a robot id may not hold (fms_msgs::ids), plus what breaks a key-expression chunk.
FORBIDDEN = set("/*$?#")

# The fleet server's subscriptions (fms_server/src/link.rs): a robot learns of them (egress
# declare_subscriber) so that its publishers know their data is wanted.
SERVER_SUBSCRIPTIONS = [
    "fms/robot/*/state",
    "fms/robot/*/event",
    "fms/robot/*/state/*",
    "fms/robot/*/heartbeat",
]


def check_id(rid: str, what: str) -> str:
    if not rid:
        raise SystemExit(f"gen_acl: empty {what}")
    if len(rid.encode()) > 64:
        raise SystemExit(f"gen_acl: {what} {rid!r} is longer than 64 bytes")
    bad = [c for c in rid if c in FORBIDDEN or c.isspace() or not c.isprintable()]
    if bad:
        raise SystemExit(f"gen_acl: {what} {rid!r} contains {bad[0]!r}")
    if rid.startswith("@"):
        # '@' starts a verbatim chunk: no wildcard (fms/robot/*/state) would match it.
        raise SystemExit(f"gen_acl: {what} {rid!r} starts with '@' (a Zenoh verbatim chunk)")
    return rid


def robot_rules(rid: str) -> list[dict]:
    p = f"fms/robot/{rid}"
    return [
        {
            "//": [f"Robot {rid}: publish (put) its state and events, and the legacy split keys.",
                   "A declared publisher is not a message of its own: its puts are checked."],
            "id": f"robot:{rid}:publish",
            "messages": ["put"],
            "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [f"{p}/state", f"{p}/event", f"{p}/state/*", f"{p}/heartbeat"],
        },
        {
            "//": f"Robot {rid}: hold its liveliness token (presence) and no other.",
            "id": f"robot:{rid}:alive",
            "messages": ["liveliness_token"],
            "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [f"{p}/alive"],
        },
        {
            "//": f"Robot {rid}: subscribe to its own commands (the agent declares .../cmd/*).",
            "id": f"robot:{rid}:cmd-subscribe",
            "messages": ["declare_subscriber"],
            "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [f"{p}/cmd/**"],
        },
        {
            "//": f"Robot {rid}: the router may deliver its own commands to it, nothing else.",
            "id": f"robot:{rid}:cmd-receive",
            "messages": ["put"],
            "flows": ["egress"],
            "permission": "allow",
            "key_exprs": [f"{p}/cmd/**"],
        },
    ]


def build(robots: list[str], server_cn: str | None, phone_cn: str | None) -> dict:
    rules: list[dict] = [
        {
            "//": ["Every robot: learn that the fleet server subscribes to states and events.",
                   "Needed: a Zenoh client publisher sends only while it knows of a matching",
                   "subscriber, so without this a robot's state stops after the first message."],
            "id": "robots:see-server-subscriptions",
            "messages": ["declare_subscriber"],
            "flows": ["egress"],
            "permission": "allow",
            "key_exprs": SERVER_SUBSCRIPTIONS,
        }
    ]
    subjects: list[dict] = []
    policies: list[dict] = []
    if server_cn:
        # fms_server as a client of a separate router (--zenoh-endpoint): the whole fms tree.
        rules.append(
            {
                "//": "fms_server as a client of a separate router: the whole fms/** tree.",
                "id": "server:all",
                "messages": [
                    "put", "delete", "declare_subscriber", "query", "reply", "declare_queryable",
                    "liveliness_token", "liveliness_query", "declare_liveliness_subscriber",
                ],
                "flows": ["ingress", "egress"],
                "permission": "allow",
                "key_exprs": ["fms/**"],
            }
        )
        subjects.append({"id": "server", "cert_common_names": [server_cn]})
        policies.append({"id": "server", "rules": ["server:all"], "subjects": ["server"]})
    if phone_cn:
        # fms_server phone: reads every robot's state, sends cmd/teleop.
        rules += [
            {
                "//": "fms_server phone: subscribe to every robot's state ...",
                "id": "phone:states",
                "messages": ["declare_subscriber"],
                "flows": ["ingress"],
                "permission": "allow",
                "key_exprs": ["fms/robot/*/state"],
            },
            {
                "//": "... and receive it,",
                "id": "phone:states-receive",
                "messages": ["put"],
                "flows": ["egress"],
                "permission": "allow",
                "key_exprs": ["fms/robot/*/state"],
            },
            {
                "//": "send teleop commands (the robot's lease decides who drives),",
                "id": "phone:teleop",
                "messages": ["put"],
                "flows": ["ingress"],
                "permission": "allow",
                "key_exprs": ["fms/robot/*/cmd/teleop"],
            },
            {
                "//": "and learn of the robots' command subscriptions (see above).",
                "id": "phone:see-robot-subscriptions",
                "messages": ["declare_subscriber"],
                "flows": ["egress"],
                "permission": "allow",
                "key_exprs": ["fms/robot/*/cmd/**"],
            },
        ]
        subjects.append({"id": "phone", "cert_common_names": [phone_cn]})
        policies.append(
            {
                "id": "phone",
                "rules": [
                    "phone:states", "phone:states-receive", "phone:teleop",
                    "phone:see-robot-subscriptions",
                ],
                "subjects": ["phone"],
            }
        )
    for rid in robots:
        rr = robot_rules(rid)
        rules += rr
        subjects.append({"//": f"The holder of a CA-signed client certificate with CN={rid}.",
                         "id": f"robot:{rid}", "cert_common_names": [rid]})
        policies.append(
            {
                "id": f"robot:{rid}",
                "rules": ["robots:see-server-subscriptions"] + [r["id"] for r in rr],
                "subjects": [f"robot:{rid}"],
            }
        )
    return {
        "enabled": True,
        "//": ["Anything no rule allows is refused: by the router on ingress (the message is",
               "dropped, the declaration ignored) and on egress (never sent to that client)."],
        "default_permission": "deny",
        "rules": rules,
        "subjects": subjects,
        "policies": policies,
    }


def dump(value, indent: int = 0) -> str:
    """JSON5-friendly pretty printer: short lists of scalars on one line."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for k, v in value.items():
            if k.startswith("//"):  # "//", "//2", ...: comment line(s) in the output
                items += [f"{pad}  // {line}" for line in ([v] if isinstance(v, str) else v)]
            else:
                items.append(f"{pad}  {k}: {dump(v, indent + 1)},")
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            one = "[" + ", ".join(json.dumps(v) for v in value) + "]"
            if len(one) + len(pad) < 96:
                return one
        items = [f"{pad}  {dump(v, indent + 1)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def render(args, robots: list[str]) -> str:
    d = args.cert_dir.rstrip("/")
    tls = {
        "//": "The fleet CA: verifies the client certificates (robots, phone, server).",
        "root_ca_certificate": f"{d}/ca.pem",
        "//2": "The router's certificate (SANs: the names/addresses robots connect to) and key.",
        "listen_private_key": f"{d}/router-key.pem",
        "listen_certificate": f"{d}/router.pem",
        "//3": ["mTLS: a client without a certificate signed by the CA is refused in the TLS",
                "handshake, before any Zenoh message; the certificate's CN names the subject."],
        "enable_mtls": True,
        "verify_name_on_connect": True,
        "//4": "Close a link when the peer's certificate expires.",
        "close_link_on_expiration": True,
    }
    acl = build(robots, args.server_cn, args.phone_cn)
    header = [
        "// fms: Zenoh router configuration with mTLS and per-robot access control.",
        f"// Generated by scripts/zenoh_acl/gen_acl.py for robots: {', '.join(robots)}",
        "// Regenerate (do not hand-edit the rules) when a robot is added or removed:",
        f"//   scripts/zenoh_acl/gen_acl.py --robots {','.join(robots)} --cert-dir {d} --out FILE",
        "// Use: fms_server --zenoh-config FILE --zenoh-listen tls/0.0.0.0:7447",
        "// (fms_server sets mode \"router\" and the listen endpoints on top of this file.)",
        "// A robot is identified by the common name (CN) of its client certificate = its robot",
        "// id; it may publish only fms/robot/<id>/{state,event,state/*,heartbeat}, declare only",
        "// the token fms/robot/<id>/alive, subscribe to and receive only fms/robot/<id>/cmd/**.",
        "// Everything else is denied. See config/zenoh/README.md and docs/security.md.",
    ]
    body = {
        "transport": {"link": {"tls": tls}},
        # Robots join as clients of this router; no discovery outside the configured links.
        "scouting": {"multicast": {"enabled": False}},
        "access_control": acl,
    }
    return "\n".join(header) + "\n" + dump(body) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", help="comma-separated robot ids (certificate CN = robot id)")
    ap.add_argument("--robots-file", help="file with one robot id per line (# comments)")
    ap.add_argument("--out", help="output file (default: stdout)")
    ap.add_argument("--cert-dir", default="/etc/fms/zenoh",
                    help="directory of ca.pem, router.pem, router-key.pem (default %(default)s)")
    ap.add_argument("--server-cn", default="fms-server",
                    help="CN of an fms_server that joins as a client ('' for none; default %(default)s)")
    ap.add_argument("--phone-cn", default="fms-phone",
                    help="CN of `fms_server phone` ('' for none; default %(default)s)")
    args = ap.parse_args(argv)

    robots: list[str] = []
    if args.robots:
        robots += [r.strip() for r in args.robots.split(",") if r.strip()]
    if args.robots_file:
        for line in Path(args.robots_file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                robots.append(line)
    if not robots:
        ap.error("no robots: give --robots and/or --robots-file")
    for r in robots:
        check_id(r, "robot id")
    if len(set(robots)) != len(robots):
        raise SystemExit("gen_acl: a robot id is listed twice")
    args.server_cn = args.server_cn or None
    args.phone_cn = args.phone_cn or None
    for cn in (args.server_cn, args.phone_cn):
        if cn and cn in robots:
            # A robot certificate with this CN would get the service's rights.
            raise SystemExit(f"gen_acl: robot id {cn!r} is also a service identity's CN")
    if args.server_cn and args.server_cn == args.phone_cn:
        raise SystemExit("gen_acl: --server-cn and --phone-cn must differ")

    text = render(args, robots)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
