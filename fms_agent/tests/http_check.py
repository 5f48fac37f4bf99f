"""What the Python end-to-end checks of fms_agent share (tests/ros2dds/e2e.py and
tests/ros2_live/live_check.py): JSON over HTTP to fms_server, a free loopback port, and
waiting for a condition. Standard library only."""

import json
import socket
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
