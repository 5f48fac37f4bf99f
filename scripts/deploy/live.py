"""Checks of the deployment kit against a running fms_server: the metric names used by the
Prometheus rules and the Grafana dashboard exist in its real /metrics, the production config
files are accepted by it, healthcheck.sh passes against it, and backup.sh/restore.sh round-trip
its database. Used by scripts/check_deploy.py.

The server binary: --server-bin / $FMS_SERVER_BIN, else `cargo build --workspace --bins
--locked` (the build scripts/test.sh makes anyway, so it costs nothing there) and
$CARGO_TARGET_DIR/debug/fms_server.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

# -------------------------------------------------------------------- binary


def server_binary(root: Path, explicit: str | None) -> tuple[Path, str]:
    if explicit:
        p = Path(explicit).resolve()
        if not os.access(p, os.X_OK):
            raise RuntimeError(f"{p} is not an executable fms_server")
        return p, f"{p} (given)"
    target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
    if shutil.which("cargo"):
        print("      cargo build --workspace --bins --locked (the build scripts/test.sh makes next)", flush=True)
        r = subprocess.run(["cargo", "build", "--workspace", "--bins", "--locked"], cwd=root,
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            tail = "; ".join(r.stderr.strip().splitlines()[-6:])
            raise RuntimeError(f"cargo build failed: {tail}")
        return target / "debug" / "fms_server", f"{target}/debug/fms_server (cargo build)"
    p = target / "debug" / "fms_server"
    if p.exists():
        return p, f"{p} (no cargo: not rebuilt)"
    raise RuntimeError("no fms_server: pass --server-bin or set FMS_SERVER_BIN, or install cargo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def http_post(url: str, body: bytes, timeout: float = 3.0) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# The variables the server reads; a check's server gets none of the caller's.
SERVER_ENV = ("DATABASE_URL", "ZENOH_ENDPOINT", "PORT", "CORS_ORIGINS", "LOG_LEVEL")


class Server:
    """fms_server on loopback ports with its own directory, stopped by its pid."""

    def __init__(self, binary: Path, workdir: Path, port: int, args: list[str]):
        self.workdir = workdir
        self.log = workdir / "server.log"
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMS_") and k not in SERVER_ENV}
        env["LOG_LEVEL"] = "warn"
        with open(self.log, "wb") as log:
            # its own session: stop() signals only what this started
            self.proc = subprocess.Popen([str(binary), *args], cwd=workdir, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fms_server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if http_get(self.url + "/healthz", 1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"fms_server not healthy after {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, n: int = 6) -> str:
        """The error the server printed (from its first error line on, backtrace frames left
        out), else its last lines."""
        try:
            text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))
        except OSError:
            return ""
        lines = [l.rstrip() for l in text.splitlines() if l.strip()]
        lines = [l for l in lines if not re.match(r"\s*(\d+:|at )", l) and "backtrace" not in l.lower()
                 and not re.fullmatch(r"[\s|^\d]*", l)]
        first = next((i for i, l in enumerate(lines) if re.search(r"^Error|panicked|\bERROR\b", l)), None)
        picked = lines[first:first + n] if first is not None else lines[-n:]
        return " | ".join(re.sub(r"\s+", " ", l).strip() for l in picked)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def make_dirs(workdir: Path) -> None:
    for d in ("data", "www", "log"):
        (workdir / d).mkdir(exist_ok=True)
    # no index.html: a route the server lacks then answers 404, not the dashboard's page


def start_plain_server(binary: Path, workdir: Path) -> Server:
    """The server as a developer starts it: embedded router, SQLite in a temp data dir."""
    make_dirs(workdir)
    port = free_port()
    srv = Server(binary, workdir, port, [
        "--port", str(port), "--bind", "127.0.0.1", "--zenoh-listen", f"tcp/127.0.0.1:{free_port()}",
        "--data-dir", str(workdir / "data"), "--frontend-dir", str(workdir / "www")])
    try:
        srv.wait_healthy()
    except Exception:
        srv.stop()
        raise
    return srv


# -------------------------------------------------------------------- metrics


def exercise(url: str) -> None:
    """A few requests so that labelled HTTP series (routes, statuses) exist."""
    for path in ("/api/robots", "/api/tasks?limit=5", "/api/fleet/status", "/api/robots/no-such-robot",
                 "/api/locations", "/healthz", "/readyz"):
        try:
            http_get(url + path)
        except OSError:
            pass
    try:
        http_post(url + "/api/tasks", b"{}")
    except OSError:
        pass


def parse_exposition(text: str) -> tuple[set[str], dict[str, set[str]], dict[str, str]]:
    """Names (histograms expanded to _bucket/_sum/_count), label names per name, and types."""
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if m:
            name, typ = m.groups()
            types[name] = typ
            names.add(name)
            if typ == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
            elif typ == "summary":
                names.update({f"{name}_sum", f"{name}_count"})
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s", line)
        if m:
            names.add(m.group(1))
            ls = labels.setdefault(m.group(1), set())
            ls.update(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"', m.group(3) or ""))
    return names, labels, types


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Label names used in `metric{...}` selectors of a PromQL expression."""
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", expr):
        ls = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)))
        out.setdefault(m.group(1), set()).update(ls)
    return out


