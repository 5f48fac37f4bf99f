#!/usr/bin/env python3
"""A fake TurtleBot3 with Nav2, as a real rclpy node: the live test peer of
`fms_agent --interface ros2` (r2r) and `--interface ros2dds`.

One node, `--node-name` (default fake_tb3), in `--namespace` (default: the root namespace;
`--ros-args -r __ns:=/tb3_1` works too), every name relative so that the namespace applies:

  publishes   odom           nav_msgs/Odometry          sensor-data QoS, 20 Hz, frame odom,
                                                        child base_footprint, with the twist
              amcl_pose      geometry_msgs/PoseWithCovarianceStamped
                                                        reliable + transient-local depth 1,
                                                        frame map, 2 Hz and on every change
                                                        of more than 1 cm (or 0.01 rad)
              battery_state  sensor_msgs/BatteryState   percentage 0-1 (--battery), 1 Hz
  subscribes  cmd_vel        geometry_msgs/Twist        every message recorded; with no goal
                                                        active the last one (if younger than
                                                        0.5 s) drives the robot (teleop)
  serves      navigate_to_pose  nav2_msgs/action/NavigateToPose (Jazzy: result error_code +
                                error_msg): drives in a straight line at --speed, feedback at
                                10 Hz, SUCCEEDS on arrival with the goal's yaw; mode "abort"
                                ABORTS after abort_after_s with error_code/error_msg; cancel
                                is accepted (goal CANCELED, robot stops); a new goal preempts
                                the running one as Nav2 does (the old one ends ABORTED).

The odometry frame starts where the robot starts (odom = start⁻¹ ⊕ map pose), and each AMCL
pose carries the stamp of the odometry message published with it, as a localized robot does.

Control / inspection over HTTP on 127.0.0.1:--control-port (JSON):
  GET  /state  {pose:{x,y,yaw}, goals:[{n, goal_id, x, y, yaw, frame_id, behavior_tree,
               status: executing|succeeded|aborted|canceled, t_received, t_end, error_code,
               error_msg, feedback}], cancel_requests: N, cancels: [{t, goal_id}],
               cmd_vel: [[t_monotonic, vx, vy, wz], ...] (last 5000), now: t_monotonic, ...}
  POST /mode   {"outcome": "succeed"|"abort", "error_code": 9000, "error_msg": "...",
               "abort_after_s": 1.0, "speed": 1.0, "battery": 0.87, "accept": true}
  POST /clear  forget the goal, cancel and cmd_vel records
  POST /pose   {"x":.., "y":.., "yaw":..}  teleport (map frame)
Times are time.monotonic() (CLOCK_MONOTONIC, comparable across processes on this host).

Prints "fake_tb3 ready" on stdout once the node, its publishers and the action server exist
and the control port listens; exits with 0 on SIGINT and SIGTERM.

`fake_tb3.py --selftest` starts a fake robot in a child process (random ROS_DOMAIN_ID) and
checks it with an rclpy client: topics, a goal that succeeds with feedback, abort mode,
cancel, preemption, teleop, the namespace and domain isolation.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.signals import SignalHandlerOptions

from geometry_msgs.msg import PoseWithCovarianceStamped, Twist
from nav2_msgs.action import NavigateToPose
from nav_msgs.msg import Odometry
from sensor_msgs.msg import BatteryState

CMD_VEL_KEEP = 5000
TELEOP_MAX_AGE_S = 0.5
FEEDBACK_PERIOD_S = 0.1
PHYSICS_PERIOD_S = 0.05  # = the odometry rate, 20 Hz
AMCL_PERIOD_S = 0.5
AMCL_MIN_MOVE = 0.01


def wrap(a):
    return math.atan2(math.sin(a), math.cos(a))


def yaw_of(q):
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def set_yaw(q, yaw):
    q.x, q.y, q.z, q.w = 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


def compose(a, b):
    """a ⊕ b for planar poses (x, y, yaw)."""
    s, c = math.sin(a[2]), math.cos(a[2])
    return (a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], wrap(a[2] + b[2]))


def invert(a):
    s, c = math.sin(a[2]), math.cos(a[2])
    return (-c * a[0] - s * a[1], s * a[0] - c * a[1], wrap(-a[2]))


def log(msg):
    print(f"[fake_tb3 {time.monotonic():.3f}] {msg}", file=sys.stderr, flush=True)


class Goal:
    def __init__(self, n, handle):
        req = handle.request
        p = req.pose.pose
        self.n = n
        self.goal_id = bytes(handle.goal_id.uuid).hex()
        self.x, self.y, self.z = p.position.x, p.position.y, p.position.z
        self.yaw = yaw_of(p.orientation)
        self.frame_id = req.pose.header.frame_id
        self.stamp = (req.pose.header.stamp.sec, req.pose.header.stamp.nanosec)
        self.behavior_tree = req.behavior_tree
        self.status = "executing"
        self.t_received = time.monotonic()
        self.t_end = None
        self.error_code = None
        self.error_msg = None
        self.feedback = 0
        self.driving_s = 0.0
        self.arrived = False
        self.preempted = False
        self.start = None  # pose when it started driving
        self.distances = []  # distance_remaining of the first feedback messages

    def as_json(self):
        return {
            "n": self.n, "goal_id": self.goal_id, "x": self.x, "y": self.y, "z": self.z,
            "yaw": self.yaw, "frame_id": self.frame_id, "stamp": list(self.stamp),
            "behavior_tree": self.behavior_tree, "status": self.status,
            "t_received": self.t_received, "t_end": self.t_end,
            "error_code": self.error_code, "error_msg": self.error_msg,
            "feedback": self.feedback,
            "last_distance": self.distances[-1] if self.distances else None,
        }


class FakeTb3(Node):
    def __init__(self, args):
        super().__init__(args.node_name, namespace=args.namespace or "")
        self.lock = threading.Lock()
        self.pose = (args.x, args.y, args.yaw)  # map frame
        self.origin = self.pose  # map pose of the odometry frame's origin
        self.twist = (0.0, 0.0, 0.0)
        self.mode = {"outcome": "succeed", "error_code": 9000,
                     "error_msg": "fake Nav2 aborted the goal", "abort_after_s": 1.0,
                     "speed": args.speed, "battery": args.battery, "accept": True}
        self.goals = []
        self.goal_count = 0
        self.active = None  # the Goal being driven to
        self.cancels = []
        self.cmd_vel = deque(maxlen=CMD_VEL_KEEP)
        self.cmd_vel_total = 0
        self.last_cmd = None  # (t, vx, vy, wz)
        self.stopping = False
        self.last_amcl = None  # (t, pose)
        self.counts = {"odom": 0, "amcl_pose": 0, "battery_state": 0}

        fast = MutuallyExclusiveCallbackGroup()
        slow = MutuallyExclusiveCallbackGroup()
        self.action_group = ReentrantCallbackGroup()
        self.odom_pub = self.create_publisher(Odometry, "odom", qos_profile_sensor_data)
        amcl_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                              reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.amcl_pub = self.create_publisher(PoseWithCovarianceStamped, "amcl_pose", amcl_qos)
        self.battery_pub = self.create_publisher(BatteryState, "battery_state", 10)
        self.create_subscription(Twist, "cmd_vel", self.on_cmd_vel, 50, callback_group=slow)
        self.action = ActionServer(
            self, NavigateToPose, "navigate_to_pose", execute_callback=self.execute,
            goal_callback=self.on_goal, handle_accepted_callback=self.on_accepted,
            cancel_callback=self.on_cancel, callback_group=self.action_group)
        self.last_tick = time.monotonic()
        self.create_timer(PHYSICS_PERIOD_S, self.tick, callback_group=fast)
        self.create_timer(1.0, self.publish_battery, callback_group=slow)
        self.tick()
        self.publish_battery()

    # --- topics ---

    def on_cmd_vel(self, msg):
        t = time.monotonic()
        rec = (t, msg.linear.x, msg.linear.y, msg.angular.z)
        with self.lock:
            self.cmd_vel.append(list(rec))
            self.cmd_vel_total += 1
            self.last_cmd = rec
        if any(v != 0.0 for v in (msg.linear.z, msg.angular.x, msg.angular.y)):
            log(f"cmd_vel with non-planar components: {msg}")

    def tick(self):
        now = time.monotonic()
        with self.lock:
            dt = min(max(now - self.last_tick, 0.0), 0.2)
            self.last_tick = now
            x, y, yaw = self.pose
            vx = vy = wz = 0.0
            g = self.active
            if g is not None and not g.arrived:
                speed = max(float(self.mode["speed"]), 1e-3)
                if g.start is None:
                    g.start = self.pose
                g.driving_s += dt
                dx, dy = g.x - x, g.y - y
                d = math.hypot(dx, dy)
                step = speed * dt
                if d <= max(step, 1e-6):
                    x, y, yaw = g.x, g.y, g.yaw
                    g.arrived = True
                else:
                    yaw = math.atan2(dy, dx)
                    x, y = x + dx / d * step, y + dy / d * step
                    vx = speed
            elif g is None and self.last_cmd and now - self.last_cmd[0] <= TELEOP_MAX_AGE_S:
                _, vx, vy, wz = self.last_cmd
                s, c = math.sin(yaw), math.cos(yaw)
                x += (c * vx - s * vy) * dt
                y += (s * vx + c * vy) * dt
                yaw = wrap(yaw + wz * dt)
            self.pose = (x, y, yaw)
            self.twist = (vx, vy, wz)
            odom_pose = compose(invert(self.origin), self.pose)
            amcl_due = (self.last_amcl is None or now - self.last_amcl[0] >= AMCL_PERIOD_S
                        or math.hypot(x - self.last_amcl[1][0], y - self.last_amcl[1][1])
                        > AMCL_MIN_MOVE
                        or abs(wrap(yaw - self.last_amcl[1][2])) > AMCL_MIN_MOVE)
            if amcl_due:
                self.last_amcl = (now, self.pose)
            pose = self.pose
        stamp = self.get_clock().now().to_msg()
        o = Odometry()
        o.header.stamp = stamp
        o.header.frame_id = "odom"
        o.child_frame_id = "base_footprint"
        o.pose.pose.position.x, o.pose.pose.position.y = odom_pose[0], odom_pose[1]
        set_yaw(o.pose.pose.orientation, odom_pose[2])
        o.twist.twist.linear.x, o.twist.twist.linear.y = vx, vy
        o.twist.twist.angular.z = wz
        self.odom_pub.publish(o)
        self.counts["odom"] += 1
        if amcl_due:
            a = PoseWithCovarianceStamped()
            a.header.stamp = stamp
            a.header.frame_id = "map"
            a.pose.pose.position.x, a.pose.pose.position.y = pose[0], pose[1]
            set_yaw(a.pose.pose.orientation, pose[2])
            cov = [0.0] * 36
            cov[0] = cov[7] = 0.0025
            cov[35] = 0.0007
            a.pose.covariance = cov
            self.amcl_pub.publish(a)
            self.counts["amcl_pose"] += 1

    def publish_battery(self):
        with self.lock:
            pct = float(self.mode["battery"])
        b = BatteryState()
        b.header.stamp = self.get_clock().now().to_msg()
        b.voltage = 11.1 + 1.5 * pct
        b.current = -0.8
        b.percentage = pct
        b.charge = float("nan")
        b.capacity = float("nan")
        b.design_capacity = 1.8
        b.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        b.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_GOOD
        b.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIPO
        b.present = True
        self.battery_pub.publish(b)
        self.counts["battery_state"] += 1

    # --- the action server ---

    def on_goal(self, request):
        with self.lock:
            accept = bool(self.mode.get("accept", True)) and not self.stopping
        return GoalResponse.ACCEPT if accept else GoalResponse.REJECT

    def on_accepted(self, handle):
        with self.lock:
            self.goal_count += 1
            g = Goal(self.goal_count, handle)
            self.goals.append(g)
            old = self.active
            if old is not None:
                old.preempted = True  # Nav2's accept_pending_goal: the old goal is aborted
            self.active = g
            handle.fms_goal = g
        log(f"goal {g.n} {g.goal_id[:8]} to ({g.x:.3f}, {g.y:.3f}, {g.yaw:.3f}) in "
            f"{g.frame_id!r}" + (f", preempting goal {old.n}" if old else ""))
        handle.execute()

    def on_cancel(self, handle):
        g = getattr(handle, "fms_goal", None)
        with self.lock:
            self.cancels.append({"t": time.monotonic(), "goal_id": bytes(handle.goal_id.uuid).hex(),
                                 "n": g.n if g else None})
        log(f"cancel request for goal {g.n if g else '?'}")
        return CancelResponse.ACCEPT

    def _end(self, g, status, code=None, msg=None):
        """Marks g over; stops the robot if it was the one being driven. Call with the lock."""
        g.status = status
        g.t_end = time.monotonic()
        g.error_code, g.error_msg = code, msg
        if self.active is g:
            self.active = None
            self.twist = (0.0, 0.0, 0.0)

    def execute(self, handle):
        g = handle.fms_goal
        t0 = time.monotonic()
        while True:
            time.sleep(FEEDBACK_PERIOD_S)
            with self.lock:
                result = NavigateToPose.Result()
                if self.stopping:
                    self._end(g, "aborted", 1, "fake_tb3 shutting down")
                    result.error_code, result.error_msg = 1, "fake_tb3 shutting down"
                    verdict = "abort"
                elif g.preempted:
                    self._end(g, "aborted", 0, "")
                    verdict = "abort"
                elif handle.is_cancel_requested:
                    self._end(g, "canceled")
                    verdict = "cancel"
                elif g.arrived:
                    self._end(g, "succeeded", 0, "")
                    verdict = "succeed"
                elif self.mode["outcome"] == "abort" and \
                        g.driving_s >= float(self.mode["abort_after_s"]):
                    code, msg = int(self.mode["error_code"]), str(self.mode["error_msg"])
                    self._end(g, "aborted", code, msg)
                    result.error_code, result.error_msg = code, msg
                    verdict = "abort"
                else:
                    verdict = None
                    x, y, yaw = self.pose
                    dist = math.hypot(g.x - x, g.y - y)
                    speed = max(float(self.mode["speed"]), 1e-3)
                    g.feedback += 1
                    if len(g.distances) < 10000:
                        g.distances.append(round(dist, 4))
            if verdict is None:
                fb = NavigateToPose.Feedback()
                fb.current_pose.header.frame_id = "map"
                fb.current_pose.header.stamp = self.get_clock().now().to_msg()
                fb.current_pose.pose.position.x, fb.current_pose.pose.position.y = x, y
                set_yaw(fb.current_pose.pose.orientation, yaw)
                el = time.monotonic() - t0
                fb.navigation_time.sec = int(el)
                fb.navigation_time.nanosec = int((el - int(el)) * 1e9)
                eta = dist / speed
                fb.estimated_time_remaining.sec = int(eta)
                fb.estimated_time_remaining.nanosec = int((eta - int(eta)) * 1e9)
                fb.number_of_recoveries = 0
                fb.distance_remaining = float(dist)
                handle.publish_feedback(fb)
                continue
            log(f"goal {g.n} ends {g.status} (error_code {g.error_code}, {g.error_msg!r})")
            if verdict == "succeed":
                handle.succeed()
            elif verdict == "cancel":
                handle.canceled()
            else:
                handle.abort()
            return result

    # --- control ---

    def state_json(self):
        with self.lock:
            return {
                "pose": dict(zip(("x", "y", "yaw"), self.pose)),
                "odom_pose": dict(zip(("x", "y", "yaw"), compose(invert(self.origin), self.pose))),
                "twist": list(self.twist),
                "goals": [g.as_json() for g in self.goals],
                "cancel_requests": len(self.cancels),
                "cancels": list(self.cancels),
                "cmd_vel": [list(c) for c in self.cmd_vel],
                "cmd_vel_total": self.cmd_vel_total,
                "mode": dict(self.mode),
                "published": dict(self.counts),
                "node": self.get_fully_qualified_name(),
                "domain_id": int(os.environ.get("ROS_DOMAIN_ID", "0") or 0),
                "now": time.monotonic(),
            }

    def goal_distances(self, n):
        with self.lock:
            g = next((g for g in self.goals if g.n == n), None)
            return list(g.distances) if g else None

    def set_mode(self, body):
        with self.lock:
            for k, v in body.items():
                if k not in self.mode:
                    raise ValueError(f"unknown mode key {k!r}")
                if k == "outcome" and v not in ("succeed", "abort"):
                    raise ValueError(f"outcome {v!r}: succeed or abort")
                self.mode[k] = v
            return dict(self.mode)

    def clear(self):
        with self.lock:
            self.goals = [g for g in self.goals if g.status == "executing"]
            self.cancels.clear()
            self.cmd_vel.clear()
            self.cmd_vel_total = 0

    def teleport(self, x, y, yaw):
        with self.lock:
            self.pose = (x, y, yaw)


def serve_control(robot, port):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            return json.loads(raw) if raw.strip() else {}

        def do_GET(self):
            path, _, query = self.path.partition("?")
            path = path.rstrip("/") or "/"
            if path in ("/state", "/"):
                self._send(200, robot.state_json())
            elif path == "/distances":
                n = int(dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv).get("n", 0))
                self._send(200, robot.goal_distances(n))
            else:
                self._send(404, {"error": f"no route {path}"})

        def do_POST(self):
            path = self.path.split("?")[0].rstrip("/")
            try:
                body = self._body()
                if path == "/mode":
                    self._send(200, robot.set_mode(body))
                elif path == "/clear":
                    robot.clear()
                    self._send(200, {"ok": True})
                elif path == "/pose":
                    robot.teleport(float(body["x"]), float(body["y"]), float(body.get("yaw", 0.0)))
                    self._send(200, {"ok": True})
                else:
                    self._send(404, {"error": f"no route {path}"})
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, {"error": str(e)})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    return server


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--namespace", default="")
    ap.add_argument("--node-name", default="fake_tb3")
    ap.add_argument("--x", type=float, default=0.0)
    ap.add_argument("--y", type=float, default=0.0)
    ap.add_argument("--yaw", type=float, default=0.0)
    ap.add_argument("--speed", type=float, default=1.0, help="m/s")
    ap.add_argument("--battery", type=float, default=0.87, help="0..1")
    ap.add_argument("--control-port", type=int, help="HTTP control port on 127.0.0.1")
    ap.add_argument("--selftest", action="store_true",
                    help="start a fake robot in a child process and check it")
    args = ap.parse_args(argv)
    if not args.selftest and args.control_port is None:
        ap.error("--control-port is required")
    return args


def main():
    from rclpy.utilities import remove_ros_args

    args = parse_args(remove_ros_args(sys.argv)[1:])
    if args.selftest:
        sys.exit(selftest())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    robot = FakeTb3(args)
    executor = MultiThreadedExecutor(num_threads=8)
    executor.add_node(robot)
    spinner = threading.Thread(target=executor.spin, name="spin", daemon=True)
    spinner.start()
    server = serve_control(robot, args.control_port)
    log(f"node {robot.get_fully_qualified_name()} domain {os.environ.get('ROS_DOMAIN_ID', '0')} "
        f"pose {robot.pose} control http://127.0.0.1:{args.control_port}")
    print(f"fake_tb3 ready: {robot.get_fully_qualified_name()} control "
          f"http://127.0.0.1:{args.control_port}", flush=True)
    while not stop.wait(0.2):
        if not spinner.is_alive():
            log("the executor stopped")
            break
    log("stopping")
    # Whatever goes wrong from here on, exit with 0 within a few seconds.
    killer = threading.Timer(5.0, lambda: os._exit(0))
    killer.daemon = True
    killer.start()
    with robot.lock:
        robot.stopping = True
    time.sleep(2 * FEEDBACK_PERIOD_S + 0.05)  # running goals end (aborted) and answer
    server.shutdown()
    executor.shutdown(timeout_sec=2.0)
    robot.destroy_node()
    rclpy.try_shutdown()
    log("stopped")
    sys.stdout.flush()
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# Self test: a fake robot in a child process, an rclpy client here.
# ---------------------------------------------------------------------------------------------


def selftest():  # noqa: C901 - a linear script
    import random
    import socket
    import subprocess
    import urllib.request

    from rclpy.action import ActionClient

    results = {"pass": 0, "fail": 0}

    def check(ok, what):
        results["pass" if ok else "fail"] += 1
        print(f"{'PASS' if ok else 'FAIL'}: {what}", flush=True)
        return ok

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def http(method, port, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    domain = random.randint(1, 100)
    other_domain = domain % 100 + 1
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    procs = []

    def start(extra, port):
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--control-port",
                              str(port)] + extra, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        procs.append(p)
        line = p.stdout.readline()
        return p, line

    t_start = time.monotonic()
    port = free_port()
    p, line = start(["--x", "1.5", "--y", "-2.0", "--yaw", "0.7", "--speed", "2.0",
                     "--battery", "0.63"], port)
    check(line.startswith("fake_tb3 ready"), f"child ready ({line.strip()!r}) after "
                                             f"{time.monotonic() - t_start:.2f} s")
    port_ns = free_port()
    p_ns, line = start(["--ros-args", "-r", "__ns:=/tb3_1"], port_ns)
    check(line.startswith("fake_tb3 ready") and "/tb3_1/fake_tb3" in line,
          f"namespaced child ready via --ros-args -r __ns:=/tb3_1 ({line.strip()!r})")
    port_ns2 = free_port()
    p_ns2, line = start(["--namespace", "/tb3_2", "--node-name", "other"], port_ns2)
    check("/tb3_2/other" in line, f"namespaced child via --namespace ({line.strip()!r})")

    try:
        rclpy.init(args=[], domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("selftest_client")
        ex = MultiThreadedExecutor(num_threads=4)
        ex.add_node(node)
        threading.Thread(target=ex.spin, daemon=True).start()
        got = {}

        def keep(name):
            def cb(msg):
                got.setdefault(name, []).append((time.monotonic(), msg))
            return cb

        amcl_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(Odometry, "odom", keep("odom"), qos_profile_sensor_data)
        node.create_subscription(PoseWithCovarianceStamped, "amcl_pose", keep("amcl"), amcl_qos)
        node.create_subscription(BatteryState, "battery_state", keep("battery"),
                                 qos_profile_sensor_data)
        node.create_subscription(Odometry, "/tb3_1/odom", keep("ns_odom"), qos_profile_sensor_data)
        node.create_subscription(PoseWithCovarianceStamped, "/tb3_2/amcl_pose", keep("ns2_amcl"),
                                 amcl_qos)
        cmd = node.create_publisher(Twist, "cmd_vel", 10)
        client = ActionClient(node, NavigateToPose, "navigate_to_pose")
        ns_client = ActionClient(node, NavigateToPose, "/tb3_1/navigate_to_pose")
        check(client.wait_for_server(timeout_sec=10.0), "navigate_to_pose server found")
        check(ns_client.wait_for_server(timeout_sec=10.0), "/tb3_1/navigate_to_pose server found")
        time.sleep(2.5)
        t = time.monotonic()
        o = got["odom"][-1][1] if got.get("odom") else None
        check(o is not None and o.header.frame_id == "odom" and o.child_frame_id == "base_footprint"
              and abs(o.pose.pose.position.x) < 1e-9,
              f"odom frame odom -> base_footprint, starts at the odom origin "
              f"({o and o.pose.pose.position.x})")
        a = got["amcl"][-1][1] if got.get("amcl") else None
        check(a is not None and a.header.frame_id == "map" and abs(a.pose.pose.position.x - 1.5) < 1e-9
              and abs(a.pose.pose.position.y + 2.0) < 1e-9
              and abs(yaw_of(a.pose.pose.orientation) - 0.7) < 1e-9,
              f"amcl_pose in map at (1.5, -2.0, 0.7): {a and (a.pose.pose.position.x, a.pose.pose.position.y, yaw_of(a.pose.pose.orientation))}")
        n_amcl = len([1 for tm, _ in got.get("amcl", []) if tm > t - 2.0])
        check(3 <= n_amcl <= 5, f"amcl_pose at 2 Hz while still ({n_amcl} in 2 s)")
        b = got["battery"][-1][1] if got.get("battery") else None
        check(b is not None and abs(b.percentage - 0.63) < 1e-6, f"battery_state 0.63 ({b and b.percentage})")
        check(bool(got.get("ns_odom")), f"/tb3_1/odom received ({len(got.get('ns_odom', []))})")
        check(bool(got.get("ns2_amcl")), f"/tb3_2/amcl_pose received ({len(got.get('ns2_amcl', []))})")

        # A late subscriber gets the transient-local AMCL pose at once.
        late = []
        node.create_subscription(PoseWithCovarianceStamped, "amcl_pose",
                                 lambda m: late.append(time.monotonic()), amcl_qos)
        t = time.monotonic()
        while not late and time.monotonic() - t < 3:
            time.sleep(0.01)
        check(bool(late) and late[0] - t < 0.4, f"late subscriber got the latched AMCL pose "
                                                f"after {late and round(late[0] - t, 3)} s")

        def send(x, y, yaw, cl=client):
            goal = NavigateToPose.Goal()
            goal.pose.header.frame_id = "map"
            goal.pose.pose.position.x, goal.pose.pose.position.y = x, y
            set_yaw(goal.pose.pose.orientation, yaw)
            fbs = []
            fut = cl.send_goal_async(goal, feedback_callback=lambda f: fbs.append(f.feedback))
            t = time.monotonic()
            while not fut.done() and time.monotonic() - t < 5:
                time.sleep(0.01)
            h = fut.result()
            return h, fbs

        def result_of(h, timeout=15):
            fut = h.get_result_async()
            t = time.monotonic()
            while not fut.done() and time.monotonic() - t < timeout:
                time.sleep(0.01)
            return fut.result() if fut.done() else None

        # Success: 2.5 m at 2 m/s.
        h, fbs = send(3.5, -0.5, -1.0)
        check(h.accepted, "goal accepted")
        r = result_of(h)
        st = http("GET", port, "/state")
        dists = [f.distance_remaining for f in fbs]
        check(r is not None and r.status == 4 and r.result.error_code == 0,
              f"goal SUCCEEDED ({r and r.status}, error_code {r and r.result.error_code})")
        check(len(fbs) >= 8 and all(a >= b for a, b in zip(dists, dists[1:])) and dists[0] > 2.0,
              f"{len(fbs)} feedback messages, distance_remaining falling {dists[:3]}...{dists[-2:]}")
        check(abs(st["pose"]["x"] - 3.5) < 1e-9 and abs(st["pose"]["y"] + 0.5) < 1e-9
              and abs(st["pose"]["yaw"] + 1.0) < 1e-9, f"pose at the goal: {st['pose']}")
        g = st["goals"][-1]
        check(g["status"] == "succeeded" and g["frame_id"] == "map" and abs(g["yaw"] + 1.0) < 1e-9,
              f"goal recorded: {g['status']} {g['frame_id']} yaw {g['yaw']:.6f}")
        a = got["amcl"][-1][1]
        check(abs(a.pose.pose.position.x - 3.5) < 1e-9, "amcl follows the pose")
        o = got["odom"][-1][1]
        op = compose((1.5, -2.0, 0.7), (o.pose.pose.position.x, o.pose.pose.position.y,
                                        yaw_of(o.pose.pose.orientation)))
        check(abs(op[0] - 3.5) < 1e-6 and abs(op[1] + 0.5) < 1e-6,
              f"start ⊕ odom = the map pose ({op[0]:.6f}, {op[1]:.6f})")

        # Abort.
        http("POST", port, "/mode", {"outcome": "abort", "error_code": 9000,
                                    "error_msg": "no valid path", "abort_after_s": 0.5})
        h, _ = send(0.0, 0.0, 0.0)
        r = result_of(h)
        check(r is not None and r.status == 6 and r.result.error_code == 9000
              and r.result.error_msg == "no valid path",
              f"abort mode: status {r and r.status} code {r and r.result.error_code} "
              f"msg {r and r.result.error_msg!r}")
        http("POST", port, "/mode", {"outcome": "succeed"})

        # Cancel.
        h, _ = send(10.0, 0.0, 0.0)
        time.sleep(0.5)
        cf = h.cancel_goal_async()
        t = time.monotonic()
        while not cf.done() and time.monotonic() - t < 5:
            time.sleep(0.01)
        r = result_of(h)
        time.sleep(0.2)
        st = http("GET", port, "/state")
        p1 = st["pose"]
        time.sleep(0.3)
        p2 = http("GET", port, "/state")["pose"]
        check(cf.done() and len(cf.result().goals_canceling) == 1,
              f"cancel accepted ({cf.done() and len(cf.result().goals_canceling)} canceling)")
        check(r is not None and r.status == 5 and st["goals"][-1]["status"] == "canceled"
              and st["cancel_requests"] == 1,
              f"canceled: status {r and r.status}, recorded {st['goals'][-1]['status']}, "
              f"{st['cancel_requests']} cancel request(s)")
        check(p1 == p2, f"stopped after the cancel ({p1} -> {p2})")

        # Preemption.
        h1, _ = send(-5.0, 0.0, 0.0)
        time.sleep(0.4)
        h2, _ = send(-5.0, 1.0, 0.5)
        r1, r2 = result_of(h1), result_of(h2)
        st = http("GET", port, "/state")
        check(r1 is not None and r1.status == 6 and r2 is not None and r2.status == 4
              and [g["status"] for g in st["goals"][-2:]] == ["aborted", "succeeded"],
              f"preemption: old {r1 and r1.status} (ABORTED 6), new {r2 and r2.status}; "
              f"{[g['status'] for g in st['goals'][-2:]]}")

        # Teleop.
        http("POST", port, "/clear")
        before = http("GET", port, "/state")["pose"]
        tw = Twist()
        tw.linear.x, tw.angular.z = 0.5, 0.2
        for _ in range(10):
            cmd.publish(tw)
            time.sleep(0.1)
        time.sleep(0.8)  # older than 0.5 s: ignored
        mid = http("GET", port, "/state")
        time.sleep(0.5)
        after = http("GET", port, "/state")
        moved = math.hypot(mid["pose"]["x"] - before["x"], mid["pose"]["y"] - before["y"])
        check(len(mid["cmd_vel"]) == 10 and mid["cmd_vel"][0][1:] == [0.5, 0.0, 0.2],
              f"cmd_vel recorded: {len(mid['cmd_vel'])} x {mid['cmd_vel'][:1]}")
        check(0.45 <= moved <= 1.0 and mid["pose"] == after["pose"],
              f"teleop moved the robot {moved:.3f} m (expected ~0.5-0.75 m), then it stopped")

        t = time.monotonic()
        n_odom = len([1 for tm, _ in got.get("odom", []) if tm > t - 3.0])
        check(54 <= n_odom <= 66, f"odom at ~20 Hz ({n_odom} in 3 s)")

        # Domain isolation: a client in another domain sees nothing.
        ctx = rclpy.Context()
        rclpy.init(args=[], context=ctx, domain_id=other_domain,
                   signal_handler_options=SignalHandlerOptions.NO)
        other = rclpy.create_node("selftest_other", context=ctx)
        seen = []
        other.create_subscription(Odometry, "odom", lambda m: seen.append(m), qos_profile_sensor_data)
        ex2 = MultiThreadedExecutor(num_threads=2, context=ctx)
        ex2.add_node(other)
        threading.Thread(target=ex2.spin, daemon=True).start()
        time.sleep(2.0)
        names = other.get_node_names_and_namespaces()
        check(not seen and not any(n[0] in ("fake_tb3", "other") for n in names),
              f"domain {other_domain} sees no odom ({len(seen)}) and no fake node ({names})")
        ex2.shutdown()
        other.destroy_node()
        rclpy.shutdown(context=ctx)

        # SIGINT / SIGTERM: exit 0 promptly, with a goal running.
        h, _ = send(100.0, 0.0, 0.0)
        res = h.get_result_async()
        time.sleep(0.3)
        for proc, sig in ((p, signal.SIGINT), (p_ns, signal.SIGTERM)):
            t = time.monotonic()
            proc.send_signal(sig)
            try:
                rc = proc.wait(timeout=6)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"exit code {rc} {time.monotonic() - t:.2f} s after "
                           f"{signal.Signals(sig).name}")
        t = time.monotonic()
        while not res.done() and time.monotonic() - t < 3:
            time.sleep(0.01)
        r = res.result() if res.done() else None
        check(r is not None and r.status == 6, f"the goal running at shutdown ended "
                                               f"{r and r.status} (ABORTED)")
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(f"{results['pass']} passed, {results['fail']} failed in "
          f"{time.monotonic() - t_start:.1f} s", flush=True)
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    main()
