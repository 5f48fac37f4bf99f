#!/usr/bin/env python3
"""Static checks of the deployment files (docker/, launch/, package.xml).

Run from anywhere:  python3 scripts/check_deploy.py [--root DIR]
Needs Python 3.11+ and PyYAML. Prints one line per check and a final
"N passed, M failed" line; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import py_compile
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: PyYAML is not installed (pip install pyyaml)")
    print("0 passed, 1 failed")
    sys.exit(1)

# The environment variables the binaries read (besides FMS_*).
ALLOWED_ENV = {"ZENOH_ENDPOINT", "ROBOT_ID", "ROS_DOMAIN_ID", "LOG_LEVEL", "PORT", "CORS_ORIGINS"}
ALLOWED_ENV_PREFIX = "FMS_"

# The metrics fms_server exposes on /metrics (the contract alerts may use).
KNOWN_METRICS = {
    "fms_robots_total",
    "fms_robots_online",
    "fms_tasks_active",
    "fms_tasks_total",
    "fms_zenoh_messages_total",
    "fms_zenoh_messages_rejected_total",
}

API_PORT = 8088
ZENOH_PORT = 7447
COMPOSE_FILES = ("docker/compose.yaml", "docker/compose.allinone.yaml")
DOCKERFILES = ("docker/Dockerfile.server", "docker/Dockerfile.agent")
SYSTEMD_UNITS = ("docker/systemd/fms-server.service", "docker/systemd/fms-agent@.service")
K8S_SERVER = "docker/k8s/fms-server.yaml"
K8S_ZENOH = "docker/k8s/zenoh-router.yaml"
K8S_KUSTOMIZATION = "docker/k8s/kustomization.yaml"
PROMETHEUS = "docker/prometheus/prometheus.yml"
ALERTS = "docker/prometheus/alerts.yml"
LAUNCH_DIRS = ("launch", "fms_agent/launch")
LAUNCH_FILES = ("agent.launch.py", "fleet_demo.launch.py", "fleet_sim.launch.py", "server.launch.py")
ROS_PACKAGES = ("fms_msgs", "fms_agent", "fms_server")


class CheckFailed(Exception):
    """A check's reason for failing."""


class Runner:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn) -> None:
        try:
            detail = fn()
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL: {name}: {e}")
        except Exception as e:  # a crash in a check is a failure, not a traceback
            self.failed += 1
            print(f"FAIL: {name}: {type(e).__name__}: {e}")
        else:
            self.passed += 1
            print(f"PASS: {name}" + (f" ({detail})" if detail else ""))


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


# --------------------------------------------------------------------- compose


def compose_services(root: Path, rel: str) -> dict:
    doc = load_yaml(root, rel)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        fail(f"{rel} has no services")
    return services


def check_compose_env(root: Path, rel: str):
    doc = load_yaml(root, rel)
    bad = set()
    for name, svc in compose_services(root, rel).items():
        if "env_file" in svc:
            fail(f"service {name} uses env_file, which this check cannot verify")
        bad.update(k for k in environment_keys(svc.get("environment")) if not env_allowed(k))
    bad.update(v for s in walk_strings(doc) for v in interpolated_vars(s) if not env_allowed(v))
    if bad:
        fail(f"unexpected environment variables {sorted(bad)}; allowed: "
             f"{sorted(ALLOWED_ENV)} and {ALLOWED_ENV_PREFIX}*")
    return None


def check_compose_port(root: Path, rel: str, service: str, port: int):
    services = compose_services(root, rel)
    if service not in services:
        fail(f"{rel} has no service {service!r}")
    ports = container_ports(services[service].get("ports"))
    if port not in ports:
        fail(f"service {service} publishes {sorted(ports) or 'no ports'}, not {port}")
    return None


def check_compose_server_healthcheck(root: Path, rel: str):
    svc = compose_services(root, rel).get("fms-server") or fail("no fms-server service")
    test = (svc.get("healthcheck") or {}).get("test")
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    if "/healthz" not in text or str(API_PORT) not in text:
        fail(f"fms-server healthcheck does not probe :{API_PORT}/healthz (test: {test!r})")
    return None


# --------------------------------------------------------------------- k8s


def k8s_objects(root: Path, rel: str, kind: str, name: str) -> dict:
    for d in load_yaml_docs(root, rel):
        if isinstance(d, dict) and d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    fail(f"{rel} has no {kind} named {name!r}")


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


