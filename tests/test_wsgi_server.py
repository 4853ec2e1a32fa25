"""`medport serve` preloads the validators and definitions in the gunicorn master (wsgi_server.preload)
and still makes the app, the store and its threads in each worker."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.blackbox._server import JSON_HEADERS, TIMEOUT, MedportServer

# Stands in for gunicorn's Arbiter: records what the master holds at the moment it would fork.
_MASTER = """
import gc, json, os, sys, threading
from gunicorn.app.base import BaseApplication
from fhirserver import wsgi_server
from fhirserver.config import Settings
from fhirserver.search import registry
from fhirserver.validation import fast, schema
from fhirserver.conformance import catalogue
from fhirserver.search import ucum

def at_fork(self):
    print(json.dumps({
        "checks": fast._checks is not None and len(fast._checks),
        "model": schema._model is not None,
        "params": registry.all_params.cache_info().currsize,
        "frozen": gc.get_freeze_count(),
        "threads": [t.name for t in threading.enumerate()],
        "flask_loaded": "flask" in sys.modules,
        "store_exists": os.path.exists(sys.argv[1]),
        "app_loaded": self.callable is not None,
        "catalogue": catalogue.catalogue.cache_info().currsize,
        "ucum": bool(ucum._state),
    }))

BaseApplication.run = at_fork
wsgi_server.run(Settings(store="sqlite:///" + sys.argv[1], port=0, auth="off"))
"""


def test_master_preloads_the_validators_and_nothing_fork_unsafe(tmp_path):
    store = str(tmp_path / "never-opened.db")
    r = subprocess.run([sys.executable, "-c", _MASTER, store], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["checks"] > 140 and seen["model"]      # every R4 resource type compiled
    assert seen["params"] == 1
    assert seen["frozen"] > 0                           # gc.freeze() before the fork
    assert seen["threads"] == ["MainThread"]            # no audit integrator, no group commit
    assert not seen["store_exists"]                     # the store was never opened in the master
    assert not seen["app_loaded"]                       # the app is made by each worker (load)
    assert seen["flask_loaded"]                         # ... but its modules are imported, to be shared
    assert seen["catalogue"] == 1 and seen["ucum"]      # the shipped definitions and UCUM's registry


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def _workers(master: int) -> list[int]:
    """The gunicorn workers: children of the master forked from it (the same command line; another
    child, such as a background process `medport serve` starts, has its own)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master and \
                            _cmdline(int(name)) == _cmdline(master):
                        out.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _wait_for_workers(master: int, n: int) -> list[int]:
    """Ready means one worker answers; gunicorn may still be forking the others."""
    deadline = time.monotonic() + 20
    while len(pids := _workers(master)) != n and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


@pytest.fixture
def servers(tmp_path):
    started: list[MedportServer] = []

    def start(workers: int) -> MedportServer:
        srv = MedportServer(str(tmp_path / "store.db"), str(tmp_path), workers=workers)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.cleanup()


def _exercise(base: str, n: int) -> list[tuple[str, int]]:
    """Creates, reads, searches and refused creates from several threads, each on a new connection."""
    def one(i: int) -> list[tuple[str, int]]:
        patient = {"resourceType": "Patient", "name": [{"family": f"Preload{i}"}], "birthDate": "1980-02-29"}
        r = requests.post(f"{base}/Patient", json=patient, headers=JSON_HEADERS, timeout=TIMEOUT)
        out = [("create", r.status_code)]
        pid = r.json()["id"]
        out.append(("read", requests.get(f"{base}/Patient/{pid}", timeout=TIMEOUT).status_code))
        r = requests.get(f"{base}/Patient", params={"family": f"Preload{i}"}, timeout=TIMEOUT)
        out.append(("search", r.status_code if r.json().get("total") == 1 else -1))
        bad = dict(patient, birthDate="1981-02-29")
        r = requests.post(f"{base}/Patient", json=bad, headers=JSON_HEADERS, timeout=TIMEOUT)
        out.append(("refused", r.status_code if "birthDate" in r.text else -1))
        return out

    with ThreadPoolExecutor(8) as pool:
        return [x for xs in pool.map(one, range(n)) for x in xs]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_an_initialised_store_answers_from_every_worker(servers, workers):
    first = servers(1)              # the first start initialises the store ...
    assert first.terminate() == 0
    srv = servers(workers)          # ... so this one is a restart, where only preload() builds the validators
    assert len(_wait_for_workers(srv.proc.pid, workers)) == workers
    results = _exercise(srv.base, 6 * workers)
    expected = {"create": 201, "read": 200, "search": 200, "refused": 400}
    assert [(what, code) for what, code in results if code != expected[what]] == []
    assert len(_workers(srv.proc.pid)) == workers      # no worker died on the way
    assert srv.terminate() == 0
    assert not srv.group_alive()


def _listening_sockets(port: int) -> int:
    """LISTEN sockets on the port (/proc/net/tcp: local address hex, state 0A)."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port)


def test_each_worker_listens_on_its_own_socket_and_a_second_server_is_refused(servers, tmp_path):
    srv = servers(2)
    assert len(_wait_for_workers(srv.proc.pid, 2)) == 2
    deadline = time.monotonic() + 10
    while _listening_sockets(srv.port) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _listening_sockets(srv.port) == 2       # the kernel spreads connections over both
    second = subprocess.run([os.path.join(os.path.dirname(sys.executable), "medport"), "serve", "--host", "127.0.0.1",
                             "--port", str(srv.port), "--store", "sqlite:///" + str(tmp_path / "other.db"),
                             "--auth", "off"], capture_output=True, text=True, timeout=60)
    assert second.returncode != 0 and "already in use" in second.stderr
    assert requests.get(f"{srv.base}/metadata", timeout=TIMEOUT).status_code == 200
