"""GET [type]/[id]: Med-Port against a bare Flask app serving the same bytes under the same gunicorn.

    .venv/bin/python bench/bench_read.py [--rounds 5] [--duration 4] [--connections 32] [--variants ...]

For each variant (with a backend token / without one, the audit trail on as by default / off) it
starts `medport serve` (bench/served.py) on a fresh store, creates the official Patient example,
captures the exact response of a read (body and headers) and starts bench/bare_flask.py answering
those bytes and headers under MedportServer's gunicorn configuration (same workers and threads).
Then rounds alternate: Med-Port for --duration seconds, then the bare app, with the same request
(the token is sent to both). Each round prints requests/s of both, their ratio and the server CPU
per request (utime+stime of every process in the server's process group, /proc/<pid>/stat);
the median ratio closes the variant. Both servers listen with one socket per worker (MEDPORT_REUSE_PORT),
and 32 connections give every worker several: with one shared socket a worker could take every
keep-alive connection, and rounds swung by 2x on which server that happened to. Load: wrk (installed with apt-get when missing), else a
Python keep-alive load generator; the output names the one used.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from served import Server, free_port, group_cpu_s  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "tests", "data", "hl7-examples", "Patient-example.json")
BARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bare_flask.py")
HOP_HEADERS = {"date", "server", "connection", "keep-alive", "content-length", "transfer-encoding"}
VARIANTS = {
    "token": ("on", {}),
    "no-token": ("off", {}),
    "token-audit-off": ("on", {"MEDPORT_AUDIT_ACCESS": "off"}),
    "no-token-audit-off": ("off", {"MEDPORT_AUDIT_ACCESS": "off"}),
}


def ensure_wrk() -> str | None:
    if shutil.which("wrk") is None and shutil.which("apt-get") is not None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, headers: dict, connections: int, duration: float,
            paths: list[str] | None = None) -> tuple[int, int]:
    """(requests, non-2xx/3xx responses) of one wrk run: GET url, or each of `paths` (absolute paths on
    url's server) in turn, through a Lua script."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if paths:
            script.write("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\nlocal i = 0\n"
                         "request = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
            script.flush()
            cmd += ["-s", script.name]
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return n, (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)


def run_python(url: str, headers: dict, connections: int, duration: float) -> tuple[int, int]:
    """The fallback load generator: `connections` threads, each a keep-alive HTTP/1.1 connection."""
    host, _, rest = url.removeprefix("http://").partition("/")
    counts = []
    deadline = time.monotonic() + duration

    def loop():
        conn, ok, bad = http.client.HTTPConnection(host), 0, 0
        while time.monotonic() < deadline:
            conn.request("GET", "/" + rest, headers=headers)
            r = conn.getresponse()
            r.read()
            ok, bad = (ok + 1, bad) if r.status == 200 else (ok, bad + 1)
        counts.append((ok, bad))

    pool = [threading.Thread(target=loop) for _ in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(o + b for o, b in counts), sum(b for _, b in counts)


def capture(url: str, headers: dict) -> dict:
    """The exact body and headers (less the ones gunicorn adds itself) of one read."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host)
    conn.request("GET", "/" + rest, headers=headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"read of {url} answered {r.status}: {body[:500]!r}")
    kept = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_HEADERS]
    return {"body": body.decode(), "headers": kept}


class Bare:
    """bench/bare_flask.py under gunicorn, in its own process group."""

    def __init__(self, workdir: str, spec: dict, workers: int, threads: int):
        self.port = free_port()
        path = os.path.join(workdir, "bare-response.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        with open(os.path.join(workdir, "bare.log"), "wb") as log:
            self.proc = subprocess.Popen([sys.executable, BARE, path, str(self.port), str(workers), str(threads)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/fhir/Patient/x", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit("the bare Flask app did not start; see bare.log")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def measure(load, url: str, headers: dict, pgid: int, args) -> tuple[float, float, int]:
    """requests/s, server CPU ms per request, errors."""
    cpu0 = group_cpu_s(pgid)
    t0 = time.perf_counter()
    n, bad = load(url, headers, args.connections, args.duration)
    wall = time.perf_counter() - t0
    cpu = group_cpu_s(pgid) - cpu0
    return n / wall, cpu * 1000 / max(n, 1), bad


def variant(name: str, args, load, workdir: str) -> float:
    auth, env = VARIANTS[name]
    from fhirserver.config import Settings
    threads = Settings().threads
    server = Server(workdir, args.workers, auth=auth, env_extra=env, name=name)
    bare = None
    try:
        headers = server.headers()
        with open(EXAMPLE, "rb") as f:
            example = json.load(f)
        example.pop("id", None)
        r = requests.post(f"{server.base}/Patient", json=example, timeout=30,
                          headers={**headers, "Content-Type": "application/fhir+json"})
        if r.status_code != 201:
            sys.exit(f"create answered {r.status_code}: {r.text[:500]}")
        pid = r.headers["Location"].split("/Patient/")[1].split("/")[0]
        url = f"{server.base}/Patient/{pid}"
        spec = capture(url, headers)
        bare = Bare(workdir, spec, args.workers, threads)
        bare_url = f"http://127.0.0.1:{bare.port}/fhir/Patient/{pid}"
        for u, pg in ((url, server.proc.pid), (bare_url, bare.proc.pid)):     # warm-up
            load(u, headers, args.connections, 1)
        print(f"\n[{name}] auth {auth}{''.join(f', {k}={v}' for k, v in env.items())}; "
              f"{len(spec['body'])} byte body, {len(spec['headers'])} headers; "
              f"gunicorn gthread {args.workers} workers x {threads} threads")
        ratios, cpu_ratios = [], []
        for i in range(args.rounds):
            m_rps, m_cpu, m_bad = measure(load, url, headers, server.proc.pid, args)
            b_rps, b_cpu, b_bad = measure(load, bare_url, headers, bare.proc.pid, args)
            ratios.append(m_rps / b_rps)
            cpu_ratios.append(m_cpu / b_cpu if b_cpu else float("nan"))
            errs = f"  errors {m_bad}/{b_bad}" if m_bad or b_bad else ""
            print(f"  round {i + 1}: medport {m_rps:7.0f} req/s {m_cpu:5.2f} ms CPU/req | bare {b_rps:7.0f} req/s "
                  f"{b_cpu:5.2f} ms CPU/req | ratio {ratios[-1]:.2f}  CPU x{cpu_ratios[-1]:.2f}{errs}")
        median = statistics.median(ratios)
        print(f"  median ratio {median:.2f} (requests/s medport/bare); median CPU per request x"
              f"{statistics.median(cpu_ratios):.2f} of bare")
        return median
    finally:
        if bare is not None:
            bare.stop()
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=4.0, help="seconds per run of each server")
    p.add_argument("--connections", type=int, default=32,
                   help="keep-alive connections (enough that the kernel gives every worker several)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk is there")
    args = p.parse_args()
    wrk = None if args.python_load else ensure_wrk()
    if wrk:
        print(f"load generator: wrk ({wrk}), 1 thread, {args.connections} keep-alive connections")
        load = lambda url, h, c, d: run_wrk(wrk, url, h, c, d)     # noqa: E731
    else:
        print(f"load generator: Python (http.client), {args.connections} keep-alive connections (wrk unavailable)")
        load = run_python
    summary = {}
    with tempfile.TemporaryDirectory(prefix="bench-read-") as workdir:
        for name in args.variants.split(","):
            summary[name] = variant(name.strip(), args, load, workdir)
    print("\nsummary (median requests/s ratio medport/bare): "
          + ", ".join(f"{k} {v:.2f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
