"""A robot of the old Python FMS, for the migration tests: it speaks exactly the old protocol
over Zenoh (eclipse-zenoh from PyPI), and nothing of fms's own. No liveliness token.

usage: legacy_robot.py --id ID --connect ENDPOINT [--x X] [--y Y] [--speed M_PER_S]
                       [--rate HZ] [--battery PCT] [--log FILE]

robot -> server, JSON (timestamps are Unix seconds as floats):
  fms/robot/{id}/state/pose     {"position":{x,y,z},"orientation":{x,y,z,w},"timestamp"}  every tick
  fms/robot/{id}/state/battery  {"voltage","percentage","power_supply_status","timestamp"} every tick
  fms/robot/{id}/heartbeat      {"status","timestamp"}                                     every tick
  fms/robot/{id}/state/status   {"status","message","timestamp"} when the status changes, and in
                                answer to every cancel; status: IDLE, RUNNING, COMPLETED,
                                CANCELLED, ERROR
server -> robot:
  fms/robot/{id}/cmd/task       {"task_id","target_position":{x,y,z},"priority","timestamp"}
  fms/robot/{id}/cmd/cancel     {"timestamp","reason"}

On a task it answers RUNNING, drives straight to the target at --speed, then answers
COMPLETED (ERROR for a target farther than 1000 m away: unreachable). A task id it runs
already or has run before is not run again. A cancel stops it and it answers CANCELLED.
Malformed commands are ignored. Each task it starts is logged to --log as
"executing task task_id=ID" (the line the tests count, as for fms_agent's log).
Prints "legacy robot ready" once subscribed, then runs until killed.
"""
import argparse
import json
import math
import threading
import time

import zenoh

UNREACHABLE_M = 1000.0


class Robot:
    def __init__(self, args):
        self.id = args.id
        self.x, self.y, self.yaw = args.x, args.y, 0.0
        self.speed = args.speed
        self.battery = args.battery
        self.log_path = args.log
        self.lock = threading.Lock()
        self.task = None  # (task_id, x, y)
        self.done = set()
        self.status = None
        self.session = None

    def key(self, suffix):
        return f"fms/robot/{self.id}/{suffix}"

    def log(self, line):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")

    def put(self, suffix, body):
        self.session.put(self.key(suffix), json.dumps(body))

    def set_status(self, status, message, force=False):
        """Publishes the status when it changes (or when forced: a cancel's answer)."""
        if status == self.status and not force:
            return
        self.status = status
        self.put("state/status", {"status": status, "message": message, "timestamp": time.time()})

    def on_task(self, sample):
        try:
            cmd = json.loads(sample.payload.to_bytes())
            task_id = cmd["task_id"]
            tx = float(cmd["target_position"]["x"])
            ty = float(cmd["target_position"]["y"])
            if not isinstance(task_id, str) or not task_id:
                raise ValueError("task_id")
        except Exception as e:  # a message of another protocol, or garbage
            self.log(f"ignored malformed task command: {e!r}")
            return
        with self.lock:
            if self.task is not None and self.task[0] == task_id:
                self.log(f"duplicate of the running task task={task_id}")
                return
            if task_id in self.done:
                self.log(f"already ran task={task_id}")
                return
            self.task = (task_id, tx, ty)
            self.log(f"executing task task_id={task_id}")
            self.set_status("RUNNING", f"task {task_id} started")

    def on_cancel(self, sample):
        try:
            cmd = json.loads(sample.payload.to_bytes())
            reason = str(cmd.get("reason", ""))
        except Exception as e:
            self.log(f"ignored malformed cancel: {e!r}")
            return
        with self.lock:
            if self.task is not None:
                self.done.add(self.task[0])
                self.log(f"canceled task={self.task[0]}: {reason}")
                self.task = None
            self.set_status("CANCELLED", f"canceled: {reason}", force=True)

    def step(self, dt):
        with self.lock:
            if self.task is None:
                return
            task_id, tx, ty = self.task
            dx, dy = tx - self.x, ty - self.y
            dist = math.hypot(dx, dy)
            if dist > UNREACHABLE_M:
                self.done.add(task_id)
                self.task = None
                self.set_status("ERROR", f"task {task_id}: target unreachable")
                return
            reach = self.speed * dt
            if dist <= reach:
                self.x, self.y = tx, ty
                self.done.add(task_id)
                self.task = None
                self.set_status("COMPLETED", f"task {task_id} completed")
                return
            self.yaw = math.atan2(dy, dx)
            self.x += dx / dist * reach
            self.y += dy / dist * reach

    def publish_state(self):
        now = time.time()
        with self.lock:
            x, y, yaw = self.x, self.y, self.yaw
            running = self.task is not None
        self.put("state/pose", {
            "position": {"x": x, "y": y, "z": 0.0},
            "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)},
            "timestamp": now,
        })
        self.put("state/battery", {
            "voltage": 24.0,
            "percentage": self.battery,
            "power_supply_status": 2,
            "timestamp": now,
        })
        self.put("heartbeat", {"status": "RUNNING" if running else "OK", "timestamp": now})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--connect", required=True)
    p.add_argument("--x", type=float, default=0.0)
    p.add_argument("--y", type=float, default=0.0)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--battery", type=float, default=90.0)
    p.add_argument("--log")
    args = p.parse_args()

    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([args.connect]))
    # Wait for the router, and come back to it after it restarts.
    conf.insert_json5("connect/timeout_ms", "-1")
    conf.insert_json5("scouting/multicast/enabled", "false")
    robot = Robot(args)
    robot.session = zenoh.open(conf)
    subs = [
        robot.session.declare_subscriber(robot.key("cmd/task"), robot.on_task),
        robot.session.declare_subscriber(robot.key("cmd/cancel"), robot.on_cancel),
    ]
    with robot.lock:
        robot.set_status("IDLE", "ready")
    print("legacy robot ready", flush=True)
    dt = 1.0 / args.rate
    while True:
        robot.step(dt)
        robot.publish_state()
        time.sleep(dt)
    del subs


if __name__ == "__main__":
    main()
