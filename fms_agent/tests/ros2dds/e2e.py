#!/usr/bin/env python3
"""End-to-end test of `fms_agent --interface ros2dds` against the fake ROS 2 robot.

Starts, inside the current network namespace (scripts/check_ros2dds.sh makes a loopback-only
one, so DDS discovery stays private):
  * fake_robot.py          a ROS 2 robot over Cyclone DDS (odom, amcl_pose, battery_state,
                           cmd_vel, a fake Nav2 navigate_to_pose), domain $ROS_DOMAIN_ID;
  * fms_server             $FMS_SERVER_BIN (default target/debug/fms_server), fresh data dir,
                           embedded Zenoh router on 127.0.0.1:<free port>;
  * fms_agent              $FMS_AGENT_BIN (default target/ros2dds/fms_agent)
                           --robot-id tb3_1 --interface ros2dds, ROS_DISTRO=jazzy;
then checks, printing PASS/FAIL with the measured figures:
  a. tb3_1 shows in GET /api/robots with the AMCL pose (frame map, x/y within 1e-3) and
     battery 87 % (+/-0.5) within 2 s of the agent's start;
  b. a task to (x, y, yaw) reaches the fake Nav2 as that goal in frame map; the task's
     progress rises above 0 while feedback streams; success makes it COMPLETED;
  c. with the fake Nav2 aborting, a task with retries 0 ends FAILED after exactly one goal;
  d. cancelling a task while it drives reaches cancel_goal and the task ends CANCELED;
  e. the fleet e-stop cancels the running goal and produces zero Twists on cmd_vel
     (several, about every 100 ms) until released, then none.
Exits non-zero on any failure; kills every child on exit; gives up after 170 s.

Only the standard library here; the fake robot needs cyclonedds (run this file with the venv
python of scripts/check_ros2dds.sh, which the fake robot then uses too, or set
FMS_E2E_PYTHON). Other knobs: FMS_E2E_AGENT_LOG (agent log filter, default "info"),
FMS_E2E_KEEP=1 (keep the temporary directory with the logs).
"""

import argparse
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import e2e_support  # noqa: E402  (fms_agent/tests/e2e_support.py)
from e2e_support import Api, free_port  # noqa: E402
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOTAL_LIMIT_S = 170.0
ROBOT = "tb3_1"
DISTRO = "jazzy"

T0 = time.monotonic()
passed = 0
failed = 0
children = []  # (name, Popen, log path)
tmpdir = None


def elapsed():
    return time.monotonic() - T0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def info(msg):
    print(f"  [{elapsed():6.2f}s] {msg}", flush=True)


def remaining():
    return max(0.0, TOTAL_LIMIT_S - elapsed())


def wait_for(fn, timeout, interval=0.05):
    """Calls fn until it returns something truthy, or timeout (capped by the total budget)."""
    return e2e_support.wait_for(fn, timeout, interval, budget=remaining)


def spawn(name, cmd, env=None, cwd=None):
    log = os.path.join(tmpdir, f"{name}.log")
    f = open(log, "w")
    info(f"start {name}: {' '.join(cmd)}")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    f.close()
    children.append((name, p, log))
    return p, log


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError as e:
        return [f"(cannot read {path}: {e})"]


def stop_children():
    e2e_support.stop_all([p for _name, p, _log in reversed(children)])


def dump_logs():
    for name, p, log in children:
        rc = p.poll()
        print(f"--- last 40 lines of {name} ({log}, exit {rc})")
        for line in tail(log):
            print(f"    {line}")


def watchdog():
    time.sleep(TOTAL_LIMIT_S + 5)
    print(f"FAIL: e2e exceeded its {TOTAL_LIMIT_S:.0f} s budget: killing everything", flush=True)
    try:
        dump_logs()
        stop_children()
    finally:
        os._exit(2)


def yaw_diff(a, b):
    return abs(math.atan2(math.sin(a - b), math.cos(a - b)))


def robot_entry(api):
    for r in api.get("/api/robots"):
        if r.get("id") == ROBOT:
            return r
    return None


