#!/usr/bin/env python3
"""Checks of the deployment kit: docker/ (Dockerfiles, Compose, Swarm, Kubernetes, systemd,
nginx, Prometheus, Grafana, scripts), config/, docs/deployment.md, launch/ and package.xml.

Run from anywhere:  python3 scripts/check_deploy.py [--root DIR] [--server-bin PATH] [--offline]

Static checks need Python 3.11+ and PyYAML. The tool checks install what they use when it is
missing (pip: jsonschema, kubernetes-validate; apt: nginx, shellcheck, prometheus for promtool,
systemd, openssl): see scripts/deploy/tools.py. The live checks start the real fms_server on
free loopback ports (--server-bin / $FMS_SERVER_BIN, else `cargo build --workspace --bins`):
see scripts/deploy/live.py. The live replica and PostgreSQL backup checks use the PostgreSQL
server of $FMS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) in scratch
databases, and skip what needs it when it is not reachable. --offline skips both the tools and
the live checks.

Prints one line per check and a final "N passed, M failed" line; exits 1 if any check failed.
A failure marked [server contract] names something the kit relies on that the running server
does not provide yet (a metric, /readyz, a config key).
"""

from __future__ import annotations

import argparse
import json
import os
import py_compile
import re
import signal
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: PyYAML is not installed (pip install pyyaml)")
    print("0 passed, 1 failed")
    sys.exit(1)

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy"))
import live  # noqa: E402  (scripts/deploy/live.py)
import tools  # noqa: E402  (scripts/deploy/tools.py)

# The environment variables the binaries read (besides FMS_*).
ALLOWED_ENV = {"ZENOH_ENDPOINT", "ROBOT_ID", "ROS_DOMAIN_ID", "LOG_LEVEL", "PORT", "CORS_ORIGINS",
               "DATABASE_URL"}
ALLOWED_ENV_PREFIX = "FMS_"

# The metrics fms_server's contract promises on /metrics: the only names rules and
# dashboards may use. Whether the running server has them yet is checked live.
CONTRACT_METRICS = {
    "fms_robots_total", "fms_robots_online", "fms_robots_stale", "fms_tasks_active",
    "fms_websocket_clients", "fms_tasks_total",
    "fms_zenoh_messages_total", "fms_zenoh_messages_rejected_total", "fms_zenoh_events_duplicate_total",
    "fms_zenoh_commands_sent_total", "fms_task_outcomes_total", "fms_http_requests_total",
    "fms_http_rate_limited_total", "fms_auth_failures_total",
    "fms_http_request_duration_seconds_bucket", "fms_http_request_duration_seconds_sum",
    "fms_http_request_duration_seconds_count",
    # dispatch across replicas (a single server reports fms_leader 1, fms_lease_token 0)
    "fms_leader", "fms_lease_token", "fms_leader_terms_total", "fms_commands_suppressed_total",
    "fms_store_up",
    # issue 15: e-stops that wait for the store, store write failures, refused events
    "fms_estop_unpersisted", "fms_store_write_failures_total", "fms_zenoh_events_implausible_total",
    "fms_store_writable", "fms_ws_slow_consumers_dropped_total",
}
# Labels the contract gives each labelled metric.
CONTRACT_LABELS = {
    "fms_tasks_total": {"status"}, "fms_zenoh_messages_total": {"kind"},
    "fms_task_outcomes_total": {"outcome"}, "fms_http_requests_total": {"method", "route", "status"},
    "fms_http_request_duration_seconds_bucket": {"method", "route", "le"},
    "fms_http_request_duration_seconds_sum": {"method", "route"},
    "fms_http_request_duration_seconds_count": {"method", "route"},
}
# Labels Prometheus adds at scrape time (prometheus.yml), usable in any selector.
SCRAPE_LABELS = {"job", "instance", "service", "__name__"}

API_PORT = 8088
ZENOH_PORT = 7447
PHONE_PORT = 8765
COMPOSE = "docker/docker-compose.yml"
COMPOSE_ALLINONE = "docker/compose.allinone.yaml"
STACK = "docker/stack.yml"
DOCKERFILES = {
    # file: {target: (needs HEALTHCHECK, ports it must EXPOSE)}
    "docker/Dockerfile.server": {"server": (True, {API_PORT, ZENOH_PORT}), "phone": (True, {PHONE_PORT})},
    "docker/Dockerfile.agent": {None: (False, set())},
    "docker/Dockerfile.frontend": {None: (True, {8080})},
}
SYSTEMD_UNITS = ("docker/systemd/fms-server.service", "docker/systemd/fms-agent@.service")
# systemd-analyze security's exposure score (0 = locked down, 10 = unprotected) not to exceed.
MAX_SYSTEMD_EXPOSURE = 3.0
HARDENING = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths",
             "CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter")
K8S_DIR = "docker/k8s"
K8S_SERVER = "docker/k8s/fms-server.yaml"
K8S_ZENOH = "docker/k8s/zenoh-router.yaml"
K8S_HPA = "docker/k8s/hpa.yaml"
K8S_PDB = "docker/k8s/pdb.yaml"
K8S_KUSTOMIZATION = "docker/k8s/kustomization.yaml"
NGINX_TLS = "docker/nginx/fms.conf"
NGINX_FRONTEND = "docker/nginx/frontend.conf.template"
PROMETHEUS = "docker/prometheus/prometheus.yml"
ALERTS = "docker/prometheus/alerts.yml"
GRAFANA = "docker/grafana/fms-dashboard.json"
SCRIPTS = ("docker/scripts/healthcheck.sh", "docker/scripts/backup.sh", "docker/scripts/restore.sh")
SERVER_CONFIGS = ("config/server.prod.toml", "docker/config/server.container.toml")
DOCS = "docs/deployment.md"
LAUNCH_DIRS = ("launch", "fms_agent/launch")
LAUNCH_FILES = ("agent.launch.py", "fleet_demo.launch.py", "fleet_sim.launch.py", "server.launch.py")
ROS_PACKAGES = ("fms_msgs", "fms_agent", "fms_server")


class CheckFailed(Exception):
    """A check's reason for failing."""


class ContractPending(CheckFailed):
    """The kit relies on something of the server contract the running server lacks yet."""


class Runner:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.pending: list[str] = []

    def check(self, name: str, fn) -> None:
        t0 = time.monotonic()
        try:
            detail = fn()
        except ContractPending as e:
            self.failed += 1
            self.pending.append(f"{name}: {e}")
            print(f"FAIL: {name}: {e} [server contract]")
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL: {name}: {e}")
        except tools.ToolMissing as e:
            self.failed += 1
            print(f"FAIL: {name}: tool unavailable: {e}")
        except Exception as e:  # a crash in a check is a failure, not a traceback
            self.failed += 1
            print(f"FAIL: {name}: {type(e).__name__}: {e}")
        else:
            self.passed += 1
            slow = time.monotonic() - t0
            timing = f" [{slow:.1f}s]" if slow >= 2 else ""
            print(f"PASS: {name}" + (f" ({detail})" if detail else "") + timing)
        sys.stdout.flush()


def fail(msg: str):
    raise CheckFailed(msg)


# --------------------------------------------------------------------- helpers


def read(root: Path, rel: str) -> str:
    p = root / rel
    if not p.is_file():
        fail(f"{rel} does not exist")
    return p.read_text(encoding="utf-8")


def load_yaml_docs(root: Path, rel: str) -> list:
    try:
        return [d for d in yaml.safe_load_all(read(root, rel)) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{rel} is not valid YAML: {e}")


def load_yaml(root: Path, rel: str):
    docs = load_yaml_docs(root, rel)
    if len(docs) != 1:
        fail(f"{rel}: expected one YAML document, found {len(docs)}")
    return docs[0]


def walk_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(k)
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)


def env_allowed(name: str) -> bool:
    return name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIX)


# Compose interpolation: $VAR or ${VAR...}; "$$" is a literal dollar.
INTERP_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


def interpolated_vars(text: str) -> set[str]:
    text = text.replace("$$", "")
    return {a or b for a, b in INTERP_RE.findall(text)}


def environment_keys(env) -> list[str]:
    if env is None:
        return []
    if isinstance(env, dict):
        return [str(k) for k in env]
    if isinstance(env, list):
        return [str(item).split("=", 1)[0] for item in env]
    fail(f"unexpected environment form: {env!r}")


def container_ports(ports) -> set[int]:
    """Container-side ports of a compose `ports:` list (short or long syntax)."""
    out = set()
    for p in ports or []:
        if isinstance(p, dict):
            out.add(int(str(p["target"])))
            continue
        spec = str(p).split("/", 1)[0]  # drop /tcp, /udp
        container = spec.rsplit(":", 1)[-1]
        if "-" in container:
            lo, hi = (int(x) for x in container.split("-", 1))
            out.update(range(lo, hi + 1))
        else:
            out.add(int(container))
    return out