# -------------------------------------------------------------------- config files


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_toml(d: dict) -> str:
    top = [f"{k} = {toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {toml_value(vv)}" for kk, vv in v.items())
              for k, v in d.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"


def localize_config(cfg: dict, tmp: Path, port: int, zport: int) -> dict:
    """The production config with every host path, port and remote endpoint moved into tmp
    and onto loopback, so that the real server can start with it here. Keys are kept."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    cfg["port"] = port
    cfg["bind"] = "127.0.0.1"
    cfg.pop("zenoh_endpoint", None)  # the embedded router instead of a remote one
    cfg["zenoh_listen"] = [f"tcp/127.0.0.1:{zport}"]
    cfg.pop("zenoh_config", None)
    if "database_url" in cfg:
        cfg["database_url"] = f"sqlite:{tmp}/data/fms.db"
    cfg["data_dir"] = str(tmp / "data")
    cfg["frontend_dir"] = str(tmp / "www")
    for key in ("map", "locations"):
        cfg.pop(key, None)
    if isinstance(cfg.get("log"), dict) and "file" in cfg["log"]:
        cfg["log"]["file"] = str(tmp / "log" / "server.log")
    if isinstance(cfg.get("auth"), dict) and "jwt_secret_file" in cfg["auth"]:
        secret = tmp / "jwt_secret"
        secret.write_text(secrets.token_hex(32) + "\n")
        secret.chmod(0o600)
        cfg["auth"]["jwt_secret_file"] = str(secret)
    return cfg


def config_accepted(binary: Path, config_path: Path) -> str:
    cfg = tomllib.loads(config_path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="fms-config-") as tmp:
        tmpd = Path(tmp)
        make_dirs(tmpd)
        port = free_port()
        local = localize_config(cfg, tmpd, port, free_port())
        (tmpd / "server.toml").write_text(dump_toml(local))
        srv = Server(binary, tmpd, port, ["--config", str(tmpd / "server.toml")])
        try:
            srv.wait_healthy(20)
        finally:
            srv.stop()
    sections = ", ".join(f"[{k}]" for k, v in cfg.items() if isinstance(v, dict))
    return f"the server starts healthy with it (tables {sections})"


# -------------------------------------------------------------------- scripts


def run_script(script: Path, args: list[str], env: dict[str, str] | None = None, timeout: float = 60):
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FMS_DATA_DIR")}
    full_env.update(env or {})
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def sqlite_round_trip(scripts: Path, srv: Server) -> str:
    """Online backup of the running server's fms.db, then a restore into a fresh data dir."""
    data = srv.workdir / "data"
    out = srv.workdir / "backups"
    r = run_script(scripts / "backup.sh", ["--data-dir", str(data), "-o", str(out), "--keep-days", "7"])
    if r.returncode != 0:
        raise RuntimeError(f"backup.sh: {r.stderr.strip()[-400:]}")
    backup = Path(r.stdout.strip().splitlines()[-1])
    if not backup.is_file() or not Path(str(backup) + ".sha256").is_file():
        raise RuntimeError(f"backup.sh printed {backup}, which does not exist with its .sha256")
    target = srv.workdir / "restored"
    target.mkdir()
    # a previous database that must be kept aside
    (target / "fms.db").write_bytes(b"")
    r = run_script(scripts / "restore.sh", [str(backup), "--data-dir", str(target), "--server-url", srv.url, "--yes"])
    if r.returncode == 0 or "answers at" not in r.stderr:
        raise RuntimeError(f"restore.sh did not refuse while the server runs: {r.stderr.strip()[-300:]}")
    r = run_script(scripts / "restore.sh", [str(backup), "--data-dir", str(target), "--server-url", "", "--yes"])
    if r.returncode != 0:
        raise RuntimeError(f"restore.sh: {r.stderr.strip()[-400:]}")
    kept = list(target.glob("fms.db.before-restore-*"))
    if not kept:
        raise RuntimeError("restore.sh did not keep the previous database")
    q = subprocess.run(["sqlite3", str(target / "fms.db"), "PRAGMA integrity_check; SELECT count(*) FROM tasks;"],
                       capture_output=True, text=True, timeout=30)
    if q.returncode != 0 or not q.stdout.startswith("ok"):
        raise RuntimeError(f"restored database: {q.stdout.strip()} {q.stderr.strip()}")
    # a corrupted backup must be refused
    bad = out / "fms-sqlite-corrupt.db.gz"
    bad.write_bytes(backup.read_bytes()[:-16] + b"\0" * 16)
    sums = Path(str(backup) + ".sha256").read_text()
    Path(str(bad) + ".sha256").write_text(sums.replace(backup.name, bad.name))
    r = run_script(scripts / "restore.sh", [str(bad), "--data-dir", str(target), "--server-url", "", "--yes"])
    if r.returncode == 0:
        raise RuntimeError("restore.sh accepted a backup that does not match its checksum")
    return f"online backup {backup.stat().st_size} B, restored (tasks table ok), refused while running and when corrupt"