def task_get(api, tid):
    return api.get(f"/api/tasks/{tid}")


def wait_task(api, tid, statuses, timeout, on_poll=None):
    """Polls the task until its status is in `statuses`; returns (task, seconds)."""
    t = time.monotonic()
    last = {}

    def poll():
        task = task_get(api, tid)
        last["task"] = task
        if on_poll:
            on_poll(task)
        return task if task["status"] in statuses else None

    task = wait_for(poll, timeout, 0.05)
    return task or last.get("task"), time.monotonic() - t


def create_task(api, x, y, yaw, retries=0):
    code, body = api.post("/api/tasks", {
        "robot_id": ROBOT,
        "target": {"x": x, "y": y, "yaw": yaw},
        "retries": retries,
    })
    if code not in (200, 201):
        raise RuntimeError(f"POST /api/tasks: {code} {body}")
    return body


def fake_goals(fake):
    return fake.get("/goals")


def robot_idle(api):
    r = robot_entry(api)
    st = (r or {}).get("state") or {}
    return r and r.get("presence") == "ONLINE" and st.get("mode") == "IDLE" and not st.get("task")


# --------------------------------------------------------------------------------------------


def test_a(api, fake, t_agent):
    """Robot visible with the AMCL pose and battery within 2 s of the agent's start."""
    want = fake.get("/state")
    wx, wy = want["pose"]["x"], want["pose"]["y"]
    ox, oy = want["odom_pose"]["x"], want["odom_pose"]["y"]
    info(f"fake robot: AMCL pose ({wx:.3f}, {wy:.3f}) frame map, odometry pose ({ox:.3f}, "
         f"{oy:.3f}) frame odom, battery {want['battery']}")
    seen = {}

    def poll():
        r = robot_entry(api)
        now = time.monotonic() - t_agent
        if r is None:
            return None
        seen.setdefault("listed", now)
        st = r.get("state")
        if not st:
            return None
        seen.setdefault("state", now)
        seen["last"] = st
        pose, bat = st["pose"], st["battery"]["percentage"]
        pose_ok = (abs(pose["x"] - wx) <= 1e-3 and abs(pose["y"] - wy) <= 1e-3
                   and pose.get("frame") == "map")
        bat_ok = abs(bat - 87.0) <= 0.5
        if pose_ok:
            seen.setdefault("pose", now)
        if bat_ok:
            seen.setdefault("battery", now)
        if pose_ok and bat_ok and r.get("presence") == "ONLINE":
            seen.setdefault("both", now)
            return True
        return None

    wait_for(poll, 20.0, 0.02)
    fmt = lambda k: f"{seen[k]:.2f} s" if k in seen else "never"  # noqa: E731
    info(f"after agent start: listed {fmt('listed')}, first state {fmt('state')}, AMCL pose "
         f"{fmt('pose')}, battery 87 % {fmt('battery')}")
    last = seen.get("last")
    if last:
        info(f"last state: pose {last['pose']} battery {last['battery']} mode {last['mode']}")
    t = seen.get("both")
    check(t is not None and t <= 2.0,
          f"(a) {ROBOT} ONLINE in /api/robots with the /amcl_pose pose ({wx:.3f}, {wy:.3f}, "
          f"frame map, within 1e-3) and battery 87 +/- 0.5 % at {fmt('both')} after the agent "
          "started (limit 2 s)")
    return t is not None


