"""Shared by the benchmarks that measure over HTTP: a `medport serve` subprocess, and a
thread pool that times each job."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

MEDPORT = os.path.join(os.path.dirname(sys.executable), "medport")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`medport serve` on a free port and a fresh store in workdir, ready when constructed."""

    def __init__(self, workdir: str, workers: int, sync: str | None = None, serve_prefix: list[str] = (),
                 auth: str = "off", env_extra: dict | None = None, name: str = ""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        suffix = f"-{sync}" if sync else ""
        suffix += f"-{name}" if name else ""
        self.auth = auth
        self.store_path = os.path.join(workdir, f"http{suffix}.db")
        self.log_path = os.path.join(workdir, f"server{suffix}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPORT_")}
        if sync:
            env["MEDPORT_SQLITE_SYNCHRONOUS"] = sync
        env.update(env_extra or {})
        cmd = list(serve_prefix) + [MEDPORT, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                    "--store", "sqlite:///" + self.store_path,
                                    "--workers", str(workers), "--auth", auth]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        with open(self.log_path, errors="replace") as f:
            sys.exit(f"`{' '.join(cmd)}` did not become ready:\n{f.read()[-4000:]}")

    def headers(self, scope: str = "system/*.cruds") -> dict:
        """Authorization for the benchmark client: with auth on, a token signed by the server's own key
        (read from its store), as if from the token endpoint; with auth off, nothing."""
        if self.auth == "off":
            return {}
        from fhirserver.smart_auth import tokens
        from fhirserver.smart_auth.keys import SigningKeys
        from fhirserver.storage.sqlite import SqliteStore
        store = SqliteStore(self.store_path)
        token, _ = tokens.issue(SigningKeys(store), self.base, self.base, "bench", "bench", scope)
        store.close()
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.args[0] == MEDPORT:
                self.proc.send_signal(signal.SIGTERM)
            else:       # a profiler in front: SIGINT to the group stops gunicorn and lets the profiler write
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_jobs(threads: int, jobs: list, work, make_state=lambda: None) -> tuple[float, list[float], list]:
    """work(state, job) for every job on `threads` threads (one state each, e.g. a requests.Session).
    Returns the wall time, each job's latency in seconds, and each job's result."""
    it = iter(jobs)
    lock = threading.Lock()
    per_thread: list[list[tuple[float, object]]] = []

    def loop():
        state, mine = make_state(), []
        per_thread.append(mine)
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                return
            t0 = time.perf_counter()
            result = work(state, job)
            mine.append((time.perf_counter() - t0, result))

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    done = [x for xs in per_thread for x in xs]
    return time.perf_counter() - start, [d for d, _ in done], [r for _, r in done]


def percentile_ms(latencies: list[float], p: float) -> float:
    if not latencies:
        return float("nan")
    xs = sorted(latencies)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (a server started in a
    session of its own: its pid), from /proc/<pid>/stat."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:                      # the process group (field 5 of stat)
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")
