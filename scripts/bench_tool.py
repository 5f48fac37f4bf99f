#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (issue 8, docs/performance.md).

  bench_tool.py run --json FILE [--quiet-load 1.0] [--wait-s 600] [--rerun-load 1.5] -- CMD...
      Waits for a quiet machine (1-minute load average below --quiet-load, polled every
      10 s, at most --wait-s), runs CMD (an `fms_bench run ... --json FILE`), and meanwhile
      measures the CPU that processes *other than* CMD and its descendants used (from
      /proc/stat minus the process tree's /proc/<pid>/stat times). Adds a "harness" object
      to FILE: load averages before and after, seconds waited, background CPU (cores).
      If the run had background load (load average above --rerun-load when it started,
      or other processes using more than half a core), it waits for a quiet window and
      runs once more, keeping the quieter of the two (the other is kept as FILE.try<N>).
  bench_tool.py summary DIR [--markdown]
      One line per run in DIR, then the issue's targets, MET or NOT MET.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: busy = user+nice+system+irq+softirq
    return v[0] + v[1] + v[2] + v[5] + v[6]


def proc_table():
    """pid -> (ppid, utime+stime in jiffies)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        out[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return out


def tree(root, table):
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    return seen


def wait_quiet(limit, max_wait, label):
    t0 = time.monotonic()
    while True:
        la = loadavg()
        waited = time.monotonic() - t0
        if la[0] < limit:
            return waited, la
        if waited >= max_wait:
            print(f"bench: [{label}] load average {la[0]:.2f} still >= {limit} after "
                  f"{waited:.0f} s: measuring anyway (recorded)", file=sys.stderr, flush=True)
            return waited, la
        print(f"bench: [{label}] load average {la[0]:.2f} >= {limit}: waiting for a quiet "
              f"machine ({waited:.0f} s so far)", file=sys.stderr, flush=True)
        time.sleep(10)


def run_once(cmd):
    hz = os.sysconf("SC_CLK_TCK")
    b0, t0 = busy_jiffies(), time.monotonic()
    child = subprocess.Popen(cmd)
    ours = {}  # pid -> last CPU time seen; every process of the tree was born after b0
    while True:
        table = proc_table()
        for pid in tree(child.pid, table):
            ours[pid] = table[pid][1]
        try:
            rc = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
    wall = time.monotonic() - t0
    total = (busy_jiffies() - b0) / hz
    own = sum(ours.values()) / hz
    return rc, wall, max(0.0, total - own) / wall, own / wall


def cmd_run(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    label = os.path.basename(a.json).removesuffix(".json")
    attempts = []
    for attempt in range(1, a.attempts + 1):
        waited, la0 = wait_quiet(a.quiet_load, a.wait_s, label)
        if os.path.exists(a.json):
            os.remove(a.json)
        rc, wall, other, own = run_once(cmd)
        la1 = loadavg()
        h = {
            "attempt": attempt,
            "waited_for_quiet_s": round(waited, 1),
            "load_before": la0,
            "load_after": la1,
            "other_cpu_cores": round(other, 3),
            "run_cpu_cores": round(own, 3),
            "wall_s": round(wall, 1),
            "rc": rc,
        }
        print(f"bench: [{label}] attempt {attempt}: rc {rc}, load {la0[0]:.2f} -> {la1[0]:.2f}, "
              f"other processes {other:.2f} cores, this run {own:.2f} cores, {wall:.0f} s",
              file=sys.stderr, flush=True)
        report = None
        if rc == 0 and os.path.exists(a.json):
            with open(a.json) as f:
                report = json.load(f)
            report["harness"] = h
            with open(a.json, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
        attempts.append((h, report))
        loaded = la0[0] > a.rerun_load or other > 0.5
        if rc != 0 or not loaded or attempt == a.attempts:
            break
        os.rename(a.json, f"{a.json}.try{attempt}")
        print(f"bench: [{label}] ran with background load: once more in a quieter window",
              file=sys.stderr, flush=True)
    # Keep the attempt with the least background CPU as FILE.
    ok = [(h, r) for h, r in attempts if r is not None]
    if len(ok) > 1:
        best = min(ok, key=lambda x: (x[0]["other_cpu_cores"], x[0]["load_before"][0]))
        if best is not ok[-1]:
            os.rename(a.json, f"{a.json}.try{ok[-1][0]['attempt']}")
            with open(a.json, "w") as f:
                json.dump(best[1], f, indent=2)
                f.write("\n")
            os.remove(f"{a.json}.try{best[0]['attempt']}")
    return attempts[-1][0]["rc"]


def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or d.get(p) is None:
            return default
        d = d[p]
    return d


def latency(r):
    """The per-message end-to-end latency group: per-message dashboards, else the probe."""
    d = r.get("dashboards")
    if d and d.get("batch_ms") is None and g(d, "latency", "n", default=0) > 0:
        return d["latency"]
    return g(r, "probe", "latency") or g(d, "latency") or {}


def window_loss(r):
    """Loss in the measurement window (steady state): 1 - processed/offered."""
    i = r["ingest"]
    return max(0.0, 1 - i["processed_per_s"] / i["offered_per_s"]) if i["offered_per_s"] else 0.0


def fmt(v, spec, dash="-"):
    return dash if v is None else format(v, spec)


def load_runs(d):
    runs = []
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(p) as f:
            r = json.load(f)
        if r.get("bench") == "fms_scale":
            r["_file"] = os.path.basename(p)
            runs.append(r)
    order = ["scale-100", "scale-1000", "scale-5000", "scale-10000", "ingest-10k", "latency-1k",
             "dash100-1k", "api-10k", "api-10k-dash"]
    runs.sort(key=lambda r: (order.index(r.get("label")) if r.get("label") in order
                             else len(order), r.get("label") or ""))
    return runs


def targets(by):
    """(target, figure, met) for each of the issue's targets found in the runs."""
    out = []
    r = by.get("ingest-10k") or by.get("scale-10000")
    if r:
        i = r["ingest"]
        wl = window_loss(r)
        out.append((f"10k robots x 10 Hz sustained: loss < 0.1 % [{r.get('label')}]",
                    f"{100 * wl:.3f} % in the measurement window (processed {i['processed_per_s']:.0f}/s of "
                    f"{i['offered_per_s']:.0f}/s offered); whole run incl. the start-up ramp "
                    f"{100 * i['loss_ratio']:.3f} % ({i['lost']} of {i['published_total']})",
                    wl < 0.001))
    r = by.get("scale-10000") or by.get("ingest-10k")
    s = (r or {}).get("saturation")
    if s:
        ratios = [x for x in (s.get("ratio_routed"), s.get("ratio_embedded")) if x is not None]
        out.append((f"ingest >= 50 % of the raw Zenoh baseline [{r.get('label')}]",
                    f"fms {s['fms_processed_per_s']:.0f}/s; raw routed {fmt(s.get('baseline_routed_per_s'), '.0f')}/s "
                    f"(ratio {fmt(s.get('ratio_routed'), '.2f')}), raw embedded {fmt(s.get('baseline_embedded_per_s'), '.0f')}/s "
                    f"(ratio {fmt(s.get('ratio_embedded'), '.2f')})",
                    bool(ratios) and min(ratios) >= 0.5))
    big = [x for x in (by.get("scale-10000"), by.get("ingest-10k"), by.get("api-10k")) if x]
    if big:
        rss = max(x["server"]["rss_peak_mib"] for x in big)
        out.append(("server RSS < 200 MB at 10k robots",
                    f"{rss:.1f} MiB peak ({rss * 1.048576:.1f} MB), largest of "
                    + ", ".join(x.get("label") or "?" for x in big),
                    rss * 1.048576 < 200))
    r = by.get("latency-1k")
    if r:
        lat = latency(r)
        out.append(("p99 e2e latency < 20 ms, 1k robots x 10 Hz, 10 dashboards",
                    f"p50 {fmt(lat.get('p50_ms'), '.2f')} / p99 {fmt(lat.get('p99_ms'), '.2f')} / max "
                    f"{fmt(lat.get('max_ms'), '.1f')} ms (n={lat.get('n', 0)}), ws loss {g(r, 'dashboards', 'gaps', default=0)}",
                    lat.get("n", 0) > 0 and lat["p99_ms"] < 20))
    r = by.get("dash100-1k")
    if r:
        c = r["server"]["cpu_cores"]
        out.append(("100 dashboards (batched) on 1k robots: server CPU < 1 core",
                    f"{c:.2f} cores, {g(r, 'dashboards', 'bytes_per_client_per_s', default=0) / 1024:.0f} KiB/s per client",
                    c < 1.0))
    for label, what in (("api-10k", "no live client"), ("api-10k-dash", "a dashboard connected")):
        r = by.get(label)
        if not r:
            continue
        a = r.get("api_robots") or {}
        lat = a.get("latency") or {}
        out.append((f"GET /api/robots with 10k robots ({what}): p99 < 20 ms",
                    f"p50 {fmt(lat.get('p50_ms'), '.2f')} / p99 {fmt(lat.get('p99_ms'), '.2f')} ms "
                    f"(n={lat.get('n', 0)}, {a.get('robots_listed', 0)} robots, {a.get('body_bytes', 0) / 1024:.0f} KiB, "
                    f"{a.get('errors', 0)} errors)",
                    lat.get("n", 0) > 0 and a.get("errors", 0) == 0 and lat["p99_ms"] < 20))
    return out


def cmd_summary(a):
    runs = load_runs(a.dir)
    if not runs:
        print(f"no fms_bench JSON in {a.dir}")
        return 1
    head = ["run", "robots", "Hz", "ws", "offered/s", "processed/s", "win loss %", "run loss %", "srv CPU",
            "us/msg", "RSS MiB", "p50 ms", "p99 ms", "api p99", "load before->after", "other CPU"]
    rows = []
    for r in runs:
        c, i, s = r["config"], r["ingest"], r["server"]
        ws = f"{c['ws_clients']}" + (f"/b{c['ws_batch_ms']}" if c.get("ws_batch_ms") else "")
        if c.get("probe_watch"):
            ws += f"+p{c['probe_watch']}"
        lat = latency(r)
        h = r.get("harness") or {}
        lb = h.get("load_before", [r["load_before"].split()[0]])[0]
        la = h.get("load_after", [r["load_after"].split()[0]])[0]
        rows.append([
            r.get("label") or r["_file"], str(c["robots"]), f"{c['rate_hz']:g}", ws,
            f"{i['offered_per_s']:.0f}", f"{i['processed_per_s']:.0f}",
            f"{100 * window_loss(r):.3f}", f"{100 * i['loss_ratio']:.3f}", f"{s['cpu_cores']:.2f}", f"{s['cpu_us_per_msg']:.1f}",
            f"{s['rss_peak_mib']:.1f}", fmt(lat.get("p50_ms"), ".2f"), fmt(lat.get("p99_ms"), ".2f"),
            fmt(g(r, "api_robots", "latency", "p99_ms"), ".2f"),
            f"{float(lb):.2f}->{float(la):.2f}", fmt(h.get("other_cpu_cores"), ".2f"),
        ])
    first = runs[0]
    print(f"fms scale benchmark: {first['machine']['cpus']} cpus, {first['machine']['model']}, "
          f"commit {first.get('commit')}, {first['date']}")
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        w = [max(len(x[k]) for x in rows + [head]) for k in range(len(head))]
        for row in [head] + rows:
            print("  ".join(x.rjust(w[k]) if k else x.ljust(w[k]) for k, x in enumerate(row)))
    sat = [r for r in runs if r.get("saturation")]
    for r in sat:
        s = r["saturation"]
        print(f"saturation [{r.get('label')}]: fms ingest {s['fms_processed_per_s']:.0f} msg/s "
              f"(server {s['fms_server_cpu_cores']:.2f} cores); raw zenoh routed "
              f"{fmt(s.get('baseline_routed_per_s'), '.0f')} msg/s, embedded "
              f"{fmt(s.get('baseline_embedded_per_s'), '.0f')} msg/s; ratio "
              f"{fmt(s.get('ratio_routed'), '.2f')} / {fmt(s.get('ratio_embedded'), '.2f')}")
    by = {r.get("label"): r for r in runs}
    t = targets(by)
    if t:
        print("targets (issue 8):")
        for name, fig, met in t:
            print(f"  {'MET    ' if met else 'NOT MET'}  {name}: {fig}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--json", required=True)
    r.add_argument("--quiet-load", type=float, default=1.0)
    r.add_argument("--wait-s", type=float, default=600)
    r.add_argument("--rerun-load", type=float, default=1.5)
    r.add_argument("--attempts", type=int, default=2)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    s = sub.add_parser("summary")
    s.add_argument("dir")
    s.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    sys.exit(cmd_run(a) if a.what == "run" else cmd_summary(a))


if __name__ == "__main__":
    main()