# --------------------------------------------------------------------- YAML


def check_yaml_file(root: Path, rel: str):
    docs = load_yaml_docs(root, rel)
    if not docs:
        fail(f"{rel} is empty")
    return f"{len(docs)} document{'s' if len(docs) != 1 else ''}"


# --------------------------------------------------------------------- parse everything


def check_parses(root: Path, rel: str):
    text = read(root, rel)
    if rel.endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            fail(f"not valid JSON: {e}")
        return "JSON"
    if rel.endswith(".toml"):
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            fail(f"not valid TOML: {e}")
        return f"TOML, {len(doc)} keys"
    docs = load_yaml_docs(root, rel)
    if not docs:
        fail(f"{rel} is empty")
    return f"{len(docs)} YAML document{'s' if len(docs) != 1 else ''}"


# --------------------------------------------------------------------- compose


def compose_doc(root: Path, rel: str) -> dict:
    doc = load_yaml(root, rel)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        fail(f"{rel} has no services")
    return doc


def is_ours(svc: dict) -> bool:
    """A service running one of our images (built here, or fms-* from a registry)."""
    image = str(svc.get("image", ""))
    return "build" in svc or re.search(r"(^|/)fms-[a-z]+(:|$)", image) is not None


def check_compose_schema(root: Path, rel: str):
    errors = tools.compose_schema_errors(load_yaml(root, rel))
    if errors:
        fail("; ".join(errors[:6]) + (f" (+{len(errors) - 6} more)" if len(errors) > 6 else ""))
    return f"compose-spec schema ({tools.COMPOSE_SCHEMA.name}), jsonschema {tools.TOOLS.get('jsonschema')}"


def check_compose_env(root: Path, rel: str):
    doc = compose_doc(root, rel)
    bad = set()
    for name, svc in doc["services"].items():
        if not is_ours(svc):
            continue
        if "env_file" in svc:
            fail(f"service {name} uses env_file, which this check cannot verify")
        bad.update(f"{name}:{k}" for k in environment_keys(svc.get("environment")) if not env_allowed(k))
    bad.update(v for s in walk_strings(doc) for v in interpolated_vars(s) if not env_allowed(v))
    if bad:
        fail(f"unexpected environment variables {sorted(bad)}; allowed: "
             f"{sorted(ALLOWED_ENV)} and {ALLOWED_ENV_PREFIX}*")
    return None


def check_compose_port(root: Path, rel: str, service: str, port: int):
    services = compose_doc(root, rel)["services"]
    if service not in services:
        fail(f"{rel} has no service {service!r}")
    ports = container_ports(services[service].get("ports"))
    if port not in ports:
        fail(f"service {service} publishes {sorted(ports) or 'no ports'}, not {port}")
    return None


def healthcheck_text(svc: dict) -> str:
    test = (svc.get("healthcheck") or {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


def check_compose_consistency(root: Path, rel: str):
    """depends_on targets exist, are health-gated and have a healthcheck; no core service waits
    for a profiled one; build contexts, Dockerfiles, targets and bind-mounted files exist;
    named volumes are declared; Zenoh endpoints name a service that serves 7447."""
    doc = compose_doc(root, rel)
    services = doc["services"]
    base = (root / rel).parent
    problems = []
    gated = 0
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on is a list (no health condition)")
            deps = {}
        for dep, spec in deps.items():
            if dep not in services:
                problems.append(f"{name} depends on unknown service {dep}")
                continue
            cond = (spec or {}).get("condition")
            if cond != "service_healthy":
                problems.append(f"{name} -> {dep}: condition {cond!r}, not service_healthy")
            if not healthcheck_text(services[dep]):
                problems.append(f"{name} waits for {dep}, which has no healthcheck")
            if services[dep].get("profiles") and not svc.get("profiles"):
                problems.append(f"{name} (always started) depends on {dep} (profiles {services[dep]['profiles']})")
            gated += 1
        hc = svc.get("healthcheck")
        if hc and not hc.get("disable") and not healthcheck_text(svc):
            problems.append(f"{name}: healthcheck without test")
        build = svc.get("build")
        if build:
            ctx = base / (build.get("context", ".") if isinstance(build, dict) else build)
            dockerfile = ctx / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: {dockerfile.relative_to(root) if dockerfile.is_relative_to(root) else dockerfile} missing")
            elif isinstance(build, dict) and build.get("target"):
                stages = {st["name"] for st in dockerfile_stages(dockerfile.read_text(encoding="utf-8"))}
                if build["target"] not in stages:
                    problems.append(f"{name}: build target {build['target']!r} is not a stage of {dockerfile.name}")
        for v in svc.get("volumes") or []:
            src = v.get("source") if isinstance(v, dict) else str(v).split(":", 1)[0]
            if src and src.startswith((".", "/")):
                if not (base / src).exists():
                    problems.append(f"{name}: bind mount source {src} does not exist")
            elif src and src not in (doc.get("volumes") or {}):
                problems.append(f"{name}: volume {src} is not declared under volumes:")
        env = svc.get("environment") or {}
        env = env if isinstance(env, dict) else dict(str(e).split("=", 1) for e in env if "=" in str(e))
        zep = str(env.get("ZENOH_ENDPOINT", ""))
        m = re.fullmatch(r"tcp/([A-Za-z0-9_.-]+):(\d+)", zep)
        if zep and not m:
            problems.append(f"{name}: ZENOH_ENDPOINT {zep!r} is not tcp/HOST:PORT")
        elif m and m.group(1) in services and int(m.group(2)) != ZENOH_PORT:
            problems.append(f"{name}: ZENOH_ENDPOINT port {m.group(2)} is not {ZENOH_PORT}")
        elif m and m.group(1) not in services and m.group(1) not in ("localhost", "127.0.0.1"):
            problems.append(f"{name}: ZENOH_ENDPOINT host {m.group(1)} is no service of {rel}")
    if problems:
        fail("; ".join(problems))
    return f"{len(services)} services, {gated} health-gated dependencies"


def check_compose_services(root: Path):
    """The distributed stack the issue asks for."""
    services = compose_doc(root, COMPOSE)["services"]
    zr = services.get("zenoh-router") or fail("no zenoh-router service")
    if not str(zr.get("image", "")).startswith("eclipse/zenoh:"):
        fail(f"zenoh-router image {zr.get('image')!r} is not eclipse/zenoh:<version>")
    for name in ("fms-server", "fms-frontend"):
        if name not in services:
            fail(f"no {name} service")
    agents = {n: s for n, s in services.items() if n.startswith("robot-agent")}
    ids = {str((s.get("environment") or {}).get("ROBOT_ID")) for s in agents.values()}
    if len(agents) < 2 or len(ids) < len(agents):
        fail(f"want two agents with distinct ROBOT_IDs, have {sorted(agents)} with {sorted(ids)}")
    phone = services.get("phone-server") or fail("no phone-server service")
    if "mobile" not in (phone.get("profiles") or []):
        fail(f"phone-server profiles {phone.get('profiles')}, want mobile")
    if "phone" not in " ".join(map(str, phone.get("command") or [])) and \
            (phone.get("build") or {}).get("target") != "phone":
        fail("phone-server neither runs `fms_server phone` nor builds the phone target")
    if str(PHONE_PORT) not in healthcheck_text(phone):
        fail("phone-server healthcheck does not probe 8765")
    if "/healthz" not in healthcheck_text(services["fms-server"]):
        fail("fms-server healthcheck does not probe /healthz")
    return f"router, server, frontend, {len(agents)} agents, phone (mobile profile)"


# --------------------------------------------------------------------- replicas


# Values clap's BoolishValueParser reads as true (FMS_REPLICAS).
TRUTHY = {"1", "true", "t", "yes", "y", "on"}
# A compose interpolation that stops the deploy when the variable is unset or empty.
REQUIRED_INTERP = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")
# Swarm templates that differ between any two tasks, even two of one slot during a
# start-first update ({{.Task.Slot}} does not).
SWARM_UNIQUE_TEMPLATE = re.compile(r"\{\{\s*\.Task\.(Name|ID)\s*\}\}")


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgres://", "postgresql://"))


def replica_rules(where: str, count: int, replica_mode, database_url, replica_id) -> list[str]:
    """Problems of a server with `count` instances (or more under an autoscaler).

    Several servers are safe only as replicas: FMS_REPLICAS on, one PostgreSQL database
    for all of them (the dispatch lease lives there; the server refuses SQLite), and a
    replica id that differs per pod/task (the lease holder's name). One server that is not
    a replica is the single dispatcher. Each argument after `count` is a (ok, what) pair
    describing how the manifest sets it, or None when it does not."""
    problems = []
    mode_on = replica_mode is not None and replica_mode[0]
    if count > 1 and not mode_on:
        problems.append(f"{where}: {count} server instances without FMS_REPLICAS=1: each would dispatch "
                        "and command the robots on its own")
    if mode_on or count > 1:
        if database_url is None or not database_url[0]:
            problems.append(f"{where}: replicas need DATABASE_URL to name one PostgreSQL database for all "
                            f"of them ({database_url[1] if database_url else 'not set'})")
        if replica_id is None or not replica_id[0]:
            problems.append(f"{where}: FMS_REPLICA_ID must differ per instance "
                            f"({replica_id[1] if replica_id else 'not set'})")
    return problems


# --------------------------------------------------------------------- Swarm


def check_stack(root: Path):
    doc = load_yaml(root, STACK)
    if not str(doc.get("version", "")).startswith("3"):
        fail("docker stack deploy reads Compose v3: set version: \"3.x\"")
    problems = []
    for name, svc in doc["services"].items():
        for key in ("build", "profiles", "container_name", "depends_on"):
            if key in svc:
                problems.append(f"{name}: {key} (ignored or refused by docker stack deploy)")
        dep = svc.get("deploy") or {}
        for key in ("replicas", "restart_policy", "update_config"):
            if key not in dep:
                problems.append(f"{name}: deploy.{key} missing")
        if "image" not in svc:
            problems.append(f"{name}: no image")
        if not healthcheck_text(svc):
            problems.append(f"{name}: no healthcheck")
    srv = doc["services"].get("fms-server") or fail("no fms-server service")
    dep = srv.get("deploy") or {}
    for s in srv.get("secrets") or []:
        src = s["source"] if isinstance(s, dict) else s
        if src not in (doc.get("secrets") or {}):
            problems.append(f"secret {src} not declared")
    nets = doc.get("networks") or {}
    if not any((n or {}).get("driver") == "overlay" for n in nets.values()):
        problems.append("no overlay network")
    if problems:
        fail("; ".join(problems))
    # `docker stack config` interpolates like `docker stack deploy`: give the variables the
    # header tells the operator to export, so a required one (${VAR:?...}) resolves.
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL",)}
    os.environ.setdefault("DATABASE_URL", "postgres://fms:secret@postgres.example.org:5432/fms")
    try:
        out = tools.docker_stack_config(root / STACK)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    n = len(yaml.safe_load(out).get("services", {}))
    mode = "replicas" if dep.get("replicas", 1) > 1 else "single server"
    return f"{n} services, fms-server: {dep.get('replicas', 1)} ({mode}); docker stack config {tools.TOOLS.get('docker CLI')} accepts it"


def check_stack_server(root: Path):
    srv = load_yaml(root, STACK)["services"].get("fms-server") or fail("no fms-server service")
    problems = stack_server_rules(srv)
    if problems:
        fail("; ".join(problems))
    dep = srv.get("deploy") or {}
    order = (dep.get("update_config") or {}).get("order", "stop-first")
    if dep.get("replicas", 1) > 1:
        return f"{dep['replicas']} replicas (FMS_REPLICAS, PostgreSQL DATABASE_URL, FMS_REPLICA_ID per task), {order}"
    return f"single server, {order}"


def stack_server_rules(srv: dict) -> list[str]:
    """fms-server in the Swarm stack: several tasks only as replicas on PostgreSQL, each with
    its own FMS_REPLICA_ID; a single non-replica server updated stop-first (never two
    dispatchers side by side) and pinned to the node that keeps its volume."""
    dep = srv.get("deploy") or {}
    env = srv.get("environment") or {}
    env = env if isinstance(env, dict) else dict(str(e).split("=", 1) for e in env if "=" in str(e))
    env = {k: str(v) for k, v in env.items() if v is not None}
    count = dep.get("replicas", 1)
    mode = env.get("FMS_REPLICAS")
    db = env.get("DATABASE_URL")
    rid = env.get("FMS_REPLICA_ID")
    problems = replica_rules(
        "stack.yml fms-server", count,
        None if mode is None else (mode.strip().lower() in TRUTHY, f"FMS_REPLICAS={mode!r}"),
        None if db is None else (
            is_postgres_url(db) or REQUIRED_INTERP.fullmatch(db) is not None
            or bool(re.fullmatch(r"\$\{[A-Za-z_]\w*:?-(postgres(ql)?://[^}]*)\}", db)),
            f"{db!r} may be empty or not PostgreSQL; use a postgres:// URL or ${{DATABASE_URL:?...}}"),
        None if rid is None else (SWARM_UNIQUE_TEMPLATE.search(rid) is not None,
                                  f"{rid!r}; use the template {{{{.Task.Name}}}} (unique per task)"))
    order = (dep.get("update_config") or {}).get("order", "stop-first")
    replicas = count > 1 or (mode or "").strip().lower() in TRUTHY
    if not replicas:
        if order != "stop-first":
            problems.append(f"stack.yml fms-server: a single server that is not a replica must update stop-first "
                            f"(order {order!r} runs two dispatchers side by side)")
        mounts = [v for v in srv.get("volumes") or [] if not str(v.get("source") if isinstance(v, dict)
                                                                 else v).startswith(("/", "."))]
        if mounts and not (dep.get("placement") or {}).get("constraints"):
            problems.append("stack.yml fms-server has a named volume (node-local) but no placement constraint")
    return problems


# --------------------------------------------------------------------- Dockerfiles


def dockerfile_stages(text: str) -> list[dict]:
    """Build stages: {name, base, instrs: [(INSTRUCTION, args)]}, continuations joined."""
    joined = re.sub(r"\\\r?\n", " ", text)
    stages: list[dict] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"name": name, "base": parts[0], "instrs": []})
        elif stages:
            stages[-1]["instrs"].append((word, rest))
        elif word not in ("ARG",):
            fail(f"{word} before the first FROM")
    if not stages:
        fail("no FROM instruction")
    return stages


