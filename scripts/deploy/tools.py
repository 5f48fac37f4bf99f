"""Checks of the deployment kit with real tools: JSON schemas, docker stack config,
kubernetes-validate, systemd-analyze, nginx -t, promtool and shellcheck.

compose-spec.schema.json beside this file is the Compose Specification's JSON schema as
vendored by check-jsonschema 0.39.0 on PyPI (check_jsonschema/builtin_schemas/vendor/
compose-spec.json, sha256 d549057e...ed10e64), Apache-2.0: LICENSE.compose-spec. To update it,
take the same file from a newer check-jsonschema wheel.

Each tool is installed on first use when missing (pip or apt-get, as root on CI machines);
TOOLS records what was used, with its version, for the summary. Used by scripts/check_deploy.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPOSE_SCHEMA = HERE / "compose-spec.schema.json"
# Kubernetes versions the manifests must validate against: an old supported one and the newest
# schema kubernetes-validate bundles.
K8S_VERSIONS = ("1.28.0", None)

TOOLS: dict[str, str] = {}
_apt_updated = False


class ToolMissing(Exception):
    pass


def run(cmd: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _pip_install(pkg: str) -> None:
    r = run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", pkg], timeout=300)
    if r.returncode != 0:
        raise ToolMissing(f"pip install {pkg} failed: {r.stderr.strip()[-300:]}")


def need_module(module: str, pkg: str):
    """Imports a Python module, installing its PyPI package first if needed."""
    import importlib
    import importlib.metadata

    try:
        mod = importlib.import_module(module)
    except ImportError:
        _pip_install(pkg)
        importlib.invalidate_caches()
        mod = importlib.import_module(module)
    try:
        TOOLS[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        TOOLS[pkg] = "?"
    return mod


def need_pip_command(command: str, pkg: str) -> str:
    path = shutil.which(command)
    if not path:
        _pip_install(pkg)
        path = shutil.which(command) or str(Path(sys.executable).parent / command)
        if not Path(path).exists():
            raise ToolMissing(f"{command} not found after pip install {pkg}")
    return path


def need_apt_command(command: str, packages: list[str]) -> str:
    """A command from Debian's packages, installed with apt-get when missing."""
    global _apt_updated
    path = shutil.which(command)
    if path:
        return path
    if not shutil.which("apt-get"):
        raise ToolMissing(f"{command} is missing and there is no apt-get to install {packages}")
    if os.geteuid() != 0:
        raise ToolMissing(f"{command} is missing: sudo apt-get install {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        run(["apt-get", "update", "-qq"], timeout=300, env=env)
        _apt_updated = True
    # policy-rc.d-less machines would start the daemons these packages bring (nginx,
    # prometheus): RUNLEVEL=1 keeps invoke-rc.d from starting them.
    env["RUNLEVEL"] = "1"
    r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], timeout=600, env=env)
    if r.returncode != 0:
        raise ToolMissing(f"apt-get install {' '.join(packages)} failed: {r.stderr.strip()[-300:]}")
    path = shutil.which(command)
    if not path:
        raise ToolMissing(f"{command} not found after apt-get install {' '.join(packages)}")
    return path


