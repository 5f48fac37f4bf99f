"""What the Python end-to-end checks of fms_agent share (tests/ros2dds/e2e.py and
tests/ros2_live/live_check.py): JSON over HTTP to fms_server, a free loopback port, waiting
for a condition, and stopping the processes they started (each in its own process group).
Standard library only."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

# What a poll may raise while a process is starting or stopping: the poll counts as "not yet".
TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError)


def wait_for(fn, timeout, interval=0.05, budget=None):
    """Calls fn until it returns something truthy, or timeout (capped by `budget()`, the
    seconds the whole check has left, when given)."""
    if budget is not None:
        timeout = min(timeout, budget())
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
        except TRANSIENT:
            v = None
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


def http(method, url, body=None, timeout=5):
    """(status, decoded JSON body or text) of one request; HTTP errors are answers too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


class Api:
    """fms_server's HTTP API at `base` (http://host:port)."""

    def __init__(self, base):
        self.base = base

    def get(self, path):
        code, body = http("GET", self.base + path)
        if code != 200:
            raise ValueError(f"GET {path}: {code} {body}")
        return body

    def post(self, path, body=None):
        return http("POST", self.base + path, body if body is not None else {})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signal_group(p, sig):
    """Sends `sig` to the process group of `p` (started with start_new_session), or to `p`."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            p.send_signal(sig)


def reap(p, timeout=5):
    """Waits for `p`; SIGKILLs its group if it is still running after `timeout` seconds."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(p, signal.SIGKILL)
        p.wait()


def stop(p, sig=signal.SIGTERM, timeout=5):
    signal_group(p, sig)
    reap(p, timeout)


def stop_all(procs):
    """SIGTERM to every process first (all stop in parallel), then reaps each."""
    for p in procs:
        signal_group(p, signal.SIGTERM)
    for p in procs:
        reap(p)