def stage_chain(stages: list[dict], target: str | None) -> list[dict]:
    """The target stage (default: the last) and the local stages it is built FROM, base first."""
    by_name = {s["name"]: s for s in stages if s["name"]}
    st = by_name.get(target) if target else stages[-1]
    if st is None:
        fail(f"no stage {target!r}")
    chain = [st]
    while st["base"] in by_name:
        st = by_name[st["base"]]
        chain.insert(0, st)
    return chain


def dockerignored(root: Path) -> list[str]:
    p = root / ".dockerignore"
    if not p.is_file():
        return []
    return [l.strip().rstrip("/") for l in p.read_text().splitlines() if l.strip() and not l.startswith("#")]


def check_dockerfile(root: Path, rel: str, targets: dict):
    text = read(root, rel)
    stages = dockerfile_stages(text)
    names = {s["name"] for s in stages if s["name"]}
    ignored = dockerignored(root)
    problems, details = [], []
    # COPY/ADD sources exist in the build context (the repository root) and are not ignored
    for st in stages:
        for word, args in st["instrs"]:
            if word not in ("COPY", "ADD"):
                continue
            opts = re.findall(r"--(\w+)(?:=(\S+))?", args)
            from_ = dict(opts).get("from")
            parts = [p for p in args.split() if not p.startswith("--")]
            if parts and parts[0].startswith("["):
                parts = json.loads(" ".join(parts))
            srcs = parts[:-1]
            if from_:
                if from_ not in names and ":" not in from_ and "/" not in from_:
                    problems.append(f"COPY --from={from_}: no such stage")
                continue
            for src in srcs:
                if src.startswith(("http://", "https://")):
                    continue
                matches = list(root.glob(src)) if any(c in src for c in "*?[") else [root / src]
                if not matches or not all(m.exists() for m in matches):
                    problems.append(f"COPY source {src} does not exist")
                elif any(src == ig or src.startswith(ig + "/") for ig in ignored):
                    problems.append(f"COPY source {src} is excluded by .dockerignore")
    for target, (need_hc, need_expose) in targets.items():
        chain = stage_chain(stages, target)
        instrs = [i for st in chain for i in st["instrs"]]
        label = target or "final stage"
        users = [a for w, a in instrs if w == "USER"]
        if not users:
            problems.append(f"{label}: no USER (it would run as root)")
        elif users[-1].split(":", 1)[0] in ("root", "0"):
            problems.append(f"{label}: runs as {users[-1]!r}")
        hcs = [a for w, a in instrs if w == "HEALTHCHECK"]
        if need_hc and (not hcs or hcs[-1].upper().startswith("NONE")):
            problems.append(f"{label}: no HEALTHCHECK")
        exposed = set()
        for w, a in instrs:
            if w == "EXPOSE":
                exposed.update(int(p.split("/")[0]) for p in a.split())
        if not need_expose <= exposed:
            problems.append(f"{label}: EXPOSE {sorted(exposed)} lacks {sorted(need_expose - exposed)}")
        details.append(f"{label}: USER {users[-1] if users else '?'}" + (", HEALTHCHECK" if hcs else ""))
    if problems:
        fail("; ".join(problems))
    return "; ".join(details)


