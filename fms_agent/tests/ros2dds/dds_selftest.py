#!/usr/bin/env python3
"""DDS-only self test of fake_robot.py: no fms code, no zenoh, no ROS.

Starts fake_robot.py, then acts as rclpy on rmw_cyclonedds would, from a second Cyclone DDS
participant, and checks what zenoh-plugin-ros2dds relies on:

  * `ros_discovery_info` (read raw and parsed by hand the way the plugin does: 4-byte CDR
    header, 16-byte GIDs on Jazzy / 24 on Humble) announces the node and lists every rt/ rq/
    rr/ reader and writer of the fake robot's participant (as seen by DDS discovery), and
    those endpoints are keyless (GUID entity kind 0x03/0x04, which the plugin checks);
  * rt/odom, rt/amcl_pose, rt/battery_state carry XCDR1 (raw samples start 00 01 00 00, and
    re-serialising the decoded sample as XCDR1 gives the same bytes), the right frames and
    values, amcl_pose reaching a late reader (transient-local), odom at ~20 Hz;
  * the NavigateToPose action with the 16-byte request header: send_goal (the reply echoes
    the header), feedback with decreasing distance_remaining, get_result held until the end
    (SUCCEEDED; ABORTED with error_code/error_msg in abort mode), cancel_goal (return_code 0,
    the goal in goals_canceling, CANCELED), preemption (the old goal ABORTED), unknown goal
    (return_code 2), status (transient-local) and GET /goals, /cancels;
  * rt/cmd_vel: Twists published here show up in GET /cmd_vel.

Run it inside a network namespace of its own (scripts/check_ros2dds.sh does):
    dds_selftest.py [--distro jazzy|humble] [--namespace /tb3_1]
Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
"""

