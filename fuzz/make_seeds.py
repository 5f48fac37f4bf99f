#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/) and the JSON dictionary.

- robot_msgs, command_msgs: the tagged JSON examples of docs/protocol.md (```json fms:Type),
  extracted like fms_msgs/tests/protocol_doc.rs does, compacted to one line.
- keys: a few keys and ids.
- ros_cdr: CDR (XCDR1, the 4-byte encapsulation header then the body; alignment counts from
  the body start) of each ROS 2 message the ros2dds backend decodes, in the layout of
  fms_agent/src/robot/ros_msgs/messages.rs.
- dicts/json.dict: the field names and enum values of those examples, dicts/keys.dict: key
  chunks; for libFuzzer -dict (scripts/check_fuzz.sh passes dicts/<target>.dict when present,
  json.dict to the JSON targets).

Re-run after changing docs/protocol.md or the messages: python3 fuzz/make_seeds.py
"""
import json
import re
import shutil
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
DOC = FUZZ.parent / "docs" / "protocol.md"

ROBOT = {"RobotState", "RobotEvent", "LegacyPose", "LegacyBattery", "LegacyStatus"}
COMMAND = {"TaskCommand", "CancelCommand", "EstopCommand", "TeleopCommand", "SystemEvent"}


def examples():
    out, open_ = [], None
    for no, line in enumerate(DOC.read_text().splitlines(), 1):
        if open_ is None:
            if line.startswith("```"):
                open_ = (no, line[3:].strip(), [])
        elif line.strip() == "```":
            start, info, body = open_
            if info.startswith("json fms:"):
                out.append((start, info[len("json fms:"):], "\n".join(body)))
            open_ = None
        else:
            open_[2].append(line)
    return out


def reset(name):
    d = FUZZ / "corpus" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def json_seeds():
    dirs = {"robot_msgs": reset("robot_msgs"), "command_msgs": reset("command_msgs")}
    tokens = set()
    for line, ty, body in examples():
        value = json.loads(body)
        target = "robot_msgs" if ty in ROBOT else "command_msgs" if ty in COMMAND else None
        assert target, f"docs/protocol.md:{line}: type {ty} belongs to no target"
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        (dirs[target] / f"{ty}-line{line}.json").write_text(compact)
        tokens.update(re.findall(r'"[A-Za-z_][A-Za-z0-9_]*"', compact))
    # Enum values the examples may not show.
    for mode in ["IDLE", "NAVIGATING", "PAUSED", "CHARGING", "ESTOPPED", "ERROR", "TELEOP"]:
        tokens.add(f'"{mode}"')
    for word in ["low", "normal", "high", "urgent", "pose", "waypoints", "status"]:
        tokens.add(f'"{word}"')
    dict_lines = ["# Field names and enum values of docs/protocol.md (fuzz/make_seeds.py)."]
    dict_lines += [json.dumps(t) for t in sorted(tokens)]
    dict_lines += [json.dumps(t) for t in ["null", "true", "false", "1e308", "-0.0", "18446744073709551615", '\\u0000']]
    (FUZZ / "dicts").mkdir(exist_ok=True)
    (FUZZ / "dicts" / "json.dict").write_text("\n".join(dict_lines) + "\n")


def key_seeds():
    d = reset("keys")
    seeds = {
        "state": "fms/robot/tb3_1/state",
        "estop": "fms/robot/robot-dev-001/cmd/emergency_stop",
        "legacy_pose": "fms/robot/AMR.7/state/pose",
        "heartbeat": "fms/robot/a/heartbeat",
        "system": "fms/system/event",
        "wildcard": "fms/robot/*/state",
        "unicode_id": "fms/robot/ünïcode/alive",
        "json_id": '"tb3_1"',
    }
    for name, s in seeds.items():
        (d / name).write_bytes(s.encode())
    suffixes = ["state", "event", "alive", "cmd/task", "cmd/cancel", "cmd/emergency_stop",
                "cmd/teleop", "state/pose", "state/battery", "state/status", "heartbeat"]
    tokens = ["fms/robot/", "fms/system/event", "/"] + suffixes + ["*", "**", "$*", "?", "#"]
    lines = ["# Key chunks of fms_msgs::keys (fuzz/make_seeds.py)."]
    lines += [json.dumps(t) for t in tokens]
    (FUZZ / "dicts").mkdir(exist_ok=True)
    (FUZZ / "dicts" / "keys.dict").write_text("\n".join(lines) + "\n")


class Cdr:
    """XCDR1 writer: primitives aligned to their size from the start of the body."""

    def __init__(self, big_endian=False):
        self.e = ">" if big_endian else "<"
        self.header = b"\x00\x00\x00\x00" if big_endian else b"\x00\x01\x00\x00"
        self.body = bytearray()

    def prim(self, fmt, *values):
        size = struct.calcsize("<" + fmt[0])
        self.body += b"\x00" * (-len(self.body) % size)
        self.body += struct.pack(self.e + fmt, *values)
        return self

    def string(self, s):
        b = s.encode() + b"\x00"
        return self.prim("I", len(b)).raw(b)

    def raw(self, b):
        self.body += b
        return self

    def bytes(self):
        return self.header + bytes(self.body)


def header(w, sec, nanosec, frame):
    w.prim("i", sec).prim("I", nanosec).string(frame)


def ros_pose(w, x, y, qz, qw):
    for v in (x, y, 0.0, 0.0, 0.0, qz, qw):
        w.prim("d", v)


def covariance(w):
    for i in range(36):
        w.prim("d", 0.01 if i % 7 == 0 else 0.0)


def odometry(big_endian=False):
    w = Cdr(big_endian)
    header(w, 1767225600, 500_000_000, "odom")
    w.string("base_footprint")
    ros_pose(w, 1.5, -2.0, 0.7071068, 0.7071068)
    covariance(w)
    for v in (0.3, 0.0, 0.0, 0.0, 0.0, 0.1):
        w.prim("d", v)
    covariance(w)
    return w.bytes()


def amcl_pose():
    w = Cdr()
    header(w, 1767225600, 400_000_000, "map")
    ros_pose(w, 3.25, -1.5, 0.0, 1.0)
    covariance(w)
    return w.bytes()


def battery_state():
    w = Cdr()
    header(w, 1767225600, 0, "battery")
    nan = float("nan")
    for v in (12.1, 25.0, -1.5, nan, nan, 20.0, 0.76):  # voltage .. percentage
        w.prim("f", v)
    w.prim("B", 2).prim("B", 1).prim("B", 2).prim("?", True)  # discharging, good, Li-ion
    w.prim("I", 3)
    for v in (4.03, 4.04, 4.03):
        w.prim("f", v)
    w.prim("I", 0)
    w.string("base").string("SN-0001")
    return w.bytes()


UUID = bytes(range(16))


def feedback_message():
    w = Cdr().raw(UUID)
    header(w, 1767225601, 0, "map")
    ros_pose(w, 2.0, 1.0, 0.0, 1.0)
    w.prim("i", 12).prim("I", 0)  # navigation_time
    w.prim("i", 30).prim("I", 500)  # estimated_time_remaining
    w.prim("h", 1).prim("f", 4.25)
    return w.bytes()


def send_goal_response():
    return Cdr().prim("?", True).prim("i", 1767225600).prim("I", 42).bytes()


def goal_info(w, sec):
    w.raw(UUID).prim("i", sec).prim("I", 0)


def cancel_goal_response():
    w = Cdr().prim("b", 0).prim("I", 1)
    goal_info(w, 1767225600)
    return w.bytes()


def goal_status_array():
    w = Cdr().prim("I", 2)
    goal_info(w, 1767225600)
    w.prim("b", 2)  # EXECUTING
    goal_info(w, 1767225500)
    w.prim("b", 4)  # SUCCEEDED
    return w.bytes()


def get_result_jazzy():
    return Cdr().prim("b", 6).prim("H", 104).string("no valid path").bytes()


def get_result_iron():
    return Cdr().prim("b", 6).prim("H", 104).bytes()


def get_result_humble():
    return Cdr().prim("b", 4).prim("B", 0).bytes()  # std_msgs/Empty is one byte


def cdr_seeds():
    d = reset("ros_cdr")
    seeds = {
        "odometry": odometry(),
        "odometry_be": odometry(big_endian=True),
        "amcl_pose": amcl_pose(),
        "battery_state": battery_state(),
        "feedback_message": feedback_message(),
        "send_goal_response": send_goal_response(),
        "cancel_goal_response": cancel_goal_response(),
        "goal_status_array": goal_status_array(),
        "get_result_jazzy": get_result_jazzy(),
        "get_result_iron": get_result_iron(),
        "get_result_humble": get_result_humble(),
    }
    for name, b in seeds.items():
        (d / f"{name}.cdr").write_bytes(b)


if __name__ == "__main__":
    json_seeds()
    key_seeds()
    cdr_seeds()
    for d in sorted((FUZZ / "corpus").iterdir()):
        print(f"{d.relative_to(FUZZ)}: {len(list(d.iterdir()))} seeds")