def check_agent_image(root: Path):
    stages = dockerfile_stages(read(root, "docker/Dockerfile.agent"))
    text = read(root, "docker/Dockerfile.agent")
    if not all(s["base"].startswith("ros:") for s in stages):
        fail(f"stages are not all on a ROS 2 base image: {[s['base'] for s in stages]}")
    m = re.search(r"ARG FEATURES=(\S+)", text)
    if not m or "ros2" not in m.group(1).split(","):
        fail("the agent is not built with the ros2 feature (ARG FEATURES=ros2...)")
    if '--features "${FEATURES}"' not in text or "setup.bash" not in text:
        fail("cargo build does not use --features \"${FEATURES}\" with ROS sourced")
    return f"base {stages[-1]['base']}, features {m.group(1)}"


def check_server_image_config(root: Path):
    """The config the server image ships is the one the Swarm stack and Kubernetes select."""
    text = read(root, "docker/Dockerfile.server")
    m = re.search(r"COPY\s+docker/config/server\.container\.toml\s+(\S+)", text)
    if not m:
        fail("Dockerfile.server does not ship docker/config/server.container.toml")
    path = m.group(1)
    stack = load_yaml(root, STACK)["services"]["fms-server"].get("environment") or {}
    dep = k8s_object(root, K8S_SERVER, "Deployment", "fms-server")
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    for where, val in (("stack.yml", stack.get("FMS_SERVER_CONFIG")), ("k8s", env.get("FMS_SERVER_CONFIG"))):
        if val != path:
            fail(f"{where} FMS_SERVER_CONFIG is {val!r}, the image ships {path}")
    cfg = tomllib.loads(read(root, "docker/config/server.container.toml"))
    secret = (cfg.get("auth") or {}).get("jwt_secret_file", "")
    if not secret.startswith("/run/secrets/"):
        fail(f"jwt_secret_file {secret!r} is not under /run/secrets (Swarm secrets, k8s mount)")
    name = secret.rsplit("/", 1)[1]
    targets = [s.get("target") for s in load_yaml(root, STACK)["services"]["fms-server"].get("secrets", [])
               if isinstance(s, dict)]
    if name not in targets:
        fail(f"stack.yml mounts no secret as {name}")
    vols = dep["spec"]["template"]["spec"]["volumes"]
    items = [i.get("path") for v in vols if "secret" in v for i in v["secret"].get("items", [])]
    if name not in items:
        fail(f"the k8s Deployment mounts no secret item at {secret}")
    return f"{path}, JWT secret {secret} in Swarm and k8s"


# --------------------------------------------------------------------- Kubernetes


def k8s_object(root: Path, rel: str, kind: str, name: str) -> dict:
    for d in load_yaml_docs(root, rel):
        if isinstance(d, dict) and d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    fail(f"{rel} has no {kind} named {name!r}")


def k8s_manifests(root: Path) -> list[Path]:
    return sorted(p for p in (root / K8S_DIR).glob("*.yaml") if p.name != "kustomization.yaml")


def check_k8s_schema(root: Path):
    paths = k8s_manifests(root)
    versions = tools.kubernetes_validate(paths)
    return f"{len(paths)} files, strict, against Kubernetes {versions} (kubernetes-validate {tools.TOOLS.get('kubernetes-validate')})"


def probe_target(container: dict, probe_name: str) -> tuple[str, int]:
    probe = container.get(probe_name) or fail(f"container {container.get('name')} has no {probe_name}")
    http = probe.get("httpGet") or fail(f"{probe_name} is not an httpGet probe")
    port = http.get("port")
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
        if port not in named:
            fail(f"{probe_name} uses port name {port!r}, which the container does not declare")
        port = named[port]
    return http.get("path"), int(port)


def server_container(root: Path) -> tuple[dict, dict, dict]:
    dep = k8s_object(root, K8S_SERVER, "Deployment", "fms-server")
    pod = dep["spec"]["template"]["spec"]
    c = next((c for c in pod["containers"] if c.get("name") == "fms-server"), pod["containers"][0])
    return dep, pod, c


def check_k8s_probes(root: Path):
    _, _, c = server_container(root)
    live = probe_target(c, "livenessProbe")
    ready = probe_target(c, "readinessProbe")
    if live != ("/healthz", API_PORT):
        fail(f"livenessProbe is {live}, expected ('/healthz', {API_PORT})")
    if ready != ("/readyz", API_PORT):
        fail(f"readinessProbe is {ready}, expected ('/readyz', {API_PORT})")
    return "liveness /healthz, readiness /readyz on 8088"


def check_k8s_server_env_and_security(root: Path):
    dep, pod, c = server_container(root)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    bad = sorted(k for k in env if not env_allowed(k))
    if bad:
        fail(f"unexpected environment variables {bad}")
    if env.get("ZENOH_ENDPOINT") != f"tcp/zenoh-router:{ZENOH_PORT}":
        fail(f"ZENOH_ENDPOINT is {env.get('ZENOH_ENDPOINT')!r}")
    non_root = (pod.get("securityContext") or {}).get("runAsNonRoot") or (
        c.get("securityContext") or {}).get("runAsNonRoot")
    if non_root is not True:
        fail("runAsNonRoot is not set")
    if "resources" not in c or not {"requests", "limits"} <= set(c["resources"]):
        fail("container lacks resources.requests/limits")
    replicas = dep["spec"].get("replicas", 1)
    problems = k8s_replica_rules(root, max(replicas, k8s_hpa_max(root)))
    strategy = dep["spec"].get("strategy") or {}
    if not k8s_replica_mode(c) and replicas == 1:
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
        if strategy.get("type", "RollingUpdate") != "Recreate" and str(surge) not in ("0", "0%"):
            problems.append(f"strategy {strategy or 'RollingUpdate (default)'}: a single server that is not a "
                            "replica must never run beside its successor: Recreate")
    if problems:
        fail("; ".join(problems))
    if k8s_replica_mode(c):
        return f"{replicas} replicas (FMS_REPLICAS, PostgreSQL from the Secret, FMS_REPLICA_ID from the pod name), " \
               f"{strategy.get('type', 'RollingUpdate')}"
    return "single server, Recreate"


def k8s_env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def k8s_replica_mode(container: dict) -> bool:
    v = k8s_env(container).get("FMS_REPLICAS", {}).get("value")
    return v is not None and str(v).strip().lower() in TRUTHY


def k8s_hpa_max(root: Path) -> int:
    if not (root / K8S_HPA).is_file():
        return 1
    hpa = k8s_object(root, K8S_HPA, "HorizontalPodAutoscaler", "fms-server")
    return int(hpa["spec"].get("maxReplicas", 1))


def k8s_replica_rules(root: Path, count: int) -> list[str]:
    """The Deployment's pods (up to `count`, with the HPA) as replicas: FMS_REPLICAS,
    DATABASE_URL from a Secret (the URL itself cannot be seen here; a literal must be
    PostgreSQL) that is not optional, FMS_REPLICA_ID per pod from the downward API."""
    _, _, c = server_container(root)
    env = k8s_env(c)

    def described(name: str, judge):
        e = env.get(name)
        return None if e is None else judge(e)

    def db(e):
        if "value" in e:
            return is_postgres_url(str(e["value"])), f"value {e['value']!r}"
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            return False, "neither a value nor a secretKeyRef"
        if ref.get("optional"):
            return False, f"secretKeyRef {ref.get('name')}/{ref.get('key')} is optional; replicas cannot start without it, so require it"
        return True, "secretKeyRef"

    def rid(e):
        field = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field in ("metadata.name", "metadata.uid"):
            return True, field
        return False, f"{'value ' + repr(e['value']) if 'value' in e else 'valueFrom ' + str(e.get('valueFrom'))}: " \
                      "the same for every pod; use valueFrom.fieldRef.fieldPath metadata.name"

    def mode(e):
        v = str(e.get("value", ""))
        return v.strip().lower() in TRUTHY, f"FMS_REPLICAS={v!r}"

    return replica_rules(f"{K8S_SERVER} (up to {count} pods)", count, described("FMS_REPLICAS", mode),
                         described("DATABASE_URL", db), described("FMS_REPLICA_ID", rid))