import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_robot as fr  # noqa: E402  (the message types and QoS helpers)
from cyclonedds._clayer import ddspy_take  # noqa: E402
from cyclonedds.builtin import (  # noqa: E402
    BuiltinDataReader,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
from cyclonedds.core import InstanceState, Policy, Qos, SampleState, ViewState  # noqa: E402
from cyclonedds.domain import DomainParticipant  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402

ANY = SampleState.Any | ViewState.Any | InstanceState.Any
CDR_LE = bytes([0, 1, 0, 0])

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def wait_for(fn, timeout, interval=0.02):
    """Calls fn until it returns something truthy or timeout seconds pass; returns the value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


class Control:
    def __init__(self, base):
        self.base = base

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path, body=None):
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())


# ---- raw CDR reading, as the plugin's `cdr` crate does (little-endian only here) -----------
class CdrReader:
    def __init__(self, buf):
        if buf[:4] != CDR_LE:
            raise ValueError(f"not a CDR_LE encapsulation: {buf[:4].hex()}")
        self.b = buf[4:]
        self.o = 0

    def align(self, n):
        self.o += (-self.o) % n

    def u32(self):
        self.align(4)
        v = struct.unpack_from("<I", self.b, self.o)[0]
        self.o += 4
        return v

    def raw(self, n):
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise ValueError("short buffer")
        self.o += n
        return bytes(v)

    def string(self):
        n = self.u32()
        s = self.raw(n)
        if not s.endswith(b"\0"):
            raise ValueError("string without NUL")
        return s[:-1].decode()


def parse_participant_entities_info(buf, gid_len):
    r = CdrReader(buf)
    gid = r.raw(gid_len)
    nodes = []
    for _ in range(r.u32()):
        ns = r.string()
        name = r.string()
        readers = [r.raw(gid_len) for _ in range(r.u32())]
        writers = [r.raw(gid_len) for _ in range(r.u32())]
        nodes.append({"ns": ns, "name": name, "readers": readers, "writers": writers})
    if len(r.b) - r.o > 3:
        raise ValueError(f"{len(r.b) - r.o} bytes left over")
    return gid, nodes


def take_raw(reader, n=64):
    ret = ddspy_take(reader._ref, ANY, n)
    if isinstance(ret, int):
        raise RuntimeError(f"ddspy_take: {ret}")
    return [(bytes(data), info) for data, info in ret if info.valid_data]


def xcdr1_roundtrip(typ, raw):
    """True if `raw` decodes as typ and re-encodes (XCDR1, little-endian) to the same bytes."""
    from cyclonedds.idl._support import Endianness

    sample = typ.deserialize(raw)
    again = sample.serialize(use_version_2=False, endianness=Endianness.Little)
    # The writer pads the payload to a multiple of 4 bytes.
    return raw.rstrip(b"\0") == again.rstrip(b"\0") and raw[:4] == CDR_LE, sample


def rand_uuid():
    return bytes(random.getrandbits(8) for _ in range(16))


class ActionClient:
    """The five DDS endpoints rclpy's ActionClient has, on rmw_cyclonedds."""

    def __init__(self, dp, ns, types):
        act = fr.resolve(ns, "navigate_to_pose/_action/")
        q = fr.qos_default()
        self.T = types
        self.guid = random.getrandbits(63)
        self.seq = 0

        def pair(name, req_t, rep_t):
            w = DataWriter(dp, Topic(dp, f"rq{act}{name}Request", req_t), qos=q)
            r = DataReader(dp, Topic(dp, f"rr{act}{name}Reply", rep_t), qos=q)
            return w, r

        self.send_w, self.send_r = pair("send_goal", fr.NavigateToPose_SendGoal_Request,
                                        fr.NavigateToPose_SendGoal_Response)
        self.cancel_w, self.cancel_r = pair("cancel_goal", fr.CancelGoal_Request,
                                            fr.CancelGoal_Response)
        self.result_w, self.result_r = pair("get_result", fr.NavigateToPose_GetResult_Request,
                                            types["GetResult_Response"])
        self.feedback_r = DataReader(dp, Topic(dp, f"rt{act}feedback",
                                               fr.NavigateToPose_FeedbackMessage), qos=q)
        self.status_r = DataReader(dp, Topic(dp, f"rt{act}status", fr.GoalStatusArray),
                                   qos=fr.qos_latched(1))
        self.replies = {}  # (reader id, seq) -> (sample, raw)
        self.feedback = []

    def ready(self):
        ws = [self.send_w, self.cancel_w, self.result_w]
        rs = [self.send_r, self.cancel_r, self.result_r, self.feedback_r, self.status_r]
        return all(w.get_matched_subscriptions() for w in ws) and all(
            r.get_matched_publications() for r in rs)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def poll(self):
        for r, typ in ((self.send_r, fr.NavigateToPose_SendGoal_Response),
                       (self.cancel_r, fr.CancelGoal_Response),
                       (self.result_r, self.T["GetResult_Response"])):
            for raw, _info in take_raw(r):
                s = typ.deserialize(raw)
                if s.client_guid == self.guid:
                    self.replies[(id(r), s.sequence_number)] = (s, raw)
        for s in self.feedback_r.take(N=64):
            if s.sample_info.valid_data:
                self.feedback.append((time.time(), s))

    def wait_reply(self, reader, seq, timeout):
        def got():
            self.poll()
            return self.replies.pop((id(reader), seq), None)

        return wait_for(got, timeout, 0.01)

    def send_goal(self, gid, x, y, yaw, frame="map", bt=""):
        seq = self.next_seq()
        req = fr.NavigateToPose_SendGoal_Request(
            client_guid=self.guid, sequence_number=seq, goal_id=fr.UUID(uuid=list(gid)),
            goal=fr.NavigateToPose_Goal(
                pose=fr.PoseStamped(
                    header=fr.Header(stamp=fr.Time(0, 0), frame_id=frame),
                    pose=fr.Pose(position=fr.Point(x=x, y=y, z=0.0),
                                 orientation=fr.yaw_to_quaternion(yaw))),
                behavior_tree=bt))
        self.send_w.write(req)
        return seq

    def get_result(self, gid):
        seq = self.next_seq()
        self.result_w.write(fr.NavigateToPose_GetResult_Request(
            client_guid=self.guid, sequence_number=seq, goal_id=fr.UUID(uuid=list(gid))))
        return seq

    def cancel(self, gid=bytes(16), stamp=(0, 0)):
        seq = self.next_seq()
        self.cancel_w.write(fr.CancelGoal_Request(
            client_guid=self.guid, sequence_number=seq,
            goal_info=fr.GoalInfo(goal_id=fr.UUID(uuid=list(gid)), stamp=fr.Time(*stamp))))
        return seq

    def feedback_for(self, gid):
        return [(t, s) for t, s in self.feedback if bytes(s.goal_id.uuid) == gid]

    def last_status(self, gid):
        for s in self.status_r.read(N=16)[::-1]:
            if not s.sample_info.valid_data:
                continue
            for st in s.status_list:
                if bytes(st.goal_info.goal_id.uuid) == gid:
                    return st.status
            return None
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--distro", choices=("jazzy", "humble"), default="jazzy")
    ap.add_argument("--namespace", default="")
    ap.add_argument("--python", default=sys.executable, help="interpreter for fake_robot.py")
    args = ap.parse_args()
    ns = args.namespace or "/"
    if not ns.startswith("/"):
        ns = "/" + ns
    if len(ns) > 1:
        ns = ns.rstrip("/")
    types = fr.distro_types(args.distro)
    gid_len = types["gid_len"]
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0") or "0")
    print(f"== dds_selftest: distro {args.distro}, namespace {ns}, domain {domain}", flush=True)

    logf = tempfile.NamedTemporaryFile("w+", prefix="fake_robot-selftest-", suffix=".log",
                                       delete=False)
    cmd = [args.python, os.path.join(HERE, "fake_robot.py"), "--distro", args.distro,
           "--control-port", "0"]
    if args.namespace:
        cmd += ["--namespace", args.namespace]
    robot = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf, text=True)
    t_start = time.monotonic()
    try:
        line = robot.stdout.readline()
        if "fake_robot ready" not in line:
            check(False, f"fake_robot starts (got {line!r})")
            return
        base = line.strip().split("control ")[1]
        ctl = Control(base)
        check(True, f"fake_robot ready in {time.monotonic() - t_start:.2f} s ({base})")
        run_checks(ctl, ns, types, gid_len, domain)
    finally:
        robot.terminate()
        try:
            rc = robot.wait(timeout=10)
        except subprocess.TimeoutExpired:
            robot.kill()
            rc = robot.wait()
        check(rc == 0, f"fake_robot exits cleanly on SIGTERM (rc {rc})")
        logf.flush()
        if failed:
            logf.seek(0)
            lines = logf.read().splitlines()
            print("--- last 40 lines of the fake robot's log")
            print("\n".join(lines[-40:]))
        logf.close()
        os.unlink(logf.name)
        print(f"{passed} passed, {failed} failed", flush=True)


