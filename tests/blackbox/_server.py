"""Run `medport serve` as a real subprocess and talk to it over plain HTTP.

Shared by the black-box tests (tests/blackbox) and the REST benchmark
(bench/bench_rest.py). Only the public surface is used: the `medport` console
script, MEDPORT_* environment variables, HTTP.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from tests._uhid import TEST_SYSTEM

MEDPORT = os.path.join(os.path.dirname(sys.executable), "medport")
FHIR_JSON = "application/fhir+json"
JSON_HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
TIMEOUT = 30            # seconds, for every HTTP call: a hung server fails a test instead of hanging it
READY_TIMEOUT = 20
STOP_TIMEOUT = 35       # gunicorn's graceful_timeout is 30 s

_counter = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerFailed(RuntimeError):
    pass


class MedportServer:
    """One `medport serve` process (the gunicorn master) in its own session / process group."""

    def __init__(self, store_path: str, log_dir: str, *, workers: int = 2, threads: int = 4,
                 env: dict | None = None, log_level: str | None = None, auth: str = "off", demo: bool = False):
        self.store_path = os.path.abspath(store_path)
        self.log_dir = log_dir
        self.workers = workers
        self.threads = threads
        self.extra_env = dict(env or {})
        self.log_level = log_level
        self.auth = auth          # the FHIR behaviour suites run without tokens; test_auth turns it on
        self.demo = demo
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path: str | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.root}/fhir"

    @property
    def store_url(self) -> str:
        return "sqlite:///" + self.store_path

    @property
    def blob_dir(self) -> str:
        return os.path.join(os.path.dirname(self.store_path), "blobs")

    @property
    def pgid(self) -> int:
        return self.proc.pid    # start_new_session=True: the master leads its own process group

    # -- lifecycle ---------------------------------------------------------------------------
    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPORT_")}
        env["MEDPORT_THREADS"] = str(self.threads)
        env["MEDPORT_UHID_SYSTEM"] = TEST_SYSTEM     # tests writing a Patient twice carry its UHID (tests/_uhid.py)
        if self.log_level:
            env["MEDPORT_LOG_LEVEL"] = self.log_level
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start(self, ready_timeout: float = READY_TIMEOUT) -> "MedportServer":
        last_error = None
        for _attempt in range(3):          # a free port can be taken between probing and binding
            try:
                self._start_once(ready_timeout)
                return self
            except ServerFailed as e:
                last_error = e
                if "Address already in use" not in self.log():
                    raise
        raise last_error

    def _start_once(self, ready_timeout: float) -> None:
        self.port = free_port()
        self.log_path = os.path.join(self.log_dir, f"medport-{os.getpid()}-{next(_counter)}-{self.port}.log")
        cmd = [MEDPORT, "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--store", self.store_url, "--workers", str(self.workers), "--auth", self.auth]
        cmd += ["--demo"] if self.demo else []
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self._env(), start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed(f"`{' '.join(cmd)}` exited with {self.proc.returncode} before it was ready:\n"
                                   f"{self.log()[-6000:]}")
            try:
                if requests.get(f"{self.root}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerFailed(f"`{' '.join(cmd)}` was not ready within {ready_timeout} s:\n"
                                   f"{self.log()[-6000:]}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM to the master and wait; None if it did not exit in time (then it is killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (master and workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def group_alive(self) -> bool:
        """Whether any process of the server's process group is still running."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def cleanup(self) -> None:
        if self.running():
            self.terminate()
        if self.proc is not None:
            self.kill()            # leftover workers, if any


# -- small HTTP helpers ------------------------------------------------------------------------

def session() -> requests.Session:
    s = requests.Session()
    s.headers.update({"Accept": FHIR_JSON})
    return s


def post(s, url, resource, headers=None, **kw):
    return s.post(url, data=json.dumps(resource), headers={**JSON_HEADERS, **(headers or {})},
                  timeout=TIMEOUT, **kw)


def put(s, url, resource, headers=None, **kw):
    return s.put(url, data=json.dumps(resource), headers={**JSON_HEADERS, **(headers or {})},
                 timeout=TIMEOUT, **kw)


def get(s, url, headers=None, **kw):
    return s.get(url, headers=headers, timeout=TIMEOUT, **kw)


def history_total(base: str, path: str = "_history") -> int:
    """Bundle.total of a history (system history by default: the data, the audit trail left out, as
    every request adds its own AuditEvents); _count=1 keeps the page small."""
    def total(of: str, count: str = "1") -> int:
        r = requests.get(f"{base}/{of}", params={"_count": count}, headers={"Accept": FHIR_JSON}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json()["total"]
    if path != "_history":
        return total(path)
    # _count=0 touches no resource, so it leaves exactly one AuditEvent, which the second count sees
    return total("_history", "0") - (total("AuditEvent/_history", "0") - 1)


def all_entries(s, url: str, params=None, max_pages: int = 100) -> list[dict]:
    """Every entry of a Bundle, following `next` links."""
    entries = []
    r = get(s, url, params=params)
    for _ in range(max_pages):
        assert r.status_code == 200, r.text
        bundle = r.json()
        entries.extend(bundle.get("entry", []))
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not nxt:
            return entries
        r = get(s, nxt[0])
    raise AssertionError(f"more than {max_pages} pages at {url}")