def test_b(api, fake):
    """A task reaches Nav2 as the right goal; progress rises; it completes."""
    fake.post("/reset")
    wait_for(lambda: robot_idle(api), 10.0)
    st = fake.get("/state")["pose"]
    x, y, yaw = round(st["x"] + 2.0, 3), round(st["y"] + 1.5, 3), 0.8
    dist = math.hypot(x - st["x"], y - st["y"])
    t_post = time.monotonic()
    task = create_task(api, x, y, yaw)
    tid = task["id"]
    info(f"(b) task {tid} to ({x}, {y}, yaw {yaw}), {dist:.2f} m away at 1 m/s")
    goal = wait_for(lambda: next(iter(fake_goals(fake)), None), 10.0, 0.02)
    t_goal = time.monotonic() - t_post
    if not check(goal is not None, f"(b) the goal reached the fake Nav2 {t_goal:.2f} s after the POST"):
        return
    ok = (goal["frame_id"] == "map" and abs(goal["x"] - x) < 1e-6 and abs(goal["y"] - y) < 1e-6
          and yaw_diff(goal["yaw"], yaw) < 1e-6 and abs(goal["z"]) < 1e-9)
    check(ok, f"(b) goal pose frame {goal['frame_id']!r} x {goal['x']:.6f} y {goal['y']:.6f} "
              f"yaw {goal['yaw']:.6f} (asked map {x}, {y}, {yaw}); behavior_tree "
              f"{goal['behavior_tree']!r}")
    prog = {"max": 0.0, "t": None, "samples": []}

    def on_poll(task):
        p = task.get("progress") or 0.0
        if task["status"] not in ("COMPLETED",):
            prog["samples"].append(round(p, 3))
        if p > prog["max"] and task["status"] != "COMPLETED":
            prog["max"] = p
            if prog["t"] is None and p > 0:
                prog["t"] = time.monotonic() - t_post

    done, dt = wait_task(api, tid, ("COMPLETED", "FAILED", "CANCELED"), dist / 1.0 + 15.0,
                         on_poll)
    samples = prog["samples"]
    uniq = [p for i, p in enumerate(samples) if i == 0 or p != samples[i - 1]]
    check(prog["t"] is not None and prog["max"] > 0.0,
          f"(b) task progress rose above 0 while driving (first at {prog['t'] or 0:.2f} s, max "
          f"{prog['max']:.3f}; values {uniq[:12]}{'...' if len(uniq) > 12 else ''})")
    check(done is not None and done["status"] == "COMPLETED",
          f"(b) task {done and done['status']} {dt:.2f} s after the goal (progress "
          f"{done and done.get('progress')}, error {done and done.get('error')})")
    n = len(fake_goals(fake))
    check(n == 1, f"(b) the fake Nav2 saw {n} goal(s) for the task (expected 1)")
    r = robot_entry(api)
    pose = ((r or {}).get("state") or {}).get("pose") or {}
    check(pose and abs(pose["x"] - x) < 0.05 and abs(pose["y"] - y) < 0.05,
          f"(b) /api/robots pose after arrival ({pose.get('x', float('nan')):.3f}, "
          f"{pose.get('y', float('nan')):.3f}) = the goal")


def test_c(api, fake):
    """Nav2 aborts: a task with no retries ends FAILED after one goal."""
    fake.post("/reset")
    fake.post("/mode", {"outcome": "abort", "abort_after_s": 1.0})
    wait_for(lambda: robot_idle(api), 10.0)
    st = fake.get("/state")["pose"]
    x, y = round(st["x"] - 2.0, 3), round(st["y"] + 0.5, 3)
    task = create_task(api, x, y, 0.0, retries=0)
    tid = task["id"]
    info(f"(c) task {tid} (retries {task.get('retries')}, max_attempts "
         f"{task.get('max_attempts')}) with the fake Nav2 aborting after 1 s")
    done, dt = wait_task(api, tid, ("COMPLETED", "FAILED", "CANCELED"), 15.0)
    time.sleep(0.5)  # a (wrong) retry would show up as a second goal by now
    goals = fake_goals(fake)
    check(done is not None and done["status"] == "FAILED",
          f"(c) task {done and done['status']} after {dt:.2f} s (attempts {done and done.get('attempts')}, "
          f"failures {done and done.get('failures')}, error {done and done.get('error')!r})")
    check(len(goals) == 1 and goals[0]["status"] == 6,
          f"(c) the fake Nav2 saw {len(goals)} goal(s) (expected 1, retries 0), ended "
          f"{[g['status_name'] for g in goals]}")
    err = (done or {}).get("error") or ""
    if DISTRO == "jazzy":
        check("navigation aborted" in err,
              f"(c) the task's error carries Nav2's error_msg (Jazzy result): {err!r}")
    fake.post("/mode", {"outcome": "succeed"})