def check_k8s_probes(root: Path):
    dep = k8s_objects(root, K8S_SERVER, "Deployment", "fms-server")
    containers = dep["spec"]["template"]["spec"]["containers"]
    c = next((c for c in containers if c.get("name") == "fms-server"), containers[0])
    live = probe_target(c, "livenessProbe")
    ready = probe_target(c, "readinessProbe")
    if live != ("/healthz", API_PORT):
        fail(f"livenessProbe is {live}, expected ('/healthz', {API_PORT})")
    if ready != ("/api/robots", API_PORT):
        fail(f"readinessProbe is {ready}, expected ('/api/robots', {API_PORT})")
    return "liveness /healthz, readiness /api/robots on 8088"


def check_k8s_server_env_and_security(root: Path):
    dep = k8s_objects(root, K8S_SERVER, "Deployment", "fms-server")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
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
    if replicas != 1:
        fail(f"replicas is {replicas}; more than one needs the PostgreSQL store (issue 9)")
    return None


def check_k8s_services(root: Path):
    svc = k8s_objects(root, K8S_SERVER, "Service", "fms-server")
    ports = {p.get("port") for p in svc["spec"]["ports"]}
    if API_PORT not in ports:
        fail(f"Service fms-server ports {sorted(ports)} lack {API_PORT}")
    zsvc = k8s_objects(root, K8S_ZENOH, "Service", "zenoh-router")
    zports = {p.get("port") for p in zsvc["spec"]["ports"]}
    if ZENOH_PORT not in zports:
        fail(f"Service zenoh-router ports {sorted(zports)} lack {ZENOH_PORT}")
    ing = k8s_objects(root, K8S_SERVER, "Ingress", "fms")
    paths = {p["path"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    if not {"/api", "/ws", "/"} <= paths:
        fail(f"Ingress paths {sorted(paths)} lack one of /api, /ws, /")
    return None


def check_kustomization(root: Path):
    k = load_yaml(root, K8S_KUSTOMIZATION)
    res = k.get("resources") or fail("no resources listed")
    missing = [r for r in res if not (root / "docker/k8s" / r).is_file()]
    if missing:
        fail(f"resources that do not exist: {missing}")
    on_disk = {p.name for p in (root / "docker/k8s").glob("*.yaml")} - {"kustomization.yaml"}
    unlisted = sorted(on_disk - set(res))
    if unlisted:
        fail(f"manifests not listed in kustomization.yaml: {unlisted}")
    return f"{len(res)} resources"


# --------------------------------------------------------------------- Dockerfiles


def dockerfile_final_stage(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last build stage, continuations joined."""
    joined = re.sub(r"\\\r?\n", " ", text)
    instrs = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        instrs.append((word.upper(), rest.strip()))
    starts = [i for i, (w, _) in enumerate(instrs) if w == "FROM"]
    if not starts:
        fail("no FROM instruction")
    return instrs[starts[-1]:]


def check_dockerfile(root: Path, rel: str, need_healthcheck: bool, need_expose: set[int]):
    stage = dockerfile_final_stage(read(root, rel))
    users = [a for w, a in stage if w == "USER"]
    if not users:
        fail("final stage has no USER (it would run as root)")
    user = users[-1].split(":", 1)[0]
    if user in ("root", "0"):
        fail(f"final stage runs as {users[-1]!r}")
    details = [f"USER {users[-1]}"]
    if need_healthcheck:
        hcs = [a for w, a in stage if w == "HEALTHCHECK"]
        if not hcs or hcs[-1].upper().startswith("NONE"):
            fail("final stage has no HEALTHCHECK")
        if "/healthz" not in hcs[-1]:
            fail(f"HEALTHCHECK does not probe /healthz: {hcs[-1]!r}")
        details.append("HEALTHCHECK /healthz")
    exposed = set()
    for w, a in stage:
        if w == "EXPOSE":
            exposed.update(int(p.split("/")[0]) for p in a.split())
    if not need_expose <= exposed:
        fail(f"EXPOSE {sorted(exposed)} lacks {sorted(need_expose - exposed)}")
    return ", ".join(details)


# --------------------------------------------------------------------- systemd


def check_systemd_unit(root: Path, rel: str):
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
    missing = [s for s in ("Unit", "Service", "Install") if s not in sections]
    if missing:
        fail(f"missing section(s) {missing}")
    exec_start = [v for k, v in sections["Service"] if k == "ExecStart"]
    if not exec_start or not exec_start[-1]:
        fail("[Service] has no ExecStart")
    return f"ExecStart={exec_start[-1].split()[0]}"


# --------------------------------------------------------------------- Prometheus


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
        for st in sc.get("static_configs") or []:
            for t in st.get("targets") or []:
                if str(t).rsplit(":", 1)[-1] == str(API_PORT):
                    rule_files = cfg.get("rule_files") or []
                    base = (root / PROMETHEUS).parent
                    missing = [r for r in rule_files if not (base / r).is_file()]
                    if missing:
                        fail(f"rule_files that do not exist: {missing}")
                    if "alerts.yml" not in [Path(r).name for r in rule_files]:
                        fail("rule_files does not load alerts.yml")
                    return f"job {sc.get('job_name')} -> {t}/metrics"
    fail(f"no scrape config scrapes /metrics on port {API_PORT}")


def check_alert_metrics(root: Path):
    cfg = load_yaml(root, ALERTS)
    rules = [r for g in cfg.get("groups") or [] for r in g.get("rules") or []]
    if not rules:
        fail("no rules")
    unknown, used = {}, set()
    for r in rules:
        name = r.get("alert") or r.get("record") or fail(f"rule without alert/record name: {r}")
        expr = r.get("expr") or fail(f"rule {name} has no expr")
        names = promql_metric_names(str(expr))
        if not names:
            fail(f"rule {name} names no metric")
        used |= names
        bad = names - KNOWN_METRICS
        if bad:
            unknown[name] = sorted(bad)
    if unknown:
        fail(f"metrics fms_server does not export: {unknown}; known: {sorted(KNOWN_METRICS)}")
    return f"{len(rules)} rules over {', '.join(sorted(used))}"


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
    root = ap.parse_args().root.resolve()
    r = Runner()

    yaml_files = sorted(p for p in (root / "docker").rglob("*") if p.suffix in (".yaml", ".yml"))
    if not yaml_files:
        r.check("YAML files under docker/", lambda: fail("none found"))
    for p in yaml_files:
        rel = p.relative_to(root).as_posix()
        r.check(f"{rel} parses", lambda rel=rel: check_yaml_file(root, rel))

    for rel in COMPOSE_FILES:
        r.check(f"{rel} uses only known environment variables", lambda rel=rel: check_compose_env(root, rel))
        r.check(f"{rel} fms-server publishes {API_PORT}",
                lambda rel=rel: check_compose_port(root, rel, "fms-server", API_PORT))
        r.check(f"{rel} fms-server healthcheck on /healthz",
                lambda rel=rel: check_compose_server_healthcheck(root, rel))
    r.check(f"docker/compose.yaml zenoh-router publishes {ZENOH_PORT}",
            lambda: check_compose_port(root, "docker/compose.yaml", "zenoh-router", ZENOH_PORT))
    r.check(f"docker/compose.allinone.yaml fms-server publishes Zenoh {ZENOH_PORT}",
            lambda: check_compose_port(root, "docker/compose.allinone.yaml", "fms-server", ZENOH_PORT))

    r.check("k8s fms-server probes", lambda: check_k8s_probes(root))
    r.check("k8s fms-server env, securityContext, resources, replicas",
            lambda: check_k8s_server_env_and_security(root))
    r.check("k8s services (8088, 7447) and ingress paths", lambda: check_k8s_services(root))
    r.check("k8s kustomization lists every manifest", lambda: check_kustomization(root))

    r.check("docker/Dockerfile.server non-root USER, HEALTHCHECK, EXPOSE 8088 7447",
            lambda: check_dockerfile(root, DOCKERFILES[0], True, {API_PORT, ZENOH_PORT}))
    r.check("docker/Dockerfile.agent non-root USER",
            lambda: check_dockerfile(root, DOCKERFILES[1], False, set()))

    for rel in SYSTEMD_UNITS:
        r.check(f"{rel} has [Unit]/[Service]/[Install] and ExecStart", lambda rel=rel: check_systemd_unit(root, rel))

    r.check(f"{PROMETHEUS} scrapes /metrics on {API_PORT}", lambda: check_prometheus_scrape(root))
    r.check(f"{ALERTS} uses only exported metrics", lambda: check_alert_metrics(root))

    r.check("launch files compile", lambda: check_launch_compiles(root))
    r.check("fms_agent/launch matches launch/", lambda: check_launch_copies_identical(root))
    r.check("ROS package manifests", lambda: check_ros_packages(root))

    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