def postgres_round_trip(scripts: Path, admin_url: str) -> str:
    """backup.sh/restore.sh through pg_dump/pg_restore on two scratch databases."""
    if not shutil.which("psql") or not shutil.which("pg_dump"):
        raise RuntimeError("psql/pg_dump missing (apt install postgresql-client)")
    base = admin_url.rsplit("/", 1)[0]
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    src, dst = f"fms_backup_src_{suffix}", f"fms_backup_dst_{suffix}"

    def psql(url: str, sql: str) -> str:
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()[-300:]}")
        return r.stdout.strip()

    psql(admin_url, f"CREATE DATABASE {src}")
    psql(admin_url, f"CREATE DATABASE {dst}")
    try:
        psql(f"{base}/{src}", "CREATE TABLE tasks (id text PRIMARY KEY, status text NOT NULL);"
                              "INSERT INTO tasks SELECT 't' || g, 'COMPLETED' FROM generate_series(1, 50) g;")
        psql(f"{base}/{dst}", "CREATE TABLE tasks (id text PRIMARY KEY, status text NOT NULL);"
                              "INSERT INTO tasks VALUES ('old', 'QUEUED');")
        with tempfile.TemporaryDirectory(prefix="fms-pgbackup-") as tmp:
            r = run_script(scripts / "backup.sh", ["--database-url", f"{base}/{src}", "-o", tmp])
            if r.returncode != 0:
                raise RuntimeError(f"backup.sh: {r.stderr.strip()[-400:]}")
            dump = r.stdout.strip().splitlines()[-1]
            r = run_script(scripts / "restore.sh", [dump, "--database-url", f"{base}/{dst}", "--server-url", "", "--yes"])
            if r.returncode != 0:
                raise RuntimeError(f"restore.sh: {r.stderr.strip()[-400:]}")
            safety = list(Path(tmp).glob("fms-postgres-before-restore-*.dump"))
        n = psql(f"{base}/{dst}", "SELECT count(*) FROM tasks WHERE id <> 'old'")
        old = psql(f"{base}/{dst}", "SELECT count(*) FROM tasks WHERE id = 'old'")
        if n != "50" or old != "0":
            raise RuntimeError(f"after restore: {n} restored rows (want 50), {old} old rows (want 0)")
        if not safety:
            raise RuntimeError("restore.sh took no safety dump of the database it replaced")
    finally:
        for db in (src, dst):
            try:
                psql(admin_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            except RuntimeError:
                pass
    return "pg_dump -Fc backup restored with pg_restore --clean into another database (50/50 rows, safety dump taken)"


def postgres_reachable(url: str) -> bool:
    if not shutil.which("pg_isready"):
        return False
    m = re.match(r"postgres(?:ql)?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?", url)
    if not m:
        return False
    r = subprocess.run(["pg_isready", "-q", "-h", m.group(1), "-p", m.group(2) or "5432"], timeout=10)
    return r.returncode == 0