def test_d(api, fake):
    """Cancel while driving: cancel_goal reaches Nav2, the task ends CANCELED."""
    fake.post("/reset")
    fake.post("/mode", {"drive_speed": 0.3})
    wait_for(lambda: robot_idle(api), 10.0)
    st = fake.get("/state")["pose"]
    x, y = round(st["x"] + 4.0, 3), round(st["y"], 3)
    task = create_task(api, x, y, 0.0)
    tid = task["id"]
    goal = wait_for(lambda: next(iter(fake_goals(fake)), None), 10.0, 0.02)
    if not check(goal is not None, f"(d) task {tid}: goal {goal and goal['goal_id']} driving"):
        return
    wait_for(lambda: (task_get(api, tid).get("progress") or 0) > 0, 3.0)
    time.sleep(0.3)
    t_cancel = time.monotonic()
    code, body = api.post(f"/api/tasks/{tid}/cancel")
    info(f"(d) POST /api/tasks/{tid}/cancel -> {code} status {isinstance(body, dict) and body.get('status')}")
    gid = goal["goal_id"]
    c = wait_for(lambda: next((c for c in fake.get("/cancels")
                               if c["goal_id"] == gid or gid in c["goals_canceling"]), None),
                 10.0, 0.02)
    t_c = time.monotonic() - t_cancel
    check(c is not None and gid in c["goals_canceling"] and c["return_code"] == 0,
          f"(d) cancel_goal for {gid} reached the fake Nav2 {t_c:.3f} s after the cancel "
          f"(request goal_id {c and c['goal_id']}, return_code {c and c['return_code']})")
    done, dt = wait_task(api, tid, ("COMPLETED", "FAILED", "CANCELED"), 10.0)
    check(done is not None and done["status"] == "CANCELED",
          f"(d) task {done and done['status']} {time.monotonic() - t_cancel:.2f} s after the cancel")
    g = wait_for(lambda: next((g for g in fake_goals(fake)
                               if g["goal_id"] == gid and g["status"] in (4, 5, 6)), None), 3.0)
    check(g is not None and g["status"] == 5,
          f"(d) the Nav2 goal ended {g and g['status_name']} (CANCELED)")
    fake.post("/mode", {"drive_speed": 1.0})


