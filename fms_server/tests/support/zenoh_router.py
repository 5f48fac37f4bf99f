"""An independent Zenoh router for the replica tests: eclipse-zenoh (PyPI), not our code.

usage: zenoh_router.py [--config FILE] LISTEN_ENDPOINT [CONNECT_ENDPOINT ...]

With --config, starts from that Zenoh configuration file (e.g. config/zenoh/router-mesh.json5)
and replaces its endpoints with the ones given. Prints "router ready" once its session is open, then routes until killed.
"""
import json
import sys
import time

import zenoh


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--config"]:
        conf = zenoh.Config.from_file(args[1])
        args = args[2:]
    else:
        conf = zenoh.Config()
    listen, connect = args[0], args[1:]
    conf.insert_json5("mode", '"router"')
    conf.insert_json5("listen/endpoints", json.dumps([listen]))
    if connect:
        conf.insert_json5("connect/endpoints", json.dumps(connect))
        # Keep retrying a peer router that is not up yet, or went away.
        conf.insert_json5("connect/timeout_ms", "-1")
    conf.insert_json5("scouting/multicast/enabled", "false")
    session = zenoh.open(conf)
    print(f"router ready {session.zid()}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