def check_k8s_hpa(root: Path):
    hpa = k8s_object(root, K8S_HPA, "HorizontalPodAutoscaler", "fms-server")
    if hpa.get("apiVersion") != "autoscaling/v2":
        fail(f"apiVersion {hpa.get('apiVersion')}, want autoscaling/v2")
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref.get("kind"), ref.get("name")) != ("Deployment", "fms-server"):
        fail(f"scaleTargetRef {ref} is not the fms-server Deployment")
    lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    if lo > hi:
        fail(f"minReplicas {lo} > maxReplicas {hi}")
    # More than one pod only as replicas (FMS_REPLICAS, PostgreSQL, a replica id per pod).
    problems = k8s_replica_rules(root, hi)
    if problems:
        fail("; ".join(problems))
    _, _, c = server_container(root)
    kinds = {m["resource"]["name"] for m in hpa["spec"].get("metrics", []) if m.get("type") == "Resource"}
    missing = [k for k in kinds if k not in c["resources"].get("requests", {})]
    if missing:
        fail(f"HPA scales on {missing}, which the container does not request (utilisation undefined)")
    return f"autoscaling/v2 on {sorted(kinds)}, {hpa['spec'].get('minReplicas', 1)}..{hpa['spec']['maxReplicas']}"


def check_k8s_pdb(root: Path):
    """A PodDisruptionBudget that keeps a replica through drains without blocking them: it
    selects the server's pods and lets at least one be evicted at the lowest replica count."""
    dep, _, c = server_container(root)
    replicas = dep["spec"].get("replicas", 1)
    if not (root / K8S_PDB).is_file():
        if replicas > 1 or k8s_hpa_max(root) > 1:
            fail(f"{K8S_PDB} missing: replicas need a PodDisruptionBudget (minAvailable 1)")
        return "none (single server)"
    pdb = k8s_object(root, K8S_PDB, "PodDisruptionBudget", "fms-server")
    if pdb.get("apiVersion") != "policy/v1":
        fail(f"apiVersion {pdb.get('apiVersion')}, want policy/v1")
    sel = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        fail(f"selector {sel} does not select the Deployment's pods {labels}")
    lowest = replicas
    if (root / K8S_HPA).is_file():
        lowest = k8s_object(root, K8S_HPA, "HorizontalPodAutoscaler", "fms-server")["spec"].get("minReplicas", 1)
    spec = pdb["spec"]
    if "minAvailable" in spec:
        m = spec["minAvailable"]
        if lowest < 2:
            fail(f"minAvailable {m!r} with as few as {lowest} replica: node drains block; run at least 2 "
                 "replicas (HPA minReplicas) or no budget")
        if isinstance(m, str) or not 1 <= m < lowest:
            fail(f"minAvailable {m!r}: want an integer from 1 to {lowest - 1} (the fewest replicas, {lowest}, "
                 "minus one, or drains block)")
        return f"minAvailable {m} of at least {lowest} replicas"
    if "maxUnavailable" in spec:
        return f"maxUnavailable {spec['maxUnavailable']}"
    fail("neither minAvailable nor maxUnavailable")