def test_e(api, fake):
    """Fleet e-stop: the goal is canceled, zero Twists on cmd_vel until release."""
    fake.post("/reset")
    fake.post("/mode", {"drive_speed": 0.3})
    wait_for(lambda: robot_idle(api), 10.0)
    st = fake.get("/state")["pose"]
    task = create_task(api, round(st["x"] - 4.0, 3), round(st["y"], 3), 0.0)
    tid = task["id"]
    goal = wait_for(lambda: next(iter(fake_goals(fake)), None), 10.0, 0.02)
    check(goal is not None, f"(e) task {tid} driving before the e-stop")
    time.sleep(0.3)
    before = len(fake.get("/cmd_vel"))
    t_e_wall = time.time()
    t_e = time.monotonic()
    code, body = api.post("/api/fleet/emergency-stop")
    check(code == 200 and isinstance(body, dict) and body.get("engaged") is True,
          f"(e) POST /api/fleet/emergency-stop -> {code} {body}")
    estopped = wait_for(lambda: ((robot_entry(api) or {}).get("state") or {}).get("mode")
                        == "ESTOPPED", 5.0, 0.02)
    t_mode = time.monotonic() - t_e
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t_e)))
    cmds = fake.get("/cmd_vel")
    after = [c for c in cmds if c["t"] >= t_e_wall - 0.05]

    def is_zero(c):
        return all(v == 0.0 for v in list(c["linear"].values()) + list(c["angular"].values()))

    zeros = [c for c in after if is_zero(c)]
    first = (zeros[0]["t"] - t_e_wall) if zeros else None
    span = (zeros[-1]["t"] - zeros[0]["t"]) if len(zeros) > 1 else 0.0
    rate = (len(zeros) - 1) / span if span > 0 else 0.0
    check(len(zeros) >= 5 and len(zeros) == len(after),
          f"(e) {len(zeros)} zero Twists on cmd_vel in the 1.5 s after the e-stop "
          f"(first after {first if first is None else round(first, 3)} s, ~{rate:.1f} Hz; "
          f"{len(after) - len(zeros)} non-zero; {before} Twists before)")
    check(bool(estopped), f"(e) {ROBOT} reports ESTOPPED {t_mode:.2f} s after the e-stop")
    gid = goal["goal_id"] if goal else None
    c = next((c for c in fake.get("/cancels") if gid and gid in c["goals_canceling"]), None)
    check(c is not None, f"(e) the e-stop canceled the running Nav2 goal {gid} "
                         f"({c and round(c['t'] - t_e_wall, 3)} s after the e-stop)")
    done, _ = wait_task(api, tid, ("COMPLETED", "FAILED", "CANCELED"), 5.0)
    check(done is not None and done["status"] in ("FAILED", "CANCELED"),
          f"(e) the running task ended {done and done['status']} (error {done and done.get('error')!r})")

    t_r = time.monotonic()
    code, body = api.post("/api/fleet/emergency-stop/release")
    check(code == 200 and isinstance(body, dict) and body.get("engaged") is False,
          f"(e) POST /api/fleet/emergency-stop/release -> {code} {body}")
    released = wait_for(lambda: ((robot_entry(api) or {}).get("state") or {}).get("mode")
                        not in (None, "ESTOPPED"), 5.0, 0.02)
    check(bool(released), f"(e) {ROBOT} leaves ESTOPPED {time.monotonic() - t_r:.2f} s after "
                          "the release")
    time.sleep(0.7)
    n1 = len(fake.get("/cmd_vel"))
    time.sleep(1.0)
    n2 = len(fake.get("/cmd_vel"))
    check(n2 == n1, f"(e) no Twists after the release ({n2 - n1} in the 1 s window from "
                    "0.7 s after it)")
    fake.post("/mode", {"drive_speed": 1.0})


# --------------------------------------------------------------------------------------------