def version_of(name: str, cmd: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> None:
    try:
        r = run(cmd, timeout=20)
        m = re.search(pattern, r.stdout + r.stderr)
        TOOLS[name] = m.group(1) if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        TOOLS[name] = "?"


def first_lines(text: str, n: int = 8) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    more = f" (+{len(lines) - n} more lines)" if len(lines) > n else ""
    return "; ".join(lines[:n]) + more


# --------------------------------------------------------------------- JSON schema (compose)


def compose_schema_errors(doc) -> list[str]:
    jsonschema = need_module("jsonschema", "jsonschema")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        # oneOf failures: name the closest sub-error instead of the whole alternative list
        best = jsonschema.exceptions.best_match([e]) if e.context else e
        out.append(f"{where}: {best.message[:200]}")
    return out


# --------------------------------------------------------------------- docker stack config


def docker_stack_config(path: Path) -> str:
    docker = shutil.which("docker")
    if not docker:
        # Debian's docker.io brings a docker CLI whose `stack config` works offline.
        docker = need_apt_command("docker", ["docker.io"])
    version_of("docker CLI", [docker, "--version"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    r = run([docker, "stack", "config", "-c", str(path)], timeout=60, env=env)
    if r.returncode != 0:
        raise RuntimeError(first_lines(r.stderr or r.stdout))
    return r.stdout


# --------------------------------------------------------------------- Kubernetes


def kubernetes_validate(paths: list[Path]) -> str:
    exe = need_pip_command("kubernetes-validate", "kubernetes-validate")
    version_of("kubernetes-validate", [exe, "--version"])
    checked = []
    for version in K8S_VERSIONS:
        cmd = [exe, "--strict", "--no-warn"]
        if version:
            cmd += ["-k", version]
        r = run(cmd + [str(p) for p in paths], timeout=120)
        out = r.stdout + r.stderr
        bad = [l for l in out.splitlines() if l.startswith(("ERROR", "CRITICAL")) or "did not validate" in l]
        if r.returncode != 0 or bad:
            raise RuntimeError(f"against {version or 'newest'}: " + first_lines("\n".join(bad) or out))
        m = re.findall(r"against version (\S+)", out)
        checked.append(m[0] if m else (version or "newest"))
    return " and ".join(checked)


# --------------------------------------------------------------------- systemd


def systemd_verify(units: list[Path], max_exposure: float) -> str:
    """systemd-analyze verify on copies whose /usr/local/bin/ binaries are stubs in a temp dir
    (the real binaries are not installed here), plus the offline security exposure score."""
    exe = need_apt_command("systemd-analyze", ["systemd"])
    version_of("systemd", [exe, "--version"], r"systemd (\d+)")
    details = []
    with tempfile.TemporaryDirectory(prefix="fms-systemd-") as tmp:
        tmpd = Path(tmp)
        bindir = tmpd / "bin"
        bindir.mkdir()
        targets = []
        for unit in units:
            text = unit.read_text(encoding="utf-8")
            for binary in set(re.findall(r"/usr/local/bin/([A-Za-z0-9_.-]+)", text)):
                stub = bindir / binary
                stub.write_text("#!/bin/sh\nexit 0\n")
                stub.chmod(0o755)
            (tmpd / unit.name).write_text(text.replace("/usr/local/bin/", f"{bindir}/"))
            # a template is verified through an instance of it
            name = unit.name.replace("@.", "@check.")
            targets.append(tmpd / name)
        r = run([exe, "verify", *map(str, targets)], timeout=60)
        out = (r.stdout + r.stderr).strip()
        # verify exits 0 on many real problems (unknown keys, unparsable values, which systemd
        # then ignores): any diagnostic at all is a failure.
        if r.returncode != 0 or out:
            raise RuntimeError(first_lines(out.replace(str(tmpd) + "/", "")) or f"exit {r.returncode}")
        for t in targets:
            r = run([exe, "security", "--offline=true", "--no-pager", str(t)], timeout=60)
            m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", r.stdout + r.stderr)
            if not m:
                raise RuntimeError(f"systemd-analyze security {t.name}: {first_lines(r.stdout + r.stderr, 3)}")
            score = float(m.group(1))
            if score > max_exposure:
                raise RuntimeError(f"{t.name}: exposure {score} {m.group(2)} is above {max_exposure}")
            details.append(f"{t.name} exposure {score} {m.group(2)}")
    return "verify clean; " + ", ".join(details)


# --------------------------------------------------------------------- nginx


def nginx_test(site_text: str, label: str) -> str:
    """nginx -t of a site (server blocks, maps, upstreams) inside a minimal http {} block, with a
    self-signed certificate in place of every ssl_certificate(_key) it names."""
    nginx = need_apt_command("nginx", ["nginx"])
    openssl = need_apt_command("openssl", ["openssl"])
    version_of("nginx", [nginx, "-v"])
    with tempfile.TemporaryDirectory(prefix="fms-nginx-") as tmp:
        tmpd = Path(tmp)
        crt, key = tmpd / "test.crt", tmpd / "test.key"
        if re.search(r"^\s*ssl_certificate", site_text, re.M):
            r = run([openssl, "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "1",
                     "-subj", "/CN=fms.example.org", "-keyout", str(key), "-out", str(crt)], timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"openssl: {first_lines(r.stderr)}")
            site_text = re.sub(r"^(\s*ssl_certificate_key\s+)[^;]+;", lambda m: f"{m.group(1)}{key};", site_text, flags=re.M)
            site_text = re.sub(r"^(\s*ssl_certificate\s+)[^;]+;", lambda m: f"{m.group(1)}{crt};", site_text, flags=re.M)
        (tmpd / "site.conf").write_text(site_text)
        mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
        (tmpd / "nginx.conf").write_text(
            f"pid {tmpd}/nginx.pid;\nerror_log {tmpd}/error.log;\nevents {{}}\n"
            f"http {{\n  {mime}\n  access_log off;\n"
            f"  client_body_temp_path {tmpd}/body;\n  proxy_temp_path {tmpd}/proxy;\n"
            f"  fastcgi_temp_path {tmpd}/fastcgi;\n  uwsgi_temp_path {tmpd}/uwsgi;\n  scgi_temp_path {tmpd}/scgi;\n"
            f"  include {tmpd}/site.conf;\n}}\n")
        r = run([nginx, "-t", "-q", "-p", str(tmpd), "-e", str(tmpd / "error.log"), "-c", str(tmpd / "nginx.conf")], timeout=60)
        out = (r.stdout + r.stderr).replace(str(tmpd) + "/", "")
        warnings = [l for l in out.splitlines() if "[warn]" in l or "[emerg]" in l or "[error]" in l]
        if r.returncode != 0 or warnings:
            raise RuntimeError(f"{label}: " + first_lines("\n".join(warnings) or out))
    return f"nginx {TOOLS.get('nginx', '?')} -t ok"


# --------------------------------------------------------------------- promtool


def _promtool() -> str:
    exe = need_apt_command("promtool", ["prometheus"])
    version_of("promtool", [exe, "--version"], r"version (\S+)")
    return exe


def promtool_check_config(prometheus_yml: Path) -> str:
    exe = _promtool()
    r = run([exe, "check", "config", str(prometheus_yml)], timeout=60)
    if r.returncode != 0:
        raise RuntimeError(first_lines(r.stdout + r.stderr))
    rules = re.search(r"SUCCESS: (\d+) rule files? found", r.stdout + r.stderr)
    return f"config valid, {rules.group(1) if rules else '?'} rule file(s) valid"


def promtool_check_rules(rules_yml: Path) -> str:
    exe = _promtool()
    r = run([exe, "check", "rules", str(rules_yml)], timeout=60)
    if r.returncode != 0:
        raise RuntimeError(first_lines(r.stdout + r.stderr))
    m = re.search(r"SUCCESS: (\d+) rules found", r.stdout + r.stderr)
    return f"{m.group(1) if m else '?'} rules valid"


def promtool_check_exprs(exprs: dict[str, str]) -> str:
    """PromQL syntax of arbitrary expressions (Grafana's), as recording rules for promtool."""
    exe = _promtool()
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs.values())]
    names = list(exprs)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": [{"name": "grafana", "rules": rules}]}, f)  # JSON is YAML
        path = f.name
    try:
        r = run([exe, "check", "rules", path], timeout=60)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        out = r.stdout + r.stderr
        for m in re.finditer(r"check:expr_(\d+)", out):
            out = out.replace(m.group(0), names[int(m.group(1))])
        raise RuntimeError(first_lines(out))
    return f"{len(rules)} expressions parse"


# --------------------------------------------------------------------- shellcheck


def shellcheck(paths: list[Path]) -> str:
    exe = need_apt_command("shellcheck", ["shellcheck"])
    version_of("shellcheck", [exe, "--version"], r"version: (\S+)")
    r = run([exe, "-x", "-f", "gcc", *map(str, paths)], timeout=120, cwd=paths[0].parent)
    if r.returncode != 0:
        raise RuntimeError(first_lines(r.stdout + r.stderr))
    return f"{len(paths)} scripts clean"