def check_k8s_services_ingress(root: Path):
    svc = k8s_object(root, K8S_SERVER, "Service", "fms-server")
    if API_PORT not in {p.get("port") for p in svc["spec"]["ports"]}:
        fail(f"Service fms-server lacks port {API_PORT}")
    zsvc = k8s_object(root, K8S_ZENOH, "Service", "zenoh-router")
    if ZENOH_PORT not in {p.get("port") for p in zsvc["spec"]["ports"]}:
        fail(f"Service zenoh-router lacks port {ZENOH_PORT}")
    ing = k8s_object(root, K8S_SERVER, "Ingress", "fms")
    paths = {(p["path"], p["pathType"]) for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    if not {("/api", "Prefix"), ("/ws", "Prefix")} <= paths or not any(p == "/" for p, _ in paths):
        fail(f"Ingress paths {sorted(paths)} lack /api, /ws or /")
    if ("/", "Prefix") in paths:
        fail("Ingress routes Prefix / : that publishes /metrics; route the dashboard paths only")
    ann = (ing["metadata"].get("annotations") or {})
    for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
        if int(ann.get(key, 0)) < 3600:
            fail(f"{key} is {ann.get(key)!r}: WebSockets (/ws) need >= 3600")
    if not ing["spec"].get("tls"):
        fail("Ingress has no tls")
    return f"Ingress {sorted(p for p, _ in paths)}, TLS, WebSocket timeouts"


def check_kustomization(root: Path):
    k = load_yaml(root, K8S_KUSTOMIZATION)
    res = k.get("resources") or fail("no resources listed")
    missing = [r for r in res if not (root / K8S_DIR / r).is_file()]
    if missing:
        fail(f"resources that do not exist: {missing}")
    unlisted = sorted({p.name for p in k8s_manifests(root)} - set(res))
    if unlisted:
        fail(f"manifests not listed in kustomization.yaml: {unlisted}")
    return f"{len(res)} resources"


# --------------------------------------------------------------------- systemd


def unit_sections(root: Path, rel: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for n, raw in enumerate(read(root, rel).splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if m:
            current = m.group(1)
            sections.setdefault(current, [])
            continue
        if current is None:
            fail(f"line {n}: setting outside any section")
        if "=" not in line:
            fail(f"line {n}: not a key=value setting: {line!r}")
        k, v = line.split("=", 1)
        sections[current].append((k.strip(), v.strip()))
    return sections


def check_systemd_unit(root: Path, rel: str):
    sections = unit_sections(root, rel)
    missing = [s for s in ("Unit", "Service", "Install") if s not in sections]
    if missing:
        fail(f"missing section(s) {missing}")
    service = dict(sections["Service"])
    exec_start = [v for k, v in sections["Service"] if k == "ExecStart"]
    if not exec_start or not exec_start[-1]:
        fail("[Service] has no ExecStart")
    lacking = [h for h in HARDENING if h not in service]
    if lacking:
        fail(f"lacks hardening {lacking}")
    if service.get("CapabilityBoundingSet") != "" or service.get("User") in (None, "root"):
        fail("must run as a non-root User= with an empty CapabilityBoundingSet=")
    return f"ExecStart={exec_start[-1].split()[0]}, hardened"


def check_systemd_verify(root: Path):
    return tools.systemd_verify([root / u for u in SYSTEMD_UNITS], MAX_SYSTEMD_EXPOSURE)


# --------------------------------------------------------------------- nginx


def check_nginx_tls(root: Path):
    text = read(root, NGINX_TLS)
    problems = []
    if not re.search(r"listen\s+443\s+ssl", text):
        problems.append("no `listen 443 ssl`")
    if not re.search(r"listen\s+80;[\s\S]*?return\s+301\s+https://", text):
        problems.append("no HTTP -> HTTPS 301 redirect on port 80")
    ws = re.search(r"location\s+/ws\s*\{([^}]*)\}", text)
    if not ws or "Upgrade $http_upgrade" not in ws.group(1) or "proxy_http_version 1.1" not in ws.group(1):
        problems.append("location /ws does not forward the WebSocket upgrade")
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options"):
        if header not in text:
            problems.append(f"no {header} header")
    if re.search(r"location\s+[=~^ ]*/metrics\s*\{[^}]*proxy_pass", text):
        problems.append("/metrics is proxied")
    if problems:
        fail("; ".join(problems))
    return tools.nginx_test(text, NGINX_TLS) + ", self-signed certificate"


def render_frontend_template(root: Path) -> str:
    text = read(root, NGINX_FRONTEND)
    values = {"FMS_BACKEND": "127.0.0.1:8088", "NGINX_LOCAL_RESOLVERS": "127.0.0.11"}
    for var in re.findall(r"\$\{([A-Z_]+)\}", text):
        if var not in values:
            fail(f"template variable ${{{var}}} has no value in the image (Dockerfile.frontend ENV)")
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], text)


def check_nginx_frontend(root: Path):
    text = render_frontend_template(root)
    docker = read(root, "docker/Dockerfile.frontend")
    for var in ("FMS_BACKEND", "NGINX_ENTRYPOINT_LOCAL_RESOLVERS"):
        if var not in docker:
            fail(f"Dockerfile.frontend sets no {var}")
    for loc in ("/api/", "/ws"):
        if not re.search(rf"location\s+{re.escape(loc)}\s*\{{[^}}]*proxy_pass", text):
            fail(f"location {loc} is not proxied")
    if "Upgrade $http_upgrade" not in text:
        fail("no WebSocket upgrade for /ws")
    if re.search(r"location\s+[=~^ ]*/metrics\s*\{[^}]*proxy_pass", text):
        fail("/metrics is proxied")
    if "listen 8080" not in text:
        fail("does not listen on 8080 (the unprivileged image's port)")
    return tools.nginx_test(text, NGINX_FRONTEND)


# --------------------------------------------------------------------- Prometheus / Grafana


PROMQL_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
PROMQL_TOKEN = re.compile(
    r"(?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)"
    r"|(?P<num>0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<other>\S)"
)
PROMQL_KEYWORDS = {
    # binary/set operators and modifiers
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    "by", "without", "on", "ignoring", "group_left", "group_right",
    # aggregation operators (may be followed by by/without before '(')
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
PROMQL_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (a lexer, not a full parser)."""
    # {__name__="x"} selects metric x by a label matcher
    names = set(re.findall(r'__name__\s*=~?\s*"([^"]*)"', expr))
    text = PROMQL_STRING.sub('""', expr)
    # label matchers and range/subquery selectors hold no metric names
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    tokens = [(m.lastgroup, m.group()) for m in PROMQL_TOKEN.finditer(text)]
    i = 0
    while i < len(tokens):
        kind, tok = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "ident":
            low = tok.lower()
            if low in PROMQL_LABEL_LIST_KEYWORDS and nxt == "(":
                # skip the label list: by (a, b)
                depth, i = 0, i + 1
                while i < len(tokens):
                    depth += tokens[i][1] == "("
                    depth -= tokens[i][1] == ")"
                    if depth == 0:
                        break
                    i += 1
            elif low in PROMQL_KEYWORDS or nxt == "(":
                pass  # keyword, aggregation or function call
            else:
                names.add(tok)
        i += 1
    return names


def check_prometheus_scrape(root: Path):
    cfg = load_yaml(root, PROMETHEUS)
    for sc in cfg.get("scrape_configs") or []:
        if sc.get("metrics_path", "/metrics") != "/metrics":
            continue
        # static targets, or DNS discovery (one target per replica: A records of a service)
        targets = [str(t) for st in sc.get("static_configs") or [] for t in st.get("targets") or []]
        targets += [f"{n}:{d.get('port')}" for d in sc.get("dns_sd_configs") or [] for n in d.get("names") or []
                    if d.get("type", "SRV") == "A"]
        for t in targets:
            if t.rsplit(":", 1)[-1] == str(API_PORT):
                rule_files = cfg.get("rule_files") or []
                if "alerts.yml" not in [Path(r).name for r in rule_files]:
                    fail("rule_files does not load alerts.yml")
                detail = tools.promtool_check_config(root / PROMETHEUS)
                return f"job {sc.get('job_name')} -> {t}/metrics; promtool {tools.TOOLS.get('promtool')}: {detail}"
    fail(f"no scrape config scrapes /metrics on port {API_PORT}")


def alert_exprs(root: Path) -> dict[str, str]:
    cfg = load_yaml(root, ALERTS)
    rules = [r for g in cfg.get("groups") or [] for r in g.get("rules") or []]
    if not rules:
        fail("no rules")
    out = {}
    for r in rules:
        name = r.get("alert") or r.get("record") or fail(f"rule without alert/record name: {r}")
        out[f"{ALERTS}:{name}"] = str(r.get("expr") or fail(f"rule {name} has no expr"))
    return out


def grafana_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels") or []:
        out.append(p)
        out.extend(p.get("panels") or [])  # collapsed rows hold their panels
    return out


def grafana_exprs(root: Path) -> dict[str, str]:
    dash = json.loads(read(root, GRAFANA))
    out = {}
    for p in grafana_panels(dash):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out[f"{GRAFANA}:{p.get('title')}/{t.get('refId')}"] = t["expr"]
    for v in (dash.get("templating") or {}).get("list") or []:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", str(q or ""))
        if m:
            out[f"{GRAFANA}:${v['name']}"] = m.group(1)
    return out


def grafana_to_promql(expr: str) -> str:
    """A Grafana expression as plain PromQL: its variables replaced by sample values."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", "fms-server", expr)
    return expr


def check_grafana_dashboard(root: Path):
    dash = json.loads(read(root, GRAFANA))
    problems = []
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            problems.append(f"no {key}")
    panels = grafana_panels(dash)
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append("duplicate panel ids")
    variables = {v.get("name") for v in (dash.get("templating") or {}).get("list") or []}
    for p in panels:
        if p.get("type") == "row":
            continue
        gp = p.get("gridPos") or {}
        if not all(k in gp for k in ("h", "w", "x", "y")) or gp.get("x", 0) + gp.get("w", 0) > 24:
            problems.append(f"panel {p.get('title')!r}: bad gridPos {gp}")
        if not p.get("targets"):
            problems.append(f"panel {p.get('title')!r} has no targets")
        ds = (p.get("datasource") or {}).get("uid", "")
        m = re.fullmatch(r"\$\{?(\w+)\}?", ds)
        if m and m.group(1) not in variables:
            problems.append(f"panel {p.get('title')!r} uses data source variable {ds} that is not defined")
    used_vars = {v for e in grafana_exprs(root).values() for v in re.findall(r"\$\{?([A-Za-z_]\w*)", e)
                 if not v.startswith("__")}
    if used_vars - variables:
        problems.append(f"undefined variables {sorted(used_vars - variables)}")
    if problems:
        fail("; ".join(problems))
    exprs = {k: grafana_to_promql(v) for k, v in grafana_exprs(root).items()}
    detail = tools.promtool_check_exprs(exprs)
    return f"{len(panels)} panels, variables {sorted(variables)}; promtool: {detail}"


def check_alert_rules(root: Path):
    return "promtool: " + tools.promtool_check_rules(root / ALERTS)


def used_metrics(root: Path) -> dict[str, set[str]]:
    """Metric name -> where it is used, over the alert rules and the Grafana dashboard."""
    used: dict[str, set[str]] = {}
    for where, expr in {**alert_exprs(root), **grafana_exprs(root)}.items():
        names = promql_metric_names(expr)
        if not names:
            fail(f"{where} names no metric")
        for n in names:
            used.setdefault(n, set()).add(where)
    return used


def check_metrics_in_contract(root: Path):
    used = used_metrics(root)
    bad = {n: sorted(w) for n, w in used.items() if n not in CONTRACT_METRICS}
    if bad:
        fail(f"metrics outside fms_server's contract: {bad}")
    labels_bad = []
    for where, expr in {**alert_exprs(root), **grafana_exprs(root)}.items():
        for metric, ls in live.selector_labels(expr).items():
            allowed = CONTRACT_LABELS.get(metric, set()) | SCRAPE_LABELS
            if ls - allowed:
                labels_bad.append(f"{where}: {metric} has no label(s) {sorted(ls - allowed)}")
    if labels_bad:
        fail("; ".join(labels_bad))
    return f"{len(used)} names, all in the contract"


# --------------------------------------------------------------------- scripts and docs


def check_scripts(root: Path):
    paths = sorted((root / "docker/scripts").glob("*.sh"))
    missing = [s for s in SCRIPTS if not (root / s).is_file()]
    if missing:
        fail(f"missing {missing}")
    for s in SCRIPTS:
        p = root / s
        if not os.access(p, os.X_OK):
            fail(f"{s} is not executable")
        r = tools.run([str(p), "--help"], timeout=20)
        if r.returncode != 0 or "Usage:" not in r.stdout:
            fail(f"{s} --help does not print its usage (exit {r.returncode})")
    return tools.shellcheck(paths) + f" (shellcheck {tools.TOOLS.get('shellcheck')}), --help works"


def check_docs(root: Path):
    """docs/deployment.md mentions every file of the kit."""
    doc = read(root, DOCS)
    kit = [p.relative_to(root).as_posix() for p in (root / "docker").rglob("*") if p.is_file()]
    kit += ["config/server.prod.toml"]
    missing = [k for k in kit if k not in doc and Path(k).name not in doc]
    if missing:
        fail(f"{DOCS} does not mention {sorted(missing)}")
    for heading in ("Single machine", "Docker Compose", "Docker Swarm", "Kubernetes", "systemd", "TLS",
                    "Monitoring", "Backup", "Upgrad"):
        if not re.search(rf"^#+ .*{heading}", doc, re.M | re.I):
            fail(f"{DOCS} has no section on {heading}")
    return f"{len(kit)} files referenced"


# --------------------------------------------------------------------- live (a running server)


class LiveServer:
    """The server the live checks share, started on first use."""

    def __init__(self, root: Path, server_bin: str | None) -> None:
        self.root, self.server_bin = root, server_bin
        self.binary: Path | None = None
        self.srv: live.Server | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.error: str | None = None

    def get(self) -> live.Server:
        if self.error:
            fail(self.error)
        if self.srv is None:
            try:
                self.binary, how = live.server_binary(self.root, self.server_bin)
                print(f"      server binary: {how}")
                self.tmp = tempfile.TemporaryDirectory(prefix="fms-check-deploy-")
                self.srv = live.start_plain_server(self.binary, Path(self.tmp.name))
            except Exception as e:
                self.error = f"cannot start fms_server: {e}"
                fail(self.error)
        return self.srv

    def close(self) -> None:
        if self.srv:
            self.srv.stop()
        if self.tmp:
            self.tmp.cleanup()


def check_live_probes(server: LiveServer):
    srv = server.get()
    code, body = live.http_get(srv.url + "/healthz")
    if code != 200 or '"status":"ok"' not in body.replace(" ", ""):
        fail(f"/healthz answered {code} {body[:100]}")
    code, body = live.http_get(srv.url + "/readyz")
    if code == 200 and body.lstrip().startswith("<"):
        fail("/readyz answered an HTML page (the dashboard fallback?), not the server's readiness")
    if code != 200:
        raise ContractPending(f"/readyz answered {code} (contract: 200 when the store and Zenoh are reachable)")
    return "/healthz 200 ok, /readyz 200"


def check_live_metrics(root: Path, server: LiveServer):
    srv = server.get()
    live.exercise(srv.url)
    code, text = live.http_get(srv.url + "/metrics")
    if code != 200:
        fail(f"/metrics answered {code}")
    names, labels, _ = live.parse_exposition(text)
    used = used_metrics(root)
    missing = {n: sorted(w)[:3] for n, w in used.items() if n not in names}
    label_problems = []
    for where, expr in {**alert_exprs(root), **grafana_exprs(root)}.items():
        for metric, ls in live.selector_labels(expr).items():
            have = labels.get(metric)
            if have is not None and have and (ls - have - SCRAPE_LABELS):
                label_problems.append(f"{metric} lacks label(s) {sorted(ls - have - SCRAPE_LABELS)} ({where})")
    if label_problems:
        fail("; ".join(sorted(set(label_problems))[:6]))
    outside = sorted(n for n in missing if n not in CONTRACT_METRICS)
    if outside:
        fail(f"used but neither exported nor in the contract: {', '.join(outside)}")
    if missing:
        also = sorted(CONTRACT_METRICS - names - set(missing))
        raise ContractPending(
            f"{len(missing)} of {len(used)} metric names used by {ALERTS} / {GRAFANA} are not in the "
            f"server's /metrics yet: {', '.join(sorted(missing))}"
            + (f" (contract names also absent but unused: {', '.join(also)})" if also else ""))
    return f"all {len(used)} names used by the rules and the dashboard are exported"


def check_live_healthcheck_script(root: Path, server: LiveServer):
    srv = server.get()
    r = tools.run([str(root / "docker/scripts/healthcheck.sh"), "-u", srv.url, "--min-online", "0"], timeout=30)
    out = " | ".join(l for l in r.stdout.splitlines() if l.strip())
    if r.returncode != 0:
        if "readyz" in out and "CRITICAL" in out and out.count("CRITICAL") == 1:
            raise ContractPending(f"healthcheck.sh exit {r.returncode}: {out}")
        fail(f"exit {r.returncode}: {out}")
    # and against nothing: CRITICAL, exit 2
    r2 = tools.run([str(root / "docker/scripts/healthcheck.sh"), "-u", f"http://127.0.0.1:{live.free_port()}", "-t", "2"],
                   timeout=30)
    if r2.returncode != 2:
        fail(f"against a closed port it exits {r2.returncode}, not 2 (CRITICAL)")
    return f"OK against the server: {out}; CRITICAL against a closed port"


def check_live_config(root: Path, server: LiveServer, rel: str):
    server.get()  # builds/finds the binary once
    try:
        return live.config_accepted(server.binary, root / rel)
    except RuntimeError as e:
        msg = str(e)
        if re.search(r"unknown field|unknown variant|invalid config", msg):
            raise ContractPending(f"the server refuses it: {msg}")
        fail(msg)


def check_live_sqlite_backup(root: Path, server: LiveServer):
    srv = server.get()
    tools.need_apt_command("sqlite3", ["sqlite3"])
    return live.sqlite_round_trip(root / "docker/scripts", srv)


def check_live_postgres_backup(root: Path):
    url = os.environ.get("FMS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    if not live.postgres_reachable(url):
        return f"skipped: no PostgreSQL at {url} (set FMS_TEST_DATABASE_URL)"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    return live.postgres_round_trip(root / "docker/scripts", admin)


def metric_value(url: str, name: str) -> float | None:
    try:
        code, text = live.http_get(url + "/metrics", 2.0)
    except OSError:
        return None
    if code != 200:
        return None
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(what: str, cond, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.1)
    fail(f"{what}: not within {timeout:.0f}s")


def check_live_replicas(root: Path, server: LiveServer):
    """Two servers the way the k8s Deployment and the Swarm stack run them (their FMS_REPLICAS
    value, a replica id each, one PostgreSQL database): one leads, the other serves and
    follows, and takes over after the leader is killed; without PostgreSQL a replica refuses
    to start."""
    _, _, c = server_container(root)
    values = {str(k8s_env(c).get("FMS_REPLICAS", {}).get("value", "")),
              str((load_yaml(root, STACK)["services"]["fms-server"].get("environment") or {}).get("FMS_REPLICAS", ""))}
    values.discard("")
    if not values:
        return "skipped: the manifests run a single server"
    server.get()  # finds/builds the binary once
    url = os.environ.get("FMS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

    def start(tmp: Path, name: str, args: list[str]) -> live.Server:
        wd = tmp / name
        wd.mkdir()
        live.make_dirs(wd)
        port = live.free_port()
        return live.Server(server.binary, wd, port, [
            "--port", str(port), "--bind", "127.0.0.1", "--zenoh-listen", f"tcp/127.0.0.1:{live.free_port()}",
            "--data-dir", str(wd / "data"), "--frontend-dir", str(wd / "www"), *args])

    started: list[live.Server] = []
    with tempfile.TemporaryDirectory(prefix="fms-check-replicas-") as tmp:
        tmp = Path(tmp)
        try:
            # without PostgreSQL: refused (SQLite would be one database per replica)
            for v in sorted(values):
                srv = start(tmp, f"sqlite-{len(started)}", ["--replicas", v, "--replica-id", "check-sqlite"])
                started.append(srv)
                try:
                    srv.proc.wait(20)
                except Exception:
                    fail(f"--replicas {v} without PostgreSQL: the server started on SQLite")
                tail = srv.log_tail(20)
                if "--replicas" in tail and re.search(r"unexpected argument|unknown", tail):
                    raise ContractPending(f"the server has no --replicas: {srv.log_tail()}")
                if srv.proc.returncode == 0 or "postgres" not in tail.lower():
                    fail(f"--replicas {v} without PostgreSQL: exit {srv.proc.returncode}, {srv.log_tail()}")
            if not live.postgres_reachable(url):
                return f"refused without PostgreSQL (FMS_REPLICAS {sorted(values)}); the rest skipped: " \
                       f"no PostgreSQL at {url} (set FMS_TEST_DATABASE_URL)"
            admin = url.rsplit("/", 1)[0] + "/postgres"
            db = f"fms_check_replicas_{os.getpid()}"
            psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c"]
            r = tools.run(psql + [f"CREATE DATABASE {db}"], timeout=30)
            if r.returncode != 0:
                fail(f"psql: {r.stderr.strip()[-300:]}")
            try:
                v = sorted(values)[0]
                args = ["--replicas", v, "--database-url", url.rsplit("/", 1)[0] + "/" + db]
                a = start(tmp, "a", args + ["--replica-id", "fms-server-check-a"])
                started.append(a)
                a.wait_healthy()
                wait_for("replica a leads", lambda: metric_value(a.url, "fms_leader") == 1, 15)
                b = start(tmp, "b", args + ["--replica-id", "fms-server-check-b"])
                started.append(b)
                b.wait_healthy()
                wait_for("replica b ready", lambda: live.http_get(b.url + "/readyz")[0] == 200, 15)
                time.sleep(1.5)  # a lease renewal: b must still follow
                la, lb = metric_value(a.url, "fms_leader"), metric_value(b.url, "fms_leader")
                if (la, lb) != (1, 0):
                    fail(f"fms_leader a={la} b={lb}: want exactly one leader (1, 0)")
                token = metric_value(a.url, "fms_lease_token")
                os.killpg(a.proc.pid, signal.SIGKILL)  # kill -9 the leader, which this check started
                a.proc.wait(10)
                took = wait_for("replica b takes the lease over", lambda: metric_value(b.url, "fms_leader") == 1, 15)
                tb = metric_value(b.url, "fms_lease_token")
                if not (token and tb and tb > token):
                    fail(f"lease token {token} -> {tb}: a new term must have a larger fencing token")
            finally:
                for srv in started:
                    srv.stop()
                tools.run(psql + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], timeout=30)
        finally:
            for srv in started:
                srv.stop()
    return (f"refused without PostgreSQL; on PostgreSQL with FMS_REPLICAS={sorted(values)[0]}: one leader "
            f"(token {token:.0f}), the follower ready; after kill -9 it leads in {took:.1f}s (token {tb:.0f})")


# --------------------------------------------------------------------- launch / ROS


def check_launch_compiles(root: Path):
    compiled = 0
    with tempfile.TemporaryDirectory() as tmp:
        for d in LAUNCH_DIRS:
            for name in LAUNCH_FILES:
                src = root / d / name
                if not src.is_file():
                    fail(f"{d}/{name} does not exist")
                try:
                    py_compile.compile(str(src), cfile=str(Path(tmp) / f"{compiled}.pyc"), doraise=True)
                except py_compile.PyCompileError as e:
                    fail(f"{d}/{name} does not compile: {e.msg.strip()}")
                compiled += 1
    return f"{compiled} files"


def check_launch_copies_identical(root: Path):
    first, second = LAUNCH_DIRS
    differ = [n for n in LAUNCH_FILES if read(root, f"{first}/{n}") != read(root, f"{second}/{n}")]
    if differ:
        fail(f"{second}/ must be an exact copy of {first}/ (it is what colcon installs); "
             f"differing: {differ} (fix: cp {first}/*.launch.py {second}/)")
    return None


def check_ros_packages(root: Path):
    # The root manifest is the repository's rosdep manifest. colcon-cargo >= 0.2 sees the Cargo
    # workspace at the root first and builds the members, so it hides nothing; rosdep stops
    # there, so it must not name the members (they would not resolve with --ignore-src).
    if (root / "package.xml").exists():
        try:
            top = ET.fromstring(read(root, "package.xml"))
        except ET.ParseError as e:
            fail(f"package.xml: {e}")
        if top.tag != "package" or top.get("format") != "3":
            fail("package.xml: not a format 3 package manifest")
        if top.findtext("export/build_type"):
            fail("package.xml: the root manifest must not have a build_type (colcon must not build it)")
        named = {d.text for d in top if d.tag.endswith("depend")} & set(ROS_PACKAGES)
        if named:
            fail(f"package.xml: depends on {sorted(named)}, which rosdep cannot see from the root")
    for pkg in ROS_PACKAGES:
        rel = f"{pkg}/package.xml"
        try:
            tree = ET.fromstring(read(root, rel))
        except ET.ParseError as e:
            fail(f"{rel}: {e}")
        if tree.tag != "package" or tree.get("format") != "3":
            fail(f"{rel}: not a format 3 package manifest")
        if tree.findtext("name") != pkg:
            fail(f"{rel}: <name> is {tree.findtext('name')!r}")
        if tree.findtext("export/build_type") != "ament_cargo":
            fail(f"{rel}: build_type is not ament_cargo")
        if tree.findtext("license") != "Apache-2.0":
            fail(f"{rel}: license is not Apache-2.0")
        if not (root / pkg / "Cargo.toml").is_file():
            fail(f"{pkg}/Cargo.toml missing next to package.xml")
    return ", ".join(ROS_PACKAGES)


# --------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root (default: this script's parent's parent)")
    ap.add_argument("--server-bin", default=os.environ.get("FMS_SERVER_BIN"),
                    help="fms_server for the live checks (default: $FMS_SERVER_BIN, else cargo build)")
    ap.add_argument("--offline", action="store_true",
                    help="static checks only: no tool installs, no running server")
    args = ap.parse_args()
    root = args.root.resolve()
    r = Runner()
    online = not args.offline
    t0 = time.monotonic()

    print("== files parse")
    files = sorted(p for d in ("docker", "config") for p in (root / d).rglob("*")
                   if p.suffix in (".yaml", ".yml", ".json", ".toml"))
    for p in files:
        rel = p.relative_to(root).as_posix()
        r.check(f"{rel} parses", lambda rel=rel: check_parses(root, rel))

    print("== Compose")
    for rel in (COMPOSE, COMPOSE_ALLINONE):
        if online:
            r.check(f"{rel} valid against the compose-spec schema", lambda rel=rel: check_compose_schema(root, rel))
        r.check(f"{rel} uses only known environment variables", lambda rel=rel: check_compose_env(root, rel))
        r.check(f"{rel} dependencies, healthchecks, builds, mounts, endpoints",
                lambda rel=rel: check_compose_consistency(root, rel))
        r.check(f"{rel} fms-server publishes {API_PORT}",
                lambda rel=rel: check_compose_port(root, rel, "fms-server", API_PORT))
    r.check(f"{COMPOSE} services (router, server, frontend, agents, phone)", lambda: check_compose_services(root))
    r.check(f"{COMPOSE} zenoh-router publishes {ZENOH_PORT}",
            lambda: check_compose_port(root, COMPOSE, "zenoh-router", ZENOH_PORT))
    r.check(f"{COMPOSE_ALLINONE} fms-server publishes Zenoh {ZENOH_PORT}",
            lambda: check_compose_port(root, COMPOSE_ALLINONE, "fms-server", ZENOH_PORT))

    print("== Swarm")
    if online:
        r.check(f"{STACK} valid against the compose-spec schema", lambda: check_compose_schema(root, STACK))
        r.check(f"{STACK} Swarm deploy settings; docker stack config", lambda: check_stack(root))
    r.check(f"{STACK} uses only known environment variables", lambda: check_compose_env(root, STACK))
    r.check(f"{STACK} fms-server replicas and update order", lambda: check_stack_server(root))

    print("== Dockerfiles")
    for rel, targets in DOCKERFILES.items():
        r.check(f"{rel}: COPY sources exist, non-root USER, HEALTHCHECK, EXPOSE",
                lambda rel=rel, targets=targets: check_dockerfile(root, rel, targets))
    r.check("docker/Dockerfile.agent on ROS 2 with the ros2 feature", lambda: check_agent_image(root))
    r.check("server image config = the one Swarm and k8s select, with its JWT secret mounted",
            lambda: check_server_image_config(root))

    print("== Kubernetes")
    if online:
        r.check("k8s manifests valid against the Kubernetes schemas", lambda: check_k8s_schema(root))
    r.check("k8s fms-server probes", lambda: check_k8s_probes(root))
    r.check("k8s fms-server env, securityContext, resources, replicas",
            lambda: check_k8s_server_env_and_security(root))
    r.check("k8s HPA", lambda: check_k8s_hpa(root))
    r.check("k8s PodDisruptionBudget", lambda: check_k8s_pdb(root))
    r.check("k8s services (8088, 7447) and ingress", lambda: check_k8s_services_ingress(root))
    r.check("k8s kustomization lists every manifest", lambda: check_kustomization(root))

    print("== systemd")
    for rel in SYSTEMD_UNITS:
        r.check(f"{rel} sections, ExecStart, hardening", lambda rel=rel: check_systemd_unit(root, rel))
    if online:
        r.check("systemd-analyze verify and security", lambda: check_systemd_verify(root))

    print("== nginx")
    if online:
        r.check(f"{NGINX_TLS}: TLS, redirect, WebSocket, headers; nginx -t", lambda: check_nginx_tls(root))
        r.check(f"{NGINX_FRONTEND}: proxies, no /metrics; nginx -t", lambda: check_nginx_frontend(root))

    print("== Prometheus and Grafana")
    r.check(f"{ALERTS} and {GRAFANA} use only contract metric names and labels",
            lambda: check_metrics_in_contract(root))
    if online:
        r.check(f"{PROMETHEUS} scrapes /metrics on {API_PORT}; promtool check config",
                lambda: check_prometheus_scrape(root))
        r.check(f"{ALERTS} promtool check rules", lambda: check_alert_rules(root))
        r.check(f"{GRAFANA} structure; its PromQL parses", lambda: check_grafana_dashboard(root))

    print("== scripts and docs")
    if online:
        r.check("docker/scripts: shellcheck, --help", lambda: check_scripts(root))
    r.check(f"{DOCS} covers the kit", lambda: check_docs(root))

    if online:
        print("== against a running fms_server")
        server = LiveServer(root, args.server_bin)
        try:
            r.check("server probes /healthz, /readyz", lambda: check_live_probes(server))
            r.check("metric names of the rules and dashboard exist in the real /metrics",
                    lambda: check_live_metrics(root, server))
            r.check("docker/scripts/healthcheck.sh against the server", lambda: check_live_healthcheck_script(root, server))
            for rel in SERVER_CONFIGS:
                r.check(f"{rel} accepted by the server", lambda rel=rel: check_live_config(root, server, rel))
            r.check("replicas as k8s and Swarm run them: PostgreSQL only, one leader, take-over after kill -9",
                    lambda: check_live_replicas(root, server))
            r.check("backup.sh/restore.sh SQLite round trip (online backup)",
                    lambda: check_live_sqlite_backup(root, server))
            r.check("backup.sh/restore.sh PostgreSQL round trip", lambda: check_live_postgres_backup(root))
        finally:
            server.close()

    print("== launch files and ROS packages")
    r.check("launch files compile", lambda: check_launch_compiles(root))
    r.check("fms_agent/launch matches launch/", lambda: check_launch_copies_identical(root))
    r.check("ROS package manifests", lambda: check_ros_packages(root))

    if tools.TOOLS:
        print("tools: " + ", ".join(f"{k} {v}" for k, v in sorted(tools.TOOLS.items())))
    if r.pending:
        print(f"{len(r.pending)} failure(s) wait for the server contract (see [server contract] above)")
    print(f"({time.monotonic() - t0:.0f}s)")
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