def run_checks(ctl, ns, types, gid_len, domain):
    dp = DomainParticipant(domain)
    pubs = BuiltinDataReader(dp, BuiltinTopicDcpsPublication)
    subs = BuiltinDataReader(dp, BuiltinTopicDcpsSubscription)
    disco_reader = DataReader(
        dp, Topic(dp, "ros_discovery_info", types["ParticipantEntitiesInfo"]),
        qos=Qos(Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
                Policy.Durability.TransientLocal, Policy.History.KeepAll,
                fr.XCDR1))

    # ---- ros_discovery_info -----------------------------------------------------------------
    state = ctl.get("/state")
    node_full = state["node"]
    t0 = time.monotonic()
    info = wait_for(lambda: next(iter(take_raw(disco_reader)), None), 5.0)
    if not check(info is not None,
                 f"ros_discovery_info sample received in {time.monotonic() - t0:.2f} s"):
        return
    raw = info[0]
    check(raw[:4] == CDR_LE, f"ros_discovery_info is CDR_LE/XCDR1 (header {raw[:4].hex(' ')})")
    try:
        pgid, nodes = parse_participant_entities_info(raw, gid_len)
        ok = True
    except Exception as e:  # noqa: BLE001
        ok, pgid, nodes = False, b"", []
        print(f"   parse error: {e}; payload {raw.hex()}")
    check(ok, f"ros_discovery_info parses by hand with {gid_len}-byte GIDs "
              f"({len(raw)} bytes, {len(nodes)} node(s))")
    if gid_len == 24:
        check(pgid[16:] == bytes(8), "Humble layout: GID = 16-byte DDS GUID + 8 zero bytes")
    node = nodes[0] if nodes else {"ns": "", "name": "", "readers": [], "writers": []}
    full = (node["ns"].rstrip("/") + "/" + node["name"]) if node["ns"] != "/" else "/" + node["name"]
    check(len(nodes) == 1 and full == node_full and node["ns"] == ns,
          f"one node announced: namespace {node['ns']!r} name {node['name']!r} (= {node_full})")

    # The endpoints DDS discovery sees for the robot's participant.
    def endpoints():
        out = {"pub": {}, "sub": {}}
        for kind, rd in (("pub", pubs), ("sub", subs)):
            for e in rd.read(N=500):
                if e.participant_key.bytes == pgid[:16] and not e.topic_name.startswith("DCPS"):
                    out[kind][e.key.bytes] = e
        return out

    eps = wait_for(lambda: (lambda e: e if len(e["pub"]) >= 9 and len(e["sub"]) >= 4 else None)(
        endpoints()), 5.0) or endpoints()
    ros_pubs = {k: e for k, e in eps["pub"].items() if e.topic_name[:3] in ("rt/", "rq/", "rr/")}
    ros_subs = {k: e for k, e in eps["sub"].items() if e.topic_name[:3] in ("rt/", "rq/", "rr/")}
    listed_w = {g[:16] for g in node["writers"]}
    listed_r = {g[:16] for g in node["readers"]}
    check(set(ros_pubs) == listed_w,
          f"writer GIDs in ros_discovery_info = the participant's {len(ros_pubs)} rt/rq/rr "
          f"DDS writers (listed {len(listed_w)})")
    check(set(ros_subs) == listed_r,
          f"reader GIDs in ros_discovery_info = the participant's {len(ros_subs)} rt/rq/rr "
          f"DDS readers (listed {len(listed_r)})")
    check(all(k[15] == 0x03 for k in ros_pubs) and all(k[15] == 0x04 for k in ros_subs),
          "all ROS endpoints are keyless (GUID entity kind 0x03 writer / 0x04 reader)")
    act = fr.resolve(ns, "navigate_to_pose/_action/")
    expect = {
        ("pub", f"rt{fr.resolve(ns, 'odom')}", "nav_msgs::msg::dds_::Odometry_"),
        ("pub", f"rt{fr.resolve(ns, 'amcl_pose')}",
         "geometry_msgs::msg::dds_::PoseWithCovarianceStamped_"),
        ("pub", f"rt{fr.resolve(ns, 'battery_state')}", "sensor_msgs::msg::dds_::BatteryState_"),
        ("sub", f"rt{fr.resolve(ns, 'cmd_vel')}", "geometry_msgs::msg::dds_::Twist_"),
        ("sub", f"rq{act}send_goalRequest",
         "nav2_msgs::action::dds_::NavigateToPose_SendGoal_Request_"),
        ("pub", f"rr{act}send_goalReply",
         "nav2_msgs::action::dds_::NavigateToPose_SendGoal_Response_"),
        ("sub", f"rq{act}cancel_goalRequest", "action_msgs::srv::dds_::CancelGoal_Request_"),
        ("pub", f"rr{act}cancel_goalReply", "action_msgs::srv::dds_::CancelGoal_Response_"),
        ("sub", f"rq{act}get_resultRequest",
         "nav2_msgs::action::dds_::NavigateToPose_GetResult_Request_"),
        ("pub", f"rr{act}get_resultReply",
         "nav2_msgs::action::dds_::NavigateToPose_GetResult_Response_"),
        ("pub", f"rt{act}feedback", "nav2_msgs::action::dds_::NavigateToPose_FeedbackMessage_"),
        ("pub", f"rt{act}status", "action_msgs::msg::dds_::GoalStatusArray_"),
    }
    seen = {("pub", e.topic_name, e.type_name) for e in ros_pubs.values()} | {
        ("sub", e.topic_name, e.type_name) for e in ros_subs.values()}
    check(seen == expect, "DDS topic and type names are exactly the rmw_cyclonedds ones"
          + ("" if seen == expect else f": missing {sorted(expect - seen)} extra {sorted(seen - expect)}"))

    def qos_of(kind, topic):
        d = ros_pubs if kind == "pub" else ros_subs
        for e in d.values():
            if e.topic_name == topic:
                return e.qos
        return None

    tl = [qos_of("pub", f"rt{fr.resolve(ns, 'amcl_pose')}"), qos_of("pub", f"rt{act}status")]
    check(all(q is not None and q[Policy.Durability] == Policy.Durability.TransientLocal
              and isinstance(q[Policy.Reliability], Policy.Reliability.Reliable) for q in tl),
          "amcl_pose and action status writers are reliable + transient-local")
    reps = []
    for e in list(ros_pubs.values()) + list(ros_subs.values()):
        try:
            reps.append(e.qos[Policy.DataRepresentation])
        except Exception:  # noqa: BLE001
            reps.append(None)
    check(all(r is not None and r.use_cdrv0_representation and not r.use_xcdrv2_representation
              for r in reps), "every endpoint offers/accepts XCDR1 only (DataRepresentation)")

    # ---- topics ----------------------------------------------------------------------------
    q = fr.qos_default()
    # depth 100: the rate is counted from what piles up in the reader over ~1 s
    odom_r = DataReader(dp, Topic(dp, f"rt{fr.resolve(ns, 'odom')}", fr.Odometry),
                        qos=fr.qos_default(100))
    bat_r = DataReader(dp, Topic(dp, f"rt{fr.resolve(ns, 'battery_state')}", fr.BatteryState),
                       qos=q)
    time.sleep(0.3)
    take_raw(odom_r, 256)  # drop what arrived while matching; count from here
    t_odom = time.monotonic()
    t0 = time.monotonic()
    amcl_r = DataReader(dp, Topic(dp, f"rt{fr.resolve(ns, 'amcl_pose')}",
                                  fr.PoseWithCovarianceStamped), qos=fr.qos_latched(1))
    amcl = wait_for(lambda: next(iter(take_raw(amcl_r)), None), 3.0)
    dt_amcl = time.monotonic() - t0
    if check(amcl is not None, f"amcl_pose reaches a new transient-local reader in {dt_amcl:.3f} s"):
        ok, s = xcdr1_roundtrip(fr.PoseWithCovarianceStamped, amcl[0])
        st = ctl.get("/state")["pose"]
        check(ok, f"amcl_pose raw sample is XCDR1 (header {amcl[0][:4].hex(' ')}, {len(amcl[0])} "
                  "bytes, re-encodes identically)")
        check(s.header.frame_id == "map" and abs(s.pose.pose.position.x - st["x"]) < 1e-9
              and abs(s.pose.pose.position.y - st["y"]) < 1e-9
              and abs(fr.quaternion_to_yaw(s.pose.pose.orientation) - st["yaw"]) < 1e-9,
              f"amcl_pose frame {s.header.frame_id!r} pose ({s.pose.pose.position.x:.3f}, "
              f"{s.pose.pose.position.y:.3f}) = GET /state pose")

    time.sleep(1.05)
    odoms = take_raw(odom_r, 256)
    t_window = time.monotonic() - t_odom
    if check(len(odoms) > 0, f"odom: {len(odoms)} samples in {t_window:.2f} s "
                             f"({len(odoms) / t_window:.1f} Hz)"):
        check(15 <= len(odoms) / t_window <= 25, "odom rate is ~20 Hz")
        raw = odoms[-1][0]
        ok, s = xcdr1_roundtrip(fr.Odometry, raw)
        check(ok and raw[:4] == CDR_LE,
              f"odom raw sample starts {raw[:4].hex(' ')} and re-encodes identically as XCDR1 "
              f"({len(raw)} bytes)")
        # Header: sec(4) nanosec(4) strlen(4) "odom\0"(5) -> frame at body offset 12; then
        # child_frame_id; the first double (pose.position.x) must sit 8-aligned in the body.
        body = raw[4:]
        check(body[12:17] == b"odom\0", "odom header.frame_id is 'odom' at body offset 12")
        cf_len = struct.unpack_from("<I", body, 20)[0]
        off = 24 + cf_len
        off += (-off) % 8
        x = struct.unpack_from("<d", body, off)[0]
        check(abs(x - s.pose.pose.position.x) < 1e-12 and off % 8 == 0,
              f"odom pose.position.x at 8-aligned body offset {off} = {x:.6f}")
        ox = ctl.get("/state")["odom_pose"]
        check(abs(s.pose.pose.position.x - ox["x"]) < 1e-6 and s.child_frame_id == "base_footprint",
              f"odom pose ({s.pose.pose.position.x:.3f}, {s.pose.pose.position.y:.3f}) in frame "
              f"odom, child {s.child_frame_id!r}")

    bats = wait_for(lambda: take_raw(bat_r), 2.5)
    if check(bool(bats), "battery_state received"):
        ok, b = xcdr1_roundtrip(fr.BatteryState, bats[-1][0])
        check(ok, f"battery_state raw sample is XCDR1 ({bats[-1][0][:4].hex(' ')}, re-encodes identically)")
        check(abs(b.percentage - 0.87) < 1e-6 and b.present and len(b.cell_voltage) == 3
              and b.power_supply_status == 2 and b.serial_number == "FAKE-0001",
              f"battery_state percentage {b.percentage:.4f} (fraction), present {b.present}, "
              f"{len(b.cell_voltage)} cells, status {b.power_supply_status}")

    # ---- cmd_vel ----------------------------------------------------------------------------
    cmd_w = DataWriter(dp, Topic(dp, f"rt{fr.resolve(ns, 'cmd_vel')}", fr.Twist), qos=q)
    wait_for(lambda: cmd_w.get_matched_subscriptions(), 3.0)
    t_send = time.time()
    for i in range(3):
        cmd_w.write(fr.Twist(linear=fr.Vector3(x=0.25 + i), angular=fr.Vector3(z=-0.5)))
        time.sleep(0.02)
    got = wait_for(lambda: (lambda l: l if len(l) >= 3 else None)(ctl.get("/cmd_vel")), 3.0) or []
    check(len(got) == 3 and [round(c["linear"]["x"], 6) for c in got] == [0.25, 1.25, 2.25]
          and all(c["angular"]["z"] == -0.5 and c["t"] >= t_send - 0.5 for c in got),
          f"GET /cmd_vel lists the 3 Twists published on rt/cmd_vel ({len(got)} recorded)")

    # ---- the action -------------------------------------------------------------------------
    ac = ActionClient(dp, ns, types)
    t0 = time.monotonic()
    check(wait_for(ac.ready, 5.0), f"action client matched all 5 server endpoints in "
                                    f"{time.monotonic() - t0:.2f} s")
    jazzy = gid_len == 16

    # 1. a goal that succeeds
    pose0 = ctl.get("/state")["pose"]
    g1 = rand_uuid()
    gx, gy, gyaw = pose0["x"] + 1.2, pose0["y"] + 0.9, 1.0
    t_goal = time.monotonic()
    seq = ac.send_goal(g1, gx, gy, gyaw, bt="")
    rep = ac.wait_reply(ac.send_r, seq, 3.0)
    if check(rep is not None, f"send_goal reply in {time.monotonic() - t_goal:.3f} s"):
        s, raw = rep
        hdr = struct.pack("<Qq", ac.guid, seq)
        check(raw[:4] == CDR_LE and raw[4:20] == hdr,
              "send_goal reply is CDR_LE and echoes the 16-byte request header "
              f"({raw[4:20].hex()})")
        check(s.accepted and s.stamp.sec > 0, f"goal accepted, stamp {s.stamp.sec}.{s.stamp.nanosec:09d}")
    rseq = ac.get_result(g1)
    time.sleep(0.5)
    ac.poll()
    check((id(ac.result_r), rseq) not in ac.replies, "get_result is held while the goal runs")
    goals = ctl.get("/goals")
    rec = next((g for g in goals if g["goal_id"] == g1.hex()), None)
    check(rec is not None and rec["frame_id"] == "map" and abs(rec["x"] - gx) < 1e-9
          and abs(rec["y"] - gy) < 1e-9 and abs(rec["yaw"] - gyaw) < 1e-9
          and rec["behavior_tree"] == "",
          f"GET /goals records the goal: {rec and {k: rec[k] for k in ('frame_id', 'x', 'y', 'yaw')}}")
    check(ac.last_status(g1) == fr.STATUS_EXECUTING, "status topic: goal EXECUTING (2)")
    rep = ac.wait_reply(ac.result_r, rseq, 5.0)
    t_done = time.monotonic() - t_goal
    dist = math.hypot(gx - pose0["x"], gy - pose0["y"])
    if check(rep is not None, f"get_result answered after {t_done:.2f} s (distance {dist:.2f} m at 1 m/s)"):
        s, raw = rep
        check(raw[4:20] == struct.pack("<Qq", ac.guid, rseq), "get_result reply echoes its request header")
        check(s.status == fr.STATUS_SUCCEEDED and (not jazzy or (s.result.error_code == 0
                                                                  and s.result.error_msg == "")),
              f"goal SUCCEEDED (status {s.status}), result {s.result}")
    fb = ac.feedback_for(g1)
    d = [f.feedback.distance_remaining for _, f in fb]
    check(len(fb) >= 5 and all(a >= b for a, b in zip(d, d[1:])) and d[0] > d[-1],
          f"feedback: {len(fb)} messages, distance_remaining {d[0] if d else None:.3f} -> "
          f"{d[-1] if d else None:.3f} (non-increasing)" if d else "feedback received")
    if fb:
        f = fb[-1][1].feedback
        check(f.current_pose.header.frame_id == "map" and f.navigation_time.sec >= 0,
              f"feedback current_pose in frame map, navigation_time {f.navigation_time.sec}."
              f"{f.navigation_time.nanosec:09d} s")
    st = ctl.get("/state")["pose"]
    check(abs(st["x"] - gx) < 1e-9 and abs(st["y"] - gy) < 1e-9 and abs(st["yaw"] - gyaw) < 1e-9,
          f"robot arrived at the goal pose ({st['x']:.3f}, {st['y']:.3f}, {st['yaw']:.3f})")
    check(wait_for(lambda: ac.last_status(g1) == fr.STATUS_SUCCEEDED, 1.0),
          "status topic: goal SUCCEEDED (4)")

    # 2. abort mode
    ctl.post("/mode", {"outcome": "abort", "abort_after_s": 0.4})
    g2 = rand_uuid()
    seq = ac.send_goal(g2, st["x"] + 3.0, st["y"], 0.0)
    rep = ac.wait_reply(ac.send_r, seq, 3.0)
    check(rep is not None and rep[0].accepted, "abort mode: goal accepted")
    rseq = ac.get_result(g2)
    rep = ac.wait_reply(ac.result_r, rseq, 5.0)
    if check(rep is not None, "abort mode: get_result answered"):
        s = rep[0]
        if jazzy:
            check(s.status == fr.STATUS_ABORTED and s.result.error_code == fr.NAV2_ERROR_UNKNOWN
                  and "abort" in s.result.error_msg,
                  f"goal ABORTED (status {s.status}) error_code {s.result.error_code} "
                  f"error_msg {s.result.error_msg!r}")
        else:
            check(s.status == fr.STATUS_ABORTED, f"goal ABORTED (status {s.status}), Humble empty result")
    ctl.post("/mode", {"outcome": "succeed", "drive_speed": 0.2})

    # 3. cancel
    g3 = rand_uuid()
    st = ctl.get("/state")["pose"]
    seq = ac.send_goal(g3, st["x"] - 4.0, st["y"], 0.0)
    rep = ac.wait_reply(ac.send_r, seq, 3.0)
    check(rep is not None and rep[0].accepted, "cancel: goal accepted")
    rseq = ac.get_result(g3)
    time.sleep(0.4)
    t_c = time.monotonic()
    cseq = ac.cancel(g3)
    rep = ac.wait_reply(ac.cancel_r, cseq, 3.0)
    if check(rep is not None, f"cancel_goal reply in {time.monotonic() - t_c:.3f} s"):
        s = rep[0]
        ids = [bytes(gi.goal_id.uuid) for gi in s.goals_canceling]
        check(s.return_code == 0 and ids == [g3],
              f"cancel_goal return_code {s.return_code}, goals_canceling {[i.hex() for i in ids]}")
    rep = ac.wait_reply(ac.result_r, rseq, 3.0)
    check(rep is not None and rep[0].status == fr.STATUS_CANCELED,
          f"canceled goal's result: status {rep and rep[0].status} (CANCELED = 5)")
    cancels = ctl.get("/cancels")
    check(any(c["goal_id"] == g3.hex() and c["goals_canceling"] == [g3.hex()] for c in cancels),
          f"GET /cancels records the cancel of {g3.hex()}")
    cseq = ac.cancel(rand_uuid())
    rep = ac.wait_reply(ac.cancel_r, cseq, 3.0)
    check(rep is not None and rep[0].return_code == fr.CANCEL_ERROR_UNKNOWN_GOAL_ID,
          f"cancel of an unknown goal: return_code {rep and rep[0].return_code} (2)")

    # 4. preemption, then cancel-all
    g4, g5 = rand_uuid(), rand_uuid()
    st = ctl.get("/state")["pose"]
    seq4 = ac.send_goal(g4, st["x"] + 5.0, st["y"], 0.0)
    r4 = ac.get_result(g4)
    check(ac.wait_reply(ac.send_r, seq4, 3.0) is not None, "preemption: first goal accepted")
    time.sleep(0.3)
    seq5 = ac.send_goal(g5, st["x"] - 5.0, st["y"], 0.0)
    rep5 = ac.wait_reply(ac.send_r, seq5, 3.0)
    rep4 = ac.wait_reply(ac.result_r, r4, 3.0)
    check(rep5 is not None and rep5[0].accepted and rep4 is not None
          and rep4[0].status == fr.STATUS_ABORTED,
          f"a new goal preempts the running one: old goal status {rep4 and rep4[0].status} "
          "(ABORTED = 6, as Nav2), new goal accepted")
    state = ctl.get("/state")
    check(state["goal"] and state["goal"]["goal_id"] == g5.hex(), "GET /state shows the new goal")
    r5 = ac.get_result(g5)
    cseq = ac.cancel()  # zero id + zero stamp: cancel all
    rep = ac.wait_reply(ac.cancel_r, cseq, 3.0)
    check(rep is not None and rep[0].return_code == 0
          and [bytes(gi.goal_id.uuid) for gi in rep[0].goals_canceling] == [g5],
          "cancel with zero id and stamp cancels every running goal")
    rep = ac.wait_reply(ac.result_r, r5, 3.0)
    check(rep is not None and rep[0].status == fr.STATUS_CANCELED, "and that goal ends CANCELED")

    # 5. reset
    ctl.post("/reset")
    check(ctl.get("/goals") == [] and ctl.get("/cancels") == [] and ctl.get("/cmd_vel") == []
          and ctl.get("/state")["mode"]["outcome"] == "succeed",
          "POST /reset clears goals, cancels and cmd_vel records and the mode")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        check(False, f"self test crashed: {e}")
        print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not passed else 0)