def main():
    global tmpdir, DISTRO
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--distro", choices=("jazzy", "humble"), default="jazzy",
                    help="ROS_DISTRO for the agent and the fake robot's wire layout")
    ap.add_argument("--namespace", default="",
                    help="put the fake robot in this ROS namespace and start the agent with "
                         "--ros-args -r __ns:=<it> (default: the root namespace)")
    ap.add_argument("--only", default="abcde", help="subset of the checks to run, e.g. ab")
    args = ap.parse_args()
    DISTRO = args.distro

    server_bin = os.environ.get("FMS_SERVER_BIN") or os.path.join(ROOT, "target/debug/fms_server")
    agent_bin = os.environ.get("FMS_AGENT_BIN") or os.path.join(ROOT, "target/ros2dds/fms_agent")
    python = os.environ.get("FMS_E2E_PYTHON") or sys.executable
    domain = os.environ.get("ROS_DOMAIN_ID") or str(random.randint(1, 200))
    for what, path in (("FMS_SERVER_BIN", server_bin), ("FMS_AGENT_BIN", agent_bin)):
        if not os.access(path, os.X_OK):
            check(False, f"{what} {path} exists and is executable (build it first)")
            return
    tmpdir = tempfile.mkdtemp(prefix="fms-ros2dds-e2e-")
    threading.Thread(target=watchdog, daemon=True).start()
    print(f"== ros2dds e2e: domain {domain}, distro {args.distro}, namespace "
          f"{args.namespace or '/'}, logs in {tmpdir}", flush=True)

    base_env = dict(os.environ)
    for k in ("DATABASE_URL", "ZENOH_ENDPOINT", "FMS_SERVER_CONFIG", "PORT", "FMS_BIND",
              "FMS_ZENOH_LISTEN", "FMS_LOCATIONS", "FMS_AGENT_CONFIG", "ROBOT_ID",
              "FMS_INTERFACE", "FMS_RATE", "LOG_LEVEL", "ROS_DISTRO"):
        base_env.pop(k, None)
    base_env["ROS_DOMAIN_ID"] = domain

    # The fake robot first: a real robot's graph is up before its agent starts.
    control_port = free_port()
    fake_env = dict(base_env, PYTHONUNBUFFERED="1")
    robot_p, robot_log = spawn("fake_robot", [
        python, os.path.join(HERE, "fake_robot.py"), "--distro", args.distro,
        "--control-port", str(control_port)]
        + (["--namespace", args.namespace] if args.namespace else []), env=fake_env)
    fake = Api(f"http://127.0.0.1:{control_port}")
    if not check(wait_for(lambda: fake.get("/state"), 15.0, 0.1) is not None,
                 f"fake robot control API up on 127.0.0.1:{control_port}"):
        return

    zport = free_port()
    data_dir = os.path.join(tmpdir, "data")
    os.makedirs(data_dir)
    server_env = dict(base_env, FMS_DATA_DIR=data_dir)
    server_p, server_log = spawn("fms_server", [
        server_bin, "--bind", "127.0.0.1", "--port", "0",
        "--zenoh-listen", f"tcp/127.0.0.1:{zport}", "--data-dir", data_dir,
        "--frontend-dir", "/nonexistent", "--log-level", "info"], env=server_env, cwd=tmpdir)

    def server_addr():
        if server_p.poll() is not None:
            raise ConnectionError("fms_server exited")
        for line in tail(server_log, 200):
            if line.startswith("fms_server listening on "):
                return line.split()[3].replace("http://", "")
        return None

    addr = wait_for(server_addr, 30.0, 0.1)
    if not check(addr is not None, f"fms_server listening on {addr} (zenoh tcp/127.0.0.1:{zport})"):
        return
    api = Api(f"http://{addr}")

    agent_env = dict(base_env, ROS_DISTRO=args.distro)
    t_agent = time.monotonic()
    agent_p, _ = spawn("fms_agent", [
        agent_bin, "--robot-id", ROBOT, "--zenoh-endpoint", f"tcp/127.0.0.1:{zport}",
        "--interface", "ros2dds", "--rate", "10",
        "--log-level", os.environ.get("FMS_E2E_AGENT_LOG", "info")]
        + (["--ros-args", "-r", f"__ns:={args.namespace}"] if args.namespace else []),
        env=agent_env, cwd=tmpdir)

    ok = test_a(api, fake, t_agent)
    if not ok and agent_p.poll() is not None:
        check(False, f"fms_agent is running (exited with {agent_p.returncode})")
        return
    if not ok:
        # Give it a chance to come up late so that the other checks still say something.
        wait_for(lambda: robot_idle(api), 20.0, 0.1)
    tests = {"b": test_b, "c": test_c, "d": test_d, "e": test_e}
    for key in "bcde":
        if key not in args.only:
            continue
        if remaining() < 10:
            check(False, f"({key}) not run: out of time")
            continue
        try:
            tests[key](api, fake)
        except Exception as e:  # noqa: BLE001 - a crash is a failure of that check
            check(False, f"({key}) raised {type(e).__name__}: {e}")
    for name, p, _ in children:
        check(p.poll() is None, f"{name} still running at the end (exit {p.poll()})")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except KeyboardInterrupt:
        check(False, "interrupted")
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        check(False, f"e2e crashed: {type(e).__name__}: {e}")
    finally:
        if failed:
            dump_logs()
        stop_children()
        print(f"{passed} passed, {failed} failed in {elapsed():.1f} s", flush=True)
        if tmpdir and not failed and os.environ.get("FMS_E2E_KEEP") != "1":
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif tmpdir:
            print(f"logs kept in {tmpdir}")
    sys.exit(1 if failed or not passed else 0)
